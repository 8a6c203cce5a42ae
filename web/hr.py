"""HR pages: the pipeline of a unit in the viewer's scope."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import select

from workflow import authority, clock, reports
from workflow.machines import RULEBOOKS
from workflow.models import db, OrgUnit

from .views import active_policy

bp = Blueprint("hr", __name__, url_prefix="/hr")
PIPELINE_ROLES = ("hr", "approver", "admin")
PER_PAGE = 25


@bp.before_request
@login_required
def _logged_in():
    return None


@bp.route("/pipeline")
def pipeline():
    # A unit the viewer may not see is 404 before anything else, as in the API (CONTRACT.md's order).
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
    kind = request.args.get("kind") or None
    report = reports.pipeline(unit, kind)
    # The overdue cases a page at a time, the oldest deadline first, with what their rows show.
    overdue = db.paginate(reports.overdue_query(unit, kind).options(*reports.case_row_options()),
                          per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    pol = active_policy()
    levels = [lv.id for lv in pol.ladder if lv.id in report["by_level"]] if pol else []
    levels += [lv for lv in report["by_level"] if lv not in levels]
    known = [s for rb in RULEBOOKS.values() for s in rb.states]
    states = [s for s in dict.fromkeys(known) if s in report["by_state"]]
    states += [s for s in report["by_state"] if s not in states]
    return render_template("hr/pipeline.html", unit=unit, units=units, report=report, levels=levels,
                           states=states, overdue=overdue, kind=kind, today=clock.today())
