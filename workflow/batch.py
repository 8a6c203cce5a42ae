"""The batch path of the engine: the work of each job kind, in chunks (see docs/batch.md).

Nothing here bypasses the engine: a bulk decision is `engine.fire` per case, with its authority check,
rules and audit event, exactly as one request would; an import goes through workflow.importing and
workflow.directory; the annual review opens its cases with `engine.open_case`. What the batch path adds
is the chunking: each chunk is one transaction, committed together with the job's progress by
`Chunks.commit` (workflow/jobs.py), so a chunk lands whole or not at all and a job resumes after the last
chunk it committed. Each kind has `check(params, actor, files)`, run when the job is enqueued (bad
parameters are refused before anything is stored), and `run(job, chunks)`, which answers the result.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from . import authority, engine, i18n, importing, review
from .i18n import _l
from .errors import Conflict, Forbidden, Invalid, NotFound, WorkflowError
from .models import db, MAX_ID, Case, CaseAssignee, OrgUnit, Person, Review
from .models.jobs import Job

IMPORT_CHUNK = 2000          # people per transaction
DECISION_CHUNK = 100         # cases per transaction
REVIEW_CHUNK = 200           # cases opened per transaction
MAX_CASES = 5000             # cases in one bulk decision
MAX_PROBLEMS_KEPT = 200      # an import's problems kept on a failed job
BULK_ACTIONS = ("qualify", "approve")
MAX_COMMENT = 2000


@dataclass(frozen=True)
class Kind:
    name: str
    check: Callable[[dict[str, Any], Person | None, dict[str, tuple[str, bytes]]], dict[str, Any]]
    run: Callable[[Job, Any], dict[str, Any]]


KINDS: dict[str, Kind] = {}


def kind(name: Any) -> Kind:
    if not isinstance(name, str) or name not in KINDS:
        raise Invalid(_l("kind must be one of %(kinds)s", kinds=", ".join(KINDS)), field="kind")
    return KINDS[name]


def _register(name: str, check, run) -> None:
    KINDS[name] = Kind(name, check, run)


def _object(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise Invalid(_l("the job's parameters must be an object"))
    return params


def _actor(job: Job) -> Person | None:
    return db.session.get(Person, job.created_by_id) if job.created_by_id else None


def is_root_admin(person: Person) -> bool:
    return any(ra.role == "admin" and ra.unit.parent_id is None for ra in person.roles)


def can_see_job(person: Person, job: Job) -> bool:
    """Who started it sees a job; so do administrators at the root unit (every job, the system's too)."""
    return job.created_by_id == person.id or is_root_admin(person)


# --- import of people --------------------------------------------------------------------------------

def _check_import(params: Any, actor: Person | None, files: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
    """An import of units and people: a `people` file, and a `units` file (and a `history` file of earlier
    grades) or not. It may touch any unit,
    so only administrators at the root unit (or the command line, as the system) start one."""
    _object(params)
    if actor is not None and not is_root_admin(actor):
        raise Forbidden(_l("only an administrator at the root unit may import people"))
    if "people" not in files and "units" not in files and "history" not in files:
        raise Invalid(_l("an import needs a people file (CSV or XLSX)"), field="file")
    return {purpose: name for purpose, (name, _) in sorted(files.items())}


def _run_import(job: Job, chunks) -> dict[str, Any]:
    """Check the files whole (nothing is written if any row is wrong), then load them in chunks of
    IMPORT_CHUNK people, each committed with the progress; a resumed job starts at the last step it
    committed (loading a step again is an upsert that changes nothing)."""
    files = {f.purpose: f for f in job.files}
    sources = {purpose: _NamedBytes(f.name, f.content) for purpose, f in files.items()}
    plan = importing.check_org(sources.get("units"), sources.get("people"), history=sources.get("history"))
    counts = (job.result or {}).get("counts")
    result = importing.ImportResult(**counts) if counts else importing.ImportResult()
    chunks.commit(min(job.done, plan.total), plan.total, {"counts": asdict(result), "phase": "loading"})

    def after(done: int, res: importing.ImportResult) -> None:
        chunks.commit(done, plan.total, {"counts": asdict(res), "phase": "loading"})

    chunks.begin()
    result = importing.load_org(plan, actor=_actor(job), start=job.done, chunk=IMPORT_CHUNK, result=result,
                                after_chunk=after)
    return {"counts": asdict(result), "summary": result.summary()}


class _NamedBytes:
    """A stored file as importing reads it: its bytes and the name the problems give."""

    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def read(self) -> bytes:
        return self._data


_register("import_people", _check_import, _run_import)


# --- bulk decisions ----------------------------------------------------------------------------------

def _check_bulk(params: Any, actor: Person | None, files) -> dict[str, Any]:
    """A bulk decision: `action` (qualify or approve) on `cases` (ids), with an optional `comment` and the
    `versions` the actor saw ({id: version}). Each case is decided on its own when the job runs."""
    params = _object(params)
    if actor is None:
        raise Forbidden(_l("a bulk decision is taken by a person"))
    action = params.get("action")
    if action not in BULK_ACTIONS:
        raise Invalid(_l("action must be one of %(actions)s", actions=", ".join(BULK_ACTIONS)), field="action")
    ids = params.get("cases")
    if not isinstance(ids, list) or not ids or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_ID for i in ids):
        raise Invalid(_l("cases must be a non-empty list of case ids"), field="cases")
    if len(ids) > MAX_CASES:
        raise Invalid(_l("at most %(max)s cases in one bulk decision", max=MAX_CASES), field="cases")
    if len(set(ids)) != len(ids):
        raise Invalid(_l("a case is named twice"), field="cases")
    comment = params.get("comment", "")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise Invalid(_l("comment must be text of at most %(max)s characters", max=MAX_COMMENT), field="comment")
    versions = params.get("versions", {})
    if not isinstance(versions, dict):
        raise Invalid(_l("versions must be an object {case id: version}"), field="versions")
    clean = {}
    for key, value in versions.items():
        if not str(key).isdigit() or int(key) not in ids:
            raise Invalid(_l("versions names case %(case)s, which is not among the cases", case=key), field="versions")
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(_l("each version must be an integer"), field="versions")
        clean[str(int(key))] = value
    return {"action": action, "cases": ids, "comment": comment.strip(), "versions": clean}


def _run_bulk(job: Job, chunks) -> dict[str, Any]:
    """Decide each case on its own, through `engine.fire` (the state, the actor's authority, the version
    they saw, the rules, the audit event), DECISION_CHUNK cases per transaction; a refused case is rolled
    back to its savepoint and reported with the reason, the others of the chunk go on."""
    p = job.params
    ids: list[int] = p["cases"]
    result = job.result or {"ok": 0, "refused": 0, "items": []}
    done = job.done
    while done < len(ids):
        chunks.begin()     # opens the chunk's transaction, so each case's savepoint nests inside it
        actor = _actor(job)
        part = ids[done:done + DECISION_CHUNK]
        cases = _load_locked(part)
        for case_id in part:
            item = _decide(cases.get(case_id), case_id, p["action"], actor, p["comment"],
                           p["versions"].get(str(case_id)))
            result["items"].append(item)
            result["ok" if item["ok"] else "refused"] += 1
        done += len(part)
        chunks.commit(done, len(ids), result)
    return result


def _load_locked(ids: list[int]) -> dict[int, Case]:
    """The chunk's cases in one query, row-locked on PostgreSQL (a decision racing ours waits, then finds
    the case moved on), as they are now; what `engine.fire` reads of each (its events, assignees, scores,
    panel, conflicts, the employee and their unit, the policy version) is loaded for the whole chunk in a
    few queries instead of a few per case."""
    q = select(Case).where(Case.id.in_(ids)).execution_options(populate_existing=True)
    if db.engine.dialect.name == "postgresql":
        q = q.with_for_update(of=Case)
    cases = {c.id: c for c in db.session.scalars(q)}
    if cases:
        db.session.scalars(select(Case).where(Case.id.in_(list(cases))).options(
            selectinload(Case.events), selectinload(Case.assignments).joinedload(CaseAssignee.unit),
            selectinload(Case.scores), selectinload(Case.panel), selectinload(Case.conflicts),
            selectinload(Case.employee).selectinload(Person.roles), selectinload(Case.policy_version))).all()
    return cases


def check_bulk(params: Any, actor: Person) -> dict[str, Any]:
    """A bulk decision's parameters, checked as the job checks them (Invalid or Forbidden otherwise)."""
    return _check_bulk(params, actor, {})


def decide_one(case_id: int, action: str, actor: Person, comment: str, version: int | None) -> dict[str, Any]:
    """One case of a bulk decision, decided at once exactly as the job decides each of its cases (row-locked
    on PostgreSQL, `engine.fire` in a savepoint); the caller commits, one transaction per case. Answers the
    item the job's result would list."""
    return _decide(_load_locked([case_id]).get(case_id), case_id, action, actor, comment, version)


def _decide(case: Case | None, case_id: int, action: str, actor: Person, comment: str,
            version: int | None) -> dict[str, Any]:
    if case is None or not authority.can_see(actor, case):
        return _refused(case_id, NotFound(_l("no case %(case)s", case=case_id)))
    savepoint = db.session.begin_nested()
    try:
        engine.fire(case, action, actor, {"comment": comment} if comment else {}, expected_version=version)
        savepoint.commit()
    except WorkflowError as exc:
        savepoint.rollback()
        return _refused(case_id, exc)
    except (StaleDataError, IntegrityError):
        savepoint.rollback()
        return _refused(case_id, Conflict(_l("another decision on this case came first; reload it")))
    return {"case": case_id, "ok": True, "state": case.state, "version": case.version}


def _refused(case_id: int, exc: WorkflowError) -> dict[str, Any]:
    """The refusal as stored: its reason in English, and the message itself (`message`), which the pages and
    the API show again in their reader's language (workflow/i18n.py)."""
    item = {"case": case_id, "ok": False, "status": exc.status, "code": exc.code, "reason": str(exc.message)}
    if isinstance(exc.message, i18n.Message):
        item["message"] = exc.message.stored()
    return item


_register("bulk_decision", _check_bulk, _run_bulk)


# --- the annual review -------------------------------------------------------------------------------

def _check_review(params: Any, actor: Person | None, files) -> dict[str, Any]:
    """The annual review of `unit` (a code) for `period` (a year), by HR at the unit or above (or the system,
    from the command line); `today` (ISO date) fixes the date the cases are opened on."""
    params = _object(params)
    code = params.get("unit")
    if not isinstance(code, str) or not code.strip():
        raise Invalid(_l("unit must be the code of an org unit"), field="unit")
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code.strip()))
    if unit is None:
        raise NotFound(_l("no unit '%(code)s'", code=code.strip()))
    if actor is not None:
        allowed = authority.can_run_review(actor, unit)
        if not allowed:
            raise Forbidden(allowed.reason)
    out = {"unit": unit.code, "period": str(review.parse_period(params.get("period")))}
    today = params.get("today")
    if today is not None:
        try:
            out["today"] = dt.date.fromisoformat(today).isoformat()
        except (TypeError, ValueError):
            raise Invalid(_l("today must be a date YYYY-MM-DD"), field="today") from None
    return out


