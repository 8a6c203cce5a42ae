"""Sales leads through the pages and /api/v1: the list with its filters and days left or late, opening a
lead, the lead page's timeline and actions, the sales manager's bulk reassignment, the spreadsheet, and
tick flagging overdue leads."""
import datetime as dt
import io
import re

from openpyxl import load_workbook
from sqlalchemy import select

from tests.web.tiering_data import add_customer
from workflow import audit, clock, leads
from workflow.models import db, Person
from workflow.models.customers import Lead
from workflow.models.notifications import Notification

TODAY = dt.date(2026, 3, 2)


def person(username):
    return db.session.scalar(select(Person).where(Person.username == username))


def make_lead(bank, cls="A", owner="emp", actor="sup_t1", unit="T1", title="杭州某公司 代发工资", today=TODAY):
    lead = leads.create(person(actor), title, bank["units"][unit], owner, cls, today=today)
    db.session.commit()
    return lead.id


def late(lead_id, days):
    """Move the lead's deadline `days` into the past and flag it, as tick would."""
    lead = db.session.get(Lead, lead_id)
    lead.deadline = TODAY - dt.timedelta(days=days)
    db.session.commit()
    leads.flag_overdue(TODAY)
    db.session.commit()


# --- pages ---------------------------------------------------------------------------------------------

def test_the_list_shows_days_left_and_late_and_filters(bank, page):
    a, c = make_lead(bank, "A"), make_lead(bank, "C", title="宁波 结算账户")
    far = make_lead(bank, "B", owner="far", actor="admin", unit="T4")
    late(a, 3)
    html = page("emp").get("/leads").get_data(as_text=True)
    assert f'data-lead="{a}"' in html and f'data-lead="{c}"' in html and f'data-lead="{far}"' not in html
    assert "3 days late" in html and "30 days left" in html
    html = page("emp").get("/leads?overdue=1").get_data(as_text=True)
    assert f'data-lead="{a}"' in html and f'data-lead="{c}"' not in html
    html = page("sup_t1").get("/leads?class=C").get_data(as_text=True)
    assert f'data-lead="{c}"' in html and f'data-lead="{a}"' not in html
    assert page("emp").get("/leads?unit=T4").status_code == 404
    assert page("emp").get("/leads?state=nothing").status_code == 400
    assert page("emp2").get("/leads").get_data(as_text=True).count("data-lead=") == 0


