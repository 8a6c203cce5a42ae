"""One commit per request: load the case (locked on PostgreSQL), fire the action, commit.

Two racing decisions: on PostgreSQL the second waits on the row lock and then finds the case moved on;
on SQLite its UPDATE finds the version changed. Either way it gets 409. Concurrent panel scores never
block each other: a score that lost the race is simply tried again on the fresh case.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from workflow import authority, engine
from workflow.errors import Conflict, NotFound
from workflow.machines import rulebook
from workflow.models import db, Case, Person

RETRIES = 5
T = TypeVar("T")


def commit_or_conflict(work: Callable[[], T], conflict: Any) -> T:
    """Run a change and commit it. A lost race (a row changed meanwhile, a unique key taken) is a 409 with
    the message `conflict`; any failure rolls back, so nothing of the change is left."""
    try:
        out = work()
        db.session.commit()
        return out
    except (StaleDataError, IntegrityError, OperationalError) as exc:
        db.session.rollback()
        raise Conflict(conflict) from exc
    except Exception:
        db.session.rollback()
        raise


def load_visible_case(case_id: int, viewer: Person, lock: bool = False) -> Case:
    q = select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    if lock:
        q = q.with_for_update(of=Case)
    case = db.session.scalar(q)
    if case is None or not authority.can_see(viewer, case):
        raise NotFound(f"no case {case_id}")
    return case


def decide(case_id: int, action: str, actor: Person, data: dict[str, Any], version: Any = None) -> Case:
    """Fire `action` and commit; retry version-free actions that lost a race."""
    for attempt in range(RETRIES):
        case = load_visible_case(case_id, actor, lock=True)
        retry_ok = action in rulebook(case.kind).version_free
        try:
            engine.fire(case, action, actor, data, expected_version=version)
            db.session.commit()
            return case
        except (engine.Stale, StaleDataError):
            db.session.rollback()
            if not retry_ok or attempt == RETRIES - 1:
                raise Conflict("another decision on this case came first; reload it") from None
        except (IntegrityError, OperationalError) as exc:
            db.session.rollback()
            if not retry_ok or attempt == RETRIES - 1:
                raise Conflict("another decision on this case came first; reload it") from exc
        except Exception:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")
