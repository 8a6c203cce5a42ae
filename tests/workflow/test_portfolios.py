"""Portfolios (包保客户) and visits: the grade rule and the tree when assigning, authority, bulk assignment, the
next visit due and overdue (SQL and Python agree), coverage, workload norms by area, what a promotion,
demotion or dismissal does to the person's customers, and the eligibility rules on portfolios."""
import datetime as dt

import pytest

from workflow import audit, clock, customers, engine, policy as policy_mod, portfolios, rules
from workflow.errors import Forbidden, Invalid, Refused
from workflow.models import db, Event, Notification, Person
from workflow.models.customers import Customer, Visit
from workflow.policy import PolicyError

from policy_edits import DELETE, edited  # noqa: E402

TODAY = dt.date(2026, 3, 2)
SINCE = dt.date(2025, 1, 1)


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def activate(**changes):
    engine.activate_policy(policy_mod.loads(edited(**changes), "edited.yaml"), "edited")
    db.session.commit()


def customer(code, unit, tier, holder=None, since=SINCE, assigned=None):
    """A customer of `unit` in `tier` since `since`, held by `holder` from `assigned` (default: `since`)."""
    c = Customer(code=code, name=f"客户{code}", unit=unit, inputs={})
    db.session.add(c)
    db.session.flush()
    customers.set_tier(c, tier, score=None, source="admin", actor=None, effective_on=since)
    if holder:
        customers.assign(c, person(holder), None, pol=engine.active_policy()[1], today=assigned or since)
    db.session.commit()
    return c


def visit(c, who, day, method="on_site"):
    v = portfolios.record_visit(person(who), c, day, method, "拜访")
    db.session.commit()
    return v


# --- assigning and releasing -----------------------------------------------------------------------------

def test_hr_over_the_unit_assigns_under_the_grade_rule_and_the_tree(bank, make_person):
    t1, b1 = bank["units"]["T1"], bank["units"]["B1"]
    make_person("hr_b3", bank["units"]["B3"], roles=["hr@B3"])
    core = customer("C1", t1, "core")
    portfolios.assign(person("hr_b1"), core, person("emp"), comment="包保")
    db.session.commit()
    assert (core.manager.username, core.assigned_on) == ("emp", TODAY)
    with pytest.raises(Refused, match="already holds"):
        portfolios.assign(person("hr_b1"), core, person("emp"))
    for who in ("appr_b1", "sup_t1", "hr_b3", "emp"):      # only HR (or admin) at T1 or above
        with pytest.raises(Forbidden):
            portfolios.assign(person(who), core, person("emp2"))
    important = customer("C2", t1, "important")
    with pytest.raises(Refused, match="needs a manager of level senior"):
        portfolios.assign(person("hr_b1"), important, person("emp"))
    # A sibling team's manager is off the customer's line of the tree; a branch's customer may go to a team's
    # manager below it, a team's customer to a manager of the branch above it.
    with pytest.raises(Refused, match="outside the line of T1"):
        portfolios.assign(person("hr_b1"), customer("C3", t1, "ordinary"), person("weak"))
    portfolios.assign(person("hr_b1"), customer("C4", b1, "core"), person("emp"))
    make_person("senior_b1", b1, grade="senior-1")
    portfolios.assign(person("admin"), important, person("senior_b1"))
    db.session.commit()
    assert important.manager.username == "senior_b1"
    chain = db.session.query(Event).filter_by(chain=f"customer:{core.id}").order_by(Event.seq)
    assert [e.action for e in chain] == ["tier", "assign"]
    assert audit.verify().ok


def test_bulk_assignment_reports_each_customer_and_assigns_the_others(bank):
    t1 = bank["units"]["T1"]
    cs = [customer("B1", t1, "core"), customer("B2", t1, "important"), customer("B3", t1, "ordinary"),
          customer("B4", bank["units"]["T4"], "ordinary")]
    out = portfolios.assign_many(person("hr_b1"), cs, person("emp2"), comment="批量包保")
    db.session.commit()
    assert [(o.customer.code, o.ok) for o in out] == [("B1", True), ("B2", False), ("B3", True),
                                                      ("B4", False)]
    assert "senior" in str(out[1].reason) and out[3].status == 403
    assert [c.manager_id is not None for c in cs] == [True, False, True, False]
    assert out[0].to_json() == {"customer": cs[0].id, "code": "B1", "ok": True, "reason": None}


