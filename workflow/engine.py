"""The engine: files cases and fires actions. Nothing else changes a case's state.

`fire()` checks the state (409), the authority (403) and the body (400/422), runs the transition of the
case kind's rulebook, appends the audit event, routes the next step and flushes. It never commits: the
caller commits once, so the change and its audit event land together or not at all.
"""
from __future__ import annotations

import datetime as dt
import weakref
from typing import Any

from sqlalchemy import inspect as sa_inspect, or_, select
from sqlalchemy.orm.exc import StaleDataError

from . import audit, authority, clock, delegation, notify, policy as policy_mod, routing, rules, signing
from .context import ActionContext
from .errors import Conflict, Forbidden, Invalid, NotFound, Refused
from .i18n import _l, term
from .machines import Rulebook, rulebook
from .models import db, Case, CaseAssignee, OrgUnit, Person, PolicyVersion, Setting
from .policy import Policy

ACTIVE_POLICY_KEY = "active_policy_version"


class Stale(Conflict):
    """The case row changed under us (another transaction committed first)."""


# --- policies ----------------------------------------------------------------------------------------

def register_policy(pol: Policy, source: str) -> PolicyVersion:
    """The stored version of a policy (created the first time its content is seen)."""
    pv = db.session.scalar(select(PolicyVersion).where(PolicyVersion.hash == pol.hash))
    if pv is None:
        pv = PolicyVersion(policy_id=pol.id, label=pol.label, hash=pol.hash, source=source,
                           content=policy_mod.canonical(pol.document))
        db.session.add(pv)
        db.session.flush()
    return pv


def activate_policy(pol: Policy, source: str) -> PolicyVersion:
    """Make a policy the active one for new cases; cases in flight keep theirs."""
    pv = register_policy(pol, source)
    setting = db.session.get(Setting, ACTIVE_POLICY_KEY)
    if setting is None:
        db.session.add(Setting(key=ACTIVE_POLICY_KEY, value=str(pv.id)))
    else:
        setting.value = str(pv.id)
    db.session.flush()
    return pv


def active_policy() -> tuple[PolicyVersion, Policy]:
    setting = db.session.get(Setting, ACTIVE_POLICY_KEY)
    if setting is None:
        raise Refused(_l("no policy is active: run `flask --app wsgi init-db --policy NAME`"))
    pv = db.session.get(PolicyVersion, int(setting.value))
    return pv, _version_policy(pv.id, pv)


def policy_for(case: Case) -> Policy:
    """The policy version the case started under; it finishes under it."""
    return _version_policy(case.policy_version_id, None, case)


# A stored policy version never changes, so its parsed Policy is kept per database and version id: deciding
# needs neither the version's row nor the hash of its content.
_by_version: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _version_policy(pv_id: int, pv: PolicyVersion | None, case: Case | None = None) -> Policy:
    known = _by_version.setdefault(db.session.get_bind(), {})
    pol = known.get(pv_id)
    if pol is None:
        pv = pv or case.policy_version
        pol = known[pv_id] = policy_mod.from_stored(pv.content)
    return pol


# --- filing ------------------------------------------------------------------------------------------

def check_target(pol: Policy, employee: Person, target_grade: Any, exceptional: bool) -> tuple[str, int]:
    """Parse and check a promotion's target grade: the next tier or the next level's first tier, or a skip
    when the case is exceptional."""
    if not isinstance(target_grade, str) or not target_grade.strip():
        raise Invalid(_l("target_grade must be a grade such as 'senior' or 'senior-2'"), field="target_grade")
    if employee.level is None:
        raise Refused(_l("%(username)s holds no grade of the ladder", username=employee.username), field="employee")
    try:
        level, tier = pol.parse_grade(target_grade)
    except ValueError as exc:
        raise Refused(_l("target_grade: %(problem)s", problem=str(exc)), field="target_grade") from None
    cur = (pol.level_index(employee.level), employee.tier)
    if (pol.level_index(level), tier) <= cur:
        raise Refused(_l("target_grade %(target)s is not above the current grade %(grade)s", target=f"{level}-{tier}",
                         grade=employee.grade), field="target_grade")
    if (level, tier) not in pol.next_grades(employee.level, employee.tier) and not exceptional:
        normal = ", ".join(f"{lv}-{t}" for lv, t in pol.next_grades(employee.level, employee.tier))
        raise Refused(_l("%(target)s skips a grade (the next is %(next)s); only an exceptional promotion may do that",
                         target=f"{level}-{tier}", next=normal), field="target_grade")
    return level, tier


