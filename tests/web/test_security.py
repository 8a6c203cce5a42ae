"""Hardening: CSRF on every form and every changing route, cookies, password hashing and its upgrade,
login throttling kept in the database, security headers without inline script or style, SECRET_KEY
outside development, uploads (size and type), and no SQL built from strings (see docs/security.md)."""
from __future__ import annotations

import ast
import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import pytest
from flask import g
from sqlalchemy import delete, func, select, update
from werkzeug.datastructures import FileStorage
from werkzeug.security import generate_password_hash

from tests.conftest import PASSWORD, TODAY
from tests.web.api_checks import err, ok
from web import create_app
from web.config import Config, ConfigError, TestingConfig
from web.uploads import checked_upload
from workflow import throttle
from workflow.errors import Invalid
from workflow.models import db, Event, LoginAttempt, Person
from workflow.models.people import PASSWORD_METHOD

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"


def sibling(app, **overrides):
    """Another app on the same database: another worker, or another node."""
    cfg = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    return create_app({**cfg, "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                       "GRADEFLOW_TODAY": TODAY.isoformat(), **overrides})


@pytest.fixture
def siblings(app):
    made = []

    def make(**overrides):
        made.append(sibling(app, **overrides))
        return made[-1]
    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    return TOKEN.search(html).group(1)


def form_login(client, username, password=PASSWORD):
    """Logs in through the login form, with its CSRF token when the app asks for one."""
    match = TOKEN.search(client.get("/login").get_data(as_text=True))
    data = {"username": username, "password": password}
    if match:
        data["csrf_token"] = match.group(1)
    return client.post("/login", data=data)


def token_login(client, username, password=PASSWORD, **kw):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password}, **kw)


def counts():
    return db.session.scalar(select(func.count()).select_from(Event)), \
        db.session.scalar(select(func.count()).select_from(Person))


def dummy_url(rule) -> str:
    """The rule's URL with a whole number for each <int:...> part and `x` for the others."""
    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", lambda m: "1" if m.group(1) == "int" else "x", rule.rule)


# --- SECRET_KEY, environments and cookies ------------------------------------------------------------

