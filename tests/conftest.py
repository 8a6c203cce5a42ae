"""Fixtures: an app per test on a fresh database (SQLite file, or TEST_DATABASE_URL for PostgreSQL),
a small bank org tree, factories that return callables, and an API client helper.

Run in parallel (`pytest -n auto`), each worker of pytest-xdist gets a PostgreSQL database of its own,
TEST_DATABASE_URL's name plus the worker's (created when missing): the tests empty their database's tables."""
from __future__ import annotations

import datetime as dt
import os

import pytest
from flask import g
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, make_url, text
from werkzeug.security import generate_password_hash

from web import create_app
from web.config import TestingConfig
from workflow import clock, engine, policy as policy_mod
from workflow.models import db, OrgUnit, Person, RoleAssignment, Score



def _worker_database(url: str | None, worker: str | None) -> str | None:
    """The PostgreSQL database of this xdist worker (created if missing); the URL itself without xdist."""
    if not url or not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    if base.database.endswith(f"_{worker}"):    # already the worker's (a process the test spawned)
        return url
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


if os.environ.get("TEST_DATABASE_URL"):
    # Test modules read TEST_DATABASE_URL too (migrations, races, the generator): they see the worker's.
    os.environ["TEST_DATABASE_URL"] = _worker_database(os.environ["TEST_DATABASE_URL"],
                                                       os.environ.get("PYTEST_XDIST_WORKER"))
TODAY = dt.date(2026, 3, 2)   # a Monday
PG_URL = os.environ.get("TEST_DATABASE_URL")
PASSWORD = "secret-pass"
# The tests' KDF: scrypt at 1/32 of the production cost (PASSWORD_METHOD in workflow/models/people.py), or
# each login of a test would spend a tenth of a second; tests marked real_kdf keep the production method.
TEST_PASSWORD_METHOD = "scrypt:1024:8:1"
PASSWORD_HASH = generate_password_hash(PASSWORD, method=TEST_PASSWORD_METHOD)   # hashed once for everybody


def _reset_postgres() -> None:
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


_pg_ready = False


def _no_fsync(dbapi_conn, _record) -> None:
    """A test's SQLite file need not survive a power cut: without an fsync per commit the suite runs in
    half the time. The rollback journal stays on disk, so a process killed mid-write loses nothing."""
    dbapi_conn.execute("PRAGMA synchronous=OFF")


class Client(FlaskClient):
    """The tests hold an app context open, which requests reuse; forget the user Flask-Login cached in
    `g` so that each request authenticates afresh, as it does in production."""

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        return super().open(*args, **kwargs)


@pytest.fixture(autouse=True)
def cheap_kdf(request, monkeypatch):
    if request.node.get_closest_marker("real_kdf") is None:
        monkeypatch.setattr("workflow.models.people.PASSWORD_METHOD", TEST_PASSWORD_METHOD)
        monkeypatch.setattr("web.auth.PASSWORD_METHOD", TEST_PASSWORD_METHOD)


@pytest.fixture
def app(tmp_path):
    global _pg_ready
    url = PG_URL or f"sqlite:///{tmp_path / 'test.db'}"
    app = create_app({**{k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()},
                      "SQLALCHEMY_DATABASE_URI": url, "GRADEFLOW_TODAY": TODAY.isoformat()})
    app.test_client_class = Client
    with app.app_context():
        if not PG_URL:
            event.listen(db.engine, "connect", _no_fsync)
        if PG_URL:
            if not _pg_ready:
                db.drop_all()
                db.create_all()
                _pg_ready = True
            _reset_postgres()
        else:
            db.create_all()
        engine.activate_policy(policy_mod.load_file("bank_corporate"), "bank_corporate")
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()
    clock.fix_today(None)


@pytest.fixture
def client(app):
    return app.test_client()


# --- factories -----------------------------------------------------------------------------------------

@pytest.fixture
def make_unit(app):
    def make(code, level, parent=None, name=None):
        unit = OrgUnit(code=code, name=name or code, level=level, parent=parent)
        db.session.add(unit)
        db.session.flush()
        unit.path = (parent.path if parent else "/") + f"{unit.id}/"
        db.session.flush()
        return unit
    return make


