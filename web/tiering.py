"""Customer tiering runs' pages (客户分级, see docs/tiering.md): the list, starting a run, the run page with its
counts, from→to matrix, filtered proposals with their score breakdown, decisions one by one or ticked in
bulk, determining and cancelling, the audit events; the proposals awaiting the current user; the export."""
from __future__ import annotations

import io

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError
from wtforms import HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from workflow import authority, clock, tiering
from workflow.errors import Forbidden, NotFound, WorkflowError
from workflow.models import db, OrgUnit, Person
from workflow.models.customers import PROPOSAL_STATES, TieringRun, TierProposal

from .api_tiering import (XLSX, active_approval, events_of, load_proposal, load_visible_run, proposal_query,
                          visible_filter, workbook)
from .views import label, lang

bp = Blueprint("tiering", __name__, url_prefix="/tiering")
PER_PAGE = 50
VIEWER_ROLES = ("hr", "approver", "admin")

RUN_STATES = {"review": _l("In review"), "effective": _l("Effective"), "cancelled": _l("Cancelled")}
RUN_COLOURS = {"review": "primary", "effective": "success", "cancelled": "secondary"}
STATES = {"unchanged": _l("Unchanged"), "auto": _l("Changes without approval"),
          "pending": _l("Awaiting approval"), "approved": _l("Approved"), "rejected": _l("Rejected")}
STATE_COLOURS = {"unchanged": "light", "auto": "info", "pending": "warning", "approved": "success",
                 "rejected": "danger"}
EVENTS = {"create": _l("Run started"), "approve_tier": _l("Change of tier approved"),
          "reject_tier": _l("Change of tier rejected"), "determine": _l("Run determined"),
          "cancel": _l("Run cancelled")}
DETERMINED = {"changed": _l("Tiers changed"), "stale": _l("Skipped: the tier changed since the run started"),
              "inactive": _l("Skipped: no longer active"), "refreshed": _l("Unchanged, score refreshed"),
              "grade_rule": _l("Holders below the new tier's minimum level")}


class StartRunForm(FlaskForm):
    """客户分级: which unit's customers and for which period."""
    unit = SelectField(_l("Unit"), validators=[DataRequired()])
    period = StringField(_l("Period"), validators=[DataRequired(), Length(max=20)],
                         description=_l("For example 2026-H1."))
    submit = SubmitField(_l("Start the run"))


class DecisionForm(FlaskForm):
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])
    version = HiddenField()


class BulkDecisionForm(FlaskForm):
    """The page's decisions carry no version: a proposal decided meanwhile answers for itself (conflict)."""
    decision = SelectField(_l("Decision"), validators=[DataRequired()],
                           choices=[SelectChoice("approve", _l("Approve")),
                                    SelectChoice("reject", _l("Reject"))])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)],
                            description=_l("Needed to reject."))
    version = HiddenField()


class RunActionForm(FlaskForm):
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])
    version = HiddenField()


@bp.before_request
@login_required
def _logged_in():
    return None


@bp.app_template_filter("tiering_state")
def _run_state(state: str) -> str:
    return label(RUN_STATES, state)


@bp.app_template_filter("tiering_state_colour")
def _run_colour(state: str) -> str:
    return RUN_COLOURS.get(state, "secondary")


@bp.app_template_filter("proposal_state")
def _proposal_state(state: str) -> str:
    return label(STATES, state)


@bp.app_template_filter("proposal_state_colour")
def _proposal_colour(state: str) -> str:
    return STATE_COLOURS.get(state, "secondary")


@bp.app_template_filter("tiering_event")
def _event(action: str) -> str:
    return label(EVENTS, action)


def tier_label(cpol, tier: str | None) -> str:
    if not tier:
        return "—"
    try:
        return cpol.tier(tier).label(lang())
    except KeyError:
        return tier


def _run_or_404(run_id: int, lock: bool = False) -> TieringRun:
    try:
        return load_visible_run(run_id, current_user, lock=lock)
    except NotFound:
        abort(404)


def _startable_units() -> list[OrgUnit]:
    """Units where the current user may start a run: the subtrees of their HR (or admin) roles."""
    units = [ra.unit for ra in current_user.roles if ra.role in authority.CUSTOMER_KEEPERS]
    if not units or current_user.status == "dismissed":
        return []
    return list(db.session.scalars(select(OrgUnit).where(
        db.or_(*[OrgUnit.path.startswith(u.path) for u in units])).order_by(OrgUnit.path)))


