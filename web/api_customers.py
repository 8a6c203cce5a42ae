"""The customers part of the JSON API (/api/v1), on the API blueprint: same auth, same JSON errors.

`GET/POST /customers`, `GET/PATCH /customers/ID`, `GET /customers.xlsx`, `POST /imports/customers` and
`GET /import-templates/customers.xlsx`. Handlers parse, call workflow.customers (which checks authority
and the fields), commit once, answer. The workbooks and the upload are shared with the pages
(web/customers.py).
"""
from __future__ import annotations

import os
from typing import Any

from flask import jsonify, request
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import joinedload, selectinload

from workflow import customer_import, customers, exporting
from workflow.errors import Conflict, Forbidden
from workflow.models import db, OrgUnit, Person
from workflow.models.customers import Customer

from . import uploads
from .api import body, bp, paginate
from .customer_json import customer_detail_json, customer_json
from .exports import _in_workbook_language, send
from .unit_of_work import commit_or_conflict
from .views import label, lang

EXPORT_COLUMNS = ("code", "name", "industry", "unit_code", "unit_name", "tier", "tier_since", "tier_score",
                  "manager", "manager_name", "assigned_on", "active")
HEADERS = {"code": _l("Customer code"), "name": _l("Customer name"), "industry": _l("Industry"),
           "unit_code": _l("Unit code"), "unit_name": _l("Unit name"), "tier": _l("Customer tier"),
           "tier_since": _l("In this tier since"), "tier_score": _l("Value score"),
           "manager": _l("Account manager"), "manager_name": _l("Manager's name"),
           "assigned_on": _l("Held since"), "active": _l("In service?")}
NOTES = {
    "code": (_l("The customer's code, unique; re-importing updates the customer with this code."), "C000123"),
    "name": (_l("The customer's name."), "杭州某某科技有限公司"),
    "industry": (_l("The industry: an id or a name below."), "manufacturing"),
    "unit_code": (_l("The code of the unit the customer belongs to; you must be HR there or above."), "HZ1"),
    "manager": (_l("The username of the account manager who holds it (包保), or empty; the policy's grade "
                    "rule applies."), "liyang"),
    "tier": (_l("The customer's tier now (an id or a name below), or empty: a tiering run sets it."), ""),
    "active": (_l("1 (default) or 0 for a customer no longer served."), "1"),
}


# --- shared with the pages ---------------------------------------------------------------------------------

def list_query(args, viewer: Person):
    """The customers `viewer` may see, filtered by `args` (Invalid or NotFound for a bad filter), with the
    filters as parsed; the rows load their unit and manager with them."""
    cpol = customers.active()[1]
    filters = customers.parse_filters(args, viewer, cpol)
    q = customers.customer_query(viewer, filters).options(
        joinedload(Customer.unit), joinedload(Customer.manager), joinedload(Customer.released_from))
    return q, filters, cpol


def workbook(args, viewer: Person):
    """The filtered list as XLSX, in the current language: tier and industry labels, one column per input."""
    cpol = customers.active()[1]
    filters = customers.parse_filters(args, viewer, cpol)
    q = customers.customer_query(viewer, filters).join(Customer.unit).outerjoin(
        Person, Person.id == Customer.manager_id).with_only_columns(
        Customer, OrgUnit.code, OrgUnit.name, Person.username, Person.name)
    language = lang()
    headers = [label(HEADERS, c) for c in EXPORT_COLUMNS] + [
        f"{i.label(language)} ({i.unit})" if i.unit else i.label(language) for i in cpol.inputs]
    yes, no = _("Yes"), _("No")
    tiers = {t.id: t.label(language) for t in cpol.tiers}

    def rows():
        for c, unit_code, unit_name, username, manager_name in db.session.execute(
                q.execution_options(yield_per=exporting.BATCH)):
            yield [c.code, c.name, cpol.industry_label(c.industry, language), unit_code, unit_name,
                   tiers.get(c.tier, c.tier or ""), c.tier_since, c.tier_score, username or "",
                   manager_name or "", c.assigned_on, yes if c.active else no] + [
                (c.inputs or {}).get(i) for i in cpol.input_ids]

    sheet = exporting.Sheet(_("Customers"), headers, rows(), [14, 28, 12, 10, 20, 10, 12, 10, 12, 12, 12, 8])
    return send(exporting.write([sheet]), "customers")


