from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, DateTime, JSON, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import db
from .org import OrgUnit
from .people import Person, utcnow
from .policies import PolicyVersion


class Review(db.Model):
    """年度考核排名: one run of the annual review of a unit's subtree for a period, with its outcomes
    ([{username, level, rank, of, outcome, reason, case, ...}]). One per unit and period, so a second
    run opens nothing and answers the first's outcomes, even when two start at the same moment."""
    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("unit_id", "period", name="uq_reviews_unit_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    period: Mapped[str] = mapped_column(String(20))
    outcomes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))    # None: the system
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    unit: Mapped[OrgUnit] = relationship()
    policy_version: Mapped[PolicyVersion] = relationship()
    created_by: Mapped[Person | None] = relationship()

    def __repr__(self) -> str:
        return f"<Review {self.id} {self.period}>"
