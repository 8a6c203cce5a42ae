"""Sales leads (跟单客户): deadlines per class, who may open, follow and reassign a lead, the overdue flag
that tick raises (once, telling the owner and the sales managers once), reassignment, stale versions and
the lead's audit chain. No requests: the engine, as the named people, committing each step."""
import datetime as dt

import pytest
import yaml
from sqlalchemy import select

from workflow import audit, engine, leads, policy as policy_mod
from workflow.errors import Conflict, Forbidden, Invalid, Refused
from workflow.machines import RULEBOOKS
from workflow.machines import leads as machine
from workflow.models import db, Event, Person
from workflow.models.customers import Lead
from workflow.models.notifications import Notification

TODAY = dt.date(2026, 3, 2)
BANK_TEXT = (policy_mod.POLICY_DIR / "bank_corporate.yaml").read_text(encoding="utf-8")


def person(username):
    return db.session.scalar(select(Person).where(Person.username == username))


def open_lead(bank, cls="A", owner="emp", actor="sup_t1", unit="T1", today=TODAY, **kw):
    lead = leads.create(person(actor), kw.pop("title", "杭州某公司 代发工资"), bank["units"][unit], owner, cls,
                        today=today, **kw)
    db.session.commit()
    return lead


def notes(username, kind):
    return db.session.scalars(select(Notification).where(
        Notification.recipient_id == person(username).id, Notification.kind == kind)).all()


def events(lead):
    return db.session.scalars(select(Event).where(Event.chain == f"lead:{lead.id}").order_by(Event.seq)).all()


def test_the_machine_is_data_and_no_case_kind():
    assert "lead" not in RULEBOOKS
    assert machine.can_fire("open", "flag_overdue") and not machine.can_fire("overdue", "flag_overdue")
    assert not any(machine.can_fire(s, a) for s in machine.TERMINAL for a in machine.ACTORS)


@pytest.mark.parametrize("cls, days", [("A", 7), ("B", 15), ("C", 30)])
def test_the_deadline_is_the_class_days_from_assignment(bank, cls, days):
    lead = open_lead(bank, cls)
    assert (lead.state, lead.assigned_on, lead.deadline) == ("open", TODAY, TODAY + dt.timedelta(days=days))
    [ev] = events(lead)
    assert (ev.action, ev.from_state, ev.to_state) == ("create", None, "open")
    assert (ev.data["owner"], ev.data["class"]) == ("emp", cls)
    assert ev.data["deadline"] == lead.deadline.isoformat()
    assert len(notes("emp", "lead_assigned")) == 1


def test_a_person_opens_a_lead_for_themselves_at_their_own_unit_only(bank):
    lead = open_lead(bank, "B", owner=None, actor="emp")
    assert lead.owner.username == "emp" and not notes("emp", "lead_assigned")
    with pytest.raises(Forbidden):
        leads.create(person("emp"), "x", bank["units"]["T1"], "emp2", "A")
    with pytest.raises(Forbidden):
        leads.create(person("emp"), "x", bank["units"]["T2"], None, "A")
    db.session.rollback()


def test_the_sales_manager_gives_leads_to_active_people_of_the_subtree_only(bank):
    open_lead(bank, "A", owner="weak", actor="sup_b1", unit="B1")
    with pytest.raises(Refused) as exc:
        leads.create(person("sup_t1"), "x", bank["units"]["T1"], "weak", "A")
    assert exc.value.details["field"] == "owner"
    with pytest.raises(Forbidden):          # sup_t1 is no sales manager of T2
        leads.create(person("sup_t1"), "x", bank["units"]["T2"], "weak", "A")
    with pytest.raises(Forbidden):          # an approver is no sales manager under the bank policy
        leads.create(person("appr_b1"), "x", bank["units"]["T1"], "emp", "A")
    db.session.rollback()


@pytest.mark.parametrize("fields, field", [
    ({"title": ""}, "title"), ({"lead_class": "Z"}, "lead_class"), ({"owner": "nobody"}, "owner"),
    ({"customer": "NO-SUCH"}, "customer"), ({"note": 5}, "note")])
def test_bad_input_names_the_field_and_changes_nothing(bank, fields, field):
    args = {"title": "x", "owner": "emp", "lead_class": "A", **fields}
    with pytest.raises(Invalid) as exc:
        leads.create(person("sup_t1"), args.pop("title"), bank["units"]["T1"], args.pop("owner"),
                     args.pop("lead_class"), **args)
    db.session.rollback()
    assert exc.value.details["field"] == field
    assert db.session.scalar(select(db.func.count(Lead.id))) == 0


def test_flag_overdue_flags_once_and_tells_the_owner_and_the_sales_manager_once(bank):
    a, c = open_lead(bank, "A"), open_lead(bank, "C")
    assert leads.flag_overdue(a.deadline) == (0, 0)          # due today is not late
    day = a.deadline + dt.timedelta(days=1)
    assert leads.flag_overdue(day) == (1, 2)
    db.session.commit()
    assert (a.state, c.state) == ("overdue", "open")
    assert leads.flag_overdue(day + dt.timedelta(days=3)) == (0, 0)
    db.session.commit()
    key = f"lead_overdue:{a.id}:{a.deadline.isoformat()}"
    assert [n.once_key for n in notes("emp", "lead_overdue")] == [key]
    assert len(notes("sup_t1", "lead_overdue")) == 1 and not notes("sup_b1", "lead_overdue")
    ev = events(a)[-1]
    assert (ev.action, ev.actor, ev.from_state, ev.to_state) == ("flag_overdue", "system", "open", "overdue")
    assert audit.verify().ok


