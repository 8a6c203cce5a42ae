"""The annual review (年度考核排名): ranking and ties, the bottom-p% arithmetic, leave and other absence,
two consecutive demotions, dry runs, stored runs, scope and authority. No requests: the engine, committing
as the caller would."""
import datetime as dt

import pytest
import yaml
from sqlalchemy import func, select

from workflow import engine, policy as policy_mod, review
from workflow.errors import Forbidden, Invalid, Refused
from workflow.models import db, Absence, Case, Event, GradeHistory, OrgUnit, Person, Review, Score

BANK_TEXT = (policy_mod.POLICY_DIR / "bank_corporate.yaml").read_text(encoding="utf-8")


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def unit(code):
    return db.session.query(OrgUnit).filter_by(code=code).one()


def managers(make_person, unit_code, grade, scores, prefix):
    """One manager per score, at `grade` in the unit, with twelve monthly 2025 performance rows of that score
    (None: no score at all)."""
    people = [make_person(f"{prefix}{i}", unit(unit_code), grade=grade, performance=s)
              for i, s in enumerate(scores)]
    db.session.commit()
    return people


def absent(who, start, end, reason):
    db.session.add(Absence(person=person(who), start=dt.date.fromisoformat(start),
                           end=dt.date.fromisoformat(end), reason=reason))
    db.session.commit()


def run(unit_code="B1", who="hr_b1", period="2025", dry_run=False):
    result = review.annual_review(unit(unit_code), period, person(who) if who else None, dry_run=dry_run)
    db.session.commit()
    return result


def by_user(result):
    return {o["username"]: o for o in result.outcomes}


def outcome(result, username):
    o = by_user(result)[username]
    return o["outcome"], o["rank"], o["of"]


def demote_effective(who, on, filer="sup_b1"):
    """A misconduct demotion of `who` walked to effective on `on` (grade history dated that day)."""
    case = engine.open_case("demotion", person(filer), person(who), reason="misconduct", severity="minor",
                            comment="违规", today=on - dt.timedelta(days=8))
    engine.fire(case, "confirm_grounds", person("appr_b1"), today=on - dt.timedelta(days=8))
    engine.fire(case, "close_notice", None, today=on)
    engine.fire(case, "approve", person("hr_b1"), today=on)
    db.session.commit()
    assert case.state == "effective" and case.effective_on == on
    return case


def row_counts():
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}


def use_policy(**changes):
    """The shipped bank policy with `annual_review` keys changed (a key set to None is removed)."""
    doc = yaml.safe_load(BANK_TEXT)
    for key, value in changes.items():
        if value is None:
            doc["annual_review"].pop(key, None)
        else:
            doc["annual_review"][key] = value
    pol = policy_mod.loads(yaml.safe_dump(doc, allow_unicode=True), "test.yaml")
    engine.activate_policy(pol, "test.yaml")
    db.session.commit()


# --- ranking -----------------------------------------------------------------------------------------

