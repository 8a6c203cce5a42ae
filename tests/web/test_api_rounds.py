"""The rounds API (/api/v1/rounds): shapes, the order of checks, applying in a round, closing, deciding in
one transaction, results as JSON and XLSX."""
import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from workflow.models import db, Case, Person
from api_checks import err  # noqa: E402

ROUND = {"unit": "B1", "period": "2026", "title": "2026年度晋级", "opens_on": "2026-03-01",
         "closes_on": "2026-03-31", "levels": ["senior"]}


def open_round(api, who="hr_b1", **changes):
    resp = api(who).post("/rounds", {**ROUND, **changes})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def apply(api, who, rnd, target="senior"):
    resp = api(who).post("/cases", {"kind": "promotion", "target_grade": target, "round": rnd["id"]})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def to_hr(api, case, score, approver="appr_b1"):
    """Qualify, form the panel, and let the panel and the supervisor all give `score`."""
    cid = case["id"]
    assert api(approver).post(f"/cases/{cid}/qualify").status_code == 200
    assert api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]}) \
        .status_code == 200
    for member in ("panel1", "panel2", "panel3"):
        assert api(member).post(f"/cases/{cid}/score", {"score": score}).status_code == 200
    sup = next(a for a in api("hr_b1").get(f"/cases/{cid}").get_json()["assignees"] if a.startswith("sup"))
    case = api(sup).post(f"/cases/{cid}/supervisor_score", {"score": score}).get_json()
    assert case["state"] == "hr_approval", case
    return case


@pytest.fixture
def crowd(bank, make_person):
    """Two more eligible manager-3s and enough managers in B1 for two senior places (15% of 14)."""
    make_person("mgr_a", bank["units"]["T1"], grade="manager-3", performance=85, skill_test="pass")
    make_person("mgr_b", bank["units"]["T2"], grade="manager-3", performance=85, skill_test="pass")
    for i in range(9):
        make_person(f"filler{i}", bank["units"]["T2"], grade="manager-1", password=None)
    db.session.commit()
    return bank


# --- opening -------------------------------------------------------------------------------------------

def test_open_answers_the_round(bank, api):
    rnd = open_round(api, levels=["senior", "manager"])
    assert {"id", "unit", "period", "title", "state", "opens_on", "closes_on", "levels", "quotas",
            "min_composite"} <= set(rnd)
    assert (rnd["unit"], rnd["period"], rnd["title"], rnd["state"]) == ("B1", "2026", "2026年度晋级", "open")
    assert (rnd["opens_on"], rnd["closes_on"]) == ("2026-03-01", "2026-03-31")
    assert rnd["levels"] == ["manager", "senior"]
    assert rnd["min_composite"] == 60 and isinstance(rnd["id"], int) and rnd["version"] == 1
    senior = rnd["quotas"]["senior"]
    assert {"cap", "headcount", "holders", "freed_by_demotions", "quota", "explanation"} <= set(senior)
    assert (senior["cap"], senior["headcount"], senior["holders"], senior["quota"]) == (0.15, 3, 0, 0)
    assert "max(0, 0 − 0 + 0) = 0" in senior["explanation"]
    assert rnd["quotas"]["manager"]["quota"] is None and rnd["quotas"]["manager"]["cap"] is None


class TestOpenChecks:
    def test_401(self, bank, client):
        err(client.post("/api/v1/rounds", json=ROUND), 401)
        err(client.get("/api/v1/rounds"), 401)

    def test_404_unknown_or_out_of_scope_unit(self, bank, api):
        err(api("hr_b1").post("/rounds", {**ROUND, "unit": "NOPE"}), 404)
        err(api("hr_b1").post("/rounds", {**ROUND, "unit": "B3"}), 404)
        err(api("emp").post("/rounds", ROUND), 404)

    def test_403_for_those_who_see_the_unit_but_are_not_hr(self, bank, api):
        assert "only HR at B1" in err(api("appr_b1").post("/rounds", ROUND), 403)["message"]

    def test_403_before_the_body(self, bank, api):
        err(api("appr_b1").post("/rounds", {"unit": "B1", "levels": "x"}), 403)

    @pytest.mark.parametrize("changes", [
        {"unit": 5}, {"unit": None}, {"period": ""}, {"levels": "senior"}, {"levels": []},
        {"opens_on": "March"}, {"closes_on": None}, {"title": ["x"]},
    ])
    def test_400_malformed(self, bank, api, changes):
        err(api("hr_b1").post("/rounds", {**ROUND, **changes}), 400)

    def test_400_not_json(self, bank, api, client):
        err(client.post("/api/v1/rounds", data="{", content_type="application/json",
                        headers=api("hr_b1").headers), 400)

    @pytest.mark.parametrize("changes, words", [
        ({"levels": ["wizard"]}, "unknown level"),
        ({"levels": ["principal"]}, "region level"),
        ({"closes_on": "2026-02-01"}, "cannot close"),
        ({"opens_on": "2026-01-01", "closes_on": "2026-02-27"}, "in the past"),
    ])
    def test_422_refused(self, bank, api, changes, words):
        assert words in err(api("hr_b1").post("/rounds", {**ROUND, **changes}), 422)["message"]

    def test_422_one_round_per_unit_period_and_level(self, bank, api):
        first = open_round(api, levels=["manager", "senior"])
        e = err(api("hr_r1").post("/rounds", ROUND), 422)
        assert f"round {first['id']} already covers senior" in e["message"]
        assert open_round(api, period="2026-H2")["period"] == "2026-H2"


