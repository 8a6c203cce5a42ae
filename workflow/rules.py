"""Eligibility rules and score arithmetic: functions that read, never write.

Each rule type is a fixed piece of code with parameters that come from the policy file; no rule
names a policy and nothing is evaluated from text.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import select

from . import clock
from .errors import Invalid, Refused
from .i18n import _l, term
from .models import db, Case, Person, Score, OrgUnit
from .policy import Policy

GRANULARITY_ORDER = ("month", "quarter", "year")   # finest first


# --- time --------------------------------------------------------------------------------------------

def whole_months(start: dt.date | None, end: dt.date) -> int:
    """Whole calendar months from `start` to `end` (0 if start is missing or later)."""
    if start is None or start > end:
        return 0
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if end.day < start.day and not _is_month_end(end):
        months -= 1
    return max(months, 0)


def _is_month_end(d: dt.date) -> bool:
    return (d + dt.timedelta(days=1)).month != d.month


# --- scores --------------------------------------------------------------------------------------------

def year_average(person: Person, kind: str, year: int) -> float | None:
    """Mean of a kind's scores in a calendar year, from the finest granularity present (so a year is never
    counted twice: monthly rows if any, else quarterly, else yearly)."""
    rows = db.session.scalars(select(Score).where(
        Score.person_id == person.id, Score.kind == kind, Score.value.is_not(None),
        Score.period_start >= dt.date(year, 1, 1), Score.period_end <= dt.date(year, 12, 31))).all()
    for gran in GRANULARITY_ORDER:
        values = [r.value for r in rows if r.granularity == gran]
        if values:
            return round(sum(values) / len(values), 2)
    return None


def latest_score(person: Person, kind: str) -> Score | None:
    """The row whose period ends last (ties: the later import)."""
    return db.session.scalars(select(Score).where(Score.person_id == person.id, Score.kind == kind)
                              .order_by(Score.period_end.desc(), Score.imported_at.desc(), Score.id.desc())
                              .limit(1)).first()


def score_passed(policy: Policy, score: Score | None, kind: str = "skill_test") -> bool:
    if score is None:
        return False
    if score.passed is not None:
        return score.passed
    mark = policy.score_kinds[kind].pass_mark if kind in policy.score_kinds else None
    return score.value is not None and mark is not None and score.value >= mark


def scope_unit(unit: OrgUnit, org_level: str, policy: Policy) -> OrgUnit:
    """The unit's nearest ancestor at or above an org level (the unit itself if it is there already)."""
    target = policy.org_level_index(org_level)
    for u in unit.ancestors():
        if u.level in policy.org_level_ids and policy.org_level_index(u.level) <= target:
            return u
    return unit.ancestors()[-1]


def performance_rank(person: Person, policy: Policy, scope_level: str, year: int, kind: str = "performance"):
    """(rank, n) of the person among active people of the same level in the ranking scope, by the year's
    mean score; ties share the better rank. (None, n) when the person has no score."""
    scope = scope_unit(person.unit, scope_level, policy)
    peers = db.session.scalars(select(Person).join(OrgUnit, Person.unit_id == OrgUnit.id).where(
        OrgUnit.path.startswith(scope.path), Person.level == person.level, Person.status == "active")).all()
    means = {p.id: year_average(p, kind, year) for p in peers}
    ranked = sorted((m for m in means.values() if m is not None), reverse=True)
    mine = means.get(person.id)
    if mine is None:
        return None, len(ranked)
    return 1 + sum(1 for m in ranked if m > mine), len(ranked)


# --- eligibility rule types ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Context:
    person: Person
    policy: Policy
    as_of: dt.date
    target_level: str


@dataclass(frozen=True)
class RuleType:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    check: Callable[[Context, dict[str, Any]], tuple[Any, Any, bool]]   # -> (required, actual, passed)
    validate: Callable[..., None]


def _min_number(lo=0, hi=None, integer=False):
    def validate(v, path, params, refs):
        v.number(params["min"], f"{path}.min", lo=lo, hi=hi, integer=integer)
        if "kind" in params:
            v.one_of(params["kind"], f"{path}.kind", sorted(refs["score_kinds"]), "score kind")
        if "period" in params:
            v.one_of(params["period"], f"{path}.period", ("previous_year",), "period")
    return validate


