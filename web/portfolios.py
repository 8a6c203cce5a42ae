"""Portfolios (包保客户) and visits: the managers of a unit with their workload against the norm, one manager's
customers with the next visit due, the customers waiting for a holder (assigned in bulk), the overdue visits
(also as XLSX), and the forms of the customer page's portfolio panel. Thin: workflow/portfolios.py checks
authority and changes; each POST commits once. See docs/portfolios.md."""
from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.routing import BuildError
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from workflow import authority, clock, portfolios
from workflow.errors import Refused
from workflow.models import db, OrgUnit, Person
from workflow.models.customers import VISIT_METHODS, Customer, Visit

from .api_portfolios import XLSX, overdue_workbook, summary_workbook
from .views import active_policy, label, lang

bp = Blueprint("portfolios", __name__)
PER_PAGE = 25
VIEWER_ROLES = ("hr", "admin", "approver", "supervisor")
KEEPER_ROLES = ("hr", "admin")

NORM_STATUSES = {"under": _l("Under the norm"), "within": _l("Within the norm"), "over": _l("Over the norm"),
                 "breach": _l("Grade-rule breach"), "overdue": _l("Visits overdue")}
NORM_COLOURS = {"under": "warning", "within": "success", "over": "danger"}
VISIT_METHOD_LABELS = {"on_site": _l("On site"), "phone": _l("Phone"), "online": _l("Online"),
                       "other": _l("Other")}
RELEASE_REASONS = {"dismissal": _l("Dismissal"), "demotion": _l("Demotion"), "promotion": _l("Promotion"),
                   "manual": _l("Released by hand"), "inactive": _l("Inactive")}


@bp.before_request
@login_required
def _logged_in():
    return None


@bp.app_template_filter("norm_status")
def _norm_status(status: str | None) -> str:
    return label(NORM_STATUSES, status)


@bp.app_template_filter("norm_colour")
def _norm_colour(status: str | None) -> str:
    return NORM_COLOURS.get(status or "", "secondary")


@bp.app_template_filter("visit_method")
def _visit_method(method: str | None) -> str:
    return label(VISIT_METHOD_LABELS, method)


@bp.app_template_filter("pf_release_reason")
def _release_reason(reason: str | None) -> str:
    return label(RELEASE_REASONS, reason)


@bp.app_template_filter("pf_tier")
def _customer_tier(tier: str | None) -> str:
    pol = active_policy()
    if not tier:
        return _("Untiered")
    try:
        return pol.customers.tier(tier).label(lang())
    except (AttributeError, KeyError):
        return tier


# --- forms (the shape of the input; the engine decides the rest) --------------------------------------------

NOTE = Length(max=portfolios.NOTE_MAX)


class AssignForm(FlaskForm):
    manager = StringField(_l("Manager (username)"), validators=[DataRequired(), Length(max=64)])
    comment = TextAreaField(_l("Comment"), validators=[NOTE], render_kw={"rows": 2})


class ReleaseForm(FlaskForm):
    comment = TextAreaField(_l("Why"), validators=[NOTE], render_kw={"rows": 2})


class VisitForm(FlaskForm):
    visited_on = DateField(_l("Visited on"), validators=[DataRequired()])
    method = SelectField(_l("How"))
    note = TextAreaField(_l("Note"), validators=[Optional(), NOTE], render_kw={"rows": 2})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.method.choices = [(m, VISIT_METHOD_LABELS[m]) for m in VISIT_METHODS]


class BulkAssignForm(FlaskForm):
    manager = SelectField(_l("Assign to"), validators=[DataRequired()], validate_choice=False)
    comment = TextAreaField(_l("Comment"), validators=[NOTE], render_kw={"rows": 2})


# --- helpers ------------------------------------------------------------------------------------------------

