from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Integer, DateTime, Text, JSON, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import db


class Event(db.Model):
    """An append-only audit event. Events form chains ("case:12", "person:5"), each event carrying an
    HMAC over its content and the previous event's MAC; see workflow/audit.py."""
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_events_chain_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(40))
    to_state: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))          # a username, or "system"
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)   # cases one acted on
    role: Mapped[str | None] = mapped_column(String(20))
    unit: Mapped[str | None] = mapped_column(String(64))     # code of the unit the role is held at
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    comment: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_mac: Mapped[str | None] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))

    case = relationship("Case", back_populates="events")
