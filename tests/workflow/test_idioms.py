"""Committees (管理小组: 会签 with all or a pass ratio, 或签), 加签 before or after oneself, and 退回 to a step the
case passed through: engine actions with authority, four eyes and audit (workflow/signing.py)."""
import datetime as dt

import pytest

from workflow import engine, invariants, policy as policy_mod
from workflow.errors import Conflict, Forbidden, Invalid, Refused
from workflow.models import db, Person, RoleAssignment

from tests.workflow.test_engine import BANK, person, variant

QUALIFY_BY_COMMITTEE = {"qualification_review": ["senior"]}


@pytest.fixture
def committee(bank, make_person, tmp_path):
    """committee(sign, pass_ratio): activates bank_corporate with a 管理小组 deciding the qualification of
    promotions to senior; com1..com3 hold `committee` at B1, com_r1 at R1."""
    for i in (1, 2, 3):
        make_person(f"com{i}", bank["units"]["B1"], roles=["committee@B1"])
    make_person("com_r1", bank["units"]["R1"], roles=["committee@R1"])
    db.session.commit()

    def use(sign="all", pass_ratio=None):
        spec = {"name": {"zh": "客户经理管理小组", "en": "Management group"}, "sign": sign,
                "steps": QUALIFY_BY_COMMITTEE}
        if pass_ratio is not None:
            spec["pass_ratio"] = pass_ratio
        engine.activate_policy(variant(tmp_path, committee=spec), "committee")
        db.session.commit()
    return use


def deciders(case):
    return sorted(p.username for p in case.assignee_people("decide"))


def act(case, action, who, **data):
    engine.fire(case, action, person(who), data)
    db.session.commit()
    return case


def file():
    case = engine.create_promotion(person("emp"), person("emp"), "senior", "申请晋级")
    db.session.commit()
    return case


# --- committees ------------------------------------------------------------------------------------------

def test_a_committee_with_a_pass_ratio_passes_when_the_approvals_reach_it(committee):
    committee(pass_ratio="2/3")
    case = file()
    assert deciders(case) == ["com1", "com2", "com3"] and case.step_unit.code == "B1"
    act(case, "qualify", "com1", comment="同意")
    assert case.state == "qualification_review" and deciders(case) == ["com2", "com3"]
    act(case, "qualify", "com2")
    assert case.state == "panel_scoring"
    votes = [ev.data["committee"] for ev in case.events if ev.action == "qualify"]
    assert [(v["vote"], v["approvals"], v["rejections"], v["members"], v["needed"]) for v in votes] == [
        ("approve", 1, 0, 3, 2), ("approve", 2, 0, 3, 2)]
    assert votes[0]["name"] == "客户经理管理小组" and votes[0]["pass_ratio"] == "2/3"
    assert invariants.check() == []


def test_a_committee_with_a_pass_ratio_fails_once_it_cannot_reach_it(committee):
    committee(pass_ratio="2/3")
    case = file()
    act(case, "reject", "com1", comment="业绩不足")           # one no of three: two yes may still pass it
    assert case.state == "qualification_review" and deciders(case) == ["com2", "com3"]
    assert case.events[-1].data["vote"] == "reject"
    with pytest.raises(Refused):                                # a vote against needs a comment too
        act(case, "reject", "com2")
    db.session.rollback()
    act(case, "reject", "com2", comment="不同意")
    assert case.state == "rejected"
    assert case.events[-1].data["committee"] == {
        "name": "客户经理管理小组", "sign": "all", "pass_ratio": "2/3", "members": 3, "needed": 2,
        "vote": "reject", "approvals": 0, "rejections": 2}
    with pytest.raises(Conflict):
        act(case, "qualify", "com3")
    assert invariants.check() == []


def test_a_committee_where_all_must_approve_is_rejected_by_one(committee):
    committee(sign="all")
    case = file()
    act(case, "qualify", "com1")
    act(case, "qualify", "com2")
    assert case.state == "qualification_review" and deciders(case) == ["com3"]
    act(case, "reject", "com3", comment="否决")
    assert case.state == "rejected"


def test_a_committee_where_all_must_approve_passes_with_the_last(committee):
    committee(sign="all")
    case = file()
    for who in ("com3", "com1", "com2"):
        act(case, "qualify", who)
    assert case.state == "panel_scoring"
    assert case.events[-1].data["committee"]["approvals"] == 3


def test_a_committee_where_any_one_decides(committee):
    committee(sign="any")
    case = file()
    act(case, "qualify", "com2")
    assert case.state == "panel_scoring"