class ListPage:
    """A page of an already computed list, shaped as the pager macro expects."""

    def __init__(self, items: list, page: int, per_page: int = PER_PAGE):
        self.total = len(items)
        self.pages = max(1, -(-self.total // per_page))
        self.page = min(max(page, 1), self.pages)
        self.items = items[(self.page - 1) * per_page:self.page * per_page]
        self.has_prev, self.has_next = self.page > 1, self.page < self.pages
        self.prev_num, self.next_num = self.page - 1, self.page + 1

    def iter_pages(self):
        for n in range(1, self.pages + 1):
            if n <= 2 or n > self.pages - 2 or abs(n - self.page) <= 2:
                yield n
            elif n == 3 or n == self.pages - 2:
                yield None


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _unit_and_units(roles=VIEWER_ROLES) -> tuple[OrgUnit, list[OrgUnit]]:
    """The unit asked for (`?unit=`, 404 out of sight) or the viewer's highest, and the units to choose from
    (403 for someone with none of the roles)."""
    code = (request.values.get("unit") or "").strip()
    unit = None
    if code:
        unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if unit is None or not any(ra.role in roles and ra.unit.contains(unit) for ra in current_user.roles):
            abort(404)
    units = sorted({ra.unit.id: ra.unit for ra in current_user.roles if ra.role in roles}.values(),
                   key=lambda u: (len(u.path), u.code))
    if not units:
        abort(403)
    unit = unit or units[0]
    if unit not in units:
        units.append(unit)
    return unit, units


def _policy_or_409():
    try:
        return portfolios.policy()
    except Refused as exc:
        abort(409, exc.message)


@bp.app_template_global("customer_link")
def customer_url(customer: Customer) -> str:
    """The customer's page (the customers area's), else its holder's portfolio."""
    try:
        return url_for("customers.detail", customer_id=customer.id)
    except BuildError:
        if customer.manager is not None:
            return url_for("portfolios.manager", username=customer.manager.username)
        return url_for("portfolios.released", unit=customer.unit.code)


def _customer_or_404(customer_id: int, lock: bool = False) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None or not authority.can_see_customer(current_user, customer):
        abort(404)
    if lock:
        customer = portfolios.load_customer(customer_id, current_user, lock=True)
    return customer


# --- the managers of a unit ---------------------------------------------------------------------------------

@bp.route("/portfolios")
def index():
    unit, units = _unit_and_units()
    pol, cpol = _policy_or_409()
    status = (request.args.get("status") or "").strip()
    if status and status not in NORM_STATUSES:
        abort(400, _("There is no status '%(status)s'.", status=status[:40]))
    rows = portfolios.summary(unit, status=status or None)
    return render_template("portfolios/index.html", unit=unit, units=units,
                           page=ListPage(rows, _page_number()), status=status, statuses=NORM_STATUSES,
                           cpol=cpol, pol=pol,
                           waiting=portfolios.waiting_count(unit),
                           may_assign=any(ra.role in KEEPER_ROLES for ra in current_user.roles))


@bp.route("/portfolios.xlsx")
def index_xlsx():
    unit, _units = _unit_and_units()
    _pol, cpol = _policy_or_409()
    rows = portfolios.summary(unit)
    data = summary_workbook(rows, cpol, headers=(
        _("Username"), _("Name"), _("Unit"), _("Grade"), _("Customers held"),
        *[t.label(lang()) for t in cpol.tiers],
        _("Area"), _("Norm"), _("Status"), _("Breaches"), _("Visits overdue"), _("Coverage %")),
        status_label=_norm_status, sheet=_("Portfolios"), lang=lang())
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True,
                     download_name=f"portfolios-{unit.code}.xlsx")


@bp.route("/portfolios/released", methods=["GET", "POST"])
def released():
    """Customers waiting for a holder (released ones, never-assigned ones); HR ticks some and assigns them."""
    unit, units = _unit_and_units(KEEPER_ROLES)
    _pol, cpol = _policy_or_409()
    form = BulkAssignForm(formdata=request.form if request.method == "POST" else None)
    managers = portfolios.candidates(unit)
    form.manager.choices = [("", "—")] + [(p.username, f"{p.name} ({p.username}, {p.grade})")
                                          for p in managers]
    outcomes, status = None, 200
    if request.method == "POST":
        ids = [int(v) for v in request.form.getlist("customers") if v.isdigit()]
        if not form.validate() or not ids:
            abort(400, _("Tick at least one customer and choose a manager."))
        manager = db.session.scalar(select(Person).where(Person.username == form.manager.data))
        if manager is None:
            abort(400, _("There is no manager '%(username)s'.", username=form.manager.data[:64]))
        chosen = db.session.scalars(select(Customer).where(Customer.id.in_(ids))
                                    .order_by(Customer.code)).all()
        chosen = [c for c in chosen if authority.can_see_customer(current_user, c)]
        if not chosen:
            abort(404)
        outcomes = portfolios.assign_many(current_user, chosen, manager, comment=form.comment.data or "")
        db.session.commit()
        done = sum(1 for o in outcomes if o.ok)
        flash(_("%(done)s of %(n)s customer(s) assigned to %(manager)s.", done=done, n=len(outcomes),
                manager=manager.name), "success" if done == len(outcomes) else "warning")
        if done == len(outcomes):
            return redirect(url_for("portfolios.released", unit=unit.code))
        status = 422 if not done else 200
    q = portfolios.waiting_query(unit).options(joinedload(Customer.unit), joinedload(Customer.released_from))
    page = db.paginate(q, page=_page_number(), per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    return render_template("portfolios/released.html", unit=unit, units=units, page=page, form=form,
                           outcomes=outcomes, cpol=cpol), status


@bp.route("/portfolios/<username>")
def manager(username: str):
    """One manager's customers with the next visit due; the manager sees their own."""
    person = db.session.scalar(select(Person).where(Person.username == username))
    if person is None or not (person.id == current_user.id
                              or authority.can_view_customers(current_user, person.unit)):
        abort(404)
    pol, cpol = _policy_or_409()
    rows = portfolios.held_by(person)
    folio = portfolios.portfolio_of(person)
    return render_template("portfolios/manager.html", person=person, rows=rows, folio=folio, cpol=cpol,
                           pol=pol, today=clock.today())


# --- overdue visits -----------------------------------------------------------------------------------------

def _overdue_filters(cpol) -> tuple[OrgUnit, list[OrgUnit], list, dict[str, str]]:
    unit, units = _unit_and_units()
    where = [Customer.unit_id.in_(select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path))),
             authority.customer_visible_filter(current_user)]
    args = {"unit": unit.code}
    username = (request.args.get("manager") or "").strip()
    if username:
        m = db.session.scalar(select(Person).where(Person.username == username))
        if m is None:
            abort(404)
        where.append(Customer.manager_id == m.id)
        args["manager"] = username
    tier = (request.args.get("tier") or "").strip()
    if tier:
        if tier not in cpol.tier_ids:
            abort(400, _("There is no customer tier '%(tier)s'.", tier=tier[:40]))
        where.append(Customer.tier == tier)
        args["tier"] = tier
    return unit, units, where, args


