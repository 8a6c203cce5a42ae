"""Import files: units, people and scores from CSV and XLSX; all or nothing, errors naming line and column."""
import datetime as dt

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from workflow import audit, importing
from workflow.importing import ImportRefused, parse_period
from workflow.models import db, Event, GradeHistory, OrgUnit, Person, RoleAssignment, Score

UNITS = """code,name,level,parent_code
T1,杭州一团队,team,B1
HQ,总行,hq,
R1,华东区域,region,HQ
B1,杭州分行,branch,R1
"""
PEOPLE = """username,name,unit_code,grade,grade_since,hired_on,education,status,roles,password
hr1,何人事,B1,,,2019-03-01,bachelor,,hr@B1;admin@HQ,hr-pass-1
emp,张三,T1,manager-2,2024-05-01,2020-07-01,college,active,,emp-pass-1
new,李四,T1,assistant,2025-12-01,2025-12-01,bachelor,probation,,
"""
SCORES = """username,period,kind,value
emp,2025,skill_test,pass
emp,2025-Q3,performance,88.5
emp,2025-07,performance,90
new,2025,skill_test,72
"""


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    """Password hashing is slow on purpose; these tests need it to work, not to be slow."""
    from werkzeug.security import generate_password_hash
    from workflow.models import people
    monkeypatch.setattr(people, "generate_password_hash",
                        lambda password, method=None: generate_password_hash(password, "pbkdf2:sha256:1000"))


def write(tmp_path, name, text, bom=False):
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def xlsx(tmp_path, name, rows):
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    path = tmp_path / name
    wb.save(path)
    return path


def person(username):
    return db.session.scalar(select(Person).where(Person.username == username))


def snapshot():
    """Everything an import may change."""
    db.session.expire_all()
    return {
        "units": sorted((u.code, u.name, u.level, u.parent_id, u.path)
                        for u in db.session.scalars(select(OrgUnit))),
        "people": sorted((p.username, p.name, p.unit_id, p.grade, p.grade_since, p.hired_on, p.education,
                          p.status, p.password_hash) for p in db.session.scalars(select(Person))),
        "roles": sorted((r.person_id, r.role, r.unit_id) for r in db.session.scalars(select(RoleAssignment))),
        "scores": sorted((s.person_id, s.kind, s.period, s.value, s.passed)
                         for s in db.session.scalars(select(Score))),
        "history": db.session.scalar(select(func.count()).select_from(GradeHistory)),
        "events": db.session.scalar(select(func.count()).select_from(Event)),
    }


@pytest.fixture
def loaded(app, tmp_path):
    """The good files, imported and committed."""
    importing.import_org(write(tmp_path, "units.csv", UNITS), write(tmp_path, "people.csv", PEOPLE))
    importing.import_scores(write(tmp_path, "scores.csv", SCORES))
    db.session.commit()


