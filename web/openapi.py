"""The OpenAPI 3.1 description of /api/v1, served at GET /api/v1/openapi.json (no login needed).

The document is data built here once: paths with their parameters, request bodies and answers, the JSON
schemas of the contract's shapes (CONTRACT.md), the error shape and how a caller authenticates. A test checks
that every /api/v1 rule of the application is described (tests/web/test_openapi.py), and the API is fuzzed
against it (tests/web/test_api_fuzz.py). The case actions are listed from the rulebooks, so a new action is
described with no edit here. See docs/api.md.
"""
from __future__ import annotations

import copy
from functools import cache
from typing import Any

from flask import jsonify

from workflow.machines import RULEBOOKS
from workflow.models import MAX_ID

from .api import CASE_KINDS, PAGE_NUMBER_MAX, bp

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema or null (JSON Schema 2020-12: a type list, or anyOf for a reference)."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    return out


def obj(properties: dict[str, Any], required: list[str] | tuple[str, ...] | None = None, **extra) -> dict:
    """An object schema; `required` defaults to every property (answers always carry all their keys)."""
    out = {"type": "object", "properties": properties,
           "required": list(properties if required is None else required)}
    out.update(extra)
    return out


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def case_actions() -> list[str]:
    """Every action some case kind's rulebook knows, in a stable order."""
    seen: dict[str, None] = {}
    for rb in RULEBOOKS.values():
        for action in rb.actions():
            seen.setdefault(action, None)
    return list(seen)


# --- the shapes -----------------------------------------------------------------------------------------

