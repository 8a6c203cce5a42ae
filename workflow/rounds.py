"""晋级周期与名额 — promotion rounds and their quotas.

HR at a unit opens a round for a period and some target levels; the round lists who is eligible, takes
applications between its opening and closing dates, and is decided at once: per target level, highest
first, its cases in HR approval are ranked by composite (the policy's tie-break) and approved up to the
level's quota and never below the minimum composite; the rest are not selected. Each case's decision goes
through `engine.fire`, one audit event per case; the round's own changes are events of its "round:ID"
chain. Functions here flush, never commit: the caller commits once.

Quotas (DOMAIN.md 11): for a capped level L,
    quota(L) = max(0, floor(cap(L) · headcount) − holders(L) + leaving(L))
where headcount counts the active managers (people with a grade, not in probation) in the round's scope,
holders(L) those who held L when the round opened or came to it since other than through this round,
and leaving(L) those who left L in the scope since the round opened (promoted up, demoted, dismissed),
with this round's approved promotions out of L. A level without a cap has no quota, only the minimum.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from . import audit, authority, clock, engine, policy as policy_mod, rules
from .errors import Conflict, Forbidden, Invalid, Refused
from .i18n import _l
from .models import db, MAX_ID, Case, GradeHistory, OrgUnit, Person, Round, RoundLevel, Score
from .policy import Policy

BEFORE_HR_APPROVAL = ("submitted", "qualification_review", "returned", "panel_scoring")
PERIOD_MAX, TITLE_MAX = 20, 200


class StaleRound(Conflict):
    """The round row changed under us (another transaction committed first)."""


def policy_of(rnd: Round) -> Policy:
    """The policy version the round was opened under: its ratios, minimum and tie-break."""
    return policy_mod.from_stored(rnd.policy_version.content)


def _flush() -> None:
    try:
        db.session.flush()
    except StaleDataError:
        raise StaleRound("another change to this round came first; reload it") from None


def _date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise Invalid(_l("%(field)s must be a date YYYY-MM-DD", field=field), field=field)


def _level_of(grade: str | None) -> str | None:
    return grade.rpartition("-")[0] or grade if grade else None


def _capacity(actor: Person, rnd_unit: OrgUnit) -> tuple[str, str]:
    ra = authority.hr_assignment_over(actor, rnd_unit)
    return "hr", ra.unit.code


# --- opening -----------------------------------------------------------------------------------------

def open_round(actor: Person, unit: OrgUnit, period: Any, title: Any, opens_on: Any, closes_on: Any,
               levels: Any, today: dt.date | None = None) -> Round:
    """Open a round at `unit` for `period` and the target `levels`. HR at the unit or above opens it; the
    unit must be at the org level the policy names for each level's HR approval; at most one round per
    unit, period and level."""
    today = today or clock.today()
    allowed = authority.can_manage_round(actor, unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    pv, pol = engine.active_policy()
    if not isinstance(period, str) or not period.strip():
        raise Invalid(_l("period must be a text such as '2026'"), field="period")
    period = period.strip()
    if len(period) > PERIOD_MAX:
        raise Invalid(_l("period must have at most %(max)s characters", max=PERIOD_MAX), field="period")
    if title is None or (isinstance(title, str) and not title.strip()):
        title = period
    if not isinstance(title, str) or len(title.strip()) > TITLE_MAX:
        raise Invalid(_l("title must be a text of at most %(max)s characters", max=TITLE_MAX), field="title")
    opens_on, closes_on = _date(opens_on, "opens_on"), _date(closes_on, "closes_on")
    if not isinstance(levels, list) or not levels or not all(isinstance(lv, str) for lv in levels):
        raise Invalid(_l("levels must be a non-empty list of level ids"), field="levels")
    if len(set(levels)) != len(levels):
        raise Invalid(_l("levels lists a level twice"), field="levels")
    if opens_on > closes_on:
        raise Refused(_l("the round cannot close (%(closes)s) before it opens (%(opens)s)", closes=closes_on,
                         opens=opens_on), field="closes_on")
    if closes_on < today:
        raise Refused(_l("the round would close in the past (%(closes)s)", closes=closes_on), field="closes_on")
    unknown = [lv for lv in levels if lv not in pol.level_ids]
    if unknown:
        raise Refused(_l("unknown level(s) %(unknown)s (levels: %(levels)s)", unknown=", ".join(unknown),
                         levels=", ".join(pol.level_ids)), field="levels")
    for lv in levels:
        if not pol.has_panel(lv):
            raise Refused(_l("promotions to %(level)s skip the panel, so there is no composite to rank a round by; "
                             "they are decided one by one", level=lv), field="levels")
        named = pol.step_org_level(lv, "hr_approval")
        if unit.level != named:
            raise Refused(_l("HR approval for %(level)s is at the %(named)s level, so its rounds are opened at a "
                             "%(named)s; %(unit)s is a %(unit_level)s", level=lv, named=named, unit=unit.code,
                             unit_level=unit.level), field="levels")
    taken = db.session.execute(select(RoundLevel.level, RoundLevel.round_id).where(
        RoundLevel.unit_id == unit.id, RoundLevel.period == period, RoundLevel.level.in_(levels))).first()
    if taken:
        raise Refused(_l("round %(round)s already covers %(level)s at %(unit)s for %(period)s", round=taken.round_id,
                         level=taken.level, unit=unit.code, period=period), field="levels", round=taken.round_id)
    ordered = sorted(levels, key=pol.level_index)
    rnd = Round(unit=unit, period=period, title=title.strip(), opens_on=opens_on, closes_on=closes_on,
                state="open", min_composite=pol.round_min_composite, policy_version=pv, created_by=actor,
                created_at=clock.now(), version=1)
    for lv in ordered:
        rnd.level_rows.append(RoundLevel(unit_id=unit.id, period=period, level=lv,
                                         position=pol.level_index(lv)))
    db.session.add(rnd)
    try:
        db.session.flush()
    except IntegrityError:
        raise Refused(_l("another round for %(levels)s at %(unit)s for %(period)s was opened at the same moment",
                         levels=", ".join(ordered), unit=unit.code, period=period), field="levels") from None
    role, code = _capacity(actor, unit)
    audit.append(rnd, action="open", actor=actor, role=role, unit=code, from_state=None, to_state="open",
                 data={"period": period, "levels": ordered, "opens_on": opens_on.isoformat(),
                       "closes_on": closes_on.isoformat(), "min_composite": rnd.min_composite})
    _flush()
    return rnd


def round_for_application(ref: Any, employee: Person, level: str, exceptional: bool, today: dt.date) -> Round:
    """The round a promotion is filed into, locked against a concurrent close or decision; refused unless the
    round is open, today is inside its window, the employee is in its scope and the level is one of its."""
    if isinstance(ref, Round):
        ref = ref.id
    if isinstance(ref, bool) or not isinstance(ref, int):
        raise Invalid(_l("round must be a round id"), field="round")
    if not 1 <= ref <= MAX_ID:
        raise Refused(_l("no round %(round)s", round=ref), field="round")
    rnd = db.session.scalar(select(Round).where(Round.id == ref).with_for_update()
                            .execution_options(populate_existing=True))
    if rnd is None:
        raise Refused(_l("no round %(round)s", round=ref), field="round")
    if rnd.state != "open":
        raise Refused(_l("round %(round)s is %(state)s: it takes no more applications", round=rnd.id,
                         state=rnd.state), field="round")
    if not rnd.opens_on <= today <= rnd.closes_on:
        raise Refused(_l("round %(round)s takes applications from %(opens)s to %(closes)s", round=rnd.id,
                         opens=rnd.opens_on, closes=rnd.closes_on), field="round")
    if not rnd.unit.contains(employee.unit):
        raise Refused(_l("%(username)s is outside the scope of round %(round)s (%(unit)s)",
                         username=employee.username, round=rnd.id, unit=rnd.unit.code), field="round")
    if level not in rnd.levels:
        raise Refused(_l("round %(round)s is for %(levels)s, not %(level)s", round=rnd.id,
                         levels=", ".join(rnd.levels), level=level), field="round")
    if exceptional:
        raise Refused(_l("an exceptional promotion is decided on its own, not in a round"), field="exceptional")
    return rnd


def open_rounds_for(employee: Person, today: dt.date | None = None) -> list[Round]:
    """The rounds the employee may apply in today: open, inside their window, covering the employee's unit."""
    today = today or clock.today()
    ancestors = [u.id for u in employee.unit.ancestors()]
    return list(db.session.scalars(select(Round).where(
        Round.state == "open", Round.opens_on <= today, Round.closes_on >= today,
        Round.unit_id.in_(ancestors)).order_by(Round.closes_on, Round.id)))