class TestRanking:
    def test_ties_share_the_better_rank_and_the_last_tenth_recompetes(self, bank, make_person):
        managers(make_person, "T1", "senior-2", [95, 90, 90, 85, 80, 75, 70, 65, 60, 55], "s")
        result = run()
        got = by_user(result)
        assert [got[f"s{i}"]["rank"] for i in range(10)] == [1, 2, 2, 4, 5, 6, 7, 8, 9, 10]
        assert {got[f"s{i}"]["of"] for i in range(10)} == {10}
        assert [u for u, o in got.items() if o["outcome"] == "recompete"] == ["s9"]
        assert got["s9"]["reason"] == "rank 10 of 10 in B1, bottom 10% of senior (the last 1 of 10)"
        assert got["s8"]["reason"] == "rank 9 of 10 in B1, above the bottom 10% of senior"
        assert got["s0"]["score"] == 95 and got["s0"]["scope"] == "B1" and got["s0"]["worked_months"] == 12

    def test_a_tie_at_the_bottom_keeps_both_above_the_cut(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [95, 90, 88, 85, 80, 75, 70, 65, 55, 55], "s")
        got = by_user(run())
        assert (got["s8"]["rank"], got["s9"]["rank"]) == (9, 9)      # rank 9 is not > 10 - 1
        assert not [u for u, o in got.items() if o["outcome"] == "recompete"]

    def test_each_level_is_ranked_on_its_own(self, bank, make_person):
        """emp (85) and emp2 (90) are managers of B1; the ten seniors do not count among them."""
        managers(make_person, "T1", "senior-2", [50] * 9 + [40], "s")
        got = by_user(run())
        assert (got["emp2"]["rank"], got["emp"]["rank"], got["emp"]["of"]) == (1, 2, 2)
        assert got["emp"]["outcome"] == "none"          # floor(10% of 2) = 0: nobody
        assert got["s9"]["outcome"] == "recompete"
        # The lowest level does not re-compete under bank_corporate.
        assert got["weak"]["outcome"] == "none"
        assert "assistant does not re-compete" in got["weak"]["reason"]

    def test_no_score_is_not_ranked(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90, None], "s")
        got = by_user(run())
        assert (got["s1"]["outcome"], got["s1"]["rank"], got["s1"]["basis"]) == ("none", None, "no_score")
        assert got["s0"]["of"] == 1

    def test_the_finest_scores_of_the_period_count(self, bank, make_person):
        s0, s1 = managers(make_person, "T1", "senior-1", [None, None], "s")
        for p, yearly, quarters in ((s0, 99, [60, 60, 60, 60]), (s1, 10, [70, 70, 70, 70])):
            db.session.add(Score(person=p, kind="performance", period="2025", granularity="year",
                                 period_start=dt.date(2025, 1, 1), period_end=dt.date(2025, 12, 31),
                                 value=yearly))
            for q, v in enumerate(quarters, 1):
                db.session.add(Score(person=p, kind="performance", period=f"2025-Q{q}", granularity="quarter",
                                     period_start=dt.date(2025, 3 * q - 2, 1),
                                     period_end=dt.date(2025, 3 * q, 28), value=v))
        db.session.commit()
        got = by_user(run())
        assert (got["s1"]["rank"], got["s0"]["rank"]) == (1, 2)     # quarters, not the yearly row


@pytest.mark.parametrize("n, percent, cut", [
    (5, 30, 4), (10, 10, 9), (9, 10, 9), (3, 10, 3), (4, 50, 2), (1, 50, 1), (2, 50, 1), (8, 12.5, 7),
    (10, 30, 7), (7, 0, 7), (6, 100, 0), (3, 33.4, 2),
])
def test_bottom_percent_arithmetic(n, percent, cut):
    """Bottom p% = rank > n − floor(p·n/100): 30% of 5 is the last 1, 10% of 9 is nobody."""
    assert review.bottom_cut(n, percent) == cut


def test_thirty_percent_of_five_is_the_last_one(bank, make_person):
    use_policy(recompete={"senior": 30})
    managers(make_person, "T1", "senior-1", [90, 80, 70, 60, 50], "s")
    got = by_user(run())
    assert [u for u, o in got.items() if o["outcome"] == "recompete"] == ["s4"]


# --- absence -----------------------------------------------------------------------------------------