def schemas() -> dict[str, Any]:
    grade = {"type": ["string", "null"], "description": "LEVEL-TIER, e.g. senior-1"}
    policy_version = obj({"label": STRING, "hash": STRING})
    event = obj({
        "seq": INTEGER, "action": STRING, "from_state": nullable(STRING), "to_state": nullable(STRING),
        "actor": {"type": ["string", "null"], "description": "a username or `system`; null where the "
                                                              "viewer may not see who objected"},
        "role": nullable(STRING), "unit": nullable(STRING), "at": DATETIME, "comment": nullable(STRING),
        "data": {"type": "object"},
    })
    eligibility = obj({"rule": STRING, "required": {}, "actual": {}, "passed": BOOLEAN},
                      required=["rule", "passed"])
    scores = obj({
        "panel": array(obj({"scorer": STRING, "value": nullable(NUMBER), "at": DATETIME})),
        "panel_members": array(STRING),
        "supervisor": nullable(obj({"scorer": STRING, "value": nullable(NUMBER)})),
        "annual_performance": nullable(NUMBER),
    })
    case = obj({
        "id": INTEGER, "version": INTEGER, "policy_version": ref("PolicyVersion"),
        "kind": {"type": "string", "enum": list(CASE_KINDS)},
        "employee": STRING, "employee_name": STRING, "filed_by": STRING,
        "reason": nullable(STRING), "severity": nullable(STRING), "due_on": nullable(DATE),
        "outcome": nullable(STRING), "related_case": nullable(INTEGER),
        "from_grade": grade, "target_grade": grade, "state": STRING, "exceptional": nullable(BOOLEAN),
        "statement": nullable(STRING), "round": nullable(INTEGER),
        "step_unit": {"type": ["string", "null"], "description": "the unit whose role-holders act now"},
        "assignees": array(STRING),
        "routing_reason": {"type": ["string", "null"],
                           "enum": ["vacancy", "self", "conflict", "exceptional", "escalated", None]},
        "routing_note": nullable(STRING),
        "eligibility": array(ref("EligibilityResult")), "eligible": nullable(BOOLEAN),
        "scores": ref("Scores"), "composite": nullable(NUMBER), "deadline": nullable(DATE),
        "overdue": BOOLEAN, "effective_on": nullable(DATE),
        "actions": {**array(STRING), "description": "what the caller may do now"},
        "signing": {**nullable(obj({
            "added_signers": array(obj({
                "person": STRING, "position": {"type": "string", "enum": ["before", "after"]},
                "added_by": STRING, "order": INTEGER, "signed": BOOLEAN, "waiting": BOOLEAN})),
            "committee": nullable(obj({
                "name": obj({"zh": STRING, "en": STRING}), "sign": STRING, "pass_ratio": nullable(STRING),
                "members": INTEGER, "needed": INTEGER, "approvals": INTEGER, "rejections": INTEGER})),
        })), "description": "the current step's signers added (加签), in order, and its committee's count; "
                            "null when the step has neither"},
        "send_back_to": {**array(STRING), "description": "the earlier steps `send_back` may return the case to"},
        "events": array(ref("Event")), "created_at": DATETIME,
        "copied_to": {**array(STRING), "description": "抄送: who the case was copied to, for information"},
        "attachments": {**array(ref("Attachment")), "description": "附件: the files attached to the case"},
        "acting_for": {**array(obj({"principal": STRING, "delegate": STRING, "until": DATE})),
                       "description": "代理: assignees whose delegation is in force, and who acts for them"},
    })
    quota = obj({"cap": nullable(NUMBER), "headcount": INTEGER, "holders": INTEGER,
                 "freed_by_demotions": INTEGER, "quota": nullable(INTEGER), "explanation": nullable(STRING)},
                required=["headcount", "holders", "quota"])
    result_row = obj({"username": STRING, "case": INTEGER, "rank": INTEGER, "composite": nullable(NUMBER),
                      "decision": {"type": "string", "enum": ["promoted", "not_selected"]}})
    results = {"type": "object", "additionalProperties": array(ref("RoundResult")),
               "description": "per target level, the ranked candidates"}
    round_ = obj({
        "id": INTEGER, "version": INTEGER, "unit": STRING, "unit_name": STRING, "period": STRING,
        "title": STRING, "state": {"type": "string", "enum": ["open", "closed", "decided"]},
        "opens_on": DATE, "closes_on": DATE, "levels": array(STRING),
        "quotas": {"type": "object", "additionalProperties": ref("Quota")},
        "min_composite": nullable(NUMBER), "policy_version": ref("PolicyVersion"), "created_by": STRING,
        "created_at": DATETIME, "closed_at": nullable(DATETIME), "decided_at": nullable(DATETIME),
    })
    round_detail = {"allOf": [ref("Round"), obj({
        "eligible": {"type": "object", "additionalProperties": array(STRING)},
        "applications": array(obj({"case": INTEGER, "employee": STRING, "from_grade": grade,
                                   "target_grade": grade, "state": STRING, "composite": nullable(NUMBER)})),
        "results": {"anyOf": [ref("RoundResults"), {"type": "null"}]},
    })]}
    outcome = obj({"username": STRING, "level": nullable(STRING), "rank": nullable(INTEGER),
                   "of": nullable(INTEGER),
                   "outcome": {"type": "string", "enum": ["recompete", "demote_absence", "exempt_leave",
                                                          "dismiss_consecutive", "none"]},
                   "reason": nullable(STRING), "case": nullable(INTEGER)},
                  required=["username", "outcome"])
    review = obj({
        "id": nullable(INTEGER), "unit": STRING, "period": STRING, "dry_run": BOOLEAN, "stored": BOOLEAN,
        "refused": nullable(STRING), "created_by": nullable(STRING), "created_at": nullable(DATETIME),
        "policy_version": {"anyOf": [ref("PolicyVersion"), {"type": "null"}]},
        "outcomes": array(ref("ReviewOutcome")),
    })
    return {
        "Error": obj({"error": obj({
            "code": {"type": "string", "description": "bad_request, unauthorized, forbidden, not_found, "
                                                      "conflict, refused, …"},
            "message": {"type": "string", "description": "what is wrong, in words a person can act on"},
            "details": {"type": "object", "description": "e.g. the field at fault, the current version"},
        }, required=["code", "message"])}),
        "Token": obj({"token": STRING}),
        "Me": obj({"username": STRING, "name": STRING, "unit": STRING, "grade": grade,
                   "roles": {**array(STRING), "description": "ROLE@UNIT"},
                   "status": {"type": "string", "enum": ["active", "probation", "dismissed"]}}),
        "Policy": obj({"id": STRING, "label": STRING, "hash": STRING, "org_levels": array({"type": "object"}),
                       "ladder": array(obj({"id": STRING, "name": {"type": "object"}, "tiers": INTEGER})),
                       "authority": {"type": "object"}, "weights": {"type": "object"}},
                      description="the active policy (docs/policies.md)"),
        "PolicyVersion": policy_version,
        "Event": event,
        "EligibilityResult": eligibility,
        "Scores": scores,
        "Case": case,
        "Attachment": obj({
            "id": INTEGER, "filename": STRING, "content_type": STRING, "size": INTEGER,
            "sha256": {**STRING, "description": "the file's SHA-256; recorded in the case's `attach` event"},
            "uploaded_by": STRING, "created_at": DATETIME, "url": {**STRING, "description": "GET it here"}}),
        "Pipeline": pipeline_schema(),
        "LevelHeadcount": obj({
            "count": INTEGER, "share": {**nullable(NUMBER), "description": "count / headcount (null: nobody)"},
            "cap": {**nullable(NUMBER), "description": "the policy's hard cap, a share of headcount"},
            "target": {**nullable(NUMBER), "description": "the policy's target share (shown, not enforced)"},
            "places": {**nullable(INTEGER), "description": "floor(cap · headcount)"},
            "target_count": {**nullable(INTEGER), "description": "target · headcount, rounded"},
            "over_cap": {**BOOLEAN, "description": "more holders than the cap's places"}}),
        "UnitHeadcount": obj({"headcount": INTEGER,
                              "levels": {"type": "object", "additionalProperties": ref("LevelHeadcount")},
                              "over_cap": array(STRING)}),
        "AuditReport": obj({"ok": BOOLEAN, "events": INTEGER, "first_bad": {"type": "object"}},
                           required=["ok", "events"]),
        "Quota": quota,
        "RoundResult": result_row,
        "RoundResults": results,
        "Round": round_,
        "RoundDetail": round_detail,
        "ReviewOutcome": outcome,
        "Review": review,
        "Job": obj({
            "id": INTEGER,
            "kind": {"type": "string", "enum": ["import_people", "bulk_decision", "annual_review"]},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "done": INTEGER, "total": nullable(INTEGER), "percent": nullable(INTEGER), "params": {},
            "result": {}, "error": nullable(STRING), "created_by": STRING, "created_at": DATETIME,
            "started_at": nullable(DATETIME), "finished_at": nullable(DATETIME), "attempts": INTEGER,
            "files": array(obj({"purpose": STRING, "name": STRING, "size": INTEGER})),
        }),
        "BulkResult": obj({
            "action": {"type": "string", "enum": ["qualify", "approve"]},
            "ok": INTEGER, "refused": INTEGER,
            "items": array(obj({
                "case": INTEGER, "ok": BOOLEAN, "state": STRING, "version": INTEGER, "status": INTEGER,
                "code": STRING, "reason": STRING,
            }, required=["case", "ok"], description="Decided (`state`, `version`) or refused (`status`, "
                                                    "`code`, `reason` in the request's language)")),
        }),
        "JobPage": page_of("Job"),
        "Notification": obj({
            "id": INTEGER,
            "kind": {"type": "string", "enum": ["assigned", "escalated", "decided", "due_soon", "overdue", "urged"]},
            "case": nullable(INTEGER),
            "params": {"type": "object", "description": "what the message says, as ids and values"},
            "title": {**STRING, "description": "in the request's language"}, "text": STRING,
            "created_at": DATETIME, "read_at": nullable(DATETIME), "read": BOOLEAN,
            "mail": {"type": "string", "enum": ["pending", "sent", "logged", "skipped", "failed"],
                     "description": "the e-mail's state"},
        }),
        "NotificationPage": page_of("Notification"),
        "NotificationSettings": obj({"email": nullable(STRING), "email_notifications": BOOLEAN,
                                     "language": {"type": "string", "enum": ["zh_CN", "en"]}}),
        "PersonEmail": obj({"username": STRING, "email": nullable(STRING), "email_notifications": BOOLEAN,
                            "language": {"type": "string", "enum": ["zh_CN", "en"]}}),
        "UnreadCount": obj({"unread": INTEGER}),
        "MarkedRead": obj({"marked": INTEGER, "unread": INTEGER}),
        "UrgeResult": obj({"urged": {**array(STRING), "description": "the usernames urged"}, "case": ref("Case")}),
        "CasePage": page_of("Case"),
        "Delegation": obj({
            "id": INTEGER, "principal": STRING, "delegate": STRING, "starts_on": DATE, "ends_on": DATE,
            "comment": STRING, "status": {"type": "string", "enum": ["upcoming", "active", "ended", "revoked"]},
            "created_at": DATETIME, "revoked_at": nullable(DATETIME), "revoked_by": nullable(STRING)}),
        "DelegationPage": page_of("Delegation"),
        "RoundPage": page_of("Round"),
        "ReviewPage": page_of("Review"),
    }


