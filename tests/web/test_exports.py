"""Excel for HR: the case list, the roster, grade changes for payroll and the import templates as XLSX, from
the pages and the API, opened with openpyxl; each holds only what the viewer may see."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from flask_babel import force_locale
from openpyxl import load_workbook
from sqlalchemy import func, select

from web.exports import HEADERS
from workflow import directory, engine, exporting, importing
from workflow import policy as policy_mod
from workflow.models import db, GradeHistory, Person, Score

XLSX = exporting.XLSX


def sheet_rows(resp, sheet=0):
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == XLSX
    data = resp.get_data()
    resp.close()            # the workbook was sent from a temporary file
    wb = load_workbook(io.BytesIO(data), read_only=True)
    ws = wb.worksheets[sheet] if isinstance(sheet, int) else wb[sheet]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    names = wb.sheetnames
    wb.close()
    return rows, names


def column(rows, name, columns=exporting.CASE_COLUMNS):
    """The values of the column `name` (its id in `columns`), below the header."""
    i = columns.index(name)
    return [r[i] for r in rows[1:]]


def roster_column(rows, name):
    return column(rows, name, exporting.ROSTER_COLUMNS)


def headers(app, lang, columns):
    """The header row a workbook of `columns` has in `lang` (the catalog's words)."""
    with app.test_request_context("/"), force_locale(lang):
        return [str(HEADERS[c]) for c in columns]


@pytest.fixture
def cases(app, bank):
    """A promotion of emp (T1, under B1) and one of far (T4, under B3)."""
    emp = engine.create_promotion(bank["emp"], bank["emp"], "senior-1", "申请")
    far = engine.create_promotion(bank["far"], bank["far"], "manager-2", "申请")
    db.session.commit()
    return {"emp": emp.id, "far": far.id}


class TestCaseList:
    def test_the_page_export_has_the_lists_filters_and_scope_in_chinese(self, app, page, cases):
        hr = page("hr_b1", "zh_CN")
        html = hr.get("/cases/?kind=promotion").get_data(as_text=True)
        assert 'id="cases-xlsx"' in html and "/exports/cases.xlsx?kind=promotion" in html
        rows, names = sheet_rows(hr.get("/exports/cases.xlsx?kind=promotion"))
        assert names == ["案件"]
        assert rows[0] == headers(app, "zh_CN", exporting.CASE_COLUMNS) and rows[0][0] == "案件"
        assert column(rows, "id") == [cases["emp"]]            # far's case is outside B1
        assert column(rows, "state") == ["资格审核"]
        assert column(rows, "target_grade")[0].startswith("高级客户经理")
        assert sheet_rows(hr.get("/exports/cases.xlsx?state=effective"))[0][1:] == []
        admin = page("admin", "zh_CN")
        assert sorted(column(sheet_rows(admin.get("/exports/cases.xlsx"))[0], "id")) == sorted(cases.values())
        assert column(sheet_rows(admin.get("/exports/cases.xlsx?unit=B3"))[0], "id") == [cases["far"]]
        assert hr.get("/exports/cases.xlsx?unit=NOPE").status_code == 404

    def test_an_employee_exports_only_their_own(self, app, page, cases):
        rows, _ = sheet_rows(page("emp", "en").get("/exports/cases.xlsx"))
        assert rows[0] == headers(app, "en", exporting.CASE_COLUMNS) and rows[0][:2] == ["Case", "Kind"]
        assert column(rows, "id") == [cases["emp"]] and column(rows, "state") == ["Qualification review"]
        assert sheet_rows(page("emp2").get("/exports/cases.xlsx"))[0][1:] == []

    def test_the_api_export_follows_the_language_and_the_scope(self, app, api, cases):
        hr = api("hr_b1")
        rows, _ = sheet_rows(hr.get("/cases.xlsx"))
        assert rows[0][0] == "案件" and column(rows, "id") == [cases["emp"]]     # Chinese by default
        rows, _ = sheet_rows(hr.client.get("/api/v1/cases.xlsx?kind=promotion&level=senior",
                                           headers={**hr.headers, "Accept-Language": "en"}))
        assert rows[0][0] == "Case" and column(rows, "id") == [cases["emp"]]
        assert sheet_rows(hr.get("/cases.xlsx?level=manager"))[0][1:] == []
        assert hr.get("/cases.xlsx?unit=NOPE").status_code == 404
        assert sheet_rows(api("emp2").get("/cases.xlsx"))[0][1:] == []


class TestRoster:
    def test_hr_gets_everyone_of_the_subtree(self, app, page, bank):
        hr = page("hr_b1", "zh_CN")
        assert 'id="roster-card"' in hr.get("/exports/").get_data(as_text=True)
        rows, names = sheet_rows(hr.get("/exports/roster.xlsx"))
        assert names == ["花名册"]
        assert rows[0] == headers(app, "zh_CN", exporting.ROSTER_COLUMNS)
        assert rows[0][3:7] == ["机构名称", "职级", "档次", "职级档次"]
        users = roster_column(rows, "username")
        assert {"emp", "emp2", "weak", "hr_b1", "appr_t1"} <= set(users)
        assert "far" not in users and "admin" not in users
        emp = rows[1 + users.index("emp")]
        assert emp[2] == "T1" and emp[4] == "客户经理" and emp[5] == 3
        assert emp[7] == dt.datetime(2024, 1, 1) and emp[10] == "在岗"
        t1 = roster_column(sheet_rows(hr.get("/exports/roster.xlsx?unit=T1"))[0], "username")
        assert set(t1) == {"emp", "emp2", "appr_t1", "sup_t1"}
        assert hr.get("/exports/roster.xlsx?unit=B3").status_code == 404

    def test_dismissed_people_only_when_asked(self, app, page, bank):
        bank["weak"].status = "dismissed"
        db.session.commit()
        hr = page("hr_b1")
        assert "weak" not in roster_column(sheet_rows(hr.get("/exports/roster.xlsx"))[0], "username")
        assert "weak" in roster_column(sheet_rows(hr.get("/exports/roster.xlsx?dismissed=1"))[0], "username")

    def test_the_admin_people_page_links_it_and_others_are_refused(self, app, page, api, bank):
        assert 'id="roster-xlsx"' in page("admin").get("/admin/people").get_data(as_text=True)
        assert page("emp").get("/exports/roster.xlsx").status_code == 403
        assert page("emp").get("/exports/").status_code == 403
        assert api("emp").get("/roster.xlsx").status_code == 403
        rows, _ = sheet_rows(api("appr_t2").get("/roster.xlsx"))
        assert set(roster_column(rows, "username")) == {"appr_t2", "weak"}


ALLOWANCES = "\nallowances:\n  assistant: 300\n  manager: {1: 500, 2: 600, 3: 700}\n"


@pytest.fixture
def changes(app, bank):
    """Grade changes in March 2026 (emp2: manager-1 -> manager-2; weak: assistant-3 -> manager-1) and one in
    2025 (far, outside B1), under a policy with allowances for assistant and manager only."""
    text = policy_mod.resolve("bank_corporate").read_text(encoding="utf-8") + ALLOWANCES
    engine.activate_policy(policy_mod.loads(text), "bank_corporate")
    directory.change_grade(bank["emp2"], "manager-2", since=dt.date(2026, 3, 1), source="admin")
    directory.change_grade(bank["weak"], "manager-1", since=dt.date(2026, 3, 2), source="admin")
    directory.change_grade(bank["far"], "senior-1", since=dt.date(2025, 6, 1), source="admin")
    db.session.commit()


class TestGradeChanges:
    def test_the_payroll_form_exports_the_range_with_allowances(self, app, page, changes):
        hr = page("hr_b1", "zh_CN")
        html = hr.get("/exports/").get_data(as_text=True)
        assert 'id="payroll-form"' in html and 'name="from"' in html
        rows, names = sheet_rows(hr.get("/exports/grade-changes.xlsx?from=2026-03-01&to=2026-03-31"))
        assert names == ["职级变动"]
        assert rows[0] == headers(app, "zh_CN", exporting.CHANGE_COLUMNS)
        assert rows[0][7:10] == ["原职级津贴(月)", "新职级津贴(月)", "津贴变动"]
        assert [r[1] for r in rows[1:]] == ["emp2", "weak"]
        assert rows[1][0] == dt.datetime(2026, 3, 1) and rows[1][7:10] == [500, 600, 100]
        assert rows[2][7:10] == [300, 500, 200] and rows[2][10] == "系统管理员"
        only_first = sheet_rows(hr.get("/exports/grade-changes.xlsx?from=2026-03-01&to=2026-03-01"))[0]
        assert [r[1] for r in only_first[1:]] == ["emp2"]

    def test_an_allowance_the_policy_does_not_give_stays_empty(self, app, api, changes):
        resp = api("admin").get("/grade-changes?from=2025-01-01&to=2025-12-31")
        assert resp.status_code == 200
        [far] = resp.get_json()["items"]
        assert far["username"] == "far" and far["from_grade"] == "manager-1" and far["to_grade"] == "senior-1"
        assert far["from_allowance"] == 500 and far["to_allowance"] is None and far["allowance_change"] is None
        rows, _ = sheet_rows(api("admin").get("/grade-changes.xlsx?from=2025-01-01&to=2025-12-31"))
        assert rows[1][7:10] == [500, None, None]

    def test_the_api_scopes_and_checks_the_range(self, app, api, changes):
        hr = api("hr_b1")
        body = hr.get("/grade-changes?from=2025-01-01&to=2026-12-31").get_json()
        assert body["total"] == 2 and [i["username"] for i in body["items"]] == ["emp2", "weak"]
        assert hr.get("/grade-changes?from=2026-03-31&to=2026-03-01").status_code == 400
        assert hr.get("/grade-changes?from=yesterday&to=2026-03-01").status_code == 400
        assert hr.get("/grade-changes.xlsx?from=2026-01-01&to=2026-03-01&unit=B3").status_code == 404
        assert api("appr_b1").get("/grade-changes?from=2026-01-01&to=2026-03-31").status_code == 403

    def test_a_bad_range_on_the_page_says_why(self, app, page, changes):
        resp = page("hr_b1").get("/exports/grade-changes.xlsx?from=2026-03-31&to=2026-03-01")
        assert resp.status_code == 400 and 'id="export-error"' in resp.get_data(as_text=True)
        assert page("appr_b1").get("/exports/grade-changes.xlsx?from=2026-03-01&to=2026-03-31").status_code == 403


class TestTemplates:
    @pytest.mark.parametrize("kind", ["units", "people", "scores", "absences"])
    def test_each_template_has_the_importers_chinese_headers_and_notes(self, app, page, bank, kind):
        rows, names = sheet_rows(page("hr_b1", "zh_CN").get(f"/exports/templates/{kind}.xlsx"))
        required, optional, zh = exporting.TEMPLATES[kind]
        assert rows == [[zh[c][0] for c in required + optional]]
        assert names[-1] == "填写说明"
        notes, _ = sheet_rows(page("hr_b1", "zh_CN").get(f"/exports/templates/{kind}.xlsx"), "填写说明")
        assert notes[0] == ["列名", "字段", "必填", "说明", "允许的值", "示例"]
        assert [n[1] for n in notes[1:]][:len(required + optional)] == list(required + optional)
        assert all(n[3] for n in notes[1:]), "every column is explained"

    def test_the_people_template_round_trips_through_the_importer(self, app, page, api, bank):
        resp = api("admin").get("/import-templates/people.xlsx")
        wb = load_workbook(io.BytesIO(resp.get_data()))
        resp.close()
        assert wb.sheetnames == ["人员", "职级履历", "填写说明"]
        notes = {r[1]: r for r in wb["填写说明"].iter_rows(min_row=2, values_only=True)}
        assert "senior-1..senior-3" in notes["grade"][4] and "college" in notes["education"][4]
        wb["人员"].append(["newbie", "新人", "T1", "manager-2", "2025-07-01", "2020-05-01", "bachelor", "active",
                          "", ""])
        wb["职级履历"].append(["newbie", "assistant-2", "2020-05-01"])
        wb["职级履历"].append(["newbie", "manager-1", "2023-01-01"])
        out = io.BytesIO()
        wb.save(out)
        result = importing.import_org(people=out.getvalue())
        db.session.commit()
        assert result.people_created == 1 and result.history_rows == 3
        person = db.session.scalar(select(Person).where(Person.username == "newbie"))
        history = db.session.execute(select(GradeHistory.from_grade, GradeHistory.to_grade,
                                            GradeHistory.effective_on, GradeHistory.source)
                                     .where(GradeHistory.person_id == person.id)
                                     .order_by(GradeHistory.effective_on)).all()
        assert [tuple(h) for h in history] == [
            (None, "assistant-2", dt.date(2020, 5, 1), "import"),
            ("assistant-2", "manager-1", dt.date(2023, 1, 1), "import"),
            ("manager-1", "manager-2", dt.date(2025, 7, 1), "import")]
        # The same file again changes nothing.
        again = importing.import_org(people=out.getvalue())
        db.session.commit()
        assert again.history_rows == 0
        assert db.session.scalar(select(func.count()).select_from(GradeHistory)
                                 .where(GradeHistory.person_id == person.id)) == 3

    def test_english_templates_have_the_column_ids(self, app, page, api, bank):
        rows, names = sheet_rows(page("admin", "en").get("/exports/templates/scores.xlsx"))
        assert rows == [["username", "period", "kind", "value"]] and names == ["Scores", "Notes"]
        assert page("emp").get("/exports/templates/scores.xlsx").status_code == 403
        assert api("emp").get("/import-templates/scores.xlsx").status_code == 403
        assert api("admin").get("/import-templates/nothing.xlsx").status_code == 404


def work(app):
    """`flask --app wsgi worker --once`: runs what is queued, then exits."""
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()


PEOPLE = "用户名,姓名,机构代码,职级,任现职级日期,入职日期\nnewbie,新人,T1,manager-2,2025-07-01,2020-05-01\n"


class TestImportPage:
    def test_a_refused_file_shows_each_row_column_and_reason_and_changes_nothing(self, app, page, bank):
        admin = page("admin", "zh_CN")
        html = admin.get("/jobs/import").get_data(as_text=True)
        assert 'id="import-templates"' in html and "/exports/templates/people.xlsx" in html
        history = "username,grade,grade_since\nnewbie,manager-1,2019-01-01\nnewbie,assistant-1,2024-01-01\n"
        resp = admin.post("/jobs/import", data={"people": (io.BytesIO(PEOPLE.encode()), "人员.csv"),
                                                "history": (io.BytesIO(history.encode()), "履历.csv")},
                          content_type="multipart/form-data")
        assert resp.status_code == 302
        work(app)
        html = admin.get(resp.headers["Location"]).get_data(as_text=True)
        assert 'data-status="failed"' in html and 'id="problem-rows"' in html
        assert ('<td translate="no">履历.csv</td><td>2</td><td translate="no">grade_since</td>'
                '<td class="small">2019-01-01 早于 newbie 的入职日期（2020-05-01）</td>') in html   # in Chinese
        assert html.count('<tr><td translate="no">履历.csv</td>') == 1       # line 3 is right
        assert db.session.scalar(select(func.count()).select_from(Person).where(Person.username == "newbie")) == 0

    def test_the_api_imports_people_with_their_earlier_grades(self, app, api, bank):
        history = "用户名,职级,起始日期\nnewbie,manager-1,2022-01-01\n"
        resp = api("admin").client.post(
            "/api/v1/jobs/imports", headers=api("admin").headers, content_type="multipart/form-data",
            data={"people": (io.BytesIO(PEOPLE.encode()), "people.csv"),
                  "history": (io.BytesIO(history.encode()), "history.csv")})
        assert resp.status_code == 202, resp.get_json()
        work(app)
        job = api("admin").get(f"/jobs/{resp.get_json()['id']}").get_json()
        assert job["status"] == "done" and job["result"]["counts"]["history_rows"] == 2
        newbie = db.session.scalar(select(Person).where(Person.username == "newbie"))
        rows = db.session.scalars(select(GradeHistory).where(GradeHistory.person_id == newbie.id)
                                  .order_by(GradeHistory.effective_on)).all()
        assert [(h.from_grade, h.to_grade, h.source) for h in rows] == [
            (None, "manager-1", "import"), ("manager-1", "manager-2", "import")]


def test_the_excel_pages_are_chinese_in_zh_cn(app, page, changes):
    from tests.web.test_i18n import english_fragments, visible_text, word
    hr, admin = page("hr_b1", "zh_CN"), page("admin", "zh_CN")
    bad = "username,grade,grade_since\nnewbie,manager-1,2019-01-01\n"
    resp = admin.post("/jobs/import", data={"people": (io.BytesIO(PEOPLE.encode()), "人员.csv"),
                                            "history": (io.BytesIO(bad.encode()), "履历.csv")},
                      content_type="multipart/form-data")
    work(app)
    pages = {"exports": hr.get("/exports/"), "exports, bad range": hr.get("/exports/grade-changes.xlsx?from=x&to=y"),
             "case list": hr.get("/cases/"), "people": admin.get("/admin/people"),
             "import": admin.get("/jobs/import"), "refused import": admin.get(resp.headers["Location"])}
    assert pages["exports, bad range"].status_code == 400
    patterns = {frag: word(frag) for frag in english_fragments()}
    for name, resp in pages.items():
        shown = visible_text(resp.get_data(as_text=True))
        assert [frag for frag, pattern in patterns.items() if pattern.search(shown)] == [], name


class TestScoresImport:
    GOOD = "用户名,考核期间,考核类别,得分\nemp,2025-Q4,performance,88\nemp2,2024,skill_test,通过\n"
    BAD = "用户名,考核期间,考核类别,得分\nemp,2025-Q4,performance,188\nnobody,2025,skill_test,pass\n"

    def test_the_page_loads_a_file_or_lists_its_bad_rows(self, app, page, bank):
        admin = page("admin", "zh_CN")
        assert 'id="import-scores-link"' in admin.get("/jobs/import").get_data(as_text=True)
        before = db.session.scalar(select(func.count()).select_from(Score))
        resp = admin.post("/jobs/import/scores", data={"scores": (io.BytesIO(self.BAD.encode()), "成绩.csv")},
                          content_type="multipart/form-data")
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422 and 'id="problem-rows"' in html
        assert '<td>2</td><td translate="no">得分</td>' in html and '<td>3</td><td translate="no">用户名</td>' in html
        assert db.session.scalar(select(func.count()).select_from(Score)) == before
        resp = admin.post("/jobs/import/scores", data={"scores": (io.BytesIO(self.GOOD.encode()), "成绩.csv")},
                          content_type="multipart/form-data", follow_redirects=True)
        assert resp.status_code == 200 and "新增 2 条" in resp.get_data(as_text=True)
        assert db.session.scalar(select(func.count()).select_from(Score)) == before + 2
        assert page("hr_b1").get("/jobs/import/scores").status_code == 403

    def test_the_api_loads_a_file_or_answers_422_with_the_rows(self, app, api, bank):
        admin = api("admin")
        post = lambda text, who=admin: who.client.post(  # noqa: E731
            "/api/v1/imports/scores", headers=who.headers, content_type="multipart/form-data",
            data={"scores": (io.BytesIO(text.encode()), "scores.csv")})
        resp = post(self.BAD)
        assert resp.status_code == 422
        rows = resp.get_json()["error"]["details"]["rows"]
        assert [(r["line"], r["column"]) for r in rows] == [(2, "得分"), (3, "用户名")]
        assert post(self.GOOD).get_json() == {"created": 2, "updated": 0}
        assert post(self.GOOD).get_json() == {"created": 0, "updated": 2}
        assert post(self.GOOD, api("hr_b1")).status_code == 403
