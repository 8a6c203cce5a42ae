"""Promotion rounds (晋级周期与名额): opening, applying, the quota arithmetic, the ranked decision, authority
and the round's audit chain. No requests: the engine, as the named people, committing each step."""
import datetime as dt
from types import SimpleNamespace

import pytest
import yaml
from sqlalchemy import text

from workflow import audit, authority, engine, policy as policy_mod, rounds
from workflow.errors import Conflict, Forbidden, Invalid, Refused
from workflow.machines import rulebook
from workflow.models import db, Case, GradeHistory, Person, Round, RoundLevel, Score

OPENS, CLOSES = dt.date(2026, 3, 1), dt.date(2026, 3, 31)      # TODAY is 2026-03-02
BANK_TEXT = (policy_mod.POLICY_DIR / "bank_corporate.yaml").read_text(encoding="utf-8")


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def use_policy(ratios=None, **rounds_keys):
    """Activate the shipped policy with other `ratios` and `rounds` keys (and `effective`)."""
    doc = yaml.safe_load(BANK_TEXT)
    if ratios is not None:
        doc["ratios"] = ratios
    if "effective" in rounds_keys:
        doc["effective"] = {"when": rounds_keys.pop("effective")}
    doc["rounds"].update(rounds_keys)
    text_ = yaml.safe_dump(doc, allow_unicode=True)
    engine.activate_policy(policy_mod.loads(text_, "test.yaml"), "test.yaml")
    db.session.commit()


def add_people(unit, n, grade, prefix, status="active"):
    """`n` people at `grade` in `unit`, without scores (they count, they do not apply)."""
    level, tier = (grade.rsplit("-", 1)[0], int(grade.rsplit("-", 1)[1])) if grade else (None, None)
    people = [Person(username=f"{prefix}{i:03d}", name=f"{prefix}{i}", unit=unit, level=level, tier=tier,
                     grade_since=dt.date(2024, 1, 1) if grade else None, hired_on=dt.date(2020, 1, 1),
                     education="bachelor", status=status) for i in range(n)]
    db.session.add_all(people)
    db.session.flush()
    return people


def open_round(bank, levels, unit="B1", who="hr_b1", period="2026", opens=OPENS, closes=CLOSES):
    rnd = rounds.open_round(person(who), bank["units"][unit], period, f"{period} 晋级", opens, closes, levels)
    db.session.commit()
    return rnd


def apply_and_score(walk, who, rnd, target, score, approver="appr_b1"):
    """File `who` into the round and walk the case to HR approval: panel and supervisor all give `score`, so
    the composite is 0.7·score + 0.3·last year's performance."""
    case = walk.file(who, target, round=rnd.id)
    return walk.to_hr(case, scores=(score, score, score), supervisor=score, approver=approver)


def decide(rnd, who="hr_b1"):
    rounds.decide_round(rnd, person(who))
    db.session.commit()
    return rnd


def decisions(rnd, level):
    return [(r["username"], r["decision"]) for r in rnd.results[level]]


# --- opening -----------------------------------------------------------------------------------------

