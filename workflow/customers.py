"""Customers (客户): the active policy's customer section, and the changes every customer area shares —
the tier (set_tier), the holding manager (assign, release). Each change writes its event on the customer's
audit chain ("customer:ID") in the caller's transaction; nothing here commits or checks authority (the
callers do: the import, a tiering run, the portfolio pages and a case's effect).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from . import audit, clock, engine
from .customer_policy import CustomerPolicy
from .errors import Refused
from .i18n import Message, _l
from .models import db, Event, Person, PolicyVersion
from .models.customers import Customer, CustomerTier, TieringRun
from .policy import Policy

# Why a customer was released from its manager (Customer.released_reason).
RELEASE_REASONS = ("dismissal", "demotion", "promotion", "manual", "inactive")


def active() -> tuple[PolicyVersion, CustomerPolicy]:
    """The active policy version and its customer section; Refused when the policy has none."""
    pv, pol = engine.active_policy()
    if pol.customers is None:
        raise Refused(_l("the active policy (%(policy)s) has no customers section: customer tiering, portfolios "
                         "and leads are not in use", policy=pol.label))
    return pv, pol.customers


def record(customer: Customer, action: str, actor: Person | None, *, comment: str = "",
           data: dict[str, Any] | None = None) -> Event:
    """Append an event to the customer's chain and mark the row changed."""
    customer.updated_at = clock.now()
    return audit.append(customer, action=action, actor=actor, comment=comment, data=data)


def holder_problem(pol: Policy, manager: Person, tier: str | None) -> Message | None:
    """Why `manager` may not hold a customer of `tier` under the policy (None: they may): not active, a
    level that holds no portfolio, or below the tier's minimum level (客户经理等级与客户层级)."""
    cpol = pol.customers
    if manager.status == "dismissed":
        return _l("%(username)s has left and holds no customers", username=manager.username)
    if manager.level is None:
        return _l("%(username)s holds no grade of the ladder and cannot hold customers", username=manager.username)
    if cpol.holding_levels is not None and manager.level not in cpol.holding_levels:
        return _l("managers of level %(level)s hold no customers under the policy", level=manager.level)
    if not cpol.may_hold(manager.level, tier, pol.level_ids):
        return _l("a customer of tier %(tier)s needs a manager of level %(need)s or above; %(username)s is %(level)s",
                  tier=tier, need=cpol.tier(tier).min_manager_level, username=manager.username, level=manager.level)
    return None


def assign(customer: Customer, manager: Person, actor: Person | None, *, pol: Policy, today: dt.date | None = None,
           comment: str = "", source: str = "manual") -> Event:
    """Make `manager` the customer's holder (包保) from `today`. Refused when the policy's grade rule forbids
    it or the manager already holds it."""
    problem = holder_problem(pol, manager, customer.tier)
    if problem is not None:
        raise Refused(problem)
    if customer.manager_id == manager.id:
        raise Refused(_l("%(username)s already holds customer %(code)s", username=manager.username,
                         code=customer.code))
    before = customer.manager.username if customer.manager is not None else None
    customer.manager = manager
    customer.manager_id = manager.id
    customer.assigned_on = today or clock.today()
    customer.released_from_id = customer.released_reason = None
    return record(customer, "assign", actor, comment=comment,
                  data={"from": before, "to": manager.username, "on": customer.assigned_on.isoformat(),
                        "source": source})


def release(customer: Customer, actor: Person | None, *, reason: str, comment: str = "",
            case_id: int | None = None) -> Event:
    """Take the customer from its manager: it waits, with who held it and why, to be assigned again."""
    if reason not in RELEASE_REASONS:
        raise ValueError(reason)
    if customer.manager_id is None:
        raise Refused(_l("customer %(code)s is held by nobody", code=customer.code))
    before = customer.manager
    customer.released_from = before
    customer.released_from_id = before.id
    customer.released_reason = reason
    customer.manager = None
    customer.manager_id = customer.assigned_on = None
    return record(customer, "release", actor, comment=comment,
                  data={"from": before.username, "reason": reason, **({"case": case_id} if case_id else {})})


def set_tier(customer: Customer, to_tier: str, *, score: float | None, source: str, actor: Person | None,
             run: TieringRun | None = None, effective_on: dt.date | None = None,
             comment: str = "") -> CustomerTier:
    """Put the customer in `to_tier` from `effective_on` (today): the history row and the event."""
    day = effective_on or clock.today()
    row = CustomerTier(customer=customer, from_tier=customer.tier, to_tier=to_tier, score=score, effective_on=day,
                       run=run, source=source)
    db.session.add(row)
    record(customer, "tier", actor, comment=comment,
           data={"from": customer.tier, "to": to_tier, "score": score, "source": source,
                 **({"run": run.id} if run is not None else {})})
    customer.tier, customer.tier_since, customer.tier_score = to_tier, day, score
    return row
