"""`tick` on several machines at once: three tick processes against one database do each due job exactly
once (PostgreSQL: each job claimed with SELECT ... FOR UPDATE SKIP LOCKED; SQLite: one writer at a time and
the case's versioned UPDATE). See docs/concurrency.md."""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from web.config import TestingConfig
from workflow import engine, invariants
from workflow.models import db, Case, Event, Person

ROOT = Path(__file__).resolve().parent.parent
JOBS = 16
TICKS = 3
TICK_DAY = dt.date(2027, 1, 1)    # every probation below ends on 2027-01-01: its evaluation is due


def _tick_env(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "GRADEFLOW_ENV": "production",
            "SECRET_KEY": "tick-" + "0" * 32,
            "AUDIT_KEY": TestingConfig.SECRET_KEY}   # the tests' audit key: one chain, one verification


def test_three_ticks_at_once_do_each_job_exactly_once(app, bank, make_person):
    hr = db.session.scalar(select(Person).where(Person.username == "hr_b1"))
    for i in range(JOBS):
        newcomer = make_person(f"new{i:02d}", bank["units"]["T1"], status="probation",
                               hired_on=dt.date(2026, 1, 1))
        engine.open_probation(newcomer, hr)
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]

    ticks = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "tick", "--today",
                               TICK_DAY.isoformat()], cwd=ROOT, env=_tick_env(url), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(TICKS)]
    outputs = [t.communicate(timeout=300) for t in ticks]

    counts = []
    for t, (out, err) in zip(ticks, outputs):
        assert t.returncode == 0, err
        done, skipped, failed = map(int, re.search(r"(\d+) done, (\d+) skipped, (\d+) failed", out).groups())
        counts.append((done, skipped, failed))
    print(f"{TICKS} ticks, {JOBS} jobs: (done, skipped, failed) = {counts}")
    assert sum(done for done, _, _ in counts) == JOBS
    assert all(failed == 0 for _, _, failed in counts)
    db.session.expire_all()
    opened = Counter(db.session.scalars(select(Event.case_id).where(Event.action == "open_evaluation")).all())
    cases = db.session.scalars(select(Case.id).where(Case.kind == "probation")).all()
    assert len(cases) == JOBS and all(opened[c] == 1 for c in cases), opened
    assert set(db.session.scalars(select(Case.state).where(Case.kind == "probation"))) == {"evaluation"}
    assert invariants.check() == []
