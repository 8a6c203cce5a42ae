"""The JSON API: shapes, the order of checks, errors, lists, inbox, pipeline and audit."""
import pytest
from sqlalchemy import text

from workflow.models import db
from api_checks import err  # noqa: E402


def file(api, who="emp", **body):
    resp = api(who).post("/cases", {"kind": "promotion", "target_grade": "senior", "statement": "申请", **body})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_token_and_me(bank, api, client):
    me = api("sup_t1").get("/me").get_json()
    assert me == {"username": "sup_t1", "name": "Sup_T1", "unit": "T1", "grade": None,
                  "roles": ["supervisor@T1"], "status": "active"}
    assert api("emp").get("/me").get_json()["grade"] == "manager-3"
    err(client.post("/api/v1/auth/token", json={"username": "emp", "password": "wrong"}), 401)
    err(client.post("/api/v1/auth/token", data="not json", content_type="application/json"), 400)
    err(client.get("/api/v1/me"), 401)
    err(client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}), 401)


def test_policy(bank, api):
    pol = api("emp").get("/policy").get_json()
    assert [lv["id"] for lv in pol["ladder"]] == ["assistant", "manager", "senior", "principal",
                                                  "general_manager", "director"]
    assert [lv["tiers"] for lv in pol["ladder"]] == [3, 3, 3, 3, 3, 2]
    assert pol["ladder"][2]["name"] == {"zh": "高级客户经理", "en": "Senior Account Manager"}
    assert pol["org_levels"][0]["id"] == "hq"
    assert pol["authority"]["principal"]["qualification_review"] == "region"
    assert pol["weights"] == {"supervisor": 30, "panel": 40, "annual_performance": 30}


def test_case_shape(bank, api):
    case = file(api)
    assert {"id", "version", "policy_version", "kind", "employee", "from_grade", "target_grade", "state",
            "exceptional", "step_unit", "assignees", "routing_reason", "eligibility", "scores", "composite",
            "events", "deadline", "overdue"} <= set(case)
    assert case["policy_version"]["label"] == "bank_corporate 2026.1" and len(case["policy_version"]["hash"]) == 64
    assert (case["from_grade"], case["target_grade"], case["version"]) == ("manager-3", "senior-1", 1)
    assert case["eligibility"][0].keys() == {"rule", "required", "actual", "passed"}
    ev = case["events"][0]
    assert {k: ev[k] for k in ("seq", "action", "from_state", "to_state", "actor", "role", "unit")} == {
        "seq": 1, "action": "create", "from_state": None, "to_state": "qualification_review", "actor": "emp",
        "role": "employee", "unit": "T1"}
    assert case["deadline"] == "2026-03-09" and case["overdue"] is False


class TestOrderOfChecks:
    def test_401_before_anything(self, bank, api, client):
        cid = file(api)["id"]
        err(client.post(f"/api/v1/cases/{cid}/qualify", json={}), 401)

    def test_404_when_not_visible(self, bank, api):
        cid = file(api)["id"]
        err(api("far").get(f"/cases/{cid}"), 404)
        err(api("far").post(f"/cases/{cid}/qualify", {}), 404)       # 404 before 409/403
        err(api("emp").get("/cases/999"), 404)

    def test_unknown_action_is_404(self, bank, api):
        cid = file(api)["id"]
        err(api("appr_b1").post(f"/cases/{cid}/teleport", {}), 404)

    def test_409_before_403(self, bank, api):
        cid = file(api)["id"]
        # appr_t1 sees the case (their team) but may not approve; the state comes first.
        assert err(api("appr_t1").post(f"/cases/{cid}/approve", {}), 409)["code"] == "conflict"
        err(api("appr_t1").post(f"/cases/{cid}/qualify", {}), 403)

    def test_403_before_the_body(self, bank, api):
        cid = file(api)["id"]
        err(api("appr_t1").post(f"/cases/{cid}/return", {}), 403)
        assert "comment" in err(api("appr_b1").post(f"/cases/{cid}/return", {}), 422)["message"]

    def test_malformed_body_is_400(self, bank, api, client):
        cid = file(api)["id"]
        resp = client.post(f"/api/v1/cases/{cid}/qualify", data="[1,2", content_type="application/json",
                           headers=api("appr_b1").headers)
        err(resp, 400)
        err(api("appr_b1").post(f"/cases/{cid}/qualify", {"version": "seven"}), 400)


