"""Pages that open the rest of the lifecycle: a demotion or dismissal case (HR; the direct supervisor for
misconduct) and a probation (HR). The engine decides who may; these pages offer the people in the
opener's subtree and show its refusals next to the field they concern."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from workflow import engine
from workflow.errors import Forbidden, WorkflowError
from workflow.models import db, Case, OrgUnit, Person

from .forms import OpenCaseForm, OpenProbationForm
from .views import CASE_REASONS, KINDS, grade_label

bp = Blueprint("lifecycle", __name__, url_prefix="/lifecycle")
OPENER_ROLES = ("hr", "supervisor")


@bp.before_request
@login_required
def _logged_in():
    return None


def _people_under(roles: tuple[str, ...], **where) -> list[Person]:
    """People (not the caller, not dismissed) in the subtree of the units where the caller holds one of
    `roles`; the engine decides what may be opened for each."""
    units = [ra.unit for ra in current_user.roles if ra.role in roles]
    if not units:
        return []
    q = (select(Person).join(OrgUnit, Person.unit_id == OrgUnit.id)
         .where(db.or_(*[OrgUnit.path.startswith(u.path) for u in units]), Person.id != current_user.id,
                Person.status != "dismissed")
         .order_by(OrgUnit.path, Person.username))
    for column, value in where.items():
        q = q.where(getattr(Person, column) == value)
    return list(db.session.scalars(q))


def _person_choice(p: Person) -> tuple[str, str]:
    grade = grade_label(p.grade) if p.grade else _("no grade")
    return p.username, f"{p.name} ({p.username}) · {p.unit.name} · {grade}"


def _show_refusal(form, exc: WorkflowError) -> Markup | None:
    """The engine's refusal next to the field it names, else as the page's alert."""
    if isinstance(exc, Forbidden):
        lead = _("You may not do this:")
    elif exc.details.get("field") == "comment":
        lead = _("Please state the facts.")
    else:
        lead = _("Refused:")
    message = Markup('{} <span class="engine-reason">{}</span>').format(lead, exc.message)
    field = exc.details.get("field")
    if field and field in form._fields and not isinstance(exc, Forbidden):
        form[field].errors = list(form[field].errors or []) + [message]
        return None
    return message


@bp.route("/open", methods=["GET", "POST"])
def open_case():
    """降级 or 辞退 for an employee of the opener's subtree."""
    if not any(ra.role in OPENER_ROLES for ra in current_user.roles):
        abort(403, _("Only HR, or the direct supervisor for misconduct, may open these cases."))
    hr = any(ra.role == "hr" for ra in current_user.roles)
    people = _people_under(OPENER_ROLES)
    form = OpenCaseForm(formdata=request.form if request.method == "POST" else None,
                        kind=request.args.get("kind", "demotion"), employee=request.args.get("employee"))
    form.employee.choices = [("", "—")] + [_person_choice(p) for p in people]
    # HR may open on every ground; a supervisor without HR only for misconduct (the engine checks both).
    form.reason.choices = {str(KINDS[kind]): [(r, CASE_REASONS[r]) for r in reasons
                                              if hr or r == "misconduct"]
                           for kind, reasons in engine.REASONS.items()}
    alert, status = None, 200
    if request.method == "POST":
        status = 400
        if form.validate():
            employee = db.session.scalar(select(Person).where(Person.username == form.employee.data))
            try:
                case = engine.open_case(form.kind.data, current_user, employee, reason=form.reason.data,
                                        severity=form.severity.data or None, comment=form.comment.data or "")
                db.session.commit()
            except WorkflowError as exc:
                db.session.rollback()
                status, alert = exc.status, _show_refusal(form, exc)
            else:
                flash(_("Case %(id)s has been opened.", id=case.id), "success")
                return redirect(url_for("cases.detail", case_id=case.id))
    return render_template("lifecycle/open.html", form=form, alert=alert, hr=hr), status


@bp.route("/probation", methods=["GET", "POST"])
def open_probation():
    """见习期 for a person whose status is probation and who has no probation running."""
    if not any(ra.role == "hr" for ra in current_user.roles):
        abort(403, _("Only HR may start a probation."))
    running = set(db.session.scalars(select(Case.employee_id).where(Case.kind == "probation",
                                                                    Case.closed.is_(False))))
    people = [p for p in _people_under(("hr",), status="probation") if p.id not in running]
    form = OpenProbationForm(formdata=request.form if request.method == "POST" else None,
                             employee=request.args.get("employee"))
    form.employee.choices = [("", "—")] + [(p.username, f"{p.name} ({p.username}) · {p.unit.name}")
                                           for p in people]
    alert, status = None, 200
    if request.method == "POST":
        status = 400
        if form.validate():
            employee = db.session.scalar(select(Person).where(Person.username == form.employee.data))
            try:
                case = engine.open_probation(employee, current_user)
                db.session.commit()
            except WorkflowError as exc:
                db.session.rollback()
                status, alert = exc.status, _show_refusal(form, exc)
            else:
                flash(_("Case %(id)s has been opened.", id=case.id), "success")
                return redirect(url_for("cases.detail", case_id=case.id))
    return render_template("lifecycle/probation.html", form=form, alert=alert, people=people), status