def test_an_employee_opens_a_lead_for_themselves(bank, page):
    resp = page("emp").post("/leads/new", data={"title": "嘉兴 新客户", "unit": "T1", "lead_class": "B"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    lead = db.session.scalar(select(Lead))
    assert (lead.owner.username, lead.deadline) == ("emp", TODAY + dt.timedelta(days=15))
    resp = page("emp").post("/leads/new", data={"title": "x", "unit": "T1", "lead_class": "A",
                                                "owner": "emp2"})
    assert resp.status_code == 403
    resp = page("emp").post("/leads/new", data={"title": "", "unit": "T1", "lead_class": "A"})
    assert resp.status_code == 400
    assert page("weak").get("/leads/new").status_code == 200
    assert db.session.scalar(select(db.func.count(Lead.id))) == 1


def test_the_lead_page_shows_the_timeline_and_the_sales_manager_reassigns(bank, page):
    lead_id = make_lead(bank, "A")
    late(lead_id, 2)
    html = page("emp").get(f"/leads/{lead_id}").get_data(as_text=True)
    assert 'id="form-win"' in html and 'id="form-reassign"' not in html
    assert "Deadline passed" in html and "2 days late" in html
    html = page("sup_t1").get(f"/leads/{lead_id}").get_data(as_text=True)
    version = re.search(r'data-version="(\d+)"', html).group(1)
    assert 'id="form-reassign"' in html
    resp = page("sup_t1").post(f"/leads/{lead_id}/reassign", data={
        "reassign-version": version, "reassign-owner": "emp2", "reassign-comment": "换人"})
    assert resp.status_code == 302
    db.session.expire_all()
    lead = db.session.get(Lead, lead_id)
    assert (lead.state, lead.owner.username, lead.deadline) == ("open", "emp2", TODAY + dt.timedelta(days=7))
    # The same form again: its version is stale now.
    resp = page("sup_t1").post(f"/leads/{lead_id}/reassign", data={
        "reassign-version": version, "reassign-owner": "emp", "reassign-comment": ""})
    assert resp.status_code == 409
    assert page("emp").post(f"/leads/{lead_id}/win", data={}).status_code == 404    # no longer theirs
    assert page("appr_t1").post(f"/leads/{lead_id}/win", data={}).status_code == 403
    resp = page("emp2").post(f"/leads/{lead_id}/lose", data={"lose-comment": ""})
    assert resp.status_code == 400
    assert page("emp2").post(f"/leads/{lead_id}/lose", data={"lose-comment": "预算取消"}).status_code == 302
    assert page("far").get(f"/leads/{lead_id}").status_code == 404
    assert page("emp2").post(f"/leads/{lead_id}/nothing", data={}).status_code == 404
    assert audit.verify().ok


def test_a_lead_and_its_customer_link_to_each_other(bank, page):
    c = add_customer("L-1", "T1", "core")
    lead = leads.create(person("sup_t1"), "杭州某公司 代发工资", bank["units"]["T1"], "emp", "A", customer="L-1",
                        today=TODAY)
    db.session.commit()
    html = page("sup_t1").get(f"/leads/{lead.id}").get_data(as_text=True)
    assert f'href="/customers/{c.id}"' in html
    html = page("sup_t1").get(f"/customers/{c.id}").get_data(as_text=True)
    assert 'id="customer-leads"' in html and f'href="/leads/{lead.id}"' in html


def test_bulk_reassign_moves_the_ticked_leads_all_or_none(bank, page):
    a, b = make_lead(bank, "A"), make_lead(bank, "B")
    late(a, 1)
    weak = make_lead(bank, "A", owner="weak", actor="sup_b1", unit="T2")
    html = page("sup_t1").get("/leads?overdue=1").get_data(as_text=True)
    assert f'name="lead" value="{a}"' in html and 'id="bulk-card"' in html
    # sup_t1 is no sales manager of T2: nothing moves.
    resp = page("sup_t1").post("/leads/reassign", data={"lead": [a, weak], "owner": "emp2"})
    assert resp.status_code == 404
    resp = page("sup_b1").post("/leads/reassign", data={"lead": [a, weak], "owner": "emp2"})
    assert resp.status_code == 422           # weak's lead is at T2, emp2 is at T1
    assert {ld.owner.username for ld in db.session.scalars(select(Lead))} == {"emp", "weak"}
    resp = page("sup_t1").post("/leads/reassign", data={"lead": [a, b], "owner": "emp2", "comment": "集中跟进"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert {db.session.get(Lead, i).owner.username for i in (a, b)} == {"emp2"}
    told = db.session.scalars(select(Notification).where(Notification.kind == "lead_assigned",
                                                         Notification.recipient_id == person("emp2").id))
    assert len(told.all()) == 2
    assert page("emp").post("/leads/reassign", data={"lead": [a], "owner": "emp"}).status_code == 403
    assert page("sup_t1").post("/leads/reassign", data={"owner": "emp"}).status_code == 400


def test_the_spreadsheet_lists_the_leads_the_viewer_sees(bank, page, api):
    make_lead(bank, "A")
    make_lead(bank, "B", owner="far", actor="admin", unit="T4")
    resp = page("emp").get("/leads.xlsx")
    assert resp.status_code == 200
    ws = load_workbook(io.BytesIO(resp.data)).active
    assert ws.max_row == 2 and ws.cell(2, 6).value == "emp"
    ws = load_workbook(io.BytesIO(api("admin").get("/leads.xlsx").data)).active
    assert ws.max_row == 3 and ws.cell(1, 1).value == "id"


# --- API ----------------------------------------------------------------------------------------------

def test_the_api_opens_follows_and_closes_a_lead(bank, api):
    resp = api("sup_t1").post("/leads", {"title": "温州 代发", "unit": "T1", "owner": "emp", "lead_class": "C"})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["deadline"], body["days_left"], body["events"][0]["to_state"]) == ("2026-04-01", 30, "open")
    lid = body["id"]
    assert api("emp").get("/leads").get_json()["total"] == 1
    assert api("far").get(f"/leads/{lid}").status_code == 404
    resp = api("emp").post(f"/leads/{lid}/reclassify", {"lead_class": "A", "version": body["version"]})
    assert resp.status_code == 200 and resp.get_json()["deadline"] == "2026-03-09"
    assert api("emp").post(f"/leads/{lid}/reclassify", {"lead_class": "A", "version": 1}).status_code == 409
    assert api("emp").post(f"/leads/{lid}/reassign", {"owner": "emp2"}).status_code == 403
    assert api("sup_t1").post(f"/leads/{lid}/reassign", {"owner": "nobody"}).status_code == 400
    assert api("sup_t1").post(f"/leads/{lid}/reassign", {"owner": "far"}).status_code == 422
    assert api("emp").post(f"/leads/{lid}/lose", {}).status_code == 400
    resp = api("emp").post(f"/leads/{lid}/win", {"comment": "已签约"})
    assert resp.status_code == 200 and resp.get_json()["state"] == "won"
    assert api("emp").post(f"/leads/{lid}/lose", {"comment": "x"}).status_code == 409
    detail = api("emp").get(f"/leads/{lid}").get_json()
    assert [e["action"] for e in detail["events"]] == ["create", "reclassify", "win"]
    assert detail["actions"] == []


def test_the_api_refuses_bad_input_and_out_of_sight_units(bank, api):
    assert api("emp").post("/leads", {"title": "x", "unit": "T4", "lead_class": "A"}).status_code == 404
    assert api("emp").post("/leads", {"title": "x", "unit": "T1", "lead_class": "Z"}).status_code == 400
    assert api("appr_t1").post("/leads", {"title": "x", "unit": "T1", "owner": "emp",
                                          "lead_class": "A"}).status_code == 403
    assert api("emp").get("/leads?overdue=maybe").status_code == 400
    assert api("emp").get("/leads?owner=nobody").status_code == 404
    assert api("sup_t1").post("/leads/reassign", {"leads": [], "owner": "emp"}).status_code == 400
    assert api("sup_t1").post("/leads/reassign", {"leads": [999999], "owner": "emp"}).status_code == 404
    assert db.session.scalar(select(db.func.count(Lead.id))) == 0


def test_the_api_bulk_reassign(bank, api):
    a, b = make_lead(bank, "A"), make_lead(bank, "C")
    resp = api("sup_t1").post("/leads/reassign", {"leads": [a, b], "owner": "emp2", "comment": "调整"})
    assert resp.status_code == 200, resp.get_json()
    assert [i["owner"] for i in resp.get_json()["items"]] == ["emp2", "emp2"]
    resp = api("sup_t1").post("/leads/reassign", {"leads": [a, b], "owner": "emp2"})
    assert resp.status_code == 422 and resp.get_json()["error"]["details"]["lead"] == a


# --- tick ---------------------------------------------------------------------------------------------

def test_tick_flags_overdue_leads_once_and_tells_their_people_once(app, bank):
    lead_id = make_lead(bank, "A")
    day = (TODAY + dt.timedelta(days=8)).isoformat()
    result = app.test_cli_runner().invoke(args=["tick", "--today", day])
    assert result.exit_code == 0, result.output
    assert "leads: 1 overdue, 2 notified" in result.output
    result = app.test_cli_runner().invoke(args=["tick", "--today", day])
    assert "leads: 0 overdue, 0 notified" in result.output
    clock.fix_today(TODAY)
    db.session.expire_all()
    assert db.session.get(Lead, lead_id).state == "overdue"
    assert db.session.scalar(select(db.func.count(Notification.id))
                             .where(Notification.kind == "lead_overdue")) == 2
