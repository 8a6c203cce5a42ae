"""Notifications: in-app messages to a person about a case, and the outbox of their e-mails.

A notification is written in the same transaction as the change that causes it (a step assigned, a case
decided, an escalation, an urge, a deadline reminder by `tick`). Its e-mail is sent later, after the commit,
by `tick` or the worker (web/mail.py): `mail_state` says where it stands, so a failed SMTP server loses
nothing and a sent row is never sent again.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import db
from .people import Person, utcnow

KINDS = ("assigned", "escalated", "decided", "due_soon", "overdue", "urged",
         # customers: a tier changed, tier changes await approval, customers were released, a lead assigned
         # or overdue. Their params carry `target`: the page to open ({"endpoint", "values"}).
         "tier_changed", "tier_approval", "customers_released", "lead_assigned", "lead_overdue")
# pending: to be mailed; sent: accepted by the SMTP server; logged: printed to the log (no SMTP server set);
# skipped: no mail wanted (e-mail off, no address); failed: refused too often, given up.
MAIL_STATES = ("pending", "sent", "logged", "skipped", "failed")


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (
        # Deadline reminders are sent once per person, case and deadline, however many ticks run.
        UniqueConstraint("recipient_id", "once_key", name="uq_notifications_recipient_once_key"),
        CheckConstraint("kind IN ('assigned','escalated','decided','due_soon','overdue','urged','tier_changed',"
                        "'tier_approval','customers_released','lead_assigned','lead_overdue')",
                        name="kind_known"),
        CheckConstraint("mail_state IN ('pending','sent','logged','skipped','failed')",
                        name="mail_state_known"),
        Index("ix_notifications_recipient_read_at", "recipient_id", "read_at"),
        Index("ix_notifications_mail_state", "mail_state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    # What the message says, as ids and values; worded in the reader's language when shown or mailed.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    once_key: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    mail_state: Mapped[str] = mapped_column(String(10), default="pending")
    mail_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mailed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    mail_error: Mapped[str | None] = mapped_column(Text)

    recipient: Mapped[Person] = relationship()
    case: Mapped["Case | None"] = relationship()  # noqa: F821

    def __repr__(self) -> str:
        return f"<Notification {self.id} {self.kind} to {self.recipient_id}>"
