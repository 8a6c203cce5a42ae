"""The leads part of the JSON API (/api/v1/leads), on the API blueprint: same auth, same JSON errors.

Handlers parse, call workflow.leads, commit once, answer. The list's filters, the lead's JSON and the
spreadsheet are shared with the pages (web/leads.py).
"""
from __future__ import annotations

import datetime as dt
import io
from typing import Any, Callable

from flask import jsonify, request, send_file
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from workflow import authority, clock, leads
from workflow.errors import Invalid, NotFound
from workflow.models import db, Event, MAX_ID, OrgUnit, Person
from workflow.models.customers import LEAD_STATES, Lead

from .api import body, bp, paginate
from .unit_of_work import commit_or_conflict

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "": None}
BULK_MAX = 500


# --- shared with the pages ---------------------------------------------------------------------------------

def load_visible_lead(lead_id: int, viewer: Person, lock: bool = False) -> Lead:
    """The lead, if the viewer may see it (404 otherwise); row-locked on PostgreSQL when `lock`."""
    q = select(Lead).where(Lead.id == lead_id).execution_options(populate_existing=True)
    if lock:
        q = q.with_for_update(of=Lead)
    lead = db.session.scalar(q) if 0 < lead_id <= MAX_ID else None
    if lead is None or not authority.can_see_lead(viewer, lead):
        raise NotFound(f"no lead {lead_id}")
    return lead


def unit_in_sight(code: str, viewer: Person) -> OrgUnit:
    """A unit the viewer may name for leads: their own, or one under a viewing role (404 otherwise)."""
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code.strip()))
    if unit is None or not (unit.id == viewer.unit_id or authority.can_view_customers(viewer, unit)):
        raise NotFound(f"no unit '{code.strip()[:40]}' in your scope")
    return unit


def filtered(args, viewer: Person, today: dt.date):
    """The viewer's leads, filtered by the query's state, class, owner, unit and overdue (a bad value is
    Invalid naming it; a unit or owner out of sight is NotFound); nearest deadline first. Answers the query
    and the filters as given, for the links."""
    q = select(Lead).where(authority.lead_visible_filter(viewer))
    given = {k: (args.get(k) or "").strip() for k in ("state", "class", "owner", "unit", "overdue")}
    if given["state"]:
        if given["state"] not in LEAD_STATES:
            raise Invalid(f"state must be one of {', '.join(LEAD_STATES)}", field="state")
        q = q.where(Lead.state == given["state"])
    if given["class"]:
        q = q.where(Lead.lead_class == given["class"])
    if given["owner"]:
        owner = db.session.scalar(select(Person).where(Person.username == given["owner"]))
        if owner is None:
            raise NotFound(f"no person '{given['owner'][:40]}'")
        q = q.where(Lead.owner_id == owner.id)
    if given["unit"]:
        unit = unit_in_sight(given["unit"], viewer)
        q = q.where(Lead.unit_id.in_(select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path))))
    if given["overdue"] not in FLAGS:
        raise Invalid("overdue must be 1 or 0", field="overdue")
    late = or_(Lead.state == "overdue", (Lead.state == "open") & (Lead.deadline < today))
    if FLAGS[given["overdue"]] is True:
        q = q.where(late)
    elif FLAGS[given["overdue"]] is False:
        q = q.where(~late)
    q = q.options(joinedload(Lead.unit), joinedload(Lead.owner), joinedload(Lead.customer))
    return q.order_by(Lead.deadline, Lead.id), {k: v for k, v in given.items() if v}


def days_late(lead: Lead, today: dt.date) -> int | None:
    """Days past the deadline of a lead still followed (None: not late, or closed)."""
    if lead.state in ("won", "lost") or lead.deadline >= today:
        return None
    return (today - lead.deadline).days


def event_json(ev: Event) -> dict[str, Any]:
    return {"seq": ev.seq, "action": ev.action, "actor": ev.actor, "at": ev.at.isoformat() + "Z",
            "from_state": ev.from_state, "to_state": ev.to_state, "comment": ev.comment or "",
            "data": ev.data or {}}


