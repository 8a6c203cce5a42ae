"""What transitions do to the world. Callbacks of the state machines: they mutate and may flush, never
commit. Each receives transitions' EventData; the ActionContext is `event.kwargs["ctx"]`."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from . import clock, rules
from .context import ActionContext
from .errors import Refused
from .i18n import _l
from .models import db, ApiToken, Case, Person, PanelMember, CaseScore, Conflict, GradeHistory
from .routing import holds_role_at_or_above


def ctx_of(event) -> ActionContext:
    return event.kwargs["ctx"]


def _drop_duty(ctx: ActionContext, duty: str, person_id: int | None = None) -> None:
    for a in list(ctx.case.assignments):
        if a.duty == duty and (person_id is None or a.person_id == person_id):
            ctx.case.assignments.remove(a)


# --- applicant ---------------------------------------------------------------------------------------

def update_statement(event) -> None:
    ctx = ctx_of(event)
    statement = ctx.data.get("statement")
    if statement is not None:
        ctx.case.statement = statement.strip()


# --- signatures (或签 / 会签) ---------------------------------------------------------------------------

def record_signature(event) -> None:
    """With `sign: all`, a committee or an added signer (加签), each signs in turn; the step moves on with the
    last signature. Who signs next is routed afresh (an added signer may be due now)."""
    ctx = ctx_of(event)
    _drop_duty(ctx, "decide", ctx.signer.id)
    ctx.event_data["partial"] = True
    ctx.reroute = True


# --- panel -------------------------------------------------------------------------------------------

def assign_panel(event) -> None:
    """Replace the members who have not scored with the named ones; members who scored stay."""
    ctx = ctx_of(event)
    case = ctx.case
    names = ctx.data["members"]
    people = {p.username: p for p in db.session.scalars(select(Person).where(Person.username.in_(names)))}
    unknown = [n for n in names if n not in people]
    if unknown:
        raise Refused(_l("unknown panel member(s): %(names)s", names=", ".join(unknown)), field="members")
    supervisors = {a.person_id for a in case.assignments if a.duty == "supervisor"}
    supervisors |= {s.scorer_id for s in case.scores if s.component == "supervisor"}
    conflicted = {c.person_id for c in case.conflicts}
    deciders = {ev.data.get("decided_by", ev.actor_id) for ev in case.events if ev.data.get("decision")}
    for name in names:
        p = people[name]
        if p.id == case.employee_id:
            raise Refused(_l("%(name)s is the applicant and cannot sit on the panel", name=name), field="members")
        if p.id in supervisors:
            raise Refused(_l("%(name)s is the applicant's direct supervisor and cannot sit on the panel", name=name),
                          field="members")
        if p.id in conflicted or p.id in deciders:
            raise Refused(_l("%(name)s has a conflict on this case (declared, or took another decision on it)",
                             name=name), field="members")
        if p.status == "dismissed" or holds_role_at_or_above(p, "panel", case.step_unit) is None:
            raise Refused(_l("%(name)s does not hold 'panel' at %(unit)s or above", name=name, unit=case.step_unit.code),
                          field="members")
    scored = {s.scorer_id for s in case.scores if s.component == "panel"}
    keep = [m for m in case.panel if m.person_id in scored]
    wanted = [people[n] for n in dict.fromkeys(names) if people[n].id not in scored]
    if len(keep) + len(wanted) < ctx.policy.panel_min_size:
        raise Refused(_l("the panel needs at least %(min)s members (%(scored)s scored, %(named)s named)",
                         min=ctx.policy.panel_min_size, scored=len(keep), named=len(wanted)), field="members")
    for m in list(case.panel):
        if m.person_id not in scored:
            case.panel.remove(m)
    db.session.flush()
    for p in wanted:
        case.panel.append(PanelMember(person=p, person_id=p.id))
    ctx.event_data["members"] = [m.person.username for m in keep] + [p.username for p in wanted]
    ctx.reroute = True


def record_panel_score(event) -> None:
    ctx = ctx_of(event)
    value = ctx.data["score"]
    ctx.case.scores.append(CaseScore(scorer=ctx.actor, scorer_id=ctx.actor.id, component="panel", value=value,
                                     at=clock.now()))
    _drop_duty(ctx, "panel", ctx.actor.id)
    ctx.event_data.update(score=value, decision=True)


def record_supervisor_score(event) -> None:
    ctx = ctx_of(event)
    value = ctx.data["score"]
    ctx.case.scores.append(CaseScore(scorer=ctx.actor, scorer_id=ctx.actor.id, component="supervisor",
                                     value=value, at=clock.now()))
    _drop_duty(ctx, "supervisor")
    ctx.event_data.update(score=value, decision=True)


def compute_composite(event) -> None:
    """Entering HR approval: composite = Σ(weight × component) / Σ(weights) under the case's policy."""
    ctx = ctx_of(event)
    case = ctx.case
    panel = [s.value for s in case.scores if s.component == "panel"]
    supervisor = next((s.value for s in case.scores if s.component == "supervisor"), None)
    components = {"supervisor": supervisor, "panel": rules.panel_component(panel, ctx.policy.trim_at_least),
                  "annual_performance": case.annual_performance}
    case.composite = rules.composite(ctx.policy, components)
    ctx.event_data["composite"] = case.composite


