"""降级 — demotion, as data: review, notice with the right to appeal (申诉), HR approval, one level down."""
from .. import effects as fx
from .. import rules as r

KIND = "demotion"
CREATED = "review"
STATES = ["review", "notice", "appeal_review", "hr_approval", "effective", "retained", "overturned", "withdrawn"]
TERMINAL = ["effective", "retained", "overturned", "withdrawn"]

STEPS = {"review": "review", "hr_approval": "hr_approval"}   # routed by the policy's demotion.steps
ROUTES = {"notice": "applicant", "appeal_review": "appeal"}
APPEALED = ["confirm_grounds"]   # the appeal is heard one org level above where the grounds were confirmed  # the employee; an approver above the confirmer

ACTORS = {
    "confirm_grounds": "decide", "retain": "decide", "appeal": "applicant", "uphold": "decide",
    "overturn": "decide", "close_notice": "system", "approve": "decide", "reject": "decide",
    "withdraw": "initiator", "declare_conflict": "any_assignee", "reroute": "system", "close": "system",
}
AUTOMATIC = []
SYSTEM_ALSO = ["close_notice", "reroute", "close"]
DECISIONS = ["confirm_grounds", "retain", "uphold", "overturn", "approve", "reject"]
VERSION_FREE = []

_OPEN = ["review", "notice", "appeal_review", "hr_approval"]
_DECIDED_BY_STAFF = ["review", "appeal_review", "hr_approval"]

TRANSITIONS = [
    {"trigger": "confirm_grounds", "source": "review", "dest": "notice"},
    {"trigger": "retain", "source": "review", "dest": "retained", "prepare": r.require_comment},
    {"trigger": "appeal", "source": "notice", "dest": "appeal_review",
     "prepare": [r.require_statement, r.require_inside_window], "before": fx.record_appeal},
    {"trigger": "close_notice", "source": "notice", "dest": "hr_approval", "prepare": r.require_window_over},
    {"trigger": "uphold", "source": "appeal_review", "dest": "hr_approval"},
    {"trigger": "overturn", "source": "appeal_review", "dest": "overturned", "prepare": r.require_comment},
    {"trigger": "approve", "source": "hr_approval", "dest": "effective", "after": fx.demote},
    {"trigger": "reject", "source": "hr_approval", "dest": "retained", "prepare": r.require_comment},
    {"trigger": "withdraw", "source": _OPEN, "dest": "withdrawn"},
    {"trigger": "declare_conflict", "source": _DECIDED_BY_STAFF, "dest": None, "prepare": r.require_comment,
     "before": fx.declare_conflict},
    {"trigger": "reroute", "source": _DECIDED_BY_STAFF, "dest": None, "before": fx.reroute},
    {"trigger": "close", "source": _OPEN, "dest": "withdrawn", "prepare": r.require_comment},
]
