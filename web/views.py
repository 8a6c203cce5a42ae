"""What every page shares: labels in the user's language, Jinja filters, the navigation and error pages."""
from __future__ import annotations

import datetime as dt
import re

from flask import g, jsonify, render_template, request
from flask_babel import format_datetime, get_locale, gettext as _, lazy_gettext as _l, ngettext
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from workflow import authority, engine, i18n
from workflow.errors import WorkflowError
from workflow.models import db, CaseAssignee, Case
from workflow.policy import Policy

from .extensions import LANGUAGES, login_manager

# --- labels ------------------------------------------------------------------------------------------
# Ids stay ids in the data and the API; the pages show these words.

STATES = {
    "submitted": _l("Submitted"), "qualification_review": _l("Qualification review"),
    "returned": _l("Returned"), "panel_scoring": _l("Panel review"), "hr_approval": _l("HR approval"),
    "approved": _l("Approved"), "effective": _l("Effective"), "rejected": _l("Rejected"),
    "withdrawn": _l("Withdrawn"), "not_selected": _l("Not selected"),
    "in_probation": _l("In probation"), "evaluation": _l("Probation evaluation"), "hr_review": _l("HR review"),
    "confirmed": _l("Confirmed"), "failed": _l("Failed"), "review": _l("Review"), "notice": _l("Notice"),
    "appeal_review": _l("Appeal review"), "final_approval": _l("Final approval"), "retained": _l("Retained"),
    "overturned": _l("Overturned"), "transferred": _l("Transferred"), "publicity": _l("Publicity"),
}

ACTIONS = {
    "create": _l("Apply"), "qualify": _l("Qualify"), "return": _l("Return"), "resubmit": _l("Resubmit"),
    "reject": _l("Reject"), "assign_panel": _l("Form the panel"), "score": _l("Panel score"),
    "supervisor_score": _l("Supervisor evaluation"), "scoring_complete": _l("Scoring complete"),
    "approve": _l("Approve"), "make_effective": _l("Make effective"), "withdraw": _l("Withdraw"),
    "declare_conflict": _l("Declare a conflict"), "escalate": _l("Escalated as overdue"),
    "reroute": _l("Rerouted after a role change"), "close": _l("Closed as the employment ended"),
    "not_select": _l("Not selected in the round"),
    "open_evaluation": _l("Open the evaluation"), "evaluate": _l("Evaluate"), "confirm": _l("Confirm"),
    "extend": _l("Extend"), "fail": _l("Fail"), "confirm_grounds": _l("Confirm the grounds"),
    "retain": _l("Retain"), "appeal": _l("Appeal"), "uphold": _l("Uphold"), "overturn": _l("Overturn"),
    "close_notice": _l("Close the notice"), "final_approve": _l("Final approval"),
    "accept_transfer": _l("Accept the transfer"), "object": _l("Object"),
    "end_publicity": _l("Publicity ended"), "sustain": _l("Sustain the rejection"),
    "reinstate": _l("Reinstate the application"),
    "attach": _l("Attach a file"), "score_for": _l("Panel score from the paper form"),
    "hand_over": _l("Hand over"), "copy": _l("Copy to"),
    "add_signer": _l("Add a signer"), "send_back": _l("Send back to an earlier step"),
    "roles_change": _l("Roles changed"), "password_set": _l("Password set"), "grade_change": _l("Grade changed"),
    "grade_history": _l("Earlier grades imported"),
    "urge": _l("Urged the assignees"), "email_set": _l("E-mail address set"),
}

KINDS = {"promotion": _l("Promotion"), "probation": _l("Probation"), "demotion": _l("Demotion"),
         "dismissal": _l("Dismissal")}

ROLES = {"supervisor": _l("Direct supervisor"), "approver": _l("Approver"), "hr": _l("HR department"),
         "panel": _l("Panel member"), "admin": _l("Administrator"), "employee": _l("Employee"),
         "committee": _l("Committee member")}

DUTIES = {"decide": _l("Decision"), "assign_panel": _l("Form the panel"), "panel": _l("Panel score"),
          "supervisor": _l("Supervisor evaluation"), "applicant": _l("Applicant")}

RULES = {
    "months_at_grade": _l("Time at the current grade"), "months_in_post": _l("Time in the post"),
    "education_at_least": _l("Education"), "performance_average": _l("Last year's average performance"),
    "performance_rank": _l("Performance rank"), "skill_test_passed": _l("Latest skill test"),
    "latest_score_at_least": _l("Latest assessment score"), "not_in_probation": _l("Not in probation"),
    "holds_customers": _l("Customers held"), "visit_coverage": _l("Visit coverage"),
}

