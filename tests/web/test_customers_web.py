"""The customers' pages (web/customers.py) in both languages, their forms, the Excel list and the import
template, and the API (web/api_customers.py) with its status codes."""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from workflow import customers
from workflow.models import db, Person
from workflow.models.customers import Customer


def p(username: str) -> Person:
    return db.session.scalar(select(Person).where(Person.username == username))


@pytest.fixture
def stored(bank):
    """Two customers at T1 (one core, held by emp) and one at T4."""
    hr = p("hr_b1")
    a = customers.create_customer(hr, {"code": "A1", "name": "杭州甲公司", "industry": "manufacturing",
                                       "unit": "T1", "inputs": {"monthly_revenue": 60}, "tier": "core",
                                       "manager": "emp"})
    b = customers.create_customer(hr, {"code": "B1", "name": "杭州乙公司", "industry": "government", "unit": "T2"})
    c = customers.create_customer(p("admin"), {"code": "F1", "name": "北京丙公司", "unit": "T4"})
    db.session.commit()
    return {"a": a.id, "b": b.id, "c": c.id}


# --- pages -------------------------------------------------------------------------------------------

def test_the_list_shows_tiers_and_holders_in_chinese_and_english(page, stored):
    zh = page("hr_b1", "zh_CN").get("/customers").get_data(as_text=True)
    assert "核心客户" in zh and "杭州甲公司" in zh and "杭州乙公司" in zh and "北京丙公司" not in zh
    assert "党政机关" in zh
    en = page("hr_b1").get("/customers?tier=core").get_data(as_text=True)
    assert "Core" in en and "杭州甲公司" in en and "杭州乙公司" not in en
    assert page("hr_b1").get("/customers?unit=B3").status_code == 404
    assert page("hr_b1").get("/customers?tier=gold").status_code == 400
    # a manager sees the customers they hold
    mine = page("emp").get("/customers").get_data(as_text=True)
    assert "杭州甲公司" in mine and "杭州乙公司" not in mine


def test_the_customer_page_shows_fields_inputs_history_and_the_panel(page, stored):
    for lang, words in (("zh_CN", ("月均收入", "核心客户", "万元")), ("en", ("Monthly revenue", "Core", "History"))):
        html = page("hr_b1", lang).get(f"/customers/{stored['a']}").get_data(as_text=True)
        for word in words:
            assert word in html, (lang, word)
        assert 'id="customer-events"' in html and 'data-action="assign"' in html
    assert page("emp2").get(f"/customers/{stored['a']}").status_code == 404
    assert page("hr_b1").get(f"/customers/{stored['c']}").status_code == 404


