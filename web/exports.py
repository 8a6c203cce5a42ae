"""Excel for HR: the exports page (the roster, grade changes for payroll, the import templates), the case
list as XLSX with the list page's filters, and the same workbooks from the JSON API:
`GET /api/v1/cases.xlsx`, `GET /api/v1/roster.xlsx`, `GET /api/v1/grade-changes` (JSON) and
`GET /api/v1/grade-changes.xlsx`, `GET /api/v1/import-templates/KIND.xlsx`. Also the import of scores
from their template (`/jobs/import/scores`, `POST /api/v1/imports/scores`), at once: a refused file shows
each bad row and changes nothing.

The workbooks are written by workflow/exporting.py (streamed, scoped to what the viewer may see); this
module gives them their words in the viewer's language (Chinese unless the user or the browser chose
English) and sends them.
"""
from __future__ import annotations

import datetime as dt
import io
from typing import IO

import os

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import force_locale, gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SubmitField
from sqlalchemy import select

from workflow import batch, clock, engine, exporting, importing
from workflow.errors import Forbidden, Invalid, NotFound, WorkflowError
from workflow.models import db, OrgUnit

from . import case_filters, uploads
from .api import bp as api_bp, page_args
from .jobs import bp as jobs_bp
from .views import KINDS, STATES, STATUSES, active_policy, education_label, grade_label, label, lang, level_label

bp = Blueprint("exports", __name__, url_prefix="/exports")

HEADERS = {
    "id": _l("Case"), "kind": _l("Kind"), "username": _l("Username"), "name": _l("Name"),
    "unit_code": _l("Unit code"), "unit_name": _l("Unit name"), "from_grade": _l("From grade"),
    "target_grade": _l("Target grade"), "state": _l("State"), "exceptional": _l("Exceptional"),
    "step_unit": _l("Unit acting now"), "deadline": _l("Deadline"), "effective_on": _l("Effective on"),
    "created_at": _l("Filed at (UTC)"), "level": _l("Level"), "tier": _l("Tier"), "grade": _l("Grade and tier"),
    "grade_since": _l("At this grade since"), "hired_on": _l("Hired on"), "education": _l("Education"),
    "status": _l("Status"), "to_grade": _l("New grade"),
    "from_allowance": _l("Level allowance before (monthly)"),
    "to_allowance": _l("Level allowance after (monthly)"), "allowance_change": _l("Allowance change"),
    "source": _l("Source"), "case": _l("Case"),
    "note.header": _l("Header"), "note.column": _l("Column id"), "note.required": _l("Required?"),
    "note.description": _l("What it holds"), "note.allowed": _l("Allowed values"), "note.example": _l("Example"),
}
SHEETS = {"cases": _l("Cases"), "roster": _l("Roster"), "grade_changes": _l("Grade changes"),
          "notes": _l("Notes"), "units": _l("Units"), "people": _l("People"), "scores": _l("Scores"),
          "absences": _l("Absences")}
SOURCES = {"case": _l("Case decision"), "import": _l("Import"), "admin": _l("Administrator"),
           "review": _l("Annual review")}
TEMPLATE_NAMES = {"units": _l("Org units"), "people": _l("People (with earlier grades)"),
                  "scores": _l("Scores"), "absences": _l("Absences")}

