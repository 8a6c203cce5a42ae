"""Configuration from the environment, with a testing subclass.

Two set-ups: *development* (the README's Quick start: the embedded SQLite file under instance/, a generated
SECRET_KEY, cookies over plain http) and *production* (everything else: SECRET_KEY required, cookies only
over https). `GRADEFLOW_ENV=development|production` chooses explicitly; by default a set DATABASE_URL means
production. The testing configuration is neither and sets what it needs itself.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

INSTANCE = Path(__file__).resolve().parent.parent / "instance"
ENVIRONMENTS = ("development", "production")
MIN_SECRET_KEY_LENGTH = 16


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


def _whole_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ConfigError(f"{name} must be true or false, not {raw!r}")
    return raw in ("1", "true", "yes", "on")


def environment() -> str:
    """development or production, from GRADEFLOW_ENV, else from whether DATABASE_URL is set."""
    chosen = os.environ.get("GRADEFLOW_ENV", "").strip().lower()
    if chosen and chosen not in ENVIRONMENTS:
        raise ConfigError(f"GRADEFLOW_ENV must be one of {', '.join(ENVIRONMENTS)}, not {chosen!r}")
    return chosen or ("production" if os.environ.get("DATABASE_URL") else "development")


class Config:
    TESTING = False
    GRADEFLOW_ENV = None                  # filled by finalise() from the environment
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
    # Cookies: never readable by scripts, not sent on cross-site posts; https only outside development.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = None          # finalise(): True outside development
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = None
    WTF_CSRF_TIME_LIMIT = None
    WTF_CSRF_SSL_STRICT = True
    API_PAGE_MAX = 500
    # Uploads (CSV and XLSX imports): a bigger request is refused with 413 before it is read.
    MAX_CONTENT_LENGTH = _whole_number("GRADEFLOW_MAX_UPLOAD_MB", 32) * 1024 * 1024
    # Attachments (certificates, diplomas, evidence): kept outside the database, named by their SHA-256.
    ATTACHMENT_DIR = os.environ.get("GRADEFLOW_ATTACHMENT_DIR") or str(INSTANCE / "attachments")
    ATTACHMENT_MAX_BYTES = _whole_number("GRADEFLOW_ATTACHMENT_MAX_MB", 10) * 1024 * 1024
    # Login throttling, kept in the database so that every worker and node counts the same failures.
    LOGIN_WINDOW_SECONDS = _whole_number("GRADEFLOW_LOGIN_WINDOW_SECONDS", 15 * 60)
    LOGIN_FAILURES_PER_USER = _whole_number("GRADEFLOW_LOGIN_FAILURES_PER_USER", 5)
    LOGIN_FAILURES_PER_ADDRESS = _whole_number("GRADEFLOW_LOGIN_FAILURES_PER_ADDRESS", 50)
    # How many reverse proxies in front set X-Forwarded-For/-Proto (0: trust no such header).
    TRUSTED_PROXIES = _whole_number("GRADEFLOW_TRUSTED_PROXIES", 0)
    # E-mail of notifications (web/mail.py), sent by `tick` and the worker after the commit. Without
    # MAIL_SERVER each mail is printed to the log instead (development).
    MAIL_SERVER = os.environ.get("GRADEFLOW_MAIL_SERVER", "").strip()
    MAIL_PORT = _whole_number("GRADEFLOW_MAIL_PORT", 587)
    MAIL_USE_TLS = _flag("GRADEFLOW_MAIL_TLS", True)        # STARTTLS on a plain connection
    MAIL_USE_SSL = _flag("GRADEFLOW_MAIL_SSL", False)       # SMTPS (usually port 465)
    MAIL_USERNAME = os.environ.get("GRADEFLOW_MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("GRADEFLOW_MAIL_PASSWORD") or None
    MAIL_SENDER = os.environ.get("GRADEFLOW_MAIL_SENDER", "Gradeflow <gradeflow@localhost>")
    MAIL_TIMEOUT = _whole_number("GRADEFLOW_MAIL_TIMEOUT", 30)
    MAIL_MAX_ATTEMPTS = _whole_number("GRADEFLOW_MAIL_MAX_ATTEMPTS", 5)
    # The address the e-mails link to; the working days before a deadline that its reminder is sent.
    BASE_URL = os.environ.get("GRADEFLOW_BASE_URL", "http://127.0.0.1:5000")
    REMINDER_DAYS = _whole_number("GRADEFLOW_REMINDER_DAYS", 2)

    @classmethod
    def finalise(cls, cfg: dict) -> None:
        """Fill what is derived; refuse to start without a proper SECRET_KEY outside development."""
        uri = cfg["SQLALCHEMY_DATABASE_URI"]
        if uri.startswith("postgresql://"):
            cfg["SQLALCHEMY_DATABASE_URI"] = uri = "postgresql+psycopg://" + uri[len("postgresql://"):]
        if cfg.get("TESTING"):
            cfg["GRADEFLOW_ENV"] = "testing"
        elif cfg.get("GRADEFLOW_ENV") not in ENVIRONMENTS:
            cfg["GRADEFLOW_ENV"] = environment()
        development = cfg["GRADEFLOW_ENV"] != "production"
        if not cfg.get("SECRET_KEY"):
            if not development:
                raise ConfigError("SECRET_KEY must be set outside development (it signs sessions and CSRF "
                                  "tokens): export SECRET_KEY=$(python3 -c 'import secrets; "
                                  "print(secrets.token_hex(32))')")
            cfg["SECRET_KEY"] = _development_secret()
        elif not development and len(cfg["SECRET_KEY"]) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(f"SECRET_KEY is too short: use at least {MIN_SECRET_KEY_LENGTH} random "
                              "characters, e.g. python3 -c 'import secrets; print(secrets.token_hex(32))'")
        for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
            if cfg.get(name) is None:
                cfg[name] = not development
        if uri.startswith("sqlite:"):
            INSTANCE.mkdir(exist_ok=True)
            cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})


class TestingConfig(Config):
    TESTING = True
    ATTACHMENT_DIR = str(Path(tempfile.gettempdir()) / "gradeflow-test-attachments")
    SECRET_KEY = "testing-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    WTF_CSRF_ENABLED = False
    BABEL_DEFAULT_LOCALE = "en"
    MAIL_SERVER = ""          # the tests point it at their own fake server
