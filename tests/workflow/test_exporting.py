"""Excel: Chinese import headers, earlier grades loaded with staff (职级履历), the policy's level allowances, and
the streamed workbooks of workflow/exporting.py (no request needed)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from tests.workflow.test_import import UNITS, person, snapshot, write
from workflow import directory, exporting, importing
from workflow import policy as policy_mod
from workflow.importing import ImportRefused
from workflow.models import db, GradeHistory
from workflow.policy import PolicyError

ZH_UNITS = """机构代码,机构名称,机构层级,上级机构代码
HQ,总行,hq,
R1,华东区域,region,HQ
B1,杭州分行,branch,R1
T1,杭州一团队,team,B1
"""
ZH_PEOPLE = """用户名,姓名,机构代码,职级,任现职级日期,入职日期,学历
emp,张三,T1,manager-2,2024-05-01,2019-07-01,college
"""
HISTORY = """username,grade,grade_since
emp,assistant-3,2019-07-01
emp,manager-1,2022-01-01
"""


def problems(exc) -> list[str]:
    """The refusal's problems, each naming its file without the directory."""
    return [str(dataclasses.replace(p, file=os.path.basename(p.file))) for p in exc.value.problems]


class TestChineseHeaders:
    def test_the_importer_reads_the_chinese_headers(self, app, tmp_path):
        result = importing.import_org(write(tmp_path, "机构.csv", ZH_UNITS), write(tmp_path, "人员.csv", ZH_PEOPLE))
        db.session.commit()
        assert (result.units_created, result.people_created) == (4, 1)
        assert person("emp").grade == "manager-2" and person("emp").education == "college"
        scores = importing.import_scores(write(tmp_path, "成绩.csv", "工号,考核期间,考核类别,得分\nemp,2025,performance,88\n"))
        assert scores.scores_created == 1

    def test_a_problem_names_the_chinese_header_as_written(self, app, tmp_path):
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(write(tmp_path, "u.csv", ZH_UNITS),
                                 write(tmp_path, "p.csv", ZH_PEOPLE.replace("manager-2", "boss-2")))
        assert problems(exc) == ["p.csv, line 2, column '职级': unknown level 'boss' (levels: assistant, "
                                 "manager, senior, principal, general_manager, director)"]

    def test_an_unknown_header_lists_both_names(self, app, tmp_path):
        with pytest.raises(ImportRefused) as exc:
            importing.import_scores(write(tmp_path, "s.csv", "用户名,期间,类别,分数\n"))
        assert "value (得分)" in problems(exc)[0] and "column '分数'" in problems(exc)[0]


