"""Gradeflow's benchmarks: python bench/run.py [--quick] [--db sqlite|postgres] [--only NAME] [--json]

Prints a table of figures, or with --json one JSON object per line:
{"name", "value", "unit", "target", "ceiling", "ratio", "meets"}. The data comes from bench/generate.py:
--quick uses a small data set (2,000 people, 20,000 cases) and runs short repetitions, within
two minutes. The data set of a scale and seed is generated once and kept; a benchmark that has used it up
(decisions consume open cases) has it generated again, as does --fresh.
The method, the machine and the figures are in docs/performance.md.

To add a benchmark: a module under bench/ that registers a function with @bench.registry.benchmark, named
in MODULES below.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ itself would come first on the path and its modules would shadow the standard
# library's (bench/http.py); the project root takes its place.
HERE, ROOT = Path(__file__).resolve().parent, Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from bench import generate  # noqa: E402
from bench.registry import BENCHMARKS, BenchError, Context, NeedsFreshData, Result  # noqa: E402

# The modules whose benchmarks run.py runs, in this order.
MODULES = ("bench.decisions", "bench.reliability", "bench.http", "bench.pages", "bench.batch")

QUICK_SCALE = 0.02
DEFAULT_SCALE = 0.1
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/gf_bench"


def database_url(kind: str, scale: float, seed: int) -> str:
    """The benchmark database of a kind: BENCH_SQLITE_URL / BENCH_PG_URL, else a file under instance/
    (SQLite) or the local gf_bench database (PostgreSQL)."""
    if kind == "sqlite":
        default = f"sqlite:///{ROOT / 'instance' / f'bench-{scale:g}-{seed}.db'}"
        return os.environ.get("BENCH_SQLITE_URL", default)
    return os.environ.get("BENCH_PG_URL", PG_URL)


def prepare(url: str, scale: float, seed: int, fresh: bool, say) -> tuple[object, dict]:
    """The app on `url` and the generated data's summary, generating it when asked, missing or different."""
    generate.ensure_database(url)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    app = generate.app_for(url)
    stored = None if fresh else generate.stored_summary(app)
    if not stored or stored.get("scale") != scale or stored.get("seed") != seed \
            or stored.get("version") != generate.GENERATOR_VERSION:
        say(f"generating scale {scale:g}, seed {seed} at {generate._safe_url(url)} ...")
        summary = generate.generate(url, scale, seed, progress=say)
        say(f"  {summary.people} people, {summary.cases} cases, {summary.events} events in {summary.seconds}s")
        app = generate.app_for(url)
        stored = generate.stored_summary(app)
    return app, stored


def load_modules(names=MODULES) -> None:
    """Import the benchmark modules; one that is not there (yet) is named and left out."""
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            print(f"{name}: no such module; its benchmarks are left out", file=sys.stderr)


def select(only: list[str] | None, db_kind: str) -> list:
    chosen = []
    for name, b in BENCHMARKS.items():
        if only and not any(name == o or name.startswith(o + ".") for o in only):
            continue
        if db_kind in b.databases:
            chosen.append(b)
    unknown = [o for o in only or () if not any(b == o or b.startswith(o + ".") for b in BENCHMARKS)]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    return chosen


def as_json(r) -> dict:
    return r.to_json() if isinstance(r, Result) else {k: r.get(k) for k in
                                                       ("name", "value", "unit", "target", "ceiling", "ratio",
                                                        "meets")}


def table_line(d: dict, note: str = "") -> str:
    meets = {True: "meets", False: "MISSES", None: ""}[d["meets"]]
    ratio = "" if d["ratio"] is None else f"{d['ratio']:.1%}"
    target = "" if d["target"] is None else (f"≥{d['target']:.0%}" if d["ceiling"] is not None
                                             else f"{d['target']}")
    ceiling = "" if d["ceiling"] is None else f"{d['ceiling']}"
    return (f"{d['name']:<28} {d['value']:>12} {d['unit']:<12} {ceiling:>10} {ratio:>7} {target:>7} {meets:<6}"
            f"{'  ' + note if note else ''}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"small data (scale {QUICK_SCALE}) and short runs")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    ap.add_argument("--json", action="store_true", help="one JSON object per result and line")
    ap.add_argument("--scale", type=float, help=f"data scale (1 = 100k people, 1M cases; default {DEFAULT_SCALE})")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--url", help="the database (default: see BENCH_SQLITE_URL / BENCH_PG_URL)")
    ap.add_argument("--fresh", action="store_true", help="generate the data again")
    ap.add_argument("--repetitions", type=int, default=5, help="repetitions per benchmark (medians reported)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    load_modules()
    if args.list:
        for b in BENCHMARKS.values():
            print(f"{b.name:<20} {', '.join(b.databases):<18} {b.description}")
        return 0
    chosen = select(args.only, args.db)
    scale = args.scale or (QUICK_SCALE if args.quick else DEFAULT_SCALE)
    url = args.url or database_url(args.db, scale, args.seed)
    if generate.is_sqlite(url) != (args.db == "sqlite"):
        raise SystemExit(f"--url {generate._safe_url(url)} is not a {args.db} database")
    t0 = time.perf_counter()
    app, dataset = prepare(url, scale, args.seed, args.fresh, say)
    say(f"data: {dataset['cases']} cases, {dataset['events']} events (generated for {dataset['today']})")
    ctx = Context(db=args.db, url=url, app=app, quick=args.quick, scale=scale, seed=args.seed,
                  repetitions=max(1, args.repetitions), dataset=dataset)
    if not args.json:
        print(f"# {args.db}, scale {scale:g} (seed {args.seed}), {ctx.repetitions} repetitions, medians")
        print(f"{'name':<28} {'value':>12} {'unit':<12} {'ceiling':>10} {'ratio':>7} {'target':>7} result")
    failed = False
    for b in chosen:
        say(f"{b.name}: {b.description}")
        try:
            try:
                results = list(b.fn(ctx))
            except NeedsFreshData as exc:
                say(f"{b.name}: {exc}; generating the data again")
                ctx.app, ctx.dataset = prepare(url, scale, args.seed, True, say)
                results = list(b.fn(ctx))
        except BenchError as exc:
            say(f"{b.name}: {exc}")
            failed = True
            continue
        for r in results:
            d = as_json(r)
            if args.json:
                print(json.dumps(d, ensure_ascii=False), flush=True)
            else:
                print(table_line(d, getattr(r, "note", "")), flush=True)
            failed |= d["meets"] is False
    say(f"done in {time.perf_counter() - t0:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
