"""Jobs on the web: the list and a job's page (its progress polled from the API by static/js/jobs.js),
the import page (administrators at the root unit upload a people file, a job loads it), the bulk
decision page (an approver or HR ticks cases of their inbox; a job decides each through the engine), and
the JSON API: `GET /api/v1/jobs`, `GET /api/v1/jobs/ID`, `POST /api/v1/jobs/bulk-decisions`,
`POST /api/v1/jobs/reviews`, `POST /api/v1/jobs/imports`, `POST /api/v1/jobs/ID/retry`. Starting a job
answers 202 with the job; where the application runs its own jobs (development, the demo: docs/batch.md)
it wakes its runner thread after the commit."""
from __future__ import annotations

import os
from typing import Any, Callable

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select, true
from werkzeug.datastructures import FileStorage
from wtforms import SelectField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from workflow import batch, engine, i18n, importing, jobs, reports
from workflow.errors import Forbidden, Invalid, NotFound, WorkflowError
from workflow.models import db, Case, Person
from workflow.models.jobs import Job

from . import uploads
from .api import bp as api_bp, body, paginate, unit_in_body

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
PER_PAGE = 25
BULK_PAGE_MAX = 500            # cases offered on the bulk decision page
BULK_AT_ONCE = 20              # cases a bulk decision from the inbox or the API decides within the request

KINDS = {"import_people": _l("Import of people"), "bulk_decision": _l("Bulk decision"),
         "annual_review": _l("Annual review")}
STATUSES = {"queued": _l("Queued"), "running": _l("Running"), "done": _l("Done"), "failed": _l("Failed")}
STATUS_COLOURS = {"queued": "secondary", "running": "primary", "done": "success", "failed": "danger"}
BULK_ACTIONS = {"qualify": _l("Qualify"), "approve": _l("Approve")}


# --- what every entry point shares -------------------------------------------------------------------