class TestOpen:
    def test_open_round_shape_and_event(self, bank):
        rnd = open_round(bank, ["senior", "manager"])
        assert (rnd.state, rnd.period, rnd.unit.code) == ("open", "2026", "B1")
        assert rnd.levels == ["manager", "senior"]
        assert rnd.min_composite == 60 and rnd.version == 1 and rnd.created_by.username == "hr_b1"
        ev = db.session.execute(text("SELECT chain, seq, action, to_state, role, unit FROM events "
                                     "WHERE chain = :c"), {"c": f"round:{rnd.id}"}).one()
        assert tuple(ev) == (f"round:{rnd.id}", 1, "open", "open", "hr", "B1")

    def test_hr_above_the_unit_may_open(self, bank):
        assert open_round(bank, ["senior"], who="hr_r1").unit.code == "B1"

    def test_only_hr_over_the_unit(self, bank):
        for who in ("appr_b1", "emp", "sup_b1"):
            with pytest.raises(Forbidden, match="only HR at B1"):
                open_round(bank, ["senior"], who=who)
        with pytest.raises(Forbidden):     # HR of another branch
            rounds.open_round(person("hr_b1"), bank["units"]["B3"], "2026", "", OPENS, CLOSES, ["senior"])

    def test_at_the_org_level_of_hr_approval(self, bank):
        with pytest.raises(Refused, match="HR approval for senior is at the branch level"):
            open_round(bank, ["senior"], unit="R1", who="hr_r1")
        with pytest.raises(Refused, match="principal"):
            open_round(bank, ["senior", "principal"])
        assert open_round(bank, ["principal"], unit="R1", who="hr_r1").levels == ["principal"]

    def test_one_round_per_unit_period_and_level(self, bank):
        first = open_round(bank, ["manager", "senior"])
        with pytest.raises(Refused, match=f"round {first.id} already covers"):
            open_round(bank, ["senior"])
        db.session.rollback()
        assert open_round(bank, ["assistant"]).id != first.id           # another level
        assert open_round(bank, ["senior"], period="2027").period == "2027"   # another period
        assert open_round(bank, ["senior"], unit="B2", who="hr_r1").unit.code == "B2"
        assert db.session.query(Round).filter_by(state="open").count() == 4   # several open at once

    def test_the_schema_holds_it_too(self, bank):
        rnd = open_round(bank, ["senior"])
        db.session.add(RoundLevel(round_id=rnd.id, unit_id=rnd.unit_id, period="2026", level="senior",
                                  position=2))
        with pytest.raises(Exception, match="(?i)unique"):
            db.session.flush()
        db.session.rollback()

    @pytest.mark.parametrize("field, value, error", [
        ("period", "", Invalid), ("period", 2026, Invalid), ("period", "x" * 21, Invalid),
        ("opens_on", "2026-02-30", Invalid), ("closes_on", None, Invalid),
        ("levels", [], Invalid), ("levels", "senior", Invalid), ("levels", ["senior", "senior"], Invalid),
        ("levels", ["wizard"], Refused), ("closes_on", "2026-02-27", Refused), ("title", 7, Invalid),
    ])
    def test_bad_input(self, bank, field, value, error):
        args = {"period": "2026", "title": "t", "opens_on": "2026-02-01", "closes_on": "2026-03-31",
                "levels": ["senior"], field: value}
        with pytest.raises(error) as exc:
            rounds.open_round(person("hr_b1"), bank["units"]["B1"], **args)
        assert exc.value.details.get("field") == field

    def test_closing_before_opening_is_refused(self, bank):
        with pytest.raises(Refused, match="cannot close"):
            open_round(bank, ["senior"], opens=dt.date(2026, 4, 1), closes=dt.date(2026, 3, 31))

    def test_title_defaults_to_the_period(self, bank):
        rnd = rounds.open_round(person("hr_b1"), bank["units"]["B1"], " 2026 ", None, OPENS, CLOSES,
                                ["senior"])
        assert (rnd.period, rnd.title) == ("2026", "2026")


# --- applying ----------------------------------------------------------------------------------------

class TestApply:
    def test_a_case_in_a_round(self, bank, walk):
        rnd = open_round(bank, ["senior"])
        case = walk.file("emp", "senior", round=rnd.id)
        assert case.round_id == rnd.id and case.events[0].data["round"] == rnd.id
        assert case.state == "qualification_review" and case.eligible

    def test_hr_files_into_the_round(self, bank, walk):
        rnd = open_round(bank, ["senior"])
        assert walk.file("emp", "senior", filer="hr_b1", round=rnd.id).round_id == rnd.id

    def test_eligibility_as_of_the_opening(self, bank, walk, make_person):
        # 12 months at the grade on 2026-03-02, but only 11 on the round's opening (2026-02-01).
        make_person("late", bank["units"]["T1"], grade="manager-3", grade_since=dt.date(2025, 2, 15),
                    performance=85, skill_test="pass")
        rnd = open_round(bank, ["senior"], opens=dt.date(2026, 2, 1))
        with pytest.raises(Refused, match="months_at_grade"):
            walk.file("late", "senior", round=rnd.id)
        db.session.rollback()
        assert walk.file("late", "senior").eligible          # off-round, as of today

    def test_outside_the_window(self, bank, walk):
        later = open_round(bank, ["senior"], opens=dt.date(2026, 3, 10))
        with pytest.raises(Refused, match="takes applications from 2026-03-10"):
            walk.file("emp", "senior", round=later.id)

    def test_outside_the_scope(self, bank, walk):
        rnd = open_round(bank, ["manager"])
        with pytest.raises(Refused, match="far is outside the scope"):
            walk.file("far", "manager-2", round=rnd.id)

    def test_level_not_in_the_round(self, bank, walk):
        rnd = open_round(bank, ["manager"])
        with pytest.raises(Refused, match="is for manager, not senior"):
            walk.file("emp", "senior", round=rnd.id)

    def test_closed_round(self, bank, walk):
        rnd = open_round(bank, ["senior"])
        rounds.close_round(rnd, person("hr_b1"))
        db.session.commit()
        with pytest.raises(Refused, match="is closed"):
            walk.file("emp", "senior", round=rnd.id)

    def test_exceptional_is_not_in_a_round(self, bank, walk):
        rnd = open_round(bank, ["senior"])
        with pytest.raises(Refused, match="exceptional"):
            walk.file("emp", "senior", round=rnd.id, exceptional=True)

    @pytest.mark.parametrize("ref, error", [("1", Invalid), (True, Invalid), (1.0, Invalid), (999, Refused)])
    def test_bad_round_reference(self, bank, walk, ref, error):
        open_round(bank, ["senior"])
        with pytest.raises(error) as exc:
            walk.file("emp", "senior", round=ref)
        assert exc.value.details["field"] == "round"

    def test_open_rounds_for_an_employee(self, bank):
        rnd = open_round(bank, ["senior"])
        open_round(bank, ["manager"], opens=dt.date(2026, 3, 10))
        assert rounds.open_rounds_for(person("emp")) == [rnd]
        assert rounds.open_rounds_for(person("far")) == []