class TestGoodFiles:
    def test_org_from_csv(self, app, tmp_path):
        result = importing.import_org(write(tmp_path, "units.csv", UNITS, bom=True),
                                      write(tmp_path, "people.csv", PEOPLE, bom=True))
        db.session.commit()
        assert (result.units_created, result.people_created, result.passwords_set) == (4, 3, 2)
        t1 = db.session.scalar(select(OrgUnit).where(OrgUnit.code == "T1"))
        assert [u.code for u in reversed(t1.ancestors())] == ["HQ", "R1", "B1", "T1"]
        assert t1.path == "/" + "/".join(str(u.id) for u in reversed(t1.ancestors())) + "/"
        emp, hr1, new = person("emp"), person("hr1"), person("new")
        assert (emp.name, emp.unit.code, emp.grade, emp.grade_since, emp.hired_on) == \
            ("张三", "T1", "manager-2", dt.date(2024, 5, 1), dt.date(2020, 7, 1))
        assert (emp.education, emp.status) == ("college", "active")
        assert (hr1.grade, hr1.grade_since, hr1.role_strings()) == (None, None, ["admin@HQ", "hr@B1"])
        assert (new.grade, new.status, new.password_hash) == ("assistant-1", "probation", None)
        assert emp.check_password("emp-pass-1") and hr1.check_password("hr-pass-1")
        assert db.session.scalars(select(GradeHistory)).all() == []
        assert audit.verify().ok

    def test_scores_map_periods_to_granularity(self, loaded):
        rows = {(s.person.username, s.period): s for s in db.session.scalars(select(Score))}
        year, quarter, month = rows[("emp", "2025")], rows[("emp", "2025-Q3")], rows[("emp", "2025-07")]
        assert (year.granularity, year.period_start, year.period_end, year.value, year.passed) == \
            ("year", dt.date(2025, 1, 1), dt.date(2025, 12, 31), None, True)
        assert (quarter.granularity, quarter.period_start, quarter.period_end, quarter.value) == \
            ("quarter", dt.date(2025, 7, 1), dt.date(2025, 9, 30), 88.5)
        assert (month.granularity, month.period_start, month.period_end) == \
            ("month", dt.date(2025, 7, 1), dt.date(2025, 7, 31))
        assert rows[("new", "2025")].value == 72 and rows[("new", "2025")].passed is None

    def test_xlsx_reads_like_csv(self, app, tmp_path):
        units = xlsx(tmp_path, "units.xlsx", [["code", "name", "level", "parent_code"],
                                              ["HQ", "总行", "hq", None], ["B1", "杭州分行", "branch", "HQ"],
                                              [None, None, None, None], ["T1", "一团队", "team", "B1"]])
        people = xlsx(tmp_path, "people.xlsx", [
            ["username", "name", "unit_code", "grade", "grade_since", "hired_on", "education", "status",
             "roles", "password"],
            ["emp", "张三", "T1", "senior-2", dt.datetime(2024, 5, 1), dt.date(2020, 7, 1), "master", None,
             "supervisor@T1；panel@B1", None]])
        scores = xlsx(tmp_path, "scores.xlsx", [["username", "period", "kind", "value"],
                                                ["emp", 2025, "performance", 91],
                                                ["emp", "2025-Q1", "performance", 87.5],
                                                ["emp", "2025", "skill_test", "fail"]])
        importing.import_org(units, people)
        result = importing.import_scores(scores)
        db.session.commit()
        emp = person("emp")
        assert (emp.grade, emp.grade_since, emp.hired_on, emp.status) == \
            ("senior-2", dt.date(2024, 5, 1), dt.date(2020, 7, 1), "active")
        assert emp.role_strings() == ["panel@B1", "supervisor@T1"]
        assert result.scores_created == 3
        assert {(s.period, s.kind, s.value, s.passed) for s in db.session.scalars(select(Score))} == \
            {("2025", "performance", 91, None), ("2025-Q1", "performance", 87.5, None),
             ("2025", "skill_test", None, False)}

    def test_uploaded_file_objects_are_read(self, app, tmp_path):
        with open(write(tmp_path, "units.csv", UNITS), "rb") as fh:
            result = importing.import_org(fh)
        assert result.units_created == 4

    def test_optional_people_columns_may_be_left_out(self, app, tmp_path):
        importing.import_org(write(tmp_path, "u.csv", UNITS),
                             write(tmp_path, "p.csv", "username,name,unit_code\nx,某人,B1\n"))
        x = person("x")
        assert (x.grade, x.status, x.education, x.roles) == (None, "active", None, [])


