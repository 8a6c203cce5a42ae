"""What a transition's callbacks are given: the case, who acts, the request data and the policy."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .models import Case, Person
from .policy import Policy


@dataclass
class ActionContext:
    case: Case
    action: str
    actor: Person | None                 # None: the system (tick, automatic moves)
    policy: Policy
    today: dt.date
    data: dict[str, Any] = field(default_factory=dict)
    event_data: dict[str, Any] = field(default_factory=dict)   # what the audit event records
    reroute: bool = False                # the step's assignees must be computed again
    round_decision: bool = False         # taken by a round's decision (workflow/rounds.py)
    on_behalf_of: Person | None = None   # the assignee for whom a delegate acts (workflow/delegation.py)

    @property
    def signer(self) -> Person | None:
        """Whose signature the action gives: the principal when a delegate acts, else the actor."""
        return self.on_behalf_of or self.actor

    @property
    def comment(self) -> str:
        value = self.data.get("comment")
        return value.strip() if isinstance(value, str) else ""