REASONS = {"vacancy": _l("Vacancy"), "self": _l("Own case"), "conflict": _l("Conflict of interest"),
           "exceptional": _l("Exceptional promotion"), "escalated": _l("Escalated")}

STATUSES = {"active": _l("Active"), "probation": _l("In probation"), "dismissed": _l("Dismissed")}

# Why a probation, demotion or dismissal case was opened; misconduct's severity; how the case ended.
CASE_REASONS = {
    "hire": _l("New hire"), "recompete": _l("Not retained after the re-competition"),
    "misconduct": _l("Misconduct"), "absence": _l("Absence (under 2 months of normal work)"),
    "probation_failed": _l("Failed probation"), "consecutive_demotions": _l("Demoted two years in a row"),
    "skill_test_failed": _l("Failed the post skill appraisal"),
}

SEVERITIES = {"minor": _l("Minor"), "major": _l("Major"), "severe": _l("Severe")}

SANCTIONS = {"demotion": _l("Demotion"), "dismissal": _l("Dismissal"), "standby": _l("Standby (no post)")}

OUTCOMES = {"confirmed": _l("Confirmed"), "dismissal": _l("Dismissal"),
            "transfer": _l("Transfer to another post"), "transferred": _l("Transferred"),
            "dismissed": _l("Dismissed")}

# 见习期工作表现评价表: the items the supervisor rates, and the ratings.
EVALUATION_ITEMS = {"attitude": _l("Work attitude"), "skills": _l("Professional skills"),
                    "service": _l("Customer service"), "teamwork": _l("Teamwork")}

RATINGS = {"excellent": _l("Excellent"), "good": _l("Good"), "adequate": _l("Adequate"),
           "poor": _l("Below expectations")}

COMPONENTS = {"supervisor": _l("Supervisor evaluation"), "panel": _l("Panel (case presentation)"),
              "annual_performance": _l("Annual performance")}

EFFECTIVE_WHEN = {"on_approval": _l("On HR approval"), "first_of_next_month": _l("First day of the next month")}

SIGN_MODES = {"any": _l("Any one signs"), "all": _l("All sign")}

STATE_COLOURS = {
    "qualification_review": "primary", "panel_scoring": "info", "hr_approval": "warning", "approved": "success",
    "effective": "success", "returned": "secondary", "rejected": "danger", "withdrawn": "dark",
    "not_selected": "dark", "submitted": "primary",
    "in_probation": "info", "evaluation": "primary", "hr_review": "warning", "confirmed": "success",
    "failed": "danger", "review": "primary", "notice": "warning", "appeal_review": "info",
    "final_approval": "warning", "retained": "success", "overturned": "success", "transferred": "secondary",
    "publicity": "info",
}


def lang() -> str:
    return str(get_locale() or "zh_CN")


def label(table: dict, key) -> str:
    """The word for an id, or the id itself when nobody has named it yet."""
    if key is None:
        return "—"
    return str(table[key]) if key in table else str(key)


def active_policy() -> Policy | None:
    """The active policy, read once per request (None if none is active yet)."""
    if "gf_policy" not in g:
        try:
            g.gf_policy = engine.active_policy()[1]
        except WorkflowError:
            g.gf_policy = None
    return g.gf_policy


def level_label(level_id: str | None, pol: Policy | None = None) -> str:
    pol = pol or active_policy()
    if not level_id:
        return "—"
    try:
        return pol.level(level_id).label(lang())
    except (KeyError, AttributeError):
        return level_id


def customer_tier_label(tier_id: str | None, cpol=None) -> str:
    """A customer tier id -> its name in the active policy's customers section (the id when unknown)."""
    if not tier_id:
        return "—"
    pol = active_policy()
    cpol = cpol or (pol.customers if pol else None)
    try:
        return cpol.tier(tier_id).label(lang())
    except (KeyError, AttributeError):
        return tier_id


def customer_industry_label(industry: str | None, cpol=None) -> str:
    pol = active_policy()
    cpol = cpol or (pol.customers if pol else None)
    if not industry:
        return "—"
    return cpol.industry_label(industry, lang()) if cpol else industry


def grade_label(grade: str | None, pol: Policy | None = None) -> str:
    """`senior-2` -> 高级客户经理 2档 / Senior Account Manager, tier 2."""
    if not grade:
        return "—"
    level, _sep, tier = grade.rpartition("-")
    if not level or not tier.isdigit():
        return level_label(grade, pol)
    return _("%(level)s, tier %(tier)s", level=level_label(level, pol), tier=tier)