def preview_eligibility(employee: Person, target_grade: str, today: dt.date | None = None):
    """Eligibility of a promotion before it is filed: (level, tier, [{rule, required, actual, passed}])."""
    _, pol = active_policy()
    level, tier = check_target(pol, employee, target_grade, exceptional=True)
    return level, tier, rules.evaluate(employee, pol, level, today or clock.today())


def create_promotion(filer: Person, employee: Person, target_grade: Any, statement: Any = "",
                     exceptional: Any = False, today: dt.date | None = None, round: Any = None) -> Case:
    """File a promotion; with `round` (an id), into that promotion round (window, scope and levels checked;
    eligibility and last year's performance as of the round's opening)."""
    today = today or clock.today()
    pv, pol = active_policy()
    rb = rulebook("promotion")
    allowed = authority.can_file_for(filer, employee)
    if not allowed:
        raise Forbidden(allowed.reason)
    if not isinstance(statement, str):
        raise Invalid(_l("statement must be text"), field="statement")
    if not isinstance(exceptional, bool):
        raise Invalid(_l("exceptional must be true or false"), field="exceptional")
    if employee.status == "dismissed":
        raise Refused(_l("%(username)s is no longer employed", username=employee.username), field="employee")
    level, tier = check_target(pol, employee, target_grade, exceptional)
    if db.session.scalar(select(Case.id).where(Case.employee_id == employee.id, Case.kind == rb.kind,
                                               Case.closed.is_(False))):
        raise Refused(_l("%(username)s already has an open promotion case", username=employee.username),
                      field="employee")
    rnd = None
    if round is not None:
        from .rounds import round_for_application   # rounds imports this module
        rnd = round_for_application(round, employee, level, exceptional, today)
    as_of = rnd.opens_on if rnd is not None else today
    results = rules.evaluate(employee, pol, level, as_of)
    failed = rules.failed_rules(results)
    if failed and not exceptional:
        raise Refused(_l("not eligible: %(rules)s (file it as exceptional to go on)", rules=", ".join(failed)),
                      eligibility=results)
    case = Case(kind=rb.kind, employee=employee, filed_by=filer, policy_version=pv, state=rb.created,
                exceptional=exceptional, statement=statement.strip(), from_level=employee.level,
                from_tier=employee.tier, target_level=level, target_tier=tier, eligibility=results,
                eligible=not failed,
                annual_performance=rules.year_average(employee, "performance", as_of.year - 1),
                version=1, closed=False, step_unit=employee.unit, created_at=clock.now(), updated_at=clock.now(),
                round_id=rnd.id if rnd is not None else None)
    # Route first: if nobody can act, nothing is written.
    _route_state(case, rb, pol, today, entering=True, dry_run=True)
    db.session.add(case)
    db.session.flush()
    if filer.id == employee.id:
        role, unit = "employee", employee.unit.code
    else:
        ra = authority.hr_assignment_over(filer, employee.unit)
        role, unit = "hr", ra.unit.code
    created = {"target_grade": case.target_grade, "exceptional": exceptional, "eligible": not failed}
    if rnd is not None:
        created["round"] = rnd.id
    audit.append(case, action="create", actor=filer, role=role, unit=unit, from_state=None, to_state=case.state,
                 comment="", data=created)
    _route_state(case, rb, pol, today, entering=True)
    notify.routed(case, "create", filer, None)
    db.session.flush()
    return case


# --- lifecycle cases ---------------------------------------------------------------------------------

