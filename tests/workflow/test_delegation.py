"""Delegation (代理), 转办 (hand_over) and 抄送 (copy): authority, exclusions, audit data and invariants."""
import datetime as dt

import pytest

from tests.conftest import TODAY
from workflow import authority, clock, delegation, engine, invariants, reports
from workflow.errors import Conflict, Forbidden, Refused
from workflow.machines import RULEBOOKS, rulebook
from workflow.models import db, Conflict as ConflictRow, Event, Person


def p(username):
    return db.session.query(Person).filter_by(username=username).one()


def can(who, case, action):
    return authority.can(p(who), case, action, rulebook(case.kind))


@pytest.fixture
def deputy(bank, make_person):
    """A colleague at the branch B1 who holds no role."""
    person = make_person("deputy", bank["units"]["B1"])
    db.session.commit()
    return person


def delegate(principal, to, days=10, start=0):
    d = delegation.create(p(principal), to, TODAY + dt.timedelta(days=start),
                          TODAY + dt.timedelta(days=start + days), "年假")
    db.session.commit()
    return d


def test_every_kind_has_hand_over_and_copy():
    for rb in RULEBOOKS.values():
        assert rb.actors["hand_over"] == "hand_over" and rb.actors["copy"] == "copy"
        assert set(rb.sources("hand_over")) == set(rb.states) - rb.terminal
        assert set(rb.sources("copy")) == set(rb.states)
        assert "copy" in rb.version_free and "hand_over" not in rb.version_free


def test_delegate_acts_on_behalf_in_the_principals_capacity(walk, deputy):
    case = walk.file()                           # emp -> senior-1: qualified by approver@B1
    assert not can("deputy", case, "qualify")
    d = delegate("appr_b1", "deputy")
    # the principal's chain records the delegation
    ev = db.session.query(Event).filter_by(chain=f"person:{p('appr_b1').id}", action="delegate").one()
    assert ev.data["delegate"] == "deputy" and ev.data["delegation"] == d.id and ev.role == "approver"
    assert case.id in db.session.scalars(reports.inbox_query(p("deputy")).with_only_columns(
        db.text("cases.id"))).all()
    assert delegation.on_behalf_by_case(p("deputy"), [case.id]) == {case.id: [p("appr_b1")]}
    assert authority.can_see(p("deputy"), case)
    assert [a["principal"].username for a in delegation.acting_on(case)] == ["appr_b1"]
    assert can("deputy", case, "qualify")
    walk.act(case, "qualify", "deputy", comment="代为审核")
    ev = case.events[-1]
    assert (ev.actor, ev.role, ev.unit) == ("deputy", "approver", "B1")
    assert ev.data["on_behalf_of"] == "appr_b1" and ev.data["on_behalf_of_id"] == p("appr_b1").id
    assert case.state == "panel_scoring"
    assert invariants.check() == []


def test_delegation_follows_its_dates_and_revocation(walk, deputy):
    case = walk.file()
    d = delegate("appr_b1", "deputy", days=3, start=2)
    assert not can("deputy", case, "qualify")             # not started yet
    clock.fix_today(TODAY + dt.timedelta(days=2))
    assert can("deputy", case, "qualify")
    clock.fix_today(TODAY + dt.timedelta(days=6))
    assert not can("deputy", case, "qualify")             # ended
    clock.fix_today(TODAY + dt.timedelta(days=3))
    delegation.revoke(d, p("appr_b1"), "提前返岗")
    db.session.commit()
    assert not can("deputy", case, "qualify")
    assert d.status(clock.today()) == "revoked"
    chain = f"person:{p('appr_b1').id}"
    ev = db.session.query(Event).filter_by(chain=chain, action="revoke_delegation").one()
    assert ev.actor == "appr_b1" and ev.data["delegation"] == d.id
    with pytest.raises(Conflict):
        delegation.revoke(d, p("appr_b1"))
    other = delegation.create(p("appr_t1"), "emp2", clock.today(), clock.today())
    with pytest.raises(Forbidden):
        delegation.revoke(other, p("panel1"))   # neither party nor HR or admin over the principal


