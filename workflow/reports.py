"""Read-only views over many cases: the inbox, the pipeline, and what a page of cases loads with it.

Lists load a page of rows with the related rows they show in a fixed number of queries (selectinload for
collections, joined loads for single rows), never one query per row: see docs/performance.md."""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import and_, case as sql_case, exists, func, literal, not_, or_, select
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import aliased, joinedload, selectinload

from . import clock, delegation
from .machines import RULEBOOKS
from .models import (db, Case, CaseAssignee, CaseCopy, CaseScore, Delegation, Event, OrgUnit, PanelMember,
                     Person, RoleAssignment)
from .models.attachments import Attachment
from .policy import Policy


def case_row_options() -> tuple:
    """What a list row of cases shows: the employee and their unit, the acting unit, the assignees."""
    return (joinedload(Case.employee).joinedload(Person.unit), joinedload(Case.step_unit),
            selectinload(Case.assignments).options(joinedload(CaseAssignee.person),
                                                   joinedload(CaseAssignee.unit)),
            _delegations_of_assignees(), selectinload(Case.copies))


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
            selectinload(Case.panel).joinedload(PanelMember.person), selectinload(Case.conflicts),
            _delegations_of_assignees(), selectinload(Case.copies).joinedload(CaseCopy.person),
            selectinload(Case.attachments).joinedload(Attachment.uploaded_by))


def _delegations_of_assignees():
    """The delegations the assignees gave (who may act on their behalf: workflow/delegation.py)."""
    return (selectinload(Case.assignments).joinedload(CaseAssignee.person)
            .selectinload(Person.delegations_given).joinedload(Delegation.delegate))


def inbox_query(person: Person):
    """The open cases waiting for the person's action now, soonest deadline first, with those of the people
    for whom they act (a delegation in force). HR's duty to form the panel stops asking for action once a
    panel is assigned (HR may still replace members)."""
    waiting = select(CaseAssignee.case_id).where(
        _own_or_delegated(person),
        not_(and_(CaseAssignee.duty == "assign_panel",
                  exists().where(PanelMember.case_id == CaseAssignee.case_id))))
    return (select(Case).where(Case.id.in_(waiting), Case.closed.is_(False))
            .order_by(Case.deadline.is_(None), Case.deadline, Case.id))


def assigned_query(person: Person):
    """The open cases on which the person holds any duty now (the inbox page: every part they play),
    soonest deadline first; and those of the people for whom they act."""
    mine = select(CaseAssignee.case_id).where(_own_or_delegated(person))
    return (select(Case).where(Case.id.in_(mine), Case.closed.is_(False))
            .order_by(Case.deadline.is_(None), Case.deadline, Case.id))


def _own_or_delegated(person: Person):
    """Assignee rows that are the person's, or a principal's whose duty the person takes now (代理)."""
    return or_(CaseAssignee.person_id == person.id,
               and_(CaseAssignee.person_id.in_(delegation.active_principal_ids(person)),
                    CaseAssignee.duty.in_(delegation.DELEGABLE_DUTIES)))


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


