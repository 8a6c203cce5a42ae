"""晋级 — the promotion pipeline, as data. Guards come from workflow.rules, effects from workflow.effects."""
from .. import attachments as att, paper_forms as paper
from .. import effects as fx
from .. import rules as r

KIND = "promotion"
CREATED = "qualification_review"     # `create` files the case (submitted) straight into qualification review
STATES = ["submitted", "qualification_review", "returned", "panel_scoring", "hr_approval", "publicity",
          "approved", "effective", "rejected", "appeal_review", "withdrawn", "not_selected"]
# `rejected` closes the case; an appeal inside the policy's window reopens it once (申诉).
TERMINAL = ["effective", "rejected", "withdrawn", "not_selected"]

# The policy step whose authority acts while the case is in a state.
STEPS = {"qualification_review": "qualification_review", "panel_scoring": "panel_scoring",
         "hr_approval": "hr_approval", "publicity": "hr_approval", "approved": "hr_approval"}

# States routed to a person rather than by the policy.
ROUTES = {"returned": "applicant", "appeal_review": "appeal"}
# The decisions an appeal is heard against: an approver one org level above the unit where it was taken.
APPEALED = ["reject", "overturn"]

# Who takes an action: an assignee with that duty, or the applicant.
ACTORS = {
    "qualify": "decide", "return": "decide", "reject": "decide", "approve": "decide",
    "make_effective": "decide", "assign_panel": "assign_panel", "score": "panel",
    "supervisor_score": "supervisor", "resubmit": "applicant", "withdraw": "applicant",
    "declare_conflict": "any_assignee", "escalate": "system", "reroute": "system", "close": "system",
    "not_select": "decide", "object": "in_scope", "uphold": "decide", "overturn": "decide",
    "end_publicity": "system", "appeal": "applicant", "sustain": "decide", "reinstate": "decide",
    # 附件: the applicant while the case is open, its current assignees and HR over it (authority.py).
    "attach": "contributor",
    # A panel member's score from the paper panel form, entered by HR over the case for the member.
    "score_for": "hr_over_case",
}
AUTOMATIC = ["scoring_complete"]          # fired by the engine as `system` when their conditions hold
SYSTEM_ALSO = ["make_effective", "escalate", "reroute", "close", "end_publicity"]   # taken as `system` (tick, a role change,
#                                                                   the employment ending)
DECISIONS = ["qualify", "return", "reject", "approve", "score", "supervisor_score", "not_select", "uphold",
             "overturn", "sustain", "reinstate"]   # four eyes
VERSION_FREE = ["score", "supervisor_score", "score_for", "attach"]   # concurrent scorers never block each other
# A round's cases in hr_approval are decided together by its decision (approve up to the quota, not_select
# the rest), by HR at the round's unit or above; `not_select` exists only there (workflow/rounds.py).
ROUND_ACTIONS = ["approve", "not_select"]
# Actions offered only when the case calls for them (the engine asks before listing them).
AVAILABLE_WHEN = {"uphold": r.pending_objections, "appeal": r.appeal_open}
ROUND_ONLY = ["not_select"]

_OPEN = ["qualification_review", "returned", "panel_scoring", "hr_approval", "publicity", "approved",
         "appeal_review"]
_ASSIGNED = ["qualification_review", "panel_scoring", "hr_approval", "publicity", "approved", "appeal_review"]

