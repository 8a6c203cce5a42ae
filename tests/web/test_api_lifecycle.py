"""Probation, demotion and dismissal through the JSON API: opening them, every action, time, the order of
checks and the error shape, and what a dismissal does to the person's logins and other cases."""
import datetime as dt

import pytest

from tests.conftest import PASSWORD
from workflow import clock
from workflow.models import db, Person
from api_checks import err, ok, tick  # noqa: E402


def person(username):
    db.session.expire_all()
    return db.session.scalar(db.select(Person).filter_by(username=username))


@pytest.fixture
def newbie(bank, make_person):
    make_person("newbie", bank["units"]["T1"], status="probation", hired_on=dt.date(2025, 3, 15),
                skill_test=72)
    db.session.commit()
    return "newbie"


def open_probation(api, who="hr_b1", employee="newbie"):
    return ok(api(who).post("/cases", {"kind": "probation", "employee": employee}), 201)


def misconduct(api, kind="demotion", who="sup_t1", employee="emp", severity="major", comment="违规办理业务"):
    return ok(api(who).post("/cases", {"kind": kind, "employee": employee, "reason": "misconduct",
                                       "severity": severity, "comment": comment}), 201)


def to_hr_review(api):
    case = open_probation(api)
    cid = case["id"]
    case = ok(api("hr_b1").post(f"/cases/{cid}/open_evaluation", {"version": case["version"]}))
    form = {"attitude": "excellent", "skills": "good", "service": "good", "teamwork": 90}
    case = ok(api("sup_t1").post(f"/cases/{cid}/evaluate", {"score": 86, "comment": "工作认真", "form": form,
                                                           "version": case["version"]}))
    assert case["state"] == "hr_review" and case["assignees"] == ["hr_b1"]
    return case


# --- probation -----------------------------------------------------------------------------------------

