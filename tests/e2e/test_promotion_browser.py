"""One promotion from application to effective grade, clicked through the pages in Chinese by the
applicant, the approver, HR, three panel members and the supervisor."""
from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from workflow.models import db, Case, Person

pytestmark = pytest.mark.e2e


class User:
    """One person's browser tab, logged in through the login form, in zh-CN."""

    def __init__(self, browser, base: str, username: str, external: list[str]):
        self.base, self.username = base, username
        self.context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        # Nothing may come from outside the app: no CDN, no web font.
        self.page.on("request", lambda req: None if req.url.startswith(base) else external.append(req.url))
        self.page.goto(f"{base}/login")
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("#submit")
        self.page.wait_for_url(f"{base}/")

    def open(self, path: str):
        self.page.goto(f"{self.base}{path}")
        return self.page

    def act(self, case_id: int, action: str, **fields):
        page = self.open(f"/cases/{case_id}")
        for name, value in fields.items():
            page.fill(f"#{action}-{name}", str(value))
        page.click(f"#do-{action}")
        page.wait_for_load_state()
        assert page.locator(".alert-success").count() == 1, page.content()
        return page


def test_promotion_in_the_browser(browser, live_server, artifacts):
    external: list[str] = []
    users = {}

    def as_user(name):
        if name not in users:
            users[name] = User(browser, live_server, name, external)
        return users[name]

    def shot(page, name):
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)

    # The applicant previews the eligibility, then files.
    emp = as_user("emp")
    page = emp.page
    assert "我的申请" in page.inner_text("nav")
    page.click("#apply")
    page.select_option("#target_grade", "senior-1")
    page.fill("#statement", "本人任客户经理三档已满两年，年度绩效优良，申请晋升高级客户经理。")
    page.click("#preview")
    assert page.locator("table.eligibility tbody tr").count() >= 4
    assert "全部条件符合" in page.inner_text("#eligibility-preview")
    shot(page, "01-apply-preview-zh")
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/cases/\d+$"))
    case_id = int(page.url.rsplit("/", 1)[1])
    assert "资格审核" in page.inner_text("#case-header")
    shot(page, "02-case-filed-zh")

    # The branch approver finds it in the inbox and qualifies it.
    appr = as_user("appr_b1")
    page = appr.open("/inbox")
    shot(page, "03-inbox-zh")
    page.click(f"a[href='/cases/{case_id}']")
    page.wait_for_url(f"{live_server}/cases/{case_id}")
    shot(page, "04-qualification-review-zh")
    appr.act(case_id, "qualify", comment="资格审核通过")

    # HR forms the panel.
    hr = as_user("hr_b1")
    page = hr.open(f"/cases/{case_id}")
    for member in ("panel1", "panel2", "panel3"):
        page.check(f"input[name='assign_panel-members'][value='{member}']")
    page.click("#do-assign_panel")
    page.wait_for_load_state()
    assert page.locator(".alert-success").count() == 1

    # Three panel members score blind; the supervisor evaluates.
    as_user("panel1").act(case_id, "score", score=82)
    page = as_user("panel2").open(f"/cases/{case_id}")
    assert "已评分（分数保密）" in page.inner_text("#scores")
    shot(page, "05-panel-blind-zh")
    as_user("panel2").act(case_id, "score", score=88)
    as_user("panel3").act(case_id, "score", score=79)
    page = as_user("sup_t1").act(case_id, "supervisor_score", score=90)
    assert "人力资源部核准" in page.inner_text("#case-header")

    # HR sees the composite and approves: the promotion takes effect.
    page = hr.open(f"/cases/{case_id}")
    assert page.locator("#composite").count() == 1
    shot(page, "06-hr-approval-zh")
    page = hr.act(case_id, "approve")
    assert "已生效" in page.inner_text("#case-header")

    page = emp.open(f"/cases/{case_id}")
    assert "已生效" in page.inner_text("#case-header") and page.locator("#composite").count() == 1
    shot(page, "07-effective-applicant-zh")
    shot(hr.open("/hr/pipeline?unit=B1"), "08-pipeline-zh")
    shot(as_user("admin").open("/admin/policy"), "09-policy-zh")
    shot(emp.open("/"), "10-home-zh")
    shot(as_user("admin").open("/admin/"), "11-org-zh")

    assert external == []
    db.session.expire_all()
    case = db.session.get(Case, case_id)
    assert case.state == "effective"
    assert db.session.scalar(db.select(Person).filter_by(username="emp")).grade == "senior-1"
    assert [e.action for e in case.events] == ["create", "qualify", "assign_panel", "score", "score", "score",
                                               "supervisor_score", "scoring_complete", "approve"]
    for user in users.values():
        user.context.close()
