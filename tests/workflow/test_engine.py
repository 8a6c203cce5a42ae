"""The promotion engine: its transition table, guards, effects, four eyes and policy versions."""
import datetime as dt
from pathlib import Path

import pytest
import yaml

from workflow import attachments, clock, engine, policy as policy_mod
from workflow.errors import Conflict, Forbidden, Invalid, NotFound, Refused
from workflow.machines import rulebook
from workflow.models import db, GradeHistory, Person, RoleAssignment

BANK = Path(policy_mod.POLICY_DIR / "bank_corporate.yaml")


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def variant(tmp_path, **changes):
    """bank_corporate with some keys changed, as a new policy file."""
    doc = yaml.safe_load(BANK.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node = doc
        *path, last = dotted.split(".")
        for key in path:
            node = node[key]
        node[last] = value
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return policy_mod.load_file(str(path))


def state_at(walk, where):
    """A fresh case of `emp` (manager-3 -> senior-1) brought to a state."""
    case = walk.file()
    if where == "returned":
        walk.act(case, "return", "appr_b1", comment="补充材料")
    elif where == "panel_scoring":
        walk.to_panel(case)
    elif where == "hr_approval":
        walk.to_hr(case)
    elif where == "effective":
        walk.to_hr(case)
        walk.act(case, "approve", "hr_b1")
    elif where == "rejected":
        walk.act(case, "reject", "appr_b1", comment="不符合条件")
    elif where == "withdrawn":
        walk.act(case, "withdraw", "emp")
    elif where == "appeal_review":
        walk.act(case, "reject", "appr_b1", comment="不符合条件")
        walk.act(case, "appeal", "emp", statement="业绩证明已补充")
    assert case.state == where
    return case


STORED = attachments.Stored(filename="证书.pdf", content_type="application/pdf", size=10, sha256="a" * 64)

# (state, action, actor, data) -> new state, or the refusal raised.
TABLE = [
    ("qualification_review", "qualify", "appr_b1", {}, "panel_scoring"),
    ("qualification_review", "qualify", "appr_t1", {}, Forbidden),        # not the authority for senior
    ("qualification_review", "qualify", "emp", {}, Forbidden),            # nobody decides their own case
    ("qualification_review", "qualify", "hr_b1", {}, Forbidden),
    ("qualification_review", "return", "appr_b1", {"comment": "补充业绩证明"}, "returned"),
    ("qualification_review", "return", "appr_b1", {}, Refused),            # a comment is required
    ("qualification_review", "reject", "appr_b1", {"comment": "不符合"}, "rejected"),
    ("qualification_review", "reject", "appr_b1", {"comment": "   "}, Refused),
    ("qualification_review", "approve", "hr_b1", {}, Conflict),
    ("qualification_review", "withdraw", "emp", {}, "withdrawn"),
    ("qualification_review", "withdraw", "appr_b1", {}, Forbidden),
    ("qualification_review", "score", "panel1", {"score": 80}, Conflict),
    ("returned", "resubmit", "emp", {"statement": "已补充"}, "qualification_review"),
    ("returned", "resubmit", "appr_b1", {}, Forbidden),
    ("returned", "withdraw", "emp", {}, "withdrawn"),
    ("returned", "qualify", "appr_b1", {}, Conflict),
    ("panel_scoring", "assign_panel", "hr_b1", {"members": ["panel1", "panel2", "panel3"]}, "panel_scoring"),
    ("panel_scoring", "assign_panel", "hr_b1", {"members": ["panel1", "panel2"]}, Refused),   # below minimum
    ("panel_scoring", "assign_panel", "hr_b1", {"members": ["panel1", "panel2", "sup_t1"]}, Refused),
    ("panel_scoring", "assign_panel", "hr_b1", {"members": ["panel1", "panel2", "emp"]}, Refused),
    ("panel_scoring", "assign_panel", "hr_b1", {"members": ["panel1", "panel2", "appr_b1"]}, Refused),
    ("panel_scoring", "assign_panel", "hr_b1", {"members": ["panel1", "panel2", "nobody"]}, Refused),
    ("panel_scoring", "assign_panel", "hr_b1", {"members": "panel1"}, Invalid),
    ("panel_scoring", "assign_panel", "appr_b1", {"members": ["panel1", "panel2", "panel3"]}, Forbidden),
    ("panel_scoring", "assign_panel", "hr_b1", {"members": ["panel1", "panel2", "panel_hq"]}, "panel_scoring"),
    ("panel_scoring", "score", "panel1", {"score": 80}, Forbidden),        # not on a panel yet
    ("panel_scoring", "supervisor_score", "sup_t1", {"score": 90}, "panel_scoring"),
    ("panel_scoring", "supervisor_score", "sup_t1", {"score": 101}, Refused),
    ("panel_scoring", "supervisor_score", "sup_t1", {"score": "abc"}, Invalid),
    ("panel_scoring", "supervisor_score", "sup_b1", {"score": 90}, Forbidden),
    ("panel_scoring", "withdraw", "emp", {}, "withdrawn"),
    ("panel_scoring", "approve", "hr_b1", {}, Conflict),
    ("hr_approval", "approve", "hr_b1", {}, "effective"),
    ("hr_approval", "approve", "hr_r1", {}, Forbidden),
    ("hr_approval", "reject", "hr_b1", {"comment": "名额不足"}, "rejected"),
    ("hr_approval", "withdraw", "emp", {}, "withdrawn"),
    ("hr_approval", "not_select", "hr_b1", {}, Forbidden),              # only inside a round's decision
    ("panel_scoring", "not_select", "hr_b1", {}, Conflict),
    ("hr_approval", "qualify", "appr_b1", {}, Conflict),
    ("effective", "withdraw", "emp", {}, Conflict),
    ("effective", "approve", "hr_b1", {}, Conflict),
    ("rejected", "resubmit", "emp", {}, Conflict),
    ("rejected", "appeal", "emp", {"statement": "我的业绩达标"}, "appeal_review"),
    ("rejected", "appeal", "emp", {}, Refused),                          # a statement is required
    ("rejected", "appeal", "appr_b1", {"statement": "x"}, Forbidden),   # only the applicant appeals
    ("appeal_review", "sustain", "appr_r1", {"comment": "维持原决定"}, "rejected"),
    ("appeal_review", "reinstate", "appr_r1", {"comment": "材料齐全"}, "qualification_review"),
    ("appeal_review", "reinstate", "appr_r1", {}, Refused),
    ("appeal_review", "sustain", "appr_b1", {"comment": "x"}, Forbidden),   # the rejecter does not hear it
    ("appeal_review", "withdraw", "emp", {}, "withdrawn"),
    ("withdrawn", "qualify", "appr_b1", {}, Conflict),
    # 加签 (before or after oneself) and 退回 to a step the case passed (tests/workflow/test_idioms.py)
    ("qualification_review", "add_signer", "appr_b1", {"person": "appr_r1", "position": "before"},
     "qualification_review"),
    ("qualification_review", "add_signer", "appr_b1", {"person": "appr_t1", "position": "after"}, Refused),
    ("qualification_review", "add_signer", "appr_b1", {"person": "appr_r1", "position": "aside"}, Invalid),
    ("qualification_review", "add_signer", "hr_b1", {"person": "appr_r1", "position": "after"}, Forbidden),
    ("hr_approval", "send_back", "hr_b1", {"comment": "资格需复核", "to_step": "qualification_review"},
     "qualification_review"),
    ("hr_approval", "send_back", "hr_b1", {"comment": "x", "to_step": "panel_scoring"}, Refused),
    ("hr_approval", "send_back", "hr_b1", {"to_step": "qualification_review"}, Refused),
    ("qualification_review", "send_back", "appr_b1", {"comment": "x", "to_step": "qualification_review"},
     Conflict),
    # 附件 (a file already stored; tests/workflow/test_paper_and_attachments.py) and HR's paper panel score
    ("qualification_review", "attach", "emp", {"file": STORED}, "qualification_review"),
    ("qualification_review", "attach", "appr_b1", {}, Invalid),             # a JSON body names no stored file
    ("qualification_review", "attach", "emp2", {"file": STORED}, Forbidden),
    ("withdrawn", "attach", "emp", {"file": STORED}, Conflict),
    ("panel_scoring", "score_for", "hr_b1", {"member": "panel1", "score": 70}, Refused),   # no panel yet
    ("panel_scoring", "score_for", "panel1", {"member": "panel1", "score": 70}, Forbidden),
    ("hr_approval", "score_for", "hr_b1", {"member": "panel1", "score": 70}, Conflict),
    # 转办 within the authority matrix and 抄送 for information (tests/workflow/test_delegation.py)
    ("qualification_review", "hand_over", "appr_b1", {"to": "appr_r1", "comment": "出差"}, "qualification_review"),
    ("qualification_review", "hand_over", "appr_b1", {"to": "hr_b1", "comment": "出差"}, Refused),
    ("qualification_review", "hand_over", "hr_b1", {"to": "appr_r1", "comment": "出差"}, Forbidden),
    ("effective", "hand_over", "hr_b1", {"to": "hr_r1", "comment": "x"}, Conflict),
    ("qualification_review", "copy", "appr_b1", {"to": "panel5"}, "qualification_review"),
    ("effective", "copy", "hr_b1", {"to": "panel5"}, "effective"),
    ("qualification_review", "copy", "emp", {"to": "panel5"}, Forbidden),
    ("qualification_review", "copy", "appr_b1", {"to": "emp"}, Refused),
    ("qualification_review", "fly", "appr_b1", {}, NotFound),
    ("qualification_review", "scoring_complete", "appr_b1", {}, NotFound),
]


@pytest.mark.parametrize("state, action, actor, data, expected", TABLE,
                         ids=[f"{t[0]}-{t[1]}-{t[2]}-{i}" for i, t in enumerate(TABLE)])
def test_transition_table(bank, walk, state, action, actor, data, expected):
    case = state_at(walk, state)
    version = case.version
    if isinstance(expected, str):
        engine.fire(case, action, person(actor), data)
        db.session.commit()
        assert case.state == expected
        assert case.version > version
        assert case.events[-1].action == action and case.events[-1].actor == actor
    else:
        with pytest.raises(expected):
            engine.fire(case, action, person(actor), data)
        db.session.rollback()
        db.session.refresh(case)
        assert (case.state, case.version) == (state, version)


def test_table_covers_every_action_of_the_rulebook():
    actions = {row[1] for row in TABLE}
    people_actions = {a for a, duty in rulebook("promotion").actors.items() if duty != "system"}
    # make_effective, declare_conflict and the publicity's object/uphold/overturn have tests of their own
    assert people_actions - {"make_effective", "declare_conflict", "object", "uphold", "overturn"} <= actions


def test_composite_uses_the_policy_weights(bank, walk):
    case = walk.to_hr(walk.file(), scores=(80, 90, 70), supervisor=88)
    # supervisor 30, panel 40, annual performance 30 (emp's 2025 monthly mean is 85)
    assert case.annual_performance == 85
    assert case.composite == round((30 * 88 + 40 * 80 + 30 * 85) / 100, 2)
    assert case.events[-1].action == "scoring_complete" and case.events[-1].actor == "system"


def test_trimming_drops_highest_and_lowest(bank, walk, tmp_path):
    pol = variant(tmp_path, **{"scoring.trim": {"drop_extremes_when_at_least": 5}})
    engine.activate_policy(pol, "variant")
    db.session.commit()
    case = walk.file()
    walk.to_hr(case, members=("panel1", "panel2", "panel3", "panel4", "panel5"), scores=(100, 80, 82, 84, 10),
               supervisor=90)
    # trimmed panel mean: (80 + 82 + 84) / 3 = 82
    assert case.composite == round((30 * 90 + 40 * 82 + 30 * 85) / 100, 2)


def test_no_trimming_below_the_threshold(bank, walk, tmp_path):
    engine.activate_policy(variant(tmp_path, **{"scoring.trim": {"drop_extremes_when_at_least": 5}}), "v")
    db.session.commit()
    case = walk.to_hr(walk.file(), scores=(100, 80, 60), supervisor=90)
    assert case.composite == round((30 * 90 + 40 * 80 + 30 * 85) / 100, 2)


def test_a_case_finishes_under_the_policy_it_started_under(bank, walk, tmp_path):
    case = walk.file()
    started = case.policy_version.hash
    other = variant(tmp_path, **{"scoring.weights": {"supervisor": 50, "panel": 25, "annual_performance": 25}})
    engine.activate_policy(other, "other")
    db.session.commit()
    walk.to_hr(case, scores=(80, 90, 70), supervisor=88)
    assert case.policy_version.hash == started != other.hash
    assert case.composite == round((30 * 88 + 40 * 80 + 30 * 85) / 100, 2)      # the old weights
    new_case = walk.file("emp2", "manager-2")
    assert new_case.policy_version.hash == other.hash


def test_effective_when_approved_changes_the_grade(bank, walk):
    case = walk.to_hr(walk.file())
    walk.act(case, "approve", "hr_b1")
    emp = person("emp")
    assert (case.state, emp.grade, emp.grade_since) == ("effective", "senior-1", clock.today())
    hist = db.session.query(GradeHistory).filter_by(person_id=emp.id).one()
    assert (hist.from_grade, hist.to_grade, hist.case_id) == ("manager-3", "senior-1", case.id)
    assert case.closed and case.step_unit is None and case.assignments == []


def test_effective_on_the_first_of_next_month(bank, walk, tmp_path):
    engine.activate_policy(variant(tmp_path, **{"effective.when": "first_of_next_month"}), "jilin-like")
    db.session.commit()
    case = walk.to_hr(walk.file())
    walk.act(case, "approve", "hr_b1")
    assert case.state == "approved" and case.effective_on == dt.date(2026, 4, 1)
    assert case.deadline == dt.date(2026, 4, 1)
    assert person("emp").grade == "manager-3"
    with pytest.raises(Refused, match="2026-04-01"):
        engine.fire(case, "make_effective", person("hr_b1"))
    db.session.rollback()
    assert engine.due_for_tick(dt.date(2026, 3, 31)) == []
    assert engine.due_for_tick(dt.date(2026, 4, 1)) == [(case.id, "make_effective")]
    engine.fire(case, "make_effective", None, today=dt.date(2026, 4, 1))
    db.session.commit()
    emp = person("emp")
    assert (case.state, emp.grade, emp.grade_since) == ("effective", "senior-1", dt.date(2026, 4, 1))
    assert case.events[-1].actor == "system"


def test_four_eyes_the_qualifier_takes_no_later_decision(bank, make_person, walk):
    # appr_b1 also holds hr@B1: having qualified, they may not approve; HR goes to the other holder.
    db.session.add(RoleAssignment(person=person("appr_b1"), role="hr", unit=bank["units"]["B1"]))
    db.session.commit()
    case = walk.file()
    walk.to_hr(case)
    assert [p.username for p in case.assignee_people("decide")] == ["hr_b1"]
    with pytest.raises(Forbidden):
        engine.fire(case, "approve", person("appr_b1"))
    db.session.rollback()


def test_four_eyes_a_panel_member_cannot_approve(bank, walk):
    case = walk.file()
    # hr_b1 also sits on panels: scoring the case excludes them from HR approval, which goes up to R1.
    db.session.add(RoleAssignment(person=person("hr_b1"), role="panel", unit=bank["units"]["B1"]))
    db.session.commit()
    walk.to_hr(case, members=("panel1", "panel2", "hr_b1"))
    assert (case.step_unit.code, case.routing_reason) == ("R1", "conflict")
    assert [p.username for p in case.assignee_people("decide")] == ["hr_r1"]


def test_panel_scores_once(bank, walk):
    case = walk.file()
    walk.to_panel(case)
    walk.act(case, "assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
    walk.act(case, "score", "panel1", score=70)
    with pytest.raises(Forbidden, match="already scored"):
        engine.fire(case, "score", person("panel1"), {"score": 90})
    db.session.rollback()


def test_reassigning_the_panel_keeps_who_scored(bank, walk):
    case = walk.file()
    walk.to_panel(case)
    walk.act(case, "assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
    walk.act(case, "score", "panel1", score=70)
    walk.act(case, "assign_panel", "hr_b1", members=["panel4", "panel5"])
    assert [m.person.username for m in case.panel] == ["panel1", "panel4", "panel5"]
    assert {p.username for p in case.assignee_people("panel")} == {"panel4", "panel5"}


def test_sign_all_needs_every_assignee(bank, make_person, walk, tmp_path):
    engine.activate_policy(variant(tmp_path, **{"steps.qualification_review.sign": "all"}), "countersign")
    make_person("appr_b1b", bank["units"]["B1"], roles=["approver@B1"])
    db.session.commit()
    case = walk.file()
    assert {p.username for p in case.assignee_people()} == {"appr_b1", "appr_b1b"}
    walk.act(case, "qualify", "appr_b1")
    assert case.state == "qualification_review"
    assert [p.username for p in case.assignee_people()] == ["appr_b1b"]
    walk.act(case, "qualify", "appr_b1b")
    assert case.state == "panel_scoring"


def test_return_and_resubmit(bank, walk):
    case = walk.file()
    walk.act(case, "return", "appr_b1", comment="请补充2025年业绩")
    assert case.step_unit.code == "T1" and [p.username for p in case.assignee_people()] == ["emp"]
    walk.act(case, "resubmit", "emp", statement="已补充")
    assert case.state == "qualification_review" and case.statement == "已补充"
    assert case.assignee_people()[0].username == "appr_b1"


class TestFiling:
    def test_skip_needs_exceptional(self, bank, walk):
        with pytest.raises(Refused, match="skips"):
            walk.file("emp2", "senior")

    def test_not_above_current(self, bank, walk):
        with pytest.raises(Refused, match="not above"):
            walk.file("emp2", "manager-1")

    def test_unknown_grade(self, bank, walk):
        with pytest.raises(Refused, match="unknown level"):
            walk.file("emp2", "wizard")
        with pytest.raises(Refused, match="tiers 1 to 3"):
            walk.file("emp2", "manager-7")

    def test_ineligible_names_the_rules(self, bank, walk):
        with pytest.raises(Refused) as err:
            walk.file("weak", "manager")
        assert "performance_average" in err.value.message and "skill_test_passed" in err.value.message

    def test_ineligible_may_go_exceptional(self, bank, walk):
        case = walk.file("weak", "manager", exceptional=True)
        assert case.eligible is False and case.exceptional
        failed = [r["rule"] for r in case.eligibility if not r["passed"]]
        assert failed == ["performance_average", "skill_test_passed"]

    def test_eligibility_is_stored_with_required_and_actual(self, bank, walk):
        case = walk.file()
        rows = {r["rule"]: r for r in case.eligibility}
        assert rows["months_at_grade"]["passed"] and rows["months_at_grade"]["actual"] == "26 months"
        assert rows["performance_average"]["actual"] == "85"
        assert rows["education_at_least"]["required"] == "≥ college"

    def test_one_open_case_per_person(self, bank, walk):
        walk.file()
        with pytest.raises(Refused, match="already has an open"):
            walk.file()

    def test_hr_files_for_someone_in_its_subtree(self, bank, walk):
        case = walk.file("emp", "senior", filer="hr_b1")
        assert case.filed_by.username == "hr_b1" and case.events[0].role == "hr"
        assert case.events[0].unit == "B1"

    def test_hr_outside_the_subtree_is_forbidden(self, bank, walk):
        with pytest.raises(Forbidden):
            walk.file("far", "manager-2", filer="hr_b1")

    def test_a_colleague_cannot_file(self, bank, walk):
        with pytest.raises(Forbidden):
            walk.file("emp", "senior", filer="emp2")

    def test_create_event(self, bank, walk):
        ev = walk.file().events[0]
        assert (ev.seq, ev.action, ev.from_state, ev.to_state, ev.actor) == (1, "create", None,
                                                                             "qualification_review", "emp")


def test_stale_version_is_refused(bank, walk):
    case = walk.file()
    with pytest.raises(Conflict, match="changed"):
        engine.fire(case, "qualify", person("appr_b1"), expected_version=case.version + 1)
    db.session.rollback()


def test_version_free_actions_ignore_a_stale_version(bank, walk):
    case = walk.file()
    walk.to_panel(case)
    walk.act(case, "assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
    seen = case.version
    walk.act(case, "score", "panel1", score=70)
    engine.fire(case, "score", person("panel2"), {"score": 75}, expected_version=seen)
    db.session.commit()
    assert case.version == seen + 2


def test_dismissed_people_drop_out_of_routing(bank, walk):
    p = person("appr_b1")
    p.status = "dismissed"
    db.session.commit()
    case = walk.file()
    assert (case.step_unit.code, case.routing_reason) == ("R1", "vacancy")


def test_the_last_panel_score_after_the_supervisor_moves_the_case_on(bank, walk):
    case = walk.file()
    walk.to_panel(case)
    walk.act(case, "assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
    walk.act(case, "supervisor_score", "sup_t1", score=90)
    walk.act(case, "score", "panel1", score=70)
    walk.act(case, "score", "panel2", score=80)
    walk.act(case, "score", "panel3", score=90)
    assert case.state == "hr_approval"
    assert [e.action for e in case.events][-2:] == ["score", "scoring_complete"]


def test_tick_escalates_an_overdue_step(bank, walk, tmp_path):
    engine.activate_policy(variant(tmp_path, **{"steps.qualification_review.escalate_after_days": 2}), "esc")
    db.session.commit()
    case = walk.file()
    assert case.deadline == dt.date(2026, 3, 9)
    assert engine.due_for_tick(dt.date(2026, 3, 11)) == []           # two working days' grace
    assert engine.due_for_tick(dt.date(2026, 3, 12)) == [(case.id, "escalate")]
    with pytest.raises(Forbidden):
        engine.fire(case, "escalate", person("hr_b1"), today=dt.date(2026, 3, 12))
    db.session.rollback()
    engine.fire(case, "escalate", None, today=dt.date(2026, 3, 12))
    db.session.commit()
    assert (case.step_unit.code, case.routing_reason, case.routing_from_unit.code) == ("R1", "escalated", "B1")
    assert [p.username for p in case.assignee_people()] == ["appr_r1"]
    assert case.deadline == dt.date(2026, 3, 19)
    assert case.events[-1].action == "escalate" and case.events[-1].actor == "system"
    walk.act(case, "qualify", "appr_r1")
    assert (case.step_unit.code, case.routing_reason) == ("B1", None)        # the next step starts afresh


def test_no_escalation_without_the_policy_setting(bank, walk):
    walk.file()
    assert engine.due_for_tick(dt.date(2026, 6, 1)) == []


def test_losing_a_role_reroutes_the_open_cases(bank, walk):
    from workflow import directory
    case = walk.file()
    assert [p.username for p in case.assignee_people()] == ["appr_b1"]
    directory.set_roles(person("appr_b1"), [], actor=person("admin"))
    db.session.commit()
    assert (case.step_unit.code, case.routing_reason) == ("R1", "vacancy")
    assert [p.username for p in case.assignee_people()] == ["appr_r1"]
    ev = case.events[-1]
    assert (ev.action, ev.actor, ev.from_state, ev.to_state) == ("reroute", "system", "qualification_review",
                                                                "qualification_review")
    assert "approver@B1" in ev.comment


def test_a_role_taken_away_behind_the_engine_stops_the_assignee(bank, walk):
    case = walk.file()
    walk.to_panel(case)
    walk.act(case, "assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
    panel2 = person("panel2")
    panel2.roles.clear()
    db.session.commit()
    with pytest.raises(Forbidden, match="no longer hold"):
        engine.fire(case, "score", panel2, {"score": 80})
    db.session.rollback()
    engine.refresh_assignments(person("panel2"))
    db.session.commit()
    assert [m.person.username for m in case.panel] == ["panel1", "panel3"]
    assert "panel2" not in {p.username for p in case.assignee_people()}


class TestPublicity:
    """公示: between HR approval and effect, for everyone in the approving unit's scope."""

    @pytest.fixture
    def published(self, bank, walk, tmp_path):
        engine.activate_policy(variant(tmp_path, publicity={"working_days": 5}), "publicity")
        db.session.commit()
        case = walk.to_hr(walk.file())
        walk.act(case, "approve", "hr_b1")
        assert (case.state, case.deadline, case.step_unit.code) == ("publicity", dt.date(2026, 3, 9), "B1")
        return case

    def test_without_objection_tick_makes_it_effective(self, published):
        from workflow import authority
        assert authority.can_see(person("emp2"), published)          # a colleague in B1 sees it
        assert not authority.can_see(person("far"), published)       # someone in B3 does not
        assert engine.due_for_tick(dt.date(2026, 3, 9)) == []
        assert engine.due_for_tick(dt.date(2026, 3, 10)) == [(published.id, "end_publicity")]
        engine.fire(published, "end_publicity", None, today=dt.date(2026, 3, 10))
        db.session.commit()
        assert published.state == "effective" and person("emp").grade == "senior-1"

    def test_an_objection_waits_for_hr(self, published, walk):
        with pytest.raises(Forbidden):
            engine.fire(published, "object", person("emp"), {"statement": "x"})
        db.session.rollback()
        with pytest.raises(Forbidden):
            engine.fire(published, "object", person("far"), {"statement": "x"})
        db.session.rollback()
        walk.act(published, "object", "emp2", statement="该员工2025年有客户投诉未处理")
        with pytest.raises(Forbidden, match="already"):
            engine.fire(published, "object", person("emp2"), {"statement": "again"})
        db.session.rollback()
        assert engine.due_for_tick(dt.date(2026, 3, 10)) == []       # the objection holds it
        walk.act(published, "uphold", "hr_b1", comment="经核查，投诉已妥善处理")
        assert engine.due_for_tick(dt.date(2026, 3, 10)) == [(published.id, "end_publicity")]

    def test_hr_overturns(self, published, walk):
        walk.act(published, "object", "emp2", statement="材料不实")
        walk.act(published, "overturn", "hr_b1", comment="核实材料不实，撤销晋级")
        assert published.state == "rejected" and person("emp").grade == "manager-3"