def runs_jobs_itself(app) -> bool:
    """Whether this application runs queued jobs in a thread of its own: GRADEFLOW_RUN_JOBS (1/0) says so;
    by default only the embedded development set-up does (SQLite under instance/, no DATABASE_URL)."""
    value = app.config.get("GRADEFLOW_RUN_JOBS", os.environ.get("GRADEFLOW_RUN_JOBS"))
    if value is None or value == "":
        return (not app.testing and not os.environ.get("DATABASE_URL")
                and app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:"))
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _queued(queue: Callable[[], Job]) -> Job:
    """Queue a job by `queue()` and commit; wake the application's runner where it runs its own jobs."""
    try:
        job = queue()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if runs_jobs_itself(current_app):
        jobs.kick(current_app._get_current_object())
    return job


def start(kind: str, params: Any, actor: Person, files: dict[str, tuple[str, bytes]] | None = None) -> Job:
    """Enqueue a job and commit; wake the application's runner where it runs its own jobs."""
    return _queued(lambda: jobs.enqueue(kind, params, actor, files=files))


def visible_filter(person: Person):
    return true() if batch.is_root_admin(person) else Job.created_by_id == person.id


def load_visible_job(job_id: int, viewer: Person) -> Job:
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is None or not batch.can_see_job(viewer, job):
        raise NotFound(f"no job {job_id}")
    return job


def shown_reason(item: dict[str, Any]) -> str:
    """A refused case's reason in the reader's language (the stored message), else as stored."""
    message = i18n.from_stored(item.get("message"))
    return str(message) if message is not None else str(item.get("reason", ""))


def _shown_result(result: Any) -> Any:
    """A job's result with each refused case's reason, and a refused import's problems, in the reader's
    language."""
    if not isinstance(result, dict):
        return result
    if isinstance(result.get("items"), list):
        items = [{**i, "reason": shown_reason(i)} if isinstance(i, dict) and "reason" in i else i
                 for i in result["items"]]
        result = {**result, "items": items}
    if isinstance(result.get("details"), dict):
        result = {**result, "details": importing.shown_details(result["details"])}
    return result


def shown_error(job: Job) -> tuple[str | None, bool]:
    """Why the job failed, and whether that is in the reader's language (a refused import's message, kept
    with its problems); else the error as stored."""
    details = (job.result or {}).get("details") if isinstance(job.result, dict) else None
    message = i18n.from_stored(details.get("message")) if isinstance(details, dict) else None
    return (str(message), True) if message is not None and job.error else (job.error, False)


def bulk_decide(params: Any, actor: Person) -> tuple[list[dict[str, Any]] | None, Job | None]:
    """A bulk decision (`{action, cases, comment?, versions?}`, checked as the job checks it): up to
    BULK_AT_ONCE cases are decided now, each in its own transaction through the job's own per-case function
    (`engine.fire` with the version the caller saw: a case changed meanwhile is refused, not overwritten),
    answering their items; more go to a job, answered instead."""
    params = batch.check_bulk(params, actor)
    if len(params["cases"]) > BULK_AT_ONCE:
        return None, start("bulk_decision", params, actor)
    items = []
    for case_id in params["cases"]:
        try:
            item = batch.decide_one(case_id, params["action"], actor, params["comment"],
                                    params["versions"].get(str(case_id)))
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        items.append(item)
    return items, None


def job_json(job: Job) -> dict[str, Any]:
    iso = (lambda t: t.isoformat() + "Z" if t else None)
    return {"id": job.id, "kind": job.kind, "status": job.status, "done": job.done, "total": job.total,
            "percent": job.percent, "params": job.params, "result": _shown_result(job.result),
            "error": shown_error(job)[0],
            "created_by": job.created_by.username if job.created_by else "system",
            "created_at": iso(job.created_at), "started_at": iso(job.started_at),
            "finished_at": iso(job.finished_at), "attempts": job.attempts,
            "files": [{"purpose": f.purpose, "name": f.name, "size": f.size} for f in job.files]}


def upload(storage: FileStorage | None, field: str, required: bool) -> tuple[str, bytes] | None:
    """An uploaded CSV or XLSX file as (name, bytes), checked by web/uploads.py; its rows are checked by the
    job."""
    if not required and (storage is None or not storage.filename):
        return None
    _, data = uploads.checked_upload(storage, field)
    return os.path.basename(storage.filename.replace("\\", "/")), data


def import_files(people: FileStorage | None, units: FileStorage | None,
                 history: FileStorage | None = None) -> dict[str, tuple[str, bytes]]:
    """The uploaded files of an import: people, and units or earlier grades (职级履历) or not."""
    others = [f for f in (units, history) if f is not None and f.filename]
    files = {"people": upload(people, "people", required=not others)}
    if (u := upload(units, "units", required=False)) is not None:
        files["units"] = u
    if (h := upload(history, "history", required=False)) is not None:
        files["history"] = h
    return {k: v for k, v in files.items() if v is not None}


# --- the JSON API ------------------------------------------------------------------------------------

@api_bp.get("/jobs")
def api_list_jobs():
    q = select(Job).where(visible_filter(current_user)).order_by(Job.id.desc())
    if request.args.get("status"):
        q = q.where(Job.status == request.args["status"])
    if request.args.get("kind"):
        q = q.where(Job.kind == request.args["kind"])
    return paginate(q, job_json)


@api_bp.get("/jobs/<int:job_id>")
def api_get_job(job_id: int):
    return jsonify(job_json(load_visible_job(job_id, current_user)))


def _accepted(job: Job):
    resp = jsonify(job_json(job))
    resp.status_code = 202
    resp.headers["Location"] = url_for("api.api_get_job", job_id=job.id)
    return resp


@api_bp.post("/jobs/bulk-decisions")
def api_bulk_decision():
    """`{action: qualify|approve, cases: [ids], comment?, versions?: {id: version}}`: 202 with the job; its
    result lists each case, ok with its new state or refused with the status and reason one request for
    that case alone would have had."""
    return _accepted(start("bulk_decision", body(), current_user))


@api_bp.post("/cases/bulk")
def api_cases_bulk():
    """`{action: qualify|approve, cases: [ids], comment?, versions?: {id: version}}`: up to BULK_AT_ONCE cases
    decided now, each in its own transaction: 200 with `{action, ok, refused, items}` (each item ok with its
    new state and version, or refused with the status, code and reason one request for that case alone
    would have had); more cases: 202 with the job that decides them, as `POST /jobs/bulk-decisions`."""
    data = body()
    items, job = bulk_decide(data, current_user)
    if job is not None:
        return _accepted(job)
    done = sum(1 for i in items if i["ok"])
    return jsonify({"action": data["action"], "ok": done, "refused": len(items) - done,
                    "items": [{k: v for k, v in i.items() if k != "message"} for i in items]})


@api_bp.post("/jobs/reviews")
def api_review():
    """`{unit, period}`: the annual review's real run as a job (HR at the unit or above): 202 with the job,
    whose result names the stored review; for a whole bank, where `POST /reviews` would hold one request
    and one transaction for every case it opens."""
    data = body()
    unit_in_body(data)     # a unit out of the caller's sight is 404, as for `POST /reviews`
    return _accepted(start("annual_review", {"unit": data.get("unit"), "period": data.get("period")},
                           current_user))


@api_bp.post("/jobs/imports")
def api_import():
    """A multipart upload: `people` (and `units`, and `history`, or not), CSV or XLSX: 202 with the job."""
    if not batch.is_root_admin(current_user):     # who may comes before what was sent (CONTRACT.md's order)
        raise Forbidden("only an administrator at the root unit may import people")
    files = import_files(request.files.get("people"), request.files.get("units"), request.files.get("history"))
    return _accepted(start("import_people", {}, current_user, files))


@api_bp.post("/jobs/<int:job_id>/retry")
def api_retry(job_id: int):
    """A failed job queued again, to resume where it stopped: 202 with the job; 409 unless it failed."""
    job = load_visible_job(job_id, current_user)
    return _accepted(_retry(job))


def _retry(job: Job) -> Job:
    def queue() -> Job:
        jobs.retry(job)
        return job
    return _queued(queue)


# --- the pages ---------------------------------------------------------------------------------------

class ImportForm(FlaskForm):
    people = FileField(_l("People file"), description=_l(
        "CSV (UTF-8) or XLSX with the columns username, name, unit_code, grade, grade_since, hired_on, "
        "education, status, roles, password (or their Chinese headers, as in the template); an XLSX file "
        "may carry the earlier grades on a second sheet named 职级履历"))
    units = FileField(_l("Units file (optional)"), description=_l("code,name,level,parent_code"))
    history = FileField(_l("Earlier grades (optional)"), description=_l(
        "username,grade,grade_since: the grades held before the current one, each person's in order, for "
        "staff loaded for the first time"))
    submit = SubmitField(_l("Import"))


class RetryForm(FlaskForm):
    submit = SubmitField(_l("Retry"))


class BulkForm(FlaskForm):
    action = SelectField(_l("Decision"), choices=[SelectChoice(a, text) for a, text in BULK_ACTIONS.items()],
                         validators=[DataRequired()])
    comment = TextAreaField(_l("Comment"), validators=[Length(max=batch.MAX_COMMENT)])
    submit = SubmitField(_l("Decide the cases ticked"))


@bp.before_request
@login_required
def _logged_in():
    return None


@bp.app_template_filter("job_kind")
def _job_kind(kind: str) -> str:
    return str(KINDS.get(kind, kind))


@bp.app_template_filter("job_status")
def _job_status(status: str) -> str:
    return str(STATUSES.get(status, status))


@bp.app_template_filter("refusal")
def _refusal(item: dict[str, Any]) -> str:
    return shown_reason(item)


@bp.app_template_filter("job_status_colour")
def _job_status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, "secondary")


