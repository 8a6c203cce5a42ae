"""附件 and paper panel forms in the engine: `attach` (no state change, checksum in the audit chain) and
`score_for` (HR enters a panel member's score from the paper form, for the member)."""
import pytest

from workflow import attachments, audit, authority, engine
from workflow.errors import Conflict, Forbidden, Invalid, Refused
from workflow.machines import rulebook
from workflow.models import db, Attachment, Person, RoleAssignment

PDF = b"%PDF-1.4\n% a certificate\n"


def p(username):
    return db.session.query(Person).filter_by(username=username).one()


def stored(tmp_path, data=PDF, name="证书.pdf"):
    return attachments.store(tmp_path, name, "application/pdf", data)


def test_attach_records_the_checksum_in_the_audit_chain(walk, tmp_path):
    case = walk.file()
    version, state = case.version, case.state
    f = stored(tmp_path)
    walk.act(case, "attach", "emp", file=f)
    ev = case.events[-1]
    assert ev.action == "attach" and ev.from_state == ev.to_state == state
    assert ev.data["sha256"] == attachments.checksum(PDF) and ev.data["filename"] == "证书.pdf"
    assert case.version == version + 1
    row = db.session.get(Attachment, ev.data["attachment"])
    assert (row.case_id, row.uploaded_by.username, row.size, row.sha256) == (case.id, "emp", len(PDF), f.sha256)
    assert attachments.read_verified(tmp_path, row) == PDF
    assert (tmp_path / f.sha256[:2] / f.sha256).read_bytes() == PDF
    assert audit.verify().ok


def test_who_may_attach(walk, tmp_path):
    case = walk.file()
    rb = rulebook("promotion")
    assert authority.can(p("emp"), case, "attach", rb)            # the applicant
    assert authority.can(p("appr_b1"), case, "attach", rb)        # the current assignee
    assert authority.can(p("hr_b1"), case, "attach", rb)          # HR over the case
    for outsider in ("emp2", "panel1", "appr_t2"):
        assert not authority.can(p(outsider), case, "attach", rb)
    with pytest.raises(Forbidden):
        engine.fire(case, "attach", p("emp2"), {"file": stored(tmp_path)})
    db.session.rollback()
    walk.act(case, "withdraw", "emp")
    with pytest.raises(Conflict):
        engine.fire(case, "attach", p("emp"), {"file": stored(tmp_path)})


def test_a_json_body_cannot_name_a_stored_file(walk, tmp_path):
    case = walk.file()
    f = stored(tmp_path)
    with pytest.raises(Invalid):
        engine.fire(case, "attach", p("emp"), {"file": {"sha256": f.sha256, "filename": "x.pdf"}})
    db.session.rollback()
    assert db.session.query(Attachment).count() == 0


def test_a_changed_file_is_refused_on_reading(walk, tmp_path):
    case = walk.file()
    walk.act(case, "attach", "emp", file=stored(tmp_path))
    row = db.session.query(Attachment).one()
    (tmp_path / row.sha256[:2] / row.sha256).write_bytes(PDF.replace(b"certificate", b"forged cert"))
    with pytest.raises(Refused, match="checksum"):
        attachments.read_verified(tmp_path, row)


def test_probation_cases_take_attachments(bank, tmp_path):
    trainee = p("emp2")
    trainee.status = "probation"
    case = engine.open_probation(trainee, p("hr_b1"))
    engine.fire(case, "attach", p("hr_b1"), {"file": stored(tmp_path)})
    db.session.commit()
    assert case.events[-1].action == "attach" and case.events[-1].role == "hr"


# --- score_for -----------------------------------------------------------------------------------------