REASONS = {"demotion": ("recompete", "misconduct", "absence"),
           "dismissal": ("probation_failed", "consecutive_demotions", "misconduct", "skill_test_failed")}
SEVERITIES = ("minor", "major", "severe")


def _kind_policy_or_refuse(pol: Policy, kind: str):
    try:
        return pol.kind(kind)
    except KeyError:
        raise Refused(_l("the policy %(policy)s has no '%(kind)s' section", policy=pol.label, kind=kind)) from None


def _open(kind: str, filer: Person | None, employee: Person, pv: PolicyVersion, pol: Policy, today: dt.date,
          acted_by: Person | None = None, **fields) -> Case:
    rb = rulebook(kind)
    if db.session.scalar(select(Case.id).where(Case.employee_id == employee.id, Case.kind == kind,
                                               Case.closed.is_(False))):
        raise Refused(_l("%(username)s already has an open %(kind)s case", username=employee.username,
                         kind=term("kind", kind)), field="employee")
    case = Case(kind=kind, employee=employee, filed_by=filer, policy_version=pv, state=rb.created, version=1,
                closed=False, step_unit=employee.unit, from_level=employee.level, from_tier=employee.tier,
                created_at=clock.now(), updated_at=clock.now(), **fields)
    _route_state(case, rb, pol, today, entering=True, dry_run=True)
    db.session.add(case)
    db.session.flush()
    if filer is None:
        role = unit = None
    else:
        ra = authority.hr_assignment_over(filer, employee.unit) or authority.supervisor_assignment_over(
            filer, employee.unit)
        role, unit = (ra.role, ra.unit.code) if ra else ("employee", filer.unit.code)
    created = {k: (v.isoformat() if isinstance(v, dt.date) else v)
               for k, v in fields.items() if k in ("reason", "severity", "due_on")}
    if acted_by is not None:   # a delegate opened it in the filer's authority (workflow/delegation.py)
        created.update(on_behalf_of=filer.username, on_behalf_of_id=filer.id)
    audit.append(case, action="create", actor=acted_by or filer, role=role, unit=unit, from_state=None,
                 to_state=case.state, comment=case.statement, data=created)
    _route_state(case, rb, pol, today, entering=True)
    notify.routed(case, "create", filer, None)
    flush()
    return case


def open_probation(employee: Person, filer: Person | None = None, today: dt.date | None = None) -> Case:
    """见习期 starts: on hire, or on import with status probation. It ends the policy's months after
    `hired_on` (clamped to the month's end)."""
    today = today or clock.today()
    pv, pol = active_policy()
    kp = _kind_policy_or_refuse(pol, "probation")
    if filer is not None and (filer.id == employee.id or not authority.hr_assignment_over(filer, employee.unit)):
        raise Forbidden(_l("only HR over %(unit)s may start a probation for %(username)s", unit=employee.unit.code,
                           username=employee.username))
    if employee.status == "dismissed":
        raise Refused(_l("%(username)s is no longer employed", username=employee.username), field="employee")
    if employee.status != "probation":
        raise Refused(_l("%(username)s is %(status)s; a probation is for new or transferred account managers in "
                         "status probation", username=employee.username, status=employee.status), field="employee")
    employee.status = "probation"
    start = employee.hired_on or today
    return _open("probation", filer, employee, pv, pol, today, reason="hire",
                 due_on=clock.add_months(start, kp.months))