def lead_events(lead: Lead) -> list[Event]:
    return list(db.session.scalars(select(Event).where(Event.chain == f"lead:{lead.id}").order_by(Event.seq)))


def lead_json(lead: Lead, viewer: Person, detail: bool = False,
              today: dt.date | None = None) -> dict[str, Any]:
    today = today or clock.today()
    out = {
        "id": lead.id, "version": lead.version, "title": lead.title, "state": lead.state,
        "lead_class": lead.lead_class, "unit": lead.unit.code, "unit_name": lead.unit.name,
        "owner": lead.owner.username, "owner_name": lead.owner.name,
        "customer": lead.customer.code if lead.customer is not None else None,
        "opened_on": lead.opened_on.isoformat(), "assigned_on": lead.assigned_on.isoformat(),
        "deadline": lead.deadline.isoformat(),
        "closed_on": lead.closed_on.isoformat() if lead.closed_on else None,
        "days_left": None if lead.state in ("won", "lost") else (lead.deadline - today).days,
        "days_late": days_late(lead, today), "note": lead.note or "",
    }
    if detail:
        out["actions"] = leads.actions_for(viewer, lead, leads.reassign_role())
        out["events"] = [event_json(ev) for ev in lead_events(lead)]
    return out


def commit_lead_change(work: Callable[[], Any]) -> Any:
    """Run a change to leads and commit it; a lost race is a 409 and changes nothing."""
    return commit_or_conflict(work, _l("another change to this lead came first; reload it"))


HEADERS = ("id", "title", "class", "state", "unit", "owner", "owner_name", "customer", "assigned_on",
           "deadline", "days_late", "closed_on")


def workbook(rows: list[Lead], today: dt.date, headers=HEADERS, class_label=str, state_label=str,
             sheet: str = "leads") -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append([str(h) for h in headers])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for ld in rows:
        ws.append([ld.id, ld.title, class_label(ld.lead_class), state_label(ld.state), ld.unit.code,
                   ld.owner.username, ld.owner.name, ld.customer.code if ld.customer else "", ld.assigned_on,
                   ld.deadline, days_late(ld, today) or "", ld.closed_on or ""])
    for col, width in zip("ABCDEFGHIJKL", (7, 36, 16, 12, 10, 14, 14, 14, 12, 12, 10, 12)):
        ws.column_dimensions[col].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


EXPORT_MAX = 10_000


# --- the endpoints -------------------------------------------------------------------------------------

@bp.get("/leads")
def list_leads():
    today = clock.today()
    q, _given = filtered(request.args, current_user, today)
    return paginate(q, lambda ld: lead_json(ld, current_user, today=today))


@bp.post("/leads")
def create_lead():
    data = body()
    code = data.get("unit")
    if not isinstance(code, str) or not code.strip():
        raise Invalid("unit must be the code of an org unit", field="unit")
    unit = unit_in_sight(code, current_user)
    lead = commit_lead_change(lambda: leads.create(
        current_user, data.get("title"), unit, data.get("owner"), data.get("lead_class"),
        customer=data.get("customer"), note=data.get("note")))
    return jsonify(lead_json(lead, current_user, detail=True)), 201


@bp.get("/leads/<int:lead_id>")
def get_lead(lead_id: int):
    return jsonify(lead_json(load_visible_lead(lead_id, current_user), current_user, detail=True))


def _lead_action(lead_id: int, change) -> Any:
    """Lock the lead (404 out of sight), apply `change(lead, body)` through the engine, commit, answer it."""
    data = body()
    lead = commit_lead_change(lambda: change(load_visible_lead(lead_id, current_user, lock=True), data))
    return jsonify(lead_json(lead, current_user, detail=True))


