"""Customers (客户), their tiers (客户分级), the managers' portfolios (包保客户), visits and sales leads.

A customer, a tiering run and a lead each head an audit chain ("customer:ID", "tiering:ID", "lead:ID"): as
on cases, `version` is the seq of the chain's last event and `head_mac` its MAC (workflow/audit.py).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (ForeignKey, String, Integer, Float, Date, DateTime, Boolean, Text, JSON, Index,
                        UniqueConstraint, CheckConstraint)
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import db
from .org import OrgUnit
from .people import Person, utcnow
from .policies import PolicyVersion

RUN_STATES = ("review", "effective", "cancelled")
PROPOSAL_STATES = ("unchanged", "auto", "pending", "approved", "rejected")
LEAD_STATES = ("open", "overdue", "won", "lost")
VISIT_METHODS = ("on_site", "phone", "online", "other")   # 实地拜访, 电话沟通, 线上, 其他


class Customer(db.Model):
    """A customer of a unit, held (包保) by at most one manager. `inputs` holds the scoring inputs the policy
    declares (customers.inputs: monthly revenue, IT revenue, employees...), by input id."""
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("version >= 0", name="version_known"),
        CheckConstraint("(manager_id IS NULL) OR (assigned_on IS NOT NULL)", name="assignment_dated"),
        Index("ix_customers_unit_tier", "unit_id", "tier"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str | None] = mapped_column(String(64))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    # The tier in effect, since when, and the value score it was determined with (None: not yet tiered).
    tier: Mapped[str | None] = mapped_column(String(16))
    tier_since: Mapped[dt.date | None] = mapped_column(Date)
    tier_score: Mapped[float | None] = mapped_column(Float)
    # 包保: the holding manager and since when. A customer released by a case (promotion, demotion,
    # dismissal) or by hand keeps who held it and why until it is assigned again.
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    assigned_on: Mapped[dt.date | None] = mapped_column(Date)
    released_from_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    released_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=0)
    head_mac: Mapped[str | None] = mapped_column(String(64))

    unit: Mapped[OrgUnit] = relationship()
    manager: Mapped[Person | None] = relationship(foreign_keys=[manager_id])
    released_from: Mapped[Person | None] = relationship(foreign_keys=[released_from_id])
    tier_history: Mapped[list[CustomerTier]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerTier.id")
    visits: Mapped[list[Visit]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Visit.visited_on")

    def __repr__(self) -> str:
        return f"<Customer {self.code} {self.tier}>"


class CustomerTier(db.Model):
    """A change of a customer's tier: by a tiering run, an import or an administrator."""
    __tablename__ = "customer_tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    from_tier: Mapped[str | None] = mapped_column(String(16))
    to_tier: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    effective_on: Mapped[dt.date] = mapped_column(Date)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("tiering_runs.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))          # tiering, import, admin
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="tier_history")
    run: Mapped[TieringRun | None] = relationship()


class TieringRun(db.Model):
    """A re-tiering of the customers of a unit's subtree (classify -> score -> determine -> communicate):
    created with a proposal per customer (`review`), then determined (`effective`: tiers applied, holding
    managers notified) once no proposal awaits approval, or cancelled."""
    __tablename__ = "tiering_runs"
    __table_args__ = (
        CheckConstraint("state IN ('review','effective','cancelled')", name="state_known"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    period: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="review", index=True)
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    determined_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    effective_on: Mapped[dt.date | None] = mapped_column(Date)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # proposals by state, changes
    version: Mapped[int] = mapped_column(Integer, default=1)
    head_mac: Mapped[str | None] = mapped_column(String(64))

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    unit: Mapped[OrgUnit] = relationship()
    created_by: Mapped[Person] = relationship()
    policy_version: Mapped[PolicyVersion] = relationship()
    proposals: Mapped[list[TierProposal]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="TierProposal.id")

    def __repr__(self) -> str:
        return f"<TieringRun {self.id} {self.period} {self.state}>"


class TierProposal(db.Model):
    """One customer's proposed tier in a run, with the score breakdown. A change the policy's
    customers.approval covers is `pending` until an approver at `step_unit` (or above) decides it; other
    changes are `auto`; the same tier is `unchanged`."""
    __tablename__ = "tier_proposals"
    __table_args__ = (
        UniqueConstraint("run_id", "customer_id", name="uq_tier_proposals_run_customer"),
        CheckConstraint("state IN ('unchanged','auto','pending','approved','rejected')", name="state_known"),
        Index("ix_tier_proposals_run_state", "run_id", "state"),
        Index("ix_tier_proposals_step_state", "step_unit_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("tiering_runs.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    current_tier: Mapped[str | None] = mapped_column(String(16))
    proposed_tier: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    step_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    comment: Mapped[str] = mapped_column(Text, default="")

    run: Mapped[TieringRun] = relationship(back_populates="proposals")
    customer: Mapped[Customer] = relationship()
    step_unit: Mapped[OrgUnit | None] = relationship()
    decided_by: Mapped[Person | None] = relationship()


class Visit(db.Model):
    """A service contact with a customer (拜访): on site, by phone...; counted against the tier's cadence."""
    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint("method IN ('on_site','phone','online','other')", name="method_known"),
        Index("ix_visits_customer_day", "customer_id", "visited_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)   # who visited
    visited_on: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16), default="on_site")
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="visits")
    manager: Mapped[Person | None] = relationship(foreign_keys=[manager_id])
    recorded_by: Mapped[Person | None] = relationship(foreign_keys=[recorded_by_id])


class Lead(db.Model):
    """A sales lead (跟单客户) of a class (A about to sign, B clear intent, C some intent) followed by an
    owner until `deadline` (the class's days from assignment); past it `tick` marks it overdue and the sales
    manager may reassign it."""
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint("state IN ('open','overdue','won','lost')", name="state_known"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_leads_state_deadline", "state", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    lead_class: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="open")
    opened_on: Mapped[dt.date] = mapped_column(Date)
    assigned_on: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    head_mac: Mapped[str | None] = mapped_column(String(64))

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    customer: Mapped[Customer | None] = relationship()
    unit: Mapped[OrgUnit] = relationship()
    owner: Mapped[Person] = relationship(foreign_keys=[owner_id])
    created_by: Mapped[Person | None] = relationship(foreign_keys=[created_by_id])

    def __repr__(self) -> str:
        return f"<Lead {self.id} {self.lead_class} {self.state}>"
