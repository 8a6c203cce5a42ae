"""Races at scale: threads (and processes) firing random legal and illegal decisions at a few shared
promotion cases through the JSON API, then checking the invariants (workflow/invariants.py) and that every
decision a client saw succeed is stored exactly once.

    .venv/bin/python bench/race.py                                   # SQLite file, 10,000 attempts
    .venv/bin/python bench/race.py --database postgresql+psycopg://postgres@127.0.0.1:5432/gf_me \
        --threads 4 --processes 4                                     # PostgreSQL, threads and processes

It prints the attempts, successes, refusals by error code, and the invariant problems; exit 1 on any
problem. The database is emptied first. tests/workflow/test_race.py runs bounded versions of the same.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import from the checkout, never bench/'s own modules in place of the standard library.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import http.client  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, Callable  # noqa: E402

from sqlalchemy import select, text  # noqa: E402

from workflow import engine, invariants, policy as policy_mod  # noqa: E402
from workflow.machines import rulebook  # noqa: E402
from workflow.models import db, Event, OrgUnit, Person, RoleAssignment, Score  # noqa: E402

TODAY = dt.date(2026, 3, 2)
TICK_AHEAD = dt.timedelta(days=45)     # a tick this far ahead makes approved promotions effective
PROMOTION = rulebook("promotion")
ONWARD = {"qualify", "resubmit", "assign_panel", "score", "supervisor_score", "approve", "make_effective"}
COMMENTED = {"return", "reject", "close", "declare_conflict", "uphold", "overturn"}

LOST = 0                               # the status of a request that got no answer
Send = Callable[[str, str, str, Any], tuple[int, Any]]   # (method, path, token, json) -> (status, body)


# --- the database ------------------------------------------------------------------------------------

def app_config(url: str, today: dt.date = TODAY) -> dict:
    """The configuration of every app on the raced database: the same keys (so one audit chain), the same
    day, and the given database."""
    from web.config import TestingConfig
    return {**{k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()},
            "SQLALCHEMY_DATABASE_URI": url, "GRADEFLOW_TODAY": today.isoformat()}


def make_app(url: str, today: dt.date = TODAY):
    from web import create_app
    return create_app(app_config(url, today))


def use_wal() -> None:
    """On SQLite, journal in WAL mode (kept in the database file): readers never wait for the writer, and a
    writer waits for another up to the busy timeout (30 s)."""
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")


@dataclass
class World:
    """Who is who in the seeded bank, and each person's API token."""
    tokens: dict[str, str]
    employees: list[str]
    panel: list[str]
    everyone: list[str]


def seed(employees: int = 8, reset: bool = True) -> World:
    """Empty the database (unless not `reset`: the caller did) and seed HQ > R1 > B1 > {T1, T2}: two
    approvers and two HR officers at B1 (或签), an approver and HR at R1 (exceptional cases), five panel
    members at B1 and three at R1, a supervisor per team, and `employees` managers eligible for senior.
    Commits."""
    from web.auth import issue_token
    if reset:
        if db.engine.dialect.name == "postgresql":
            # Tables of other versions of the schema may hang on ours: the scratch database starts empty.
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        else:
            db.drop_all()
        db.create_all()
    use_wal()
    engine.activate_policy(policy_mod.load_file("bank_corporate"), "bank_corporate")
    units: dict[str, OrgUnit] = {}
    for code, level, parent in [("HQ", "hq", None), ("R1", "region", "HQ"), ("B1", "branch", "R1"),
                                ("T1", "team", "B1"), ("T2", "team", "B1")]:
        unit = OrgUnit(code=code, name=code, level=level, parent=units.get(parent))
        db.session.add(unit)
        db.session.flush()
        unit.path = (units[parent].path if parent else "/") + f"{unit.id}/"
        units[code] = unit
    staff = [("admin", "HQ", ["admin@HQ", "hr@HQ"]), ("appr_b1", "B1", ["approver@B1"]),
             ("appr_b1b", "B1", ["approver@B1"]), ("hr_b1", "B1", ["hr@B1"]), ("hr_b1b", "B1", ["hr@B1"]),
             ("appr_r1", "R1", ["approver@R1"]), ("hr_r1", "R1", ["hr@R1"]),
             ("sup_t1", "T1", ["supervisor@T1"]),
             ("sup_t2", "T2", ["supervisor@T2"])]
    staff += [(f"panel{i}", "B1", ["panel@B1"]) for i in range(1, 6)]
    staff += [(f"panel{i}", "R1", ["panel@R1"]) for i in range(6, 9)]
    names = [f"emp{i:02d}" for i in range(1, employees + 1)]
    people = []
    for username, code, roles in staff + [(n, "T1" if i % 2 else "T2", []) for i, n in enumerate(names)]:
        grade = username in names
        person = Person(username=username, name=username.title(), unit=units[code], status="active",
                        level="manager" if grade else None, tier=3 if grade else None,
                        grade_since=dt.date(2023, 1, 1) if grade else None, hired_on=dt.date(2018, 1, 1),
                        education="bachelor")
        db.session.add(person)
        for spec in roles:
            role, _, at = spec.partition("@")
            db.session.add(RoleAssignment(person=person, role=role, unit=units[at]))
        if grade:
            for month in range(1, 13):
                db.session.add(Score(person=person, kind="performance", period=f"2025-{month:02d}",
                                     granularity="month", period_start=dt.date(2025, month, 1),
                                     period_end=dt.date(2025, month, 28), value=85))
            db.session.add(Score(person=person, kind="skill_test", period="2025", granularity="year",
                                 period_start=dt.date(2025, 1, 1), period_end=dt.date(2025, 12, 31),
                                 value=75))
        people.append(person)
    db.session.flush()
    tokens = {p.username: issue_token(p) for p in people}
    db.session.commit()
    return World(tokens=tokens, employees=names, panel=[f"panel{i}" for i in range(1, 9)],
                 everyone=[p.username for p in people])


