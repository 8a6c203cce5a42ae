"""Pages at scale: p50 and p95 server time of the busiest pages on the generated data.

Each page is requested through the application in-process (the WSGI app, a fresh database session per
request, the page rendered in full), as the people who use it most heavily would see it:

- **inbox** (`/inbox`): the people with the most open cases waiting on them;
- **case page** (`/cases/ID`): a seeded sample of cases of every kind and state, as HR at the root (who
  sees every case and every button);
- **case list** (`/cases/?kind=&state=&unit=`): filtered by kind, state and a branch, as HR at the root,
  and unfiltered as HR of a branch;
- **pipeline** (`/hr/pipeline?unit=`): the dashboard of a branch and of a region as their HR
  (`pipeline`), and of the whole bank as HR at the root (`pipeline.bank`, for information).

After a few warm-up requests each page is requested in turn with its viewers and arguments; the p50 and
p95 of the server time are reported. Targets (issue 4, PostgreSQL, full data): p95 under 50 ms for the
inbox and the case page, under 200 ms for the dashboard.

    python bench/run.py --db postgres --only pages
"""
from __future__ import annotations

import random
import time

from sqlalchemy import func, select

from bench.registry import BenchError, Context, Result, benchmark
from workflow.models import db, Case, CaseAssignee, OrgUnit, Person, RoleAssignment

TARGETS_MS = {"inbox": 50, "case_page": 50, "case_list": None, "pipeline": 200, "pipeline.bank": None}
SAMPLES, QUICK_SAMPLES = 60, 15       # measured requests per page and repetition
WARMUP = 3


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered) + 0.5) - 1))]


def _hr_at(unit_id: int) -> int | None:
    return db.session.scalar(select(RoleAssignment.person_id).where(
        RoleAssignment.role == "hr", RoleAssignment.unit_id == unit_id).order_by(RoleAssignment.person_id))


def plan(seed: int, samples: int) -> dict[str, list[tuple[int, str]]]:
    """Per page, the (viewer id, path) requests to make, chosen from the data with a seeded generator."""
    rng = random.Random(seed)
    root = db.session.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.id))
    root_hr = _hr_at(root.id)
    if root_hr is None:
        raise BenchError("nobody holds hr at the root unit")
    busiest = [pid for pid, _n in db.session.execute(
        select(CaseAssignee.person_id, func.count()).join(Case, Case.id == CaseAssignee.case_id)
        .where(Case.closed.is_(False)).group_by(CaseAssignee.person_id)
        .order_by(func.count().desc(), CaseAssignee.person_id).limit(10))]
    branches = db.session.scalars(select(OrgUnit).where(OrgUnit.level == "branch").order_by(OrgUnit.id)).all()
    regions = db.session.scalars(select(OrgUnit).where(OrgUnit.level == "region").order_by(OrgUnit.id)).all()
    max_id = db.session.scalar(select(func.max(Case.id))) or 0
    if not busiest or not branches or not regions or max_id == 0:
        raise BenchError("the data has no open cases, branches or regions")
    states = [s for (s,) in db.session.execute(select(Case.state).where(Case.kind == "promotion").distinct())]
    picked_branches = [rng.choice(branches) for _ in range(samples)]
    branch_hr = {b.id: _hr_at(b.id) for b in set(picked_branches + branches[:5])}
    staffed = [b for b in branches if branch_hr.get(b.id) or _hr_at(b.id)]
    out: dict[str, list[tuple[int, str]]] = {k: [] for k in TARGETS_MS}
    for i in range(samples):
        out["inbox"].append((busiest[i % len(busiest)], "/inbox"))
        out["case_page"].append((root_hr, f"/cases/{rng.randint(1, max_id)}"))
        branch = picked_branches[i]
        if i % 2:
            out["case_list"].append((root_hr, f"/cases/?kind=promotion&state={rng.choice(states)}"
                                              f"&unit={branch.code}"))
        else:
            b = rng.choice(staffed)
            out["case_list"].append((branch_hr.get(b.id) or _hr_at(b.id), "/cases/"))
        if i % 2:
            b = rng.choice(staffed)
            out["pipeline"].append((branch_hr.get(b.id) or _hr_at(b.id), f"/hr/pipeline?unit={b.code}"))
        else:
            region = rng.choice(regions)
            out["pipeline"].append((_hr_at(region.id) or root_hr, f"/hr/pipeline?unit={region.code}"))
        out["pipeline.bank"].append((root_hr, f"/hr/pipeline?unit={root.code}"))
    return out


def _client(app, person: Person):
    """A test client logged in as `person` (the session Flask-Login would set at login)."""
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = person.get_id()
        sess["_fresh"] = True
    return client


def measure(app, requests: list[tuple[int, str]], clients: dict[int, object]) -> list[float]:
    """Server time in ms of each request, after WARMUP unmeasured ones."""
    times = []
    for n, (viewer, path) in enumerate(requests[:WARMUP] + requests):
        client = clients[viewer]
        t0 = time.perf_counter()
        resp = client.get(path)
        elapsed = (time.perf_counter() - t0) * 1000
        if resp.status_code != 200:
            raise BenchError(f"GET {path} answered {resp.status_code}")
        if n >= WARMUP:
            times.append(elapsed)
    return times


@benchmark("pages", "p50 and p95 server time of the inbox, case page, case list and pipeline at scale")
def pages(ctx: Context) -> list[Result]:
    samples = QUICK_SAMPLES if ctx.quick else SAMPLES
    app = ctx.app
    timings: dict[str, list[float]] = {k: [] for k in TARGETS_MS}
    for rep in range(ctx.repetitions):
        with app.app_context():
            todo = plan(ctx.seed + rep, samples)
            people = {p.id: p for p in db.session.scalars(select(Person).where(
                Person.id.in_({v for reqs in todo.values() for v, _ in reqs})))}
            clients = {pid: _client(app, p) for pid, p in people.items()}
            db.session.remove()
        for name, requests in todo.items():
            timings[name] += measure(app, requests, clients)
        ctx.say(f"  pages rep {rep + 1}/{ctx.repetitions}: " + ", ".join(
            f"{name} p95 {percentile(t[-samples:], 0.95):.0f} ms" for name, t in timings.items()))
    results = []
    for name, times in timings.items():
        target = TARGETS_MS[name]
        spread = f"{len(times)} requests, max {max(times):.0f} ms"
        results.append(Result(f"pages.{name}.p50", percentile(times, 0.50), "ms"))
        results.append(Result(f"pages.{name}.p95", percentile(times, 0.95), "ms", target=target,
                              higher_is_better=False, note=spread))
    return results


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.pages URL [--quick]`: the benchmark on an existing generated database."""
    import argparse
    import json

    from bench import generate
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    app = generate.app_for(args.url)
    dataset = generate.stored_summary(app) or {}
    ctx = Context(db="sqlite" if generate.is_sqlite(args.url) else "postgres", url=args.url, app=app,
                  quick=args.quick, scale=dataset.get("scale", 0), seed=args.seed,
                  repetitions=args.repetitions, dataset=dataset)
    for r in pages(ctx):
        print(json.dumps({**r.to_json(), "note": r.note}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