@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("GRADEFLOW_ENV", "DATABASE_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("web.config.INSTANCE", tmp_path / "instance")
    return monkeypatch


def finalised(**cfg):
    cfg = {**{k: getattr(Config, k) for k in dir(Config) if k.isupper()},
           "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": None, **cfg}
    Config.finalise(cfg)
    return cfg


def test_secret_key_is_required_outside_development(clean_env):
    clean_env.setenv("DATABASE_URL", "postgresql://gf@db/gf")
    with pytest.raises(ConfigError, match="SECRET_KEY must be set outside development"):
        finalised(SQLALCHEMY_DATABASE_URI="postgresql://gf@db/gf")
    clean_env.delenv("DATABASE_URL")
    clean_env.setenv("GRADEFLOW_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        finalised()
    with pytest.raises(ConfigError, match="too short"):
        finalised(SECRET_KEY="short")
    clean_env.setenv("GRADEFLOW_ENV", "staging")
    with pytest.raises(ConfigError, match="GRADEFLOW_ENV must be one of"):
        finalised(SECRET_KEY="x" * 32)


def test_production_cookies_are_secure_and_development_keeps_the_quick_start(clean_env, tmp_path):
    clean_env.setenv("GRADEFLOW_ENV", "production")
    prod = finalised(SECRET_KEY="k" * 32)
    assert (prod["GRADEFLOW_ENV"], prod["SESSION_COOKIE_SECURE"], prod["REMEMBER_COOKIE_SECURE"]) == \
        ("production", True, True)
    # The Quick start: no DATABASE_URL, no SECRET_KEY: development, a key generated once under instance/.
    clean_env.delenv("GRADEFLOW_ENV")
    dev = finalised()
    again = finalised()
    assert dev["GRADEFLOW_ENV"] == "development" and dev["SESSION_COOKIE_SECURE"] is False
    assert dev["SECRET_KEY"] == again["SECRET_KEY"] == (tmp_path / "instance" / "secret_key").read_text()
    assert len(dev["SECRET_KEY"]) >= 32
    for cfg in (prod, dev):
        assert (cfg["SESSION_COOKIE_HTTPONLY"], cfg["SESSION_COOKIE_SAMESITE"]) == (True, "Lax")
        assert (cfg["REMEMBER_COOKIE_HTTPONLY"], cfg["REMEMBER_COOKIE_SAMESITE"]) == (True, "Lax")


def test_the_app_refuses_to_start_without_a_secret_key_in_production(clean_env):
    clean_env.setenv("GRADEFLOW_ENV", "production")
    clean_env.setattr(Config, "SECRET_KEY", None)
    with pytest.raises(ConfigError, match="SECRET_KEY must be set outside development"):
        create_app()        # what `flask --app wsgi ...` and gunicorn's wsgi:app do first


@pytest.fixture
def staff(app, make_unit, make_person, monkeypatch):
    """Four people who can log in, and a cheap KDF standing in for scrypt (these tests count attempts,
    and scrypt is slow on purpose); test_passwords_are_stored_with_scrypt checks the real one."""
    cheap = "pbkdf2:sha256:1"
    monkeypatch.setattr("workflow.models.people.PASSWORD_METHOD", cheap)
    monkeypatch.setattr("web.auth._decoy_hash", lambda: generate_password_hash("decoy", cheap))
    hq = make_unit("HQ", "hq")
    people = {name: make_person(name, hq, grade="manager-1") for name in ("emp", "emp2", "far", "weak")}
    hashed = generate_password_hash(PASSWORD, cheap)
    for person in people.values():
        person.password_hash = hashed
    db.session.commit()
    return people


def test_the_session_cookie_in_production(staff, siblings):
    prod = siblings(TESTING=False, GRADEFLOW_ENV="production", SECRET_KEY="p" * 40, WTF_CSRF_ENABLED=True)
    resp = form_login(prod.test_client(), "emp")
    assert resp.status_code == 302
    cookie = resp.headers["Set-Cookie"]
    assert "session=" in cookie and all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=Lax"))
    # Over https (directly, or X-Forwarded-Proto from a trusted proxy) the browser is told to stay there.
    assert prod.test_client().get("/login", base_url="https://localhost").headers[
        "Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in prod.test_client().get("/login").headers


# --- security headers; no inline script or style --------------------------------------------------------

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"""[\s,(]on[a-z]+\s*=\s*['"]""", re.I), "an inline event handler"),
    (re.compile(r"""\sstyle\s*=\s*['"]""", re.I), "a style attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def inline_problems(text: str) -> list[str]:
    return [what for pattern, what in INLINE if pattern.search(text)]


def test_templates_hold_no_inline_script_style_or_handler():
    found = {str(p.relative_to(ROOT)): inline_problems(p.read_text(encoding="utf-8"))
             for p in TEMPLATES.rglob("*.html")}
    assert {k: v for k, v in found.items() if v} == {}
    assert inline_problems('<select onchange="this.form.submit()">') == ["an inline event handler"]
    assert inline_problems("{{ field(f, onchange='go()') }}") == ["an inline event handler"]
    assert inline_problems('<div style="color: red">') == ["a style attribute"]
    assert inline_problems("<script>alert(1)</script>") == ["an inline <script>"]
    assert inline_problems('<script src="/static/js/gradeflow.js" defer></script>') == []


def test_security_headers_on_every_response_and_pages_without_inline_code(bank, api, page, client):
    cid = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior"}).get_json()["id"]
    api("appr_b1").post(f"/cases/{cid}/qualify", {})
    admin = page("admin")
    static = admin.get("/static/js/gradeflow.js")
    static.close()
    pages = ["/", f"/cases/{cid}", "/machines/promotion", "/hr/pipeline", "/rounds/",
             "/admin/people/emp", "/cases/new?employee=emp"]
    responses = [admin.get(path) for path in pages]
    for path, resp in zip(pages, responses):
        assert resp.status_code == 200, path
        assert inline_problems(resp.get_data(as_text=True)) == [], path
        assert resp.headers["Cache-Control"] == "no-store", path
    assert "data-autosubmit" in responses[3].get_data(as_text=True)
    assert re.search(r'<select[^>]*data-autosubmit[^>]*name="employee"|<select[^>]*name="employee"[^>]*'
                     r'data-autosubmit', responses[-1].get_data(as_text=True))
    for resp in [*responses, admin.get("/nowhere"), api("emp").get("/me"), static, client.get("/login")]:
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "same-origin"


# --- CSRF ---------------------------------------------------------------------------------------------

POST_FORM = re.compile(r"<form\b[^>]*method=[\"']post[\"'][^>]*>(.*?)</form>", re.I | re.S)
CSRF_FIELD = re.compile(r"\.hidden_tag\(\)|\bcsrf_token\(\)|\.csrf_token\s*(\(\s*\))?\s*}}")


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    missing = []
    for path in TEMPLATES.rglob("*.html"):
        for body in POST_FORM.findall(path.read_text(encoding="utf-8")):
            if not CSRF_FIELD.search(body):
                missing.append(str(path.relative_to(ROOT)))
    assert missing == []
    assert [bool(CSRF_FIELD.search(t)) for t in ("{{ form.hidden_tag() }}", "{{ form.csrf_token }}",
                                                 '<input name="csrf_token" value="{{ csrf_token() }}">',
                                                 "{{ form.submit() }}")] == [True, True, True, False]


def test_pages_need_the_csrf_token_and_their_forms_carry_it(bank, app, api):
    app.config["WTF_CSRF_ENABLED"] = True
    cid = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior"}).get_json()["id"]
    client = app.test_client()
    assert form_login(client, "appr_b1").status_code == 302
    before = counts()
    # Every route of the pages that takes a POST refuses one without the token, and changes nothing.
    checked = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.rule.startswith("/api/"):
            continue
        resp = client.post(dummy_url(rule).replace("/1/", f"/{cid}/"), data={"qualify-version": "1"})
        assert resp.status_code == 400, (rule.rule, resp.status_code)
        assert "并非来自本站" in resp.get_data(as_text=True), rule.rule    # the default language, zh-CN
        checked.append(rule.rule)
    assert {"/login", "/logout", "/cases/<int:case_id>/<action>"} <= set(checked) and len(checked) >= 10
    assert counts() == before
    # The forms a page shows carry it, and it works.
    g.pop("csrf_token", None)       # Flask-WTF keeps the token in `g`, which the tests' open context shares
    html = client.get(f"/cases/{cid}").get_data(as_text=True)
    forms = POST_FORM.findall(html)
    assert len(forms) >= 4      # qualify, return, reject and the log-out form
    for body in forms:
        assert re.search(r'name="[\w-]*csrf_token"[^>]*value="[^"]{20,}"', body), body[:300]
    form = re.search(r'id="form-qualify".*?</form>', html, re.S).group(0)
    data = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))
    assert client.post(f"/cases/{cid}/qualify", data=data).status_code == 302
    assert api("emp").get(f"/cases/{cid}").get_json()["state"] == "panel_scoring"