# --- closing -----------------------------------------------------------------------------------------

def _check_version(rnd: Round, expected_version: Any) -> None:
    if expected_version is None:
        return
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise Invalid(_l("version must be an integer"), field="version")
    if expected_version != rnd.version:
        raise Conflict(_l("the round has changed since version %(seen)s (now %(now)s); reload it",
                          seen=expected_version, now=rnd.version), version=rnd.version)


def close_round(rnd: Round, actor: Person, expected_version: Any = None) -> Round:
    """Stop taking applications (open → closed). The cases already filed go on to the decision."""
    if rnd.state != "open":
        raise Conflict(_l("round %(round)s is %(state)s; only an open round can be closed", round=rnd.id,
                          state=rnd.state), state=rnd.state)
    allowed = authority.can_manage_round(actor, rnd.unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    _check_version(rnd, expected_version)
    rnd.state, rnd.closed_at = "closed", clock.now()
    role, code = _capacity(actor, rnd.unit)
    audit.append(rnd, action="close", actor=actor, role=role, unit=code, from_state="open", to_state="closed")
    _flush()
    return rnd


# --- quotas ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Quota:
    level: str
    cap: float | None
    target: float | None
    headcount: int
    holders: int
    leaving: int
    freed_by_demotions: int
    min_composite: float | None
    since: dt.date

    @property
    def places(self) -> int | None:
        """floor(cap · headcount), exactly (0.29 · 100 is 29, not 28)."""
        return None if self.cap is None else math.floor(Decimal(str(self.cap)) * self.headcount)

    @property
    def quota(self) -> int | None:
        return None if self.cap is None else max(0, self.places - self.holders + self.leaving)

    def explanation(self) -> str:
        minimum = (f"nobody below a composite of {self.min_composite:g} is promoted"
                   if self.min_composite is not None else "there is no minimum composite")
        if self.cap is None:
            target = f" (a target of {self.target * 100:g}%, shown only)" if self.target is not None else ""
            return f"{self.level} has no cap{target}, so no quota: {minimum}."
        return (f"cap {self.cap * 100:g}% of {self.headcount} managers = {self.places}; {self.holders} held "
                f"{self.level} at the opening or came since; {self.leaving} left it since {self.since} "
                f"({self.freed_by_demotions} by demotion or dismissal): quota = max(0, {self.places} − "
                f"{self.holders} + {self.leaving}) = {self.quota}; {minimum}.")

    def to_json(self) -> dict[str, Any]:
        return {"cap": self.cap, "target": self.target, "headcount": self.headcount, "places": self.places,
                "holders": self.holders, "leaving": self.leaving,
                "freed_by_demotions": self.freed_by_demotions, "quota": self.quota,
                "explanation": self.explanation()}


def _scope(unit: OrgUnit):
    """People whose unit is in the unit's subtree."""
    return Person.unit_id.in_(select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path)))


