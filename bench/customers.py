"""The import of customers at scale: N customers (default 10,000) in an XLSX file with the Chinese headers,
imported by HR at the root through workflow.customer_import (check the whole file, then load it in one
transaction), on a fresh database each time; the median of the repetitions is reported with rows per
second and the import's peak memory (VmHWM, reset before each import where Linux allows it).

    python bench/customers.py [--rows 10000] [--repeat 3] [--db sqlite|postgres] [--url URL] [--json]

The scratch databases are bench/batch.py's (BENCH_BATCH_SQLITE_URL, else instance/bench-batch.db;
BENCH_BATCH_PG_URL, else the local gf_batch_bench): emptied, then filled outside the timing with the org tree
(HQ, 10 regions, 100 branches, 1,000 teams) and 2,000 managers. Half the customers name a holder and a
tier the grade rule allows, so the timing includes the tiers' history and the assignments with their events.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":   # python bench/customers.py: the project root, not bench/, first on the path
    sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from sqlalchemy import insert, select  # noqa: E402

from bench.batch import fresh_app, insert_tree, people_rows, scratch_url, tree, write_xlsx  # noqa: E402

MANAGERS = 2000
HEADERS = ["客户编码", "客户名称", "行业", "所属单位", "客户经理", "客户层级", "月均收入", "月均信息化收入", "员工数",
           "使用产品数", "信用评分"]
INDUSTRIES = ("government", "state_owned", "finance", "manufacturing", "trade", "services", "other")


def customer_rows(n: int, managers: list[dict], rng: random.Random) -> list[list[str]]:
    """N customers of the managers' teams; every other one held by its team's manager with a tier their
    level may hold (important for senior and above, core for manager and above, ordinary otherwise)."""
    rows = []
    for i in range(n):
        m = managers[i % len(managers)]
        holder, tier = "", ""
        if i % 2 == 0:
            holder = m["username"]
            tier = {"senior": "important", "principal": "important", "manager": "core"}.get(
                m["level"], "ordinary")
        rows.append([f"C{i:07d}", f"客户{i}有限公司", rng.choice(INDUSTRIES), m["unit"], holder, tier,
                     str(rng.randint(0, 150)), str(rng.randint(0, 30)), str(rng.randint(1, 5000)),
                     str(rng.randint(0, 12)), str(rng.randint(40, 100))])
    return rows


def fill(app, managers: list[dict]) -> None:
    """The org tree, the managers and an HR administrator at the root, outside the timing."""
    from workflow.models import db, Person, RoleAssignment
    with app.app_context():
        ids = insert_tree()
        db.session.execute(insert(Person), [
            {**{k: v for k, v in m.items() if k != "unit"}, "unit_id": ids[m["unit"]],
             "session_generation": 0, "audit_version": 0} for m in managers] + [
            {"username": "bench_hr", "name": "HR", "unit_id": ids["HQ"], "status": "active",
             "session_generation": 0, "audit_version": 0}])
        hr = db.session.scalar(select(Person.id).where(Person.username == "bench_hr"))
        db.session.execute(insert(RoleAssignment), [{"person_id": hr, "role": "hr", "unit_id": ids["HQ"]}])
        db.session.commit()


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def one_run(url: str, path: Path, managers: list[dict]) -> dict:
    from workflow import customer_import
    from workflow.models import db, Person
    app = fresh_app(url)
    fill(app, managers)
    with app.app_context():
        actor = db.session.scalar(select(Person).where(Person.username == "bench_hr"))
        _ = actor.roles
        reset = _reset_peak()
        start = time.perf_counter()
        result = customer_import.import_customers(path, actor)
        db.session.commit()
        seconds = time.perf_counter() - start
        peak = _peak_mb() if reset else None
        db.session.remove()
    return {"seconds": seconds, "peak_mb": peak, "counts": result.to_json()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--url", help="the scratch database (emptied!)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    url = args.url or scratch_url(args.db)
    rng = random.Random(1)
    teams = {u[0] for u in tree() if u[2] == "team"}
    managers = [m for m in people_rows(MANAGERS, rng) if m["unit"] in teams]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.xlsx"
        write_xlsx(path, HEADERS, customer_rows(args.rows, managers, rng))
        size = path.stat().st_size
        runs = [one_run(url, path, managers) for _ in range(args.repeat)]
    median = statistics.median(r["seconds"] for r in runs)
    peaks = [r["peak_mb"] for r in runs if r["peak_mb"] is not None]
    out = {"benchmark": "customer_import", "db": args.db, "rows": args.rows, "file_kb": round(size / 1024),
           "median_s": round(median, 2), "runs_s": [round(r["seconds"], 2) for r in runs],
           "rows_per_s": round(args.rows / median), "peak_mb": round(max(peaks)) if peaks else None,
           "counts": runs[-1]["counts"]}
    if args.json:
        print(json.dumps(out))
    else:
        runs_s = ", ".join(f"{s:.2f}" for s in out["runs_s"])
        print(f"customer import, {args.rows} rows ({out['file_kb']} KB XLSX) on {args.db}: "
              f"median {median:.2f} s of {args.repeat} ({runs_s}), {out['rows_per_s']} rows/s, "
              f"peak memory {out['peak_mb'] if out['peak_mb'] is not None else '?'} MB; {runs[-1]['counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
