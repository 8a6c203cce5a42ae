"""Pages: customers (客户). The list with its filters (and as XLSX), a customer's page (its fields and inputs,
its tier and history, who holds it, its audit trail, and the portfolio area's panel), creating and
editing a customer, and the import of a customers file with its template. See docs/customers.md.

Pages are thin: workflow.customers checks authority and the fields; a page commits once.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from markupsafe import Markup
from sqlalchemy import or_, select
from wtforms import BooleanField, FloatField, HiddenField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from workflow import authority, customers, importing
from workflow.customer_policy import CustomerPolicy
from workflow.errors import Forbidden, Invalid, NotFound, WorkflowError
from workflow.models import db, Event, OrgUnit, Person
from workflow.models.customers import Customer, Lead

from .api_customers import committed, import_file, list_query, load_detail, template_workbook, workbook
from .views import active_policy, lang

bp = Blueprint("customers", __name__)
PER_PAGE = 50
TIER_COLOURS = ("danger", "warning", "info", "primary", "secondary")
EVENTS = {"create": _l("Customer created"), "edit": _l("Edited"), "tier": _l("Tier set"),
          "assign": _l("Assigned"), "release": _l("Released"), "visit": _l("Visit recorded")}
SOURCES = {"import": _l("Import"), "admin": _l("Administrator"), "tiering": _l("Tiering run"),
           "edit": _l("Edited"), "manual": _l("By hand")}
RELEASE_REASONS = {"dismissal": _l("The manager left"), "demotion": _l("The manager was demoted"),
                   "promotion": _l("The manager was promoted"), "manual": _l("Released by hand"),
                   "inactive": _l("The customer is inactive")}
FIELDS = {"code": _l("Customer code"), "name": _l("Customer name"), "industry": _l("Industry"),
          "unit": _l("Unit"), "inputs": _l("Scoring inputs"), "active": _l("In service?")}


@bp.before_request
@login_required
def _logged_in():
    return None


# --- words the templates use -------------------------------------------------------------------------

def _cpol() -> CustomerPolicy:
    """The active policy's customer section, read once per request (the refusal when it has none)."""
    pol = active_policy()
    return pol.customers if pol is not None and pol.customers is not None else customers.active()[1]


# The tier and industry labels are the app's filters customer_tier and customer_industry (web/views.py).
@bp.app_template_filter("customer_tier_colour")
def _tier_colour(tier: str | None) -> str:
    try:
        cpol = _cpol()
    except WorkflowError:
        return "secondary"
    if tier not in cpol.tier_ids:
        return "light"
    return TIER_COLOURS[min(cpol.tier_rank(tier), len(TIER_COLOURS) - 1)]


@bp.app_template_filter("customer_event")
def _event(action: str) -> str:
    return str(EVENTS.get(action, action))


@bp.app_template_filter("customer_source")
def _source(source: str | None) -> str:
    return str(SOURCES.get(source, source or "—"))


@bp.app_template_filter("release_reason")
def _release_reason(reason: str | None) -> str:
    return str(RELEASE_REASONS.get(reason, reason or "—"))


@bp.app_template_filter("customer_field")
def _field(name: str) -> str:
    return str(FIELDS.get(name, name))


# --- forms -------------------------------------------------------------------------------------------

class CustomerForm(FlaskForm):
    version = HiddenField()
    code = StringField(_l("Customer code"), validators=[DataRequired(), Length(max=customers.CODE_MAX)])
    name = StringField(_l("Customer name"), validators=[DataRequired(), Length(max=customers.NAME_MAX)])
    industry = SelectField(_l("Industry"), validate_choice=False)
    unit = SelectField(_l("Unit"), validators=[DataRequired()], validate_choice=False)
    active = BooleanField(_l("Active (served)"), default=True)
    submit = SubmitField(_l("Save"))


class NewCustomerForm(CustomerForm):
    tier = SelectField(_l("Initial tier (optional)"), validate_choice=False)
    manager = StringField(_l("Account manager holding it (username, optional)"),
                          validators=[Optional(), Length(max=80)])


class ImportForm(FlaskForm):
    customers = FileField(_l("Customers file"), description=_l(
        "CSV (UTF-8) or XLSX with the columns code, name, industry, unit_code, manager, tier, active and one "
        "column per scoring input (or their Chinese headers, as in the template)"))
    submit = SubmitField(_l("Import the customers"))


