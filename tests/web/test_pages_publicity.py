"""公示 through the pages, as each person logged in through the form: the publicity list and its link in
the navigation, the case page's publicity card (window, objections, HR's answers), the object, uphold and
overturn forms with their refusals, who sees the objector, and tick ending the publicity."""
from __future__ import annotations

import re

import pytest
import yaml

from workflow import engine, policy as policy_mod
from workflow.models import db, Case, Person

WINDOW_END = "2026-03-09"


def text(resp) -> str:
    return resp.get_data(as_text=True)


def invalid(html: str, name: str) -> bool:
    tag = re.search(rf'<(?:input|select|textarea)[^>]*name="{re.escape(name)}"[^>]*>', html)
    return tag is not None and "is-invalid" in tag.group(0)


def person(username):
    return db.session.scalar(db.select(Person).filter_by(username=username))


def fresh(cid: int) -> Case:
    db.session.expire_all()
    return db.session.get(Case, cid)


def tick(app, today: str) -> str:
    result = app.test_cli_runner().invoke(args=["tick", "--today", today])
    assert result.exit_code == 0, result.output
    return result.stdout


def card(html: str) -> str:
    """The publicity card of a case page."""
    found = re.search(r'<div class="card gf-card mb-3" id="publicity">(.*?)\n</div>\n', html, re.S)
    assert found, "no publicity card"
    return found.group(1)


@pytest.fixture
def with_publicity(bank, tmp_path):
    doc = yaml.safe_load((policy_mod.POLICY_DIR / "bank_corporate.yaml").read_text(encoding="utf-8"))
    doc["publicity"] = {"working_days": 5}
    path = tmp_path / "bank_publicity.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    engine.activate_policy(policy_mod.load_file(str(path)), "x")
    db.session.commit()
    return bank


