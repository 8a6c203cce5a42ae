"""Maintenance of the org tree and of people: paths, cycles, levels, grades, roles and passwords."""
import datetime as dt

import pytest
from sqlalchemy import select

from workflow import audit, directory, engine
from workflow.directory import DirectoryError
from workflow.models import db, ApiToken, Event, GradeHistory, OrgUnit, Person


def unit(code):
    return db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def events_of(person):
    return db.session.scalars(select(Event).where(Event.chain == f"person:{person.id}")
                              .order_by(Event.seq)).all()


@pytest.fixture
def tree(app):
    """HQ > R1 > B1 > {T1, T2}; HQ > R2 — built through directory.upsert_unit."""
    for code, level, parent in [("HQ", "hq", None), ("R1", "region", "HQ"), ("R2", "region", "HQ"),
                                ("B1", "branch", "R1"), ("T1", "team", "B1"), ("T2", "team", "B1")]:
        directory.upsert_unit(code, name=f"{code} 单位", level=level, parent_code=parent)
    db.session.commit()


class TestUnits:
    def test_paths_follow_the_tree(self, tree):
        hq, r1, b1, t1 = unit("HQ"), unit("R1"), unit("B1"), unit("T1")
        assert hq.path == f"/{hq.id}/"
        assert t1.path == f"/{hq.id}/{r1.id}/{b1.id}/{t1.id}/"
        assert [u.code for u in directory.subtree(b1)] == ["B1", "T1", "T2"]

    def test_update_keeps_the_unit(self, tree):
        b1 = unit("B1")
        same, created = directory.upsert_unit("B1", name="杭州分行", level="branch", parent_code="R1")
        assert not created and same.id == b1.id and same.name == "杭州分行"

    def test_moving_a_unit_rewrites_its_whole_subtree(self, tree, make_person):
        emp = make_person("emp", unit("T1"), grade="manager-1")
        directory.upsert_unit("B1", name="B1", level="branch", parent_code="R2")
        db.session.commit()
        hq, r2, b1 = unit("HQ"), unit("R2"), unit("B1")
        assert b1.parent is r2 and b1.path == f"/{hq.id}/{r2.id}/{b1.id}/"
        for code in ("T1", "T2"):
            assert unit(code).path == f"{b1.path}{unit(code).id}/"
        assert r2.contains(emp.unit) and not unit("R1").contains(emp.unit)

    def test_a_move_into_its_own_subtree_is_refused(self, tree):
        before = {u.code: (u.parent_id, u.path) for u in db.session.scalars(select(OrgUnit))}
        with pytest.raises(DirectoryError, match="inside R1's subtree"):
            directory.upsert_unit("R1", name="R1", level="region", parent_code="B1")
        with pytest.raises(DirectoryError, match="inside"):
            directory.upsert_unit("B1", name="B1", level="branch", parent_code="B1")
        db.session.rollback()
        assert {u.code: (u.parent_id, u.path) for u in db.session.scalars(select(OrgUnit))} == before

    @pytest.mark.parametrize("code, level, parent, message", [
        ("X", "city", "HQ", "unknown org level 'city'"),
        ("X", "region", "B1", "a region cannot sit under a branch"),
        ("X", "branch", "B1", "a branch cannot sit under a branch"),
        ("X", "team", "NOPE", "unknown parent unit 'NOPE'"),
        ("X", "hq", None, "already has its root HQ"),
        ("B1", "team", "R1", "B1 cannot become a team: its sub-unit T1"),
        ("", "team", "B1", "code"),
    ])
    def test_bad_units_are_refused(self, tree, code, level, parent, message):
        with pytest.raises(DirectoryError, match=message):
            directory.upsert_unit(code, name="名称", level=level, parent_code=parent)

    def test_a_team_may_sit_directly_under_a_region(self, tree):
        t, created = directory.upsert_unit("T9", name="直属团队", level="team", parent_code="R2")
        assert created and t.parent.code == "R2"


@pytest.fixture
def staff(tree):
    person, _ = directory.upsert_person("emp", name="张三", unit_code="T1", grade="manager-2",
                                        grade_since=dt.date(2024, 5, 1), hired_on=dt.date(2020, 7, 1),
                                        education="bachelor")
    admin, _ = directory.upsert_person("root", name="管理员", unit_code="HQ")
    directory.set_roles(admin, ["admin@HQ"])
    db.session.commit()
    return {"emp": person, "admin": admin}


