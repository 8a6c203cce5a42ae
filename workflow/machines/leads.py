"""跟单客户 — a sales lead, as data. Not a case kind (no rulebook in RULEBOOKS): workflow/leads.py fires it.

A lead is `open` until its deadline (the class's days from assignment); past it `tick` flags it `overdue`
and the sales manager may reassign it, which opens it again with a new deadline. Reclassifying recomputes
the deadline from the day it was assigned: an overdue lead opens again only if the new deadline is not
past. Winning or losing (with the reason) closes it.
"""
from transitions import Machine

KIND = "lead"
CREATED = "open"
STATES = ["open", "overdue", "won", "lost"]
TERMINAL = ["won", "lost"]

# Who takes each action: the system (tick), whoever may reassign the lead (the sales manager, HR) or
# whoever may follow it (its owner, or whoever may reassign it) — workflow/authority.py.
ACTORS = {"flag_overdue": "system", "reassign": "reassigner", "reclassify": "follower", "win": "follower",
          "lose": "follower"}
COMMENT_REQUIRED = ["lose"]

_LIVE = ["open", "overdue"]


def deadline_not_past(event) -> bool:
    """The deadline the action computed (ctx["deadline"]) is today or later."""
    ctx = event.kwargs["ctx"]
    return ctx["deadline"] >= ctx["today"]


TRANSITIONS = [
    {"trigger": "flag_overdue", "source": "open", "dest": "overdue"},
    {"trigger": "reassign", "source": _LIVE, "dest": "open"},
    {"trigger": "reclassify", "source": "open", "dest": "open"},
    {"trigger": "reclassify", "source": "overdue", "dest": "open", "conditions": deadline_not_past},
    {"trigger": "reclassify", "source": "overdue", "dest": "overdue"},
    {"trigger": "win", "source": _LIVE, "dest": "won"},
    {"trigger": "lose", "source": _LIVE, "dest": "lost"},
]

MACHINE = Machine(model=None, states=STATES, transitions=TRANSITIONS, initial=CREATED, auto_transitions=False,
                  send_event=True, queued=False, ignore_invalid_triggers=False)


def can_fire(state: str, action: str) -> bool:
    event = MACHINE.events.get(action)
    return event is not None and bool(event.transitions.get(state))