def _run_review(job: Job, chunks) -> dict[str, Any]:
    """The assessment and the stored run in the first chunk (the outcomes are those a dry run shows), then
    the cases and tier moves REVIEW_CHUNK at a time, each chunk committed with the progress; the outcomes
    get their cases in the last chunk. A unit and period reviewed before open nothing (the stored run
    answers), so running it twice, or two jobs at once, opens nothing twice."""
    p = job.params
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == p["unit"]))
    if unit is None:
        raise NotFound(_l("no unit '%(code)s'", code=p["unit"]))
    actor = _actor(job)
    today = dt.date.fromisoformat(p["today"]) if p.get("today") else None
    state = job.result or {}
    if "review" not in state:
        chunks.begin()
        try:
            started = review.start_review(unit, p["period"], actor)
        except IntegrityError:       # another run of the unit and period stored first: it answers
            db.session.rollback()
            started = None
        if started is None or not started.created:
            stored = started.review if started is not None else review.stored_review(unit, p["period"])
            if stored is None:
                raise Conflict(_l("another change came first; try again"))
            return {"review": stored.id, "stored": True, "opened": 0, "moved": 0}
        state = {"review": started.review.id, "todo": review.actionable(started.outcomes), "cases": {}}
        chunks.commit(0, len(state["todo"]), state)
    rv = db.session.get(Review, state["review"])
    outcomes = [dict(o) for o in rv.outcomes]
    for i, case_id in state["cases"].items():
        outcomes[int(i)]["case"] = case_id
    todo, done = state["todo"], job.done
    while done < len(todo):
        chunks.begin()
        part = todo[done:done + REVIEW_CHUNK]
        review.apply_outcomes(rv, outcomes, part, _actor(job), today=today)
        state["cases"].update({str(i): outcomes[i]["case"] for i in part if outcomes[i].get("case")})
        done += len(part)
        if done == len(todo):
            review.store_outcomes(rv, outcomes)
        chunks.commit(done, len(todo), state)
    moved = sum(1 for i in todo if outcomes[i]["outcome"] in review.TIER_MOVES)
    return {"review": rv.id, "stored": False, "opened": len(state["cases"]), "moved": moved}


_register("annual_review", _check_review, _run_review)