def open_case(kind: str, filer: Person | None, employee: Person, *, reason: Any, severity: Any = None,
              comment: Any = "", today: dt.date | None = None, related: Case | None = None,
              acted_by: Person | None = None) -> Case:
    """Open a demotion or dismissal case. Misconduct is brought by the direct supervisor or HR, with a
    severity whose sanctions (policy) include this kind; other grounds by HR or the system. `acted_by`: the
    delegate who opens it on the filer's behalf (the filer's authority; the event names both)."""
    today = today or clock.today()
    if kind not in REASONS:
        raise Invalid(_l("unknown kind '%(kind)s'", kind=kind), field="kind")
    pv, pol = active_policy()
    _kind_policy_or_refuse(pol, kind)
    if reason not in REASONS[kind]:
        raise Invalid(_l("reason must be one of %(reasons)s", reasons=", ".join(REASONS[kind])), field="reason")
    if not isinstance(comment, str):
        raise Invalid(_l("comment must be text"), field="comment")
    if filer is not None:
        hr = authority.hr_assignment_over(filer, employee.unit)
        sup = authority.supervisor_assignment_over(filer, employee.unit)
        if filer.id == employee.id or not (hr or (sup and reason == "misconduct")):
            raise Forbidden(_l("only HR over %(unit)s, or the direct supervisor for misconduct, may open a %(kind)s case "
                               "for %(username)s", unit=employee.unit.code, kind=term("kind", kind),
                               username=employee.username))
    if reason == "misconduct":
        if severity not in SEVERITIES:
            raise Invalid(_l("severity must be one of %(severities)s", severities=", ".join(SEVERITIES)), field="severity")
        allowed = pol.sanctions.get(severity, ())
        if kind not in allowed:
            raise Refused(_l("the policy allows %(allowed)s for %(severity)s misconduct, not %(kind)s",
                             allowed=", ".join(allowed) or _l("no sanction"), severity=severity, kind=kind),
                          field="severity")
        if not comment.strip():
            raise Refused(_l("misconduct needs a comment stating the facts"), field="comment")
    elif severity is not None:
        raise Invalid(_l("severity is only for misconduct"), field="severity")
    if employee.status == "dismissed":
        raise Refused(_l("%(username)s is no longer employed", username=employee.username), field="employee")
    if kind == "demotion":
        if employee.level is None:
            raise Refused(_l("%(username)s holds no grade of the ladder", username=employee.username), field="employee")
        if pol.level_index(employee.level) == 0:
            raise Refused(_l("%(username)s is at the lowest level and cannot move down", username=employee.username),
                          field="employee")
    return _open(kind, filer, employee, pv, pol, today, acted_by=acted_by, reason=reason, severity=severity,
                 statement=comment.strip(), related_case=related)


# --- firing actions ----------------------------------------------------------------------------------

def fire(case: Case, action: str, actor: Person | None, data: dict[str, Any] | None = None, *,
         expected_version: Any = None, today: dt.date | None = None, round_decision: bool = False) -> Case:
    """Take `action` on `case` as `actor` (None: the system). Raises a WorkflowError subclass.
    `round_decision`: taken by the decision of the case's round (workflow/rounds.decide_round)."""
    rb = rulebook(case.kind)
    if action not in rb.actors and not (actor is None and action in rb.automatic):
        raise NotFound(_l("unknown action '%(action)s' for a %(kind)s case", action=action, kind=case.kind))
    if not rb.can_fire(case.state, action):
        raise Conflict(_l("the case is %(state)s; '%(action)s' is not possible now", state=term("state", case.state),
                          action=term("action", action)), state=case.state)
    authority.require(actor, case, action, rb, round_decision)
    if expected_version is not None and action not in rb.version_free:
        if isinstance(expected_version, bool) or not isinstance(expected_version, int):
            raise Invalid(_l("version must be an integer"), field="version")
        if expected_version != case.version:
            raise Conflict(_l("the case has changed since version %(seen)s (now %(now)s); reload it",
                              seen=expected_version, now=case.version), version=case.version)
    pol = policy_for(case)
    ctx = ActionContext(case=case, action=action, actor=actor, policy=pol, today=today or clock.today(),
                        data=dict(data or {}), round_decision=round_decision)
    role, unit = authority.capacity(actor, case, action, rb, round_decision)
    ctx.on_behalf_of = authority.acting_for(actor, case, action, rb, round_decision)
    if ctx.on_behalf_of is not None:   # a delegate acts in the principal's capacity (workflow/delegation.py)
        ctx.event_data.update(on_behalf_of=ctx.on_behalf_of.username, on_behalf_of_id=ctx.on_behalf_of.id)
    from_state = case.state
    # A committee member's vote is counted in its event (管理小组: members, needed, approvals, rejections).
    votes = None if round_decision or actor is None else signing.tally(case, pol, signing.signer_of(ctx), action)
    if not rb.machine.events[action].trigger(case, ctx=ctx):
        raise Refused(_l("'%(action)s' is not possible: its conditions do not hold", action=term("action", action)))
    if votes is not None:
        ctx.event_data["committee"] = votes
    if action in rb.decisions:
        ctx.event_data.update(decision=True, step=rb.steps.get(from_state, from_state))
    if round_decision:
        ctx.event_data["round"] = case.round_id
    audit.append(case, action=action, actor=actor, role=role, unit=unit, from_state=from_state,
                 to_state=case.state, comment=ctx.comment, data=ctx.event_data)
    # Routing reads what the transition wrote (flushed by _route_state) and adds the new assignees; they and
    # the case's new step are written by the one flush below, not by an autoflush before each look-up.
    with db.session.no_autoflush:
        if case.state != from_state or ctx.reroute:
            _route_state(case, rb, pol, ctx.today, entering=case.state != from_state)
            if case.state == from_state:
                delegation.reapply_hand_overs(case)   # 转办 in this step outlives its rerouting
        case.updated_at = clock.now()
        for auto in rb.automatic:
            if rb.can_fire(case.state, auto):
                auto_ctx = ActionContext(case=case, action=auto, actor=None, policy=pol, today=ctx.today)
                before = case.state
                if rb.machine.events[auto].trigger(case, ctx=auto_ctx):
                    audit.append(case, action=auto, actor=None, from_state=before, to_state=case.state,
                                 data=auto_ctx.event_data)
                    _route_state(case, rb, pol, ctx.today, entering=True)
        notify.routed(case, action, actor, from_state)
    flush()
    return case


