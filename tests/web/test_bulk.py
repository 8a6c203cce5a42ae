"""Bulk work from the inbox and the API: each case ticked is decided on its own (engine.fire with the version
the caller saw); the answer lists each case as decided or refused, with the reason."""
import re

import pytest
from sqlalchemy import func, select

from tests.web.api_checks import err, ok
from workflow import engine
from workflow.models import db, Case, Event
from workflow.models.jobs import Job


def events(case_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Event).where(Event.case_id == case_id))


@pytest.fixture
def three(bank, make_person):
    """Three promotions to senior waiting for appr_b1's qualification."""
    ids = []
    for username in ("emp", "mgr_a", "mgr_b"):
        person = bank.get(username) or make_person(username, bank["units"]["T2"], grade="manager-3",
                                                   performance=88, skill_test=80)
        ids.append(engine.create_promotion(person, person, "senior", "申请").id)
    db.session.commit()
    return ids


def ticked(html: str) -> dict[str, str]:
    """The inbox's tick boxes and the version each carries: {case id: version}."""
    return dict(re.findall(r'name="version-(\d+)" value="(\d+)"', html))


def withdraw(case_id: int) -> None:
    case = db.session.get(Case, case_id)
    engine.fire(case, "withdraw", case.employee, {})
    db.session.commit()


class TestInboxPage:
    def test_ticked_cases_are_decided_each_on_its_own_and_a_changed_one_is_refused(self, page, three, bank):
        appr = page("appr_b1")
        html = appr.get("/inbox").get_data(as_text=True)
        versions = ticked(html)
        assert set(versions) == {str(i) for i in three}
        assert 'id="inbox-bulk"' in html and '<label class="form-label" for="action">' in html
        first, second, third = three
        withdraw(second)          # changed after the page was shown
        before = events(second)
        resp = appr.post("/inbox/decide", data={"action": "qualify", "comment": "同意", "case": [*versions],
                                                **{f"version-{i}": v for i, v in versions.items()}})
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        rows = dict(re.findall(r'<tr data-case="(\d+)" data-ok="(true|false)">', html))
        assert rows == {str(first): "true", str(second): "false", str(third): "true"}
        assert "Decided: 2, refused: 1" in html
        refused = re.search(rf'<tr data-case="{second}" data-ok="false">(.*?)</tr>', html, re.S).group(1)
        assert "withdrawn" in refused or "no longer" in refused or "changed" in refused
        db.session.expire_all()
        assert [db.session.get(Case, i).state for i in three] == ["panel_scoring", "withdrawn", "panel_scoring"]
        assert events(second) == before
        assert db.session.get(Case, first).events[-1].comment == "同意"

    def test_a_stale_version_is_refused_not_overwritten(self, page, three):
        appr = page("appr_b1")
        resp = appr.post("/inbox/decide", data={"action": "qualify", "case": [str(three[0])],
                                                f"version-{three[0]}": "0"})
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200 and f'<tr data-case="{three[0]}" data-ok="false">' in html
        db.session.expire_all()
        assert db.session.get(Case, three[0]).state == "qualification_review"

    def test_only_cases_with_a_bulk_action_get_a_tick_box(self, page, three):
        assert ticked(page("emp").get("/inbox").get_data(as_text=True)) == {}
        assert 'id="inbox-bulk"' not in page("emp").get("/inbox").get_data(as_text=True)

    def test_nothing_ticked_or_a_bad_action_is_400_and_changes_nothing(self, page, three):
        appr = page("appr_b1")
        resp = appr.post("/inbox/decide", data={"action": "qualify"})
        assert resp.status_code == 400 and "Tick at least one case." in resp.get_data(as_text=True)
        resp = appr.post("/inbox/decide", data={"action": "reject", "case": [str(three[0])]})
        assert resp.status_code == 400
        db.session.expire_all()
        assert {db.session.get(Case, i).state for i in three} == {"qualification_review"}

    def test_a_large_selection_goes_to_a_job(self, page, three, monkeypatch):
        monkeypatch.setattr("web.jobs.BULK_AT_ONCE", 2)
        resp = page("appr_b1").post("/inbox/decide", data={"action": "qualify", "case": [str(i) for i in three]})
        assert resp.status_code == 302 and "/jobs/" in resp.headers["Location"]
        job = db.session.scalars(select(Job)).one()
        assert (job.kind, job.params["cases"]) == ("bulk_decision", three)

    def test_the_refusal_is_in_chinese_on_a_chinese_page(self, page, three, bank):
        appr = page("appr_b1", "zh_CN")
        versions = ticked(appr.get("/inbox").get_data(as_text=True))
        resp = appr.post("/inbox/decide", data={"action": "qualify", "case": [*versions],
                                                **{f"version-{i}": "0" for i in versions}})
        html = resp.get_data(as_text=True)
        refused = re.search(rf'<tr data-case="{three[0]}" data-ok="false">(.*?)</tr>', html, re.S).group(1)
        assert re.search(r"[\u4e00-\u9fff]", re.sub(r"<[^>]+>", "", refused))
        assert not re.search(r"[A-Za-z]{4,}", re.sub(r"<[^>]+>", "", refused))


