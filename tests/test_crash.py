"""Crash safety, bounded: gunicorn with two workers serves the JSON API to client threads that record every
2xx answer; SIGKILL reaches the master and its workers mid-load; gunicorn starts again and takes more load.
Then every invariant holds, every decision a client saw succeed is stored, and none is half applied.
bench/crash.py runs the same with more kills and more load."""
from __future__ import annotations

import time

from bench import crash, race
from workflow.models import db

SUCCESSES = 4          # 2xx answers seen before the kill, and again after the restart
CLIENTS = 3


def test_kill_9_mid_load_loses_no_acknowledged_decision_and_half_applies_none(app, tmp_path):
    world = race.seed(reset=False)
    db.session.remove()      # nothing of this process holds the database while the server runs
    lines: list[str] = []
    start = time.perf_counter()
    tally, problems = crash.run(app, app.config["SQLALCHEMY_DATABASE_URI"], world, kills=1,
                                successes=SUCCESSES, clients=CLIENTS, log=tmp_path / "gunicorn.log",
                                out=lines.append)
    print("\n".join(lines))
    race.report(tally, problems, time.perf_counter() - start, out=print)
    assert tally.unexpected == []
    assert tally.ok >= 2 * SUCCESSES and len(tally.acknowledged) == tally.ok
    assert problems == []
