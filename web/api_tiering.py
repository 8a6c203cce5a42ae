"""The tiering part of the JSON API (/api/v1/tiering-runs), on the API blueprint: same auth, same JSON errors.

Handlers parse, call workflow.tiering, commit once, answer. A bulk decision runs in one transaction and
answers one result per proposal asked for.
"""
from __future__ import annotations

import io
from typing import Any, Callable, Mapping

from flask import jsonify, request, send_file
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from workflow import authority, tiering
from workflow.errors import Invalid, NotFound, WorkflowError
from workflow.models import db, Event, OrgUnit, Person
from workflow.models.customers import PROPOSAL_STATES, RUN_STATES, TieringRun, TierProposal

from .api import body, bp, paginate, unit_by_code, unit_in_body
from .unit_of_work import commit_or_conflict

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
         "off": False, "": False}


def active_approval():
    """The active policy's customers.approval (who decides pending proposals, where), if any."""
    try:
        return tiering.customers_mod.active()[1].approval
    except WorkflowError:
        return None


def approval_role() -> str | None:
    approval = active_approval()
    return approval.role if approval is not None else None


def visible_filter(viewer: Person):
    return tiering.visible_filter(viewer, approval_role())


def load_visible_run(run_id: int, viewer: Person, lock: bool = False) -> TieringRun:
    """The run, if the viewer may see it (404 otherwise); row-locked on PostgreSQL when `lock`."""
    q = select(TieringRun).where(TieringRun.id == run_id).execution_options(populate_existing=True)
    if lock:
        q = q.with_for_update(of=TieringRun)
    run = db.session.scalar(q)
    if run is None or not tiering.can_see(viewer, run, approval_role()):
        raise NotFound(f"no tiering run {run_id}")
    return run


def load_proposal(run: TieringRun, proposal_id: int) -> TierProposal:
    p = db.session.scalar(select(TierProposal)
                          .where(TierProposal.id == proposal_id, TierProposal.run_id == run.id)
                          .options(joinedload(TierProposal.customer), joinedload(TierProposal.step_unit))
                          .execution_options(populate_existing=True))
    if p is None:
        raise NotFound(f"no proposal {proposal_id} in tiering run {run.id}")
    return p


def run_json(run: TieringRun, detail: bool = False) -> dict[str, Any]:
    out = {
        "id": run.id, "version": run.version, "unit": run.unit.code, "unit_name": run.unit.name,
        "period": run.period, "state": run.state, "counts": run.counts or {},
        "policy_version": {"label": run.policy_version.label, "hash": run.policy_version.hash},
        "created_by": run.created_by.username, "created_at": run.created_at.isoformat() + "Z",
        "determined_at": run.determined_at.isoformat() + "Z" if run.determined_at else None,
        "effective_on": run.effective_on.isoformat() if run.effective_on else None,
    }
    if detail:
        out["events"] = [{"seq": ev.seq, "action": ev.action, "from_state": ev.from_state,
                          "to_state": ev.to_state, "actor": ev.actor, "at": ev.at.isoformat() + "Z",
                          "comment": ev.comment or "", "data": ev.data or {}}
                         for ev in events_of(run)]
    return out


def events_of(run: TieringRun) -> list[Event]:
    return list(db.session.scalars(select(Event).where(Event.chain == f"tiering:{run.id}")
                                   .order_by(Event.seq)))


def proposal_json(p: TierProposal) -> dict[str, Any]:
    return {"id": p.id, "customer": {"id": p.customer_id, "code": p.customer.code, "name": p.customer.name},
            "current_tier": p.current_tier, "proposed_tier": p.proposed_tier, "score": p.score,
            "breakdown": p.breakdown or {}, "state": p.state,
            "step_unit": p.step_unit.code if p.step_unit is not None else None,
            "decided_by": p.decided_by.username if p.decided_by is not None else None,
            "decided_at": p.decided_at.isoformat() + "Z" if p.decided_at else None,
            "comment": p.comment or ""}


def proposal_query(run: TieringRun, args: Mapping[str, str]):
    """The run's proposals, filtered by `state`, `tier` (proposed), `changed` (a flag) and `step_unit` (a
    unit code): a bad value is 400, an unknown unit 404."""
    q = (select(TierProposal).where(TierProposal.run_id == run.id)
         .options(joinedload(TierProposal.customer), joinedload(TierProposal.step_unit),
                  joinedload(TierProposal.decided_by)).order_by(TierProposal.id))
    state = (args.get("state") or "").strip()
    if state:
        if state not in PROPOSAL_STATES:
            raise Invalid(f"state must be one of {', '.join(PROPOSAL_STATES)}", field="state")
        q = q.where(TierProposal.state == state)
    tier = (args.get("tier") or "").strip()
    if tier:
        q = q.where(TierProposal.proposed_tier == tier)
    changed = (args.get("changed") or "").strip().lower()
    if changed not in FLAGS:
        raise Invalid("changed must be 1 or 0", field="changed")
    if FLAGS[changed]:
        q = q.where(TierProposal.state != "unchanged")
    code = (args.get("step_unit") or "").strip()
    if code:
        q = q.where(TierProposal.step_unit_id == unit_by_code(code).id)
    return q


