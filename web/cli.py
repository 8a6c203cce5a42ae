"""The command line (`flask --app wsgi COMMAND`, see CONTRACT.md). Each command does its work through
workflow/, commits, and reports; bad input gets a clear message on stderr and a non-zero exit, never a
traceback."""
from __future__ import annotations

import datetime as dt
import functools
import sys
import time
import unicodedata
from pathlib import Path

import click
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError

from workflow import audit, clock, demo as demo_mod, directory, engine, importing, policy as policy_mod
from workflow import customer_import, invariants, jobs, notify, review, ticking
from workflow.errors import Conflict, WorkflowError
from workflow.models import db, Case, OrgUnit, Review

from . import mail

MAX_PROBLEMS_SHOWN = 200


def fail(message: str, code: int = 1):
    click.echo(message, err=True)
    raise click.exceptions.Exit(code)


def reported(func):
    """Run a command in one transaction: roll back and say what went wrong on any refusal."""
    @functools.wraps(func)
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.exceptions.Exit:
            db.session.rollback()
            raise
        except importing.ImportRefused as exc:
            db.session.rollback()
            for p in exc.problems[:MAX_PROBLEMS_SHOWN]:
                click.echo(str(p), err=True)
            if len(exc.problems) > MAX_PROBLEMS_SHOWN:
                click.echo(f"... and {len(exc.problems) - MAX_PROBLEMS_SHOWN} more", err=True)
            fail(f"refused: {len(exc.problems)} problem(s); nothing was changed")
        except policy_mod.PolicyError as exc:
            db.session.rollback()
            fail(f"bad policy: {exc}")
        except WorkflowError as exc:
            db.session.rollback()
            fail(f"refused: {exc.message}")
        except SQLAlchemyError as exc:
            db.session.rollback()
            first = str(exc.orig if getattr(exc, "orig", None) is not None else exc).splitlines()[0]
            fail(f"database error: {first}\n(has the database been created? run `flask --app wsgi init-db`)")
    return run