TRANSITIONS = [
    {"trigger": "qualify", "source": "qualification_review", "dest": "hr_approval",
     "conditions": [r.last_signature, r.no_panel]},     # the policy skips the panel for this level
    {"trigger": "qualify", "source": "qualification_review", "dest": "panel_scoring",
     "conditions": r.last_signature},
    {"trigger": "qualify", "source": "qualification_review", "dest": None, "before": fx.record_signature},
    {"trigger": "return", "source": "qualification_review", "dest": "returned", "prepare": r.require_comment},
    {"trigger": "resubmit", "source": "returned", "dest": "qualification_review", "before": fx.update_statement},
    {"trigger": "reject", "source": ["qualification_review", "hr_approval"], "dest": "rejected",
     "prepare": r.require_comment, "after": [fx.mark_decided, fx.open_appeal_window]},
    {"trigger": "assign_panel", "source": "panel_scoring", "dest": None, "prepare": r.require_members,
     "before": fx.assign_panel},
    {"trigger": "score", "source": "panel_scoring", "dest": None, "prepare": r.require_score,
     "before": fx.record_panel_score},
    {"trigger": "score_for", "source": "panel_scoring", "dest": None,
     "prepare": [r.require_score, paper.require_paper_member], "before": paper.record_paper_score},
    {"trigger": "supervisor_score", "source": "panel_scoring", "dest": None, "prepare": r.require_score,
     "before": fx.record_supervisor_score},
    {"trigger": "scoring_complete", "source": "panel_scoring", "dest": "hr_approval",
     "conditions": r.scoring_complete, "before": fx.compute_composite},
    {"trigger": "approve", "source": "hr_approval", "dest": "publicity",
     "conditions": [r.last_signature, r.has_publicity], "after": fx.mark_decided},
    {"trigger": "approve", "source": "hr_approval", "dest": "effective",
     "conditions": [r.last_signature, r.effective_on_approval], "after": [fx.mark_decided, fx.apply_promotion]},
    {"trigger": "approve", "source": "hr_approval", "dest": "approved", "conditions": r.last_signature,
     "after": [fx.mark_decided, fx.schedule_effective]},
    {"trigger": "approve", "source": "hr_approval", "dest": None, "before": fx.record_signature},
    {"trigger": "not_select", "source": "hr_approval", "dest": "not_selected", "after": fx.mark_decided},
    # 公示: anyone in scope may object; HR upholds the promotion or overturns it; when the window has
    # passed with no objection open, tick ends the publicity and the promotion goes on.
    {"trigger": "object", "source": "publicity", "dest": None, "prepare": [r.require_statement,
                                                                         r.require_publicity_open],
     "before": fx.record_objection},
    {"trigger": "uphold", "source": "publicity", "dest": None, "prepare": [r.require_comment,
                                                                         r.require_pending_objection]},
    {"trigger": "overturn", "source": "publicity", "dest": "rejected", "prepare": r.require_comment,
     "after": [fx.mark_decided, fx.open_appeal_window]},
    # 申诉: the applicant appeals a rejection once, inside the policy's window; an approver one org level
    # above the rejecter sustains it (the case closes again) or reinstates the case at the step where it was
    # rejected, where the rejecter no longer decides it.
    {"trigger": "appeal", "source": "rejected", "dest": "appeal_review",
     "prepare": [r.require_statement, r.require_appeal_open], "before": fx.record_appeal},
    {"trigger": "sustain", "source": "appeal_review", "dest": "rejected", "prepare": r.require_comment},
    {"trigger": "reinstate", "source": "appeal_review", "dest": "qualification_review",
     "prepare": r.require_comment, "conditions": r.rejected_at_qualification, "before": fx.record_reinstated},
    {"trigger": "reinstate", "source": "appeal_review", "dest": "hr_approval", "prepare": r.require_comment,
     "before": fx.record_reinstated},
    {"trigger": "end_publicity", "source": "publicity", "dest": "effective", "prepare": r.require_publicity_over,
     "conditions": r.effective_on_approval, "after": fx.apply_promotion},
    {"trigger": "end_publicity", "source": "publicity", "dest": "approved", "prepare": r.require_publicity_over,
     "after": fx.schedule_effective},
    {"trigger": "make_effective", "source": "approved", "dest": "effective", "prepare": r.require_effective_date,
     "after": fx.apply_promotion},
    {"trigger": "withdraw", "source": ["qualification_review", "returned", "panel_scoring", "hr_approval",
                                       "appeal_review"],
     "dest": "withdrawn"},
    {"trigger": "escalate", "source": ["qualification_review", "panel_scoring", "hr_approval"], "dest": None,
     "prepare": r.require_overdue, "before": fx.escalate},
    {"trigger": "reroute", "source": _ASSIGNED, "dest": None, "before": fx.reroute},
    {"trigger": "close", "source": _OPEN, "dest": "withdrawn", "prepare": r.require_comment},
    {"trigger": "declare_conflict", "source": _ASSIGNED, "dest": None, "prepare": r.require_comment,
     "before": fx.declare_conflict},
    {"trigger": "attach", "source": _OPEN, "dest": None, "prepare": att.require_file,
     "before": att.record_attachment},
]
