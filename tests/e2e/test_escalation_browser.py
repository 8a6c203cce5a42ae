"""An overdue step escalates on `tick`, and the people concerned see it in the browser, in Chinese: the
approver one org level up finds the case in the to-do list, told by a notification where it came from; the
case page says why it went up. The policy's step escalates two working days past its deadline."""
from __future__ import annotations

import pytest

from tests.e2e.test_promotion_browser import User
from tests.workflow.test_engine import variant
from workflow import clock, engine
from workflow.models import db, Case, Person

pytestmark = pytest.mark.e2e


def test_an_overdue_step_escalates_on_tick(browser, live_server, artifacts, app, tmp_path):
    engine.activate_policy(variant(tmp_path, **{"steps.qualification_review.escalate_after_days": 2}), "esc")
    emp = db.session.query(Person).filter_by(username="emp").one()
    case = engine.create_promotion(emp, emp, "senior", "申请晋级")
    db.session.commit()
    case_id, deadline = case.id, case.deadline
    assert case.step_unit.code == "B1"

    # tick on the day the step is two working days past its deadline: not yet; the day after: it goes up.
    runner = app.test_cli_runner()
    due = clock.add_working_days(deadline, 2, ())
    result = runner.invoke(args=["tick", "--today", due.isoformat()])
    assert result.exit_code == 0 and f"case {case_id}: escalate" not in result.output, result.output
    later = clock.add_working_days(due, 1, ())
    result = runner.invoke(args=["tick", "--today", later.isoformat()])
    assert result.exit_code == 0 and f"case {case_id}: escalate" in result.output, result.output
    db.session.expire_all()
    case = db.session.get(Case, case_id)
    assert (case.step_unit.code, case.routing_reason, case.escalations) == ("R1", "escalated", 1)
    assert [a.person.username for a in case.assignments] == ["appr_r1"]

    external: list[str] = []
    approver = User(browser, live_server, "appr_r1", external)
    page = approver.page
    # The bell counts the notification; the list says where the step came from.
    assert page.inner_text("#unread-count").strip() == "1"
    page = approver.open("/notifications")
    text = page.inner_text("main")
    assert f"案件 {case_id} 已升级至您处理" in text and "“资格审核”环节在 B1 已逾期，现升级至 R1" in text, text
    page.screenshot(path=str(artifacts / "escalation-notification-zh.png"), full_page=True)
    # The to-do list holds the case; its page says why it is here and who acts.
    page = approver.open("/inbox")
    assert page.locator(f"a[href='/cases/{case_id}']").count() >= 1
    page = approver.open(f"/cases/{case_id}")
    text = page.inner_text("main")
    assert "超期上报" in text and "资格审核" in text, text
    page.screenshot(path=str(artifacts / "escalation-case-zh.png"), full_page=True)
    # The approver below is no longer asked.
    below = User(browser, live_server, "appr_b1", external)
    assert below.open("/inbox").locator(f"a[href='/cases/{case_id}']").count() == 0
    assert external == []
