"""The rounds part of the JSON API (/api/v1/rounds), on the API blueprint: same auth, same JSON errors.

Handlers parse, call workflow.rounds, commit once, answer. A decision runs in one transaction: every
case's event and the round's land together, or (any failure) nothing does.
"""
from __future__ import annotations

import io
from typing import Any, Callable

from flask import jsonify, request, send_file
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from workflow import authority, rounds
from workflow.errors import Conflict, NotFound
from workflow.models import db, OrgUnit, Person, Round

from .api import body, bp, paginate, unit_by_code, unit_in_body
from .unit_of_work import commit_or_conflict

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def load_visible_round(round_id: int, viewer: Person, lock: bool = False) -> Round:
    """The round, if the viewer may see it (404 otherwise); row-locked on PostgreSQL when `lock`."""
    q = select(Round).where(Round.id == round_id).execution_options(populate_existing=True)
    if lock:
        q = q.with_for_update(of=Round)
    rnd = db.session.scalar(q)
    if rnd is None or not authority.can_see_round(viewer, rnd):
        raise NotFound(f"no round {round_id}")
    return rnd


def quotas_json(rnd: Round, computed: dict[int, dict[str, rounds.Quota]] | None = None) -> dict[str, Any]:
    """A decided round shows the quotas its decision used; an open or closed one, today's arithmetic
    (from `computed`, rounds.quotas_of of a page of rounds, when given)."""
    if rnd.state == "decided" and rnd.quotas is not None:
        return rnd.quotas
    live = computed[rnd.id] if computed is not None else rounds.quotas(rnd)
    return {lv: q.to_json() for lv, q in live.items()}


def round_json(rnd: Round, viewer: Person, detail: bool = False,
               computed: dict[int, dict[str, rounds.Quota]] | None = None) -> dict[str, Any]:
    out = {
        "id": rnd.id, "version": rnd.version, "unit": rnd.unit.code, "unit_name": rnd.unit.name,
        "period": rnd.period, "title": rnd.title, "state": rnd.state, "opens_on": rnd.opens_on.isoformat(),
        "closes_on": rnd.closes_on.isoformat(), "levels": rnd.levels, "quotas": quotas_json(rnd, computed),
        "min_composite": rnd.min_composite,
        "policy_version": {"label": rnd.policy_version.label, "hash": rnd.policy_version.hash},
        "created_by": rnd.created_by.username, "created_at": rnd.created_at.isoformat() + "Z",
        "closed_at": rnd.closed_at.isoformat() + "Z" if rnd.closed_at else None,
        "decided_at": rnd.decided_at.isoformat() + "Z" if rnd.decided_at else None,
    }
    if detail:
        out["eligible"] = {lv: [p.username for p in people] for lv, people in rounds.eligible(rnd).items()}
        out["applications"] = [
            {"case": c.id, "employee": c.employee.username, "from_grade": c.from_grade,
             "target_grade": c.target_grade, "state": c.state,
             "composite": c.composite if authority.composite_visible(viewer, c) else None}
            for c in rounds.cases_of(rnd)]
        out["results"] = rnd.results
    return out


def _commit_or_conflict(work: Callable[[], Round]) -> Round:
    """Run a change to a round and commit it; a lost race is a 409 and changes nothing."""
    return commit_or_conflict(work, _l("another change to this round or its cases came first; reload it"))


# --- the endpoints -------------------------------------------------------------------------------------

@bp.get("/rounds")
def list_rounds():
    q = select(Round).where(authority.round_visible_filter(current_user)).order_by(Round.id.desc())
    if request.args.get("state"):
        q = q.where(Round.state == request.args["state"])
    if request.args.get("unit"):
        unit = unit_by_code(request.args["unit"])
        q = q.where(Round.unit_id.in_(select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path))))
    q = q.options(joinedload(Round.unit), joinedload(Round.created_by), selectinload(Round.level_rows))
    computed: dict[int, dict[str, rounds.Quota]] = {}

    def live_quotas(page: list[Round]) -> None:
        computed.update(rounds.quotas_of([r for r in page if r.state != "decided" or r.quotas is None]))

    return paginate(q, lambda r: round_json(r, current_user, computed=computed), prepare=live_quotas)


@bp.post("/rounds")
def open_round():
    data = body()
    unit = unit_in_body(data)
    rnd = _commit_or_conflict(lambda: rounds.open_round(
        current_user, unit, data.get("period"), data.get("title"), data.get("opens_on"),
        data.get("closes_on"), data.get("levels")))
    return jsonify(round_json(rnd, current_user)), 201


@bp.get("/rounds/<int:round_id>")
def get_round(round_id: int):
    return jsonify(round_json(load_visible_round(round_id, current_user), current_user, detail=True))


@bp.post("/rounds/<int:round_id>/close")
def close_round(round_id: int):
    data = body()
    rnd = _commit_or_conflict(lambda: rounds.close_round(
        load_visible_round(round_id, current_user, lock=True), current_user, data.get("version")))
    return jsonify(round_json(rnd, current_user))


@bp.post("/rounds/<int:round_id>/decide")
def decide_round(round_id: int):
    data = body()
    rnd = _commit_or_conflict(lambda: rounds.decide_round(
        load_visible_round(round_id, current_user, lock=True), current_user, data.get("version")))
    return jsonify(round_json(rnd, current_user))


def _decided(round_id: int) -> Round:
    rnd = load_visible_round(round_id, current_user)
    if rnd.state != "decided":
        raise Conflict(f"round {rnd.id} is {rnd.state}; its results come with the decision", state=rnd.state)
    return rnd


@bp.get("/rounds/<int:round_id>/results")
def round_results(round_id: int):
    return jsonify(_decided(round_id).results)


@bp.get("/rounds/<int:round_id>/results.xlsx")
def round_results_xlsx(round_id: int):
    rnd = _decided(round_id)
    return send_file(io.BytesIO(workbook(rnd)), mimetype=XLSX, as_attachment=True,
                     download_name=f"round-{rnd.id}-results.xlsx")


# --- the spreadsheet -------------------------------------------------------------------------------------

HEADERS = ("level", "rank", "username", "name", "case", "composite", "decision")


def workbook(rnd: Round, headers=HEADERS, level_label=str, decision_label=str,
             sheet: str = "results") -> bytes:
    """The decided round's results, one row per candidate in rank order, level by level (highest first)."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append([str(h) for h in headers])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    names = dict(db.session.execute(select(Person.username, Person.name).where(
        Person.username.in_([r["username"] for rows in (rnd.results or {}).values() for r in rows]))).all())
    for level in reversed(rnd.levels):
        for r in (rnd.results or {}).get(level, []):
            ws.append([level_label(level), r["rank"], r["username"], names.get(r["username"], ""), r["case"],
                       r["composite"], decision_label(r["decision"])])
    for col, width in zip("ABCDEFG", (22, 6, 16, 16, 8, 11, 14)):
        ws.column_dimensions[col].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