def test_the_api_cannot_be_driven_with_a_session_cookie_alone(staff, app):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    assert form_login(client, "emp").status_code == 302
    before = counts()
    posts = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/") and "POST" in r.methods
             and r.endpoint != "api.token"]
    assert len(posts) >= 3
    for rule in posts:
        resp = client.post(dummy_url(rule), json={"kind": "promotion", "target_grade": "manager-2"})
        assert err(resp, 400)["code"] == "bad_request" and "CSRF" in resp.get_json()["error"]["message"], rule
        # A header that is not a bearer token does not switch the CSRF check off while the cookie logs in.
        resp = client.post(dummy_url(rule), json={}, headers={"Authorization": "Basic ZW1wOng="})
        assert err(resp, 401)["code"] == "unauthorized", rule
    assert counts() == before
    # With the page's token in X-CSRFToken, a session may use the API (CONTRACT: "A browser session works").
    g.pop("csrf_token", None)
    token = csrf_token(client.get("/").get_data(as_text=True))
    resp = client.get("/api/v1/me", headers={"X-CSRFToken": token})
    assert ok(resp)["username"] == "emp"
    resp = client.post("/api/v1/cases/1/withdraw", json={}, headers={"X-CSRFToken": token})
    assert err(resp, 404)["code"] == "not_found"        # past the CSRF check, to the case look-up


