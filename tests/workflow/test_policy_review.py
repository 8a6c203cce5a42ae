"""The `annual_review` key of a policy: optional, defaulted, read by the three shipped policies, and each kind
of error refused with the file, the key path and the problem."""
import pytest

from workflow import policy as policy_mod
from workflow.policy import LEAVE_REASONS, PolicyError

from policy_edits import BANK_TEXT, DELETE, edited  # noqa: E402


def test_the_shipped_policies():
    bank = policy_mod.load_file("bank_corporate").annual_review
    assert bank.ranking_scope == "branch" and bank.min_worked_months == 2
    assert bank.recompete == {lv: 10 for lv in ("manager", "senior", "principal", "general_manager",
                                                "director")}
    assert bank.exempt_reasons == LEAVE_REASONS
    quzhou = policy_mod.load_file("mobile_quzhou").annual_review
    assert (quzhou.ranking_scope, quzhou.recompete) == ("district", {"intermediate": 30, "senior": 50})
    jilin = policy_mod.load_file("mobile_jilin").annual_review
    assert (jilin.ranking_scope, jilin.recompete) == ("city", {"intermediate": 10, "senior": 10})
    shown = policy_mod.load_file("mobile_quzhou").to_json()["annual_review"]
    assert shown == {"ranking_scope": "district", "recompete": {"intermediate": 30, "senior": 50},
                     "min_worked_months": 2, "exempt_reasons": ["maternity", "sick", "personal"]}


def test_the_section_is_optional_and_its_keys_have_defaults():
    assert policy_mod.loads(edited(annual_review=DELETE)).annual_review is None
    assert policy_mod.loads(edited(annual_review=DELETE)).to_json()["annual_review"] is None
    ar = policy_mod.loads(edited(annual_review={"ranking_scope": "region"})).annual_review
    assert (ar.ranking_scope, ar.recompete, ar.min_worked_months, ar.exempt_reasons) == (
        "region", {}, 2, LEAVE_REASONS)
    ar = policy_mod.loads(edited(**{"annual_review.exempt_reasons": [],
                                    "annual_review.min_worked_months": 1.5}))
    assert ar.annual_review.exempt_reasons == () and ar.annual_review.min_worked_months == 1.5


def test_the_section_changes_the_hash():
    a = policy_mod.loads(BANK_TEXT)
    assert policy_mod.loads(edited(**{"annual_review.recompete.senior": 20})).hash != a.hash


ERRORS = [
    ("not a mapping", {"annual_review": "yearly"}, "annual_review", "must be a mapping"),
    ("unknown key", {"annual_review.bottom": 10}, "annual_review.bottom", "unknown key"),
    ("scope missing", {"annual_review.ranking_scope": DELETE}, "annual_review.ranking_scope", "is required"),
    ("scope not an org level", {"annual_review.ranking_scope": "district"}, "annual_review.ranking_scope",
     "unknown org level 'district'"),
    ("recompete not a mapping", {"annual_review.recompete": [10]}, "annual_review.recompete",
     "must be a mapping"),
    ("recompete of an unknown level", {"annual_review.recompete.wizard": 10},
     "annual_review.recompete.wizard", "unknown key"),
    ("recompete of the lowest level", {"annual_review.recompete.assistant": 10},
     "annual_review.recompete.assistant", "is the lowest level"),
    ("percent not a number", {"annual_review.recompete.senior": "10%"}, "annual_review.recompete.senior",
     "must be a number"),
    ("percent above 100", {"annual_review.recompete.senior": 120}, "annual_review.recompete.senior",
     "at most 100"),
    ("percent below 0", {"annual_review.recompete.senior": -5}, "annual_review.recompete.senior",
     "at least 0"),
    ("months not a number", {"annual_review.min_worked_months": "two"}, "annual_review.min_worked_months",
     "must be a number"),
    ("months above a year", {"annual_review.min_worked_months": 13}, "annual_review.min_worked_months",
     "at most 12"),
    ("reasons not a list", {"annual_review.exempt_reasons": "sick"}, "annual_review.exempt_reasons",
     "must be a list"),
    ("other absence exempts", {"annual_review.exempt_reasons": ["sick", "other"]},
     "annual_review.exempt_reasons[1]", "unknown leave reason 'other'"),
    ("a reason twice", {"annual_review.exempt_reasons": ["sick", "sick"]}, "annual_review.exempt_reasons[1]",
     "listed twice"),
]


@pytest.mark.parametrize("what, changes, path, problem", ERRORS, ids=[e[0] for e in ERRORS])
def test_each_kind_of_error_names_file_path_and_problem(what, changes, path, problem):
    with pytest.raises(PolicyError) as exc:
        policy_mod.loads(edited(**changes), "policies/broken.yaml")
    assert exc.value.source == "policies/broken.yaml"
    assert exc.value.path == path, str(exc.value)
    assert problem in exc.value.problem, str(exc.value)
    assert str(exc.value).startswith(f"policies/broken.yaml: {path}: ")