# --- seeing rounds ---------------------------------------------------------------------------------------

def test_list_and_get(bank, api):
    b1 = open_round(api)
    r1 = open_round(api, "hr_r1", unit="R1", levels=["principal"])
    ids = lambda who, q="": [r["id"] for r in api(who).get(f"/rounds{q}").get_json()["items"]]  # noqa: E731
    assert ids("hr_hq") == [r1["id"], b1["id"]]
    assert ids("hr_b1") == [b1["id"]] and ids("appr_b1") == [b1["id"]]
    assert ids("hr_hq", "?unit=B1") == [b1["id"]] and ids("hr_hq", "?state=closed") == []
    assert ids("emp") == []
    page = api("hr_hq").get("/rounds?per_page=1&page=2").get_json()
    assert (page["total"], page["page"], page["per_page"]) == (2, 2, 1)
    assert [r["id"] for r in page["items"]] == [b1["id"]]
    err(api("hr_hq").get("/rounds?page=x"), 400)
    err(api("hr_hq").get("/rounds?unit=NOPE"), 404)

    got = api("appr_b1").get(f"/rounds/{b1['id']}").get_json()
    assert got["eligible"] == {"senior": ["emp"]} and got["applications"] == [] and got["results"] is None
    err(api("emp").get(f"/rounds/{b1['id']}"), 404)
    err(api("hr_b1").get(f"/rounds/{r1['id']}"), 404)
    err(api("hr_hq").get("/rounds/999"), 404)


# --- applying ------------------------------------------------------------------------------------------

def test_apply_in_a_round(bank, api):
    rnd = open_round(api)
    case = apply(api, "emp", rnd)
    assert case["round"] == rnd["id"] and case["events"][0]["data"]["round"] == rnd["id"]
    apps = api("hr_b1").get(f"/rounds/{rnd['id']}").get_json()["applications"]
    assert apps == [{"case": case["id"], "employee": "emp", "from_grade": "manager-3",
                     "target_grade": "senior-1", "state": "qualification_review", "composite": None}]
    assert api("emp").get(f"/cases/{case['id']}").get_json()["round"] == rnd["id"]


@pytest.mark.parametrize("who, body, status, words", [
    ("far", {"target_grade": "manager-2"}, 422, "outside the scope"),
    ("emp2", {"target_grade": "manager-2"}, 422, "is for senior, not manager"),
    ("emp", {"target_grade": "senior", "exceptional": True}, 422, "exceptional"),
    ("emp", {"target_grade": "senior", "round": "one"}, 400, "round must be"),
    ("emp", {"target_grade": "senior", "round": 999}, 422, "no round 999"),
])
def test_apply_refused(bank, api, who, body, status, words):
    rnd = open_round(api)
    e = err(api(who).post("/cases", {"kind": "promotion", "round": rnd["id"], **body}), status)
    assert words in e["message"]


def test_apply_outside_the_window(bank, api):
    rnd = open_round(api, opens_on="2026-03-09")
    assert "from 2026-03-09" in err(api("emp").post("/cases", {"target_grade": "senior", "round": rnd["id"]}),
                                    422)["message"]


# --- closing -------------------------------------------------------------------------------------------

def test_close(bank, api):
    rnd = open_round(api)
    err(api("emp").post(f"/rounds/{rnd['id']}/close"), 404)
    err(api("appr_b1").post(f"/rounds/{rnd['id']}/close"), 403)
    err(api("hr_b1").post(f"/rounds/{rnd['id']}/close", {"version": "one"}), 400)
    err(api("hr_b1").post(f"/rounds/{rnd['id']}/close", {"version": 5}), 409)
    closed = api("hr_b1").post(f"/rounds/{rnd['id']}/close", {"version": 1}).get_json()
    assert (closed["state"], closed["version"]) == ("closed", 2) and closed["closed_at"]
    err(api("hr_b1").post(f"/rounds/{rnd['id']}/close"), 409)
    err(api("appr_b1").post(f"/rounds/{rnd['id']}/close"), 409)          # 409 before 403
    assert "closed" in err(api("emp").post("/cases", {"target_grade": "senior", "round": rnd["id"]}),
                           422)["message"]
    err(api("hr_b1").post(f"/rounds/{rnd['id']}/open"), 404)              # no such action


# --- deciding ------------------------------------------------------------------------------------------