def test_release_by_hand(bank):
    c = customer("R1", bank["units"]["T1"], "core", holder="emp")
    with pytest.raises(Forbidden):
        portfolios.release(person("sup_t1"), c)
    portfolios.release(person("hr_b1"), c, comment="调整")
    db.session.commit()
    assert (c.manager_id, c.released_from.username, c.released_reason) == (None, "emp", "manual")
    with pytest.raises(Refused, match="held by nobody"):
        portfolios.release(person("hr_b1"), c)
    assert [x.code for x in db.session.scalars(portfolios.waiting_query(bank["units"]["B1"]))] == ["R1"]


# --- visits ------------------------------------------------------------------------------------------------

def test_visits_by_the_holder_or_over_the_unit(bank):
    c = customer("V1", bank["units"]["T1"], "core", holder="emp")
    own = visit(c, "emp", "2026-02-01", "phone")
    by_sup = visit(c, "sup_t1", dt.date(2026, 2, 15))
    assert (own.manager.username, own.recorded_by.username, own.method) == ("emp", "emp", "phone")
    assert (by_sup.manager.username, by_sup.recorded_by.username) == ("emp", "sup_t1")
    with pytest.raises(Forbidden):
        portfolios.record_visit(person("emp2"), c, TODAY)
    for day in ("2026-03-03", "1999-12-31", "yesterday", 5):
        with pytest.raises(Invalid) as err:
            portfolios.record_visit(person("emp"), c, day)
        assert err.value.details["field"] == "visited_on"
    with pytest.raises(Invalid) as err:
        portfolios.record_visit(person("emp"), c, TODAY, "carrier_pigeon")
    assert err.value.details["field"] == "method"
    db.session.rollback()
    ev = db.session.query(Event).filter_by(chain=f"customer:{c.id}").order_by(Event.seq.desc()).first()
    assert (ev.action, ev.actor, ev.data["visit"], ev.data["manager"]) == (
        "visit", "sup_t1", by_sup.id, "emp")
    assert db.session.query(Visit).count() == 2
    assert audit.verify().ok


def test_next_visit_due_and_overdue(bank):
    t1 = bank["units"]["T1"]
    late = customer("D1", t1, "core", holder="emp")                                   # due 2025-07-01
    seen = customer("D2", t1, "core", holder="emp")
    visit(seen, "emp", dt.date(2025, 12, 1))                                           # due 2026-06-01
    today_due = customer("D3", t1, "ordinary", holder="emp", since=dt.date(2025, 3, 2))  # due today
    yesterday = customer("D4", t1, "ordinary", holder="emp", since=dt.date(2025, 3, 1))
    reassigned = customer("D5", t1, "core", holder="emp", assigned=dt.date(2026, 1, 10))   # from assignment
    assert portfolios.next_due(late) == dt.date(2025, 7, 1)
    assert portfolios.next_due(seen) == dt.date(2026, 6, 1)
    assert portfolios.next_due(today_due) == TODAY
    assert portfolios.next_due(reassigned) == dt.date(2026, 7, 10)
    rows = {r["customer"].code: (r["due"], r["overdue"]) for r in portfolios.held_by(person("emp"))}
    assert rows == {"D1": (dt.date(2025, 7, 1), True), "D2": (dt.date(2026, 6, 1), False),
                    "D3": (TODAY, False), "D4": (dt.date(2026, 3, 1), True),
                    "D5": (dt.date(2026, 7, 10), False)}
    pol, cpol = portfolios.policy()
    overdue = db.session.execute(portfolios.overdue_query(cpol, TODAY)).all()
    assert [c.code for c, _b, _o in overdue] == ["D1", "D4"]
    p = portfolios.portfolio_of(person("emp"))
    assert (p.total, p.cadence, p.overdue, p.coverage) == (5, 5, 2, 60.0)
    assert yesterday.tier == "ordinary"


@pytest.mark.parametrize("today", [dt.date(2026, 3, 31), dt.date(2026, 2, 28), dt.date(2024, 2, 29),
                                   dt.date(2026, 1, 1), dt.date(2026, 5, 30)])
@pytest.mark.parametrize("months", [1, 3, 6, 12])
def test_the_cutoff_is_the_overdue_rule(today, months):
    """A base before cutoff(today, m) is exactly a base whose add_months(base, m) is before today."""
    c = portfolios.cutoff(today, months)
    for n in range(-70, 70):
        base = c + dt.timedelta(days=n)
        assert (clock.add_months(base, months) < today) == (base < c), (base, c)


