"""跟单客户 — sales leads and their follow-up deadlines.

A sales manager (the holder of the policy's customers.leads.reassign_role over the unit) or HR gives a
lead to a person of the unit's subtree, or a person opens one for themselves at their own unit. Its class
(A about to sign, B clear intent, C some intent) sets the deadline: the class's days (calendar days) from
the day it was assigned. Past the deadline without a result `tick` flags it overdue (flag_overdue) and
tells the owner and the sales managers; the sales manager may then reassign it, with a new deadline from
that day. Each move is one event on the lead's audit chain ("lead:ID") with the state before and after it
(the machine is workflow/machines/leads.py). Functions here check authority, validate, change and flush;
they never commit.
"""
from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from . import audit, authority, clock, customers, engine
from .customer_policy import CustomerPolicy, LeadClass
from .errors import Conflict, Forbidden, Invalid, Refused, WorkflowError
from .i18n import _l
from .machines import leads as machine
from .models import db, Event, OrgUnit, Person, RoleAssignment
from .models.customers import Customer, Lead
from .models.notifications import Notification
from .notify import notify

TITLE_MAX, NOTE_MAX, COMMENT_MAX = 200, 2000, 1000


class StaleLead(Conflict):
    """The lead row changed under us (another transaction committed first)."""


# --- the policy and the inputs ---------------------------------------------------------------------------

def policy() -> CustomerPolicy:
    """The active policy's customer section, if it has lead classes; Refused otherwise."""
    _pv, cpol = customers.active()
    if not cpol.lead_classes:
        raise Refused(_l("the active policy has no leads section (customers.leads): sales leads are not in "
                         "use"))
    return cpol


def reassign_role() -> str:
    """The sales manager's role under the active policy (the default when it has no leads section)."""
    try:
        _pv, pol = engine.active_policy()
    except WorkflowError:      # no policy active yet: nothing to read it from
        return "supervisor"
    return pol.customers.lead_reassign_role if pol.customers is not None else "supervisor"


def _text(value: Any, field: str, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(_l("%(field)s must be text", field=field), field=field)
    value = value.strip()
    if required and not value:
        raise Invalid(_l("%(field)s is required", field=field), field=field)
    if len(value) > limit:
        raise Invalid(_l("%(field)s is too long (at most %(max)s characters)", field=field, max=limit),
                      field=field)
    return value


def _class(cpol: CustomerPolicy, value: Any) -> LeadClass:
    ids = [c.id for c in cpol.lead_classes]
    if not isinstance(value, str) or value.strip() not in ids:
        raise Invalid(_l("lead_class must be one of %(classes)s", classes=", ".join(ids)), field="lead_class")
    return cpol.lead_class(value.strip())


def _person(value: Any, field: str) -> Person:
    if isinstance(value, Person):
        return value
    if not isinstance(value, str) or not value.strip():
        raise Invalid(_l("%(field)s must be a username", field=field), field=field)
    person = db.session.scalar(select(Person).where(Person.username == value.strip()))
    if person is None:
        raise Invalid(_l("no person '%(username)s'", username=value.strip()), field=field)
    return person


def _owner_problem(unit: OrgUnit, owner: Person, field: str = "owner") -> None:
    if owner.status == "dismissed" or not unit.contains(owner.unit):
        raise Refused(_l("%(username)s is not an active person of %(unit)s or a unit below it",
                         username=owner.username, unit=unit.code), field=field)


def _customer(actor: Person, value: Any) -> Customer | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, Customer):
        return value
    if not isinstance(value, str):
        raise Invalid(_l("customer must be a customer's code"), field="customer")
    cust = db.session.scalar(select(Customer).where(Customer.code == value.strip()))
    if cust is None or not authority.can_see_customer(actor, cust):
        raise Invalid(_l("no customer '%(code)s' in your sight", code=value.strip()), field="customer")
    return cust


def check_version(lead: Lead, expected: Any) -> None:
    if expected is None:
        return
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise Invalid(_l("version must be an integer"), field="version")
    if expected != lead.version:
        raise StaleLead(_l("the lead has changed since version %(seen)s (now %(now)s); reload it",
                           seen=expected, now=lead.version), version=lead.version)


def _flush() -> None:
    db.session.flush()