def _input_field(name: str) -> str:
    return f"input_{name}"


def _form(cls, cpol: CustomerPolicy, **kw):
    """The form with a number field for each of the policy's inputs (input_ID) and the policy's choices."""
    bounds = NumberRange(min=0, max=customers.INPUT_MAX)
    fields = {_input_field(i.id): FloatField(f"{i.label(lang())}" + (f" ({i.unit})" if i.unit else ""),
                                             validators=[Optional(), bounds])
              for i in cpol.inputs}
    form = type(cls.__name__, (cls,), fields)(**kw)
    form.industry.choices = [("", "—")] + [(i, zh if lang().startswith("zh") else en)
                                          for i, zh, en in cpol.industries]
    form.unit.choices = [(u.code, f"{u.name} ({u.code})") for u in _keeper_units()]
    if hasattr(form, "tier"):
        form.tier.choices = [("", "—")] + [(t.id, t.label(lang())) for t in cpol.tiers]
    return form


def _input_fields(form, cpol: CustomerPolicy) -> list:
    return [form[_input_field(i.id)] for i in cpol.inputs]


def _keeper_units() -> list[OrgUnit]:
    """The units whose customers the current user keeps (HR or admin there or above)."""
    units = [ra.unit for ra in current_user.roles if ra.role in authority.CUSTOMER_KEEPERS]
    if not units:
        return []
    return list(db.session.scalars(select(OrgUnit).where(
        or_(*[OrgUnit.path.startswith(u.path) for u in units])).order_by(OrgUnit.path)))


def _data(form, cpol: CustomerPolicy) -> dict:
    data = {"code": form.code.data, "name": form.name.data, "industry": form.industry.data or None,
            "unit": form.unit.data, "active": bool(form.active.data),
            "inputs": {i.id: form[_input_field(i.id)].data for i in cpol.inputs}}
    return data


def _attach(form, exc: WorkflowError) -> Markup | None:
    """An engine refusal next to the field it names, else as an alert."""
    message = Markup('{} <span class="engine-reason">{}</span>').format(
        _("You may not do this:") if isinstance(exc, Forbidden) else _("Refused:"), exc.message)
    name = str(exc.details.get("field") or "")
    if name.startswith("inputs."):
        name = _input_field(name[len("inputs."):])
    if name and name in form._fields:
        form[name].errors = list(form[name].errors or []) + [message]
        return None
    return message


# --- the list ----------------------------------------------------------------------------------------

@bp.route("/customers")
def index():
    try:
        q, filters, cpol = list_query(request.args, current_user)
    except NotFound:
        abort(404)
    except Invalid as exc:
        abort(400, str(exc.message))
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    return render_template("customers/list.html", page=page, filters=filters, args=filters.args(), cpol=cpol,
                           lang=lang(), can_keep=customers.may_keep_customers(current_user))


@bp.route("/customers.xlsx")
def export():
    try:
        return workbook(request.args, current_user)
    except NotFound:
        abort(404)
    except Invalid as exc:
        abort(400, str(exc.message))


# --- a customer --------------------------------------------------------------------------------------

def _customer_or_404(customer_id: int, lock: bool = False) -> Customer:
    try:
        return load_detail(customer_id, current_user, lock=lock)
    except NotFound:
        abort(404)


@bp.route("/customers/<int:customer_id>")
def detail(customer_id: int):
    customer = _customer_or_404(customer_id)
    cpol = _cpol()
    events = db.session.scalars(select(Event).where(Event.chain == f"customer:{customer.id}")
                                .order_by(Event.seq)).all()
    names = {p.username: p.name for p in db.session.scalars(
        select(Person).where(Person.username.in_({ev.actor for ev in events})))}
    leads = db.session.scalars(select(Lead).where(Lead.customer_id == customer.id,
                                                  authority.lead_visible_filter(current_user))
                               .order_by(Lead.id.desc()).limit(20)).all()
    return render_template("customers/detail.html", customer=customer, c=customer, cpol=cpol, lang=lang(),
                           events=events, names=names, leads=leads,
                           can_edit=bool(authority.can_manage_customers(current_user, customer.unit)))


