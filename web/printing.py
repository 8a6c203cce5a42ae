"""Printable forms (员工晋级申请表, 见习期工作表现评价表, 员工竞聘评价表) filled from a case, their PDF, and the
case's attachments: upload and download, from the pages and the API.

Whoever may see a case may print its forms and download its attachments; attaching is the engine's
`attach` action (workflow/attachments.py), so authority and the audit chain are the engine's.
"""
from __future__ import annotations

import mimetypes
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request, send_file,
                   url_for)
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from werkzeug.security import safe_join

from workflow import attachments, authority, clock, engine
from workflow.errors import Conflict, NotFound, WorkflowError
from workflow.machines import rulebook
from workflow.models import db, Case, Person

from . import serialize
from .unit_of_work import decide, load_visible_case
from .uploads import checked_attachment
from .views import EVALUATION_ITEMS

bp = Blueprint("printing", __name__)

# Each form, the case kinds it is printed for, and its title.
FORMS = {
    "application": (("promotion",), _l("Promotion application form")),
    "panel_evaluation": (("promotion",), _l("Panel evaluation form")),
    "trainee_evaluation": (("probation",), _l("Trainee performance evaluation form")),
}
# The decisions a form lists, with who took them and when.
FORM_ACTIONS = {
    "application": ("create", "resubmit", "qualify", "return", "reject", "approve", "not_select", "uphold",
                    "overturn", "appeal", "sustain", "reinstate", "withdraw", "make_effective", "end_publicity"),
    "panel_evaluation": ("assign_panel", "score", "score_for", "supervisor_score", "scoring_complete", "approve",
                         "not_select", "reject"),
    "trainee_evaluation": ("open_evaluation", "evaluate", "confirm", "extend", "fail"),
}


@bp.before_request
@login_required
def _logged_in():
    return None


def forms_for(case: Case) -> list[tuple[str, str]]:
    """The forms printable for the case: (id, title)."""
    return [(name, str(title)) for name, (kinds, title) in FORMS.items() if case.kind in kinds]


def _visible(case_id: int) -> Case:
    try:
        return load_visible_case(case_id, current_user)
    except NotFound:
        abort(404)


def _form_case(case_id: int, form: str) -> Case:
    case = _visible(case_id)
    if form not in FORMS or case.kind not in FORMS[form][0]:
        abort(404)
    return case


# --- PDF -----------------------------------------------------------------------------------------------

def weasyprint_module():
    """WeasyPrint, or None where it cannot be imported (its system libraries, Pango and friends, missing)."""
    try:
        import weasyprint
    except (ImportError, OSError):
        return None
    return weasyprint


def static_only_fetcher(weasyprint, static_folder: str, base_url: str):
    """A url_fetcher that serves the app's own static files (the print stylesheet) from disk and refuses
    every other URL: rendering a PDF never reaches the network."""
    base = urlsplit(base_url)
    prefix = current_app.static_url_path.rstrip("/") + "/"

    def serve(url: str) -> tuple[bytes, str]:
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(prefix):
            raise ValueError(f"not fetched (only the application's static files are): {url}")
        path = safe_join(static_folder, parts.path[len(prefix):])
        if path is None or not Path(path).is_file():
            raise ValueError(f"no static file {parts.path}")
        return Path(path).read_bytes(), mimetypes.guess_type(path)[0] or "application/octet-stream"

    if hasattr(weasyprint, "URLFetcher"):      # WeasyPrint 66 and later: a fetcher object
        from weasyprint.urls import URLFetcherResponse

        class StaticOnly(weasyprint.URLFetcher):
            def fetch(self, url, headers=None):
                data, mime = serve(url)
                return URLFetcherResponse(url, data, {"Content-Type": mime})
        return StaticOnly()

    def fetch(url, *args, **kwargs):            # earlier versions: a function returning a dict
        data, mime = serve(url)
        return {"string": data, "mime_type": mime, "redirected_url": url}
    return fetch


def render_pdf(html: str) -> bytes | None:
    weasyprint = weasyprint_module()
    if weasyprint is None:
        return None
    base = request.url_root
    fetcher = static_only_fetcher(weasyprint, current_app.static_folder, base)
    return weasyprint.HTML(string=html, base_url=base, url_fetcher=fetcher).write_pdf()


# --- what the forms show ---------------------------------------------------------------------------------

def _people_by_username(names) -> dict[str, Person]:
    names = {n for n in names if n}
    if not names:
        return {}
    return {p.username: p for p in db.session.scalars(db.select(Person).where(Person.username.in_(names)))}


