"""The rulebook of each case kind: a `transitions.Machine` built once from a machine module's data.

Machines are built with model=None and auto_transitions=False and fired with
`machine.events[action].trigger(case, ctx=...)`: no ORM object is ever added to a machine.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from types import ModuleType
from typing import Any

from transitions import Machine

from . import demotion, dismissal, idioms, probation, promotion
from .handover import with_handover


# Actions recorded on a case's chain that are no transition of its machine and leave its state as it is
# (催办, workflow/notify.urge).
SIDE_ACTIONS = frozenset({"urge"})


@dataclass(frozen=True)
class Rulebook:
    kind: str
    machine: Machine
    created: str
    states: tuple[str, ...]
    terminal: frozenset[str]
    steps: dict[str, str]
    actors: dict[str, str]
    automatic: tuple[str, ...]
    system_also: frozenset[str]
    decisions: frozenset[str]
    version_free: frozenset[str]
    transitions: tuple[dict, ...]
    available_when: dict[str, Callable[[Any], Any]]   # action -> predicate on the case, for listing it
    routes: dict[str, str]              # states routed to a person, not by the policy: applicant, supervisor, appeal
    round_actions: frozenset[str] = frozenset()   # taken on a round's cases by the round's decision
    round_only: frozenset[str] = frozenset()      # ... and only there
    appealed: frozenset[str] = frozenset()        # decisions an appeal is heard against, one org level up

    def actions(self) -> list[str]:
        return list(self.actors)

    def can_fire(self, state: str, action: str) -> bool:
        event = self.machine.events.get(action)
        return event is not None and bool(event.transitions.get(state))

    def path_problems(self, events, state: str) -> list[str]:
        """Why a case's events (in seq order) are not a path of this machine ending in `state`: each event
        after `create` must be a transition of its action from the state the previous one left, into a
        state the action can reach."""
        problems, at = [], None
        for ev in events:
            if ev.action == "create":
                if at is not None or ev.to_state != self.created:
                    problems.append(f"#{ev.seq} create must open the case in {self.created}")
            elif ev.from_state != at:
                problems.append(f"#{ev.seq} {ev.action} starts from {ev.from_state}, the case was {at}")
            elif ev.action in SIDE_ACTIONS and ev.to_state == at:
                pass
            elif not self.can_fire(at, ev.action):
                problems.append(f"#{ev.seq} {ev.action} is no transition from {at}")
            elif ev.to_state not in self.destinations(at, ev.action):
                problems.append(f"#{ev.seq} {ev.action} cannot lead from {at} to {ev.to_state}")
            at = ev.to_state
        if at != state:
            problems.append(f"the case is {state} but its events end in {at}")
        return problems

    def destinations(self, state: str, action: str) -> set[str]:
        event = self.machine.events.get(action)
        return {t.dest or state for t in event.transitions.get(state, [])} if event else set()

    def sources(self, action: str) -> list[str]:
        event = self.machine.events.get(action)
        return [s for s, ts in event.transitions.items() if ts] if event else []


def build(module: ModuleType) -> Rulebook:
    module = with_handover(module)   # 转办 and 抄送 on every kind
    # 加签, 退回 and committee votes (idioms.py) come first: a vote or an awaited signature is tried before
    # the kind's own decision that moves the case on.
    transitions = [*idioms.transitions(module.KIND), *module.TRANSITIONS]
    machine = Machine(model=None, states=module.STATES, transitions=transitions, initial=module.CREATED,
                      auto_transitions=False, send_event=True, queued=False, ignore_invalid_triggers=False)
    return Rulebook(
        kind=module.KIND, machine=machine, created=module.CREATED, states=tuple(module.STATES),
        terminal=frozenset(module.TERMINAL), steps=dict(module.STEPS),
        actors={**module.ACTORS, **idioms.actors(module.KIND)},
        automatic=tuple(module.AUTOMATIC), system_also=frozenset(module.SYSTEM_ALSO),
        decisions=frozenset(module.DECISIONS) | frozenset(idioms.decisions(module.KIND)),
        version_free=frozenset(module.VERSION_FREE),
        transitions=tuple(transitions), routes=dict(getattr(module, "ROUTES", {})),
        available_when=dict(getattr(module, "AVAILABLE_WHEN", {})),
        round_actions=frozenset(getattr(module, "ROUND_ACTIONS", ())),
        round_only=frozenset(getattr(module, "ROUND_ONLY", ())),
        appealed=frozenset(getattr(module, "APPEALED", ())),
    )


RULEBOOKS: dict[str, Rulebook] = {m.KIND: build(m) for m in (promotion, probation, demotion, dismissal)}


def rulebook(kind: str) -> Rulebook:
    return RULEBOOKS[kind]
