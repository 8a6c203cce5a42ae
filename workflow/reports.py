"""Read-only views over many cases: the pipeline."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, exists, not_, select

from . import clock
from .models import db, Case, CaseAssignee, OrgUnit, PanelMember, Person


def inbox_query(person: Person):
    """The open cases waiting for the person's action now, soonest deadline first. HR's duty to form the
    panel stops asking for action once a panel is assigned (HR may still replace members)."""
    waiting = select(CaseAssignee.case_id).where(
        CaseAssignee.person_id == person.id,
        not_(and_(CaseAssignee.duty == "assign_panel",
                  exists().where(PanelMember.case_id == CaseAssignee.case_id))))
    return (select(Case).where(Case.id.in_(waiting), Case.closed.is_(False))
            .order_by(Case.deadline.is_(None), Case.deadline, Case.id))


def pipeline(unit: OrgUnit, kind: str | None = None, today: dt.date | None = None) -> dict:
    """Counts by state and by target level of the cases whose employee is in the unit's subtree, and the
    open ones past their step's deadline."""
    today = today or clock.today()
    q = (select(Case.id, Case.state, Case.target_level, Case.deadline, Case.closed)
         .join(Person, Case.employee_id == Person.id).join(OrgUnit, Person.unit_id == OrgUnit.id)
         .where(OrgUnit.path.startswith(unit.path)))
    if kind:
        q = q.where(Case.kind == kind)
    by_state: dict[str, int] = defaultdict(int)
    by_level: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    overdue = []
    for row in db.session.execute(q.order_by(Case.id)):
        by_state[row.state] += 1
        by_level[row.target_level or "-"][row.state] += 1
        if not row.closed and row.deadline and today > row.deadline:
            overdue.append(row.id)
    return {"unit": unit.code, "by_state": dict(by_state),
            "by_level": {lv: dict(states) for lv, states in by_level.items()}, "overdue": overdue}
