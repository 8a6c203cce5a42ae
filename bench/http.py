"""HTTP decision throughput: the real application under gunicorn against the bare SQL of a decision.

Two servers run in turn, each `gunicorn --workers 2` (gthread, so connections are kept alive) on a free
loopback port, on the same PostgreSQL database:

- **app**: `wsgi:app`, the real application. Decisions go through the JSON API as they do in production:
  a bearer token is looked up, the case is loaded and row-locked, `engine.fire` checks the state, the
  authority and the version, appends the HMAC-chained audit event, routes the next step, and the unit of
  work commits; the answer is the case's JSON.
- **raw**: a minimal Flask app whose one route does the fixed SQL of a decision and nothing else:
  SELECT the case by id; UPDATE its state and version WHERE id AND version; INSERT the audit row (with the
  same HMAC, so the chains still verify); COMMIT.

A Python client (threads, one keep-alive `http.client` connection each, disjoint cases per thread so that
no two requests race) drives each server for a bounded time, after a short warm-up, with the same
decision: `return` a promotion in qualification review (the approver, with a comment) and `resubmit` it
(the employee, with a statement), again and again. It reports requests per second, p50 and p99 latency,
and the app's throughput as a share of the raw step's (the target: at least 50%).

Run from the project root (`bench/` must not be on sys.path: this module's name is `http`):

    .venv/bin/python -m bench.http --db postgresql+psycopg://postgres@127.0.0.1:5432/gf_bench --seconds 20
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.registry import Context, Result, benchmark

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/gf_bench_http"
BRANCH, TEAM = "BENCHHTTP", "BENCHHTTP-T"     # the subtree the benchmark files its working cases in
TARGET_RATIO = 0.5                          # of the raw step's throughput (issue 4)


# --- the raw SQL step, served by gunicorn as `bench.http:raw_app()` -------------------------------------

def _raw_mac(key: bytes, row: dict) -> str:
    """workflow.audit's MAC of an event, over the same content, so the bench database still verifies."""
    content = {"chain": row["chain"], "seq": row["seq"], "case": row["case_id"], "person": None,
               "action": row["action"], "actor_id": row["actor_id"], "from": row["from_state"],
               "to": row["to_state"], "actor": row["actor"], "role": row["role"], "unit": row["unit"],
               "at": row["at"].isoformat(timespec="microseconds"), "comment": row["comment"],
               "data": row["data"], "prev": row["prev_mac"]}
    msg = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def raw_app():
    """The baseline: one route doing a decision's SQL (a state toggle between qualification review and
    returned), with no authentication, no engine and no ORM."""
    from flask import Flask, jsonify, request
    from sqlalchemy import create_engine, text

    engine = create_engine(os.environ["BENCH_RAW_DATABASE_URL"], pool_size=8)
    # The app's audit key, derived as web/__init__.py derives it (workflow.audit.derive_key).
    key = hashlib.sha256(b"gradeflow-audit:" + os.environ["AUDIT_KEY"].encode()).digest()
    app = Flask("bench_raw")

    @app.post("/raw/<int:case_id>")
    def decide(case_id: int):
        version = (request.get_json(silent=True) or {}).get("version")
        with engine.begin() as conn:
            row = conn.execute(text("SELECT id, state, version, head_mac FROM cases WHERE id = :id"),
                               {"id": case_id}).mappings().first()
            if row is None:
                return jsonify({"error": {"code": "not_found"}}), 404
            if version != row["version"]:
                return jsonify({"error": {"code": "conflict"}, "version": row["version"]}), 409
            action, to = (("return", "returned") if row["state"] == "qualification_review"
                          else ("resubmit", "qualification_review"))
            ev = {"chain": f"case:{case_id}", "seq": row["version"] + 1, "case_id": case_id, "action": action,
                  "from_state": row["state"], "to_state": to, "actor": "bench", "actor_id": None,
                  "role": None, "unit": None, "at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                  "comment": "bench", "data": {}, "prev_mac": row["head_mac"]}
            ev["mac"] = _raw_mac(key, ev)
            done = conn.execute(text("UPDATE cases SET state = :state, version = :new, head_mac = :mac, "
                                     "updated_at = :at WHERE id = :id AND version = :old"),
                                {"state": to, "new": ev["seq"], "mac": ev["mac"], "at": ev["at"],
                                 "id": case_id, "old": row["version"]})
            if done.rowcount != 1:
                return jsonify({"error": {"code": "conflict"}}), 409
            conn.execute(text("INSERT INTO events (chain, seq, case_id, action, from_state, to_state, actor, "
                              "actor_id, role, unit, at, comment, data, prev_mac, mac) VALUES (:chain, :seq, "
                              ":case_id, :action, :from_state, :to_state, :actor, :actor_id, :role, :unit, "
                              ":at, :comment, :data, :prev_mac, :mac)"), {**ev, "data": json.dumps(ev["data"])})
        return jsonify({"id": case_id, "state": to, "version": ev["seq"]})

    return app


# --- preparing the database ----------------------------------------------------------------------------

@dataclass
class WorkItem:
    case_id: int
    state: str
    version: int
    approver: str = ""       # bearer tokens
    employee: str = ""


def prepare(url: str, cases: int, scale: float) -> tuple[list[WorkItem], list[WorkItem]]:
    """A dataset (bench/generate.py's, generated at `scale` unless the database holds one already), and two
    disjoint sets of working promotions in qualification review or returned: one for the app, one for the
    raw step."""
    from sqlalchemy import func, select
    from bench import generate
    from workflow.models import db, Case, OrgUnit, Person
    generate.ensure_database(url)
    app = generate.app_for(url)
    if generate.stored_summary(app) is None:
        generate.generate(url, scale, progress=lambda msg: print(msg, file=sys.stderr))
    with app.app_context():
        team = db.session.scalar(select(OrgUnit).where(OrgUnit.code == TEAM)) or _working_subtree()
        want = 2 * cases
        have = db.session.scalar(select(func.count()).select_from(Case)
                                 .join(Person, Case.employee_id == Person.id)
                                 .where(Person.unit_id == team.id, Case.closed.is_(False)))
        if have < want:
            _file_cases(team, want - have)
        items = _work_items(team)
        db.session.commit()
    return items[:cases], items[cases:want]


def _working_subtree():
    """A region, a branch with an approver and a team under the root: where the working cases live."""
    from sqlalchemy import select
    from workflow.models import db, OrgUnit, Person, RoleAssignment
    root = db.session.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.id))
    units = {}
    parent = root
    for code, level in ((BRANCH + "-R", "region"), (BRANCH, "branch"), (TEAM, "team")):
        unit = OrgUnit(code=code, name=code, level=level, parent=parent, path="")
        db.session.add(unit)
        db.session.flush()
        unit.path = f"{parent.path}{unit.id}/"
        units[level], parent = unit, unit
    approver = Person(username="bench_approver", name="bench approver", unit=units["branch"], status="active")
    db.session.add(approver)
    db.session.add(RoleAssignment(person=approver, role="approver", unit=units["branch"]))
    db.session.flush()
    return units["team"]