def _months_at_grade(ctx, p):
    actual = whole_months(ctx.person.grade_since, ctx.as_of)
    return f"≥ {p['min']} months", f"{actual} months", actual >= p["min"]


def _months_in_post(ctx, p):
    actual = whole_months(ctx.person.hired_on, ctx.as_of)
    return f"≥ {p['min']} months", f"{actual} months", actual >= p["min"]


def _education_at_least(ctx, p):
    have = ctx.person.education
    return (f"≥ {p['min']}", have or "—",
            ctx.policy.education_index(have) >= ctx.policy.education_index(p["min"]))


def _validate_education(v, path, params, refs):
    v.one_of(params["min"], f"{path}.min", refs["education"], "education")


def _performance_average(ctx, p):
    year = ctx.as_of.year - 1
    avg = year_average(ctx.person, p.get("kind", "performance"), year)
    return f"≥ {p['min']} ({year})", "—" if avg is None else f"{avg:g}", avg is not None and avg >= p["min"]


def _performance_rank(ctx, p):
    year = ctx.as_of.year - 1
    rank, n = performance_rank(ctx.person, ctx.policy, p["scope"], year, p.get("kind", "performance"))
    required = f"top {p['top_percent']:g}% ({year})"
    if rank is None or n == 0:
        return required, "—", False
    return required, f"{rank}/{n}", rank <= math.ceil(p["top_percent"] * n / 100)


def _validate_rank(v, path, params, refs):
    v.number(params["top_percent"], f"{path}.top_percent", lo=0.01, hi=100)
    v.one_of(params["scope"], f"{path}.scope", refs["org_levels"], "org level")
    if "kind" in params:
        v.one_of(params["kind"], f"{path}.kind", sorted(refs["score_kinds"]), "score kind")


def _skill_test_passed(ctx, p):
    kind = p.get("kind", "skill_test")
    row = latest_score(ctx.person, kind)
    if row is None:
        return "pass", "—", False
    actual = ("pass" if row.passed else "fail") if row.passed is not None else f"{row.value:g}"
    return "pass", f"{actual} ({row.period})", score_passed(ctx.policy, row, kind)


def _validate_kind(v, path, params, refs):
    if "kind" in params:
        v.one_of(params["kind"], f"{path}.kind", sorted(refs["score_kinds"]), "score kind")


def _latest_score_at_least(ctx, p):
    row = latest_score(ctx.person, p["kind"])
    actual = None if row is None else row.value
    return (f"≥ {p['min']}", "—" if actual is None else f"{actual:g} ({row.period})",
            actual is not None and actual >= p["min"])


def _not_in_probation(ctx, p):
    return "active", ctx.person.status, ctx.person.status == "active"


def _no_validation(v, path, params, refs):
    return None


def _holds_customers(ctx, p):
    """包保重要客户: the person holds at least `min` active customers (of the listed tiers, if any)."""
    from .models.customers import Customer
    tiers = p.get("tiers")
    q = select(db.func.count(Customer.id)).where(Customer.manager_id == ctx.person.id,
                                                 Customer.active.is_(True))
    if tiers:
        q = q.where(Customer.tier.in_(tiers))
    n = db.session.scalar(q) or 0
    which = f" [{', '.join(tiers)}]" if tiers else ""
    return f"≥ {p['min']} customers{which}", f"{n} customers", n >= p["min"]


def _visit_coverage(ctx, p):
    """Held customers whose visit is not overdue, in % of those whose tier has a cadence
    (workflow.portfolios)."""
    from .portfolios import coverage_of
    if ctx.policy.customers is None:
        return f"≥ {p['min']:g}%", "no customers", False
    _n, coverage = coverage_of(ctx.person, ctx.policy, ctx.as_of)
    if coverage is None:
        return f"≥ {p['min']:g}%", "no customers", False
    return f"≥ {p['min']:g}%", f"{coverage:g}%", coverage >= p["min"]


