"""公示 through the JSON API: a promotion approved under a policy with publicity waits in 'publicity' for
everyone in the approving unit's subtree; each of them (not the applicant) may object once; HR upholds
it (answering the objections) or overturns it; tick ends the publicity once the window has passed with no
objection waiting. Also: who sees the objector, the list, the order of checks and the error shape."""
import datetime as dt

import pytest
import yaml

from workflow import engine, policy as policy_mod
from workflow.models import db, Person
from api_checks import err, ok, tick  # noqa: E402

WINDOW_END = "2026-03-09"      # five working days after Monday 2026-03-02


def grade(username):
    db.session.expire_all()
    return db.session.scalar(db.select(Person).filter_by(username=username)).grade


@pytest.fixture
def with_publicity(bank, tmp_path):
    """bank_corporate with `publicity: {working_days: 5}`, active for the cases filed from now on."""
    doc = yaml.safe_load((policy_mod.POLICY_DIR / "bank_corporate.yaml").read_text(encoding="utf-8"))
    doc["publicity"] = {"working_days": 5}
    path = tmp_path / "bank_publicity.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    engine.activate_policy(policy_mod.load_file(str(path)), "x")
    db.session.commit()
    return bank


def to_hr(api):
    """emp's application (manager-3 -> senior-1), walked through the API to HR approval."""
    body = {"kind": "promotion", "target_grade": "senior", "statement": "申请"}
    case = ok(api("emp").post("/cases", body), 201)
    cid = case["id"]
    ok(api("appr_b1").post(f"/cases/{cid}/qualify", {}))
    ok(api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]}))
    for member, score in (("panel1", 80), ("panel2", 90), ("panel3", 70)):
        ok(api(member).post(f"/cases/{cid}/score", {"score": score}))
    case = ok(api("sup_t1").post(f"/cases/{cid}/supervisor_score", {"score": 88}))
    assert case["state"] == "hr_approval"
    return case


@pytest.fixture
def published(with_publicity, api):
    case = to_hr(api)
    case = ok(api("hr_b1").post(f"/cases/{case['id']}/approve",
                                {"comment": "同意", "version": case["version"]}))
    assert (case["state"], case["deadline"], case["step_unit"]) == ("publicity", WINDOW_END, "B1")
    assert case["assignees"] == ["hr_b1"] and grade("emp") == "manager-3"
    return case