def flush() -> None:
    try:
        db.session.flush()
    except StaleDataError:
        raise Stale("another decision on this case came first; reload it") from None


def available_actions(case: Case, person: Person) -> list[str]:
    """The actions `person` may take on `case` now (what the pages show as buttons)."""
    rb = rulebook(case.kind)
    return [a for a in rb.actions() if rb.can_fire(case.state, a) and authority.can(person, case, a, rb)
            and rb.available_when.get(a, bool)(case)]


# --- routing the current state -----------------------------------------------------------------------

def exclusions(case: Case, step: str | None) -> dict[int, str]:
    """Who may not act on `step`: the applicant (self), declared conflicts and, four eyes, whoever took a
    decision of another step of the case (conflict) — where the case's state is one that decides."""
    excluded = {case.employee_id: "self"}
    rb = rulebook(case.kind)
    if not any(rb.can_fire(case.state, a) for a in rb.decisions):
        step = None   # an administrative state (e.g. probation running): no decision, no four-eyes rule
    if case.reason == "misconduct" and case.filed_by_id:
        excluded.setdefault(case.filed_by_id, "conflict")    # who brings an accusation does not judge it
    for c in case.conflicts:
        excluded.setdefault(c.person_id, "conflict")
    for ev in case.events:    # a rejection overturned on appeal: its author no longer decides the case
        if ev.action == "reinstate" and ev.data.get("rejected_by"):
            excluded.setdefault(ev.data["rejected_by"], "conflict")
            if ev.data.get("rejected_for"):
                excluded.setdefault(ev.data["rejected_for"], "conflict")
    for ev in case.events if step else ():
        if authority.decided_by(ev) and ev.data.get("step") != step:
            excluded.setdefault(authority.decided_by(ev), "conflict")
            if ev.data.get("on_behalf_of_id"):   # a delegate's decision binds its principal too
                excluded.setdefault(ev.data["on_behalf_of_id"], "conflict")
    return excluded