# --- eligible people --------------------------------------------------------------------------------------

def test_eligible_per_level(bank, make_person):
    make_person("trainee", bank["units"]["T1"], grade="manager-3", status="probation", performance=95,
                skill_test="pass")
    make_person("asst", bank["units"]["T2"], grade="assistant-3", performance=88, skill_test="pass")
    rnd = open_round(bank, ["manager", "senior"])
    got = {lv: [p.username for p in people] for lv, people in rounds.eligible(rnd).items()}
    # emp2 (manager-1) goes to manager-2; weak fails the rules; far is in another branch.
    assert got == {"manager": ["asst", "emp2"], "senior": ["emp"]}


# --- quotas ------------------------------------------------------------------------------------------

class TestQuotas:
    def test_the_domain_example(self, bank, make_person):
        """A cap of 15% 高级 among 200 managers with 25 already 高级 gives at most 5 promotions."""
        t3 = bank["units"]["T3"]
        add_people(t3, 175, "manager-1", "m")
        add_people(t3, 25, "senior-1", "s")
        # Not counted: in probation, staff without a grade, dismissed, and people in another branch.
        add_people(t3, 3, "assistant-1", "p", status="probation")
        add_people(t3, 2, None, "staff")
        add_people(t3, 1, "senior-2", "gone", status="dismissed")
        rnd = open_round(bank, ["senior"], unit="B2", who="hr_r1")
        q = rounds.quotas(rnd)["senior"]
        assert (q.cap, q.headcount, q.places, q.holders, q.leaving, q.freed_by_demotions, q.quota) == \
            (0.15, 200, 30, 25, 0, 0, 5)
        assert "cap 15% of 200 managers = 30" in q.explanation()
        assert "max(0, 30 − 25 + 0) = 5" in q.explanation()
        assert q.to_json() | {"explanation": ""} == {
            "cap": 0.15, "target": None, "headcount": 200, "places": 30, "holders": 25, "leaving": 0,
            "freed_by_demotions": 0, "quota": 5, "explanation": ""}

    def test_demotions_and_dismissals_free_places(self, bank):
        t3 = bank["units"]["T3"]
        add_people(t3, 175, "manager-1", "m")
        seniors = add_people(t3, 25, "senior-1", "s")
        rnd = open_round(bank, ["senior"], unit="B2", who="hr_r1")
        # One senior demoted since the opening, one dismissed (its dismissal case took effect), and one
        # demoted before the opening (that one does not free a place of this round).
        demoted, dismissed, earlier = seniors[0], seniors[1], seniors[2]
        for who, day in ((demoted, dt.date(2026, 3, 2)), (earlier, dt.date(2026, 2, 1))):
            db.session.add(GradeHistory(person=who, from_grade="senior-1", to_grade="manager-3",
                                        effective_on=day, source="case"))
            who.level, who.tier = "manager", 3
        dismissed.status = "dismissed"
        pv, _ = engine.active_policy()
        db.session.add(Case(kind="dismissal", employee=dismissed, filed_by=person("hr_r1"), policy_version=pv,
                            state="effective", closed=True, version=1, effective_on=dt.date(2026, 3, 2)))
        db.session.commit()
        q = rounds.quotas(rnd)["senior"]
        # Headcount 199 (the dismissed one left it): floor(0.15 · 199) = 29; 24 held senior at the opening
        # or came since (22 now, and the 2 who left); 2 left: quota = 29 − 24 + 2 = 7.
        assert (q.headcount, q.places, q.holders) == (199, 29, 24)
        assert (q.leaving, q.freed_by_demotions, q.quota) == (2, 2, 7)
        assert "(2 by demotion or dismissal)" in q.explanation()

    def test_floor_is_exact(self):
        q = rounds.Quota(level="senior", cap=0.29, target=None, headcount=100, holders=20, leaving=0,
                         freed_by_demotions=0, min_composite=None, since=OPENS)
        assert (q.places, q.quota) == (29, 9)
        assert rounds.Quota(level="senior", cap=0.1, target=None, headcount=10, holders=5, leaving=1,
                            freed_by_demotions=0, min_composite=None, since=OPENS).quota == 0

    def test_uncapped_levels_have_no_quota(self, bank):
        rnd = open_round(bank, ["manager"])
        q = rounds.quotas(rnd)["manager"]
        assert (q.cap, q.target, q.quota) == (None, 0.36, None)
        assert q.to_json()["quota"] is None
        assert "no cap (a target of 36%, shown only)" in q.explanation() and "60" in q.explanation()