class TestProbation:
    def test_opened_by_hr_with_the_policy_length(self, newbie, api):
        case = open_probation(api)
        assert {k: case[k] for k in ("kind", "employee", "state", "reason", "severity", "due_on", "outcome",
                                     "related_case", "step_unit", "assignees", "deadline")} == {
            "kind": "probation", "employee": "newbie", "state": "in_probation", "reason": "hire",
            "severity": None, "due_on": "2026-03-15", "outcome": None, "related_case": None,
            "step_unit": "B1", "assignees": ["hr_b1"], "deadline": "2026-03-15"}
        ev = case["events"][0]
        assert (ev["action"], ev["actor"], ev["role"], ev["from_state"]) == ("create", "hr_b1", "hr", None)
        assert case["actions"] == ["open_evaluation", "declare_conflict", "attach", "hand_over", "copy"]
        err(api("hr_b1").post("/cases", {"kind": "probation", "employee": "newbie"}), 422)   # one open

    def test_only_hr_over_the_unit_opens_one(self, newbie, api):
        assert "HR" in err(api("appr_b1").post("/cases", {"kind": "probation", "employee": "newbie"}),
                           403)["message"]
        err(api("sup_t1").post("/cases", {"kind": "probation", "employee": "newbie"}), 403)
        err(api("newbie").post("/cases", {"kind": "probation"}), 403)
        err(api("hr_b1").post("/cases", {"kind": "probation", "employee": "nobody"}), 422)

    def test_the_evaluation_opens_by_tick_ahead_of_the_end(self, newbie, api, app):
        cid = open_probation(api)["id"]
        assert "0 done" in tick(app, "2026-03-07")
        assert f"case {cid}: open_evaluation (in_probation → evaluation)" in tick(app, "2026-03-08")
        case = ok(api("sup_t1").get(f"/cases/{cid}"))
        assert case["state"] == "evaluation" and case["assignees"] == ["sup_t1"]
        assert case["events"][-1]["actor"] == "system" and case["actions"] == ["evaluate", "declare_conflict", "attach", "hand_over", "copy"]

    def test_evaluation_by_the_supervisor_with_the_form(self, newbie, api):
        case = open_probation(api)
        cid = case["id"]
        err(api("sup_t1").post(f"/cases/{cid}/open_evaluation", {}), 403)       # HR opens it early
        ok(api("hr_b1").post(f"/cases/{cid}/open_evaluation", {}))
        err(api("hr_b1").post(f"/cases/{cid}/evaluate", {"score": 80}), 403)
        err(api("sup_t1").post(f"/cases/{cid}/evaluate", {"score": 120}), 422)
        err(api("sup_t1").post(f"/cases/{cid}/evaluate", {"score": "good"}), 400)
        err(api("sup_t1").post(f"/cases/{cid}/evaluate", {"score": 80, "form": ["优秀"]}), 400)
        case = ok(api("sup_t1").post(f"/cases/{cid}/evaluate", {
            "score": 86, "comment": "工作认真", "form": {"attitude": "excellent", "skills": 85}}))
        ev = case["events"][-1]
        assert (ev["action"], ev["actor"], ev["role"], ev["comment"]) == ("evaluate", "sup_t1", "supervisor",
                                                                          "工作认真")
        assert ev["data"]["score"] == 86 and ev["data"]["form"] == {"attitude": "excellent", "skills": 85}
        assert ev["data"]["skill_appraisal"]["passed"] is True
        err(api("sup_t1").post(f"/cases/{cid}/evaluate", {"score": 90}), 409)   # decided already

    def test_confirmed_with_the_first_regular_grade(self, newbie, api):
        case = to_hr_review(api)
        err(api("sup_t1").post(f"/cases/{case['id']}/confirm", {}), 403)
        case = ok(api("hr_b1").post(f"/cases/{case['id']}/confirm", {"version": case["version"]}))
        assert (case["state"], case["outcome"], case["target_grade"], case["assignees"]) == (
            "confirmed", "confirmed", "assistant-1", [])
        me = ok(api("newbie").get("/me"))
        assert (me["grade"], me["status"]) == ("assistant-1", "active")

    def test_extended_once_within_the_policy(self, newbie, api):
        case = to_hr_review(api)
        cid = case["id"]
        assert "1 to 6" in err(api("hr_b1").post(f"/cases/{cid}/extend", {"months": 9}), 422)["message"]
        err(api("hr_b1").post(f"/cases/{cid}/extend", {"months": "three"}), 400)
        case = ok(api("hr_b1").post(f"/cases/{cid}/extend", {"months": 3}))
        assert (case["state"], case["due_on"], case["deadline"]) == ("in_probation", "2026-06-15",
                                                                     "2026-06-15")
        ok(api("hr_b1").post(f"/cases/{cid}/open_evaluation", {}))
        ok(api("sup_t1").post(f"/cases/{cid}/evaluate", {"score": 70}))
        assert "once" in err(api("hr_b1").post(f"/cases/{cid}/extend", {"months": 1}), 422)["message"]

    def test_failed_into_dismissal(self, newbie, api):
        case = to_hr_review(api)
        cid = case["id"]
        err(api("hr_b1").post(f"/cases/{cid}/fail", {"outcome": "dismissal"}), 422)       # no comment
        err(api("hr_b1").post(f"/cases/{cid}/fail", {"outcome": "quit", "comment": "x"}), 422)
        case = ok(api("hr_b1").post(f"/cases/{cid}/fail", {"outcome": "dismissal", "comment": "未达到岗位要求"}))
        assert (case["state"], case["outcome"]) == ("failed", "dismissal")
        follow_id = case["events"][-1]["data"]["dismissal_case"]
        follow = ok(api("hr_b1").get(f"/cases/{follow_id}"))
        shown = ("kind", "reason", "state", "related_case", "filed_by", "assignees")
        assert {k: follow[k] for k in shown} == {
            "kind": "dismissal", "reason": "probation_failed", "state": "review", "related_case": cid,
            "filed_by": "hr_b1", "assignees": ["appr_b1"]}
        listed = ok(api("hr_b1").get("/cases?kind=dismissal"))
        assert [c["id"] for c in listed["items"]] == [follow_id]

    def test_failed_into_a_transfer(self, newbie, api):
        case = to_hr_review(api)
        case = ok(api("hr_b1").post(f"/cases/{case['id']}/fail", {"outcome": "transfer", "comment": "转岗"}))
        assert case["outcome"] == "transfer"
        assert ok(api("hr_b1").get("/cases?kind=dismissal"))["total"] == 0

    def test_a_probation_is_only_for_someone_in_probation(self, bank, api):
        resp = api("hr_b1").post("/cases", {"kind": "probation", "employee": "emp"})   # manager-3, active
        assert resp.status_code == 422, resp.get_json()

    def test_staff_who_are_not_account_managers_get_no_probation(self, bank, api):
        resp = api("hr_r1").post("/cases", {"kind": "probation", "employee": "appr_b1"})
        assert resp.status_code == 422, resp.get_json()
        assert person("appr_b1").status == "active"

    def test_hr_cannot_open_their_own_probation(self, bank, api):
        resp = api("hr_b1").post("/cases", {"kind": "probation"})
        assert resp.status_code in (403, 422), resp.get_json()
        assert person("hr_b1").status == "active"