# --- conflicts ---------------------------------------------------------------------------------------

def declare_conflict(event) -> None:
    ctx = ctx_of(event)
    case = ctx.case
    case.conflicts.append(Conflict(person=ctx.actor, person_id=ctx.actor.id, reason=ctx.comment,
                                   declared_at=clock.now()))
    scored = {s.scorer_id for s in case.scores}
    for m in list(case.panel):
        if m.person_id == ctx.actor.id and m.person_id not in scored:
            case.panel.remove(m)
    ctx.reroute = True


def escalate(event) -> None:
    """An overdue step goes one unit further up (tick)."""
    ctx = ctx_of(event)
    ctx.case.escalations = (ctx.case.escalations or 0) + 1
    ctx.event_data["overdue_since"] = ctx.case.deadline.isoformat()
    ctx.case.deadline = None     # the new assignees get a fresh deadline
    ctx.reroute = True


def reroute(event) -> None:
    """Roles changed: drop panel members who no longer hold `panel` and have not scored; route afresh."""
    from .authority import holds_assignment
    ctx = ctx_of(event)
    case = ctx.case
    gone = {a.person_id for a in case.assignments if a.duty == "panel" and not holds_assignment(a.person, a)}
    for m in list(case.panel):
        if m.person_id in gone:
            case.panel.remove(m)
    ctx.reroute = True


# --- outcomes ----------------------------------------------------------------------------------------

def schedule_effective(event) -> None:
    ctx = ctx_of(event)
    ctx.case.effective_on = clock.first_of_next_month(ctx.today)
    ctx.event_data["effective_on"] = ctx.case.effective_on.isoformat()


def _release_portfolio(ctx: ActionContext, reason: str) -> None:
    """The customers the person may no longer hold after the case's change, released (workflow/portfolios)."""
    from .portfolios import release_for_case   # portfolios imports the engine, which imports this module
    release_for_case(ctx, reason)


def apply_promotion(event) -> None:
    """The employee's grade changes, with a grade-history row naming the case."""
    ctx = ctx_of(event)
    case = ctx.case
    emp = case.employee
    day = case.effective_on or ctx.today
    db.session.add(GradeHistory(person=emp, from_grade=emp.grade, to_grade=case.target_grade, effective_on=day,
                                case_id=case.id, source="case"))
    emp.level, emp.tier, emp.grade_since = case.target_level, case.target_tier, day
    case.effective_on = day
    ctx.event_data["grade"] = {"from": case.from_grade, "to": case.target_grade, "on": day.isoformat()}
    _release_portfolio(ctx, "promotion")


def mark_decided(event) -> None:
    ctx_of(event).case.decided_at = clock.now()


def open_appeal_window(event) -> None:
    """A rejection opens the policy's appeal window (申诉期), if it has one: recorded on the event."""
    ctx = ctx_of(event)
    if ctx.policy.appeal_days:
        ctx.event_data["appeal_until"] = (ctx.today + dt.timedelta(days=ctx.policy.appeal_days)).isoformat()


def record_reinstated(event) -> None:
    """The appeal is granted: the case goes back to the step where it was rejected, and whoever rejected it
    no longer decides it (engine.exclusions reads `rejected_by`)."""
    ctx = ctx_of(event)
    rejection = rules.rejection_event(ctx.case)
    ctx.event_data.update(rejected_by=rejection.actor_id, rejected_at=rejection.from_state)
    if rejection.data.get("on_behalf_of_id"):    # a delegate rejected it: its principal is bound too
        ctx.event_data["rejected_for"] = rejection.data["on_behalf_of_id"]


# --- lifecycle kinds ---------------------------------------------------------------------------------

def record_evaluation(event) -> None:
    """见习期工作表现评价: the supervisor's score and form; the latest skill appraisal is recorded with it."""
    ctx = ctx_of(event)
    value = ctx.data["score"]   # kept on the event: an extended probation is evaluated again
    skill = rules.latest_score(ctx.case.employee, "skill_test")
    ctx.event_data.update(score=value, form=ctx.data.get("form") or {}, decision=True, skill_appraisal=None
                          if skill is None else {"period": skill.period, "value": skill.value,
                                                 "passed": rules.score_passed(ctx.policy, skill)})