def test_the_sales_managers_are_found_at_the_nearest_unit_above(bank, make_person):
    make_person("t3_emp", bank["units"]["T3"], grade="manager-1")
    db.session.commit()
    lead = open_lead(bank, "A", owner="t3_emp", actor="hr_r1", unit="T3")
    assert leads.sales_managers(lead.unit, "supervisor") == []      # none at T3, B2, R1 or HQ
    lead = open_lead(bank, "A", owner="weak", actor="hr_b1", unit="T2")
    leads.flag_overdue(TODAY + dt.timedelta(days=8))
    db.session.commit()
    assert len(notes("sup_b1", "lead_overdue")) == 1 and not notes("sup_t1", "lead_overdue")


def test_reassign_resets_the_deadline_from_today_and_tells_the_new_owner(bank):
    lead = open_lead(bank, "B")
    later = TODAY + dt.timedelta(days=20)
    leads.flag_overdue(later)
    db.session.commit()
    with pytest.raises(Forbidden):
        leads.reassign(person("emp"), lead, "emp2", today=later)
    leads.reassign(person("sup_t1"), lead, "emp2", "换人跟进", version=lead.version, today=later)
    db.session.commit()
    assert (lead.state, lead.owner.username, lead.assigned_on, lead.deadline) == (
        "open", "emp2", later, later + dt.timedelta(days=15))
    [n] = notes("emp2", "lead_assigned")
    assert n.params["target"] == {"endpoint": "leads.detail", "values": {"lead_id": lead.id}}
    ev = events(lead)[-1]
    assert (ev.from_state, ev.to_state, ev.data["from_owner"], ev.data["owner"]) == (
        "overdue", "open", "emp", "emp2")
    with pytest.raises(Refused):
        leads.reassign(person("sup_t1"), lead, "emp2", today=later)
    with pytest.raises(Refused):
        leads.reassign(person("sup_t1"), lead, "far", today=later)
    db.session.rollback()
    assert audit.verify().ok


def test_reclassify_reopens_an_overdue_lead_only_when_the_new_deadline_is_not_past(bank):
    lead = open_lead(bank, "A")
    day = TODAY + dt.timedelta(days=10)
    leads.flag_overdue(day)
    leads.reclassify(person("emp"), lead, "B", today=day)
    db.session.commit()
    assert (lead.state, lead.deadline) == ("open", TODAY + dt.timedelta(days=15))
    day = TODAY + dt.timedelta(days=16)
    leads.flag_overdue(day)
    leads.reclassify(person("emp"), lead, "A", today=day)
    db.session.commit()
    assert (lead.state, lead.deadline) == ("overdue", TODAY + dt.timedelta(days=7))
    assert [(e.action, e.to_state) for e in events(lead)][1:] == [
        ("flag_overdue", "overdue"), ("reclassify", "open"), ("flag_overdue", "overdue"),
        ("reclassify", "overdue")]
    # Each deadline is told once: two overdue notifications for the owner, one per deadline.
    assert len(notes("emp", "lead_overdue")) == 2
    assert audit.verify().ok


def test_win_and_lose_close_the_lead_losing_needs_the_reason(bank):
    won, lost = open_lead(bank, "A"), open_lead(bank, "C")
    with pytest.raises(Forbidden):
        leads.win(person("emp2"), won)
    leads.win(person("emp"), won, version=won.version)
    with pytest.raises(Invalid):
        leads.lose(person("sup_t1"), lost, " ")
    leads.lose(person("sup_t1"), lost, "客户选择他行")
    db.session.commit()
    assert (won.state, won.closed_on, lost.state) == ("won", TODAY, "lost")
    with pytest.raises(Conflict):
        leads.reassign(person("sup_t1"), won, "emp2")
    assert leads.flag_overdue(TODAY + dt.timedelta(days=60)) == (0, 0)
    assert audit.verify().ok


def test_a_stale_version_is_a_conflict_and_changes_nothing(bank):
    lead = open_lead(bank, "A")
    seen = lead.version
    leads.reclassify(person("emp"), lead, "B")
    db.session.commit()
    with pytest.raises(Conflict):
        leads.win(person("emp"), lead, version=seen)
    with pytest.raises(Invalid):
        leads.win(person("emp"), lead, version="1")
    db.session.rollback()
    assert lead.state == "open"


def test_a_racing_writer_is_refused_by_the_version_column(bank):
    lead = open_lead(bank, "A")
    db.session.execute(db.update(Lead).where(Lead.id == lead.id).values(version=Lead.version + 1)
                       .execution_options(synchronize_session=False))
    with pytest.raises(Conflict):
        leads.win(person("emp"), lead)
    db.session.rollback()


def test_a_policy_without_a_leads_section_refuses_cleanly(bank):
    doc = yaml.safe_load(BANK_TEXT)
    del doc["customers"]["leads"]
    text_ = yaml.safe_dump(doc, allow_unicode=True)
    engine.activate_policy(policy_mod.loads(text_, "test.yaml"), "test.yaml")
    db.session.commit()
    with pytest.raises(Refused):
        leads.create(person("sup_t1"), "x", bank["units"]["T1"], "emp", "A")
    db.session.rollback()
    assert leads.flag_overdue(TODAY) == (0, 0)
