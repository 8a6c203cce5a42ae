"""The annual review API (/api/v1/reviews): shapes, 201 then 200 with the stored outcomes, dry runs, the
order of checks, the list; and the `annual-review` command."""
import datetime as dt

import pytest
from sqlalchemy import func, select

from workflow.models import db, Absence, Case, OrgUnit, Person, Review
from api_checks import err  # noqa: E402


@pytest.fixture
def seniors(bank, make_person):
    """Eleven seniors of B1; s3 was absent most of 2025 for another reason, so ten are ranked and the last
    of them, s10, re-competes."""
    scores = [95, 90, 90, 85, 80, 75, 70, 65, 60, 55, 50]
    for i, score in enumerate(scores):
        make_person(f"s{i}", bank["units"]["T1" if i % 2 else "T2"], grade="senior-2", performance=score)
    db.session.add(Absence(person=db.session.query(Person).filter_by(username="s3").one(),
                           start=dt.date(2025, 1, 1), end=dt.date(2025, 11, 30), reason="other"))
    db.session.commit()
    return bank


def outcomes(body):
    return {o["username"]: o for o in body["outcomes"]}


def test_a_run_answers_201_then_the_stored_outcomes_with_200(seniors, api):
    resp = api("hr_b1").post("/reviews", {"unit": "B1", "period": "2025"})
    assert resp.status_code == 201, resp.get_json()
    first = resp.get_json()
    assert {"id", "unit", "period", "dry_run", "stored", "created_by", "created_at", "policy_version",
            "outcomes"} <= set(first)
    assert (first["unit"], first["period"], first["dry_run"], first["stored"], first["created_by"]) == (
        "B1", "2025", False, False, "hr_b1")
    got = outcomes(first)
    for o in first["outcomes"]:
        assert {"username", "level", "rank", "of", "outcome", "reason", "case"} <= set(o)
        assert o["outcome"] in ("recompete", "demote_absence", "exempt_leave", "dismiss_consecutive", "tier_up",
                                "tier_down", "none")
    assert (got["s10"]["outcome"], got["s10"]["rank"], got["s10"]["of"], got["s10"]["level"]) == (
        "recompete", 10, 10, "senior")
    assert got["s10"]["reason"] == "rank 10 of 10 in B1, bottom 10% of senior (the last 1 of 10)"
    assert (got["s9"]["outcome"], got["s9"]["rank"]) == ("none", 9)
    # 级档浮动: the top 20% (ranks 1 and 2, the tie included) move up a tier at once, without a case.
    assert {u for u, o in got.items() if o["outcome"] == "tier_up"} == {"s0", "s1", "s2", "emp2"}
    assert (got["s1"]["to_grade"], got["s1"]["case"]) == ("senior-3", None)
    assert db.session.query(Person).filter_by(username="s1").one().grade == "senior-3"
    assert got["s3"]["outcome"] == "demote_absence" and got["s3"]["rank"] is None
    assert got["s3"]["reason"] == ("worked 0.87 months in 2025 (under 2) because of other absence: "
                                   "demoted one level")
    assert got["emp"]["outcome"] == "none" and got["emp"]["case"] is None
    cases = {u: o["case"] for u, o in got.items() if o["case"]}
    assert set(cases) == {"s3", "s10"}
    case = api("hr_b1").get(f"/cases/{cases['s3']}").get_json()
    assert (case["kind"], case["employee"], case["state"]) == ("demotion", "s3", "review")

    again = api("hr_b1").post("/reviews", {"unit": "B1", "period": "2025", "dry_run": False})
    assert again.status_code == 200
    second = again.get_json()
    assert second["stored"] is True and second["id"] == first["id"]
    assert second["outcomes"] == first["outcomes"]
    assert db.session.scalar(select(func.count(Case.id))) == len(cases)