# --- passwords ----------------------------------------------------------------------------------------

@pytest.mark.real_kdf
def test_passwords_are_stored_with_scrypt(app, make_unit, make_person):
    from workflow import directory
    emp = make_person("emp", make_unit("HQ", "hq"), grade="manager-1", password=None)
    directory.set_password(emp, "a-new-password")
    db.session.commit()
    assert PASSWORD_METHOD == "scrypt:32768:8:1" and emp.password_hash.startswith(PASSWORD_METHOD + "$")
    assert not emp.password_needs_rehash
    assert emp.check_password("a-new-password") and not emp.check_password(PASSWORD)


def test_an_old_hash_is_upgraded_at_login_and_the_sessions_stay(staff, client):
    method = "pbkdf2:sha256:1"
    old = generate_password_hash(PASSWORD, "pbkdf2:sha256:600")
    for who in ("emp", "emp2"):
        staff[who].password_hash = old
    db.session.commit()
    generations = {who: staff[who].session_generation for who in ("emp", "emp2")}
    assert form_login(client, "emp", "wrong").status_code == 200
    assert err(token_login(client, "emp2", "wrong"), 401)
    for who in ("emp", "emp2"):
        db.session.refresh(staff[who])
        assert staff[who].password_hash == old                  # a failure changes nothing
    assert form_login(client, "emp").status_code == 302
    assert ok(token_login(client, "emp2"))["token"]
    for who in ("emp", "emp2"):
        db.session.refresh(staff[who])
        assert staff[who].password_hash.startswith(method + "$") and staff[who].check_password(PASSWORD)
        assert staff[who].session_generation == generations[who]


# --- login throttling ----------------------------------------------------------------------------------

def test_failed_logins_lock_the_username_with_429_and_retry_after(staff, client, app):
    limit = app.config["LOGIN_FAILURES_PER_USER"]
    # Failures that a successful login clears do not add up.
    for _ in range(limit - 1):
        assert err(token_login(client, "emp", "wrong"), 401)["code"] == "unauthorized"
    assert ok(token_login(client, "emp"))["token"]
    for _ in range(limit - 1):
        assert err(token_login(client, "emp", "wrong"), 401)["code"] == "unauthorized"
    locked = token_login(client, "emp", "wrong")
    assert err(locked, 429)["code"] == "too_many_requests"
    wait = int(locked.headers["Retry-After"])
    assert 0 < wait <= app.config["LOGIN_WINDOW_SECONDS"]
    # Locked: the right password is not even tried, and knocking does not extend the lock.
    resp = token_login(client, "emp")
    assert err(resp, 429) and int(resp.headers["Retry-After"]) <= wait
    assert db.session.scalar(select(func.count()).select_from(LoginAttempt)) == limit
    # The login page says so.
    client.get("/lang/en")
    resp = client.post("/login", data={"username": "emp", "password": PASSWORD})
    assert resp.status_code == 429 and resp.headers["Retry-After"]
    assert "Too many failed logins: logging in is locked for" in resp.get_data(as_text=True)
    # Another account from the same address is not locked; an unknown name is locked the same way.
    assert ok(token_login(client, "emp2"))["token"]
    for _ in range(limit):
        last = token_login(client, "nobody", "wrong")
    assert err(last, 429)
    # Once the failures have left the window, the username may log in again.
    db.session.execute(update(LoginAttempt).values(
        at=LoginAttempt.at - dt.timedelta(seconds=app.config["LOGIN_WINDOW_SECONDS"])))
    db.session.commit()
    assert ok(token_login(client, "emp"))["token"]


