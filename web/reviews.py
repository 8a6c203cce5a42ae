"""The annual review's pages (年度考核排名): choose a unit and a year, preview the outcomes (a dry run that
changes nothing), then open the cases; and the stored runs with links to the cases they opened."""
from __future__ import annotations

from collections import Counter
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from workflow import authority, clock, review
from workflow.errors import Forbidden, WorkflowError
from workflow.models import db, OrgUnit, Review

from .api_reviews import run
from .forms import ReviewPreviewForm, ReviewRunForm
from .views import active_policy, label

bp = Blueprint("reviews", __name__, url_prefix="/reviews")
PER_PAGE = 25
VIEWER_ROLES = ("hr", "approver", "admin")

OUTCOMES = {"recompete": _l("Re-competes for the level"), "demote_absence": _l("Demoted for absence"),
            "exempt_leave": _l("Exempt (leave)"),
            "dismiss_consecutive": _l("Dismissal: two demotions in a row"),
            "tier_up": _l("Up one tier"), "tier_down": _l("Down one tier"), "none": _l("No action")}
OUTCOME_COLOURS = {"recompete": "warning", "demote_absence": "danger", "exempt_leave": "info",
                   "dismiss_consecutive": "danger", "tier_up": "success", "tier_down": "secondary",
                   "none": "light"}


@bp.before_request
@login_required
def _logged_in():
    return None


@bp.app_template_filter("review_outcome")
def _review_outcome(outcome: str) -> str:
    return label(OUTCOMES, outcome)


@bp.app_template_filter("review_outcome_colour")
def _review_outcome_colour(outcome: str) -> str:
    return OUTCOME_COLOURS.get(outcome, "secondary")


def _number(value: Any) -> str:
    return "—" if value is None else f"{value:g}"


def reason_text(o: dict[str, Any], period: str) -> str:
    """The outcome's reason in the user's language, from the outcome's fields (the engine's sentence where
    they say too little)."""
    year, basis = int(period), o.get("basis")
    if basis == "rank":
        where = dict(rank=o["rank"], of=o["of"], scope=o["scope"])
        if o.get("percent") is None:
            text = _("Rank %(rank)s of %(of)s in %(scope)s; this level does not re-compete", **where)
        elif o["outcome"] == "recompete":
            text = _("Rank %(rank)s of %(of)s in %(scope)s: in the bottom %(percent)s%% of the level",
                     percent=_number(o["percent"]), **where)
        else:
            text = _("Rank %(rank)s of %(of)s in %(scope)s: above the bottom %(percent)s%% of the level",
                     percent=_number(o["percent"]), **where)
    elif basis == "no_score":
        text = _("No performance score in %(year)s: not ranked", year=year)
    elif basis == "leave":
        text = _("Worked %(months)s months in %(year)s because of leave: exempt from the review",
                 months=_number(o["worked_months"]), year=year)
    elif basis == "absence":
        text = _("Worked %(months)s months in %(year)s because of other absence: demoted one level",
                 months=_number(o["worked_months"]), year=year)
    elif basis == "absence_lowest_level":
        text = _("Worked %(months)s months in %(year)s because of other absence, but this is the lowest "
                 "level: no demotion", months=_number(o["worked_months"]), year=year)
    elif basis == "consecutive_demotions":
        text = _("Demoted in %(before)s and in %(year)s: two demotions in a row", before=year - 1, year=year)
    else:
        return Markup('<span translate="no">{}</span>').format(o.get("reason", ""))
    if o["outcome"] in review.TIER_MOVES:
        text += " · " + _("to %(grade)s, without a panel", grade=o["to_grade"])
        if o.get("open_case"):
            text += " · " + _("has an open case (%(id)s): the tier stays until it is finished", id=o["open_case"])
    elif o.get("open_case"):
        text += " · " + _("already has an open case (%(id)s): no second one is opened", id=o["open_case"])
    return text


def _runnable_units() -> list[OrgUnit]:
    """Units whose review the current user may run: the subtrees of their `hr` roles."""
    hr_units = [ra.unit for ra in current_user.roles if ra.role == "hr"]
    if not hr_units or current_user.status == "dismissed":
        return []
    return list(db.session.scalars(select(OrgUnit).where(
        db.or_(*[OrgUnit.path.startswith(u.path) for u in hr_units])).order_by(OrgUnit.path)))


