"""Probation, demotion and dismissal: their machines, routing, windows, effects and audit."""
import datetime as dt

import pytest

from workflow import audit, engine
from workflow.errors import Conflict, Forbidden, Invalid, Refused
from workflow.machines import rulebook
from workflow.models import db, ApiToken, Case, GradeHistory, Person

TODAY = dt.date(2026, 3, 2)


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def act(case, action, who, today=None, **data):
    engine.fire(case, action, person(who) if who else None, data, today=today)
    db.session.commit()
    return case


@pytest.fixture
def newbie(bank, make_person):
    p = make_person("newbie", bank["units"]["T1"], status="probation", hired_on=dt.date(2025, 3, 15),
                    skill_test=72)
    db.session.commit()
    return p


def path_is_valid(case):
    """Every event is a transition of the kind's machine from the state the previous one left."""
    assert rulebook(case.kind).path_problems(case.events, case.state) == []


class TestProbation:
    def test_opens_with_the_policy_length_and_hr_assigned(self, newbie):
        case = engine.open_probation(newbie, person("hr_b1"))
        db.session.commit()
        assert (case.state, case.due_on, case.deadline) == ("in_probation", dt.date(2026, 3, 15),
                                                            dt.date(2026, 3, 15))
        assert [p.username for p in case.assignee_people()] == ["hr_b1"] and case.step_unit.code == "B1"
        assert newbie.status == "probation"

    def test_tick_opens_the_evaluation_ahead_of_the_end(self, newbie):
        case = engine.open_probation(newbie)
        db.session.commit()
        assert engine.due_for_tick(dt.date(2026, 3, 7)) == []
        assert engine.due_for_tick(dt.date(2026, 3, 8)) == [(case.id, "open_evaluation")]
        with pytest.raises(Refused, match="not due"):
            engine.fire(case, "open_evaluation", None, today=dt.date(2026, 3, 7))
        db.session.rollback()
        act(case, "open_evaluation", None, today=dt.date(2026, 3, 8))
        assert case.state == "evaluation" and [p.username for p in case.assignee_people()] == ["sup_t1"]
        assert case.events[-1].actor == "system"

    def _to_review(self, newbie):
        case = engine.open_probation(newbie, person("hr_b1"))
        db.session.commit()
        act(case, "open_evaluation", "hr_b1")          # HR may open it early
        act(case, "evaluate", "sup_t1", score=86, comment="工作认真",
            form={"attitude": "优秀", "skills": 85, "customers": "良好"})
        assert case.state == "hr_review"
        assert case.events[-1].data["skill_appraisal"]["passed"] is True
        return case

    def test_confirmed_sets_the_first_regular_grade(self, newbie):
        case = self._to_review(newbie)
        act(case, "confirm", "hr_b1")
        p = person("newbie")
        assert (case.state, p.status, p.grade, p.grade_since) == ("confirmed", "active", "assistant-1", TODAY)
        assert db.session.query(GradeHistory).filter_by(person_id=p.id).one().to_grade == "assistant-1"
        path_is_valid(case)

    def test_extended_once(self, newbie):
        case = self._to_review(newbie)
        with pytest.raises(Refused, match="1 to 6"):
            engine.fire(case, "extend", person("hr_b1"), {"months": 9})
        db.session.rollback()
        with pytest.raises(Invalid):
            engine.fire(case, "extend", person("hr_b1"), {"months": "two"})
        db.session.rollback()
        act(case, "extend", "hr_b1", months=3)
        assert (case.state, case.due_on, case.extensions) == ("in_probation", dt.date(2026, 6, 15), 1)
        act(case, "open_evaluation", "hr_b1")
        act(case, "evaluate", "sup_t1", score=70)
        with pytest.raises(Refused, match="once"):
            engine.fire(case, "extend", person("hr_b1"), {"months": 1})
        db.session.rollback()
        path_is_valid(case)

    def test_failed_into_dismissal(self, newbie):
        case = self._to_review(newbie)
        with pytest.raises(Refused):
            engine.fire(case, "fail", person("hr_b1"), {"outcome": "dismissal"})     # needs a comment
        db.session.rollback()
        act(case, "fail", "hr_b1", outcome="dismissal", comment="未达到岗位要求")
        follow = db.session.query(Case).filter_by(kind="dismissal", employee_id=newbie.id).one()
        assert (case.state, case.outcome) == ("failed", "dismissal")
        assert (follow.reason, follow.state, follow.related_case_id) == ("probation_failed", "review", case.id)
        assert case.events[-1].data["dismissal_case"] == follow.id

    def test_failed_into_transfer(self, newbie):
        case = self._to_review(newbie)
        act(case, "fail", "hr_b1", outcome="transfer", comment="转岗")
        assert case.outcome == "transfer"
        assert db.session.query(Case).filter_by(kind="dismissal").count() == 0

    def test_only_hr_over_the_unit_opens_one(self, newbie):
        with pytest.raises(Forbidden):
            engine.open_probation(newbie, person("appr_b1"))


