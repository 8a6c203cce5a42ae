"""Portfolios (包保客户) and visits (拜访): who holds which customer, the service standard of each tier, the
managers' workload against the policy's norm, and what a case's effect does to a manager's customers.

Every change checks authority here (the pages, the API and the case effects cannot bypass it), writes its
event on the customer's chain through workflow.customers and never commits: the caller commits once.

Where a manager may hold a customer: the manager's unit and the customer's unit must be on one line of the
org tree — the manager works in the customer's unit or below it (a team's manager holds a branch's
customer), or at one of its ancestors (a branch's manager holds a team's customer). A sibling team's manager
may not: its customers belong to another line of supervision.

Lists are computed with aggregates (one query per list, never one per customer): a visit is due
`visit_months` after the latest of the last visit, the assignment and the start of the tier; for a tier of
m months that is overdue exactly when that date is before cutoff(today, m), so overdue is a WHERE clause.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import Date, and_, case, false, func, literal, or_, select, type_coerce
from sqlalchemy.orm import joinedload

from . import authority, clock, customers, engine, notify
from .customer_policy import CustomerPolicy
from .errors import Forbidden, Invalid, NotFound, Refused
from .i18n import _l
from .models import db, Event, OrgUnit, Person, RoleAssignment
from .models.customers import VISIT_METHODS, Customer, Visit
from .policy import Policy

EARLIEST_VISIT = dt.date(2000, 1, 1)
_NEVER = dt.date(1900, 1, 1)          # stands for a missing date in the "latest of" arithmetic
NOTE_MAX = 2000
NORM_STATUSES = ("under", "within", "over")
# The labels a customers_released notification carries in both languages (web/notifications.py shows one).
RELEASE_LABELS = {
    "promotion": {"zh": "晋级", "en": "promotion"},
    "demotion": {"zh": "降级", "en": "demotion"},
    "dismissal": {"zh": "解聘", "en": "dismissal"},
    "manual": {"zh": "人工释放", "en": "released by hand"},
}


def policy() -> tuple[Policy, CustomerPolicy]:
    """The active policy and its customers section (Refused when it has none)."""
    customers.active()
    pol = engine.active_policy()[1]
    return pol, pol.customers


# --- assignment ----------------------------------------------------------------------------------------

def unit_problem(manager: Person, customer: Customer):
    """Why `manager` works where they may not hold `customer` (None: they may): see the module's docstring."""
    mine, theirs = manager.unit, customer.unit
    if mine is None or not (mine.contains(theirs) or theirs.contains(mine)):
        return _l("%(username)s works at %(unit)s, outside the line of %(customer_unit)s: a customer is held "
                  "by a manager of its unit, a unit below it or one above it", username=manager.username,
                  unit=mine.code if mine else "—", customer_unit=theirs.code)
    return None


