"""The HR dashboard: the page (/hr/pipeline) and its SVG charts, the case list's filters it links to, and the
same figures through GET /api/v1/pipeline."""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

from tests.conftest import TODAY
from workflow import clock, engine
from workflow.models import db, OrgUnit, Person


def text(resp) -> str:
    return resp.get_data(as_text=True)


def unit(code: str) -> OrgUnit:
    return db.session.scalar(select(OrgUnit).filter_by(code=code))


def person(username: str) -> Person:
    return db.session.scalar(select(Person).filter_by(username=username))


@pytest.fixture
def world(bank, make_person):
    """emp (T1) to senior, qualified (panel scoring); emp2 (T1) to manager-2, waiting; t2a (T2) withdrawn; far (T4,
    outside B1) waiting. Two seniors in T2 put B1 over the 15% cap of senior."""
    make_person("t2a", unit("T2"), grade="manager-3", performance=85, skill_test=75)
    make_person("s1", unit("T2"), grade="senior-1")
    make_person("s2", unit("T2"), grade="senior-1")
    db.session.commit()
    a = engine.create_promotion(person("emp"), person("emp"), "senior", "请审批")
    engine.fire(a, "qualify", person("appr_b1"), {})
    b = engine.create_promotion(person("emp2"), person("emp2"), "manager-2", "请审批")
    c = engine.create_promotion(person("t2a"), person("t2a"), "senior", "请审批")
    engine.fire(c, "withdraw", person("t2a"), {})
    e = engine.create_promotion(person("far"), person("far"), "manager-2", "请审批")
    db.session.commit()
    return {"a": a.id, "b": b.id, "c": c.id, "e": e.id}


# --- the page ----------------------------------------------------------------------------------------------

def test_dashboard_page_shows_counts_by_unit_steps_overdue_and_headcount(world, page):
    hr = page("hr_b1")
    html = text(hr.get("/hr/pipeline?unit=B1"))
    # Counts by state, each a link to the list filtered the same way.
    assert 'data-state="qualification_review">1<' in html and 'data-state="panel_scoring">1<' in html
    assert "/cases/?unit=B1&amp;state=withdrawn" in html
    # By child unit: T1 and T2, each count linking to that unit's cases of the state and level.
    assert 'data-unit="T1"' in html and 'data-unit="T2"' in html
    assert "/cases/?unit=T1&amp;state=panel_scoring&amp;level=senior" in html
    assert "/cases/?unit=T2&amp;state=withdrawn&amp;level=senior" in html
    assert "/hr/pipeline?unit=T1" in html                          # down to the child's own dashboard
    # Time per step, with the policy's deadline.
    assert 'data-step="promotion.qualification_review"' in html and 'data-step="promotion.panel_scoring"' in html
    assert 'data-step="promotion.withdrawn"' not in html
    # The charts, as images of their own routes.
    assert 'src="/hr/pipeline/funnel.svg?unit=B1"' in html and 'src="/hr/pipeline/grades.svg?unit=B1"' in html
    # Headcount: 2 seniors of 6 managers in B1, a cap of 15% allows 0.
    head = html[html.index('id="headcount"'):]
    assert 'data-unit="B1"' in head and 'data-unit="T2"' in head
    assert "over the cap: 0 allowed" in head and 'id="over-cap"' in head
    assert "No case is past its deadline." in html
    # Overdue: how late, the most late first.
    clock.fix_today(TODAY + dt.timedelta(days=30))
    html = text(hr.get("/hr/pipeline?unit=B1"))
    rows = re.findall(r'<tr data-case="(\d+)">', html)
    assert sorted(map(int, rows)) == sorted([world["a"], world["b"]])
    assert 'data-late="23"' in html and "23 days" in html and "(17 working days)" in html
    assert "/cases/?unit=B1&amp;overdue=1" in html


def test_dashboard_page_kind_filter_and_refusals(world, page):
    hr = page("hr_b1")
    html = text(hr.get("/hr/pipeline?unit=B1&kind=probation"))
    assert "No case in this unit yet." in html and 'id="funnel-chart"' not in html
    assert 'id="grades-chart"' in html
    html = text(hr.get("/hr/pipeline?unit=B1&kind=promotion"))
    assert "/cases/?unit=B1&amp;kind=promotion&amp;state=panel_scoring" in html
    resp = hr.get("/hr/pipeline?unit=B1&kind=nonsense")
    assert resp.status_code == 400 and "nonsense" in text(resp)
    assert hr.get("/hr/pipeline?unit=B3").status_code == 404
    assert hr.get("/hr/pipeline/funnel.svg?unit=B3").status_code == 404
    assert page("emp").get("/hr/pipeline/grades.svg").status_code == 403


def test_dashboard_page_in_chinese(world, page):
    html = text(page("hr_b1", "zh_CN").get("/hr/pipeline?unit=B1"))
    for words in ("晋级漏斗", "各步用时", "编制与政策", "超出上限"):
        assert words in html, words


def test_charts_are_svg_with_no_script_and_nothing_fetched(world, page):
    for lang, words in (("en", ("Filed", "Qualified")), ("zh_CN", ("申请", "资格审核通过"))):
        resp = page("hr_b1", lang).get("/hr/pipeline/funnel.svg?unit=B1")
        assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
        svg = text(resp)
        root = ET.fromstring(resp.data)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert not [el for el in root.iter() if el.tag.endswith("script")]
        assert "<script" not in svg and "kozea.github.io" not in svg and "href=\"http" not in svg
        for word in words:
            assert word in svg, (lang, word)
    grades = text(page("hr_b1", "zh_CN").get("/hr/pipeline/grades.svg?unit=B1"))
    assert "高级客户经理" in grades and "上限 15%" in grades and "目标 36%" in grades and "<script" not in grades
    assert "#dc3545" in grades                                   # the senior bar is over its cap: red
    empty = text(page("hr_b1").get("/hr/pipeline/grades.svg?unit=T1"))
    assert "<svg" in empty