def test_bottom_ten_percent_of_ten(bank, api, make_person):
    for i, score in enumerate([95, 90, 90, 85, 80, 75, 70, 65, 60, 55]):
        make_person(f"s{i}", bank["units"]["T1"], grade="senior-2", performance=score)
    db.session.commit()
    body = api("hr_b1").post("/reviews", {"unit": "B1", "period": "2025"}).get_json()
    got = outcomes(body)
    assert [u for u, o in got.items() if o["outcome"] == "recompete"] == ["s9"]
    assert got["s9"]["reason"] == "rank 10 of 10 in B1, bottom 10% of senior (the last 1 of 10)"
    assert [got[f"s{i}"]["rank"] for i in range(4)] == [1, 2, 2, 4]
    case = api("hr_b1").get(f"/cases/{got['s9']['case']}").get_json()
    assert (case["kind"], case["state"]) == ("demotion", "review")
    assert case["events"][0]["actor"] == "hr_b1"


def test_a_dry_run_answers_200_and_writes_nothing(seniors, api):
    dry = api("hr_b1").post("/reviews", {"unit": "B1", "period": "2025", "dry_run": True})
    assert dry.status_code == 200
    body = dry.get_json()
    assert (body["id"], body["dry_run"], body["stored"], body["refused"]) == (None, True, False, None)
    assert all("case" not in o for o in body["outcomes"])
    assert db.session.scalar(select(func.count(Review.id))) == 0
    assert db.session.scalar(select(func.count(Case.id))) == 0
    real = api("hr_b1").post("/reviews", {"unit": "B1", "period": "2025"}).get_json()
    assert [{k: v for k, v in o.items() if k != "case"} for o in real["outcomes"]] == body["outcomes"]


class TestChecks:
    def test_401(self, bank, client):
        err(client.post("/api/v1/reviews", json={"unit": "B1", "period": "2025"}), 401)
        err(client.get("/api/v1/reviews"), 401)

    def test_404_unknown_or_invisible_unit(self, bank, api):
        err(api("hr_b1").post("/reviews", {"unit": "NOPE", "period": "2025"}), 404)
        err(api("hr_b1").post("/reviews", {"unit": "B3", "period": "2025"}), 404)
        err(api("emp").post("/reviews", {"unit": "T1", "period": "2025"}), 404)

    def test_403_who_sees_the_unit_but_is_not_hr_there(self, bank, api):
        e = err(api("appr_b1").post("/reviews", {"unit": "B1", "period": "2025", "dry_run": True}), 403)
        assert "only HR at B1 or above" in e["message"]
        err(api("hr_b1").post("/reviews", {"unit": "R1", "period": "bad"}), 404)     # R1 is above hr_b1

    def test_403_comes_before_the_body(self, bank, api):
        err(api("appr_b1").post("/reviews", {"unit": "B1", "period": "not a year"}), 403)

    @pytest.mark.parametrize("body, field", [
        ({"period": "2025"}, "unit"), ({"unit": 7, "period": "2025"}, "unit"),
        ({"unit": "B1", "period": "2025-Q3"}, "period"), ({"unit": "B1"}, "period"),
        ({"unit": "B1", "period": "2025", "dry_run": "yes"}, "dry_run"),
    ])
    def test_400_bad_input(self, bank, api, body, field):
        e = err(api("hr_b1").post("/reviews", body), 400)
        assert e["details"]["field"] == field

    def test_400_not_json(self, bank, api, client):
        resp = client.post("/api/v1/reviews", data="[1]", content_type="application/json",
                           headers=api("hr_b1").headers)
        err(resp, 400)

    def test_422_overlapping_review(self, seniors, api):
        assert api("hr_b1").post("/reviews", {"unit": "T1", "period": "2025"}).status_code == 201
        e = err(api("hr_r1").post("/reviews", {"unit": "R1", "period": "2025", "dry_run": True}), 422)
        assert "2025 was reviewed at T1" in e["message"]


