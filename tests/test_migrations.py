"""The Alembic migrations build exactly the schema the models describe, and undo it.

SQLite always; PostgreSQL as well when TEST_DATABASE_URL is set, in a throwaway database of its own so
that the `test` database the other tests share is never touched.
"""
from __future__ import annotations

import os

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from web import create_app
from web.config import TestingConfig
from workflow import clock
from workflow.models import db

PG_URL = os.environ.get("TEST_DATABASE_URL")

# migrations/env.py still asks Flask-SQLAlchemy for get_engine(), which warns since 3.0.


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'migrations.db'}"


@pytest.fixture
def postgres_url():
    """A database of its own, created empty and dropped afterwards."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    base = make_url(PG_URL)
    name = f"gradeflow_migrations_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _app_for(url: str):
    settings = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    return create_app({**settings, "SQLALCHEMY_DATABASE_URI": url})


def _differences() -> list:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, db.metadata)


def _tables() -> set[str]:
    return set(inspect(db.engine).get_table_names())


def _round_trip(url: str) -> None:
    app = _app_for(url)
    with app.app_context():
        try:
            assert _tables() == set(), "the database should start empty"
            flask_migrate.upgrade()
            assert _tables() == set(db.metadata.tables) | {"alembic_version"}
            assert _differences() == []

            flask_migrate.downgrade(revision="base")
            assert _tables() <= {"alembic_version"}

            # And up again: a downgrade leaves nothing behind that blocks the next upgrade.
            flask_migrate.upgrade()
            assert _differences() == []
        finally:
            db.session.remove()
            db.engine.dispose()
            clock.fix_today(None)


def test_migrations_match_models_on_sqlite(sqlite_url):
    _round_trip(sqlite_url)


def test_migrations_match_models_on_postgresql(postgres_url):
    _round_trip(postgres_url)
