"""The HR dashboard in a real browser, in Chinese, on a desktop and on a phone: the funnel and the grade chart
draw (SVG images of their own routes), nothing is fetched from outside, the Content-Security-Policy reports
nothing, and a count leads to the case list it counts."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, TODAY
from workflow import clock, engine
from workflow.models import db, OrgUnit, Person

pytestmark = pytest.mark.e2e


def _cases(make_person) -> None:
    t2 = db.session.scalar(select(OrgUnit).filter_by(code="T2"))
    for name in ("s1", "s2"):
        make_person(name, t2, grade="senior-1")               # B1 over its 15% cap of senior
    people = {p.username: p for p in db.session.scalars(select(Person))}
    a = engine.create_promotion(people["emp"], people["emp"], "senior", "请审批")
    engine.fire(a, "qualify", people["appr_b1"], {})
    engine.create_promotion(people["emp2"], people["emp2"], "manager-2", "请审批")
    db.session.commit()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_dashboard_charts_draw_under_the_csp(browser, live_server, artifacts, make_person, device):
    _cases(make_person)
    clock.fix_today(TODAY + dt.timedelta(days=30))            # both cases overdue
    viewport = {"width": 1366, "height": 900} if device == "desktop" else {"width": 390, "height": 844}
    context = browser.new_context(locale="zh-CN", viewport=viewport, is_mobile=device == "phone",
                                  has_touch=device == "phone")
    context.set_default_timeout(15_000)
    page = context.new_page()
    violations: list[str] = []
    external: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text
            else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => console.error("
                         "'Content Security Policy: ' + e.violatedDirective + ' ' + e.blockedURI))")
    page.on("request", lambda req: None if req.url.startswith(live_server) else external.append(req.url))
    page.goto(f"{live_server}/login")
    page.fill("#username", "hr_b1")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/hr/pipeline?unit=B1")
    page.wait_for_load_state("networkidle")
    for chart in ("#funnel-chart", "#grades-chart"):
        img = page.locator(chart)
        img.scroll_into_view_if_needed()
        assert img.is_visible()
        # The SVG loaded and drew: the image has its own size, and it fits the screen.
        natural = img.evaluate("el => [el.complete, el.naturalWidth, el.naturalHeight]")
        assert natural[0] and natural[1] > 0 and natural[2] > 0, (chart, natural)
        box = img.bounding_box()
        assert box["width"] <= viewport["width"] and box["height"] > 50, (chart, box)
    assert "晋级漏斗" in page.inner_text("main") if page.locator("main").count() else page.content()
    assert page.locator("#overdue tr[data-case]").count() == 2
    # Nothing wider than the screen on a phone: the tables scroll inside their cards.
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, overflow
    page.screenshot(path=str(artifacts / f"dashboard-{device}-zh.png"), full_page=True)

    # The chart on its own, as a person opening the image would see it.
    page.goto(f"{live_server}/hr/pipeline/grades.svg?unit=B1")
    page.screenshot(path=str(artifacts / f"dashboard-grades-{device}-zh.png"))

    # A count of the by-unit table leads to the list it counts.
    page.goto(f"{live_server}/hr/pipeline?unit=B1")
    page.locator('details[data-unit="T1"] summary').click()
    page.locator('details[data-unit="T1"] a[href*="state=panel_scoring"]').first.click()
    page.wait_for_url("**/cases/?unit=T1&state=panel_scoring&level=senior")
    assert page.locator("table a[href^='/cases/']").count() >= 1
    context.close()
    assert violations == [], violations
    assert external == [], external