def pipeline(unit: OrgUnit, kind: str | None = None, today: dt.date | None = None,
             policy: Policy | None = None) -> dict:
    """The HR dashboard of the unit's subtree (the cases whose employee is in it), as JSON-ready data:
    counts by state, by target level and by child unit (`by_unit`: the unit's own code counts the people
    directly in it), the open cases past their step's deadline (`overdue`, ids; `overdue_steps`, with how
    late), the time spent per step (`steps`) and the promotion funnel (`funnel`), both over the last year
    (from `stats_since`), and the headcount by level against the policy's caps and targets (`headcount`). Every figure is counted by the database
    (GROUP BY, window functions): no case row is loaded, and the statements run do not grow with the cases."""
    today = today or clock.today()
    children = list(db.session.scalars(select(OrgUnit).where(OrgUnit.parent_id == unit.id)
                                       .order_by(OrgUnit.code)))
    # The child unit of each row is worked out in a subquery and grouped on there: PostgreSQL would not take
    # the same CASE in the GROUP BY as in the select list (its parameters are bound separately).
    q = _in_subtree(select(Case.state, Case.target_level, _bucket(unit, children).label("code")), unit)
    if kind:
        q = q.where(Case.kind == kind)
    rows = q.subquery()
    by_state: dict[str, int] = defaultdict(int)
    by_level: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_unit: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for state, level, code, n in db.session.execute(
            select(rows.c.state, rows.c.target_level, rows.c.code, func.count())
            .group_by(rows.c.state, rows.c.target_level, rows.c.code)):
        by_state[state] += n
        by_level[level or "-"][state] += n
        by_unit[code][level or "-"][state] += n
    overdue = list(db.session.scalars(overdue_query(unit, kind, today).with_only_columns(Case.id)
                                      .order_by(None).order_by(Case.id)))
    units = [{"code": u.code, "name": u.name, "level": u.level, "direct": False} for u in children]
    units.insert(0, {"code": unit.code, "name": unit.name, "level": unit.level, "direct": True})
    return {"unit": unit.code, "by_state": dict(sorted(by_state.items())),
            "by_level": {lv: dict(sorted(st.items())) for lv, st in sorted(by_level.items())},
            "overdue": overdue, "units": units,
            "by_unit": {code: {lv: dict(st) for lv, st in levels.items()} for code, levels in by_unit.items()},
            "overdue_steps": overdue_steps(unit, kind, today, policy),
            "steps": step_times(unit, kind, today, policy),
            "funnel": funnel(unit, today) if kind in (None, "promotion") else [],
            "stats_since": stats_since(today).date().isoformat(),
            "headcount": headcount(unit, children, policy)}


def _bucket(unit: OrgUnit, children: list[OrgUnit]):
    """The code of the child unit whose subtree holds the row's org unit, or the unit's own code for the
    people directly in it (joined as OrgUnit by `_in_subtree` and `headcount`)."""
    if not children:
        return literal(unit.code)
    return sql_case(*[(OrgUnit.path.startswith(c.path), c.code) for c in children], else_=unit.code)


# --- overdue steps -----------------------------------------------------------------------------------------

def working_days_between(start: dt.date, end: dt.date, holidays=frozenset()) -> int:
    """Working days after `start` up to and including `end` (0 when `end` is not after `start`): how many
    working days a step due on `start` is late on `end`."""
    if end <= start:
        return 0
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5 + sum(1 for i in range(1, rest + 1) if (start + dt.timedelta(days=i)).weekday() < 5)
    return count - sum(1 for h in holidays if start < h <= end and h.weekday() < 5)


def overdue_steps(unit: OrgUnit, kind: str | None = None, today: dt.date | None = None,
                  policy: Policy | None = None) -> list[dict]:
    """The open cases of the subtree past their step's deadline, the most late first: the case, its
    employee, kind and state (the step), the unit acting now, the deadline and how late it is (calendar
    and working days, the latter by the policy's calendar). One query."""
    today = today or clock.today()
    step_unit = aliased(OrgUnit)
    q = (overdue_query(unit, kind, today)
         .with_only_columns(Case.id, Case.kind, Case.state, Person.username, Person.name, step_unit.code,
                            Case.deadline)
         .outerjoin(step_unit, step_unit.id == Case.step_unit_id))
    holidays = policy.holidays if policy is not None else frozenset()
    return [{"case": cid, "kind": k, "state": state, "employee": username, "employee_name": name,
             "step_unit": code, "deadline": deadline.isoformat(), "days_late": (today - deadline).days,
             "working_days_late": working_days_between(deadline, today, holidays)}
            for cid, k, state, username, name, code, deadline in db.session.execute(q)]


# --- time per step -----------------------------------------------------------------------------------------

def _days(start, end):
    """The days (with fractions) from one timestamp to another, in the database's own arithmetic."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 86400.0
    return func.julianday(end) - func.julianday(start)


def _until(today: dt.date) -> dt.datetime:
    """Where the current steps' time stops: now, or the end of `today` when the clock is set to another day."""
    now = clock.now()
    return now if now.date() == today else dt.datetime.combine(today + dt.timedelta(days=1), dt.time())


# The period of the time per step and the funnel: the last year.
STATS_DAYS = 365


def stats_since(today: dt.date) -> dt.datetime:
    """Where the time per step and the funnel start counting: STATS_DAYS before now (`_until`)."""
    return _until(today) - dt.timedelta(days=STATS_DAYS)