def pipeline_schema() -> dict[str, Any]:
    """GET /pipeline: the HR dashboard's figures for a unit's subtree (workflow/reports.pipeline)."""
    counts = {"type": "object", "additionalProperties": INTEGER}
    by_level = {"type": "object", "additionalProperties": counts,
                "description": "target level (`-` for none) -> state -> cases"}
    return obj({
        "unit": STRING,
        "by_state": {**counts, "description": "state -> cases"},
        "by_level": by_level,
        "overdue": {**array(INTEGER), "description": "the open cases past their step's deadline"},
        "units": {**array(obj({"code": STRING, "name": STRING, "level": STRING, "direct": BOOLEAN})),
                  "description": "the unit (`direct`: the people directly in it) and its child units"},
        "by_unit": {"type": "object", "additionalProperties": by_level,
                    "description": "child unit code (the unit's own code: people directly in it) -> target "
                                   "level -> state -> cases"},
        "overdue_steps": {**array(obj({
            "case": INTEGER, "kind": STRING, "state": STRING, "employee": STRING, "employee_name": STRING,
            "step_unit": nullable(STRING), "deadline": DATE, "days_late": INTEGER,
            "working_days_late": INTEGER})), "description": "the overdue cases, the most late first"},
        "steps": {**array(obj({
            "kind": STRING, "state": STRING,
            "visits": {**INTEGER, "description": "times a case entered the step"},
            "current": {**INTEGER, "description": "cases in the step now"},
            "median_days": NUMBER, "slowest_days": NUMBER, "slowest_case": INTEGER,
            "deadline_days": {**nullable(INTEGER), "description": "the policy's deadline, working days"}})),
            "description": "time spent per step, from the audit events, by the visits open or ended since "
                           "`stats_since`; a current step counts to today"},
        "stats_since": {**DATE, "description": "the first day counted by `steps` and `funnel` (a year ago)"},
        "funnel": {**array(obj({"stage": {"type": "string", "enum": ["filed", "qualified", "hr_approval",
                                                                     "approved", "effective"]},
                                "cases": INTEGER})),
                   "description": "promotions filed since `stats_since` that reached each stage or a later one "
                                  "(empty for another kind)"},
        "headcount": obj({"levels": array(STRING), "total": ref("UnitHeadcount"),
                          "by_unit": {"type": "object", "additionalProperties": ref("UnitHeadcount")}}),
    })