def misconduct(kind="demotion", who="sup_t1", severity="major", employee="emp"):
    case = engine.open_case(kind, person(who), person(employee), reason="misconduct", severity=severity,
                            comment="违规办理业务")
    db.session.commit()
    return case


class TestDemotion:
    def test_opened_by_the_supervisor_for_misconduct(self, bank):
        case = misconduct()
        assert (case.state, case.step_unit.code, case.reason, case.severity) == ("review", "B1", "misconduct",
                                                                               "major")
        assert [p.username for p in case.assignee_people()] == ["appr_b1"]
        assert case.events[0].role == "supervisor"

    def test_sanctions_follow_the_policy(self, bank):
        with pytest.raises(Refused, match="not dismissal"):
            misconduct("dismissal", severity="minor")
        with pytest.raises(Invalid):
            misconduct(severity="awful")
        with pytest.raises(Forbidden):
            misconduct(who="emp2")
        with pytest.raises(Forbidden):
            engine.open_case("demotion", person("sup_t1"), person("emp"), reason="absence")

    def test_the_lowest_level_cannot_move_down(self, bank, make_person):
        make_person("junior", bank["units"]["T1"], grade="assistant-2")
        with pytest.raises(Refused, match="lowest"):
            misconduct(employee="junior")

    def test_takes_effect_one_level_down(self, bank):
        case = misconduct()
        act(case, "confirm_grounds", "appr_b1")
        assert (case.state, case.deadline, [p.username for p in case.assignee_people()]) == (
            "notice", dt.date(2026, 3, 9), ["emp"])
        with pytest.raises(Refused, match="open until"):
            engine.fire(case, "close_notice", None, today=dt.date(2026, 3, 9))
        db.session.rollback()
        assert engine.due_for_tick(dt.date(2026, 3, 10)) == [(case.id, "close_notice")]
        act(case, "close_notice", None, today=dt.date(2026, 3, 10))
        assert case.state == "hr_approval" and [p.username for p in case.assignee_people()] == ["hr_b1"]
        act(case, "approve", "hr_b1")
        emp = person("emp")
        assert (case.state, emp.grade) == ("effective", "assistant-3")      # manager-3 -> top tier below
        path_is_valid(case)
        assert audit.verify().ok

    def test_appealed_and_overturned_above_the_confirmer(self, bank):
        case = misconduct()
        act(case, "confirm_grounds", "appr_b1")
        with pytest.raises(Refused, match="statement"):
            engine.fire(case, "appeal", person("emp"), {})
        db.session.rollback()
        act(case, "appeal", "emp", statement="事实有误，当日系按流程办理")
        assert case.state == "appeal_review" and case.step_unit.code == "R1"
        assert [p.username for p in case.assignee_people()] == ["appr_r1"]
        with pytest.raises(Forbidden):
            engine.fire(case, "overturn", person("appr_b1"), {"comment": "x"})
        db.session.rollback()
        act(case, "overturn", "appr_r1", comment="证据不足")
        assert case.state == "overturned" and person("emp").grade == "manager-3"
        path_is_valid(case)

    def test_appeal_after_the_window_is_refused(self, bank):
        case = misconduct()
        act(case, "confirm_grounds", "appr_b1")
        with pytest.raises(Refused, match="ended"):
            engine.fire(case, "appeal", person("emp"), {"statement": "迟到的申诉"}, today=dt.date(2026, 3, 10))
        db.session.rollback()

    def test_upheld_appeal_goes_to_hr(self, bank):
        case = misconduct()
        act(case, "confirm_grounds", "appr_b1")
        act(case, "appeal", "emp", statement="申诉")
        act(case, "uphold", "appr_r1")
        assert case.state == "hr_approval"

    def test_the_initiator_withdraws_and_does_not_judge(self, bank, make_person):
        make_person("lead_b1", bank["units"]["B1"], roles=["supervisor@T1", "approver@B1"])
        db.session.commit()
        case = engine.open_case("demotion", person("lead_b1"), person("emp"), reason="misconduct",
                                severity="minor", comment="违规")
        db.session.commit()
        assert "lead_b1" not in [p.username for p in case.assignee_people()]
        with pytest.raises(Forbidden):
            engine.fire(case, "withdraw", person("appr_b1"))
        db.session.rollback()
        act(case, "withdraw", "lead_b1")
        assert case.state == "withdrawn"

    def test_retained_at_review(self, bank):
        case = misconduct()
        act(case, "retain", "appr_b1", comment="情节轻微，不予降级")
        assert case.state == "retained" and case.closed


