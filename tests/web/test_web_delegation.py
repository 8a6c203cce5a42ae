"""Delegations, 转办 and 抄送 from the pages and from /api/v1."""
import datetime as dt

import pytest

from tests.conftest import TODAY
from workflow import engine
from workflow.models import db, Delegation, Person


def p(username):
    return db.session.query(Person).filter_by(username=username).one()


@pytest.fixture
def world(bank, make_person):
    """emp's promotion waiting on approver@B1; deputy, a colleague at B1 with no role."""
    make_person("deputy", bank["units"]["B1"])
    case = engine.create_promotion(p("emp"), p("emp"), "senior", "申请晋级")
    db.session.commit()
    return case


def day(n=0):
    return (TODAY + dt.timedelta(days=n)).isoformat()


def test_delegate_from_the_page_and_act_on_behalf(world, page):
    appr = page("appr_b1")
    html = appr.get("/delegations").get_data(as_text=True)
    assert 'id="delegate-form"' in html
    resp = appr.post("/delegations", {"delegate": "appr_b1", "starts_on": day(), "ends_on": day(3)})
    assert resp.status_code == 422 and "oneself" in resp.get_data(as_text=True)
    assert appr.post("/delegations", {"delegate": "", "starts_on": day()}).status_code == 400
    resp = appr.post("/delegations", {"delegate": "deputy", "starts_on": day(), "ends_on": day(3),
                                      "comment": "年假"})
    assert resp.status_code == 302
    d = db.session.query(Delegation).one()
    assert (d.principal.username, d.delegate.username) == ("appr_b1", "deputy")

    deputy = page("deputy")
    assert f'data-delegation="{d.id}"' in deputy.get("/delegations").get_data(as_text=True)
    inbox = deputy.get("/inbox").get_data(as_text=True)
    assert f'href="/cases/{world.id}"' in inbox and "on behalf of Appr_B1" in inbox
    html = deputy.get(f"/cases/{world.id}").get_data(as_text=True)
    assert 'id="acting-for"' in html and 'id="form-qualify"' in html
    assert deputy.act(world.id, "qualify", {"comment": "代为审核"}).status_code == 302
    db.session.expire_all()
    ev = world.events[-1]
    assert (ev.actor, ev.role, ev.unit, ev.data["on_behalf_of"]) == ("deputy", "approver", "B1", "appr_b1")
    assert "on behalf of appr_b1" in deputy.get(f"/cases/{world.id}").get_data(as_text=True)

    # revoking: the principal's page offers it; afterwards the delegate no longer sees new steps
    assert appr.post(f"/delegations/{d.id}/revoke", {"comment": "返岗"}).status_code == 302
    db.session.expire_all()
    assert d.revoked_by.username == "appr_b1"
    assert page("emp2").post(f"/delegations/{d.id}/revoke").status_code == 404
    assert "Only approvers and HR" in page("emp").get("/delegations").get_data(as_text=True)


def test_copy_and_hand_over_from_the_case_page(world, page):
    appr = page("appr_b1")
    assert page("panel5").get(f"/cases/{world.id}").status_code == 404
    assert appr.act(world.id, "copy", {"to": "panel5", "comment": "供参考"}).status_code == 302
    reader = page("panel5")
    assert f'href="/cases/{world.id}"' in reader.get("/copies").get_data(as_text=True)
    html = reader.get(f"/cases/{world.id}").get_data(as_text=True)
    assert 'id="copied-to"' in html and 'id="actions"' not in html
    assert reader.act(world.id, "qualify", version=str(world.version)).status_code == 403
    # 转办 to someone outside the matrix is refused with the reason; within it, the task moves
    resp = appr.act(world.id, "hand_over", {"to": "hr_b1", "comment": "出差"})
    assert resp.status_code == 422 and "does not hold approver" in resp.get_data(as_text=True)
    assert appr.act(world.id, "hand_over", {"to": "appr_r1", "comment": "出差"}).status_code == 302
    db.session.expire_all()
    assert [a.person.username for a in world.assignments] == ["appr_r1"]
    assert "handed over to appr_r1" in page("appr_r1").get(f"/cases/{world.id}").get_data(as_text=True)