def headcount(unit: OrgUnit) -> int:
    """Active managers (a ladder grade, not in probation) in the unit's subtree; leave does not matter."""
    return db.session.scalar(select(func.count()).select_from(Person).where(
        _scope(unit), Person.status == "active", Person.level.is_not(None))) or 0


def _dismissal_days(person_ids: list[int]) -> dict[int, list[dt.date]]:
    """When each person's effective dismissal took effect (the dismissal case tells), in one query."""
    days: dict[int, list[dt.date]] = defaultdict(list)
    if person_ids:
        for case in db.session.scalars(select(Case).where(
                Case.employee_id.in_(person_ids), Case.kind == "dismissal", Case.state == "effective")):
            days[case.employee_id].append(case.effective_on or (case.decided_at or case.updated_at).date())
    return days


def quotas(rnd: Round) -> dict[str, Quota]:
    """The quota arithmetic of each of the round's levels, as the data stands now."""
    return quotas_of([rnd])[rnd.id]


def quotas_of(rnds: list[Round]) -> dict[int, dict[str, Quota]]:
    """`quotas` of several rounds (a page of the list) by round id: the queries go per unit, not per round."""
    by_unit: dict[int, list[Round]] = defaultdict(list)
    for rnd in rnds:
        by_unit[rnd.unit_id].append(rnd)
    mine: dict[int, list[Case]] = defaultdict(list)
    if rnds:
        for case in db.session.scalars(select(Case).where(Case.round_id.in_([r.id for r in rnds]))
                                       .options(joinedload(Case.employee)).order_by(Case.id)):
            mine[case.round_id].append(case)
    out: dict[int, dict[str, Quota]] = {}
    for group in by_unit.values():
        unit = group[0].unit
        levels = sorted({lv for rnd in group for lv in rnd.levels})
        # Who left a level in the scope since the earliest opening: grade history, and dismissals.
        history = db.session.execute(
            select(GradeHistory.person_id, GradeHistory.from_grade, GradeHistory.to_grade, Person.level,
                   Person.status, GradeHistory.effective_on).join(Person, GradeHistory.person_id == Person.id)
            .where(_scope(unit), GradeHistory.effective_on >= min(rnd.opens_on for rnd in group))
            .order_by(GradeHistory.effective_on, GradeHistory.id)).all()
        dismissed = list(db.session.scalars(select(Person).where(_scope(unit), Person.status == "dismissed",
                                                                 Person.level.in_(levels))))
        dismissed_on = _dismissal_days([p.id for p in dismissed])
        holding = dict(db.session.execute(
            select(Person.level, func.count()).where(_scope(unit), Person.status == "active",
                                                     Person.level.in_(levels)).group_by(Person.level)).all())
        hc = headcount(unit)
        for rnd in group:
            out[rnd.id] = _quotas(rnd, hc, [row for row in history if row.effective_on >= rnd.opens_on],
                                  dismissed, dismissed_on, holding, mine[rnd.id])
    return out


