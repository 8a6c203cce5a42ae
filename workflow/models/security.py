"""Failed logins, kept in the database so that every worker and node throttles the same attempts."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from . import db


class LoginAttempt(db.Model):
    """One failed login: the username tried (whether or not such a person exists) and the client address
    (an IPv6 address by its /64). Rows older than the throttling window are deleted as new ones come."""
    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)

    def __repr__(self) -> str:
        return f"<LoginAttempt {self.username} from {self.address} at {self.at:%Y-%m-%d %H:%M:%S}>"