@bp.post("/leads/<int:lead_id>/reassign")
def reassign_lead(lead_id: int):
    return _lead_action(lead_id, lambda lead, d: leads.reassign(
        current_user, lead, d.get("owner"), d.get("comment"), d.get("version")))


@bp.post("/leads/<int:lead_id>/reclassify")
def reclassify_lead(lead_id: int):
    return _lead_action(lead_id, lambda lead, d: leads.reclassify(
        current_user, lead, d.get("lead_class"), d.get("comment"), d.get("version")))


@bp.post("/leads/<int:lead_id>/win")
def win_lead(lead_id: int):
    return _lead_action(lead_id, lambda lead, d: leads.win(
        current_user, lead, d.get("comment"), d.get("version")))


@bp.post("/leads/<int:lead_id>/lose")
def lose_lead(lead_id: int):
    return _lead_action(lead_id, lambda lead, d: leads.lose(
        current_user, lead, d.get("comment"), d.get("version")))


def bulk_ids(value: Any) -> list[int]:
    """The `leads` of a bulk request: 1 to BULK_MAX lead ids."""
    if (not isinstance(value, list) or not value or len(value) > BULK_MAX
            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 < i <= MAX_ID for i in value)):
        raise Invalid(f"leads must be a list of 1 to {BULK_MAX} lead ids", field="leads")
    return list(dict.fromkeys(value))


@bp.post("/leads/reassign")
def reassign_leads():
    """Reassign several leads to one person, all or none (the refusal names its lead)."""
    data = body()
    ids = bulk_ids(data.get("leads"))
    done = commit_lead_change(lambda: leads.reassign_many(
        current_user, [load_visible_lead(i, current_user, lock=True) for i in ids], data.get("owner"),
        data.get("comment")))
    return jsonify({"items": [lead_json(ld, current_user) for ld in done]})


@bp.get("/leads.xlsx")
def leads_xlsx():
    today = clock.today()
    q, _given = filtered(request.args, current_user, today)
    rows = list(db.session.scalars(q.limit(EXPORT_MAX)).unique())
    return send_file(io.BytesIO(workbook(rows, today)), mimetype=XLSX, as_attachment=True,
                     download_name="leads.xlsx")


# --- the OpenAPI description of these routes (merged by web/openapi.py) ------------------------------------

def _o():
    from . import openapi
    return openapi


def _filters(o) -> list[dict]:
    return [o.query("state", "open, overdue, won or lost", {"type": "string", "enum": [*LEAD_STATES, ""]}),
            o.query("class", "a lead class id of the policy (customers.leads.classes)"),
            o.query("owner", "the owner's username (404 if unknown)"), o.UNIT_FILTER,
            o.query("overdue", "1: only leads past their deadline (overdue, or open and late), 0: the others",
                    o.FLAG)]