class TestPeople:
    def test_create_and_update(self, staff):
        emp = staff["emp"]
        assert (emp.grade, emp.unit.code, emp.status, emp.password_hash) == \
            ("manager-2", "T1", "active", None)
        same, created = directory.upsert_person("emp", name="张三丰", unit_code="T2", grade="manager-2",
                                                grade_since=dt.date(2024, 5, 1), education="master",
                                                status="probation")
        assert not created and same is emp
        assert (emp.name, emp.unit.code, emp.education, emp.status) == ("张三丰", "T2", "master", "probation")
        assert db.session.scalars(select(GradeHistory)).all() == []

    def test_staff_have_no_grade(self, staff):
        assert staff["admin"].grade is None and staff["admin"].grade_since is None

    @pytest.mark.parametrize("changes, field", [
        ({"grade": "manager-4"}, "grade"), ({"grade": "boss"}, "grade"),
        ({"grade_since": None}, "grade_since"), ({"education": "kindergarten"}, "education"),
        ({"status": "dismissed"}, "status"), ({"unit_code": "NOPE"}, "unit_code"), ({"name": " "}, "name"),
    ])
    def test_bad_people_are_refused(self, staff, changes, field):
        values = dict(name="张三", unit_code="T1", grade="manager-2", grade_since=dt.date(2024, 5, 1))
        values.update(changes)
        with pytest.raises(DirectoryError) as exc:
            directory.upsert_person("emp", **values)
        assert exc.value.details["field"] == field

    def test_grade_change_writes_history_and_an_audit_event(self, staff):
        emp, admin = staff["emp"], staff["admin"]
        row = directory.change_grade(emp, "senior", since=dt.date(2026, 2, 1), actor=admin, comment="纠正")
        db.session.commit()
        assert (row.from_grade, row.to_grade, row.effective_on, row.source, row.case_id) == \
            ("manager-2", "senior-1", dt.date(2026, 2, 1), "admin", None)
        assert (emp.grade, emp.grade_since) == ("senior-1", dt.date(2026, 2, 1))
        ev = events_of(emp)[-1]
        assert (ev.action, ev.actor, ev.role, ev.comment) == ("grade_change", "root", "admin", "纠正")
        assert ev.data == {"from": "manager-2", "to": "senior-1", "on": "2026-02-01", "source": "admin"}
        assert audit.verify().ok

    def test_same_grade_changes_nothing(self, staff):
        assert directory.change_grade(staff["emp"], "manager-2") is None
        assert events_of(staff["emp"]) == []

    def test_upsert_with_a_new_grade_goes_through_change_grade(self, staff):
        directory.upsert_person("emp", name="张三", unit_code="T1", grade="manager-3",
                                grade_since=dt.date(2026, 1, 1), source="import")
        db.session.commit()
        hist = db.session.scalar(select(GradeHistory))
        assert (hist.from_grade, hist.to_grade, hist.source) == ("manager-2", "manager-3", "import")
        assert events_of(staff["emp"])[-1].actor == "system"

    def test_grade_change_is_refused_while_a_case_is_open(self, bank):
        emp = bank["emp"]
        engine.create_promotion(emp, emp, "senior", "申请")
        db.session.commit()
        with pytest.raises(DirectoryError, match="open case"):
            directory.change_grade(emp, "senior-1")

    def test_a_dismissed_person_is_not_re_employed(self, staff):
        staff["emp"].status = "dismissed"
        with pytest.raises(DirectoryError, match="dismissed"):
            directory.upsert_person("emp", name="张三", unit_code="T1")


class TestRoles:
    def test_roles_are_replaced_and_audited(self, staff):
        emp = staff["emp"]
        assert directory.set_roles(emp, ["panel@B1", "supervisor@T1"], actor=staff["admin"])
        assert emp.role_strings() == ["panel@B1", "supervisor@T1"]
        assert directory.set_roles(emp, [("approver", unit("T2")), "panel@B1"])
        db.session.commit()
        assert emp.role_strings() == ["approver@T2", "panel@B1"]
        ev = events_of(emp)[-1]
        assert (ev.action, ev.data["from"], ev.data["to"]) == \
            ("roles_change", ["panel@B1", "supervisor@T1"], ["approver@T2", "panel@B1"])
        assert audit.verify().ok

    def test_unchanged_roles_write_nothing(self, staff):
        n = len(events_of(staff["admin"]))
        assert not directory.set_roles(staff["admin"], ["admin@HQ"])
        assert len(events_of(staff["admin"])) == n

    @pytest.mark.parametrize("spec, message", [
        ("boss@HQ", "unknown role 'boss'"), ("hr@NOPE", "unknown unit 'NOPE'"), ("hr", "not ROLE@UNIT_CODE"),
    ])
    def test_bad_roles_are_refused(self, staff, spec, message):
        with pytest.raises(DirectoryError, match=message):
            directory.set_roles(staff["emp"], [spec])


class TestPasswords:
    def test_setting_a_password_ends_sessions_and_tokens(self, staff):
        emp = staff["emp"]
        db.session.add(ApiToken(person=emp, token_hash="a" * 64))
        db.session.commit()
        generation = emp.session_generation or 0
        directory.set_password(emp, "s3cret-pass", actor=staff["admin"])
        db.session.commit()
        assert emp.check_password("s3cret-pass") and emp.session_generation == generation + 1
        assert db.session.scalar(select(ApiToken)).revoked
        ev = events_of(emp)[-1]
        assert ev.action == "password_set" and "s3cret" not in str(ev.data)
        assert audit.verify().ok

    def test_short_passwords_are_refused(self, staff):
        with pytest.raises(DirectoryError, match="at least"):
            directory.set_password(staff["emp"], "abc")
        with pytest.raises(DirectoryError, match="spaces"):
            directory.set_password(staff["emp"], "        ")


def test_new_people_get_an_audit_chain_that_verifies(staff):
    person, created = directory.upsert_person("new", name="新人", unit_code="T2", grade="assistant",
                                              grade_since=dt.date(2026, 1, 1))
    directory.set_roles(person, ["panel@T2"])
    directory.set_password(person, "longenough")
    db.session.commit()
    assert created and [e.action for e in events_of(person)] == ["roles_change", "password_set"]
    assert db.session.get(Person, person.id).grade == "assistant-1"
    assert audit.verify().ok