@pytest.mark.parametrize("principal, to, start, days, error, words", [
    ("appr_b1", "appr_b1", 0, 5, Refused, "oneself"),
    ("emp", "emp2", 0, 5, Forbidden, "approver or HR"),          # holds no role of their own
    ("appr_t1", "far", 0, 5, Refused, "neither within nor above"),
    ("appr_b1", "deputy", -1, 5, Refused, "past"),
    ("appr_b1", "deputy", 0, 400, Refused, "at most"),
])
def test_delegation_refusals(bank, deputy, principal, to, start, days, error, words):
    with pytest.raises(error, match=words):
        delegation.create(p(principal), to, TODAY + dt.timedelta(days=start),
                          TODAY + dt.timedelta(days=start + days))


def test_overlaps_and_chains_are_refused(bank, deputy):
    delegate("appr_b1", "deputy", days=10)
    with pytest.raises(Refused, match="already delegate"):
        delegation.create(p("appr_b1"), "sup_b1", TODAY + dt.timedelta(days=5), TODAY + dt.timedelta(days=20))
    delegate("appr_b1", "sup_b1", days=5, start=11)               # after the first one: fine
    with pytest.raises(Refused, match="ends"):
        delegation.create(p("hr_b1"), "deputy", TODAY + dt.timedelta(days=3), TODAY)
    # appr_b1 has handed their duties away: nobody may delegate to them meanwhile
    with pytest.raises(Refused, match="no chains"):
        delegation.create(p("hr_b1"), "appr_b1", TODAY, TODAY + dt.timedelta(days=2))
    # hr_b1 acts for appr_t1; hr_b1 may not pass that on
    delegate("appr_t1", "hr_b1", days=4)
    with pytest.raises(Refused, match="no chains"):
        delegation.create(p("hr_b1"), "panel1", TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=2))


def test_delegate_with_a_conflict_is_refused(walk, bank, deputy):
    case = walk.file("emp2", target="manager-2")      # qualified by approver@T1
    delegate("appr_t1", "emp2")                      # a colleague, but the applicant here
    decision = can("emp2", case, "qualify")
    assert not decision and "applicant" in decision.reason
    case2 = walk.file()                              # emp's case, qualified at B1
    delegate("appr_b1", "deputy")
    db.session.add(ConflictRow(case=case2, person=deputy, reason="亲属"))
    db.session.commit()
    decision = can("deputy", case2, "qualify")
    assert not decision and "conflict" in decision.reason


def test_four_eyes_binds_delegate_and_principal(walk, bank, deputy):
    case = walk.file()
    delegate("appr_b1", "deputy")
    delegate("hr_b1", "panel5", days=3)
    walk.act(case, "qualify", "deputy")
    # deputy decided a step: no other step of this case for them, and appr_b1 is bound too
    excluded = engine.exclusions(case, "hr_approval")
    assert excluded[deputy.id] == "conflict" and excluded[p("appr_b1").id] == "conflict"
    walk.act(case, "assign_panel", "panel5", members=["panel1", "panel2", "panel3"])   # for hr_b1
    assert case.events[-1].data["on_behalf_of"] == "hr_b1" and case.events[-1].role == "hr"
    assert invariants.check() == []


def test_hand_over_within_the_matrix(walk, bank):
    case = walk.file("emp2", target="manager-2")       # at approver@T1
    with pytest.raises(Refused, match="comment"):
        walk.act(case, "hand_over", "appr_t1", to="appr_b1")
    with pytest.raises(Refused, match="does not hold approver"):
        walk.act(case, "hand_over", "appr_t1", to="appr_t2", comment="出差")    # a sibling team
    with pytest.raises(Refused, match="does not hold approver"):
        walk.act(case, "hand_over", "appr_t1", to="hr_b1", comment="出差")
    with pytest.raises(Refused, match="applicant"):
        walk.act(case, "hand_over", "appr_t1", to="emp2", comment="出差")
    with pytest.raises(Forbidden):
        walk.act(case, "hand_over", "appr_b1", to="appr_r1", comment="出差")   # not an assignee
    walk.act(case, "hand_over", "appr_t1", to="appr_b1", comment="出差一周")
    ev = case.events[-1]
    assert ev.data["hand_over"] == {"from": "appr_t1", "to": "appr_b1", "duty": "decide", "role": "approver",
                                    "unit": "B1"}
    assert (ev.role, ev.unit, ev.from_state, ev.to_state) == ("approver", "T1", "qualification_review",
                                                              "qualification_review")
    assert [a.person.username for a in case.assignments] == ["appr_b1"]
    assert not can("appr_t1", case, "qualify")
    # the step is routed afresh (roles changed elsewhere): the handed-over task stays where it went
    engine.fire(case, "reroute", None, {"comment": "roles changed"})
    db.session.commit()
    assert [a.person.username for a in case.assignments] == ["appr_b1"]
    walk.act(case, "qualify", "appr_b1")
    assert case.state == "hr_approval" or case.state == "panel_scoring"
    assert invariants.check() == []


