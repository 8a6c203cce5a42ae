"""The HR dashboard's figures (workflow/reports.pipeline): counts by state, level and child unit, time per step
from the audit events, the overdue steps with how late, the promotion funnel and headcount against caps."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from tests.conftest import TODAY
from workflow import clock, engine, policy as policy_mod, reports
from workflow.models import db, Event, OrgUnit, Person


def unit(code: str) -> OrgUnit:
    return db.session.scalar(select(OrgUnit).filter_by(code=code))


def person(username: str) -> Person:
    return db.session.scalar(select(Person).filter_by(username=username))


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, 2, day, hour)


def stamp(case, *times: dt.datetime) -> None:
    """Set the times of the case's events, in their order (the tests say when each step happened)."""
    for seq, when in enumerate(times, start=1):
        db.session.execute(update(Event).where(Event.case_id == case.id, Event.seq == seq).values(at=when))
    db.session.commit()


@pytest.fixture
def pol():
    return engine.active_policy()[1]


@pytest.fixture
def cases(bank, walk, make_person):
    """A: emp (T1) to senior, qualified, in panel scoring. B: emp2 (T1), waiting for qualification. C: c1 (T2)
    qualified then withdrawn. D: d1 (T2) through to effective. E: far (T4, outside B1), waiting."""
    make_person("c1", unit("T2"), grade="manager-3", performance=85, skill_test=75)
    make_person("d1", unit("T2"), grade="manager-3", performance=85, skill_test=75)
    db.session.commit()
    a = walk.to_panel(walk.file("emp"))
    stamp(a, at(20), at(24))
    b = walk.file("emp2", target="manager-2")
    stamp(b, at(26))
    c = walk.act(walk.to_panel(walk.file("c1")), "withdraw", "c1")
    stamp(c, at(22), at(23), at(25))
    d = walk.act(walk.to_hr(walk.file("d1")), "approve", "hr_b1")
    assert d.state == "effective"
    stamp(d, *[at(10, h) for h in range(1, len(d.events) + 1)])
    e = walk.file("far", target="manager-2")
    return {"a": a.id, "b": b.id, "c": c.id, "d": d.id, "e": e.id}


def test_counts_by_state_level_and_child_unit(cases, pol):
    rep = reports.pipeline(unit("B1"), policy=pol)
    assert rep["unit"] == "B1"
    assert rep["by_state"] == {"effective": 1, "panel_scoring": 1, "qualification_review": 1, "withdrawn": 1}
    assert rep["by_level"] == {"manager": {"qualification_review": 1},
                               "senior": {"effective": 1, "panel_scoring": 1, "withdrawn": 1}}
    assert [u["code"] for u in rep["units"]] == ["B1", "T1", "T2"]
    assert rep["units"][0]["direct"] is True and rep["units"][1]["direct"] is False
    assert rep["by_unit"] == {"T1": {"senior": {"panel_scoring": 1}, "manager": {"qualification_review": 1}},
                              "T2": {"senior": {"withdrawn": 1, "effective": 1}}}
    # One level up the children are branches; the unit's own people form their own bucket.
    region = reports.pipeline(unit("R1"), policy=pol)
    assert [u["code"] for u in region["units"]] == ["R1", "B1", "B2"]
    assert set(region["by_unit"]) == {"B1"}
    assert sum(region["by_unit"]["B1"]["senior"].values()) == 3
    # A leaf unit has no children: everything is its own.
    team = reports.pipeline(unit("T4"), policy=pol)
    assert team["by_unit"] == {"T4": {"manager": {"qualification_review": 1}}}
    assert reports.pipeline(unit("B1"), "probation", policy=pol)["by_state"] == {}


def test_time_per_step_from_the_audit_events(cases, pol):
    # Today is TODAY (2 March) on a fixed clock: current steps run to its end (3 March 00:00).
    steps = {(s["kind"], s["state"]): s for s in reports.step_times(unit("B1"), policy=pol)}
    assert set(steps) == {("promotion", "qualification_review"), ("promotion", "panel_scoring"),
                          ("promotion", "hr_approval")}                # terminal states are not steps
    qual = steps[("promotion", "qualification_review")]
    # A 4 days, B 4.625 days and counting, C 1 day, D 1 hour: the median of four is the mean of the middle two.
    assert qual == {"kind": "promotion", "state": "qualification_review", "visits": 4, "current": 1,
                    "median_days": 2.5, "slowest_days": 4.6, "slowest_case": cases["b"], "deadline_days": 5}
    panel = steps[("promotion", "panel_scoring")]
    # A 6.625 days and counting, C 2 days, D a few hours.
    assert (panel["visits"], panel["current"], panel["median_days"], panel["slowest_days"],
            panel["slowest_case"]) == (3, 1, 2.0, 6.6, cases["a"])
    assert steps[("promotion", "hr_approval")]["current"] == 0
    # The order of the machine's states; E (T4) is not in B1.
    assert [s["state"] for s in reports.step_times(unit("B1"), policy=pol)] == [
        "qualification_review", "panel_scoring", "hr_approval"]
    hq = {s["state"]: s for s in reports.step_times(unit("HQ"), policy=pol)}
    assert hq["qualification_review"]["visits"] == 5
    assert reports.step_times(unit("B1"), "demotion", policy=pol) == []


