"""The lifecycle sections of a policy (probation, demotion, dismissal, misconduct) and their errors."""
import pytest
import yaml

from workflow import policy as policy_mod
from workflow.policy import PolicyError

from policy_edits import BANK_TEXT, DELETE, edited  # noqa: E402




def test_bank_corporate_lifecycle():
    pol = policy_mod.load_file("bank_corporate")
    prob = pol.kind("probation")
    assert (prob.months, prob.evaluation_lead_days, prob.first_grade, prob.extend_max_months) == (
        12, 7, "assistant-1", 6)
    assert prob.steps["hr_review"].org_level == "branch" and prob.steps["hr_review"].role == "hr"
    assert pol.kind("demotion").appeal_days == 7 and pol.kind("demotion").tier_after == "top"
    assert pol.kind("dismissal").steps["final_approval"].org_level == "region"
    assert pol.sanctions["severe"] == ("dismissal", "demotion")


def test_sections_are_optional():
    doc = yaml.safe_load(BANK_TEXT)
    for key in ("probation", "demotion", "dismissal", "misconduct"):
        del doc[key]
    pol = policy_mod.loads(yaml.safe_dump(doc, allow_unicode=True), "p.yaml")
    assert pol.kinds == {} and pol.sanctions == {}
    with pytest.raises(KeyError):
        pol.kind("probation")


ERRORS = [
    ({"probation.months": DELETE}, "probation.months", "is required"),
    ({"probation.months": 0}, "probation.months", "at least 1"),
    ({"probation.first_grade": "assistant-9"}, "probation.first_grade", "not a grade"),
    ({"probation.steps.hr_review": DELETE}, "probation.steps.hr_review", "is required"),
    ({"demotion.steps.review.org_level": "planet"}, "demotion.steps.review.org_level", "unknown org level"),
    ({"demotion.steps.review.role": "judge"}, "demotion.steps.review.role", "unknown role"),
    ({"demotion.tier_after": "middle"}, "demotion.tier_after", "unknown value"),
    ({"dismissal.steps.final_approval": DELETE}, "dismissal.steps.final_approval", "is required"),
    ({"dismissal.appeal_days": 0}, "dismissal.appeal_days", "at least 1"),
    ({"dismissal.months": 3}, "dismissal.months", "unknown key"),
    ({"misconduct.severe": ["firing"]}, "misconduct.severe[0]", "unknown sanction"),
    ({"misconduct.minor": DELETE}, "misconduct.minor", "is required"),
]


@pytest.mark.parametrize("changes, path, problem", ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_name_the_key_path(changes, path, problem):
    with pytest.raises(PolicyError) as exc:
        policy_mod.loads(edited(**changes), "policies/x.yaml")
    assert exc.value.path == path, str(exc.value)
    assert problem in exc.value.problem, str(exc.value)