class TestAbsence:
    def test_leave_under_two_months_exempts(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90, 80, 70, 60, 50, 40, 30, 20, 10, 5], "s")
        absent("s9", "2025-02-01", "2025-12-31", "maternity")          # 334 days: 0.87 months worked
        got = by_user(run())
        assert got["s9"]["outcome"] == "exempt_leave" and got["s9"]["rank"] is None
        assert got["s9"]["worked_months"] == 0.87
        assert "because of leave (maternity): exempt" in got["s9"]["reason"]
        # Not ranked: nine ranked, and floor(10% of 9) = 0 re-compete.
        assert got["s8"]["of"] == 9 and got["s8"]["outcome"] == "none"

    def test_other_absence_demotes_one_level(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90, 80], "s")
        absent("s0", "2025-01-01", "2025-11-15", "other")               # 319 days: 1.37 months
        result = run()
        o = by_user(result)["s0"]
        assert (o["outcome"], o["rank"], o["basis"]) == ("demote_absence", None, "absence")
        case = db.session.get(Case, o["case"])
        assert (case.kind, case.reason, case.state) == ("demotion", "absence", "review")
        assert case.filed_by.username == "hr_b1"
        assert case.statement.startswith("Annual review 2025: worked 1.37 months")
        assert by_user(result)["s1"]["of"] == 1

    def test_absence_is_clipped_to_the_period_and_counted_once(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90, 80, 70], "s")
        absent("s0", "2024-03-01", "2025-10-31", "other")               # 304 days in 2025: 1.87 months
        absent("s1", "2024-01-01", "2024-12-31", "other")               # none in 2025
        absent("s2", "2025-01-01", "2025-08-31", "other")               # 243 days ...
        absent("s2", "2025-06-01", "2025-10-31", "other")               # ... and 61 more: 304, 1.87 months
        got = by_user(run(dry_run=True))
        assert got["s0"]["outcome"] == "demote_absence" and got["s0"]["worked_months"] == 1.87
        assert got["s1"]["worked_months"] == 12 and got["s1"]["rank"] == 1
        assert got["s2"]["outcome"] == "demote_absence" and got["s2"]["worked_months"] == 1.87

    def test_exactly_two_months_worked_is_enough(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90], "s")
        absent("s0", "2025-01-01", "2025-10-27", "other")               # 300 days: 2 months
        got = by_user(run(dry_run=True))
        assert (got["s0"]["worked_months"], got["s0"]["rank"]) == (2, 1)

    def test_mixed_absence_counts_as_leave_unless_the_other_alone_is_too_much(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90, 80], "s")
        absent("s0", "2025-01-01", "2025-06-30", "sick")                # 181 days
        absent("s0", "2025-07-01", "2025-11-30", "other")               # +153: 0.87 worked; 6.9 without leave
        absent("s1", "2025-01-01", "2025-01-31", "personal")            # 31 days
        absent("s1", "2025-02-01", "2025-12-20", "other")               # 322 days alone: 1.27 worked
        got = by_user(run(dry_run=True))
        assert got["s0"]["outcome"] == "exempt_leave"
        assert got["s1"]["outcome"] == "demote_absence"

    def test_the_policy_says_which_leave_exempts(self, bank, make_person):
        use_policy(exempt_reasons=["maternity", "sick"], min_worked_months=3)
        managers(make_person, "T1", "senior-1", [90, 80], "s")
        absent("s0", "2025-01-01", "2025-09-25", "personal")            # 268 days: 3.07 worked, not under 3
        absent("s1", "2025-01-01", "2025-10-05", "personal")            # 278 days: 2.73 worked
        got = by_user(run(dry_run=True))
        assert got["s0"]["rank"] == 1 and got["s1"]["outcome"] == "demote_absence"

    def test_the_lowest_level_cannot_drop(self, bank):
        absent("weak", "2025-01-01", "2025-12-31", "other")
        o = by_user(run())["weak"]
        assert (o["outcome"], o["basis"], o["case"]) == ("none", "absence_lowest_level", None)
        assert "assistant is the lowest level: no demotion" in o["reason"]


# --- two consecutive demotions -----------------------------------------------------------------------

