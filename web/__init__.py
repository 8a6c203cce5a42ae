"""The web application: pages and the JSON API, thin layers over workflow/."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from workflow import audit, clock
from workflow.models import db, MAX_ID

from .config import Config
from .extensions import babel, bootstrap, csrf, login_manager, migrate, select_locale


class IdConverter(IntegerConverter):
    """`<int:...>` in every route is a row id: a number past the id columns' range matches no route (404)
    instead of reaching the database."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _unstorable(value: Any) -> bool:
    """Text no database column can hold: a NUL character (PostgreSQL refuses it) or a lone surrogate (not
    UTF-8), anywhere in a string, a list or an object's keys and values."""
    if isinstance(value, str):
        return "\x00" in value or not value.isascii() and any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


def refuse_unstorable_text() -> None:
    """Every request, first: query, form and JSON text that no column can hold is malformed (400), before a
    handler (or the login, or its throttle) passes it to a query, where PostgreSQL would fail on it (500)."""
    fields = [*request.args.listvalues(), *request.form.listvalues()]
    body = request.get_json(silent=True) if request.is_json else None
    if _unstorable(fields) or _unstorable(body):
        raise BadRequest("text must not contain NUL characters or unpaired surrogates")


def create_app(config: type[Config] | dict | None = None) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="static", instance_relative_config=True)
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    Config.finalise(app.config)

    audit.set_key(audit.derive_key(app.config["AUDIT_KEY"] or app.config["SECRET_KEY"]))
    today = app.config.get("GRADEFLOW_TODAY")
    if today:
        clock.fix_today(today if isinstance(today, dt.date) else dt.date.fromisoformat(today))

    app.url_map.converters["int"] = IdConverter     # before any blueprint adds its rules
    app.before_request(refuse_unstorable_text)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    bootstrap.init_app(app)

    from . import api, auth, cases, admin, diagrams, hr, cli, rounds, views, lifecycle, reviews, publicity
    from . import jobs, exports
    app.session_interface = auth.ApiSessionInterface()
    app.register_blueprint(auth.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(hr.bp)
    app.register_blueprint(lifecycle.bp)
    app.register_blueprint(rounds.bp)
    app.register_blueprint(reviews.bp)
    app.register_blueprint(publicity.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(diagrams.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(exports.bp)
    from . import notifications
    app.register_blueprint(notifications.bp)
    from . import printing
    app.register_blueprint(printing.bp)
    from . import delegation
    app.register_blueprint(delegation.bp)
    from . import customers, tiering, portfolios, leads
    for module in (customers, tiering, portfolios, leads):
        app.register_blueprint(module.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    views.init_app(app)
    from . import security
    security.init_app(app)      # headers on every response; 413, 429 and CSRF refusals
    cli.init_app(app)
    return app