def listed(api, who, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return ok(api(who).get(f"/publicity{'?' + query if query else ''}"))


# --- without publicity nothing changes ---------------------------------------------------------------------

def test_a_policy_without_publicity_makes_the_promotion_effective_at_once(bank, api):
    case = to_hr(api)
    case = ok(api("hr_b1").post(f"/cases/{case['id']}/approve", {}))
    assert case["state"] == "effective" and grade("emp") == "senior-1"
    assert listed(api, "emp2") == {"items": [], "total": 0, "page": 1, "per_page": 50}


# --- the list and who sees the case ----------------------------------------------------------------------

def test_everyone_in_the_approving_unit_sees_it_listed(published, api):
    cid = published["id"]
    for who in ("emp2", "weak", "panel4", "appr_t2", "emp", "hr_b1", "hr_r1", "hr_hq"):
        page = listed(api, who)
        assert (page["total"], [c["id"] for c in page["items"]]) == (1, [cid]), who
        item = page["items"][0]
        assert (item["state"], item["deadline"], item["from_grade"], item["target_grade"]) == (
            "publicity", WINDOW_END, "manager-3", "senior-1")
    ok(api("emp2").get(f"/cases/{cid}"))
    for who in ("far", "panel5"):         # B3, and R1 outside B1 without a role over it
        assert listed(api, who)["total"] == 0, who
        assert err(api(who).get(f"/cases/{cid}"), 404)["code"] == "not_found"
    assert "object" in ok(api("emp2").get(f"/cases/{cid}"))["actions"]
    assert "object" not in ok(api("emp").get(f"/cases/{cid}"))["actions"]


def test_the_list_is_paginated_and_only_of_cases_in_publicity(published, api):
    page = listed(api, "emp2", page=2, per_page=1)
    assert (page["items"], page["total"], page["page"], page["per_page"]) == ([], 1, 2, 1)
    assert err(api("emp2").get("/publicity?page=zero"), 400)["code"] == "bad_request"
    assert err(api("emp2").get("/publicity?per_page=0"), 400)["code"] == "bad_request"
    # hr_b1 sees other cases of the subtree, but the list holds only those in publicity
    assert listed(api, "hr_b1")["total"] == 1


# --- objections ------------------------------------------------------------------------------------------

def test_a_colleague_objects_once_and_the_applicant_not_at_all(published, api):
    cid = published["id"]
    e = err(api("emp").post(f"/cases/{cid}/object", {"statement": "我没有问题"}), 403)
    assert e["code"] == "forbidden" and "applicant" in e["message"]
    case = ok(api("emp2").post(f"/cases/{cid}/object", {"statement": "该员工2025年有客户投诉未处理",
                                                         "version": published["version"]}))
    assert case["state"] == "publicity" and "object" not in case["actions"]
    ev = case["events"][-1]
    assert (ev["action"], ev["actor"], ev["role"], ev["unit"]) == ("object", "emp2", "employee", "T1")
    assert ev["data"]["statement"] == "该员工2025年有客户投诉未处理"
    e = err(api("emp2").post(f"/cases/{cid}/object", {"statement": "again"}), 403)
    assert e["code"] == "forbidden" and "already" in e["message"]
    ok(api("weak").post(f"/cases/{cid}/object", {"statement": "材料不实"}))      # another colleague may


def test_who_objected_is_shown_to_hr_and_the_objector_only(published, api):
    cid = published["id"]
    ok(api("emp2").post(f"/cases/{cid}/object", {"statement": "该员工2025年有客户投诉未处理"}))

    def objection(who):
        return next(ev for ev in ok(api(who).get(f"/cases/{cid}"))["events"] if ev["action"] == "object")

    for who in ("emp2", "hr_b1", "hr_r1"):
        assert (objection(who)["actor"], objection(who)["unit"]) == ("emp2", "T1"), who
    for who in ("emp", "weak", "appr_b1"):
        ev = objection(who)
        assert (ev["actor"], ev["unit"], ev["role"]) == (None, None, "employee"), who
        assert ev["data"]["statement"] == "该员工2025年有客户投诉未处理", who      # the statement is public
    for item in listed(api, "emp")["items"]:
        assert all(ev["actor"] is None for ev in item["events"] if ev["action"] == "object")


# --- time --------------------------------------------------------------------------------------------------

def test_without_objection_tick_ends_the_publicity_after_the_window(published, api, app):
    cid = published["id"]
    tick(app, WINDOW_END)                          # the last day of the window: nothing yet
    assert ok(api("emp").get(f"/cases/{cid}"))["state"] == "publicity" and grade("emp") == "manager-3"
    out = tick(app, "2026-03-10")
    assert "end_publicity" in out
    case = ok(api("emp").get(f"/cases/{cid}"))
    assert case["state"] == "effective" and grade("emp") == "senior-1"
    assert case["events"][-1]["action"] == "end_publicity" and case["events"][-1]["actor"] == "system"
    assert listed(api, "emp2")["total"] == 0
    err(api("emp2").get(f"/cases/{cid}"), 404)     # out of publicity, the colleague no longer sees it


def test_a_pending_objection_holds_it_until_hr_upholds(published, api, app):
    cid = published["id"]
    ok(api("emp2").post(f"/cases/{cid}/object", {"statement": "该员工2025年有客户投诉未处理"}))
    tick(app, WINDOW_END)
    tick(app, "2026-03-10")                        # the window has passed, but an objection waits
    assert ok(api("emp").get(f"/cases/{cid}"))["state"] == "publicity" and grade("emp") == "manager-3"
    e = err(api("weak").post(f"/cases/{cid}/object", {"statement": "太晚了"}), 422)   # after the window
    assert e["code"] == "refused"
    case = ok(api("hr_b1").post(f"/cases/{cid}/uphold", {"comment": "经核查，投诉已妥善处理"}))
    ev = case["events"][-1]
    assert (case["state"], ev["action"], ev["actor"], ev["comment"]) == (
        "publicity", "uphold", "hr_b1", "经核查，投诉已妥善处理")
    assert "end_publicity" in tick(app, "2026-03-10")
    case = ok(api("emp").get(f"/cases/{cid}"))
    assert case["state"] == "effective" and grade("emp") == "senior-1"
    assert ok(api("emp2").get(f"/cases/{cid}"))["state"] == "effective"   # the objector still sees it


def test_an_objection_after_an_uphold_needs_a_new_answer(published, api, app):
    cid = published["id"]
    ok(api("emp2").post(f"/cases/{cid}/object", {"statement": "客户投诉"}))
    ok(api("hr_b1").post(f"/cases/{cid}/uphold", {"comment": "已核查"}))
    e = err(api("hr_b1").post(f"/cases/{cid}/uphold", {"comment": "再次维持"}), 422)
    assert e["code"] == "refused" and "no objection" in e["message"]
    ok(api("weak").post(f"/cases/{cid}/object", {"statement": "业绩数据有误"}))
    tick(app, "2026-03-10")
    assert ok(api("emp").get(f"/cases/{cid}"))["state"] == "publicity"
    ok(api("hr_b1").post(f"/cases/{cid}/uphold", {"comment": "数据已复核"}))
    tick(app, "2026-03-10")
    assert ok(api("emp").get(f"/cases/{cid}"))["state"] == "effective" and grade("emp") == "senior-1"


def test_hr_overturns_and_the_promotion_is_rejected(published, api, app):
    cid = published["id"]
    ok(api("emp2").post(f"/cases/{cid}/object", {"statement": "材料不实"}))
    case = ok(api("hr_b1").post(f"/cases/{cid}/overturn", {"comment": "核实材料不实，撤销晋级"}))
    assert (case["state"], case["step_unit"], case["assignees"]) == ("rejected", None, [])
    assert case["events"][-1]["comment"] == "核实材料不实，撤销晋级"
    tick(app, "2026-03-10")
    assert ok(api("emp").get(f"/cases/{cid}"))["state"] == "rejected" and grade("emp") == "manager-3"
    assert listed(api, "weak")["total"] == 0
    err(api("weak").post(f"/cases/{cid}/object", {"statement": "x"}), 404)


# --- the order of checks and the error shape ---------------------------------------------------------------

class TestOrderOfChecks:
    def test_401_first(self, published, client):
        err(client.post(f"/api/v1/cases/{published['id']}/object", json={"statement": "x"}), 401)
        err(client.get("/api/v1/publicity"), 401)

    def test_404_for_who_cannot_see_it(self, published, api):
        cid = published["id"]
        for action, body in (("object", {"statement": "x"}), ("uphold", {"comment": "x"}),
                             ("overturn", {"comment": "x"})):
            assert err(api("far").post(f"/cases/{cid}/{action}", body), 404)["code"] == "not_found"
        err(api("emp2").post(f"/cases/{cid}/end_publicity_now", {}), 404)     # no such action

    def test_409_before_403(self, with_publicity, api):
        case = to_hr(api)                          # in HR approval: no publicity yet
        cid = case["id"]
        assert err(api("appr_b1").post(f"/cases/{cid}/object", {"statement": "x"}), 409)["code"] == "conflict"
        err(api("emp").post(f"/cases/{cid}/object", {"statement": "x"}), 409)
        err(api("hr_b1").post(f"/cases/{cid}/uphold", {"comment": "x"}), 409)
        err(api("emp2").get(f"/cases/{cid}"), 404)  # not yet published: colleagues do not see it

    def test_403_before_the_body(self, published, api):
        cid = published["id"]
        assert err(api("emp").post(f"/cases/{cid}/object", {}), 403)["code"] == "forbidden"
        for who in ("emp2", "appr_b1", "emp"):     # only the assigned HR answers
            for action in ("uphold", "overturn"):
                assert err(api(who).post(f"/cases/{cid}/{action}", {}), 403)["code"] == "forbidden"
        err(api("emp2").post(f"/cases/{cid}/end_publicity", {}), 403)      # the system's move

    def test_the_body(self, published, api):
        cid = published["id"]
        e = err(api("emp2").post(f"/cases/{cid}/object", {}), 422)
        assert e["code"] == "refused" and e["details"]["field"] == "statement"
        e = err(api("emp2").post(f"/cases/{cid}/object", {"statement": "   "}), 422)
        assert e["details"]["field"] == "statement"
        e = err(api("emp2").post(f"/cases/{cid}/object", {"statement": 5}), 400)
        assert e["details"]["field"] == "statement"
        for action in ("uphold", "overturn"):
            e = err(api("hr_b1").post(f"/cases/{cid}/{action}", {"comment": " "}), 422)
            assert e["details"]["field"] == "comment", action
        e = err(api("hr_b1").post(f"/cases/{cid}/uphold", {"comment": "维持"}), 422)   # nothing to answer
        assert "no objection" in e["message"]
        assert ok(api("emp").get(f"/cases/{cid}"))["version"] == published["version"]   # nothing changed

    def test_stale_version_is_409(self, published, api):
        cid, v = published["id"], published["version"]
        ok(api("emp2").post(f"/cases/{cid}/object", {"statement": "客户投诉", "version": v}))
        e = err(api("weak").post(f"/cases/{cid}/object", {"statement": "材料不实", "version": v}), 409)
        assert e["details"]["version"] == v + 1
        err(api("hr_b1").post(f"/cases/{cid}/overturn", {"comment": "撤销", "version": v}), 409)

    def test_a_malformed_body_is_400(self, published, api, client):
        err(client.post(f"/api/v1/cases/{published['id']}/object", data="{", content_type="application/json",
                        headers=api("emp2").headers), 400)


# --- engine gaps -----------------------------------------------------------------------------------------

def test_a_late_objection_names_the_publicity(published, api, app):
    from workflow import clock
    clock.fix_today(dt.date(2026, 3, 10))       # the window has passed; tick has not run yet
    e = err(api("emp2").post(f"/cases/{published['id']}/object", {"statement": "太晚了"}), 422)
    assert "publicity" in e["message"]


def test_uphold_is_offered_only_with_an_objection_waiting(published, api):
    assert "uphold" not in ok(api("hr_b1").get(f"/cases/{published['id']}"))["actions"]