def test_a_tier_without_cadence_and_no_customers_have_no_coverage(bank):
    activate(**{"customers.tiers.2.visit_months": DELETE})
    c = customer("N1", bank["units"]["T1"], "ordinary", holder="emp")
    assert portfolios.next_due(c) is None
    assert portfolios.portfolio_of(person("emp")).coverage is None
    assert portfolios.portfolio_of(person("emp2")).coverage is None


# --- the portfolio summary and workload norms ---------------------------------------------------------------

def test_norms_by_area_breaches_and_waiting(bank, make_person):
    activate(**{"customers.workload": {"default_area": "city", "areas": [
        {"id": "city", "zh": "城区", "en": "City", "min": 2, "max": 3},
        {"id": "county", "zh": "县域", "en": "County", "min": 1, "max": 1, "units": ["B2"]}]}})
    t1, t3 = bank["units"]["T1"], bank["units"]["T3"]
    make_person("nb", t3, grade="manager-1")
    for i in range(2):
        customer(f"E{i}", t1, "ordinary", holder="emp")
        customer(f"F{i}", t3, "ordinary", holder="nb")
    customer("G0", t1, "core", holder="emp2")
    customer("W0", t1, "core")                                  # never assigned: waiting
    # A tier raised under its holder: emp (manager) now holds an important customer, a breach.
    customers.set_tier(db.session.query(Customer).filter_by(code="E0").one(), "important", score=None,
                       source="admin", actor=None)
    db.session.commit()
    rows = {p.manager.username: p for p in portfolios.summary(bank["units"]["HQ"])}
    assert {u: (p.total, p.area.id, p.status) for u, p in rows.items() if p.total} == {
        "emp": (2, "city", "within"), "emp2": (1, "city", "under"), "nb": (2, "county", "over")}
    assert rows["emp"].by_tier == {"important": 1, "ordinary": 1} and rows["emp"].breaches == 1
    assert rows["weak"].status == "under" and "far" in rows             # holding levels, holding nothing
    assert "hr_b1" not in rows
    assert [p.manager.username for p in portfolios.summary(bank["units"]["B1"], status="breach")] == ["emp"]
    assert [p.manager.username for p in portfolios.summary(bank["units"]["R1"], status="over")] == ["nb"]
    assert portfolios.waiting_count(bank["units"]["B1"]) == 1
    dash = portfolios.dashboard(bank["units"]["R1"])
    assert ([p.manager.username for p in dash["over"]], [p.manager.username for p in dash["breaches"]]) == (
        ["nb"], ["emp"])
    assert rows["nb"].to_json()["area"] == {"id": "county", "zh": "县域", "en": "County", "min": 1, "max": 1}


def test_without_a_customers_section_nothing_happens(bank):
    activate(customers=DELETE)
    with pytest.raises(Refused, match="no customers section"):
        portfolios.summary(bank["units"]["B1"])
    assert portfolios.dashboard(bank["units"]["B1"]) is None


# --- a case's effect on the person's customers --------------------------------------------------------------

def _misconduct(kind, severity):
    case = engine.open_case(kind, person("sup_t1"), person("emp"), reason="misconduct", severity=severity,
                            comment="违规办理业务")
    db.session.commit()
    return case


def _act(case, action, who, today=None, **data):
    engine.fire(case, action, person(who) if who else None, data, today=today)
    db.session.commit()


def test_a_demotion_releases_the_customers_above_the_new_level(bank):
    t1 = bank["units"]["T1"]
    core, ordinary = customer("K1", t1, "core", holder="emp"), customer("K2", t1, "ordinary", holder="emp")
    case = _misconduct("demotion", "major")
    _act(case, "confirm_grounds", "appr_b1")
    _act(case, "close_notice", None, today=dt.date(2026, 3, 10))
    _act(case, "approve", "hr_b1")
    assert person("emp").grade == "assistant-3"
    assert (core.manager_id, core.released_reason, core.released_from.username) == (None, "demotion", "emp")
    assert ordinary.manager.username == "emp"
    ev = db.session.query(Event).filter_by(chain=f"customer:{core.id}", action="release").one()
    assert (ev.actor, ev.data["case"], ev.data["reason"]) == ("hr_b1", case.id, "demotion")
    assert case.events[-1].data["customers_released"] == ["K1"]
    note = db.session.query(Notification).filter_by(kind="customers_released").one()
    assert note.recipient.username == "hr_b1"
    assert (note.params["count"], note.params["reason"]["en"], note.params["target"]["endpoint"]) == (
        1, "demotion", "portfolios.released")
    assert audit.verify().ok


