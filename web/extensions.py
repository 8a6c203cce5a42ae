"""Flask extensions, created unbound and bound in create_app."""
from flask import has_request_context, request, session
from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

babel = Babel()
bootstrap = Bootstrap5()
csrf = CSRFProtect()
login_manager = LoginManager()
migrate = Migrate()

LANGUAGES = ("zh_CN", "en")


def select_locale() -> str:
    """The language the user chose (kept in the session), else the browser's, else Chinese. A program calling
    the API with a bearer token has no session: the language it asks for (Accept-Language), else English,
    so its messages stay what they have always been. Outside a request (the command line, a job's worker),
    English."""
    if not has_request_context():
        return "en"
    bearer = request.headers.get("Authorization", "").startswith("Bearer ")
    chosen = None if bearer else session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    api = request.path.startswith("/api/")
    return request.accept_languages.best_match(LANGUAGES, default="en" if api else "zh_CN")
