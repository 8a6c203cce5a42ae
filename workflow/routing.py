"""The authority matrix turned into people: which unit and which role-holders act on a step now.

Walk up from the applicant's unit to the nearest ancestor at (or above) the org level the policy names
for the step; if nobody there can act (vacancy, or only the applicant or a conflicted person holds the
role) the step goes one level up, and the case records why.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .errors import Refused
from .i18n import _l, term
from .models import db, OrgUnit, Person, RoleAssignment
from .policy import Policy


@dataclass(frozen=True)
class Route:
    unit: OrgUnit
    role: str
    people: tuple[Person, ...]
    reason: str | None              # vacancy, self, conflict, exceptional — or None
    named_unit: OrgUnit             # where the policy would have sent it


def holders(role: str, unit: OrgUnit) -> list[Person]:
    """People who hold `role` exactly at `unit` and can still work."""
    return list(db.session.scalars(
        select(Person).join(RoleAssignment, RoleAssignment.person_id == Person.id)
        .where(RoleAssignment.role == role, RoleAssignment.unit_id == unit.id, Person.status != "dismissed")
        .order_by(Person.username)))


def unit_at_or_above(unit: OrgUnit, org_level_index: int, policy: Policy) -> OrgUnit:
    """The unit's nearest ancestor (itself included) whose org level is at or above the given one; teams
    may sit directly under a region or HQ."""
    for u in unit.ancestors():
        if policy.org_level_index(u.level) <= org_level_index:
            return u
    return unit.ancestors()[-1]


def step_level_index(policy: Policy, target_level: str, step: str, exceptional: bool) -> int:
    idx = policy.org_level_index(policy.step_org_level(target_level, step))
    return max(0, idx - policy.exceptional_levels_up) if exceptional else idx


def route(policy: Policy, employee: Person, target_level: str, step: str, exceptional: bool,
          excluded: dict[int, str], escalations: int = 0) -> Route:
    """Route a promotion step by the authority matrix (see route_at)."""
    return route_at(policy, employee, policy.step_role(step, target_level),
                    step_level_index(policy, target_level, step, exceptional), excluded, step=step,
                    escalations=escalations, exceptional=exceptional)


def route_at(policy: Policy, employee: Person, role: str, level_index: int, excluded: dict[int, str], *,
             step: str, escalations: int = 0, exceptional: bool = False) -> Route:
    """Route a step to the holders of `role` at the employee's nearest ancestor at or above the org level
    `level_index`. `excluded` maps person id -> 'self' or 'conflict' for people who may not act;
    `escalations` sends it that many units further up (an overdue step). Raises Refused when nobody up to
    the root can act."""
    start = unit_at_or_above(employee.unit, level_index, policy)
    reason, named = None, start
    if escalations:
        chain = start.ancestors()
        if len(chain) <= escalations:
            raise Refused(_l("the step '%(step)s' is already at the top and cannot go higher",
                             step=term("state", step)), step=step)
        start, reason = chain[escalations], "escalated"
    for unit in start.ancestors():
        found = holders(role, unit)
        able = tuple(p for p in found if p.id not in excluded)
        if able:
            if reason is None and exceptional:
                reason = "exceptional"
            return Route(unit, role, able, reason, named)
        if reason is None:
            if not found:
                reason = "vacancy"
            elif all(excluded[p.id] == "self" for p in found):
                reason = "self"
            else:
                reason = "conflict"
    raise Refused(_l("nobody from %(unit)s up to the root holds '%(role)s' and may act on the step '%(step)s' "
                     "for %(username)s", unit=start.code, role=term("role", role), step=term("state", step),
                     username=employee.username), step=step, unit=start.code)


def route_above(unit: OrgUnit, roles: tuple[str, ...], excluded: dict[int, str], step: str) -> Route:
    """Holders of the first of `roles` one unit above `unit` (an appeal is heard above the one who decided),
    walking up on vacancy; at the root, the other holders there. When nobody up to the root holds it, the
    next role from the same unit up (e.g. HR when no other approver is left), recorded as a vacancy."""
    start = unit.parent or unit
    for role in roles:
        for u in start.ancestors():
            able = tuple(p for p in holders(role, u) if p.id not in excluded)
            if able:
                return Route(u, role, able, None if u is start and role == roles[0] else "vacancy", start)
    raise Refused(_l("nobody above %(unit)s holds %(roles)s and may hear the appeal", unit=unit.code,
                     roles=" / ".join(roles) if len(roles) > 1 else term("role", roles[0])), step=step)


def supervisors_of(employee: Person, excluded: dict[int, str] | None = None) -> tuple[OrgUnit, list[Person]] | None:
    """The direct supervisor(s): holders of `supervisor` at the employee's unit, else the nearest ancestor
    unit that has one. The employee never supervises themselves; excluded people are skipped."""
    excluded = excluded or {}
    for unit in employee.unit.ancestors():
        people = [p for p in holders("supervisor", unit) if p.id != employee.id and p.id not in excluded]
        if people:
            return unit, people
    return None


def holds_role_at_or_above(person: Person, role: str, unit: OrgUnit) -> RoleAssignment | None:
    """The person's assignment of `role` at `unit` or one of its ancestors, if any."""
    chain = {u.id for u in unit.ancestors()}
    for ra in person.roles:
        if ra.role == role and ra.unit_id in chain:
            return ra
    return None
