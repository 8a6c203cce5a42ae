"""The demo: an org with every role, cases in every state bank_corporate reaches without rounds, a chain that
verifies, and a second load that changes nothing."""
import datetime as dt

import pytest
from sqlalchemy import func, select

from web import create_app
from web.config import TestingConfig
from workflow import audit, clock, demo, engine, policy as policy_mod
from workflow.errors import Refused
from workflow.models import db, Case, Event, GradeHistory, OrgUnit, Person, RoleAssignment, Score

TODAY = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    """The demo is loaded once for this module (it takes a second); the tests only read it."""
    app = create_app({**{k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()},
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}",
                      "GRADEFLOW_TODAY": TODAY.isoformat()})
    with app.app_context():
        db.create_all()
        engine.activate_policy(policy_mod.load_file("bank_corporate"), "bank_corporate")
        app.demo_result = demo.load()
        db.session.commit()
        db.session.remove()
    clock.fix_today(None)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def loaded(demo_app):
    with demo_app.app_context():
        clock.fix_today(TODAY)
        yield demo_app.demo_result
        db.session.remove()
    clock.fix_today(None)


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def case_of(username):
    return db.session.scalar(select(Case).join(Person, Case.employee_id == Person.id)
                             .where(Person.username == username))


def test_org_people_and_roles(loaded):
    assert loaded.created
    levels = dict(db.session.execute(select(OrgUnit.level, func.count()).group_by(OrgUnit.level)).all())
    assert levels == {"hq": 1, "region": 2, "branch": 4, "team": 8}
    assert count(Person) == len(demo.PEOPLE) >= 60
    assert set(db.session.scalars(select(RoleAssignment.role).distinct())) == \
        {"supervisor", "approver", "hr", "panel", "admin"}
    assert all(p.check_password(demo.PASSWORD) for p in db.session.scalars(select(Person).limit(3)))
    grades = set(db.session.scalars(select(Person.level).where(Person.level.is_not(None)).distinct()))
    assert grades == {"assistant", "manager", "senior", "principal", "general_manager", "director"}
    assert db.session.scalar(select(Person).where(Person.status == "probation")) is not None


def test_scores_are_for_the_last_two_years(loaded):
    periods = set(db.session.scalars(select(Score.period).where(Score.kind == "performance")))
    assert f"{TODAY.year - 1}-12" in periods and f"{TODAY.year - 2}-01" in periods
    skill_tests = db.session.scalars(select(Score).where(Score.kind == "skill_test"))
    assert {s.granularity for s in skill_tests} == {"year"}


def test_cases_in_every_state(loaded):
    states = set(db.session.scalars(select(Case.state).where(Case.kind == "promotion")))
    assert states == {"qualification_review", "returned", "panel_scoring", "hr_approval", "effective",
                      "rejected", "withdrawn"}
    # the person imported in probation has their probation case
    assert set(db.session.scalars(select(Case.state).where(Case.kind == "probation"))) == {"in_probation"}
    panel = case_of("xiayu")
    assert panel.state == "panel_scoring" and 0 < len([s for s in panel.scores if s.component == "panel"]) < 3
    exceptional = case_of("qianlei")
    assert exceptional.exceptional and exceptional.routing_reason == "exceptional"
    assert exceptional.step_unit.code == "BJ" and exceptional.filed_by.username == "yuanjie"
    vacancy = case_of("pengbo")
    assert (vacancy.routing_reason, vacancy.step_unit.code, vacancy.routing_from_unit.code) == \
        ("vacancy", "TJ", "TJ2")
    assert engine.is_overdue(case_of("wangfang"), TODAY)
    shilei = db.session.scalar(select(Person).where(Person.username == "shilei"))
    assert shilei.grade == "manager-2"
    assert db.session.scalar(select(GradeHistory).where(GradeHistory.person_id == shilei.id)).case_id == \
        case_of("shilei").id


def test_every_case_went_through_the_engine_and_the_chain_verifies(loaded):
    for case in db.session.scalars(select(Case)):
        assert case.events[0].action == "create" and case.version == case.events[-1].seq
    report = audit.verify()
    assert report.ok and report.events == count(Event)


def test_loading_twice_adds_nothing(loaded):
    before = [count(m) for m in (OrgUnit, Person, Case, Event, Score, RoleAssignment)]
    again = demo.load()
    db.session.commit()
    assert not again.created
    assert [count(m) for m in (OrgUnit, Person, Case, Event, Score, RoleAssignment)] == before
    assert [lg.username for lg in again.logins] == [lg.username for lg in loaded.logins]


def test_logins_name_people_with_roles_and_hints(loaded):
    logins = {lg.username: lg for lg in loaded.logins}
    assert logins["admin"].roles == ["admin@HQ"] and logins["panjie"].roles == ["approver@HZ1"]
    assert all(lg.hint and lg.name for lg in loaded.logins)
    # The people the hints send to an inbox really have something waiting for them there.
    for username, case_owner in [("panjie", "wangfang"), ("hexiaoyan", "tianxin"), ("songtao", "xiayu"),
                                 ("caoyang", "qianlei"), ("lvbin", "pengbo"), ("chenchen", "chenchen")]:
        assert username in {p.username for p in case_of(case_owner).assignee_people()}


def test_refused_on_a_database_with_another_org(bank):
    with pytest.raises(Refused, match="already holds an org tree"):
        demo.load()


def test_every_case_is_a_path_of_its_machine(loaded):
    from workflow.machines import rulebook
    cases = db.session.scalars(select(Case)).all()
    assert cases
    for case in cases:
        assert rulebook(case.kind).path_problems(case.events, case.state) == [], case