def named_label(items, key: str | None) -> str:
    for item in items or ():
        if item.id == key:
            return item.label(lang())
    return key or "—"


def org_level_label(level_id: str | None, pol: Policy | None = None) -> str:
    pol = pol or active_policy()
    return named_label(pol.org_levels if pol else (), level_id)


def education_label(edu: str | None, pol: Policy | None = None) -> str:
    pol = pol or active_policy()
    return named_label(pol.education if pol else (), edu)


_MONTHS = re.compile(r"(\d+) months")
_TOP = re.compile(r"top ([\d.]+)%")
_WORD = re.compile(r"[A-Za-z_]+")
_CUSTOMERS = re.compile(r"(\d+) customers")
_TIERS = re.compile(r"\[([^\]]*)\]")


def rule_value(text, pol: Policy | None = None) -> str:
    """An eligibility rule's required or actual value, as the engine wrote it, in the user's language."""
    if text is None:
        return "—"
    text = str(text)
    pol = pol or active_policy()
    text = _MONTHS.sub(lambda m: ngettext("%(num)s month", "%(num)s months", int(m.group(1))), text)
    text = _TOP.sub(lambda m: _("top %(pct)s%%", pct=m.group(1)), text)
    # The portfolio rules (workflow/rules.py): "≥ 1 customers [A1, A2]", "3 customers", "no customers".
    text = text.replace("no customers", _("no customers"))
    text = _CUSTOMERS.sub(lambda m: ngettext("%(num)s customer", "%(num)s customers", int(m.group(1))), text)
    tiers = {t.id: t.label(lang()) for t in (pol.customers.tiers if pol and pol.customers else ())}
    text = _TIERS.sub(lambda m: "(" + ", ".join(tiers.get(t.strip(), t.strip()) for t in m.group(1).split(","))
                      + ")", text)
    words = {"pass": _("pass"), "fail": _("fail"), **{k: str(v) for k, v in STATUSES.items()}}
    edu = {e.id: e.label(lang()) for e in (pol.education if pol else ())}
    return _WORD.sub(lambda m: edu.get(m.group(0)) or words.get(m.group(0), m.group(0)), text)


def unit_label(unit) -> str:
    return f"{unit.name} ({unit.code})" if unit is not None else "—"


def when(value) -> str:
    """A stored UTC time in the configured time zone."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.rstrip("Z"))
    return format_datetime(value, "yyyy-MM-dd HH:mm")


def day(value) -> str:
    return value.isoformat() if value else "—"


# --- navigation --------------------------------------------------------------------------------------

def nav() -> dict:
    """What the navigation bar offers the current user (authority decides, the template only asks)."""
    if not current_user.is_authenticated:
        return {}
    inbox = db.session.scalar(
        db.select(db.func.count(db.distinct(CaseAssignee.case_id)))
        .join(Case, Case.id == CaseAssignee.case_id)
        .where(CaseAssignee.person_id == current_user.id, Case.closed.is_(False)))
    return {
        "inbox": inbox or 0,
        "pipeline": any(ra.role in ("hr", "approver", "admin") for ra in current_user.roles),
        "rounds": any(ra.role in ("hr", "approver", "admin") for ra in current_user.roles),
        "reviews": any(ra.role == "hr" for ra in current_user.roles),     # the annual review (HR runs it)
        "admin": authority.is_admin(current_user),
        # Opening a demotion or dismissal (HR; the direct supervisor for misconduct), a probation (HR).
        "open_case": any(ra.role in ("hr", "supervisor") for ra in current_user.roles),
        "open_probation": any(ra.role == "hr" for ra in current_user.roles),
        "customers": _customer_nav(),
    }


def _customer_nav() -> dict:
    """The customer menu's entries, when the active policy tiers customers (an empty dict hides the menu)."""
    pol = active_policy()
    if pol is None or pol.customers is None:
        return {}
    roles = {ra.role for ra in current_user.roles}
    entries = {
        "view": bool(roles & set(authority.CUSTOMER_VIEWERS)),
        "keep": bool(roles & set(authority.CUSTOMER_KEEPERS)),
        "tiering": bool(roles & {"hr", "approver", "admin"}),
        # a manager of a level that holds customers sees their own portfolio and leads
        "mine": current_user.level is not None and (pol.customers.holding_levels is None
                                                    or current_user.level in pol.customers.holding_levels),
    }
    entries["leads"] = bool(pol.customers.lead_classes) and (entries["view"] or entries["mine"])
    return entries if any(entries.values()) else {}


