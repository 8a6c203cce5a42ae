"""The Content-Security-Policy in a real browser: the pages, the menus and the drawings break none of it,
and the filters that send their form on change still do (from the static script, not an inline handler)."""
from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e


def test_pages_run_under_the_content_security_policy(browser, live_server, api):
    cid = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior"}).get_json()["id"]
    context = browser.new_context(locale="en-US", viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text
            else None)
    # Reported by the page itself as well, with the directive that was broken.
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => console.error("
                         "'Content Security Policy: ' + e.violatedDirective + ' ' + e.blockedURI))")
    page.goto(f"{live_server}/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/cases/{cid}")
    assert page.locator("#case-machine svg").count() == 1
    page.click("#user-menu")                                   # Bootstrap's dropdown (Popper sets styles)
    assert page.locator("#logout").is_visible()

    page.goto(f"{live_server}/rounds/")
    select = page.locator("#r-state")
    other = select.locator("option").nth(1).get_attribute("value")
    with page.expect_navigation():
        select.select_option(other)                            # data-autosubmit, from static/js/gradeflow.js
    assert f"state={other}" in page.url

    page.goto(f"{live_server}/machines/promotion")
    assert page.locator(".machine-svg svg").count() >= 1
    context.close()
    assert violations == []
