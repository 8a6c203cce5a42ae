from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (ForeignKey, String, Integer, Float, Date, DateTime, JSON, UniqueConstraint,
                        CheckConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import db
from .org import OrgUnit
from .people import Person, utcnow
from .policies import PolicyVersion

ROUND_STATES = ("open", "closed", "decided")


class Round(db.Model):
    """晋级周期: HR at a unit opens a round for a period and some target levels; applications come in
    between `opens_on` and `closes_on`; the decision ranks them against the quotas. `version` equals the
    seq of the round's last audit event ("round:ID"), whose MAC is `head_mac`."""
    __tablename__ = "rounds"
    __table_args__ = (
        CheckConstraint("state IN ('open','closed','decided')", name="state_known"),
        CheckConstraint("opens_on <= closes_on", name="window_ordered"),
        CheckConstraint("(state = 'decided') = (decided_at IS NOT NULL)", name="decided_has_a_time"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    period: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    opens_on: Mapped[dt.date] = mapped_column(Date)
    closes_on: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20), default="open", index=True)
    min_composite: Mapped[float | None] = mapped_column(Float)      # from the policy when opened
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Written by the decision: the quotas it used and the ranked lists, per target level.
    quotas: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    results: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    head_mac: Mapped[str | None] = mapped_column(String(64))

    # As on cases: the engine sets the version; the UPDATE checks the old one (the second of two racing
    # decisions fails).
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    unit: Mapped[OrgUnit] = relationship()
    created_by: Mapped[Person] = relationship()
    policy_version: Mapped[PolicyVersion] = relationship()
    level_rows: Mapped[list[RoundLevel]] = relationship(
        back_populates="round", cascade="all, delete-orphan", order_by="RoundLevel.position")
    cases: Mapped[list["Case"]] = relationship(back_populates="round", order_by="Case.id")  # noqa: F821

    @property
    def levels(self) -> list[str]:
        """The target levels, low to high."""
        return [r.level for r in self.level_rows]

    def __repr__(self) -> str:
        return f"<Round {self.id} {self.period} {self.state}>"


class RoundLevel(db.Model):
    """A target level of a round. The unique constraint holds one round per unit, period and level, even
    when two HR officers open rounds at the same moment."""
    __tablename__ = "round_levels"
    __table_args__ = (
        UniqueConstraint("unit_id", "period", "level", name="uq_round_levels_unit_period_level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    period: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)      # the level's place in the ladder, low to high

    round: Mapped[Round] = relationship(back_populates="level_rows")
