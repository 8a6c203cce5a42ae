"""The shipped policies side by side: one small org per policy (built from its own org levels), the same
promotion walked through the engine under each, and the outcomes that differ — routing per target level,
Quzhou's rank rules within the district, Jilin's thresholds, time in post and first-of-month effect, and the
composite under each policy's weights."""
from __future__ import annotations

import datetime as dt

import pytest
import yaml

from tests.conftest import TODAY
from workflow import engine, policy as policy_mod, rounds
from workflow.errors import Refused
from workflow.models import db, GradeHistory, Person

SHIPPED = ("bank_corporate", "mobile_quzhou", "mobile_jilin")
PANEL = ("pan1", "pan2", "pan3")
PANEL_SCORES = (80, 90, 70)       # panel mean 80
SUPERVISOR_SCORE = 88


def person(username: str) -> Person:
    return db.session.query(Person).filter_by(username=username).one()


def hold_important_customer(o, username: str = "emp") -> None:
    """包保重要客户: Jilin asks an intermediate applying for senior to hold an A1 or A2 customer."""
    from workflow.models.customers import Customer
    db.session.add(Customer(code="JL-A1", name="重要客户", unit=o["team"], tier="A1", tier_since=TODAY,
                            manager=person(username), assigned_on=TODAY))
    db.session.commit()


@pytest.fixture
def org(app, make_unit, make_person):
    """org(NAME): activates the shipped policy NAME and builds a chain of units, one per org level of the
    policy (ORG-1 at the top, TEAM-1 at the bottom), plus a second unit at the level above the teams with a
    team of its own. Approvers at every unit of the chain, HR at every unit above the team, a supervisor at
    the team and three panel members at the top."""
    def build(name: str) -> dict:
        pol = policy_mod.load_file(name)
        engine.activate_policy(pol, name)
        levels = pol.org_level_ids
        chain, parent = [], None
        for level in levels:
            parent = make_unit(f"{level.upper()}-1", level, parent)
            chain.append(parent)
        above_team = chain[-2]
        other = make_unit(f"{above_team.level.upper()}-2", above_team.level, chain[-3])
        other_team = make_unit(f"{levels[-1].upper()}-2", levels[-1], other)
        for unit in chain:
            make_person(f"appr_{unit.level}", unit, roles=[f"approver@{unit.code}"])
            if unit is not chain[-1]:
                make_person(f"hr_{unit.level}", unit, roles=[f"hr@{unit.code}"])
        make_person("sup", chain[-1], roles=[f"supervisor@{chain[-1].code}"])
        for username in PANEL:
            make_person(username, chain[0], roles=[f"panel@{chain[0].code}"])
        if pol.committee is not None:     # 管理小组: three members at every unit above the team
            for unit in chain[:-1]:
                for i in range(1, 4):
                    make_person(f"com{i}_{unit.level}", unit, roles=[f"committee@{unit.code}"])
        db.session.commit()
        return {"policy": pol, "team": chain[-1], "other_team": other_team, **{u.level: u for u in chain}}
    return build


def file(applicant: str, target: str, **kw):
    case = engine.create_promotion(person(applicant), person(applicant), target, "申请晋级", **kw)
    db.session.commit()
    return case


def act(case, action: str, who: str | None, **data):
    engine.fire(case, action, person(who) if who else None, data)
    db.session.commit()
    return case


def assignees(case) -> list[str]:
    return sorted(p.username for p in case.assignee_people("decide") or case.assignee_people("assign_panel"))


def walk_to_hr(case, panel_scores=PANEL_SCORES) -> list[str]:
    """Qualify, form the panel, score; returns the org level that acted at each of the three steps (None for
    a panel the policy skips)."""
    levels = [case.step_unit.level]
    while case.state == "qualification_review":    # a committee decides by its members' votes
        act(case, "qualify", assignees(case)[0])
    if case.state == "hr_approval":     # no panel for this level
        return levels + [None, case.step_unit.level]
    levels.append(case.step_unit.level)
    hr = [p.username for p in case.assignee_people("assign_panel")][0]
    act(case, "assign_panel", hr, members=list(PANEL))
    for member, score in zip(PANEL, panel_scores):
        act(case, "score", member, score=score)
    act(case, "supervisor_score", "sup", score=SUPERVISOR_SCORE)
    assert case.state == "hr_approval"
    levels.append(case.step_unit.level)
    return levels


