from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Integer, DateTime, CheckConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from . import db
from .people import Person, utcnow


class Attachment(db.Model):
    """A file attached to a case (a certificate, a diploma, evidence of results). The bytes live outside the
    database, in the attachment store, under a name derived from `sha256`; the `attach` event of the case's
    audit chain records the same checksum."""
    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint("size > 0", name="size_positive"),
        CheckConstraint("length(sha256) = 64", name="sha256_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    # Case.attachments, oldest first (a backref: the case module stays as it is).
    case = relationship("Case", backref=backref("attachments", order_by="Attachment.id", passive_deletes=True))
    uploaded_by: Mapped[Person] = relationship()