def template_workbook():
    """An empty customers file with the importer's headers (Chinese in Chinese) and a notes sheet: each
    column's header, id, whether it is required, what it holds, the values it takes, an example."""
    cpol = customers.active()[1]
    language = lang()
    chinese = language.startswith("zh")
    required, optional, aliases = customer_import.columns(cpol)
    cols = required + optional
    heads = [aliases[c][0] if chinese else c for c in cols]
    yes, no = _("Yes"), _("No")
    notes = []
    for c in cols:
        if c in NOTES:
            text, example = str(NOTES[c][0]), NOTES[c][1]
        else:
            i = next(i for i in cpol.inputs if i.id == c)
            text = _("A scoring input: %(label)s, a number from 0 up (%(unit)s); empty keeps the stored "
                     "value.", label=i.label(language), unit=i.unit or "-")
            example = "0"
        allowed = ""
        if c == "industry":
            allowed = "; ".join(f"{i} ({zh if chinese else en})" for i, zh, en in cpol.industries)
        elif c == "tier":
            allowed = "; ".join(f"{t.id} ({t.label(language)})" for t in cpol.tiers)
        elif c == "active":
            allowed = "1; 0; 是; 否"
        notes.append((aliases[c][0] if chinese else c, c, yes if c in required else no, text, allowed,
                      example))
    note_heads = [_("Header"), _("Column id"), _("Required?"), _("What it holds"), _("Allowed values"),
                  _("Example")]
    sheets = [exporting.Sheet(_("Customers"), heads, (), [16] * len(cols)),
              exporting.Sheet(_("Notes"), note_heads, notes, (16, 14, 8, 60, 50, 20))]
    return send(exporting.write(sheets), "import-customers")


class _Upload:
    """An uploaded file as the importer reads it: its name (for the problems) and its bytes."""

    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def read(self) -> bytes:
        return self._data


def import_file(storage, actor: Person) -> customer_import.CustomerImportResult:
    """Check and load an uploaded customers file in this request, all or nothing (ImportRefused naming each
    bad row, or Invalid for a file that is no CSV or XLSX); commits."""
    if not customers.may_keep_customers(actor):     # who may comes before what was sent
        raise Forbidden(_("only HR and administrators import customers"))
    data = uploads.checked_upload(storage, "customers")[1]
    name = os.path.basename(storage.filename.replace("\\", "/"))
    try:
        result = customer_import.import_customers(_Upload(name, data), actor)
        db.session.commit()
    except (IntegrityError, OperationalError) as exc:
        db.session.rollback()
        raise Conflict(_("another change to these customers came first; import the file again")) from exc
    except Exception:
        db.session.rollback()
        raise
    return result


def committed(work):
    """Run a change and commit it; a lost race (a code taken meanwhile, a row changed) is 409."""
    return commit_or_conflict(work, _l("another change to this customer came first; reload it"))


def load_detail(customer_id: int, viewer: Person, lock: bool = False) -> Customer:
    customer = customers.visible_customer(customer_id, viewer, lock=lock)
    db.session.scalars(select(Customer).where(Customer.id == customer.id)
                       .options(selectinload(Customer.tier_history))).all()
    return customer


# --- the endpoints -------------------------------------------------------------------------------------

@bp.get("/customers")
def list_customers():
    q, _filters, cpol = list_query(request.args, current_user)
    language = lang()
    return paginate(q, lambda c: customer_json(c, language, cpol))


@bp.post("/customers")
def create_customer():
    data = body()
    customer = committed(lambda: customers.create_customer(current_user, data))
    return jsonify(customer_detail_json(customer, lang())), 201


# One rule for both methods: with a rule per method, an id past the id range was a 405 for PATCH (the router
# names the other rule's method) instead of the 404 every other route gives.
@bp.route("/customers/<int:customer_id>", methods=["GET", "PATCH"])
def customer(customer_id: int):
    if request.method == "GET":
        return jsonify(customer_detail_json(load_detail(customer_id, current_user), lang()))
    data = body()
    found = customers.visible_customer(customer_id, current_user, lock=True)
    version = data.pop("version", None)
    committed(lambda: customers.edit_customer(found, current_user, data, version))
    return jsonify(customer_detail_json(load_detail(customer_id, current_user), lang()))


@bp.get("/customers.xlsx")
def customers_xlsx():
    return _in_workbook_language(lambda: workbook(request.args, current_user))


@bp.post("/imports/customers")
def import_customers():
    """A multipart upload `customers` (CSV or XLSX): loaded at once, all or nothing: 200 with the counts,
    or 422 whose `details.rows` lists each bad row (`{file, line, column, message}`)."""
    result = import_file(request.files.get("customers"), current_user)
    return jsonify(result.to_json())


@bp.get("/import-templates/customers.xlsx")
def customers_template():
    if not customers.may_keep_customers(current_user):
        raise Forbidden(_("import templates are for HR and administrators"))
    return _in_workbook_language(template_workbook)


# --- the OpenAPI description of these routes (merged by web/openapi.py) ------------------------------------

def _o():
    from . import openapi
    return openapi


