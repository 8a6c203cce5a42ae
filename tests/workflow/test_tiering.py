"""Customer tiering runs (客户分级): classification and floors, proposals that need approval and where, who
decides them, determining (history, events, notifications), concurrency and the run's audit chain. The
engine, as the named people, committing each step."""

import pytest
from sqlalchemy import func, select

from tests.web.tiering_data import CORE, IMPORTANT, ORDINARY, add_customer
from workflow import audit, clock, tiering
from workflow.errors import Conflict, Forbidden, Invalid, Refused
from workflow.models import db, Event, Person
from workflow.models.customers import Customer, CustomerTier, TieringRun, TierProposal
from workflow.models.notifications import Notification


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


@pytest.fixture
def customers(bank):
    """T1/T2 (branch B1), T4 (branch B3): one of each kind of proposal."""
    made = {
        "up": add_customer("C-UP", "T1", "ordinary", IMPORTANT, manager="emp"),      # pending at B1
        "down": add_customer("C-DOWN", "T2", "important", CORE),                      # pending: leaving
        "auto": add_customer("C-AUTO", "T1", "ordinary", CORE, manager="emp2"),       # auto
        "same": add_customer("C-SAME", "T2", "core", CORE),                           # unchanged
        "gov": add_customer("C-GOV", "T1", None, ORDINARY, industry="government"),    # floor: auto to core
        "gone": add_customer("C-GONE", "T1", "ordinary", IMPORTANT, active=False),    # not in the run
        "far": add_customer("C-FAR", "T4", "ordinary", IMPORTANT),                    # pending at B3
    }
    db.session.commit()
    return made


def start(who="hr_b1", unit="B1", period="2026-H1"):
    p = person(who)
    run = tiering.start(p, bank_unit(unit), period)
    db.session.commit()
    return run


def bank_unit(code):
    from workflow.models import OrgUnit
    return db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def proposals(run):
    rows = db.session.scalars(select(TierProposal).where(TierProposal.run_id == run.id))
    return {p.customer.code: p for p in rows}


def last_event(run):
    return db.session.scalars(select(Event).where(Event.chain == f"tiering:{run.id}")
                              .order_by(Event.seq)).all()[-1]


def test_classification_scores_floors_and_states(customers):
    run = start()
    got = proposals(run)
    assert set(got) == {"C-UP", "C-DOWN", "C-AUTO", "C-SAME", "C-GOV"}     # B1's active customers only
    up = got["C-UP"]
    assert (up.proposed_tier, up.score, up.state) == ("important", 100.0, "pending")
    assert (got["C-DOWN"].proposed_tier, got["C-DOWN"].state) == ("core", "pending")
    auto = got["C-AUTO"]
    assert (auto.proposed_tier, auto.state, auto.step_unit_id) == ("core", "auto", None)
    assert got["C-SAME"].state == "unchanged"
    gov = got["C-GOV"]
    assert (gov.current_tier, gov.proposed_tier, gov.score, gov.state) == (None, "core", 0.0, "auto")
    assert gov.breakdown["by_score"] == "ordinary"
    assert gov.breakdown["floor"] == {"industry": "government", "at_least": "core"}
    assert [t["input"] for t in gov.breakdown["terms"]][:2] == ["monthly_revenue", "it_revenue"]
    assert got["C-UP"].step_unit.code == "B1" and got["C-DOWN"].step_unit.code == "B1"
    assert run.counts["states"] == {"unchanged": 1, "auto": 2, "pending": 2, "approved": 0, "rejected": 0}
    assert run.counts["matrix"]["ordinary"] == {"important": 1, "core": 1}
    assert run.counts["matrix"][""] == {"core": 1}
    ev = db.session.scalar(select(Event).where(Event.chain == f"tiering:{run.id}"))
    assert (ev.action, ev.to_state, ev.data["counts"]["customers"]) == ("create", "review", 5)