# --- the decision ------------------------------------------------------------------------------------

@pytest.fixture
def branch(bank, make_person):
    """B1 with 14 graded managers (2 senior places at 15%) and three more eligible manager-3s."""
    t1, t2 = bank["units"]["T1"], bank["units"]["T2"]
    make_person("mgr_a", t1, grade="manager-3", performance=85, skill_test="pass")
    make_person("mgr_b", t2, grade="manager-3", performance=85, skill_test="pass")
    make_person("mgr_c", t2, grade="manager-3", performance=80, skill_test="pass")
    add_people(t2, 8, "manager-1", "f")
    db.session.commit()
    return bank


class TestDecide:
    def test_more_applicants_than_places(self, branch, walk):
        rnd = open_round(branch, ["senior"])
        assert rounds.quotas(rnd)["senior"].quota == 2
        apply_and_score(walk, "emp", rnd, "senior", 70)     # 0.7·70 + 0.3·85 = 74.5
        apply_and_score(walk, "mgr_a", rnd, "senior", 90)   # 88.5
        apply_and_score(walk, "mgr_b", rnd, "senior", 80)   # 81.5
        decide(rnd)
        assert rnd.state == "decided" and rnd.decided_at is not None
        assert decisions(rnd, "senior") == [("mgr_a", "promoted"), ("mgr_b", "promoted"),
                                            ("emp", "not_selected")]
        assert [r["rank"] for r in rnd.results["senior"]] == [1, 2, 3]
        assert [r["composite"] for r in rnd.results["senior"]] == [88.5, 81.5, 74.5]
        assert (person("mgr_a").grade, person("mgr_b").grade, person("emp").grade) == \
            ("senior-1", "senior-1", "manager-3")
        emp_case = db.session.query(Case).filter_by(employee_id=person("emp").id).one()
        assert emp_case.state == "not_selected" and emp_case.closed
        last = emp_case.events[-1]
        assert (last.action, last.actor, last.role, last.unit, last.data["round"]) == \
            ("not_select", "hr_b1", "hr", "B1", rnd.id)
        assert "rank 3 of 3" in last.comment and "outside the quota of 2" in last.comment
        assert rnd.quotas["senior"]["quota"] == 2

    def test_never_below_the_minimum_even_inside_the_quota(self, branch, walk):
        rnd = open_round(branch, ["senior"])
        apply_and_score(walk, "mgr_a", rnd, "senior", 90)   # 88.5
        apply_and_score(walk, "mgr_b", rnd, "senior", 40)   # 0.7·40 + 25.5 = 53.5 < 60
        decide(rnd)
        assert decisions(rnd, "senior") == [("mgr_a", "promoted"), ("mgr_b", "not_selected")]
        case = db.session.query(Case).filter_by(employee_id=person("mgr_b").id).one()
        assert "below the minimum 60" in case.events[-1].comment

    def test_uncapped_level_takes_everyone_above_the_minimum(self, branch, walk, make_person):
        make_person("asst", branch["units"]["T2"], grade="assistant-3", performance=88, skill_test="pass")
        make_person("asst2", branch["units"]["T1"], grade="assistant-3", performance=88, skill_test="pass")
        db.session.commit()
        rnd = open_round(branch, ["manager"])
        apply_and_score(walk, "asst", rnd, "manager", 90, approver="appr_t2")
        apply_and_score(walk, "asst2", rnd, "manager", 30, approver="appr_t1")   # 21 + 26.4 = 47.4
        apply_and_score(walk, "emp2", rnd, "manager-2", 85, approver="appr_t1")
        decide(rnd)
        assert decisions(rnd, "manager") == [("asst", "promoted"), ("emp2", "promoted"),
                                             ("asst2", "not_selected")]

    def test_ties_go_to_the_policy_tie_break(self, branch, walk, make_person):
        # Equal composites (82.1): mgr_x has the higher annual performance.
        make_person("mgr_x", branch["units"]["T1"], grade="manager-3", performance=87, skill_test="pass")
        make_person("mgr_y", branch["units"]["T2"], grade="manager-3", performance=80, skill_test="pass",
                    grade_since=dt.date(2020, 1, 1))
        add_people(branch["units"]["T2"], 6, "manager-1", "g")
        db.session.commit()
        use_policy(ratios={"senior": {"cap": 0.05}})     # 22 managers: one place
        rnd = open_round(branch, ["senior"])
        assert rounds.quotas(rnd)["senior"].quota == 1
        apply_and_score(walk, "mgr_y", rnd, "senior", 83)   # (30·83 + 40·83 + 30·80) / 100 = 82.1
        apply_and_score(walk, "mgr_x", rnd, "senior", 80)   # (30·80 + 40·80 + 30·87) / 100 = 82.1
        decide(rnd)
        assert [r["composite"] for r in rnd.results["senior"]] == [82.1, 82.1]
        assert decisions(rnd, "senior") == [("mgr_x", "promoted"), ("mgr_y", "not_selected")]

    def test_a_policy_may_replace_the_tie_break(self, branch, walk, make_person):
        make_person("mgr_x", branch["units"]["T1"], grade="manager-3", performance=87, skill_test="pass")
        make_person("mgr_y", branch["units"]["T2"], grade="manager-3", performance=80, skill_test="pass",
                    grade_since=dt.date(2020, 1, 1))
        add_people(branch["units"]["T2"], 6, "manager-1", "g")
        db.session.commit()
        use_policy(ratios={"senior": {"cap": 0.05}},
                   tie_break=["composite", "months_at_grade", "annual_performance", "applied_at"])
        rnd = open_round(branch, ["senior"])
        apply_and_score(walk, "mgr_y", rnd, "senior", 83)
        apply_and_score(walk, "mgr_x", rnd, "senior", 80)
        decide(rnd)
        assert decisions(rnd, "senior") == [("mgr_y", "promoted"), ("mgr_x", "not_selected")]

    def test_waiting_for_the_round_decision_is_never_overdue(self, branch, walk, app):
        rnd = open_round(branch, ["senior"])
        case = apply_and_score(walk, "mgr_a", rnd, "senior", 90)
        assert (case.state, case.deadline) == ("hr_approval", None)
        assert not engine.is_overdue(case, dt.date(2026, 12, 31))
        assert (case.id, "escalate") not in engine.due_for_tick(dt.date(2026, 12, 31))

    def test_award_winners_first_among_equals(self, branch, walk, make_person):
        """Jilin's 得到省市级奖励者优先 as the `awards` key: mgr_y's provincial award of 2025 beats mgr_x's higher
        annual performance at an equal composite."""
        make_person("mgr_x", branch["units"]["T1"], grade="manager-3", performance=87, skill_test="pass")
        make_person("mgr_y", branch["units"]["T2"], grade="manager-3", performance=80, skill_test="pass")
        add_people(branch["units"]["T2"], 6, "manager-1", "g")
        for who, value in (("mgr_y", 2), ("mgr_x", 1), ("mgr_x", None)):
            if value is not None:
                db.session.add(Score(person=person(who), kind="award", period=f"2025-0{value}",
                                     granularity="month", period_start=dt.date(2025, value, 1),
                                     period_end=dt.date(2025, value, 28), value=value))
        db.session.commit()
        doc = yaml.safe_load(BANK_TEXT)
        doc["ratios"] = {"senior": {"cap": 0.05}}
        doc["scores"]["award"] = {"min": 1, "max": 2}
        doc["rounds"]["tie_break"] = ["composite", "awards", "annual_performance", "applied_at"]
        engine.activate_policy(policy_mod.loads(yaml.safe_dump(doc, allow_unicode=True), "t.yaml"), "t.yaml")
        db.session.commit()
        rnd = open_round(branch, ["senior"])
        apply_and_score(walk, "mgr_x", rnd, "senior", 80)   # 82.1, a city award
        apply_and_score(walk, "mgr_y", rnd, "senior", 83)   # 82.1, a provincial award
        decide(rnd)
        assert decisions(rnd, "senior") == [("mgr_y", "promoted"), ("mgr_x", "not_selected")]

    def test_the_awards_key_needs_the_award_score(self):
        doc = yaml.safe_load(BANK_TEXT)
        doc["rounds"]["tie_break"] = ["composite", "awards"]
        with pytest.raises(policy_mod.PolicyError, match=r"rounds.tie_break\[1\].*add it under `scores`"):
            policy_mod.loads(yaml.safe_dump(doc, allow_unicode=True), "t.yaml")

    def test_places_freed_by_promotions_out_of_a_level_count_below(self, bank, walk, make_person):
        """Manager is full until the round promotes a manager to senior; senior is decided first, so the
        place it frees goes to the assistant applying for manager."""
        make_person("asst", bank["units"]["T2"], grade="assistant-3", performance=88, skill_test="pass")
        add_people(bank["units"]["T2"], 6, "manager-1", "f")
        db.session.commit()
        # 10 managers in B1: emp, emp2 and 6 more at manager (8), weak and asst at assistant.
        use_policy(ratios={"manager": {"cap": 0.8}, "senior": {"cap": 0.1}})
        rnd = open_round(bank, ["manager", "senior"])
        before = rounds.quotas(rnd)
        assert (before["manager"].quota, before["senior"].quota) == (0, 1)
        apply_and_score(walk, "asst", rnd, "manager", 85, approver="appr_t2")
        apply_and_score(walk, "emp", rnd, "senior", 85)
        decide(rnd)
        assert decisions(rnd, "senior") == [("emp", "promoted")]
        assert decisions(rnd, "manager") == [("asst", "promoted")]
        assert rnd.quotas["manager"] | {"explanation": ""} == {
            "cap": 0.8, "target": None, "headcount": 10, "places": 8, "holders": 8, "leaving": 1,
            "freed_by_demotions": 0, "quota": 1, "explanation": ""}
        assert rnd.quotas["senior"]["quota"] == 1
        # Afterwards the arithmetic stands: the round's own promotions do not eat its places.
        after = rounds.quotas(rnd)
        assert (after["manager"].quota, after["senior"].quota) == (1, 1)

    def test_without_the_promotion_above_the_lower_level_stays_full(self, bank, walk, make_person):
        make_person("asst", bank["units"]["T2"], grade="assistant-3", performance=88, skill_test="pass")
        add_people(bank["units"]["T2"], 6, "manager-1", "f")
        db.session.commit()
        use_policy(ratios={"manager": {"cap": 0.8}, "senior": {"cap": 0.1}})
        rnd = open_round(bank, ["manager", "senior"])
        apply_and_score(walk, "asst", rnd, "manager", 85, approver="appr_t2")
        decide(rnd)
        assert decisions(rnd, "manager") == [("asst", "not_selected")] and rnd.results["senior"] == []

    def test_approved_but_not_yet_effective_promotions_free_places(self, bank, walk, make_person):
        make_person("asst", bank["units"]["T2"], grade="assistant-3", performance=88, skill_test="pass")
        add_people(bank["units"]["T2"], 6, "manager-1", "f")
        db.session.commit()
        use_policy(ratios={"manager": {"cap": 0.8}, "senior": {"cap": 0.1}}, effective="first_of_next_month")
        rnd = open_round(bank, ["manager", "senior"])
        apply_and_score(walk, "asst", rnd, "manager", 85, approver="appr_t2")
        apply_and_score(walk, "emp", rnd, "senior", 85)
        decide(rnd)
        assert decisions(rnd, "manager") == [("asst", "promoted")]
        assert person("emp").grade == "manager-3"           # effective on 2026-04-01
        assert rnd.quotas["manager"]["leaving"] == 1
        assert {c.state for c in rounds.cases_of(rnd)} == {"approved"}

    @pytest.mark.parametrize("stop", ["qualification_review", "returned", "panel_scoring"])
    def test_409_while_a_case_is_before_hr_approval(self, branch, walk, stop):
        rnd = open_round(branch, ["senior"])
        apply_and_score(walk, "mgr_a", rnd, "senior", 90)
        waiting = walk.file("mgr_b", "senior", round=rnd.id)
        if stop == "returned":
            walk.act(waiting, "return", "appr_b1", comment="请补充")
        elif stop == "panel_scoring":
            walk.to_panel(waiting)
        with pytest.raises(Conflict, match=f"still has cases before HR approval: {waiting.id}") as exc:
            rounds.decide_round(rnd, person("hr_b1"))
        assert exc.value.details["cases"] == [waiting.id]
        db.session.rollback()
        assert rnd.state == "open"
        walk.act(waiting, "withdraw", "mgr_b")
        decide(rnd)
        assert decisions(rnd, "senior") == [("mgr_a", "promoted")]

    def test_decided_once(self, branch):
        rnd = decide(open_round(branch, ["senior"]))
        assert rnd.results == {"senior": []}
        with pytest.raises(Conflict, match="already decided"):
            rounds.decide_round(rnd, person("hr_b1"))

    def test_who_decides(self, branch, walk):
        rnd = open_round(branch, ["senior"])
        apply_and_score(walk, "mgr_a", rnd, "senior", 90)
        for who in ("appr_b1", "emp", "sup_b1"):
            with pytest.raises(Forbidden, match="only HR at B1"):
                rounds.decide_round(rnd, person(who))
        decide(rnd, who="hr_hq")              # HR above the round's unit
        last = rounds.cases_of(rnd)[0].events[-1]
        assert (last.action, last.actor, last.role, last.unit) == ("approve", "hr_hq", "hr", "HQ")

    def test_a_failure_changes_nothing(self, branch, walk):
        """hr_b1 declared a conflict on the second-ranked case: the decision stops there, and the first
        case's approval, made before, is undone with it."""
        rnd = open_round(branch, ["senior"])
        first = apply_and_score(walk, "mgr_a", rnd, "senior", 90)
        second = apply_and_score(walk, "mgr_b", rnd, "senior", 80)
        walk.act(second, "declare_conflict", "hr_b1", comment="亲属")
        with pytest.raises(Forbidden, match=f"declared a conflict on case {second.id}"):
            rounds.decide_round(rnd, person("hr_b1"))
        db.session.rollback()
        db.session.expire_all()
        assert (first.state, second.state, rnd.state, person("mgr_a").grade) == \
            ("hr_approval", "hr_approval", "open", "manager-3")
        decide(rnd, who="hr_r1")
        assert decisions(rnd, "senior") == [("mgr_a", "promoted"), ("mgr_b", "promoted")]

    def test_close_then_decide(self, branch, walk):
        rnd = open_round(branch, ["senior"])
        apply_and_score(walk, "mgr_a", rnd, "senior", 90)
        rounds.close_round(rnd, person("hr_b1"))
        db.session.commit()
        assert rnd.state == "closed" and rnd.closed_at is not None
        with pytest.raises(Conflict, match="only an open round"):
            rounds.close_round(rnd, person("hr_b1"))
        decide(rnd)
        assert rnd.state == "decided"
        with pytest.raises(Conflict):
            rounds.close_round(rnd, person("hr_b1"))

    def test_close_needs_hr_and_the_current_version(self, branch):
        rnd = open_round(branch, ["senior"])
        with pytest.raises(Forbidden):
            rounds.close_round(rnd, person("appr_b1"))
        with pytest.raises(Conflict, match="changed since version 7"):
            rounds.close_round(rnd, person("hr_b1"), expected_version=7)
        with pytest.raises(Invalid):
            rounds.close_round(rnd, person("hr_b1"), expected_version="1")
        assert rounds.close_round(rnd, person("hr_b1"), expected_version=1).version == 2


