"""Administration: the org tree, people, password resets and the active policy."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import or_, select

from workflow import authority, engine
from workflow.models import db, Case, GradeHistory, OrgUnit, Person, RoleAssignment

from .forms import PasswordResetForm, PeopleSearchForm

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
    q = (select(Person).join(OrgUnit, Person.unit_id == OrgUnit.id).where(_in_scope())
         .order_by(OrgUnit.path, Person.username))
    term = (form.q.data or "").strip()
    if term:
        like = f"%{term}%"
        q = q.where(or_(Person.username.ilike(like), Person.name.ilike(like), OrgUnit.code.ilike(like),
                        OrgUnit.name.ilike(like), Person.level.ilike(like)))
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    return render_template("admin/people.html", form=form, page=page, term=term)


def _person_or_404(username: str) -> Person:
    person = db.session.scalar(select(Person).where(Person.username == username))
    if person is None or not authority.is_admin(current_user, person.unit):
        abort(404)
    return person


@bp.route("/people/<username>")
def person(username: str):
    person = _person_or_404(username)
    history = db.session.scalars(select(GradeHistory).where(GradeHistory.person_id == person.id)
                                 .order_by(GradeHistory.effective_on.desc(), GradeHistory.id.desc())).all()
    cases = db.session.scalars(select(Case).where(Case.employee_id == person.id).order_by(Case.id.desc())).all()
    return render_template("admin/person.html", person=person, history=history, cases=cases,
                           password_form=PasswordResetForm(formdata=None))


@bp.route("/people/<username>/password", methods=["POST"])
def reset_password(username: str):
    person = _person_or_404(username)
    form = PasswordResetForm(formdata=request.form)
    if not form.validate():
        history = db.session.scalars(select(GradeHistory).where(GradeHistory.person_id == person.id)).all()
        cases = db.session.scalars(select(Case).where(Case.employee_id == person.id)).all()
        return render_template("admin/person.html", person=person, history=history, cases=cases,
                               password_form=form), 400
    person.set_password(form.password.data)
    db.session.commit()
    flash(_("The password of %(name)s has been set; their other sessions have ended.", name=person.name), "success")
    return redirect(url_for("admin.person", username=person.username))


@bp.route("/policy")
def policy():
    pv, pol = engine.active_policy()
    return render_template("admin/policy.html", pv=pv, pol=pol)
