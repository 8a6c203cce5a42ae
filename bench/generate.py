"""A seeded generator of large, valid Gradeflow data for the benchmarks.

    from bench.generate import generate
    summary = generate("postgresql+psycopg://postgres@127.0.0.1:5432/gf_bench", scale=0.02, seed=1)

At scale 1: an org tree of HQ, 30 regions, 300 branches and 3,000 teams; 100,000 people holding every
role; 1,000,000 cases of the promotion, demotion and dismissal kinds in every state; about 10,000,000
audit events. `scale` shrinks every count (the tree keeps at least one unit per level).

The data is what the engine would have written: every case's events are a path of its machine
(`Rulebook.path_problems`) ending in its state, each chain's HMACs verify under the app's audit key, the
case row holds the chain's head, open cases have the assignees, step unit, routing reason and deadline
that `workflow.routing` gives (checked by tests/bench/test_generate.py), grades follow the effective
promotions and demotions, with their grade-history rows. Rows are written in bulk (psycopg COPY on
PostgreSQL, executemany on SQLite), never through the ORM; the policy goes through the engine.

The database is emptied first: give it a database of its own.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":   # python bench/generate.py: the project root, not bench/, first on the path
    sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import dataclasses
import datetime as dt
import json
import os
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, inspect, text
from werkzeug.security import generate_password_hash

from workflow import audit, clock, engine as wf_engine, policy as policy_mod, rules
from workflow.models import db

SECRET_KEY = "gradeflow-bench"       # the default SECRET_KEY of bench apps (the audit key derives from it)
PASSWORD = "bench123"                # every generated person's password
DATASET_KEY = "bench_dataset"        # settings key holding the summary of the generated data
GENERATOR_VERSION = 1
HISTORY_FROM = dt.date(2012, 1, 1)

FULL = {"regions": 30, "branches": 300, "teams": 3000, "people": 100_000, "cases": 1_000_000}
# Roles held at each org level; the holders are people of that unit with grades of their own.
UNIT_ROLES = {
    "hq": ("admin", "approver", "approver", "hr", "hr", "supervisor", "supervisor", "panel", "panel", "panel",
           "panel"),
    "region": ("approver", "hr", "supervisor", "panel", "panel", "panel"),
    "branch": ("approver", "hr", "supervisor", "panel", "panel", "panel", "panel"),
    "team": ("supervisor", "approver"),
}
# Grades at hire; the generated promotions and demotions move them from there.
GRADE_SHARES = (("assistant", 0.55), ("manager", 0.25), ("senior", 0.12), ("principal", 0.05),
                ("general_manager", 0.02), ("director", 0.01))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉宇晨欣雨婷浩然思远佳琪子涵博文嘉怡俊凯"


@dataclasses.dataclass
class Summary:
    url: str
    scale: float
    seed: int
    today: str
    units: int = 0
    people: int = 0
    roles: int = 0
    cases: int = 0
    open_cases: int = 0
    events: int = 0
    by_kind_state: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    version: int = GENERATOR_VERSION

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- the app ------------------------------------------------------------------------------------------

def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def app_for(url: str):
    """A Gradeflow app on `url` as the benchmarks run it: SQLite in WAL with synchronous=NORMAL,
    PostgreSQL with its defaults; SECRET_KEY (hence the audit key) from the environment or SECRET_KEY."""
    from web import create_app
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": os.environ.get("SECRET_KEY") or SECRET_KEY,
                      "AUDIT_KEY": os.environ.get("AUDIT_KEY")})
    if is_sqlite(url):
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_wal)
    return app


def _sqlite_wal(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist (SQLite creates its file)."""
    if is_sqlite(url):
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}):
                conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    finally:
        admin.dispose()


# --- the org tree and the people ----------------------------------------------------------------------

@dataclasses.dataclass
class Unit:
    id: int
    code: str
    level: str
    parent: Unit | None
    path: str
    chain: list[Unit] = dataclasses.field(default_factory=list)   # itself up to the root


@dataclasses.dataclass
class Someone:
    id: int
    username: str
    unit: Unit
    level: str
    tier: int
    hired_on: dt.date
    grade_since: dt.date
    education: str


def _counts(scale: float) -> dict[str, int]:
    c = {k: max(1, round(v * scale)) for k, v in FULL.items()}
    c["branches"] = max(c["branches"], c["regions"])
    c["teams"] = max(c["teams"], c["branches"])
    return c


