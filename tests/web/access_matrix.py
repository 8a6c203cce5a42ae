"""The access matrix as data: for every route of the pages and of /api/v1 (each rule and method of
app.url_map), the requests that probe it and the status each role must get, per state of the case where
the route concerns a case. tests/web/test_access_matrix.py builds the world, sends every probe as every
role and fails on any difference, on a refused POST that changed anything, and on a rule of app.url_map
that has no entry here. docs/access.md says the same in words.

The world (built through the engine): the bank of tests/conftest.py plus `hr_b3` (HR at B3); one promotion
of `emp` (T1) to senior, walked through STATES; an open round for senior at B1 (`round_open`), a decided
round for manager at B1 (`round_decided`), a stored annual review of B1 for 2024 (`review`), a queued bulk
decision that hr_b1 asked for (`job`).

Placeholders in URLs and bodies' texts: {case}, {round_open}, {round_decided}, {review}, {job}, and {role} (the
role asking: wrong logins name nobody real, so that the login throttle locks out no one the test uses).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Who asks, and the username that plays the part (None: not logged in).
ROLES: dict[str, str | None] = {
    "anonymous": None,
    "self": "emp",              # the applicant
    "other": "emp2",            # another employee of the same team, no role
    "supervisor": "sup_t1",     # the applicant's direct supervisor (supervisor@T1)
    "approver_in": "appr_b1",   # approver@B1: qualifies the case
    "approver_out": "appr_t2",  # approver@T2: a sibling team, outside the applicant's unit
    "hr_in": "hr_b1",           # hr@B1: forms the panel, approves
    "hr_out": "hr_b3",          # hr@B3: another region's branch
    "panel_on": "panel1",       # panel@B1, named to the case's panel when it is formed
    "panel_off": "panel4",      # panel@B1, never on this case's panel
    "admin": "admin",           # admin@HQ (and hr@HQ)
}

# The case's stops, in the order the test walks it (see test_access_matrix.walk_case).
STATES = ("qualification_review", "returned", "panel_scoring", "hr_approval", "effective")

# Who sees the case at each stop (DOMAIN.md 8): the applicant; the holders of hr, approver, supervisor or
# admin at a unit above the applicant; the panel once it sits; nobody else. Out of sight is 404.
_SUBTREE = {"self", "supervisor", "approver_in", "hr_in", "admin"}
SEES = {
    "qualification_review": _SUBTREE,
    "returned": _SUBTREE,
    "panel_scoring": _SUBTREE | {"panel_on"},
    "hr_approval": _SUBTREE | {"panel_on"},
    "effective": _SUBTREE | {"panel_on"},
}

# Who may see a B1 round, the B1 review and B1's pipeline: hr, approver or admin at B1 or above.
UNIT_B1 = {"approver_in", "hr_in", "admin"}
# Who may manage (open, close, decide) a B1 round and run B1's review: hr at B1 or above.
HR_B1 = {"hr_in", "admin"}
HR = {"hr_in", "hr_out", "admin"}
PIPELINE = {"approver_in", "approver_out", "hr_in", "hr_out", "admin"}     # hr, approver or admin anywhere
GRADED = {"self", "other"}                                                 # hold a grade of the ladder


def codes(default: int, **by_role: int) -> dict[str, int]:
    """A status for every role: `default`, except where named."""
    unknown = set(by_role) - set(ROLES)
    assert not unknown, unknown
    return {role: by_role.get(role, default) for role in ROLES}


def among(members: set[str], yes: int, no: int, anonymous: int) -> dict[str, int]:
    """`yes` for the roles in `members`, `no` for the other logged-in roles."""
    return {role: anonymous if role == "anonymous" else yes if role in members else no for role in ROLES}


def on_case(state: str, seen: int, anonymous: int, **by_role: int) -> dict[str, int]:
    """A case route at `state`: 404 for those who do not see the case, `seen` (or a named status) for
    those who do."""
    out = among(SEES[state], seen, 404, anonymous)
    for role, status in by_role.items():
        assert role in SEES[state], (state, role)
        out[role] = status
    return out


@dataclass(frozen=True)
class Probe:
    """One request and the status each role must get. `expect` maps a role to its status, or (for a case
    route) a state of STATES to such a map. `body` is JSON for /api/v1, form fields for the pages.
    `changes`: a successful request may change data (logging in, a token); refused ones never do."""
    url: str
    expect: dict[str, Any]
    body: dict[str, Any] | None = None
    changes: bool = False
    fresh_login: bool = False     # the request ends the session: send it from a session of its own

    @property
    def per_state(self) -> bool:
        return set(self.expect) <= set(STATES)


@dataclass(frozen=True)
class Entry:
    probes: tuple[Probe, ...] = field(default_factory=tuple)


def entry(*probes: Probe) -> Entry:
    return Entry(tuple(probes))


def per_state(make) -> dict[str, dict[str, int]]:
    return {state: make(state) for state in STATES}


# --- the case's own routes -------------------------------------------------------------------------------
# POSTs send a body that the one allowed person gets past authority with and is then refused for (a stale
# or malformed version, a missing comment, a score out of range), so that no probe changes the case.

API_ACTIONS = {
    # (state, action): (body, {role: status for those who see the case and are not refused with 403})
    ("qualification_review", "qualify"): ({"version": "stale"}, {"approver_in": 400}),
    ("qualification_review", "return"): ({}, {"approver_in": 422}),
    ("returned", "resubmit"): ({"version": 0}, {"self": 409}),
    ("returned", "qualify"): ({}, {role: 409 for role in SEES["returned"]}),
    ("returned", "withdraw"): ({"version": "stale"}, {"self": 400}),
    ("panel_scoring", "score"): ({"score": 101}, {"panel_on": 422}),
    ("panel_scoring", "supervisor_score"): ({"score": "high"}, {"supervisor": 400}),
    ("panel_scoring", "assign_panel"): ({"version": 0, "members": ["panel4"]}, {"hr_in": 409}),
    ("hr_approval", "approve"): ({"version": 0}, {"hr_in": 409}),
    ("hr_approval", "reject"): ({}, {"hr_in": 422}),
    ("hr_approval", "score"): ({"score": 50}, {role: 409 for role in SEES["hr_approval"]}),
    # HR over the case enters a paper panel form for a member; a file is attached only by multipart upload.
    ("panel_scoring", "score_for"): ({"member": "panel1", "score": 101}, {"hr_in": 422, "admin": 422}),
    ("qualification_review", "attach"): ({}, {"self": 400, "approver_in": 400, "hr_in": 400, "admin": 400}),
    ("effective", "withdraw"): ({}, {role: 409 for role in SEES["effective"]}),
    # 转办: a current assignee only (then the body names nobody: 400); 抄送: an assignee or HR over the unit.
    ("qualification_review", "hand_over"): ({}, {"approver_in": 400}),
    ("qualification_review", "copy"): ({}, {"approver_in": 400, "hr_in": 400, "admin": 400}),
    ("effective", "hand_over"): ({}, {role: 409 for role in SEES["effective"]}),
}

# The pages' forms: fields are prefixed by the action; the version the page showed is a hidden field.
PAGE_ACTIONS = {
    ("qualification_review", "qualify"): ({"qualify-version": "0"}, {"approver_in": 409}),
    ("qualification_review", "return"): ({"return-version": "1"}, {"approver_in": 400}),
    ("returned", "resubmit"): ({"resubmit-version": "0"}, {"self": 409}),
    ("returned", "qualify"): ({"qualify-version": "0"}, {role: 409 for role in SEES["returned"]}),
    ("panel_scoring", "score"): ({"score-score": "101"}, {"panel_on": 400}),
    ("panel_scoring", "supervisor_score"): ({"supervisor_score-score": ""}, {"supervisor": 400}),
    ("panel_scoring", "score_for"): ({"score_for-member": "panel1", "score_for-score": "101"},
                                     {"hr_in": 400, "admin": 400}),
    ("hr_approval", "approve"): ({"approve-version": "0"}, {"hr_in": 409}),
    ("effective", "withdraw"): ({"withdraw-version": "0"}, {role: 409 for role in SEES["effective"]}),
}


# Who may attach a file at each stop: the applicant while the case is open, its current assignees and HR over
# it; the others who see the case are refused (403), and nobody attaches to a closed case (409).
ATTACHERS = {"qualification_review": {"self", "approver_in", "hr_in", "admin"},
             "returned": {"self", "hr_in", "admin"},
             "panel_scoring": {"self", "hr_in", "supervisor", "panel_on", "admin"},
             "hr_approval": {"self", "hr_in", "admin"}}


def _attach_codes(state: str, allowed: int, anonymous: int) -> dict[str, int]:
    if state not in ATTACHERS:
        return on_case(state, 409, anonymous)
    return on_case(state, 403, anonymous, **{role: allowed for role in ATTACHERS[state]})


def _action_probes(table: dict, prefix: str, anonymous: int) -> list[Probe]:
    probes = []
    for (state, action), (body, allowed) in table.items():
        probes.append(Probe(f"{prefix}/cases/{{case}}/{action}", {state: on_case(state, 403, anonymous, **allowed)},
                            body))
    # An action no machine has: 404 whoever asks (probed where the case is open to the most people).
    probes.append(Probe(f"{prefix}/cases/{{case}}/promote_myself",
                        {"panel_scoring": among(set(ROLES), 404, 404, anonymous)},
                        {"version": 1} if prefix else {"promote_myself-version": "1"}))
    return probes


# --- the matrix ------------------------------------------------------------------------------------------
# Keyed by (rule, method) exactly as app.url_map has them.

STATIC_CSS = "/bootstrap/static/css/bootstrap.min.css"      # Bootstrap-Flask's own files, served locally

MATRIX: dict[tuple[str, str], Entry] = {
    # Pages: anonymous visitors are sent to the login page (302); the API answers them 401.
    ("/", "GET"): entry(Probe("/", codes(200, anonymous=302))),
    ("/inbox", "GET"): entry(Probe("/inbox", codes(200, anonymous=302))),
    # Delegations (代理): everyone logged in has the page; a form without a colleague is 400; a delegation
    # nobody may see is 404. The cases copied to me (抄送): everyone's own list.
    ("/delegations", "GET"): entry(Probe("/delegations", codes(200, anonymous=302))),
    ("/delegations", "POST"): entry(Probe("/delegations", codes(400, anonymous=302), {"delegate": ""})),
    ("/delegations/<int:delegation_id>/revoke", "POST"): entry(
        Probe("/delegations/999999/revoke", codes(404, anonymous=302))),
    ("/copies", "GET"): entry(Probe("/copies", codes(200, anonymous=302))),
    # The inbox's bulk decision: anyone logged in may ask (each case is judged as its own request would be);
    # nothing ticked is 400.
    ("/inbox/decide", "POST"): entry(Probe("/inbox/decide", codes(400, anonymous=302), {"action": "qualify"})),
    ("/cases/", "GET"): entry(Probe("/cases/", codes(200, anonymous=302)),
                              Probe("/cases/?unit=NOWHERE", codes(404, anonymous=302))),
    ("/cases/<int:case_id>", "GET"): entry(
        Probe("/cases/{case}", per_state(lambda s: on_case(s, 200, 302))),
        Probe("/cases/999999", codes(404, anonymous=302))),
    ("/cases/<int:case_id>/<action>", "POST"): entry(*_action_probes(PAGE_ACTIONS, "", 302)),
    # Printable forms: whoever sees the case (the PDF probed at one stop: rendering it takes a while).
    ("/cases/<int:case_id>/forms/<form>", "GET"): entry(
        Probe("/cases/{case}/forms/application", per_state(lambda s: on_case(s, 200, 302))),
        Probe("/cases/{case}/forms/trainee_evaluation", per_state(lambda s: on_case(s, 404, 302)))),
    ("/cases/<int:case_id>/forms/<form>.pdf", "GET"): entry(
        Probe("/cases/{case}/forms/application.pdf", {"qualification_review": on_case("qualification_review",
                                                                                      200, 302)}),
        Probe("/cases/{case}/forms/trainee_evaluation.pdf", per_state(lambda s: on_case(s, 404, 302)))),
    # Attachments: the applicant while the case is open, its assignees and HR over it attach (no file: 400);
    # whoever sees the case downloads (the world has no attachment: 404).
    ("/cases/<int:case_id>/attachments", "POST"): entry(
        Probe("/cases/{case}/attachments", per_state(lambda s: _attach_codes(s, 400, 302)), {})),
    ("/cases/<int:case_id>/attachments/<int:attachment_id>", "GET"): entry(
        Probe("/cases/{case}/attachments/999999", per_state(lambda s: on_case(s, 404, 302)))),
    # The application form: for people with a grade, and HR for the graded people of its subtree.
    ("/cases/new", "GET"): entry(
        Probe("/cases/new", among(GRADED | HR, 200, 302, 302)),
        Probe("/cases/new?employee=emp", {**among(GRADED | HR, 403, 302, 302), "self": 200, "hr_in": 200,
                                          "admin": 200})),
    ("/cases/new", "POST"): entry(
        Probe("/cases/new", {**among(GRADED | HR, 403, 302, 302), "self": 400, "hr_in": 400, "admin": 400},
              {"employee": "emp", "target_grade": "director-9", "submit": "y"})),
    ("/hr/pipeline", "GET"): entry(
        Probe("/hr/pipeline", among(PIPELINE, 200, 403, 302)),
        Probe("/hr/pipeline?unit=B1", among(UNIT_B1, 200, 404, 302)),
        Probe("/hr/pipeline?unit=NOWHERE", codes(404, anonymous=302))),
    # The dashboard's charts: the page's own answers, as SVG images.
    ("/hr/pipeline/funnel.svg", "GET"): entry(
        Probe("/hr/pipeline/funnel.svg", among(PIPELINE, 200, 403, 302)),
        Probe("/hr/pipeline/funnel.svg?unit=B1", among(UNIT_B1, 200, 404, 302)),
        Probe("/hr/pipeline/funnel.svg?unit=NOWHERE", codes(404, anonymous=302))),
    ("/hr/pipeline/grades.svg", "GET"): entry(
        Probe("/hr/pipeline/grades.svg", among(PIPELINE, 200, 403, 302)),
        Probe("/hr/pipeline/grades.svg?unit=B1", among(UNIT_B1, 200, 404, 302)),
        Probe("/hr/pipeline/grades.svg?unit=NOWHERE", codes(404, anonymous=302))),
    ("/lifecycle/open", "GET"): entry(Probe("/lifecycle/open", among(HR | {"supervisor"}, 200, 403, 302))),
    ("/lifecycle/open", "POST"): entry(Probe("/lifecycle/open", among(HR | {"supervisor"}, 400, 403, 302),
                                             {"kind": "demotion", "employee": ""})),
    ("/lifecycle/probation", "GET"): entry(Probe("/lifecycle/probation", among(HR, 200, 403, 302))),
    ("/lifecycle/probation", "POST"): entry(Probe("/lifecycle/probation", among(HR, 400, 403, 302),
                                                  {"employee": "emp"})),
    ("/machines/", "GET"): entry(Probe("/machines/", codes(200, anonymous=302))),
    ("/machines/<kind>", "GET"): entry(Probe("/machines/promotion", codes(200, anonymous=302)),
                                       Probe("/machines/nothing", codes(404, anonymous=302))),
    ("/publicity", "GET"): entry(Probe("/publicity", codes(200, anonymous=302))),
    # Notifications: everyone's own; someone else's (or none) is 404; a language not offered is 400.
    ("/notifications", "GET"): entry(Probe("/notifications", codes(200, anonymous=302))),
    ("/notifications/<int:notification_id>/read", "POST"): entry(
        Probe("/notifications/999999/read", codes(404, anonymous=302))),
    ("/notifications/read-all", "POST"): entry(Probe("/notifications/read-all", codes(302, anonymous=302),
                                                     changes=True)),
    ("/notifications/settings", "GET"): entry(Probe("/notifications/settings", codes(200, anonymous=302))),
    ("/notifications/settings", "POST"): entry(Probe("/notifications/settings", codes(400, anonymous=302),
                                                     {"language": "fr"})),
    # 催办: those waiting on the open case (the applicant, HR over it) get past authority to the message
    # that is too long (said on the case page: 302); the assignees and other viewers are refused; a closed
    # case has nobody to urge (said on the page).
    ("/cases/<int:case_id>/urge", "POST"): entry(
        Probe("/cases/{case}/urge", per_state(lambda s: on_case(s, 302, 302) if s == "effective" else
                                              on_case(s, 403, 302, self=302, hr_in=302, admin=302)),
              {"comment": "催" * 1001})),
    ("/admin/people/<username>/email", "POST"): entry(
        Probe("/admin/people/emp/email", among({"admin"}, 302, 404, 302), {"email": "not an address"})),
    # The annual review: HR runs it; HR, approvers and admins of the unit or above see it.
    ("/reviews/", "GET"): entry(Probe("/reviews/", among(PIPELINE, 200, 403, 302))),
    ("/reviews/<int:review_id>", "GET"): entry(Probe("/reviews/{review}", among(UNIT_B1, 200, 404, 302)),
                                               Probe("/reviews/999999", codes(404, anonymous=302))),
    ("/reviews/preview", "GET"): entry(
        Probe("/reviews/preview", among(HR, 400, 403, 302)),
        # HR in scope is sent to the stored review; as in the API, a unit out of sight is 404, and one in
        # sight that the caller may not review is 403.
        Probe("/reviews/preview?unit=B1&period=2024", {**among(UNIT_B1, 403, 404, 302), "hr_in": 302,
                                                        "admin": 302})),
    ("/reviews/run", "POST"): entry(
        Probe("/reviews/run", {**among(UNIT_B1, 302, 404, 302), "approver_in": 403},
              {"unit": "B1", "period": "2024"})),
    # Rounds: HR opens, closes and decides; HR, approvers and admins of the unit or above see them.
    ("/rounds/", "GET"): entry(Probe("/rounds/", among(PIPELINE, 200, 403, 302))),
    ("/rounds/<int:round_id>", "GET"): entry(Probe("/rounds/{round_open}", among(UNIT_B1, 200, 404, 302)),
                                             Probe("/rounds/999999", codes(404, anonymous=302))),
    ("/rounds/<int:round_id>/<action>", "POST"): entry(
        Probe("/rounds/{round_open}/close", {**among(UNIT_B1, 409, 404, 302), "approver_in": 403},
              {"version": "0"}),
        Probe("/rounds/{round_decided}/decide", among(UNIT_B1, 409, 404, 302), {"version": "1"}),
        Probe("/rounds/{round_open}/reopen", codes(404, anonymous=302), {"version": "1"})),
    ("/rounds/<int:round_id>/results.xlsx", "GET"): entry(
        Probe("/rounds/{round_decided}/results.xlsx", among(UNIT_B1, 200, 404, 302)),
        Probe("/rounds/{round_open}/results.xlsx", among(UNIT_B1, 409, 404, 302))),
    ("/rounds/new", "GET"): entry(Probe("/rounds/new", among(HR, 200, 403, 302))),
    ("/rounds/new", "POST"): entry(Probe("/rounds/new", among(HR, 400, 403, 302), {"unit": "B1"})),
    # Administration: admins only; a person outside their subtree does not exist for them.
    ("/admin/", "GET"): entry(Probe("/admin/", among({"admin"}, 200, 403, 302))),
    ("/admin/people", "GET"): entry(Probe("/admin/people", among({"admin"}, 200, 403, 302))),
    ("/admin/people/<username>", "GET"): entry(
        Probe("/admin/people/emp", among({"admin"}, 200, 403, 302)),
        Probe("/admin/people/nobody", among({"admin"}, 404, 403, 302))),
    ("/admin/people/<username>/password", "POST"): entry(
        Probe("/admin/people/emp/password", among({"admin"}, 400, 403, 302),
              {"password": "short", "confirm": "short"})),
    ("/admin/people/<username>/roles", "POST"): entry(
        Probe("/admin/people/emp/roles", among({"admin"}, 400, 403, 302), {"add_role": "hr"})),
    ("/admin/policy", "GET"): entry(Probe("/admin/policy", among({"admin"}, 200, 403, 302))),
    # Logging in and out, the language: open to all.
    ("/login", "GET"): entry(Probe("/login", codes(302, anonymous=200))),
    # A wrong password shows the form again with the error (200); the API's /auth/token answers 401.
    ("/login", "POST"): entry(Probe("/login", codes(302, anonymous=200),
                                    {"username": "nobody-{role}", "password": "not-the-password"})),
    ("/logout", "POST"): entry(Probe("/logout", codes(302), changes=True, fresh_login=True)),
    ("/lang/<code>", "GET"): entry(Probe("/lang/en", codes(302))),
    ("/lang/<code>", "POST"): entry(Probe("/lang/en", codes(302), changes=True)),
    ("/static/<path:filename>", "GET"): entry(Probe("/static/none.css", codes(404))),
    ("/bootstrap/static/<path:filename>", "GET"): entry(Probe(STATIC_CSS, codes(200))),

    # Batch jobs: who started a job sees it, and so do administrators at the root unit; they alone import.
    ("/jobs/", "GET"): entry(Probe("/jobs/", codes(200, anonymous=302))),
    ("/jobs/<int:job_id>", "GET"): entry(Probe("/jobs/{job}", among({"hr_in", "admin"}, 200, 404, 302)),
                                         Probe("/jobs/999999", codes(404, anonymous=302))),
    ("/jobs/import", "GET"): entry(Probe("/jobs/import", among({"admin"}, 200, 403, 302))),
    ("/jobs/import", "POST"): entry(Probe("/jobs/import", among({"admin"}, 400, 403, 302), {})),
    ("/jobs/bulk", "GET"): entry(Probe("/jobs/bulk", codes(200, anonymous=302))),
    ("/jobs/bulk", "POST"): entry(Probe("/jobs/bulk", codes(400, anonymous=302), {"action": "qualify"})),

    # The JSON API: 401 before anything else, then 404 (out of sight), 409 (state), 403 (who), 400/422.
    ("/api/v1/auth/token", "POST"): entry(
        Probe("/api/v1/auth/token", codes(401), {"username": "nobody-{role}", "password": "not-the-password"})),
    ("/api/v1/me", "GET"): entry(Probe("/api/v1/me", codes(200, anonymous=401))),
    ("/api/v1/openapi.json", "GET"): entry(Probe("/api/v1/openapi.json", codes(200))),   # public: no data
    ("/api/v1/policy", "GET"): entry(Probe("/api/v1/policy", codes(200, anonymous=401))),
    ("/api/v1/cases", "GET"): entry(Probe("/api/v1/cases", codes(200, anonymous=401)),
                                    Probe("/api/v1/cases?unit=NOWHERE", codes(404, anonymous=401))),
    ("/api/v1/cases", "POST"): entry(
        # Filing for emp (who has a case open): HR over emp's unit gets the rule's 422; the contract's one
        # 403 about a person not in sight is for filing outside one's subtree.
        Probe("/api/v1/cases", {**codes(403, anonymous=401), "self": 422, "hr_in": 422, "admin": 422},
              {"kind": "promotion", "employee": "emp", "target_grade": "senior"})),
    ("/api/v1/cases/<int:case_id>", "GET"): entry(
        Probe("/api/v1/cases/{case}", per_state(lambda s: on_case(s, 200, 401))),
        Probe("/api/v1/cases/999999", codes(404, anonymous=401))),
    ("/api/v1/cases/<int:case_id>/<action>", "POST"): entry(*_action_probes(API_ACTIONS, "/api/v1", 401)),
    # Attachments by multipart upload (a JSON body: 415, once authority has passed) and checked download.
    ("/api/v1/cases/<int:case_id>/attachments", "POST"): entry(
        Probe("/api/v1/cases/{case}/attachments", per_state(lambda s: _attach_codes(s, 415, 401)), {})),
    ("/api/v1/cases/<int:case_id>/attachments/<int:attachment_id>", "GET"): entry(
        Probe("/api/v1/cases/{case}/attachments/999999", per_state(lambda s: on_case(s, 404, 401)))),
    ("/api/v1/cases/<int:case_id>/forms/<form>.pdf", "GET"): entry(
        Probe("/api/v1/cases/{case}/forms/trainee_evaluation.pdf", per_state(lambda s: on_case(s, 404, 401)))),
    ("/api/v1/inbox", "GET"): entry(Probe("/api/v1/inbox", codes(200, anonymous=401))),
    ("/api/v1/delegations", "GET"): entry(Probe("/api/v1/delegations", codes(200, anonymous=401))),
    ("/api/v1/delegations", "POST"): entry(Probe("/api/v1/delegations", codes(400, anonymous=401), {})),
    ("/api/v1/delegations/<int:delegation_id>/revoke", "POST"): entry(
        Probe("/api/v1/delegations/999999/revoke", codes(404, anonymous=401))),
    ("/api/v1/copies", "GET"): entry(Probe("/api/v1/copies", codes(200, anonymous=401))),
    ("/api/v1/pipeline", "GET"): entry(
        Probe("/api/v1/pipeline", among(PIPELINE, 200, 403, 401)),
        Probe("/api/v1/pipeline?unit=B1", among(UNIT_B1, 200, 404, 401)),
        Probe("/api/v1/pipeline?unit=NOWHERE", codes(404, anonymous=401))),
    ("/api/v1/audit/verify", "GET"): entry(Probe("/api/v1/audit/verify", among({"admin"}, 200, 403, 401))),
    ("/api/v1/publicity", "GET"): entry(Probe("/api/v1/publicity", codes(200, anonymous=401))),
    ("/api/v1/notifications", "GET"): entry(Probe("/api/v1/notifications", codes(200, anonymous=401)),
                                            Probe("/api/v1/notifications?unread=maybe", codes(400, anonymous=401))),
    ("/api/v1/notifications/unread", "GET"): entry(Probe("/api/v1/notifications/unread", codes(200, anonymous=401))),
    ("/api/v1/notifications/<int:notification_id>/read", "POST"): entry(
        Probe("/api/v1/notifications/999999/read", codes(404, anonymous=401))),
    ("/api/v1/notifications/read", "POST"): entry(
        Probe("/api/v1/notifications/read", codes(200, anonymous=401), changes=True)),
    ("/api/v1/me/notification-settings", "GET"): entry(
        Probe("/api/v1/me/notification-settings", codes(200, anonymous=401))),
    ("/api/v1/me/notification-settings", "POST"): entry(
        Probe("/api/v1/me/notification-settings", codes(400, anonymous=401), {"language": "fr"})),
    ("/api/v1/cases/<int:case_id>/urge", "POST"): entry(
        Probe("/api/v1/cases/{case}/urge", per_state(lambda s: on_case(s, 409, 401) if s == "effective" else
                                                     on_case(s, 403, 401, self=400, hr_in=400, admin=400)),
              {"comment": 5})),
    ("/api/v1/people/<username>/email", "POST"): entry(
        Probe("/api/v1/people/emp/email", among({"admin"}, 400, 404, 401), {"email": "not an address"})),
    ("/api/v1/reviews", "GET"): entry(Probe("/api/v1/reviews", codes(200, anonymous=401))),
    ("/api/v1/reviews", "POST"): entry(
        # B1 was reviewed for 2024: HR in scope gets the stored run (200, nothing new).
        Probe("/api/v1/reviews", {**among(UNIT_B1, 200, 404, 401), "approver_in": 403},
              {"unit": "B1", "period": "2024"})),
    ("/api/v1/reviews/<int:review_id>", "GET"): entry(
        Probe("/api/v1/reviews/{review}", among(UNIT_B1, 200, 404, 401))),
    ("/api/v1/rounds", "GET"): entry(Probe("/api/v1/rounds", codes(200, anonymous=401))),
    ("/api/v1/rounds", "POST"): entry(
        Probe("/api/v1/rounds", {**among(UNIT_B1, 400, 404, 401), "approver_in": 403},
              {"unit": "B1", "period": ""})),
    ("/api/v1/rounds/<int:round_id>", "GET"): entry(
        Probe("/api/v1/rounds/{round_open}", among(UNIT_B1, 200, 404, 401)),
        Probe("/api/v1/rounds/999999", codes(404, anonymous=401))),
    ("/api/v1/rounds/<int:round_id>/close", "POST"): entry(
        Probe("/api/v1/rounds/{round_open}/close", {**among(UNIT_B1, 409, 404, 401), "approver_in": 403},
              {"version": 0}),
        Probe("/api/v1/rounds/{round_decided}/close", among(UNIT_B1, 409, 404, 401))),
    ("/api/v1/rounds/<int:round_id>/decide", "POST"): entry(
        Probe("/api/v1/rounds/{round_open}/decide", {**among(UNIT_B1, 409, 404, 401), "approver_in": 403},
              {"version": 0}),
        Probe("/api/v1/rounds/{round_decided}/decide", among(UNIT_B1, 409, 404, 401))),
    ("/api/v1/rounds/<int:round_id>/results", "GET"): entry(
        Probe("/api/v1/rounds/{round_decided}/results", among(UNIT_B1, 200, 404, 401)),
        Probe("/api/v1/rounds/{round_open}/results", among(UNIT_B1, 409, 404, 401))),
    ("/api/v1/rounds/<int:round_id>/results.xlsx", "GET"): entry(
        Probe("/api/v1/rounds/{round_decided}/results.xlsx", among(UNIT_B1, 200, 404, 401)),
        Probe("/api/v1/rounds/{round_open}/results.xlsx", among(UNIT_B1, 409, 404, 401))),
    ("/api/v1/jobs", "GET"): entry(Probe("/api/v1/jobs", codes(200, anonymous=401))),
    ("/api/v1/jobs/<int:job_id>", "GET"): entry(
        Probe("/api/v1/jobs/{job}", among({"hr_in", "admin"}, 200, 404, 401))),
    # Anyone may ask for bulk decisions (each case is then judged as one request would be); a malformed
    # request is 400. Imports are for administrators at the root unit: 403 for others before the files.
    ("/api/v1/jobs/bulk-decisions", "POST"): entry(
        Probe("/api/v1/jobs/bulk-decisions", codes(400, anonymous=401), {"action": "qualify", "cases": []})),
    ("/api/v1/cases/bulk", "POST"): entry(
        Probe("/api/v1/cases/bulk", codes(400, anonymous=401), {"action": "qualify", "cases": []})),
    ("/api/v1/jobs/imports", "POST"): entry(Probe("/api/v1/jobs/imports", among({"admin"}, 400, 403, 401))),
    # The annual review as a job: HR at the unit or above (as POST /reviews); a bad year is then 400.
    ("/api/v1/jobs/reviews", "POST"): entry(
        Probe("/api/v1/jobs/reviews", {**among(UNIT_B1, 400, 404, 401), "approver_in": 403},
              {"unit": "B1", "period": "x"})),
    # Only a failed job is queued again: the queued one the matrix holds answers 409 to those who see it.
    ("/api/v1/jobs/<int:job_id>/retry", "POST"): entry(
        Probe("/api/v1/jobs/{job}/retry", among({"hr_in", "admin"}, 409, 404, 401), {})),
    ("/jobs/<int:job_id>/retry", "POST"): entry(
        Probe("/jobs/{job}/retry", among({"hr_in", "admin"}, 302, 404, 302), {})),
    # Excel (web/exports.py): the case list as the viewer sees it, for everyone; the roster for HR, approvers
    # and admins (their subtrees; a unit outside them is 404); grade changes for payroll and the import
    # templates for HR and admins.
    ("/exports/", "GET"): entry(Probe("/exports/", among(PIPELINE, 200, 403, 302))),
    ("/exports/cases.xlsx", "GET"): entry(Probe("/exports/cases.xlsx?kind=promotion", codes(200, anonymous=302)),
                                          Probe("/exports/cases.xlsx?unit=NOWHERE", codes(404, anonymous=302))),
    ("/exports/roster.xlsx", "GET"): entry(
        Probe("/exports/roster.xlsx", among(PIPELINE, 200, 403, 302)),
        Probe("/exports/roster.xlsx?unit=B3", {**among(PIPELINE, 404, 403, 302), "hr_out": 200, "admin": 200})),
    ("/exports/grade-changes.xlsx", "GET"): entry(
        Probe("/exports/grade-changes.xlsx?from=2026-01-01&to=2026-03-31", among(HR, 200, 403, 302)),
        Probe("/exports/grade-changes.xlsx?from=2026-03-31&to=2026-01-01", among(HR, 400, 403, 302))),
    ("/exports/templates/<kind>.xlsx", "GET"): entry(
        Probe("/exports/templates/people.xlsx", among(HR, 200, 403, 302)),
        Probe("/exports/templates/nothing.xlsx", among(HR, 404, 403, 302))),
    ("/api/v1/cases.xlsx", "GET"): entry(Probe("/api/v1/cases.xlsx", codes(200, anonymous=401)),
                                         Probe("/api/v1/cases.xlsx?state=nothing", codes(400, anonymous=401))),
    ("/api/v1/roster.xlsx", "GET"): entry(
        Probe("/api/v1/roster.xlsx", among(PIPELINE, 200, 403, 401)),
        Probe("/api/v1/roster.xlsx?unit=B3", {**among(PIPELINE, 404, 403, 401), "hr_out": 200, "admin": 200})),
    ("/api/v1/grade-changes", "GET"): entry(
        Probe("/api/v1/grade-changes?from=2026-01-01&to=2026-03-31", among(HR, 200, 403, 401)),
        Probe("/api/v1/grade-changes?from=x&to=2026-03-31", among(HR, 400, 403, 401))),
    ("/api/v1/grade-changes.xlsx", "GET"): entry(
        Probe("/api/v1/grade-changes.xlsx?from=2026-01-01&to=2026-03-31", among(HR, 200, 403, 401)),
        Probe("/api/v1/grade-changes.xlsx?from=2026-01-01&to=2026-03-31&unit=B1",
              {**among(HR, 200, 403, 401), "hr_out": 404})),
    ("/api/v1/import-templates/<kind>.xlsx", "GET"): entry(
        Probe("/api/v1/import-templates/scores.xlsx", among(HR, 200, 403, 401)),
        Probe("/api/v1/import-templates/nothing.xlsx", among(HR, 404, 403, 401))),
    # Scores are imported by administrators at the root unit, as people are; no file is 400.
    ("/jobs/import/scores", "GET"): entry(Probe("/jobs/import/scores", among({"admin"}, 200, 403, 302))),
    ("/jobs/import/scores", "POST"): entry(Probe("/jobs/import/scores", among({"admin"}, 400, 403, 302), {})),
    ("/api/v1/imports/scores", "POST"): entry(Probe("/api/v1/imports/scores", among({"admin"}, 400, 403, 401))),
}

# The customer areas keep their entries beside their own objects (tests/web/access_<area>.py).
from tests.web import access_customers, access_leads, access_portfolios, access_tiering  # noqa: E402

AREAS = (access_customers, access_tiering, access_portfolios, access_leads)
for _area in AREAS:
    assert not set(_area.MATRIX) & set(MATRIX), _area.__name__
    MATRIX.update(_area.MATRIX)