def _guarded(change):
    """A lost race (the versioned UPDATE of the lead found another version, at the final flush or at an
    autoflush on the way) is a Conflict."""
    @functools.wraps(change)
    def guarded(*args, **kwargs):
        try:
            return change(*args, **kwargs)
        except StaleDataError:
            raise StaleLead(_l("another change to this lead came first; reload it")) from None
    return guarded


def class_label(cpol: CustomerPolicy | None, class_id: str) -> dict[str, str]:
    """The class's label in both languages, for a notification."""
    try:
        c = cpol.lead_class(class_id) if cpol is not None else None
    except KeyError:
        c = None
    return {"zh": c.zh, "en": c.en} if c is not None else {"zh": class_id, "en": class_id}


def _params(lead: Lead, cpol: CustomerPolicy | None, **more: Any) -> dict[str, Any]:
    return {"title": lead.title, "lead_class": class_label(cpol, lead.lead_class),
            "deadline": lead.deadline.isoformat(), "owner": lead.owner.name, "unit": lead.unit.code,
            "target": {"endpoint": "leads.detail", "values": {"lead_id": lead.id}}, **more}


def _data(lead: Lead, **more: Any) -> dict[str, Any]:
    return {"owner": lead.owner.username, "class": lead.lead_class,
            "assigned_on": lead.assigned_on.isoformat(), "deadline": lead.deadline.isoformat(), **more}


def _record(lead: Lead, action: str, actor: Person | None, from_state: str | None, comment: str = "",
            **data: Any) -> Event:
    return audit.append(lead, action=action, actor=actor, unit=lead.unit.code, from_state=from_state,
                        to_state=lead.state, comment=comment, data=_data(lead, **data))


def _fire(lead: Lead, action: str, today: dt.date, deadline: dt.date | None = None) -> str:
    """Move the lead by the machine; answers the state before."""
    before = lead.state
    machine.MACHINE.events[action].trigger(lead, ctx={"today": today, "deadline": deadline or lead.deadline})
    return before


def _require_state(lead: Lead, action: str) -> None:
    if not machine.can_fire(lead.state, action):
        raise Conflict(_l("lead %(id)s is %(state)s: it cannot be %(action)s", id=lead.id, state=lead.state,
                          action=action), state=lead.state)


# --- who and where ---------------------------------------------------------------------------------------

def sales_managers(unit: OrgUnit, role: str) -> list[Person]:
    """The active holders of the sales manager's role at `unit`, else at the nearest unit above that has
    one."""
    for u in unit.ancestors():
        people = list(db.session.scalars(
            select(Person).join(RoleAssignment, RoleAssignment.person_id == Person.id)
            .where(RoleAssignment.role == role, RoleAssignment.unit_id == u.id, Person.status != "dismissed")
            .order_by(Person.id)))
        if people:
            return people
    return []


def openable_units(actor: Person, role: str) -> list[OrgUnit]:
    """The units where `actor` may open leads: their own, and the subtrees where they are sales manager or
    HR."""
    tops = [ra.unit for ra in actor.roles if ra.role in (role, "hr")]
    units = {actor.unit_id: actor.unit} if actor.status != "dismissed" else {}
    if tops and actor.status != "dismissed":
        for u in db.session.scalars(select(OrgUnit).where(
                db.or_(*[OrgUnit.path.startswith(t.path) for t in tops]))):
            units[u.id] = u
    return sorted(units.values(), key=lambda u: u.path)


def may_assign_others(actor: Person, unit: OrgUnit, role: str) -> bool:
    return actor.status != "dismissed" and any(
        ra.role in (role, "hr") and ra.unit.contains(unit) for ra in actor.roles)


def actions_for(actor: Person, lead: Lead, role: str) -> list[str]:
    """The actions the lead page offers `actor` now."""
    out = []
    if machine.can_fire(lead.state, "reclassify") and authority.can_follow_lead(actor, lead, role):
        out.append("reclassify")
    if machine.can_fire(lead.state, "reassign") and authority.can_reassign_lead(actor, lead, role):
        out.append("reassign")
    for action in ("win", "lose"):
        if machine.can_fire(lead.state, action) and authority.can_follow_lead(actor, lead, role):
            out.append(action)
    return out


# --- the changes -----------------------------------------------------------------------------------------