def _quotas(rnd: Round, hc: int, history, dismissed: list[Person], dismissed_on: dict[int, list[dt.date]],
            holding: dict[str, int], mine: list[Case]) -> dict[str, Quota]:
    pol = policy_of(rnd)
    since = rnd.opens_on
    left: dict[str, dict[int, str]] = defaultdict(dict)          # level -> person id -> promotion | demotion
    for row in history:
        src, dst = _level_of(row.from_grade), _level_of(row.to_grade)
        if src is None or src == dst or (row.level == src and row.status == "active"):
            continue
        up = dst in pol.level_ids and src in pol.level_ids and pol.level_index(dst) > pol.level_index(src)
        left[src][row.person_id] = "promotion" if up else "demotion"
    for person in dismissed:
        if (person.level in rnd.levels and person.id not in left[person.level]
                and any(day >= since for day in dismissed_on.get(person.id, ()))):
            left[person.level][person.id] = "dismissal"
    out = {}
    for level in rnd.levels:
        ratio = pol.ratios.get(level)
        current = holding.get(level, 0)
        # This round's own promotions into the level do not take its places; its approved promotions
        # out of the level that are not effective yet free them already.
        arrived = sum(1 for c in mine if c.state == "effective" and c.target_level == level
                      and c.from_level != level and c.employee.level == level
                      and c.employee.status == "active")
        pending_out = sum(1 for c in mine if c.state == "approved" and c.from_level == level
                          and c.target_level != level)
        gone = left.get(level, {})
        out[level] = Quota(
            level=level, cap=ratio.share if ratio and ratio.kind == "cap" else None,
            target=ratio.share if ratio and ratio.kind == "target" else None, headcount=hc,
            holders=current + len(gone) - arrived, leaving=len(gone) + pending_out,
            freed_by_demotions=sum(1 for why in gone.values() if why != "promotion"),
            min_composite=rnd.min_composite, since=since)
    return out


# --- eligible people ----------------------------------------------------------------------------------

def eligible(rnd: Round) -> dict[str, list[Person]]:
    """Per target level, the active managers in the scope whose next normal grade is at that level and who
    pass its eligibility rules as of the round's opening."""
    pol = policy_of(rnd)
    out: dict[str, list[Person]] = {lv: [] for lv in rnd.levels}
    people = db.session.scalars(select(Person).where(_scope(rnd.unit), Person.status == "active",
                                                     Person.level.is_not(None)).order_by(Person.username))
    for person in people:
        if person.level not in pol.level_ids:
            continue
        nxt = pol.next_grades(person.level, person.tier)
        if not nxt or nxt[0][0] not in out:
            continue
        level = nxt[0][0]
        if not rules.failed_rules(rules.evaluate(person, pol, level, rnd.opens_on)):
            out[level].append(person)
    return out


# --- the decision ------------------------------------------------------------------------------------

def sort_key(case: Case, keys: tuple[str, ...], as_of: dt.date) -> tuple:
    """The ranking key of a candidate: better first, by the policy's tie-break keys, then the case id."""
    parts: list[Any] = []
    for key in keys:
        if key == "composite":
            parts.append((case.composite is None, -(case.composite or 0.0)))
        elif key == "annual_performance":
            parts.append((case.annual_performance is None, -(case.annual_performance or 0.0)))
        elif key == "months_at_grade":
            since = case.employee.grade_since
            parts.append((since is None, -rules.whole_months(since, as_of)))
        elif key == "applied_at":
            parts.append(case.created_at)
        elif key == "awards":
            best = _best_award(case.employee, as_of.year - 1)
            parts.append((best is None, -(best or 0.0)))
    parts.append(case.id)
    return tuple(parts)


