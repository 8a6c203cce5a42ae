import pytest

from workflow import engine
from workflow.models import db, Person


@pytest.fixture
def walk(bank):
    """Helpers that move a case through the engine as the named people, committing each step."""
    def p(username):
        return db.session.query(Person).filter_by(username=username).one()

    def act(case, action, who, **data):
        actor = p(who) if who else None
        engine.fire(case, action, actor, data)
        db.session.commit()
        return case

    def to_panel(case, approver="appr_b1"):
        return act(case, "qualify", approver)

    def to_hr(case, members=("panel1", "panel2", "panel3"), scores=(80, 90, 70), supervisor=88, hr="hr_b1",
              approver="appr_b1"):
        to_panel(case, approver)
        act(case, "assign_panel", hr, members=list(members))
        for m, s in zip(members, scores):
            act(case, "score", m, score=s)
        sup = next(a.person.username for a in case.assignments if a.duty == "supervisor")
        return act(case, "supervisor_score", sup, score=supervisor)

    def file(who="emp", target="senior", filer=None, **kw):
        case = engine.create_promotion(p(filer or who), p(who), target, "申请晋级", **kw)
        db.session.commit()
        return case

    return type("Walk", (), {"act": staticmethod(act), "to_panel": staticmethod(to_panel),
                             "to_hr": staticmethod(to_hr), "file": staticmethod(file)})