@_guarded
def create(actor: Person, title: Any, unit: OrgUnit, owner: Any, lead_class: Any, customer: Any = None,
           note: Any = "", today: dt.date | None = None) -> Lead:
    """Open a lead at `unit` for `owner` (a username or a Person; the actor when None), due the class's days
    from today. The owner is told unless they opened it themselves."""
    cpol = policy()
    today = today or clock.today()
    allowed = authority.can_open_lead(actor, unit, cpol.lead_reassign_role)
    if not allowed:
        raise Forbidden(allowed.reason)
    title = _text(title, "title", TITLE_MAX, required=True)
    note = _text(note, "note", NOTE_MAX)
    cls = _class(cpol, lead_class)
    if owner is None or (isinstance(owner, str) and not owner.strip()):
        owner = actor
    owner = _person(owner, "owner")
    if owner.id != actor.id and not may_assign_others(actor, unit, cpol.lead_reassign_role):
        raise Forbidden(_l("you may open leads at %(unit)s only for yourself", unit=unit.code))
    _owner_problem(unit, owner)
    cust = _customer(actor, customer)
    lead = Lead(title=title, unit=unit, owner=owner, owner_id=owner.id, lead_class=cls.id, state="open",
                opened_on=today, assigned_on=today, deadline=today + dt.timedelta(days=cls.days), note=note,
                customer=cust, created_by=actor, created_at=clock.now(), version=1)
    db.session.add(lead)
    db.session.flush()
    _record(lead, "create", actor, None, title=title, **({"customer": cust.code} if cust else {}))
    if owner.id != actor.id:
        notify(owner, "lead_assigned", params=_params(lead, cpol))
    _flush()
    return lead


@_guarded
def reclassify(actor: Person, lead: Lead, lead_class: Any, comment: Any = "", version: Any = None,
               today: dt.date | None = None) -> Lead:
    """Put the lead in another class: the deadline is that class's days from the day it was assigned; an
    overdue lead opens again when that deadline is not past."""
    cpol = policy()
    today = today or clock.today()
    _require_state(lead, "reclassify")
    allowed = authority.can_follow_lead(actor, lead, cpol.lead_reassign_role)
    if not allowed:
        raise Forbidden(allowed.reason)
    check_version(lead, version)
    cls = _class(cpol, lead_class)
    comment = _text(comment, "comment", COMMENT_MAX)
    if cls.id == lead.lead_class:
        raise Refused(_l("the lead is already of class %(cls)s", cls=cls.id), field="lead_class")
    before_class, before_deadline = lead.lead_class, lead.deadline
    deadline = lead.assigned_on + dt.timedelta(days=cls.days)
    before = _fire(lead, "reclassify", today, deadline)
    lead.lead_class, lead.deadline = cls.id, deadline
    _record(lead, "reclassify", actor, before, comment, from_class=before_class,
            previous_deadline=before_deadline.isoformat())
    _flush()
    return lead


@_guarded
def reassign(actor: Person, lead: Lead, owner: Any, comment: Any = "", version: Any = None,
             today: dt.date | None = None) -> Lead:
    """Give the lead to another active person of its unit's subtree, due the class's days from today; the
    new owner is told."""
    cpol = policy()
    today = today or clock.today()
    _require_state(lead, "reassign")
    allowed = authority.can_reassign_lead(actor, lead, cpol.lead_reassign_role)
    if not allowed:
        raise Forbidden(allowed.reason)
    check_version(lead, version)
    new_owner = _person(owner, "owner")
    comment = _text(comment, "comment", COMMENT_MAX)
    _owner_problem(lead.unit, new_owner)
    if new_owner.id == lead.owner_id:
        raise Refused(_l("%(username)s already follows this lead", username=new_owner.username),
                      field="owner")
    previous, before_deadline = lead.owner, lead.deadline
    days = _days_of(cpol, lead)
    deadline = today + dt.timedelta(days=days)
    before = _fire(lead, "reassign", today, deadline)
    lead.owner, lead.owner_id = new_owner, new_owner.id
    lead.assigned_on, lead.deadline = today, deadline
    _record(lead, "reassign", actor, before, comment, from_owner=previous.username,
            previous_deadline=before_deadline.isoformat())
    if new_owner.id != actor.id:
        notify(new_owner, "lead_assigned", params=_params(lead, cpol))
    _flush()
    return lead