@bp.route("/visits/overdue")
def overdue():
    _pol, cpol = _policy_or_409()
    unit, units, where, args = _overdue_filters(cpol)
    today = clock.today()
    q = portfolios.overdue_query(cpol, today, *where).options(joinedload(Customer.manager),
                                                              joinedload(Customer.unit))
    page = db.paginate(q, page=_page_number(), per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    rows = db.session.execute(q.limit(PER_PAGE).offset((page.page - 1) * PER_PAGE)).all()
    items = portfolios.rows_with_due(rows, cpol, today)
    for r in items:
        r["late"] = (today - r["due"]).days if r["due"] else None
    return render_template("portfolios/overdue.html", unit=unit, units=units, page=page, items=items,
                           args=args, cpol=cpol)


@bp.route("/visits/overdue.xlsx")
def overdue_xlsx():
    _pol, cpol = _policy_or_409()
    unit, _units, where, _args = _overdue_filters(cpol)
    today = clock.today()
    rows = db.session.execute(portfolios.overdue_query(cpol, today, *where)
                              .options(joinedload(Customer.manager), joinedload(Customer.unit))).all()
    data = overdue_workbook(portfolios.rows_with_due(rows, cpol, today), today, headers=(
        _("Customer code"), _("Customer"), _("Unit"), _("Customer tier"), _("Manager"), _("Manager's name"),
        _("Visit due"), _("Days late")), tier_label=_customer_tier, sheet=_("Overdue visits"))
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True,
                     download_name=f"overdue-visits-{unit.code}.xlsx")