def test_pages_show_no_english_in_zh_cn(world, page):
    from tests.web.test_i18n import english_fragments, visible_text, word
    appr, deputy = page("appr_b1", "zh_CN"), page("deputy", "zh_CN")
    appr.post("/delegations", {"delegate": "deputy", "starts_on": day(), "ends_on": day(3)})
    appr.act(world.id, "copy", {"to": "panel5"})
    pages = {"delegations": appr.get("/delegations"), "delegations, delegate": deputy.get("/delegations"),
             "delegation refused": appr.post("/delegations", {"delegate": "appr_b1", "starts_on": day(),
                                                              "ends_on": day(1)}),
             "inbox on behalf": deputy.get("/inbox"), "case acting for": deputy.get(f"/cases/{world.id}"),
             "copies": page("panel5", "zh_CN").get("/copies"),
             "copies empty": page("emp", "zh_CN").get("/copies"),
             "delegations, employee": page("emp", "zh_CN").get("/delegations")}
    deputy.act(world.id, "qualify")
    pages["case on behalf"] = deputy.get(f"/cases/{world.id}")
    patterns = {frag: word(frag) for frag in english_fragments()}
    problems = []
    for name, resp in pages.items():
        assert resp.status_code in (200, 422), name
        html = resp.get_data(as_text=True)   # the pages' own content (the menu bar is checked elsewhere)
        shown = visible_text(html[html.index("<main"):html.index("</main>")])
        problems += [f"{name}: {frag!r}" for frag, pattern in patterns.items() if pattern.search(shown)]
    assert problems == [], problems


def test_api_delegations_copies_and_acting_on_behalf(world, api):
    appr = api("appr_b1")
    resp = appr.post("/delegations", {"delegate": "deputy", "starts_on": "soon", "ends_on": day(2)})
    assert resp.status_code == 400 and resp.get_json()["error"]["details"]["field"] == "starts_on"
    nobody = appr.post("/delegations", {"delegate": "nobody", "starts_on": day(), "ends_on": day(2)})
    assert nobody.status_code == 422
    assert api("emp").post("/delegations", {"delegate": "emp2", "starts_on": day(),
                                            "ends_on": day(2)}).status_code == 403
    resp = appr.post("/delegations", {"delegate": "deputy", "starts_on": day(), "ends_on": day(2),
                                      "comment": "出差"})
    assert resp.status_code == 201, resp.get_json()
    d = resp.get_json()
    assert (d["principal"], d["delegate"], d["status"]) == ("appr_b1", "deputy", "active")
    assert d["ends_on"] == day(2)
    again = appr.post("/delegations", {"delegate": "deputy", "starts_on": day(1), "ends_on": day(5)})
    assert again.status_code == 422 and "already delegate" in again.get_json()["error"]["message"]
    assert [x["id"] for x in api("deputy").get("/delegations").get_json()["items"]] == [d["id"]]

    deputy = api("deputy")
    inbox = deputy.get("/inbox").get_json()["items"]
    assert [c["id"] for c in inbox] == [world.id]
    assert inbox[0]["acting_for"] == [{"principal": "appr_b1", "delegate": "deputy", "until": day(2)}]
    assert "qualify" in inbox[0]["actions"]
    case = deputy.post(f"/cases/{world.id}/qualify", {"version": world.version, "comment": "代审"}).get_json()
    last = case["events"][-1]
    assert (last["actor"], last["role"], last["data"]["on_behalf_of"]) == ("deputy", "approver", "appr_b1")

    # 抄送 and the copy recipient's refusals
    hr = api("hr_b1")
    case = hr.post(f"/cases/{world.id}/copy", {"to": "panel5"}).get_json()
    assert case["copied_to"] == ["panel5"]
    reader = api("panel5")
    assert [c["id"] for c in reader.get("/copies").get_json()["items"]] == [world.id]
    refused = reader.post(f"/cases/{world.id}/assign_panel", {"members": ["panel1", "panel2", "panel3"]})
    assert refused.status_code == 403 and "for information only" in refused.get_json()["error"]["message"]

    resp = appr.post(f"/delegations/{d['id']}/revoke", {"comment": "返岗"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "revoked"
    assert appr.post(f"/delegations/{d['id']}/revoke").status_code == 409
    assert api("emp2").post(f"/delegations/{d['id']}/revoke").status_code == 404
    assert appr.post("/delegations/99999/revoke").status_code == 404