def _version(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() else -1


def _reason(exc: WorkflowError) -> Markup:
    return Markup('{} <span class="engine-reason">{}</span>').format(
        _("You may not do this:") if isinstance(exc, Forbidden) else _("Refused:"), exc.message)


def _commit(work):
    """Run a change and commit it; a lost race becomes the engine's conflict."""
    try:
        out = work()
        db.session.commit()
        return out
    except (StaleDataError, IntegrityError, OperationalError):
        db.session.rollback()
        raise tiering.StaleRun(_("another change to this tiering run came first; reload it")) from None
    except Exception:
        db.session.rollback()
        raise


# --- the list ----------------------------------------------------------------------------------------

@bp.route("/")
def index():
    if not any(ra.role in VIEWER_ROLES for ra in current_user.roles):
        abort(403)
    q = select(TieringRun).where(visible_filter(current_user)).order_by(TieringRun.id.desc())
    state = request.args.get("state", "").strip()
    if state in RUN_STATES:
        q = q.where(TieringRun.state == state)
    q = q.options(joinedload(TieringRun.unit), joinedload(TieringRun.created_by))
    page = db.paginate(q, per_page=25, max_per_page=25, error_out=False)
    return render_template("tiering/list.html", page=page, state=state, states=list(RUN_STATES),
                           can_start=bool(_startable_units()))


# --- starting ----------------------------------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
def new():
    units = _startable_units()
    if not units:
        abort(403)
    today = clock.today()
    form = StartRunForm(formdata=request.form if request.method == "POST" else None,
                        period=f"{today.year}-H{1 if today.month <= 6 else 2}")
    form.unit.choices = [SelectChoice(u.code, f"{u.name} ({u.code})") for u in units]
    alert, status = None, 200
    if request.method == "POST" and form.validate():
        unit = next(u for u in units if u.code == form.unit.data)
        try:
            run = _commit(lambda: tiering.start(current_user, unit, form.period.data))
        except WorkflowError as exc:
            status, alert = exc.status, _reason(exc)
        else:
            flash(_("Tiering run %(id)s started: %(n)s customer(s).", id=run.id,
                    n=run.counts.get("customers", 0)), "success")
            return redirect(url_for("tiering.detail", run_id=run.id))
    elif request.method == "POST":
        status = 400
    return render_template("tiering/new.html", form=form, alert=alert), status


# --- the run page ------------------------------------------------------------------------------------

def render_detail(run: TieringRun, alert=None, status: int = 200, results=None):
    cpol = tiering.customer_policy_of(run)
    args = request.args if request.method == "GET" else {}
    try:
        q = proposal_query(run, args)
    except (WorkflowError, NotFound):
        q = proposal_query(run, {})
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    decidable = {p.id for p in page.items if p.state == "pending" and run.state == "review"
                 and authority.can_decide_tier(current_user, p, cpol.approval)}
    events = events_of(run)
    names = {p.username: p.name for p in db.session.scalars(
        select(Person).where(Person.username.in_({ev.actor for ev in events})))}
    steps = select(TierProposal.step_unit_id).where(TierProposal.run_id == run.id).distinct()
    step_units = list(db.session.scalars(select(OrgUnit).where(OrgUnit.id.in_(steps)).order_by(OrgUnit.code)))
    matrix = (run.counts or {}).get("matrix", {})
    known = (*cpol.tier_ids, "")
    froms = [t for t in known if t in matrix] + [t for t in matrix if t not in known]
    filters = {k: args.get(k, "") for k in ("state", "tier", "changed", "step_unit")}
    return render_template(
        "tiering/detail.html", run=run, cpol=cpol, page=page, decidable=decidable, events=events, names=names,
        manage=bool(authority.can_manage_customers(current_user, run.unit)), step_units=step_units,
        matrix=matrix, froms=froms, filters=filters, states=PROPOSAL_STATES, alert=alert, results=results,
        pending=tiering.pending_count(run), tier=lambda t: tier_label(cpol, t), determined=DETERMINED,
        bulk_form=BulkDecisionForm(formdata=None),
        form=RunActionForm(formdata=None, version=run.version)), status


@bp.route("/<int:run_id>")
def detail(run_id: int):
    return render_detail(_run_or_404(run_id))


def _redirect_back(run: TieringRun):
    back = request.form.get("next", "")
    if back.startswith("/tiering/") and "//" not in back:
        return redirect(back)
    return redirect(url_for("tiering.detail", run_id=run.id))


@bp.route("/<int:run_id>/proposals/<int:proposal_id>/<decision>", methods=["POST"])
def decide(run_id: int, proposal_id: int, decision: str):
    if decision not in tiering.DECISIONS:
        abort(404)
    run = _run_or_404(run_id, lock=True)
    try:
        proposal = load_proposal(run, proposal_id)
    except NotFound:
        abort(404)
    form = DecisionForm(formdata=request.form)
    if not form.validate():
        db.session.rollback()
        return render_detail(run, alert=_("The comment is too long."), status=400)
    version = _version(form.version.data) if form.version.data else None
    try:
        _commit(lambda: tiering.decide(current_user, proposal, decision, form.comment.data, version))
    except WorkflowError as exc:
        return render_detail(_run_or_404(run_id), alert=_reason(exc), status=exc.status)
    code = proposal.customer.code
    flash(_("Change of tier approved for %(code)s.", code=code) if decision == "approve" else
          _("Change of tier rejected for %(code)s.", code=code), "success")
    return _redirect_back(run)


@bp.route("/<int:run_id>/decisions", methods=["POST"])
def decide_many(run_id: int):
    run = _run_or_404(run_id, lock=True)
    form = BulkDecisionForm(formdata=request.form)
    if not form.validate():
        db.session.rollback()
        return render_detail(run, alert=_("Choose approve or reject."), status=400)
    raw = request.form.getlist("proposals")
    ids = [int(i) for i in raw if i.isdigit()]
    if request.form.get("scope") != "all" and not ids:
        db.session.rollback()
        return render_detail(run, alert=_("Tick the proposals to decide, or choose all you may decide."),
                             status=400)
    version = _version(form.version.data) if form.version.data else None
    try:
        asked = None if request.form.get("scope") == "all" else ids
        results = _commit(lambda: tiering.decide_many(current_user, run, asked, form.decision.data,
                                                      form.comment.data, version))
    except WorkflowError as exc:
        return render_detail(_run_or_404(run_id), alert=_reason(exc), status=exc.status)
    done = sum(1 for r in results if r["result"] in ("approved", "rejected"))
    return render_detail(_run_or_404(run_id), results={"done": done, "rows": results})


@bp.route("/<int:run_id>/<action>", methods=["POST"])
def act(run_id: int, action: str):
    """Determine or cancel: 404, then the engine's checks (409, 403, the body, the version); one commit."""
    if action not in ("determine", "cancel"):
        abort(404)
    run = _run_or_404(run_id, lock=True)
    form = RunActionForm(formdata=request.form)
    if not form.validate():
        db.session.rollback()
        return render_detail(run, alert=_("The comment is too long."), status=400)
    version = _version(form.version.data)
    try:
        if action == "determine":
            _commit(lambda: tiering.determine(current_user, run, version))
        else:
            _commit(lambda: tiering.cancel(current_user, run, form.comment.data, version))
    except WorkflowError as exc:
        return render_detail(_run_or_404(run_id), alert=_reason(exc), status=exc.status)
    flash(_("The run is determined: the new tiers are in effect.") if action == "determine" else
          _("The run is cancelled."), "success")
    return redirect(url_for("tiering.detail", run_id=run.id))


@bp.route("/<int:run_id>/proposals.xlsx")
def proposals_xlsx(run_id: int):
    run = _run_or_404(run_id)
    cpol = tiering.customer_policy_of(run)
    try:
        q = proposal_query(run, request.args)
    except (WorkflowError, NotFound):
        abort(400)
    data = workbook(run, q, headers=(_("Customer code"), _("Customer"), _("Unit"), _("Industry"),
                                     _("Current tier"), _("Proposed tier"), _("Score"), _("Floor rule"),
                                     _("State"), _("Approval at"), _("Decided by"), _("Comment")),
                    tier_label=lambda t: tier_label(cpol, t) if t else "", state_label=_proposal_state,
                    sheet=_("Proposals"))
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True,
                     download_name=f"tiering-{run.id}-proposals.xlsx")


# --- awaiting me -------------------------------------------------------------------------------------

@bp.route("/pending")
def pending():
    """The pending proposals of runs in review that the current user may decide."""
    q = (select(TierProposal).join(TieringRun, TierProposal.run_id == TieringRun.id)
         .where(TieringRun.state == "review", TierProposal.state == "pending",
                tiering.decidable_filter(current_user, active_approval()))
         .options(joinedload(TierProposal.customer), joinedload(TierProposal.step_unit),
                  joinedload(TierProposal.run)).order_by(TierProposal.run_id, TierProposal.id))
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    cpols = {}
    for p in page.items:
        cpols.setdefault(p.run_id, tiering.customer_policy_of(p.run))
    return render_template("tiering/pending.html", page=page,
                           tier=lambda p, t: tier_label(cpols[p.run_id], t))
