"""The round keys of a policy (`ratios`, `rounds`): optional, defaulted, and each kind of error refused with
the file, the key path and the problem."""
import pytest

from workflow import policy as policy_mod
from workflow.policy import PolicyError, TIE_BREAK_KEYS

from policy_edits import BANK_TEXT, DELETE, edited  # noqa: E402


def test_bank_corporate_ratios_and_rounds():
    pol = policy_mod.load_file("bank_corporate")
    assert {lv: (r.kind, r.share) for lv, r in pol.ratios.items()} == {
        "assistant": ("target", 0.35), "manager": ("target", 0.36), "senior": ("cap", 0.15),
        "principal": ("cap", 0.08), "general_manager": ("cap", 0.04), "director": ("cap", 0.02)}
    assert pol.cap("senior") == 0.15 and pol.cap("manager") is None
    assert pol.round_min_composite == 60
    assert pol.tie_break == ("composite", "annual_performance", "months_at_grade", "applied_at")
    shown = pol.to_json()
    assert shown["ratios"]["senior"] == {"cap": 0.15} and shown["ratios"]["manager"] == {"target": 0.36}
    assert shown["rounds"] == {"min_composite": 60, "tie_break": list(TIE_BREAK_KEYS)}


def test_both_keys_are_optional():
    pol = policy_mod.loads(edited(ratios=DELETE, rounds=DELETE), "plain.yaml")
    assert pol.ratios == {} and pol.round_min_composite is None and pol.tie_break == TIE_BREAK_KEYS
    assert pol.cap("senior") is None


def test_a_null_minimum_and_another_tie_break():
    pol = policy_mod.loads(edited(**{"rounds.min_composite": None,
                                     "rounds.tie_break": ["composite", "months_at_grade", "applied_at"]}))
    assert pol.round_min_composite is None
    assert pol.tie_break == ("composite", "months_at_grade", "applied_at")


def test_the_round_keys_change_the_hash():
    a = policy_mod.loads(BANK_TEXT)
    assert policy_mod.loads(edited(**{"ratios.senior.cap": 0.1})).hash != a.hash
    assert policy_mod.loads(edited(**{"rounds.min_composite": 70})).hash != a.hash


ERRORS = [
    ("ratios not a mapping", {"ratios": [0.15]}, "ratios", "must be a mapping"),
    ("ratio of an unknown level", {"ratios.wizard": {"cap": 0.1}}, "ratios.wizard", "unknown key"),
    ("ratio not a mapping", {"ratios.senior": 0.15}, "ratios.senior", "must be a mapping"),
    ("ratio of an unknown kind", {"ratios.senior": {"limit": 0.15}}, "ratios.senior.limit", "unknown key"),
    ("ratio with cap and target", {"ratios.senior": {"cap": 0.15, "target": 0.1}}, "ratios.senior",
     "exactly one of cap"),
    ("ratio with neither", {"ratios.senior": {}}, "ratios.senior", "exactly one of cap"),
    ("share not a number", {"ratios.senior.cap": "15%"}, "ratios.senior.cap", "must be a number"),
    ("share above 1", {"ratios.senior.cap": 15}, "ratios.senior.cap", "at most 1"),
    ("share below 0", {"ratios.manager.target": -0.1}, "ratios.manager.target", "at least 0"),
    ("shares above 100%", {"ratios.assistant.target": 0.9}, "ratios", "more than 1"),
    ("rounds not a mapping", {"rounds": "yearly"}, "rounds", "must be a mapping"),
    ("rounds unknown key", {"rounds.quota": 5}, "rounds.quota", "unknown key"),
    ("minimum not a number", {"rounds.min_composite": "sixty"}, "rounds.min_composite", "must be a number"),
    ("minimum above 100", {"rounds.min_composite": 120}, "rounds.min_composite", "at most 100"),
    ("tie-break not a list", {"rounds.tie_break": "composite"}, "rounds.tie_break", "must be a list"),
    ("tie-break empty", {"rounds.tie_break": []}, "rounds.tie_break", "at least 1"),
    ("tie-break unknown key", {"rounds.tie_break": ["composite", "charm"]}, "rounds.tie_break[1]",
     "unknown tie-break key"),
    ("tie-break twice", {"rounds.tie_break": ["composite", "applied_at", "applied_at"]},
     "rounds.tie_break[2]", "listed twice"),
    ("tie-break not composite first", {"rounds.tie_break": ["applied_at", "composite"]},
     "rounds.tie_break[0]", "must be composite"),
]


@pytest.mark.parametrize("what, changes, path, problem", ERRORS, ids=[e[0] for e in ERRORS])
def test_each_kind_of_error_names_file_path_and_problem(what, changes, path, problem):
    with pytest.raises(PolicyError) as exc:
        policy_mod.loads(edited(**changes), "policies/broken.yaml")
    assert exc.value.source == "policies/broken.yaml"
    assert exc.value.path == path, str(exc.value)
    assert problem in exc.value.problem, str(exc.value)
    assert str(exc.value).startswith(f"policies/broken.yaml: {path}: ")
