from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text, DateTime
from sqlalchemy.orm import Mapped, mapped_column

from . import db
from .people import utcnow


class PolicyVersion(db.Model):
    """A policy exactly as it was loaded; cases point at the version they started under."""
    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(120))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[str] = mapped_column(Text)      # canonical JSON of the validated document
    source: Mapped[str] = mapped_column(String(500))
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Setting(db.Model):
    """Small key/value settings kept with the data (the active policy version)."""
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))