@bp.route("/customers/new", methods=["GET", "POST"])
def new():
    if not customers.may_keep_customers(current_user):
        abort(403)
    cpol = _cpol()
    form = _form(NewCustomerForm, cpol, formdata=request.form if request.method == "POST" else None)
    alert, status = None, 200
    if request.method == "POST" and form.validate():
        data = _data(form, cpol)
        data["inputs"] = {k: v for k, v in data["inputs"].items() if v is not None}
        data["tier"] = form.tier.data or None
        data["manager"] = (form.manager.data or "").strip() or None
        try:
            customer = committed(lambda: customers.create_customer(current_user, data))
        except WorkflowError as exc:
            db.session.rollback()
            status, alert = exc.status, _attach(form, exc)
        else:
            flash(_("Customer %(code)s is created.", code=customer.code), "success")
            return redirect(url_for("customers.detail", customer_id=customer.id))
    elif request.method == "POST":
        status = 400
    return render_template("customers/form.html", form=form, inputs=_input_fields(form, cpol), alert=alert,
                           customer=None), status


@bp.route("/customers/<int:customer_id>/edit", methods=["GET", "POST"])
def edit(customer_id: int):
    customer = _customer_or_404(customer_id, lock=request.method == "POST")
    allowed = authority.can_manage_customers(current_user, customer.unit)
    if not allowed:
        abort(403, allowed.reason)
    cpol = _cpol()
    if request.method == "POST":
        form = _form(CustomerForm, cpol, formdata=request.form)
    else:
        form = _form(CustomerForm, cpol, formdata=None, version=customer.version, code=customer.code,
                     name=customer.name, industry=customer.industry or "", unit=customer.unit.code,
                     active=customer.active,
                     **{_input_field(k): v for k, v in (customer.inputs or {}).items()
                        if k in cpol.input_ids})
        if customer.unit.code not in dict(form.unit.choices):
            form.unit.choices.append((customer.unit.code, f"{customer.unit.name} ({customer.unit.code})"))
    alert, status = None, 200
    if request.method == "POST" and form.validate():
        version = form.version.data
        version = int(version) if version and version.isdigit() else -1
        data = _data(form, cpol)
        # an input left empty is no longer known (None removes it: it counts 0 in the value score)
        try:
            changes = committed(lambda: customers.edit_customer(customer, current_user, data, version))
        except WorkflowError as exc:
            db.session.rollback()
            status, alert = exc.status, _attach(form, exc)
            if exc.status == 409:
                alert = Markup(_("The customer has changed since you loaded it. Reload the page to see it "
                                 "as it is now, and make your changes again."))
        else:
            flash(_("Customer %(code)s is saved.", code=customer.code) if changes else _("Nothing changed."),
                  "success")
            return redirect(url_for("customers.detail", customer_id=customer.id))
    elif request.method == "POST":
        status = 400
    return render_template("customers/form.html", form=form, inputs=_input_fields(form, cpol), alert=alert,
                           customer=customer), status


# --- the import ----------------------------------------------------------------------------------------

@bp.route("/customers/import", methods=["GET", "POST"])
def import_page():
    """The import of customers: loaded at once; a refused file's rows are listed with their line, column
    and reason, and nothing is changed."""
    if not customers.may_keep_customers(current_user):
        abort(403)
    form, problems, total, status = ImportForm(), None, 0, 200
    if form.validate_on_submit():
        try:
            result = import_file(request.files.get("customers"), current_user)
        except importing.ImportRefused as exc:
            problems = [{**row, "message": str(row["message"])} for row in exc.details["rows"]]
            total, status = len(exc.problems), 422
        except WorkflowError as exc:
            flash(_("The file cannot be imported:") + " " + str(exc.message), "danger")
            status = exc.status
        else:
            flash(_("Customers imported: %(created)s new, %(updated)s updated, %(unchanged)s unchanged.",
                    created=result.created, updated=result.updated, unchanged=result.unchanged), "success")
            return redirect(url_for("customers.import_page"))
    elif request.method == "POST":
        status = 400
    return render_template("customers/import.html", form=form, problems=problems, total=total), status


@bp.route("/customers/import-template.xlsx")
def import_template():
    if not customers.may_keep_customers(current_user):
        abort(403)
    return template_workbook()

