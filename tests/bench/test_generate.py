"""The benchmark data generator writes what the engine would have written, and the decision benchmark
decides through the engine. A small scale (100 people, 1,000 cases) on SQLite, or on TEST_DATABASE_URL."""
from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import func, inspect, select

from bench import decisions, generate
from bench.registry import Context
from workflow import audit, engine
from workflow.machines import rulebook
from workflow.models import db, Case, CaseAssignee, Event, GradeHistory, OrgUnit, Person

TODAY = dt.date(2026, 3, 2)
SCALE = 0.001
PG_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    url = PG_URL or f"sqlite:///{tmp_path_factory.mktemp('bench') / 'generated.db'}"
    summary = generate.generate(url, SCALE, seed=7, today=TODAY)
    app = generate.app_for(url)
    with app.app_context():
        yield summary, app
        db.session.remove()
        db.engine.dispose()


def test_the_counts_asked_for(data):
    summary, _ = data
    assert (summary.people, summary.cases) == (100, 1000)
    assert summary.units == 1 + 1 + 1 + 3      # HQ, a region, a branch, three teams at this scale
    assert sum(summary.by_kind_state.values()) == summary.cases
    assert db.session.scalar(select(func.count()).select_from(Event)) == summary.events
    assert 8 * summary.cases < summary.events < 11 * summary.cases
    states = set(summary.by_kind_state)
    for expected in ("promotion:qualification_review", "promotion:panel_scoring", "promotion:hr_approval",
                     "promotion:returned", "promotion:effective", "promotion:rejected", "promotion:withdrawn",
                     "demotion:effective", "demotion:retained", "dismissal:overturned"):
        assert expected in states
    assert generate.stored_summary(data[1])["cases"] == summary.cases


def test_every_chain_verifies(data):
    summary, _ = data
    report = audit.verify()
    assert report.ok, report.first_bad
    assert report.events == summary.events


def test_events_are_paths_of_the_machines_and_heads_match(data):
    events: dict[int, list[Event]] = {}
    for ev in db.session.scalars(select(Event).order_by(Event.case_id, Event.seq)):
        events.setdefault(ev.case_id, []).append(ev)
    for case in db.session.scalars(select(Case)):
        evs = events[case.id]
        assert rulebook(case.kind).path_problems(evs, case.state) == [], case.id
        assert (case.version, case.head_mac) == (evs[-1].seq, evs[-1].mac)
        assert case.closed == (case.state in rulebook(case.kind).terminal)


def test_open_cases_are_routed_as_the_engine_routes_them(data):
    """Route every open case again through the engine, as on entering its state on the day it did: the same
    step unit, reason, deadline and assignees."""
    def snapshot(case):
        return (case.step_unit_id, case.routing_reason, case.routing_from_unit_id, case.deadline,
                sorted((a.person_id, a.duty, a.role, a.unit_id) for a in case.assignments))
    cases = db.session.scalars(select(Case).where(Case.closed.is_(False)).order_by(Case.id)).all()
    assert len(cases) > 50
    try:
        for case in cases:
            stored = snapshot(case)
            entered = next(ev for ev in reversed(case.events) if ev.from_state != ev.to_state).at.date()
            engine._route_state(case, rulebook(case.kind), engine.policy_for(case), entered, entering=True)
            db.session.flush()
            assert snapshot(case) == stored, (case.id, case.kind, case.state)
    finally:
        db.session.rollback()


def test_grades_follow_the_cases_that_took_effect(data):
    last = {}
    for row in db.session.scalars(select(GradeHistory).order_by(GradeHistory.id)):
        last[row.person_id] = row
    effective = db.session.scalar(select(func.count()).select_from(Case).where(Case.state == "effective"))
    assert len(db.session.scalars(select(GradeHistory)).all()) == effective
    for person in db.session.scalars(select(Person)):
        if person.id in last:
            assert person.grade == last[person.id].to_grade
            assert person.grade_since == last[person.id].effective_on


def test_the_same_seed_gives_the_same_data(data, tmp_path):
    """Generated again (on SQLite), the events are the same, MACs and all."""
    summary, _ = data
    url = f"sqlite:///{tmp_path / 'again.db'}"
    again = generate.generate(url, SCALE, seed=7, today=TODAY)
    assert (again.events, again.by_kind_state) == (summary.events, summary.by_kind_state)
    macs = list(db.session.scalars(select(Event.mac).order_by(Event.id)))
    app = generate.app_for(url)
    with app.app_context():
        assert list(db.session.scalars(select(Event.mac).order_by(Event.id))) == macs
        db.session.remove()
        db.engine.dispose()


def test_a_bad_scale_is_refused():
    with pytest.raises(ValueError):
        generate.generate("sqlite://", 0, seed=1)


def test_the_decision_benchmark_decides_through_the_engine(data):
    """Runs last in this module: it moves cases. The engine's decisions and the ceiling's scratch rows leave
    valid data behind."""
    summary, app = data
    waiting = db.session.scalar(select(func.count()).select_from(Case).where(Case.state == "qualification_review"))
    ctx = Context(db="postgres" if PG_URL else "sqlite", url=str(db.engine.url), app=app, quick=True, scale=SCALE,
                  seed=1, repetitions=2, dataset={})
    db.session.remove()
    results = decisions.decisions(ctx)
    engine_rate, ceiling = results
    assert engine_rate.name == "decisions.qualify" and engine_rate.unit == "decisions/s"
    assert engine_rate.ceiling == ceiling.value > 0 and engine_rate.value > 0
    assert set(engine_rate.to_json()) == {"name", "value", "unit", "target", "ceiling", "ratio", "meets"}
    decided = min(decisions.QUICK_PER_REPETITION, waiting // 2) * 2
    assert db.session.scalar(select(func.count()).select_from(Case).where(
        Case.state == "qualification_review")) == waiting - decided
    assert db.session.scalar(select(func.count()).select_from(Event).where(
        Event.action == "qualify", Event.at >= dt.datetime.combine(TODAY, dt.time()))) == decided
    assert not inspect(db.engine).has_table(decisions.SCRATCH_CASES)
    report = audit.verify()
    assert report.ok, report.first_bad
    assert report.events == summary.events + decided
    # The decided cases wait for HR at the branch to form the panel, and for the supervisor.
    duties = set(db.session.scalars(select(CaseAssignee.duty).join(Case).where(Case.state == "panel_scoring")))
    assert {"assign_panel", "supervisor"} <= duties
    assert db.session.scalar(select(func.count()).select_from(OrgUnit)) == summary.units
