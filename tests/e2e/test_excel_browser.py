"""Excel in a real browser, in Chinese: HR opens the overdue cases and downloads the list as XLSX, then finds
the exports page in the menu and downloads the roster and the grade changes for payroll; the page fits a
phone. The downloaded workbooks are opened with openpyxl."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from tests.conftest import PASSWORD, TODAY
from workflow import clock, directory, engine
from workflow.models import db

pytestmark = pytest.mark.e2e


def _rows(download) -> list[list]:
    assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename
    wb = load_workbook(io.BytesIO(download.path().read_bytes()), read_only=True)
    rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    return rows


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_hr_downloads_the_overdue_list_the_roster_and_the_payroll_changes(browser, live_server, artifacts,
                                                                          bank, device):
    case = engine.create_promotion(bank["emp"], bank["emp"], "senior", "请审批")
    directory.change_grade(bank["emp2"], "manager-2", since=TODAY, source="admin")
    db.session.commit()
    clock.fix_today(TODAY + dt.timedelta(days=30))            # the qualification step is overdue
    viewport = {"width": 1366, "height": 900} if device == "desktop" else {"width": 390, "height": 844}
    context = browser.new_context(locale="zh-CN", viewport=viewport, is_mobile=device == "phone",
                                  has_touch=device == "phone", accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("#username", "hr_b1")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/cases/?overdue=1")
    with page.expect_download() as info:
        page.click("#cases-xlsx")
    rows = _rows(info.value)
    assert rows[0][0] == "案件" and [r[0] for r in rows[1:]] == [case.id]
    assert rows[1][8] == "资格审核"

    if device == "desktop":
        page.click("#nav-data")
        page.click("#nav-exports")
    else:
        page.goto(f"{live_server}/exports/")
    page.wait_for_url(f"{live_server}/exports/")
    assert "职级花名册" in page.inner_text("main")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, overflow
    page.screenshot(path=str(artifacts / f"excel-exports-{device}-zh.png"), full_page=True)

    with page.expect_download() as info:
        page.click("#roster-form button[type=submit]")
    roster = _rows(info.value)
    assert "emp2" in [r[0] for r in roster[1:]] and "far" not in [r[0] for r in roster[1:]]

    page.fill("#p-from", TODAY.isoformat())
    page.fill("#p-to", (TODAY + dt.timedelta(days=30)).isoformat())
    with page.expect_download() as info:
        page.click("#payroll-form button[type=submit]")
    changes = _rows(info.value)
    assert [(r[1], r[0].date()) for r in changes[1:]] == [("emp2", TODAY)]
    context.close()
