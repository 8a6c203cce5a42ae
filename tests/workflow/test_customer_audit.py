"""The audit chains of customers, tiering runs and leads: verified with the others; an altered, removed or
foreign event is found; a run's or lead's state must be where its last event left it."""
import datetime as dt

from sqlalchemy import delete, update

from workflow import audit, customers, engine
from workflow.models import db, Event
from workflow.models.customers import Customer, Lead, TieringRun


def customer_with_history(bank) -> Customer:
    _, pol = engine.active_policy()
    c = Customer(code="C-1", name="宁波某贸易公司", industry="trade", unit=bank["units"]["T1"], inputs={"credit": 90})
    db.session.add(c)
    db.session.flush()
    customers.record(c, "create", bank["hr_b1"], data={"code": c.code})
    customers.set_tier(c, "core", score=45.0, source="import", actor=bank["hr_b1"])
    customers.assign(c, bank["emp"], bank["hr_b1"], pol=pol)
    customers.release(c, bank["hr_b1"], reason="manual", comment="调岗")
    db.session.commit()
    return c


def test_a_customers_chain_is_verified_and_its_head_moves(bank):
    c = customer_with_history(bank)
    assert c.version == 4 and c.head_mac is not None
    assert [e.action for e in db.session.query(Event).filter_by(chain=f"customer:{c.id}").order_by(Event.seq)] == [
        "create", "tier", "assign", "release"]
    assert c.released_from_id == bank["emp"].id and c.released_reason == "manual" and c.manager_id is None
    report = audit.verify()
    assert report.ok, report.problems


def test_an_altered_or_removed_customer_event_is_found(bank):
    c = customer_with_history(bank)
    db.session.execute(update(Event).where(Event.chain == f"customer:{c.id}", Event.seq == 2)
                       .values(data={"from": None, "to": "important"}))
    db.session.commit()
    report = audit.verify()
    assert not report.ok and report.first_bad["chain"] == f"customer:{c.id}" and report.first_bad["seq"] == 2
    db.session.execute(delete(Event).where(Event.chain == f"customer:{c.id}", Event.seq >= 2))
    db.session.commit()
    assert f"customer:{c.id} #4: the chain's last events were removed or replaced" in audit.verify().problems


def test_a_run_or_lead_state_must_match_its_last_event(bank):
    pv, _ = engine.active_policy()
    run = TieringRun(unit=bank["units"]["B1"], period="2026-H1", state="review", policy_version=pv,
                     created_by=bank["hr_b1"])
    lead = Lead(title="某公司专线", unit=bank["units"]["T1"], owner=bank["emp"], lead_class="A", state="open",
                opened_on=dt.date(2026, 3, 2), assigned_on=dt.date(2026, 3, 2), deadline=dt.date(2026, 3, 9))
    db.session.add_all([run, lead])
    db.session.flush()
    audit.append(run, action="create", actor=bank["hr_b1"], to_state="review")
    audit.append(lead, action="create", actor=bank["emp"], to_state="open")
    db.session.commit()
    assert audit.verify().ok
    db.session.execute(update(Lead).where(Lead.id == lead.id).values(state="won"))
    db.session.commit()
    problems = audit.verify().problems
    assert any(p.startswith(f"lead:{lead.id} #1") and "'won'" in p for p in problems), problems


def test_an_event_of_no_known_chain_is_reported(bank):
    customer_with_history(bank)
    db.session.execute(update(Event).where(Event.seq == 1, Event.chain.like("customer:%")).values(chain="customer:999"))
    db.session.commit()
    assert "1 event(s) belong to no known chain" in "\n".join(audit.verify().problems)
