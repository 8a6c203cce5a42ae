"""The web application: pages and the JSON API, thin layers over workflow/."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask

from workflow import audit, clock
from workflow.models import db

from .config import Config
from .extensions import babel, bootstrap, csrf, login_manager, migrate, select_locale


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

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    bootstrap.init_app(app)

    from . import api, auth, cases, admin, diagrams, hr, cli, rounds, views, lifecycle, reviews, publicity
    from . import jobs
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
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    views.init_app(app)
    from . import security
    security.init_app(app)      # headers on every response; 413, 429 and CSRF refusals
    cli.init_app(app)
    return app