def _check_assign(actor: Person, customer: Customer, manager: Person, pol: Policy) -> None:
    allowed = authority.can_manage_customers(actor, customer.unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    if not customer.active:
        raise Refused(_l("customer %(code)s is inactive", code=customer.code))
    problem = unit_problem(manager, customer) or customers.holder_problem(pol, manager, customer.tier)
    if problem is not None:
        raise Refused(problem)


def assign(actor: Person, customer: Customer, manager: Person, *, today: dt.date | None = None,
           comment: str = "") -> Event:
    """Make `manager` the holder of `customer` (HR over its unit; the manager on its line of the tree and of
    a level the tier allows). Raises Forbidden or Refused and then changes nothing."""
    pol, _cpol = policy()
    _check_assign(actor, customer, manager, pol)
    return customers.assign(customer, manager, actor, pol=pol, today=today or clock.today(),
                            comment=_text(comment, "comment"))


@dataclass
class Outcome:
    """One customer's result in a bulk assignment."""
    customer: Customer
    ok: bool
    reason: str = ""
    status: int = 200

    def to_json(self) -> dict[str, Any]:
        return {"customer": self.customer.id, "code": self.customer.code, "ok": self.ok,
                "reason": str(self.reason) if self.reason else None}


def assign_many(actor: Person, targets: Iterable[Customer], manager: Person, *, today: dt.date | None = None,
                comment: str = "") -> list[Outcome]:
    """Assign each customer to `manager` in the caller's one transaction; a customer refused (authority, the
    grade rule, the tree) is reported and left as it was, the others are assigned."""
    pol, _cpol = policy()
    comment = _text(comment, "comment")
    out = []
    for customer in targets:
        try:
            _check_assign(actor, customer, manager, pol)
            customers.assign(customer, manager, actor, pol=pol, today=today or clock.today(), comment=comment)
        except (Forbidden, Refused) as exc:
            out.append(Outcome(customer, False, exc.message, exc.status))
        else:
            out.append(Outcome(customer, True))
    return out


def release(actor: Person, customer: Customer, *, comment: str = "") -> Event:
    """HR takes the customer from its manager by hand; it waits to be assigned again."""
    policy()
    allowed = authority.can_manage_customers(actor, customer.unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    return customers.release(customer, actor, reason="manual", comment=_text(comment, "comment"))


def _text(value: Any, name: str, limit: int = NOTE_MAX) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a text", field=name)
    if len(value) > limit:
        raise Invalid(f"{name} is longer than {limit} characters", field=name)
    return value.strip()


# --- visits --------------------------------------------------------------------------------------------

def parse_day(value: Any, today: dt.date) -> dt.date:
    """A visit's date: a date or YYYY-MM-DD, not after today, not before 2000."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise Invalid("visited_on must be a date (YYYY-MM-DD)", field="visited_on") from None
    if not isinstance(value, dt.date):
        raise Invalid("visited_on must be a date (YYYY-MM-DD)", field="visited_on")
    if value > today:
        raise Invalid(_l("the visit date %(day)s is after today", day=value.isoformat()), field="visited_on")
    if value < EARLIEST_VISIT:
        raise Invalid(_l("the visit date %(day)s is before 2000", day=value.isoformat()), field="visited_on")
    return value


def record_visit(actor: Person, customer: Customer, visited_on: Any, method: Any = "on_site", note: Any = "",
                 *, today: dt.date | None = None) -> Visit:
    """Record a visit (its holding manager, or a supervisor or HR over its unit). The visit counts for the
    holding manager at the time (`manager_id`; the actor when nobody holds it); `recorded_by` is the actor."""
    policy()
    allowed = authority.can_serve_customer(actor, customer)
    if not allowed:
        raise Forbidden(allowed.reason)
    day = parse_day(visited_on, today or clock.today())
    if method not in VISIT_METHODS:
        raise Invalid(f"method must be one of {', '.join(VISIT_METHODS)}", field="method")
    note = _text(note, "note")
    visitor = customer.manager or actor
    visit = Visit(customer=customer, manager=visitor, manager_id=visitor.id, visited_on=day, method=method,
                  note=note, recorded_by=actor, recorded_by_id=actor.id, recorded_at=clock.now())
    db.session.add(visit)
    db.session.flush()
    customers.record(customer, "visit", actor, comment=note,
                     data={"visit": visit.id, "on": day.isoformat(), "method": method,
                           "manager": visitor.username})
    return visit


# --- the service standard: when the next visit is due -------------------------------------------------------

def cutoff(today: dt.date, months: int) -> dt.date:
    """The first day d with add_months(d, months) >= today: a visit base before it is overdue today."""
    d = clock.add_months(today, -months)
    while clock.add_months(d, months) < today:
        d += dt.timedelta(days=1)
    while clock.add_months(d - dt.timedelta(days=1), months) >= today:
        d -= dt.timedelta(days=1)
    return d


def last_visits():
    """(customer_id, last) for every customer with a visit."""
    return (select(Visit.customer_id.label("customer_id"), func.max(Visit.visited_on).label("last"))
            .group_by(Visit.customer_id).subquery("last_visits"))


def _later(a, b):
    return case((a > b, a), else_=b)


def base_of(last):
    """SQL: the latest of the last visit, the assignment and the start of the tier (a missing one is 1900)."""
    never = literal(_NEVER, Date)
    latest = _later(func.coalesce(last.c.last, never), func.coalesce(Customer.assigned_on, never))
    return type_coerce(_later(latest, func.coalesce(Customer.tier_since, never)), Date)


def cadence_tiers(cpol: CustomerPolicy) -> dict[str, int]:
    return {t.id: t.visit_months for t in cpol.tiers if t.visit_months}


def overdue_clause(base, cpol: CustomerPolicy, today: dt.date):
    """SQL: the customer's visit is overdue today under its tier's cadence."""
    parts = [and_(Customer.tier == tier, base < literal(cutoff(today, months), Date))
             for tier, months in cadence_tiers(cpol).items()]
    return or_(*parts) if parts else false()


def due_on(base: dt.date | None, tier: str | None, cpol: CustomerPolicy) -> dt.date | None:
    months = cadence_tiers(cpol).get(tier)
    if months is None or base is None or base <= _NEVER:
        return None
    return clock.add_months(base, months)


def next_due(customer: Customer) -> dt.date | None:
    """When the customer's next visit is due (None: its tier has no cadence, or it has no tier)."""
    _pol, cpol = policy()
    last = db.session.scalar(select(func.max(Visit.visited_on)).where(Visit.customer_id == customer.id))
    dates = [d for d in (last, customer.assigned_on, customer.tier_since) if d is not None]
    return due_on(max(dates) if dates else None, customer.tier, cpol)


def is_overdue(due: dt.date | None, today: dt.date | None = None) -> bool:
    return due is not None and due < (today or clock.today())


def customers_query(cpol: CustomerPolicy, today: dt.date, *where):
    """select(Customer, base, overdue) with the conditions: rows for customer lists with their next visit."""
    last = last_visits()
    base = base_of(last)
    overdue = overdue_clause(base, cpol, today)
    return (select(Customer, base.label("base"), case((overdue, 1), else_=0).label("overdue"))
            .outerjoin(last, last.c.customer_id == Customer.id).where(*where)), base, overdue


def rows_with_due(rows, cpol: CustomerPolicy, today: dt.date) -> list[dict[str, Any]]:
    """[{customer, due, overdue}] from customers_query's rows."""
    out = []
    for customer, base, _overdue in rows:
        due = due_on(base, customer.tier, cpol)
        out.append({"customer": customer, "due": due, "overdue": is_overdue(due, today)})
    return out


def held_by(manager: Person, today: dt.date | None = None) -> list[dict[str, Any]]:
    """The manager's active customers, best tier first, each with its next visit and whether it is late."""
    _pol, cpol = policy()
    today = today or clock.today()
    q, base, _ = customers_query(cpol, today, Customer.manager_id == manager.id, Customer.active.is_(True))
    rows = db.session.execute(q.order_by(Customer.code)).all()
    out = rows_with_due(rows, cpol, today)
    out.sort(key=lambda r: (cpol.tier_rank(r["customer"].tier), r["due"] or dt.date.max, r["customer"].code))
    return out


def overdue_query(cpol: CustomerPolicy, today: dt.date, *where):
    """Held, active customers whose visit is overdue (the conditions narrow it), the longest late first."""
    q, base, overdue = customers_query(cpol, today, Customer.manager_id.is_not(None),
                                       Customer.active.is_(True), *where)
    return q.where(overdue).order_by(base, Customer.code)


# --- the portfolio summary ---------------------------------------------------------------------------------

@dataclass
class Portfolio:
    """One manager's portfolio: customers by tier, the norm of their area, breaches, visits overdue."""
    manager: Person
    by_tier: dict[str, int] = field(default_factory=dict)
    cadence: int = 0
    overdue: int = 0
    breaches: int = 0
    area: Any = None

    @property
    def total(self) -> int:
        return sum(self.by_tier.values())

    @property
    def status(self) -> str | None:
        if self.area is None:
            return None
        return "under" if self.total < self.area.min else "over" if self.total > self.area.max else "within"

    @property
    def coverage(self) -> float | None:
        """Held customers with a cadence whose visit is not overdue, in % of those with a cadence."""
        if not self.cadence:
            return None
        return round(100 * (self.cadence - self.overdue) / self.cadence, 1)

    def to_json(self) -> dict[str, Any]:
        m = self.manager
        a = self.area
        return {"manager": m.username, "name": m.name, "unit": m.unit.code if m.unit else None,
                "level": m.level, "grade": m.grade, "customers": self.total, "by_tier": self.by_tier,
                "area": None if a is None else {"id": a.id, "zh": a.zh, "en": a.en, "min": a.min,
                                                "max": a.max},
                "status": self.status, "breaches": self.breaches, "visits_overdue": self.overdue,
                "coverage": self.coverage}


def _subtree(unit: OrgUnit):
    return select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path))