class TestList:
    def test_list_and_filters(self, seniors, api):
        api("hr_b1").post("/reviews", {"unit": "B1", "period": "2025"})
        api("hr_b1").post("/reviews", {"unit": "B1", "period": "2024"})
        body = api("hr_r1").get("/reviews?unit=B1&period=2025").get_json()
        assert (body["total"], body["page"], body["per_page"]) == (1, 1, 50)
        item = body["items"][0]
        assert (item["unit"], item["period"], item["stored"]) == ("B1", "2025", True)
        assert outcomes(item)["s3"]["outcome"] == "demote_absence"
        assert api("appr_b1").get("/reviews").get_json()["total"] == 2        # approvers see them
        assert api("emp").get("/reviews").get_json()["total"] == 0
        assert api("hr_b1").get("/reviews?unit=B2").get_json()["total"] == 0
        err(api("hr_b1").get("/reviews?unit=NOPE"), 404)
        one = api("appr_b1").get(f"/reviews/{item['id']}")
        assert one.status_code == 200 and one.get_json()["outcomes"] == item["outcomes"]
        err(api("emp").get(f"/reviews/{item['id']}"), 404)


# --- the command line ----------------------------------------------------------------------------------

def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


class TestCommand:
    def test_dry_run_then_the_run_then_again(self, seniors, app):
        out = cli(app, "annual-review", "--period", "2025", "--unit", "B1", "--dry-run")
        assert out.exit_code == 0, out.output
        assert "B1 2025: dry run, nothing was changed" in out.output
        assert "s3" in out.output and "demote_absence" in out.output
        assert db.session.scalar(select(func.count(Review.id))) == 0
        out = cli(app, "annual-review", "--period", "2025", "--unit", "B1", "--as", "hr_b1")
        assert out.exit_code == 0, out.output
        review = db.session.scalar(select(Review))
        assert f"review {review.id} stored" in out.output and review.created_by.username == "hr_b1"
        lines = [ln for ln in out.output.splitlines() if ln.startswith("s3 ")]
        assert lines and "demote_absence" in lines[0]
        out = cli(app, "annual-review", "--period", "2025", "--unit", "B1")
        assert out.exit_code == 0
        assert "already reviewed" in out.output and "nothing new was opened" in out.output

    def test_the_system_runs_it_by_default(self, seniors, app):
        out = cli(app, "annual-review", "--period", "2025", "--unit", "B1")
        assert out.exit_code == 0, out.output
        assert db.session.scalar(select(Review)).created_by is None

    @pytest.mark.parametrize("args, message", [
        (["--period", "2025", "--unit", "NOPE"], "unknown unit 'NOPE'"),
        (["--period", "2025", "--unit", "B1", "--as", "ghost"], "unknown username 'ghost'"),
        (["--period", "2025", "--unit", "R1", "--as", "hr_b1"], "refused: only HR at R1 or above"),
        (["--period", "25", "--unit", "B1"], "refused: period must be a year"),
    ])
    def test_refusals(self, bank, app, args, message):
        out = cli(app, "annual-review", *args)
        assert out.exit_code == 1 and message in out.output, out.output


# --- two runs at the same moment -----------------------------------------------------------------------

def test_two_runs_at_once_store_one_and_both_answer_it(seniors, app, monkeypatch):
    """Both racers assess before either writes; the unique key on (unit, period) lets one store its run and
    open its cases, and the other answers the stored outcomes without opening anything."""
    import threading

    from web import api_reviews
    from workflow import review

    real_assess = review.assess
    both_assessed = threading.Barrier(2, timeout=30)

    def assess_together(*args, **kwargs):
        out = real_assess(*args, **kwargs)
        both_assessed.wait()
        return out

    monkeypatch.setattr(review, "assess", assess_together)
    db.session.commit()
    results = [None, None]

    def racer(i):
        try:
            with app.app_context():
                unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == "B1"))
                hr = db.session.scalar(select(Person).where(Person.username == "hr_b1"))
                result = api_reviews.run(unit, "2025", hr, False)
                results[i] = ("ok", result.created, result.outcomes)
        except Exception as exc:    # reported to the test
            results[i] = ("error", exc)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    db.session.expire_all()
    assert [r[0] for r in results] == ["ok", "ok"], results
    assert sorted(r[1] for r in results) == [False, True]
    assert results[0][2] == results[1][2]
    assert db.session.scalar(select(func.count(Review.id))) == 1
    assert db.session.scalar(select(func.count(Case.id))) == 2        # s3 and s10, once