def _file_cases(team, n: int) -> None:
    """n eligible managers in the team, each filing a promotion to senior (performance and skill test of
    last year on record)."""
    from workflow import clock, engine
    from workflow.models import db, Person, Score
    today = clock.today()
    year = today.year - 1
    start = db.session.query(Person).filter(Person.unit_id == team.id).count()
    for i in range(start, start + n):
        p = Person(username=f"bench_m{i:05d}", name=f"bench manager {i}", unit=team, level="manager", tier=3,
                   grade_since=dt.date(year - 2, 1, 1), hired_on=dt.date(year - 5, 1, 1),
                   education="bachelor", status="active")
        db.session.add(p)
        db.session.add(Score(person=p, kind="performance", period=str(year), granularity="year",
                             period_start=dt.date(year, 1, 1), period_end=dt.date(year, 12, 31), value=90))
        db.session.add(Score(person=p, kind="skill_test", period=str(year), granularity="year",
                             period_start=dt.date(year, 1, 1), period_end=dt.date(year, 12, 31), value=80))
        db.session.flush()
        engine.create_promotion(p, p, "senior", "bench")
        if i % 100 == 99:
            db.session.commit()
    db.session.commit()


def _work_items(team) -> list[WorkItem]:
    from sqlalchemy import select
    from web.auth import issue_token
    from workflow.models import db, Case, CaseAssignee, Person
    cases = db.session.scalars(select(Case).join(Person, Case.employee_id == Person.id)
                               .where(Person.unit_id == team.id, Case.closed.is_(False),
                                      Case.state.in_(("qualification_review", "returned")))
                               .order_by(Case.id)).all()
    approver = db.session.scalar(select(Person).join(CaseAssignee, CaseAssignee.person_id == Person.id)
                                 .where(CaseAssignee.duty == "decide",
                                        CaseAssignee.case_id.in_([c.id for c in cases]))
                                 .limit(1))
    approver_token = issue_token(approver)
    items = []
    for c in cases:
        items.append(WorkItem(c.id, c.state, c.version, approver_token, issue_token(c.employee)))
    return items


# --- the servers ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with two gthread workers on a free loopback port, stopped on exit."""

    def __init__(self, spec: str, env: dict[str, str], threads: int):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "--workers", "2", "--worker-class", "gthread", "--threads",
             str(threads), "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", spec],
            cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {spec} exited with {self.proc.returncode}")
            try:      # a worker answers (any status): the app has booted
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn {spec} did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --- the client ----------------------------------------------------------------------------------------

@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)