def test_the_count_is_shared_by_workers_and_nodes_and_an_address_is_counted_too(staff, app, client, siblings):
    other = siblings().test_client()                  # another worker or node on the same database
    for n in range(app.config["LOGIN_FAILURES_PER_USER"]):
        resp = token_login(client if n % 2 else other, "emp", "wrong")
    assert err(resp, 429) and err(token_login(other, "emp"), 429) and err(token_login(client, "emp"), 429)
    assert form_login(other, "emp").status_code == 429
    # An address that sprays passwords over many usernames is locked, for every username.
    db.session.execute(delete(LoginAttempt))
    db.session.commit()
    app.config["LOGIN_FAILURES_PER_ADDRESS"] = 3
    for name in ("emp", "emp2", "weak"):
        token_login(client, name, "wrong")
    assert err(token_login(client, "far"), 429)                    # a good password, from that address
    assert ok(token_login(client, "far", environ_base={"REMOTE_ADDR": "10.9.8.7"}))["token"]
    # Behind a trusted proxy the client's address is the forwarded one, and only then.
    proxied = siblings(TRUSTED_PROXIES=1, LOGIN_FAILURES_PER_ADDRESS=3).test_client()
    assert ok(token_login(proxied, "far", headers={"X-Forwarded-For": "10.1.1.1"}))["token"]
    assert err(token_login(proxied, "far"), 429)                    # 127.0.0.1, the sprayer
    assert err(token_login(client, "far", headers={"X-Forwarded-For": "10.1.1.2"}), 429)   # not trusted


