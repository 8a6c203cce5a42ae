"""bench/run.py's entries for races and crashes (bench/race.py, bench/crash.py). Both empty the database they
use, so they run on a scratch database of their own next to the benchmark data, never on it: a temporary
SQLite file, or on PostgreSQL the database named after the benchmark one with `_race` appended."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from bench import crash, race
from bench.generate import ensure_database
from bench.registry import Context, Result, benchmark
from workflow import invariants


def _scratch(ctx: Context, tmp: str) -> str:
    if ctx.db == "sqlite":
        return f"sqlite:///{os.path.join(tmp, 'scratch.db')}"
    url = make_url(ctx.url)
    scratch = url.set(database=f"{url.database}_race").render_as_string(hide_password=False)
    ensure_database(scratch)
    return scratch


def _results(prefix: str, tally: race.Tally, problems: list[str], seconds: float) -> list[Result]:
    out = [Result(f"{prefix}.attempts", tally.attempts, "attempts"),
           Result(f"{prefix}.successes", tally.ok, "decisions"),
           Result(f"{prefix}.attempts_per_s", tally.attempts / seconds, "/s"),
           Result(f"{prefix}.unexpected_answers", len(tally.unexpected), "answers", target=0,
                  higher_is_better=False),
           Result(f"{prefix}.invariant_problems", len(problems), "problems", target=0,
                  higher_is_better=False)]
    out += [Result(f"{prefix}.refused.{code}", n, "answers") for code, n in sorted(tally.codes.items())]
    if tally.lost:
        out.append(Result(f"{prefix}.lost", tally.lost, "requests", note="no answer: the server was killed"))
    return out


@benchmark("race", "random legal and illegal decisions racing on shared cases, then the invariants")
def race_benchmark(ctx: Context):
    attempts = 1_000 if ctx.quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        url = _scratch(ctx, tmp)
        app = race.make_app(url)
        with app.app_context():
            world = race.seed()
        ctx.say(f"race: {attempts} attempts at {url.split('@')[-1]}")
        start = time.perf_counter()
        if ctx.db == "postgres":
            tally = race.run_processes(url, world, processes=4, threads=2, attempts=attempts, seed=ctx.seed)
        else:
            tally = race.run_threads(app, world, threads=8, attempts=attempts, seed=ctx.seed)
        seconds = time.perf_counter() - start
        with app.app_context():
            problems = invariants.check() + race.acknowledged_problems(tally.acknowledged, exact=True)
        for line in problems[:20]:
            ctx.say(f"  {line}")
        return _results("race", tally, problems, seconds)


@benchmark("crash", "SIGKILL to gunicorn mid-load, restarted: the invariants and every acknowledged decision")
def crash_benchmark(ctx: Context):
    kills = 1 if ctx.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        url = _scratch(ctx, tmp)
        app = race.make_app(url)
        with app.app_context():
            world = race.seed(12)
        start = time.perf_counter()
        tally, problems = crash.run(app, url, world, kills=kills, successes=50 if ctx.quick else 300,
                                    clients=6, log=Path(tmp) / "gunicorn.log", out=ctx.say)
        for line in problems[:20]:
            ctx.say(f"  {line}")
        return [Result("crash.kills", kills, "kills")] + _results("crash", tally, problems,
                                                                  time.perf_counter() - start)
