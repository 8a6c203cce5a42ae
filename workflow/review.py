"""年度考核排名 — the annual review: rank the managers, find the bottom share, and act on absences and on
two consecutive demotions (DOMAIN.md sections 7 and 11).

`annual_review(unit, period, actor, dry_run)` looks at the active managers of the unit's subtree (people
with a grade of the ladder, status active: not in probation) and gives each one outcome, in this order:

- `exempt_leave`: under the policy's `min_worked_months` in the period, and the leave the policy exempts
  (maternity, sick, personal) is what takes them under it: not ranked, no case;
- `demote_absence`: under it because of other absence (absence of the other kinds alone leaves too few
  months): a demotion case, reason `absence`;
- `dismiss_consecutive`: demotions took effect in the period and in the one before: a dismissal case,
  reason `consecutive_demotions`;
- otherwise the person is ranked by the period's mean `performance` within the policy's ranking scope
  (the ancestor at its org level), among the ranked people of the same level there; ties share the better
  rank; rank > n − floor(p·n/100) is the bottom p% → `recompete`, a demotion case, reason `recompete`;
- `tier_up` / `tier_down` (级档浮动, where the policy sets `tier_moves`): among the ranked who do not
  re-compete, the top `up`% of the level (rank ≤ ceil(p·n/100)) move up one tier inside their level and the
  bottom `down`% one tier down, without a panel: the grade changes on the run, with a grade-history row and
  a `grade_change` event on the person's chain; time at grade keeps counting (the level did not change).
  Nobody leaves the level this way: the top tier does not go up, the first does not go down;
- everyone else `none`.

Worked months = 12 − absent days in the period / 30, each absence clipped to the period and a day counted
once. A run is stored (one per unit and period): the second answers the first's outcomes and opens nothing.
A dry run answers the same outcomes and writes nothing. Functions here flush, never commit.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.attributes import flag_modified

from . import authority, clock, directory, engine, policy as policy_mod, rules
from .errors import Forbidden, Invalid, Refused
from .i18n import _l
from .models import db, Absence, Case, GradeHistory, OrgUnit, Person, Review, Score
from .policy import AnnualReview, Policy

OUTCOMES = ("recompete", "demote_absence", "exempt_leave", "dismiss_consecutive", "tier_up", "tier_down", "none")
TIER_MOVES = {"tier_up": 1, "tier_down": -1}
# What each outcome opens: (case kind, reason).
CASES = {"recompete": ("demotion", "recompete"), "demote_absence": ("demotion", "absence"),
         "dismiss_consecutive": ("dismissal", "consecutive_demotions")}
DAYS_PER_MONTH = 30
MONTHS = 12
_REVIEW_TITLE = "Annual review"
_YEAR = re.compile(r"^\d{4}$")


@dataclass
class ReviewResult:
    """The outcomes of a run: `review` is the stored run (None for a dry run that found none), `created`
    says whether this call stored it (and opened its cases)."""
    unit: OrgUnit
    period: str
    outcomes: list[dict[str, Any]]
    review: Review | None
    created: bool
    dry_run: bool
    refused: str | None = None     # a dry run: why the real run would be refused (no policy for a case kind)

    @property
    def stored(self) -> bool:
        """Answered from a run stored before this call."""
        return self.review is not None and not self.created


def parse_period(period: Any) -> int:
    """An annual period: a year, `2025` (or the number 2025). Invalid otherwise."""
    text = str(period).strip() if isinstance(period, (str, int)) and not isinstance(period, bool) else ""
    if not _YEAR.match(text) or not 1900 <= int(text) <= 2200:
        raise Invalid(_l("period must be a year such as '2025'"), field="period")
    return int(text)


def stored_review(unit: OrgUnit, period: Any) -> Review | None:
    return db.session.scalar(select(Review).where(Review.unit_id == unit.id,
                                                  Review.period == str(period).strip())
                             .execution_options(populate_existing=True))


def _overlapping(unit: OrgUnit, period: str) -> Review | None:
    """A stored review of the period at an ancestor or a descendant of `unit`: its people were reviewed."""
    ancestors = [u.id for u in unit.ancestors(include_self=False)]
    return db.session.scalar(select(Review).join(OrgUnit, Review.unit_id == OrgUnit.id).where(
        Review.period == period, Review.unit_id != unit.id,
        or_(OrgUnit.path.startswith(unit.path), Review.unit_id.in_(ancestors))).order_by(Review.id).limit(1))


# --- the run -----------------------------------------------------------------------------------------

def annual_review(unit: OrgUnit, period: Any, actor: Person | None, dry_run: Any = False,
                  today: dt.date | None = None) -> ReviewResult:
    """Review `unit`'s subtree for `period` as `actor` (HR at the unit or above; None: the system). Without
    `dry_run`, store the run and open its cases through the engine, the actor filing them, in this
    transaction (a job does the same in chunks: workflow/batch.py)."""
    result = start_review(unit, period, actor, dry_run)
    if result.created:
        apply_outcomes(result.review, result.outcomes, actionable(result.outcomes), actor, today=today)
        store_outcomes(result.review, result.outcomes)
    return result


def start_review(unit: OrgUnit, period: Any, actor: Person | None, dry_run: Any = False) -> ReviewResult:
    """The checks and the assessment of a run; without `dry_run`, the run stored with its outcomes (no case
    opened yet: `apply_outcomes` does that). A unit and period reviewed before answer the stored run."""
    if actor is not None:
        allowed = authority.can_run_review(actor, unit)
        if not allowed:
            raise Forbidden(allowed.reason)
    year = parse_period(period)
    period = str(year)
    if not isinstance(dry_run, bool):
        raise Invalid(_l("dry_run must be true or false"), field="dry_run")
    stored = stored_review(unit, period)
    if stored is not None:
        return ReviewResult(unit, period, stored.outcomes, stored, created=False, dry_run=dry_run)
    pv, pol = engine.active_policy()
    if pol.annual_review is None:
        raise Refused(_l("the policy %(policy)s has no annual_review section", policy=pol.label))
    other = _overlapping(unit, period)
    if other is not None:
        params = {"period": period, "other": other.unit.code, "review": other.id, "unit": unit.code}
        if other.unit.contains(unit):
            message = _l("%(period)s was reviewed at %(other)s (stored review %(review)s), which contains %(unit)s; each "
                         "manager is reviewed once a period", **params)
        else:
            message = _l("%(period)s was reviewed at %(other)s (stored review %(review)s), which lies inside %(unit)s; "
                         "each manager is reviewed once a period", **params)
        raise Refused(message, review=other.id)
    outcomes = assess(unit, year, pol)
    missing = sorted({CASES[o["outcome"]][0] for o in outcomes if o["outcome"] in CASES} - set(pol.kinds))
    problem = _l("the review calls for %(kinds)s cases, but the policy %(policy)s has no %(sections)s section",
                 kinds=" and ".join(missing), policy=pol.label, sections=" or ".join(missing)) if missing else None
    if dry_run:     # a preview reads only; it says why the real run would be refused
        return ReviewResult(unit, period, outcomes, None, created=False, dry_run=True, refused=problem)
    if problem:
        raise Refused(problem)

    # The row first: a second run at the same moment waits on its unique key, then fails and answers this one.
    for o in outcomes:
        o["case"] = None
    review = Review(unit=unit, period=period, outcomes=outcomes, policy_version=pv, created_by=actor,
                    created_at=clock.now())
    db.session.add(review)
    db.session.flush()
    return ReviewResult(unit, period, outcomes, review, created=True, dry_run=False)


def actionable(outcomes: list[dict[str, Any]]) -> list[int]:
    """Indexes of the outcomes that open a case or move a tier (the others only say why not)."""
    return [i for i, o in enumerate(outcomes)
            if not o.get("open_case") and (o["outcome"] in CASES or o["outcome"] in TIER_MOVES)]


def store_outcomes(review: Review, outcomes: list[dict[str, Any]]) -> None:
    """Write the outcomes, with their cases, to the stored run (the JSON is replaced whole)."""
    review.outcomes = outcomes
    flag_modified(review, "outcomes")
    db.session.flush()


def apply_outcomes(review: Review, outcomes: list[dict[str, Any]], indexes: list[int], actor: Person | None,
                   today: dt.date | None = None) -> None:
    """Act on the outcomes at `indexes` (from `actionable`) of a stored run: open their cases through the
    engine, the actor filing them, and make the tier moves; each outcome gets its `case`. Flushes; the
    outcomes are written to the review by the caller (`store_outcomes`) once all are done."""
    pol = policy_mod.from_stored(review.policy_version.content)
    wanted = [outcomes[i]["username"] for i in indexes]
    people = {p.username: p for p in db.session.scalars(select(Person).where(Person.username.in_(wanted)))}
    for i in indexes:
        o = outcomes[i]
        if o["outcome"] in CASES:
            kind, reason = CASES[o["outcome"]]
            case = engine.open_case(kind, actor, people[o["username"]], reason=reason,
                                    comment=f"{_REVIEW_TITLE} {review.period}: {o['reason']}", today=today)
            o["case"] = case.id
        elif o["outcome"] in TIER_MOVES:
            directory.change_grade(people[o["username"]], o["to_grade"], since=today or clock.today(),
                                   keep_since=True, actor=actor, source="review", policy=pol,
                                   comment=f"{_REVIEW_TITLE} {review.period} (review {review.id}): "
                                           f"{o['reason']}")
    db.session.flush()


# --- the assessment (reads only) ---------------------------------------------------------------------

def _managers_under(units: list[OrgUnit]) -> list[Person]:
    """Active managers (a grade of the ladder, not in probation, not dismissed) in the units' subtrees."""
    if not units:
        return []
    return list(db.session.scalars(select(Person).join(OrgUnit, Person.unit_id == OrgUnit.id).where(
        or_(*[OrgUnit.path.startswith(u.path) for u in units]), Person.level.is_not(None),
        Person.status == "active").options(contains_eager(Person.unit))
        .order_by(OrgUnit.path, Person.username)))


