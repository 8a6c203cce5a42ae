"""Printable forms, their PDF and attachments: pages and API."""
import io
import re
import sys
import zlib

import pytest

from workflow import attachments, engine
from workflow.models import db, Attachment, Case, Person

PDF = "%PDF-1.4\n% 学历证书\n".encode()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def store(app, tmp_path):
    app.config["ATTACHMENT_DIR"] = str(tmp_path / "files")
    return tmp_path / "files"


def filed(api, **kw):
    resp = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior", "statement": "申请晋级：业绩优秀",
                                      **kw})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def at_hr_approval(api, paper=False):
    case = filed(api)
    cid = case["id"]
    assert api("appr_b1").post(f"/cases/{cid}/qualify", {"version": case["version"]}).status_code == 200
    assert api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]}).status_code == 200
    for member, score in [("panel1", 80), ("panel2", 90), ("panel3", 70)]:
        if paper and member == "panel2":
            resp = api("hr_b1").post(f"/cases/{cid}/score_for", {"member": member, "score": score})
        else:
            resp = api(member).post(f"/cases/{cid}/score", {"score": score})
        assert resp.status_code == 200, resp.get_json()
    resp = api("sup_t1").post(f"/cases/{cid}/supervisor_score", {"score": 88})
    assert resp.get_json()["state"] == "hr_approval"
    return cid


# --- the print pages -------------------------------------------------------------------------------------

def test_application_form_is_filled_from_the_case(bank, api, page):
    cid = at_hr_approval(api)
    html = page("hr_b1", "zh_CN").get(f"/cases/{cid}/forms/application").get_data(as_text=True)
    assert "员工晋级申请表" in html and 'lang="zh-CN"' in html
    assert "css/print.css" in html and "style=" not in html and "<script>" not in html
    for text in ("杭州一团队", "申请晋级：业绩优秀", "资格审核", "Appr_B1", "审批人", "signature-box", "总行"):
        assert text in html, text
    assert html.count('class="signature-box"') == 4
    assert 'id="pdf-link"' in html
    en = page("hr_b1").get(f"/cases/{cid}/forms/application").get_data(as_text=True)
    assert "Promotion application form" in en and "Qualify" in en


def test_panel_form_shows_scores_and_the_paper_entry(bank, api, page):
    cid = at_hr_approval(api, paper=True)
    html = page("hr_b1").get(f"/cases/{cid}/forms/panel_evaluation").get_data(as_text=True)
    assert "Panel evaluation form" in html
    assert re.search(r"panel2\).*?<td class=\"score\">90</td>", html, re.S)
    assert "From the paper form, entered by HR" in html
    assert "Entered by HR from the paper form of" in html
    # The applicant sees who scored, never the values (blind scoring).
    mine = page("emp").get(f"/cases/{cid}/forms/panel_evaluation").get_data(as_text=True)
    assert '<td class="score">90</td>' not in mine and "hidden" in mine


def test_trainee_evaluation_form(bank, api, page):
    emp2 = db.session.scalar(db.select(Person).filter_by(username="emp2"))
    emp2.status = "probation"
    db.session.commit()
    resp = api("hr_b1").post("/cases", {"kind": "probation", "employee": "emp2"})
    assert resp.status_code == 201, resp.get_json()
    cid = resp.get_json()["id"]
    html = page("hr_b1", "zh_CN").get(f"/cases/{cid}/forms/trainee_evaluation").get_data(as_text=True)
    assert "见习期工作表现评价表" in html and html.count('class="signature-box"') == 3
    # The supervisor's evaluation fills it (emp2's skill appraisal is a pass without a number).
    case = db.session.get(Case, cid)
    engine.fire(case, "open_evaluation", None, {}, today=case.due_on)
    engine.fire(case, "evaluate", case.assignments[0].person,
                {"score": 86, "comment": "工作认真，客户反馈良好。",
                 "form": {"attitude": "excellent", "skills": "good", "service": "good", "teamwork": "adequate"}})
    db.session.commit()
    html = page("hr_b1", "zh_CN").get(f"/cases/{cid}/forms/trainee_evaluation").get_data(as_text=True)
    for text in ("工作认真，客户反馈良好。", '<td class="rating">', ">86<", "符合"):
        assert text in html, text
    assert page("emp2").get(f"/cases/{cid}/forms/trainee_evaluation").status_code == 200
    assert page("hr_b1").get(f"/cases/{cid}/forms/application").status_code == 404     # not for probation