def _set_grade(ctx: ActionContext, level: str, tier: int, day) -> None:
    emp = ctx.case.employee
    db.session.add(GradeHistory(person=emp, from_grade=emp.grade, to_grade=f"{level}-{tier}", effective_on=day,
                                case_id=ctx.case.id, source="case"))
    ctx.event_data["grade"] = {"from": emp.grade, "to": f"{level}-{tier}", "on": day.isoformat()}
    emp.level, emp.tier, emp.grade_since = level, tier, day
    ctx.case.effective_on = day


def confirm_probation(event) -> None:
    """转正: the first regular grade of the policy; the person is active."""
    ctx = ctx_of(event)
    if ctx.case.employee.level is None:   # transferred staff keep the grade they hold
        level, tier = ctx.policy.parse_grade(ctx.policy.kind("probation").first_grade)
        ctx.case.target_level, ctx.case.target_tier = level, tier
        _set_grade(ctx, level, tier, ctx.today)
    ctx.case.employee.status = "active"
    ctx.case.outcome = "confirmed"


def extend_probation(event) -> None:
    ctx = ctx_of(event)
    ctx.case.due_on = clock.add_months(ctx.case.due_on, ctx.data["months"])
    ctx.case.extensions = (ctx.case.extensions or 0) + 1
    ctx.event_data.update(months=ctx.data["months"], due_on=ctx.case.due_on.isoformat(), decision=True)


def fail_probation(event) -> None:
    """辞退或换岗: a failed probation ends in dismissal (a dismissal case opens) or a transfer."""
    from . import engine   # the engine imports this module
    ctx = ctx_of(event)
    ctx.case.outcome = ctx.data["outcome"]
    if ctx.case.outcome == "dismissal":
        # A delegate fails it in HR's authority: the dismissal case is HR's, opened by the delegate.
        follow = engine.open_case("dismissal", ctx.signer, ctx.case.employee, reason="probation_failed",
                                  comment=ctx.comment, today=ctx.today, related=ctx.case,
                                  acted_by=ctx.actor if ctx.on_behalf_of is not None else None)
        ctx.event_data["dismissal_case"] = follow.id
    ctx.event_data["outcome"] = ctx.case.outcome


def record_objection(event) -> None:
    ctx = ctx_of(event)
    ctx.event_data["statement"] = ctx.data["statement"].strip()


def record_appeal(event) -> None:
    ctx = ctx_of(event)
    ctx.event_data["statement"] = ctx.data["statement"].strip()


def demote(event) -> None:
    """One level down; the tier in the lower level follows the policy (top, bottom or the same)."""
    ctx = ctx_of(event)
    emp, pol = ctx.case.employee, ctx.policy
    level = pol.ladder[pol.level_index(emp.level) - 1]
    rule = pol.kind("demotion").tier_after
    tier = level.tiers if rule == "top" else 1 if rule == "bottom" else min(emp.tier, level.tiers)
    ctx.case.target_level, ctx.case.target_tier = level.id, tier
    _set_grade(ctx, level.id, tier, ctx.today)
    _release_portfolio(ctx, "demotion")


def transfer(event) -> None:
    """转岗: the employee accepts a transfer instead of dismissal."""
    ctx = ctx_of(event)
    emp, unit = ctx.case.employee, ctx.data["unit"]
    ctx.event_data["transfer"] = {"from": emp.unit.code, "to": unit.code}
    emp.unit = unit
    ctx.case.outcome = "transferred"


def dismiss(event) -> None:
    """The employment ends: status dismissed, every session and token stops, other open cases close."""
    from . import engine
    ctx = ctx_of(event)
    emp = ctx.case.employee
    emp.status = "dismissed"
    emp.session_generation = (emp.session_generation or 0) + 1
    db.session.query(ApiToken).filter_by(person_id=emp.id, revoked=False).update({"revoked": True})
    ctx.case.effective_on, ctx.case.outcome = ctx.today, "dismissed"
    _release_portfolio(ctx, "dismissal")
    others = db.session.scalars(select(Case).where(Case.employee_id == emp.id, Case.closed.is_(False),
                                                   Case.id != ctx.case.id).order_by(Case.id)).all()
    for other in others:
        engine.fire(other, "close", None, {"comment": f"the employment ended (dismissal case {ctx.case.id})"},
                    today=ctx.today)
    ctx.event_data["closed_cases"] = [c.id for c in others]
    # Cases waiting on the person in one of their roles go to whoever holds it now.
    ctx.event_data["rerouted_cases"] = [c.id for c in engine.refresh_assignments(emp, ctx.today)]
