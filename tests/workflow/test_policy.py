"""Policy files: the shipped one loads; each kind of error is refused with the file, key path and problem."""
from pathlib import Path

import pytest

from workflow import policy as policy_mod
from workflow.policy import PolicyError

from policy_edits import BANK_TEXT, DELETE, edited  # noqa: E402


def test_bank_corporate_is_complete():
    pol = policy_mod.load_file("bank_corporate")
    assert pol.id == "bank_corporate" and pol.org_level_ids == ("hq", "region", "branch", "team")
    assert pol.level_ids == ("assistant", "manager", "senior", "principal", "general_manager", "director")
    assert sum(lv.tiers for lv in pol.ladder) == 17
    assert pol.level("assistant").zh == "助理客户经理"
    assert {lv: pol.step_org_level(lv, "qualification_review") for lv in pol.level_ids} == {
        "assistant": "team", "manager": "team", "senior": "branch", "principal": "region",
        "general_manager": "hq", "director": "hq"}
    assert {lv: pol.step_org_level(lv, "hr_approval") for lv in pol.level_ids} == {
        "assistant": "branch", "manager": "branch", "senior": "branch", "principal": "region",
        "general_manager": "hq", "director": "hq"}
    assert pol.weights == {"supervisor": 30, "panel": 40, "annual_performance": 30}
    assert pol.panel_min_size == 3 and pol.trim_at_least is None and pol.effective_when == "on_approval"
    assert all(s.deadline_days == 5 for s in pol.steps.values())
    assert [r.type for r in pol.rules_for("manager")] == ["months_at_grade", "performance_average",
                                                         "skill_test_passed", "not_in_probation"]
    assert "education_at_least" in [r.type for r in pol.rules_for("senior")]
    assert "education_at_least" not in [r.type for r in pol.rules_for("manager")]


def test_hash_is_stable_and_content_based():
    a, b = policy_mod.loads(BANK_TEXT, "a"), policy_mod.loads(BANK_TEXT + "\n# a comment\n", "b")
    assert a.hash == b.hash and len(a.hash) == 64
    changed = policy_mod.loads(BANK_TEXT.replace("panel_min_size: 3", "panel_min_size: 4"), "c")
    assert changed.hash != a.hash


def test_stored_round_trip():
    pol = policy_mod.load_file("bank_corporate")
    again = policy_mod.from_stored(policy_mod.canonical(pol.document))
    assert again.hash == pol.hash and again.weights == pol.weights


def test_grades():
    pol = policy_mod.load_file("bank_corporate")
    assert pol.parse_grade("senior") == ("senior", 1) and pol.parse_grade("senior-2") == ("senior", 2)
    assert pol.parse_grade("general_manager-3") == ("general_manager", 3)
    for bad in ("", "senior-0", "senior-4", "director-3", "wizard", "senior-x"):
        with pytest.raises(ValueError):
            pol.parse_grade(bad)
    assert pol.next_grades("manager", 2) == [("manager", 3)]
    assert pol.next_grades("manager", 3) == [("senior", 1)]
    assert pol.next_grades("director", 2) == []



ERRORS = [
    ("missing key", {"ladder": DELETE}, "ladder", "is required"),
    ("unknown key", {"ladders": []}, "ladders", "unknown key"),
    ("wrong type", {"ladder": "assistant"}, "ladder", "must be a list"),
    ("bad tiers", {"ladder.0.tiers": 0}, "ladder[0].tiers", "at least 1"),
    ("tiers not whole", {"ladder.0.tiers": 2.5}, "ladder[0].tiers", "whole number"),
    ("duplicate id", {"ladder.1.id": "assistant"}, "ladder[1].id", "duplicate"),
    ("bad id", {"ladder.1.id": "客户经理"}, "ladder[1].id", "ASCII"),
    ("missing translation", {"ladder.1.en": DELETE}, "ladder[1].en", "is required"),
    ("authority level missing", {"authority.director": DELETE}, "authority.director", "is required"),
    ("unknown org level", {"authority.senior.hr_approval": "province"}, "authority.senior.hr_approval",
     "unknown org level"),
    ("unknown role", {"steps.hr_approval.role": "boss"}, "steps.hr_approval.role", "unknown role"),
    ("bad sign", {"steps.hr_approval.sign": "some"}, "steps.hr_approval.sign", "sign mode"),
    ("bad deadline", {"steps.hr_approval.deadline_days": -1}, "steps.hr_approval.deadline_days", "at least"),
    ("unknown rule type", {"eligibility.0.rule": "vibes"}, "eligibility[0].rule", "unknown rule type"),
    ("rule param missing", {"eligibility.0.min": DELETE}, "eligibility[0].min", "is required"),
    ("rule param unknown", {"eligibility.0.max": 3}, "eligibility[0].max", "unknown key"),
    ("rule param type", {"eligibility.1.min": "eighty"}, "eligibility[1].min", "must be a number"),
    ("rule target unknown", {"eligibility.4.targets": ["seniors"]}, "eligibility[4].targets[0]", "unknown level"),
    ("education unknown", {"eligibility.4.min": "kindergarten"}, "eligibility[4].min", "unknown education"),
    ("weights sum", {"scoring.weights": {"supervisor": 0, "panel": 0}}, "scoring.weights", "positive sum"),
    ("weight component", {"scoring.weights.charm": 10}, "scoring.weights.charm", "unknown key"),
    ("trim too small", {"scoring.trim": {"drop_extremes_when_at_least": 2}},
     "scoring.trim.drop_extremes_when_at_least", "at least 3"),
    ("effective", {"effective.when": "someday"}, "effective.when", "unknown value"),
    ("holiday", {"calendar.holidays": ["2026-02-30"]}, "calendar.holidays[0]", "not a date"),
    ("score range", {"scores.performance.max": -5}, "scores.performance.max", "greater than min"),
    ("score kind required", {"scores.skill_test": DELETE}, "scores", "skill_test"),
    ("exceptional", {"exceptional.levels_up": 0}, "exceptional.levels_up", "at least 1"),
]


@pytest.mark.parametrize("what, changes, path, problem", ERRORS, ids=[e[0] for e in ERRORS])
def test_each_kind_of_error_names_file_path_and_problem(what, changes, path, problem):
    with pytest.raises(PolicyError) as exc:
        policy_mod.loads(edited(**changes), "policies/broken.yaml")
    assert exc.value.source == "policies/broken.yaml"
    assert exc.value.path == path, str(exc.value)
    assert problem in exc.value.problem, str(exc.value)
    assert str(exc.value).startswith(f"policies/broken.yaml: {path}: ")


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(PolicyError) as exc:
        policy_mod.loads("policy: x\nladder: [unclosed\n", "bad.yaml")
    assert exc.value.path.startswith("line ") and "YAML" in exc.value.problem


def test_top_level_must_be_a_mapping():
    with pytest.raises(PolicyError, match="must be a mapping"):
        policy_mod.loads("- 1\n- 2\n", "list.yaml")


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(PolicyError, match="bank_corporate"):
        policy_mod.load_file("no_such_policy")


def test_a_path_works(tmp_path):
    path = Path(tmp_path / "mine.yaml")
    path.write_text(BANK_TEXT.replace("policy: bank_corporate", "policy: my_bank"), encoding="utf-8")
    assert policy_mod.load_file(str(path)).id == "my_bank"