class TestReimport:
    def test_reimport_updates_by_code_and_username(self, loaded, tmp_path):
        hr1_hash = person("hr1").password_hash
        units = UNITS.replace("T1,杭州一团队,team,B1", "T1,杭州一部,team,B2") + "B2,宁波分行,branch,R1\n"
        people = PEOPLE.replace("emp,张三,T1,manager-2,2024-05-01", "emp,张三,T1,manager-3,2026-01-01") \
            .replace("hr@B1;admin@HQ,hr-pass-1", "hr@R1,") \
            .replace("new,李四,T1,assistant,2025-12-01,2025-12-01,bachelor,probation",
                     "new,李四,B1,assistant,2025-12-01,2025-12-01,bachelor,active")
        result = importing.import_org(write(tmp_path, "u2.csv", units), write(tmp_path, "p2.csv", people))
        db.session.commit()
        assert (result.units_created, result.units_updated) == (1, 4)
        assert (result.people_created, result.people_updated) == (0, 3)
        assert (result.grade_changes, result.role_changes, result.passwords_set) == (1, 1, 1)
        t1 = db.session.scalar(select(OrgUnit).where(OrgUnit.code == "T1"))
        assert (t1.name, t1.parent.code) == ("杭州一部", "B2") and t1.path.startswith(t1.parent.path)
        emp, hr1, new = person("emp"), person("hr1"), person("new")
        assert (emp.grade, emp.grade_since) == ("manager-3", dt.date(2026, 1, 1))
        hist = db.session.scalar(select(GradeHistory))
        assert (hist.person_id, hist.from_grade, hist.to_grade, hist.effective_on, hist.source) == \
            (emp.id, "manager-2", "manager-3", dt.date(2026, 1, 1), "import")
        change = db.session.scalar(select(Event).where(Event.chain == f"person:{emp.id}",
                                                       Event.action == "grade_change"))
        assert change.actor == "system" and change.data["to"] == "manager-3"
        assert hr1.role_strings() == ["hr@R1"] and hr1.password_hash == hr1_hash
        assert (new.unit.code, new.status) == ("B1", "active")
        assert audit.verify().ok

    def test_reimporting_the_same_files_changes_nothing(self, loaded, tmp_path):
        before = snapshot()
        importing.import_org(write(tmp_path, "u.csv", UNITS),
                             write(tmp_path, "p.csv",
                                   PEOPLE.replace("hr-pass-1", "").replace("emp-pass-1", "")))
        importing.import_scores(write(tmp_path, "s.csv", SCORES))
        db.session.commit()
        assert snapshot() == before

    def test_without_a_grade_since_column_a_new_grade_starts_today(self, loaded, tmp_path):
        importing.import_org(people=write(tmp_path, "p.csv", "username,name,unit_code,grade\n"
                                                             "emp,张三,T1,manager-3\nnew,李四,T1,assistant\n"))
        assert (person("emp").grade, person("emp").grade_since) == ("manager-3", dt.date(2026, 3, 2))
        assert person("new").grade_since == dt.date(2025, 12, 1)

    def test_scores_are_updated_in_place(self, loaded, tmp_path):
        result = importing.import_scores(write(tmp_path, "s.csv",
                                               "username,period,kind,value\nemp,2025-07,performance,70\n"))
        assert (result.scores_created, result.scores_updated) == (0, 1)
        assert db.session.scalar(select(Score).where(Score.period == "2025-07")).value == 70

    def test_a_changed_grade_is_refused_while_a_case_is_open(self, bank, tmp_path):
        from workflow import engine
        engine.create_promotion(bank["emp"], bank["emp"], "senior", "申请")
        db.session.commit()
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(people=write(tmp_path, "p.csv", "username,name,unit_code,grade,grade_since\n"
                                                                 "emp,Emp,T1,senior-1,2026-01-01\n"))
        assert "open case" in str(exc.value.problems[0]) and "column 'grade'" in str(exc.value.problems[0])


# (file, extra row, column, what the message says) — the extra row lands on line 6 of units, 5 of people
# and 6 of scores.
BAD_ORG = [
    ("units", "X1,某单位,city,HQ", "level", "unknown org level 'city'"),
    ("units", "X1,某单位,team,NOPE", "parent_code", "unknown unit 'NOPE'"),
    ("units", "B1,重复,branch,R1", "code", "'B1' is already on line 5"),
    ("units", "X1,某单位,region,B1", "level", "a region cannot sit under a branch"),
    ("units", "X1,,team,B1", "name", "is empty"),
    ("units", "X2,第二个根,hq,", "parent_code", "already has its root 'HQ'"),
    ("people", "x,某人,T1,manager-2,2024-13-01,,,,,", "grade_since", "'2024-13-01' is not a real date"),
    ("people", "x,某人,T1,manager-2,2024/05/01,,,,,", "grade_since", "'2024/05/01' is not a date YYYY-MM-DD"),
    ("people", "x,某人,T1,,,05-01-2020,,,,", "hired_on", "is not a date"),
    ("people", "x,某人,T1,,,,kindergarten,,,", "education", "unknown education 'kindergarten'"),
    ("people", "x,某人,T1,,,,,,boss@T1,", "roles", "unknown role 'boss'"),
    ("people", "x,某人,T1,,,,,,hr@NOPE,", "roles", "unknown unit 'NOPE'"),
    ("people", "x,某人,T1,,,,,,hr,", "roles", "'hr' is not ROLE@UNIT_CODE"),
    ("people", "x,某人,T1,boss-1,2024-01-01,,,,,", "grade", "unknown level 'boss'"),
    ("people", "x,某人,T1,manager-4,2024-01-01,,,,,", "grade", "level 'manager' has tiers 1 to 3, not 4"),
    ("people", "x,某人,T1,manager-1,,,,,,", "grade_since", "needs the date"),
    ("people", "x,某人,T1,,2024-01-01,,,,,", "grade_since", "grade is empty"),
    ("people", "x,某人,NOPE,,,,,,,", "unit_code", "unknown unit 'NOPE'"),
    ("people", "emp,又一个张三,T1,,,,,,,", "username", "'emp' is already on line 3"),
    ("people", "x,某人,T1,,,,,dismissed,,", "status", "dismissal case"),
    ("people", "x,某人,T1,,,,,retired,,", "status", "unknown status 'retired'"),
    ("people", "x,某人,T1,,,,,,,abc", "password", "at least"),
]
BAD_SCORES = [
    ("emp,2025-08,performance,101", "value", "101 is out of range for performance (0 to 100)"),
    ("emp,2025-08,performance,-1", "value", "out of range"),
    ("emp,2025-08,performance,pass", "value", "takes a number"),
    ("emp,2025-08,performance,good", "value", "'good' is not a number"),
    ("emp,2025-13,performance,80", "period", "'2025-13' is not a period"),
    ("emp,2025-Q5,performance,80", "period", "is not a period"),
    ("emp,2025-08-01,performance,80", "period", "format the column as text"),
    ("emp,,performance,80", "period", "is empty"),
    ("ghost,2025-08,performance,80", "username", "unknown username 'ghost'"),
    ("emp,2025-08,charm,80", "kind", "unknown score kind 'charm'"),
    ("emp,2025-07,performance,80", "period", "already has a performance score for 2025-07 on line 4"),
]


