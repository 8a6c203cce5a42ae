"""Login throttling kept in the database, so that every worker and every node counts the same failures.

Each failed login is a row (username tried, client address, time). A username with `per_user` failures
within the window, or an address with `per_address`, is locked out until the oldest of those failures
leaves the window; while locked, no password is checked and nothing is recorded, so a lock ends on time
however often someone knocks. A successful login clears the username's failures (not the address's:
one good account must not wipe the count of a password sprayed over many). Rows older than the window
are deleted as new failures come. Two workers may each let one attempt through at the very moment a
limit is reached; the limit can be overshot by the number of concurrent requests, never more.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy import delete, select

from .models import db
from .models.security import LoginAttempt

FIELD_MAX = 64


@dataclass(frozen=True)
class Limits:
    window_seconds: int = 15 * 60
    per_user: int = 5
    per_address: int = 50


def now() -> dt.datetime:
    """Wall-clock UTC (naive, like every stored time): throttling follows real time, not the case clock."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def address_key(address: str | None) -> str:
    """The address as counted: an IPv4 address as is, an IPv6 address by its /64 (one subscriber's block)."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return (address or "unknown")[:FIELD_MAX]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _username_key(username: str) -> str:
    return username.strip()[:FIELD_MAX]


def _wait(column, value: str, limit: int, limits: Limits, at: dt.datetime) -> int:
    """Seconds until `value` may try again (0: not locked)."""
    if limit < 1:
        return 0
    window = dt.timedelta(seconds=limits.window_seconds)
    recent = db.session.scalars(select(LoginAttempt.at).where(column == value, LoginAttempt.at > at - window)
                                .order_by(LoginAttempt.at.desc()).limit(limit)).all()
    if len(recent) < limit:
        return 0
    return max(1, math.ceil((recent[-1] + window - at).total_seconds()))


def retry_after(username: str, address: str | None, limits: Limits, at: dt.datetime | None = None) -> int:
    """Seconds until a login as `username` from `address` may be tried (0: it may be tried now)."""
    at = at or now()
    return max(_wait(LoginAttempt.username, _username_key(username), limits.per_user, limits, at),
               _wait(LoginAttempt.address, address_key(address), limits.per_address, limits, at))


def record_failure(username: str, address: str | None, limits: Limits, at: dt.datetime | None = None) -> None:
    """Count a failed login, and forget the failures that have left the window (flushes, never commits)."""
    at = at or now()
    db.session.execute(delete(LoginAttempt).where(
        LoginAttempt.at <= at - dt.timedelta(seconds=limits.window_seconds)))
    db.session.add(LoginAttempt(username=_username_key(username), address=address_key(address), at=at))
    db.session.flush()


def clear(username: str) -> None:
    """Forget the username's failures after a successful login (flushes, never commits)."""
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.username == _username_key(username)))