def _absent_days(people: list[Person], first: dt.date, last: dt.date,
                 exempt: tuple[str, ...]) -> dict[int, tuple[int, int, list[str]]]:
    """Per person: (days absent in the period, of which for reasons that do not exempt, the reasons)."""
    rows = [a for ids in _slices(people) for a in db.session.scalars(select(Absence).where(
        Absence.person_id.in_(ids), Absence.start <= last, Absence.end >= first)
        .order_by(Absence.person_id, Absence.start))]
    days: dict[int, set[dt.date]] = defaultdict(set)
    other: dict[int, set[dt.date]] = defaultdict(set)
    reasons: dict[int, list[str]] = defaultdict(list)
    for a in rows:
        clipped = a.days_within(first, last)
        days[a.person_id] |= clipped
        if a.reason not in exempt:
            other[a.person_id] |= clipped
        if clipped and a.reason not in reasons[a.person_id]:
            reasons[a.person_id].append(a.reason)
    return {pid: (len(days[pid]), len(other[pid]), reasons[pid]) for pid in days}


def _demotion_years(people: list[Person], years: tuple[int, int]) -> dict[int, dict[int, list[int]]]:
    """Per person: {year: [demotion case ids]} of the demotions that took effect in those calendar years."""
    rows = sorted((row for ids in _slices(people) for row in db.session.execute(
        select(GradeHistory.person_id, GradeHistory.effective_on, GradeHistory.case_id)
        .join(Case, Case.id == GradeHistory.case_id).where(
            Case.kind == "demotion", GradeHistory.person_id.in_(ids),
            GradeHistory.effective_on >= dt.date(min(years), 1, 1),
            GradeHistory.effective_on <= dt.date(max(years), 12, 31)))), key=lambda r: r[1])
    out: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for person_id, day, case_id in rows:
        out[person_id][day.year].append(case_id)
    return out