def _build_tree(counts) -> list[Unit]:
    hq = Unit(1, "HQ", "hq", None, "/1/")
    units = [hq]

    def add(code, level, parent):
        u = Unit(len(units) + 1, code, level, parent, "")
        u.path = f"{parent.path}{u.id}/"
        units.append(u)
        return u
    regions = [add(f"R{i + 1:02d}", "region", hq) for i in range(counts["regions"])]
    branches = [add(f"{regions[i * len(regions) // counts['branches']].code}B{i + 1:03d}", "branch",
                    regions[i * len(regions) // counts["branches"]]) for i in range(counts["branches"])]
    for i in range(counts["teams"]):
        parent = branches[i * len(branches) // counts["teams"]]
        add(f"{parent.code}T{i + 1:04d}", "team", parent)
    for u in units:
        node, chain = u, []
        while node is not None:
            chain.append(node)
            node = node.parent
        u.chain = chain
    return units


class Org:
    """The generated org tree, people and roles, with the look-ups routing needs."""

    def __init__(self, rng: random.Random, counts: dict[str, int], pol, today: dt.date):
        self.pol = pol
        self.units = _build_tree(counts)
        self.by_code = {u.code: u for u in self.units}
        self.people: list[Someone] = []
        self.roles: list[tuple[int, int, str, int]] = []               # id, person, role, unit
        self.holders: dict[tuple[str, int], list[Someone]] = {}        # (role, unit id) -> by username
        grades = [lv for lv, _ in GRADE_SHARES]
        weights = [w for _, w in GRADE_SHARES]

        def person(unit: Unit) -> Someone:
            pid = len(self.people) + 1
            level = rng.choices(grades, weights)[0]
            hired = today - dt.timedelta(days=rng.randint(400, 7000))
            p = Someone(pid, f"u{pid:06d}", unit, level, rng.randint(1, pol.level(level).tiers), hired,
                        hired, rng.choice(("college", "bachelor", "bachelor", "master", "phd")))
            self.people.append(p)
            return p

        for unit in self.units:
            for role in UNIT_ROLES[unit.level]:
                p = person(unit)
                self.roles.append((len(self.roles) + 1, p.id, role, unit.id))
                self.holders.setdefault((role, unit.id), []).append(p)
        teams = [u for u in self.units if u.level == "team"]
        for i in range(max(0, counts["people"] - len(self.people))):
            person(teams[i % len(teams)])

    # Mirrors workflow.routing.route_at for this tree (tests/bench/test_generate.py compares the two).
    def route(self, unit: Unit, role: str, level_index: int, excluded: dict[int, str]):
        org_index = self.pol.org_level_index
        start = next((u for u in unit.chain if org_index(u.level) <= level_index), unit.chain[-1])
        reason = None
        for u in start.chain:
            found = self.holders.get((role, u.id), [])
            able = [p for p in found if p.id not in excluded]
            if able:
                return u, able, reason, start
            if reason is None:
                reason = ("vacancy" if not found else
                          "self" if all(excluded[p.id] == "self" for p in found) else "conflict")
        raise Unroutable(f"nobody holds {role} above {unit.code}")

    def supervisors(self, p: Someone, excluded: dict[int, str]):
        for u in p.unit.chain:
            people = [s for s in self.holders.get(("supervisor", u.id), [])
                      if s.id != p.id and s.id not in excluded]
            if people:
                return u, people
        raise Unroutable(f"{p.username} has no supervisor")


# --- the cases: paths through the machines ------------------------------------------------------------

# (weight, actions) per kind; the state each action leads to comes from the rulebook. "score*" is the
# panel's scores (3 to 5 members), "cycle" a return and a resubmission.
_PANEL = ["assign_panel", "supervisor_score", "score*", "scoring_complete"]
CLOSED_PATHS = {
    "promotion": [
        (10, ["create", "qualify", *_PANEL, "approve"]),
        (10, ["create", "cycle", "qualify", *_PANEL, "approve"]),
        (5, ["create", "cycle", "cycle", "qualify", *_PANEL, "approve"]),
        (15, ["create", "qualify", *_PANEL, "reject"]),
        (15, ["create", "cycle", "qualify", *_PANEL, "reject"]),
        (5, ["create", "cycle", "cycle", "qualify", *_PANEL, "reject"]),
        (10, ["create", "cycle", "qualify", *_PANEL, "withdraw"]),
        (6, ["create", "reject"]),
        (4, ["create", "cycle", "reject"]),
        (3, ["create", "return", "withdraw"]),
        (2, ["create", "qualify", "assign_panel", "withdraw"]),
        (2, ["create", "withdraw"]),
    ],
    "demotion": [
        (5, ["create", "confirm_grounds", "close_notice", "approve"]),
        (3, ["create", "confirm_grounds", "appeal", "uphold", "approve"]),
        (3, ["create", "retain"]),
        (2, ["create", "confirm_grounds", "appeal", "overturn"]),
        (2, ["create", "confirm_grounds", "close_notice", "reject"]),
    ],
    "dismissal": [
        (3, ["create", "retain"]),
        (2, ["create", "confirm_grounds", "appeal", "overturn"]),
        (2, ["create", "confirm_grounds", "close_notice", "approve", "reject"]),
        (1, ["create", "withdraw"]),
    ],
}
OPEN_PATHS = {
    "promotion": [
        (55, ["create"]),                                  # qualification_review: the decision benchmark's work
        (8, ["create", "cycle"]),
        (8, ["create", "return"]),                         # returned
        (8, ["create", "qualify"]),                        # panel_scoring, no panel yet
        (10, ["create", "qualify", "assign_panel", "supervisor_score", "score"]),
        (13, ["create", "qualify", "assign_panel", "supervisor_score", "score*", "scoring_complete"]),
        (4, ["create", "cycle", "qualify", "assign_panel", "supervisor_score", "score*", "scoring_complete"]),
    ],
    "demotion": [(4, ["create"]), (2, ["create", "confirm_grounds"]),
                 (2, ["create", "confirm_grounds", "close_notice"])],
    "dismissal": [(3, ["create"]), (1, ["create", "confirm_grounds"])],
}
CLOSED_KIND = (("promotion", 86), ("demotion", 10), ("dismissal", 4))
# The share of people with an open case of each kind (the decision benchmark needs many in
# qualification_review).
OPEN_SHARE = {"promotion": 0.8, "demotion": 0.05, "dismissal": 0.02}

CASE_COLUMNS = ("id", "kind", "employee_id", "filed_by_id", "policy_version_id", "state", "closed", "exceptional",
                "statement", "from_level", "from_tier", "target_level", "target_tier", "step_unit_id",
                "routing_reason", "routing_from_unit_id", "escalations", "deadline", "effective_on", "reason",
                "severity", "due_on", "extensions", "outcome", "related_case_id", "eligibility", "eligible",
                "annual_performance", "composite", "decided_at", "created_at", "updated_at", "version",
                "head_mac", "round_id")
EVENT_COLUMNS = ("id", "chain", "seq", "case_id", "person_id", "action", "from_state", "to_state", "actor",
                 "actor_id", "role", "unit", "at", "comment", "data", "prev_mac", "mac")


class Unroutable(RuntimeError):
    """Nobody is left to take a step of the path (the engine would refuse it)."""


class _Ev:
    """What audit._mac reads of an event."""
    __slots__ = ("chain", "seq", "case_id", "person_id", "action", "actor_id", "from_state", "to_state", "actor",
                 "role", "unit", "at", "comment", "data", "prev_mac")


class Writer:
    """Rows buffered per table and written in bulk: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, conn, sqlite: bool, batch: int = 20_000):
        self.conn, self.sqlite, self.batch = conn, sqlite, batch
        self.rows: dict[str, list[tuple]] = {}
        self.columns: dict[str, tuple[str, ...]] = {}
        self.order: list[str] = []
        self.temporal: dict[str, tuple[int, ...]] = {}

    def table(self, name: str, columns: Iterable[str], temporal: Iterable[str] = ()) -> None:
        """Rows of `name` come as tuples in the order of `columns`; `temporal` columns hold dates or times."""
        self.columns[name] = tuple(columns)
        self.rows[name] = []
        self.order.append(name)
        self.temporal[name] = tuple(self.columns[name].index(c) for c in temporal)

    def add(self, name: str, row: tuple) -> None:
        self.rows[name].append(row)

    def full(self) -> bool:
        return sum(len(r) for r in self.rows.values()) >= self.batch * 5

    def flush(self) -> None:
        cur = self.conn.cursor()
        for name in self.order:       # parents before children
            rows = self.rows[name]
            if not rows:
                continue
            cols = self.columns[name]
            if self.sqlite:
                if self.temporal[name]:
                    idx, converted = self.temporal[name], []
                    for r in rows:
                        r = list(r)
                        for i in idx:
                            r[i] = _sqlite_value(r[i])
                        converted.append(r)
                    rows = converted
                cur.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                rows)
            else:
                with cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(r)
            self.rows[name] = []
        cur.close()


def _sqlite_value(v):
    # SQLAlchemy's SQLite storage formats (sqlite3's own datetime adapters are deprecated).
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ", timespec="microseconds")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False)


class CaseMaker:
    """Walks one case through its path, writing its events (HMAC-chained), scores, panel, assignees and
    the case row, as the engine would have."""

    def __init__(self, org: Org, pol, pv_id: int, writer: Writer, rng: random.Random, today: dt.date):
        from workflow.machines import rulebook
        self.org, self.pol, self.pv_id, self.w, self.rng, self.today = org, pol, pv_id, writer, rng, today
        self.rulebook = rulebook
        self.case_id = self.event_id = self.score_id = self.panel_id = self.grade_id = 0
        self.events = 0
        self.open_cases = 0
        self.by_kind_state: dict[str, int] = {}

    # -- routing, as workflow.engine._route_state does it ------------------------------------------
    def _excluded(self, c, step: str | None) -> dict[int, str]:
        excluded = {c["employee"].id: "self"}
        if c["reason"] == "misconduct" and c["filer"] is not None:
            excluded.setdefault(c["filer"].id, "conflict")
        if step is not None:
            for actor_id, s in c["decided"]:
                if s != step:
                    excluded.setdefault(actor_id, "conflict")
        return excluded

    def _route(self, c, state: str):
        """(unit, people, reason, named start unit, role) of the step in `state`."""
        kind, pol, emp = c["kind"], self.pol, c["employee"]
        rb = self.rulebook(kind)
        step = rb.steps[state]
        decides = any(rb.can_fire(state, a) for a in rb.decisions)
        excluded = self._excluded(c, step if decides else None)
        if kind == "promotion":
            role = pol.steps[step].role
            idx = pol.org_level_index(pol.step_org_level(c["target"][0], step))
        else:
            spec = pol.kind(kind).steps[step]
            role, idx = spec.role, pol.org_level_index(spec.org_level)
        unit, people, reason, named = self.org.route(emp.unit, role, idx, excluded)
        return unit, people, reason, named, role, excluded

    def _deadline(self, c, state: str, day: dt.date):
        rb = self.rulebook(c["kind"])
        if state in rb.routes:
            return day + dt.timedelta(days=self.pol.kind(c["kind"]).appeal_days) if state == "notice" else None
        step = rb.steps[state]
        days = (self.pol.steps[step].deadline_days if c["kind"] == "promotion"
                else self.pol.kind(c["kind"]).steps[step].deadline_days)
        return clock.add_working_days(day, days, self.pol.holidays) if days else None

    # -- one case ------------------------------------------------------------------------------------
    def make(self, emp: Someone, kind: str, path: list[str], start: dt.datetime, gap_minutes: int = 4 * 24 * 60
             ) -> bool:
        """Write the case, its events `gap_minutes` apart at most, and move the employee's grade when it takes
        effect. False, with nothing written, when the engine would have refused a step of the path (nobody
        left to route it to)."""
        saved = (self.case_id, self.event_id, self.score_id, self.panel_id, self.grade_id, emp.level, emp.tier,
                 emp.grade_since)
        self.out: list[tuple[str, tuple]] = []
        try:
            self._make(emp, kind, path, start, gap_minutes)
        except Unroutable:
            (self.case_id, self.event_id, self.score_id, self.panel_id, self.grade_id, emp.level, emp.tier,
             emp.grade_since) = saved
            return False
        for table, row in self.out:
            self.w.add(table, row)
        return True

    def _make(self, emp: Someone, kind: str, path: list[str], start: dt.datetime, gap_minutes: int) -> None:
        rng, pol, org = self.rng, self.pol, self.org
        rb = self.rulebook(kind)
        self.case_id += 1
        cid = self.case_id
        c = {"kind": kind, "employee": emp, "filer": emp, "reason": None, "severity": None, "decided": [],
             "target": None}
        row = dict.fromkeys(CASE_COLUMNS)
        row.update(id=cid, kind=kind, employee_id=emp.id, policy_version_id=self.pv_id, exceptional=False,
                   statement="", from_level=emp.level, from_tier=emp.tier, escalations=0, extensions=0,
                   eligibility=[], version=0)
        if kind == "promotion":
            c["target"] = pol.next_grades(emp.level, emp.tier)[0]
            row.update(target_level=c["target"][0], target_tier=c["target"][1], eligible=True,
                       statement="申请晋升，请审核。", annual_performance=float(rng.randint(80, 96)),
                       eligibility=[{"rule": r.type, "required": r.params.get("min"), "actual": None, "passed": True}
                                    for r in pol.rules_for(c["target"][0])])
            row["filed_by_id"] = emp.id
        else:
            if rng.random() < 0.5 and kind == "demotion":
                c["reason"], c["severity"] = "misconduct", rng.choice(("minor", "major"))
                unit, sups = org.supervisors(emp, {})
                c["filer"], filer_role, filer_unit = sups[0], "supervisor", unit
            else:
                c["reason"] = "recompete" if kind == "demotion" else "skill_test_failed"
                unit, hrs, *_ = org.route(emp.unit, "hr", pol.org_level_index("branch"), {emp.id: "self"})
                c["filer"], filer_role, filer_unit = hrs[0], "hr", unit
            row.update(reason=c["reason"], severity=c["severity"], filed_by_id=c["filer"].id,
                       statement="事实与依据见附件。" if c["reason"] == "misconduct" else "")
        at = start
        state, prev_mac, seq = None, None, 0
        step_unit = None          # the unit of the current step's route (panel members' unit)
        panel: list[Someone] = []
        scored: list[Someone] = []
        panel_scores: list[float] = []
        sup_score = None
        entered = start.date()
        expanded: list[str] = []
        for action in path:
            if action == "cycle":
                expanded += ["return", "resubmit"]
            else:
                expanded.append(action)
        i = 0
        while i < len(expanded):
            action = expanded[i]
            i += 1
            if action == "score*":    # every member of the panel scores
                expanded[i:i] = ["score"] * (len(panel) - len(scored))
                continue
            at += dt.timedelta(minutes=rng.randint(30, gap_minutes))
            data: dict[str, Any] = {}
            comment = ""
            actor, role, unit_code = None, None, None
            from_state = state
            if action == "create":
                to_state = rb.created
                if kind == "promotion":
                    actor, role, unit_code = emp, "employee", emp.unit.code
                    data = {"target_grade": f"{c['target'][0]}-{c['target'][1]}", "exceptional": False,
                            "eligible": True}
                else:
                    actor, role, unit_code = c["filer"], filer_role, filer_unit.code
                    comment = row["statement"]
                    data = {"reason": c["reason"], "severity": c["severity"]}
            else:
                dests = rb.destinations(state, action)
                to_state = self._destination(kind, state, action, dests)
                duty = rb.actors.get(action)
                if duty in ("applicant", "initiator"):
                    actor = emp if duty == "applicant" else c["filer"]
                    role, unit_code = ("employee", emp.unit.code) if duty == "applicant" else (filer_role,
                                                                                               filer_unit.code)
                elif action in rb.automatic or duty == "system":
                    actor = None
                elif state in rb.routes:          # appeal_review: an approver above the confirming unit
                    confirmed = org.by_code[c["confirmed_at"]]
                    excluded = self._excluded(c, state)
                    able = [(u, p) for u in (confirmed.parent or confirmed).chain
                            for p in org.holders.get(("approver", u.id), []) if p.id not in excluded]
                    if not able:
                        raise Unroutable(f"nobody above {confirmed.code} may hear the appeal")
                    actor, role, unit_code = able[0][1], "approver", able[0][0].code
                elif action == "supervisor_score":
                    unit, sups = org.supervisors(emp, {k: v for k, v in self._excluded(c, "panel_scoring").items()
                                                       if k != emp.id})
                    actor, role, unit_code = sups[0], "supervisor", unit.code
                elif action == "score":
                    actor, role, unit_code = panel[len(scored)], "panel", step_unit.code
                else:
                    unit, people, _, _, role, _ = self._route(c, state)
                    actor, unit_code = people[0], unit.code
                    step_unit = unit
                if action in ("return", "reject", "retain", "overturn"):
                    comment = "理由见意见。"
                if action == "appeal":
                    data["statement"] = comment = "我对认定的事实有异议。"
                if action == "assign_panel":
                    unit, _, _, _, _, excluded = self._route(c, state)
                    step_unit = unit
                    sup_ids = {org.supervisors(emp, {k: v for k, v in excluded.items() if k != emp.id})[1][0].id}
                    candidates = [p for u in unit.chain for p in org.holders.get(("panel", u.id), [])
                                  if p.id not in excluded and p.id not in sup_ids
                                  and p.id not in {a for a, _ in c["decided"]}]
                    panel = candidates[:rng.randint(pol.panel_min_size, max(pol.panel_min_size, 6))]
                    if len(panel) < pol.panel_min_size:
                        raise Unroutable(f"too few panel members above {unit.code}")
                    data["members"] = [p.username for p in panel]
                if action in ("score", "supervisor_score"):
                    value = float(rng.randint(60, 98))
                    data["score"] = value
                    if action == "score":
                        scored.append(actor)
                        panel_scores.append(value)
                    else:
                        sup_score = value
                if action == "scoring_complete":
                    row["composite"] = rules.composite(pol, {
                        "supervisor": sup_score, "panel": rules.panel_component(panel_scores, pol.trim_at_least),
                        "annual_performance": row["annual_performance"]})
                    data["composite"] = row["composite"]
                if action in rb.decisions:
                    data.update(decision=True, step=rb.steps.get(state, state))
                    c["decided"].append((actor.id, rb.steps.get(state, state)))
                if action == "confirm_grounds":
                    c["confirmed_at"] = unit_code
                if action in ("approve", "reject", "overturn") and kind == "promotion":
                    row["decided_at"] = at
                if to_state == "effective":
                    self._effective(c, row, data, at.date())
            seq += 1
            self.event_id += 1
            ev = _Ev()
            ev.chain, ev.seq, ev.case_id, ev.person_id, ev.action = f"case:{cid}", seq, cid, None, action
            ev.actor_id, ev.from_state, ev.to_state = (actor.id if actor else None), from_state, to_state
            ev.actor, ev.role, ev.unit = (actor.username if actor else "system"), role, unit_code
            ev.at, ev.comment, ev.data, ev.prev_mac = at, comment, data, prev_mac
            mac = audit._mac(ev)
            self.out.append(("events", (self.event_id, ev.chain, seq, cid, None, action, from_state, to_state, ev.actor,
                                  ev.actor_id, role, unit_code, at, comment, _dumps(data), prev_mac, mac)))
            prev_mac = mac
            if action == "assign_panel":
                for p in panel:
                    self.panel_id += 1
                    self.out.append(("panel_members", (self.panel_id, cid, p.id, at)))
            if action in ("score", "supervisor_score"):
                self.score_id += 1
                self.out.append(("case_scores", (self.score_id, cid, actor.id,
                                                 "panel" if action == "score" else "supervisor", data["score"], at)))
            if to_state != state:
                entered = at.date()
            state = to_state
        row.update(state=state, version=seq, head_mac=prev_mac, created_at=start, updated_at=at,
                   closed=state in rb.terminal)
        if not row["closed"]:
            self._assign(c, row, state, entered, panel, scored, sup_score is not None)
            self.open_cases += 1
        self.events += seq
        key = f"{kind}:{state}"
        self.by_kind_state[key] = self.by_kind_state.get(key, 0) + 1
        self.out.append(("cases", tuple(_dumps(row[k]) if k == "eligibility" else row[k] for k in CASE_COLUMNS)))

    def _destination(self, kind: str, state: str, action: str, dests: set[str]) -> str:
        if len(dests) == 1:
            return next(iter(dests))
        if kind == "promotion" and action in ("qualify", "approve"):   # 或签; effective on approval
            return {"qualify": "panel_scoring",
                    "approve": "effective" if self.pol.effective_when == "on_approval" else "approved"}[action]
        others = dests - {state}
        if len(others) == 1:   # one voice decides here (或签); a signer added after it or a vote would wait
            return next(iter(others))
        raise RuntimeError(f"ambiguous {kind} {action} from {state}: {dests}")

    def _effective(self, c, row, data, day: dt.date) -> None:
        emp, pol = c["employee"], self.pol
        if c["kind"] == "promotion":
            level, tier = c["target"]
        elif c["kind"] == "demotion":
            lower = pol.ladder[pol.level_index(emp.level) - 1]
            rule = pol.kind("demotion").tier_after
            level, tier = lower.id, (lower.tiers if rule == "top" else 1 if rule == "bottom"
                                     else min(emp.tier, lower.tiers))
            row["target_level"], row["target_tier"] = level, tier
        else:
            raise RuntimeError("generated dismissals never take effect")
        self.grade_id += 1
        self.out.append(("grade_history", (self.grade_id, emp.id, f"{emp.level}-{emp.tier}", f"{level}-{tier}", day,
                                           row["id"], "case", dt.datetime.combine(day, dt.time(9)))))
        data["grade"] = {"from": f"{emp.level}-{emp.tier}", "to": f"{level}-{tier}", "on": day.isoformat()}
        emp.level, emp.tier, emp.grade_since = level, tier, day
        row["effective_on"] = day

    def _assign(self, c, row, state: str, entered: dt.date, panel, scored, sup_scored: bool) -> None:
        rb, emp, cid = self.rulebook(c["kind"]), c["employee"], row["id"]
        row["deadline"] = self._deadline(c, state, entered)
        if rb.routes.get(state) == "applicant":
            row["step_unit_id"] = emp.unit.id
            self.out.append(("case_assignees", (cid, emp.id, "applicant", "employee", emp.unit.id)))
            return
        unit, people, reason, named, role, excluded = self._route(c, state)
        row["step_unit_id"], row["routing_reason"] = unit.id, reason
        row["routing_from_unit_id"] = named.id if reason else None
        rows = []
        if state == "panel_scoring":
            rows += [(p.id, "assign_panel", role, unit.id) for p in people]
            if not sup_scored:
                sunit, sups = self.org.supervisors(emp, {k: v for k, v in excluded.items() if k != emp.id})
                rows += [(p.id, "supervisor", "supervisor", sunit.id) for p in sups]
            done = {p.id for p in scored}
            rows += [(p.id, "panel", "panel", unit.id) for p in panel if p.id not in done]
        else:
            rows += [(p.id, "decide", role, unit.id) for p in people]
        seen = set()
        for person_id, duty, role_, unit_id in rows:
            if (person_id, duty) not in seen:
                seen.add((person_id, duty))
                self.out.append(("case_assignees", (cid, person_id, duty, role_, unit_id)))


# --- the whole data set --------------------------------------------------------------------------------

def _reset_schema(app) -> None:
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.session.commit()


def generate(url: str, scale: float = 1.0, seed: int = 1, *, policy: str = "bank_corporate",
             today: dt.date | None = None, progress: Callable[[str], None] | None = None) -> Summary:
    """Empty the database at `url`, create the schema and fill it with valid data; returns what was
    written. The same `seed` and `scale` give the same data (timestamps aside from `today`)."""
    if not 0 < scale <= 1.5:
        raise ValueError("scale must be in (0, 1.5]")
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    today = today or clock.today()
    rng = random.Random(seed)
    ensure_database(url)
    app = app_for(url)
    _reset_schema(app)
    counts = _counts(scale)
    summary = Summary(url=_safe_url(url), scale=scale, seed=seed, today=today.isoformat())
    with app.app_context():
        pol = policy_mod.load_file(policy)
        if pol.org_level_ids != ("hq", "region", "branch", "team"):
            raise ValueError("the generator builds an hq > region > branch > team tree (bank_corporate)")
        pv = wf_engine.activate_policy(pol, policy)
        db.session.commit()
        pv_id = pv.id
        org = Org(rng, counts, pol, today)
        say(f"org: {len(org.units)} units, {len(org.people)} people")
        conn = db.engine.raw_connection()
        try:
            sqlite = is_sqlite(url)
            if sqlite:
                conn.cursor().execute("PRAGMA synchronous=OFF")
            w = Writer(conn, sqlite)
            w.table("org_units", ("id", "code", "name", "level", "parent_id", "path"))
            w.table("people", ("id", "username", "name", "unit_id", "level", "tier", "grade_since", "hired_on",
                               "education", "status", "password_hash", "session_generation", "audit_version"),
                    ("grade_since", "hired_on"))
            w.table("role_assignments", ("id", "person_id", "role", "unit_id"))
            w.table("scores", ("id", "person_id", "kind", "period", "granularity", "period_start", "period_end",
                               "value", "passed", "imported_at"), ("period_start", "period_end", "imported_at"))
            w.table("cases", CASE_COLUMNS, ("deadline", "effective_on", "due_on", "decided_at", "created_at",
                                            "updated_at"))
            w.table("events", EVENT_COLUMNS, ("at",))
            w.table("panel_members", ("id", "case_id", "person_id", "assigned_at"), ("assigned_at",))
            w.table("case_scores", ("id", "case_id", "scorer_id", "component", "value", "at"), ("at",))
            w.table("case_assignees", ("case_id", "person_id", "duty", "role", "unit_id"))
            w.table("grade_history", ("id", "person_id", "from_grade", "to_grade", "effective_on", "case_id",
                                      "source", "recorded_at"), ("effective_on", "recorded_at"))
            names = {"hq": "总行", "region": "区域", "branch": "分行", "team": "团队"}
            for u in org.units:
                w.add("org_units", (u.id, u.code, f"{names[u.level]}{u.code}", u.level,
                                    u.parent.id if u.parent else None, u.path))
            w.flush()
            maker = CaseMaker(org, pol, pv_id, w, rng, today)
            _cases_and_people(org, maker, w, rng, counts["cases"], today, say)
            w.flush()
            conn.commit()
            if not sqlite:
                cur = conn.cursor()
                for table in ("org_units", "people", "role_assignments", "scores", "cases", "events",
                              "panel_members", "case_scores", "grade_history"):
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")
                cur.execute("ANALYZE")
                conn.commit()
            else:
                conn.cursor().execute("ANALYZE")
                conn.commit()
        finally:
            conn.close()
        summary.units, summary.people, summary.roles = len(org.units), len(org.people), len(org.roles)
        summary.cases, summary.open_cases, summary.events = maker.case_id, maker.open_cases, maker.events
        summary.by_kind_state = dict(sorted(maker.by_kind_state.items()))
        summary.seconds = round(time.perf_counter() - t0, 2)
        from workflow.models import Setting
        db.session.add(Setting(key=DATASET_KEY, value=json.dumps(
            {k: summary.to_json()[k] for k in ("scale", "seed", "today", "cases", "events", "version")})))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    say(f"generated {summary.cases} cases, {summary.events} events in {summary.seconds}s")
    return summary


def _cases_and_people(org: Org, maker: CaseMaker, w: Writer, rng: random.Random, n_cases: int, today: dt.date,
                      say) -> None:
    """People (with their hire-time grades), roles and scores first, then each person's cases in time order;
    last, the grades that the effective cases moved."""
    pol = org.pol
    password_hash = generate_password_hash(PASSWORD)
    people = org.people
    now = dt.datetime.combine(today, dt.time(0))
    score_id = 0
    year = today.year
    for p in people:
        w.add("people", (p.id, p.username, _name(rng), p.unit.id, p.level, p.tier, p.grade_since, p.hired_on,
                         p.education, "active", password_hash, 0, 0))
        for period, value in ((year - 2, rng.randint(70, 98)), (year - 1, rng.randint(75, 99))):
            score_id += 1
            w.add("scores", (score_id, p.id, "performance", str(period), "year", dt.date(period, 1, 1),
                             dt.date(period, 12, 31), float(value), None, now))
        score_id += 1
        w.add("scores", (score_id, p.id, "skill_test", str(year - 1), "year", dt.date(year - 1, 1, 1),
                         dt.date(year - 1, 12, 31), None, rng.random() < 0.9, now))
        if w.full():
            w.flush()
    for rid, pid, role, unit_id in org.roles:
        w.add("role_assignments", (rid, pid, role, unit_id))
    w.flush()
    hired = {p.id: (p.level, p.tier, p.grade_since) for p in people}
    base, extra = divmod(n_cases, len(people))
    kinds, kind_w = zip(*CLOSED_KIND)
    for p in people:
        n = base + (1 if p.id <= extra else 0)
        opens = [k for k, share in OPEN_SHARE.items() if rng.random() < share][:n]
        n_closed = n - len(opens)
        start = max(dt.datetime.combine(p.hired_on, dt.time(9)), dt.datetime.combine(HISTORY_FROM, dt.time(9)))
        # Open cases started three to four weeks ago (their events, at most 12 hours apart, end before today);
        # the history fills the time before.
        history_end = now - dt.timedelta(days=60)
        slot = max((history_end - start).total_seconds(), 86400.0) / max(n_closed, 1)
        for k in range(n_closed):
            kind = _possible(rng.choices(kinds, kind_w)[0], p, pol)
            path = rng.choices(*_weighted(CLOSED_PATHS[kind]))[0]
            at = start + dt.timedelta(seconds=slot * k + rng.uniform(0, slot * 0.3))
            _make_or_fall_back(maker, p, kind, path, at)
        opened = set()
        for kind in opens:
            if kind == "promotion":
                kind = _possible(kind, p, pol)
            if kind in opened or (kind == "demotion" and pol.level_index(p.level) == 0):
                # One open case per person and kind, and nobody is demoted from the lowest level: a dismissal
                # closed before the open cases instead.
                path = rng.choices(*_weighted(CLOSED_PATHS["dismissal"]))[0]
                _make_or_fall_back(maker, p, "dismissal", path, now - dt.timedelta(days=50), gap_minutes=12 * 60)
                continue
            opened.add(kind)
            path = rng.choices(*_weighted(OPEN_PATHS[kind]))[0]
            at = now - dt.timedelta(days=rng.randint(21, 28), minutes=rng.randint(0, 600))
            if not maker.make(p, kind, path, at, gap_minutes=12 * 60):    # an open case nobody could take up:
                _make_or_fall_back(maker, p, kind, ["create", "withdraw"], at, gap_minutes=12 * 60)   # withdrawn
        if w.full():
            w.flush()
            say(f"  {p.id}/{len(people)} people, {maker.case_id} cases, {maker.events} events")
    w.flush()
    moved = [(p.level, p.tier, _sqlite_value(p.grade_since) if w.sqlite else p.grade_since, p.id)
             for p in people if hired[p.id] != (p.level, p.tier, p.grade_since)]
    cur = w.conn.cursor()
    if w.sqlite:
        cur.executemany("UPDATE people SET level = ?, tier = ?, grade_since = ? WHERE id = ?", moved)
    else:
        cur.execute("CREATE TEMP TABLE bench_grades (level varchar(64), tier int, since date, id int)")
        with cur.copy("COPY bench_grades (level, tier, since, id) FROM STDIN") as copy:
            for r in moved:
                copy.write_row(r)
        cur.execute("UPDATE people SET level = g.level, tier = g.tier, grade_since = g.since "
                    "FROM bench_grades g WHERE people.id = g.id")
        cur.execute("DROP TABLE bench_grades")
    cur.close()


def _make_or_fall_back(maker: CaseMaker, p: Someone, kind: str, path: list[str], at: dt.datetime, **kw) -> None:
    """The path, or when the engine would refuse one of its steps, a case withdrawn at once (of the kind, or
    else a dismissal, which HR at the branch files)."""
    for k, actions in ((kind, path), (kind, ["create", "withdraw"]), ("dismissal", ["create", "withdraw"])):
        if maker.make(p, k, actions, at, **kw):
            return
    raise Unroutable(f"no case can be made for {p.username}")


def _possible(kind: str, p: Someone, pol) -> str:
    """A kind the person's grade allows: no promotion from the top grade, no demotion from the lowest level."""
    if kind == "promotion" and not pol.next_grades(p.level, p.tier):
        return "demotion"
    if kind == "demotion" and pol.level_index(p.level) == 0:
        return "promotion"
    return kind


def _weighted(paths):
    weights, actions = zip(*paths)
    return list(actions), list(weights)


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def stored_summary(app) -> dict[str, Any] | None:
    """The summary the generator left in the database at `app`'s URL, or None."""
    from workflow.models import Setting
    with app.app_context():
        if not inspect(db.engine).has_table("settings"):
            return None
        setting = db.session.get(Setting, DATASET_KEY)
        return json.loads(setting.value) if setting else None


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Generate benchmark data (empties the database first).")
    ap.add_argument("--url", required=True)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    summary = generate(args.url, args.scale, args.seed, progress=print)
    print(json.dumps(summary.to_json(), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