# --- demotion ------------------------------------------------------------------------------------------

class TestDemotion:
    def test_misconduct_opened_by_the_supervisor(self, bank, api):
        case = misconduct(api)
        assert {k: case[k] for k in ("kind", "reason", "severity", "state", "step_unit", "assignees",
                                     "statement", "from_grade", "due_on", "outcome", "related_case")} == {
            "kind": "demotion", "reason": "misconduct", "severity": "major", "state": "review",
            "step_unit": "B1", "assignees": ["appr_b1"], "statement": "违规办理业务", "from_grade": "manager-3",
            "due_on": None, "outcome": None, "related_case": None}
        assert case["events"][0]["role"] == "supervisor" and case["deadline"] == "2026-03-09"
        assert ok(api("emp").get(f"/cases/{case['id']}"))["actions"] == []

    def test_who_may_open_and_on_what_grounds(self, bank, api):
        err(api("emp2").post("/cases", {"kind": "demotion", "employee": "emp", "reason": "misconduct",
                                        "severity": "major", "comment": "x"}), 403)
        assert "misconduct" in err(api("sup_t1").post("/cases", {
            "kind": "demotion", "employee": "emp", "reason": "absence"}), 403)["message"]
        err(api("sup_t1").post("/cases", {"kind": "demotion", "employee": "far", "reason": "misconduct",
                                          "severity": "major", "comment": "x"}), 403)
        e = err(api("hr_b1").post("/cases", {"kind": "demotion", "employee": "emp", "reason": "lazy"}), 400)
        assert e["details"]["field"] == "reason"
        e = err(api("sup_t1").post("/cases", {"kind": "demotion", "employee": "emp", "reason": "misconduct",
                                              "severity": "awful", "comment": "x"}), 400)
        assert e["details"]["field"] == "severity"
        e = err(api("sup_t1").post("/cases", {"kind": "dismissal", "employee": "emp", "reason": "misconduct",
                                              "severity": "minor", "comment": "x"}), 422)
        assert e["details"]["field"] == "severity" and "not dismissal" in e["message"]
        e = err(api("sup_t1").post("/cases", {"kind": "demotion", "employee": "emp", "reason": "misconduct",
                                              "severity": "major", "comment": " "}), 422)
        assert e["details"]["field"] == "comment"
        err(api("hr_b1").post("/cases", {"kind": "demotion", "employee": "emp", "reason": "absence",
                                         "severity": "major"}), 400)
        assert "lowest" in err(api("hr_b1").post("/cases", {"kind": "demotion", "employee": "weak",
                                                            "reason": "recompete"}), 422)["message"]
        case = ok(api("hr_b1").post("/cases", {"kind": "demotion", "employee": "emp", "reason": "absence",
                                               "comment": "全年缺勤超过十个月"}), 201)
        assert (case["reason"], case["severity"], case["events"][0]["role"]) == ("absence", None, "hr")
        err(api("hr_b1").post("/cases", {"kind": "demotion", "employee": "emp", "reason": "absence"}), 422)

    def test_appeal_inside_the_window_overturned_above_the_confirmer(self, bank, api):
        cid = misconduct(api)["id"]
        case = ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {"comment": "事实清楚", "version": 1}))
        assert (case["state"], case["deadline"], case["assignees"], case["step_unit"]) == (
            "notice", "2026-03-09", ["emp"], "T1")
        assert ok(api("emp").get(f"/cases/{cid}"))["actions"] == ["appeal"]
        err(api("emp").post(f"/cases/{cid}/appeal", {}), 422)
        err(api("emp").post(f"/cases/{cid}/appeal", {"statement": 7}), 400)
        err(api("sup_t1").post(f"/cases/{cid}/appeal", {"statement": "代为申诉"}), 403)
        case = ok(api("emp").post(f"/cases/{cid}/appeal", {"statement": "事实有误"}))
        assert (case["state"], case["step_unit"], case["assignees"]) == ("appeal_review", "R1", ["appr_r1"])
        assert case["events"][-1]["data"]["statement"] == "事实有误"
        e = err(api("appr_b1").post(f"/cases/{cid}/overturn", {"comment": "x"}), 403)
        assert "appr_r1" in e["message"]
        err(api("appr_r1").post(f"/cases/{cid}/overturn", {}), 422)
        case = ok(api("appr_r1").post(f"/cases/{cid}/overturn", {"comment": "证据不足"}))
        assert (case["state"], case["assignees"], case["step_unit"]) == ("overturned", [], None)
        assert ok(api("emp").get("/me"))["grade"] == "manager-3"

    def test_appeal_after_the_window_is_422(self, bank, api):
        cid = misconduct(api)["id"]
        ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {}))
        clock.fix_today(dt.date(2026, 3, 10))
        e = err(api("emp").post(f"/cases/{cid}/appeal", {"statement": "迟到的申诉"}), 422)
        assert e["code"] == "refused" and "2026-03-09" in e["message"]

    def test_upheld_then_approved(self, bank, api):
        cid = misconduct(api)["id"]
        ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {}))
        ok(api("emp").post(f"/cases/{cid}/appeal", {"statement": "申诉"}))
        case = ok(api("appr_r1").post(f"/cases/{cid}/uphold", {"comment": "维持"}))
        assert (case["state"], case["assignees"]) == ("hr_approval", ["hr_b1"])
        case = ok(api("hr_b1").post(f"/cases/{cid}/approve", {}))
        assert (case["state"], case["target_grade"]) == ("effective", "assistant-3")

    def test_effective_after_the_window_closes_by_tick(self, bank, api, app):
        first = misconduct(api)["id"]
        ok(api("appr_b1").post(f"/cases/{first}/retain", {"comment": "情节轻微"}))
        cid = misconduct(api, severity="minor", comment="再次违规")["id"]      # another demotion
        ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {}))
        err(api("emp").post(f"/cases/{cid}/close_notice", {}), 403)           # the system closes it
        err(api("appr_b1").post(f"/cases/{cid}/close_notice", {}), 403)
        assert "0 done" in tick(app, "2026-03-09")
        assert f"case {cid}: close_notice (notice → hr_approval)" in tick(app, "2026-03-10")
        assert "0 done" in tick(app, "2026-03-10")                              # twice does it once
        case = ok(api("hr_b1").get(f"/cases/{cid}"))
        assert (case["state"], case["assignees"], case["events"][-1]["actor"]) == (
            "hr_approval", ["hr_b1"], "system")
        err(api("emp").post(f"/cases/{cid}/appeal", {"statement": "太晚"}), 409)
        case = ok(api("hr_b1").post(f"/cases/{cid}/approve", {"version": case["version"]}))
        assert (case["state"], case["from_grade"], case["target_grade"], case["effective_on"]) == (
            "effective", "manager-3", "assistant-3", "2026-03-10")
        assert ok(api("emp").get("/me"))["grade"] == "assistant-3"
        assert ok(api("hr_b1").get(f"/cases/{first}"))["state"] == "retained"

    def test_rejected_by_hr_and_withdrawn_by_the_initiator(self, bank, api, app):
        cid = misconduct(api)["id"]
        ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {}))
        tick(app, "2026-03-10")
        err(api("hr_b1").post(f"/cases/{cid}/reject", {}), 422)
        assert ok(api("hr_b1").post(f"/cases/{cid}/reject", {"comment": "不同意"}))["state"] == "retained"
        cid = misconduct(api)["id"]
        err(api("appr_b1").post(f"/cases/{cid}/withdraw", {}), 403)
        assert ok(api("sup_t1").post(f"/cases/{cid}/withdraw", {}))["state"] == "withdrawn"


