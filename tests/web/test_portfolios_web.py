"""Portfolio pages and API: the managers of a unit with norms and coverage, one manager's customers, the
customers waiting for a holder assigned in bulk, overdue visits and their workbook, the customer page's panel
forms, the HR dashboard's section, and the JSON routes."""
import datetime as dt
import io

from openpyxl import load_workbook

from tests.conftest import TODAY
from workflow import audit, customers, engine
from workflow.models import db, Person
from workflow.models.customers import Customer, Visit

from api_checks import err, ok  # noqa: E402


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def customer(bank, code, tier="core", holder=None, unit="T1", since=dt.date(2025, 1, 1)):
    c = Customer(code=code, name=f"客户{code}", unit=bank["units"][unit], inputs={})
    db.session.add(c)
    db.session.flush()
    customers.set_tier(c, tier, score=None, source="admin", actor=None, effective_on=since)
    if holder:
        customers.assign(c, person(holder), None, pol=engine.active_policy()[1], today=since)
    db.session.commit()
    return c


def test_the_managers_of_a_unit(bank, page):
    customer(bank, "A1", holder="emp")                                    # overdue since 2025-07-01
    customer(bank, "A2", "ordinary", holder="emp", since=dt.date(2026, 1, 1))
    customer(bank, "A3")                                                   # waiting
    html = page("hr_b1").get("/portfolios?unit=B1").get_data(as_text=True)
    assert 'data-manager="emp"' in html and 'data-manager="weak"' in html
    assert 'data-status="under"' in html and "City 140–200" in html and "50%" in html
    assert "Customers waiting for a manager" in html and "portfolios/released?unit=B1" in html
    html = page("hr_b1").get("/portfolios?unit=B1&status=overdue").get_data(as_text=True)
    assert 'data-manager="emp"' in html and 'data-manager="weak"' not in html
    assert page("hr_b1").get("/portfolios?status=sideways").status_code == 400
    assert page("emp").get("/portfolios").status_code == 403
    zh = page("hr_b1", "zh_CN").get("/portfolios?unit=B1").get_data(as_text=True)
    assert "城区" in zh
    book = load_workbook(io.BytesIO(page("hr_b1").get("/portfolios.xlsx?unit=B1").data))
    rows = list(book.active.values)
    assert rows[0][0] == "Username" and any(r[0] == "emp" and r[4] == 2 for r in rows[1:])


def test_one_managers_customers_and_their_own(bank, page):
    customer(bank, "B1", holder="emp")
    customer(bank, "B2", "ordinary", holder="emp", since=dt.date(2026, 1, 1))
    for who in ("emp", "sup_t1", "hr_b1"):
        html = page(who).get("/portfolios/emp").get_data(as_text=True)
        assert 'id="held-total">2<' in html and 'data-overdue="1"' in html and "2027-01-01" in html
        assert 'translate="no">emp</small></h1>' in html           # the heading names the manager
    assert page("emp2").get("/portfolios/emp").status_code == 404
    assert page("emp").get("/portfolios/emp2").status_code == 404


def test_bulk_assignment_from_the_waiting_list(bank, page):
    a, b, imp = customer(bank, "C1"), customer(bank, "C2", "ordinary"), customer(bank, "C3", "important")
    hr = page("hr_b1")
    html = hr.get("/portfolios/released?unit=B1").get_data(as_text=True)
    assert f'data-customer="{a.id}"' in html and "Never assigned" in html and 'value="emp2"' in html
    resp = hr.post("/portfolios/released?unit=B1", data={"customers": [a.id, b.id, imp.id], "manager": "emp2",
                                                          "comment": "包保"})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "2 of 3 customer(s) assigned" in html and "needs a manager of level senior" in html
    db.session.expire_all()
    assert [c.manager.username if c.manager else None for c in (a, b, imp)] == ["emp2", "emp2", None]
    assert hr.post("/portfolios/released?unit=B1", data={"manager": "emp2"}).status_code == 400
    assert page("sup_t1").get("/portfolios/released").status_code == 403
    assert audit.verify().ok