def at_panel(walk):
    case = walk.file()
    walk.to_panel(case)
    walk.act(case, "assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
    return case


def test_hr_enters_a_paper_score_for_a_member(walk):
    case = at_panel(walk)
    walk.act(case, "score_for", "hr_b1", member="panel2", score=77, comment="纸质评价表")
    ev = case.events[-1]
    assert ev.action == "score_for" and ev.actor == "hr_b1" and ev.role == "hr"
    assert ev.data["member"] == "panel2" and ev.data["entered_by"] == "hr_b1" and ev.data["paper_form"]
    assert ev.data["decided_by"] == p("panel2").id
    score = next(s for s in case.scores if s.component == "panel")
    assert (score.scorer.username, score.value) == ("panel2", 77)
    assert "panel2" not in {a.person.username for a in case.assignments}      # counts as having scored
    with pytest.raises(Forbidden, match="already scored"):
        engine.fire(case, "score", p("panel2"), {"score": 50})
    db.session.rollback()
    with pytest.raises(Refused, match="already scored"):
        engine.fire(case, "score_for", p("hr_b1"), {"member": "panel2", "score": 50})
    db.session.rollback()
    # The others score; the case moves on with the member's paper score in the composite.
    walk.act(case, "score", "panel1", score=80)
    walk.act(case, "score_for", "hr_b1", member="panel3", score=70)
    walk.act(case, "supervisor_score", "sup_t1", score=88)
    assert case.state == "hr_approval"
    # HR who typed the paper scores in is no decider: it still approves (four eyes binds the member).
    assert engine.available_actions(case, p("hr_b1")) and "approve" in engine.available_actions(case, p("hr_b1"))
    assert p("panel2").id in engine.exclusions(case, "hr_approval")
    assert p("hr_b1").id not in engine.exclusions(case, "hr_approval")
    assert audit.verify().ok


def test_only_hr_over_the_unit_enters_paper_scores(walk):
    case = at_panel(walk)
    rb = rulebook("promotion")
    assert authority.can(p("hr_b1"), case, "score_for", rb)
    assert authority.can(p("hr_r1"), case, "score_for", rb)             # HR above the unit
    for who in ("panel1", "appr_b1", "sup_t1", "emp", "emp2"):
        assert not authority.can(p(who), case, "score_for", rb), who
    with pytest.raises(Forbidden):
        engine.fire(case, "score_for", p("panel1"), {"member": "panel2", "score": 60})
    db.session.rollback()


def test_the_member_must_sit_on_the_panel_and_be_free_of_conflict(walk):
    case = at_panel(walk)
    for member, error in [("panel4", "does not sit on the panel"), ("nobody", "does not sit on the panel"),
                          ("", "member must be"), (None, "member must be")]:
        with pytest.raises((Refused, Invalid), match=error):
            engine.fire(case, "score_for", p("hr_b1"), {"member": member, "score": 60})
        db.session.rollback()
    with pytest.raises(Refused, match="from 0 to 100"):
        engine.fire(case, "score_for", p("hr_b1"), {"member": "panel1", "score": 101})
    db.session.rollback()
    # A member who declared a conflict is off the case: HR cannot score for them either.
    walk.act(case, "declare_conflict", "panel1", comment="同一团队")
    with pytest.raises(Refused):
        engine.fire(case, "score_for", p("hr_b1"), {"member": "panel1", "score": 60})
    db.session.rollback()
    assert case.events[-1].action == "declare_conflict"


def test_hr_on_the_panel_gives_its_own_score_not_a_paper_one(walk, bank):
    db.session.add(RoleAssignment(person=p("hr_b1"), role="panel", unit=bank["units"]["B1"]))
    db.session.commit()
    case = walk.file()
    walk.to_panel(case)
    walk.act(case, "assign_panel", "hr_b1", members=["hr_b1", "panel2", "panel3"])
    with pytest.raises(Refused, match="your own score"):
        engine.fire(case, "score_for", p("hr_b1"), {"member": "hr_b1", "score": 60})
    db.session.rollback()
    walk.act(case, "score", "hr_b1", score=60)
    assert case.events[-1].action == "score"