def to_hr() -> Case:
    """emp's application, walked through the engine to HR approval."""
    case = engine.create_promotion(person("emp"), person("emp"), "senior", "申请晋级")
    db.session.commit()

    def act(action, who, **data):
        engine.fire(case, action, person(who), data)
        db.session.commit()
    act("qualify", "appr_b1")
    act("assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
    for member, score in (("panel1", 80), ("panel2", 90), ("panel3", 70)):
        act("score", member, score=score)
    act("supervisor_score", "sup_t1", score=88)
    assert case.state == "hr_approval"
    return case


@pytest.fixture
def cid(with_publicity, page):
    """A promotion HR approved on its page: now in publicity."""
    case_id = to_hr().id
    resp = page("hr_b1").act(case_id, "approve", {"comment": "同意"})
    assert resp.status_code == 302, text(resp)
    case = fresh(case_id)
    assert (case.state, case.deadline.isoformat()) == ("publicity", WINDOW_END)
    return case_id


def object_(page, who, cid, statement="该员工2025年有客户投诉未处理", **kw):
    return page(who).act(cid, "object", {"statement": statement}, **kw)


# --- the list ----------------------------------------------------------------------------------------------

def test_the_navigation_links_the_list_for_everyone(bank, page):
    for who in ("emp", "far", "panel1", "hr_b1", "admin"):
        html = text(page(who).get("/"))
        assert 'id="nav-publicity"' in html and 'href="/publicity"' in html, who
    html = text(page("emp").get("/publicity"))
    assert 'id="no-publicity"' in html and re.search(r'class="nav-link active"\s+href="/publicity"', html)
    assert page("emp").get("/publicity", follow_redirects=False).status_code == 200


def test_the_list_shows_it_to_everyone_in_scope(cid, page):
    for who in ("emp2", "weak", "panel4", "emp", "hr_b1", "hr_r1"):
        html = text(page(who).get("/publicity"))
        row = re.search(rf'<tr data-case="{cid}">(.*?)</tr>', html, re.S)
        assert row, who
        row = row.group(1)
        assert f'href="/cases/{cid}"' in row and WINDOW_END in row, who
        assert "Account Manager, tier 3" in row and "Senior Account Manager, tier 1" in row, who
        assert "杭州一团队" in row and "杭州分行" in row, who      # the employee's unit, the approving one
    for who in ("far", "panel5"):
        html = text(page(who).get("/publicity"))
        assert f'data-case="{cid}"' not in html and 'id="no-publicity"' in html, who
        assert page(who).get(f"/cases/{cid}").status_code == 404, who


def test_the_list_marks_waiting_objections_and_ones_own(cid, page):
    object_(page, "emp2", cid)
    row = re.search(rf'<tr data-case="{cid}">(.*?)</tr>', text(page("emp2").get("/publicity")), re.S).group(1)
    assert "1 waiting for HR" in row and "You objected" in row
    row = re.search(rf'<tr data-case="{cid}">(.*?)</tr>', text(page("weak").get("/publicity")), re.S).group(1)
    assert "1 waiting for HR" in row and "You objected" not in row


# --- objecting ---------------------------------------------------------------------------------------------

def test_a_colleague_objects_once_on_the_case_page(cid, page):
    colleague = page("emp2")
    html = text(colleague.get(f"/cases/{cid}"))
    pub = card(html)
    assert WINDOW_END in pub and 'id="no-objections"' in pub and "杭州分行" in pub
    assert 'id="form-object"' in html and 'id="do-object"' in html
    assert 'id="form-uphold"' not in html and 'id="form-overturn"' not in html

    before = fresh(cid).version
    resp = object_(page, "emp2", cid, statement="  ")
    assert resp.status_code == 400 and invalid(text(resp), "object-statement")
    assert "Please write your objection." in text(resp)
    assert fresh(cid).version == before                    # nothing recorded

    resp = object_(page, "emp2", cid)
    assert resp.status_code == 302 and resp.location.endswith(f"/cases/{cid}")
    html = text(colleague.get(f"/cases/{cid}"))
    pub = card(html)
    assert "该员工2025年有客户投诉未处理" in pub and 'class="objector"' in pub and ">You<" in pub
    assert "Waiting for HR" in pub and 'id="form-object"' not in html

    again = object_(page, "emp2", cid, statement="再次异议")
    assert again.status_code == 403 and "already objected" in text(again)


def test_the_applicant_cannot_object(cid, page):
    html = text(page("emp").get(f"/cases/{cid}"))
    assert 'id="publicity"' in html and 'id="form-object"' not in html
    resp = object_(page, "emp", cid, version=str(fresh(cid).version))
    assert resp.status_code == 403 and "applicant cannot object" in text(resp)
    assert not any(ev.action == "object" for ev in fresh(cid).events)


def test_someone_out_of_scope_gets_404(cid, page):
    assert object_(page, "far", cid, version="1").status_code == 404
    assert page("far").get(f"/cases/{cid}").status_code == 404


def test_who_objected_is_shown_to_hr_and_the_objector_only(cid, page):
    object_(page, "emp2", cid)
    for who in ("emp2", "hr_b1", "hr_r1"):
        pub = card(text(page(who).get(f"/cases/{cid}")))
        assert 'class="objector"' in pub and "emp2" in pub, who
    for who in ("emp", "weak", "appr_b1"):
        html = text(page(who).get(f"/cases/{cid}"))
        pub = card(html)
        assert "该员工2025年有客户投诉未处理" in pub and "objector-hidden" in pub, who
        assert "emp2" not in html.lower(), who           # neither the card nor the record names them
        timeline = re.search(r'<ol class="timeline mb-0" id="timeline">(.*?)</ol>', html, re.S).group(1)
        assert 'data-action="object"' in timeline and "An objection" in timeline, who


# --- HR's answer and time ----------------------------------------------------------------------------------

def test_hr_upholds_and_tick_makes_it_effective(cid, page, app):
    hr = page("hr_b1")
    html = text(hr.get(f"/cases/{cid}"))
    assert 'id="form-uphold"' not in html and 'id="form-overturn"' in html     # nothing to answer yet
    object_(page, "emp2", cid)
    html = text(hr.get(f"/cases/{cid}"))
    assert 'id="form-uphold"' in html and 'id="form-overturn"' in html
    assert html.index('id="form-uphold"') < html.index('id="form-overturn"')

    tick(app, WINDOW_END)
    tick(app, "2026-03-10")                                # the window has passed; an objection waits
    assert fresh(cid).state == "publicity" and person("emp").grade == "manager-3"

    resp = hr.act(cid, "uphold", {"comment": " "})
    assert resp.status_code == 400 and invalid(text(resp), "uphold-comment")
    resp = hr.act(cid, "uphold", {"comment": "经核查，投诉已妥善处理"})
    assert resp.status_code == 302
    pub = card(text(page("emp2").get(f"/cases/{cid}")))
    answer = re.search(r'border-3 answer" data-action="uphold">(.*?)</div>\s*</div>', pub, re.S)
    assert answer and "经核查，投诉已妥善处理" in answer.group(1) and "Uphold" in answer.group(1)
    assert "Waiting for HR" not in pub

    assert "end_publicity" in tick(app, "2026-03-10")
    case = fresh(cid)
    assert case.state == "effective" and person("emp").grade == "senior-1"
    html = text(page("emp").get(f"/cases/{cid}"))
    pub = card(html)
    assert 'id="publicity-ended"' in pub and "经核查，投诉已妥善处理" in pub and "objector-hidden" in pub
    assert "Publicity ended" in html                       # the record names the system's move
    assert f'data-case="{cid}"' not in text(page("emp2").get("/publicity"))


def test_tick_without_objection(cid, page, app):
    tick(app, WINDOW_END)
    assert fresh(cid).state == "publicity"
    tick(app, "2026-03-10")
    assert fresh(cid).state == "effective" and person("emp").grade == "senior-1"
    pub = card(text(page("emp").get(f"/cases/{cid}")))
    assert 'id="no-objections"' in pub and 'id="publicity-ended"' in pub


def test_hr_overturns(cid, page, app):
    object_(page, "emp2", cid, statement="材料不实")
    hr = page("hr_b1")
    resp = hr.act(cid, "overturn", {"comment": ""})
    assert resp.status_code == 400 and invalid(text(resp), "overturn-comment")
    assert fresh(cid).state == "publicity"
    html = text(hr.get(f"/cases/{cid}"))
    assert re.search(r'class="btn btn-sm btn-danger" id="do-overturn"', html)
    assert hr.act(cid, "overturn", {"comment": "核实材料不实，撤销晋级"}).status_code == 302
    tick(app, "2026-03-10")
    case = fresh(cid)
    assert case.state == "rejected" and person("emp").grade == "manager-3"
    pub = card(text(page("emp").get(f"/cases/{cid}")))
    assert "材料不实" in pub and "核实材料不实，撤销晋级" in pub and "Overturn" in pub
    assert page("weak").get(f"/cases/{cid}").status_code == 404
    assert f'data-case="{cid}"' not in text(page("hr_b1").get("/publicity"))


def test_a_stale_page_gets_409(cid, page):
    version = str(fresh(cid).version)
    object_(page, "emp2", cid, version=version)
    resp = object_(page, "weak", cid, statement="业绩数据有误", version=version)
    assert resp.status_code == 409 and 'id="case-alert"' in text(resp)


def test_a_case_without_publicity_has_no_card(bank, page):
    case = to_hr()
    assert page("hr_b1").act(case.id, "approve", {"comment": "同意"}).status_code == 302
    assert fresh(case.id).state == "effective"
    assert 'id="publicity"' not in text(page("emp").get(f"/cases/{case.id}"))