# --- authority on a round's cases --------------------------------------------------------------------------

class TestAuthority:
    def test_not_select_only_in_a_round_decision(self, bank, walk):
        case = walk.to_hr(walk.file("emp", "senior"))
        rb = rulebook("promotion")
        assert "not_select" not in engine.available_actions(case, person("hr_b1"))
        assert "approve" in engine.available_actions(case, person("hr_b1"))
        with pytest.raises(Forbidden, match="only by a round's decision"):
            engine.fire(case, "not_select", person("hr_b1"))
        # Off-round, a round decision is refused too.
        assert not authority.can(person("hr_b1"), case, "approve", rb, round_decision=True)

    def test_a_round_case_is_not_approved_alone(self, branch, walk):
        rnd = open_round(branch, ["senior"])
        case = apply_and_score(walk, "mgr_a", rnd, "senior", 90)
        actions = engine.available_actions(case, person("hr_b1"))
        assert "approve" not in actions and "not_select" not in actions and "reject" in actions
        with pytest.raises(Forbidden, match=f"decided with round {rnd.id}"):
            engine.fire(case, "approve", person("hr_b1"))
        walk.act(case, "reject", "hr_b1", comment="材料不实")        # rejecting alone stays possible
        assert case.state == "rejected"

    def test_own_case_and_four_eyes_in_a_round(self, branch, walk, make_person):
        make_person("hr_panel", branch["units"]["B1"], roles=["hr@B1", "panel@B1"])
        make_person("hr_mgr", branch["units"]["T1"], grade="manager-3", roles=["hr@B1"], performance=90,
                    skill_test="pass")
        db.session.commit()
        rnd = open_round(branch, ["senior"])
        case = walk.file("mgr_a", "senior", round=rnd.id)
        walk.to_hr(case, members=("hr_panel", "panel2", "panel3"), scores=(90, 90, 90), supervisor=90)
        own = apply_and_score(walk, "hr_mgr", rnd, "senior", 90)
        rb = rulebook("promotion")
        assert authority.can(person("hr_b1"), case, "approve", rb, round_decision=True)
        refused = authority.can(person("hr_panel"), case, "not_select", rb, round_decision=True)
        assert not refused and "four eyes" in refused.reason       # scored it on the panel
        refused = authority.can(person("hr_mgr"), own, "approve", rb, round_decision=True)
        assert not refused and "own case" in refused.reason
        assert not authority.can(person("appr_b1"), case, "approve", rb, round_decision=True)
        with pytest.raises(Forbidden, match="own case"):
            rounds.decide_round(rnd, person("hr_mgr"))


