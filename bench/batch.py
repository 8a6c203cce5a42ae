"""Batch jobs at scale: the import of 100,000 people from XLSX, a bulk decision on 1,000 cases and the
annual review of 100,000 people, each run as the job a worker runs (workflow/jobs.py), timed in a
subprocess of its own whose peak memory (VmHWM) and CPU time are reported with it.

    python bench/batch.py [--db sqlite|postgres] [--quick] [--only import,bulk,review] [--json]

or through bench/run.py (`--only batch`). Each measure starts from a scratch database of its own
(BENCH_BATCH_SQLITE_URL, else instance/bench-batch.db; BENCH_BATCH_PG_URL, else the local gf_batch_bench),
emptied first and filled in the parent process, outside the timing: the org tree (HQ, 10 regions, 100
branches, 1,000 teams) and, for the review, the people with a 2025 performance score each; for the bulk
decision, managers filed for promotion through the engine, waiting for one approver's qualification. The
XLSX file is written the way Excel writes one (shared strings, the sheet's dimension). --quick runs
5,000 people and 100 cases. Targets (issue 4): review under 10 s, bulk decision under 5 s, import under
60 s and 1 GB.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":   # python bench/batch.py: the project root, not bench/, first on the path
    sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from xml.sax.saxutils import escape  # noqa: E402

from sqlalchemy import insert, select  # noqa: E402

from bench import generate  # noqa: E402
from bench.registry import Context, Result, benchmark  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 3, 2)
TARGETS = {"review": 10.0, "bulk": 5.0, "import": 60.0, "import_rss": 1024.0}
SIZES = {False: {"people": 100_000, "cases": 1000}, True: {"people": 5000, "cases": 100}}
LEVELS = [("assistant", 3), ("manager", 3), ("senior", 3), ("principal", 3)]


def scratch_url(kind: str) -> str:
    if kind == "sqlite":
        return os.environ.get("BENCH_BATCH_SQLITE_URL", f"sqlite:///{ROOT / 'instance' / 'bench-batch.db'}")
    return os.environ.get("BENCH_BATCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gf_batch_bench")


def fresh_app(url: str):
    """The app on an emptied scratch database with the shipped bank policy active."""
    from workflow import clock, engine, policy as policy_mod
    from workflow.models import db
    generate.ensure_database(url)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
    clock.fix_today(TODAY)
    app = generate.app_for(url)
    with app.app_context():
        db.drop_all()
        db.create_all()
        engine.activate_policy(policy_mod.load_file("bank_corporate"), "bank_corporate")
        db.session.commit()
    return app


# --- data, outside the timing ------------------------------------------------------------------------

def tree() -> list[tuple[str, str, str, str | None]]:
    """(code, name, level, parent code): HQ, 10 regions, 100 branches, 1,000 teams."""
    units = [("HQ", "总行", "hq", None)]
    for r in range(10):
        units.append((f"R{r}", f"区域{r}", "region", "HQ"))
        for b in range(10):
            units.append((f"B{r}_{b}", f"分行{r}-{b}", "branch", f"R{r}"))
            units += [(f"T{r}_{b}_{t}", f"团队{r}-{b}-{t}", "team", f"B{r}_{b}") for t in range(10)]
    return units


def insert_tree() -> dict[str, int]:
    """The tree written top down (a path needs the unit's own id); code -> id."""
    from workflow.models import db, OrgUnit
    ids, paths = {}, {}
    table = OrgUnit.__table__
    for code, name, level, parent in tree():
        ids[code] = db.session.execute(insert(table).returning(table.c.id), [{
            "code": code, "name": name, "level": level, "parent_id": ids.get(parent), "path": ""}]
        ).scalar_one()
        paths[code] = (paths[parent] if parent else "/") + f"{ids[code]}/"
        db.session.execute(table.update().where(table.c.id == ids[code]).values(path=paths[code]))
    db.session.commit()
    return ids


def people_rows(n: int, rng: random.Random) -> list[dict]:
    teams = [u[0] for u in tree() if u[2] == "team"]
    rows = []
    for i in range(n):
        level, tiers = rng.choice(LEVELS)
        rows.append({"username": f"p{i:06d}", "name": f"员工{i}", "unit": teams[i % len(teams)], "level": level,
                     "tier": rng.randint(1, tiers), "grade_since": dt.date(2023, 1, 1),
                     "hired_on": dt.date(2019, 5, 1), "education": "bachelor", "status": "active"})
    return rows


def write_xlsx(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """An XLSX file as Excel writes one: every text cell a shared string, the sheet's dimension given."""
    strings: dict[str, int] = {}

    def ref(text: str) -> int:
        return strings.setdefault(text, len(strings))

    cols = [chr(ord("A") + i) for i in range(len(header))]
    parts = []
    for r, row in enumerate([header] + rows, start=1):
        cells = "".join(f'<c r="{c}{r}" t="s"><v>{ref(v)}</v></c>' for c, v in zip(cols, row) if v != "")
        parts.append(f'<row r="{r}">{cells}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    head = '<?xml version="1.0" encoding="UTF-8"?>'
    sheet = (f'{head}<worksheet {ns}><dimension ref="A1:{cols[-1]}{len(rows) + 1}"/>'
             f'<sheetData>{"".join(parts)}</sheetData></worksheet>')
    shared = (f'{head}<sst {ns} count="{len(strings)}" uniqueCount="{len(strings)}">'
              + "".join(f"<si><t>{escape(s)}</t></si>" for s in strings) + "</sst>")
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", (
            f'{head}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/></Types>'))
        z.writestr("_rels/.rels", (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'))
        z.writestr("xl/workbook.xml", (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook {ns} xmlns:r="{rel}"><sheets>'
            '<sheet name="people" sheetId="1" r:id="rId1"/></sheets></workbook>'))
        z.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" '
            f'Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{rel}/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>'))
        z.writestr("xl/worksheets/sheet1.xml", sheet)
        z.writestr("xl/sharedStrings.xml", shared)


def prepare_import(app, n: int, workdir: Path) -> tuple[Path, Path]:
    """The units CSV and the people XLSX (a role for one person in a hundred)."""
    units = workdir / "units.csv"
    units.write_text("code,name,level,parent_code\n" + "".join(
        f"{c},{name},{lv},{p or ''}\n" for c, name, lv, p in tree()), encoding="utf-8")
    people = workdir / "people.xlsx"
    header = ["username", "name", "unit_code", "grade", "grade_since", "hired_on", "education", "status",
              "roles"]
    write_xlsx(people, header, [
        [r["username"], r["name"], r["unit"], f"{r['level']}-{r['tier']}", r["grade_since"].isoformat(),
         r["hired_on"].isoformat(), r["education"], r["status"], f"panel@{r['unit']}" if i % 100 == 0 else ""]
        for i, r in enumerate(people_rows(n, random.Random(1)))])
    return units, people


def insert_people(rows: list[dict], units: dict[str, int]) -> dict[str, int]:
    """People written in bulk, outside the engine (this is the data, not the measure); username -> id."""
    from workflow.models import db, Person
    ids = {}
    for i in range(0, len(rows), 5000):
        part = [{"username": r["username"], "name": r["name"], "unit_id": units[r["unit"]],
                 "level": r["level"], "tier": r["tier"], "grade_since": r["grade_since"],
                 "hired_on": r["hired_on"], "education": r["education"], "status": r["status"],
                 "session_generation": 0, "audit_version": 0} for r in rows[i:i + 5000]]
        ids.update({u: pid for pid, u in db.session.execute(
            insert(Person).returning(Person.id, Person.username), part)})
    db.session.commit()
    return ids


def insert_scores(ids: list[int], rng: random.Random, performance=None) -> None:
    from workflow.models import db, Score
    now = dt.datetime(2026, 1, 15)
    for i in range(0, len(ids), 5000):
        rows = []
        for pid in ids[i:i + 5000]:
            rows.append({"person_id": pid, "kind": "performance", "period": "2025", "granularity": "year",
                         "period_start": dt.date(2025, 1, 1), "period_end": dt.date(2025, 12, 31),
                         "value": performance if performance is not None else round(rng.uniform(50, 100), 1),
                         "passed": None, "imported_at": now})
            if performance is not None:
                rows.append({"person_id": pid, "kind": "skill_test", "period": "2025", "granularity": "year",
                             "period_start": dt.date(2025, 1, 1), "period_end": dt.date(2025, 12, 31),
                             "value": None, "passed": True, "imported_at": now})
        db.session.execute(insert(Score), rows)
    db.session.commit()


def grant(username: str, unit_id: int, role: str, units: dict[str, int]) -> None:
    from workflow.models import db, Person, RoleAssignment
    person = db.session.scalar(select(Person).where(Person.username == username))
    db.session.add(RoleAssignment(person=person, role=role, unit_id=unit_id))
    db.session.commit()


def staff(units: dict[str, int], spec: list[tuple[str, str, str]]) -> None:
    """People without a grade holding roles: (username, role, unit code)."""
    rows = [{"username": u, "name": u, "unit": code, "level": None, "tier": None, "grade_since": None,
             "hired_on": dt.date(2015, 1, 1), "education": "master", "status": "active"}
            for u, _, code in spec]
    insert_people(rows, units)
    for username, role, code in spec:
        grant(username, units[code], role, units)


def prepare_review(app, n: int) -> None:
    units = insert_tree()
    branches = [c for c, *_ in tree() if c.startswith("B")]
    staff(units, [("hr_hq", "hr", "HQ"), ("appr_hq", "approver", "HQ")]
          + [(f"{role}_{c}", role, c) for c in branches for role in ("supervisor", "approver", "hr")])
    ids = insert_people(people_rows(n, random.Random(2)), units)
    insert_scores(list(ids.values()), random.Random(3))


def prepare_bulk(app, n: int) -> list[int]:
    """n managers of branch B0_0's teams filed for senior through the engine; the branch's approver
    qualifies them."""
    from workflow import engine
    from workflow.models import db, Person
    units = insert_tree()
    staff(units, [("appr", "approver", "B0_0"), ("hr_b", "hr", "B0_0"), ("sup_b", "supervisor", "B0_0")])
    teams = [c for c, *_ in tree() if c.startswith("T0_0_")]
    rows = [{"username": f"m{i:05d}", "name": f"经理{i}", "unit": teams[i % len(teams)], "level": "manager",
             "tier": 3, "grade_since": dt.date(2023, 1, 1), "hired_on": dt.date(2018, 1, 1),
             "education": "bachelor", "status": "active"} for i in range(n)]
    ids = insert_people(rows, units)
    insert_scores(list(ids.values()), random.Random(4), performance=88.0)
    cases = []
    for i, pid in enumerate(ids.values()):
        p = db.session.get(Person, pid)
        cases.append(engine.create_promotion(p, p, "senior", "申请晋升").id)
        if i % 100 == 99:
            db.session.commit()
    db.session.commit()
    return cases


# --- the measures, each in a subprocess --------------------------------------------------------------

def child(measure: str, url: str, args: list[str]) -> dict:
    """Run one job as a worker would and answer its figures (in the subprocess)."""
    from workflow import clock, jobs, review
    from workflow.models import db, OrgUnit, Person
    clock.fix_today(TODAY)
    app = generate.app_for(url)
    with app.app_context():
        if measure == "import":
            files = {"units": ("units.csv", Path(args[0]).read_bytes()),
                     "people": ("people.xlsx", Path(args[1]).read_bytes())}
            t0 = time.perf_counter()
            job = jobs.enqueue("import_people", {}, None, files=files)
            extra = {}
        elif measure == "bulk":
            appr = db.session.scalar(select(Person).where(Person.username == "appr"))
            t0 = time.perf_counter()
            job = jobs.enqueue("bulk_decision", {"action": "qualify", "cases": json.loads(args[0])}, appr)
            extra = {}
        else:
            hr = db.session.scalar(select(Person).where(Person.username == "hr_hq"))
            hq = db.session.scalar(select(OrgUnit).where(OrgUnit.code == "HQ"))
            t = time.perf_counter()
            review.annual_review(hq, "2025", hr, dry_run=True)
            extra = {"dry_run_seconds": time.perf_counter() - t}
            db.session.rollback()
            t0 = time.perf_counter()
            job = jobs.enqueue("annual_review", {"unit": "HQ", "period": "2025"}, hr)
        db.session.commit()
        job = jobs.run_now(job)
        seconds = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"seconds": seconds, "rss_mb": peak_rss_mb(usage),
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "status": job.status, "error": job.error, "done": job.done, "result": _small(job.result),
                **extra}


