"""Logging in: browser sessions (Flask-Login) and API bearer tokens."""
from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from workflow.models import db, ApiToken, Person

from .extensions import LANGUAGES, login_manager
from .forms import LoginForm

bp = Blueprint("auth", __name__)
login_manager.login_view = "auth.login"



class ApiSessionInterface(SecureCookieSessionInterface):
    """A request authenticated by a bearer token gets no session cookie (Flask-Login's recipe)."""

    def save_session(self, app, session, response):
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return None
        return super().save_session(app, session, response)


@login_manager.user_loader
def load_user(user_id: str):
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return None   # a bearer token decides who calls, not a cookie sent along
    pid, _sep, gen = user_id.partition(":")
    if not pid.isdigit() or not gen.lstrip("-").isdigit():
        return None
    person = db.session.get(Person, int(pid))
    if person is None or person.status == "dismissed" or (person.session_generation or 0) != int(gen):
        return None
    return person


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(person: Person) -> str:
    token = secrets.token_urlsafe(32)
    db.session.add(ApiToken(person=person, token_hash=token_hash(token)))
    return token


def person_for_token(token: str) -> Person | None:
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token),
                                                  ApiToken.revoked.is_(False)))
    if row is None or row.person.status == "dismissed":
        return None
    return row.person


def authenticate(username, password) -> Person | None:
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    person = db.session.scalar(select(Person).where(Person.username == username.strip()))
    if person is None or not person.is_active_login or not person.check_password(password):
        return None
    return person


@login_manager.request_loader
def load_user_from_request(req):
    header = req.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return person_for_token(header[7:].strip())
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("cases.home"))
    form = LoginForm()
    if form.validate_on_submit():
        person = authenticate(form.username.data, form.password.data)
        if person is None:
            form.password.errors.append(_("Wrong username or password, or the account cannot log in."))
        else:
            login_user(person)
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/") and not target.startswith("//")
                            else url_for("cases.home"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/lang/<code>", methods=["POST", "GET"])
def set_language(code: str):
    if code in LANGUAGES:
        session["lang"] = code
    # Back to the page the switch was clicked on, never to another site.
    ref = request.referrer or ""
    same_site = urlsplit(ref).netloc in ("", request.host) and not ref.startswith("//")
    target = ref if ref and same_site else url_for("cases.home")
    return redirect(target)