def _commit_or_conflict(work: Callable[[], Any]) -> Any:
    """Run a change to a tiering run and commit it; a lost race is a 409 and changes nothing."""
    return commit_or_conflict(work, _l("another change to this tiering run came first; reload it"))


# --- the endpoints -------------------------------------------------------------------------------------

@bp.get("/tiering-runs")
def list_tiering_runs():
    q = select(TieringRun).where(visible_filter(current_user)).order_by(TieringRun.id.desc())
    state = request.args.get("state")
    if state:
        if state not in RUN_STATES:
            raise Invalid(f"state must be one of {', '.join(RUN_STATES)}", field="state")
        q = q.where(TieringRun.state == state)
    if request.args.get("unit"):
        unit = unit_by_code(request.args["unit"])
        if not authority.can_view_unit(current_user, unit):
            raise NotFound(f"no unit '{unit.code}' in your scope")
        q = q.where(TieringRun.unit_id.in_(tiering.subtree_ids(unit)))
    q = q.options(joinedload(TieringRun.unit), joinedload(TieringRun.created_by),
                  joinedload(TieringRun.policy_version))
    return paginate(q, run_json)


@bp.post("/tiering-runs")
def start_tiering_run():
    data = body()
    unit = unit_in_body(data)
    run = _commit_or_conflict(lambda: tiering.start(current_user, unit, data.get("period")))
    return jsonify(run_json(run)), 201


@bp.get("/tiering-runs/<int:run_id>")
def get_tiering_run(run_id: int):
    return jsonify(run_json(load_visible_run(run_id, current_user), detail=True))


@bp.get("/tiering-runs/<int:run_id>/proposals")
def list_tier_proposals(run_id: int):
    run = load_visible_run(run_id, current_user)
    return paginate(proposal_query(run, request.args), proposal_json)


def _decide(run_id: int, proposal_id: int, decision: str):
    data = body()
    run = load_visible_run(run_id, current_user, lock=True)
    proposal = load_proposal(run, proposal_id)
    _commit_or_conflict(lambda: tiering.decide(current_user, proposal, decision, data.get("comment"),
                                               data.get("version")))
    return jsonify(proposal_json(proposal))


@bp.post("/tiering-runs/<int:run_id>/proposals/<int:proposal_id>/approve")
def approve_tier_proposal(run_id: int, proposal_id: int):
    return _decide(run_id, proposal_id, "approve")


@bp.post("/tiering-runs/<int:run_id>/proposals/<int:proposal_id>/reject")
def reject_tier_proposal(run_id: int, proposal_id: int):
    return _decide(run_id, proposal_id, "reject")


@bp.post("/tiering-runs/<int:run_id>/decisions")
def decide_tier_proposals(run_id: int):
    data = body()
    run = load_visible_run(run_id, current_user, lock=True)
    ids = data.get("proposals")
    if ids is not None and not isinstance(ids, list):
        raise Invalid("proposals must be a list of proposal ids (or absent: all you may decide)",
                      field="proposals")
    results = _commit_or_conflict(lambda: tiering.decide_many(current_user, run, ids, data.get("decision"),
                                                              data.get("comment"), data.get("version")))
    return jsonify({"results": results, "run": run_json(run)})


@bp.post("/tiering-runs/<int:run_id>/determine")
def determine_tiering_run(run_id: int):
    data = body()
    run = _commit_or_conflict(lambda: tiering.determine(
        current_user, load_visible_run(run_id, current_user, lock=True), data.get("version")))
    return jsonify(run_json(run))


@bp.post("/tiering-runs/<int:run_id>/cancel")
def cancel_tiering_run(run_id: int):
    data = body()
    run = _commit_or_conflict(lambda: tiering.cancel(
        current_user, load_visible_run(run_id, current_user, lock=True), data.get("comment"),
        data.get("version")))
    return jsonify(run_json(run))