# --- dismissal -----------------------------------------------------------------------------------------

class TestDismissal:
    def _to_final(self, api, app):
        cid = misconduct(api, "dismissal", severity="severe")["id"]
        ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {}))
        tick(app, "2026-03-10")
        case = ok(api("hr_b1").post(f"/cases/{cid}/approve", {}))
        assert (case["state"], case["step_unit"], case["assignees"]) == ("final_approval", "R1", ["appr_r1"])
        return case

    def test_final_approval_ends_the_logins_and_closes_the_other_cases(self, bank, api, app, client):
        promo = ok(api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior",
                                              "statement": "申请"}), 201)
        emp = api("emp")
        case = self._to_final(api, app)
        err(api("hr_b1").post(f"/cases/{case['id']}/final_approve", {}), 403)
        case = ok(api("appr_r1").post(f"/cases/{case['id']}/final_approve", {"version": case["version"]}))
        assert (case["state"], case["outcome"], case["effective_on"]) == ("effective", "dismissed",
                                                                          "2026-03-10")
        assert case["events"][-1]["data"]["closed_cases"] == [promo["id"]]
        assert err(emp.get("/me"), 401)["code"] == "unauthorized"
        err(emp.post("/cases", {"kind": "promotion", "target_grade": "senior"}), 401)
        err(client.post("/api/v1/auth/token", json={"username": "emp", "password": PASSWORD}), 401)
        promo = ok(api("hr_b1").get(f"/cases/{promo['id']}"))
        last = promo["events"][-1]
        assert (promo["state"], last["action"], last["actor"]) == ("withdrawn", "close", "system")
        assert f"dismissal case {case['id']}" in last["comment"]
        assert person("emp").status == "dismissed"
        assert ok(api("hr_hq").get("/audit/verify"))["ok"] is True

    def test_rejected_at_the_final_approval(self, bank, api, app):
        case = self._to_final(api, app)
        case = ok(api("appr_r1").post(f"/cases/{case['id']}/reject", {"comment": "不同意辞退"}))
        assert case["state"] == "overturned" and ok(api("emp").get("/me"))["status"] == "active"

    def test_the_employee_accepts_a_transfer(self, bank, api):
        cid = misconduct(api, "dismissal", severity="severe")["id"]
        ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {}))
        assert ok(api("emp").get(f"/cases/{cid}"))["actions"] == ["appeal", "accept_transfer"]
        err(api("sup_t1").post(f"/cases/{cid}/accept_transfer", {"unit": "T3"}), 403)
        assert err(api("emp").post(f"/cases/{cid}/accept_transfer", {"unit": "NOPE"}), 422)["details"] == {
            "field": "unit"}
        err(api("emp").post(f"/cases/{cid}/accept_transfer", {"unit": "T1"}), 422)     # the same unit
        err(api("emp").post(f"/cases/{cid}/accept_transfer", {"unit": 3}), 400)
        case = ok(api("emp").post(f"/cases/{cid}/accept_transfer", {"unit": "T3"}))
        assert (case["state"], case["outcome"]) == ("transferred", "transferred")
        assert case["events"][-1]["data"]["transfer"] == {"from": "T1", "to": "T3"}
        me = ok(api("emp").get("/me"))
        assert (me["unit"], me["status"]) == ("T3", "active")

    def test_accepting_a_transfer_after_the_window_is_422(self, bank, api):
        cid = misconduct(api, "dismissal", severity="severe")["id"]
        ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {}))
        clock.fix_today(dt.date(2026, 3, 10))
        err(api("emp").post(f"/cases/{cid}/accept_transfer", {"unit": "T3"}), 422)


