"""The portfolios part of the JSON API (/api/v1), on the API blueprint: same auth, same JSON errors.

The managers' portfolios (包保客户) of a unit, one manager's customers, assigning (one or many) and releasing a
customer, recording and listing visits, the overdue visits; handlers parse, call workflow.portfolios, commit
once, answer. See docs/portfolios.md.
"""
from __future__ import annotations

import datetime as dt
import io
from typing import Any, Callable

from flask import jsonify, request, send_file
from flask_login import current_user
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from workflow import authority, clock, portfolios
from workflow.errors import Forbidden, Invalid, NotFound, Refused
from workflow.models import db, OrgUnit, Person
from workflow.models.customers import VISIT_METHODS, Customer, Visit

from .api import body, bp, page_args, paginate, unit_by_code

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
VIEWER_ROLES = ("hr", "admin", "approver", "supervisor")
BULK_MAX = 500
STATUSES = ("under", "within", "over", "breach", "overdue")


# --- helpers ------------------------------------------------------------------------------------------------

def viewer_unit(code: Any) -> OrgUnit:
    """The unit filter (`?unit=`): 404 unknown or out of the caller's sight; without one, the caller's highest
    unit where they may view customers (403 for someone with none)."""
    if code:
        unit = unit_by_code(str(code).strip())
        if not authority.can_view_customers(current_user, unit):
            raise NotFound(f"no unit '{unit.code}' in your scope")
        return unit
    units = sorted((ra.unit for ra in current_user.roles if ra.role in VIEWER_ROLES),
                   key=lambda u: (len(u.path), u.code))
    if not units:
        raise Forbidden("only HR, approvers, supervisors and administrators see portfolios")
    return units[0]


def list_page(items: list, serialize: Callable[[Any], dict]) -> Any:
    """A page of an already computed list, in the API's page shape."""
    page, per_page = page_args()
    chunk = items[(page - 1) * per_page:page * per_page]
    return jsonify({"items": [serialize(x) for x in chunk], "total": len(items), "page": page,
                    "per_page": per_page})


def _customer(customer_id: int, lock: bool = False) -> Customer:
    return portfolios.load_customer(customer_id, current_user, lock=lock)


def _manager(value: Any) -> Person:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("manager must be a username", field="manager")
    person = db.session.scalar(select(Person).where(Person.username == value.strip()))
    if person is None:
        raise Refused(f"there is no manager '{value.strip()[:64]}'", field="manager")
    return person


def customer_row(customer: Customer, due: dt.date | None = None, overdue: bool = False) -> dict[str, Any]:
    return {"id": customer.id, "code": customer.code, "name": customer.name, "unit": customer.unit.code,
            "tier": customer.tier, "manager": customer.manager.username if customer.manager else None,
            "assigned_on": customer.assigned_on.isoformat() if customer.assigned_on else None,
            "released_from": customer.released_from.username if customer.released_from else None,
            "released_reason": customer.released_reason,
            "next_visit_due": due.isoformat() if due else None, "overdue": bool(overdue)}


def visit_json(v: Visit) -> dict[str, Any]:
    return {"id": v.id, "customer": v.customer_id, "visited_on": v.visited_on.isoformat(), "method": v.method,
            "note": v.note or "", "manager": v.manager.username if v.manager else None,
            "recorded_by": v.recorded_by.username if v.recorded_by else None,
            "recorded_at": v.recorded_at.isoformat() + "Z"}


def _assignment(customer: Customer) -> dict[str, Any]:
    due = portfolios.next_due(customer)
    return customer_row(customer, due, portfolios.is_overdue(due))


def _commit(work: Callable[[], Any]) -> Any:
    try:
        out = work()
        db.session.commit()
        return out
    except Exception:
        db.session.rollback()
        raise


# --- portfolios ---------------------------------------------------------------------------------------------

def _summary_rows() -> list[portfolios.Portfolio]:
    unit = viewer_unit(request.args.get("unit"))
    status = (request.args.get("status") or "").strip() or None
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", field="status")
    portfolios.policy()
    return portfolios.summary(unit, status=status)


@bp.get("/portfolios")
def list_portfolios():
    return list_page(_summary_rows(), lambda p: p.to_json())


@bp.get("/portfolios.xlsx")
def portfolios_xlsx():
    rows = _summary_rows()
    _pol, cpol = portfolios.policy()
    data = summary_workbook(rows, cpol)
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name="portfolios.xlsx")


@bp.get("/portfolios/<username>")
def get_portfolio(username: str):
    person = db.session.scalar(select(Person).where(Person.username == username))
    if person is None or not (person.id == current_user.id
                              or authority.can_view_customers(current_user, person.unit)):
        raise NotFound(f"no manager '{username[:64]}' in your scope")
    folio = portfolios.portfolio_of(person)
    rows = portfolios.held_by(person)
    return jsonify({**folio.to_json(),
                    "held": [customer_row(r["customer"], r["due"], r["overdue"]) for r in rows]})


