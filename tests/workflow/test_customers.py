"""Customers (workflow/customers.py, workflow/customer_import.py): creating and editing them under HR's
authority, the version an edit was made from, the listing's filters, and the all-or-nothing import with its
Chinese headers, the update by code and the policy's grade rule on the holder."""
from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from workflow import audit, customer_import, customers
from workflow.errors import Conflict, Forbidden, Invalid, NotFound, Refused
from workflow.importing import ImportRefused
from workflow.models import db, Event, Person
from workflow.models.customers import Customer, CustomerTier

HEADER = "code,name,industry,unit_code,manager,tier,active,monthly_revenue,employees"


def p(username: str) -> Person:
    return db.session.scalar(select(Person).where(Person.username == username))


def new(actor="hr_b1", **fields) -> Customer:
    data = {"code": "C1", "name": "杭州某某科技", "industry": "manufacturing", "unit": "T1",
            "inputs": {"monthly_revenue": 60, "employees": 500}, **fields}
    c = customers.create_customer(p(actor), data)
    db.session.commit()
    return c


def csv(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def events(c: Customer) -> list[Event]:
    return db.session.scalars(select(Event).where(Event.chain == f"customer:{c.id}")
                              .order_by(Event.seq)).all()


# --- create and edit ---------------------------------------------------------------------------------

def test_hr_creates_a_customer_with_one_event_and_an_initial_tier_and_holder(bank):
    c = new(tier="core", manager="emp")
    assert (c.code, c.unit.code, c.active) == ("C1", "T1", True)
    assert c.inputs == {"monthly_revenue": 60, "employees": 500}
    assert [e.action for e in events(c)] == ["create", "tier", "assign"]
    assert c.version == 3 and c.tier == "core" and c.manager.username == "emp"
    history = db.session.scalars(select(CustomerTier).where(CustomerTier.customer_id == c.id)).all()
    assert [(h.from_tier, h.to_tier, h.source) for h in history] == [(None, "core", "admin")]
    assert audit.verify().ok


@pytest.mark.parametrize("actor, error", [("appr_b1", Forbidden), ("sup_t1", Forbidden), ("hr_b3", NotFound),
                                          ("far", NotFound)])
def test_only_hr_over_the_unit_creates_one(bank, make_person, actor, error):
    if actor == "hr_b3":
        make_person("hr_b3", bank["units"]["B3"], roles=["hr@B3"])
    with pytest.raises(error):
        new(actor)
    db.session.rollback()
    assert db.session.scalar(select(func.count(Customer.id))) == 0


@pytest.mark.parametrize("fields, field", [
    ({"code": "has space"}, "code"), ({"name": ""}, "name"), ({"industry": "mining"}, "industry"),
    ({"inputs": {"monthly_revenue": -1}}, "inputs.monthly_revenue"), ({"inputs": {"nothing": 1}}, "inputs"),
    ({"inputs": {"employees": "many"}}, "inputs.employees"), ({"tier": "gold"}, "tier"),
    ({"active": "yes"}, "active"), ({"colour": "red"}, "colour")])
def test_a_bad_field_is_named_and_nothing_is_written(bank, fields, field):
    with pytest.raises(Invalid) as exc:
        new(**fields)
    assert exc.value.details["field"] == field
    db.session.rollback()
    assert db.session.scalar(select(func.count(Customer.id))) == 0


def test_a_code_is_unique_and_the_grade_rule_holds_on_create(bank):
    new()
    with pytest.raises(Refused) as exc:
        new(name="another")
    assert exc.value.details["field"] == "code"
    db.session.rollback()
    # emp2 is manager-1; an important customer needs a senior manager
    with pytest.raises(Refused) as exc:
        new(code="C2", tier="important", manager="emp2")
    assert exc.value.details["field"] == "manager"


def test_an_edit_records_each_changed_field_before_and_after(bank):
    c = new()
    changes = customers.edit_customer(c, p("hr_b1"), {"name": "新名称", "inputs": {"employees": 800},
                                                      "active": False}, c.version)
    db.session.commit()
    assert changes == {"name": {"from": "杭州某某科技", "to": "新名称"},
                       "inputs": {"from": {"monthly_revenue": 60, "employees": 500},
                                  "to": {"monthly_revenue": 60, "employees": 800}},
                       "active": {"from": True, "to": False}}
    ev = events(c)[-1]
    assert ev.action == "edit" and ev.data["changes"] == changes and c.version == 2
    # nothing changed: no event
    assert customers.edit_customer(c, p("hr_b1"), {"name": "新名称"}, c.version) == {}
    assert c.version == 2
    assert audit.verify().ok


def test_a_stale_version_is_a_conflict_and_a_missing_one_invalid(bank):
    c = new()
    customers.edit_customer(c, p("hr_b1"), {"name": "A"}, 1)
    db.session.commit()
    with pytest.raises(Conflict):
        customers.edit_customer(c, p("hr_b1"), {"name": "B"}, 1)
    with pytest.raises(Invalid):
        customers.edit_customer(c, p("hr_b1"), {"name": "B"}, None)
    db.session.rollback()
    assert c.name == "A"


def test_moving_a_customer_needs_authority_at_both_units(bank, make_person):
    c = new()
    make_person("hr_t1", bank["units"]["T1"], roles=["hr@T1"])
    db.session.commit()
    with pytest.raises(NotFound):      # T2 is out of HR@T1's sight
        customers.edit_customer(c, p("hr_t1"), {"unit": "T2"}, c.version)
    db.session.rollback()
    with pytest.raises(Forbidden):     # the approver over B1 sees T1 but keeps no customers
        customers.edit_customer(c, p("appr_b1"), {"unit": "T2"}, c.version)
    db.session.rollback()
    customers.edit_customer(c, p("hr_b1"), {"unit": "T2"}, c.version)
    db.session.commit()
    assert c.unit.code == "T2" and events(c)[-1].data["changes"]["unit"] == {"from": "T1", "to": "T2"}


# --- listing -----------------------------------------------------------------------------------------

def test_the_list_honours_sight_and_each_filter(bank):
    a = new(code="A1", name="Alpha", tier="core", manager="emp")
    b = new(code="B1", name="Beta", unit="T2", industry="government")
    c = new(code="C1", name="Gamma", unit="T4", active=False, actor="admin")
    cpol = customers.active()[1]

    def codes(viewer, **args):
        f = customers.parse_filters(args, p(viewer), cpol)
        return [x.code for x in db.session.scalars(customers.customer_query(p(viewer), f))]

    assert codes("admin") == ["A1", "B1", "C1"]
    assert codes("hr_b1") == ["A1", "B1"]
    assert codes("sup_t1") == ["A1"]
    assert codes("emp") == ["A1"]          # the customer emp holds
    assert codes("emp2") == []
    assert codes("admin", unit="B1") == ["A1", "B1"]
    assert codes("admin", tier="core") == ["A1"] and codes("admin", tier="none") == ["B1", "C1"]
    assert codes("admin", manager="emp") == ["A1"] and codes("admin", manager="nobody") == []
    assert codes("admin", industry="government") == ["B1"]
    assert codes("admin", active="0") == ["C1"] and codes("admin", active="1") == ["A1", "B1"]
    assert codes("admin", q="amm") == ["C1"] and codes("admin", q="b1") == ["B1"]
    assert codes("admin", unassigned="1") == ["B1", "C1"]
    assert codes("admin", q="%") == []
    with pytest.raises(NotFound):
        codes("hr_b1", unit="B3")
    with pytest.raises(Invalid):
        codes("admin", tier="gold")
    with pytest.raises(Invalid):
        codes("admin", active="maybe")
    assert {a.id, b.id, c.id}


# --- import ------------------------------------------------------------------------------------------

def test_an_import_creates_and_tiers_and_assigns_with_events(bank):
    result = customer_import.import_customers(io.BytesIO(csv(
        "K1,甲公司,manufacturing,T1,emp,core,1,80,900",
        "K2,乙公司,党政机关,T2,,,,5,",
        "K3,丙公司,Trade,T1,,普通客户,0,,")), p("hr_b1"))
    db.session.commit()
    assert (result.created, result.updated, result.tiers_set, result.assigned) == (3, 0, 2, 1)
    k1, k2, k3 = (db.session.scalar(select(Customer).where(Customer.code == c)) for c in ("K1", "K2", "K3"))
    assert k1.tier == "core" and k1.manager.username == "emp" and k1.inputs == {"monthly_revenue": 80,
                                                                               "employees": 900}
    assert k2.industry == "government" and k2.tier is None and k2.inputs == {"monthly_revenue": 5}
    assert k3.industry == "trade" and k3.tier == "ordinary" and not k3.active
    assert [e.action for e in events(k1)] == ["create", "tier", "assign"]
    assert events(k1)[2].data["source"] == "import"
    assert k1.tier_history[0].source == "import"
    assert audit.verify().ok


def test_an_import_updates_by_code_and_leaves_the_unchanged_alone(bank):
    new(code="K1", name="旧名称")
    result = customer_import.import_customers(io.BytesIO(csv(
        "K1,新名称,manufacturing,T1,,,,60,500", "K2,乙公司,trade,T1,,,,,")), p("hr_b1"))
    db.session.commit()
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    k1 = db.session.scalar(select(Customer).where(Customer.code == "K1"))
    assert k1.name == "新名称" and events(k1)[-1].data == {
        "changes": {"name": {"from": "旧名称", "to": "新名称"}}, "source": "import"}
    again = customer_import.import_customers(io.BytesIO(csv("K1,新名称,manufacturing,T1,,,,60,500")), p("hr_b1"))
    assert (again.updated, again.unchanged) == (0, 1)
    assert audit.verify().ok


def test_a_refused_import_names_every_row_and_column_and_writes_nothing(bank):
    with pytest.raises(ImportRefused) as exc:
        customer_import.import_customers(io.BytesIO(csv(
            "K1,甲公司,manufacturing,T1,,,,80,900",
            "K2,,mining,NOWHERE,,,,x,",
            "K1,重复,trade,T1,,,,,",
            "K4,丁公司,trade,T4,,,,,",
            "K5,戊公司,trade,T1,emp2,important,,,",
            "K6,己公司,trade,T1,ghost,gold,maybe,,-3")), p("hr_b1"))
    found = {(pr.line, pr.column) for pr in exc.value.problems}
    assert found == {(3, "name"), (3, "industry"), (3, "unit_code"), (3, "monthly_revenue"), (4, "code"),
                     (5, "unit_code"), (6, "manager"), (7, "manager"), (7, "tier"), (7, "active"),
                     (7, "employees")}
    db.session.rollback()
    assert db.session.scalar(select(func.count(Customer.id))) == 0
    assert db.session.scalar(select(func.count(Event.id)).where(Event.chain.like("customer:%"))) == 0


def test_an_import_reads_chinese_headers_and_xlsx(bank):
    wb = Workbook()
    ws = wb.active
    ws.append(["客户编码", "客户名称", "行业", "所属单位", "客户经理", "客户层级", "月均收入", "员工数（人）"])
    ws.append(["Z1", "浙江某某集团", "国有企业", "T1", "emp", "核心客户", 120.5, 3000])
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    out.name = "客户.xlsx"
    result = customer_import.import_customers(out, p("hr_b1"))
    db.session.commit()
    z1 = db.session.scalar(select(Customer).where(Customer.code == "Z1"))
    assert result.created == 1 and z1.industry == "state_owned" and z1.tier == "core"
    assert z1.inputs == {"monthly_revenue": 120.5, "employees": 3000} and z1.manager.username == "emp"


def test_the_grade_rule_on_import_checks_the_stored_holder_against_a_new_tier(bank):
    new(code="K1", tier="core", manager="emp2")      # manager-1 may hold a core customer
    with pytest.raises(ImportRefused) as exc:
        customer_import.import_customers(io.BytesIO(csv("K1,甲公司,manufacturing,T1,,important,,,")), p("hr_b1"))
    assert [(pr.line, pr.column) for pr in exc.value.problems] == [(2, "tier")]


def test_an_import_outside_ones_units_is_refused_for_those_rows(bank):
    with pytest.raises(ImportRefused) as exc:
        customer_import.import_customers(io.BytesIO(csv("K1,甲公司,trade,T4,,,,,")), p("hr_b1"))
    assert [(pr.line, pr.column) for pr in exc.value.problems] == [(2, "unit_code")]
    # the command line (no actor) imports anywhere
    assert customer_import.import_customers(io.BytesIO(csv("K1,甲公司,trade,T4,,,,,")), None).created == 1


# --- the demo ----------------------------------------------------------------------------------------

def test_the_demo_spreads_its_customers_over_the_tiers_under_the_grade_rule(app):
    from workflow import demo, engine
    demo.load()
    db.session.commit()
    pol = engine.active_policy()[1]
    rows = db.session.scalars(select(Customer)).all()
    by_tier = {t: sum(1 for c in rows if c.tier == t) for t in pol.customers.tier_ids}
    assert len(rows) == 400 and all(n >= 30 for n in by_tier.values()), by_tier
    assert not [c for c in rows if c.industry in ("government", "state_owned") and c.tier == "ordinary"]
    held = [c for c in rows if c.manager is not None]
    assert 250 < len(held) < 380
    assert all(customers.holder_problem(pol, c.manager, c.tier) is None for c in held)
    assert all(c.manager.unit_id == c.unit_id for c in held)
    assert sum(1 for c in rows if c.released_from is not None) == 2
    assert audit.verify().ok