def _validate_holds_customers(v, path, params, refs):
    tiers = refs.get("customer_tiers")
    if tiers is None:
        v.fail(path, "needs the policy's customers section (customer tiers and portfolios)")
    v.number(params["min"], f"{path}.min", lo=1, hi=100_000, integer=True)
    if "tiers" in params:
        for j, t in enumerate(v.seq(params["tiers"], f"{path}.tiers")):
            v.one_of(t, f"{path}.tiers[{j}]", tiers, "customer tier")


def _validate_visit_coverage(v, path, params, refs):
    if refs.get("customer_tiers") is None:
        v.fail(path, "needs the policy's customers section (customer tiers and portfolios)")
    v.number(params["min"], f"{path}.min", lo=0, hi=100)


RULE_TYPES: dict[str, RuleType] = {
    "months_at_grade": RuleType(("min",), (), _months_at_grade, _min_number(integer=True)),
    "months_in_post": RuleType(("min",), (), _months_in_post, _min_number(integer=True)),
    "education_at_least": RuleType(("min",), (), _education_at_least, _validate_education),
    "performance_average": RuleType(("min",), ("kind", "period"), _performance_average, _min_number()),
    "performance_rank": RuleType(("top_percent", "scope"), ("kind",), _performance_rank, _validate_rank),
    "skill_test_passed": RuleType((), ("kind",), _skill_test_passed, _validate_kind),
    "latest_score_at_least": RuleType(("kind", "min"), (), _latest_score_at_least, _min_number()),
    "not_in_probation": RuleType((), (), _not_in_probation, _no_validation),
    "holds_customers": RuleType(("min",), ("tiers",), _holds_customers, _validate_holds_customers),
    "visit_coverage": RuleType(("min",), (), _visit_coverage, _validate_visit_coverage),
}


def evaluate(person: Person, policy: Policy, target_level: str, as_of: dt.date) -> list[dict[str, Any]]:
    """Every rule for the target level with its required and actual value: [{rule, required, actual, passed}]."""
    ctx = Context(person, policy, as_of, target_level)
    results = []
    for rule in policy.rules_for(target_level):
        required, actual, passed = RULE_TYPES[rule.type].check(ctx, rule.params)
        results.append({"rule": rule.type, "required": required, "actual": actual, "passed": bool(passed)})
    return results


def failed_rules(results: list[dict[str, Any]]) -> list[str]:
    return [r["rule"] for r in results if not r["passed"]]




# --- composite ---------------------------------------------------------------------------------------

def panel_component(values: list[float], trim_at_least: int | None) -> float | None:
    """Mean of the panel's scores; drop the highest and lowest when the policy trims and enough scored."""
    if not values:
        return None
    vals = sorted(values)
    if trim_at_least and len(vals) >= trim_at_least:
        vals = vals[1:-1]
    return sum(vals) / len(vals)


def composite(policy: Policy, components: dict[str, float | None]) -> float:
    """Σ(weight × component) / Σ(weights), 2 decimals. A missing component counts as 0: missing data
    never raises a candidate."""
    total_w = sum(policy.weights.values())
    total = sum(w * (components.get(k) or 0.0) for k, w in policy.weights.items())
    return round(total / total_w, 2)


# --- guards of the state machines (transitions' `prepare` raise, `conditions` choose) -------------------

def _ctx(event):
    return event.kwargs["ctx"]


def require_comment(event) -> None:
    ctx = _ctx(event)
    if not ctx.comment:
        raise Refused(_l("'%(action)s' needs a comment saying why", action=term("action", ctx.action)),
                      field="comment")


def require_score(event) -> None:
    ctx = _ctx(event)
    value = ctx.data.get("score")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise Invalid(_l("score must be a number from 0 to 100"), field="score") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise Invalid(_l("score must be a number from 0 to 100"), field="score")
    if not 0 <= value <= 100:
        raise Refused(_l("score must be from 0 to 100, not %(value)s", value=f"{value:g}"), field="score")
    ctx.data["score"] = float(value)


def require_members(event) -> None:
    members = _ctx(event).data.get("members")
    if not isinstance(members, list) or not all(isinstance(m, str) and m.strip() for m in members):
        raise Invalid(_l("members must be a list of usernames"), field="members")
    _ctx(event).data["members"] = [m.strip() for m in members]


