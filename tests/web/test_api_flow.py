"""The promotion pipeline through the API, from application to effective grade."""
from workflow.models import db, Person, GradeHistory


def test_promotion_end_to_end(bank, api):
    resp = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior", "statement": "请审批"})
    assert resp.status_code == 201, resp.get_json()
    case = resp.get_json()
    assert case["state"] == "qualification_review"
    assert case["step_unit"] == "B1" and case["assignees"] == ["appr_b1"]
    assert case["routing_reason"] is None
    assert all(r["passed"] for r in case["eligibility"])
    cid = case["id"]

    resp = api("appr_b1").post(f"/cases/{cid}/qualify", {"version": case["version"]})
    assert resp.status_code == 200, resp.get_json()
    case = resp.get_json()
    assert case["state"] == "panel_scoring"
    assert set(case["assignees"]) == {"hr_b1", "sup_t1"}

    resp = api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]})
    assert resp.status_code == 200, resp.get_json()
    for member, score in [("panel1", 80), ("panel2", 90), ("panel3", 70)]:
        resp = api(member).post(f"/cases/{cid}/score", {"score": score})
        assert resp.status_code == 200, resp.get_json()
    resp = api("sup_t1").post(f"/cases/{cid}/supervisor_score", {"score": 88})
    case = resp.get_json()
    assert case["state"] == "hr_approval", case
    # 30*88 + 40*80 + 30*85 over 100
    assert case["composite"] == round((30 * 88 + 40 * 80 + 30 * 85) / 100, 2)
    assert case["assignees"] == ["hr_b1"]

    resp = api("hr_b1").post(f"/cases/{cid}/approve", {"version": case["version"]})
    case = resp.get_json()
    assert case["state"] == "effective", case
    emp = db.session.scalar(db.select(Person).filter_by(username="emp"))
    assert emp.grade == "senior-1"
    assert db.session.scalar(db.select(GradeHistory).filter_by(person_id=emp.id)).to_grade == "senior-1"
    actions = [e["action"] for e in case["events"]]
    assert actions == ["create", "qualify", "assign_panel", "score", "score", "score", "supervisor_score",
                       "scoring_complete", "approve"]
    assert api("admin").get("/audit/verify").get_json() == {"ok": True, "events": 9}