def test_a_customer_is_created_through_the_form(page, stored):
    resp = page("hr_b1").post("/customers/new", data={
        "code": "N1", "name": "新客户", "industry": "trade", "unit": "T1", "input_monthly_revenue": "12.5",
        "input_employees": "", "tier": "ordinary", "manager": "", "active": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    n1 = db.session.scalar(select(Customer).where(Customer.code == "N1"))
    assert n1.inputs == {"monthly_revenue": 12.5} and n1.tier == "ordinary" and n1.unit.code == "T1"
    # the engine's refusal lands beside its field; nothing is written
    resp = page("hr_b1").post("/customers/new", data={"code": "N1", "name": "重复", "unit": "T1"})
    assert resp.status_code == 422 and "N1" in resp.get_data(as_text=True)
    resp = page("hr_b1").post("/customers/new", data={"code": "N2", "name": "x", "unit": "T1",
                                                      "input_credit": "-5"})
    assert resp.status_code == 400
    assert db.session.scalar(select(func.count(Customer.id))) == 4
    assert page("appr_b1").get("/customers/new").status_code == 403


def test_a_customer_is_edited_through_the_form_with_its_version(page, stored):
    ed = page("hr_b1", "zh_CN")
    html = ed.get(f"/customers/{stored['b']}/edit").get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', html).group(1)
    data = {"version": version, "code": "B1", "name": "杭州乙公司（新）", "industry": "government", "unit": "T1",
            "input_employees": "250", "active": "y"}
    assert ed.post(f"/customers/{stored['b']}/edit", data=data).status_code == 302
    b = db.session.get(Customer, stored["b"])
    db.session.refresh(b)
    assert b.name == "杭州乙公司（新）" and b.unit.code == "T1" and b.inputs == {"employees": 250}
    # the same form again: its version is stale now
    resp = ed.post(f"/customers/{stored['b']}/edit", data={**data, "name": "又改"})
    assert resp.status_code == 409
    assert page("sup_t1").get(f"/customers/{stored['b']}/edit").status_code == 403


def test_the_list_exports_to_excel_with_labels_and_inputs(page, stored):
    resp = page("hr_b1", "zh_CN").get("/customers.xlsx?industry=manufacturing")
    assert resp.status_code == 200
    ws = load_workbook(io.BytesIO(resp.data)).active
    rows = list(ws.values)
    assert "月均收入 (万元)" in rows[0]   # the policy's label; the other headers come from the catalog
    assert [r[0] for r in rows[1:]] == ["A1"]
    assert rows[1][5] == "核心客户" and rows[1][8] == "emp" and rows[1][12] == 60


def test_the_import_page_loads_a_file_or_lists_each_bad_row(page, stored):
    hr = page("hr_b1", "zh_CN")
    assert hr.get("/customers/import").status_code == 200
    bad = "客户编码,客户名称,行业,所属单位\nK1,,trade,T1\nK2,乙,mining,T1\n".encode()
    resp = hr.post("/customers/import", data={"customers": (io.BytesIO(bad), "customers.csv")},
                   content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "客户名称" in html and "mining" in html
    good = "客户编码,客户名称,行业,所属单位,客户层级\nK1,甲,trade,T1,普通客户\n".encode()
    resp = hr.post("/customers/import", data={"customers": (io.BytesIO(good), "customers.csv")},
                   content_type="multipart/form-data")
    assert resp.status_code == 302
    assert db.session.scalar(select(Customer.tier).where(Customer.code == "K1")) == "ordinary"
    assert page("emp").get("/customers/import").status_code == 403


def test_the_import_template_has_chinese_headers_and_notes(page, stored):
    resp = page("hr_b1", "zh_CN").get("/customers/import-template.xlsx")
    wb = load_workbook(io.BytesIO(resp.data))
    data, notes = wb.worksheets
    assert [c.value for c in data[1]][:7] == ["客户编码", "客户名称", "行业", "所属单位", "客户经理", "客户层级", "是否有效"]
    assert "月均收入" in [c.value for c in data[1]]
    assert any("manufacturing (制造业)" in (r[4] or "") for r in notes.iter_rows(values_only=True))
    en = load_workbook(io.BytesIO(page("hr_b1").get("/customers/import-template.xlsx").data)).worksheets[0]
    assert [c.value for c in en[1]][:4] == ["code", "name", "industry", "unit_code"]


# --- the API -----------------------------------------------------------------------------------------

def test_api_lists_and_filters_a_page_at_a_time(api, stored):
    hr = api("hr_b1")
    body = hr.get("/customers?per_page=1").get_json()
    assert body["total"] == 2 and body["per_page"] == 1 and body["items"][0]["code"] == "A1"
    item = body["items"][0]
    assert item["tier"] == "core" and item["manager"] == "emp" and item["unit"] == "T1"
    assert item["inputs"] == {"monthly_revenue": 60} and item["version"] == 3
    assert [c["code"] for c in hr.get("/customers?unassigned=1").get_json()["items"]] == ["B1"]
    assert hr.get("/customers?unit=B3").status_code == 404
    assert hr.get("/customers?tier=gold").status_code == 400
    assert api("emp").get("/customers").get_json()["total"] == 1


def test_api_creates_reads_and_edits_with_the_version(api, stored):
    hr = api("hr_b1")
    resp = hr.post("/customers", json={"code": "N1", "name": "新客户", "unit": "T2", "industry": "trade",
                                              "inputs": {"credit": 90}, "tier": "ordinary"})
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    assert made["tier_history"][0]["to_tier"] == "ordinary" and made["tier_history"][0]["source"] == "admin"
    cid = made["id"]
    assert hr.get(f"/customers/{cid}").get_json()["code"] == "N1"
    resp = hr.client.patch(f"/api/v1/customers/{cid}", json={"version": made["version"], "name": "改名"},
                           headers=hr.headers)
    assert resp.status_code == 200 and resp.get_json()["name"] == "改名"
    resp = hr.client.patch(f"/api/v1/customers/{cid}", json={"version": made["version"], "name": "再改"},
                           headers=hr.headers)
    assert resp.status_code == 409
    resp = hr.client.patch(f"/api/v1/customers/{cid}", json={"name": "x"}, headers=hr.headers)
    assert resp.status_code == 400
    assert api("appr_b1").client.patch(f"/api/v1/customers/{cid}", json={"version": 1},
                                       headers=api("appr_b1").headers).status_code == 403
    assert api("emp2").get(f"/customers/{cid}").status_code == 404
    assert hr.post("/customers", json={"code": "N1", "name": "x", "unit": "T1"}).status_code == 422
    assert hr.post("/customers", json={"code": "N9", "name": "x", "unit": "T4"}).status_code == 404
    assert hr.post("/customers", json={"code": "N9", "name": "x", "unit": "T1",
                                              "inputs": {"credit": -1}}).status_code == 400


def test_api_imports_and_exports(api, stored):
    hr = api("hr_b1")
    data = "code,name,industry,unit_code,tier\nK1,甲,trade,T1,core\nK2,乙,trade,T4,\n".encode()
    resp = hr.client.post("/api/v1/imports/customers", data={"customers": (io.BytesIO(data), "c.csv")},
                          headers=hr.headers, content_type="multipart/form-data")
    assert resp.status_code == 422
    rows = resp.get_json()["error"]["details"]["rows"]
    assert [(r["line"], r["column"]) for r in rows] == [(3, "unit_code")]
    data = "code,name,industry,unit_code,tier\nK1,甲,trade,T1,core\n".encode()
    resp = hr.client.post("/api/v1/imports/customers", data={"customers": (io.BytesIO(data), "c.csv")},
                          headers=hr.headers, content_type="multipart/form-data")
    assert resp.status_code == 200 and resp.get_json()["created"] == 1
    assert api("emp").client.post("/api/v1/imports/customers", headers=api("emp").headers).status_code == 403
    resp = hr.get("/customers.xlsx")
    assert resp.status_code == 200
    assert len(list(load_workbook(io.BytesIO(resp.data)).active.values)) == 4
    resp = hr.get("/import-templates/customers.xlsx")
    assert resp.status_code == 200
    assert load_workbook(io.BytesIO(resp.data)).worksheets[0]["A1"].value == "客户编码"
    assert api("emp").get("/import-templates/customers.xlsx").status_code == 403


def test_the_customer_page_names_every_event_of_its_chain(bank, page):
    from workflow import engine, portfolios
    _, pol = engine.active_policy()
    c = Customer(code="EV-1", name="事件客户", industry="trade", unit=bank["units"]["T1"], inputs={})
    db.session.add(c)
    db.session.flush()
    customers.record(c, "create", None)
    customers.set_tier(c, "ordinary", score=10.0, source="import", actor=None)
    customers.assign(c, bank["emp"], bank["hr_b1"], pol=pol)
    portfolios.record_visit(bank["emp"], c, "2026-03-01", "phone", "电话回访")
    db.session.commit()
    client = page("hr_b1")
    client.get("/lang/zh_CN")
    body = client.get(f"/customers/{c.id}").get_data(as_text=True)
    assert "登记拜访" in body and ">visit<" not in body
    assert "系统" in body and ">system<" not in body