# --- conventions -----------------------------------------------------------------------------------------

class TestOrderOfChecks:
    @pytest.fixture
    def cid(self, bank, api):
        return misconduct(api)["id"]

    def test_401_first(self, cid, client):
        err(client.post(f"/api/v1/cases/{cid}/confirm_grounds", json={}), 401)
        err(client.post("/api/v1/cases", json={"kind": "demotion", "employee": "emp"}), 401)

    def test_404_for_who_cannot_see_it(self, cid, api):
        for action in ("confirm_grounds", "approve", "appeal"):
            assert err(api("far").post(f"/cases/{cid}/{action}", {}), 404)["code"] == "not_found"
        err(api("emp2").get(f"/cases/{cid}"), 404)
        err(api("appr_b1").post(f"/cases/{cid}/teleport", {}), 404)
        err(api("appr_b1").post(f"/cases/{cid}/make_effective", {}), 404)      # a promotion's action

    def test_409_before_403(self, cid, api):
        # appr_t1 sees the case (their team) and may not act on it; the state is checked first.
        assert err(api("appr_t1").post(f"/cases/{cid}/approve", {}), 409)["code"] == "conflict"
        err(api("appr_t1").post(f"/cases/{cid}/uphold", {}), 409)
        err(api("emp").post(f"/cases/{cid}/appeal", {"statement": "x"}), 409)
        assert err(api("appr_t1").post(f"/cases/{cid}/confirm_grounds", {}), 403)["code"] == "forbidden"

    def test_403_before_the_body(self, cid, api):
        err(api("appr_t1").post(f"/cases/{cid}/retain", {}), 403)
        e = err(api("appr_b1").post(f"/cases/{cid}/retain", {}), 422)
        assert e["code"] == "refused" and e["details"]["field"] == "comment"

    def test_stale_version_is_409(self, cid, api):
        e = err(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {"version": 0}), 409)
        assert e["details"]["version"] == 1
        err(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {"version": "one"}), 400)
        ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {"version": 1}))
        err(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {"version": 1}), 409)

    def test_malformed_bodies_are_400(self, cid, api, client):
        headers = api("appr_b1").headers
        err(client.post(f"/api/v1/cases/{cid}/confirm_grounds", data="{", content_type="application/json",
                        headers=headers), 400)
        err(client.post("/api/v1/cases", data="[]", content_type="application/json", headers=headers), 400)
        err(api("hr_b1").post("/cases", {"kind": "demotion", "employee": ["emp"], "reason": "absence"}), 400)
        err(api("hr_b1").post("/cases", {"kind": "demotion", "employee": "emp", "reason": "absence",
                                         "comment": 5}), 400)