class TestBadFiles:
    @pytest.mark.parametrize("which, row, column, message", BAD_ORG)
    def test_a_bad_org_row_refuses_both_files(self, loaded, tmp_path, which, row, column, message):
        # A new unit and a new person ride along, to show that neither file is loaded.
        units = UNITS + "T9,新团队,team,B1\n"
        people = PEOPLE + "fresh,新人,T9,,,,,,,\n"
        if which == "units":
            units, line = UNITS + row + "\n" + "T9,新团队,team,B1\n", 6
        else:
            people, line = PEOPLE + row + "\n" + "fresh,新人,T9,,,,,,,\n", 5
        before = snapshot()
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(write(tmp_path, "units.csv", units), write(tmp_path, "people.csv", people))
        name = "units.csv" if which == "units" else "people.csv"
        texts = [str(p) for p in exc.value.problems]
        assert any(t.startswith(f"{tmp_path / name}, line {line}, column '{column}': ") and message in t
                   for t in texts), texts
        db.session.rollback()
        assert snapshot() == before

    @pytest.mark.parametrize("row, column, message", BAD_SCORES)
    def test_a_bad_score_row_refuses_the_file(self, loaded, tmp_path, row, column, message):
        before = snapshot()
        with pytest.raises(ImportRefused) as exc:
            importing.import_scores(write(tmp_path, "scores.csv",
                                          SCORES + row + "\nnew,2025-01,performance,80\n"))
        problem = exc.value.problems[0]
        assert (problem.line, problem.column) == (6, column) and message in problem.message, str(problem)
        db.session.rollback()
        assert snapshot() == before

    def test_every_problem_is_reported_at_once(self, loaded, tmp_path):
        people = PEOPLE + "a,甲,T1,boss,,,,,,\nb,乙,T1,,,,phd2,,,\n"
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(people=write(tmp_path, "p.csv", people))
        assert [(p.line, p.column) for p in exc.value.problems] == [(5, "grade"), (6, "education")]

    def test_the_column_is_named_as_the_header_writes_it(self, app, tmp_path):
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(write(tmp_path, "u.csv", "Code,Name,Level,Parent_Code\nHQ,总行,HQ,\n"))
        assert str(exc.value.problems[0]).endswith("line 2, column 'Level': unknown org level 'HQ' "
                                                   "(levels: hq, region, branch, team)")

    def test_a_cycle_in_the_file_is_refused(self, loaded, tmp_path):
        units = "code,name,level,parent_code\nX1,甲,team,X2\nX2,乙,team,X1\n"
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(write(tmp_path, "u.csv", units))
        # Levels only go down, so a cycle also breaks a level; the cycle is named all the same.
        assert any("makes a cycle: X1 > X2 > X1" in p.message for p in exc.value.problems)

    def test_a_cycle_through_the_database_is_refused(self, loaded, tmp_path):
        # R1 moves under T1, which (in the database) is inside R1.
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(write(tmp_path, "u.csv", "code,name,level,parent_code\nR1,华东,team,T1\n"))
        assert any("makes a cycle: R1 > T1 > B1 > R1" in p.message for p in exc.value.problems)

    def test_a_unit_cannot_drop_below_its_children(self, loaded, tmp_path):
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(write(tmp_path, "u.csv", "code,name,level,parent_code\nB1,杭州分行,team,R1\n"))
        assert "its sub-unit T1" in exc.value.problems[0].message

    @pytest.mark.parametrize("header, column, message", [
        ("code,name,level", "parent_code", "missing from the header"),
        ("code,name,level,parent_code,colour", "colour", "unknown column"),
        ("code,name,level,level,parent_code", "level", "appears twice"),
    ])
    def test_bad_headers(self, app, tmp_path, header, column, message):
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(write(tmp_path, "u.csv", header + "\n"))
        p = exc.value.problems[0]
        assert (p.line, p.column) == (1, column) and message in p.message

    def test_a_file_that_is_not_utf8_is_refused(self, app, tmp_path):
        path = tmp_path / "u.csv"
        path.write_bytes("code,name,level,parent_code\nHQ,总行,hq,\n".encode("gbk"))
        with pytest.raises(ImportRefused, match="not UTF-8"):
            importing.import_org(path)

    def test_an_empty_file_is_refused(self, app, tmp_path):
        with pytest.raises(ImportRefused, match="header"):
            importing.import_scores(write(tmp_path, "s.csv", ""))

    def test_too_many_cells(self, loaded, tmp_path):
        with pytest.raises(ImportRefused) as exc:
            importing.import_scores(write(tmp_path, "s.csv",
                                          "username,period,kind,value\nemp,2025,performance,80,9\n"))
        assert exc.value.problems[0].line == 2 and "cells" in exc.value.problems[0].message

    def test_a_damaged_xlsx_is_refused(self, app, tmp_path):
        path = tmp_path / "u.xlsx"
        path.write_bytes(b"PK\x03\x04 not really a zip")
        with pytest.raises(ImportRefused, match="cannot read the XLSX file"):
            importing.import_org(path)


