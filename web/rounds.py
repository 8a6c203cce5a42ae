"""Promotion rounds' pages (晋级周期与名额): the list, opening a round, the round page with its quota
arithmetic, eligible people, applications, closing and deciding, and the results (also as XLSX)."""
from __future__ import annotations

import io

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from workflow import authority, clock, rounds
from workflow.errors import Conflict, Forbidden, NotFound, WorkflowError
from workflow.models import db, Case, Event, OrgUnit, Person, Round

from .api_rounds import XLSX, load_visible_round, quotas_json, workbook
from .forms import OpenRoundForm, RoundActionForm
from .views import active_policy, label, level_label

bp = Blueprint("rounds", __name__, url_prefix="/rounds")
PER_PAGE = 25
VIEWER_ROLES = ("hr", "approver", "admin")

ROUND_STATES = {"open": _l("Open for applications"), "closed": _l("Applications closed"),
                "decided": _l("Decided")}
ROUND_STATE_COLOURS = {"open": "primary", "closed": "warning", "decided": "success"}
ROUND_EVENTS = {"open": _l("Round opened"), "close": _l("Applications closed"), "decide": _l("Round decided")}
DECISIONS = {"promoted": _l("Promoted"), "not_selected": _l("Not selected")}


@bp.before_request
@login_required
def _logged_in():
    return None


@bp.app_template_filter("round_state")
def _round_state(state: str) -> str:
    return label(ROUND_STATES, state)


@bp.app_template_filter("round_state_colour")
def _round_state_colour(state: str) -> str:
    return ROUND_STATE_COLOURS.get(state, "secondary")


@bp.app_template_filter("round_event")
def _round_event(action: str) -> str:
    return label(ROUND_EVENTS, action)


@bp.app_template_filter("decision")
def _decision(decision: str) -> str:
    return label(DECISIONS, decision)


def _round_or_404(round_id: int, lock: bool = False) -> Round:
    try:
        return load_visible_round(round_id, current_user, lock=lock)
    except NotFound:
        abort(404)


def _openable_units() -> list[OrgUnit]:
    """Units where the current user may open a round: in the subtree of an `hr` role, at an org level the
    policy names for some level's HR approval."""
    pol = active_policy()
    hr_units = [ra.unit for ra in current_user.roles if ra.role == "hr"]
    if pol is None or not hr_units:
        return []
    levels = {pol.step_org_level(lv, "hr_approval") for lv in pol.level_ids}
    return list(db.session.scalars(select(OrgUnit).where(
        db.or_(*[OrgUnit.path.startswith(u.path) for u in hr_units]), OrgUnit.level.in_(levels))
        .order_by(OrgUnit.path)))


# --- the list ----------------------------------------------------------------------------------------

@bp.route("/")
def index():
    if not any(ra.role in VIEWER_ROLES for ra in current_user.roles):
        abort(403)
    q = select(Round).where(authority.round_visible_filter(current_user)).order_by(Round.id.desc())
    state = request.args.get("state", "").strip()
    if state:
        q = q.where(Round.state == state)
    q = q.options(joinedload(Round.unit), selectinload(Round.level_rows))
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    return render_template("rounds/list.html", page=page, state=state, states=list(ROUND_STATES),
                           can_open=bool(_openable_units()))


# --- opening -----------------------------------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
def new():
    units = _openable_units()
    if not units:
        abort(403)
    pol = active_policy()
    today = clock.today()
    form = OpenRoundForm(formdata=request.form if request.method == "POST" else None,
                         period=str(today.year), opens_on=today,
                         closes_on=today.replace(day=28) if today.day < 28 else today)
    form.unit.choices = [(u.code, f"{u.name} ({u.code})") for u in units]
    form.levels.choices = [(lv.id, level_label(lv.id, pol)) for lv in pol.ladder]
    hints = {lv.id: pol.step_org_level(lv.id, "hr_approval") for lv in pol.ladder}
    alert, status = None, 200
    if request.method == "POST" and form.validate():
        unit = next(u for u in units if u.code == form.unit.data)
        try:
            rnd = rounds.open_round(current_user, unit, form.period.data, form.title.data or None,
                                    form.opens_on.data, form.closes_on.data, list(form.levels.data))
            db.session.commit()
        except WorkflowError as exc:
            db.session.rollback()
            status = exc.status
            alert = _attach(form, exc)
        else:
            flash(_("The round is open: %(title)s.", title=rnd.title), "success")
            return redirect(url_for("rounds.detail", round_id=rnd.id))
    elif request.method == "POST":
        status = 400
    return render_template("rounds/new.html", form=form, alert=alert, hints=hints, pol=pol), status


def _attach(form, exc: WorkflowError) -> Markup | None:
    """An engine refusal next to the field it names, else as an alert; the engine's sentence follows as the
    detail, marked as not for translation."""
    message = Markup('{} <span class="engine-reason">{}</span>').format(
        _("You may not do this:") if isinstance(exc, Forbidden) else _("Refused:"), exc.message)
    field = exc.details.get("field")
    if field and field in form._fields:
        form[field].errors = list(form[field].errors or []) + [message]
        return None
    return message