def _route_state(case: Case, rb: Rulebook, pol: Policy, today: dt.date, entering: bool,
                 dry_run: bool = False) -> None:
    """Compute and store who acts in the case's current state, at which unit, why and by when."""
    if not dry_run:
        # Computed afresh; an assignee who stays (same person and duty) keeps their row, so the old rows need
        # no DELETE flushed before the new ones' INSERT: one flush writes the decision and its routing.
        case._previous_assignees = {(a.person_id, a.duty): a for a in case.assignments}
        case.assignments.clear()
    if case.state in rb.terminal:
        case.closed, case.step_unit, case.routing_reason, case.routing_from_unit = True, None, None, None
        case.deadline = None
        return
    special = rb.routes.get(case.state)
    if special:
        _route_to_person(case, special, pol, today, entering, dry_run)
        return
    step = rb.steps[case.state]
    excluded = exclusions(case, step) if case.id else {case.employee_id: "self"}
    if entering:
        case.escalations = 0
    if case.kind == "promotion":
        found = routing.route(pol, case.employee, case.target_level, step, case.exceptional, excluded,
                              case.escalations or 0)
        days = pol.steps[step].deadline_days
    else:
        spec = pol.kind(case.kind).steps[step]
        found = routing.route_at(pol, case.employee, spec.role, pol.org_level_index(spec.org_level), excluded,
                                 step=step, escalations=case.escalations or 0)
        days = spec.deadline_days
    if dry_run:
        return
    case.step_unit, case.routing_reason = found.unit, found.reason
    case.routing_from_unit = found.named_unit if found.reason in ("vacancy", "self", "conflict",
                                                                  "escalated") else None
    if case.state == "publicity":
        days = pol.publicity_days
    elif case.state == "hr_approval" and case.round_id is not None:
        days = None    # decided with its round, against the quotas, when HR decides the round: no deadline
    if entering or case.deadline is None:   # a new step, or an escalated one: the clock starts again
        case.deadline = (case.effective_on if case.state == "approved" else case.due_on
                         if case.state == "in_probation" else
                         clock.add_working_days(today, days, pol.holidays) if days else None)
    if case.state == "panel_scoring":
        _assign(case, found.people, "assign_panel", found.role, found.unit)
        if not any(s.component == "supervisor" for s in case.scores):
            sup = routing.supervisors_of(case.employee, {k: v for k, v in excluded.items() if k != case.employee_id})
            if sup is None:
                raise Refused(_l("%(username)s has no supervisor to give the supervisor evaluation",
                                   username=case.employee.username))
            _assign(case, sup[1], "supervisor", "supervisor", sup[0])
        scored = {s.scorer_id for s in case.scores if s.component == "panel"}
        _assign(case, [m.person for m in case.panel if m.person_id not in scored], "panel", "panel", found.unit)
    else:   # 或签, 会签, a committee, signers added before or after someone (workflow/signing.py)
        for person, role, unit in signing.deciders(case, pol, found, excluded, entering):
            _assign(case, [person], "decide", role, unit)


def _route_to_person(case: Case, special: str, pol: Policy, today: dt.date, entering: bool,
                     dry_run: bool) -> None:
    """States whose assignee is a person, not the holders of a policy step: the applicant (returned, notice),
    the direct supervisor (probation evaluation), an approver above the one who confirmed (appeal)."""
    case.routing_reason, case.routing_from_unit = None, None
    if special == "applicant":
        case.step_unit = case.employee.unit
        if case.state == "notice":
            if entering:
                case.deadline = today + dt.timedelta(days=pol.kind(case.kind).appeal_days)
        else:
            case.deadline = None
        if not dry_run:
            _assign(case, [case.employee], "applicant", "employee", case.employee.unit)
        return
    excluded = exclusions(case, case.state)
    if special == "supervisor":
        found = routing.supervisors_of(case.employee, {k: v for k, v in excluded.items() if k != case.employee_id})
        if found is None:
            raise Refused(_l("%(username)s has no supervisor to give the evaluation", username=case.employee.username))
        case.step_unit = found[0]
        if entering:
            case.deadline = case.due_on
        if not dry_run:
            _assign(case, found[1], "supervisor", "supervisor", found[0])
        return
    # special == "appeal": an approver one org level above the unit where the appealed decision was taken.
    decided = next(ev for ev in reversed(case.events) if ev.action in rulebook(case.kind).appealed)
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == decided.unit))
    found = routing.route_above(unit, APPEAL_ROLES, excluded, case.state)
    case.step_unit, case.routing_reason, case.closed = found.unit, found.reason, False   # reopens a rejection
    case.routing_from_unit = found.named_unit if found.reason else None
    if entering:
        days = (pol.steps["qualification_review"] if case.kind == "promotion"
                else pol.kind(case.kind).steps["review"]).deadline_days
        case.deadline = clock.add_working_days(today, days, pol.holidays) if days else None
    if not dry_run:
        _assign(case, found.people, "decide", found.role, found.unit)