def step_deadline_days(policy: Policy | None, kind: str, state: str) -> int | None:
    """The working days the policy gives a step of a case kind (None: no deadline, or no such step)."""
    if policy is None or kind not in RULEBOOKS:
        return None
    if kind == "promotion":
        step = policy.steps.get(RULEBOOKS[kind].steps.get(state, ""))
        return step.deadline_days if step is not None else None
    spec = policy.kinds.get(kind)
    step = spec.steps.get(state) if spec is not None else None
    return step.deadline_days if step is not None else None


def step_times(unit: OrgUnit, kind: str | None = None, today: dt.date | None = None,
               policy: Policy | None = None) -> list[dict]:
    """Per step (a case kind's state that is not terminal) of the subtree's cases: how many visits (a case
    entering the state, until it leaves it; a case that came back counts again), how many are still in it,
    the median and the longest time in days, and the case of the longest. Read from the audit events: a
    visit starts at the event that moved the case into the state and ends at the next event that moved it
    out; a current visit runs to now (`today`). Only the visits of the last STATS_DAYS days count: those
    still open and those that ended since (a dashboard shows how steps go now, not over the years; the cases
    untouched since are not read at all). Counted by the database: window functions over the events, the
    median by `percentile_cont` on PostgreSQL, as the mean of the middle one or two on SQLite."""
    today = today or clock.today()
    since = stats_since(today)
    changes = _in_subtree(select(
        Event.case_id, Case.kind, Event.to_state.label("state"), Event.at.label("entered"),
        func.lead(Event.at).over(partition_by=Event.case_id, order_by=Event.seq).label("left_at"))
        .select_from(Case), unit)
    changes = changes.join(Event, Event.case_id == Case.id).where(
        Event.to_state.is_not(None), or_(Event.from_state.is_(None), Event.from_state != Event.to_state),
        or_(Case.closed.is_(False), Case.updated_at >= since))
    if kind:
        changes = changes.where(Case.kind == kind)
    changes = changes.subquery()
    terminal = or_(*[and_(changes.c.kind == k, changes.c.state.in_(sorted(rb.terminal)))
                     for k, rb in RULEBOOKS.items()])
    raw = _days(changes.c.entered, func.coalesce(changes.c.left_at, _until(today)))
    # Each visit's days worked out once, in a subquery, not again in every sort below.
    visits = select(changes.c.kind, changes.c.state, changes.c.case_id,
                    sql_case((raw < 0, 0.0), else_=raw).label("days"),
                    sql_case((changes.c.left_at.is_(None), 1), else_=0).label("current")
                    ).where(not_(terminal), or_(changes.c.left_at.is_(None), changes.c.left_at >= since)
                            ).subquery()
    v = visits.c
    if db.session.get_bind().dialect.name == "postgresql":
        # Ordered-set aggregates: one sort per step, no window over every visit.
        median = func.percentile_cont(0.5).within_group(v.days)
        slowest_case = pg.array_agg(pg.aggregate_order_by(v.case_id, v.days.desc(), v.case_id))[1]
        q = select(v.kind, v.state, func.count(), func.sum(v.current), median, func.max(v.days), slowest_case)
    else:
        # SQLite has no percentile: the mean of the middle one or two by their rank within the step.
        part = (v.kind, v.state)
        ranked = select(
            *v, func.row_number().over(partition_by=part, order_by=(v.days, v.case_id)).label("up"),
            func.row_number().over(partition_by=part, order_by=(v.days.desc(), v.case_id)).label("down"),
            func.count().over(partition_by=part).label("n")).subquery()
        r = ranked.c
        middle = or_(r.up == (r.n + 1) // 2, r.up == (r.n + 2) // 2)
        q = select(r.kind, r.state, func.count(), func.sum(r.current), func.avg(sql_case((middle, r.days))),
                   func.max(r.days), func.max(sql_case((r.down == 1, r.case_id))))
        v = r
    rows = db.session.execute(q.group_by(v.kind, v.state))
    order = {key: i for i, key in enumerate((k, s) for k, rb in RULEBOOKS.items() for s in rb.states)}
    out = [{"kind": k, "state": state, "visits": n, "current": int(current or 0),
            "median_days": round(float(median), 1), "slowest_days": round(float(slowest), 1),
            "slowest_case": slowest_case, "deadline_days": step_deadline_days(policy, k, state)}
           for k, state, n, current, median, slowest, slowest_case in rows]
    return sorted(out, key=lambda r: (order.get((r["kind"], r["state"]), len(order)), r["kind"], r["state"]))


# --- the promotion funnel ----------------------------------------------------------------------------------

# How far a promotion got: the furthest of these stages any of its states reached.
FUNNEL_STAGES = ("filed", "qualified", "hr_approval", "approved", "effective")
FUNNEL_RANK = {"qualification_review": 1, "returned": 1, "appeal_review": 1, "panel_scoring": 2,
               "hr_approval": 3, "publicity": 4, "approved": 4, "effective": 5}


def funnel(unit: OrgUnit, today: dt.date | None = None) -> list[dict]:
    """The promotions of the subtree filed in the last STATS_DAYS days by the furthest stage each reached
    (from the audit events: filed, qualified, in HR approval, approved by HR, effective); a stage counts
    every case that reached it or a later one. A rejected, withdrawn or unselected case counts up to where
    it got."""
    rank = sql_case(FUNNEL_RANK, value=Event.to_state, else_=0)
    reached = (_in_subtree(select(Event.case_id, func.max(rank).label("reached")).select_from(Case), unit)
               .join(Event, Event.case_id == Case.id)
               .where(Case.kind == "promotion", Event.to_state.in_(list(FUNNEL_RANK)),
                      Case.created_at >= stats_since(today or clock.today()))
               .group_by(Event.case_id).subquery())
    counts = dict(db.session.execute(select(reached.c.reached, func.count()).group_by(reached.c.reached)).all())
    return [{"stage": stage, "cases": sum(n for r, n in counts.items() if r >= i)}
            for i, stage in enumerate(FUNNEL_STAGES, start=1)]


# --- headcount against caps and targets --------------------------------------------------------------------

def headcount(unit: OrgUnit, children: list[OrgUnit] | None = None, policy: Policy | None = None) -> dict:
    """Active managers (a ladder grade, not in probation: the rounds' headcount) by level, in the whole
    subtree (`total`) and per child unit (`by_unit`, the unit's own code for the people directly in it),
    each level with its share, the policy's cap or target share, the places the cap allows
    (floor(cap · headcount)) or the target's count, and whether the level exceeds its cap. Read only:
    nothing here is enforced (rounds enforce caps through their quotas)."""
    if children is None:
        children = list(db.session.scalars(select(OrgUnit).where(OrgUnit.parent_id == unit.id)
                                           .order_by(OrgUnit.code)))
    people = (select(_bucket(unit, children).label("code"), Person.level).select_from(Person)
              .join(OrgUnit, Person.unit_id == OrgUnit.id)
              .where(OrgUnit.path.startswith(unit.path), Person.status == "active", Person.level.is_not(None))
              .subquery())
    rows = db.session.execute(select(people.c.code, people.c.level, func.count())
                              .group_by(people.c.code, people.c.level))
    per_unit: dict[str, dict[str, int]] = defaultdict(dict)
    for code, level, n in rows:
        per_unit[code][level] = n
    ratios = policy.ratios if policy is not None else {}
    levels = [lv.id for lv in policy.ladder] if policy is not None else []
    levels += sorted({lv for counts in per_unit.values() for lv in counts} - set(levels))

    def figures(counts: dict[str, int]) -> dict:
        total = sum(counts.values())
        out = {}
        for lv in levels:
            n = counts.get(lv, 0)
            ratio = ratios.get(lv)
            cap = ratio.share if ratio is not None and ratio.kind == "cap" else None
            target = ratio.share if ratio is not None and ratio.kind == "target" else None
            places = math.floor(Decimal(str(cap)) * total) if cap is not None else None
            out[lv] = {"count": n, "share": round(n / total, 4) if total else None, "cap": cap,
                       "target": target, "places": places,
                       "target_count": round(Decimal(str(target)) * total) if target is not None else None,
                       "over_cap": places is not None and n > places}
        return {"headcount": total, "levels": out,
                "over_cap": [lv for lv, f in out.items() if f["over_cap"]]}

    total: dict[str, int] = defaultdict(int)
    for counts in per_unit.values():
        for lv, n in counts.items():
            total[lv] += n
    return {"levels": levels, "total": figures(total),
            "by_unit": {code: figures(counts) for code, counts in per_unit.items()}}