def page_of(item: str) -> dict[str, Any]:
    return obj({"items": array(ref(item)), "total": {"type": "integer", "minimum": 0},
                "page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1}})


def request_bodies() -> dict[str, Any]:
    text = STRING
    action = {
        "type": "object",
        "description": "Each action reads the fields it needs; the others are ignored. `return`, "
                       "`reject`, `retain`, `uphold`, `overturn`, `sustain`, `reinstate`, `fail` and "
                       "`declare_conflict` need a comment (422 without).",
        "properties": {
            "version": {"type": "integer", "description": "the case version the caller saw; 409 if the case "
                                                          "has moved on (ignored by `score`)"},
            "comment": text,
            "statement": {**text, "description": "resubmit, appeal, object"},
            "members": {**array(STRING), "description": "assign_panel: usernames"},
            "score": {"type": "number", "minimum": 0, "maximum": 100,
                      "description": "score, supervisor_score, evaluate"},
            "form": {"type": "object", "additionalProperties": {"type": ["string", "number"]},
                     "description": "evaluate: the trainee evaluation form's answers"},
            "months": {"type": "integer", "minimum": 1, "description": "extend"},
            "outcome": {"type": "string", "enum": ["dismissal", "transfer"], "description": "fail"},
            "unit": {**text, "description": "accept_transfer: the unit code to move to"},
            "person": {**text, "description": "add_signer (加签): the username of the signer to add"},
            "member": {**text, "description": "score_for (HR, from a paper panel form): the panel member whose "
                                              "score it is; with `score`"},
            "position": {"type": "string", "enum": ["before", "after"],
                         "description": "add_signer: `before` (they sign first, then the step comes back to "
                                        "you) or `after` (they sign after you)"},
            "to_step": {**text, "description": "send_back (退回): an earlier step the case passed through "
                                               "(the case's `send_back_to`); needs a comment"},
            "to": {**text, "description": "hand_over (转办; needs a comment) and copy (抄送): a username"},
            "duty": {"type": "string", "enum": ["decide", "assign_panel", "supervisor"],
                     "description": "hand_over: which of the caller's tasks (default: the first)"},
        },
    }
    new_case = {
        "type": "object",
        "description": "A promotion names `target_grade` (`LEVEL` or `LEVEL-TIER`); demotion and "
                       "dismissal a `reason` (misconduct also `severity` and a `comment`); a probation only "
                       "the employee.",
        "properties": {
            "kind": {"type": "string", "enum": list(CASE_KINDS), "default": "promotion"},
            "employee": {**text, "description": "a username; the caller by default (HR may file for others)"},
            "target_grade": text, "statement": text, "exceptional": {**BOOLEAN, "default": False},
            "round": {**ID, "description": "file the promotion into this round"},
            "reason": {"type": "string", "enum": ["recompete", "misconduct", "absence", "probation_failed",
                                                  "consecutive_demotions", "skill_test_failed"]},
            "severity": {"type": "string", "enum": ["minor", "major", "severe"]},
            "comment": text,
        },
    }
    return {
        "Credentials": obj({"username": STRING, "password": STRING}),
        "NewDelegation": obj({"delegate": {**STRING, "description": "the colleague's username"},
                              "starts_on": DATE, "ends_on": {**DATE, "description": "included"},
                              "comment": {"type": "string", "maxLength": 2000}},
                             required=["delegate", "starts_on", "ends_on"]),
        "RevokeDelegation": obj({"comment": {"type": "string", "maxLength": 2000}}, required=[]),
        "NewCase": new_case,
        "Action": action,
        "NewRound": obj({"unit": STRING, "period": {**STRING, "examples": ["2026"]}, "title": STRING,
                         "opens_on": DATE, "closes_on": DATE,
                         "levels": {**array(STRING), "minItems": 1, "uniqueItems": True}},
                        required=["unit", "period", "opens_on", "closes_on", "levels"]),
        "RoundChange": obj({"version": {"type": "integer",
                                        "description": "the round version the caller saw"}}, required=[]),
        "BulkDecision": obj({
            "action": {"type": "string", "enum": ["qualify", "approve"]},
            "cases": {**array(ID), "minItems": 1, "maxItems": 5000, "uniqueItems": True},
            "comment": {"type": "string", "maxLength": 2000},
            "versions": {"type": "object", "additionalProperties": INTEGER,
                         "description": "{case id: the version the caller saw}"},
        }, required=["action", "cases"]),
        "Urge": obj({"comment": {"type": "string", "maxLength": 1000}}, required=[]),
        "NotificationSettings": obj({"email_notifications": BOOLEAN,
                                     "language": {"type": "string", "enum": ["zh_CN", "en"]}}, required=[],
                                    additionalProperties=False),
        "PersonEmail": obj({"email": nullable({"type": "string", "maxLength": 254})}),
        "ReviewJob": obj({"unit": STRING, "period": {"type": ["string", "integer"], "examples": ["2025"]}}),
        "ReviewRun": obj({"unit": STRING, "period": {"type": ["string", "integer"], "examples": ["2025"]},
                          "dry_run": {**BOOLEAN, "default": False}}, required=["unit", "period"]),
    }


# --- the operations -------------------------------------------------------------------------------------

ERRORS = {
    400: "Malformed: the body is not a JSON object, a field has the wrong type, a query parameter is not "
         "a whole number, or some text holds a NUL character or a lone surrogate.",
    401: "Not logged in (no valid bearer token or session).",
    403: "The caller may see it but may not do this.",
    404: "Not found, or not visible to the caller.",
    409: "The state or version no longer allows it: another decision came first; reload.",
    413: "The body is too large.",
    415: "The body is not of the media type the operation takes (an upload is multipart/form-data).",
    422: "A rule refuses it; the message says which.",
    429: "Too many failed logins for the username or from the address: try again later.",
    503: "Not available on this server: PDF needs WeasyPrint, whose system libraries are missing here (print "
         "the page from a browser instead).",
}


def json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def operation(op_id: str, summary: str, ok: dict[int, dict[str, Any]], errors: list[int], *, tags: list[str],
              params: list[dict] | None = None, body: str | None = None, public: bool = False,
              description: str | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {str(code): answer for code, answer in ok.items()}
    # Any request may be malformed: text no column can hold, in a query parameter too (web/__init__.py).
    for code in sorted(set(errors) | {400} | ({413} if body else set()) | (set() if public else {401})):
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "tags": tags, "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body == "Upload":
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": obj(
            {"people": {"type": "string", "format": "binary", "description": "CSV (UTF-8) or XLSX"},
             "units": {"type": "string", "format": "binary", "description": "CSV (UTF-8) or XLSX"},
             "history": {"type": "string", "format": "binary",
                         "description": "earlier grades (username,grade,grade_since), CSV (UTF-8) or XLSX"}},
            required=[])}}}
    elif body:
        op["requestBody"] = {"required": False,
                             "content": {"application/json": {"schema": ref(f"{body}Body")}}}
    if public:
        op["security"] = []
    return op