def test_only_committee_members_vote_and_other_levels_keep_the_approver(committee, make_person):
    committee(pass_ratio=0.67)
    case = file()
    with pytest.raises(Forbidden):
        act(case, "qualify", "appr_b1")
    db.session.rollback()
    make_person("jr", bank_unit("T1"), grade="assistant-3", performance=90, skill_test=80)
    db.session.commit()
    other = engine.create_promotion(person("jr"), person("jr"), "manager", "")
    assert deciders(other) == ["appr_t1"]       # the committee decides senior only


def bank_unit(code):
    from workflow.models import OrgUnit
    return db.session.query(OrgUnit).filter_by(code=code).one()


def test_a_committee_with_nobody_at_the_unit_goes_up(committee):
    committee(sign="any")
    for ra in db.session.query(RoleAssignment).filter_by(role="committee", unit_id=bank_unit("B1").id):
        db.session.delete(ra)
    db.session.commit()
    case = file()
    assert deciders(case) == ["com_r1"] and case.routing_reason == "vacancy"


@pytest.mark.parametrize("spec, path", [
    ({"name": {"zh": "小组", "en": "G"}, "sign": "any", "pass_ratio": "2/3", "steps": QUALIFY_BY_COMMITTEE},
     "committee.pass_ratio"),
    ({"name": {"zh": "小组", "en": "G"}, "pass_ratio": "3/2", "steps": QUALIFY_BY_COMMITTEE}, "committee.pass_ratio"),
    ({"name": {"zh": "小组", "en": "G"}, "pass_ratio": "two thirds", "steps": QUALIFY_BY_COMMITTEE},
     "committee.pass_ratio"),
    ({"name": {"zh": "小组", "en": "G"}, "steps": {"panel_scoring": ["senior"]}}, "committee.steps.panel_scoring"),
    ({"name": {"zh": "小组", "en": "G"}, "steps": {"qualification_review": ["captain"]}},
     "committee.steps.qualification_review[0]"),
    ({"name": {"zh": "小组", "en": "G"}, "steps": {}}, "committee.steps"),
    ({"name": {"zh": "小组"}, "steps": QUALIFY_BY_COMMITTEE}, "committee.name.en"),
    ({"name": {"zh": "小组", "en": "G"}, "sign": "most", "steps": QUALIFY_BY_COMMITTEE}, "committee.sign"),
])
def test_a_bad_committee_is_refused_with_its_key_path(tmp_path, spec, path):
    with pytest.raises(policy_mod.PolicyError) as err:
        variant(tmp_path, committee=spec)
    assert err.value.path == path


def test_quzhou_gives_the_qualification_to_middle_and_senior_to_its_management_group():
    pol = policy_mod.load_file("mobile_quzhou")
    assert pol.step_role("qualification_review", "intermediate") == "committee"
    assert pol.step_role("qualification_review", "junior") == "approver"
    assert pol.committee.needed(3) == 2 and pol.committee.needed(5) == 4 and pol.committee.needed(1) == 1
    assert pol.to_json()["committee"]["pass_ratio"] == "2/3"
    assert policy_mod.load_file(str(BANK)).committee is None


# --- 加签 -------------------------------------------------------------------------------------------------

def test_a_signer_added_before_signs_first_then_the_step_comes_back(bank):
    case = file()
    act(case, "add_signer", "appr_b1", person="appr_r1", position="before", comment="请区域把关")
    assert deciders(case) == ["appr_r1"]
    ev = case.events[-1]
    assert ev.action == "add_signer" and ev.to_state == "qualification_review"
    assert ev.data["added_signer"]["person"] == "appr_r1" and ev.data["added_signer"]["position"] == "before"
    with pytest.raises(Forbidden):                 # the adder waits for the added signer
        act(case, "qualify", "appr_b1")
    db.session.rollback()
    act(case, "qualify", "appr_r1", comment="同意")
    assert case.state == "qualification_review" and deciders(case) == ["appr_b1"]
    act(case, "qualify", "appr_b1")
    assert case.state == "panel_scoring"
    assert invariants.check() == []


def test_a_signer_added_after_signs_once_the_adder_has(bank):
    case = file()
    act(case, "add_signer", "appr_b1", person="appr_hq", position="after")
    assert deciders(case) == ["appr_b1"]
    act(case, "qualify", "appr_b1")
    assert case.state == "qualification_review" and deciders(case) == ["appr_hq"]
    assert case.events[-1].data["partial"] is True
    act(case, "qualify", "appr_hq")
    assert case.state == "panel_scoring"
    assert invariants.check() == []