def _drive(port: int, items: list[WorkItem], raw: bool, warm_until: float, stop_at: float,
           tally: Tally) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = 0
    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        item = items[i % len(items)]
        i += 1
        if raw:
            path, token, body = f"/raw/{item.case_id}", None, {"version": item.version}
        elif item.state == "qualification_review":
            path, token = f"/api/v1/cases/{item.case_id}/return", item.approver
            body = {"version": item.version, "comment": "请补充材料"}
        else:
            path, token = f"/api/v1/cases/{item.case_id}/resubmit", item.employee
            body = {"version": item.version, "statement": "已补充"}
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        start = time.perf_counter()
        try:
            conn.request("POST", path, json.dumps(body), headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            tally.errors[0] = tally.errors.get(0, 0) + 1
            continue
        elapsed = time.perf_counter() - start
        if resp.status == 200:
            answer = json.loads(data)
            item.state, item.version = answer["state"], answer["version"]
            if now >= warm_until:
                tally.latencies.append(elapsed)
        else:
            tally.errors[resp.status] = tally.errors.get(resp.status, 0) + 1
            if resp.status == 409:
                _resync(item)
    conn.close()


def _resync(item: WorkItem) -> None:
    """After a 409 (a run interrupted mid-way): read the case's state and version from the database."""
    from sqlalchemy import create_engine, text
    eng = create_engine(os.environ["BENCH_RAW_DATABASE_URL"])
    with eng.connect() as conn:
        item.state, item.version = conn.execute(text("SELECT state, version FROM cases WHERE id = :id"),
                                                {"id": item.case_id}).one()
    eng.dispose()


def drive(port: int, items: list[WorkItem], raw: bool, clients: int, seconds: float, warmup: float) -> dict:
    """Run `clients` threads for warm-up + `seconds`; answer req/s and latency percentiles (ms)."""
    slices = [items[k::clients] for k in range(clients)]
    tally = Tally()
    start = time.monotonic()
    warm_until, stop_at = start + warmup, start + warmup + seconds
    threads = [threading.Thread(target=_drive, args=(port, s, raw, warm_until, stop_at, tally))
               for s in slices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = sorted(tally.latencies)
    if not lat:
        raise RuntimeError(f"no request succeeded (errors: {tally.errors})")
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    return {"requests": len(lat), "rps": len(lat) / seconds, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "errors": tally.errors}


# --- the benchmark -------------------------------------------------------------------------------------

def measure(db: str, cases: int, seconds: float, clients: int, scale: float) -> tuple[dict, dict]:
    """The raw step's server, then the app's, each driven for `seconds`: (app figures, raw figures)."""
    from bench import generate
    app_items, raw_items = prepare(db, cases, scale)
    # The generated chains are keyed by the generator's SECRET_KEY: the servers take it as their AUDIT_KEY.
    env = {"DATABASE_URL": db, "SECRET_KEY": secrets.token_hex(32), "BENCH_RAW_DATABASE_URL": db,
           "AUDIT_KEY": os.environ.get("AUDIT_KEY") or os.environ.get("SECRET_KEY") or generate.SECRET_KEY}
    os.environ["BENCH_RAW_DATABASE_URL"] = db
    warmup = min(3.0, seconds / 4)
    with Server("bench.http:raw_app()", env, threads=4) as raw_server:
        raw = drive(raw_server.port, raw_items, True, clients, seconds, warmup)
    with Server("wsgi:app", env, threads=4) as app_server:
        real = drive(app_server.port, app_items, False, clients, seconds, warmup)
    return real, raw


def results(real: dict, raw: dict, seconds: float, clients: int) -> list[Result]:
    note = (f"{real['requests']} decisions in {seconds:g}s, {clients} clients; raw SQL {raw['requests']}; "
            f"errors app {real['errors'] or 0}, raw {raw['errors'] or 0}")
    return [Result("http.decisions", real["rps"], "req/s", target=TARGET_RATIO, ceiling=raw["rps"],
                   note=note),
            Result("http.decisions.p50", real["p50_ms"], "ms"),
            Result("http.decisions.p99", real["p99_ms"], "ms"),
            Result("http.raw_sql", raw["rps"], "req/s"), Result("http.raw_sql.p50", raw["p50_ms"], "ms"),
            Result("http.raw_sql.p99", raw["p99_ms"], "ms")]


@benchmark("http", "decisions per second over HTTP under gunicorn (2 workers) against the raw SQL step",
           databases=("postgres",))
def http_decisions(ctx: Context) -> list[Result]:
    """For bench/run.py: both servers on the run's database (the working cases are filed there once)."""
    seconds, cases, clients = (5.0, 200, 8) if ctx.quick else (20.0, 800, 8)
    real, raw = measure(ctx.url, cases, seconds, clients, scale=ctx.scale)
    return results(real, raw, seconds, clients)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default=os.environ.get("BENCH_PG_URL", DEFAULT_DB), help="a PostgreSQL URL")
    ap.add_argument("--quick", action="store_true", help="5 s per server, 200 cases each")
    ap.add_argument("--scale", type=float, help="the generated dataset's scale when the database has none "
                                                "(default 0.1; 0.01 with --quick)")
    ap.add_argument("--seconds", type=float, help="measured seconds per server (default 20)")
    ap.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    args = ap.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    real, raw = measure(args.db, 200 if args.quick else 800, seconds, args.clients,
                        args.scale or (0.01 if args.quick else 0.1))
    for r in results(real, raw, seconds, args.clients):
        print(json.dumps({**r.to_json(), "note": r.note}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
