"""The annual review pages: the navigation link for HR, choosing a unit and a year, the preview (nothing is
written), opening the cases (CSRF), the stored result with links to its cases, refusals, and zh-CN."""
import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from workflow.models import db, Absence, Case, Person, Review


def html(resp):
    return resp.get_data(as_text=True)


@pytest.fixture
def seniors(bank, make_person):
    """Ten ranked seniors in B1 (s9 re-competes) and s10, absent most of 2025 for another reason."""
    for i, score in enumerate([95, 90, 90, 85, 80, 75, 70, 65, 60, 55, 50]):
        make_person(f"s{i}", bank["units"]["T1"], grade="senior-2", performance=score)
    db.session.add(Absence(person=db.session.query(Person).filter_by(username="s10").one(),
                           start=dt.date(2025, 1, 1), end=dt.date(2025, 11, 30), reason="other"))
    db.session.commit()
    return bank


def preview(page, who="hr_b1", unit="B1", period="2025", lang="en"):
    return page(who, lang).get(f"/reviews/preview?unit={unit}&period={period}")


def run(page, who="hr_b1", unit="B1", period="2025", lang="en", **kw):
    """The preview's button (the testing configuration leaves CSRF off; test_the_run_needs_its_csrf_token)."""
    assert 'id="form-run"' in html(preview(page, who, unit, period, lang))
    return page(who, lang).post("/reviews/run", data={"unit": unit, "period": period}, **kw)


def test_navigation_and_index(bank, page):
    assert 'id="nav-reviews"' in html(page("hr_b1").get("/"))
    assert 'id="nav-reviews"' not in html(page("appr_b1").get("/"))
    assert 'id="nav-reviews"' not in html(page("emp").get("/"))
    index = page("hr_b1").get("/reviews/")
    body = html(index)
    assert index.status_code == 200 and 'id="review-form"' in body and "No review has been run yet." in body
    assert '<option value="B1">' in body and '<option value="T2">' in body
    assert '<option value="R1">' not in body
    assert 'value="2025"' in body                                   # last year by default
    assert 'id="review-form"' not in html(page("appr_b1").get("/reviews/"))   # approvers only look
    assert page("emp").get("/reviews/").status_code == 403


def test_preview_shows_every_outcome_and_writes_nothing(seniors, page):
    resp = preview(page)
    body = html(resp)
    assert resp.status_code == 200
    assert 'id="dry-run-note"' in body and 'id="form-run"' in body
    assert re.search(r'data-person="s9" data-outcome="recompete"', body)
    assert re.search(r'data-person="s10" data-outcome="demote_absence"', body)
    assert re.search(r'data-person="emp" data-outcome="none"', body)
    assert "Rank 10 of 10 in B1: in the bottom 10% of the level" in body
    assert "Worked 0.87 months in 2025 because of other absence: demoted one level" in body
    assert "Stores the review and opens 2 cases" in body
    assert db.session.scalar(select(func.count(Review.id))) == 0
    assert db.session.scalar(select(func.count(Case.id))) == 0


def test_open_the_cases_then_the_stored_result(seniors, page):
    resp = run(page)
    assert resp.status_code == 302
    review = db.session.scalar(select(Review))
    assert resp.headers["Location"].endswith(f"/reviews/{review.id}")
    body = html(page("hr_b1").get(resp.headers["Location"]))
    assert "The review is stored; 2 case(s) opened." in body
    cases = {o["username"]: o["case"] for o in review.outcomes if o["case"]}
    assert set(cases) == {"s9", "s10"}
    for cid in cases.values():
        assert f'href="/cases/{cid}"' in body
    assert db.session.get(Case, cases["s9"]).reason == "recompete"
    # Approvers see the stored result; the list shows it with its counts.
    assert page("appr_b1").get(f"/reviews/{review.id}").status_code == 200
    listed = html(page("appr_b1").get("/reviews/"))
    assert f'data-review="{review.id}"' in listed and 'data-outcome="recompete"' in listed
    assert page("emp").get(f"/reviews/{review.id}").status_code == 404
    # Again: the preview goes to the stored result, and a second run opens nothing.
    again = preview(page)
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/reviews/{review.id}")
    resp = page("hr_b1").post("/reviews/run", data={"unit": "B1", "period": "2025"}, follow_redirects=True)
    assert "B1 was reviewed for 2025 already; nothing new was opened." in html(resp)
    assert db.session.scalar(select(func.count(Case.id))) == 2


def test_the_run_needs_its_csrf_token(seniors, page, app):
    hr = page("hr_b1")                       # logged in first
    app.config["WTF_CSRF_ENABLED"] = True
    resp = hr.post("/reviews/run", data={"unit": "B1", "period": "2025"})
    assert resp.status_code == 400
    assert db.session.scalar(select(func.count(Review.id))) == 0
    body = html(preview(page))
    token = re.search(r'<form method="post" action="/reviews/run" id="form-run">.*?name="csrf_token" '
                      r'type="hidden" value="([^"]+)"', body, re.S).group(1)
    resp = hr.post("/reviews/run", data={"csrf_token": token, "unit": "B1", "period": "2025"})
    assert resp.status_code == 302
    assert db.session.scalar(select(func.count(Review.id))) == 1


class TestRefusals:
    def test_a_unit_outside_ones_hr_scope(self, bank, page):
        assert preview(page, unit="R1").status_code == 404           # above the HR officer: out of sight
        assert preview(page, who="appr_b1").status_code == 403
        resp = page("appr_b1").post("/reviews/run", data={"unit": "B1", "period": "2025"})
        assert resp.status_code == 403 and "only HR at B1 or above" in html(resp)
        for code in ("R1", "B3", "NOPE"):                             # above, beside, nowhere: not visible
            resp = page("hr_b1").post("/reviews/run", data={"unit": code, "period": "2025"})
            assert resp.status_code == 404
        assert db.session.scalar(select(func.count(Review.id))) == 0

    def test_a_bad_year(self, bank, page):
        resp = preview(page, period="2025-Q1")
        assert resp.status_code == 400 and "period must be a year" in html(resp)

    def test_an_overlapping_review(self, seniors, page):
        assert run(page, unit="T1").status_code == 302
        resp = preview(page, who="hr_r1", unit="R1")
        assert resp.status_code == 422 and "2025 was reviewed at T1" in html(resp)


def test_review_pages_in_chinese(seniors, page):
    """Every review page in zh-CN shows no catalog English (once the catalog holds this work's strings)."""
    from tests.web.test_i18n import english_fragments, visible_text, word
    if "Open the cases" not in english_fragments().values():
        pytest.skip("the zh_Hans_CN catalog does not hold the review pages' strings yet")
    zh = page("hr_b1", "zh_CN")
    pages = {"index": zh.get("/reviews/"), "preview": preview(page, lang="zh_CN"),
             "bad year": preview(page, period="x", lang="zh_CN")}
    resp = run(page, lang="zh_CN", follow_redirects=True)
    pages["stored"] = resp
    pages["list"] = zh.get("/reviews/")
    fragments = english_fragments()
    problems = []
    for name, r in pages.items():
        shown = visible_text(re.search(r"<main.*?</main>", html(r), re.S).group(0))
        assert re.search(r"[\u4e00-\u9fff]", shown), name
        problems += [f"{name}: {fragments[f]!r}" for f in fragments if word(f).search(shown)]
    assert problems == []
