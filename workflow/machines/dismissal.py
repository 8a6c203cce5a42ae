"""辞退/劝退 — dismissal, as data: review, notice (appeal or accept a transfer 转岗), HR approval, final
approval at the level the policy names; effective ends the employment and closes the login."""
from .. import effects as fx
from .. import rules as r

KIND = "dismissal"
CREATED = "review"
STATES = ["review", "notice", "appeal_review", "hr_approval", "final_approval", "effective", "transferred",
          "overturned", "withdrawn"]
TERMINAL = ["effective", "transferred", "overturned", "withdrawn"]

STEPS = {"review": "review", "hr_approval": "hr_approval", "final_approval": "final_approval"}
ROUTES = {"notice": "applicant", "appeal_review": "appeal"}
APPEALED = ["confirm_grounds"]   # the appeal is heard one org level above where the grounds were confirmed

ACTORS = {
    "confirm_grounds": "decide", "retain": "decide", "appeal": "applicant", "accept_transfer": "applicant",
    "uphold": "decide", "overturn": "decide", "close_notice": "system", "approve": "decide",
    "final_approve": "decide", "reject": "decide", "withdraw": "initiator", "declare_conflict": "any_assignee",
    "reroute": "system", "close": "system",
}
AUTOMATIC = []
SYSTEM_ALSO = ["close_notice", "reroute", "close"]
DECISIONS = ["confirm_grounds", "retain", "uphold", "overturn", "approve", "final_approve", "reject"]
VERSION_FREE = []

_OPEN = ["review", "notice", "appeal_review", "hr_approval", "final_approval"]
_DECIDED_BY_STAFF = ["review", "appeal_review", "hr_approval", "final_approval"]

TRANSITIONS = [
    {"trigger": "confirm_grounds", "source": "review", "dest": "notice"},
    {"trigger": "retain", "source": "review", "dest": "overturned", "prepare": r.require_comment},
    {"trigger": "appeal", "source": "notice", "dest": "appeal_review",
     "prepare": [r.require_statement, r.require_inside_window], "before": fx.record_appeal},
    {"trigger": "accept_transfer", "source": "notice", "dest": "transferred",
     "prepare": [r.require_inside_window, r.require_transfer_unit], "before": fx.transfer},
    {"trigger": "close_notice", "source": "notice", "dest": "hr_approval", "prepare": r.require_window_over},
    {"trigger": "uphold", "source": "appeal_review", "dest": "hr_approval"},
    {"trigger": "overturn", "source": "appeal_review", "dest": "overturned", "prepare": r.require_comment},
    {"trigger": "approve", "source": "hr_approval", "dest": "final_approval"},
    {"trigger": "final_approve", "source": "final_approval", "dest": "effective", "after": fx.dismiss},
    {"trigger": "reject", "source": ["hr_approval", "final_approval"], "dest": "overturned",
     "prepare": r.require_comment},
    {"trigger": "withdraw", "source": _OPEN, "dest": "withdrawn"},
    {"trigger": "declare_conflict", "source": _DECIDED_BY_STAFF, "dest": None, "prepare": r.require_comment,
     "before": fx.declare_conflict},
    {"trigger": "reroute", "source": _DECIDED_BY_STAFF, "dest": None, "before": fx.reroute},
    {"trigger": "close", "source": _OPEN, "dest": "withdrawn", "prepare": r.require_comment},
]