def _best_award(person: Person, year: int) -> float | None:
    """The highest `award` score (e.g. 1 city, 2 provincial) whose period ends in the year, if any."""
    return db.session.scalar(select(func.max(Score.value)).where(
        Score.person_id == person.id, Score.kind == "award", Score.period_end >= dt.date(year, 1, 1),
        Score.period_end <= dt.date(year, 12, 31)))


def rank(cases: list[Case], pol: Policy, as_of: dt.date) -> list[Case]:
    return sorted(cases, key=lambda c: sort_key(c, pol.tie_break, as_of))


def cases_of(rnd: Round) -> list[Case]:
    """The round's cases, read afresh (a case filed in this session may not be in `rnd.cases` yet)."""
    return list(db.session.scalars(select(Case).where(Case.round_id == rnd.id).order_by(Case.id)))


def pending_cases(rnd: Round) -> list[Case]:
    """The round's cases that have not reached HR approval yet (the decision waits for them)."""
    return [c for c in cases_of(rnd) if c.state in BEFORE_HR_APPROVAL]


def decide_round(rnd: Round, actor: Person, expected_version: Any = None,
                 today: dt.date | None = None) -> Round:
    """Decide the round: per target level, highest first, rank its cases in HR approval and approve up to
    the quota, never below the minimum composite; not_select the rest. One event per case; the round moves
    to `decided` with its quotas and results. Refused (409) while a case is still before HR approval."""
    today = today or clock.today()
    if rnd.state == "decided":
        raise Conflict(_l("round %(round)s is already decided", round=rnd.id), state=rnd.state)
    waiting = pending_cases(rnd)
    if waiting:
        ids = [c.id for c in waiting]
        raise Conflict(_l("round %(round)s still has cases before HR approval: %(cases)s", round=rnd.id,
                          cases=", ".join(map(str, ids))), state=rnd.state, cases=ids)
    allowed = authority.can_manage_round(actor, rnd.unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    _check_version(rnd, expected_version)
    pol = policy_of(rnd)
    used: dict[str, Any] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    for level in sorted(rnd.levels, key=pol.level_index, reverse=True):
        quota = quotas(rnd)[level]           # afresh: the levels above may have freed places
        used[level] = quota.to_json()
        places = quota.quota
        ranked = rank([c for c in cases_of(rnd) if c.state == "hr_approval" and c.target_level == level], pol,
                      rnd.opens_on)
        rows = []
        for i, case in enumerate(ranked, start=1):
            entering = case.from_level != level      # a tier step inside the level takes no place
            minimum = rnd.min_composite
            if minimum is not None and (case.composite is None or case.composite < minimum):
                action, why = "not_select", f"composite {case.composite} is below the minimum {minimum:g}"
            elif places is not None and entering and places <= 0:
                action, why = "not_select", f"outside the quota of {quota.quota}"
            else:
                action = "approve"
                why = ("no quota: the level has no cap" if places is None else
                       "a tier step inside the level takes no place" if not entering else
                       f"within the quota of {quota.quota}")
                if places is not None and entering:
                    places -= 1
            comment = f"round {rnd.id} ({rnd.period}): rank {i} of {len(ranked)} for {level}; {why}"
            engine.fire(case, action, actor, {"comment": comment}, today=today, round_decision=True)
            rows.append({"username": case.employee.username, "case": case.id, "rank": i,
                         "composite": case.composite,
                         "decision": "promoted" if action == "approve" else "not_selected"})
        results[level] = rows
    ordered = {lv: results[lv] for lv in rnd.levels}
    from_state = rnd.state
    rnd.state, rnd.decided_at = "decided", clock.now()
    rnd.closed_at = rnd.closed_at or rnd.decided_at
    rnd.quotas = {lv: used[lv] for lv in rnd.levels}
    rnd.results = ordered
    role, code = _capacity(actor, rnd.unit)
    audit.append(rnd, action="decide", actor=actor, role=role, unit=code, from_state=from_state,
                 to_state="decided", data={"quotas": {lv: q["quota"] for lv, q in rnd.quotas.items()},
                                           "results": ordered})
    _flush()
    return rnd
