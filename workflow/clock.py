"""Today's date and working days. Tests may fix today; nothing else changes the clock."""
from __future__ import annotations

import calendar
import datetime as dt

_fixed_today: dt.date | None = None


def fix_today(day: dt.date | None) -> None:
    """Fix today's date (the testing configuration and CLI `--today` use this)."""
    global _fixed_today
    _fixed_today = day


def today() -> dt.date:
    return _fixed_today or dt.date.today()


def now() -> dt.datetime:
    """UTC now, naive, as stored."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def is_working_day(day: dt.date, holidays=frozenset()) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_working_days(start: dt.date, days: int, holidays=frozenset()) -> dt.date:
    """The date `days` working days after `start`."""
    d = start
    while days > 0:
        d += dt.timedelta(days=1)
        if is_working_day(d, holidays):
            days -= 1
    return d


def first_of_next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months later, clamped to the month's last day."""
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