@bp.get("/tiering-runs/<int:run_id>/proposals.xlsx")
def tier_proposals_xlsx(run_id: int):
    run = load_visible_run(run_id, current_user)
    data = workbook(run, proposal_query(run, request.args))
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True,
                     download_name=f"tiering-{run.id}-proposals.xlsx")


# --- the spreadsheet -------------------------------------------------------------------------------------

HEADERS = ("customer", "name", "unit", "industry", "current_tier", "proposed_tier", "score", "floor", "state",
           "step_unit", "decided_by", "comment")


def workbook(run: TieringRun, query, headers=HEADERS, tier_label=lambda t: t or "", state_label=str,
             sheet: str = "proposals") -> bytes:
    """The run's proposals (as filtered), one row each, with the score's terms after the fixed columns."""
    cpol = tiering.customer_policy_of(run)
    wb = Workbook(write_only=False)
    ws = wb.active
    ws.title = sheet
    ws.append([str(h) for h in headers] + [t.input for t in cpol.score])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    units = dict(db.session.execute(select(OrgUnit.id, OrgUnit.code).where(
        OrgUnit.path.startswith(run.unit.path))).all())
    for p in db.session.scalars(query).unique():
        floor = (p.breakdown or {}).get("floor")
        points = {t["input"]: t["points"] for t in (p.breakdown or {}).get("terms", [])}
        ws.append([p.customer.code, p.customer.name, units.get(p.customer.unit_id, ""),
                   p.customer.industry or "", tier_label(p.current_tier), tier_label(p.proposed_tier),
                   p.score,
                   tier_label(floor["at_least"]) if floor else "", state_label(p.state),
                   p.step_unit.code if p.step_unit else "", p.decided_by.username if p.decided_by else "",
                   p.comment or ""] + [points.get(t.input) for t in cpol.score])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def counts_of(run: TieringRun) -> dict[str, int]:
    """The proposals by state, counted afresh (the run's counts keep them too)."""
    return dict(db.session.execute(select(TierProposal.state, func.count()).where(
        TierProposal.run_id == run.id).group_by(TierProposal.state)).all())


# --- the OpenAPI description of these routes (merged by web/openapi.py) ------------------------------------

def openapi_paths() -> dict[str, Any]:
    from .openapi import PAGING, UNIT_FILTER, XLSX_ANSWER, json_answer, operation, path_id, query, ref
    run_id = path_id("run_id", "tiering run")
    pid = path_id("proposal_id", "proposal")
    filters = [query("state", "proposal state", {"type": "string", "enum": ["", *PROPOSAL_STATES]}),
               query("tier", "proposed tier"), query("changed", "1: only proposals that change the tier"),
               query("step_unit", "code of the unit whose approvers decide (404 if unknown)")]
    tags = ["tiering"]

    def decision(op_id: str, summary: str) -> dict:
        return {"post": operation(op_id, summary, {200: json_answer("The proposal.", ref("TierProposal"))},
                                  [403, 404, 409, 422], tags=tags, params=[run_id, pid], body="TierDecision")}

    return {
        "/tiering-runs": {
            "get": operation("listTieringRuns", "The customer tiering runs the caller may see",
                             {200: json_answer("A page of runs.", ref("TieringRunPage"))}, [400, 404],
                             tags=tags, params=[query("state", "review, effective or cancelled",
                                                      {"type": "string", "enum": ["", *RUN_STATES]}),
                                                UNIT_FILTER, *PAGING]),
            "post": operation("startTieringRun", "Start a tiering run of a unit's customers (HR at the unit)",
                              {201: json_answer("The run with its counts.", ref("TieringRun"))},
                              [403, 404, 409, 422], tags=tags, body="NewTieringRun",
                              description="422 while another run in review covers the unit, an ancestor or a "
                                          "descendant, or when the active policy has no customers section."),
        },
        "/tiering-runs/{run_id}": {"get": operation(
            "getTieringRun", "One tiering run, with its audit events",
            {200: json_answer("The run.", ref("TieringRunDetail"))}, [404], tags=tags, params=[run_id])},
        "/tiering-runs/{run_id}/proposals": {"get": operation(
            "listTierProposals", "The run's proposals with their score breakdown",
            {200: json_answer("A page of proposals.", ref("TierProposalPage"))}, [404], tags=tags,
            params=[run_id, *filters, *PAGING])},
        "/tiering-runs/{run_id}/proposals.xlsx": {"get": operation(
            "getTierProposalsXlsx", "The run's proposals (filtered as the list) as a spreadsheet",
            {200: XLSX_ANSWER}, [404], tags=tags, params=[run_id, *filters])},
        "/tiering-runs/{run_id}/proposals/{proposal_id}/approve": decision(
            "approveTierProposal",
            "Approve a pending change of tier (the policy's approval role at its step unit)"),
        "/tiering-runs/{run_id}/proposals/{proposal_id}/reject": decision(
            "rejectTierProposal", "Reject a pending change of tier, with a comment"),
        "/tiering-runs/{run_id}/decisions": {"post": operation(
            "decideTierProposals", "Approve or reject several pending proposals at once",
            {200: json_answer("One result per proposal.", ref("TierDecisions"))}, [403, 404, 409, 422],
            tags=tags, params=[run_id], body="TierBulkDecision",
            description="`proposals` absent: every pending proposal the caller may decide. Nothing is "
                        "refused silently: each proposal asked for has a result (approved, rejected, "
                        "not_found, conflict, forbidden) with the reason.")},
        "/tiering-runs/{run_id}/determine": {"post": operation(
            "determineTieringRun", "Apply the run's changes of tier (HR; none pending)",
            {200: json_answer("The effective run.", ref("TieringRun"))}, [403, 404, 409, 422], tags=tags,
            params=[run_id], body="TieringRunChange")},
        "/tiering-runs/{run_id}/cancel": {"post": operation(
            "cancelTieringRun", "Cancel the run, with a comment (HR)",
            {200: json_answer("The cancelled run.", ref("TieringRun"))}, [403, 404, 409, 422], tags=tags,
            params=[run_id], body="TieringRunCancel")},
    }