def openapi_paths() -> dict[str, Any]:
    o = _o()
    lid = o.path_id("lead_id", "lead")
    answer = {200: o.json_answer("The lead, with its events.", o.ref("LeadDetail"))}

    def action(op_id: str, summary: str, body_name: str) -> dict[str, Any]:
        return {"post": o.operation(op_id, summary, answer, [403, 404, 409, 422], tags=["leads"],
                                    params=[lid], body=body_name)}
    return {
        "/leads": {
            "get": o.operation("listLeads", "The sales leads the caller may see (their own; their units' "
                                            "under a viewing role), nearest deadline first",
                               {200: o.json_answer("A page of leads.", o.page_of("Lead"))}, [404, 422],
                               tags=["leads"], params=[*_filters(o), *o.PAGING]),
            "post": o.operation("createLead", "Open a sales lead: for oneself at one's own unit, or (the "
                                              "sales manager, HR) for an active person of the unit's "
                                              "subtree",
                                {201: o.json_answer("The lead.", o.ref("LeadDetail"))}, [403, 404, 409, 422],
                                tags=["leads"], body="NewLead"),
        },
        "/leads/{lead_id}": {"get": o.operation(
            "getLead", "One lead, with its events and the caller's actions", answer, [404, 422],
            tags=["leads"], params=[lid])},
        "/leads/{lead_id}/reassign": action(
            "reassignLead", "Give the lead to another person; its deadline runs again from today (sales "
                            "manager, HR)", "LeadReassign"),
        "/leads/{lead_id}/reclassify": action(
            "reclassifyLead", "Change the lead's class; the deadline is the class's days from its assignment",
            "LeadReclassify"),
        "/leads/{lead_id}/win": action("winLead", "Close the lead as won (signed)", "LeadClose"),
        "/leads/{lead_id}/lose": action("loseLead", "Close the lead as lost; the comment gives the reason",
                                        "LeadClose"),
        "/leads/reassign": {"post": o.operation(
            "reassignLeads", "Reassign several leads to one person, all or none",
            {200: o.json_answer("The leads.", o.obj({"items": o.array(o.ref("Lead"))}))},
            [403, 404, 409, 422], tags=["leads"], body="LeadsReassign",
            description="A refusal names the lead in `error.details.lead` and changes nothing.")},
        "/leads.xlsx": {"get": o.operation(
            "getLeadsXlsx", "The leads the caller may see, filtered as GET /leads, as a spreadsheet",
            {200: o.XLSX_ANSWER}, [404, 422], tags=["leads"], params=_filters(o))},
    }


def openapi_schemas() -> dict[str, Any]:
    o = _o()
    text, opt_text, day = o.STRING, o.nullable(o.STRING), o.DATE
    lead = o.obj({
        "id": o.ID, "version": o.INTEGER, "title": text,
        "state": {"type": "string", "enum": list(LEAD_STATES)},
        "lead_class": text, "unit": text, "unit_name": text, "owner": text, "owner_name": text,
        "customer": opt_text, "opened_on": day, "assigned_on": day, "deadline": day,
        "closed_on": o.nullable(day),
        "days_left": o.nullable(o.INTEGER), "days_late": o.nullable(o.INTEGER), "note": text})
    event = o.obj({"seq": o.INTEGER, "action": text, "actor": text, "at": o.DATETIME, "from_state": opt_text,
                   "to_state": opt_text, "comment": text, "data": {"type": "object"}})
    detail = {**lead,
              "properties": {**lead["properties"], "actions": o.array(text), "events": o.array(event)},
              "required": [*lead["required"], "actions", "events"]}
    return {"Lead": lead, "LeadDetail": detail, "LeadEvent": event}


def openapi_bodies() -> dict[str, Any]:
    o = _o()
    version = {"type": "integer", "description": "the lead's version the caller saw (optional)"}
    comment = {**o.STRING, "maxLength": leads.COMMENT_MAX}
    return {
        "NewLead": o.obj({"title": {**o.STRING, "maxLength": leads.TITLE_MAX},
                          "unit": {**o.STRING, "description": "the unit's code"},
                          "owner": o.nullable({**o.STRING,
                                               "description": "the owner's username (default: the caller)"}),
                          "lead_class": {**o.STRING, "description": "a class id of customers.leads.classes"},
                          "customer": o.nullable({**o.STRING, "description": "a customer's code"}),
                          "note": {**o.STRING, "maxLength": leads.NOTE_MAX}},
                         required=["title", "unit", "lead_class"]),
        "LeadReassign": o.obj({"owner": {**o.STRING, "description": "the new owner's username"},
                               "comment": comment, "version": version}, required=["owner"]),
        "LeadReclassify": o.obj({"lead_class": o.STRING, "comment": comment, "version": version},
                                required=["lead_class"]),
        "LeadClose": o.obj({"comment": comment, "version": version}, required=[]),
        "LeadsReassign": o.obj({"leads": {"type": "array", "items": o.ID, "minItems": 1,
                                          "maxItems": BULK_MAX},
                                "owner": o.STRING, "comment": comment}, required=["leads", "owner"]),
    }