# --- the customer page's panel and its forms ----------------------------------------------------------------

@bp.app_template_global("customer_portfolio")
def customer_portfolio(customer: Customer) -> dict[str, Any]:
    """What templates/portfolios/_customer_panel.html shows of a customer: the next visit, visits, forms."""
    try:
        _pol, cpol = portfolios.policy()
    except Refused:
        return {"enabled": False}
    manage = bool(authority.can_manage_customers(current_user, customer.unit))
    visits = db.session.scalars(select(Visit).where(Visit.customer_id == customer.id)
                                .options(joinedload(Visit.manager), joinedload(Visit.recorded_by))
                                .order_by(Visit.visited_on.desc(), Visit.id.desc()).limit(50)).all()
    due = portfolios.next_due(customer)
    return {"enabled": True, "cpol": cpol, "due": due, "overdue": portfolios.is_overdue(due),
            "visits": visits,
            "manage": manage, "serve": bool(authority.can_serve_customer(current_user, customer)),
            "candidates": portfolios.candidates(customer.unit) if manage else [],
            "assign_form": AssignForm(formdata=None, prefix="assign"),
            "release_form": ReleaseForm(formdata=None, prefix="release"),
            "visit_form": VisitForm(formdata=None, prefix="visit", visited_on=clock.today())}


@bp.route("/customers/<int:customer_id>/assign", methods=["POST"])
def assign(customer_id: int):
    customer = _customer_or_404(customer_id, lock=True)
    allowed = authority.can_manage_customers(current_user, customer.unit)
    if not allowed:
        abort(403, allowed.reason)
    form = AssignForm(formdata=request.form, prefix="assign")
    if not form.validate():
        abort(400, _("Name the manager who will hold the customer."))
    manager = db.session.scalar(select(Person).where(Person.username == form.manager.data.strip()))
    if manager is None:
        abort(400, _("There is no manager '%(username)s'.", username=form.manager.data[:64]))
    try:
        portfolios.assign(current_user, customer, manager, comment=form.comment.data or "")
    except Refused as exc:       # the grade rule or the org line, said on the customer page; nothing changed
        db.session.rollback()
        flash(str(exc.message), "danger")
        return redirect(customer_url(customer))
    db.session.commit()
    flash(_("%(customer)s is now held by %(manager)s.", customer=customer.name, manager=manager.name),
          "success")
    return redirect(customer_url(customer))


@bp.route("/customers/<int:customer_id>/release", methods=["POST"])
def release(customer_id: int):
    customer = _customer_or_404(customer_id, lock=True)
    allowed = authority.can_manage_customers(current_user, customer.unit)
    if not allowed:
        abort(403, allowed.reason)
    form = ReleaseForm(formdata=request.form, prefix="release")
    if not form.validate():
        abort(400)
    portfolios.release(current_user, customer, comment=form.comment.data or "")
    db.session.commit()
    flash(_("%(customer)s is released and waits for a manager.", customer=customer.name), "success")
    return redirect(customer_url(customer))


@bp.route("/customers/<int:customer_id>/visits", methods=["POST"])
def record_visit(customer_id: int):
    customer = _customer_or_404(customer_id, lock=True)
    allowed = authority.can_serve_customer(current_user, customer)
    if not allowed:
        abort(403, allowed.reason)
    form = VisitForm(formdata=request.form, prefix="visit")
    if not form.validate():
        abort(400, _("Give the visit's date (not after today) and how it was made."))
    portfolios.record_visit(current_user, customer, form.visited_on.data, form.method.data,
                            form.note.data or "")
    db.session.commit()
    flash(_("The visit of %(day)s is recorded.", day=form.visited_on.data.isoformat()), "success")
    return redirect(customer_url(customer))