def aggregate(pol: Policy, today: dt.date, *where) -> dict[int, dict[str, tuple[int, int]]]:
    """{manager_id: {tier: (customers, overdue)}} of held, active customers (one query)."""
    cpol = pol.customers
    last = last_visits()
    base = base_of(last)
    overdue = overdue_clause(base, cpol, today)
    q = (select(Customer.manager_id, Customer.tier, func.count(Customer.id),
                func.sum(case((overdue, 1), else_=0)))
         .outerjoin(last, last.c.customer_id == Customer.id)
         .where(Customer.manager_id.is_not(None), Customer.active.is_(True), *where)
         .group_by(Customer.manager_id, Customer.tier))
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for manager_id, tier, n, late in db.session.execute(q):
        out.setdefault(manager_id, {})[tier] = (n, int(late or 0))
    return out


def area_for(cpol: CustomerPolicy, unit: OrgUnit | None, cache: dict[int, Any] | None = None):
    if unit is None:
        return None
    if cache is not None and unit.id in cache:
        return cache[unit.id]
    area = cpol.area_of([u.code for u in unit.ancestors()])
    if cache is not None:
        cache[unit.id] = area
    return area


def build(pol: Policy, manager: Person, tiers: dict[str, tuple[int, int]],
          cache: dict | None = None) -> Portfolio:
    cpol = pol.customers
    months = cadence_tiers(cpol)
    p = Portfolio(manager, area=area_for(cpol, manager.unit, cache))
    for tier, (n, late) in tiers.items():
        p.by_tier[tier or ""] = n
        if tier in months:
            p.cadence += n
            p.overdue += late
        if customers.holder_problem(pol, manager, tier) is not None:
            p.breaches += n
    return p