class TestGradeHistory:
    def test_a_history_file_is_stored_with_the_people(self, app, tmp_path):
        result = importing.import_org(write(tmp_path, "u.csv", UNITS), write(tmp_path, "p.csv", ZH_PEOPLE),
                                      history=write(tmp_path, "h.csv", HISTORY))
        db.session.commit()
        assert result.history_rows == 3
        rows = db.session.execute(select(GradeHistory.from_grade, GradeHistory.to_grade, GradeHistory.effective_on)
                                  .order_by(GradeHistory.effective_on)).all()
        assert [tuple(r) for r in rows] == [(None, "assistant-3", dt.date(2019, 7, 1)),
                                            ("assistant-3", "manager-1", dt.date(2022, 1, 1)),
                                            ("manager-1", "manager-2", dt.date(2024, 5, 1))]
        assert {h.source for h in db.session.scalars(select(GradeHistory))} == {"import"}

    def test_an_xlsx_people_file_carries_it_on_its_history_sheet(self, app, tmp_path):
        importing.import_org(write(tmp_path, "u.csv", UNITS))
        wb = Workbook()
        wb.active.title = "人员"
        for row in ZH_PEOPLE.splitlines():
            wb.active.append(row.split(","))
        sheet = wb.create_sheet("职级履历")
        sheet.append(["用户名", "职级", "起始日期"])
        sheet.append(["emp", "manager-1", dt.date(2022, 1, 1)])
        path = tmp_path / "people.xlsx"
        wb.save(path)
        assert importing.import_org(people=path).history_rows == 2

    @pytest.mark.parametrize("history, problem", [
        ("emp,manager-1,2022-01-01\nemp,assistant-3,2019-07-01\n",
         "h.csv, line 3, column 'grade_since': 2019-07-01 is not after the previous grade's date (2022-01-01, "
         "line 2); list each person's grades in the order they were held"),
        ("emp,manager-1,2024-05-01\n",
         "h.csv, line 2, column 'grade_since': 2024-05-01 is not before emp's current grade, held since 2024-05-01"),
        ("emp,assistant-3,2018-01-01\n",
         "h.csv, line 2, column 'grade_since': 2018-01-01 is before emp was hired (2019-07-01)"),
        ("emp,manager-1,2020-01-01\nemp,manager-1,2021-01-01\n",
         "h.csv, line 3, column 'grade': manager-1 is the same grade as on line 2"),
        ("emp,manager-2,2020-01-01\n",
         "h.csv, line 2, column 'grade': manager-2 is emp's current grade; list only the grades before it"),
        ("nobody,manager-1,2020-01-01\n",
         "h.csv, line 2, column 'username': unknown username 'nobody' (neither in the people file nor in the "
         "database)"),
        ("emp,manager-9,2020-01-01\n", "h.csv, line 2, column 'grade': level 'manager' has tiers 1 to 3, not 9"),
        ("emp,manager-1,2020-02-30\n", "h.csv, line 2, column 'grade_since': '2020-02-30' is not a real date"),
        ("emp,manager-1,2027-01-01\n", "h.csv, line 2, column 'grade_since': 2027-01-01 is in the future"),
    ])
    def test_a_bad_history_refuses_the_whole_import(self, app, tmp_path, history, problem):
        before = snapshot()
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(write(tmp_path, "u.csv", UNITS), write(tmp_path, "p.csv", ZH_PEOPLE),
                                 history=write(tmp_path, "h.csv", "username,grade,grade_since\n" + history))
        db.session.rollback()
        assert problem in problems(exc)
        assert snapshot() == before

    def test_history_is_loaded_only_the_first_time(self, app, tmp_path):
        importing.import_org(write(tmp_path, "u.csv", UNITS), write(tmp_path, "p.csv", ZH_PEOPLE))
        db.session.commit()
        directory.change_grade(person("emp"), "manager-3", since=dt.date(2025, 1, 1))
        db.session.commit()
        with pytest.raises(ImportRefused) as exc:
            importing.import_org(history=write(tmp_path, "h.csv", HISTORY))
        assert problems(exc) == ["h.csv, line 2, column 'username': emp already has grade history (1 rows); "
                                 "earlier grades are imported when staff are first loaded"]

    def test_a_stored_person_without_history_gets_it_once(self, app, tmp_path):
        importing.import_org(write(tmp_path, "u.csv", UNITS), write(tmp_path, "p.csv", ZH_PEOPLE))
        db.session.commit()
        assert importing.import_org(history=write(tmp_path, "h.csv", HISTORY)).history_rows == 3
        db.session.commit()
        assert importing.import_org(history=write(tmp_path, "h.csv", HISTORY)).history_rows == 0
        assert db.session.scalar(select(func.count()).select_from(GradeHistory)) == 3


class TestAllowances:
    BASE = policy_mod.resolve("bank_corporate").read_text(encoding="utf-8")

    def test_per_level_and_per_tier(self):
        pol = policy_mod.loads(self.BASE + "\nallowances:\n  assistant: 200\n  director: {1: 9000, 2: 9500}\n")
        assert pol.allowance("assistant-3") == 200 and pol.allowance("director-2") == 9500
        assert pol.allowance("manager-1") is None and pol.allowance(None) is None
        assert pol.to_json()["allowances"]["director"] == {"1": 9000, "2": 9500}
        assert "allowances" not in policy_mod.loads(self.BASE).to_json()

    @pytest.mark.parametrize("section, where", [
        ("{boss: 100}", "allowances.boss"),
        ("{assistant: -1}", "allowances.assistant"),
        ("{assistant: lots}", "allowances.assistant"),
        ("{director: {1: 100}}", "allowances.director.2"),
        ("{director: {1: 100, 2: 100, 3: 100}}", "allowances.director.3"),
        ("[100]", "allowances"),
    ])
    def test_bad_allowances_are_refused(self, section, where):
        with pytest.raises(PolicyError) as exc:
            policy_mod.loads(self.BASE + f"\nallowances: {section}\n")
        assert where in str(exc.value)

    def test_quzhou_gives_none_to_trial_and_junior_and_no_figure_above(self):
        pol = policy_mod.load_file("mobile_quzhou")
        assert pol.allowance("trial-1") == 0 and pol.allowance("junior-1") == 0
        assert pol.allowance("intermediate-1") is None and pol.allowance("senior-1") is None


class TestWorkbooks:
    def test_rows_stream_into_the_file_and_formulas_stay_text(self):
        rows = ((i, f"name {i}", dt.date(2026, 1, 1)) for i in range(20000))
        sheets = [exporting.Sheet("big", ["n", "name", "day"], rows),
                  exporting.Sheet("bad:title?", ["x"], [["=1+1"], ["a\x01b"]])]
        with exporting.write(sheets) as out:
            wb = load_workbook(io.BytesIO(out.read()), read_only=True)
        big = list(wb["big"].iter_rows(values_only=True))
        assert len(big) == 20001 and big[-1] == (19999, "name 19999", dt.datetime(2026, 1, 1))
        assert list(wb["bad_title_"].iter_rows(values_only=True)) == [("x",), ("=1+1",), ("ab",)]
        wb.close()