# --- error pages -------------------------------------------------------------------------------------

ERROR_TITLES = {400: _l("Bad request"), 403: _l("Not allowed"), 404: _l("Not found"),
                405: _l("Method not allowed"), 409: _l("The case has changed"), 413: _l("Too large"),
                422: _l("Refused"), 429: _l("Too many attempts"), 500: _l("Something went wrong")}

ERROR_TEXTS = {
    400: _l("The request could not be understood."),
    403: _l("You may not open this page or take this action."),
    404: _l("There is no such page, or you may not see it."),
    405: _l("This address does not accept that kind of request."),
    409: _l("The case has changed since you loaded it; reload the page."),
    413: _l("What was sent is larger than this site accepts."),
    422: _l("A rule refuses this."),
    429: _l("Too many attempts in a short time; wait a while and try again."),
    500: _l("The server could not finish the request. It has been logged; please try again later."),
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def error_page(status: int, detail: str | None = None):
    status = status if status in ERROR_TITLES else 500
    if _wants_json():
        codes = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                 409: "conflict", 413: "too_large", 422: "refused", 429: "too_many_requests", 500: "error"}
        return jsonify({"error": {"code": codes[status], "message": detail or str(ERROR_TEXTS[status])}}), status
    return render_template("errors/error.html", status=status, title=ERROR_TITLES[status],
                           text=ERROR_TEXTS[status], detail=detail), status


def _http_error(exc: HTTPException):
    db.session.rollback()
    # A reason given to abort() is shown; werkzeug's generic English text is not.
    detail = exc.description if exc.description != type(exc).description else None
    body, status = error_page(exc.code or 500, detail)
    return body, status, {k: v for k, v in exc.get_headers() if k in ("Allow", "Retry-After")}


def _workflow_error(exc: WorkflowError):
    db.session.rollback()
    return error_page(exc.status, exc.message if exc.status in (403, 422, 400) else None)


def _server_error(exc):
    db.session.rollback()
    return error_page(500)


def init_app(app) -> None:
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "warning"
    login_manager.localize_callback = str
    for kind, labels in (("action", ACTIONS), ("state", STATES), ("role", ROLES), ("kind", KINDS)):
        i18n.register_terms(kind, labels)     # the words the engine's messages name, in other languages

    for code in (400, 403, 404, 405):
        app.register_error_handler(code, _http_error)
    app.register_error_handler(500, _server_error)
    app.register_error_handler(WorkflowError, _workflow_error)

    @app.before_request
    def _fresh_request_caches():
        # Each request chooses its locale and reads the policy afresh, even when an app context outlives
        # a request (the tests keep one open; Flask-Babel caches the locale in `g`).
        g.pop("_flask_babel", None)
        g.pop("gf_policy", None)

    filters = {
        "state": lambda s: label(STATES, s), "action": lambda a: label(ACTIONS, a),
        "kind": lambda k: label(KINDS, k), "role": lambda r: label(ROLES, r), "duty": lambda d: label(DUTIES, d),
        "rule": lambda r: label(RULES, r), "reason": lambda r: label(REASONS, r),
        "status": lambda s: label(STATUSES, s), "component": lambda c: label(COMPONENTS, c),
        "grade": grade_label, "level": level_label, "org_level": org_level_label, "education": education_label,
        "rule_value": rule_value, "unit": unit_label, "when": when, "day": day,
        "state_colour": lambda s: STATE_COLOURS.get(s, "secondary"),
        "case_reason": lambda r: label(CASE_REASONS, r), "severity": lambda s: label(SEVERITIES, s),
        "outcome": lambda o: label(OUTCOMES, o), "evaluation_item": lambda i: label(EVALUATION_ITEMS, i),
        "rating": lambda r: label(RATINGS, r), "sanction": lambda s: label(SANCTIONS, s),
        "customer_tier": customer_tier_label, "customer_industry": customer_industry_label,
    }
    app.jinja_env.filters.update(filters)

    @app.context_processor
    def _globals():
        try:
            shared = {"nav": nav(), "policy": active_policy()}
        except SQLAlchemyError:
            # The error page of a failing database still renders, without the counts.
            db.session.rollback()
            shared = {"nav": {}, "policy": None}
        return {**shared, "lang": lang(), "languages": LANGUAGES, "EFFECTIVE_WHEN": EFFECTIVE_WHEN,
                "SIGN_MODES": SIGN_MODES}