def test_who_may_print(bank, api, page):
    cid = filed(api)["id"]
    for who, status in [("emp", 200), ("hr_b1", 200), ("appr_b1", 200), ("sup_t1", 200), ("emp2", 404),
                        ("panel1", 404), ("appr_t2", 404)]:
        assert page(who).get(f"/cases/{cid}/forms/application").status_code == status, who
    assert page("emp2").get(f"/cases/{cid}/forms/application.pdf").status_code == 404
    assert page("emp").get(f"/cases/{cid}/forms/nonsense").status_code == 404
    assert page("emp").get(f"/cases/{cid}/forms/trainee_evaluation").status_code == 404


def test_pdf_embeds_the_cjk_font(bank, api, page):
    cid = filed(api)["id"]
    resp = page("emp", "zh_CN").get(f"/cases/{cid}/forms/application.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.data.startswith(b"%PDF")
    assert any(name.endswith(b"Noto-Sans-CJK-SC") for name in pdf_fonts(resp.data)), pdf_fonts(resp.data)


def pdf_fonts(data: bytes) -> set[bytes]:
    """The font names a PDF embeds (WeasyPrint writes them into compressed object streams)."""
    names = set(re.findall(rb"/BaseFont\s*/([^\s/>\[]+)", data))
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            names |= set(re.findall(rb"/BaseFont\s*/([^\s/>\[]+)", zlib.decompress(m.group(1))))
        except zlib.error:
            continue
    return names


def test_the_pdf_fetches_nothing_but_static_files(app, bank):
    import weasyprint
    from web import printing
    with app.test_request_context("/"):
        fetcher = printing.static_only_fetcher(weasyprint, app.static_folder, "http://localhost/")
        fetch = fetcher.fetch if hasattr(fetcher, "fetch") else fetcher
        got = fetch("http://localhost/static/css/print.css")
        body = got.read() if hasattr(got, "read") else got["string"]
        assert b"Noto Sans CJK SC" in body
        for url in ("https://cdn.example.com/x.css", "http://localhost/static/../config.py",
                    "file:///etc/passwd", "http://evil.test/static/css/print.css", "http://localhost/api/v1/me"):
            with pytest.raises(ValueError):
                fetch(url)


def test_without_weasyprint_the_print_page_still_works(bank, api, page, monkeypatch):
    cid = filed(api)["id"]
    monkeypatch.setitem(sys.modules, "weasyprint", None)      # `import weasyprint` raises ImportError
    html = page("emp").get(f"/cases/{cid}/forms/application").get_data(as_text=True)
    assert 'id="pdf-unavailable"' in html and 'id="pdf-link"' not in html
    assert "Promotion application form" in html
    resp = page("emp").get(f"/cases/{cid}/forms/application.pdf")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/cases/{cid}/forms/application")
    assert "PDF is not available" in page("emp").get(resp.headers["Location"]).get_data(as_text=True)
    resp = api("emp").get(f"/cases/{cid}/forms/application.pdf")
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "pdf_unavailable"


def test_api_pdf(bank, api):
    cid = filed(api)["id"]
    resp = api("emp").get(f"/cases/{cid}/forms/application.pdf")
    assert resp.status_code == 200 and resp.data.startswith(b"%PDF")
    assert api("emp2").get(f"/cases/{cid}/forms/application.pdf").status_code == 404
    assert api("emp").get(f"/cases/{cid}/forms/trainee_evaluation.pdf").status_code == 404


# --- attachments -------------------------------------------------------------------------------------------

def upload(client_page, cid, data, name):
    return client_page.post(f"/cases/{cid}/attachments", data={"file": (io.BytesIO(data), name)},
                            content_type="multipart/form-data")


def test_attach_on_the_case_page_and_download(bank, api, page, store):
    cid = filed(api)["id"]
    detail = page("emp").get(f"/cases/{cid}").get_data(as_text=True)
    assert 'id="attach-form"' in detail and 'id="print-application"' in detail
    resp = upload(page("emp"), cid, PDF, "学历证书.pdf")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    att = db.session.scalar(db.select(Attachment))
    assert att.filename == "学历证书.pdf" and att.sha256 == attachments.checksum(PDF)
    assert (store / att.sha256[:2] / att.sha256).exists()
    detail = page("emp").get(f"/cases/{cid}").get_data(as_text=True)
    assert "学历证书.pdf" in detail and "Attach a file" in detail       # listed, and in the record
    got = page("hr_b1").get(f"/cases/{cid}/attachments/{att.id}")
    assert got.status_code == 200 and got.data == PDF and got.headers["X-Content-SHA256"] == att.sha256
    assert page("emp2").get(f"/cases/{cid}/attachments/{att.id}").status_code == 404
    # A stored file changed outside the application is not served.
    (store / att.sha256[:2] / att.sha256).write_bytes(PDF + b"x")
    assert page("hr_b1").get(f"/cases/{cid}/attachments/{att.id}").status_code == 422


def test_bad_uploads_are_refused_and_change_nothing(bank, api, page, app):
    cid = filed(api)["id"]
    version = api("emp").get(f"/cases/{cid}").get_json()["version"]
    app.config["ATTACHMENT_MAX_BYTES"] = 64
    for data, name, why in [(b"MZ\x90\x00", "virus.pdf", "not a PDF"), (PDF, "note.exe", "only PDF"),
                            (b"", "empty.pdf", "empty"), (PDF * 10, "big.pdf", "larger than")]:
        resp = upload(page("emp"), cid, data, name)
        assert resp.status_code == 400, name
        assert why in resp.get_data(as_text=True), name
    assert upload(page("emp2"), cid, PDF, "a.pdf").status_code == 404
    assert db.session.scalar(db.select(db.func.count(Attachment.id))) == 0
    assert api("emp").get(f"/cases/{cid}").get_json()["version"] == version


def test_panel_member_sees_but_may_not_attach(bank, api, page):
    case = filed(api)
    cid = case["id"]
    api("appr_b1").post(f"/cases/{cid}/qualify", {"version": case["version"]})
    api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]})
    api("panel1").post(f"/cases/{cid}/score", {"score": 80})
    assert page("panel1").get(f"/cases/{cid}").status_code == 200
    assert upload(page("panel1"), cid, PDF, "a.pdf").status_code == 403
    assert upload(page("panel2"), cid, PDF, "a.pdf").status_code == 302      # a current assignee may