@pytest.mark.parametrize("text, expected", [
    ("2025", ("2025", "year", dt.date(2025, 1, 1), dt.date(2025, 12, 31))),
    ("2025-Q1", ("2025-Q1", "quarter", dt.date(2025, 1, 1), dt.date(2025, 3, 31))),
    ("2025-q4", ("2025-Q4", "quarter", dt.date(2025, 10, 1), dt.date(2025, 12, 31))),
    ("2024-02", ("2024-02", "month", dt.date(2024, 2, 1), dt.date(2024, 2, 29))),
])
def test_parse_period(text, expected):
    assert parse_period(text) == expected


@pytest.mark.parametrize("text", ["25", "2025-Q0", "2025-00", "2025-1", "2025-H1", "Q3-2025", "1800"])
def test_parse_period_refuses(text):
    with pytest.raises(ValueError):
        parse_period(text)


def test_problems_are_shown_in_the_readers_language(loaded, tmp_path):
    """Each problem is a message: English outside a request (the command line, a job's worker), the reader's
    language when shown; a job keeps them as JSON that shows again in its reader's language."""
    import json
    from flask_babel import force_locale

    people = PEOPLE + "a,甲,T1,boss,,,,,,\nb b,乙,T1,,,,,,,\n"
    with pytest.raises(ImportRefused) as exc:
        importing.import_org(people=write(tmp_path, "p.csv", people))
    refused = exc.value
    first = f"{tmp_path / 'p.csv'}, line 5, column 'grade': unknown level 'boss' (levels: "
    assert str(refused.problems[0]).startswith(first)
    assert str(refused).startswith(f"the import was refused, nothing was changed: {first}")
    assert str(refused).endswith(" (1 more problems)")
    stored = json.loads(json.dumps(refused.stored_details()))     # as a job's JSON column keeps it
    assert stored["rows"][1]["message"] == "'b b' must not contain spaces"
    with force_locale("zh_CN"):
        assert str(refused.problems[1]) == f"{tmp_path / 'p.csv'}，第 6 行，“username”列：“b b”不得包含空格"
        assert str(refused.message).startswith(f"导入被拒绝，未做任何更改：{tmp_path / 'p.csv'}，第 5 行")
        shown = importing.shown_details(stored)
        assert [r["message"] for r in shown["rows"]][1] == "“b b”不得包含空格"
        assert shown["rows"][0]["message"].startswith("未知的职级层级“boss”")
        assert shown["problems"][1] == str(refused.problems[1]) and "stored" not in shown["rows"][0]
        assert shown["message"] == str(refused.message)
    assert importing.shown_details(stored)["rows"][1]["message"] == "'b b' must not contain spaces"
