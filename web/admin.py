"""Administration: the org tree, people, password resets and the active policy."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import or_, select
from sqlalchemy.orm import contains_eager, selectinload

from workflow import authority, directory, engine
from workflow.errors import WorkflowError
from workflow.models import db, Case, Event, GradeHistory, OrgUnit, Person, RoleAssignment
from workflow.models.org import ROLES
from workflow.models.people import STATUSES

from .forms import PasswordResetForm, PeopleSearchForm, RolesForm
from .views import ROLES as ROLE_LABELS, STATUSES as STATUS_LABELS, label, unit_label

bp = Blueprint("admin", __name__, url_prefix="/admin")
PER_PAGE = 50


@bp.before_request
@login_required
def _admins_only():
    if not authority.is_admin(current_user):
        abort(403)


def _admin_units() -> list[OrgUnit]:
    return [ra.unit for ra in current_user.roles if ra.role == "admin"]


def _in_scope():
    """People in the subtrees where the current user is an administrator."""
    return or_(*[OrgUnit.path.startswith(u.path) for u in _admin_units()])


@bp.route("/")
def org():
    roots = _admin_units()
    roots = [u for u in roots if not any(o is not u and o.contains(u) for o in roots)]
    units = db.session.scalars(select(OrgUnit).where(_in_scope())).all()
    holders: dict[int, list[RoleAssignment]] = {}
    for ra in db.session.scalars(select(RoleAssignment).where(RoleAssignment.unit_id.in_([u.id for u in units]))
                                 .order_by(RoleAssignment.role)):
        holders.setdefault(ra.unit_id, []).append(ra)
    headcount = dict(db.session.execute(select(Person.unit_id, db.func.count()).group_by(Person.unit_id)).all())
    return render_template("admin/org.html", roots=sorted(roots, key=lambda u: u.code), holders=holders,
                           headcount=headcount)


@bp.route("/people")
def people():
    form = PeopleSearchForm(formdata=request.args)
    form.status.choices = [("", _("Any status"))] + [(s, label(STATUS_LABELS, s)) for s in STATUSES]
    form.role.choices = [("", _("Any role"))] + [(r, label(ROLE_LABELS, r)) for r in ROLES]
    q = (select(Person).join(OrgUnit, Person.unit_id == OrgUnit.id).where(_in_scope())
         .order_by(OrgUnit.path, Person.username))
    term = (form.q.data or "").strip()
    if term:
        like = f"%{term}%"
        q = q.where(or_(Person.username.ilike(like), Person.name.ilike(like), OrgUnit.code.ilike(like),
                        OrgUnit.name.ilike(like), Person.level.ilike(like)))
    if form.status.data:
        q = q.where(Person.status == form.status.data)
    if form.role.data:
        q = q.where(Person.id.in_(select(RoleAssignment.person_id).where(RoleAssignment.role == form.role.data)))
    q = q.options(contains_eager(Person.unit), selectinload(Person.roles).joinedload(RoleAssignment.unit))
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    return render_template("admin/people.html", form=form, page=page, term=term,
                           filters={"q": term, "status": form.status.data or "", "role": form.role.data or ""})


def _person_or_404(username: str) -> Person:
    person = db.session.scalar(select(Person).where(Person.username == username))
    if person is None or not authority.is_admin(current_user, person.unit):
        abort(404)
    return person


def _roles_form(person: Person, formdata=None) -> RolesForm:
    form = RolesForm(formdata=formdata, keep=person.role_strings())
    form.keep.choices = [(str(ra), f"{label(ROLE_LABELS, ra.role)} @ {ra.unit.code}") for ra in person.roles]
    form.add_role.choices = [("", "—")] + [(r, label(ROLE_LABELS, r)) for r in ROLES]
    units = db.session.scalars(select(OrgUnit).where(_in_scope()).order_by(OrgUnit.path)).all()
    form.add_unit.choices = [("", "—")] + [(u.code, unit_label(u)) for u in units]
    return form


def _render_person(person: Person, password_form=None, roles_form=None, status: int = 200):
    history = db.session.scalars(select(GradeHistory).where(GradeHistory.person_id == person.id)
                                 .order_by(GradeHistory.effective_on.desc(), GradeHistory.id.desc())).all()
    cases = db.session.scalars(select(Case).where(Case.employee_id == person.id).order_by(Case.id.desc())).all()
    events = db.session.scalars(select(Event).where(Event.person_id == person.id, Event.case_id.is_(None))
                                .order_by(Event.seq.desc())).all()
    return render_template("admin/person.html", person=person, history=history, cases=cases, events=events,
                           password_form=password_form or PasswordResetForm(formdata=None),
                           roles_form=roles_form or _roles_form(person)), status


@bp.route("/people/<username>")
def person(username: str):
    return _render_person(_person_or_404(username))


@bp.route("/people/<username>/password", methods=["POST"])
def reset_password(username: str):
    person = _person_or_404(username)
    form = PasswordResetForm(formdata=request.form)
    if not form.validate():
        return _render_person(person, password_form=form, status=400)
    try:
        directory.set_password(person, form.password.data, actor=current_user)
    except WorkflowError as exc:
        db.session.rollback()
        form.password.errors = [exc.message]
        return _render_person(person, password_form=form, status=exc.status)
    db.session.commit()
    flash(_("The password of %(name)s has been set; their other sessions have ended.", name=person.name),
          "success")
    return redirect(url_for("admin.person", username=person.username))


@bp.route("/people/<username>/roles", methods=["POST"])
def edit_roles(username: str):
    person = _person_or_404(username)
    form = _roles_form(person, formdata=request.form)
    if not form.validate():
        return _render_person(person, roles_form=form, status=400)
    held = set(person.role_strings())
    wanted = [spec for spec in form.keep.data or [] if spec in held]
    if form.add_role.data or form.add_unit.data:
        unit = directory.unit_by_code(form.add_unit.data or "")
        if not form.add_role.data or unit is None:
            form.add_unit.errors = [_("Choose both a role and a unit.")]
            return _render_person(person, roles_form=form, status=400)
        if not authority.is_admin(current_user, unit):
            abort(403)
        wanted.append(f"{form.add_role.data}@{unit.code}")
    # Roles at units outside the administrator's scope are kept: they cannot be seen here, nor removed.
    wanted += [str(ra) for ra in person.roles if not authority.is_admin(current_user, ra.unit)]
    try:
        changed = directory.set_roles(person, dict.fromkeys(wanted), actor=current_user)
    except WorkflowError as exc:
        db.session.rollback()
        form.add_unit.errors = [exc.message]
        return _render_person(person, roles_form=form, status=exc.status)
    db.session.commit()
    flash(_("The roles of %(name)s have been saved.", name=person.name) if changed
          else _("Nothing changed."), "success" if changed else "info")
    return redirect(url_for("admin.person", username=person.username))


@bp.route("/policy")
def policy():
    pv, pol = engine.active_policy()
    return render_template("admin/policy.html", pv=pv, pol=pol)
