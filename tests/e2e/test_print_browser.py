"""Printable forms and attachments in the browser, in Chinese: the applicant attaches a certificate, HR
enters a panel member's paper score, prints the application form and downloads its PDF."""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_promotion_browser import User
from workflow.models import db, Attachment, Case

pytestmark = pytest.mark.e2e


def test_print_and_attach_in_the_browser(browser, live_server, artifacts, tmp_path, app):
    app.config["ATTACHMENT_DIR"] = str(tmp_path / "files")
    external: list[str] = []

    def shot(page, name):
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)

    emp = User(browser, live_server, "emp", external)
    page = emp.page
    page.click("#apply")
    page.select_option("#target_grade", "senior-1")
    page.fill("#statement", "本人年度绩效优良，附学历证书，申请晋升高级客户经理。")
    page.click("#preview")
    certificate = tmp_path / "学历证书.pdf"
    certificate.write_bytes("%PDF-1.4\n% 学历证书\n".encode())
    page.set_input_files("#attachments", str(certificate))
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/cases/\d+$"))
    case_id = int(page.url.rsplit("/", 1)[1])
    assert "学历证书.pdf" in page.inner_text("#attachment-list")

    # The approver qualifies; HR forms the panel and types in one member's paper form.
    User(browser, live_server, "appr_b1", external).act(case_id, "qualify", comment="资格审核通过")
    hr = User(browser, live_server, "hr_b1", external)
    page = hr.open(f"/cases/{case_id}")
    for member in ("panel1", "panel2", "panel3"):
        page.check(f"input[name='assign_panel-members'][value='{member}']")
    page.click("#do-assign_panel")
    page.wait_for_load_state()
    page = hr.open(f"/cases/{case_id}")
    page.select_option("#score_for-member", "panel3")
    page.fill("#score_for-score", "79")
    page.click("#do-score_for")
    page.wait_for_load_state()
    assert page.locator(".alert-success").count() == 1
    assert "代录纸质评分" in page.inner_text("#timeline")

    # The printable application form, in Chinese, on A4; its PDF.
    page = hr.open(f"/cases/{case_id}")
    page.click("#print-application")
    page.wait_for_url(f"{live_server}/cases/{case_id}/forms/application")
    assert "员工晋级申请表" in page.inner_text("h1")
    assert page.locator(".signature-box").count() == 4
    assert "学历证书.pdf" in page.inner_text("#print-sheet")
    shot(page, "print-application-zh")
    pdf = page.request.get(live_server + page.locator("#pdf-link").get_attribute("href"))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    page = hr.open(f"/cases/{case_id}/forms/panel_evaluation")
    assert "员工竞聘评价表" in page.inner_text("h1") and "人力资源部" in page.inner_text("#print-sheet")
    shot(page, "print-panel-evaluation-zh")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "print-panel-evaluation-phone-zh")

    assert external == []
    db.session.expire_all()
    assert db.session.get(Case, case_id).state == "panel_scoring"
    assert db.session.scalar(db.select(Attachment)).filename == "学历证书.pdf"