class TestCreate:
    def test_rule_failure_is_422_naming_rules(self, bank, api):
        e = err(api("weak").post("/cases", {"kind": "promotion", "target_grade": "manager"}), 422)
        assert "performance_average" in e["message"] and "skill_test_passed" in e["message"]

    def test_exceptional_goes_up(self, bank, api):
        case = file(api, "weak", target_grade="manager", exceptional=True)
        assert case["exceptional"] and case["routing_reason"] == "exceptional" and case["step_unit"] == "B1"
        assert case["routing_note"]

    def test_skip_is_422(self, bank, api):
        err(api("emp2").post("/cases", {"kind": "promotion", "target_grade": "senior"}), 422)

    def test_bad_fields(self, bank, api):
        err(api("emp").post("/cases", {"kind": "promotion", "target_grade": 7}), 400)
        err(api("emp").post("/cases", {"kind": "holiday", "target_grade": "senior"}), 400)
        err(api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior", "exceptional": "yes"}), 400)
        err(api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior-9"}), 422)

    def test_second_open_case_is_422(self, bank, api):
        file(api)
        err(api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior"}), 422)

    def test_hr_files_for_others(self, bank, api):
        case = file(api, "hr_b1", employee="emp")
        assert case["employee"] == "emp" and case["events"][0]["actor"] == "hr_b1"
        e = err(api("hr_b1").post("/cases", {"kind": "promotion", "target_grade": "manager-2", "employee": "far"}),
                403)
        assert "HR" in e["message"]
        err(api("emp2").post("/cases", {"kind": "promotion", "target_grade": "senior", "employee": "emp"}), 403)


def test_every_action_through_the_api(bank, api):
    case = file(api)
    cid = case["id"]
    case = api("appr_b1").post(f"/cases/{cid}/return", {"comment": "补充", "version": 1}).get_json()
    assert case["state"] == "returned" and case["assignees"] == ["emp"] and case["step_unit"] == "T1"
    case = api("emp").post(f"/cases/{cid}/resubmit", {"statement": "已补充"}).get_json()
    assert case["state"] == "qualification_review"
    case = api("appr_b1").post(f"/cases/{cid}/qualify", {"version": case["version"]}).get_json()
    assert case["state"] == "panel_scoring"
    err(api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "sup_t1", "panel2"]}), 422)
    case = api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"],
                                                             "version": case["version"]}).get_json()
    assert case["scores"]["panel_members"] == ["panel1", "panel2", "panel3"]
    assert api("panel1").post(f"/cases/{cid}/score", {"score": 81}).status_code == 200
    err(api("panel1").post(f"/cases/{cid}/score", {"score": 81}), 403)        # once
    err(api("panel2").post(f"/cases/{cid}/score", {"score": 181}), 422)
    api("panel2").post(f"/cases/{cid}/score", {"score": 79})
    api("panel3").post(f"/cases/{cid}/score", {"score": 80})
    case = api("sup_t1").post(f"/cases/{cid}/supervisor_score", {"score": 90}).get_json()
    assert case["state"] == "hr_approval" and case["assignees"] == ["hr_b1"]
    err(api("hr_b1").post(f"/cases/{cid}/reject", {}), 422)
    case = api("hr_b1").post(f"/cases/{cid}/approve", {"version": case["version"]}).get_json()
    assert case["state"] == "effective" and case["step_unit"] is None and case["assignees"] == []
    assert api("emp").get("/me").get_json()["grade"] == "senior-1"
    err(api("emp").post(f"/cases/{cid}/withdraw", {}), 409)


def test_stale_version_gets_409(bank, api):
    case = file(api)
    cid = case["id"]
    api("emp").post(f"/cases/{cid}/withdraw", {"version": 1})
    e = err(api("appr_b1").post(f"/cases/{cid}/qualify", {"version": 1}), 409)
    assert e["code"] == "conflict"


def test_stale_version_on_same_state_gets_409(bank, api):
    case = file(api)
    cid = case["id"]
    api("appr_b1").post(f"/cases/{cid}/declare_conflict", {"comment": "亲属", "version": 1})
    # the case moved on (new assignees) while staying in qualification_review
    e = err(api("appr_r1").post(f"/cases/{cid}/qualify", {"version": 1}), 409)
    assert "changed" in e["message"]
    assert api("appr_r1").post(f"/cases/{cid}/qualify", {"version": 2}).status_code == 200