class TestConsecutiveDemotions:
    def test_demotions_in_the_period_and_the_one_before_open_a_dismissal(self, bank, make_person):
        managers(make_person, "T1", "principal-1", [90], "p")
        first = demote_effective("p0", dt.date(2024, 6, 10))
        second = demote_effective("p0", dt.date(2025, 6, 10))
        history = db.session.scalars(select(GradeHistory).where(
            GradeHistory.person_id == person("p0").id)).all()
        assert [h.case_id for h in history] == [first.id, second.id]
        result = run()
        o = by_user(result)["p0"]
        assert (o["outcome"], o["rank"]) == ("dismiss_consecutive", None)
        assert o["reason"] == (f"demoted in 2024 and in 2025 (cases {first.id}, {second.id}): "
                               f"two consecutive demotions")
        case = db.session.get(Case, o["case"])
        assert (case.kind, case.reason, case.state) == ("dismissal", "consecutive_demotions", "review")

    def test_one_demotion_or_two_apart_is_not_enough(self, bank, make_person):
        managers(make_person, "T1", "principal-1", [90, 80], "p")
        demote_effective("p0", dt.date(2025, 6, 10))
        demote_effective("p1", dt.date(2023, 6, 12))
        demote_effective("p1", dt.date(2025, 6, 10))
        got = by_user(run(dry_run=True))
        assert got["p0"]["outcome"] == got["p1"]["outcome"] == "none"
        assert (got["p0"]["level"], got["p1"]["level"]) == ("senior", "manager")   # ranked where they are now

    def test_other_demotions_do_not_count(self, bank, make_person):
        """A grade change by import (no case) is not a demotion."""
        managers(make_person, "T1", "senior-1", [90], "s")
        p = person("s0")
        for year in (2024, 2025):
            db.session.add(GradeHistory(person=p, from_grade="principal-1", to_grade="senior-1",
                                        effective_on=dt.date(year, 5, 1), source="import"))
        db.session.commit()
        assert by_user(run(dry_run=True))["s0"]["outcome"] == "tier_up"      # rank 1 of 1, no dismissal


# --- dry runs and stored runs ------------------------------------------------------------------------

@pytest.fixture
def mixed(bank, make_person):
    """Ten seniors, one on leave and one absent; a principal demoted twice; emp and emp2 as managers."""
    managers(make_person, "T1", "senior-3", [95, 90, 90, 85, 80, 75, 70, 65, 60, 55, 50, 45], "s")
    managers(make_person, "T2", "principal-1", [90], "p")
    absent("s10", "2025-01-01", "2025-12-31", "maternity")
    absent("s11", "2025-01-15", "2025-12-31", "other")
    demote_effective("p0", dt.date(2024, 6, 10))
    demote_effective("p0", dt.date(2025, 6, 10))
    return bank


