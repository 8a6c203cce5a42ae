"""Sales leads' pages (跟单客户): the list (one's own and one's units' leads, days left or late, the sales
manager's bulk reassignment of overdue leads), opening a lead, the lead page with its deadline, timeline and
actions, and the list as XLSX. Also `run_overdue`, tick's pass over the leads past their deadline.
See docs/leads.md."""
from __future__ import annotations

import datetime as dt
import io

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from wtforms import HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from workflow import authority, clock, leads
from workflow.errors import Conflict, Forbidden, NotFound, WorkflowError
from workflow.models import db, Person
from workflow.models.customers import LEAD_STATES, Lead

from .api_leads import (EXPORT_MAX, XLSX, days_late, filtered, lead_events, load_visible_lead, unit_in_sight,
                        workbook)
from .views import active_policy, label, lang

bp = Blueprint("leads", __name__)
PER_PAGE = 25
ACTIONS = ("reclassify", "reassign", "win", "lose")

LEAD_STATE_LABELS = {"open": _l("Following up"), "overdue": _l("Overdue"), "won": _l("Won"),
                     "lost": _l("Lost")}
LEAD_STATE_COLOURS = {"open": "primary", "overdue": "danger", "won": "success", "lost": "secondary"}
LEAD_EVENTS = {"create": _l("Lead opened"), "flag_overdue": _l("Deadline passed"),
               "reassign": _l("Reassigned"), "reclassify": _l("Class changed"), "win": _l("Won"),
               "lose": _l("Lost")}
DONE = {"reclassify": _l("The lead's class is changed."), "reassign": _l("The lead is reassigned."),
        "win": _l("The lead is closed as won."), "lose": _l("The lead is closed as lost.")}


@bp.before_request
@login_required
def _logged_in():
    return None


@bp.app_template_filter("lead_state")
def _lead_state(state: str) -> str:
    return label(LEAD_STATE_LABELS, state)


@bp.app_template_filter("lead_state_colour")
def _lead_state_colour(state: str) -> str:
    return LEAD_STATE_COLOURS.get(state, "secondary")


@bp.app_template_filter("lead_event")
def _lead_event(action: str) -> str:
    return label(LEAD_EVENTS, action)


@bp.app_template_filter("lead_class")
def lead_class_label(class_id: str | None) -> str:
    pol = active_policy()
    cpol = pol.customers if pol else None
    try:
        return cpol.lead_class(class_id).label(lang())
    except (KeyError, AttributeError):
        return class_id or "—"


def _classes() -> list[tuple[str, str]]:
    pol = active_policy()
    cpol = pol.customers if pol else None
    return [(c.id, _("%(lead_class)s · %(days)s days", lead_class=c.label(lang()), days=c.days))
            for c in (cpol.lead_classes if cpol else ())]


def _role() -> str:
    return leads.reassign_role()


def _reason(exc: WorkflowError) -> Markup:
    return Markup('{} <span class="engine-reason">{}</span>').format(
        _("You may not do this:") if isinstance(exc, Forbidden) else _("Refused:"), exc.message)


# --- forms -------------------------------------------------------------------------------------------------

class NewLeadForm(FlaskForm):
    title = StringField(_l("Lead"), validators=[DataRequired(), Length(max=leads.TITLE_MAX)])
    unit = SelectField(_l("Unit"), validators=[DataRequired()])
    owner = StringField(_l("Owner (username)"), validators=[Optional(), Length(max=64)],
                        description=_l("Empty: yourself."))
    lead_class = SelectField(_l("Class"), validators=[DataRequired()])
    customer = StringField(_l("Customer code"), validators=[Optional(), Length(max=64)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=leads.NOTE_MAX)])
    submit = SubmitField(_l("Open the lead"))


class LeadActionForm(FlaskForm):
    version = HiddenField()
    lead_class = SelectField(_l("New class"), validate_choice=False)
    owner = StringField(_l("New owner (username)"), validators=[Length(max=64)])
    comment = TextAreaField(_l("Comment"), validators=[Length(max=leads.COMMENT_MAX)])
    submit = SubmitField(_l("Confirm"))


class BulkReassignForm(FlaskForm):
    owner = StringField(_l("New owner (username)"), validators=[DataRequired(), Length(max=64)])
    comment = StringField(_l("Comment"), validators=[Length(max=leads.COMMENT_MAX)])
    submit = SubmitField(_l("Reassign the ticked leads"))


