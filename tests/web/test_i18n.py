"""Every page in zh-CN shows no untranslated message, and the Chinese catalog is complete and compiled."""
from __future__ import annotations

import datetime as dt
import functools
import io
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.conftest import TODAY
from workflow import clock

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "web" / "translations" / "zh_Hans_CN" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%")


def _po():
    with open(CATALOG / "messages.po", "rb") as f:
        return read_po(f)


def _ids(message) -> list[str]:
    return list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]


def _strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def english_fragments() -> dict[str, str]:
    """Pieces of English text that can only come from an untranslated message: the literal parts of every
    msgid whose Chinese differs from it, at least three letters long (fragment -> msgid)."""
    with open(CATALOG / "messages.mo", "rb") as f:
        catalog = read_mo(f)
    out = {}
    for m in catalog:
        if not m.id or _ids(m) == _strings(m):
            continue
        for msgid in _ids(m):
            for part in PLACEHOLDER.split(msgid):
                part = part.strip(" .,:;()·—–-“”")
                if re.search(r"[A-Za-z]{3,}", part):
                    out[part] = msgid
    return out


class VisibleText(HTMLParser):
    """The text a user reads (text nodes and the labels in attributes), less what is marked
    translate="no" (names, codes, user input) and scripts and styles."""
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
            "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []      # per open element: does it hide its content?
        self.parts: list[str] = []

    def hidden(self) -> bool:
        return any(self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        hides = a.get("translate") == "no" or tag in ("script", "style")
        if not self.hidden() and not hides:
            for name in ("placeholder", "title", "aria-label", "alt"):
                if a.get(name):
                    self.parts.append(a[name])
            if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
                self.parts.append(a["value"])
        if tag not in self.VOID:
            self.stack.append(hides)

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not self.hidden() and data.strip():
            self.parts.append(data.strip())


@functools.cache   # thousands of fragments, more than re's own cache keeps: compiled once each
def word(fragment: str) -> re.Pattern:
    """The fragment as a whole word (so "Panel" does not match the name "Panel1")."""
    return re.compile(r"(?<![\w-])" + re.escape(fragment) + r"(?![\w-])")


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return "\n".join(parser.parts)


# --- the catalog -----------------------------------------------------------------------------------------

def test_every_message_has_a_chinese_translation():
    untranslated = [m.id for m in _po() if m.id and (m.fuzzy or not all(s.strip() for s in _strings(m)))]
    assert untranslated == []


def test_compiled_catalog_matches_the_po_file():
    with open(CATALOG / "messages.mo", "rb") as f:
        compiled = {tuple(_ids(m)): tuple(_strings(m)) for m in read_mo(f) if m.id}
    source = {tuple(_ids(m)): tuple(_strings(m)) for m in _po() if m.id and not m.fuzzy}
    assert compiled == source, "run: pybabel compile -d web/translations"


def test_catalog_holds_every_message_of_the_code(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "."], cwd=ROOT, check=True)
    with open(pot, "rb") as f:
        wanted = {m.id for m in read_po(f) if m.id}
    missing = wanted - {m.id for m in _po() if m.id}
    assert not missing, ("messages missing from the zh_Hans_CN catalog (pybabel update, translate, compile): "
                         f"{sorted(map(str, missing))}")


# --- every page in zh-CN --------------------------------------------------------------------------------

