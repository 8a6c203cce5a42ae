"""见习期/试用期 — probation, as data. The supervisor evaluates; HR confirms, extends once, or fails it."""
from .. import attachments as att
from .. import effects as fx
from .. import rules as r

KIND = "probation"
CREATED = "in_probation"
STATES = ["in_probation", "evaluation", "hr_review", "confirmed", "failed", "withdrawn"]
TERMINAL = ["confirmed", "failed", "withdrawn"]

STEPS = {"in_probation": "in_probation", "hr_review": "hr_review"}   # routed by the policy's probation.steps
ROUTES = {"evaluation": "supervisor"}                                 # the direct supervisor fills the form

ACTORS = {
    "open_evaluation": "decide", "evaluate": "supervisor", "confirm": "decide", "extend": "decide",
    "fail": "decide", "declare_conflict": "any_assignee", "reroute": "system", "close": "system",
    "attach": "contributor",     # evidence for the evaluation: the trainee, the assignees, HR over the case
}
AUTOMATIC = []
SYSTEM_ALSO = ["open_evaluation", "reroute", "close"]
DECISIONS = ["evaluate", "confirm", "extend", "fail"]
VERSION_FREE = ["attach"]

_OPEN = ["in_probation", "evaluation", "hr_review"]

TRANSITIONS = [
    {"trigger": "open_evaluation", "source": "in_probation", "dest": "evaluation",
     "prepare": r.require_evaluation_window},
    {"trigger": "evaluate", "source": "evaluation", "dest": "hr_review",
     "prepare": [r.require_score, r.require_evaluation_form], "before": fx.record_evaluation},
    {"trigger": "confirm", "source": "hr_review", "dest": "confirmed", "after": fx.confirm_probation},
    {"trigger": "extend", "source": "hr_review", "dest": "in_probation", "prepare": r.require_extension,
     "before": fx.extend_probation},
    {"trigger": "fail", "source": "hr_review", "dest": "failed",
     "prepare": [r.require_comment, r.require_fail_outcome], "after": fx.fail_probation},
    {"trigger": "declare_conflict", "source": _OPEN, "dest": None, "prepare": r.require_comment,
     "before": fx.declare_conflict},
    {"trigger": "reroute", "source": _OPEN, "dest": None, "before": fx.reroute},
    {"trigger": "close", "source": _OPEN, "dest": "withdrawn", "prepare": r.require_comment},
    {"trigger": "attach", "source": _OPEN, "dest": None, "prepare": att.require_file,
     "before": att.record_attachment},
]