def _preview_form(units: list[OrgUnit], formdata=None) -> ReviewPreviewForm:
    form = ReviewPreviewForm(formdata=formdata, period=str(clock.today().year - 1))
    form.unit.choices = [(u.code, f"{u.name} ({u.code})") for u in units]
    return form


def _render_index(form: ReviewPreviewForm | None, alert: Markup | None = None, status: int = 200):
    q = select(Review).where(authority.review_visible_filter(current_user)).order_by(Review.id.desc())
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    counts = {r.id: Counter(o["outcome"] for o in r.outcomes) for r in page.items}
    return render_template("reviews/index.html", form=form, page=page, counts=counts, alert=alert,
                           outcomes=list(OUTCOMES)), status


def _refusal(exc: WorkflowError) -> Markup:
    return Markup('{} <span class="engine-reason">{}</span>').format(
        _("You may not do this:") if isinstance(exc, Forbidden) else _("Refused:"), exc.message)


# --- the pages -----------------------------------------------------------------------------------------

@bp.route("/")
def index():
    if not any(ra.role in VIEWER_ROLES for ra in current_user.roles):
        abort(403)
    units = _runnable_units()
    return _render_index(_preview_form(units) if units else None)


@bp.route("/preview")
def preview():
    """The dry run: every outcome with its reason; nothing is written."""
    units = _runnable_units()
    code = (request.args.get("unit") or "").strip()
    if code and code not in {u.code for u in units}:
        # As in the API: a unit the viewer may not see is 404; one they see but may not review, 403.
        unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if unit is None or not authority.can_view_unit(current_user, unit):
            abort(404)
        abort(403, _("Only HR at %(unit)s or above may run its annual review.", unit=unit.code))
    if not units:
        abort(403, _("Only HR may run the annual review."))
    form = _preview_form(units, request.args)
    if not form.validate():
        return _render_index(form, status=400)
    unit = next(u for u in units if u.code == form.unit.data)
    try:
        result = review.annual_review(unit, form.period.data, current_user, dry_run=True)
    except WorkflowError as exc:
        db.session.rollback()
        return _render_index(form, alert=_refusal(exc), status=exc.status)
    if result.stored:
        flash(_("%(unit)s was reviewed for %(period)s already; here is the stored result.", unit=unit.code,
                period=result.period), "info")
        return redirect(url_for("reviews.detail", review_id=result.review.id))
    run_form = ReviewRunForm(formdata=None, unit=unit.code, period=result.period)
    acts = [result.outcomes[i] for i in review.actionable(result.outcomes)]   # what the real run would do
    return render_template("reviews/preview.html", result=result, run_form=run_form, pol=active_policy(),
                           counts=Counter(o["outcome"] for o in result.outcomes), outcomes=list(OUTCOMES),
                           to_open=sum(1 for o in acts if o["outcome"] in review.CASES),
                           to_move=sum(1 for o in acts if o["outcome"] in review.TIER_MOVES))


@bp.route("/run", methods=["POST"])
def run_review():
    """Store the review and open its cases (one commit); a second run answers the stored one."""
    form = ReviewRunForm(formdata=request.form)
    if not form.validate():
        abort(400)
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == form.unit.data))
    if unit is None or not authority.can_view_unit(current_user, unit):
        abort(404)
    try:
        result = run(unit, form.period.data, current_user, dry_run=False)
    except WorkflowError as exc:
        db.session.rollback()
        units = _runnable_units()
        return _render_index(_preview_form(units) if units else None, alert=_refusal(exc), status=exc.status)
    if result.created:
        opened = sum(1 for o in result.outcomes if o.get("case"))
        flash(_("The review is stored; %(n)s case(s) opened.", n=opened), "success")
    else:
        flash(_("%(unit)s was reviewed for %(period)s already; nothing new was opened.", unit=unit.code,
                period=result.period), "info")
    return redirect(url_for("reviews.detail", review_id=result.review.id))


@bp.route("/<int:review_id>")
def detail(review_id: int):
    r = db.session.get(Review, review_id)
    if r is None or not authority.can_view_unit(current_user, r.unit):
        abort(404)
    return render_template("reviews/detail.html", r=r, pol=active_policy(),
                           counts=Counter(o["outcome"] for o in r.outcomes), outcomes=list(OUTCOMES))


@bp.app_template_global("review_reason")
def review_reason(o: dict[str, Any], period: str) -> str:
    return reason_text(o, period)