def test_step_unit_at_the_branch_and_the_approvers_told_once_per_step_unit(customers):
    run = start("admin", "HQ")
    got = proposals(run)
    assert got["C-FAR"].step_unit.code == "B3" and got["C-UP"].step_unit.code == "B1"
    told = db.session.execute(select(Person.username, Notification.params).join(
        Notification, Notification.recipient_id == Person.id)
        .where(Notification.kind == "tier_approval")).all()
    # appr_b1 holds approver at B1; nobody at B3, so the nearest above: appr_r2? none — appr_hq at HQ.
    by = {u: p for u, p in told}
    assert by["appr_b1"]["count"] == 2 and by["appr_b1"]["unit"] == "B1"
    assert by["appr_hq"]["count"] == 1 and by["appr_hq"]["unit"] == "B3"
    assert "appr_t1" not in by and len(told) == 2
    assert by["appr_b1"]["target"]["endpoint"] == "tiering.pending"


def test_only_hr_starts_and_overlapping_runs_are_refused(customers):
    with pytest.raises(Forbidden):
        tiering.start(person("appr_b1"), bank_unit("B1"), "2026-H1")
    with pytest.raises(Invalid):
        tiering.start(person("hr_b1"), bank_unit("B1"), "  ")
    run = start()
    for who, unit in (("hr_b1", "T1"), ("hr_r1", "R1"), ("hr_b1", "B1")):
        with pytest.raises(Refused) as exc:
            tiering.start(person(who), bank_unit(unit), "2026-H2")
        assert exc.value.details["run"] == run.id
        db.session.rollback()
    other = start("admin", "B3")                 # another branch's subtree does not overlap
    assert other.state == "review"


def test_who_decides_and_a_rejection_needs_a_comment(customers):
    run = start()
    up = proposals(run)["C-UP"]
    for who in ("hr_b1", "appr_t1", "admin"):
        with pytest.raises(Forbidden):
            tiering.decide(person(who), up, "approve")
    with pytest.raises(Refused):
        tiering.decide(person("appr_b1"), up, "reject", "  ")
    with pytest.raises(Invalid):
        tiering.decide(person("appr_b1"), up, "maybe")
    tiering.decide(person("appr_r1"), up, "approve", "ok", expected_version=run.version)   # from above
    db.session.commit()
    assert (up.state, up.decided_by.username, run.version) == ("approved", "appr_r1", 2)
    with pytest.raises(Conflict):
        tiering.decide(person("appr_b1"), up, "reject", "no")
    auto = proposals(run)["C-AUTO"]
    with pytest.raises(Conflict):
        tiering.decide(person("appr_b1"), auto, "approve")
    ev = last_event(run)
    assert (ev.action, ev.from_state, ev.to_state) == ("approve_tier", "review", "review")
    assert ev.data == {"proposal": up.id, "customer": "C-UP", "from": "ordinary", "to": "important"}
    assert run.counts["states"]["pending"] == 1 and run.counts["states"]["approved"] == 1


def test_a_stale_version_is_a_conflict(customers):
    run = start()
    with pytest.raises(Conflict):
        tiering.decide(person("appr_b1"), proposals(run)["C-UP"], "approve", expected_version=run.version + 1)
    with pytest.raises(Invalid):
        tiering.cancel(person("hr_b1"), run, "x", expected_version="1")
    with pytest.raises(Conflict):
        tiering.cancel(person("hr_b1"), run, "x", expected_version=0)


def test_bulk_decision_reports_every_proposal(customers):
    run = start("admin", "HQ")
    got = proposals(run)
    asked = [got["C-UP"].id, got["C-AUTO"].id, got["C-FAR"].id, 999999]
    results = tiering.decide_many(person("appr_b1"), run, asked, "approve", "ok")
    db.session.commit()
    by = {r["proposal"]: r["result"] for r in results}
    assert by == {got["C-UP"].id: "approved", got["C-AUTO"].id: "conflict", got["C-FAR"].id: "forbidden",
                  999999: "not_found"}
    with pytest.raises(Refused):
        tiering.decide_many(person("appr_b1"), run, None, "reject", "")
    results = tiering.decide_many(person("appr_b1"), run, None, "reject", "not now")     # all left to them
    db.session.commit()
    assert [(r["customer"], r["result"]) for r in results] == [("C-DOWN", "rejected")]
    assert got["C-FAR"].state == "pending"