def test_address_keys():
    assert throttle.address_key("10.0.0.1") == "10.0.0.1"
    assert throttle.address_key("2001:db8:1:2:aaaa::1") == throttle.address_key("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert throttle.address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert throttle.address_key(None) == "unknown"


def test_only_local_targets_after_login(staff, client):
    for target, expected in (("/inbox", "/inbox"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
                             ("https://evil.example/", "/")):
        client.post("/logout")
        resp = client.post(f"/login?next={target}", data={"username": "emp", "password": PASSWORD})
        assert resp.status_code == 302 and resp.location == expected, target


# --- uploads ------------------------------------------------------------------------------------------

def test_a_request_over_the_size_limit_is_refused_with_413(staff, app, client, api):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    before = counts()
    client.get("/lang/en")
    resp = client.post("/login", data={"username": "emp", "password": "x" * 8000})
    assert resp.status_code == 413 and "Too large" in resp.get_data(as_text=True)
    assert "0.00390625 MB" in resp.get_data(as_text=True)
    resp = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior", "statement": "x" * 8000})
    assert err(resp, 413)["code"] == "too_large"
    assert counts() == before


def xlsx_bytes(extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def upload(name: str, data: bytes) -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=name)


def test_uploads_are_checked_by_name_and_content():
    assert checked_upload(upload("people.csv", "username,name\nli,李\n".encode("utf-8-sig"))) == \
        ("csv", "username,name\nli,李\n".encode("utf-8-sig"))
    assert checked_upload(upload("People.XLSX", xlsx_bytes()))[0] == "xlsx"
    refused = {
        "no file": (None, "choose a CSV or XLSX file"),
        "another kind": (upload("people.exe", b"MZ"), "only .csv and .xlsx"),
        "old excel": (upload("people.xls", b"\xd0\xcf\x11\xe0"), "save them as XLSX"),
        "empty": (upload("people.csv", b""), "is empty"),
        "renamed xlsx": (upload("people.csv", xlsx_bytes()), "not CSV text"),
        "binary csv": (upload("people.csv", b"a,b\x00c"), "not CSV text"),
        "not utf-8": (upload("people.csv", "名字\n".encode("gbk")), "not UTF-8"),
        "renamed csv": (upload("people.xlsx", b"a,b\n"), "not an XLSX workbook"),
        "other zip": (upload("people.xlsx", _zip({"a.txt": b"x"})), "not an XLSX workbook"),
        "damaged": (upload("people.xlsx", xlsx_bytes()[:40]), "damaged"),
        "macros": (upload("people.xlsx", xlsx_bytes({"xl/vbaProject.bin": b"x"})), "macros"),
        "zip bomb": (upload("people.xlsx", xlsx_bytes({"xl/worksheets/sheet1.xml": b"0" * 5_000_000})),
                     "would expand"),
    }
    for case, (storage, message) in refused.items():
        with pytest.raises(Invalid, match=message) as exc:
            checked_upload(storage)
        assert exc.value.status == 400 and exc.value.details == {"field": "file"}, case


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


# --- no SQL built from strings ------------------------------------------------------------------------

SQL_CALLS = {"text", "execute", "exec_driver_sql", "executemany", "executescript", "literal_column"}
SQL_STATEMENT = re.compile(r"\bSELECT\b.*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\b.*\bSET\b|\bDELETE\s+FROM\b|"
                           r"\b(CREATE|DROP|ALTER)\s+(UNIQUE\s+)?"
                           r"(TABLE|INDEX|DATABASE|VIEW|TRIGGER|SCHEMA)\b|"
                           r"\bTRUNCATE\b|\bPRAGMA\b|\bWHERE\b.*=", re.S)
# The application and its migrations. bench/ and tests/ are tools run by developers on their own data (they
# write identifiers of the code's own tables into DDL and COPY); nothing there runs on a request's input.
SCANNED = ("web", "workflow", "migrations", "wsgi.py")


def _built(node: ast.AST) -> str | None:
    """The literal text of a string built at run time (f-string, %, .format or +), else None."""
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else " ? " for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        parts = [n for n in (node.left, node.right)]
        literal = [p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)]
        nested = [_built(p) for p in parts if not isinstance(p, ast.Constant)]
        if literal or any(nested):
            if all(isinstance(p, ast.Constant) for p in parts):
                return None                 # two literals joined: still a constant
            return " ? ".join(literal + [n for n in nested if n])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
        return node.func.value.value
    return None


def sql_from_strings(source: str, filename: str = "<code>") -> list[str]:
    """Where the code builds SQL out of strings: a built string handed to text()/execute() and friends, or
    a built string that reads as an SQL statement anywhere."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in SQL_CALLS and _built(node.args[0]) is not None:
                found.append(f"{filename}:{node.lineno}: {name}() of a string built at run time")
                continue
        text = _built(node) if isinstance(node, (ast.JoinedStr, ast.BinOp, ast.Call)) else None
        if text and SQL_STATEMENT.search(text):
            found.append(f"{filename}:{node.lineno}: SQL built from strings: {text[:60]!r}")
    return found


@pytest.mark.parametrize("code", [
    'db.session.execute(text(f"SELECT * FROM people WHERE username = \'{name}\'"))',
    'conn.exec_driver_sql("DELETE FROM events WHERE id = %s" % event_id)',
    'q = "UPDATE cases SET state = \'{}\' WHERE id = {}".format(state, cid)',
    'sql = "SELECT id FROM people WHERE unit = " + code',
    'session.execute(text("SELECT 1 " + where))',
    'select(Person).where(literal_column(f"level = \'{level}\'"))',
])
def test_the_scan_finds_sql_built_from_strings(code):
    assert sql_from_strings(code)


@pytest.mark.parametrize("code", [
    'db.session.execute(text("UPDATE events SET comment = :c WHERE seq = :s"), {"c": c, "s": s})',
    'q.where(Person.username.ilike(f"%{term}%"))',
    'raise Invalid(f"no unit {code!r} where the policy says so")',
    'message = "Select the people " + "who apply"',
    'flash(_("Update the case, then set its version %(v)s", v=version))',
])
def test_the_scan_leaves_bound_parameters_and_prose_alone(code):
    assert sql_from_strings(code) == []


def test_no_sql_is_built_from_strings():
    found = []
    for entry in SCANNED:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(path.rglob("*.py")) if path.exists() else []
        for file in files:
            found += sql_from_strings(file.read_text(encoding="utf-8"), str(file.relative_to(ROOT)))
    assert found == []


def test_the_api_keeps_what_a_refusal_tells_the_client_to_do_next(staff, client):
    """The API's JSON errors keep the headers of the refusal: which methods a route takes (405)."""
    resp = client.delete("/api/v1/cases")
    assert err(resp, 405)["code"] == "method_not_allowed"
    assert {"GET", "POST"} <= {m.strip() for m in resp.headers["Allow"].split(",")}