def require_effective_date(event) -> None:
    ctx = _ctx(event)
    if ctx.case.effective_on and ctx.today < ctx.case.effective_on:
        raise Refused(_l("the promotion takes effect on %(date)s, not before",
                         date=ctx.case.effective_on.isoformat()))


def escalation_due(case, policy, today: dt.date) -> bool:
    """The step is overdue by more than the policy's `escalate_after_days` working days."""
    step = policy.steps.get(case.state)
    if step is None or step.escalate_after_days is None or case.deadline is None or case.closed:
        return False
    return today > clock.add_working_days(case.deadline, step.escalate_after_days, policy.holidays)


def require_overdue(event) -> None:
    ctx = _ctx(event)
    if not escalation_due(ctx.case, ctx.policy, ctx.today):
        raise Refused(_l("the step is not overdue enough to escalate"))


def last_signature(event) -> bool:
    """或签: one decides. 会签: the step moves on when no other assignee is left to sign; a committee with a
    pass ratio when the approvals reach it; never while a signer added to the step (加签) is still to sign
    (workflow/signing.py)."""
    from .signing import completes_step    # signing reads the machines, which import this module
    ctx = _ctx(event)
    if ctx.round_decision:    # a round's decision is one act
        return True
    return completes_step(ctx.case, ctx.policy, getattr(ctx, "signer", ctx.actor), event.state.name)


def no_panel(event) -> bool:
    ctx = _ctx(event)
    return not ctx.policy.has_panel(ctx.case.target_level)


def effective_on_approval(event) -> bool:
    return _ctx(event).policy.effective_when == "on_approval"


def has_publicity(event) -> bool:
    return _ctx(event).policy.publicity_days is not None


def pending_objections(case) -> int:
    """Objections filed in the publicity since HR last upheld the promotion."""
    pending = 0
    for ev in case.events:
        if ev.action == "object":
            pending += 1
        elif ev.action == "uphold":
            pending = 0
    return pending


def require_publicity_open(event) -> None:
    ctx = _ctx(event)
    if ctx.case.deadline and ctx.today > ctx.case.deadline:
        raise Refused(_l("the publicity ended on %(date)s", date=ctx.case.deadline.isoformat()))


def require_pending_objection(event) -> None:
    if not pending_objections(_ctx(event).case):
        raise Refused(_l("there is no objection to answer"))


def require_publicity_over(event) -> None:
    ctx = _ctx(event)
    if ctx.case.deadline and ctx.today <= ctx.case.deadline:
        raise Refused(_l("the publicity runs until %(date)s", date=ctx.case.deadline.isoformat()))
    if pending_objections(ctx.case):
        raise Refused(_l("an objection is waiting for HR's answer"))


def scoring_complete(event) -> bool:
    """The panel (at least its minimum size) and the supervisor have all scored."""
    ctx = _ctx(event)
    case = ctx.case
    scored = {s.scorer_id for s in case.scores if s.component == "panel"}
    members = {m.person_id for m in case.panel}
    return (len(members) >= ctx.policy.panel_min_size and members <= scored
            and any(s.component == "supervisor" for s in case.scores))


# --- guards of the lifecycle kinds ------------------------------------------------------------------------

def require_statement(event) -> None:
    ctx = _ctx(event)
    statement = ctx.data.get("statement")
    if statement is not None and not isinstance(statement, str):
        raise Invalid(_l("statement must be text"), field="statement")
    if not (statement or "").strip():
        raise Refused(_l("'%(action)s' needs a statement", action=term("action", ctx.action)), field="statement")


def rejection_event(case):
    """The event that rejected the case (reject, or overturn in the publicity), if it stands rejected."""
    for ev in reversed(case.events):
        if ev.action in ("reject", "overturn"):
            return ev
    return None