# --- assignment ---------------------------------------------------------------------------------------------

@bp.post("/customers/<int:customer_id>/assignment")
def assign_customer(customer_id: int):
    data = body()
    customer = _customer(customer_id, lock=True)
    allowed = authority.can_manage_customers(current_user, customer.unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    manager = _manager(data.get("manager"))
    _commit(lambda: portfolios.assign(current_user, customer, manager, comment=data.get("comment")))
    return jsonify(_assignment(customer))


@bp.post("/customers/<int:customer_id>/release")
def release_customer(customer_id: int):
    data = body()
    customer = _customer(customer_id, lock=True)
    _commit(lambda: portfolios.release(current_user, customer, comment=data.get("comment")))
    return jsonify(_assignment(customer))


@bp.post("/assignments")
def bulk_assign():
    """Assign many customers to one manager in one transaction; each customer's outcome is reported. None
    assigned: 403 when each was refused for authority, else 422 (and nothing changed)."""
    data = body()
    ids = data.get("customers")
    if (not isinstance(ids, list) or not ids or len(ids) > BULK_MAX
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31 for i in ids)):
        raise Invalid(f"customers must be a list of 1 to {BULK_MAX} customer ids", field="customers")
    manager = _manager(data.get("manager"))
    found = {c.id: c for c in db.session.scalars(select(Customer).where(Customer.id.in_(set(ids))))
             if authority.can_see_customer(current_user, c)}
    results: list[dict[str, Any]] = []
    targets = [found[i] for i in dict.fromkeys(ids) if i in found]
    outcomes = {o.customer.id: o for o in portfolios.assign_many(current_user, targets, manager,
                                                                comment=data.get("comment"))}
    for i in dict.fromkeys(ids):
        if i in outcomes:
            results.append(outcomes[i].to_json())
        else:
            results.append({"customer": i, "code": None, "ok": False, "reason": f"no customer {i}"})
    assigned = sum(1 for r in results if r["ok"])
    if not assigned:
        db.session.rollback()
        if outcomes and all(o.status == 403 for o in outcomes.values()):
            raise Forbidden("you may not assign any of these customers", results=results)
        if not outcomes:
            raise NotFound("none of these customers is in your scope", results=results)
        raise Refused("no customer could be assigned", results=results)
    db.session.commit()
    return jsonify({"manager": manager.username, "assigned": assigned, "refused": len(results) - assigned,
                    "results": results})


# --- visits -------------------------------------------------------------------------------------------------

@bp.route("/customers/<int:customer_id>/visits", methods=["GET", "POST"])
def customer_visits(customer_id: int):
    """One rule for both methods: an id past the id columns then matches no route (404) whatever the method
    (two rules on one path answer 405 to the method of the rule whose id converter refused)."""
    return list_visits(customer_id) if request.method == "GET" else record_visit(customer_id)


def record_visit(customer_id: int):
    data = body()
    customer = _customer(customer_id, lock=True)
    allowed = authority.can_serve_customer(current_user, customer)
    if not allowed:
        raise Forbidden(allowed.reason)
    if "visited_on" not in data:
        raise Invalid("visited_on is required (YYYY-MM-DD)", field="visited_on")
    visit = _commit(lambda: portfolios.record_visit(current_user, customer, data.get("visited_on"),
                                                    data.get("method", "on_site"), data.get("note", "")))
    return jsonify(visit_json(visit)), 201


def list_visits(customer_id: int):
    customer = _customer(customer_id)
    q = (select(Visit).where(Visit.customer_id == customer.id)
         .options(joinedload(Visit.manager), joinedload(Visit.recorded_by))
         .order_by(Visit.visited_on.desc(), Visit.id.desc()))
    return paginate(q, visit_json)


@bp.get("/visits/overdue")
def overdue_visits():
    unit = viewer_unit(request.args.get("unit"))
    _pol, cpol = portfolios.policy()
    where = [Customer.unit_id.in_(select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path))),
             authority.customer_visible_filter(current_user)]
    if request.args.get("manager"):
        m = db.session.scalar(select(Person).where(Person.username == request.args["manager"]))
        if m is None:
            raise NotFound(f"no manager '{request.args['manager'][:64]}'")
        where.append(Customer.manager_id == m.id)
    if request.args.get("tier"):
        if request.args["tier"] not in cpol.tier_ids:
            raise Invalid(f"tier must be one of {', '.join(cpol.tier_ids)}", field="tier")
        where.append(Customer.tier == request.args["tier"])
    today = clock.today()
    q = portfolios.overdue_query(cpol, today, *where).options(joinedload(Customer.manager),
                                                              joinedload(Customer.unit))
    page, per_page = page_args()
    total = db.session.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
    rows = db.session.execute(q.limit(per_page).offset((page - 1) * per_page)).all()
    items = [customer_row(r["customer"], r["due"], r["overdue"])
             for r in portfolios.rows_with_due(rows, cpol, today)]
    return jsonify({"items": items, "total": total, "page": page, "per_page": per_page})