def test_the_inbox_lists_what_waits_on_each_person(bank, api):
    cid = misconduct(api)["id"]
    assert [c["id"] for c in ok(api("appr_b1").get("/inbox"))["items"]] == [cid]
    ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {}))
    assert ok(api("appr_b1").get("/inbox"))["total"] == 0
    assert [c["id"] for c in ok(api("emp").get("/inbox"))["items"]] == [cid]


def test_a_hr_accusation_is_judged_by_other_hr(bank, api, app):
    """Who brings misconduct does not judge it: HR at the branch filed, so HR approval goes up a level."""
    cid = misconduct(api, who="hr_b1")["id"]
    ok(api("appr_b1").post(f"/cases/{cid}/confirm_grounds", {}))
    tick(app, "2026-03-10")
    case = ok(api("hr_r1").get(f"/cases/{cid}"))
    assert (case["state"], case["step_unit"], case["routing_reason"], case["assignees"]) == (
        "hr_approval", "R1", "conflict", ["hr_r1"])


def test_cases_waiting_on_a_dismissed_person_move_on(bank, api, app):
    waiting = ok(api("hr_b1").post("/cases", {"kind": "demotion", "employee": "emp2", "reason": "absence",
                                              "comment": "缺勤"}), 201)
    assert waiting["assignees"] == ["appr_b1"]
    cid = misconduct(api, "dismissal", who="hr_r1", employee="appr_b1", severity="severe")["id"]
    ok(api("appr_r1").post(f"/cases/{cid}/confirm_grounds", {}))
    tick(app, "2026-03-10")
    ok(api("hr_b1").post(f"/cases/{cid}/approve", {}))
    assert ok(api("appr_hq").post(f"/cases/{cid}/final_approve", {}))["state"] == "effective"
    waiting = ok(api("hr_b1").get(f"/cases/{waiting['id']}"))
    assert waiting["assignees"] == ["appr_r1"], waiting["assignees"]


