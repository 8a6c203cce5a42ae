"""Jobs: batch work kept in the database, run in chunks by a worker (see docs/batch.md).

`enqueue()` checks a job's parameters and stores it `queued`; `claim()` hands the oldest queued job (or one
whose worker stopped reporting for longer than the lease) to one worker, with a row lock that other
workers skip on PostgreSQL (`FOR UPDATE SKIP LOCKED`) and a conditional UPDATE that only one of them wins
on every database; `run()` does the work through workflow/batch.py. The work commits chunk by chunk, each
chunk together with the job's progress, so a chunk lands whole or not at all and a job that stopped
half-way (a crash, a killed worker) is claimed again after the lease and resumes at the progress it
committed. Functions here commit: they are the unit of work of a worker.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, or_, select, update

from . import batch, clock, importing
from .errors import Conflict, NotFound, WorkflowError
from .i18n import _l
from .models import db, Person
from .models.jobs import Job, JobFile

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)      # a running job whose worker was silent this long is claimed again
Progress = Callable[[Job], None]


class LostClaim(Exception):
    """Another worker took the job over (ours was silent past the lease); ours stops without writing."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


# --- enqueueing --------------------------------------------------------------------------------------

def enqueue(kind: str, params: Any, actor: Person | None, *,
            files: dict[str, tuple[str, bytes]] | None = None) -> Job:
    """Check the parameters of a job of `kind` (who may start it, what it names) and store it queued, with
    the `files` it reads ({purpose: (name, content)}). Raises Invalid/Forbidden/NotFound/Refused as the
    engine does. Flushes; the caller commits."""
    spec = batch.kind(kind)
    files = files or {}
    params = spec.check(params if params is not None else {}, actor, files)
    job = Job(kind=kind, params=params, status="queued", done=0, created_by=actor, created_at=clock.now(),
              attempts=0)
    for purpose, (name, content) in sorted(files.items()):
        job.files.append(JobFile(purpose=purpose, name=name, size=len(content), content=content))
    db.session.add(job)
    db.session.flush()
    return job


# --- claiming and running ----------------------------------------------------------------------------

def _claimable(now: dt.datetime):
    return or_(Job.status == "queued", and_(Job.status == "running", Job.heartbeat_at < now - LEASE))


def claim(worker: str, job_id: int | None = None) -> Job | None:
    """Give the oldest claimable job (or job `job_id`, if claimable) to `worker`, committed as running;
    None when there is none. Two workers never get the same job."""
    for _ in range(5):
        now = clock.now()
        q = select(Job.id).where(_claimable(now)).order_by(Job.id).limit(1)
        if job_id is not None:
            q = q.where(Job.id == job_id)
        if db.engine.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        found = db.session.scalar(q)
        if found is None:
            db.session.rollback()
            return None
        won = db.session.execute(
            update(Job).where(Job.id == found, _claimable(now))
            .values(status="running", claimed_by=worker, heartbeat_at=now, attempts=Job.attempts + 1,
                    started_at=db.func.coalesce(Job.started_at, now))
            .execution_options(synchronize_session=False)).rowcount
        db.session.commit()
        if won == 1:
            return db.session.scalar(select(Job).where(Job.id == found)
                                     .execution_options(populate_existing=True))
    return None


class Chunks:
    """What a job's work sees of the job: where it stands (`job.done`, `job.result`) and how to commit a
    chunk. `begin()` opens a chunk's transaction by renewing the claim (on PostgreSQL this locks the job's
    row, so two workers never commit chunks of one job), `commit()` writes the progress and commits the
    chunk with it."""

    def __init__(self, job: Job, worker: str, progress: Progress | None = None):
        self.job, self.worker, self.progress = job, worker, progress

    def begin(self) -> None:
        renewed = db.session.execute(
            update(Job).where(Job.id == self.job.id, Job.status == "running", Job.claimed_by == self.worker)
            .values(heartbeat_at=clock.now()).execution_options(synchronize_session=False)).rowcount
        if renewed != 1:
            raise LostClaim(f"job {self.job.id} was taken over by another worker")

    def commit(self, done: int, total: int | None = None, result: dict[str, Any] | None = None) -> None:
        self.begin()
        job = self.job
        job.done = done
        if total is not None:
            job.total = total
        if result is not None:
            job.result = result
        job.heartbeat_at = clock.now()
        db.session.commit()
        if self.progress is not None:
            self.progress(job)