# What each import column holds, and an example: the notes sheet of the templates.
NOTES = {
    "units.code": (_l("The unit's code, unique; re-importing updates the unit with this code."), "B01"),
    "units.name": (_l("The unit's name."), "杭州分行"),
    "units.level": (_l("The unit's org level (an id below)."), "branch"),
    "units.parent_code": (_l("The code of the unit above it; empty for the root unit only."), "R01"),
    "people.username": (_l("The login name, unique, without spaces; re-importing updates this person."),
                        "liyang"),
    "people.name": (_l("The person's name."), "李扬"),
    "people.unit_code": (_l("The code of the person's unit (in the units file or already loaded)."), "T01"),
    "people.grade": (_l("LEVEL or LEVEL-TIER (ids below); empty for staff who are not account managers."),
                     "manager-3"),
    "people.grade_since": (_l("The date the person reached this grade, YYYY-MM-DD (required with a grade)."),
                           "2023-07-01"),
    "people.hired_on": (_l("The hire date, YYYY-MM-DD."), "2019-03-01"),
    "people.education": (_l("The highest education (an id below)."), "bachelor"),
    "people.status": (_l("active (default) or probation; a dismissal is never imported."), "active"),
    "people.roles": (_l("Roles as ROLE@UNIT_CODE, separated by ';'."), "approver@T01"),
    "people.password": (_l("An initial password (at least 6 characters), or empty."), ""),
    "people.email": (_l("The e-mail address notifications are sent to, or empty for none."),
                     "liyang@example.com"),
    "history.username": (_l("Sheet of earlier grades: the person (in the people sheet or already loaded, "
                            "with no grade history yet)."), "liyang"),
    "history.grade": (_l("A grade the person held before the current one; each person's rows in the order "
                         "held."), "manager-1"),
    "history.grade_since": (_l("The date the person reached that grade, YYYY-MM-DD; after the previous row's "
                               "and before the current grade's date."), "2020-07-01"),
    "scores.username": (_l("The person the score belongs to (already loaded)."), "liyang"),
    "scores.period": (_l("A year (2025), a quarter (2025-Q3) or a month (2025-07); format the cells as text "
                         "in Excel."), "2025-Q3"),
    "scores.kind": (_l("The kind of score (an id below)."), "performance"),
    "scores.value": (_l("A number in the kind's range, or pass/fail (通过/不通过) where the kind allows."),
                     "86.5"),
    "absences.username": (_l("The person absent (already loaded)."), "liyang"),
    "absences.start": (_l("The first day of the absence, YYYY-MM-DD."), "2025-03-01"),
    "absences.end": (_l("The last day of the absence, YYYY-MM-DD."), "2025-05-31"),
    "absences.reason": (_l("Why (an id below)."), "maternity"),
}


def _in_workbook_language(make):
    """`make()` in the workbook's language: the user's, but Chinese (HR's) where an API caller names none
    in Accept-Language (the API's messages default to English)."""
    if request.blueprint == "api" and not request.headers.get("Accept-Language"):
        with force_locale("zh_CN"):
            return make()
    return make()


def words() -> exporting.Words:
    """The workbook's words in the current user's language."""
    pol = active_policy()
    return exporting.Words(
        header=lambda c: label(HEADERS, c), state=lambda s: label(STATES, s), kind=lambda k: label(KINDS, k),
        grade=lambda g: grade_label(g, pol), level=lambda lv: level_label(lv, pol),
        status=lambda s: label(STATUSES, s), education=lambda e: education_label(e, pol),
        source=lambda s: label(SOURCES, s), yes_no=lambda b: _("Yes") if b else _("No"),
        sheet=lambda s: label(SHEETS, s), chinese=lang().startswith("zh"))


def send(workbook: IO[bytes], name: str):
    """The workbook as a download named `name-YYYY-MM-DD.xlsx` (today's date). The temporary file is read
    and closed here: the compressed workbook is small next to the sheet openpyxl would have held, and no
    file stays open on a response that its client never reads to the end."""
    with workbook:
        data = workbook.read()
    return send_file(io.BytesIO(data), mimetype=exporting.XLSX, as_attachment=True,
                     download_name=f"{name}-{clock.today().isoformat()}.xlsx", max_age=0)


def _unit(code: str | None) -> OrgUnit | None:
    """The unit a `unit` query parameter names (NotFound if there is none); None without one."""
    code = (code or "").strip()
    if not code:
        return None
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    if unit is None:
        raise NotFound(f"no unit '{code}'")
    return unit