def parse_today(ctx, param, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date YYYY-MM-DD") from None


def init_app(app: Flask) -> None:
    for command in (init_db, import_org, import_scores, set_password, demo, tick, audit_verify, policy_check,
                    import_absences, import_customers, annual_review, check_invariants, worker):
        app.cli.add_command(command)


# --- schema and policy -------------------------------------------------------------------------------

@click.command("init-db")
@click.option("--policy", "policy_name", metavar="NAME|PATH",
              help="A policy in policies/ by name, or a path (default: GRADEFLOW_POLICY).")
@reported
def init_db(policy_name: str | None) -> None:
    """Create or upgrade the schema (migrations) and set the active policy."""
    from flask_migrate import upgrade

    name = policy_name or current_app.config["GRADEFLOW_POLICY"]
    pol = policy_mod.load_file(name)        # a bad policy is refused before anything is touched
    try:
        upgrade()
    except SQLAlchemyError as exc:
        fail(f"the database could not be migrated: {str(getattr(exc, 'orig', exc)).splitlines()[0]}")
    source = str(policy_mod.resolve(name))
    pv = engine.activate_policy(pol, source)
    db.session.commit()
    click.echo(f"database ready ({db.engine.url.render_as_string(hide_password=True)})")
    click.echo(f"active policy: {pv.label} ({pv.hash[:12]}) from {source}")


@click.command("policy-check")
@click.argument("file")
def policy_check(file: str) -> None:
    """Validate a policy file without loading it."""
    try:
        pol = policy_mod.load_file(file)
    except policy_mod.PolicyError as exc:
        fail(f"{exc.source}: {exc.path or '(top)'}: {exc.problem}")
    click.echo(f"{file}: ok — {pol.label}: {len(pol.org_levels)} org levels, {len(pol.ladder)} levels "
               f"({sum(lv.tiers for lv in pol.ladder)} tiers), {len(pol.eligibility)} eligibility rules")


# --- imports -----------------------------------------------------------------------------------------

_file = click.Path(exists=True, dir_okay=False, readable=True)


@click.command("import-org")
@click.argument("units", type=_file)
@click.argument("people", type=_file)
@reported
def import_org(units: str, people: str) -> None:
    """Load or update org units and people from CSV or XLSX files: checked whole first (a bad row changes
    nothing), then loaded in chunks with a progress bar. The import is a job: if this command stops, a
    worker takes it over where it stopped."""
    files = {"units": (units, Path(units).read_bytes()), "people": (people, Path(people).read_bytes())}
    job = jobs.enqueue("import_people", {}, None, files=files)
    db.session.commit()
    click.echo(f"job {job.id}: checking the files ...", err=True)
    job = run_job(job, "loading")
    if job.status == "failed":
        details = (job.result or {}).get("details", {})
        problems = details.get("problems")
        if problems:
            for p in problems[:MAX_PROBLEMS_SHOWN]:
                click.echo(p, err=True)
            total = details.get("problems_total", len(problems))
            if total > len(problems[:MAX_PROBLEMS_SHOWN]):
                click.echo(f"... and {total - len(problems[:MAX_PROBLEMS_SHOWN])} more", err=True)
            fail(f"refused: {total} problem(s); nothing was changed")
        fail(f"refused: {job.error}")
    click.echo(job.result["summary"])


def run_job(job, label: str):
    """Run a just-enqueued job in this process with a progress bar on stderr; answers the job as stored."""
    bar = None

    def progress(j) -> None:
        nonlocal bar
        if bar is None and j.total:
            bar = click.progressbar(length=j.total, label=label, file=sys.stderr, show_pos=True)
            bar.__enter__()
        if bar is not None:
            bar.update(j.done - bar.pos)
    try:
        return jobs.run_now(job, progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@click.command("worker")
@click.option("--once", is_flag=True, help="Run the jobs queued now, then exit (else wait for more).")
@click.option("--poll", default=2.0, show_default=True, help="Seconds between looks at an empty queue.")
def worker(once: bool, poll: float) -> None:
    """Run queued jobs (imports, bulk decisions, annual reviews), one at a time, in chunks; a job left
    half-done by a worker that stopped is taken over after the lease. Several workers may run at once."""
    name = jobs.worker_name()
    click.echo(f"worker {name}: {'running the queued jobs' if once else 'waiting for jobs'}", err=True)
    while True:
        try:
            job = jobs.run_next(name)
        except SQLAlchemyError as exc:
            db.session.rollback()
            first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            if once:
                fail(f"database error: {first}")
            click.echo(f"database error: {first}; trying again", err=True)
            time.sleep(max(poll, 1.0))
            continue
        if job is None:
            _send_mail()         # an idle worker empties the e-mail outbox
            if once:
                return
            time.sleep(max(poll, 0.1))
            continue
        what = f": {job.error}" if job.error else ""
        click.echo(f"job {job.id} ({job.kind}): {job.status}, {job.done}/{job.total}{what}")


def _send_mail() -> None:
    try:
        mailed = mail.send_outbox(say=lambda line: click.echo(line, err=True))
    except SQLAlchemyError as exc:
        db.session.rollback()
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        click.echo(f"mail: database error: {first}", err=True)
        return
    if mailed["sent"] or mailed["failed"]:
        click.echo(f"mail: {mailed['sent']} sent, {mailed['retry']} to retry, {mailed['failed']} failed")


@click.command("import-scores")
@click.argument("scores", type=_file)
@reported
def import_scores(scores: str) -> None:
    """Load or update performance, skill-test and other scores from a CSV or XLSX file."""
    result = importing.import_scores(scores)
    db.session.commit()
    click.echo(result.summary())


@click.command("import-absences")
@click.argument("absences", type=_file)
@reported
def import_absences(absences: str) -> None:
    """Load or update absences (username,start,end,reason) from a CSV or XLSX file (all or nothing)."""
    result = importing.import_absences(absences)
    db.session.commit()
    click.echo(result.summary())


@click.command("import-customers")
@click.argument("customers", type=_file)
@reported
def import_customers(customers: str) -> None:
    """Load or update customers (code,name,industry,unit_code,manager,tier,active and the policy's inputs)
    from a CSV or XLSX file, all or nothing; Chinese headers are read too."""
    result = customer_import.import_customers(customers, None)
    db.session.commit()
    click.echo(result.summary())


@click.command("set-password")
@click.argument("username")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from standard input.")
@reported
def set_password(username: str, from_stdin: bool) -> None:
    """Set a person's password (asked twice, hidden), ending their sessions and tokens."""
    person = directory.person_by_username(username)
    if person is None:
        fail(f"unknown username '{username}'")
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    directory.set_password(person, password, source="cli")
    db.session.commit()
    click.echo(f"password set for {username}")


# --- demo --------------------------------------------------------------------------------------------

@click.command("demo")
@reported
def demo() -> None:
    """Load a ready demo (org tree, people with every role, cases in flight) and print the logins."""
    result = demo_mod.load()
    db.session.commit()
    if result.created:
        click.echo(f"demo loaded: {result.summary}")
    else:
        click.echo("the demo is already loaded; nothing was changed")
    click.echo(f"\nEvery demo login uses the password: {result.password}\n")
    rows = [("username", "name", "roles", "what to try")] + [
        (lg.username, lg.name, ", ".join(lg.roles) or "—", lg.hint) for lg in result.logins]
    click.echo(format_table(rows))
    click.echo(f"\n{result.others}")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Columns padded for a terminal, counting CJK characters as two cells."""
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [c + " " * (w - _width(c)) for c, w in zip(row, widths)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * _width(row[-1]))
    return "\n".join(lines)


# --- time --------------------------------------------------------------------------------------------

@click.command("tick")
@click.option("--today", callback=parse_today, metavar="YYYY-MM-DD", help="Act as if today were this date.")
@reported
def tick(today: dt.date | None) -> None:
    """Do what time brings: effective dates, escalations of overdue steps, ... Each job is claimed under a
    row lock, checked again and committed on its own, so ticks running at once on several machines, or one
    after another, do each job exactly once."""
    if today is not None:
        clock.fix_today(today)
    today = clock.today()
    done, skipped, failed = run_tick(today, click.echo, lambda line: click.echo(line, err=True))
    click.echo(f"tick {today.isoformat()}: {done} done, {skipped} skipped, {failed} failed")
    reminded = run_reminders(today, current_app.config["REMINDER_DAYS"])
    mailed = mail.send_outbox(say=lambda line: click.echo(line, err=True))
    click.echo(f"reminders: {reminded} written; mail: {mailed['sent']} sent, {mailed['retry']} to retry, "
               f"{mailed['failed']} failed, {mailed['skipped']} not wanted")
    if failed:
        raise click.exceptions.Exit(1)


TICK_RETRIES = 5


def run_reminders(today: dt.date, lead_days: int) -> int:
    """The deadline reminders due today (workflow/notify.remind), one transaction per case; a case another
    tick reminded at the same moment fails on the reminders' unique key and is left to it."""
    written = 0
    ids = notify.reminder_candidates(today, lead_days)
    db.session.rollback()
    for case_id in ids:
        try:
            case = db.session.get(Case, case_id, populate_existing=True)
            n = notify.remind(case, today, lead_days) if case is not None else 0
            db.session.commit()
            written += n
        except (IntegrityError, OperationalError):
            db.session.rollback()
    return written


def run_tick(today: dt.date, say=lambda line: None, complain=lambda line: None) -> tuple[int, int, int]:
    """One pass over the jobs due today, one transaction per job (see workflow/ticking.py); jobs whose case
    another transaction holds are left for the end and then waited for. Answers (done, skipped, failed)."""
    jobs = engine.due_for_tick(today)
    db.session.rollback()        # the listing's transaction holds nothing while the jobs run
    counts = {"done": 0, "skipped": 0, "failed": 0}
    busy = []
    for case_id, action in jobs:
        if _tick_job(case_id, action, today, False, say, complain, counts) == "busy":
            busy.append((case_id, action))
    for case_id, action in busy:
        _tick_job(case_id, action, today, True, say, complain, counts)
    from . import leads     # the sales leads past their deadline: flagged overdue, owners and managers told
    flagged, told = leads.run_overdue(today, say)
    say(f"leads: {flagged} overdue, {told} notified")
    return counts["done"], counts["skipped"], counts["failed"]


def _tick_job(case_id: int, action: str, today: dt.date, wait: bool, say, complain, counts) -> str:
    for attempt in range(TICK_RETRIES):
        try:
            case = ticking.claim(case_id, action, today, wait=wait)
            if case is None:
                db.session.rollback()
                outcome = "skipped"
                break
            before = case.state
            engine.fire(case, action, None, today=today)
            db.session.commit()
        except ticking.Busy:
            db.session.rollback()
            return "busy"
        except (Conflict, StaleDataError, IntegrityError):
            # Another tick (or a person) changed the case between our reading and our writing.
            db.session.rollback()
            outcome = "skipped"
            break
        except OperationalError as exc:
            # SQLite: another writer held the database, or committed after our read began; read afresh.
            db.session.rollback()
            if attempt == TICK_RETRIES - 1:
                counts["failed"] += 1
                complain(f"case {case_id}: {action} failed: {str(exc.orig).splitlines()[0]}")
                return "failed"
            continue
        except WorkflowError as exc:
            db.session.rollback()
            counts["failed"] += 1
            complain(f"case {case_id}: {action} failed: {exc.message}")
            return "failed"
        else:
            counts["done"] += 1
            now = f"{before} → {case.state}" if case.state != before else \
                f"{case.state}, now at {case.step_unit.code if case.step_unit else '—'}"
            say(f"case {case_id}: {action} ({now})")
            return "done"
    counts[outcome] += 1
    say(f"case {case_id}: {action} skipped, already handled")
    return outcome


# --- audit -------------------------------------------------------------------------------------------

@click.command("audit-verify")
@click.option("--batch", default=500, show_default=True, help="Chains checked per batch.")
@reported
def audit_verify(batch: int) -> None:
    """Check the whole tamper-evident audit chain; exit 1 if anything was altered or removed."""
    def progress(done: int, total: int) -> None:
        click.echo(f"checked {done}/{total} chains", err=True)

    report = audit.verify(batch=max(1, batch), progress=progress)
    if report.ok:
        click.echo(f"audit ok: {report.events} events in {report.chains} chains")
        return
    click.echo(f"AUDIT FAILED: {report.events} events in {report.chains} chains checked", err=True)
    for problem in report.problems:
        click.echo(f"  {problem}", err=True)
    raise click.exceptions.Exit(1)


@click.command("check-invariants")
@click.option("--batch", default=500, show_default=True, help="Cases (and chains) checked per batch.")
@reported
def check_invariants(batch: int) -> None:
    """Check what must hold however decisions raced or a process died (workflow/invariants.py): the audit
    chains, each case's events a path of its machine, gap-free versions, no decision applied twice, one
    grade-history row per grade change. Exit 1 on any problem."""
    def progress(stage: str, done: int, total: int) -> None:
        click.echo(f"{stage}: checked {done}/{total}", err=True)

    problems = invariants.check(batch=max(1, batch), progress=progress)
    cases = db.session.scalar(select(db.func.count()).select_from(Case))
    if not problems:
        click.echo(f"invariants hold: {cases} cases checked")
        return
    click.echo(f"INVARIANTS BROKEN: {len(problems)} problem(s) in {cases} cases", err=True)
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        click.echo(f"  {problem}", err=True)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        click.echo(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more", err=True)
    raise click.exceptions.Exit(1)


# --- the annual review -------------------------------------------------------------------------------

@click.command("annual-review")
@click.option("--period", required=True, metavar="YYYY", help="The year reviewed, e.g. 2025.")
@click.option("--unit", "unit_code", required=True, metavar="CODE",
              help="The unit whose subtree is reviewed.")
@click.option("--dry-run", is_flag=True, help="Show the outcomes; open nothing, store nothing.")
@click.option("--as", "as_user", metavar="USERNAME", help="Run it as this HR person (default: the system).")
@click.option("--today", callback=parse_today, metavar="YYYY-MM-DD", help="Act as if today were this date.")
@reported
def annual_review(period: str, unit_code: str, dry_run: bool, as_user: str | None,
                  today: dt.date | None) -> None:
    """年度考核排名: rank the unit's managers and open the re-competition, absence and dismissal cases."""
    if today is not None:
        clock.fix_today(today)
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == unit_code))
    if unit is None:
        fail(f"unknown unit '{unit_code}'")
    actor = None
    if as_user is not None:
        actor = directory.person_by_username(as_user)
        if actor is None:
            fail(f"unknown username '{as_user}'")
    if dry_run:
        result = review.annual_review(unit, period, actor, dry_run=True)
    else:     # a job: the cases open in chunks, with a progress bar; a worker takes over if this stops
        job = jobs.enqueue("annual_review", {"unit": unit.code, "period": period,
                                             "today": today.isoformat() if today else None}, actor)
        db.session.commit()
        job = run_job(job, "opening cases")
        if job.status == "failed":
            fail(f"refused: {job.error}")
        r = db.session.get(Review, job.result["review"])
        result = review.ReviewResult(unit, r.period, r.outcomes, r, created=not job.result["stored"],
                                     dry_run=False)
    rows = [("username", "level", "rank", "outcome", "case", "reason")] + [
        (o["username"], o["level"], f"{o['rank']}/{o['of']}" if o["rank"] else "—", o["outcome"],
         str(o.get("case") or "—"), o["reason"]) for o in result.outcomes]
    click.echo(format_table(rows) if result.outcomes else "nobody to review")
    opened = sum(1 for o in result.outcomes if o.get("case"))
    if result.stored:
        r = result.review
        click.echo(f"\n{unit.code} {result.period}: already reviewed (review {r.id}, "
                   f"{r.created_at.isoformat(timespec='minutes')}); nothing new was opened")
    elif result.dry_run:
        click.echo(f"\n{unit.code} {result.period}: dry run, nothing was changed")
    else:
        click.echo(f"\n{unit.code} {result.period}: review {result.review.id} stored, "
                   f"{opened} case(s) opened")
