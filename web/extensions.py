"""Flask extensions, created unbound and bound in create_app."""
from flask import request, session
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
    """The language the user chose (kept in the session), else the browser's, else Chinese."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default="zh_CN") if request else "zh_CN"