# --- the list ----------------------------------------------------------------------------------------------

def _is_sales_manager() -> bool:
    role = _role()
    return any(ra.role in (role, "hr") for ra in current_user.roles) and current_user.status != "dismissed"


def render_list(alert: str | None = None, status: int = 200, form: BulkReassignForm | None = None):
    today = clock.today()
    try:
        q, given = filtered(request.args, current_user, today)
    except NotFound:
        abort(404)
    except WorkflowError as exc:
        abort(400, exc.message)
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    role = _role()
    movable = {ld.id for ld in page.items
               if ld.state in ("open", "overdue") and authority.can_reassign_lead(current_user, ld, role)}
    return render_template(
        "leads/list.html", page=page, given=given, states=LEAD_STATES, classes=_classes(), today=today,
        movable=movable, days_late=days_late, alert=alert,
        bulk=form or BulkReassignForm(formdata=None), can_open=bool(leads.openable_units(current_user, role)),
        can_bulk=_is_sales_manager()), status


@bp.route("/leads")
def index():
    return render_list()


@bp.route("/leads/reassign", methods=["POST"])
def bulk_reassign():
    """The sales manager's reassignment of the ticked leads to one person: all or none."""
    if not _is_sales_manager():
        abort(403)
    form = BulkReassignForm(formdata=request.form)
    raw = request.form.getlist("lead")
    ids = list(dict.fromkeys(int(v) for v in raw if v.isdigit() and 0 < int(v) < 2**31))
    if not form.validate() or not ids or len(ids) != len(set(raw)):
        alert = _("Tick at least one lead and name the person to give them to.")
        return render_list(alert=alert, status=400, form=form)
    try:
        targets = [load_visible_lead(i, current_user, lock=True) for i in ids]
        leads.reassign_many(current_user, targets, form.owner.data, form.comment.data)
        db.session.commit()
    except (StaleDataError, IntegrityError, OperationalError, Conflict):
        db.session.rollback()
        alert = _("Another change to these leads came first; nothing was reassigned. Check the list and try "
                  "again.")
        return render_list(alert=alert, status=409, form=form)
    except WorkflowError as exc:
        db.session.rollback()
        lead_id = exc.details.get("lead")
        alert = _reason(exc) if lead_id is None else Markup("{} {}").format(
            _("Nothing was reassigned: lead %(id)s:", id=lead_id), _reason(exc))
        return render_list(alert=alert, status=exc.status, form=form)
    except Exception:
        db.session.rollback()
        raise
    flash(_("%(n)s lead(s) reassigned to %(owner)s.", n=len(targets), owner=targets[0].owner.name), "success")
    return redirect(url_for("leads.index", overdue="1"))


@bp.route("/leads.xlsx")
def export():
    today = clock.today()
    try:
        q, _given = filtered(request.args, current_user, today)
    except NotFound:
        abort(404)
    except WorkflowError as exc:
        abort(400, exc.message)
    rows = list(db.session.scalars(q.limit(EXPORT_MAX)).unique())
    headers = (_("No."), _("Lead"), _("Class"), _("State"), _("Unit"), _("Username"), _("Owner"),
               _("Customer code"), _("Assigned on"), _("Deadline"), _("Days late"), _("Closed on"))
    data = workbook(rows, today, headers=headers,
                    class_label=lead_class_label, state_label=_lead_state, sheet=_("Leads"))
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name="leads.xlsx")


# --- opening -----------------------------------------------------------------------------------------------

@bp.route("/leads/new", methods=["GET", "POST"])
def new():
    role = _role()
    units = leads.openable_units(current_user, role)
    classes = _classes()
    if not units or not classes:
        abort(403)
    form = NewLeadForm(formdata=request.form if request.method == "POST" else None,
                       unit=current_user.unit.code)
    form.unit.choices = [(u.code, f"{u.name} ({u.code})") for u in units]
    form.lead_class.choices = classes
    alert, status = None, 200
    if request.method == "POST" and form.validate():
        try:
            unit = unit_in_sight(form.unit.data, current_user)
            lead = leads.create(current_user, form.title.data, unit, form.owner.data or None,
                                form.lead_class.data, customer=form.customer.data or None,
                                note=form.note.data or "")
            db.session.commit()
        except WorkflowError as exc:
            db.session.rollback()
            status, field = exc.status, exc.details.get("field")
            if field and field in form._fields:
                form[field].errors = list(form[field].errors or []) + [_reason(exc)]
            else:
                alert = _reason(exc)
        else:
            flash(_("The lead is open, due on %(deadline)s.", deadline=lead.deadline.isoformat()), "success")
            return redirect(url_for("leads.detail", lead_id=lead.id))
    elif request.method == "POST":
        status = 400
    return render_template("leads/new.html", form=form, alert=alert, classes=classes,
                           manager=any(leads.may_assign_others(current_user, u, role) for u in units)), status