def portfolio_of(manager: Person, today: dt.date | None = None) -> Portfolio:
    pol, _cpol = policy()
    tiers = aggregate(pol, today or clock.today(), Customer.manager_id == manager.id).get(manager.id, {})
    return build(pol, manager, tiers)


def coverage_of(person: Person, pol: Policy, today: dt.date) -> tuple[int, float | None]:
    """(customers held, visit coverage %) of a person under `pol` (for the eligibility rules)."""
    tiers = aggregate(pol, today, Customer.manager_id == person.id).get(person.id, {})
    p = build(pol, person, tiers)
    return p.total, p.coverage


def summary(unit: OrgUnit, today: dt.date | None = None, status: str | None = None) -> list[Portfolio]:
    """The portfolio of every manager of the unit's subtree: the managers of a holding level and anyone there
    who holds customers, by unit then username. `status`: under / within / over / breach / overdue."""
    pol, cpol = policy()
    today = today or clock.today()
    in_tree = Person.unit_id.in_(_subtree(unit))
    held = aggregate(pol, today, Customer.manager_id.in_(select(Person.id).where(in_tree)))
    levels = cpol.holding_levels if cpol.holding_levels is not None else pol.level_ids
    people = db.session.scalars(
        select(Person).join(OrgUnit, OrgUnit.id == Person.unit_id)
        .where(in_tree, or_(and_(Person.level.in_(levels), Person.status != "dismissed"),
                            Person.id.in_(list(held) or [-1])))
        .options(joinedload(Person.unit)).order_by(OrgUnit.path, Person.username)).all()
    cache: dict[int, Any] = {}
    out = [build(pol, p, held.get(p.id, {}), cache) for p in people]
    if status in NORM_STATUSES:
        out = [p for p in out if p.status == status]
    elif status == "breach":
        out = [p for p in out if p.breaches]
    elif status == "overdue":
        out = [p for p in out if p.overdue]
    return out