class TestPromotionAppeal:
    def test_appealed_and_reinstated_through_the_api(self, bank, api):
        cid = ok(api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior",
                                            "statement": "申请晋级"}), 201)["id"]
        case = ok(api("appr_b1").post(f"/cases/{cid}/reject", {"comment": "材料不全"}))
        assert (case["state"], case["events"][-1]["data"]["appeal_until"]) == ("rejected", "2026-03-09")
        assert ok(api("emp").get(f"/cases/{cid}"))["actions"] == ["appeal"]
        err(api("emp").post(f"/cases/{cid}/appeal", {}), 422)
        err(api("emp").post(f"/cases/{cid}/appeal", {"statement": ["x"]}), 400)
        err(api("hr_b1").post(f"/cases/{cid}/appeal", {"statement": "代为申诉"}), 403)
        case = ok(api("emp").post(f"/cases/{cid}/appeal", {"statement": "材料已补齐"}))
        assert (case["state"], case["step_unit"], case["assignees"]) == ("appeal_review", "R1", ["appr_r1"])
        err(api("appr_b1").post(f"/cases/{cid}/reinstate", {"comment": "x"}), 403)
        err(api("appr_r1").post(f"/cases/{cid}/reinstate", {}), 422)
        case = ok(api("appr_r1").post(f"/cases/{cid}/reinstate", {"comment": "重新审核"}))
        assert (case["state"], case["assignees"]) == ("qualification_review", ["appr_hq"])
        err(api("emp").post(f"/cases/{cid}/appeal", {"statement": "again"}), 409)

    def test_sustained_closes_it_for_good(self, bank, api):
        cid = ok(api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior"}), 201)["id"]
        ok(api("appr_b1").post(f"/cases/{cid}/reject", {"comment": "材料不全"}))
        ok(api("emp").post(f"/cases/{cid}/appeal", {"statement": "请复核"}))
        case = ok(api("appr_r1").post(f"/cases/{cid}/sustain", {"comment": "维持"}))
        assert (case["state"], case["assignees"], case["actions"]) == ("rejected", [], [])
        e = err(api("emp").post(f"/cases/{cid}/appeal", {"statement": "再次申诉"}), 422)
        assert "appealed once" in e["message"]