def test_an_added_signer_may_reject(bank):
    case = file()
    act(case, "add_signer", "appr_b1", person="appr_r1", position="before")
    act(case, "reject", "appr_r1", comment="不符合")
    assert case.state == "rejected"


@pytest.mark.parametrize("who, why", [
    ("appr_t1", ("does not hold %(role)s at %(unit)s or above", "B1")),     # below the step's unit
    ("hr_r1", ("does not hold %(role)s at %(unit)s or above", "B1")),       # another role
    ("appr_b1", ("cannot add yourself", None)),
    ("nobody", ("no person '%(username)s'", None)),
])
def test_an_added_signer_must_be_able_to_act_on_the_step(bank, who, why):
    case = file()
    with pytest.raises(Refused) as err:
        act(case, "add_signer", "appr_b1", person=who, position="after")
    assert why[0] in err.value.message.msgid and err.value.details["field"] == "person"
    assert why[1] is None or err.value.message.params["unit"] == why[1]
    db.session.rollback()
    db.session.refresh(case)
    assert case.version == 1 and deciders(case) == ["appr_b1"]


def test_an_added_signer_must_not_be_excluded_by_four_eyes(bank, walk):
    case = file()
    walk.to_hr(case)
    db.session.add(RoleAssignment(person=person("appr_b1"), role="hr", unit=bank_unit("R1")))
    db.session.commit()
    with pytest.raises(Refused) as err:    # appr_b1 qualified the case: not also its HR approval
        act(case, "add_signer", "hr_b1", person="appr_b1", position="after")
    assert "may not act on this step" in err.value.message.msgid
    db.session.rollback()
    with pytest.raises(Invalid):
        act(case, "add_signer", "hr_b1", person="hr_r1", position=None)


def test_an_added_signer_twice_is_refused(bank):
    case = file()
    act(case, "add_signer", "appr_b1", person="appr_r1", position="after")
    with pytest.raises(Refused):
        act(case, "add_signer", "appr_b1", person="appr_r1", position="before")


# --- 退回 -------------------------------------------------------------------------------------------------

def test_send_back_to_qualification_routes_it_afresh_and_keeps_the_four_eyes_record(bank, walk):
    case = file()
    walk.to_hr(case)
    composite = case.composite
    act(case, "send_back", "hr_b1", to_step="qualification_review", comment="学历材料需复核")
    assert case.state == "qualification_review" and deciders(case) == ["appr_b1"]
    ev = case.events[-1]
    assert ev.data["to_step"] == "qualification_review" and ev.data["decision"] is True
    assert ev.comment == "学历材料需复核"
    act(case, "qualify", "appr_b1")                 # the panel's scores stand: straight on to HR
    assert case.state == "hr_approval" and case.composite == composite
    assert deciders(case) == ["hr_b1"]
    assert invariants.check() == []


def test_send_back_is_refused_to_a_step_the_case_did_not_pass(bank, make_person, walk, tmp_path):
    case = file()
    walk.to_hr(case)
    for target, error in (("panel_scoring", Refused), ("hr_approval", Refused), ("returned", Refused),
                          (None, Refused)):
        with pytest.raises(error):
            act(case, "send_back", "hr_b1", to_step=target, comment="x")
        db.session.rollback()
    with pytest.raises(Forbidden):
        act(case, "send_back", "appr_b1", to_step="qualification_review", comment="x")


def test_lifecycle_cases_send_back_and_add_signers(bank):
    case = engine.open_case("demotion", person("hr_b1"), person("emp"), reason="recompete")
    db.session.commit()
    assert deciders(case) == ["appr_b1"]
    act(case, "add_signer", "appr_b1", person="appr_r1", position="after")
    act(case, "confirm_grounds", "appr_b1")
    assert case.state == "review" and deciders(case) == ["appr_r1"]
    act(case, "confirm_grounds", "appr_r1")
    assert case.state == "notice"
    later = case.deadline + dt.timedelta(days=1)
    engine.fire(case, "close_notice", None, {}, today=later)
    db.session.commit()
    assert case.state == "hr_approval"
    engine.fire(case, "send_back", person("hr_b1"), {"to_step": "review", "comment": "理由不充分"}, today=later)
    db.session.commit()
    assert case.state == "review" and deciders(case) == ["appr_b1"]   # routed afresh: no added signer
    assert invariants.check() == []