# --- the spreadsheets ---------------------------------------------------------------------------------------

def _book(sheet: str, headers, rows, widths) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    ws.append([str(h) for h in headers])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(row)
    for i, width in enumerate(widths):
        ws.column_dimensions[chr(ord("A") + i)].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def summary_workbook(rows: list[portfolios.Portfolio], cpol, headers=None, status_label=str,
                     sheet: str = "portfolios", lang: str = "en") -> bytes:
    """One row per manager: customers by tier, the area's norm and status, breaches, overdue, coverage."""
    headers = headers or ("username", "name", "unit", "grade", "customers", *cpol.tier_ids, "area", "norm",
                          "status", "breaches", "visits_overdue", "coverage")
    out = []
    for p in rows:
        m = p.manager
        out.append([m.username, m.name, m.unit.code if m.unit else "", m.grade or "", p.total,
                    *[p.by_tier.get(t, 0) for t in cpol.tier_ids],
                    p.area.label(lang) if p.area else "", f"{p.area.min}-{p.area.max}" if p.area else "",
                    status_label(p.status) if p.status else "", p.breaches, p.overdue,
                    p.coverage if p.coverage is not None else ""])
    return _book(sheet, headers, out, (14, 14, 8, 14, 10, *[10] * len(cpol.tier_ids), 10, 10, 14, 9, 9, 9))


def overdue_workbook(items: list[dict[str, Any]], today: dt.date, headers=None, tier_label=str,
                     sheet: str = "overdue visits") -> bytes:
    headers = headers or ("code", "customer", "unit", "tier", "manager", "manager_name", "due", "days_late")
    out = [[r["customer"].code, r["customer"].name, r["customer"].unit.code, tier_label(r["customer"].tier),
            r["customer"].manager.username if r["customer"].manager else "",
            r["customer"].manager.name if r["customer"].manager else "",
            r["due"].isoformat() if r["due"] else "", (today - r["due"]).days if r["due"] else ""]
           for r in items]
    return _book(sheet, headers, out, (14, 24, 8, 12, 14, 14, 12, 10))


# --- the OpenAPI description of these routes (merged by web/openapi.py) ------------------------------------

def openapi_paths() -> dict[str, Any]:
    from .openapi import PAGING, UNIT_FILTER, XLSX_ANSWER, json_answer, operation, path_id, query, ref
    tags = ["portfolios"]
    customer = path_id("customer_id", "customer")
    status = query("status", "under, within or over the workload norm; breach (customers of a tier the "
                             "manager may not hold); overdue (visits overdue)",
                   {"type": "string", "enum": list(STATUSES)})
    username = {"name": "username", "in": "path", "required": True, "description": "the manager's username",
                "schema": {"type": "string"}}
    return {
        "/portfolios": {"get": operation(
            "listPortfolios", "The managers of a unit's subtree with their portfolios (包保客户)",
            {200: json_answer("A page of portfolios, by unit then username.", ref("PortfolioPage"))},
            [403, 404, 422], tags=tags, params=[UNIT_FILTER, status, *PAGING],
            description="Without `unit`, the caller's highest unit where they hold hr, admin, approver or "
                        "supervisor.")},
        "/portfolios.xlsx": {"get": operation(
            "getPortfoliosXlsx", "The portfolios of a unit's subtree as a spreadsheet", {200: XLSX_ANSWER},
            [403, 404, 422], tags=tags, params=[UNIT_FILTER, status])},
        "/portfolios/{username}": {"get": operation(
            "getPortfolio", "One manager's portfolio and customers, with the next visit due",
            {200: json_answer("The portfolio.", ref("PortfolioDetail"))}, [404, 422], tags=tags,
            params=[username], description="The manager sees their own; viewers over their unit see it.")},
        "/customers/{customer_id}/assignment": {"post": operation(
            "assignCustomer", "Make a manager the customer's holder (HR over its unit)",
            {200: json_answer("The customer's assignment.", ref("CustomerAssignment"))}, [403, 404, 422],
            tags=tags, params=[customer], body="Assignment",
            description="Refused (422) under the policy's grade rule (the tier's minimum level, the holding "
                        "levels) and when the manager works off the customer's line of the org tree.")},
        "/customers/{customer_id}/release": {"post": operation(
            "releaseCustomer", "Take the customer from its manager (HR over its unit); it waits for another",
            {200: json_answer("The customer's assignment.", ref("CustomerAssignment"))}, [403, 404, 422],
            tags=tags, params=[customer], body="Release")},
        "/assignments": {"post": operation(
            "assignCustomers", "Assign many customers to one manager in one transaction",
            {200: json_answer("Each customer's outcome.", ref("BulkAssignment"))}, [403, 404, 422], tags=tags,
            body="BulkAssignment",
            description="The customers refused are reported and left as they were; the others are assigned. "
                        "None assigned: 403, 404 or 422 with the outcomes in error.details.results.")},
        "/customers/{customer_id}/visits": {
            "post": operation("recordVisit",
                              "Record a visit (拜访): the holder, or a supervisor or HR over its unit",
                              {201: json_answer("The visit.", ref("Visit"))}, [403, 404, 422], tags=tags,
                              params=[customer], body="Visit"),
            "get": operation("listVisits", "The customer's visits, the latest first",
                             {200: json_answer("A page of visits.", ref("VisitPage"))}, [404], tags=tags,
                             params=[customer, *PAGING]),
        },
        "/visits/overdue": {"get": operation(
            "listOverdueVisits", "Held customers whose visit is overdue under their tier's cadence",
            {200: json_answer("A page of customers, the longest late first.", ref("CustomerAssignmentPage"))},
            [403, 404, 422], tags=tags,
            params=[UNIT_FILTER, query("manager", "a manager's username"),
                    query("tier", "a customer tier id"), *PAGING])},
    }