def _slices(people: list[Person], size: int = 500):
    ids = [p.id for p in people]
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def year_means(people: list[Person], kind: str, year: int) -> dict[int, float]:
    """`rules.year_average` of each person, in one query per 500 people: the mean of the year's scores of
    the finest granularity present, rounded to 2 decimals."""
    values: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for ids in _slices(people):
        for pid, gran, value in db.session.execute(
                select(Score.person_id, Score.granularity, Score.value).where(
                    Score.person_id.in_(ids), Score.kind == kind, Score.value.is_not(None),
                    Score.period_start >= dt.date(year, 1, 1), Score.period_end <= dt.date(year, 12, 31))
                .order_by(Score.person_id, Score.id)):
            values[pid][gran].append(value)
    means = {}
    for pid, by_gran in values.items():
        for gran in rules.GRANULARITY_ORDER:
            if by_gran.get(gran):
                means[pid] = round(sum(by_gran[gran]) / len(by_gran[gran]), 2)
                break
    return means


def worked_months(absent_days: int) -> Fraction:
    return MONTHS - Fraction(absent_days, DAYS_PER_MONTH)


def bottom_cut(n: int, percent: float) -> int:
    """Ranks above the cut are the bottom `percent`% of `n`: rank > n − floor(p·n/100)."""
    return n - math.floor(Fraction(str(percent)) * n / 100)


