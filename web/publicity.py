"""公示: the promotions in publicity that the viewer may see, and what the case page shows of a publicity
(the window's end, the objections, HR's answers). The engine decides who may object and who answers;
workflow.authority decides who sees a case in publicity (everyone in the approving unit's subtree)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from workflow import authority, clock, reports, rules
from workflow.models import db, Case

from .serialize import objector_visible

bp = Blueprint("publicity", __name__)
PER_PAGE = 25
PUBLICITY_EVENTS = ("object", "uphold", "overturn", "end_publicity")


@bp.before_request
@login_required
def _logged_in():
    return None


def publicity_query(viewer):
    """The promotions in publicity the viewer may see, the window closing soonest first."""
    return (select(Case).where(authority.visible_filter(viewer), Case.state == "publicity")
            .order_by(Case.deadline, Case.id))


@bp.route("/publicity")
def index():
    q = publicity_query(current_user).options(*reports.case_row_options(), selectinload(Case.events))
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    objected = {ev.case_id for c in page.items for ev in c.events
                if ev.action == "object" and ev.actor_id == current_user.id}
    return render_template("publicity/list.html", page=page, objected=objected, today=clock.today(),
                           pending=rules.pending_objections)


@bp.app_template_global("objector_shown")
def objector_shown(case: Case, ev) -> bool:
    """May the viewer see who took this event? (Only an objection hides its author; see serialize.)"""
    return objector_visible(current_user, case, ev)


@bp.app_template_global("publicity_of")
def publicity_of(case: Case) -> dict[str, Any] | None:
    """The publicity of a promotion, for the case page: None when it had none."""
    events = [ev for ev in case.events if ev.action in PUBLICITY_EVENTS]
    if case.kind != "promotion" or (case.state != "publicity" and not events):
        return None
    answers = [ev for ev in events if ev.action in ("uphold", "overturn")]
    objections = []
    for ev in events:
        if ev.action != "object":
            continue
        objections.append({
            "event": ev, "statement": (ev.data or {}).get("statement", ""), "at": ev.at,
            "mine": ev.actor_id == current_user.id, "shown": objector_visible(current_user, case, ev),
            # HR's answer: the first uphold or overturn after the objection.
            "answer": next((a for a in answers if a.seq > ev.seq), None),
        })
    linked = {o["answer"].seq for o in objections if o["answer"] is not None}
    ended = next((ev for ev in events if ev.action == "end_publicity"), None)
    is_open = case.state == "publicity"
    return {"open": is_open, "ends_on": case.deadline if is_open else None, "objections": objections,
            "other_answers": [a for a in answers if a.seq not in linked],
            "pending": rules.pending_objections(case), "ended": ended}