class TestRuns:
    def test_a_dry_run_is_the_real_run_and_writes_nothing(self, mixed):
        before = row_counts()
        dry = review.annual_review(unit("B1"), "2025", person("hr_b1"), dry_run=True)
        assert not (db.session.new or db.session.dirty or db.session.deleted)
        db.session.commit()
        assert row_counts() == before
        assert dry.review is None and dry.dry_run and not dry.created and not dry.stored
        real = run()
        assert real.created and real.review.id
        assert [{k: v for k, v in o.items() if k != "case"} for o in real.outcomes] == dry.outcomes
        got = {o["username"]: o["outcome"] for o in real.outcomes}
        assert (got["s9"], got["s10"], got["s11"], got["p0"], got["emp"]) == (
            "recompete", "exempt_leave", "demote_absence", "dismiss_consecutive", "none")
        opened = {o["username"]: o["case"] for o in real.outcomes if o["case"]}
        assert set(opened) == {"s9", "s11", "p0"}
        assert {(c.employee.username, c.kind, c.reason) for c in db.session.scalars(
            select(Case).where(Case.id.in_(opened.values())))} == {
            ("s9", "demotion", "recompete"), ("s11", "demotion", "absence"),
            ("p0", "dismissal", "consecutive_demotions")}
        after = row_counts()
        assert after["reviews"] == 1 and after["cases"] == before["cases"] + 3

    def test_the_second_run_opens_nothing_and_answers_the_first(self, mixed):
        first = run()
        cases = db.session.scalar(select(func.count(Case.id)))
        second = run(who="admin")
        assert not second.created and second.stored and second.review.id == first.review.id
        assert second.outcomes == first.outcomes
        assert db.session.scalar(select(func.count(Case.id))) == cases
        assert db.session.scalar(select(func.count(Review.id))) == 1
        dry = run(dry_run=True)           # a dry run answers the stored run too
        assert dry.stored and dry.outcomes == first.outcomes

    def test_the_stored_outcomes_do_not_follow_later_changes(self, mixed):
        first = run()
        absent("s9", "2025-01-01", "2025-12-31", "sick")
        assert by_user(run())["s9"]["outcome"] == by_user(first)["s9"]["outcome"] == "recompete"

    def test_a_person_with_an_open_demotion_gets_no_second(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90, 80, 70, 60, 50, 40, 30, 20, 10, 5], "s")
        misconduct = engine.open_case("demotion", person("sup_t1"), person("s9"), reason="misconduct",
                                      severity="minor", comment="违规")
        db.session.commit()
        o = by_user(run())["s9"]
        assert (o["outcome"], o["open_case"], o["case"]) == ("recompete", misconduct.id, None)
        assert o["reason"].endswith(f"already has an open demotion case ({misconduct.id}): no second one")

    def test_the_system_may_run_it(self, mixed):
        result = run(who=None)
        case = db.session.get(Case, by_user(result)["s9"]["case"])
        assert result.review.created_by is None and case.filed_by is None and case.events[0].actor == "system"


# --- scope and authority -----------------------------------------------------------------------------

class TestScope:
    def test_a_region_ranks_each_branch_apart(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90, 80, 70, 60, 50, 40, 30, 20, 10, 5], "a")
        managers(make_person, "T3", "senior-1", [95, 85], "b")
        got = by_user(run("R1", who="hr_r1", dry_run=True))
        assert (got["a0"]["rank"], got["a0"]["of"], got["a0"]["scope"]) == (1, 10, "B1")
        assert (got["b0"]["rank"], got["b0"]["of"], got["b0"]["scope"]) == (1, 2, "B2")
        assert "far" not in got                                        # R2's subtree is not reviewed
        in_order = [o["username"] for o in run("R1", who="hr_r1", dry_run=True).outcomes]
        assert in_order[:3] == ["a0", "a1", "a2"]

    def test_a_team_is_ranked_within_its_branch_but_lists_only_its_people(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90, 50], "a")
        managers(make_person, "T2", "senior-1", [95, 85, 80, 75, 70, 65, 60, 55], "b")
        got = by_user(run("T1", dry_run=True))
        assert set(got) == {"emp", "emp2", "a0", "a1"}
        assert (got["a0"]["rank"], got["a1"]["rank"], got["a1"]["of"]) == (2, 10, 10)
        assert got["a1"]["outcome"] == "recompete"
        assert by_user(run("B1", dry_run=True))["a1"]["rank"] == 10      # the same rank from the branch

    def test_overlapping_reviews_are_refused(self, bank, make_person):
        managers(make_person, "T1", "senior-1", [90], "a")
        run("T1")
        with pytest.raises(Refused, match="2025 was reviewed at T1 .* which lies inside B1"):
            run("B1", dry_run=True)
        db.session.rollback()
        with pytest.raises(Refused, match="lies inside R1"):
            run("R1", who="hr_r1")
        db.session.rollback()
        run("T2")                                                      # a sibling is another subtree
        run("B1", period="2024")                                       # and another year another review
        assert db.session.scalar(select(func.count(Review.id))) == 3

    def test_probation_and_staff_are_not_reviewed(self, bank, make_person):
        make_person("trainee", unit("T1"), grade="assistant-1", status="probation", performance=10)
        got = by_user(run(dry_run=True))
        assert "trainee" not in got and "hr_b1" not in got and "sup_t1" not in got


