"""Customers for the tiering tests (tests/workflow/test_tiering.py, tests/web/test_tiering_web.py and the
access matrix's world): rows made directly, with the scoring inputs of the shipped bank policy."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from workflow.models import db, OrgUnit, Person
from workflow.models.customers import Customer

# Scoring inputs of the shipped bank policy: each reaches its tier by score alone.
IMPORTANT = {"monthly_revenue": 100, "it_revenue": 20, "employees": 2000, "products": 10, "credit": 100}
CORE = {"monthly_revenue": 50, "it_revenue": 10, "employees": 1000, "products": 5, "credit": 50}
ORDINARY: dict[str, Any] = {}


def add_customer(code: str, unit: OrgUnit | str, tier: str | None = None, inputs: dict | None = None,
                 industry: str | None = "other", manager: Person | str | None = None,
                 active: bool = True) -> Customer:
    """A customer row, as an import would leave it (the customers area's create functions come later)."""
    if isinstance(unit, str):
        unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == unit))
    if isinstance(manager, str):
        manager = db.session.scalar(select(Person).where(Person.username == manager))
    c = Customer(code=code, name=f"Customer {code}", industry=industry, unit=unit, inputs=inputs or {},
                 active=active, tier=tier, tier_since=dt.date(2025, 1, 1) if tier else None,
                 manager=manager, assigned_on=dt.date(2025, 1, 1) if manager else None, version=0)
    db.session.add(c)
    db.session.flush()
    return c