def test_a_returned_case_counts_each_visit(bank, walk, pol):
    case = walk.file("emp")
    walk.act(case, "return", "appr_b1", comment="补充材料")
    walk.act(case, "resubmit", "emp", statement="第二稿")
    stamp(case, at(1), at(3), at(4))            # 2 days in review, 1 day returned, back in review since 4 Feb
    steps = {s["state"]: s for s in reports.step_times(unit("T1"), policy=pol)}
    assert steps["qualification_review"]["visits"] == 2 and steps["qualification_review"]["current"] == 1
    assert steps["returned"]["median_days"] == 1.0
    assert steps["qualification_review"]["slowest_days"] == 26.6    # 4 Feb 09:00 to 3 March 00:00


def test_time_per_step_and_funnel_count_the_last_year(bank, walk, make_person, pol):
    """A case closed more than a year ago is not read; a visit that ended more than a year ago does not count,
    one still open does however long ago it began; the funnel counts the promotions filed in the year."""
    from sqlalchemy import update as sql_update
    from workflow.models import Case
    old = walk.act(walk.to_panel(walk.file("emp")), "withdraw", "emp")
    stamp(old, dt.datetime(2024, 5, 1), dt.datetime(2024, 5, 3), dt.datetime(2024, 5, 4))
    long = walk.to_panel(walk.file("emp2", target="manager-2"), approver="appr_t1")
    stamp(long, dt.datetime(2024, 6, 1), dt.datetime(2024, 6, 11))        # in panel scoring since June 2024
    db.session.execute(sql_update(Case).where(Case.id == old.id).values(
        created_at=dt.datetime(2024, 5, 1), updated_at=dt.datetime(2024, 5, 4)))
    db.session.execute(sql_update(Case).where(Case.id == long.id).values(created_at=dt.datetime(2024, 6, 1)))
    db.session.commit()
    steps = {s["state"]: s for s in reports.step_times(unit("T1"), policy=pol)}
    assert set(steps) == {"panel_scoring"}                    # both reviews ended in 2024
    assert steps["panel_scoring"]["visits"] == 1 and steps["panel_scoring"]["slowest_case"] == long.id
    assert steps["panel_scoring"]["slowest_days"] == 630.0     # 11 June 2024 to 3 March 2026, midnights
    assert reports.funnel(unit("T1"))[0] == {"stage": "filed", "cases": 0}
    assert reports.pipeline(unit("T1"), policy=pol)["stats_since"] == "2025-03-03"
    # Both still counted by state, whatever their age.
    assert reports.pipeline(unit("T1"), policy=pol)["by_state"] == {"panel_scoring": 1, "withdrawn": 1}


def test_overdue_steps_say_how_late(cases, pol):
    clock.fix_today(dt.date(2026, 3, 20))
    rep = reports.pipeline(unit("B1"), policy=pol)
    assert rep["overdue"] == sorted([cases["a"], cases["b"]])
    rows = {r["case"]: r for r in rep["overdue_steps"]}
    # Entered on TODAY (Monday 2 March): 5 working days make it due on 9 March; on 20 March 11 days late,
    # 9 of them working days.
    assert rows[cases["a"]] == {"case": cases["a"], "kind": "promotion", "state": "panel_scoring",
                                "employee": "emp", "employee_name": "Emp", "step_unit": "B1",
                                "deadline": "2026-03-09", "days_late": 11, "working_days_late": 9}
    assert rows[cases["b"]]["state"] == "qualification_review" and rows[cases["b"]]["step_unit"] == "T1"
    assert cases["e"] not in rows
    assert [r["case"] for r in reports.overdue_steps(unit("HQ"), today=dt.date(2026, 3, 20))] == sorted(
        [cases["a"], cases["b"], cases["e"]])
    assert reports.overdue_steps(unit("B1"), today=dt.date(2026, 3, 9)) == []