def waiting_query(unit: OrgUnit):
    """Active customers of the unit's subtree that nobody holds (released ones and never-assigned ones)."""
    return (select(Customer).where(Customer.manager_id.is_(None), Customer.active.is_(True),
                                   Customer.unit_id.in_(_subtree(unit)))
            .order_by(Customer.released_reason.is_(None), Customer.unit_id, Customer.code))


def waiting_count(unit: OrgUnit) -> int:
    q = select(func.count()).select_from(waiting_query(unit).order_by(None).subquery())
    return db.session.scalar(q) or 0


def candidates(unit: OrgUnit) -> list[Person]:
    """Managers who might hold customers of the unit: of a holding level, active, on the unit's line of the
    tree (its subtree and its ancestors)."""
    pol, cpol = policy()
    levels = cpol.holding_levels if cpol.holding_levels is not None else pol.level_ids
    ancestors = [u.id for u in unit.ancestors()]
    return list(db.session.scalars(
        select(Person).join(OrgUnit, OrgUnit.id == Person.unit_id)
        .where(Person.level.in_(levels), Person.status != "dismissed",
               or_(OrgUnit.path.startswith(unit.path), OrgUnit.id.in_(ancestors)))
        .order_by(OrgUnit.path, Person.username)))


def dashboard(unit: OrgUnit, today: dt.date | None = None) -> dict[str, Any] | None:
    """For the HR dashboard: managers under or over the norm and the grade-rule breaches (None when the policy
    has no customers section)."""
    try:
        rows = summary(unit, today)
    except Refused:
        return None
    return {"under": [p for p in rows if p.status == "under"],
            "over": [p for p in rows if p.status == "over"],
            "breaches": [p for p in rows if p.breaches], "managers": len(rows),
            "waiting": waiting_count(unit)}


# --- a case's effect on the person's customers --------------------------------------------------------------

def release_for_case(ctx, reason: str) -> list[Customer]:
    """When a promotion, demotion or dismissal takes effect: release the person's customers they may no longer
    hold (all of them on dismissal or at a level that holds none; those whose tier needs a higher level on a
    demotion), in the case's transaction, and tell HR over the person's unit. Nothing without a customers
    section in the case's policy."""
    pol = ctx.policy
    if pol.customers is None:
        return []
    emp = ctx.case.employee
    held = db.session.scalars(select(Customer).where(Customer.manager_id == emp.id)
                              .order_by(Customer.code)).all()
    if reason == "dismissal":
        gone = list(held)
    else:
        gone = [c for c in held if customers.holder_problem(pol, emp, c.tier) is not None]
    for c in gone:
        customers.release(c, ctx.actor, reason=reason, comment=ctx.comment, case_id=ctx.case.id)
    if gone:
        ctx.event_data["customers_released"] = [c.code for c in gone]
        hr = _hr_over(emp.unit)
        for person in hr:
            notify.notify(person, "customers_released", params={
                "manager": emp.name, "count": len(gone), "reason": RELEASE_LABELS[reason],
                "unit": emp.unit.code,
                "target": {"endpoint": "portfolios.released", "values": {"unit": emp.unit.code}}})
    return gone


def _hr_over(unit: OrgUnit) -> list[Person]:
    """The HR holders at the nearest unit, from `unit` up, that has any."""
    for u in unit.ancestors():
        people = db.session.scalars(
            select(Person).join(RoleAssignment, RoleAssignment.person_id == Person.id)
            .where(RoleAssignment.role == "hr", RoleAssignment.unit_id == u.id, Person.status != "dismissed")
            .order_by(Person.username)).all()
        if people:
            return list(people)
    return []


def load_customer(customer_id: int, viewer: Person, lock: bool = False) -> Customer:
    """The customer if the viewer may see it (404 otherwise), row-locked on PostgreSQL when `lock`."""
    q = select(Customer).where(Customer.id == customer_id).execution_options(populate_existing=True)
    if lock:
        q = q.with_for_update(of=Customer)
    customer = db.session.scalar(q)
    if customer is None or not authority.can_see_customer(viewer, customer):
        raise NotFound(f"no customer {customer_id}")
    return customer