class TestBlind:
    def _scored(self, api):
        cid = file(api)["id"]
        api("appr_b1").post(f"/cases/{cid}/qualify", {})
        api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]})
        api("panel1").post(f"/cases/{cid}/score", {"score": 77})
        return cid

    def test_a_member_sees_others_only_after_scoring(self, bank, api):
        cid = self._scored(api)
        before = api("panel2").get(f"/cases/{cid}").get_json()
        assert [s["value"] for s in before["scores"]["panel"]] == [None]
        assert all("score" not in e["data"] for e in before["events"])
        api("panel2").post(f"/cases/{cid}/score", {"score": 88})
        after = api("panel2").get(f"/cases/{cid}").get_json()
        assert sorted(s["value"] for s in after["scores"]["panel"]) == [77, 88]

    def test_the_applicant_never_sees_values(self, bank, api):
        cid = self._scored(api)
        api("panel2").post(f"/cases/{cid}/score", {"score": 88})
        api("panel3").post(f"/cases/{cid}/score", {"score": 80})
        api("sup_t1").post(f"/cases/{cid}/supervisor_score", {"score": 90})
        mine = api("emp").get(f"/cases/{cid}").get_json()
        assert mine["state"] == "hr_approval"
        assert [s["value"] for s in mine["scores"]["panel"]] == [None, None, None]
        assert mine["scores"]["supervisor"]["value"] is None
        assert mine["composite"] is None
        assert api("hr_b1").get(f"/cases/{cid}").get_json()["composite"] is not None
        api("hr_b1").post(f"/cases/{cid}/approve", {})
        mine = api("emp").get(f"/cases/{cid}").get_json()
        assert mine["composite"] is not None
        assert [s["value"] for s in mine["scores"]["panel"]] == [None, None, None]

    def test_a_panel_member_sees_only_their_panels(self, bank, api):
        cid = self._scored(api)
        other = file(api, "emp2", target_grade="manager-2")["id"]
        visible = {c["id"] for c in api("panel1").get("/cases").get_json()["items"]}
        assert cid in visible and other not in visible
        err(api("panel1").get(f"/cases/{other}"), 404)


def test_lists_inbox_and_pagination(bank, api):
    ids = [file(api)["id"], file(api, "emp2", target_grade="manager-2")["id"]]
    listing = api("hr_b1").get("/cases?kind=promotion").get_json()
    assert listing["total"] == 2 and listing["page"] == 1 and listing["per_page"] == 50
    assert {c["id"] for c in listing["items"]} == set(ids)
    assert api("hr_b1").get("/cases?per_page=1&page=2").get_json()["items"][0]["id"] == min(ids)
    assert api("hr_b1").get("/cases?per_page=9999").get_json()["per_page"] == 500
    err(api("hr_b1").get("/cases?page=x"), 400)
    assert api("emp").get("/cases").get_json()["total"] == 1
    assert api("far").get("/cases").get_json()["total"] == 0
    assert api("hr_b1").get("/cases?state=qualification_review&unit=T1").get_json()["total"] == 2
    assert api("hr_b1").get("/cases?state=effective").get_json()["total"] == 0
    assert [c["id"] for c in api("appr_b1").get("/inbox").get_json()["items"]] == [ids[0]]
    assert [c["id"] for c in api("appr_t1").get("/inbox").get_json()["items"]] == [ids[1]]
    assert api("emp").get("/inbox").get_json()["total"] == 0


def test_pipeline(bank, api, app):
    from workflow import clock
    import datetime as dt
    a = file(api)["id"]
    b = file(api, "emp2", target_grade="manager-2")["id"]
    api("emp2").post(f"/cases/{b}/withdraw", {})
    pipe = api("hr_b1").get("/pipeline?unit=B1").get_json()
    # The contract's keys; the dashboard's other figures are in tests/web/test_dashboard.py.
    assert {k: pipe[k] for k in ("unit", "by_state", "by_level", "overdue")} == {
        "unit": "B1", "by_state": {"qualification_review": 1, "withdrawn": 1},
        "by_level": {"senior": {"qualification_review": 1}, "manager": {"withdrawn": 1}}, "overdue": []}
    clock.fix_today(dt.date(2026, 3, 20))
    assert api("hr_b1").get("/pipeline?unit=B1").get_json()["overdue"] == [a]
    assert api("hr_b1").get(f"/cases/{a}").get_json()["overdue"] is True
    err(api("hr_b1").get("/pipeline?unit=R2"), 404)
    err(api("emp").get("/pipeline?unit=T1"), 404)
    err(api("emp").get("/pipeline"), 403)
    assert api("hr_hq").get("/pipeline").get_json()["unit"] == "HQ"