# --- the round's audit chain ---------------------------------------------------------------------------

class TestAudit:
    def test_round_events_form_a_verified_chain(self, branch, walk):
        rnd = open_round(branch, ["senior"])
        apply_and_score(walk, "mgr_a", rnd, "senior", 90)
        rounds.close_round(rnd, person("hr_b1"))
        decide(rnd)
        rows = db.session.execute(text("SELECT seq, action, from_state, to_state FROM events "
                                       "WHERE chain = :c ORDER BY seq"), {"c": f"round:{rnd.id}"}).all()
        assert [tuple(r) for r in rows] == [(1, "open", None, "open"), (2, "close", "open", "closed"),
                                            (3, "decide", "closed", "decided")]
        assert rnd.version == 3
        report = audit.verify()
        assert report.ok, report.problems
        assert report.chains >= 2

    def test_an_edited_round_event_is_caught(self, branch):
        rnd = decide(open_round(branch, ["senior"]))
        db.session.execute(text("UPDATE events SET comment = 'edited' WHERE chain = :c AND seq = 1"),
                           {"c": f"round:{rnd.id}"})
        db.session.commit()
        report = audit.verify()
        assert not report.ok and report.first_bad["chain"] == f"round:{rnd.id}"

    def test_a_removed_last_event_is_caught(self, branch):
        rnd = decide(open_round(branch, ["senior"]))
        db.session.execute(text("DELETE FROM events WHERE chain = :c AND seq = 2"), {"c": f"round:{rnd.id}"})
        db.session.commit()
        report = audit.verify()
        assert not report.ok and report.first_bad["chain"] == f"round:{rnd.id}"

    def test_a_round_state_set_behind_the_engine_is_caught(self, branch):
        rnd = open_round(branch, ["senior"])
        db.session.execute(text("UPDATE rounds SET state = 'closed' WHERE id = :i"), {"i": rnd.id})
        db.session.commit()
        report = audit.verify()
        assert not report.ok and "closed" in report.first_bad["reason"]


# --- ranking ----------------------------------------------------------------------------------------------

def _cand(id, composite, perf, since, at):
    return SimpleNamespace(id=id, composite=composite, annual_performance=perf,
                           employee=SimpleNamespace(grade_since=since),
                           created_at=dt.datetime(2026, 3, 2, at))


def test_rank_by_composite_then_performance_then_time_at_grade_then_application():
    pol = policy_mod.load_file("bank_corporate")
    cands = [
        _cand(1, 80.0, 85.0, dt.date(2024, 1, 1), 9),
        _cand(2, 80.0, 85.0, dt.date(2023, 1, 1), 10),   # longer at the grade than 1
        _cand(3, 80.0, 90.0, dt.date(2025, 1, 1), 11),   # higher performance than 1 and 2
        _cand(4, 91.0, 70.0, dt.date(2025, 1, 1), 12),   # highest composite
        _cand(5, 80.0, 85.0, dt.date(2024, 1, 1), 8),    # as 1, applied earlier
        _cand(6, None, 99.0, dt.date(2020, 1, 1), 7),    # no composite: last
    ]
    assert [c.id for c in rounds.rank(cands, pol, OPENS)] == [4, 3, 2, 5, 1, 6]
