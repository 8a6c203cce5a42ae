"""The org tree and the people in it: the engine's maintenance operations.

The admin pages, the importers and the demo call these. Each function checks its input against the
active policy, changes the session and flushes; none commits (the caller commits once). Changes that
matter for later decisions (a grade, a set of roles, a password) append an event to the person's audit
chain, so they are as tamper-evident as the decisions on cases.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, update

from . import audit, clock, engine
from .errors import Refused
from .i18n import _l
from .models import db, ApiToken, Case, GradeHistory, OrgUnit, Person, RoleAssignment
from .models.org import ROLES
from .policy import Policy

EDITABLE_STATUSES = ("active", "probation")   # `dismissed` is set by a dismissal case only
MIN_PASSWORD_LENGTH = 6
CODE_MAX, USERNAME_MAX, NAME_MAX = 64, 64, 200


class DirectoryError(Refused):
    """A change to the org tree or to a person is refused; `field` (in details) names the bad input."""


def _policy(policy: Policy | None) -> Policy:
    return policy if policy is not None else engine.active_policy()[1]


# --- look-ups ----------------------------------------------------------------------------------------

def unit_by_code(code: str) -> OrgUnit | None:
    return db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def person_by_username(username: str) -> Person | None:
    return db.session.scalar(select(Person).where(Person.username == username))


def subtree(unit: OrgUnit, include_self: bool = True) -> list[OrgUnit]:
    """The unit's descendants (and the unit itself), ordered by path."""
    units = db.session.scalars(select(OrgUnit).where(OrgUnit.path.startswith(unit.path))
                               .order_by(OrgUnit.path)).all()
    return [u for u in units if include_self or u.id != unit.id]


# --- units -------------------------------------------------------------------------------------------

def check_unit_levels(policy: Policy, level: str, parent_level: str | None) -> str | None:
    """Why a unit of `level` may not sit under a unit of `parent_level`, or None if it may. A unit sits
    strictly below its parent; levels may be skipped (a team directly under a region)."""
    if level not in policy.org_level_ids:
        return _l("unknown org level '%(level)s' (levels: %(levels)s)", level=level,
                  levels=", ".join(policy.org_level_ids))
    if parent_level is not None and parent_level in policy.org_level_ids \
            and policy.org_level_index(level) <= policy.org_level_index(parent_level):
        order = " > ".join(policy.org_level_ids)
        return _l("a %(level)s cannot sit under a %(parent)s (levels top down: %(order)s)", level=level,
                  parent=parent_level, order=order)
    return None


def upsert_unit(code: str, *, name: str, level: str, parent_code: str | None,
                policy: Policy | None = None) -> tuple[OrgUnit, bool]:
    """Create the unit `code`, or update its name, level and parent. Returns (unit, created).

    `level` must be one of the policy's org levels and lie below the parent's; `parent_code` None (or
    empty) makes the unit a root, of which the tree has one. Moving a unit moves its whole subtree: the
    materialised paths of every descendant are rewritten. A move under the unit's own subtree is refused.
    Raises DirectoryError naming the field.
    """
    pol = _policy(policy)
    code, name, parent_code = (code or "").strip(), (name or "").strip(), (parent_code or "").strip() or None
    if not code or len(code) > CODE_MAX:
        raise DirectoryError(_l("a unit code must have 1 to %(max)s characters", max=CODE_MAX), field="code")
    if not name or len(name) > NAME_MAX:
        raise DirectoryError(_l("a unit name must have 1 to %(max)s characters", max=NAME_MAX), field="name")
    unit = unit_by_code(code)
    parent = None
    if parent_code is not None:
        parent = unit_by_code(parent_code)
        if parent is None:
            raise DirectoryError(_l("unknown parent unit '%(code)s'", code=parent_code), field="parent_code")
        if unit is not None and unit.contains(parent):
            raise DirectoryError(_l("%(code)s cannot move under %(parent)s: %(parent)s is inside %(code)s's subtree",
                                    code=code, parent=parent_code), field="parent_code")
    else:
        root = db.session.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)))
        if root is not None and root is not unit:
            raise DirectoryError(_l("the tree already has its root %(root)s; name a parent unit", root=root.code),
                                 field="parent_code")
    problem = check_unit_levels(pol, level, parent.level if parent else None)
    if problem:
        raise DirectoryError(problem, field="level")
    if unit is not None:
        for child in unit.children:
            if below := check_unit_levels(pol, child.level, level):
                raise DirectoryError(_l("%(code)s cannot become a %(level)s: its sub-unit %(child)s: %(why)s", code=code,
                                        level=level, child=child.code, why=below), field="level")
    created = unit is None
    if created:
        unit = OrgUnit(code=code, name=name, level=level, parent=parent, path="")
        db.session.add(unit)
        db.session.flush()
        unit.path = (parent.path if parent else "/") + f"{unit.id}/"
    else:
        unit.name, unit.level = name, level
        if unit.parent_id != (parent.id if parent else None):
            _move(unit, parent)
    db.session.flush()
    return unit, created