def openapi_paths() -> dict[str, Any]:
    o = _o()
    cid = o.path_id("customer_id", "customer")
    filters = [o.UNIT_FILTER, o.query("tier", "a tier id, or none for customers not yet tiered"),
               o.query("manager", "the holding manager's username"), o.query("industry", "an industry id"),
               o.query("active", "1: active customers only, 0: inactive only", o.FLAG),
               o.query("q", "text in the code or the name"),
               o.query("unassigned", "1: only customers nobody holds", o.FLAG)]
    upload = o.operation(
        "importCustomers", "Import customers from CSV or XLSX at once, all or nothing (HR)",
        {200: o.json_answer("The counts.", o.ref("CustomerImportResult"))}, [403, 409, 422],
        tags=["customers"], body="CustomersUpload",
        description="A refused file answers 422; its `error.details.rows` lists each bad row as `{file, "
                    "line, column, message}` and nothing is changed. Codes already stored are updated.")
    upload["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": o.obj(
        {"customers": {"type": "string", "format": "binary",
                       "description": "CSV (UTF-8) or XLSX: code, name, industry, unit_code, manager, tier, "
                                      "active and one column per scoring input"}}, required=[])}}}
    return {
        "/customers": {
            "get": o.operation("listCustomers", "The customers the caller may see, filtered",
                               {200: o.json_answer("A page of customers, by code.", o.page_of("Customer"))},
                               [404, 422], tags=["customers"], params=[*filters, *o.PAGING]),
            "post": o.operation("createCustomer", "Create a customer (HR at its unit or above)",
                                {201: o.json_answer("The customer.", o.ref("CustomerDetail"))},
                                [403, 404, 409, 422], tags=["customers"], body="NewCustomer"),
        },
        "/customers/{customer_id}": {
            "get": o.operation("getCustomer", "One customer, with its tier history",
                               {200: o.json_answer("The customer.", o.ref("CustomerDetail"))}, [404, 422],
                               tags=["customers"], params=[cid]),
            "patch": o.operation("editCustomer", "Edit a customer as seen at `version` (HR at its unit; both "
                                                 "units for a move)",
                                 {200: o.json_answer("The customer.", o.ref("CustomerDetail"))},
                                 [403, 404, 409, 422], tags=["customers"], params=[cid], body="CustomerEdit"),
        },
        "/customers.xlsx": {"get": o.operation(
            "getCustomersXlsx",
            "The customers the caller may see, filtered as GET /customers, as a spreadsheet",
            {200: o.XLSX_ANSWER}, [404, 422], tags=["customers"], params=filters)},
        "/imports/customers": {"post": upload},
        "/import-templates/customers.xlsx": {"get": o.operation(
            "getCustomersImportTemplate",
            "An empty customers file with the importer's headers and a notes sheet (HR)",
            {200: o.XLSX_ANSWER}, [403, 422], tags=["customers"])},
    }


def openapi_schemas() -> dict[str, Any]:
    o = _o()
    text, opt_text = o.STRING, o.nullable(o.STRING)
    number = {"type": "number", "minimum": 0}
    customer = o.obj({
        "id": o.ID, "code": text, "name": text, "industry": opt_text, "industry_label": opt_text,
        "unit": text, "unit_name": text, "inputs": {"type": "object", "additionalProperties": number},
        "active": o.BOOLEAN,
        "tier": opt_text, "tier_label": opt_text, "tier_since": o.nullable(o.DATE),
        "tier_score": o.nullable({"type": "number"}), "manager": opt_text, "assigned_on": o.nullable(o.DATE),
        "released_from": opt_text, "released_reason": opt_text, "version": o.INTEGER})
    history = o.obj({"from_tier": opt_text, "to_tier": text, "score": o.nullable({"type": "number"}),
                     "effective_on": o.DATE, "source": text, "run": o.nullable(o.INTEGER)})
    detail = {**customer, "properties": {**customer["properties"], "tier_history": o.array(history)},
              "required": [*customer["required"], "tier_history"]}
    counts = o.obj({k: {"type": "integer", "minimum": 0}
                    for k in ("created", "updated", "unchanged", "tiers_set", "assigned")})
    return {"Customer": customer, "CustomerDetail": detail, "CustomerImportResult": counts}


def openapi_bodies() -> dict[str, Any]:
    o = _o()
    inputs = {"type": "object", "description": "{input id: number ≥ 0} (the policy's customers.inputs)",
              "additionalProperties": {"type": "number", "minimum": 0}}
    fields = {"code": {**o.STRING, "description": "unique, no spaces"}, "name": o.STRING,
              "industry": o.nullable({**o.STRING, "description": "an industry id of the policy"}),
              "unit": {**o.STRING, "description": "the unit's code"}, "inputs": inputs, "active": o.BOOLEAN}
    return {
        "NewCustomer": o.obj({**fields, "tier": o.nullable({**o.STRING, "description": "an initial tier id"}),
                              "manager": o.nullable({**o.STRING, "description": "the holder's username"})},
                             required=["code", "name", "unit"]),
        "CustomerEdit": o.obj({**fields, "version": {"type": "integer",
                                                     "description": "the customer's version the caller saw"}},
                              required=["version"]),
    }