class TestAuthority:
    @pytest.mark.parametrize("who, unit_code", [("hr_b1", "B1"), ("hr_b1", "T1"), ("hr_r1", "B1"),
                                                ("admin", "B1")])
    def test_hr_at_the_unit_or_above(self, bank, who, unit_code):
        assert run(unit_code, who=who, dry_run=True).dry_run

    @pytest.mark.parametrize("who, unit_code", [("hr_b1", "R1"), ("hr_b1", "B2"), ("appr_b1", "B1"),
                                                ("emp", "T1"), ("sup_t1", "T1")])
    def test_others_are_refused(self, bank, who, unit_code):
        with pytest.raises(Forbidden, match=f"only HR at {unit_code} or above"):
            run(unit_code, who=who, dry_run=True)

    def test_refused_before_the_body_is_read(self, bank):
        with pytest.raises(Forbidden):
            run("R1", who="hr_b1", period="last year")


class TestInput:
    @pytest.mark.parametrize("period", ["2025-Q1", "25", "", None, True, "year", "1850", 2025.0])
    def test_the_period_is_a_year(self, bank, period):
        with pytest.raises(Invalid, match="period must be a year"):
            run(period=period, dry_run=True)

    def test_a_year_as_a_number(self, bank):
        assert run(period=2025, dry_run=True).period == "2025"

    def test_dry_run_is_a_boolean(self, bank):
        with pytest.raises(Invalid, match="dry_run"):
            review.annual_review(unit("B1"), "2025", person("hr_b1"), dry_run="yes")

    def test_a_policy_without_the_section(self, bank):
        doc = yaml.safe_load(BANK_TEXT)
        del doc["annual_review"]
        engine.activate_policy(policy_mod.loads(yaml.safe_dump(doc, allow_unicode=True), "t.yaml"), "t.yaml")
        db.session.commit()
        with pytest.raises(Refused, match="no annual_review section"):
            run(dry_run=True)


# --- the shipped telecom policies ----------------------------------------------------------------------

@pytest.fixture
def quzhou(app, make_unit, make_person):
    """mobile_quzhou: 市公司 QZ > 区县 D1, D2 > teams, with HR at the city."""
    engine.activate_policy(policy_mod.load_file("mobile_quzhou"), "mobile_quzhou")
    city = make_unit("QZ", "city", name="衢州市公司")
    d1, d2 = make_unit("D1", "district", city, name="柯城"), make_unit("D2", "district", city, name="衢江")
    make_unit("D1T", "team", d1)
    make_unit("D2T", "team", d2)
    make_person("hr_qz", city, roles=["hr@QZ"])
    make_person("appr_d1", d1, roles=["approver@D1"])
    make_person("appr_qz", city, roles=["approver@QZ"])
    db.session.commit()