def _days_of(cpol: CustomerPolicy, lead: Lead) -> int:
    try:
        return cpol.lead_class(lead.lead_class).days
    except KeyError:       # a class the policy no longer has
        raise Refused(_l("the policy has no lead class %(cls)s any more: reclassify the lead first",
                         cls=lead.lead_class)) from None


@_guarded
def close(actor: Person, lead: Lead, action: str, comment: Any = "", version: Any = None,
          today: dt.date | None = None) -> Lead:
    """`win` or `lose` the lead (losing needs the reason in the comment)."""
    if action not in ("win", "lose"):
        raise ValueError(action)
    cpol = policy()
    today = today or clock.today()
    _require_state(lead, action)
    allowed = authority.can_follow_lead(actor, lead, cpol.lead_reassign_role)
    if not allowed:
        raise Forbidden(allowed.reason)
    check_version(lead, version)
    comment = _text(comment, "comment", COMMENT_MAX, required=action in machine.COMMENT_REQUIRED)
    before = _fire(lead, action, today)
    lead.closed_on = today
    _record(lead, action, actor, before, comment, closed_on=today.isoformat())
    _flush()
    return lead


def win(actor: Person, lead: Lead, comment: Any = "", version: Any = None,
        today: dt.date | None = None) -> Lead:
    return close(actor, lead, "win", comment, version, today)


def lose(actor: Person, lead: Lead, comment: Any = "", version: Any = None,
         today: dt.date | None = None) -> Lead:
    return close(actor, lead, "lose", comment, version, today)


def reassign_many(actor: Person, leads: list[Lead], owner: Any, comment: Any = "",
                  today: dt.date | None = None) -> list[Lead]:
    """Reassign several leads to one person, all or none: the first refusal names its lead."""
    for lead in leads:
        try:
            reassign(actor, lead, owner, comment, today=today)
        except WorkflowError as exc:
            raise type(exc)(exc.message, **{**exc.details, "lead": lead.id}) from None
    return leads


# --- time ------------------------------------------------------------------------------------------------

def overdue_candidates(today: dt.date) -> list[int]:
    """Ids of the open leads whose deadline is past."""
    return list(db.session.scalars(select(Lead.id).where(Lead.state == "open", Lead.deadline < today)
                                   .order_by(Lead.id)))


@_guarded
def flag_one(lead_id: int, today: dt.date, role: str | None = None) -> int | None:
    """Flag the lead overdue if it still is open past its deadline (the row locked on PostgreSQL), and tell
    its owner and its sales managers once per deadline. Answers the notifications written, or None when
    there was nothing to do. Flushes; the caller commits."""
    lead = db.session.scalar(select(Lead).where(Lead.id == lead_id).execution_options(populate_existing=True)
                             .with_for_update(of=Lead))
    if lead is None or lead.state != "open" or lead.deadline >= today:
        return None
    role = role or reassign_role()
    before = _fire(lead, "flag_overdue", today)
    _record(lead, "flag_overdue", None, before, days_late=(today - lead.deadline).days)
    people = {lead.owner_id: lead.owner} if lead.owner.status != "dismissed" else {}
    people.update({p.id: p for p in sales_managers(lead.unit, role)})
    key = f"lead_overdue:{lead.id}:{lead.deadline.isoformat()}"
    told = set(db.session.scalars(select(Notification.recipient_id).where(
        Notification.once_key == key, Notification.recipient_id.in_(people))))
    cpol = engine.active_policy()[1].customers if people else None
    written = 0
    for pid in sorted(set(people) - told):
        notify(people[pid], "lead_overdue", params=_params(lead, cpol), once_key=key)
        written += 1
    _flush()
    return written


def flag_overdue(today: dt.date | None = None) -> tuple[int, int]:
    """Every open lead past its deadline -> overdue, in the caller's transaction (tick commits per lead:
    web/leads.run_overdue). Answers (leads flagged, notifications written)."""
    today = today or clock.today()
    role = reassign_role()
    flagged = written = 0
    for lead_id in overdue_candidates(today):
        n = flag_one(lead_id, today, role)
        if n is not None:
            flagged += 1
            written += n
    return flagged, written


def days_left(lead: Lead, today: dt.date | None = None) -> int:
    """Days until the deadline (negative: days late)."""
    return (lead.deadline - (today or clock.today())).days