APPEAL_ROLES = ("approver", "hr")   # who hears an appeal: an approver above; HR when no approver is left


def _assign(case: Case, people, duty: str, role: str, unit) -> None:
    previous = getattr(case, "_previous_assignees", {})
    for p in people:
        a = previous.pop((p.id, duty), None)
        if a is None or sa_inspect(a).was_deleted:   # (an autoflush outside fire() may have deleted it)
            a = CaseAssignee(person=p, duty=duty, role=role, unit=unit)
        else:
            a.role, a.unit = role, unit
        case.assignments.append(a)


# --- people changing ---------------------------------------------------------------------------------

def refresh_assignments(person: Person, today: dt.date | None = None) -> list[Case]:
    """After the person's roles changed: every open case waiting on them in a role they no longer hold is
    routed afresh by the system (a `reroute` event says why)."""
    waiting = select(CaseAssignee.case_id).where(CaseAssignee.person_id == person.id)
    cases = db.session.scalars(select(Case).where(Case.id.in_(waiting), Case.closed.is_(False))
                               .order_by(Case.id)).all()
    moved = []
    for case in cases:
        lost = sorted({f"{a.role}@{a.unit.code}" if a.unit else a.role for a in case.assignments
                       if a.person_id == person.id and not authority.holds_assignment(person, a)})
        if lost and rulebook(case.kind).can_fire(case.state, "reroute"):
            fire(case, "reroute", None, {"comment": f"{person.username} no longer holds {', '.join(lost)}"},
                 today=today)
            moved.append(case)
    return moved


# --- time --------------------------------------------------------------------------------------------

def due_for_tick(today: dt.date) -> list[tuple[int, str]]:
    """(case id, action) pairs that time has brought: promotions whose effective date has come, and steps
    overdue past the policy's escalation limit."""
    soon = today + dt.timedelta(days=MAX_LEAD_DAYS)
    candidates = db.session.scalars(select(Case).where(Case.closed.is_(False), or_(
        Case.effective_on <= today, Case.deadline < today, Case.due_on <= soon)).order_by(Case.id))
    return [(c.id, action) for c in candidates for action in TIMED_ACTIONS if is_due(c, action, today)]


TIMED_ACTIONS = ("make_effective", "escalate", "open_evaluation", "close_notice", "end_publicity")
MAX_LEAD_DAYS = 90   # the longest evaluation lead a policy may set


def is_due(case: Case, action: str, today: dt.date) -> bool:
    """Has time brought `action` on this case? (`tick` asks again under the row lock.)"""
    if case.closed or not rulebook(case.kind).can_fire(case.state, action):
        return False
    if action == "make_effective":
        return case.effective_on is not None and case.effective_on <= today
    if action == "escalate":
        return rules.escalation_due(case, policy_for(case), today)
    if action == "open_evaluation":
        lead = policy_for(case).kind("probation").evaluation_lead_days
        return case.due_on is not None and today >= case.due_on - dt.timedelta(days=lead)
    if action == "close_notice":
        return case.deadline is not None and today > case.deadline
    if action == "end_publicity":
        return case.deadline is not None and today > case.deadline and not rules.pending_objections(case)
    return False


def is_overdue(case: Case, today: dt.date | None = None) -> bool:
    return bool(case.deadline and not case.closed and (today or clock.today()) > case.deadline)
