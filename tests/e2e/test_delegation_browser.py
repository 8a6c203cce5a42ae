"""Delegation in a real browser, in Chinese: HR names a colleague from the user menu; the colleague finds HR's
step in the to-do list marked "on behalf of", forms the panel, and the record names both; on a phone the
delegations page fits the screen. Screenshots go to test-artifacts/."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, TODAY
from workflow import engine
from workflow.models import db, OrgUnit, Person

pytestmark = pytest.mark.e2e


def _login(page, base, username):
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(f"{base}/")


def test_hr_delegates_and_the_colleague_acts_on_behalf(browser, live_server, artifacts, make_person):
    make_person("deputy", db.session.scalar(select(OrgUnit).filter_by(code="B1")))
    people = {p.username: p for p in db.session.scalars(select(Person))}
    case = engine.create_promotion(people["emp"], people["emp"], "senior", "请审批")
    engine.fire(case, "qualify", people["appr_b1"], {})          # now HR at B1 forms the panel
    db.session.commit()

    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    _login(page, live_server, "hr_b1")
    page.click("#user-menu")
    page.click("#nav-delegations")
    page.wait_for_url(f"{live_server}/delegations")
    page.fill("#delegate", "deputy")
    page.fill("#starts_on", TODAY.isoformat())
    page.fill("#ends_on", (TODAY + dt.timedelta(days=7)).isoformat())
    page.fill("#comment", "出差一周")
    page.click("#delegate-form [type=submit]")
    page.wait_for_url(f"{live_server}/delegations")
    row = page.locator("#delegations tr[data-status='active']")
    assert row.count() == 1 and "生效中" in row.inner_text()
    page.screenshot(path=str(artifacts / "delegation-created-zh.png"), full_page=True)
    context.close()

    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    _login(page, live_server, "deputy")
    page.goto(f"{live_server}/inbox")
    badge = page.locator(".on-behalf")
    assert badge.count() == 1 and "代" in badge.inner_text()
    page.screenshot(path=str(artifacts / "delegation-inbox-zh.png"), full_page=True)
    page.click(f"a[href='/cases/{case.id}'].btn")
    assert page.locator("#acting-for").is_visible()
    for member in ("panel1", "panel2", "panel3"):
        page.check(f"#form-assign_panel input[value='{member}']")
    page.click("#do-assign_panel")
    page.wait_for_url(f"{live_server}/cases/{case.id}")
    last = page.locator("#timeline li").last
    assert "代" in last.inner_text()
    page.screenshot(path=str(artifacts / "delegation-acted-zh.png"), full_page=True)
    context.close()

    # A phone-width screen: the delegations page fits; its table scrolls in its own box.
    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    _login(page, live_server, "hr_b1")
    page.goto(f"{live_server}/delegations")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    page.screenshot(path=str(artifacts / "delegation-phone-zh.png"), full_page=True)
    context.close()