class TestMobileQuzhou:
    def test_thirty_percent_of_intermediate_and_fifty_of_senior_per_district(self, quzhou, make_person):
        managers(make_person, "D1T", "intermediate-1", [90, 85, 80, 75, 70], "i")     # 30% of 5: the last 1
        managers(make_person, "D1T", "senior-1", [95, 90, 85, 80], "s")               # 50% of 4: the last 2
        managers(make_person, "D2T", "intermediate-1", [60, 50, 40, 30, 20, 10, 5], "k")   # 30% of 7: last 2
        managers(make_person, "D2T", "junior-1", [10, 5], "j")                         # 初级: no re-competition
        result = run("QZ", who="hr_qz", dry_run=True)
        got = by_user(result)
        assert result.refused is None or "no demotion section" in result.refused
        recompete = sorted(u for u, o in got.items() if o["outcome"] == "recompete")
        assert recompete == ["i4", "k5", "k6", "s2", "s3"]
        assert got["i4"]["reason"] == "rank 5 of 5 in D1, bottom 30% of intermediate (the last 1 of 5)"
        assert got["s2"]["reason"] == "rank 3 of 4 in D1, bottom 50% of senior (the last 2 of 4)"
        assert (got["k0"]["rank"], got["k0"]["of"], got["k0"]["scope"]) == (1, 7, "D2")
        assert got["j1"]["outcome"] == "none"

    def test_the_same_people_under_the_bank_policy_re_compete_a_tenth(self, bank, make_person):
        """The bank ranks per branch and re-competes the last 10%: of 5 and of 4, nobody."""
        managers(make_person, "T1", "manager-1", [90, 85, 80, 75, 70], "i")
        managers(make_person, "T1", "senior-1", [95, 90, 85, 80], "s")
        got = by_user(run(dry_run=True))
        assert not [u for u, o in got.items() if o["outcome"] == "recompete"]

    def test_without_a_demotion_section_the_real_run_is_refused_and_writes_nothing(self, quzhou, make_person):
        doc = yaml.safe_load((policy_mod.POLICY_DIR / "mobile_quzhou.yaml").read_text(encoding="utf-8"))
        doc.pop("demotion")
        engine.activate_policy(policy_mod.loads(yaml.safe_dump(doc, allow_unicode=True), "quzhou.yaml"),
                               "quzhou.yaml")
        db.session.commit()
        managers(make_person, "D1T", "intermediate-1", [90, 85, 80, 75, 70], "i")
        refused = run("QZ", who="hr_qz", dry_run=True).refused
        assert refused == ("the review calls for demotion cases, but the policy mobile_quzhou 2026.1 has no "
                           "demotion section")
        with pytest.raises(Refused, match="has no demotion section"):
            run("QZ", who="hr_qz")
        db.session.rollback()
        assert db.session.scalar(select(func.count(Review.id))) == 0

    def test_with_demotion_cases_in_the_policy_the_real_run_opens_them(self, quzhou, make_person):
        """The shipped file with demotion and dismissal sections where it has none (the district's approver
        reviews, the city's HR approves): the re-competitions open as demotion cases at the district."""
        doc = yaml.safe_load((policy_mod.POLICY_DIR / "mobile_quzhou.yaml").read_text(encoding="utf-8"))
        doc.setdefault("demotion", {"steps": {"review": {"org_level": "district", "role": "approver"},
                                              "hr_approval": {"org_level": "city", "role": "hr"}}})
        doc.setdefault("dismissal", {"steps": {"review": {"org_level": "district", "role": "approver"},
                                               "hr_approval": {"org_level": "city", "role": "hr"},
                                               "final_approval": {"org_level": "city", "role": "approver"}}})
        pol = policy_mod.loads(yaml.safe_dump(doc, allow_unicode=True), "quzhou.yaml")
        engine.activate_policy(pol, "quzhou.yaml")
        db.session.commit()
        managers(make_person, "D1T", "intermediate-1", [90, 85, 80, 75, 70], "i")
        managers(make_person, "D1T", "senior-1", [95, 90, 85, 80], "s")
        dry = run("QZ", who="hr_qz", dry_run=True)
        result = run("QZ", who="hr_qz")
        assert [{k: v for k, v in o.items() if k != "case"} for o in result.outcomes] == dry.outcomes
        opened = {o["username"]: db.session.get(Case, o["case"]) for o in result.outcomes if o["case"]}
        assert sorted(opened) == ["i4", "s2", "s3"]
        assert {(c.kind, c.reason, c.state, c.step_unit.code) for c in opened.values()} == {
            ("demotion", "recompete", "review", "D1")}



# --- 级档浮动: tier moves inside a level ------------------------------------------------------------------

