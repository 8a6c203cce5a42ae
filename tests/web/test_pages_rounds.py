"""The rounds pages: list, opening form, the round page (quotas, eligible people, applications), closing and
deciding from their buttons, results and XLSX, the round on the application form and the case page, and
every rounds page in zh-CN."""
import io
import re

import pytest
from openpyxl import load_workbook

from tests.web.test_i18n import english_fragments, visible_text, word
from workflow import engine, rounds
from workflow.models import db, Case, Person, Round

FORM = {"unit": "B1", "period": "2026", "title": "2026年度晋级", "opens_on": "2026-03-01",
        "closes_on": "2026-03-31", "levels": ["senior"]}


def html(resp):
    return resp.get_data(as_text=True)


def open_round(page, who="hr_b1", **changes):
    resp = page(who).post("/rounds/new", data={**FORM, **changes})
    assert resp.status_code == 302, html(resp)
    return int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def version(page, who, rid):
    body = html(page(who).get(f"/rounds/{rid}"))
    return re.search(r'id="round-header" data-version="(\d+)"', body).group(1)


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def file_case(who, target, rid):
    case = engine.create_promotion(person(who), person(who), target, "申请晋级", round=rid)
    db.session.commit()
    return case


def to_hr(case, score=85, approver="appr_b1"):
    """Through the engine to HR approval: the panel and the supervisor all give `score`."""
    def act(action, who, **data):
        engine.fire(case, action, person(who), data)
        db.session.commit()
    act("qualify", approver)
    act("assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
    for member in ("panel1", "panel2", "panel3"):
        act("score", member, score=score)
    act("supervisor_score", next(a.person.username for a in case.assignments if a.duty == "supervisor"),
        score=score)
    return case


def post_action(page, who, rid, action, v=None):
    return page(who).post(f"/rounds/{rid}/{action}", data={"version": v or version(page, who, rid)})


@pytest.fixture
def crowd(bank, make_person):
    make_person("mgr_a", bank["units"]["T1"], grade="manager-3", performance=85, skill_test="pass")
    for i in range(10):
        make_person(f"filler{i}", bank["units"]["T2"], grade="manager-1", password=None)
    db.session.commit()
    return bank


def test_navigation_and_list(bank, page):
    assert 'id="nav-rounds"' in html(page("hr_b1").get("/"))
    assert 'id="nav-rounds"' in html(page("appr_b1").get("/"))
    assert 'id="nav-rounds"' not in html(page("emp").get("/"))
    empty = page("hr_b1").get("/rounds/")
    assert empty.status_code == 200 and "No round yet." in html(empty) and 'id="open-round"' in html(empty)
    assert 'id="open-round"' not in html(page("appr_b1").get("/rounds/"))
    assert page("emp").get("/rounds/").status_code == 403
    rid = open_round(page)
    listed = html(page("appr_b1").get("/rounds/"))
    assert f'data-round="{rid}"' in listed and "2026年度晋级" in listed
    assert f'data-round="{rid}"' not in html(page("appr_b1").get("/rounds/?state=decided"))


class TestOpenForm:
    def test_form(self, bank, page):
        resp = page("hr_b1").get("/rounds/new")
        assert resp.status_code == 200
        body = html(resp)
        assert 'id="round-form"' in body and 'value="B1"' in body and 'value="senior"' in body
        assert "cap 15%" in body and "Minimum composite: 60" in body
        assert page("appr_b1").get("/rounds/new").status_code == 403
        assert page("emp").get("/rounds/new").status_code == 403

    def test_open(self, bank, page):
        rid = open_round(page)
        body = html(page("hr_b1").get(f"/rounds/{rid}"))
        assert "The round is open" in body and 'data-state="open"' in body

    def test_missing_fields_are_400(self, bank, page):
        resp = page("hr_b1").post("/rounds/new", data={**FORM, "levels": [], "opens_on": ""})
        assert resp.status_code == 400
        assert "Choose at least one target level." in html(resp) and "Enter a date." in html(resp)

    def test_refusals_are_shown_where_they_belong(self, bank, page):
        resp = page("hr_b1").post("/rounds/new", data={**FORM, "levels": ["principal"]})
        assert resp.status_code == 422 and "HR approval for principal is at the region level" in html(resp)
        resp = page("hr_b1").post("/rounds/new", data={**FORM, "closes_on": "2026-02-01"})
        assert resp.status_code == 422 and "cannot close" in html(resp)
        open_round(page)
        resp = page("hr_b1").post("/rounds/new", data=FORM)
        assert resp.status_code == 422 and "already covers senior" in html(resp)

    def test_a_unit_outside_the_choices(self, bank, page):
        assert page("hr_b1").post("/rounds/new", data={**FORM, "unit": "B3"}).status_code == 400


def test_round_page(crowd, page):
    rid = open_round(page, levels=["senior", "manager"])
    body = html(page("hr_b1").get(f"/rounds/{rid}"))
    assert 'id="quotas"' in body and 'data-level="senior"' in body
    # 15% of 14 managers: 2 places, nobody holds senior yet.
    senior_row = re.search(r'<tr data-level="senior">(.*?)</tr>', body, re.S).group(1)
    assert "cap 15%" in senior_row and "max(0, 2 − 0 + 0) = 2" in senior_row
    assert "no quota" in re.search(r'<tr data-level="manager">(.*?)</tr>', body, re.S).group(1)
    assert 'data-person="emp"' in body and 'data-person="mgr_a"' in body and 'data-person="emp2"' in body
    assert f'href="/cases/new?employee=emp&amp;round={rid}"' in body
    assert 'id="do-close"' in body and 'id="do-decide"' in body
    viewer = html(page("appr_b1").get(f"/rounds/{rid}"))
    assert 'id="round-actions"' not in viewer and "apply-for" not in viewer
    assert page("emp").get(f"/rounds/{rid}").status_code == 404
    assert page("hr_b1").get("/rounds/999").status_code == 404


def test_apply_through_the_round(crowd, page):
    rid = open_round(page)
    form = html(page("hr_b1").get(f"/cases/new?employee=emp&round={rid}"))
    assert 'id="round-choice"' in form and f'<option value="{rid}" translate="no" selected>' in form
    resp = page("hr_b1").post(f"/cases/new?employee=emp&round={rid}", data={
        "employee": "emp", "target_grade": "senior-1", "round": str(rid), "submit": "1"})
    assert resp.status_code == 302, html(resp)
    case = db.session.query(Case).one()
    assert case.round_id == rid
    assert f'href="/rounds/{rid}"' in html(page("hr_b1").get(f"/cases/{case.id}"))
    assert 'id="round-mark"' in html(page("emp").get(f"/cases/{case.id}"))      # a badge, not a link
    assert f'href="/rounds/{rid}"' not in html(page("emp").get(f"/cases/{case.id}"))
    body = html(page("hr_b1").get(f"/rounds/{rid}"))
    assert f'href="/cases/{case.id}"' in body and 'id="pending-note"' in body and "disabled" in body
    # The employee sees the open round on their own form; a refused round says why.
    own = html(page("mgr_a").get("/cases/new"))
    assert f'<option value="{rid}" translate="no">' in own
    resp = page("emp2").post("/cases/new", data={"employee": "emp2", "target_grade": "manager-2",
                                                  "round": str(rid), "submit": "1"})
    assert resp.status_code == 422 and "is for senior, not manager" in html(resp)


def test_close_and_decide_from_the_page(crowd, page):
    rid = open_round(page)
    rnd = db.session.get(Round, rid)
    case = file_case("mgr_a", "senior", rid)
    assert post_action(page, "appr_b1", rid, "close").status_code == 403
    resp = post_action(page, "hr_b1", rid, "decide")
    assert resp.status_code == 409 and "have not reached HR approval" in html(resp)
    stale = post_action(page, "hr_b1", rid, "close", v="9")
    assert stale.status_code == 409 and "changed since you loaded it" in html(stale)
    resp = post_action(page, "hr_b1", rid, "close")
    assert resp.status_code == 302
    assert "Applications are closed." in html(page("hr_b1").get(f"/rounds/{rid}"))
    assert post_action(page, "hr_b1", rid, "close").status_code == 409
    assert page("hr_b1").post(f"/rounds/{rid}/reopen", data={}).status_code == 404
    assert page("hr_b1").get(f"/rounds/{rid}/results.xlsx").status_code == 409
    to_hr(case)
    resp = post_action(page, "hr_b1", rid, "decide")
    assert resp.status_code == 302
    body = html(page("hr_b1").get(f"/rounds/{rid}"))
    assert "The round is decided." in body and 'id="results"' in body and 'data-decision="promoted"' in body
    assert 'id="round-actions"' not in body and 'id="eligible"' not in body
    db.session.refresh(rnd)
    assert rnd.state == "decided" and rounds.cases_of(rnd)[0].state == "effective"
    assert post_action(page, "hr_b1", rid, "decide", v=str(rnd.version)).status_code == 409
    xlsx = page("hr_b1", "zh_CN").get(f"/rounds/{rid}/results.xlsx")
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    rows = list(sheet.values)
    assert rows[0][0] == "目标职级" and rows[0][6] == "评选结果"
    assert (rows[1][0], rows[1][2], rows[1][6]) == ("高级客户经理", "mgr_a", "晋级")


def test_rounds_pages_are_chinese_in_zh_cn(crowd, page):
    """Every state of the rounds pages, in zh-CN, shows no catalog English."""
    hr = page("hr_b1", "zh_CN")
    pages = {"list empty": hr.get("/rounds/"), "new": hr.get("/rounds/new"),
             "new 400": hr.post("/rounds/new", data={**FORM, "levels": []}),
             "new 422": hr.post("/rounds/new", data={**FORM, "levels": ["principal"]})}
    rid = open_round(page, levels=["senior", "manager"])
    pages["open"] = hr.get(f"/rounds/{rid}")
    pages["list"] = hr.get("/rounds/")
    pages["apply in round"] = hr.get(f"/cases/new?employee=emp&round={rid}")
    first = file_case("mgr_a", "senior", rid)
    pages["pending"] = hr.post(f"/rounds/{rid}/decide", data={"version": version(page, "hr_b1", rid)})
    to_hr(first)
    low = to_hr(file_case("emp", "senior", rid), score=30)
    pages["closed"] = hr.post(f"/rounds/{rid}/close", data={"version": version(page, "hr_b1", rid)},
                              follow_redirects=True)
    pages["decided"] = hr.post(f"/rounds/{rid}/decide", data={"version": version(page, "hr_b1", rid)},
                               follow_redirects=True)
    pages["not selected case"] = page("emp", "zh_CN").get(f"/cases/{low.id}")
    pages["case in a round"] = hr.get(f"/cases/{first.id}")
    fragments = english_fragments()
    problems = []
    for name, resp in pages.items():
        assert resp.status_code in (200, 400, 409, 422), (name, resp.status_code)
        # The pages' own content; the navigation bar is every page's, checked by test_i18n.
        shown = visible_text(re.search(r"<main.*?</main>", html(resp), re.S).group(0))
        assert re.search(r"[\u4e00-\u9fff]", shown), name
        problems += [f"{name}: {fragments[f]!r}" for f in fragments if word(f).search(shown)]
    assert problems == []
    assert "未入选" in visible_text(html(pages["decided"]))
    assert db.session.query(Person).filter_by(username="mgr_a").one().grade == "senior-1"