@pytest.fixture
def make_person(app):
    def make(username, unit, grade=None, roles=(), grade_since=dt.date(2024, 1, 1), hired_on=dt.date(2020, 1, 1),
             education="bachelor", status="active", password=PASSWORD, performance=None, skill_test=None):
        level, tier = (grade.rsplit("-", 1)[0], int(grade.rsplit("-", 1)[1])) if grade else (None, None)
        person = Person(username=username, name=username.title(), unit=unit, level=level, tier=tier,
                        grade_since=grade_since if grade else None, hired_on=hired_on, education=education,
                        status=status)
        if password:
            person.password_hash = PASSWORD_HASH if password == PASSWORD else generate_password_hash(password, method=TEST_PASSWORD_METHOD)
        db.session.add(person)
        db.session.flush()
        for spec in roles:
            role, _, code = spec.partition("@")
            target = db.session.query(OrgUnit).filter_by(code=code).one()
            db.session.add(RoleAssignment(person=person, role=role, unit=target))
        if performance is not None:
            for month in range(1, 13):
                db.session.add(Score(person=person, kind="performance", period=f"2025-{month:02d}",
                                     granularity="month", period_start=dt.date(2025, month, 1),
                                     period_end=dt.date(2025, month, 28), value=performance))
        if skill_test is not None:
            db.session.add(Score(person=person, kind="skill_test", period="2025", granularity="year",
                                 period_start=dt.date(2025, 1, 1), period_end=dt.date(2025, 12, 31),
                                 value=None if isinstance(skill_test, str) else skill_test,
                                 passed=(skill_test == "pass") if isinstance(skill_test, str) else None))
        db.session.flush()
        db.session.refresh(person)
        return person
    return make


@pytest.fixture
def bank(app, make_unit, make_person):
    """HQ > R1 > B1 > {T1, T2}; R1 > B2 > T3; HQ > R2 > B3 > T4 — with every role and an eligible applicant."""
    hq = make_unit("HQ", "hq", name="总行")
    r1 = make_unit("R1", "region", hq, name="华东区域")
    r2 = make_unit("R2", "region", hq, name="华北区域")
    b1 = make_unit("B1", "branch", r1, name="杭州分行")
    b2 = make_unit("B2", "branch", r1, name="宁波分行")
    b3 = make_unit("B3", "branch", r2, name="北京分行")
    t1 = make_unit("T1", "team", b1, name="杭州一团队")
    t2 = make_unit("T2", "team", b1, name="杭州二团队")
    t3 = make_unit("T3", "team", b2, name="宁波一团队")
    t4 = make_unit("T4", "team", b3, name="北京一团队")
    people = {}
    for username, unit, roles in [
        ("admin", hq, ["admin@HQ", "hr@HQ"]),
        ("hr_hq", hq, ["hr@HQ"]), ("hr_r1", r1, ["hr@R1"]), ("hr_b1", b1, ["hr@B1"]),
        ("appr_t1", t1, ["approver@T1"]), ("appr_t2", t2, ["approver@T2"]), ("appr_b1", b1, ["approver@B1"]),
        ("appr_r1", r1, ["approver@R1"]), ("appr_hq", hq, ["approver@HQ"]),
        ("sup_t1", t1, ["supervisor@T1"]), ("sup_b1", b1, ["supervisor@B1"]),
        ("panel1", b1, ["panel@B1"]), ("panel2", b1, ["panel@B1"]), ("panel3", b1, ["panel@B1"]),
        ("panel4", b1, ["panel@B1"]), ("panel5", r1, ["panel@R1"]), ("panel_hq", hq, ["panel@HQ"]),
    ]:
        people[username] = make_person(username, unit, roles=roles)
    people["emp"] = make_person("emp", t1, grade="manager-3", performance=85, skill_test=75)
    people["emp2"] = make_person("emp2", t1, grade="manager-1", performance=90, skill_test="pass")
    people["weak"] = make_person("weak", t2, grade="assistant-3", performance=70, skill_test=50)
    people["far"] = make_person("far", t4, grade="manager-1", performance=88, skill_test=80)
    db.session.commit()
    return {"units": {u.code: u for u in (hq, r1, r2, b1, b2, b3, t1, t2, t3, t4)}, **people}


class Api:
    """Calls /api/v1 as one user with a bearer token."""

    def __init__(self, client, username, password=PASSWORD):
        self.client = client
        resp = client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert resp.status_code == 200, resp.get_json()
        self.headers = {"Authorization": f"Bearer {resp.get_json()['token']}"}

    def get(self, path, **kw):
        return self.client.get(f"/api/v1{path}", headers=self.headers, **kw)

    def post(self, path, json=None, **kw):
        return self.client.post(f"/api/v1{path}", json=json if json is not None else {}, headers=self.headers, **kw)


@pytest.fixture
def api(client):
    cache = {}

    def as_user(username):
        if username not in cache:
            cache[username] = Api(client, username)
        return cache[username]
    return as_user