class TestAudit:
    def _walked(self, api):
        cid = file(api)["id"]
        api("appr_b1").post(f"/cases/{cid}/qualify", {})
        return cid

    def test_only_root_admin_or_hr(self, bank, api):
        self._walked(api)
        assert api("admin").get("/audit/verify").get_json() == {"ok": True, "events": 2}
        err(api("hr_b1").get("/audit/verify"), 403)
        assert api("hr_hq").get("/audit/verify").status_code == 200

    def test_edited_event_is_caught(self, bank, api):
        cid = self._walked(api)
        assert api("admin").get("/audit/verify").get_json() == {"ok": True, "events": 2}
        db.session.execute(text("UPDATE events SET comment = 'forged' WHERE case_id = :c AND seq = 1"), {"c": cid})
        db.session.commit()
        res = api("admin").get("/audit/verify").get_json()
        assert res["ok"] is False and res["first_bad"]["seq"] == 1

    def test_recomputed_unkeyed_hash_is_caught(self, bank, api):
        import hashlib
        cid = self._walked(api)
        forged = hashlib.sha256(b"anything").hexdigest()
        db.session.execute(text("UPDATE events SET actor = 'hr_b1', mac = :m WHERE case_id = :c AND seq = 2"),
                           {"c": cid, "m": forged})
        db.session.execute(text("UPDATE cases SET head_mac = :m WHERE id = :c"), {"c": cid, "m": forged})
        db.session.commit()
        assert api("admin").get("/audit/verify").get_json()["ok"] is False

    @pytest.mark.parametrize("seq", [1, 2])
    def test_deleted_event_is_caught(self, bank, api, seq):
        cid = self._walked(api)
        db.session.execute(text("DELETE FROM events WHERE case_id = :c AND seq = :s"), {"c": cid, "s": seq})
        db.session.commit()
        res = api("admin").get("/audit/verify").get_json()
        assert res["ok"] is False and res["first_bad"]["chain"] == f"case:{cid}"


def test_session_api_needs_csrf(bank, tmp_path):
    from web import create_app
    from web.config import TestingConfig
    cfg = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    app = create_app({**cfg, "WTF_CSRF_ENABLED": True, "SQLALCHEMY_DATABASE_URI":
                      db.engine.url.render_as_string(hide_password=False)})
    client = app.test_client()
    # A browser session without the CSRF token cannot change anything through the API.
    with client.session_transaction() as sess:
        sess["_user_id"] = bank["emp"].get_id()
        sess["_fresh"] = True
    assert client.get("/api/v1/me").status_code == 200
    resp = client.post("/api/v1/cases", json={"kind": "promotion", "target_grade": "senior"})
    assert resp.status_code == 400 and "CSRF" in resp.get_json()["error"]["message"]
    with app.app_context():
        db.engine.dispose()


def test_hr_inbox_stops_asking_once_the_panel_is_formed(bank, api):
    cid = file(api)["id"]
    api("appr_b1").post(f"/cases/{cid}/qualify", {})
    assert [c["id"] for c in api("hr_b1").get("/inbox").get_json()["items"]] == [cid]
    api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]})
    assert api("hr_b1").get("/inbox").get_json()["total"] == 0
    assert [c["id"] for c in api("panel2").get("/inbox").get_json()["items"]] == [cid]
    assert [c["id"] for c in api("sup_t1").get("/inbox").get_json()["items"]] == [cid]


def test_language_switch_never_redirects_to_another_site(client):
    resp = client.get("/lang/en", headers={"Referer": "https://evil.example/phish"})
    assert resp.status_code == 302 and "evil" not in resp.location
    resp = client.get("/lang/en", headers={"Referer": "http://localhost/inbox"})
    assert resp.location.endswith("/inbox")


def test_a_case_state_edited_in_the_database_is_caught(bank, api):
    cid = file(api)["id"]
    db.session.execute(text("UPDATE cases SET state = 'hr_approval' WHERE id = :c"), {"c": cid})
    db.session.commit()
    res = api("admin").get("/audit/verify").get_json()
    assert res["ok"] is False and "state" in res["first_bad"]["reason"]