def appeal_refusal(case, today: dt.date) -> str | None:
    """Why the applicant may not appeal the rejection now, or None: the policy's window (申诉期) runs from
    the rejection, an appeal is heard once, and a case of a decided round or beside another open promotion
    case cannot reopen."""
    rejection = rejection_event(case)
    if rejection is None or case.state != "rejected":
        return _l("only a rejected promotion can be appealed")
    until = rejection.data.get("appeal_until")
    if until is None:
        return _l("the policy in force when the case was rejected sets no appeal window")
    if any(ev.action == "appeal" for ev in case.events):
        return _l("the rejection was appealed once already; the appeal's answer is final")
    if today > dt.date.fromisoformat(until):
        return _l("the appeal window ended on %(date)s", date=until)
    if case.round is not None and case.round.state == "decided":
        return _l("round %(round)s is decided; its places are given", round=case.round_id)
    other = db.session.scalar(select(Case.id).where(Case.employee_id == case.employee_id, Case.kind == case.kind,
                                                    Case.closed.is_(False), Case.id != case.id))
    if other is not None:
        return _l("%(username)s has another open promotion case (%(case)s); finish or withdraw it first",
                  username=case.employee.username, case=other)
    return None


def appeal_open(case) -> bool:
    return appeal_refusal(case, clock.today()) is None


def require_appeal_open(event) -> None:
    ctx = _ctx(event)
    problem = appeal_refusal(ctx.case, ctx.today)
    if problem:
        raise Refused(problem)


def rejected_at_qualification(event) -> bool:
    """Reinstated at the step where it was rejected: qualification review, else HR approval."""
    return rejection_event(_ctx(event).case).from_state == "qualification_review"


def require_inside_window(event) -> None:
    """The notice window (申诉期) is still open."""
    ctx = _ctx(event)
    if ctx.case.deadline and ctx.today > ctx.case.deadline:
        raise Refused(_l("the notice window ended on %(date)s", date=ctx.case.deadline.isoformat()))


def require_window_over(event) -> None:
    ctx = _ctx(event)
    if ctx.case.deadline and ctx.today <= ctx.case.deadline:
        raise Refused(_l("the notice window is open until %(date)s", date=ctx.case.deadline.isoformat()))


def require_evaluation_window(event) -> None:
    """`tick` opens the evaluation `evaluation_lead_days` before the probation ends; HR may open it early."""
    ctx = _ctx(event)
    if ctx.actor is None:
        lead = ctx.policy.kind("probation").evaluation_lead_days
        if ctx.case.due_on is None or ctx.today < ctx.case.due_on - dt.timedelta(days=lead):
            raise Refused(_l("the probation evaluation is not due yet"))


def require_evaluation_form(event) -> None:
    form = _ctx(event).data.get("form", {})
    if form is None:
        form = {}
    if not isinstance(form, dict) or not all(isinstance(k, str) and isinstance(v, (str, int, float))
                                             and not isinstance(v, bool) for k, v in form.items()):
        raise Invalid(_l("form must be an object of answers (text or numbers)"), field="form")
    _ctx(event).data["form"] = form


def require_extension(event) -> None:
    ctx = _ctx(event)
    months = ctx.data.get("months")
    if isinstance(months, str) and months.strip().isdigit():
        months = int(months)
    if isinstance(months, bool) or not isinstance(months, int):
        raise Invalid(_l("months must be a whole number"), field="months")
    longest = ctx.policy.kind("probation").extend_max_months
    if longest is None:
        raise Refused(_l("the policy allows no extension of probation"))
    if ctx.case.extensions:
        raise Refused(_l("the probation was extended once already"))
    if not 1 <= months <= longest:
        raise Refused(_l("an extension is 1 to %(longest)s months, not %(months)s", longest=longest, months=months),
                      field="months")
    ctx.data["months"] = months


def require_fail_outcome(event) -> None:
    outcome = _ctx(event).data.get("outcome")
    if outcome not in ("dismissal", "transfer"):
        raise Refused(_l("outcome must be 'dismissal' or 'transfer'"), field="outcome")


def require_transfer_unit(event) -> None:
    ctx = _ctx(event)
    code = ctx.data.get("unit")
    if not isinstance(code, str) or not code.strip():
        raise Invalid(_l("unit must be a unit code"), field="unit")
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code.strip()))
    if unit is None:
        raise Refused(_l("no unit '%(code)s'", code=code), field="unit")
    if unit.id == ctx.case.employee.unit_id:
        raise Refused(_l("a transfer goes to another unit"), field="unit")
    ctx.data["unit"] = unit
