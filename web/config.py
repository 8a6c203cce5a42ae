"""Configuration from the environment, with a testing subclass."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

INSTANCE = Path(__file__).resolve().parent.parent / "instance"


class ConfigError(RuntimeError):
    pass


def _development_secret() -> str:
    """The embedded SQLite demo keeps a generated key under instance/, so sessions survive restarts."""
    INSTANCE.mkdir(exist_ok=True)
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    TESTING = False
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE / 'gradeflow.db'}"
    SECRET_KEY = os.environ.get("SECRET_KEY")
    AUDIT_KEY = os.environ.get("AUDIT_KEY")
    GRADEFLOW_POLICY = os.environ.get("GRADEFLOW_POLICY", "bank_corporate")
    GRADEFLOW_TODAY = None               # a fixed date (testing only)
    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_TRANSLATION_DIRECTORIES = str(Path(__file__).resolve().parent / "translations")
    LANGUAGES = ("zh_CN", "en")
    BABEL_DEFAULT_TIMEZONE = os.environ.get("GRADEFLOW_TIMEZONE", "Asia/Shanghai")
    BOOTSTRAP_SERVE_LOCAL = True          # intranets: no CDN
    BOOTSTRAP_BOOTSWATCH_THEME = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None
    API_PAGE_MAX = 500

    @classmethod
    def finalise(cls, cfg: dict) -> None:
        """Fill what is derived; refuse to start without a SECRET_KEY outside the embedded development set-up."""
        uri = cfg["SQLALCHEMY_DATABASE_URI"]
        if uri.startswith("postgresql://"):
            cfg["SQLALCHEMY_DATABASE_URI"] = uri = "postgresql+psycopg://" + uri[len("postgresql://"):]
        if not cfg.get("SECRET_KEY"):
            if uri.startswith("sqlite:") and not os.environ.get("DATABASE_URL"):
                cfg["SECRET_KEY"] = _development_secret()
            else:
                raise ConfigError("SECRET_KEY must be set when DATABASE_URL points at a real database")
        if uri.startswith("sqlite:"):
            INSTANCE.mkdir(exist_ok=True)
            cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    WTF_CSRF_ENABLED = False
    BABEL_DEFAULT_LOCALE = "en"