class TestTierMoves:
    """bank_corporate: the top 20% of a level move up one tier, the bottom 10% (re-competitors aside) one
    tier down, at once and without a panel; time at grade keeps counting."""

    @pytest.fixture
    def seniors(self, bank, make_person):
        # Twenty seniors of B1 at senior-2, scores 100, 99, ... 81: ranks 1..20.
        people = managers(make_person, "T1", "senior-2", list(range(100, 80, -1)), "s")
        since = people[0].grade_since
        return people, since

    def test_the_top_move_up_and_the_bottom_down(self, seniors):
        _people, since = seniors
        got = by_user(run())
        ups = sorted(u for u, o in got.items() if o["outcome"] == "tier_up")
        downs = sorted(u for u, o in got.items() if o["outcome"] == "tier_down")
        recompetes = sorted(u for u, o in got.items() if o["outcome"] == "recompete")
        assert ups == ["emp2", "s0", "s1", "s2", "s3"]          # top 20% of 20 seniors: ranks 1-4 (+ emp2: 1 of 2)
        assert recompetes == ["s18", "s19"]                      # bottom 10% of 20: re-compete, not a tier move
        assert downs == []                                       # the bottom 10% are the re-competitors
        assert got["s0"]["to_grade"] == "senior-3" and "top 20% of senior: tier 2 → 3" in got["s0"]["reason"]
        s0 = person("s0")
        assert (s0.grade, s0.grade_since) == ("senior-3", since)   # time at grade keeps counting
        row = db.session.scalars(select(GradeHistory).filter_by(person_id=s0.id)).all()[-1]
        assert (row.from_grade, row.to_grade, row.source, row.case_id) == ("senior-2", "senior-3", "review", None)
        ev = db.session.scalars(select(Event).where(Event.chain == f"person:{s0.id}").order_by(Event.seq)).all()[-1]
        assert (ev.action, ev.actor, ev.data["to"], ev.data["source"]) == ("grade_change", "hr_b1", "senior-3",
                                                                           "review")

    def test_down_without_recompetition_and_the_edges_of_the_level(self, bank, make_person):
        use_policy(tier_moves={"up": 20, "down": 20}, recompete={"manager": 10})
        managers(make_person, "T1", "senior-1", [90, 80, 70, 60, 50], "s")
        managers(make_person, "T1", "senior-3", [99], "t")
        got = by_user(run())
        # senior does not re-compete here: the bottom 20% of 6 (the last one) goes down a tier if it can.
        assert got["s4"]["outcome"] == "none" and "already at its first tier" in got["s4"]["reason"]
        assert got["t0"]["outcome"] == "none" and "already at its top tier" in got["t0"]["reason"]
        assert got["s0"]["outcome"] == "tier_up" and got["s0"]["to_grade"] == "senior-2"

    def test_an_open_case_holds_the_tier_and_the_dry_run_says_so(self, seniors, walk):
        walk.file(who="s0", target="senior-3", exceptional=True)
        dry = by_user(run(dry_run=True))
        assert dry["s0"]["outcome"] == "tier_up" and dry["s0"]["open_case"]
        real = by_user(run())
        assert real["s0"] == {**dry["s0"], "case": None}
        assert person("s0").grade == "senior-2"

    def test_the_dry_run_matches_the_real_run_and_a_second_run_moves_nobody(self, seniors):
        dry = run(dry_run=True).outcomes
        real = run().outcomes
        assert [{k: v for k, v in o.items() if k != "case"} for o in real] == dry
        history = db.session.scalar(select(func.count(GradeHistory.id)))
        again = run()
        assert again.stored and again.outcomes == real
        assert db.session.scalar(select(func.count(GradeHistory.id))) == history
        assert person("s0").grade == "senior-3"

    def test_the_policy_validates_the_shares(self):
        bad = yaml.safe_load(BANK_TEXT)
        bad["annual_review"]["tier_moves"] = {"up": 60, "down": 50}
        with pytest.raises(policy_mod.PolicyError, match="add up to more than 100%"):
            policy_mod.loads(yaml.safe_dump(bad), "x.yaml")
        bad["annual_review"]["tier_moves"] = {"sideways": 5}
        with pytest.raises(policy_mod.PolicyError, match="tier_moves.sideways"):
            policy_mod.loads(yaml.safe_dump(bad), "x.yaml")
