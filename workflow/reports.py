"""Read-only views over many cases: the inbox, the pipeline, and what a page of cases loads with it.

Lists load a page of rows with the related rows they show in a fixed number of queries (selectinload for
collections, joined loads for single rows), never one query per row: see docs/performance.md."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, exists, func, not_, select
from sqlalchemy.orm import joinedload, selectinload

from . import clock
from .models import db, Case, CaseAssignee, CaseScore, OrgUnit, PanelMember, Person, RoleAssignment


def case_row_options() -> tuple:
    """What a list row of cases shows: the employee and their unit, the acting unit, the assignees."""
    return (joinedload(Case.employee).joinedload(Person.unit), joinedload(Case.step_unit),
            selectinload(Case.assignments).options(joinedload(CaseAssignee.person),
                                                   joinedload(CaseAssignee.unit)))


def case_full_options() -> tuple:
    """Everything the JSON of a case reads (and the authority checks behind its `actions`): the row's
    relations plus who filed it, the events, scores, panel and declared conflicts, and the roles of the
    assignees (whether they still hold the role their step was given for)."""
    return (joinedload(Case.employee).joinedload(Person.unit), joinedload(Case.step_unit),
            joinedload(Case.filed_by), joinedload(Case.routing_from_unit),
            selectinload(Case.assignments).options(
                joinedload(CaseAssignee.unit),
                joinedload(CaseAssignee.person).selectinload(Person.roles).joinedload(RoleAssignment.unit)),
            selectinload(Case.events), selectinload(Case.scores).joinedload(CaseScore.scorer),
            selectinload(Case.panel).joinedload(PanelMember.person), selectinload(Case.conflicts))


def inbox_query(person: Person):
    """The open cases waiting for the person's action now, soonest deadline first. HR's duty to form the
    panel stops asking for action once a panel is assigned (HR may still replace members)."""
    waiting = select(CaseAssignee.case_id).where(
        CaseAssignee.person_id == person.id,
        not_(and_(CaseAssignee.duty == "assign_panel",
                  exists().where(PanelMember.case_id == CaseAssignee.case_id))))
    return (select(Case).where(Case.id.in_(waiting), Case.closed.is_(False))
            .order_by(Case.deadline.is_(None), Case.deadline, Case.id))


def assigned_query(person: Person):
    """The open cases on which the person holds any duty now (the inbox page: every part they play),
    soonest deadline first."""
    mine = select(CaseAssignee.case_id).where(CaseAssignee.person_id == person.id)
    return (select(Case).where(Case.id.in_(mine), Case.closed.is_(False))
            .order_by(Case.deadline.is_(None), Case.deadline, Case.id))


def duties_of(person: Person, case_ids: list[int]) -> dict[int, list[str]]:
    """The person's duties on each of the given cases, in one query."""
    duties: dict[int, list[str]] = defaultdict(list)
    if case_ids:
        for case_id, duty in db.session.execute(
                select(CaseAssignee.case_id, CaseAssignee.duty)
                .where(CaseAssignee.person_id == person.id, CaseAssignee.case_id.in_(case_ids))
                .order_by(CaseAssignee.case_id, CaseAssignee.duty)):
            duties[case_id].append(duty)
    return duties


def _in_subtree(q, unit: OrgUnit):
    return (q.join(Person, Case.employee_id == Person.id).join(OrgUnit, Person.unit_id == OrgUnit.id)
            .where(OrgUnit.path.startswith(unit.path)))


def overdue_query(unit: OrgUnit, kind: str | None = None, today: dt.date | None = None):
    """The open cases of the unit's subtree past their step's deadline, the oldest deadline first."""
    q = _in_subtree(select(Case), unit).where(Case.closed.is_(False),
                                              Case.deadline < (today or clock.today()))
    if kind:
        q = q.where(Case.kind == kind)
    return q.order_by(Case.deadline, Case.id)


def pipeline(unit: OrgUnit, kind: str | None = None, today: dt.date | None = None) -> dict:
    """Counts by state and by target level of the cases whose employee is in the unit's subtree, and the
    open ones past their step's deadline. The database counts (GROUP BY); no case row is loaded."""
    today = today or clock.today()
    q = _in_subtree(select(Case.state, Case.target_level, func.count()), unit)
    if kind:
        q = q.where(Case.kind == kind)
    by_state: dict[str, int] = defaultdict(int)
    by_level: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for state, level, n in db.session.execute(q.group_by(Case.state, Case.target_level)
                                              .order_by(Case.state, Case.target_level)):
        by_state[state] += n
        by_level[level or "-"][state] += n
    overdue = list(db.session.scalars(overdue_query(unit, kind, today).with_only_columns(Case.id)
                                      .order_by(None).order_by(Case.id)))
    return {"unit": unit.code, "by_state": dict(by_state),
            "by_level": {lv: dict(states) for lv, states in by_level.items()}, "overdue": overdue}
