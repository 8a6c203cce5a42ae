from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Date, DateTime, UniqueConstraint, CheckConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import db
from .people import Person, utcnow

# 产假, 病假, 事假 and any other absence (缺勤). The policy says which of them exempt from the annual review.
ABSENCE_REASONS = ("maternity", "sick", "personal", "other")


class Absence(db.Model):
    """A stretch of absence of a person, from `start` to `end` (both days included), imported from HR's
    records. The annual review counts the days of a period to find the months worked in it."""
    __tablename__ = "absences"
    __table_args__ = (
        # An import upserts by person, first day and reason.
        UniqueConstraint("person_id", "start", "reason", name="uq_absences_person_start_reason"),
        CheckConstraint("reason IN ('maternity','sick','personal','other')", name="reason_known"),
        CheckConstraint('"start" <= "end"', name="start_before_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(16))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    person: Mapped[Person] = relationship()

    def days_within(self, first: dt.date, last: dt.date) -> set[dt.date]:
        """The days of the absence that fall between `first` and `last` (the absence clipped to a period)."""
        lo, hi = max(self.start, first), min(self.end, last)
        return {lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)} if lo <= hi else set()

    def __repr__(self) -> str:
        return f"<Absence {self.person_id} {self.reason} {self.start}..{self.end}>"