def path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": f"the {what}'s id", "schema": ID}


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or STRING}


PAGING = [query("page", "page number, from 1",
                {"type": "integer", "minimum": 1, "maximum": PAGE_NUMBER_MAX, "default": 1}),
          query("per_page", "rows per page (at most 500)", {"type": "integer", "minimum": 1, "default": 50})]
FLAG = {"type": "string", "enum": ["1", "0", "true", "false", "yes", "no", "on", ""]}
UNIT_FILTER = query("unit", "only the subtree of this unit code (404 if unknown or outside the caller's "
                            "scope)")


XLSX_ANSWER = {"description": "The workbook (headers and names in the Accept-Language asked for; Chinese "
                              "when none is).",
               "content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                   "schema": {"type": "string", "format": "binary"}}}}
PAYROLL_RANGE = [
    {"name": "from", "in": "query", "required": True, "description": "first effective date, YYYY-MM-DD",
     "schema": DATE},
    {"name": "to", "in": "query", "required": True, "description": "last effective date, YYYY-MM-DD",
     "schema": DATE}]


def export_paths() -> dict[str, Any]:
    """The Excel exports (web/exports.py)."""
    allowance = {"type": ["number", "null"], "description": "monthly level allowance; null where the policy "
                                                            "gives none"}
    change = obj({"effective_on": DATE, "username": STRING, "name": STRING, "unit": STRING,
                  "from_grade": nullable(STRING), "to_grade": nullable(STRING), "from_allowance": allowance,
                  "to_allowance": allowance, "allowance_change": allowance, "source": STRING,
                  "case": nullable(INTEGER)})
    page = obj({"items": array(change), "total": {"type": "integer", "minimum": 0},
                "page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1}})
    scores_import = operation(
        "importScores", "Import scores from CSV or XLSX at once, all or nothing (administrator at the root)",
        {200: json_answer("The scores created and updated.", obj({"created": INTEGER, "updated": INTEGER}))},
        [403, 422], tags=["jobs"], body="ScoresUpload",
        description="A refused file answers 422; its `error.details.rows` lists each bad row as `{file, line, "
                    "column, message}` and nothing is changed.")
    scores_import["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": obj(
        {"scores": {"type": "string", "format": "binary", "description": "CSV (UTF-8) or XLSX: username, "
                                                                         "period, kind, value"}},
        required=[])}}}
    return {
        "/cases.xlsx": {"get": operation(
            "getCasesXlsx", "The cases the caller may see, filtered as GET /cases, as a spreadsheet",
            {200: XLSX_ANSWER}, [400, 404], tags=["cases"],
            params=[query("kind", "case kind"), query("state", "state"), query("level", "target level"),
                    UNIT_FILTER, query("direct", "1: only the people directly in the unit"),
                    query("overdue", "1: only open cases past their deadline")])},
        "/roster.xlsx": {"get": operation(
            "getRosterXlsx", "The grade roster (花名册) of the caller's units (HR, approvers, admins)",
            {200: XLSX_ANSWER}, [403, 404], tags=["hr"],
            params=[UNIT_FILTER, query("dismissed", "1: include dismissed people")])},
        "/grade-changes": {"get": operation(
            "listGradeChanges", "Grade changes taking effect in a date range, with level allowances (HR)",
            {200: json_answer("A page of grade changes, by date.", page)}, [403, 404], tags=["hr"],
            params=[*PAYROLL_RANGE, UNIT_FILTER, *PAGING])},
        "/grade-changes.xlsx": {"get": operation(
            "getGradeChangesXlsx", "Grade changes for payroll as a spreadsheet (HR)", {200: XLSX_ANSWER},
            [403, 404], tags=["hr"], params=[*PAYROLL_RANGE, UNIT_FILTER])},
        "/imports/scores": {"post": scores_import},
        "/import-templates/{kind}.xlsx": {"get": operation(
            "getImportTemplate", "An empty import file with the importer's headers and a notes sheet (HR)",
            {200: XLSX_ANSWER}, [403, 404], tags=["jobs"],
            params=[{"name": "kind", "in": "path", "required": True, "description": "the file's kind",
                     "schema": {"type": "string", "enum": ["units", "people", "scores", "absences"]}}])},
    }


def attachment_paths() -> dict[str, Any]:
    """Attachments and the printable forms as PDF (web/api_attachments.py)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    case_param = path_id("case_id", "case")
    upload = operation(
        "attachFile", "附件: attach a certificate, diploma or evidence of results to a case",
        {201: json_answer("The attachment.", ref("Attachment"))}, [403, 404, 409, 413, 415, 422],
        tags=["cases"], params=[case_param],
        description="multipart/form-data with the file in `file`: PDF, PNG, JPEG or XLSX, checked by "
                    "content (400 otherwise, or when larger than the configured limit). The applicant while "
                    "the case is open, its current assignees and HR over it may attach (403); a closed case "
                    "is 409. Recorded as an `attach` event with the checksum; the state does not change.")
    upload["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": obj(
        {"file": {"type": "string", "format": "binary"}}, required=["file"])}}}
    download = operation(
        "getAttachment", "An attachment's file, checked against its recorded checksum",
        {200: {"description": "The file, of the type it was attached as (its SHA-256 in `X-Content-SHA256`).",
               "content": {t: binary for t in ("application/pdf", "image/png", "image/jpeg",
                                               "application/vnd.openxmlformats-officedocument.spreadsheetml"
                                               ".sheet")}}}, [404, 422], tags=["cases"],
        params=[case_param, path_id("attachment_id", "attachment")],
        description="422 when the stored file no longer matches its checksum.")
    pdf = operation(
        "getFormPdf", "A printable form of the case as PDF (whoever may see the case)",
        {200: {"description": "The PDF.", "content": {"application/pdf": binary}}}, [404, 503], tags=["cases"],
        params=[case_param, {"name": "form", "in": "path", "required": True,
                             "description": "application and panel_evaluation (promotion); "
                                            "trainee_evaluation (probation)",
                             "schema": {"type": "string",
                                        "enum": ["application", "panel_evaluation", "trainee_evaluation"]}}])
    return {"/cases/{case_id}/attachments": {"post": upload},
            "/cases/{case_id}/attachments/{attachment_id}": {"get": download},
            "/cases/{case_id}/forms/{form}.pdf": {"get": pdf}}


def paths() -> dict[str, Any]:
    case_ok = json_answer("The case as the caller may see it.", ref("Case"))
    job_accepted = {**json_answer("The job, queued; `Location` names it.", ref("Job")),
                    "headers": {"Location": {"description": "the job's URL", "schema": STRING}}}
    return {
        "/auth/token": {"post": operation(
            "issueToken", "Log in: a bearer token for later calls",
            {200: json_answer("The token to send as `Authorization: Bearer TOKEN`.", ref("Token"))},
            [401, 429], tags=["auth"], body="Credentials", public=True)},
        "/me": {"get": operation("getMe", "The caller", {200: json_answer("Who calls.", ref("Me"))}, [],
                                 tags=["auth"])},
        "/policy": {"get": operation("getPolicy", "The active policy",
                                     {200: json_answer("The policy new cases start under.", ref("Policy"))},
                                     [422], tags=["reference"])},
        "/openapi.json": {"get": operation(
            "getOpenApi", "This description", {200: json_answer("The OpenAPI document.", {"type": "object"})},
            [], tags=["reference"], public=True)},
        "/cases": {
            "get": operation("listCases", "The cases the caller may see, newest first",
                             {200: json_answer("A page of cases.", ref("CasePage"))}, [400, 404],
                             tags=["cases"],
                             params=[query("kind", "case kind"), query("state", "state"),
                                     query("level", "target level (a level of the ladder)"), UNIT_FILTER,
                                     query("direct", "with unit: only the people directly in it", FLAG),
                                     query("overdue", "only open cases past their step's deadline", FLAG),
                                     *PAGING]),
            "post": operation("createCase", "File a case",
                              {201: json_answer("The new case.", ref("Case"))}, [403, 404, 409, 422],
                              tags=["cases"], body="NewCase"),
        },
        "/cases/{case_id}": {"get": operation(
            "getCase", "One case: state, assignees, eligibility, scores, events", {200: case_ok}, [404],
            tags=["cases"], params=[path_id("case_id", "case")])},
        "/cases/{case_id}/{action}": {"post": operation(
            "actOnCase", "Take an action on a case", {200: case_ok}, [403, 404, 409, 422], tags=["cases"],
            params=[path_id("case_id", "case"),
                    {"name": "action", "in": "path", "required": True,
                     "description": "an action of the case's kind (an unknown one is 404); `actions` on "
                                    "the case lists what the caller may take now",
                     "schema": {"type": "string", "enum": case_actions()}}],
            body="Action",
            description="Checks in order: visible (404), possible in the current state (409), the caller's "
                        "authority (403), the version named (409), the body and the rules (400/422).")},
        "/delegations": {
            "get": operation("listDelegations", "The delegations (代理) the caller gave or received",
                             {200: json_answer("A page of delegations.", ref("DelegationPage"))}, [400],
                             tags=["delegation"], params=PAGING),
            "post": operation("createDelegation", "Name a colleague to act for the caller (an approver or HR) "
                                                  "between two dates",
                              {201: json_answer("The delegation.", ref("Delegation"))}, [403, 422],
                              tags=["delegation"], body="NewDelegation")},
        "/delegations/{delegation_id}/revoke": {"post": operation(
            "revokeDelegation", "End a delegation (the principal, the delegate, or HR or an admin above)",
            {200: json_answer("The delegation, revoked.", ref("Delegation"))}, [403, 404, 409, 422],
            tags=["delegation"], params=[path_id("delegation_id", "delegation")], body="RevokeDelegation")},
        "/copies": {"get": operation("listCopies", "The cases copied to the caller (抄送), for information",
                                     {200: json_answer("A page of cases.", ref("CasePage"))}, [400],
                                     tags=["delegation"], params=PAGING)},
        "/inbox": {"get": operation("getInbox", "The cases waiting for the caller's action now",
                                    {200: json_answer("A page of cases.", ref("CasePage"))}, [400],
                                    tags=["cases"], params=PAGING)},
        "/publicity": {"get": operation(
            "listPublicity", "The promotions in publicity (公示) the caller may see",
            {200: json_answer("A page of cases.", ref("CasePage"))}, [400], tags=["cases"], params=PAGING)},
        "/pipeline": {"get": operation(
            "getPipeline", "The HR dashboard of a unit's subtree: counts by state, level and child unit, "
                           "time per step, the overdue steps, the promotion funnel, headcount against the policy",
            {200: json_answer("The pipeline.", ref("Pipeline"))}, [400, 403, 404], tags=["hr"],
            params=[query("unit", "unit code (default: the caller's highest HR, approver or admin unit)"),
                    query("kind", "case kind", {"type": "string", "enum": list(CASE_KINDS)})])},
        "/audit/verify": {"get": operation(
            "verifyAudit", "Check every audit chain (admin or HR at the root unit)",
            {200: json_answer("The report.", ref("AuditReport"))}, [403], tags=["hr"])},
        "/rounds": {
            "get": operation("listRounds", "The promotion rounds the caller may see",
                             {200: json_answer("A page of rounds.", ref("RoundPage"))}, [400, 404],
                             tags=["rounds"], params=[query("state", "open, closed or decided"), UNIT_FILTER,
                                                      *PAGING]),
            "post": operation("openRound", "Open a promotion round (HR at the unit)",
                              {201: json_answer("The round with its quotas.", ref("Round"))},
                              [403, 404, 409, 422], tags=["rounds"], body="NewRound"),
        },
        "/rounds/{round_id}": {"get": operation(
            "getRound", "One round, with who may apply and the applications",
            {200: json_answer("The round.", ref("RoundDetail"))}, [404], tags=["rounds"],
            params=[path_id("round_id", "round")])},
        "/rounds/{round_id}/close": {"post": operation(
            "closeRound", "Stop taking applications", {200: json_answer("The round.", ref("Round"))},
            [403, 404, 409, 422], tags=["rounds"], params=[path_id("round_id", "round")],
            body="RoundChange")},
        "/rounds/{round_id}/decide": {"post": operation(
            "decideRound", "Rank and decide the round's cases up to the quotas",
            {200: json_answer("The decided round.", ref("Round"))}, [403, 404, 409, 422], tags=["rounds"],
            params=[path_id("round_id", "round")], body="RoundChange")},
        "/rounds/{round_id}/results": {"get": operation(
            "getRoundResults", "A decided round's ranked results",
            {200: json_answer("Per level, in rank order.", ref("RoundResults"))}, [404, 409], tags=["rounds"],
            params=[path_id("round_id", "round")])},
        "/rounds/{round_id}/results.xlsx": {"get": operation(
            "getRoundResultsXlsx", "A decided round's results as a spreadsheet",
            {200: {"description": "The workbook.", "content": {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}}}}},
            [404, 409], tags=["rounds"], params=[path_id("round_id", "round")])},
        **export_paths(),
        **attachment_paths(),
        "/reviews": {
            "get": operation("listReviews", "The stored annual reviews the caller may see",
                             {200: json_answer("A page of reviews.", ref("ReviewPage"))}, [400, 404],
                             tags=["reviews"], params=[UNIT_FILTER, query("period", "a year"), *PAGING]),
            "post": operation("runReview", "Run (or preview) the annual review of a unit",
                              {201: json_answer("Stored, with the cases it opened.", ref("Review")),
                               200: json_answer("A dry run, or the stored outcomes of an earlier run.",
                                                ref("Review"))},
                              [403, 404, 409, 422], tags=["reviews"], body="ReviewRun"),
        },
        "/jobs": {"get": operation(
            "listJobs", "The caller's jobs (every job for an administrator at the root unit)",
            {200: json_answer("A page of jobs.", ref("JobPage"))}, [400], tags=["jobs"],
            params=[query("status", "queued, running, done or failed"), query("kind", "job kind"), *PAGING])},
        "/jobs/{job_id}": {"get": operation(
            "getJob", "One job and its progress", {200: json_answer("The job.", ref("Job"))}, [404],
            tags=["jobs"], params=[path_id("job_id", "job")])},
        "/jobs/{job_id}/retry": {"post": operation(
            "retryJob", "Queue a failed job again, to resume where it stopped", {202: job_accepted},
            [404, 409], tags=["jobs"], params=[path_id("job_id", "job")])},
        "/cases/bulk": {"post": operation(
            "decideCasesInBulk", "Qualify or approve several cases of one's inbox at once, each on its own",
            {200: json_answer("Each case's outcome, decided or refused.", ref("BulkResult")),
             202: job_accepted}, [403], tags=["cases"], body="BulkDecision",
            description="Up to 20 cases are decided within the request, each in its own transaction through "
                        "the engine, with the version the caller names for it (a case changed meanwhile is "
                        "refused with 409's code, not overwritten); each item is decided (its new state and "
                        "version) or refused with the status, code and reason a request for that case alone "
                        "would have had. More cases go to a job, as `POST /jobs/bulk-decisions` (202).")},
        "/jobs/bulk-decisions": {"post": operation(
            "startBulkDecision", "Decide many cases of one's inbox (qualify or approve) in a job",
            {202: job_accepted}, [403], tags=["jobs"], body="BulkDecision",
            description="Each case is decided on its own when the job runs; the job's result lists each "
                        "case, decided or refused with the status and reason a request for it alone would "
                        "have had.")},
        "/jobs/reviews": {"post": operation(
            "startReview", "Run the annual review of a unit in a job (HR at the unit or above)",
            {202: job_accepted}, [403, 404], tags=["jobs"], body="ReviewJob",
            description="For a whole bank, where `POST /reviews` would hold one request and one transaction "
                        "for every case it opens; the job's result names the stored review.")},
        "/jobs/imports": {"post": operation(
            "startImport", "Import people (and units) from CSV or XLSX in a job (administrator at the root)",
            {202: job_accepted}, [400, 403, 413], tags=["jobs"], body="Upload")},
        "/notifications": {"get": operation(
            "listNotifications", "The caller's notifications, unread first, then newest",
            {200: json_answer("A page of notifications.", ref("NotificationPage"))}, [400], tags=["notifications"],
            params=[query("unread", "only the unread ones", FLAG), *PAGING])},
        "/notifications/unread": {"get": operation(
            "countUnreadNotifications", "How many of the caller's notifications are unread",
            {200: json_answer("The count.", ref("UnreadCount"))}, [], tags=["notifications"])},
        "/notifications/{notification_id}/read": {"post": operation(
            "readNotification", "Mark one of the caller's notifications read",
            {200: json_answer("The notification.", ref("Notification"))}, [404], tags=["notifications"],
            params=[path_id("notification_id", "notification")])},
        "/notifications/read": {"post": operation(
            "readAllNotifications", "Mark all the caller's notifications read",
            {200: json_answer("How many were marked.", ref("MarkedRead"))}, [], tags=["notifications"])},
        "/me/notification-settings": {
            "get": operation("getNotificationSettings", "The caller's e-mail address and e-mail preference",
                             {200: json_answer("The settings.", ref("NotificationSettings"))}, [],
                             tags=["notifications"]),
            "post": operation("setNotificationSettings", "Turn e-mail notifications on or off; their language",
                              {200: json_answer("The settings.", ref("NotificationSettings"))}, [],
                              tags=["notifications"], body="NotificationSettings",
                              description="In-app notifications stay whatever the choice; turning e-mail "
                                          "off also drops the e-mails not yet sent."),
        },
        "/cases/{case_id}/urge": {"post": operation(
            "urgeCase", "催办: remind the case's current assignees (once a day per case and caller)",
            {200: json_answer("Whom it reminded, and the case.", ref("UrgeResult"))}, [403, 404, 409, 422],
            tags=["cases"], params=[path_id("case_id", "case")], body="Urge",
            description="For those waiting on the step: the applicant, whoever filed the case, HR over the "
                        "applicant's unit. A closed case is 409; a second urge the same day, or a step that "
                        "waits on nobody but the caller, 422. Recorded as an `urge` event; the state does "
                        "not change.")},
        "/people/{username}/email": {"post": operation(
            "setPersonEmail", "Set or clear a person's e-mail address (an administrator over their unit)",
            {200: json_answer("The person's address and preference.", ref("PersonEmail"))}, [404],
            tags=["notifications"], body="PersonEmail",
            params=[{"name": "username", "in": "path", "required": True, "description": "the person's username",
                     "schema": STRING}])},
        "/reviews/{review_id}": {"get": operation(
            "getReview", "One stored annual review", {200: json_answer("The review.", ref("Review"))}, [404],
            tags=["reviews"], params=[path_id("review_id", "review")])},
    }


@cache
def _document() -> dict[str, Any]:
    from . import api_customers, api_leads, api_portfolios, api_tiering
    bodies, components_schemas, all_paths = request_bodies(), schemas(), paths()
    for area in (api_customers, api_tiering, api_portfolios, api_leads):   # each describes its own routes
        bodies.update(area.openapi_bodies())
        components_schemas.update(area.openapi_schemas())
        all_paths.update(area.openapi_paths())
    components_schemas.update({f"{name}Body": schema for name, schema in bodies.items()})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Gradeflow API", "version": API_VERSION,
            "description": "The tiered management of account managers (客户经理分级管理): cases, rounds, the "
                           "annual review. Errors are `{\"error\": {\"code\", \"message\"}}`; lists are "
                           "pages `{items, total, page, per_page}`. See the README and CONTRACT.md.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerToken": []}, {"session": []}],
        "tags": [{"name": n} for n in ("auth", "reference", "cases", "hr", "rounds", "reviews", "jobs",
                                                "notifications", "delegation", "customers", "tiering",
                                                "portfolios", "leads")],
        "paths": all_paths,
        "components": {
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer",
                                "description": "POST /auth/token, then `Authorization: Bearer TOKEN`."},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "A logged-in browser session; changes also need the "
                                           "`X-CSRFToken` header."},
            },
            "schemas": components_schemas,
            "responses": {f"E{code}": json_answer(text, ref("Error")) for code, text in ERRORS.items()},
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change theirs)."""
    return copy.deepcopy(_document())


@bp.get("/openapi.json")
def openapi():
    return jsonify(_document())
