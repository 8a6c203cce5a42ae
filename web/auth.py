"""Logging in: browser sessions (Flask-Login) and API bearer tokens."""
from __future__ import annotations

import hashlib
import math
import secrets
from functools import cache
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _, ngettext
from flask_login import current_user, login_required, login_user, logout_user
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select
from werkzeug.exceptions import TooManyRequests
from werkzeug.security import check_password_hash, generate_password_hash

from workflow import throttle
from workflow.models import db, ApiToken, Person
from workflow.models.people import PASSWORD_METHOD

from .extensions import LANGUAGES, login_manager
from .forms import LoginForm

bp = Blueprint("auth", __name__)
login_manager.login_view = "auth.login"


class LoginThrottled(TooManyRequests):
    """Too many failed logins for the username or from the address: 429 with Retry-After."""

    def __init__(self, seconds: int):
        super().__init__(f"too many failed logins: try again in {seconds} seconds", retry_after=seconds)


class ApiSessionInterface(SecureCookieSessionInterface):
    """A request authenticated by a bearer token gets no session cookie (Flask-Login's recipe)."""

    def save_session(self, app, session, response):
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return None
        return super().save_session(app, session, response)


@login_manager.user_loader
def load_user(user_id: str):
    if "Authorization" in request.headers:
        # The Authorization header alone decides who calls: a cookie sent along is ignored, so a request
        # that the API exempts from CSRF (it has that header) can never ride on a browser session.
        return None
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


@cache
def _decoy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16), method=PASSWORD_METHOD)


def client_address() -> str | None:
    """The client's address (from X-Forwarded-For only when GRADEFLOW_TRUSTED_PROXIES says whom to trust)."""
    return request.remote_addr


def login_limits() -> throttle.Limits:
    cfg = current_app.config
    return throttle.Limits(window_seconds=cfg["LOGIN_WINDOW_SECONDS"],
                           per_user=cfg["LOGIN_FAILURES_PER_USER"],
                           per_address=cfg["LOGIN_FAILURES_PER_ADDRESS"])


def authenticate(username, password) -> Person | None:
    """The person with this username and password, or None. Failures are counted in the database (a page
    and the API share them, as do all workers); raises LoginThrottled while the username or the client's
    address is locked out. Commits the count, or on success the cleared count and an upgraded hash."""
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    username, address, limits = username.strip(), client_address(), login_limits()
    wait = throttle.retry_after(username, address, limits)
    if wait:
        raise LoginThrottled(wait)
    person = db.session.scalar(select(Person).where(Person.username == username))
    if person is None or not person.is_active_login:
        check_password_hash(_decoy_hash(), password)     # the same time whether or not the account exists
        person = None
    elif not person.check_password(password):
        person = None
    if person is None:
        throttle.record_failure(username, address, limits)
        db.session.commit()
        wait = throttle.retry_after(username, address, limits)
        if wait:
            raise LoginThrottled(wait)
        return None
    throttle.clear(username)
    if person.password_needs_rehash:
        person.rehash_password(password)
    db.session.commit()
    return person


@login_manager.request_loader
def load_user_from_request(req):
    header = req.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return person_for_token(header[7:].strip())
    return None


def local_target(target: str) -> str | None:
    """`target` if it is a path on this site; browsers read `//host` and `/\\host` as another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("cases.home"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            person = authenticate(form.username.data, form.password.data)
        except LoginThrottled as exc:
            form.password.errors.append(ngettext(
                "Too many failed logins: logging in is locked for %(num)s minute. Try again later.",
                "Too many failed logins: logging in is locked for %(num)s minutes. Try again later.",
                math.ceil(exc.retry_after / 60)))
            return render_template("auth/login.html", form=form), 429, {"Retry-After": str(exc.retry_after)}
        if person is None:
            form.password.errors.append(_("Wrong username or password, or the account cannot log in."))
        else:
            # A new session at login: nothing set before it (by whoever held the browser) carries over.
            lang = session.get("lang")
            session.clear()
            if lang:
                session["lang"] = lang
            login_user(person)
            return redirect(local_target(request.args.get("next", "")) or url_for("cases.home"))
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
