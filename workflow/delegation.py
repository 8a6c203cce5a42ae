"""Delegation (代理), 转办 (hand over a task) and 抄送 (copy a case for information).

- A **delegation** is standing: an approver or HR person names a colleague who takes their own `decide` and
  `assign_panel` duties from one date to another. The delegate acts "on behalf of" the principal; the
  audit event records the principal's role and unit, `on_behalf_of` and the delegate as the actor. The
  delegate must hold no conflict on the case (not the applicant, no declared conflict, no decision of
  another step: engine.exclusions) and be employed. Only one's own duties are delegated, one level deep:
  a delegate never passes on what they hold for someone else.
- **hand_over** (转办) is one task: a current assignee hands their duty on this step to a person who holds
  the same role at the step's unit or above it (where the authority matrix would send the step on a
  vacancy or an escalation), with the same exclusions. The assignee row is replaced.
- **copy** (抄送): an assignee or HR over the employee's unit lets someone read the case; a copy gives no
  authority (authority.can refuses every action of a copy recipient that nothing else allows, saying so).

The engine's authority checks (workflow/authority.py) call `acting_for`, `hand_over_decision` and
`copy_decision`; the machines take `hand_over` and `copy` from workflow/machines/handover.py.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select

from . import audit, clock
from .errors import Conflict, Forbidden, Invalid, NotFound, Refused
from .i18n import _l, term
from .models import db, MAX_ID, Case, CaseAssignee, CaseCopy, Delegation, OrgUnit, Person

DELEGATING_ROLES = ("approver", "hr")             # whose duties may be delegated
DELEGABLE_DUTIES = ("decide", "assign_panel")     # the duties of those roles on a step
TRANSFERABLE_DUTIES = ("decide", "assign_panel", "supervisor")   # 转办: one's own task on this step
MAX_DAYS = 366                                    # the longest delegation
COMMENT_MAX = 2000


# --- standing delegations ----------------------------------------------------------------------------

def _delegating_roles(person: Person):
    return [ra for ra in person.roles if ra.role in DELEGATING_ROLES]


def _overlapping(q, starts_on: dt.date, ends_on: dt.date):
    return q.where(Delegation.revoked_at.is_(None), Delegation.starts_on <= ends_on,
                   Delegation.ends_on >= starts_on)


def _date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise Invalid(_l("%(field)s must be a date (YYYY-MM-DD)", field=field), field=field)
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(_l("%(field)s must be a date (YYYY-MM-DD), not %(value)s", field=field,
                         value=repr(value)), field=field) from None


def _person(username: Any, field: str) -> Person:
    if not isinstance(username, str) or not username.strip():
        raise Invalid(_l("%(field)s must be a username", field=field), field=field)
    person = db.session.scalar(select(Person).where(Person.username == username.strip()))
    if person is None:
        raise Refused(_l("no person '%(name)s'", name=username.strip()), field=field)
    return person


def _comment(value: Any, field: str = "comment") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(_l("%(field)s must be text", field=field), field=field)
    if len(value) > COMMENT_MAX:
        raise Invalid(_l("%(field)s is longer than %(n)s characters", field=field, n=COMMENT_MAX),
                      field=field)
    return value.strip()


def create(principal: Person, delegate: Any, starts_on: Any, ends_on: Any, comment: Any = "",
           today: dt.date | None = None) -> Delegation:
    """The principal names `delegate` (a Person or a username) to act for them from `starts_on` to `ends_on`
    (dates or ISO strings, both included). Recorded as a `delegate` event of the principal's audit chain."""
    today = today or clock.today()
    if not isinstance(delegate, Person):
        delegate = _person(delegate, "delegate")
    starts_on, ends_on = _date(starts_on, "starts_on"), _date(ends_on, "ends_on")
    comment = _comment(comment)
    if principal.status == "dismissed":
        raise Forbidden(_l("your employment has ended"))
    roles = _delegating_roles(principal)
    if not roles:
        raise Forbidden(_l("only an approver or HR may delegate: you hold neither role, and what you act "
                           "on for someone else is not yours to delegate"))
    if delegate.id == principal.id:
        raise Refused(_l("a delegation to oneself is not possible"), field="delegate")
    if delegate.status == "dismissed":
        raise Refused(_l("%(name)s is no longer employed", name=delegate.username), field="delegate")
    if not any(ra.unit.contains(delegate.unit) or delegate.unit.contains(ra.unit) for ra in roles):
        units = ", ".join(sorted({ra.unit.code for ra in roles}))
        raise Refused(_l("%(name)s works at %(unit)s, neither within nor above the units where you hold "
                         "approver or HR (%(units)s)", name=delegate.username, unit=delegate.unit.code,
                         units=units),
                      field="delegate")
    if ends_on < starts_on:
        raise Refused(_l("the delegation ends (%(end)s) before it starts (%(start)s)",
                         end=ends_on.isoformat(), start=starts_on.isoformat()), field="ends_on")
    if starts_on < today:
        raise Refused(_l("the delegation cannot start in the past (today is %(today)s)",
                         today=today.isoformat()), field="starts_on")
    if (ends_on - starts_on).days + 1 > MAX_DAYS:
        raise Refused(_l("a delegation lasts at most %(n)s days", n=MAX_DAYS), field="ends_on")
    same = db.session.scalar(_overlapping(select(Delegation).where(Delegation.principal_id == principal.id),
                                          starts_on, ends_on).order_by(Delegation.id))
    if same is not None:
        raise Refused(_l("you already delegate to %(name)s from %(start)s to %(end)s (delegation %(id)s); "
                         "revoke it first", name=same.delegate.username, start=same.starts_on.isoformat(),
                         end=same.ends_on.isoformat(), id=same.id), field="starts_on")
    acting = db.session.scalar(_overlapping(select(Delegation).where(Delegation.delegate_id == principal.id),
                                            starts_on, ends_on).order_by(Delegation.id))
    if acting is not None:
        raise Refused(_l("you act for %(name)s from %(start)s to %(end)s; what you hold for someone else is "
                         "not yours to delegate (no chains)", name=acting.principal.username,
                         start=acting.starts_on.isoformat(), end=acting.ends_on.isoformat()),
                      field="delegate")
    away = db.session.scalar(_overlapping(select(Delegation).where(Delegation.principal_id == delegate.id),
                                          starts_on, ends_on).order_by(Delegation.id))
    if away is not None:
        raise Refused(_l("%(name)s has delegated their own duties to %(other)s from %(start)s to %(end)s; a "
                         "delegate must be present (no chains)", name=delegate.username,
                         other=away.delegate.username, start=away.starts_on.isoformat(),
                         end=away.ends_on.isoformat()),
                      field="delegate")
    d = Delegation(principal=principal, delegate=delegate, starts_on=starts_on, ends_on=ends_on,
                   comment=comment, created_at=clock.now(), created_by=principal)
    db.session.add(d)
    db.session.flush()
    ra = roles[0]
    audit.append(principal, action="delegate", actor=principal, role=ra.role, unit=ra.unit.code,
                 comment=comment, data={"delegation": d.id, "delegate": delegate.username,
                                        "starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat()})
    return d


def can_revoke(person: Person, d: Delegation) -> bool:
    """The principal, the delegate (declining it), HR over the principal's unit, or an admin above it."""
    if person.status == "dismissed":
        return False
    if person.id in (d.principal_id, d.delegate_id):
        return True
    return any(ra.role in ("hr", "admin") and ra.unit.contains(d.principal.unit) for ra in person.roles)


def can_see(person: Person, d: Delegation) -> bool:
    return can_revoke(person, d) or person.id in (d.principal_id, d.delegate_id)


def get(delegation_id: Any, viewer: Person) -> Delegation:
    if isinstance(delegation_id, bool) or not isinstance(delegation_id, int) \
            or not 0 < delegation_id <= MAX_ID:
        raise NotFound(_l("no delegation %(id)s", id=delegation_id))
    d = db.session.get(Delegation, delegation_id)
    if d is None or not can_see(viewer, d):
        raise NotFound(_l("no delegation %(id)s", id=delegation_id))
    return d


def revoke(d: Delegation, actor: Person, comment: Any = "", today: dt.date | None = None) -> Delegation:
    """End a delegation now; a `revoke_delegation` event of the principal's chain records who and why."""
    today = today or clock.today()
    comment = _comment(comment)
    if not can_revoke(actor, d):
        raise Forbidden(_l("only the principal, the delegate, or HR or an admin over the principal's unit "
                           "may revoke a delegation"))
    if d.revoked_at is not None:
        raise Conflict(_l("delegation %(id)s was already revoked", id=d.id))
    if d.ends_on < today:
        raise Refused(_l("delegation %(id)s ended on %(day)s; there is nothing to revoke", id=d.id,
                         day=d.ends_on.isoformat()))
    d.revoked_at, d.revoked_by = clock.now(), actor
    role, unit = _capacity_over(actor, d.principal)
    audit.append(d.principal, action="revoke_delegation", actor=actor, role=role, unit=unit, comment=comment,
                 data={"delegation": d.id, "delegate": d.delegate.username})
    db.session.flush()
    return d


def _capacity_over(actor: Person, principal: Person) -> tuple[str | None, str | None]:
    if actor.id == principal.id:
        ra = next(iter(_delegating_roles(actor)), None)
        return (ra.role, ra.unit.code) if ra else ("employee", actor.unit.code)
    ra = next((ra for ra in actor.roles if ra.role in ("hr", "admin") and ra.unit.contains(principal.unit)),
              None)
    return (ra.role, ra.unit.code) if ra else ("employee", actor.unit.code)


def of_person(person: Person):
    """A query of the delegations the person gave or received, the latest first."""
    return (select(Delegation).where(or_(Delegation.principal_id == person.id,
                                         Delegation.delegate_id == person.id))
            .order_by(Delegation.starts_on.desc(), Delegation.id.desc()))


def active_principal_ids(delegate: Person, day: dt.date | None = None):
    """A subquery of the people for whom `delegate` acts on `day`."""
    day = day or clock.today()
    return select(Delegation.principal_id).where(Delegation.delegate_id == delegate.id,
                                                 Delegation.revoked_at.is_(None), Delegation.starts_on <= day,
                                                 Delegation.ends_on >= day)


def delegated_case_ids(delegate: Person, day: dt.date | None = None):
    """A subquery of the cases on which `delegate` may act for a principal now."""
    return select(CaseAssignee.case_id).where(CaseAssignee.person_id.in_(active_principal_ids(delegate, day)),
                                              CaseAssignee.duty.in_(DELEGABLE_DUTIES))


def active_for(principal_ids, day: dt.date | None = None) -> dict[int, Delegation]:
    """The delegation in force on `day` for each of the given principals (one at most per principal)."""
    day = day or clock.today()
    ids = list(principal_ids)
    if not ids:
        return {}
    rows = db.session.scalars(select(Delegation).where(
        Delegation.principal_id.in_(ids), Delegation.revoked_at.is_(None), Delegation.starts_on <= day,
        Delegation.ends_on >= day))
    return {d.principal_id: d for d in rows}


def on_behalf_by_case(delegate: Person, case_ids: list[int],
                      day: dt.date | None = None) -> dict[int, list[Person]]:
    """For each case, the principals for whom `delegate` may act on it now (the inbox's "on behalf of")."""
    out: dict[int, list[Person]] = {}
    if not case_ids:
        return out
    rows = db.session.execute(
        select(CaseAssignee.case_id, Person).join(Person, Person.id == CaseAssignee.person_id)
        .where(CaseAssignee.case_id.in_(case_ids), CaseAssignee.duty.in_(DELEGABLE_DUTIES),
               CaseAssignee.person_id.in_(active_principal_ids(delegate, day)))
        .order_by(CaseAssignee.case_id, Person.username)).all()
    for case_id, person in rows:
        if person not in out.setdefault(case_id, []):
            out[case_id].append(person)
    return out


def in_force(person: Person, day: dt.date | None = None) -> Delegation | None:
    """The delegation the person gave that is in force on `day` (read from the loaded relationship)."""
    day = day or clock.today()
    return next((d for d in person.delegations_given if d.covers(day)), None)


def acting_on(case: Case, day: dt.date | None = None) -> list[dict]:
    """Who acts for whom on the case now: each assignee with a delegable duty whose delegation is in
    force, as {principal, delegate, until}."""
    principals = {a.person.id: a.person for a in case.assignments if a.duty in DELEGABLE_DUTIES}
    found = [(p, in_force(p, day)) for p in sorted(principals.values(), key=lambda p: p.username)]
    return [{"principal": p, "delegate": d.delegate, "until": d.ends_on, "delegation": d.id}
            for p, d in found if d is not None]


def acting_on_case(person: Person, case: Case, day: dt.date | None = None) -> bool:
    """Is `person` the delegate in force of one of the case's assignees with a delegable duty?"""
    return any(a.duty in DELEGABLE_DUTIES and a.person_id != person.id
               and getattr(in_force(a.person, day), "delegate_id", None) == person.id
               for a in case.assignments)


# --- acting on behalf: the engine's authority check ---------------------------------------------------

def _signed_in_stay(case: Case) -> set[int]:
    """Who signed (for themselves or on someone's behalf, both counted) since the case entered its state."""
    signed: set[int] = set()
    for ev in reversed(case.events):
        if ev.from_state != ev.to_state:
            break
        if ev.data.get("decision") or ev.data.get("partial"):
            signed.update(i for i in (ev.actor_id, ev.data.get("on_behalf_of_id")) if i)
    return signed


def conflict_reason(person: Person, case: Case, step: str | None) -> str | None:
    """Why `person` may not act on the case's current step (self, declared conflict, four eyes, dismissed),
    or None."""
    from .engine import exclusions   # the engine imports authority, which imports this module
    if person.status == "dismissed":
        return _l("%(name)s's employment has ended", name=person.username)
    if person.id == case.employee_id:
        return _l("%(name)s is the applicant: nobody acts on their own case", name=person.username)
    why = exclusions(case, step).get(person.id)
    if why == "self":
        return _l("%(name)s is the applicant: nobody acts on their own case", name=person.username)
    if why == "conflict":
        return _l("%(name)s has a conflict on case %(case)s (declared, brought the case, or took a "
                  "decision of another step: four eyes)", name=person.username, case=case.id)
    return None


def acting_for(actor: Person, case: Case, duty: str, step: str | None,
               day: dt.date | None = None) -> tuple[CaseAssignee | None, str | None]:
    """May `actor` take the `duty` of a current assignee on whose behalf they act? (assignment, None) when
    yes; (None, reason) when they are a delegate here but may not act; (None, None) when they are no
    delegate of any assignee with that duty."""
    if duty not in DELEGABLE_DUTIES:
        return None, None
    theirs = [a for a in case.assignments if a.duty == duty and a.person_id != actor.id]
    mine = [a for a in theirs if getattr(in_force(a.person, day), "delegate_id", None) == actor.id]
    if not mine:
        return None, None
    from .authority import holds_assignment   # authority imports this module
    held = [a for a in mine if holds_assignment(a.person, a)]
    if not held:
        return None, _l("%(name)s no longer holds %(role)s; the step is being rerouted",
                        name=mine[0].person.username, role=term("role", mine[0].role))
    why = conflict_reason(actor, case, step)
    if why:
        return None, _l("you act for %(name)s, but %(why)s", name=held[0].person.username, why=why)
    if actor.id in _signed_in_stay(case):
        return None, _l("you have already signed this step (for yourself or on someone's behalf)")
    return held[0], None


# --- 转办 and 抄送: authority ---------------------------------------------------------------------------

def hand_over_refusal(actor: Person, case: Case) -> str | None:
    if actor.status == "dismissed":
        return _l("your employment has ended")
    from .authority import holds_assignment
    mine = [a for a in case.assignments if a.person_id == actor.id and a.duty in TRANSFERABLE_DUTIES]
    if not mine:
        return _l("only a current assignee of this step (an approver, HR or the supervisor) may hand "
                  "over their task")
    if not any(holds_assignment(actor, a) for a in mine):
        return _l("you no longer hold %(role)s; the step is being rerouted", role=term("role", mine[0].role))
    return None


def copy_refusal(actor: Person, case: Case) -> str | None:
    if actor.status == "dismissed":
        return _l("your employment has ended")
    from .authority import hr_assignment_over
    if any(a.person_id == actor.id and a.duty != "applicant" for a in case.assignments):
        return None
    if hr_assignment_over(actor, case.employee.unit):
        return None
    return _l("only a current assignee or HR over %(unit)s may copy this case", unit=case.employee.unit.code)


# --- 转办 and 抄送: the transitions' guards and effects ------------------------------------------------

def _ctx(event):
    return event.kwargs["ctx"]


def _role_unit_for(person: Person, role: str, unit: OrgUnit | None) -> OrgUnit | None:
    """The unit at or above `unit` where `person` holds `role`, nearest first."""
    if unit is None:
        return None
    held = {ra.unit_id: ra.unit for ra in person.roles if ra.role == role}
    return next((u for u in unit.ancestors() if u.id in held), None)


def _step(case: Case) -> str:
    from .machines import rulebook
    return rulebook(case.kind).steps.get(case.state, case.state)


def require_hand_over(event) -> None:
    """转办: `to` (username) must hold the assignment's role at its unit or above, be free of conflicts and
    not already hold the duty; a comment says why."""
    ctx = _ctx(event)
    case, actor = ctx.case, ctx.actor
    to = _person(ctx.data.get("to"), "to")
    if not ctx.comment:
        raise Refused(_l("'%(action)s' needs a comment saying why", action=term("action", "hand_over")),
                      field="comment")
    duty = ctx.data.get("duty")
    mine = [a for a in case.assignments if a.person_id == actor.id and a.duty in TRANSFERABLE_DUTIES]
    if duty is not None:
        if not isinstance(duty, str) or duty not in TRANSFERABLE_DUTIES:
            raise Invalid(_l("duty must be one of %(duties)s", duties=", ".join(TRANSFERABLE_DUTIES)),
                          field="duty")
        mine = [a for a in mine if a.duty == duty]
        if not mine:
            raise Refused(_l("you hold no '%(duty)s' duty on this step", duty=term("duty", duty)),
                          field="duty")
    a = mine[0]
    if to.id == actor.id:
        raise Refused(_l("you cannot hand your task over to yourself"), field="to")
    why = conflict_reason(to, case, _step(case))
    if why:
        raise Refused(why, field="to")
    unit = _role_unit_for(to, a.role, a.unit)
    if unit is None:
        where = a.unit.code if a.unit else case.step_unit.code
        raise Refused(_l("%(name)s does not hold %(role)s at %(unit)s or above: a task is handed over within "
                         "the authority matrix", name=to.username, role=term("role", a.role), unit=where),
                      field="to")
    if any(x.person_id == to.id and x.duty == a.duty for x in case.assignments):
        raise Refused(_l("%(name)s already holds this task on the step", name=to.username), field="to")
    if to.id in _signed_in_stay(case):
        raise Refused(_l("%(name)s has already signed this step", name=to.username), field="to")
    if a.duty == "supervisor" and any(s.scorer_id == to.id for s in case.scores):
        raise Refused(_l("%(name)s has already scored this case", name=to.username), field="to")
    if a.duty == "supervisor" and any(m.person_id == to.id for m in case.panel):
        raise Refused(_l("%(name)s sits on the panel of this case", name=to.username), field="to")
    ctx.data["_hand_over"] = (a, to, unit)


def hand_over(event) -> None:
    ctx = _ctx(event)
    a, to, unit = ctx.data.pop("_hand_over")
    ctx.case.assignments.remove(a)
    ctx.case.assignments.append(CaseAssignee(person=to, person_id=to.id, duty=a.duty, role=a.role, unit=unit))
    ctx.event_data.update(hand_over={"from": ctx.actor.username, "to": to.username, "duty": a.duty,
                                     "role": a.role, "unit": unit.code},
                          from_id=ctx.actor.id, to_id=to.id)


def _pid(a: CaseAssignee) -> int:
    """The assignee's person id (a row routing has just made knows its person, not yet the id)."""
    return a.person_id if a.person_id is not None else a.person.id


def reapply_hand_overs(case: Case) -> None:
    """The step was routed afresh (a conflict declared, roles changed): tasks handed over in this stay of
    the state go again to whom they were handed, if that person may still act; a task whose new holder
    already signed is done."""
    stay = []
    for ev in reversed(case.events):
        if ev.from_state != ev.to_state:
            break
        stay.append(ev)
    signed = _signed_in_stay(case)
    step = _step(case)
    for ev in reversed(stay):
        ho = ev.data.get("hand_over") if ev.action == "hand_over" else None
        if not ho:
            continue
        a = next((x for x in case.assignments if _pid(x) == ev.data.get("from_id") and x.duty == ho["duty"]),
                 None)
        if a is None:
            continue
        to = db.session.get(Person, ev.data.get("to_id"))
        if any(_pid(x) == to.id and x.duty == a.duty for x in case.assignments):
            case.assignments.remove(a)
            continue
        if to.id in signed:
            case.assignments.remove(a)
            continue
        unit = _role_unit_for(to, a.role, a.unit)
        if unit is None or conflict_reason(to, case, step):
            continue     # the new holder may no longer act: the task stays with whom routing named
        case.assignments.remove(a)
        case.assignments.append(CaseAssignee(person=to, person_id=to.id, duty=a.duty, role=a.role, unit=unit))


def require_copy(event) -> None:
    """抄送: `to` (username) reads the case from now on; once per person."""
    ctx = _ctx(event)
    to = _person(ctx.data.get("to"), "to")
    comment = _comment(ctx.data.get("comment"))
    if to.id == ctx.actor.id:
        raise Refused(_l("you cannot copy a case to yourself"), field="to")
    if to.status == "dismissed":
        raise Refused(_l("%(name)s is no longer employed", name=to.username), field="to")
    if to.id == ctx.case.employee_id:
        raise Refused(_l("%(name)s is the employee of this case and sees it already", name=to.username),
                      field="to")
    if any(c.person_id == to.id for c in ctx.case.copies):
        raise Refused(_l("the case was already copied to %(name)s", name=to.username), field="to")
    ctx.data["_copy"] = (to, comment)


def copy(event) -> None:
    ctx = _ctx(event)
    to, comment = ctx.data.pop("_copy")
    ctx.case.copies.append(CaseCopy(person=to, person_id=to.id, copied_by=ctx.actor,
                                    copied_by_id=ctx.actor.id, comment=comment, copied_at=clock.now()))
    ctx.event_data.update(copied_to=to.username, to_id=to.id)


def copied_to(person: Person):
    """A query of the cases copied to the person, the latest copy first."""
    return (select(Case).join(CaseCopy, and_(CaseCopy.case_id == Case.id, CaseCopy.person_id == person.id))
            .order_by(CaseCopy.copied_at.desc(), Case.id.desc()))


def is_copied_to(person: Person, case: Case) -> bool:
    return any(c.person_id == person.id for c in case.copies)
