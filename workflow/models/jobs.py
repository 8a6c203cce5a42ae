from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (CheckConstraint, DateTime, ForeignKey, Index, Integer, JSON, LargeBinary, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from . import db
from .people import Person, utcnow

JOB_KINDS = ("import_people", "bulk_decision", "annual_review")
JOB_STATUSES = ("queued", "running", "done", "failed")


class Job(db.Model):
    """A batch of work kept in the database and run by a worker (workflow/jobs.py): an import of people,
    a bulk decision on cases, an annual review. `done`/`total` is the progress, committed with each chunk
    of the work, so a job that stopped half-way resumes at `done`. `result` holds what the job found so
    far (counts, per-case outcomes); `error` why it failed. `claimed_by`/`heartbeat_at` name the worker
    running it and when it last reported; a running job whose heartbeat is older than the lease is
    claimed again."""
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("kind IN ('import_people','bulk_decision','annual_review')", name="kind_known"),
        CheckConstraint("status IN ('queued','running','done','failed')", name="status_known"),
        CheckConstraint("done >= 0 AND (total IS NULL OR done <= total)", name="progress_in_range"),
        CheckConstraint("status <> 'running' OR (claimed_by IS NOT NULL AND heartbeat_at IS NOT NULL)",
                        name="running_is_claimed"),
        CheckConstraint("(status IN ('done','failed')) = (finished_at IS NOT NULL)",
                        name="finished_has_a_time"),
        CheckConstraint("status <> 'failed' OR error IS NOT NULL", name="failed_says_why"),
        Index("ix_jobs_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)  # None: the system
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    created_by: Mapped[Person | None] = relationship()
    files: Mapped[list["JobFile"]] = relationship(back_populates="job", cascade="all, delete-orphan",
                                                  order_by="JobFile.id")

    def file(self, purpose: str) -> JobFile | None:
        return next((f for f in self.files if f.purpose == purpose), None)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.status == "done" else None
        return min(100, self.done * 100 // self.total)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.status}>"


class JobFile(db.Model):
    """A file a job reads (an import's units or people file), kept with the job so that any worker, on
    any machine, can run it or take it over. The content is deferred: listing files never loads it."""
    __tablename__ = "job_files"
    __table_args__ = (UniqueConstraint("job_id", "purpose", name="uq_job_files_job_purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))       # units, people
    name: Mapped[str] = mapped_column(String(255))         # the file's name as given
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))

    job: Mapped[Job] = relationship(back_populates="files")