def test_attach_through_the_api(bank, api, client):
    cid = filed(api)["id"]
    resp = client.post(f"/api/v1/cases/{cid}/attachments", headers=api("emp").headers,
                       data={"file": (io.BytesIO(PNG), "业绩证明.png")}, content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    att = resp.get_json()
    assert att["sha256"] == attachments.checksum(PNG) and att["content_type"] == "image/png"
    case = api("emp").get(f"/cases/{cid}").get_json()
    assert [a["filename"] for a in case["attachments"]] == ["业绩证明.png"]
    assert case["events"][-1]["action"] == "attach" and case["events"][-1]["data"]["sha256"] == att["sha256"]
    got = api("hr_b1").get(f"/cases/{cid}/attachments/{att['id']}")
    assert got.status_code == 200 and got.data == PNG
    assert api("hr_b1").get(f"/cases/{cid}/attachments/999").status_code == 404
    # JSON cannot attach: neither here nor through the generic action endpoint.
    assert api("emp").post(f"/cases/{cid}/attachments", {"sha256": att["sha256"]}).status_code == 415
    resp = api("emp").post(f"/cases/{cid}/attach", {"file": {"sha256": att["sha256"], "filename": "x.png"}})
    assert resp.status_code == 400
    resp = client.post(f"/api/v1/cases/{cid}/attachments", headers=api("emp").headers,
                       data={"file": (io.BytesIO(b"GIF89a"), "x.png")}, content_type="multipart/form-data")
    assert resp.status_code == 400 and resp.get_json()["error"]["details"]["field"] == "file"
    resp = client.post(f"/api/v1/cases/{cid}/attachments", headers=api("emp2").headers,
                       data={"file": (io.BytesIO(PNG), "x.png")}, content_type="multipart/form-data")
    assert resp.status_code == 404


def test_apply_with_attachments(bank, page):
    resp = page("emp").post("/cases/new", data={
        "employee": "emp", "target_grade": "senior-1", "statement": "附证书", "submit": "y",
        "attachments": [(io.BytesIO(PDF), "证书.pdf"), (io.BytesIO(PNG), "奖状.png")]},
        content_type="multipart/form-data")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert sorted(a.filename for a in db.session.scalars(db.select(Attachment))) == ["奖状.png", "证书.pdf"]
    # A refused file files nothing.
    page("emp2").post("/cases/new", data={"employee": "emp2", "target_grade": "manager-2", "submit": "y",
                                          "attachments": [(io.BytesIO(b"MZ"), "bad.pdf")]},
                      content_type="multipart/form-data")
    assert db.session.scalar(db.select(db.func.count(Attachment.id))) == 2
    assert api_cases_of("emp2") == 0


def api_cases_of(username):
    from workflow.models import Case
    person = db.session.scalar(db.select(Person).filter_by(username=username))
    return db.session.scalar(db.select(db.func.count(Case.id)).where(Case.employee_id == person.id))


# --- HR enters a paper panel form ------------------------------------------------------------------------

def test_score_for_on_the_case_page(bank, api, page):
    case = filed(api)
    cid = case["id"]
    api("appr_b1").post(f"/cases/{cid}/qualify", {"version": case["version"]})
    api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]})
    html = page("hr_b1").get(f"/cases/{cid}").get_data(as_text=True)
    assert 'id="form-score_for"' in html
    assert 'id="form-score_for"' not in page("panel1").get(f"/cases/{cid}").get_data(as_text=True)
    resp = page("hr_b1").act(cid, "score_for", {"member": "panel3", "score": "75"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    ev = api("hr_b1").get(f"/cases/{cid}").get_json()["events"][-1]
    assert ev["action"] == "score_for" and ev["data"]["member"] == "panel3" and ev["data"]["entered_by"] == "hr_b1"
    assert page("hr_b1").act(cid, "score_for", {"member": "panel3", "score": "75"}).status_code == 400
    assert page("hr_b1").act(cid, "score_for", {"member": "panel1", "score": "120"}).status_code == 400
    assert page("panel1").act(cid, "score_for", {"member": "panel2", "score": "75"}).status_code == 403
    # The applicant does not learn the value through the event either.
    mine = api("emp").get(f"/cases/{cid}").get_json()["events"][-1]
    assert "score" not in mine["data"]


def test_score_for_through_the_api(bank, api):
    case = filed(api)
    cid = case["id"]
    api("appr_b1").post(f"/cases/{cid}/qualify", {"version": case["version"]})
    api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]})
    assert api("hr_b1").post(f"/cases/{cid}/score_for", {"member": "panel4", "score": 70}).status_code == 422
    assert api("hr_b1").post(f"/cases/{cid}/score_for", {"member": "panel1"}).status_code == 400
    assert api("panel2").post(f"/cases/{cid}/score_for", {"member": "panel1", "score": 70}).status_code == 403
    resp = api("hr_b1").post(f"/cases/{cid}/score_for", {"member": "panel1", "score": 70})
    assert resp.status_code == 200
    assert resp.get_json()["scores"]["panel"][0] == {"scorer": "panel1", "value": 70.0,
                                                     "at": resp.get_json()["scores"]["panel"][0]["at"]}
    assert api("panel1").post(f"/cases/{cid}/score", {"score": 90}).status_code == 403
