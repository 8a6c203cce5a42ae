"""The lifecycle sections of a policy (probation, demotion, dismissal, misconduct) and their errors."""
import pytest
import yaml

from workflow import policy as policy_mod
from workflow.policy import PolicyError

BANK_TEXT = (policy_mod.POLICY_DIR / "bank_corporate.yaml").read_text(encoding="utf-8")


def with_changes(**changes):
    doc = yaml.safe_load(BANK_TEXT)
    for dotted, value in changes.items():
        node = doc
        *path, last = dotted.split(".")
        for key in path:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(doc, allow_unicode=True)


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
    ({"probation.months": None}, "probation.months", "is required"),
    ({"probation.months": 0}, "probation.months", "at least 1"),
    ({"probation.first_grade": "assistant-9"}, "probation.first_grade", "not a grade"),
    ({"probation.steps.hr_review": None}, "probation.steps.hr_review", "is required"),
    ({"demotion.steps.review.org_level": "planet"}, "demotion.steps.review.org_level", "unknown org level"),
    ({"demotion.steps.review.role": "judge"}, "demotion.steps.review.role", "unknown role"),
    ({"demotion.tier_after": "middle"}, "demotion.tier_after", "unknown value"),
    ({"dismissal.steps.final_approval": None}, "dismissal.steps.final_approval", "is required"),
    ({"dismissal.appeal_days": 0}, "dismissal.appeal_days", "at least 1"),
    ({"dismissal.months": 3}, "dismissal.months", "unknown key"),
    ({"misconduct.severe": ["firing"]}, "misconduct.severe[0]", "unknown sanction"),
    ({"misconduct.minor": None}, "misconduct.minor", "is required"),
]


@pytest.mark.parametrize("changes, path, problem", ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_name_the_key_path(changes, path, problem):
    with pytest.raises(PolicyError) as exc:
        policy_mod.loads(with_changes(**changes), "policies/x.yaml")
    assert exc.value.path == path, str(exc.value)
    assert problem in exc.value.problem, str(exc.value)