def openapi_schemas() -> dict[str, Any]:
    from .openapi import BOOLEAN, DATE, DATETIME, INTEGER, NUMBER, STRING, array, nullable, obj, page_of, ref
    portfolio = obj({
        "manager": STRING, "name": STRING, "unit": nullable(STRING), "level": nullable(STRING),
        "grade": nullable(STRING), "customers": INTEGER,
        "by_tier": {"type": "object", "additionalProperties": INTEGER},
        "area": nullable(obj({"id": STRING, "zh": STRING, "en": STRING, "min": INTEGER, "max": INTEGER})),
        "status": {"type": ["string", "null"], "enum": ["under", "within", "over", None]},
        "breaches": INTEGER, "visits_overdue": INTEGER, "coverage": nullable(NUMBER)})
    assignment = obj({
        "id": INTEGER, "code": STRING, "name": STRING, "unit": STRING, "tier": nullable(STRING),
        "manager": nullable(STRING), "assigned_on": nullable(DATE), "released_from": nullable(STRING),
        "released_reason": nullable(STRING), "next_visit_due": nullable(DATE), "overdue": BOOLEAN})
    detail = {**portfolio,
              "properties": {**portfolio["properties"], "held": array(ref("CustomerAssignment"))},
              "required": [*portfolio["required"], "held"]}
    return {
        "Portfolio": portfolio, "PortfolioPage": page_of("Portfolio"), "PortfolioDetail": detail,
        "CustomerAssignment": assignment, "CustomerAssignmentPage": page_of("CustomerAssignment"),
        "BulkAssignment": obj({"manager": STRING, "assigned": INTEGER, "refused": INTEGER,
                               "results": array(obj({"customer": INTEGER, "code": nullable(STRING),
                                                     "ok": BOOLEAN, "reason": nullable(STRING)}))}),
        "Visit": obj({"id": INTEGER, "customer": INTEGER, "visited_on": DATE,
                      "method": {"type": "string", "enum": list(VISIT_METHODS)}, "note": STRING,
                      "manager": nullable(STRING), "recorded_by": nullable(STRING), "recorded_at": DATETIME}),
        "VisitPage": page_of("Visit"),
    }


def openapi_bodies() -> dict[str, Any]:
    from .openapi import STRING, array, obj
    comment = {"type": "string", "maxLength": portfolios.NOTE_MAX}
    return {
        "Assignment": obj({"manager": {**STRING, "description": "the manager's username"},
                           "comment": comment}, required=["manager"]),
        "Release": obj({"comment": comment}, required=[]),
        "BulkAssignment": obj({"customers": {**array({"type": "integer", "minimum": 1}), "minItems": 1,
                                             "maxItems": BULK_MAX},
                               "manager": STRING, "comment": comment}, required=["customers", "manager"]),
        "Visit": obj({"visited_on": {"type": "string", "format": "date"},
                      "method": {"type": "string", "enum": list(VISIT_METHODS)},
                      "note": comment}, required=["visited_on"]),
    }