# --- the round page ----------------------------------------------------------------------------------

def render_detail(rnd: Round, alert: str | None = None, status: int = 200):
    pol = rounds.policy_of(rnd)
    manage = bool(authority.can_manage_round(current_user, rnd.unit))
    cases = rounds.cases_of(rnd)
    applied = {c.employee_id: c for c in cases}        # the latest case of each applicant
    today = clock.today()
    taking = rnd.state == "open" and rnd.opens_on <= today <= rnd.closes_on
    eligible = rounds.eligible(rnd) if rnd.state != "decided" else {}
    may_file = {p.id for people in eligible.values() for p in people
                if authority.can_file_for(current_user, p)}
    events = db.session.scalars(select(Event).where(Event.chain == f"round:{rnd.id}")
                                .order_by(Event.seq)).all()
    names = {p.username: p.name for p in db.session.scalars(
        select(Person).where(Person.username.in_({ev.actor for ev in events})))}
    return render_template(
        "rounds/detail.html", rnd=rnd, pol=pol, quotas=quotas_json(rnd), manage=manage, cases=cases,
        applied=applied, taking=taking, eligible=eligible, may_file=may_file, events=events, names=names,
        pending=rounds.pending_cases(rnd), alert=alert,
        form=RoundActionForm(formdata=None, version=rnd.version),
        composite_visible=lambda c: authority.composite_visible(current_user, c), today=today), status


@bp.route("/<int:round_id>")
def detail(round_id: int):
    return render_detail(_round_or_404(round_id))


@bp.route("/<int:round_id>/<action>", methods=["POST"])
def act(round_id: int, action: str):
    """Close or decide: checks in the contract's order (404, 409, 403, then the body); one commit."""
    if action not in ("close", "decide"):
        abort(404)
    rnd = _round_or_404(round_id, lock=True)
    if rnd.state == "decided" or (action == "close" and rnd.state != "open"):
        db.session.rollback()
        alert = _("The round has changed since you loaded it: it is now “%(state)s”. The page shows it as "
                  "it is now.", state=_round_state(rnd.state))
        return render_detail(_round_or_404(round_id), alert=alert, status=409)
    allowed = authority.can_manage_round(current_user, rnd.unit)
    if not allowed:
        abort(403, allowed.reason)
    form = RoundActionForm(formdata=request.form)
    if not form.validate():
        abort(400)
    version = form.version.data
    version = int(version) if version and version.isdigit() else -1
    try:
        if action == "close":
            rounds.close_round(rnd, current_user, version)
        else:
            rounds.decide_round(rnd, current_user, version)
        db.session.commit()
    except Conflict as exc:
        db.session.rollback()
        if exc.details.get("cases"):
            alert = _("Not yet: %(n)s case(s) of the round have not reached HR approval.",
                      n=len(exc.details["cases"]))
        else:
            alert = _("The round has changed since you loaded it (another decision came first). The page now "
                      "shows it as it is; check it and try again.")
        return render_detail(_round_or_404(round_id), alert=alert, status=409)
    except WorkflowError as exc:
        db.session.rollback()
        detail = Markup('{} <span class="engine-reason">{}</span>').format(
            _("You may not do this:") if isinstance(exc, Forbidden) else _("Refused:"), exc.message)
        return render_detail(_round_or_404(round_id), alert=detail, status=exc.status)
    except Exception:
        db.session.rollback()
        raise
    flash(_("Applications are closed.") if action == "close" else _("The round is decided."), "success")
    return redirect(url_for("rounds.detail", round_id=rnd.id))


@bp.route("/<int:round_id>/results.xlsx")
def results_xlsx(round_id: int):
    rnd = _round_or_404(round_id)
    if rnd.state != "decided":
        return render_detail(rnd, alert=_("The results come with the round's decision."), status=409)
    pol = rounds.policy_of(rnd)
    data = workbook(rnd, headers=(_("Target level"), _("Rank"), _("Username"), _("Name"), _("Case"),
                                  _("Composite score"), _("Selection")),
                    level_label=lambda lv: level_label(lv, pol), decision_label=_decision, sheet=_("Results"))
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True,
                     download_name=f"round-{rnd.id}-results.xlsx")


# --- on the case pages -------------------------------------------------------------------------------

@bp.app_template_global("round_of")
def round_of(case: Case) -> Round | None:
    """The case's round, for the case page (the applicant sees it too)."""
    return db.session.get(Round, case.round_id) if case.round_id is not None else None


@bp.app_template_global("round_visible")
def round_visible(rnd: Round) -> bool:
    return authority.can_see_round(current_user, rnd)


def for_application(employee: Person) -> tuple[int | None, Round | None, list[Round]]:
    """For the application form: the round asked for (`round` in the query or the form; the engine judges
    it), that round if it exists, and the rounds open to the employee today."""
    raw = (request.values.get("round") or "").strip()
    round_id = int(raw) if raw.isdigit() else None
    return round_id, db.session.get(Round, round_id) if round_id else None, rounds.open_rounds_for(employee)