def form_context(case: Case, form: str, pdf: bool) -> dict:
    viewer = current_user
    pol = engine.policy_for(case)
    events = [ev for ev in case.events if ev.action in FORM_ACTIONS[form]
              and serialize.objector_visible(viewer, case, ev)]
    people = _people_by_username([ev.actor for ev in events] + [ev.data.get("member") for ev in events]
                                 + [ev.data.get("entered_by") for ev in events])
    scores = serialize.scores_json(case, viewer)
    # Each panel member with their score (when the viewer may see it) and how it was given.
    entered = {ev.data.get("member"): ev for ev in case.events if ev.action == "score_for"}
    given = {s.scorer.username: s for s in case.scores if s.component == "panel"}
    panel = []
    for m in case.panel:
        row = next((r for r in scores["panel"] if r["scorer"] == m.person.username), None)
        panel.append({"person": m.person, "score": row["value"] if row else None,
                      "scored": m.person.username in given,
                      "at": given[m.person.username].at if m.person.username in given else None,
                      "paper": entered.get(m.person.username)})
    blank_rows = max(0, (pol.panel_min_size or 0) - len(panel))
    evaluation = next((ev for ev in reversed(case.events) if ev.action == "evaluate"), None)
    show_scores = authority.score_values_visible(viewer, case)
    return {
        "case": case, "pol": pol, "form": form, "title": str(FORMS[form][1]), "pdf": pdf,
        "events": events, "people": people, "scores": scores, "panel": panel, "blank_rows": blank_rows,
        "composite_visible": authority.composite_visible(viewer, case), "show_scores": show_scores,
        "evaluation": evaluation, "evaluation_items": EVALUATION_ITEMS, "weights": pol.weights,
        "printed_on": clock.today(), "root_unit": case.employee.unit.ancestors()[-1],
        "pdf_available": weasyprint_module() is not None,
        "attachments": attachments.of_case(case),
    }


@bp.route("/cases/<int:case_id>/forms/<form>")
def print_form(case_id: int, form: str):
    case = _form_case(case_id, form)
    return render_template(f"print/{form}.html", **form_context(case, form, pdf=False))


@bp.route("/cases/<int:case_id>/forms/<form>.pdf")
def print_pdf(case_id: int, form: str):
    case = _form_case(case_id, form)
    html = render_template(f"print/{form}.html", **form_context(case, form, pdf=True))
    pdf = render_pdf(html)
    if pdf is None:
        flash(_("PDF is not available on this server (the WeasyPrint libraries are missing); print this page "
                "from the browser instead."), "warning")
        return redirect(url_for("printing.print_form", case_id=case.id, form=form))
    return send_file(BytesIO(pdf), mimetype="application/pdf", download_name=f"case-{case.id}-{form}.pdf")


# --- attachments ----------------------------------------------------------------------------------------

def may_attach(case: Case, actor: Person) -> None:
    """The engine's checks of `attach`, before a byte is stored: the kind has it (404), the state allows it
    (409), the actor may (403)."""
    rb = rulebook(case.kind)
    if "attach" not in rb.actors:
        raise NotFound(f"files are not attached to a {case.kind} case")
    if not rb.can_fire(case.state, "attach"):
        raise Conflict(f"the case is {case.state}; nothing more can be attached", state=case.state)
    authority.require(actor, case, "attach", rb)


def attach_upload(case: Case, storage, actor: Person):
    """Check the upload, store its bytes under their checksum and fire `attach` (committed). Returns the
    attachment row."""
    may_attach(case, actor)
    name, content_type, data = checked_attachment(storage, current_app.config["ATTACHMENT_MAX_BYTES"])
    stored = attachments.store(current_app.config["ATTACHMENT_DIR"], name, content_type, data)
    case = decide(case.id, "attach", actor, {"file": stored})
    return attachments.latest(case, actor, stored.sha256)


def attach_in_transaction(case: Case, storage, actor: Person):
    """As attach_upload, inside the caller's transaction (the application form files the case and attaches
    in one commit)."""
    may_attach(case, actor)
    name, content_type, data = checked_attachment(storage, current_app.config["ATTACHMENT_MAX_BYTES"])
    stored = attachments.store(current_app.config["ATTACHMENT_DIR"], name, content_type, data)
    engine.fire(case, "attach", actor, {"file": stored})


def attachment_response(case: Case, attachment_id: int):
    att = attachments.find(case, attachment_id)
    data = attachments.read_verified(current_app.config["ATTACHMENT_DIR"], att)
    resp = send_file(BytesIO(data), mimetype=att.content_type, as_attachment=True, download_name=att.filename)
    resp.headers["X-Content-SHA256"] = att.sha256
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.route("/cases/<int:case_id>/attachments", methods=["POST"])
def upload(case_id: int):
    case = _visible(case_id)
    try:
        may_attach(case, current_user)
    except NotFound:
        abort(404)
    except Conflict as exc:
        abort(409, exc.message)
    except WorkflowError as exc:
        abort(exc.status, exc.message)
    try:
        att = attach_upload(case, request.files.get("file"), current_user)
    except Conflict:
        flash(_("The case has changed since you loaded it; reload the page and attach the file again."), "danger")
        return redirect(url_for("cases.detail", case_id=case.id)), 303
    except WorkflowError as exc:
        db.session.rollback()
        from .cases import render_detail
        return render_detail(_visible(case_id), alert=_("The file was not attached: %(reason)s",
                                                          reason=exc.message), status=exc.status)
    flash(_("Attached: %(name)s.", name=att.filename), "success")
    return redirect(url_for("cases.detail", case_id=case.id, _anchor="attachments"))


@bp.route("/cases/<int:case_id>/attachments/<int:attachment_id>")
def download(case_id: int, attachment_id: int):
    case = _visible(case_id)
    try:
        return attachment_response(case, attachment_id)
    except NotFound:
        abort(404)
    except WorkflowError as exc:
        abort(exc.status, exc.message)


# --- what the case page shows (templates/print/_case_card.html) ------------------------------------------

@bp.app_template_global()
def printable_forms(case: Case) -> list[tuple[str, str]]:
    return forms_for(case)


@bp.app_template_global()
def case_attachments(case: Case):
    return attachments.of_case(case)


@bp.app_template_global()
def attach_allowed(case: Case) -> bool:
    try:
        may_attach(case, current_user)
    except WorkflowError:
        return False
    return True
