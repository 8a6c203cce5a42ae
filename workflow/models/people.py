from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Integer, Float, Date, DateTime, Boolean, CheckConstraint, Index
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from . import db
from .org import OrgUnit

STATUSES = ("active", "probation", "dismissed")
# The KDF of stored passwords (scrypt, N=2^15, r=8, p=1: werkzeug's default); a hash of another method
# or cost is rewritten at the person's next successful login.
PASSWORD_METHOD = "scrypt:32768:8:1"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Person(db.Model):
    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint("status IN ('active','probation','dismissed')", name="status_known"),
        CheckConstraint("(level IS NULL AND tier IS NULL) OR (level IS NOT NULL AND tier >= 1)",
                        name="grade_whole"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    level: Mapped[str | None] = mapped_column(String(64))
    tier: Mapped[int | None] = mapped_column(Integer)
    grade_since: Mapped[dt.date | None] = mapped_column(Date)
    hired_on: Mapped[dt.date | None] = mapped_column(Date)
    education: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    # Bumped to end every browser session of the person (dismissal, password reset).
    session_generation: Mapped[int] = mapped_column(Integer, default=0)
    # Head of the person's own audit chain (grade changes made outside a case, e.g. by import).
    audit_version: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str | None] = mapped_column(String(64))
    # Notifications by e-mail: the address (none: in-app only), whether the person wants them, and the
    # language they are written in (None: Chinese).
    email: Mapped[str | None] = mapped_column(String(254))
    email_notifications: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    language: Mapped[str | None] = mapped_column(String(8))

    unit: Mapped[OrgUnit] = relationship()
    roles: Mapped[list["RoleAssignment"]] = relationship(  # noqa: F821
        back_populates="person", cascade="all, delete-orphan")

    @property
    def grade(self) -> str | None:
        return f"{self.level}-{self.tier}" if self.level else None

    # The login interface (Flask-Login's protocol). The id carries the session generation, so a
    # dismissal or a password reset ends every browser session at once.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.status != "dismissed"

    def get_id(self) -> str:
        return f"{self.id}:{self.session_generation or 0}"

    @property
    def is_active_login(self) -> bool:
        return self.status != "dismissed" and self.password_hash is not None

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
        self.session_generation = (self.session_generation or 0) + 1

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def password_needs_rehash(self) -> bool:
        return bool(self.password_hash) and not self.password_hash.startswith(PASSWORD_METHOD + "$")

    def rehash_password(self, password: str) -> None:
        """Store the (just checked) password under the current KDF; sessions stay, nothing else changes."""
        self.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)

    def role_strings(self) -> list[str]:
        return sorted(str(r) for r in self.roles)

    def __repr__(self) -> str:
        return f"<Person {self.username}>"


class ApiToken(db.Model):
    """A bearer token; only its SHA-256 is stored."""
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    person: Mapped[Person] = relationship()


class Score(db.Model):
    """An assessment score: performance (0-100), skill_test (0-100 or pass/fail) or another kind."""
    __tablename__ = "scores"
    __table_args__ = (
        Index("ix_scores_person_kind", "person_id", "kind"),
        db.UniqueConstraint("person_id", "kind", "period", name="uq_scores_person_kind_period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(10))        # 2025, 2025-Q3, 2025-07
    granularity: Mapped[str] = mapped_column(String(8))    # year, quarter, month
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[float | None] = mapped_column(Float)     # numeric value, if any
    passed: Mapped[bool | None] = mapped_column(Boolean)   # for pass/fail results
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    person: Mapped[Person] = relationship()


class GradeHistory(db.Model):
    """职级履历: every change of a person's grade, with the case that caused it (if any)."""
    __tablename__ = "grade_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    from_grade: Mapped[str | None] = mapped_column(String(80))
    to_grade: Mapped[str | None] = mapped_column(String(80))
    effective_on: Mapped[dt.date] = mapped_column(Date)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    source: Mapped[str] = mapped_column(String(32))        # case, import, admin
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    person: Mapped[Person] = relationship()