def collect_pages(client_for, anonymous) -> dict[str, str]:
    """(label -> HTML) of every page and state the users can reach, driven through the forms."""
    pages: dict[str, str] = {}

    def grab(name, resp, status=200):
        assert resp.status_code == status, (name, resp.status_code)
        pages[name] = resp.get_data(as_text=True)

    emp, appr, hr, sup, admin = (client_for(u) for u in ("emp", "appr_b1", "hr_b1", "sup_t1", "admin"))
    grab("login", anonymous.get("/login"))
    grab("login error", anonymous.post("/login", data={"username": "emp", "password": "nope"}))
    grab("login required", anonymous.get("/inbox", follow_redirects=True))
    grab("home empty", emp.get("/"))
    grab("apply", emp.get("/cases/new"))
    grab("apply preview", emp.post("/cases/new", data={"employee": "emp", "target_grade": "senior-1",
                                                        "preview": "1"}))
    grab("apply skip refused", emp.post("/cases/new", data={"employee": "emp", "target_grade": "principal-1",
                                                             "submit": "1"}), 422)
    grab("apply not eligible", client_for("weak").post(
        "/cases/new", data={"employee": "weak", "target_grade": "manager-1", "submit": "1"}), 422)
    grab("apply for others", hr.get("/cases/new?employee=emp2"))
    resp = emp.post("/cases/new", data={"employee": "emp", "target_grade": "senior-1", "statement": "请审批",
                                        "submit": "1"}, follow_redirects=True)
    grab("case filed", resp)
    cid = int(re.search(r'href="/cases/(\d+)"', resp.get_data(as_text=True)).group(1))

    def act(client, action, case=None, follow=False, **fields):
        """Post an action's form with the version the case page shows."""
        case = case or cid
        html = client.get(f"/cases/{case}").get_data(as_text=True)
        data = {f"{action}-version": re.search(r'data-version="(\d+)"', html).group(1)}
        data.update({f"{action}-{k}": v for k, v in fields.items()})
        return client.post(f"/cases/{case}/{action}", data=data, follow_redirects=follow)

    grab("home with a case", emp.get("/"))
    grab("inbox", appr.get("/inbox"))
    grab("bulk refused", appr.post("/inbox/decide", data={"action": "qualify", "case": [str(cid)],
                                                           f"version-{cid}": "0"}))
    grab("bulk nothing ticked", appr.post("/inbox/decide", data={"action": "qualify"}), 400)
    grab("notifications", appr.get("/notifications"))
    grab("notification settings", appr.get("/notifications/settings"))
    grab("urged", emp.post(f"/cases/{cid}/urge", data={"comment": "请尽快"}, follow_redirects=True))
    grab("urged again", emp.post(f"/cases/{cid}/urge", data={}, follow_redirects=True))
    grab("notifications, urged", appr.get("/notifications"))
    grab("review", appr.get(f"/cases/{cid}"))
    grab("return without reason", act(appr, "return"), 400)
    grab("stale", appr.post(f"/cases/{cid}/qualify", data={"qualify-version": "0"}), 409)
    grab("forbidden", act(emp, "qualify"), 403)
    grab("stale form", appr.post(f"/cases/{cid}/return", data={"return-version": "0", "return-comment": "x"}),
         409)
    grab("returned", act(appr, "return", follow=True, comment="请补充"))
    grab("returned, applicant", emp.get(f"/cases/{cid}"))
    act(emp, "resubmit", statement="已补充")
    act(appr, "qualify")
    grab("panel forming", hr.get(f"/cases/{cid}"))
    grab("print application", hr.get(f"/cases/{cid}/forms/application"))

    def attach(data, name, **kw):
        return emp.post(f"/cases/{cid}/attachments", data={"file": (io.BytesIO(data), name)},
                        content_type="multipart/form-data", **kw)
    grab("attach refused", attach(b"MZ", "x.pdf"), 400)
    grab("attached", attach(b"%PDF-1.4 x", "zhengshu.pdf", follow_redirects=True))
    grab("panel refused", act(hr, "assign_panel", members=["panel1"]), 422)
    act(hr, "assign_panel", members=["panel1", "panel2", "panel3"])
    grab("panel member", client_for("panel1").get(f"/cases/{cid}"))
    for member in ("panel1", "panel2"):
        act(client_for(member), "score", score="85")
    grab("paper score refused", act(hr, "score_for", member="panel3", score="101"), 400)
    grab("paper score", act(hr, "score_for", follow=True, member="panel3", score="85"))
    grab("supervisor", sup.get(f"/cases/{cid}"))
    grab("bad score", act(sup, "supervisor_score", score="abc"), 400)
    act(sup, "supervisor_score", score="90")
    grab("hr approval", hr.get(f"/cases/{cid}"))
    grab("print panel form", hr.get(f"/cases/{cid}/forms/panel_evaluation"))
    grab("applicant before decision", emp.get(f"/cases/{cid}"))
    grab("approved", act(hr, "approve", follow=True))
    grab("effective, applicant", emp.get(f"/cases/{cid}"))

    other = client_for("emp2")
    resp = other.post("/cases/new", data={"employee": "emp2", "target_grade": "manager-2", "submit": "1"},
                      follow_redirects=True)
    cid2 = int(re.search(r'href="/cases/(\d+)"', resp.get_data(as_text=True)).group(1))
    act(client_for("appr_t1"), "declare_conflict", case=cid2, comment="亲属")
    grab("rerouted", client_for("appr_b1").get(f"/cases/{cid2}"))
    grab("case list", hr.get("/cases/"))
    grab("case list filtered", hr.get("/cases/?state=effective&level=senior&unit=B1"))
    grab("case list empty", hr.get("/cases/?state=rejected"))
    grab("pipeline", hr.get("/hr/pipeline"))
    clock.fix_today(TODAY + dt.timedelta(days=40))
    grab("pipeline overdue", hr.get("/hr/pipeline?unit=B1"))
    grab("inbox overdue", client_for("appr_b1").get("/inbox"))
    grab("inbox empty", emp.get("/inbox"))
    grab("org", admin.get("/admin/"))
    grab("people", admin.get("/admin/people?q=a"))
    grab("person", admin.get("/admin/people/emp"))
    grab("password refused", admin.post("/admin/people/emp/password", data={"password": "short"}), 400)
    roles = {"keep": ["panel@R1"], "add_role": "panel", "add_unit": "B2"}
    grab("roles saved", admin.post("/admin/people/panel5/roles", data=roles, follow_redirects=True))
    grab("policy", admin.get("/admin/policy"))
    grab("processes", hr.get("/machines/"))
    grab("process", hr.get("/machines/promotion?state=hr_approval"))
    grab("403", hr.get("/admin/"), 403)
    grab("404", hr.get("/cases/999"), 404)
    grab("404 url", hr.get("/nowhere"), 404)
    grab("rounds empty", hr.get("/rounds/"))
    grab("open a round", hr.get("/rounds/new"))
    window = {"unit": "B1", "period": "2026", "title": "2026年度晋级", "opens_on": clock.today().isoformat(),
              "closes_on": (clock.today() + dt.timedelta(days=20)).isoformat()}
    grab("open a round refused", hr.post("/rounds/new", data={**window, "levels": ["principal"]}), 422)
    resp = hr.post("/rounds/new", data={**window, "levels": ["manager", "senior"]}, follow_redirects=True)
    grab("round open", resp)
    rid = int(re.search(r'href="/rounds/(\d+)" id="reload"', resp.get_data(as_text=True)).group(1))
    grab("rounds", hr.get("/rounds/"))
    grab("apply in a round", hr.get(f"/cases/new?employee=weak&round={rid}"))
    for action, name in (("close", "round closed"), ("decide", "round decided")):
        seen = re.search(r'data-version="(\d+)"', hr.get(f"/rounds/{rid}").get_data(as_text=True)).group(1)
        grab(name, hr.post(f"/rounds/{rid}/{action}", data={"version": seen}, follow_redirects=True))
    grab("logged out", emp.post("/logout", follow_redirects=True))
    return pages