# --- the lead page -----------------------------------------------------------------------------------------

def _lead_or_404(lead_id: int, lock: bool = False) -> Lead:
    try:
        return load_visible_lead(lead_id, current_user, lock=lock)
    except NotFound:
        abort(404)


def render_detail(lead: Lead, alert: str | None = None, status: int = 200, failed: str | None = None,
                  form: LeadActionForm | None = None):
    today = clock.today()
    events = lead_events(lead)
    names = {p.username: p for p in db.session.scalars(
        select(Person).where(Person.username.in_({ev.actor for ev in events})))}
    actions = leads.actions_for(current_user, lead, _role())
    forms = {}
    for action in actions:
        f = form if action == failed and form is not None else LeadActionForm(
            formdata=None, prefix=action, version=lead.version)
        f.lead_class.choices = [c for c in _classes() if c[0] != lead.lead_class]
        forms[action] = f
    return render_template("leads/detail.html", lead=lead, events=events, names=names, forms=forms,
                           alert=alert, today=today, days_late=days_late(lead, today),
                           days_left=(lead.deadline - today).days), status


@bp.route("/leads/<int:lead_id>")
def detail(lead_id: int):
    return render_detail(_lead_or_404(lead_id))


@bp.route("/leads/<int:lead_id>/<action>", methods=["POST"])
def act(lead_id: int, action: str):
    """Reclassify, reassign, win or lose: 404, then the engine's 409, 403 and 400/422; one commit."""
    if action not in ACTIONS:
        abort(404)
    lead = _lead_or_404(lead_id, lock=True)
    form = LeadActionForm(formdata=request.form, prefix=action)
    form.lead_class.choices = _classes()
    if not form.validate():
        db.session.rollback()
        return render_detail(_lead_or_404(lead_id), alert=_("Check the form."), status=400, failed=action,
                             form=form)
    raw = form.version.data or ""
    version = int(raw) if raw.isdigit() else (None if not raw else -1)
    try:
        if action == "reclassify":
            leads.reclassify(current_user, lead, form.lead_class.data, form.comment.data, version)
        elif action == "reassign":
            leads.reassign(current_user, lead, form.owner.data, form.comment.data, version)
        else:
            leads.close(current_user, lead, action, form.comment.data, version)
        db.session.commit()
    except (Conflict, StaleDataError, IntegrityError, OperationalError):
        db.session.rollback()
        alert = _("The lead has changed since you loaded it (another change came first). The page now shows "
                  "it as it is; check it and try again.")
        return render_detail(_lead_or_404(lead_id), alert=alert, status=409)
    except WorkflowError as exc:
        db.session.rollback()
        return render_detail(_lead_or_404(lead_id), alert=_reason(exc), status=exc.status, failed=action,
                             form=form)
    except Exception:
        db.session.rollback()
        raise
    flash(str(DONE[action]), "success")
    return redirect(url_for("leads.detail", lead_id=lead.id))


# --- time ------------------------------------------------------------------------------------------------

def run_overdue(today: dt.date, say=lambda line: None) -> tuple[int, int]:
    """tick's pass over the leads: each open lead past its deadline flagged overdue in a transaction of its
    own, its owner and sales managers told once (workflow/leads.flag_one). A lead another tick or a person
    changed meanwhile is left to them. Answers (leads flagged, notifications written)."""
    ids = leads.overdue_candidates(today)
    db.session.rollback()
    if not ids:
        return 0, 0
    role = leads.reassign_role()
    flagged = written = 0
    for lead_id in ids:
        try:
            n = leads.flag_one(lead_id, today, role)
            db.session.commit()
        except (Conflict, StaleDataError, IntegrityError, OperationalError):
            db.session.rollback()
            continue
        if n is not None:
            flagged += 1
            written += n
            say(f"lead {lead_id}: overdue")
    return flagged, written
