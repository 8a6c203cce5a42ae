"""The policy's `customers` section: the shipped policies load it; a bad one is refused with the key path and
the problem; scoring, floors, approval, the grade rule and workload areas read as the policy says."""
import pytest

from workflow import policy as policy_mod
from workflow.policy import PolicyError

from policy_edits import DELETE, edited  # noqa: E402


@pytest.fixture(scope="module")
def bank():
    return policy_mod.load_file("bank_corporate")


def refused(**changes) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        policy_mod.loads(edited(**changes), "bad.yaml")
    return info.value


def test_shipped_policies_tier_customers(bank):
    c = bank.customers
    assert c.tier_ids == ("important", "core", "ordinary")
    assert [t.visit_months for t in c.tiers] == [3, 6, 12]
    assert c.approval.at_or_above == "important" and c.approval.org_level == "branch"
    assert [(a.id, a.min, a.max) for a in c.areas] == [("city", 140, 200), ("county", 100, 140)]
    assert [(k.id, k.days) for k in c.lead_classes] == [("A", 7), ("B", 15), ("C", 30)]
    jilin = policy_mod.load_file("mobile_jilin").customers
    assert jilin.tier_ids == ("A1", "A2", "B1", "B2", "C")
    assert policy_mod.load_file("mobile_quzhou").customers is None
    assert bank.to_json()["customers"]["tiers"][0]["min_manager_level"] == "senior"


def test_value_score_is_weighted_and_capped(bank):
    c = bank.customers
    tier, score, breakdown = c.classify("trade", {"monthly_revenue": 200, "it_revenue": 10, "employees": 1000,
                                                  "products": 0, "credit": 100})
    # 35 (capped at full_at) + 10 + 7.5 + 0 + 15 = 67.5 of 100: core (important needs 70)
    assert (tier, score) == ("core", 67.5)
    assert [t["points"] for t in breakdown["terms"]] == [35.0, 10.0, 7.5, 0.0, 15.0]
    assert breakdown["by_score"] == "core" and breakdown["floor"] is None
    # missing, negative and non-numeric inputs count as nothing
    assert c.classify("trade", {"monthly_revenue": -5, "credit": "high"})[:2] == ("ordinary", 0.0)


def test_a_floor_raises_the_tier_of_its_industries_only(bank):
    c = bank.customers
    tier, score, breakdown = c.classify("government", {"credit": 50})
    assert (tier, score) == ("core", 7.5)
    assert breakdown == {**breakdown, "by_score": "ordinary", "floor": {"industry": "government", "at_least": "core"}}
    assert c.classify("trade", {"credit": 50})[0] == "ordinary"
    # a floor never lowers a tier
    best = {"monthly_revenue": 100, "it_revenue": 20, "employees": 2000, "products": 10, "credit": 100}
    assert c.classify("government", best)[0] == "important"


def test_changes_into_or_out_of_the_approval_tier_need_approval(bank):
    c = bank.customers
    assert c.needs_approval("core", "important") and c.needs_approval("important", "ordinary")
    assert c.needs_approval(None, "important")
    assert not c.needs_approval("core", "ordinary") and not c.needs_approval(None, "core")
    assert not c.needs_approval("important", "important")


def test_the_grade_rule_and_holding_levels(bank):
    c, levels = bank.customers, bank.level_ids
    assert c.may_hold("senior", "important", levels) and c.may_hold("principal", "important", levels)
    assert not c.may_hold("manager", "important", levels) and c.may_hold("manager", "core", levels)
    assert c.may_hold("assistant", "ordinary", levels) and c.may_hold("assistant", None, levels)
    assert not c.may_hold("general_manager", "ordinary", levels)      # not a holding level
    assert not c.may_hold(None, "ordinary", levels)


def test_workload_area_by_unit_codes_nearest_first(bank):
    c = bank.customers
    assert c.area_of(["NB1", "NB", "EAST", "HQ"]).id == "county"
    assert c.area_of(["HZ1", "HZ", "EAST", "HQ"]).id == "city"      # the default area


@pytest.mark.parametrize("changes, path, problem", [
    ({"customers.tiers.0.min_score": 30}, "customers.tiers[1].min_score", "below the previous tier's (30)"),
    ({"customers.tiers.2.min_score": 10}, "customers.tiers[2].min_score", "must be 0"),
    ({"customers.tiers.0.min_manager_level": "boss"}, "customers.tiers[0].min_manager_level",
     "unknown ladder level 'boss'"),
    ({"customers.tiers.1.id": "important"}, "customers.tiers[1].id", "listed twice"),
    ({"customers.score.0.input": "profit"}, "customers.score[0].input", "unknown input 'profit'"),
    ({"customers.score.0.full_at": 0}, "customers.score[0].full_at", "above 0"),
    ({"customers.floors.0.industries": ["army"]}, "customers.floors[0].industries[0]", "unknown industry"),
    ({"customers.floors.0.at_least": "gold"}, "customers.floors[0].at_least", "unknown tier 'gold'"),
    ({"customers.approval.role": "panel"}, "customers.approval.role", "unknown role 'panel'"),
    ({"customers.approval.org_level": "planet"}, "customers.approval.org_level", "unknown org level"),
    ({"customers.workload.areas.1.units": ["NB", "NB"]}, "customers.workload.areas[1].units[1]",
     "already in area 'county'"),
    ({"customers.workload.areas.0.max": 100}, "customers.workload.areas[0].max", "at least min (140)"),
    ({"customers.leads.classes.0.days": 0}, "customers.leads.classes[0].days", "0"),
    ({"customers.holding_levels": ["boss"]}, "customers.holding_levels[0]", "unknown ladder level"),
    ({"customers.tiers": [{"id": "only", "zh": "唯一", "en": "Only", "min_score": 0}]}, "customers.tiers",
     "at least 2"),
    ({"customers.inputs": DELETE}, "customers.inputs", "is required"),
    ({"customers.colour": "blue"}, "customers.colour", "unknown key"),
])
def test_a_bad_customers_section_is_refused_with_its_path(changes, path, problem):
    error = refused(**changes)
    assert error.source == "bad.yaml" and error.path == path, str(error)
    assert problem in error.problem, str(error)


def test_the_section_is_optional():
    pol = policy_mod.loads(edited(customers=DELETE), "none.yaml")
    assert pol.customers is None and pol.to_json()["customers"] is None