def cases_workbook(args):
    """The case list with the list page's filters (web/case_filters.py: a bad one is a 400 naming it)."""
    filters = case_filters.parse(args, active_policy())
    sheet = exporting.case_sheet(current_user, words(), lambda q: case_filters.apply(q, filters))
    return send(exporting.write([sheet]), "cases")


def roster_workbook(args):
    sheet = exporting.roster_sheet(current_user, words(), _unit(args.get("unit")),
                                   include_dismissed=args.get("dismissed") in ("1", "true", "yes", "on"))
    return send(exporting.write([sheet]), "roster")


def _range(args) -> tuple[dt.date, dt.date]:
    return exporting.payroll_range(args.get("from"), args.get("to"))


def _payroll_only() -> None:
    if not may_export_payroll(current_user):
        raise Forbidden("grade changes for payroll are exported by HR and administrators")


def grade_changes_workbook(args):
    _payroll_only()
    start, end = _range(args)
    unit = _unit(args.get("unit"))
    sheet = exporting.grade_change_sheet(current_user, words(), engine.active_policy()[1], start, end, unit)
    return send(exporting.write([sheet]), f"grade-changes-{start.isoformat()}-{end.isoformat()}")


def template_workbook(kind: str):
    if kind not in exporting.TEMPLATES:
        raise NotFound(f"no import template '{kind}' (templates: {', '.join(exporting.TEMPLATES)})")
    notes = {key: (str(text), example) for key, (text, example) in NOTES.items()}
    return send(exporting.template(kind, engine.active_policy()[1], words(), notes), f"import-{kind}")


def may_export_roster(person) -> bool:
    return any(ra.role in exporting.ROSTER_ROLES for ra in person.roles)


def may_export_payroll(person) -> bool:
    return any(ra.role in exporting.PAYROLL_ROLES for ra in person.roles)


def may_get_templates(person) -> bool:
    return any(ra.role in ("hr", "admin") for ra in person.roles)


# --- the pages -----------------------------------------------------------------------------------------

@bp.before_request
@login_required
def _logged_in():
    return None


@bp.route("/")
def index():
    """The exports page: the roster, the payroll form and the import templates, as the user's roles allow."""
    if not (may_export_roster(current_user) or may_export_payroll(current_user)):
        abort(403)
    return render_exports()


def render_exports(error: str | None = None, detail: str | None = None, status: int = 200):
    today = clock.today()
    args = {"from": request.args.get("from") or today.replace(day=1).isoformat(),
            "to": request.args.get("to") or today.isoformat(), "unit": request.args.get("unit", "")}
    return render_template("exports/index.html", args=args, error=error, detail=detail,
                           TEMPLATE_NAMES=TEMPLATE_NAMES,
                           roster=may_export_roster(current_user), payroll=may_export_payroll(current_user),
                           templates=may_get_templates(current_user)), status


@bp.route("/cases.xlsx")
def cases_xlsx():
    """The case list (/cases/) as XLSX, with the same filters and the same scope."""
    return cases_workbook(request.args)


@bp.route("/roster.xlsx")
def roster_xlsx():
    return roster_workbook(request.args)


@bp.route("/grade-changes.xlsx")
def grade_changes_xlsx():
    if not may_export_payroll(current_user):
        abort(403)
    try:
        return grade_changes_workbook(request.args)
    except Invalid as exc:
        return render_exports(error=_("Give both dates as YYYY-MM-DD, the first not after the second and at "
                                      "most ten years apart."), detail=str(exc.message), status=400)


@bp.route("/templates/<kind>.xlsx")
def template_xlsx(kind: str):
    if not may_get_templates(current_user):
        abort(403)
    return template_workbook(kind)


# --- the JSON API ----------------------------------------------------------------------------------------

@api_bp.get("/cases.xlsx")
def api_cases_xlsx():
    """The cases the caller may see, filtered as `GET /cases` (kind, state, level, unit, direct, overdue),
    as XLSX."""
    return _in_workbook_language(lambda: cases_workbook(request.args))


@api_bp.get("/roster.xlsx")
def api_roster_xlsx():
    return _in_workbook_language(lambda: roster_workbook(request.args))


