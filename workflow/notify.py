"""Notifications: who is told what, written in the transaction of the change that causes it.

- `routed()` is the engine's one hook, called after a case was filed or an action fired (routing done,
  before the flush): the people newly waited on get `assigned` (`escalated` after an escalation), and the
  applicant gets `decided` when a decision moves their case on or closes it.
- `remind()` (run by `tick`) tells the assignees of a step before its deadline (`due_soon`, a configurable
  number of working days ahead) and after it (`overdue`), once per person, case and deadline.
- `urge()` (催办): whoever waits on a step tells its assignees, at most once a day per case and urger; an
  audit event records it, the case's state does not change.

Each notification's e-mail is only queued here (`mail_state` pending); web/mail.py sends it after the
commit. Nothing here commits.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import inspect as sa_inspect, select

from . import audit, authority, clock
from .errors import Conflict, Forbidden, Invalid, Refused
from .i18n import _l
from .machines import rulebook
from .models import db, Case, Event, Person
from .models.notifications import Notification

# Decisions the applicant is not told of one by one: each blind score, the supervisor's evaluation.
QUIET_DECISIONS = frozenset({"score", "supervisor_score", "evaluate"})
# States whose deadline is no one's task (a date the system acts on): no reminders.
NO_REMINDER_STATES = frozenset({"approved", "in_probation", "publicity"})
# ... and states whose deadline closes a window rather than asks for work: reminded before, not after.
WINDOW_STATES = frozenset({"notice"})
COMMENT_MAX = 1000


def wants_mail(person: Person) -> bool:
    return bool(person.email) and person.email_notifications and person.status != "dismissed"


def notify(person: Person, kind: str, case: Case | None = None, params: dict[str, Any] | None = None,
           once_key: str | None = None) -> Notification:
    """Write one notification (and queue its e-mail if the person wants e-mail). Flushes nothing."""
    n = Notification(recipient=person, case=case, kind=kind, params=params or {}, once_key=once_key,
                     created_at=clock.now(), mail_state="pending" if wants_mail(person) else "skipped",
                     mail_attempts=0)
    db.session.add(n)
    return n


def _params(case: Case, **more: Any) -> dict[str, Any]:
    out = {"case_kind": case.kind, "employee": case.employee.name, "state": case.state,
           "deadline": case.deadline.isoformat() if case.deadline else None,
           "unit": case.step_unit.code if case.step_unit else None}
    out.update(more)
    return out


def _assignee_rows(case: Case) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    """(person id, duty) of the assignments added since the last flush, and of those kept or removed."""
    hist = sa_inspect(case).attrs.assignments.history
    def key(a):
        return (a.person_id if a.person_id is not None else a.person.id, a.duty)
    kept = (*(hist.unchanged or ()), *(hist.deleted or ()))
    return {key(a) for a in hist.added or ()}, {key(a) for a in kept}


def routed(case: Case, action: str, actor: Person | None, from_state: str | None) -> None:
    """The engine's hook after filing (`action` create, `from_state` None) or firing an action, before its
    flush: notify the people the case newly waits on and the applicant of a decision."""
    added, before = _assignee_rows(case)
    moved = case.state != from_state
    people = {}
    for a in case.assignments:
        pid = a.person_id if a.person_id is not None else a.person.id
        # A new step waits on all its assignees; the same step on those added to it (escalation, reroute).
        new = moved or ((pid, a.duty) in added and (pid, a.duty) not in before)
        if new and (actor is None or pid != actor.id):
            people.setdefault(pid, a.person)
    rb = rulebook(case.kind)
    # A step decided: the case moved on by a decision (not by a signature that leaves the step waiting on
    # others, 会签 or 加签), or it closed.
    decided = (actor is None or actor.id != case.employee_id) and moved and action != "create" and (
        (action in rb.decisions and action not in QUIET_DECISIONS) or case.closed)
    if decided:
        people.pop(case.employee_id, None)    # told once: the decision says where the case is now
        notify(case.employee, "decided", case, _params(case, action=action, from_state=from_state,
                                                       actor=actor.name if actor else None))
    kind = "escalated" if action == "escalate" else "assigned"
    extra = {"from_unit": case.routing_from_unit.code if case.routing_from_unit else None} \
        if action == "escalate" else {}
    for pid in sorted(people):
        notify(people[pid], kind, case, _params(case, action=action, **extra))


# --- deadlines -------------------------------------------------------------------------------------------

def reminder_candidates(today: dt.date, lead_days: int) -> list[int]:
    """Ids of the open cases whose deadline is near (within `lead_days` working days) or past."""
    # A working-day lead spans at most 3 calendar days per 2 working days, plus a holiday week.
    horizon = today + dt.timedelta(days=lead_days * 2 + 10)
    return list(db.session.scalars(select(Case.id).where(
        Case.closed.is_(False), Case.deadline.is_not(None), Case.deadline <= horizon,
        Case.state.not_in(NO_REMINDER_STATES)).order_by(Case.id)))


def remind(case: Case, today: dt.date, lead_days: int) -> int:
    """Tell the case's assignees that its deadline is near or past, once per person and deadline (the
    notification's once_key; a concurrent tick's duplicate fails on its unique constraint). Answers how
    many notifications were written. Flushes nothing."""
    if case.closed or case.deadline is None or case.state in NO_REMINDER_STATES:
        return 0
    from .engine import policy_for     # the engine imports this module
    deadline = case.deadline
    if today > deadline:
        if case.state in WINDOW_STATES:
            return 0
        kind = "overdue"
    elif clock.add_working_days(today, lead_days, policy_for(case).holidays) >= deadline:
        kind = "due_soon"
    else:
        return 0
    key = f"{kind}:{case.id}:{deadline.isoformat()}"
    people = {a.person_id: a.person for a in case.assignments}
    if not people:
        return 0
    told = set(db.session.scalars(select(Notification.recipient_id).where(
        Notification.once_key == key, Notification.recipient_id.in_(people))))
    written = 0
    for pid in sorted(set(people) - told):
        notify(people[pid], kind, case, _params(case, days=(deadline - today).days), once_key=key)
        written += 1
    return written


# --- 催办 ------------------------------------------------------------------------------------------------

def last_urge(case: Case, person: Person) -> Event | None:
    return db.session.scalar(select(Event).where(Event.case_id == case.id, Event.action == "urge",
                                                 Event.actor_id == person.id)
                             .order_by(Event.seq.desc()).limit(1))


def urged_today(case: Case, person: Person, today: dt.date | None = None) -> bool:
    ev = last_urge(case, person)
    return ev is not None and ev.data.get("on") == (today or clock.today()).isoformat()


def can_urge(case: Case, person: Person, today: dt.date | None = None) -> bool:
    """Whether the case page offers the urge button to `person` now."""
    return bool(authority.can_urge(person, case)) and not urged_today(case, person, today)


def urge(case: Case, actor: Person, comment: Any = "", today: dt.date | None = None) -> list[Person]:
    """催办: remind the current assignees of the case's step, recorded as an `urge` event on the case's
    audit chain (the state does not change). At most once a day per case and person. Answers the people
    urged. Flushes; the caller commits."""
    today = today or clock.today()
    allowed = authority.can_urge(actor, case)
    if case.closed:
        raise Conflict(allowed.reason, reason="closed", state=case.state)
    waiting = authority.hr_assignment_over(actor, case.employee.unit) is not None or actor.id in (
        case.employee_id, case.filed_by_id)
    if not waiting:
        raise Forbidden(allowed.reason, action="urge")
    if not isinstance(comment, str):
        raise Invalid(_l("comment must be text"), field="comment")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise Invalid(_l("comment is too long (at most %(max)s characters)", max=COMMENT_MAX), field="comment")
    if not allowed:
        raise Refused(allowed.reason, reason="nobody_else")
    if urged_today(case, actor, today):
        raise Refused(_l("you already urged case %(case)s today; you may urge it again tomorrow", case=case.id),
                      reason="urged_today")
    people = [p for p in case.assignee_people() if p.id != actor.id]
    hr = authority.hr_assignment_over(actor, case.employee.unit)
    if actor.id == case.employee_id:
        role, unit = "employee", case.employee.unit.code
    elif hr is not None:
        role, unit = "hr", hr.unit.code
    else:
        role, unit = None, actor.unit.code
    audit.append(case, action="urge", actor=actor, role=role, unit=unit, from_state=case.state,
                 to_state=case.state, comment=comment,
                 data={"on": today.isoformat(), "urged": [p.username for p in people]})
    for p in people:
        notify(p, "urged", case, _params(case, actor=actor.name, comment=comment))
    case.updated_at = clock.now()
    from .engine import flush
    flush()
    return people


# --- addresses -------------------------------------------------------------------------------------------

EMAIL_MAX = 254


def check_email(value: Any) -> str | None:
    """The address as stored (None: none), or Invalid naming the field."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(_l("email must be text"), field="email")
    value = value.strip()
    if not value:
        return None
    local, _, domain = value.rpartition("@")
    if (len(value) > EMAIL_MAX or not local or "." not in domain.strip(".") or any(c.isspace() for c in value)
            or "@" in domain or domain.startswith(".") or domain.endswith(".")):
        raise Invalid(_l("'%(value)s' is not an e-mail address", value=value), field="email")
    return value


def set_email(person: Person, value: Any, actor: Person | None) -> bool:
    """Set (or clear) the person's e-mail address, recorded on their audit chain. Answers whether it
    changed. Flushes nothing."""
    email = check_email(value)
    if email == person.email:
        return False
    person.email = email
    audit.append(person, action="email_set", actor=actor, unit=person.unit.code,
                 data={"email": email})
    return True