def _move(unit: OrgUnit, parent: OrgUnit | None) -> None:
    """Hang `unit` under `parent` and rewrite the paths of its whole subtree."""
    old, new = unit.path, (parent.path if parent else "/") + f"{unit.id}/"
    descendants = subtree(unit, include_self=False)
    unit.parent = parent
    unit.path = new
    for d in descendants:
        d.path = new + d.path[len(old):]


# --- people ------------------------------------------------------------------------------------------

def upsert_person(username: str, *, name: str, unit_code: str, grade: str | None = None,
                  grade_since: dt.date | None = None, hired_on: dt.date | None = None,
                  education: str | None = None, status: str = "active", actor: Person | None = None,
                  source: str = "admin", policy: Policy | None = None) -> tuple[Person, bool]:
    """Create the person `username`, or update them to exactly these values. Returns (person, created).

    `grade` is `LEVEL` or `LEVEL-TIER` of the policy's ladder, or None for staff who are not account
    managers; `grade_since` is required with a grade. Changing an existing person's grade goes through
    `change_grade` (grade history and an audit event, by `actor`, from `source`). `status` is `active` or
    `probation`; a dismissed person cannot be re-employed here. Roles and passwords have their own
    functions. Raises DirectoryError naming the field.
    """
    pol = _policy(policy)
    username, name = (username or "").strip(), (name or "").strip()
    if not username or len(username) > USERNAME_MAX or any(c.isspace() for c in username):
        raise DirectoryError(_l("a username must have 1 to %(max)s characters and no spaces", max=USERNAME_MAX),
                             field="username")
    if not name or len(name) > NAME_MAX:
        raise DirectoryError(_l("a name must have 1 to %(max)s characters", max=NAME_MAX), field="name")
    unit = unit_by_code((unit_code or "").strip())
    if unit is None:
        raise DirectoryError(_l("unknown unit '%(code)s'", code=unit_code), field="unit_code")
    level, tier = parse_grade(pol, grade)
    if level is not None and grade_since is None:
        raise DirectoryError(_l("grade_since is required with a grade"), field="grade_since")
    if level is None:
        grade_since = None
    if education is not None and education not in {e.id for e in pol.education}:
        known = ", ".join(e.id for e in pol.education)
        raise DirectoryError(_l("unknown education '%(education)s' (one of: %(known)s)", education=education,
                                known=known), field="education")
    if status not in EDITABLE_STATUSES:
        raise DirectoryError(_l("status must be one of %(statuses)s, not '%(status)s'",
                                statuses=", ".join(EDITABLE_STATUSES), status=status), field="status")
    person = person_by_username(username)
    created = person is None
    if created:
        person = Person(username=username, name=name, unit=unit, level=level, tier=tier,
                        grade_since=grade_since, hired_on=hired_on, education=education, status=status)
        db.session.add(person)
    else:
        if person.status == "dismissed":
            raise DirectoryError(_l("%(username)s was dismissed; only a new account can re-employ them",
                                    username=username), field="status")
        new_grade = f"{level}-{tier}" if level else None
        if new_grade != person.grade:
            change_grade(person, new_grade, since=grade_since, actor=actor, source=source, policy=pol)
        person.grade_since = grade_since
        person.name, person.unit, person.hired_on, person.education, person.status = \
            name, unit, hired_on, education, status
    db.session.flush()
    return person, created


def parse_grade(policy: Policy, grade: str | None) -> tuple[str | None, int | None]:
    """(level, tier) of `LEVEL` / `LEVEL-TIER`, or (None, None) for an empty grade."""
    if grade is None or not str(grade).strip():
        return None, None
    try:
        return policy.parse_grade(str(grade))
    except ValueError as exc:
        raise DirectoryError(str(exc), field="grade") from None


def open_cases(person: Person) -> list[Case]:
    return list(db.session.scalars(select(Case).where(Case.employee_id == person.id, Case.closed.is_(False))
                                   .order_by(Case.id)))