class TestDismissal:
    def _to_final(self):
        case = misconduct("dismissal", severity="severe")
        act(case, "confirm_grounds", "appr_b1")
        act(case, "close_notice", None, today=dt.date(2026, 3, 10))
        act(case, "approve", "hr_b1")
        assert case.state == "final_approval" and [p.username for p in case.assignee_people()] == ["appr_r1"]
        return case

    def test_effective_closes_the_login_and_the_other_cases(self, bank, client, api):
        token_headers = api("emp").headers
        promo = engine.create_promotion(person("emp"), person("emp"), "senior", "")
        db.session.commit()
        case = self._to_final()
        act(case, "final_approve", "appr_r1")
        emp = person("emp")
        assert (case.state, emp.status) == ("effective", "dismissed")
        assert db.session.query(ApiToken).filter_by(person_id=emp.id, revoked=False).count() == 0
        db.session.refresh(promo)
        assert promo.state == "withdrawn" and promo.events[-1].actor == "system"
        assert f"dismissal case {case.id}" in promo.events[-1].comment
        assert client.get("/api/v1/me", headers=token_headers).status_code == 401
        resp = client.post("/api/v1/auth/token", json={"username": "emp", "password": "secret-pass"})
        assert resp.status_code == 401
        path_is_valid(case)
        path_is_valid(promo)
        assert audit.verify().ok

    def test_accepting_a_transfer(self, bank):
        case = misconduct("dismissal", severity="severe")
        act(case, "confirm_grounds", "appr_b1")
        with pytest.raises(Refused, match="no unit"):
            engine.fire(case, "accept_transfer", person("emp"), {"unit": "NOPE"})
        db.session.rollback()
        act(case, "accept_transfer", "emp", unit="T3")
        assert (case.state, person("emp").unit.code, person("emp").status) == ("transferred", "T3", "active")

    def test_rejected_at_final_approval(self, bank):
        case = self._to_final()
        act(case, "reject", "appr_r1", comment="不同意辞退")
        assert case.state == "overturned" and person("emp").status == "active"

    def test_appeal_heard_by_the_region_then_final_approval_goes_higher(self, bank):
        case = misconduct("dismissal", severity="severe")
        act(case, "confirm_grounds", "appr_b1")
        act(case, "appeal", "emp", statement="申诉")
        act(case, "uphold", "appr_r1")
        act(case, "approve", "hr_b1")
        # appr_r1 decided the appeal: four eyes sends the final approval up to HQ.
        assert (case.step_unit.code, case.routing_reason) == ("HQ", "conflict")


def test_state_changes_are_409_and_others_403(bank):
    case = misconduct()
    with pytest.raises(Conflict):
        engine.fire(case, "approve", person("hr_b1"))
    db.session.rollback()
    with pytest.raises(Forbidden):
        engine.fire(case, "confirm_grounds", person("hr_b1"))
    db.session.rollback()


def test_a_forged_path_is_told(bank):
    case = misconduct()
    act(case, "confirm_grounds", "appr_b1")
    ev = case.events[-1]
    ev.from_state = "hr_approval"          # not written: only the check is under test
    assert rulebook("demotion").path_problems(case.events, case.state) == [
        "#2 confirm_grounds starts from hr_approval, the case was review"]
    db.session.rollback()