def test_copy_is_for_information_only(walk, bank):
    case = walk.file()
    assert not authority.can_see(p("panel5"), case)
    with pytest.raises(Forbidden, match="only a current assignee or HR"):
        walk.act(case, "copy", "emp", to="panel5")
    walk.act(case, "copy", "appr_b1", to="panel5", comment="供参考")
    version = case.version
    ev = case.events[-1]
    assert ev.data["copied_to"] == "panel5" and ev.role == "approver"
    assert authority.can_see(p("panel5"), case)
    assert db.session.scalars(delegation.copied_to(p("panel5"))).all() == [case]
    for action in ("qualify", "reject", "withdraw", "hand_over", "copy"):
        decision = can("panel5", case, action)
        assert not decision and "for information only" in decision.reason
    with pytest.raises(Refused, match="already copied"):
        walk.act(case, "copy", "hr_b1", to="panel5")
    walk.act(case, "copy", "hr_b1", to="appr_hq")       # HR over the unit, not an assignee
    assert case.events[-1].role == "hr" and case.version == version + 1
    assert invariants.check() == []


def test_countersign_on_behalf_counts_the_principals_signature_once(walk, bank, deputy, make_person, tmp_path):
    from tests.workflow.test_engine import variant
    engine.activate_policy(variant(tmp_path, **{"steps.qualification_review.sign": "all"}), "countersign")
    make_person("appr_b1b", bank["units"]["B1"], roles=["approver@B1"])
    db.session.commit()
    case = walk.file()
    delegate("appr_b1", "deputy")
    delegate("appr_b1b", "deputy")                    # one delegate for both signers
    walk.act(case, "qualify", "deputy")
    assert case.state == "qualification_review"
    signed_for = case.events[-1].data["on_behalf_of"]
    assert {p.username for p in case.assignee_people("decide")} == {"appr_b1", "appr_b1b"} - {signed_for}
    # the deputy may not give the second signature too, nor the principal sign again
    decision = can("deputy", case, "qualify")
    assert not decision and "already signed" in decision.reason
    assert not can(signed_for, case, "qualify")
    other = ({"appr_b1", "appr_b1b"} - {signed_for}).pop()
    walk.act(case, "qualify", other)
    assert case.state == "panel_scoring"
    assert invariants.check() == []


def test_a_rejection_on_behalf_overturned_on_appeal_binds_delegate_and_principal(walk, deputy):
    case = walk.file()
    delegate("appr_b1", "deputy")
    walk.act(case, "reject", "deputy", comment="业绩不足")
    walk.act(case, "appeal", "emp", statement="业绩证明已补充")
    walk.act(case, "reinstate", "appr_r1", comment="材料齐全")
    assert case.state == "qualification_review"
    excluded = engine.exclusions(case, "qualification_review")
    assert excluded[deputy.id] == "conflict" and excluded[p("appr_b1").id] == "conflict"
    assert "appr_b1" not in [a.person.username for a in case.assignments]
    assert invariants.check() == []


def test_a_delegate_fails_a_probation_into_a_dismissal_in_hrs_authority(walk, bank, deputy, make_person):
    from workflow.models import Case
    newbie = make_person("newbie", bank["units"]["T1"], status="probation", hired_on=dt.date(2025, 3, 15),
                         skill_test=72)
    db.session.commit()
    case = engine.open_probation(newbie, p("hr_b1"))
    db.session.commit()
    walk.act(case, "open_evaluation", "hr_b1")
    walk.act(case, "evaluate", "sup_t1", score=60, comment="未达要求")
    delegate("hr_b1", "deputy")                      # deputy holds no HR role of their own
    walk.act(case, "fail", "deputy", outcome="dismissal", comment="未达到岗位要求")
    assert case.events[-1].data["on_behalf_of"] == "hr_b1" and case.events[-1].role == "hr"
    follow = db.session.query(Case).filter_by(kind="dismissal", employee_id=newbie.id).one()
    created = follow.events[0]
    assert follow.filed_by.username == "hr_b1"
    assert (created.actor, created.role, created.data["on_behalf_of"]) == ("deputy", "hr", "hr_b1")
    assert invariants.check() == []
