"""The JSON API under /api/v1 (see CONTRACT.md). Handlers parse, call the engine, commit, answer."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from workflow import audit, authority, engine, reports
from workflow.errors import Conflict, Forbidden, Invalid, NotFound, Refused, WorkflowError
from workflow.models import db, Case, OrgUnit, Person

from . import case_filters
from .auth import authenticate, issue_token
from .extensions import csrf
from .serialize import case_json, me_json
from .unit_of_work import decide, load_visible_case

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PUBLIC = ("api.token", "api.openapi")     # answered without logging in
CASE_KINDS = ("promotion", "probation", "demotion", "dismissal")
PAGE_NUMBER_MAX = 1_000_000


def error(status: int, code: str, message: str, **details):
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return jsonify(body), status


@bp.errorhandler(WorkflowError)
def _workflow_error(exc: WorkflowError):
    db.session.rollback()
    return error(exc.status, exc.code, exc.message, **exc.details)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    db.session.rollback()
    codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
             429: "too_many_requests"}
    response, status = error(exc.code or 500, codes.get(exc.code, "error"), exc.description or exc.name)
    # What the exception tells the client to do next (when to retry, which methods) goes with the JSON.
    for name, value in exc.get_headers():
        if name in ("Retry-After", "Allow"):
            response.headers[name] = value
    return response, status


@bp.before_request
def _authenticate():
    if request.endpoint in PUBLIC:
        return None
    if not current_user.is_authenticated:
        return error(401, "unauthorized", "log in first: POST /api/v1/auth/token, then send "
                                          "'Authorization: Bearer TOKEN'")
    # A browser session must carry its CSRF token on changes; bearer tokens need none.
    if request.method not in ("GET", "HEAD", "OPTIONS") and not request.headers.get("Authorization"):
        csrf.protect()
    return None


def body() -> dict[str, Any]:
    if not request.data:
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    return data


def page_args() -> tuple[int, int]:
    """`?page=&per_page=`: whole numbers from 1, per_page 50 by default and at most API_PAGE_MAX."""
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 50))
    except ValueError:
        raise Invalid("page and per_page must be whole numbers") from None
    if page < 1 or per_page < 1:
        raise Invalid("page and per_page must be at least 1")
    if page > PAGE_NUMBER_MAX:     # its OFFSET would overflow the database's integers
        raise Invalid(f"page must be at most {PAGE_NUMBER_MAX}")
    return page, min(per_page, current_app.config["API_PAGE_MAX"])


def paginate(query, serialize, prepare=None):
    """One page of the query's rows as `{items, total, page, per_page}`, with an RFC 8288 `Link` header
    naming the first, previous, next and last pages (the body keeps the contract's shape). `prepare(rows)`
    runs once before the rows are serialized, to load what they need together."""
    page, per_page = page_args()
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).unique().all()
    if prepare is not None:
        prepare(rows)
    resp = jsonify({"items": [serialize(r) for r in rows], "total": total, "page": page,
                    "per_page": per_page})
    last = max(1, -(-total // per_page))
    links = {"first": 1, "last": last}
    if page > 1:
        links["prev"] = min(page - 1, last)
    if page < last:
        links["next"] = page + 1
    args = request.args.to_dict()
    resp.headers["Link"] = ", ".join(
        f'<{url_for(request.endpoint, **{**request.view_args, **args, "page": n, "per_page": per_page})}>; '
        f'rel="{rel}"' for rel, n in links.items())
    return resp


def unit_by_code(code: str) -> OrgUnit:
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    if unit is None:
        raise NotFound(f"no unit '{code}'")
    return unit


def unit_in_body(data: dict) -> OrgUnit:
    """The org unit a request body names in `unit`, if the caller may see it (else 404, as for a case)."""
    code = data.get("unit")
    if not isinstance(code, str) or not code.strip():
        raise Invalid("unit must be the code of an org unit", field="unit")
    unit = unit_by_code(code.strip())
    if not authority.can_view_unit(current_user, unit):
        raise NotFound(f"no unit '{unit.code}' in your scope")
    return unit


# --- auth and reference data --------------------------------------------------------------------------

@bp.post("/auth/token")
def token():
    data = body()
    person = authenticate(data.get("username"), data.get("password"))
    if person is None:
        return error(401, "unauthorized", "wrong username or password, or the account cannot log in")
    tok = issue_token(person)
    db.session.commit()
    return jsonify({"token": tok})


@bp.get("/me")
def me():
    return jsonify(me_json(current_user))


@bp.get("/policy")
def policy():
    _, pol = engine.active_policy()
    return jsonify(pol.to_json())


# --- cases ---------------------------------------------------------------------------------------------

@bp.get("/cases")
def list_cases():
    # kind, state, level, unit, direct, overdue: checked as on the page (web/case_filters.py).
    _, pol = engine.active_policy()
    q = case_filters.apply(select(Case).where(authority.visible_filter(current_user)).order_by(Case.id.desc()),
                           case_filters.parse(request.args, pol))
    return paginate(q.options(*reports.case_full_options()), lambda c: case_json(c, current_user))


@bp.get("/inbox")
def inbox():
    return paginate(reports.inbox_query(current_user).options(*reports.case_full_options()),
                    lambda c: case_json(c, current_user))


@bp.post("/cases")
def create_case():
    data = body()
    kind = data.get("kind", "promotion")
    if kind not in CASE_KINDS:
        raise Invalid(f"unknown kind {kind!r} (kinds: {', '.join(CASE_KINDS)})", field="kind")
    employee = current_user
    if data.get("employee") not in (None, current_user.username):
        if not isinstance(data["employee"], str):
            raise Invalid("employee must be a username", field="employee")
        employee = db.session.scalar(select(Person).where(Person.username == data["employee"]))
        if employee is None:
            # The case does not exist yet: a refusal about a person one cannot see is 403 here.
            if not any(ra.role == "hr" for ra in current_user.roles):
                raise Forbidden("only HR may file a case for someone else")
            raise Refused(f"no person '{data['employee']}'", field="employee")
    who = employee.username
    try:
        if kind == "promotion":
            case = engine.create_promotion(current_user, employee, data.get("target_grade"),
                                           data.get("statement", ""), data.get("exceptional", False),
                                           round=data.get("round"))
        elif kind == "probation":
            case = engine.open_probation(employee, current_user)
        else:
            case = engine.open_case(kind, current_user, employee, reason=data.get("reason"),
                                    severity=data.get("severity"), comment=data.get("comment", ""))
        db.session.commit()
    except (IntegrityError, OperationalError) as exc:
        # Two filings for one person at once: the unique open case per person and kind lets one through.
        db.session.rollback()
        raise Conflict(f"another {kind} case for {who} was filed at the same moment; reload") from exc
    return jsonify(case_json(case, current_user)), 201


@bp.get("/cases/<int:case_id>")
def get_case(case_id: int):
    return jsonify(case_json(load_visible_case(case_id, current_user), current_user))


@bp.post("/cases/<int:case_id>/<action>")
def act(case_id: int, action: str):
    data = body()
    version = data.pop("version", None)
    case = decide(case_id, action, current_user, data, version)
    return jsonify(case_json(case, current_user))


# --- HR ------------------------------------------------------------------------------------------------

@bp.get("/pipeline")
def pipeline():
    code = request.args.get("unit")
    if code:
        unit = unit_by_code(code)
    else:
        viewable = [ra.unit for ra in current_user.roles if ra.role in ("hr", "approver", "admin")]
        if not viewable:
            raise Forbidden("the pipeline is for HR and approvers")
        unit = min(viewable, key=lambda u: len(u.path))
    if not authority.can_view_unit(current_user, unit):
        raise NotFound(f"no unit '{unit.code}' in your scope")
    kind = (request.args.get("kind") or "").strip() or None
    if kind is not None and kind not in CASE_KINDS:
        raise Invalid(f"kind must be one of {', '.join(CASE_KINDS)}", field="kind")
    return jsonify(reports.pipeline(unit, kind, policy=engine.active_policy()[1]))


@bp.get("/audit/verify")
def audit_verify():
    if not authority.can_verify_audit(current_user):
        raise Forbidden("only admin or HR at the root unit may verify the audit trail")
    report = audit.verify()
    out = {"ok": report.ok, "events": report.events}
    if not report.ok:
        out["first_bad"] = report.first_bad
    return jsonify(out)


# The promotion rounds' endpoints register on this blueprint.
from . import api_rounds  # noqa: E402,F401
from . import api_reviews  # noqa: E402,F401
from . import api_publicity  # noqa: E402,F401
from . import api_notifications  # noqa: E402,F401
from . import api_attachments  # noqa: E402,F401
from . import api_customers, api_tiering, api_portfolios, api_leads  # noqa: E402,F401
from . import openapi  # noqa: E402,F401