def test_a_dismissal_releases_every_customer(bank):
    t1 = bank["units"]["T1"]
    held = [customer("M1", t1, "core", holder="emp"), customer("M2", t1, "ordinary", holder="emp")]
    case = _misconduct("dismissal", "severe")
    _act(case, "confirm_grounds", "appr_b1")
    _act(case, "close_notice", None, today=dt.date(2026, 3, 10))
    _act(case, "approve", "hr_b1")
    _act(case, "final_approve", "appr_r1")
    assert case.state == "effective"
    assert [(c.manager_id, c.released_reason) for c in held] == [(None, "dismissal"), (None, "dismissal")]
    assert db.session.query(Notification).filter_by(kind="customers_released").one().params["count"] == 2
    assert audit.verify().ok


def test_a_promotion_out_of_the_holding_levels_releases_all(bank, walk):
    activate(**{"customers.holding_levels": ["assistant", "manager"]})
    c = customer("P1", bank["units"]["T1"], "ordinary", holder="emp")
    other = customer("P2", bank["units"]["T1"], "ordinary", holder="emp2")
    case = walk.file("emp", "senior")
    walk.to_hr(case)
    walk.act(case, "approve", "hr_b1")
    assert case.state == "effective" and person("emp").level == "senior"
    assert (c.manager_id, c.released_reason) == (None, "promotion")
    assert other.manager.username == "emp2"
    assert audit.verify().ok


def test_a_promotion_to_a_holding_level_keeps_them(bank, walk):
    c = customer("P3", bank["units"]["T1"], "core", holder="emp")
    case = walk.file("emp", "senior")
    walk.to_hr(case)
    walk.act(case, "approve", "hr_b1")
    assert case.state == "effective" and c.manager.username == "emp"
    assert db.session.query(Notification).filter_by(kind="customers_released").count() == 0


# --- eligibility on portfolios ------------------------------------------------------------------------------

def test_holds_customers_and_visit_coverage_rules(bank):
    rules_ = policy_mod.loads(edited(eligibility=[
        {"rule": "holds_customers", "min": 1, "tiers": ["important", "core"]},
        {"rule": "visit_coverage", "min": 90}]), "edited.yaml")
    engine.activate_policy(rules_, "edited")
    db.session.commit()
    pol = engine.active_policy()[1]

    def results():
        return {r["rule"]: (r["required"], r["actual"], r["passed"])
                for r in rules.evaluate(person("emp"), pol, "senior", TODAY)}

    assert results() == {"holds_customers": ("≥ 1 customers [important, core]", "0 customers", False),
                         "visit_coverage": ("≥ 90%", "no customers", False)}
    t1 = bank["units"]["T1"]
    c = customer("Q1", t1, "core", holder="emp", since=dt.date(2026, 1, 1))
    customer("Q2", t1, "ordinary", holder="emp", since=dt.date(2025, 3, 1))     # overdue
    assert results() == {"holds_customers": ("≥ 1 customers [important, core]", "1 customers", True),
                         "visit_coverage": ("≥ 90%", "50%", False)}
    assert c.tier == "core"


def test_portfolio_rules_are_validated(bank):
    with pytest.raises(PolicyError, match="customer tier"):
        policy_mod.loads(edited(eligibility=[{"rule": "holds_customers", "min": 1, "tiers": ["gold"]}]), "x")
    with pytest.raises(PolicyError, match="customers section"):
        policy_mod.loads(edited(customers=DELETE, eligibility=[{"rule": "visit_coverage", "min": 90}]), "x")
    with pytest.raises(PolicyError, match="min"):
        policy_mod.loads(edited(eligibility=[{"rule": "visit_coverage", "min": 120}]), "x")
    jilin = policy_mod.load_file("mobile_jilin")
    assert [(r.params, r.targets) for r in jilin.eligibility if r.type == "holds_customers"] == [
        ({"min": 1, "tiers": ["A1", "A2"]}, ("senior",))]
