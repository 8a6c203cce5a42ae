"""No N+1 on the customer pages and lists: the statements a page runs do not grow with its rows (as
tests/web/test_query_counts.py for the case pages)."""
import datetime as dt

from tests.web.test_query_counts import counting, person, unit
from workflow import customers, engine, leads, portfolios
from workflow.models import db
from workflow.models.customers import Customer

PAGES = [("hr_b1", "/customers"), ("hr_b1", "/customers?unit=T1&tier=core"), ("hr_b1", "/portfolios?unit=B1"),
         ("hr_b1", "/portfolios/emp"), ("emp", "/portfolios/emp"), ("hr_b1", "/visits/overdue?unit=B1"),
         ("hr_b1", "/portfolios/released?unit=B1"), ("hr_b1", "/leads"), ("emp", "/leads")]
APIS = [("hr_b1", "/customers"), ("hr_b1", "/portfolios?unit=B1"), ("hr_b1", "/portfolios/emp"),
        ("hr_b1", "/visits/overdue?unit=B1"), ("hr_b1", "/leads")]


def grow(bank, start: int, n: int) -> None:
    """n customers at T1, held by emp (half of them) or waiting, each visited once, each with a lead."""
    _, pol = engine.active_policy()
    emp, hr, t1 = person("emp"), person("hr_b1"), unit("T1")
    for i in range(start, start + n):
        c = Customer(code=f"QC-{i:03d}", name=f"客户{i}", industry="trade", unit=t1,
                     inputs={"monthly_revenue": 50})
        db.session.add(c)
        db.session.flush()
        customers.record(c, "create", hr)
        customers.set_tier(c, "core" if i % 2 else "ordinary", score=40.0, source="import", actor=None,
                           effective_on=dt.date(2025, 1, 1))
        if i % 2:
            customers.assign(c, emp, hr, pol=pol, today=dt.date(2025, 1, 2))
            portfolios.record_visit(emp, c, "2025-02-01", "phone", "回访")
        leads.create(emp, f"线索{i}", t1, emp, "B", customer=c if i % 2 else None)
    db.session.commit()


def counts(page, api) -> dict[str, int]:
    out = {}
    for who, path in PAGES:
        client = page(who)
        db.session.expunge_all()
        with counting() as statements:
            assert client.get(path).status_code == 200, path
        out[f"{who} {path}"] = len(statements)
    for who, path in APIS:
        caller = api(who)
        db.session.expunge_all()
        with counting() as statements:
            assert caller.get(path).status_code == 200, path
        out[f"api {who} {path}"] = len(statements)
    return out


def test_customer_lists_run_as_many_queries_for_twenty_rows_as_for_four(bank, page, api):
    grow(bank, 0, 4)
    few = counts(page, api)
    grow(bank, 4, 20)
    assert counts(page, api) == few