def run(job: Job, worker: str, progress: Progress | None = None) -> Job:
    """Do a claimed job to its end: `done` with its result, or `failed` with the reason (a refusal of the
    engine, an import file's problems, or an unexpected error, logged). Answers the job as stored."""
    job_id = job.id
    try:
        result = batch.kind(job.kind).run(job, Chunks(job, worker, progress))
    except LostClaim:
        db.session.rollback()
        log.warning("job %s: taken over by another worker; stopping", job_id)
        return db.session.get(Job, job_id, populate_existing=True)
    except WorkflowError as exc:
        db.session.rollback()
        # a refused import keeps its problems in a form shown again in the reader's language
        details = exc.stored_details() if isinstance(exc, importing.ImportRefused) else exc.details
        return _finish(job_id, worker, "failed", error=str(exc.message), details=details, progress=progress)
    except Exception as exc:      # a job must end, never hang as running: record it, log the traceback
        db.session.rollback()
        log.exception("job %s (%s) failed", job_id, job.kind)
        return _finish(job_id, worker, "failed", error=f"internal error: {exc.__class__.__name__}: {exc}",
                       progress=progress)
    return _finish(job_id, worker, "done", result=result, progress=progress)


def _finish(job_id: int, worker: str, status: str, *, result: dict[str, Any] | None = None,
            error: str | None = None, details: dict[str, Any] | None = None,
            progress: Progress | None = None) -> Job:
    job = db.session.scalar(select(Job).where(Job.id == job_id).execution_options(populate_existing=True))
    if job.status != "running" or job.claimed_by != worker:
        db.session.rollback()
        return job
    job.status, job.finished_at, job.heartbeat_at = status, clock.now(), clock.now()
    if status == "done":
        job.result = result
        job.total = job.total if job.total is not None else job.done
        job.done = job.total
    else:
        job.error = error
        if details:
            problems = details.get("problems")
            if isinstance(problems, list) and len(problems) > batch.MAX_PROBLEMS_KEPT:
                details = {**details, "problems": problems[:batch.MAX_PROBLEMS_KEPT],
                           "problems_total": len(problems)}
            job.result = {**(job.result or {}), "details": details}
    db.session.commit()
    if progress is not None:
        progress(job)
    return job


def run_next(worker: str | None = None, progress: Progress | None = None) -> Job | None:
    """Claim and run the oldest claimable job; None when there is none."""
    worker = worker or worker_name()
    job = claim(worker)
    return run(job, worker, progress) if job is not None else None


def run_queued(worker: str | None = None, progress: Progress | None = None) -> list[Job]:
    """Run jobs until none is left to claim; answers those run."""
    ran = []
    while (job := run_next(worker, progress)) is not None:
        ran.append(job)
    return ran


def run_now(job: Job, progress: Progress | None = None) -> Job:
    """Claim this job (just enqueued and committed by the caller) and run it in this process: the command
    line's imports. If a worker claimed it first, that worker runs it and this answers it as it stands."""
    worker = worker_name()
    claimed = claim(worker, job.id)
    if claimed is None:
        return db.session.get(Job, job.id, populate_existing=True)
    return run(claimed, worker, progress)


def retry(job: Job) -> Job:
    """Queue a failed job again (its cause fixed: a role granted, a file corrected in place); it resumes at
    the progress it committed, so what its chunks did is not done twice. Flushes; the caller commits."""
    if job.status != "failed":
        raise Conflict(_l("job %(job)s is %(status)s; only a failed job is retried", job=job.id, status=job.status))
    job.status, job.error, job.finished_at = "queued", None, None
    job.claimed_by = job.heartbeat_at = None
    if job.result and "details" in job.result:
        job.result = {k: v for k, v in job.result.items() if k != "details"}
    db.session.flush()
    return job


def get(job_id: int) -> Job:
    job = db.session.get(Job, job_id)
    if job is None:
        raise NotFound(_l("no job %(job)s", job=job_id))
    return job


# --- the application's own runner (development and the demo) ----------------------------------------

_lock = threading.Lock()
_thread: threading.Thread | None = None
_wanted = False


def kick(app) -> None:
    """Make sure a thread of this process runs the queued jobs: start one unless one is running, which
    then looks for jobs once more before it ends. Only where the app runs its own jobs (docs/batch.md)."""
    global _thread, _wanted
    with _lock:
        _wanted = True
        if _thread is None:
            _thread = threading.Thread(target=_drain, args=(app,), name="gradeflow-jobs", daemon=True)
            _thread.start()


def _drain(app) -> None:
    global _thread, _wanted
    while True:
        with _lock:
            if not _wanted:
                _thread = None
                return
            _wanted = False
        try:
            with app.app_context():
                run_queued()
                db.session.remove()
        except Exception:         # the thread must end cleanly; the jobs stay claimable after the lease
            log.exception("the application's job runner stopped")
            with _lock:
                _thread, _wanted = None, False
            return


def wait_for_runner(timeout: float | None = None) -> None:
    """Wait for the application's job thread to end (tests and the demo's command line)."""
    thread = _thread
    if thread is not None:
        thread.join(timeout)
