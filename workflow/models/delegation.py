"""Standing delegations (代理/委托) and copies of cases (抄送): who acts for whom, who reads for information."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import db
from .people import Person, utcnow


class Delegation(db.Model):
    """The principal's own approver and HR duties are taken by the delegate from `starts_on` to `ends_on`
    (both included), until revoked. Creating and revoking are events of the principal's audit chain."""
    __tablename__ = "delegations"
    __table_args__ = (
        CheckConstraint("principal_id <> delegate_id", name="not_to_oneself"),
        CheckConstraint("starts_on <= ends_on", name="range_ordered"),
        CheckConstraint("(revoked_at IS NULL) = (revoked_by_id IS NULL)", name="revoked_whole"),
        Index("ix_delegations_delegate_range", "delegate_id", "starts_on", "ends_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    delegate_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))

    principal: Mapped[Person] = relationship(foreign_keys=[principal_id])
    delegate: Mapped[Person] = relationship(foreign_keys=[delegate_id])
    created_by: Mapped[Person] = relationship(foreign_keys=[created_by_id])
    revoked_by: Mapped[Person | None] = relationship(foreign_keys=[revoked_by_id])

    def covers(self, day: dt.date) -> bool:
        return self.revoked_at is None and self.starts_on <= day <= self.ends_on

    def status(self, day: dt.date) -> str:
        """revoked, ended, active or upcoming, as of `day`."""
        if self.revoked_at is not None:
            return "revoked"
        if day > self.ends_on:
            return "ended"
        return "active" if day >= self.starts_on else "upcoming"


class CaseCopy(db.Model):
    """抄送: the case was copied to a person for information only; they see it and cannot act on it."""
    __tablename__ = "case_copies"
    __table_args__ = (UniqueConstraint("case_id", "person_id", name="uq_case_copies_case_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    copied_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    comment: Mapped[str] = mapped_column(Text, default="")
    copied_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    case = relationship("Case", back_populates="copies")
    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    copied_by: Mapped[Person] = relationship(foreign_keys=[copied_by_id])


# The delegations a person gave, loaded with the assignees of a list of cases (workflow/reports.py) so that
# deciding who acts on whose behalf reads no row per case.
Person.delegations_given = relationship(Delegation, foreign_keys=[Delegation.principal_id], viewonly=True,
                                        order_by=Delegation.id)