class TestApi:
    def test_each_case_decided_or_refused_with_its_reason(self, api, three, bank):
        first, second, third = three
        withdraw(second)
        body = ok(api("appr_b1").post("/cases/bulk", {
            "action": "qualify", "cases": three, "comment": "同意",
            "versions": {str(first): 1, str(second): 1, str(third): 1}}))
        assert (body["action"], body["ok"], body["refused"]) == ("qualify", 2, 1)
        by_case = {i["case"]: i for i in body["items"]}
        assert (by_case[first]["ok"], by_case[first]["state"], by_case[first]["version"]) == \
            (True, "panel_scoring", 2)
        assert (by_case[second]["ok"], by_case[second]["status"], by_case[second]["code"]) == \
            (False, 409, "conflict")
        assert by_case[second]["reason"] and "message" not in by_case[second]
        db.session.expire_all()
        assert db.session.get(Case, third).state == "panel_scoring"

    def test_not_an_assignee_and_not_visible_are_refused_per_case(self, api, three, bank):
        emp2_case = engine.create_promotion(bank["emp2"], bank["emp2"], "manager-2", "申请").id
        db.session.commit()
        body = ok(api("appr_b1").post("/cases/bulk", {"action": "qualify", "cases": [three[0], 999999]}))
        assert [(i["case"], i["ok"], i.get("code")) for i in body["items"]] == \
            [(three[0], True, None), (999999, False, "not_found")]
        body = ok(api("appr_b1").post("/cases/bulk", {"action": "qualify", "cases": [emp2_case]}))
        assert body["items"][0]["code"] == "forbidden"

    def test_the_reason_follows_the_request_language(self, api, client, three):
        token = api("appr_b1").headers
        resp = client.post("/api/v1/cases/bulk", json={"action": "qualify", "cases": [three[0]],
                                                        "versions": {str(three[0]): 0}},
                           headers={**token, "Accept-Language": "zh-CN"})
        item = ok(resp)["items"][0]
        assert item["code"] == "conflict" and re.search(r"[\u4e00-\u9fff]", item["reason"])
        resp = client.post("/api/v1/cases/bulk", json={"action": "qualify", "cases": [three[0]],
                                                        "versions": {str(three[0]): 0}}, headers=token)
        assert not re.search(r"[\u4e00-\u9fff]", ok(resp)["items"][0]["reason"])

    def test_bad_bodies_are_400(self, api, three):
        for bad in ({"action": "reject", "cases": three}, {"action": "qualify", "cases": []},
                    {"action": "qualify", "cases": [three[0], three[0]]},
                    {"action": "qualify", "cases": three, "versions": {"5": 1}}):
            assert err(api("appr_b1").post("/cases/bulk", bad), 400)["code"] == "bad_request"
        db.session.expire_all()
        assert {db.session.get(Case, i).state for i in three} == {"qualification_review"}

    def test_a_large_selection_is_a_job(self, api, three, monkeypatch):
        monkeypatch.setattr("web.jobs.BULK_AT_ONCE", 2)
        job = ok(api("appr_b1").post("/cases/bulk", {"action": "qualify", "cases": three}), 202)
        assert (job["kind"], job["status"]) == ("bulk_decision", "queued")


def test_a_jobs_refusals_are_shown_in_the_readers_language(app, api, page, three):
    """The worker stores each refusal's message; the job's page and the API show it in their own language."""
    job = ok(api("appr_b1").post("/jobs/bulk-decisions", {"action": "qualify", "cases": three[:2],
                                                          "versions": {str(three[0]): 0}}), 202)
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    items = ok(api("appr_b1").get(f"/jobs/{job['id']}"))["result"]["items"]
    assert items[0]["reason"] == "the case has changed since version 0 (now 1); reload it"
    assert items[1]["ok"] is True
    html = page("appr_b1", "zh_CN").get(f"/jobs/{job['id']}").get_data(as_text=True)
    assert "案件自版本 0 以来已有变化（现为 1）；请重新加载" in html
    assert "reload it" not in html