def test_the_customer_panel_assigns_releases_and_records_visits(bank, page):
    c = customer(bank, "D1")
    hr = page("hr_b1")
    resp = hr.post(f"/customers/{c.id}/assign", data={"assign-manager": "emp", "assign-comment": "包保"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert c.manager.username == "emp"
    # Refused: back on the customer page with the reason, nothing changed.
    resp = hr.post(f"/customers/{c.id}/assign", data={"assign-manager": "weak"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/customers/{c.id}")
    assert "outside the line of T1" in hr.get(f"/customers/{c.id}").get_data(as_text=True)
    db.session.expire_all()
    assert c.manager.username == "emp"
    # In Chinese the grade rule names the tier and the grades by the policy's labels.
    imp = customer(bank, "D2", "important")
    zh = page("hr_b1", "zh_CN")
    assert zh.post(f"/customers/{imp.id}/assign", data={"assign-manager": "emp"}).status_code == 302
    html = zh.get(f"/customers/{imp.id}").get_data(as_text=True)
    assert "重要客户" in html and "高级客户经理" in html and "tier important" not in html
    resp = page("emp").post(f"/customers/{c.id}/visits", data={
        "visit-visited_on": "2026-02-20", "visit-method": "phone", "visit-note": "电话回访"})
    assert resp.status_code == 302
    assert page("emp").post(f"/customers/{c.id}/visits", data={
        "visit-visited_on": "2026-03-03", "visit-method": "phone"}).status_code == 400
    v = db.session.query(Visit).one()
    assert (v.manager.username, v.recorded_by.username, v.method) == ("emp", "emp", "phone")
    html = hr.get(f"/customers/{c.id}").get_data(as_text=True)
    if 'id="customer-portfolio"' in html:        # the customers area's page includes the panel
        # Due 6 months from today's assignment (later than the visit).
        assert "2026-09-02" in html and 'id="assign-form"' in html and 'id="visit-form"' in html
        assert f'data-visit="{v.id}"' in html
        emp_html = page("emp").get(f"/customers/{c.id}").get_data(as_text=True)
        assert 'id="visit-form"' in emp_html and 'id="assign-form"' not in emp_html
    assert page("emp").post(f"/customers/{c.id}/release", data={}).status_code == 403
    assert hr.post(f"/customers/{c.id}/release", data={"release-comment": "调整"}).status_code == 302
    db.session.expire_all()
    assert (c.manager_id, c.released_reason) == (None, "manual")


def test_overdue_visits_and_their_workbook(bank, page):
    late = customer(bank, "E1", holder="emp")
    fine = customer(bank, "E2", "ordinary", holder="emp2", since=dt.date(2026, 1, 1))
    far = customer(bank, "E3", holder="far", unit="T4")
    html = page("hr_b1").get("/visits/overdue?unit=B1").get_data(as_text=True)
    assert f'data-customer="{late.id}"' in html and "2025-07-01" in html and ">244<" in html
    assert f'data-customer="{far.id}"' not in html and f'data-customer="{fine.id}"' not in html
    html = page("hr_b1").get("/visits/overdue?unit=B1&manager=emp2").get_data(as_text=True)
    assert f'data-customer="{late.id}"' not in html
    assert page("hr_b1").get("/visits/overdue?tier=gold").status_code == 400
    book = load_workbook(io.BytesIO(page("hr_b1").get("/visits/overdue.xlsx?unit=B1&tier=core").data))
    assert [r[0] for r in list(book.active.values)[1:]] == ["E1"]


def test_the_hr_dashboard_shows_norms_and_breaches(bank, page):
    c = customer(bank, "F1", holder="emp")
    customers.set_tier(c, "important", score=None, source="admin", actor=None)      # emp may not hold it
    db.session.commit()
    html = page("hr_b1").get("/hr/pipeline?unit=B1").get_data(as_text=True)
    assert 'id="portfolio-norms"' in html and 'id="portfolio-breach"' in html
    assert "/portfolios?unit=B1&amp;status=breach" in html or "/portfolios?unit=B1&status=breach" in html


# --- the API ----------------------------------------------------------------------------------------------

def test_api_portfolios_and_assignment(bank, api):
    c = customer(bank, "G1")
    hr = api("hr_b1")
    got = ok(hr.post(f"/customers/{c.id}/assignment", {"manager": "emp", "comment": "包保"}))
    assert (got["manager"], got["assigned_on"], got["next_visit_due"], got["overdue"]) == (
        "emp", TODAY.isoformat(), "2026-09-02", False)
    assert err(hr.post(f"/customers/{c.id}/assignment", {"manager": "emp"}), 422)["message"].startswith(
        "emp already holds")
    assert err(hr.post(f"/customers/{c.id}/assignment", {}), 400)["code"] == "bad_request"
    err(api("emp").post(f"/customers/{c.id}/assignment", {"manager": "emp2"}), 403)
    err(api("far").post(f"/customers/{c.id}/assignment", {"manager": "emp2"}), 404)
    page_ = ok(hr.get("/portfolios?unit=T1"))
    emp = next(i for i in page_["items"] if i["manager"] == "emp")
    assert (emp["customers"], emp["by_tier"], emp["status"], emp["area"]["id"]) == (
        1, {"core": 1}, "under", "city")
    assert page_["total"] == 2 and page_["per_page"] >= 1
    err(hr.get("/portfolios?unit=T4"), 404)
    err(hr.get("/portfolios?status=sideways"), 400)
    detail = ok(api("emp").get("/portfolios/emp"))
    assert [h["code"] for h in detail["held"]] == ["G1"]
    err(api("emp2").get("/portfolios/emp"), 404)
    released = ok(hr.post(f"/customers/{c.id}/release", {"comment": "调整"}))
    assert (released["manager"], released["released_from"], released["released_reason"]) == (
        None, "emp", "manual")
    assert load_workbook(io.BytesIO(hr.get("/portfolios.xlsx?unit=B1").data)).active["A1"].value == "username"


def test_api_bulk_assignment(bank, api):
    a, imp = customer(bank, "H1"), customer(bank, "H2", "important")
    far = customer(bank, "H3", unit="T4")
    got = ok(api("hr_b1").post("/assignments", {"customers": [a.id, imp.id, far.id, 999999],
                                                 "manager": "emp"}))
    assert (got["assigned"], got["refused"]) == (1, 3)
    assert [(r["customer"], r["ok"]) for r in got["results"]] == [
        (a.id, True), (imp.id, False), (far.id, False), (999999, False)]
    body = err(api("hr_b1").post("/assignments", {"customers": [imp.id], "manager": "emp"}), 422)
    assert body["details"]["results"][0]["ok"] is False
    err(api("appr_b1").post("/assignments", {"customers": [imp.id], "manager": "emp"}), 403)
    err(api("emp").post("/assignments", {"customers": [imp.id], "manager": "emp"}), 404)     # out of sight
    err(api("hr_b1").post("/assignments", {"customers": "all", "manager": "emp"}), 400)
    err(api("hr_b1").post("/assignments", {"customers": [a.id], "manager": 7}), 400)


def test_api_visits(bank, api):
    c = customer(bank, "J1", holder="emp")
    v = ok(api("sup_t1").post(f"/customers/{c.id}/visits", {"visited_on": "2026-02-27", "method": "online"}),
           201)
    assert (v["manager"], v["recorded_by"], v["method"]) == ("emp", "sup_t1", "online")
    for body, field in (({"visited_on": "2026-03-03"}, "visited_on"), ({"visited_on": "soon"}, "visited_on"),
                        ({}, "visited_on"), ({"visited_on": "2026-01-01", "method": "fax"}, "method")):
        assert err(api("emp").post(f"/customers/{c.id}/visits", body), 400)["details"]["field"] == field
    err(api("appr_b1").post(f"/customers/{c.id}/visits", {"visited_on": "2026-01-01"}), 403)
    listed = ok(api("appr_b1").get(f"/customers/{c.id}/visits"))
    assert [x["id"] for x in listed["items"]] == [v["id"]] and listed["total"] == 1
    late = customer(bank, "J2", holder="emp")
    overdue = ok(api("hr_b1").get("/visits/overdue?unit=B1"))
    assert [i["code"] for i in overdue["items"]] == ["J2"] and overdue["items"][0]["overdue"] is True
    assert late.code == "J2"
    err(api("hr_b1").get("/visits/overdue?tier=gold"), 400)
    err(api("emp").get("/visits/overdue"), 403)


def test_portfolio_rule_values_read_in_the_users_language(app):
    from web.views import rule_value
    with app.test_request_context():
        text = rule_value("≥ 1 customers [important, core]")
    assert "重要客户, 核心客户" in text and "[" not in text
