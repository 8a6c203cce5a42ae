"""What every response carries for safety, and the error pages of refused requests (413, 429, CSRF).

See docs/security.md for the reasons behind each header and setting.
"""
from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge, TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix

from workflow.models import db

from .views import error_page

# No inline script or style anywhere: scripts and styles come from the app's own static files.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",          # Bootstrap draws its small icons (select arrows, close) as data: SVG
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

HSTS = "max-age=31536000"
STATIC_ENDPOINTS = ("static", "bootstrap.static")


def _security_headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure and not _development():
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    # A page or an answer about a logged-in person is not kept by the browser or a shared cache.
    if request.endpoint not in STATIC_ENDPOINTS and current_user and current_user.is_authenticated:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _development() -> bool:
    return current_app.config.get("GRADEFLOW_ENV") != "production"


def _too_large(exc: RequestEntityTooLarge):
    db.session.rollback()
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    detail = _("At most %(mb)s MB may be sent at once.", mb=f"{limit / 1024 / 1024:g}") if limit else None
    return error_page(413, detail)


def _too_many(exc: TooManyRequests):
    db.session.rollback()
    body, status = error_page(429, exc.description if request.path.startswith("/api/") else None)
    headers = {k: v for k, v in exc.get_headers() if k == "Retry-After"}
    return body, status, headers


def _csrf_failed(exc: CSRFError):
    db.session.rollback()
    if request.path.startswith("/api/"):
        return error_page(400, f"{exc.description} Send the page's CSRF token in the X-CSRFToken header, "
                               "or authenticate with 'Authorization: Bearer TOKEN'.")
    return error_page(400, _("The form has expired or did not come from this site: reload the page and "
                             "send it again."))


def init_app(app: Flask) -> None:
    proxies = app.config.get("TRUSTED_PROXIES") or 0
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    app.after_request(_security_headers)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(TooManyRequests, _too_many)
    app.register_error_handler(CSRFError, _csrf_failed)