# --- talking to the API ------------------------------------------------------------------------------

def client_sender(app) -> Send:
    """Requests through Flask's own test client (whatever client class a test suite set), each request in
    an app context (and database session) of its own."""
    from flask.testing import FlaskClient
    client = FlaskClient(app, app.response_class, use_cookies=False)

    def send(method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        try:
            resp = client.open(f"/api/v1{path}", method=method, json=body,
                               headers={"Authorization": f"Bearer {token}"})
        except Exception as exc:   # testing propagates what would be a 500 in production
            return 500, f"{type(exc).__name__}: {exc}"
        return resp.status_code, resp.get_json(silent=True)
    return send


def http_sender(base: str, timeout: float = 30) -> Send:
    """Requests over HTTP to a running server (bench/crash.py). No answer (the server died, or was not up):
    status LOST."""
    def send(method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{base}/api/v1{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException) as lost:   # killed before the answer's body came
                return LOST, f"{exc.code}, then {type(lost).__name__}: {lost}"
            try:
                return exc.code, json.loads(raw or b"null")
            except ValueError:
                return exc.code, raw.decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            return LOST, f"{type(exc).__name__}: {exc}"
    return send


# --- the racers --------------------------------------------------------------------------------------

@dataclass
class Tally:
    """What the clients saw: attempts, successes, refusals by code, the decisions acknowledged with a 2xx
    as (case, action, actor, version after), and anything a client should never see (a 5xx)."""
    attempts: int = 0
    ok: int = 0
    codes: Counter = field(default_factory=Counter)
    acknowledged: list[tuple[int, str, str, int]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ticks: int = 0
    lost: int = 0          # requests that got no answer (the server was killed): neither success nor refusal

    def add(self, other: "Tally") -> "Tally":
        self.attempts += other.attempts
        self.ok += other.ok
        self.codes.update(other.codes)
        self.acknowledged += other.acknowledged
        self.unexpected += other.unexpected
        self.ticks += other.ticks
        self.lost += other.lost
        return self

    def as_dict(self) -> dict:
        return {"attempts": self.attempts, "ok": self.ok, "codes": dict(self.codes),
                "acknowledged": self.acknowledged, "unexpected": self.unexpected, "ticks": self.ticks,
                "lost": self.lost}

    @classmethod
    def from_dict(cls, d: dict) -> "Tally":
        return cls(d["attempts"], d["ok"], Counter(d["codes"]), [tuple(a) for a in d["acknowledged"]],
                   d["unexpected"], d["ticks"], d["lost"])


class Racer:
    """One client: files promotions for the shared employees and fires random actions at their cases, as a
    random mix of the people who may take them and people who may not, with current, stale or no versions
    and now and then a bad body. `tick` (optional) runs the timed jobs instead of an action, now and then."""

    def __init__(self, send: Send, world: World, rng: random.Random, tick: Callable[[], None] | None = None):
        self.send, self.world, self.rng, self.tick = send, world, rng, tick
        self.tally = Tally()
        self.cases: list[int] = []

    def run(self, attempts: int, stop: threading.Event | None = None) -> Tally:
        while self.tally.attempts < attempts and not (stop and stop.is_set()):
            self.attempt()
        return self.tally

    def attempt(self) -> None:
        r = self.rng.random()
        if self.tick and r < 0.03:
            self.tally.attempts += 1
            self.tally.ticks += 1
            self.tick()
            return
        if not self.cases or r < 0.12 or self.rng.random() < 0.05:
            self._refresh()
        if not self.cases or r < 0.18:
            self._file()
        else:
            self._act(self.rng.choice(self.cases))

    def _get(self, path: str) -> tuple[int, Any]:
        return self.send("GET", path, self.world.tokens["admin"])

    def _refresh(self) -> None:
        status, body = self._get("/cases?kind=promotion&per_page=200")
        if status == 200:
            self.cases = [c["id"] for c in body["items"] if c["state"] not in PROMOTION.terminal] or \
                [c["id"] for c in body["items"]]

    def _post(self, path: str, actor: str, body: dict, what: tuple[int | None, str]) -> None:
        self.tally.attempts += 1
        status, answer = self.send("POST", path, self.world.tokens[actor], body)
        if status == LOST:
            self.tally.lost += 1
        elif 200 <= status < 300:
            self.tally.ok += 1
            self.tally.acknowledged.append((answer["id"] if what[0] is None else what[0], what[1], actor,
                                            answer["version"]))
        elif status >= 500 or not isinstance(answer, dict) or "error" not in answer:
            self.tally.unexpected.append(f"POST {path} as {actor} {body}: {status} {str(answer)[:300]}")
        else:
            self.tally.codes[answer["error"]["code"]] += 1

    def _file(self) -> None:
        rng, w = self.rng, self.world
        employee = rng.choice(w.employees)
        filer = employee if rng.random() < 0.7 else rng.choice(["hr_b1", "admin", "appr_b1",
                                                                rng.choice(w.everyone)])
        # Exceptional (破格) filings get past the time at grade, so that a manager promoted in the race can
        # file again for the next tier; their steps act one org level up (R1).
        body = {"kind": "promotion", "target_grade": rng.choice(["senior", "senior", "senior-2", "senior-3",
                                                                 "manager-3", "bogus"]),
                "statement": "申请晋级", "exceptional": rng.random() < 0.4}
        if filer != employee:
            body["employee"] = employee
        self._post("/cases", filer, body, (None, "create"))

    def _act(self, case_id: int) -> None:
        rng, w = self.rng, self.world
        status, case = self._get(f"/cases/{case_id}")
        if status == LOST:
            return
        if status != 200:
            self.tally.unexpected.append(f"GET /cases/{case_id}: {status} {str(case)[:300]}")
            return
        legal = [a for a in PROMOTION.actors if PROMOTION.can_fire(case["state"], a)]
        onward = [a for a in legal if a in ONWARD]
        r = rng.random()
        action = (rng.choice(onward) if onward and r < 0.6 else rng.choice(legal) if legal and r < 0.85 else
                  rng.choice(list(PROMOTION.actors) + ["fly"]))
        pick = rng.random()
        actor = (rng.choice(case["assignees"]) if case["assignees"] and pick < 0.75 else
                 case["employee"] if pick < 0.85 else rng.choice(w.everyone))
        body: dict[str, Any] = {}
        if action in COMMENTED and rng.random() < 0.9:
            body["comment"] = "意见"
        if action == "resubmit":
            body["statement"] = "补充材料"
        if action == "object":
            body["statement"] = "有异议"
        if action == "assign_panel":
            body["members"] = rng.sample(w.panel, 3) if rng.random() < 0.9 else ["ghost"]
        if action in ("score", "supervisor_score"):
            body["score"] = rng.randint(50, 100) if rng.random() < 0.9 else rng.choice([150, "x", None])
        v = rng.random()
        if v < 0.4:
            body["version"] = case["version"]
        elif v < 0.55:
            body["version"] = case["version"] - 1
        self._post(f"/cases/{case_id}/{action}", actor, body, (case_id, action))


# --- running them ------------------------------------------------------------------------------------

def run_threads(app, world: World, threads: int, attempts: int, seed: int = 1,
                with_tick: bool = True) -> Tally:
    """`threads` racers in this process sharing `attempts`; each request has its own app context."""
    from web.cli import run_tick

    def tick() -> None:
        with app.app_context():
            run_tick(TODAY + TICK_AHEAD)

    tallies = [Tally() for _ in range(threads)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            racer = Racer(client_sender(app), world, random.Random(seed * 1000 + i),
                          tick if with_tick else None)
            tallies[i] = racer.run(attempts // threads + (1 if i < attempts % threads else 0))
        except BaseException as exc:   # a racer that died is reported, never taken for a quiet pass
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(i,), name=f"racer-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    total = Tally()
    for t in tallies:
        total.add(t)
    total.unexpected += [f"racer died: {e!r}" for e in errors]
    return total


def _process_main(url: str, world: dict, threads: int, attempts: int, seed: int, out) -> None:
    app = make_app(url)
    tally = run_threads(app, World(**world), threads, attempts, seed)
    out.put(tally.as_dict())


def run_processes(url: str, world: World, processes: int, threads: int, attempts: int,
                  seed: int = 1) -> Tally:
    """`processes` spawned processes, each with its own app and engine, running `threads` racers each."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    share = [attempts // processes + (1 if i < attempts % processes else 0) for i in range(processes)]
    procs = [ctx.Process(target=_process_main,
                         args=(url, world.__dict__, threads, share[i], seed * 100 + i, out))
             for i in range(processes)]
    for p in procs:
        p.start()
    total, reported = Tally(), 0
    while reported < processes:
        try:
            total.add(Tally.from_dict(out.get(timeout=5)))
            reported += 1
        except queue.Empty:
            if all(p.exitcode is not None for p in procs):
                break          # a process died without reporting: said below
    for p in procs:
        p.join()
        if p.exitcode != 0:
            total.unexpected.append(f"a racing process exited with {p.exitcode}")
    return total


# --- checking ----------------------------------------------------------------------------------------

def acknowledged_problems(acknowledged: list[tuple[int, str, str, int]], exact: bool) -> list[str]:
    """Every decision a client saw succeed is an event of its case (by its action and actor, no later than
    the version the answer carried). With `exact`, also the other way round: every event a person took was
    acknowledged, once (a crash may lose an answer, never a decision)."""
    stored: dict[tuple[int, str, str], list[int]] = {}
    for ev in db.session.execute(select(Event.case_id, Event.action, Event.actor, Event.seq)
                                 .where(Event.case_id.is_not(None), Event.actor != "system")):
        stored.setdefault((ev.case_id, ev.action, ev.actor), []).append(ev.seq)
    seen: dict[tuple[int, str, str], list[int]] = {}
    for case_id, action, actor, version in acknowledged:
        seen.setdefault((case_id, action, actor), []).append(version)
    problems = []
    for key, versions in seen.items():
        seqs = sorted(stored.get(key, []))
        # Match each acknowledgement to a distinct event no later than the version its answer carried.
        for v in sorted(versions):
            match = next((s for s in seqs if s <= v), None)
            if match is None:
                problems.append(f"case {key[0]}: {key[2]}'s {key[1]} was answered 2xx (version {v}) but is "
                                f"not stored")
            else:
                seqs.remove(match)
        if exact and seqs:
            problems.append(f"case {key[0]}: {len(seqs)} {key[1]} event(s) by {key[2]} that no client saw "
                            f"succeed")
    if exact:
        for key, seqs in stored.items():
            if key not in seen:
                problems.append(f"case {key[0]}: {len(seqs)} {key[1]} event(s) by {key[2]} that no client "
                                f"saw succeed")
    return problems


def report(tally: Tally, problems: list[str], seconds: float, out=print) -> None:
    out(f"attempts: {tally.attempts} ({tally.ticks} ticks) in {seconds:.1f} s "
        f"({tally.attempts / max(seconds, 1e-9):.0f}/s)")
    out(f"successes: {tally.ok}")
    out("refusals by code: " + (", ".join(f"{c} {n}" for c, n in sorted(tally.codes.items())) or "none"))
    if tally.lost:
        out(f"requests with no answer (server killed): {tally.lost}")
    out(f"unexpected answers (5xx or not JSON errors): {len(tally.unexpected)}")
    for line in tally.unexpected[:20]:
        out(f"  {line}")
    out(f"invariant problems: {len(problems)}")
    for line in problems[:50]:
        out(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a database URL to empty and use (default: a new SQLite file)")
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=0, help="racing processes (PostgreSQL), each with "
                                                                 "--threads threads")
    parser.add_argument("--employees", type=int, default=8, help="shared employees, so shared cases")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    tmp = None
    url = args.database
    if url is None:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{os.path.join(tmp.name, 'race.db')}"
    app = make_app(url)
    with app.app_context():
        world = seed(args.employees)
    start = time.perf_counter()
    if args.processes:
        tally = run_processes(url, world, args.processes, args.threads, args.attempts, args.seed)
    else:
        tally = run_threads(app, world, args.threads, args.attempts, args.seed)
    seconds = time.perf_counter() - start
    with app.app_context():
        problems = invariants.check() + acknowledged_problems(tally.acknowledged, exact=True)
        states = Counter(db.session.scalars(text("SELECT state FROM cases")).all())
    print(f"database: {url.split('@')[-1]}; {args.processes or 1} process(es) × {args.threads} thread(s)")
    report(tally, problems, seconds)
    print("cases by state: " + ", ".join(f"{s} {n}" for s, n in sorted(states.items())))
    if tmp:
        tmp.cleanup()
    return 1 if problems or tally.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
