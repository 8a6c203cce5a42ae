"""Delegations (代理) and copies (抄送): my delegations (create, revoke), the cases copied to me; the same at
/api/v1/delegations and /api/v1/copies. 转办 and 抄送 on a case are its actions `hand_over` and `copy`
(web/cases.py, POST /api/v1/cases/ID/ACTION)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload

from workflow import clock, delegation, engine, reports
from workflow.errors import NotFound, WorkflowError
from workflow.models import db, Delegation

from .api import body, bp as api_bp, paginate
from .cases import error_message
from .forms import DelegationForm, RevokeDelegationForm
from .serialize import case_json

bp = Blueprint("delegation", __name__)
PER_PAGE = 25


@bp.before_request
@login_required
def _logged_in():
    return None


@bp.app_context_processor
def _helpers():
    return {"acting_on": delegation.acting_on}


def delegation_json(d: Delegation, today=None) -> dict[str, Any]:
    return {"id": d.id, "principal": d.principal.username, "delegate": d.delegate.username,
            "starts_on": d.starts_on.isoformat(), "ends_on": d.ends_on.isoformat(), "comment": d.comment,
            "status": d.status(today or clock.today()), "created_at": d.created_at.isoformat() + "Z",
            "revoked_at": d.revoked_at.isoformat() + "Z" if d.revoked_at else None,
            "revoked_by": d.revoked_by.username if d.revoked_by else None}


def _mine_query():
    return delegation.of_person(current_user).options(
        joinedload(Delegation.principal), joinedload(Delegation.delegate), joinedload(Delegation.revoked_by))


# --- pages ---------------------------------------------------------------------------------------------

@bp.route("/delegations", methods=["GET", "POST"])
def mine():
    """The delegations I gave and received; an approver or HR person names a colleague here."""
    may_delegate = any(ra.role in delegation.DELEGATING_ROLES for ra in current_user.roles)
    status, alert = 200, None
    if request.method == "POST":
        form = DelegationForm()
        if not form.validate():
            status = 400
        else:
            try:
                d = delegation.create(current_user, form.delegate.data, form.starts_on.data,
                                      form.ends_on.data, form.comment.data or "")
                db.session.commit()
                flash(_("%(name)s acts for you from %(start)s to %(end)s.", name=d.delegate.name,
                        start=d.starts_on.isoformat(), end=d.ends_on.isoformat()), "success")
                return redirect(url_for("delegation.mine"))
            except WorkflowError as exc:
                db.session.rollback()
                status, alert = exc.status, error_message(exc)
    else:
        form = DelegationForm(formdata=None, starts_on=clock.today(), ends_on=clock.today())
    page = db.paginate(_mine_query(), per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    return render_template("delegation/mine.html", page=page, form=form, may_delegate=may_delegate,
                           alert=alert, today=clock.today(), revoke_form=RevokeDelegationForm(formdata=None),
                           can_revoke=lambda d: delegation.can_revoke(current_user, d)), status


@bp.route("/delegations/<int:delegation_id>/revoke", methods=["POST"])
def revoke(delegation_id: int):
    try:
        d = delegation.get(delegation_id, current_user)
    except NotFound:
        abort(404)
    form = RevokeDelegationForm()
    if not form.validate():
        abort(400)
    try:
        delegation.revoke(d, current_user, form.comment.data or "")
        db.session.commit()
    except WorkflowError as exc:
        db.session.rollback()
        abort(exc.status, exc.message)
    flash(_("The delegation has been revoked."), "success")
    return redirect(url_for("delegation.mine"))


@bp.route("/copies")
def copies():
    """抄送我的: the cases copied to me, for information."""
    q = delegation.copied_to(current_user).options(*reports.case_row_options())
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    return render_template("delegation/copies.html", page=page, today=clock.today(),
                           overdue=lambda c: engine.is_overdue(c))


# --- /api/v1 -------------------------------------------------------------------------------------------

@api_bp.get("/delegations")
def api_list():
    return paginate(_mine_query(), delegation_json)


@api_bp.post("/delegations")
def api_create():
    data = body()
    d = delegation.create(current_user, data.get("delegate"), data.get("starts_on"), data.get("ends_on"),
                          data.get("comment", ""))
    db.session.commit()
    return jsonify(delegation_json(d)), 201


@api_bp.post("/delegations/<int:delegation_id>/revoke")
def api_revoke(delegation_id: int):
    data = body()
    d = delegation.get(delegation_id, current_user)
    delegation.revoke(d, current_user, data.get("comment", ""))
    db.session.commit()
    return jsonify(delegation_json(d))


@api_bp.get("/copies")
def api_copies():
    return paginate(delegation.copied_to(current_user).options(*reports.case_full_options()),
                    lambda c: case_json(c, current_user))
