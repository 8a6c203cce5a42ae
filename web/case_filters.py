"""The filters of a case list (the page /cases/ and GET /api/v1/cases), read and checked in one place.

`kind`, `state`, `level` (target level), `unit` (a unit code: the cases of the people in its subtree),
`direct` (with `unit`: only the people directly in the unit, not its sub-units) and `overdue` (open cases
past their step's deadline). The HR dashboard links each of its counts to the list filtered this way. A bad
value is a 400 that names the parameter and what it may be; an unknown unit is a 404, as elsewhere.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from workflow import clock
from workflow.errors import Invalid, NotFound
from workflow.machines import RULEBOOKS
from workflow.models import db, Case, OrgUnit, Person
from workflow.policy import Policy

FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "": False}


@dataclass(frozen=True)
class CaseFilters:
    kind: str = ""
    state: str = ""
    level: str = ""
    unit: OrgUnit | None = None
    direct: bool = False
    overdue: bool = False

    def args(self) -> dict[str, str]:
        """The filters as query arguments (for links to other pages of the list), the empty ones left out."""
        out = {"kind": self.kind, "state": self.state, "level": self.level,
               "unit": self.unit.code if self.unit is not None else "",
               "direct": "1" if self.direct else "", "overdue": "1" if self.overdue else ""}
        return {k: v for k, v in out.items() if v}


def _flag(args, name: str) -> bool:
    value = args.get(name) or ""
    if value not in FLAGS:
        raise Invalid(_("%(name)s must be 1 or 0, not '%(value)s'", name=name, value=value[:40]), field=name)
    return FLAGS[value]


def parse(args, policy: Policy | None) -> CaseFilters:
    """The filters of a request's query arguments, checked: Invalid (400) naming the bad one, NotFound (404)
    for a unit code that names no unit."""
    kind, state, level, code = ((args.get(k) or "").strip() for k in ("kind", "state", "level", "unit"))
    if kind and kind not in RULEBOOKS:
        raise Invalid(_("kind: no case kind '%(value)s' (kinds: %(known)s)", value=kind[:40],
                        known=", ".join(RULEBOOKS)), field="kind")
    states = list(dict.fromkeys(s for k, rb in RULEBOOKS.items() if k == kind or not kind for s in rb.states))
    if state and state not in states:
        raise Invalid(_("state: no state '%(value)s' (states: %(known)s)", value=state[:40],
                        known=", ".join(states)), field="state")
    levels = list(policy.level_ids) if policy is not None else []
    if level and level not in levels:
        raise Invalid(_("level: no level '%(value)s' on the ladder (levels: %(known)s)", value=level[:40],
                        known=", ".join(levels)), field="level")
    unit = None
    if code:
        unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if unit is None:
            raise NotFound(_("no unit '%(code)s'", code=code[:64]))
    direct, overdue = _flag(args, "direct"), _flag(args, "overdue")
    if direct and unit is None:
        raise Invalid(_("direct needs a unit: the people directly in which unit?"), field="direct")
    return CaseFilters(kind, state, level, unit, direct, overdue)


def apply(q, f: CaseFilters, today: dt.date | None = None):
    """The query of cases narrowed by the filters."""
    if f.kind:
        q = q.where(Case.kind == f.kind)
    if f.state:
        q = q.where(Case.state == f.state)
    if f.level:
        q = q.where(Case.target_level == f.level)
    if f.unit is not None:
        people = select(Person.id)
        if f.direct:
            people = people.where(Person.unit_id == f.unit.id)
        else:
            people = people.join(OrgUnit, Person.unit_id == OrgUnit.id).where(OrgUnit.path.startswith(f.unit.path))
        q = q.where(Case.employee_id.in_(people))
    if f.overdue:
        q = q.where(Case.closed.is_(False), Case.deadline < (today or clock.today()))
    return q
