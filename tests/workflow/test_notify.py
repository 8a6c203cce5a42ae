"""Notifications written with the change that causes them; deadline reminders once each; 催办."""
import datetime as dt

import pytest

from tests.conftest import TODAY
from workflow import engine, invariants, notify
from workflow.errors import Conflict, Forbidden, Invalid, Refused
from workflow.models import db, Notification, Person

from tests.workflow.test_engine import variant


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def notes(username=None, kind=None, case=None):
    q = db.session.query(Notification).order_by(Notification.id)
    if username:
        q = q.filter(Notification.recipient_id == person(username).id)
    if kind:
        q = q.filter(Notification.kind == kind)
    if case is not None:
        q = q.filter(Notification.case_id == case.id)
    return q.all()


def test_filing_tells_the_assignees_and_each_new_step_its_own(bank, walk):
    case = walk.file()
    assert [n.recipient.username for n in notes(kind="assigned")] == ["appr_b1"]
    n = notes("appr_b1")[0]
    assert (n.case_id, n.params["state"], n.params["case_kind"], n.read_at) == (
        case.id, "qualification_review", "promotion", None)
    assert n.mail_state == "skipped"    # nobody has an e-mail address yet
    walk.to_panel(case)
    # The panel step waits on HR (to form the panel) and on the direct supervisor.
    assert [n.recipient.username for n in notes(kind="assigned", case=case)] == ["appr_b1", "hr_b1", "sup_t1"]
    # The applicant hears of the qualification, not of each blind score.
    assert [(n.kind, n.params["action"]) for n in notes("emp")] == [("decided", "qualify")]
    walk.act(case, "assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
    # The panel members are added to the same step: they are told; the supervisor is not told twice.
    told = [n.recipient.username for n in notes(kind="assigned", case=case)]
    assert told[3:] == ["panel1", "panel2", "panel3"]
    before = len(notes("emp"))
    walk.act(case, "score", "panel1", score=80)
    assert len(notes("emp")) == before
    assert not notes("panel1", kind="assigned")[1:]     # scoring tells nobody again


def test_the_applicant_hears_the_decision_once_and_not_their_own(bank, walk):
    case = walk.file()
    walk.act(case, "return", "appr_b1", comment="补充材料")
    # Returned to the applicant: one message, the decision, not also an "assigned".
    assert [(n.kind, n.params["state"]) for n in notes("emp")] == [("decided", "returned")]
    walk.act(case, "withdraw", "emp")
    assert len(notes("emp")) == 1


def test_filing_for_someone_tells_the_applicant_nothing_and_the_filer_nothing(bank, walk):
    walk.file(filer="hr_b1")
    assert notes("hr_b1") == [] and notes("emp") == []


def test_a_refused_action_writes_no_notification(bank, walk):
    case = walk.file()
    with pytest.raises(Forbidden):
        engine.fire(case, "qualify", person("appr_t1"), {})
    db.session.rollback()
    assert len(notes()) == 1


def test_an_escalation_tells_the_new_assignees(bank, walk, tmp_path):
    engine.activate_policy(variant(tmp_path, **{"steps.qualification_review.escalate_after_days": 2}), "esc")
    db.session.commit()
    case = walk.file()
    engine.fire(case, "escalate", None, today=dt.date(2026, 3, 12))
    db.session.commit()
    n = notes("appr_r1")
    assert [(x.kind, x.params["from_unit"], x.params["unit"]) for x in n] == [("escalated", "B1", "R1")]
    assert notes("appr_b1", kind="escalated") == []


def test_reminders_before_and_after_the_deadline_once_each(bank, walk):
    case = walk.file()
    deadline = case.deadline
    assert notify.remind(case, deadline - dt.timedelta(days=10), 2) == 0
    # Two working days ahead (a Monday deadline: the Thursday before).
    thursday = deadline - dt.timedelta(days=4)
    assert deadline.weekday() == 0 and case.id in notify.reminder_candidates(thursday, 2)
    assert notify.remind(case, thursday, 2) == 1
    db.session.commit()
    assert notify.remind(case, thursday + dt.timedelta(days=1), 2) == 0     # once, not every tick
    assert notify.remind(case, deadline + dt.timedelta(days=1), 2) == 1
    db.session.commit()
    assert notify.remind(case, deadline + dt.timedelta(days=3), 2) == 0
    assert [n.kind for n in notes("appr_b1", case=case)] == ["assigned", "due_soon", "overdue"]
    assert notes("appr_b1", kind="overdue")[0].once_key == f"overdue:{case.id}:{deadline.isoformat()}"


def test_a_duplicate_reminder_is_refused_by_the_database(bank, walk):
    case = walk.file()
    key = f"overdue:{case.id}:{case.deadline.isoformat()}"
    notify.notify(person("appr_b1"), "overdue", case, once_key=key)
    db.session.commit()
    notify.notify(person("appr_b1"), "overdue", case, once_key=key)
    with pytest.raises(Exception):
        db.session.commit()
    db.session.rollback()


def test_urge_tells_the_assignees_once_a_day_and_keeps_the_state(bank, walk):
    case = walk.file()
    version = case.version
    urged = notify.urge(case, person("emp"), "请尽快审核", today=TODAY)
    db.session.commit()
    assert [p.username for p in urged] == ["appr_b1"]
    assert (case.state, case.version) == ("qualification_review", version + 1)
    ev = case.events[-1]
    assert (ev.action, ev.actor, ev.from_state, ev.to_state, ev.comment) == (
        "urge", "emp", "qualification_review", "qualification_review", "请尽快审核")
    n = notes("appr_b1", kind="urged")
    assert len(n) == 1 and n[0].params["comment"] == "请尽快审核"
    with pytest.raises(Refused, match="already urged"):
        notify.urge(case, person("emp"), today=TODAY)
    db.session.rollback()
    assert not notify.can_urge(case, person("emp"), TODAY)
    # HR over the unit urges on its own account; the next day the applicant may again.
    notify.urge(case, person("hr_b1"), today=TODAY)
    notify.urge(case, person("emp"), today=TODAY + dt.timedelta(days=1))
    db.session.commit()
    assert len(notes("appr_b1", kind="urged")) == 3
    assert invariants.check() == []
    # The step goes on as before: the urge events are no decision and no four-eyes conflict.
    walk.to_panel(case)
    assert case.state == "panel_scoring"
    assert invariants.check() == []


def test_urge_is_refused_to_those_not_waiting_and_when_nobody_else_is_waited_on(bank, walk):
    case = walk.file()
    with pytest.raises(Forbidden, match="only the applicant"):
        notify.urge(case, person("emp2"), today=TODAY)
    with pytest.raises(Forbidden):
        notify.urge(case, person("appr_b1"), today=TODAY)
    with pytest.raises(Invalid, match="too long"):
        notify.urge(case, person("emp"), "催" * 1001, today=TODAY)
    db.session.rollback()
    walk.act(case, "return", "appr_b1", comment="补充材料")
    with pytest.raises(Refused, match="nobody but you"):
        notify.urge(case, person("emp"), today=TODAY)
    db.session.rollback()
    walk.act(case, "withdraw", "emp")
    with pytest.raises(Conflict, match="closed"):
        notify.urge(case, person("emp"), today=TODAY)
    db.session.rollback()
    assert notes(kind="urged") == []


def test_mail_is_queued_for_people_with_an_address_who_want_it(bank, walk):
    appr = person("appr_b1")
    appr.email = "appr_b1@example.com"
    person("hr_b1").email = "hr_b1@example.com"
    person("hr_b1").email_notifications = False
    db.session.commit()
    case = walk.file()
    walk.to_panel(case)
    assert [n.mail_state for n in notes("appr_b1")] == ["pending"]
    assert [n.mail_state for n in notes("hr_b1")] == ["skipped"]


def test_email_addresses_are_imported_checked_and_kept_when_the_column_is_left_out(app, tmp_path):
    from tests.workflow.test_import import UNITS, write
    from workflow import importing
    people = "用户名,姓名,机构代码,电子邮箱\nhr1,何人事,B1,hr1@bank.example\nemp,张三,T1,\n"
    importing.import_org(write(tmp_path, "u.csv", UNITS), write(tmp_path, "p.csv", people))
    db.session.commit()
    assert (person("hr1").email, person("emp").email) == ("hr1@bank.example", None)
    with pytest.raises(importing.ImportRefused) as refused:
        importing.import_org(write(tmp_path, "u.csv", UNITS),
                             write(tmp_path, "p2.csv", "username,name,unit_code,email\nemp,张三,T1,张三@\n"))
    problem = str(refused.value.problems[0])
    assert "email" in problem and "not an e-mail address" in problem
    db.session.rollback()
    importing.import_org(write(tmp_path, "u.csv", UNITS),
                         write(tmp_path, "p3.csv", "username,name,unit_code\nhr1,何人事,B1\n"))
    db.session.commit()
    assert person("hr1").email == "hr1@bank.example"


def test_an_administrator_sets_an_address_on_the_persons_audit_chain(bank):
    version = person("emp").audit_version or 0
    assert notify.set_email(person("emp"), " emp@bank.example ", person("admin"))
    assert not notify.set_email(person("emp"), "emp@bank.example", person("admin"))
    db.session.commit()
    assert (person("emp").email, person("emp").audit_version) == ("emp@bank.example", version + 1)
    for bad in ("emp", "emp@", "@bank.example", "a b@bank.example", "emp@bank", 5):
        with pytest.raises(Invalid):
            notify.check_email(bad)
    assert notify.check_email("  ") is None


def test_a_signer_added_after_oneself_is_told_when_their_turn_comes_and_the_applicant_when_the_step_is_done(
        bank, walk):
    case = walk.file()
    engine.fire(case, "add_signer", person("appr_b1"), {"person": "appr_r1", "position": "after",
                                                        "comment": "请区域复核"})
    db.session.commit()
    assert notes("appr_r1") == []
    walk.act(case, "qualify", "appr_b1")
    assert case.state == "qualification_review"
    assert [n.kind for n in notes("appr_r1")] == ["assigned"]
    assert notes("emp") == []                 # the step still waits on a signature
    walk.act(case, "qualify", "appr_r1")
    assert case.state == "panel_scoring"
    assert [(n.kind, n.params["actor"]) for n in notes("emp")] == [("decided", person("appr_r1").name)]
