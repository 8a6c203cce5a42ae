"""Claiming the jobs time brings (`tick`), so that several tick processes at once do each job exactly once.

A job is (case, timed action). `claim()` locks the case row and asks again, under the lock, whether the
action is still due; the caller then fires it and commits, one transaction per job.

- PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`. A case another tick (or a person's decision) holds is
  not waited for: `claim()` raises `Busy` and the tick goes on with its other jobs, coming back to the busy
  ones at the end with a waiting lock. Whoever gets the lock second finds the job no longer due.
- SQLite has no row locks (the clause is not rendered): it allows one writer at a time, and the case's
  versioned UPDATE (`WHERE version = <read>`) refuses the second of two ticks that read the same version
  (`StaleDataError`), as does the unique (chain, seq) of the audit event. The tick counts it as skipped.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from . import engine
from .models import db, Case


class Busy(Exception):
    """Another transaction holds the case's row lock (PostgreSQL, SKIP LOCKED)."""


def claim(case_id: int, action: str, today: dt.date, wait: bool = False) -> Case | None:
    """Lock the case for the job and answer it if `action` is still due under the lock, else None (the
    case is gone, or another tick or a person acted first). Without `wait`, raises Busy rather than queue
    behind a lock another transaction holds. Starts the job's transaction; the caller commits or rolls
    back."""
    q = (select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
         .with_for_update(of=Case, skip_locked=not wait))
    case = db.session.scalar(q)
    if case is None:
        if not wait and db.session.scalar(select(Case.id).where(Case.id == case_id)) is not None:
            raise Busy(case_id)
        return None
    return case if engine.is_due(case, action, today) else None