def test_working_days_between():
    monday = dt.date(2026, 3, 2)
    assert reports.working_days_between(monday, monday) == 0
    assert reports.working_days_between(monday, monday - dt.timedelta(days=3)) == 0
    assert reports.working_days_between(monday, dt.date(2026, 3, 6)) == 4         # to Friday
    assert reports.working_days_between(monday, dt.date(2026, 3, 8)) == 4         # the weekend adds none
    assert reports.working_days_between(monday, dt.date(2026, 3, 16)) == 10
    assert reports.working_days_between(monday, dt.date(2026, 3, 16), {dt.date(2026, 3, 4)}) == 9
    for end in (dt.date(2026, 3, d) for d in range(3, 31)):     # the same as counting day by day
        slow = sum(1 for i in range(1, (end - monday).days + 1) if (monday + dt.timedelta(days=i)).weekday() < 5)
        assert reports.working_days_between(monday, end) == slow


def test_funnel_counts_how_far_promotions_got(cases):
    assert reports.funnel(unit("B1")) == [
        {"stage": "filed", "cases": 4}, {"stage": "qualified", "cases": 3}, {"stage": "hr_approval", "cases": 1},
        {"stage": "approved", "cases": 1}, {"stage": "effective", "cases": 1}]
    assert reports.funnel(unit("T4"))[:2] == [{"stage": "filed", "cases": 1}, {"stage": "qualified", "cases": 0}]
    assert reports.pipeline(unit("B1"), "probation")["funnel"] == []


def test_headcount_against_caps_and_targets(bank, make_person, pol):
    t3, b2 = unit("T3"), unit("B2")
    for i in range(5):
        make_person(f"m{i}", t3, grade="manager-1")
    make_person("s1", t3, grade="senior-1")
    make_person("s2", t3, grade="senior-2")
    make_person("p1", b2, grade="principal-1")
    make_person("s3", t3, grade="senior-1", status="probation")      # in probation: not counted
    make_person("s4", t3, grade="senior-1", status="dismissed")      # gone
    make_person("staff", t3)                                         # no grade: not a manager
    db.session.commit()
    hc = reports.headcount(b2, policy=pol)
    assert hc["levels"] == list(pol.level_ids)
    total = hc["total"]
    assert total["headcount"] == 8
    assert total["levels"]["senior"] == {"count": 2, "share": 0.25, "cap": 0.15, "target": None, "places": 1,
                                         "target_count": None, "over_cap": True}
    assert total["levels"]["manager"] == {"count": 5, "share": 0.625, "cap": None, "target": 0.36,
                                          "places": None, "target_count": 3, "over_cap": False}
    assert total["levels"]["director"]["count"] == 0 and total["levels"]["director"]["places"] == 0
    assert total["over_cap"] == ["senior", "principal"]
    assert set(hc["by_unit"]) == {"B2", "T3"}
    assert hc["by_unit"]["T3"]["headcount"] == 7 and hc["by_unit"]["T3"]["over_cap"] == ["senior"]
    assert hc["by_unit"]["B2"]["levels"]["principal"]["over_cap"] is True     # 1 of 1, a cap of 8%: 0 places
    # Within the caps: a larger branch.
    for i in range(5, 12):
        make_person(f"m{i}", t3, grade="manager-1")
    db.session.commit()
    assert reports.headcount(t3, policy=pol)["total"]["over_cap"] == []      # 2 of 14: 15% allows 2


def test_headcount_under_a_policy_with_targets_only(bank, make_person):
    jilin = policy_mod.load_file("mobile_jilin")
    hc = reports.headcount(unit("T1"), policy=jilin)
    assert hc["levels"][:len(jilin.level_ids)] == list(jilin.level_ids)
    assert hc["total"]["over_cap"] == []
    assert all(f["cap"] is None for f in hc["total"]["levels"].values())
    assert hc["total"]["levels"]["senior"]["target"] == 0.15
    # The bank's grades are not on Jilin's ladder: they are counted under their own ids after the ladder.
    assert hc["total"]["levels"]["manager"]["count"] == 2
    assert reports.headcount(unit("T1"))["levels"] == ["manager"]        # no policy: what there is


def test_the_statements_do_not_grow_with_the_cases(cases, walk, make_person, pol):
    from tests.web.test_query_counts import counting
    with counting() as few:
        reports.pipeline(unit("HQ"), policy=pol)
    for i in range(6):
        make_person(f"x{i}", unit("T1" if i % 2 else "T2"), grade="manager-3", performance=85, skill_test=75)
        db.session.commit()
        walk.to_panel(walk.file(f"x{i}"))
    with counting() as many:
        reports.pipeline(unit("HQ"), policy=pol)
    assert len(many) == len(few) <= 8
    assert TODAY == clock.today()