def peak_rss_mb(usage) -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss does not on Linux:
    it would keep the parent's peak from before the fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return usage.ru_maxrss / 1024


def _small(result: dict | None) -> dict | None:
    if not result:
        return result
    out = {k: v for k, v in result.items() if k not in ("items", "todo", "cases")}
    if "items" in result:
        out["ok"], out["refused"] = result.get("ok"), result.get("refused")
    if "cases" in result:
        out["cases"] = len(result["cases"])
    return out


def measure(kind: str, which: str, args: list[str], say) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", which, scratch_url(kind), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{proc.stderr[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    if figures["status"] != "done":
        raise RuntimeError(f"{which}: the job {figures['status']}: {figures['error']}")
    say(f"  {which}: {figures['seconds']:.1f}s (the process's CPU: {figures['cpu_s']:.1f}s), "
        f"peak {figures['rss_mb']:.0f} MB, {figures['result']}")
    return figures


def run(kind: str, quick: bool, only: set[str], say) -> list[Result]:
    from workflow.models import db
    size = SIZES[quick]
    url = scratch_url(kind)
    results = []
    if "import" in only:
        app = fresh_app(url)
        with tempfile.TemporaryDirectory() as tmp, app.app_context():
            say(f"import: writing {size['people']} people to XLSX ...")
            units, people = prepare_import(app, size["people"], Path(tmp))
            db.session.remove()
            f = measure(kind, "import", [str(units), str(people)], say)
        results += [Result(f"batch.import_{size['people']}", f["seconds"], "s", target=TARGETS["import"],
                           higher_is_better=False),
                    Result(f"batch.import_{size['people']}.peak_rss", f["rss_mb"], "MB",
                           target=TARGETS["import_rss"], higher_is_better=False)]
    if "bulk" in only:
        app = fresh_app(url)
        with app.app_context():
            say(f"bulk: filing {size['cases']} promotions through the engine ...")
            cases = prepare_bulk(app, size["cases"])
            db.session.remove()
        f = measure(kind, "bulk", [json.dumps(cases)], say)
        results.append(Result(f"batch.bulk_decision_{size['cases']}", f["seconds"], "s",
                              target=TARGETS["bulk"], higher_is_better=False,
                              note=f"{f['result']['ok']} decided"))
    if "review" in only:
        app = fresh_app(url)
        with app.app_context():
            say(f"review: {size['people']} people with 2025 scores ...")
            prepare_review(app, size["people"])
            db.session.remove()
        f = measure(kind, "review", [], say)
        note = f"{f['result'].get('opened')} cases opened, {f['result'].get('moved')} tier moves"
        results += [Result(f"batch.annual_review_{size['people']}", f["seconds"], "s",
                           target=TARGETS["review"], higher_is_better=False, note=note),
                    Result(f"batch.annual_review_{size['people']}.dry_run", f["dry_run_seconds"], "s"),
                    Result(f"batch.annual_review_{size['people']}.peak_rss", f["rss_mb"], "MB")]
    return results


@benchmark("batch", "jobs at scale: XLSX import of 100k people, bulk decision on 1,000 cases, annual review "
                    "of 100k people (time and peak memory, each in a subprocess)")
def batch(ctx: Context) -> list[Result]:
    return run(ctx.db, ctx.quick, {"import", "bulk", "review"}, ctx.say)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="import,bulk,review")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child[0], a.child[1], a.child[2:]), default=str))
        return 0
    say = (lambda m: print(m, file=sys.stderr, flush=True))
    for r in run(a.db, a.quick, set(a.only.split(",")), say):
        if a.json:
            print(json.dumps(r.to_json()))
        else:
            verdict = {True: "meets", False: "MISSES", None: ""}[r.meets]
            target = f"target {'≤' if not r.higher_is_better else '≥'} {r.target:g}" if r.target else ""
            print(f"{r.name:40} {r.value:10.2f} {r.unit:3} {target:16} {verdict} {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
