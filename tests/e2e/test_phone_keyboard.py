"""Pages on a phone-width screen (390 px) and from the keyboard, in Debian's chromium: the menu collapses, no
page scrolls sideways (wide tables scroll in their own box), the skip link is the first stop of Tab, the
focus is visible, every form control has a label; and the inbox's bulk decision done with the keyboard
alone. Screenshots go to test-artifacts/ (phone-*.png)."""
from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from workflow import engine
from workflow.models import db

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}

# Form controls with no label a screen reader can read (a <label for>, a wrapping label, aria-label(ledby)).
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => !['hidden', 'submit', 'button', 'reset'].includes(el.type) && !el.closest('[hidden]'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby') && !el.title)
  .map(el => el.outerHTML.slice(0, 120))"""
SIDEWAYS = "() => document.documentElement.scrollWidth - window.innerWidth"


def log_in(browser, base: str, username: str):
    context = browser.new_context(locale="zh-CN", viewport=PHONE, device_scale_factor=1, is_mobile=True,
                                  has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(f"{base}/")
    return page


def test_pages_on_a_phone_and_with_the_keyboard(browser, live_server, artifacts, bank):
    for username in ("emp", "emp2"):
        engine.create_promotion(bank[username], bank[username], "senior" if username == "emp" else "manager-2",
                                "申请")
    db.session.commit()

    page = log_in(browser, live_server, "appr_b1")
    problems = []
    for path, name in (("/", "home"), ("/inbox", "inbox"), ("/cases/", "cases"), ("/cases/1", "case"),
                       ("/machines/", "processes"), ("/jobs/bulk", "bulk")):
        page.goto(f"{live_server}{path}")
        if page.evaluate(SIDEWAYS) > 1:
            problems.append(f"{path} scrolls sideways by {page.evaluate(SIDEWAYS)} px")
        if unlabelled := page.evaluate(UNLABELLED):
            problems.append(f"{path}: controls without a label: {unlabelled}")
        page.screenshot(path=str(artifacts / f"phone-{name}.png"), full_page=True)
    hr = log_in(browser, live_server, "admin")
    for path, name in (("/cases/new?employee=emp2", "apply"), ("/hr/pipeline", "pipeline"),
                       ("/rounds/new", "round-new"), ("/reviews/", "reviews"), ("/admin/", "org"),
                       ("/admin/people", "people"), ("/admin/people/emp", "person"), ("/admin/policy", "policy")):
        resp = hr.goto(f"{live_server}{path}")
        assert resp.status == 200, path
        if hr.evaluate(SIDEWAYS) > 1:
            problems.append(f"{path} scrolls sideways by {hr.evaluate(SIDEWAYS)} px")
        if unlabelled := hr.evaluate(UNLABELLED):
            problems.append(f"{path}: controls without a label: {unlabelled}")
        hr.screenshot(path=str(artifacts / f"phone-{name}.png"), full_page=True)
    assert problems == []

    # The menu is collapsed behind its button, which opens it.
    page.goto(f"{live_server}/inbox")
    assert not page.locator("#gf-nav").is_visible()
    page.click(".navbar-toggler")
    page.locator("#gf-nav").wait_for(state="visible")
    page.screenshot(path=str(artifacts / "phone-menu.png"), full_page=True)

    # Keyboard: the first Tab reaches the skip link, shown while focused; Enter moves to the content.
    page.goto(f"{live_server}/inbox")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "skip-link"
    assert page.locator("#skip-link").is_visible()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # The bulk decision with the keyboard: tick a case (Space), choose, submit (Enter).
    page.focus("#tick-1")
    page.keyboard.press("Space")
    page.focus("#comment")
    page.keyboard.type("同意")
    page.focus("#submit")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    page.locator("#bulk-results").wait_for()
    assert page.locator('#bulk-results tr[data-case="1"][data-ok="true"]').count() == 1
    assert page.evaluate(SIDEWAYS) <= 1
    page.screenshot(path=str(artifacts / "phone-bulk-results.png"), full_page=True)