@api_bp.get("/grade-changes")
def api_grade_changes():
    """`?from=&to=&unit=`: the grade changes taking effect in the range, with the monthly level allowances,
    a page at a time."""
    _payroll_only()
    start, end = _range(request.args)
    query = exporting.grade_changes_query(current_user, start, end, _unit(request.args.get("unit")))
    page, per_page = page_args()
    total = db.session.scalar(select(db.func.count()).select_from(query.order_by(None).subquery()))
    rows = exporting.grade_changes(query.limit(per_page).offset((page - 1) * per_page),
                                   engine.active_policy()[1])
    return jsonify({"items": [c.to_json() for c in rows], "total": total, "page": page, "per_page": per_page})


@api_bp.get("/grade-changes.xlsx")
def api_grade_changes_xlsx():
    return _in_workbook_language(lambda: grade_changes_workbook(request.args))


@api_bp.get("/import-templates/<kind>.xlsx")
def api_template_xlsx(kind: str):
    if not may_get_templates(current_user):
        raise Forbidden("import templates are for HR and administrators")
    return _in_workbook_language(lambda: template_workbook(kind))


# --- importing scores ----------------------------------------------------------------------------------

class ScoresImportForm(FlaskForm):
    scores = FileField(_l("Scores file"), description=_l(
        "CSV (UTF-8) or XLSX with the columns username, period, kind, value (or 用户名, 考核期间, 考核类别, 得分, "
        "as in the template)"))
    submit = SubmitField(_l("Import the scores"))


class _Upload:
    """An uploaded file as the importer reads it: its name (for the problems) and its bytes."""

    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def read(self) -> bytes:
        return self._data


def _scores_importer() -> None:
    """Scores feed eligibility and rankings anywhere in the tree: administrators at the root unit import
    them, as they import people."""
    if not batch.is_root_admin(current_user):
        raise Forbidden("only an administrator at the root unit may import scores")


def import_scores_file(storage) -> importing.ImportResult:
    """Check and load an uploaded scores file in this request, all or nothing (ImportRefused naming each bad
    row, or Invalid for a file that is no CSV or XLSX); commits."""
    _, data = uploads.checked_upload(storage, "scores")
    name = os.path.basename(storage.filename.replace("\\", "/"))
    try:
        result = importing.import_scores(_Upload(name, data))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result


@jobs_bp.route("/import/scores", methods=["GET", "POST"])
def import_scores():
    """The import of scores (performance, skill tests ...) from a file like the scores template: loaded at
    once; a refused file's rows are listed with their line, column and reason, and nothing is changed."""
    if not batch.is_root_admin(current_user):
        abort(403)
    form, problems, total, status = ScoresImportForm(), None, 0, 200
    if form.validate_on_submit():
        try:
            result = import_scores_file(request.files.get("scores"))
        except importing.ImportRefused as exc:
            # each message as text in the page's language (text, so the page escapes what the file held)
            problems = [{**row, "message": str(row["message"])} for row in exc.details["rows"]]
            total, status = len(exc.problems), 422
        except WorkflowError as exc:
            flash(_("The file cannot be imported:") + " " + str(exc.message), "danger")
            status = exc.status
        else:
            flash(_("Scores imported: %(created)s new, %(updated)s updated.", created=result.scores_created,
                    updated=result.scores_updated), "success")
            return redirect(url_for("jobs.import_scores"))
    elif request.method == "POST":
        status = 400
    return render_template("exports/import_scores.html", form=form, problems=problems, total=total), status


@api_bp.post("/imports/scores")
def api_import_scores():
    """A multipart upload `scores` (CSV or XLSX): loaded at once, all or nothing: 200 with the counts, or
    422 whose `details.rows` lists each bad row (`{file, line, column, message}`)."""
    _scores_importer()
    result = import_scores_file(request.files.get("scores"))
    return jsonify({"created": result.scores_created, "updated": result.scores_updated})
