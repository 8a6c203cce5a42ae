"""加签, 退回 and committees from the case page and the JSON API."""
import pytest

from tests.workflow.test_engine import variant
from workflow import engine
from workflow.models import db, Case

COMMITTEE = {"name": {"zh": "客户经理管理小组", "en": "Management group"}, "sign": "all", "pass_ratio": "2/3",
             "steps": {"qualification_review": ["senior"]}}


def filed(api):
    resp = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior", "statement": "申请"})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def to_hr(api, cid):
    version = api("appr_b1").post(f"/cases/{cid}/qualify", {"version": 1}).get_json()["version"]
    api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]})
    for m, s in (("panel1", 80), ("panel2", 90), ("panel3", 70)):
        api(m).post(f"/cases/{cid}/score", {"score": s})
    body = api("sup_t1").post(f"/cases/{cid}/supervisor_score", {"score": 88}).get_json()
    assert body["state"] == "hr_approval", (version, body)
    return body


# --- the API ---------------------------------------------------------------------------------------------

def test_api_adds_a_signer_before_and_lists_them_in_order(bank, api):
    case = filed(api)
    assert "add_signer" in api("appr_b1").get(f"/cases/{case['id']}").get_json()["actions"]
    resp = api("appr_b1").post(f"/cases/{case['id']}/add_signer",
                               {"version": case["version"], "person": "appr_r1", "position": "before",
                                "comment": "请区域把关"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["state"] == "qualification_review" and body["assignees"] == ["appr_r1"]
    assert body["signing"]["added_signers"] == [{"person": "appr_r1", "position": "before", "added_by": "appr_b1",
                                                 "order": 1, "signed": False, "waiting": True}]
    assert body["events"][-1]["action"] == "add_signer"
    assert api("appr_r1").post(f"/cases/{case['id']}/qualify", {}).get_json()["assignees"] == ["appr_b1"]
    assert api("appr_b1").post(f"/cases/{case['id']}/qualify", {}).get_json()["state"] == "panel_scoring"


@pytest.mark.parametrize("body, status, field", [
    ({"person": "appr_t1", "position": "after"}, 422, "person"),      # below the step's unit
    ({"person": "appr_r1", "position": "sideways"}, 400, "position"),
    ({"person": 7, "position": "after"}, 400, "person"),
    ({"person": "ghost", "position": "after"}, 422, "person"),
])
def test_api_refuses_a_signer_who_cannot_act_with_the_field(bank, api, body, status, field):
    case = filed(api)
    resp = api("appr_b1").post(f"/cases/{case['id']}/add_signer", body)
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["error"]["details"]["field"] == field
    assert api("appr_b1").get(f"/cases/{case['id']}").get_json()["version"] == case["version"]


def test_api_sends_back_to_a_step_the_case_passed(bank, api):
    case = filed(api)
    body = to_hr(api, case["id"])
    assert body["send_back_to"] == ["qualification_review"] and "send_back" not in body["actions"]
    hr_view = api("hr_b1").get(f"/cases/{case['id']}").get_json()
    assert hr_view["send_back_to"] == ["qualification_review"] and "send_back" in hr_view["actions"]
    resp = api("hr_b1").post(f"/cases/{case['id']}/send_back", {"to_step": "qualification_review"})
    assert resp.status_code == 422 and resp.get_json()["error"]["details"]["field"] == "comment"
    resp = api("hr_b1").post(f"/cases/{case['id']}/send_back", {"to_step": "panel_scoring", "comment": "x"})
    assert resp.status_code == 422 and resp.get_json()["error"]["details"]["field"] == "to_step"
    resp = api("hr_b1").post(f"/cases/{case['id']}/send_back",
                             {"to_step": "qualification_review", "comment": "资格需复核", "version": hr_view["version"]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["state"] == "qualification_review" and resp.get_json()["assignees"] == ["appr_b1"]
    assert api("appr_b1").post(f"/cases/{case['id']}/send_back",
                               {"to_step": "qualification_review", "comment": "x"}).status_code == 409


def test_api_committee_votes_are_counted(bank, api, make_person, tmp_path):
    for i in (1, 2, 3):
        make_person(f"com{i}", bank["units"]["B1"], roles=["committee@B1"])
    engine.activate_policy(variant(tmp_path, committee=COMMITTEE), "committee")
    db.session.commit()
    case = filed(api)
    assert case["assignees"] == ["com1", "com2", "com3"]
    assert case["signing"]["committee"]["needed"] == 2
    body = api("com1").post(f"/cases/{case['id']}/reject", {"comment": "业绩不足"}).get_json()
    assert body["state"] == "qualification_review"
    assert body["signing"]["committee"] == {"name": {"zh": "客户经理管理小组", "en": "Management group"},
                                            "sign": "all", "pass_ratio": "2/3", "members": 3, "needed": 2,
                                            "approvals": 0, "rejections": 1}
    api("com2").post(f"/cases/{case['id']}/qualify", {})
    body = api("com3").post(f"/cases/{case['id']}/qualify", {}).get_json()
    assert body["state"] == "panel_scoring"
    assert [e["data"]["committee"]["vote"] for e in body["events"] if "committee" in e["data"]] == [
        "reject", "approve", "approve"]


# --- the pages -------------------------------------------------------------------------------------------

def test_page_adds_a_signer_after_and_shows_the_order(bank, api, page):
    cid = filed(api)["id"]
    appr = page("appr_b1")
    html = appr.get(f"/cases/{cid}").get_data(as_text=True)
    assert 'id="form-add_signer"' in html and 'id="form-send_back"' not in html
    # the choices: approvers at B1 and above, not the adder, not a team's approver, not the applicant
    assert 'value="appr_r1"' in html and 'value="appr_hq"' in html
    assert 'value="appr_t1"' not in html and 'value="appr_b1"' not in html and 'value="emp"' not in html
    resp = appr.act(cid, "add_signer", {"person": "appr_hq", "position": "after"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    html = appr.get(f"/cases/{cid}").get_data(as_text=True)
    assert 'id="added-signers"' in html and 'data-person="appr_hq"' in html and "after appr_b1" in html
    assert "added appr_hq to sign after them" in html      # the timeline
    assert appr.act(cid, "qualify", {"comment": ""}).status_code == 302
    html = page("appr_hq", "zh_CN").get(f"/cases/{cid}").get_data(as_text=True)
    assert 'id="form-qualify"' in html and "加签" in html


def test_page_refuses_a_bad_signer_with_the_reason(bank, api, page):
    cid = filed(api)["id"]
    resp = page("appr_b1").act(cid, "add_signer", {"person": "appr_t1", "position": "before"})
    assert resp.status_code == 422
    assert "does not hold approver at B1 or above" in resp.get_data(as_text=True)
    assert db.session.get(Case, cid).version == 1


def test_page_sends_back_with_a_reason(bank, api, page):
    cid = filed(api)["id"]
    to_hr(api, cid)
    hr = page("hr_b1")
    html = hr.get(f"/cases/{cid}").get_data(as_text=True)
    assert 'id="form-send_back"' in html and 'value="qualification_review"' in html
    assert hr.act(cid, "send_back", {"to_step": "qualification_review", "comment": ""}).status_code == 400
    resp = hr.act(cid, "send_back", {"to_step": "qualification_review", "comment": "资格需复核"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Case, cid).state == "qualification_review"


def test_page_shows_the_committee_count_in_chinese(bank, api, page, make_person, tmp_path):
    for i in (1, 2, 3):
        make_person(f"com{i}", bank["units"]["B1"], roles=["committee@B1"])
    engine.activate_policy(variant(tmp_path, committee=COMMITTEE), "committee")
    db.session.commit()
    cid = filed(api)["id"]
    assert page("com1").act(cid, "qualify", {"comment": "同意"}).status_code == 302
    html = page("com2", "zh_CN").get(f"/cases/{cid}").get_data(as_text=True)
    assert 'id="committee-count"' in html and "客户经理管理小组" in html
    assert 'class="committee-vote"' in html      # the vote in the timeline, with the count