@pytest.fixture
def zh_pages(bank, page, app):
    anonymous = app.test_client()
    anonymous.get("/lang/zh_CN")
    return collect_pages(lambda u: page(u, "zh_CN").client, anonymous)


def test_every_page_is_chinese_in_zh_cn(zh_pages):
    fragments = english_fragments()
    patterns = {frag: word(frag) for frag in fragments}
    problems = []
    for name, html in zh_pages.items():
        assert '<html lang="zh-CN">' in html, name
        shown = visible_text(html)
        assert re.search(r"[\u4e00-\u9fff]", shown), name
        for frag, pattern in patterns.items():
            if pattern.search(shown):
                problems.append(f"{name}: {fragments[frag]!r}")
    assert problems == []
    assert len(zh_pages) >= 40


def test_the_check_catches_english(zh_pages, page):
    """The check itself works: the same page in English is full of catalog messages."""
    fragments = english_fragments()
    shown = visible_text(page("emp", "en").get("/").get_data(as_text=True))
    assert sum(1 for f in fragments if word(f).search(shown)) > 5


def test_the_engines_refusals_are_in_chinese_on_zh_cn_pages(zh_pages):
    """The engine's own reasons (workflow/i18n.py) reach a Chinese page in Chinese, with the action's word."""
    forbidden = visible_text(zh_pages["forbidden"])
    assert "只有本环节当前的办理人可以执行" in forbidden and "qualify" not in forbidden
    assert "评审小组至少需要 3 名成员" in visible_text(zh_pages["panel refused"])
    bulk = visible_text(zh_pages["bulk refused"])
    assert "案件自版本 0 以来已有变化" in bulk and "reload" not in bulk


def test_the_engines_refusals_stay_english_for_the_api_and_english_pages(bank, page, api, client):
    cid = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior-1"}).get_json()["id"]
    message = api("emp").post(f"/cases/{cid}/qualify", {}).get_json()["error"]["message"]
    assert message == "only the current assignees of this step may qualify (now: appr_b1)"
    asked = client.post(f"/api/v1/cases/{cid}/qualify", json={}, headers={**api("emp").headers,
                                                                          "Accept-Language": "zh-CN"})
    assert asked.get_json()["error"]["message"].startswith("只有本环节当前的办理人可以执行")
    assert asked.get_json()["error"]["code"] == "forbidden"
    html = page("emp", "en").act(cid, "qualify").get_data(as_text=True)
    assert "only the current assignees of this step may qualify" in html


# --- a refused import's reasons --------------------------------------------------------------------------

BAD_PEOPLE = ("username,name,unit_code,grade,grade_since\n"
              "newbie,新人,T1,boss-1,2026-01-05\n"
              "x y,某人,NOPE,,\n")