def test_determine_refused_while_pending_then_applies(customers):
    run = start()
    hr = person("hr_b1")
    with pytest.raises(Forbidden):
        tiering.determine(person("appr_b1"), run)
    with pytest.raises(Refused):
        tiering.determine(hr, run)
    got = proposals(run)
    tiering.decide(person("appr_b1"), got["C-UP"], "approve")
    tiering.decide(person("appr_b1"), got["C-DOWN"], "reject", "keep them important")
    db.session.commit()
    customers["auto"].tier = "important"          # changed by hand since the run started: skipped
    db.session.commit()
    tiering.determine(hr, run, expected_version=run.version, today=clock.today())
    db.session.commit()
    c = {k: db.session.get(Customer, v.id) for k, v in customers.items()}
    assert (c["up"].tier, c["up"].tier_score, c["up"].tier_since) == ("important", 100.0, clock.today())
    assert c["down"].tier == "important" and c["auto"].tier == "important" and c["gov"].tier == "core"
    assert c["same"].tier_score == proposals(run)["C-SAME"].score
    assert run.state == "effective" and run.effective_on == clock.today()
    assert run.counts["determined"] == {"changed": 2, "stale": 1, "inactive": 0, "refreshed": 1,
                                        "grade_rule": 1}
    hist = db.session.scalars(select(CustomerTier).where(CustomerTier.run_id == run.id)).all()
    assert {(h.customer.code, h.from_tier, h.to_tier, h.source) for h in hist} == {
        ("C-UP", "ordinary", "important", "tiering"), ("C-GOV", None, "core", "tiering")}
    assert db.session.scalar(select(Event).where(Event.chain == f"customer:{c['up'].id}")).action == "tier"
    last = last_event(run)
    assert (last.action, last.from_state, last.to_state) == ("determine", "review", "effective")
    told = db.session.scalars(select(Notification).where(Notification.kind == "tier_changed")).all()
    assert len(told) == 1 and told[0].recipient.username == "emp"       # C-GOV is held by nobody
    p = told[0].params
    assert p["from"] == {"zh": "普通客户", "en": "Ordinary"} and p["to"]["en"] == "Important"
    assert p["grade_rule"] is True                                      # emp is a manager, not senior
    assert p["target"] == {"endpoint": "customers.detail", "values": {"customer_id": c["up"].id}}
    assert c["up"].manager.username == "emp"                            # not released
    with pytest.raises(Conflict):
        tiering.determine(hr, run)
    assert audit.verify().ok


def test_cancel(customers):
    run = start()
    with pytest.raises(Forbidden):
        tiering.cancel(person("appr_b1"), run, "no")
    with pytest.raises(Refused):
        tiering.cancel(person("hr_b1"), run, "")
    tiering.cancel(person("hr_b1"), run, "wrong inputs", expected_version=run.version)
    db.session.commit()
    assert run.state == "cancelled"
    assert db.session.scalar(select(func.count()).select_from(CustomerTier)) == 0
    with pytest.raises(Conflict):
        tiering.determine(person("hr_b1"), run)
    again = start()                      # a cancelled run no longer blocks the unit
    assert again.id != run.id
    assert audit.verify().ok


def test_a_lost_race_on_the_run_is_a_conflict(customers):
    run = start()
    got = proposals(run)
    db.session.execute(TieringRun.__table__.update().where(TieringRun.id == run.id)
                       .values(version=run.version + 5))
    with pytest.raises(Conflict):
        tiering.decide(person("appr_b1"), got["C-UP"], "approve")
    db.session.rollback()


def test_the_machine_is_data():
    assert tiering.MACHINE.events["determine"].transitions["review"][0].dest == "effective"
    assert tiering.MACHINE.events["approve_tier"].transitions["review"][0].dest is None
    assert not tiering.MACHINE.events["cancel"].transitions.get("effective")
