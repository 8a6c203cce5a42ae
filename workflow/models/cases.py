from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (ForeignKey, String, Integer, Float, Date, DateTime, Boolean, Text, JSON, Index,
                        UniqueConstraint, CheckConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import db
from .org import OrgUnit
from .people import Person, utcnow
from .policies import PolicyVersion
from .rounds import Round

ROUTING_REASONS = ("vacancy", "self", "conflict", "exceptional", "escalated")


class Case(db.Model):
    """One case of one kind about one employee. `version` equals the seq of its last event."""
    __tablename__ = "cases"
    __table_args__ = (
        # One open case per person and kind.
        Index("uq_cases_open_per_person_kind", "employee_id", "kind", unique=True,
              sqlite_where=text("closed = 0"), postgresql_where=text("NOT closed")),
        CheckConstraint("routing_reason IS NULL OR routing_reason IN "
                        "('vacancy','self','conflict','exceptional','escalated')", name="routing_reason_known"),
        CheckConstraint("closed = (step_unit_id IS NULL)", name="open_cases_have_a_step"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    employee_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    filed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))   # None: the system
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    state: Mapped[str] = mapped_column(String(40), index=True)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    exceptional: Mapped[bool] = mapped_column(Boolean, default=False)
    statement: Mapped[str] = mapped_column(Text, default="")
    from_level: Mapped[str | None] = mapped_column(String(64))
    from_tier: Mapped[int | None] = mapped_column(Integer)
    target_level: Mapped[str | None] = mapped_column(String(64), index=True)
    target_tier: Mapped[int | None] = mapped_column(Integer)
    # The step that acts now: its unit, why it went up (if it did), and its deadline.
    step_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    routing_reason: Mapped[str | None] = mapped_column(String(20))
    routing_from_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    escalations: Mapped[int] = mapped_column(Integer, default=0)   # units the current step went up by tick
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    effective_on: Mapped[dt.date | None] = mapped_column(Date)
    # Lifecycle kinds: why the case was opened, how serious, when probation ends, what it led to.
    reason: Mapped[str | None] = mapped_column(String(40))
    severity: Mapped[str | None] = mapped_column(String(10))
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    extensions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    outcome: Mapped[str | None] = mapped_column(String(40))
    related_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    eligibility: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    eligible: Mapped[bool | None] = mapped_column(Boolean)
    annual_performance: Mapped[float | None] = mapped_column(Float)
    composite: Mapped[float | None] = mapped_column(Float)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    head_mac: Mapped[str | None] = mapped_column(String(64))
    # The promotion round the case was filed in, if any: it is decided with the round, against its quotas.
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"), index=True)

    # The version is set by the engine to the last event's seq; the UPDATE still checks the old one,
    # so the second of two racing decisions fails (StaleDataError -> 409).
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    employee: Mapped[Person] = relationship(foreign_keys=[employee_id])
    filed_by: Mapped[Person | None] = relationship(foreign_keys=[filed_by_id])
    related_case: Mapped[Case | None] = relationship(remote_side=[id], foreign_keys=[related_case_id])
    policy_version: Mapped[PolicyVersion] = relationship()
    round: Mapped[Round | None] = relationship(back_populates="cases")
    step_unit: Mapped[OrgUnit | None] = relationship(foreign_keys=[step_unit_id])
    routing_from_unit: Mapped[OrgUnit | None] = relationship(foreign_keys=[routing_from_unit_id])
    assignments: Mapped[list[CaseAssignee]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseAssignee.person_id")
    panel: Mapped[list[PanelMember]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="PanelMember.id")
    scores: Mapped[list[CaseScore]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseScore.id")
    conflicts: Mapped[list[Conflict]] = relationship(back_populates="case", cascade="all, delete-orphan")
    events: Mapped[list["Event"]] = relationship(  # noqa: F821
        back_populates="case", order_by="Event.seq")
    copies: Mapped[list["CaseCopy"]] = relationship(  # noqa: F821
        back_populates="case", cascade="all, delete-orphan", order_by="CaseCopy.id")

    @property
    def from_grade(self) -> str | None:
        return f"{self.from_level}-{self.from_tier}" if self.from_level else None

    @property
    def target_grade(self) -> str | None:
        return f"{self.target_level}-{self.target_tier}" if self.target_level else None

    def assignee_people(self, duty: str | None = None) -> list[Person]:
        seen, people = set(), []
        for a in self.assignments:
            if (duty is None or a.duty == duty) and a.person_id not in seen:
                seen.add(a.person_id)
                people.append(a.person)
        return people

    def has_duty(self, person: Person, duty: str) -> bool:
        return any(a.person_id == person.id and a.duty == duty for a in self.assignments)

    def __repr__(self) -> str:
        return f"<Case {self.id} {self.kind} {self.state}>"


class CaseAssignee(db.Model):
    """Who must act on the case now, and in which capacity (decide, assign_panel, panel, supervisor,
    applicant). Computed when a step is entered and stored."""
    __tablename__ = "case_assignees"
    __table_args__ = (CheckConstraint(
        "duty IN ('decide','assign_panel','panel','supervisor','applicant')", name="duty_known"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True, index=True)
    duty: Mapped[str] = mapped_column(String(20), primary_key=True)
    role: Mapped[str | None] = mapped_column(String(20))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))

    # The engine flushes the old assignees' DELETE mid-transition; a racing decision may have removed them
    # first (SQLite, no row lock). That loser fails on the case's version at the next flush (409): no
    # warning about the rows it found gone.
    __mapper_args__ = {"confirm_deleted_rows": False}

    case: Mapped[Case] = relationship(back_populates="assignments")
    person: Mapped[Person] = relationship()
    unit: Mapped[OrgUnit | None] = relationship()


class PanelMember(db.Model):
    __tablename__ = "panel_members"
    __table_args__ = (UniqueConstraint("case_id", "person_id", name="uq_panel_members_case_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)   # the cases one may see
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    # As for assignees: a racing assign_panel may have removed the row first; the case's version refuses it.
    __mapper_args__ = {"confirm_deleted_rows": False}

    case: Mapped[Case] = relationship(back_populates="panel")
    person: Mapped[Person] = relationship()


class CaseScore(db.Model):
    """A score given on the case: by a panel member or by the direct supervisor; once each."""
    __tablename__ = "case_scores"
    __table_args__ = (
        UniqueConstraint("case_id", "scorer_id", "component", name="uq_case_scores_case_scorer_component"),
        CheckConstraint("value >= 0 AND value <= 100", name="value_range"),
        CheckConstraint("component IN ('panel','supervisor')", name="component_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    scorer_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    component: Mapped[str] = mapped_column(String(20))
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="scores")
    scorer: Mapped[Person] = relationship()


class Conflict(db.Model):
    """A declared conflict of interest: the person takes no decision on the case."""
    __tablename__ = "conflicts"
    __table_args__ = (UniqueConstraint("case_id", "person_id", name="uq_conflicts_case_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    declared_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="conflicts")
    person: Mapped[Person] = relationship()