@bp.route("/")
def index():
    page = db.paginate(select(Job).where(visible_filter(current_user)).order_by(Job.id.desc()),
                       per_page=PER_PAGE, error_out=False)
    return render_template("jobs/index.html", page=page, can_import=batch.is_root_admin(current_user))


@bp.route("/<int:job_id>")
def detail(job_id: int):
    try:
        job = load_visible_job(job_id, current_user)
    except NotFound:
        abort(404)
    retry_form = RetryForm() if job.status == "failed" else None
    error, translated = shown_error(job)
    return render_template("jobs/detail.html", job=job, retry_form=retry_form,
                           result=_shown_result(job.result), error=error, error_translated=translated)


@bp.route("/<int:job_id>/retry", methods=["POST"])
def retry(job_id: int):
    form = RetryForm()
    try:
        job = load_visible_job(job_id, current_user)
    except NotFound:
        abort(404)
    if not form.validate_on_submit():
        abort(400)
    try:
        _retry(job)
    except WorkflowError as exc:
        flash(str(exc.message), "danger")
    else:
        flash(_("The job is queued again; it goes on where it stopped."), "success")
    return redirect(url_for("jobs.detail", job_id=job_id))


@bp.route("/import", methods=["GET", "POST"])
def import_people():
    if not batch.is_root_admin(current_user):
        abort(403)
    form = ImportForm()
    if form.validate_on_submit():
        try:
            job = start("import_people", {}, current_user,
                        import_files(request.files.get("people"), request.files.get("units"),
                                     request.files.get("history")))
        except WorkflowError as exc:
            flash(str(exc.message), "danger")
            return render_template("jobs/import.html", form=form), 400
        flash(_("The import has started: job %(id)s.", id=job.id), "success")
        return redirect(url_for("jobs.detail", job_id=job.id))
    return render_template("jobs/import.html", form=form), 400 if form.errors else 200


def _bulk_cases() -> tuple[list[Case], dict[int, list[str]]]:
    """The cases of the user's inbox on which a bulk action is available to them now, with those actions."""
    cases = db.session.scalars(reports.inbox_query(current_user).limit(BULK_PAGE_MAX)).all()
    actions = {}
    for case in cases:
        available = [a for a in engine.available_actions(case, current_user) if a in BULK_ACTIONS]
        if available:
            actions[case.id] = available
    return [c for c in cases if c.id in actions], actions


@bp.route("/bulk", methods=["GET", "POST"])
def bulk():
    form = BulkForm()
    if form.validate_on_submit():
        ids = request.form.getlist("case")
        versions = {i: request.form.get(f"version-{i}", "") for i in ids}
        try:
            if not ids or not all(i.isdigit() for i in ids):
                raise Invalid(_("Tick at least one case."), field="cases")
            params = {"action": form.action.data, "cases": [int(i) for i in ids],
                      "comment": form.comment.data or "",
                      "versions": {i: int(v) for i, v in versions.items() if v.isdigit()}}
            job = start("bulk_decision", params, current_user)
        except WorkflowError as exc:
            flash(str(exc.message), "danger")
        else:
            flash(_("The decisions have started: job %(id)s.", id=job.id), "success")
            return redirect(url_for("jobs.detail", job_id=job.id))
    cases, actions = _bulk_cases()
    status = 400 if request.method == "POST" else 200
    return render_template("jobs/bulk.html", form=form, cases=cases, actions=actions,
                           BULK_ACTIONS=BULK_ACTIONS), status