def test_a_refused_imports_reasons_are_in_the_readers_language(bank, page, api, client):
    """A refused import job keeps its problems as messages: its page in zh-CN and the API asked for zh-CN
    give the reasons in Chinese, with nothing English left; the API asked for no language, English."""
    from workflow import jobs
    from workflow.models import db

    admin = page("admin", "zh_CN")
    # a file named in Chinese: the check below would take an English file name for English text
    resp = admin.post("/jobs/import", data={"people": (io.BytesIO(BAD_PEOPLE.encode()), "人员.csv")},
                      content_type="multipart/form-data")
    assert resp.status_code == 302
    job_id = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    jobs.run_queued()
    db.session.expire_all()

    html = admin.get(f"/jobs/{job_id}").get_data(as_text=True)
    shown = visible_text(html)
    assert 'data-status="failed"' in html and 'id="problem-rows"' in html
    assert "导入被拒绝，未做任何更改：人员.csv，第 2 行，“grade”列：未知的职级层级“boss”" in shown
    assert "未知的职级层级“boss”（可用层级：" in shown
    assert "“x y”不得包含空格" in shown
    assert "未知的机构“NOPE”（既不在机构文件中，也不在数据库中）" in shown
    patterns = {frag: word(frag) for frag in english_fragments()}
    assert [frag for frag, pattern in patterns.items() if pattern.search(shown)] == []
    english = page("admin").get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "unknown level &#39;boss&#39;" in english and "must not contain spaces" in english

    def job(headers):
        got = client.get(f"/api/v1/jobs/{job_id}", headers={**api("admin").headers, **headers})
        assert got.status_code == 200
        return got.get_json()
    zh = job({"Accept-Language": "zh-CN"})
    rows = zh["result"]["details"]["rows"]
    assert [(r["line"], r["column"]) for r in rows] == [(2, "grade"), (3, "username"), (3, "unit_code")]
    assert rows[0]["message"].startswith("未知的职级层级“boss”") and set(rows[0]) == {"file", "line", "column",
                                                                                    "message"}
    assert zh["result"]["details"]["problems"][1] == "人员.csv，第 3 行，“username”列：“x y”不得包含空格"
    assert zh["error"].startswith("导入被拒绝，未做任何更改：人员.csv，第 2 行")
    en = job({})
    assert en["result"]["details"]["rows"][1]["message"] == "'x y' must not contain spaces"
    assert en["result"]["details"]["problems"][1] == \
        "人员.csv, line 3, column 'username': 'x y' must not contain spaces"
    assert en["error"].startswith("the import was refused, nothing was changed: 人员.csv, line 2, "
                                  "column 'grade': unknown level 'boss'")
    assert en["error"].endswith("(2 more problems)")


def test_a_refused_scores_file_answers_in_the_requests_language(bank, page, api, client):
    bad = "用户名,考核期间,考核类别,得分\nemp,2025-Q4,performance,188\nnobody,2025,skill_test,pass\n"

    def post(headers):
        return client.post("/api/v1/imports/scores", headers={**api("admin").headers, **headers},
                           content_type="multipart/form-data",
                           data={"scores": (io.BytesIO(bad.encode()), "scores.csv")})
    zh = post({"Accept-Language": "zh-CN"})
    assert zh.status_code == 422
    error = zh.get_json()["error"]
    assert error["code"] == "import_refused"
    assert [(r["line"], r["column"], r["message"]) for r in error["details"]["rows"]] == [
        (2, "得分", "188 超出 performance 的范围（0 至 100）"), (3, "用户名", "未知的用户名“nobody”")]
    assert error["details"]["problems"][1] == "scores.csv，第 3 行，“用户名”列：未知的用户名“nobody”"
    assert error["message"] == ("导入被拒绝，未做任何更改：scores.csv，第 2 行，“得分”列：188 超出 performance 的范围"
                                "（0 至 100）（另有 1 个问题）")
    en = post({}).get_json()["error"]
    assert en["code"] == "import_refused" and set(en["details"]) == {"problems", "rows"}
    assert en["details"]["rows"][1]["message"] == "unknown username 'nobody'"
    assert en["message"] == ("the import was refused, nothing was changed: scores.csv, line 2, column '得分': "
                             "188 is out of range for performance (0 to 100) (1 more problems)")
    # the page shows the reasons in Chinese, and escapes what the file held
    resp = page("admin", "zh_CN").post("/jobs/import/scores", content_type="multipart/form-data", data={
        "scores": (io.BytesIO(b"username,period,kind,value\n<b>x</b>,2025,performance,1\n"), "s.csv")})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "<b>x</b>" not in html
    assert '<td class="small">未知的用户名“&lt;b&gt;x&lt;/b&gt;”</td>' in html
