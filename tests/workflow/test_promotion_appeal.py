"""申诉 against a rejected promotion: the window, once only, heard one org level above the rejecter, and a
reinstated case decided afresh without the rejecter. Also: an appeal heard at the root with no other
approver there goes to HR at the root."""
import datetime as dt

import pytest

from workflow import clock, engine, policy as policy_mod
from workflow.errors import Forbidden, Refused
from workflow.machines import rulebook
from workflow.models import db, Person, RoleAssignment
from policy_edits import DELETE, edited


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def assignees(case):
    return sorted(a.person.username for a in case.assignments)


def rejected(walk, at="qualification_review"):
    case = walk.file()
    if at == "hr_approval":
        walk.to_hr(case)
        walk.act(case, "reject", "hr_b1", comment="业绩排名靠后")
    else:
        walk.act(case, "reject", "appr_b1", comment="材料不全")
    assert case.state == "rejected" and case.closed
    return case


def test_the_rejection_opens_the_policy_window(bank, walk):
    case = rejected(walk)
    assert case.events[-1].data["appeal_until"] == "2026-03-09"          # 7 calendar days (bank_corporate)
    assert engine.available_actions(case, person("emp")) == ["appeal"]
    assert engine.available_actions(case, person("appr_b1")) == []
    clock.fix_today(dt.date(2026, 3, 10))
    assert engine.available_actions(case, person("emp")) == []
    with pytest.raises(Refused, match="ended on 2026-03-09"):
        engine.fire(case, "appeal", person("emp"), {"statement": "迟到的申诉"})


def test_reinstated_at_qualification_without_the_rejecter(bank, walk):
    case = rejected(walk)
    walk.act(case, "appeal", "emp", statement="我已补齐材料")
    assert (case.state, case.closed, case.step_unit.code, assignees(case)) == (
        "appeal_review", False, "R1", ["appr_r1"])        # one org level above B1, where it was rejected
    with pytest.raises(Forbidden):
        engine.fire(case, "reinstate", person("appr_b1"), {"comment": "x"})
    db.session.rollback()
    walk.act(case, "reinstate", "appr_r1", comment="材料齐全，重新审核")
    # B1's approver rejected it and R1's granted the appeal: neither qualifies it now (four eyes).
    assert (case.state, case.step_unit.code, assignees(case), case.routing_reason) == (
        "qualification_review", "HQ", ["appr_hq"], "conflict")
    assert case.events[-1].data["rejected_by"] == person("appr_b1").id
    walk.act(case, "qualify", "appr_hq")
    assert case.state == "panel_scoring"
    assert rulebook("promotion").path_problems(case.events, case.state) == []


def test_reinstated_at_hr_approval(bank, walk):
    case = rejected(walk, at="hr_approval")
    walk.act(case, "appeal", "emp", statement="排名计算有误")
    assert (case.step_unit.code, assignees(case)) == ("R1", ["appr_r1"])
    walk.act(case, "reinstate", "appr_r1", comment="复核排名")
    assert (case.state, assignees(case)) == ("hr_approval", ["hr_r1"])   # hr_b1 rejected it
    walk.act(case, "approve", "hr_r1")
    assert case.state == "effective" and person("emp").grade == "senior-1"


def test_sustained_is_final(bank, walk):
    case = rejected(walk)
    walk.act(case, "appeal", "emp", statement="请复核")
    walk.act(case, "sustain", "appr_r1", comment="维持原决定")
    assert (case.state, case.closed, assignees(case)) == ("rejected", True, [])
    assert engine.available_actions(case, person("emp")) == []
    with pytest.raises(Refused, match="appealed once"):
        engine.fire(case, "appeal", person("emp"), {"statement": "再次申诉"})


def test_no_appeal_beside_another_open_promotion(bank, walk):
    case = rejected(walk)
    walk.file()    # the employee files again at once
    with pytest.raises(Refused, match="another open promotion case"):
        engine.fire(case, "appeal", person("emp"), {"statement": "申诉"})


def test_a_policy_without_appeals_offers_none(bank, walk):
    engine.activate_policy(policy_mod.loads(edited(appeal=DELETE), "no-appeal.yaml"), "no-appeal")
    db.session.commit()
    case = rejected(walk)
    assert "appeal_until" not in case.events[-1].data
    with pytest.raises(Refused, match="no appeal window"):
        engine.fire(case, "appeal", person("emp"), {"statement": "申诉"})


def test_an_appeal_at_the_root_with_no_other_approver_goes_to_hr_there(bank, walk):
    # A demotion whose grounds were confirmed at HQ (the review step set at HQ), with HQ's only approver
    # confirming: nobody is above, so HR at HQ hears the appeal and the case says why.
    hq = bank["units"]["HQ"]
    db.session.query(RoleAssignment).filter(RoleAssignment.role == "approver",
                                            RoleAssignment.unit_id != hq.id).delete()
    db.session.commit()
    case = engine.open_case("demotion", person("hr_b1"), person("emp"), reason="misconduct", severity="major",
                            comment="违规办理业务")
    db.session.commit()
    assert (case.step_unit.code, assignees(case)) == ("HQ", ["appr_hq"])
    walk.act(case, "confirm_grounds", "appr_hq")
    walk.act(case, "appeal", "emp", statement="事实有误")
    assert (case.state, case.step_unit.code, case.routing_reason) == ("appeal_review", "HQ", "vacancy")
    assert sorted(a.role for a in case.assignments) == ["hr", "hr"]
    assert assignees(case) == ["admin", "hr_hq"]
