"""The suite runs on the database it was given: PostgreSQL when TEST_DATABASE_URL is set, else SQLite.

CI's PostgreSQL leg requires this test to have passed there, so a leg that quietly fell back to SQLite
fails instead of passing on the wrong database.
"""
import os

from sqlalchemy import text

from workflow.models import db


def test_database_backend(app):
    if os.environ.get("TEST_DATABASE_URL"):
        assert db.engine.dialect.name == "postgresql"
        assert db.session.execute(text("SELECT version()")).scalar().startswith("PostgreSQL")
    else:
        assert db.engine.dialect.name == "sqlite"
        assert db.session.execute(text("SELECT sqlite_version()")).scalar()