def openapi_schemas() -> dict[str, Any]:
    from .openapi import DATE, DATETIME, INTEGER, NUMBER, STRING, array, nullable, obj, page_of, ref
    run = obj({
        "id": INTEGER, "version": INTEGER, "unit": STRING, "unit_name": STRING, "period": STRING,
        "state": {"type": "string", "enum": list(RUN_STATES)},
        "counts": {"type": "object", "description": "`customers`; `states` (proposals by state); `matrix` "
                                                    "{from tier: {to tier: n}} (\"\" for not yet tiered); "
                                                    "`determined` once effective"},
        "policy_version": obj({"label": STRING, "hash": STRING}), "created_by": STRING,
        "created_at": DATETIME,
        "determined_at": nullable(DATETIME), "effective_on": nullable(DATE)})
    event = obj({"seq": INTEGER, "action": STRING, "from_state": nullable(STRING),
                 "to_state": nullable(STRING), "actor": STRING, "at": DATETIME, "comment": STRING,
                 "data": {"type": "object"}})
    proposal = obj({
        "id": INTEGER, "customer": obj({"id": INTEGER, "code": STRING, "name": STRING}),
        "current_tier": nullable(STRING), "proposed_tier": STRING, "score": NUMBER,
        "breakdown": {"type": "object", "description": "`terms` [{input, value, full_at, weight, points}], "
                                                       "`by_score` (the tier the score reaches), `floor` "
                                                       "({industry, at_least} or null)"},
        "state": {"type": "string", "enum": list(PROPOSAL_STATES)}, "step_unit": nullable(STRING),
        "decided_by": nullable(STRING), "decided_at": nullable(DATETIME), "comment": STRING})
    result = obj({"proposal": {}, "customer": nullable(STRING),
                  "result": {"type": "string", "enum": ["approved", "rejected", "not_found", "conflict",
                                                        "forbidden"]},
                  "reason": STRING})
    return {
        "TieringRun": run,
        "TieringRunDetail": {"allOf": [ref("TieringRun"), obj({"events": array(event)})]},
        "TieringRunPage": page_of("TieringRun"),
        "TierProposal": proposal,
        "TierProposalPage": page_of("TierProposal"),
        "TierDecisions": obj({"results": array(result), "run": ref("TieringRun")}),
    }


def openapi_bodies() -> dict[str, Any]:
    from .openapi import ID, STRING, array, obj
    version = {"type": "integer", "description": "the run version the caller saw"}
    comment = {"type": "string", "maxLength": 2000}
    return {
        "NewTieringRun": obj({"unit": STRING,
                              "period": {"type": "string", "maxLength": 20, "examples": ["2026-H1"]}},
                             required=["unit", "period"]),
        "TierDecision": obj({"comment": {**comment, "description": "required to reject"}, "version": version},
                            required=[]),
        "TierBulkDecision": obj({"decision": {"type": "string", "enum": ["approve", "reject"]},
                                 "proposals": {**array(ID), "uniqueItems": True},
                                 "comment": comment, "version": version}, required=["decision"]),
        "TieringRunChange": obj({"version": version}, required=[]),
        "TieringRunCancel": obj({"comment": comment, "version": version}, required=["comment"]),
    }
