"""转办 and 抄送, common to every case kind: `hand_over` gives one's task on the step to another person who
may act on it by the authority matrix; `copy` lets someone read the case. Neither changes the state.
Guards and effects are in workflow/delegation.py; authority.can() decides who may take them."""
from types import SimpleNamespace

from .. import delegation as dg

ACTORS = {"hand_over": "hand_over", "copy": "copy"}
VERSION_FREE = ["copy"]       # a copy changes neither the state nor the assignees


def with_handover(module):
    """The machine module's data with `hand_over` (from every open state) and `copy` (from every state)."""
    open_states = [s for s in module.STATES if s not in module.TERMINAL]
    data = {k: getattr(module, k) for k in dir(module) if k.isupper()}
    data["ACTORS"] = {**module.ACTORS, **ACTORS}
    data["VERSION_FREE"] = [*module.VERSION_FREE, *VERSION_FREE]
    data["TRANSITIONS"] = [*module.TRANSITIONS,
                           {"trigger": "hand_over", "source": open_states, "dest": None,
                            "prepare": dg.require_hand_over, "before": dg.hand_over},
                           {"trigger": "copy", "source": list(module.STATES), "dest": None,
                            "prepare": dg.require_copy, "before": dg.copy}]
    return SimpleNamespace(**data)