def change_grade(person: Person, grade: str | None, *, since: dt.date | None = None,
                 actor: Person | None = None, source: str = "admin", comment: str = "",
                 policy: Policy | None = None, keep_since: bool = False) -> GradeHistory | None:
    """Set a person's grade outside a case (a correction by an administrator, or an import).

    Writes a grade-history row (职级履历) and a `grade_change` event on the person's audit chain, by
    `actor` (None: the system). `grade` None makes the person staff without a grade. `since` is the
    new `grade_since` (default: today) and the history row's date; `keep_since` keeps `grade_since` (a
    tier move inside the level after the annual review). Refused while the person has an open case, whose
    from-grade would no longer hold. Returns the history row, or None if the grade did not change.
    """
    pol = _policy(policy)
    level, tier = parse_grade(pol, grade)
    new = f"{level}-{tier}" if level else None
    if new == person.grade:
        return None
    pending = open_cases(person)
    if pending:
        ids = ", ".join(f"#{c.id}" for c in pending)
        raise DirectoryError(_l("%(username)s has an open case (%(cases)s); finish or withdraw it before changing "
                                "the grade", username=person.username, cases=ids), field="grade")
    day = since or clock.today()
    _ensure_id(person)
    old = person.grade
    row = GradeHistory(person=person, from_grade=old, to_grade=new, effective_on=day, source=source)
    db.session.add(row)
    person.level, person.tier = level, tier
    person.grade_since = (person.grade_since if keep_since else day) if level else None
    audit.append(person, action="grade_change", actor=actor, role=_role(actor, person), unit=person.unit.code,
                 comment=comment, data={"from": old, "to": new, "on": day.isoformat(), "source": source})
    db.session.flush()
    return row


def _ensure_id(person: Person) -> None:
    """The audit chain is named after the person's id, so the row must exist first."""
    if person.id is None:
        db.session.add(person)
        db.session.flush()


def _role(actor: Person | None, person: Person) -> str | None:
    """The capacity an administrator acts in, for the audit event: admin over the person's unit, else hr."""
    if actor is None:
        return None
    for role in ("admin", "hr"):
        if any(ra.role == role and ra.unit.contains(person.unit) for ra in actor.roles):
            return role
    return None


def parse_role(spec: str) -> tuple[str, str]:
    """`ROLE@UNIT_CODE` -> (role, unit code); DirectoryError naming what is wrong."""
    role, at, code = (spec or "").strip().partition("@")
    role, code = role.strip(), code.strip()
    if not at or not role or not code:
        raise DirectoryError(_l("'%(spec)s' is not ROLE@UNIT_CODE", spec=spec), field="roles")
    if role not in ROLES:
        raise DirectoryError(_l("unknown role '%(role)s' (roles: %(roles)s)", role=role, roles=", ".join(ROLES)),
                             field="roles")
    return role, code


def set_roles(person: Person, roles: Iterable[str | tuple[str, OrgUnit]], *, actor: Person | None = None,
              source: str = "admin") -> bool:
    """Replace the person's roles with `roles`: `ROLE@UNIT_CODE` strings or (role, unit) pairs.

    Each role covers its unit's whole subtree. A change appends a `roles_change` event (from, to) on the
    person's audit chain. Returns whether anything changed. Raises DirectoryError for an unknown role
    or unit.
    """
    wanted: dict[tuple[str, int], OrgUnit] = {}
    for spec in roles:
        if isinstance(spec, str):
            role, code = parse_role(spec)
            unit = unit_by_code(code)
            if unit is None:
                raise DirectoryError(_l("unknown unit '%(code)s' in '%(spec)s'", code=code, spec=spec), field="roles")
        else:
            role, unit = spec
            if role not in ROLES:
                raise DirectoryError(_l("unknown role '%(role)s' (roles: %(roles)s)", role=role,
                                        roles=", ".join(ROLES)), field="roles")
        wanted[(role, unit.id)] = unit
    _ensure_id(person)
    before = person.role_strings()
    current = {(ra.role, ra.unit_id): ra for ra in person.roles}
    if set(current) == set(wanted):
        return False
    for key, ra in current.items():
        if key not in wanted:
            person.roles.remove(ra)
    db.session.flush()
    for key, unit in wanted.items():
        if key not in current:
            person.roles.append(RoleAssignment(role=key[0], unit=unit))
    db.session.flush()
    after = sorted(f"{role}@{unit.code}" for (role, _), unit in wanted.items())
    audit.append(person, action="roles_change", actor=actor, role=_role(actor, person), unit=person.unit.code,
                 data={"from": before, "to": after, "source": source})
    db.session.flush()
    engine.refresh_assignments(person)
    return True


def check_password(password: str) -> str | None:
    """Why a password is not acceptable, or None."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        return _l("a password needs at least %(min)s characters", min=MIN_PASSWORD_LENGTH)
    if not password.strip():
        return _l("a password cannot be only spaces")
    return None


def set_password(person: Person, password: str, *, actor: Person | None = None,
                 source: str = "admin") -> None:
    """Set the person's password. Ends their browser sessions and revokes their API tokens, and records a
    `password_set` event (without the password) on their audit chain. Raises DirectoryError for a
    password that is too short."""
    problem = check_password(password)
    if problem:
        raise DirectoryError(problem, field="password")
    _ensure_id(person)
    person.set_password(password)
    db.session.execute(update(ApiToken).where(ApiToken.person_id == person.id, ApiToken.revoked.is_(False))
                       .values(revoked=True))
    audit.append(person, action="password_set", actor=actor, role=_role(actor, person), unit=person.unit.code,
                 data={"source": source})
    db.session.flush()
