"""A customer tiering run at scale.

    python bench/tiering.py [--customers 10000] [--db sqlite|postgres] [--reps 3]

Each repetition builds a fresh database (not timed): a small org tree (HQ > 2 regions > 4 branches > 8
teams), HR at HQ, an approver at each branch, 40 managers, and N customers inserted in bulk with seeded
random inputs, industries, tiers and holders. Then it times, each committed as the pages commit it:
`start` (classify every customer into a proposal), a bulk approval of every pending proposal by the
approvers of each branch (`decide_many`, all they may decide), and `determine` (set_tier per change, the
holders told). It prints the median of the repetitions and the customers per second of each step.

SQLite: a file under instance/ (BENCH_TIERING_SQLITE_URL); PostgreSQL: the local gf_bench_tiering database
(BENCH_TIERING_PG_URL), created when missing. docs/tiering.md has the figures.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE, ROOT = Path(__file__).resolve().parent, Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from sqlalchemy import insert, select  # noqa: E402

from bench import generate  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/gf_bench_tiering"
INDUSTRIES = ("government", "state_owned", "finance", "manufacturing", "trade", "services", "other")
TIERS = ("important", "core", "ordinary", None)
LEVELS = ("assistant", "manager", "senior", "principal")


def database_url(kind: str) -> str:
    if kind == "sqlite":
        return os.environ.get("BENCH_TIERING_SQLITE_URL",
                              f"sqlite:///{ROOT / 'instance' / 'bench-tiering.db'}")
    return os.environ.get("BENCH_TIERING_PG_URL", PG_URL)


def build(n: int, seed: int) -> None:
    """A fresh schema with the org tree, the people and `n` customers (bulk inserts)."""
    from workflow import engine, policy as policy_mod
    from workflow.models import db, OrgUnit, Person, RoleAssignment
    from workflow.models.customers import Customer
    db.drop_all()
    db.create_all()
    engine.activate_policy(policy_mod.load_file("bank_corporate"), "bank_corporate")

    def unit(code, level, parent=None):
        u = OrgUnit(code=code, name=code, level=level, parent=parent)
        db.session.add(u)
        db.session.flush()
        u.path = (parent.path if parent else "/") + f"{u.id}/"
        return u

    hq = unit("HQ", "hq")
    teams, branches = [], []
    for r in range(2):
        region = unit(f"R{r + 1}", "region", hq)
        for b in range(2):
            branch = unit(f"B{r + 1}{b + 1}", "branch", region)
            branches.append(branch)
            teams += [unit(f"T{r + 1}{b + 1}{t + 1}", "team", branch) for t in range(2)]
    hr = Person(username="hr_hq", name="HR", unit=hq, hired_on=dt.date(2020, 1, 1), status="active")
    db.session.add(hr)
    db.session.add(RoleAssignment(person=hr, role="hr", unit=hq))
    for branch in branches:
        appr = Person(username=f"appr_{branch.code}", name="Approver", unit=branch,
                      hired_on=dt.date(2020, 1, 1), status="active")
        db.session.add(appr)
        db.session.add(RoleAssignment(person=appr, role="approver", unit=branch))
    managers = []
    for i in range(40):
        level = LEVELS[i % len(LEVELS)]
        managers.append(Person(username=f"mgr{i:02d}", name=f"Manager {i}", unit=teams[i % len(teams)],
                               level=level, tier=1, grade_since=dt.date(2024, 1, 1),
                               hired_on=dt.date(2020, 1, 1), status="active"))
    db.session.add_all(managers)
    db.session.flush()
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        m = managers[i % len(managers)]
        tier = rng.choice(TIERS)
        rows.append({"code": f"C{i:06d}", "name": f"Customer {i}", "industry": rng.choice(INDUSTRIES),
                     "unit_id": m.unit_id, "active": True, "tier": tier,
                     "tier_since": dt.date(2025, 1, 1) if tier else None, "version": 0,
                     "inputs": {"monthly_revenue": rng.uniform(0, 120), "it_revenue": rng.uniform(0, 25),
                                "employees": rng.randint(5, 3000), "products": rng.randint(0, 12),
                                "credit": rng.uniform(40, 100)},
                     "manager_id": m.id if rng.random() < 0.9 else None,
                     "assigned_on": dt.date(2025, 1, 1)})
    for i in range(0, n, 5000):
        db.session.execute(insert(Customer), rows[i:i + 5000])
    db.session.commit()


def once(n: int, seed: int) -> dict[str, float]:
    from workflow import clock, tiering
    from workflow.models import db, OrgUnit, Person
    build(n, seed)
    hr = db.session.scalar(select(Person).where(Person.username == "hr_hq"))
    hq = db.session.scalar(select(OrgUnit).where(OrgUnit.code == "HQ"))
    out = {}
    t0 = time.perf_counter()
    run = tiering.start(hr, hq, "2026-H1", today=clock.today())
    db.session.commit()
    out["start"] = time.perf_counter() - t0
    out["pending"] = run.counts["states"]["pending"]
    t0 = time.perf_counter()
    decided = 0
    for appr in db.session.scalars(select(Person).where(Person.username.like("appr_%")).order_by(Person.id)):
        decided += len(tiering.decide_many(appr, run, None, "approve", "bench"))
    db.session.commit()
    out["approve"] = time.perf_counter() - t0
    assert decided == out["pending"], (decided, out["pending"])
    t0 = time.perf_counter()
    tiering.determine(hr, run, today=clock.today())
    db.session.commit()
    out["determine"] = time.perf_counter() - t0
    out["changed"] = run.counts["determined"]["changed"]
    db.session.remove()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    url = database_url(args.db)
    generate.ensure_database(url)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    app = generate.app_for(url)
    runs = []
    with app.app_context():
        for rep in range(args.reps):
            runs.append(once(args.customers, args.seed + rep))
            print(f"  repetition {rep + 1}: " + ", ".join(
                f"{k} {v:.2f}s" if isinstance(v, float) else f"{k} {v}" for k, v in runs[-1].items()),
                file=sys.stderr)
    print(f"tiering run of {args.customers} customers on {args.db}, median of {args.reps}:")
    for step, rows_of in (("start", lambda r: args.customers), ("approve", lambda r: r["pending"]),
                          ("determine", lambda r: args.customers)):
        secs = statistics.median(r[step] for r in runs)
        rows = statistics.median(rows_of(r) for r in runs)
        print(f"  {step:<10} {secs:7.2f} s  {rows / secs if secs else 0:9.0f} rows/s  ({rows:g} rows)")
    print(f"  pending proposals {statistics.median(r['pending'] for r in runs):g}, tier changes applied "
          f"{statistics.median(r['changed'] for r in runs):g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
