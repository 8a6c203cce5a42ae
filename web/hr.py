"""HR pages: the dashboard of a unit in the viewer's scope (the pipeline), with its charts as SVG images."""
from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from workflow import authority, clock, portfolios, reports
from workflow.machines import RULEBOOKS
from workflow.models import db, OrgUnit

from . import charts
from .views import active_policy, level_label

bp = Blueprint("hr", __name__, url_prefix="/hr")
PIPELINE_ROLES = ("hr", "approver", "admin")
PER_PAGE = 25
FUNNEL_LABELS = {"filed": _l("Filed"), "qualified": _l("Qualified"), "hr_approval": _l("Reached HR approval"),
                 "approved": _l("Approved by HR"), "effective": _l("Effective")}


@bp.before_request
@login_required
def _logged_in():
    return None


def _unit_and_units() -> tuple[OrgUnit, list[OrgUnit]]:
    """The unit asked for (`?unit=`) or the viewer's highest, and the units the viewer may choose from. A unit
    the viewer may not see is 404 before anything else, as in the API (CONTRACT.md's order); a viewer with no
    pipeline role is 403."""
    code = request.args.get("unit")
    unit = None
    if code:
        unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if unit is None or not authority.can_view_unit(current_user, unit, PIPELINE_ROLES):
            abort(404)
    units = sorted({ra.unit.id: ra.unit for ra in current_user.roles if ra.role in PIPELINE_ROLES}.values(),
                   key=lambda u: (len(u.path), u.code))
    if not units:
        abort(403)
    unit = unit or units[0]
    if unit not in units:
        units.append(unit)
    return unit, units


def _kind() -> str | None:
    kind = (request.args.get("kind") or "").strip() or None
    if kind is not None and kind not in RULEBOOKS:
        abort(400, _("There is no case kind '%(kind)s'.", kind=kind[:40]))
    return kind


@bp.route("/pipeline")
def pipeline():
    unit, units = _unit_and_units()
    kind = _kind()
    pol = active_policy()
    today = clock.today()
    report = reports.pipeline(unit, kind, today, pol)
    # The overdue cases a page at a time, the most late first, with what their rows show.
    overdue = db.paginate(reports.overdue_query(unit, kind, today).options(*reports.case_row_options()),
                          per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    holidays = pol.holidays if pol else frozenset()
    late = {c.id: ((today - c.deadline).days, reports.working_days_between(c.deadline, today, holidays))
            for c in overdue.items}
    levels = [lv.id for lv in pol.ladder if lv.id in report["by_level"]] if pol else []
    levels += [lv for lv in report["by_level"] if lv not in levels]
    known = [s for rb in RULEBOOKS.values() for s in rb.states]
    states = [s for s in dict.fromkeys(known) if s in report["by_state"]]
    states += [s for s in report["by_state"] if s not in states]
    unit_totals = {code: sum(n for by_state in by_level.values() for n in by_state.values())
                   for code, by_level in report["by_unit"].items()}
    hc = report["headcount"]
    headcount_rows = [(unit.code, _("All of %(unit)s", unit=unit.name), hc["total"], True)]
    headcount_rows += [(u["code"], _("Directly in %(unit)s", unit=u["name"]) if u["direct"] else u["name"],
                        hc["by_unit"][u["code"]], False) for u in report["units"] if u["code"] in hc["by_unit"]]
    return render_template("hr/pipeline.html", unit=unit, units=units, report=report, levels=levels,
                           states=states, overdue=overdue, late=late, kind=kind, kinds=list(RULEBOOKS),
                           funnel_labels=FUNNEL_LABELS, unit_totals=unit_totals, headcount_rows=headcount_rows,
                           today=today, portfolio=portfolios.dashboard(unit, today))


# A chart opened on its own is an SVG document: its drawing is styled by its own <style> (pygal's), and it
# runs no script and loads nothing (shown by an <img>, the page's policy does not apply to it at all).
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _svg(data: bytes) -> Response:
    return Response(data, mimetype="image/svg+xml", headers={"Content-Security-Policy": SVG_POLICY})


@bp.route("/pipeline/funnel.svg")
def funnel_chart():
    """The funnel of the unit's promotions, as an SVG image."""
    unit, _units = _unit_and_units()
    stages = [(str(FUNNEL_LABELS[s["stage"]]), s["cases"]) for s in reports.funnel(unit)]
    return _svg(charts.funnel(stages, _("Promotions: how far they got"), _("No promotion yet")))


@bp.route("/pipeline/grades.svg")
def grades_chart():
    """The unit's managers by level against the policy's caps and targets, as an SVG image."""
    unit, _units = _unit_and_units()
    pol = active_policy()
    hc = reports.headcount(unit, policy=pol)["total"]
    rows = []
    for lv, f in hc["levels"].items():
        limit = ((_("cap"), round(f["cap"] * 100, 1)) if f["cap"] is not None else
                 (_("target"), round(f["target"] * 100, 1)) if f["target"] is not None else None)
        rows.append((level_label(lv, pol), round(f["share"] * 100, 1) if f["share"] is not None else None,
                     limit, f["over_cap"]))
    return _svg(charts.grades(rows if hc["headcount"] else [], _("Managers by level against the policy"),
                              _("Share of managers"), _("Policy cap or target"), _("No manager in this unit")))