# --- the case list's filters ------------------------------------------------------------------------------

def test_case_list_filters_the_dashboard_links_to(world, page):
    hr = page("hr_b1")

    def ids(path):
        resp = hr.get(path)
        assert resp.status_code == 200, text(resp)
        return sorted(int(i) for i in set(re.findall(r'href="/cases/(\d+)"', text(resp))))

    assert ids("/cases/?unit=B1") == sorted([world["a"], world["b"], world["c"]])
    assert ids("/cases/?unit=T2&state=withdrawn&level=senior") == [world["c"]]
    assert ids("/cases/?unit=B1&direct=1") == []                 # nobody directly in B1 has a case
    assert ids("/cases/?unit=T1&direct=1&kind=promotion") == sorted([world["a"], world["b"]])
    assert ids("/cases/?unit=B1&overdue=1") == []
    clock.fix_today(TODAY + dt.timedelta(days=30))
    assert ids("/cases/?unit=B1&overdue=1") == sorted([world["a"], world["b"]])
    assert ids("/cases/?overdue=1&state=panel_scoring") == [world["a"]]
    html = text(hr.get("/cases/?unit=B1&overdue=1"))
    assert 'id="f-overdue" checked' in html
    for path, word in (("/cases/?state=nonsense", "state"), ("/cases/?level=captain", "level"),
                       ("/cases/?kind=nonsense", "kind"), ("/cases/?overdue=maybe", "overdue"),
                       ("/cases/?direct=1", "direct"), ("/cases/?kind=probation&state=panel_scoring", "state")):
        resp = hr.get(path)
        assert resp.status_code == 400, path
        assert word in text(resp), path
    assert hr.get("/cases/?unit=NOPE").status_code == 404


def test_api_case_list_filters(world, api):
    hr = api("hr_b1")

    def ids(path):
        resp = hr.get(path)
        assert resp.status_code == 200, resp.get_json()
        return sorted(c["id"] for c in resp.get_json()["items"])

    assert ids("/cases?unit=B1&level=senior") == sorted([world["a"], world["c"]])
    assert ids("/cases?unit=T1&direct=1") == sorted([world["a"], world["b"]])
    clock.fix_today(TODAY + dt.timedelta(days=30))
    assert ids("/cases?unit=B1&overdue=1") == sorted([world["a"], world["b"]])
    assert ids("/cases?overdue=true&level=manager") == [world["b"]]
    for path, field in (("/cases?state=nope", "state"), ("/cases?level=nope", "level"), ("/cases?kind=x", "kind"),
                        ("/cases?overdue=2", "overdue"), ("/cases?direct=1", "direct")):
        resp = hr.get(path)
        assert resp.status_code == 400, path
        assert resp.get_json()["error"]["details"]["field"] == field
    assert hr.get("/cases?unit=NOPE").status_code == 404


# --- the API ----------------------------------------------------------------------------------------------

def test_api_pipeline_has_the_dashboards_figures(world, api):
    pipe = api("hr_b1").get("/pipeline?unit=B1").get_json()
    assert pipe["unit"] == "B1"
    assert pipe["by_state"] == {"panel_scoring": 1, "qualification_review": 1, "withdrawn": 1}
    assert pipe["overdue"] == []
    assert [u["code"] for u in pipe["units"]] == ["B1", "T1", "T2"]
    assert pipe["by_unit"] == {"T1": {"senior": {"panel_scoring": 1}, "manager": {"qualification_review": 1}},
                               "T2": {"senior": {"withdrawn": 1}}}
    assert [s["state"] for s in pipe["steps"]] == ["qualification_review", "panel_scoring"]
    assert pipe["steps"][0]["visits"] == 3 and pipe["steps"][0]["current"] == 1
    assert pipe["steps"][0]["deadline_days"] == 5
    assert pipe["funnel"][:2] == [{"stage": "filed", "cases": 3}, {"stage": "qualified", "cases": 1}]
    hc = pipe["headcount"]
    assert hc["total"]["headcount"] == 6 and hc["total"]["over_cap"] == ["senior"]
    assert hc["by_unit"]["T2"]["levels"]["senior"] == {"count": 2, "share": 0.5, "cap": 0.15, "target": None,
                                                       "places": 0, "target_count": None, "over_cap": True}
    clock.fix_today(TODAY + dt.timedelta(days=30))
    pipe = api("hr_b1").get("/pipeline?unit=B1").get_json()
    assert pipe["overdue"] == sorted([world["a"], world["b"]])
    assert {s["case"]: s["days_late"] for s in pipe["overdue_steps"]} == {world["a"]: 23, world["b"]: 23}
    assert pipe["overdue_steps"][0]["working_days_late"] == 17
    assert api("hr_hq").get("/pipeline?kind=promotion").get_json()["by_unit"].keys() == {"R1", "R2"}
    assert api("hr_b1").get("/pipeline?unit=B1&kind=probation").get_json()["funnel"] == []
    resp = api("hr_b1").get("/pipeline?kind=nonsense")
    assert resp.status_code == 400 and resp.get_json()["error"]["details"]["field"] == "kind"
