"""/api/v1: a case's attachments (multipart upload, checked download) and its printable forms as PDF."""
from __future__ import annotations

from io import BytesIO

from flask import jsonify, render_template, request, send_file
from flask_login import current_user

from workflow.errors import NotFound

from . import printing
from .api import bp, error
from .serialize import attachment_json
from .unit_of_work import load_visible_case


@bp.post("/cases/<int:case_id>/attachments")
def attach(case_id: int):
    case = load_visible_case(case_id, current_user)
    printing.may_attach(case, current_user)
    if not request.mimetype == "multipart/form-data":
        return error(415, "unsupported_media_type", "send the file as multipart/form-data in the field 'file'")
    att = printing.attach_upload(case, request.files.get("file"), current_user)
    return jsonify(attachment_json(att)), 201


@bp.get("/cases/<int:case_id>/attachments/<int:attachment_id>")
def attachment(case_id: int, attachment_id: int):
    return printing.attachment_response(load_visible_case(case_id, current_user), attachment_id)


@bp.get("/cases/<int:case_id>/forms/<form>.pdf")
def form_pdf(case_id: int, form: str):
    case = load_visible_case(case_id, current_user)
    if form not in printing.FORMS or case.kind not in printing.FORMS[form][0]:
        raise NotFound(f"no form '{form}' for a {case.kind} case (forms: "
                       f"{', '.join(n for n, _t in printing.forms_for(case)) or 'none'})")
    html = render_template(f"print/{form}.html", **printing.form_context(case, form, pdf=True))
    pdf = printing.render_pdf(html)
    if pdf is None:
        return error(503, "pdf_unavailable", "PDF is not available on this server (WeasyPrint cannot be "
                                             "imported: its system libraries are missing)")
    return send_file(BytesIO(pdf), mimetype="application/pdf", download_name=f"case-{case.id}-{form}.pdf")

