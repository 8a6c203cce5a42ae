"""Routing by the authority matrix: every target level, escalation on vacancy, self and conflict."""
import datetime as dt

import pytest

from workflow import engine
from workflow.errors import Refused
from workflow.models import db


@pytest.mark.parametrize("grade, target, unit", [
    ("assistant-1", "assistant-2", "T1"),        # a tier within 助理客户经理: team
    ("assistant-3", "manager", "T1"),            # 客户经理: team
    ("manager-3", "senior", "B1"),               # 高级客户经理: branch
    ("senior-3", "principal", "R1"),             # 资深客户经理: region
    ("principal-3", "general_manager", "HQ"),    # 总经理: HQ
    ("general_manager-3", "director", "HQ"),     # 总监: HQ
])
def test_qualification_goes_to_the_authority_level(bank, make_person, walk, grade, target, unit):
    make_person("cand", bank["units"]["T1"], grade=grade, performance=85, skill_test=80)
    db.session.commit()
    case = engine.create_promotion(_person("cand"), _person("cand"), target, "")
    assert case.step_unit.code == unit
    assert case.routing_reason is None
    holders = {"T1": ["appr_t1"], "B1": ["appr_b1"], "R1": ["appr_r1"], "HQ": ["appr_hq"]}[unit]
    assert [p.username for p in case.assignee_people()] == holders


def _person(username):
    from workflow.models import Person
    return db.session.query(Person).filter_by(username=username).one()


def test_hr_steps_follow_the_matrix(bank, walk):
    case = walk.file("emp", "senior")
    walk.to_panel(case)
    assert case.step_unit.code == "B1"
    assert [p.username for p in case.assignee_people("assign_panel")] == ["hr_b1"]


def test_vacancy_goes_one_level_up_and_says_why(bank, make_person):
    t3 = bank["units"]["T3"]          # no approver at T3, none at B2: up to R1
    make_person("ningbo", t3, grade="assistant-3", performance=85, skill_test=80)
    make_person("sup_t3", t3, roles=["supervisor@T3"])
    db.session.commit()
    case = engine.create_promotion(_person("ningbo"), _person("ningbo"), "manager", "")
    assert case.step_unit.code == "R1"
    assert case.routing_reason == "vacancy"
    assert case.routing_from_unit.code == "T3"


def test_self_goes_one_level_up(bank, make_person):
    make_person("lead", bank["units"]["T2"], grade="assistant-3", performance=85, skill_test=80,
                roles=["approver@T2"])
    db.session.query(type(bank["emp"])).filter_by(username="appr_t2").one().roles.clear()
    db.session.commit()
    case = engine.create_promotion(_person("lead"), _person("lead"), "manager", "")
    assert (case.step_unit.code, case.routing_reason) == ("B1", "self")
    assert _person("lead") not in case.assignee_people()


def test_declared_conflict_reroutes(bank, walk):
    make = walk.file("emp2", "manager-2")       # a tier move: team T1
    assert make.step_unit.code == "T1"
    walk.act(make, "declare_conflict", "appr_t1", comment="申请人是我的亲属")
    assert (make.step_unit.code, make.routing_reason) == ("B1", "conflict")
    assert [p.username for p in make.assignee_people()] == ["appr_b1"]
    assert make.events[-1].action == "declare_conflict"


def test_exceptional_goes_one_level_higher(bank, walk):
    case = walk.file("emp2", "senior", exceptional=True)     # manager-1 -> senior-1 skips two tiers
    assert case.exceptional
    assert (case.step_unit.code, case.routing_reason) == ("R1", "exceptional")
    walk.act(case, "qualify", "appr_r1")
    assert case.step_unit.code == "R1"
    assert [p.username for p in case.assignee_people("assign_panel")] == ["hr_r1"]


def test_exceptional_at_the_top_stays_there(bank, make_person, walk):
    make_person("gm", bank["units"]["T1"], grade="general_manager-1", performance=90, skill_test=90)
    db.session.commit()
    case = engine.create_promotion(_person("gm"), _person("gm"), "director", "", exceptional=True)
    assert case.step_unit.code == "HQ"


def test_nobody_up_to_the_root_refuses_creation(bank):
    for username in ("appr_t1", "appr_b1", "appr_r1", "appr_hq"):
        _person(username).roles.clear()
    db.session.commit()
    with pytest.raises(Refused, match="nobody"):
        engine.create_promotion(bank["emp2"], bank["emp2"], "manager-2", "")
    db.session.rollback()
    assert db.session.query(type(bank["emp"])).count() > 0
    from workflow.models import Case
    assert db.session.query(Case).count() == 0


def test_hr_vacancy_goes_up(bank, make_person, walk):
    t3 = bank["units"]["T3"]
    make_person("nb", t3, grade="manager-3", performance=85, skill_test=80)
    make_person("appr_b2", bank["units"]["B2"], roles=["approver@B2"])
    make_person("sup_t3", t3, roles=["supervisor@T3"])
    db.session.commit()
    case = engine.create_promotion(_person("nb"), _person("nb"), "senior", "")
    assert case.step_unit.code == "B2"
    engine.fire(case, "qualify", _person("appr_b2"))
    db.session.commit()
    assert (case.step_unit.code, case.routing_reason) == ("R1", "vacancy")


def test_supervisor_of_own_unit_is_scored_by_the_next_one_up(bank, make_person, walk):
    make_person("lead2", bank["units"]["T1"], grade="manager-3", performance=85, skill_test=80,
                roles=["supervisor@T1"])
    db.session.commit()
    case = engine.create_promotion(_person("lead2"), _person("lead2"), "senior", "")
    walk.to_panel(case)
    sups = {p.username for p in case.assignee_people("supervisor")}
    assert sups == {"sup_t1"}          # another holder at T1 first
    _person("sup_t1").roles.clear()
    db.session.commit()
    engine.fire(case, "declare_conflict", _person("hr_b1"), {"comment": "reroute"})
    db.session.commit()
    assert {p.username for p in case.assignee_people("supervisor")} == {"sup_b1"}


def test_deadline_is_in_working_days(bank, walk):
    case = walk.file()
    # 2026-03-02 is a Monday: five working days later is Monday 2026-03-09.
    assert case.deadline == dt.date(2026, 3, 9)