def test_decide_ranks_and_answers_results(crowd, api):
    rnd = open_round(api)
    assert rnd["quotas"]["senior"]["quota"] == 2
    low = apply(api, "emp", rnd)
    mid = apply(api, "mgr_b", rnd)
    top = apply(api, "mgr_a", rnd)
    err(api("hr_b1").get(f"/rounds/{rnd['id']}/results"), 409)
    to_hr(api, top, 95)      # 0.7·95 + 0.3·85 = 92
    to_hr(api, mid, 80)      # 81.5
    e = err(api("hr_b1").post(f"/rounds/{rnd['id']}/decide"), 409)
    assert str(low["id"]) in e["message"] and e["details"]["cases"] == [low["id"]]
    to_hr(api, low, 70)      # 74.5
    err(api("emp").post(f"/rounds/{rnd['id']}/decide"), 404)
    err(api("appr_b1").post(f"/rounds/{rnd['id']}/decide"), 403)
    # HR cannot approve a round case alone, nor not_select it outside the decision.
    assert "decided with round" in err(api("hr_b1").post(f"/cases/{top['id']}/approve"), 403)["message"]
    err(api("hr_b1").post(f"/cases/{top['id']}/not_select"), 403)
    assert "approve" not in api("hr_b1").get(f"/cases/{top['id']}").get_json()["actions"]

    decided = api("hr_b1").post(f"/rounds/{rnd['id']}/decide", {"version": 1}).get_json()
    assert decided["state"] == "decided" and decided["decided_at"]
    assert decided["quotas"]["senior"]["quota"] == 2
    results = api("appr_b1").get(f"/rounds/{rnd['id']}/results").get_json()
    assert results == {"senior": [
        {"username": "mgr_a", "case": top["id"], "rank": 1, "composite": 92.0, "decision": "promoted"},
        {"username": "mgr_b", "case": mid["id"], "rank": 2, "composite": 81.5, "decision": "promoted"},
        {"username": "emp", "case": low["id"], "rank": 3, "composite": 74.5, "decision": "not_selected"}]}
    emp_case = api("emp").get(f"/cases/{low['id']}").get_json()
    assert emp_case["state"] == "not_selected" and emp_case["composite"] == 74.5   # shown once decided
    assert emp_case["events"][-1]["action"] == "not_select" and emp_case["events"][-1]["role"] == "hr"
    err(api("hr_b1").post(f"/rounds/{rnd['id']}/decide"), 409)
    verify = api("admin").get("/audit/verify").get_json()
    assert verify["ok"] is True

    resp = api("hr_b1").get(f"/rounds/{rnd['id']}/results.xlsx")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    assert f"round-{rnd['id']}-results.xlsx" in resp.headers["Content-Disposition"]
    rows = list(load_workbook(io.BytesIO(resp.data)).active.values)
    assert rows[0] == ("level", "rank", "username", "name", "case", "composite", "decision")
    assert rows[1:] == [("senior", 1, "mgr_a", "Mgr_A", top["id"], 92, "promoted"),
                        ("senior", 2, "mgr_b", "Mgr_B", mid["id"], 81.5, "promoted"),
                        ("senior", 3, "emp", "Emp", low["id"], 74.5, "not_selected")]


def test_xlsx_needs_a_decided_round_and_sight(crowd, api):
    rnd = open_round(api)
    err(api("hr_b1").get(f"/rounds/{rnd['id']}/results.xlsx"), 409)
    err(api("emp").get(f"/rounds/{rnd['id']}/results.xlsx"), 404)


def test_a_failed_decision_changes_nothing(crowd, api):
    """The decider declared a conflict on the second-ranked case: 403, and the first case's approval made
    before it in the same transaction is gone too."""
    rnd = open_round(api)
    first = to_hr(api, apply(api, "mgr_a", rnd), 95)
    second = to_hr(api, apply(api, "mgr_b", rnd), 80)
    conflict = api("hr_b1").post(f"/cases/{second['id']}/declare_conflict", {"comment": "亲属"})
    assert conflict.status_code == 200
    e = err(api("hr_b1").post(f"/rounds/{rnd['id']}/decide"), 403)
    assert f"case {second['id']}" in e["message"]
    db.session.expire_all()
    assert [c.state for c in db.session.query(Case).order_by(Case.id)] == ["hr_approval", "hr_approval"]
    assert db.session.query(Person).filter_by(username="mgr_a").one().grade == "manager-3"
    again = api("hr_b1").get(f"/rounds/{rnd['id']}").get_json()
    assert (again["state"], again["version"]) == ("open", 1)
    assert api("hr_r1").post(f"/rounds/{rnd['id']}/decide").get_json()["state"] == "decided"
    assert api("admin").get("/audit/verify").get_json()["ok"] is True
    assert first["id"] < second["id"]


def test_decide_an_empty_round(bank, api):
    rnd = open_round(api, closes_on=(dt.date(2026, 3, 2)).isoformat())
    assert api("hr_hq").post(f"/rounds/{rnd['id']}/decide").get_json()["state"] == "decided"
    assert api("hr_hq").get(f"/rounds/{rnd['id']}/results").get_json() == {"senior": []}