def _tier_move(o: dict[str, Any], person: Person, pol: Policy, step: int, share: str) -> None:
    """级档浮动: one tier up or down inside the person's level, when the level has that tier."""
    tiers = pol.ladder[pol.level_index(person.level)].tiers
    tier = person.tier + step
    if not 1 <= tier <= tiers:
        edge = "top" if step > 0 else "first"
        o["reason"] += f"; {share} of {person.level}, but already at its {edge} tier: the tier stays"
        return
    o.update(outcome="tier_up" if step > 0 else "tier_down", to_grade=f"{person.level}-{tier}")
    o["reason"] += f"; {share} of {person.level}: tier {person.tier} → {tier}"


def _months_text(value: Fraction) -> str:
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def assess(unit: OrgUnit, year: int, pol: Policy) -> list[dict[str, Any]]:
    """The outcome of every active manager of `unit`'s subtree for the year; reads, never writes.

    Ranks come from the whole ranking scope (which may reach beyond `unit` when the review runs below the
    scope's org level), so a person's rank does not depend on where the review was run."""
    ar: AnnualReview = pol.annual_review
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    members = _managers_under([unit])
    scope_of_unit: dict[int, OrgUnit] = {}       # many people share a unit: its scope is found once

    def scope(p: Person) -> OrgUnit:
        if p.unit_id not in scope_of_unit:
            scope_of_unit[p.unit_id] = rules.scope_unit(p.unit, ar.ranking_scope, pol)
        return scope_of_unit[p.unit_id]
    scope_of = {p.id: scope(p) for p in members}
    scopes = {s.id: s for s in scope_of.values()}
    # The scopes' people, unless every scope lies inside the unit (then they are its members already).
    outside = [s for s in scopes.values() if not unit.contains(s)]
    pool = {p.id: p for p in _managers_under(list(scopes.values()))} if outside else {}
    pool.update({p.id: p for p in members})
    people = list(pool.values())
    for p in people:
        if p.id not in scope_of:
            scope_of[p.id] = scope(p)
    absent = _absent_days(people, first, last, ar.exempt_reasons)
    demoted = _demotion_years(people, (year - 1, year))
    means = year_means(people, "performance", year)
    open_kind: dict[tuple[int, str], int] = {}
    rows = sorted((row for ids in _slices(members) for row in db.session.execute(
        select(Case.employee_id, Case.kind, Case.id).where(Case.closed.is_(False),
                                                           Case.employee_id.in_(ids)))), key=lambda r: r[2])
    for pid, kind, cid in rows:
        open_kind.setdefault((pid, kind), cid)
        open_kind.setdefault((pid, None), cid)     # any open case holds the grade still (tier moves)
    limit = Fraction(str(ar.min_worked_months))
    lowest = pol.level_ids[0]

    found: dict[int, dict[str, Any]] = {}
    groups: dict[tuple[int, str], list[tuple[float, int]]] = defaultdict(list)
    for p in people:
        days, other_days, reasons = absent.get(p.id, (0, 0, []))
        worked = worked_months(days)
        o = {"username": p.username, "name": p.name, "unit": p.unit.code, "level": p.level,
             "scope": scope_of[p.id].code, "rank": None, "of": None, "score": None, "percent": None,
             "worked_months": float(round(worked, 2)), "outcome": "none", "basis": None, "reason": ""}
        found[p.id] = o
        under = f"worked {_months_text(worked)} months in {year} (under {ar.min_worked_months:g})"
        if worked < limit:
            if worked_months(other_days) >= limit:
                leave = ", ".join(r for r in reasons if r in ar.exempt_reasons)
                o.update(outcome="exempt_leave", basis="leave",
                         reason=f"{under} because of leave ({leave}): exempt from the {year} review")
            elif p.level == lowest:
                o.update(basis="absence_lowest_level",
                         reason=f"{under} because of other absence, but {p.level} is the lowest level: "
                                f"no demotion")
            else:
                o.update(outcome="demote_absence", basis="absence",
                         reason=f"{under} because of other absence: demoted one level")
            continue
        years = demoted.get(p.id, {})
        if years.get(year - 1) and years.get(year):
            cases = ", ".join(str(c) for c in years[year - 1] + years[year])
            o.update(outcome="dismiss_consecutive", basis="consecutive_demotions",
                     reason=f"demoted in {year - 1} and in {year} (cases {cases}): two consecutive demotions")
            continue
        mean = means.get(p.id)
        o["score"] = mean
        if mean is None:
            o.update(basis="no_score", reason=f"no performance score in {year}: not ranked")
            continue
        groups[(scope_of[p.id].id, p.level)].append((mean, p.id))

    for (_scope, level), ranked in groups.items():
        n = len(ranked)
        percent = ar.recompete.get(level)
        cut = bottom_cut(n, percent) if percent is not None else n
        top = math.ceil(Fraction(str(ar.tier_up)) * n / 100) if ar.tier_up else 0
        low = bottom_cut(n, ar.tier_down) if ar.tier_down else n
        ascending = sorted(m for m, _ in ranked)
        for mean, pid in ranked:
            rank = 1 + n - bisect.bisect_right(ascending, mean)     # ties share the better rank
            o = found[pid]
            o.update(rank=rank, of=n, basis="rank", percent=percent)
            where = f"rank {rank} of {n} in {o['scope']}"
            if percent is None:
                o["reason"] = f"{where}; {level} does not re-compete"
            elif rank > cut:
                o.update(outcome="recompete",
                         reason=f"{where}, bottom {percent:g}% of {level} (the last {n - cut} of {n})")
                continue
            else:
                o["reason"] = f"{where}, above the bottom {percent:g}% of {level}"
            if rank <= top:
                _tier_move(o, pool[pid], pol, +1, f"top {ar.tier_up:g}%")
            elif rank > low:
                _tier_move(o, pool[pid], pol, -1, f"bottom {ar.tier_down:g}%")

    out = []
    for p in members:     # people of the ranking scope outside `unit` were ranked, not reviewed
        o = found[p.id]
        existing = open_kind.get((p.id, CASES[o["outcome"]][0])) if o["outcome"] in CASES else None
        if existing is not None:     # e.g. a misconduct demotion in flight: one open case per kind
            o["open_case"] = existing
            o["reason"] += f"; already has an open {CASES[o['outcome']][0]} case ({existing}): no second one"
        elif o["outcome"] in TIER_MOVES and (p.id, None) in open_kind:
            o["open_case"] = open_kind[(p.id, None)]
            o["reason"] += f"; has an open case ({o['open_case']}): the tier stays until it is finished"
        out.append(o)
    index = {lv: i for i, lv in enumerate(pol.level_ids)}
    scope_paths = {s.code: s.path for s in scopes.values()}
    out.sort(key=lambda o: (scope_paths.get(o["scope"], ""), -index.get(o["level"], -1), o["rank"] is None,
                            o["rank"] or 0, o["username"]))
    return out