# --- the files ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_policy_passes_policy_check_and_the_loader(app, name):
    path = policy_mod.resolve(name)
    result = app.test_cli_runner().invoke(args=["policy-check", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    pol = policy_mod.load_file(name)
    assert pol.id == name
    assert policy_mod.from_stored(policy_mod.canonical(pol.document)).hash == pol.hash


def test_the_telecom_ids_of_the_contract():
    quzhou, jilin = policy_mod.load_file("mobile_quzhou"), policy_mod.load_file("mobile_jilin")
    assert quzhou.org_level_ids == ("city", "district", "team")
    assert quzhou.level_ids == ("trial", "junior", "intermediate", "senior")
    assert jilin.org_level_ids == ("province", "city", "district", "team")
    assert jilin.level_ids == ("intern", "junior", "intermediate", "senior")
    assert [lv.zh for lv in quzhou.ladder] == ["试用期客户经理", "初级客户经理", "中级客户经理", "高级客户经理"]
    assert [lv.zh for lv in jilin.ladder] == ["实习期客户经理", "初级客户经理", "中级客户经理", "高级客户经理"]
    assert (quzhou.effective_when, jilin.effective_when) == ("on_approval", "first_of_next_month")


# --- routing: who decides, per target level ------------------------------------------------------------

# (policy, applicant's grade, target) -> the org level of qualification review, panel scoring, HR approval
ROUTES = [
    ("bank_corporate", "assistant-3", "manager-1", ["team", "branch", "branch"]),
    ("bank_corporate", "manager-3", "senior-1", ["branch", "branch", "branch"]),
    ("bank_corporate", "senior-3", "principal-1", ["region", "region", "region"]),
    ("mobile_quzhou", "trial-1", "junior-1", ["district", None, "district"]),      # 初级: no presentation
    ("mobile_quzhou", "junior-1", "intermediate-1", ["city", "city", "city"]),
    ("mobile_quzhou", "intermediate-1", "senior-1", ["city", "city", "city"]),
    ("mobile_jilin", "intern-1", "junior-1", ["district", "district", "city"]),
    ("mobile_jilin", "junior-1", "intermediate-1", ["city", "city", "city"]),
    ("mobile_jilin", "intermediate-1", "senior-1", ["city", "city", "city"]),
]


@pytest.mark.parametrize("name, grade, target, levels", ROUTES, ids=[f"{r[0]}-{r[2]}" for r in ROUTES])
def test_each_step_goes_to_the_org_level_of_the_policy(org, make_person, name, grade, target, levels):
    o = org(name)
    make_person("emp", o["team"], grade=grade, performance=90, skill_test=80, grade_since=dt.date(2022, 1, 1),
                hired_on=dt.date(2020, 1, 1), education="bachelor")
    db.session.commit()
    if (name, target) == ("mobile_jilin", "senior-1"):
        hold_important_customer(o)
    case = file("emp", target)
    assert case.eligible and case.routing_reason is None
    assert walk_to_hr(case) == levels
    hr_unit = o[levels[2]]
    assert assignees(case) == [f"hr_{hr_unit.level}"]


# --- Quzhou: rank within the district -------------------------------------------------------------------

def _district_of_juniors(o, make_person, applicant_performance: float, grade="junior-1",
                         since=dt.date(2025, 1, 1)):
    """The applicant and four peers at the same grade in TEAM-1's district (means 90, 85, 80, 70), and five
    stronger ones (95) in the other district, who must not count."""
    make_person("emp", o["team"], grade=grade, performance=applicant_performance, grade_since=since)
    for i, perf in enumerate((90, 85, 80, 70)):
        make_person(f"peer{i}", o["team"], grade=grade, performance=perf, grade_since=since)
    for i in range(5):
        make_person(f"far{i}", o["other_team"], grade=grade, performance=95, grade_since=since)
    db.session.commit()


def _rule(results, rule_type, occurrence=0):
    return [r for r in results if r["rule"] == rule_type][occurrence]


@pytest.mark.parametrize("perf, rank, eligible", [(82, "3/5", True), (75, "4/5", False), (95, "1/5", True)])
def test_quzhou_intermediate_needs_the_top_60_percent_of_the_district(org, make_person, perf, rank, eligible):
    o = org("mobile_quzhou")
    _district_of_juniors(o, make_person, perf)
    if eligible:
        case = file("emp", "intermediate")
        assert _rule(case.eligibility, "performance_rank")["actual"] == rank
    else:
        with pytest.raises(Refused, match="performance_rank") as err:
            file("emp", "intermediate")
        row = _rule(err.value.details["eligibility"], "performance_rank")
        assert (row["required"], row["actual"], row["passed"]) == ("top 60% (2025)", rank, False)


@pytest.mark.parametrize("perf, rank, eligible", [(86, "2/5", True), (82, "3/5", False)])
def test_quzhou_senior_needs_the_top_40_percent_of_the_district(org, make_person, perf, rank, eligible):
    o = org("mobile_quzhou")
    _district_of_juniors(o, make_person, perf, grade="intermediate-1", since=dt.date(2025, 1, 1))
    if eligible:
        assert _rule(file("emp", "senior").eligibility, "performance_rank")["actual"] == rank
    else:
        with pytest.raises(Refused, match="performance_rank") as err:
            file("emp", "senior")
        row = _rule(err.value.details["eligibility"], "performance_rank")
        assert (row["required"], row["actual"]) == ("top 40% (2025)", rank)


@pytest.mark.parametrize("target, grade, since, months, eligible", [
    ("intermediate", "junior-1", dt.date(2025, 9, 2), 6, True),
    ("intermediate", "junior-1", dt.date(2025, 9, 3), 5, False),
    ("senior", "intermediate-1", dt.date(2025, 3, 2), 12, True),
    ("senior", "intermediate-1", dt.date(2025, 3, 3), 11, False),
])
def test_quzhou_time_at_grade(org, make_person, target, grade, since, months, eligible):
    o = org("mobile_quzhou")
    make_person("emp", o["team"], grade=grade, performance=90, grade_since=since)
    db.session.commit()
    results = engine.preview_eligibility(person("emp"), target)[2]
    row = _rule(results, "months_at_grade")
    assert (row["actual"], row["passed"]) == (f"{months} months", eligible)


def test_quzhou_junior_needs_the_trial_passed_and_the_skill_appraisal(org, make_person):
    o = org("mobile_quzhou")
    make_person("passed", o["team"], grade="trial-1", skill_test="pass")
    make_person("failed", o["team"], grade="trial-1", skill_test="fail")
    make_person("on_trial", o["team"], grade="trial-1", skill_test="pass", status="probation")
    db.session.commit()
    assert file("passed", "junior").eligible
    for who, failing in (("failed", "skill_test_passed"), ("on_trial", "not_in_probation")):
        with pytest.raises(Refused) as err:
            file(who, "junior")
        assert [r["rule"] for r in err.value.details["eligibility"] if not r["passed"]] == [failing]


# --- Jilin: time in post, education, monthly average ----------------------------------------------------

@pytest.mark.parametrize("target, grade, hired_on, education, perf, failing", [
    ("intermediate", "junior-1", dt.date(2025, 3, 2), "college", 80, []),
    ("intermediate", "junior-1", dt.date(2025, 3, 3), "college", 80, ["months_in_post"]),
    ("intermediate", "junior-1", dt.date(2025, 3, 2), "highschool", 80, ["education_at_least"]),
    ("intermediate", "junior-1", dt.date(2025, 3, 2), "college", 79.5, ["performance_average"]),
    ("senior", "intermediate-1", dt.date(2023, 3, 2), "college", 85, []),
    ("senior", "intermediate-1", dt.date(2023, 3, 3), "bachelor", 85, ["months_in_post"]),
    ("senior", "intermediate-1", dt.date(2023, 3, 2), "bachelor", 84.9, ["performance_average"]),
    ("senior", "intermediate-1", dt.date(2023, 3, 2), "highschool", 90, ["education_at_least"]),
    ("senior", "intermediate-1", dt.date(2023, 3, 2), "college", 85, ["holds_customers"]),
])
def test_jilin_thresholds(org, make_person, target, grade, hired_on, education, perf, failing):
    o = org("mobile_jilin")
    # Just promoted: time at grade plays no part in Jilin, time in the post does.
    make_person("emp", o["team"], grade=grade, hired_on=hired_on, education=education, performance=perf,
                grade_since=TODAY)
    db.session.commit()
    if target == "senior" and "holds_customers" not in failing:
        hold_important_customer(o)
    results = engine.preview_eligibility(person("emp"), target)[2]
    assert [r["rule"] for r in results if not r["passed"]] == failing
    if not failing:
        assert file("emp", target).eligible
    else:
        with pytest.raises(Refused):
            file("emp", target)


# --- the same promotion under each policy -----------------------------------------------------------------

# (policy, applicant's grade, target, the grade after, how it ends)
SAME_PROMOTION = [
    ("bank_corporate", "manager-3", "senior-1", "effective"),
    ("mobile_quzhou", "junior-1", "intermediate-1", "effective"),
    ("mobile_jilin", "junior-1", "intermediate-1", "approved"),
]


@pytest.mark.parametrize("name, grade, target, after_approve", SAME_PROMOTION,
                         ids=[r[0] for r in SAME_PROMOTION])
def test_the_same_promotion_under_each_policy(org, make_person, name, grade, target, after_approve):
    o = org(name)
    make_person("emp", o["team"], grade=grade, performance=85, skill_test=75, grade_since=dt.date(2024, 1, 1),
                hired_on=dt.date(2020, 1, 1), education="bachelor")
    db.session.commit()
    case = file("emp", target)
    walk_to_hr(case)
    w = o["policy"].weights
    expected = round((w["supervisor"] * SUPERVISOR_SCORE + w["panel"] * 80 + w["annual_performance"] * 85)
                     / sum(w.values()), 2)
    assert case.annual_performance == 85 and case.composite == expected
    assert case.composite == {"bank_corporate": 83.9, "mobile_quzhou": 83.9, "mobile_jilin": 84.1}[name]
    act(case, "approve", assignees(case)[0])
    assert case.state == after_approve
    emp = person("emp")
    if after_approve == "effective":
        assert (emp.grade, emp.grade_since, case.closed) == (target, TODAY, True)
    else:
        assert emp.grade == grade and not case.closed


def test_jilin_takes_effect_on_the_first_of_next_month_by_tick(org, make_person):
    o = org("mobile_jilin")
    make_person("emp", o["team"], grade="junior-1", performance=85, education="college")
    db.session.commit()
    case = file("emp", "intermediate")
    walk_to_hr(case)
    act(case, "approve", "hr_city")
    assert (case.state, case.effective_on) == ("approved", dt.date(2026, 4, 1))
    assert engine.due_for_tick(dt.date(2026, 3, 31)) == []
    assert engine.due_for_tick(dt.date(2026, 4, 1)) == [(case.id, "make_effective")]
    engine.fire(case, "make_effective", None, today=dt.date(2026, 4, 1))
    db.session.commit()
    emp = person("emp")
    assert (case.state, emp.grade, emp.grade_since) == ("effective", "intermediate-1", dt.date(2026, 4, 1))
    assert case.events[-1].actor == "system" and case.closed
    hist = db.session.query(GradeHistory).filter_by(person_id=emp.id).one()
    assert (hist.from_grade, hist.to_grade, hist.case_id) == ("junior-1", "intermediate-1", case.id)
    assert engine.due_for_tick(dt.date(2026, 4, 2)) == []


# --- shares of headcount and promotion rounds -----------------------------------------------------------

def test_the_shares_of_each_policy():
    shares = {name: {lv: (r.kind, r.share) for lv, r in policy_mod.load_file(name).ratios.items()}
              for name in ("mobile_quzhou", "mobile_jilin")}
    assert shares["mobile_quzhou"] == {"senior": ("cap", 0.3), "intermediate": ("target", 0.5),
                                       "junior": ("target", 0.2)}
    assert shares["mobile_jilin"] == {"junior": ("target", 0.35), "intermediate": ("target", 0.5),
                                      "senior": ("target", 0.15)}
    assert policy_mod.load_file("mobile_jilin").cap("senior") is None


def _round(o, level):
    rnd = rounds.open_round(person("hr_city"), o["city"], "2026", "2026 晋级", dt.date(2026, 3, 1),
                            dt.date(2026, 3, 31), [level])
    db.session.commit()
    return rnd


def _apply_in_round(rnd, who, target, panel_score):
    case = engine.create_promotion(person(who), person(who), target, "申请晋级", round=rnd.id)
    db.session.commit()
    walk_to_hr(case, panel_scores=(panel_score,) * len(PANEL))
    return case


def test_quzhou_never_promotes_past_the_30_percent_cap_on_senior(org, make_person):
    o = org("mobile_quzhou")
    # 10 managers in the city: 2 senior, 5 intermediate (two strong ones apply), 3 junior, and one still on
    # trial (probation), who does not count.
    for name, perf in (("ia", 92), ("ib", 90), ("ic", 70), ("id", 70), ("ie", 70)):
        make_person(name, o["team"], grade="intermediate-1", performance=perf,
                    grade_since=dt.date(2025, 1, 1))
    for i in range(2):
        make_person(f"sen{i}", o["other_team"], grade="senior-1")
    for i in range(3):
        make_person(f"jun{i}", o["other_team"], grade="junior-1")
    make_person("new", o["other_team"], grade="trial-1", status="probation")
    db.session.commit()
    rnd = _round(o, "senior")
    quota = rounds.quotas(rnd)["senior"]
    assert (quota.cap, quota.headcount, quota.places, quota.holders, quota.quota) == (0.3, 10, 3, 2, 1)
    strong = _apply_in_round(rnd, "ia", "senior", 90)
    weaker = _apply_in_round(rnd, "ib", "senior", 85)
    rounds.decide_round(rnd, person("hr_city"))
    db.session.commit()
    assert [(r["username"], r["decision"]) for r in rnd.results["senior"]] == [("ia", "promoted"),
                                                                                ("ib", "not_selected")]
    assert (strong.state, weaker.state) == ("effective", "not_selected")
    assert (person("ia").grade, person("ib").grade) == ("senior-1", "intermediate-1")


def test_jilin_targets_set_no_quota(org, make_person):
    o = org("mobile_jilin")
    for name, perf in (("ja", 88), ("jb", 82)):
        make_person(name, o["team"], grade="junior-1", performance=perf, education="college")
    for i in range(6):
        make_person(f"mid{i}", o["other_team"], grade="intermediate-1")
    db.session.commit()
    rnd = _round(o, "intermediate")
    quota = rounds.quotas(rnd)["intermediate"]
    assert (quota.cap, quota.target, quota.quota) == (None, 0.5, None)
    cases = [_apply_in_round(rnd, "ja", "intermediate", 90), _apply_in_round(rnd, "jb", "intermediate", 70)]
    rounds.decide_round(rnd, person("hr_city"))
    db.session.commit()
    assert [(r["username"], r["decision"]) for r in rnd.results["intermediate"]] == [("ja", "promoted"),
                                                                                      ("jb", "promoted")]
    assert [(c.state, c.effective_on) for c in cases] == [("approved", dt.date(2026, 4, 1))] * 2


# --- probation: the trial post (试岗期) and the internship (实习期) ------------------------------------------

@pytest.mark.parametrize("name, due_on, hr", [
    ("mobile_quzhou", dt.date(2026, 3, 15), "hr_district"),     # two months' trial post, the district decides
    ("mobile_jilin", dt.date(2026, 4, 15), "hr_city"),          # three months' internship, the city decides
])
def test_a_new_manager_confirmed_after_the_trial_becomes_junior(org, make_person, name, due_on, hr):
    o = org(name)
    make_person("newbie", o["team"], status="probation", hired_on=dt.date(2026, 1, 15), skill_test="pass")
    db.session.commit()
    case = engine.open_probation(person("newbie"), person(hr))
    db.session.commit()
    assert (case.state, case.due_on) == ("in_probation", due_on)
    assert assignees(case) == [hr]
    evaluation_opens = due_on - dt.timedelta(days=7)
    assert engine.due_for_tick(evaluation_opens - dt.timedelta(days=1)) == []
    assert engine.due_for_tick(evaluation_opens) == [(case.id, "open_evaluation")]
    engine.fire(case, "open_evaluation", None, today=evaluation_opens)
    db.session.commit()
    act(case, "evaluate", "sup", score=85, comment="鉴定合格")
    act(case, "confirm", hr)
    newbie = person("newbie")
    assert (case.state, newbie.status, newbie.grade) == ("confirmed", "active", "junior-1")


@pytest.mark.parametrize("name, severity, allowed", [
    ("mobile_quzhou", "major", ("demotion", "standby")),
    ("mobile_jilin", "major", ("demotion",)),
    ("mobile_jilin", "severe", ("dismissal", "demotion")),
])
def test_misconduct_sanctions(name, severity, allowed):
    assert policy_mod.load_file(name).sanctions[severity] == allowed


# --- Quzhou: 初级 without a panel -------------------------------------------------------------------------

def test_quzhou_junior_skips_the_panel_and_stays_out_of_rounds(org, make_person):
    o = org("mobile_quzhou")
    make_person("emp", o["team"], grade="trial-1", performance=90, skill_test=80, grade_since=dt.date(2025, 1, 1))
    db.session.commit()
    case = file("emp", "junior")
    act(case, "qualify", assignees(case)[0])
    assert (case.state, case.step_unit.level, case.composite) == ("hr_approval", "district", None)
    act(case, "approve", assignees(case)[0])
    assert case.state == "effective" and person("emp").grade == "junior-1"
    assert [e.action for e in case.events] == ["create", "qualify", "approve"]
    with pytest.raises(Refused, match="skip the panel"):
        rounds.open_round(person("hr_district"), o["district"], "2026", "初级", "2026-03-02", "2026-03-31",
                          ["junior"])


def test_only_the_panel_step_may_be_none():
    doc = yaml.safe_load((policy_mod.POLICY_DIR / "mobile_quzhou.yaml").read_text(encoding="utf-8"))
    doc["authority"]["junior"]["hr_approval"] = "none"
    with pytest.raises(policy_mod.PolicyError, match=r"authority.junior.hr_approval"):
        policy_mod.loads(yaml.safe_dump(doc, allow_unicode=True), "q.yaml")
