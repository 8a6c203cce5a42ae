"""Importing absences (`username,start,end,reason`) from CSV and XLSX: all or nothing, errors naming the
line and the column as written, re-imports upserting by person, start and reason; and the CLI command."""
import datetime as dt

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from workflow import importing
from workflow.importing import ImportRefused
from workflow.models import db, Absence

GOOD = """username,start,end,reason
emp,2025-03-01,2025-08-31,maternity
emp,2025-10-08,2025-10-10,sick
emp2,2025-01-06,2025-01-06,personal
far,2025-02-01,2025-11-30,other
"""


def write(tmp_path, name, text, bom=False):
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def absences():
    db.session.expire_all()
    return sorted((a.person.username, a.start.isoformat(), a.end.isoformat(), a.reason)
                  for a in db.session.scalars(select(Absence)))


@pytest.fixture
def loaded(bank, tmp_path):
    result = importing.import_absences(write(tmp_path, "absences.csv", GOOD, bom=True))
    db.session.commit()
    return result


class TestGoodFiles:
    def test_csv(self, loaded):
        assert (loaded.absences_created, loaded.absences_updated) == (4, 0)
        assert loaded.summary() == "absences: 4 created, 0 updated"
        assert absences() == [("emp", "2025-03-01", "2025-08-31", "maternity"),
                              ("emp", "2025-10-08", "2025-10-10", "sick"),
                              ("emp2", "2025-01-06", "2025-01-06", "personal"),
                              ("far", "2025-02-01", "2025-11-30", "other")]
        assert all(a.imported_at for a in db.session.scalars(select(Absence)))

    def test_xlsx_reads_like_csv(self, bank, tmp_path):
        wb = Workbook()
        ws = wb.active
        for row in (["Username", "Start", "End", "Reason"],
                    ["emp", dt.datetime(2025, 3, 1), dt.date(2025, 8, 31), "maternity"],
                    [None, None, None, None], ["far", "2025-02-01", "2025-11-30", "other"]):
            ws.append(row)
        wb.save(tmp_path / "absences.xlsx")
        result = importing.import_absences(tmp_path / "absences.xlsx")
        db.session.commit()
        assert result.absences_created == 2
        assert absences() == [("emp", "2025-03-01", "2025-08-31", "maternity"),
                              ("far", "2025-02-01", "2025-11-30", "other")]

    def test_a_reimport_upserts_by_person_start_and_reason(self, loaded, tmp_path):
        again = ("username,start,end,reason\n"
                 "emp,2025-03-01,2025-09-30,maternity\n"      # same key: the end moves
                 "emp,2025-03-01,2025-03-02,sick\n"           # another reason from the same day: a new row
                 "far,2025-02-01,2025-11-30,other\n")          # unchanged
        result = importing.import_absences(write(tmp_path, "again.csv", again))
        db.session.commit()
        assert (result.absences_created, result.absences_updated) == (1, 2)
        assert absences() == [("emp", "2025-03-01", "2025-03-02", "sick"),
                              ("emp", "2025-03-01", "2025-09-30", "maternity"),
                              ("emp", "2025-10-08", "2025-10-10", "sick"),
                              ("emp2", "2025-01-06", "2025-01-06", "personal"),
                              ("far", "2025-02-01", "2025-11-30", "other")]

    def test_an_empty_file_with_its_header_imports_nothing(self, bank, tmp_path):
        result = importing.import_absences(write(tmp_path, "a.csv", "username,start,end,reason\n"))
        assert result.summary() == "nothing to import"


class TestBadFiles:
    @pytest.mark.parametrize("row, column, message", [
        ("ghost,2025-01-01,2025-01-02,sick", "username", "unknown username 'ghost'"),
        (",2025-01-01,2025-01-02,sick", "username", "is empty"),
        ("emp,,2025-01-02,sick", "start", "is empty"),
        ("emp,2025-13-01,2025-12-02,sick", "start", "not a real date"),
        ("emp,01/02/2025,2025-12-02,sick", "start", "not a date YYYY-MM-DD"),
        ("emp,2025-01-01,,sick", "end", "is empty"),
        ("emp,2025-01-01,2025-02-30,sick", "end", "not a real date"),
        ("emp,2025-05-01,2025-04-30,sick", "end", "2025-04-30 is before the start (2025-05-01)"),
        ("emp,2025-01-01,2025-01-02,", "reason", "is empty"),
        ("emp,2025-01-01,2025-01-02,holiday", "reason",
         "unknown reason 'holiday' (reasons: maternity, sick, personal, other)"),
    ])
    def test_a_bad_row_refuses_the_file(self, loaded, tmp_path, row, column, message):
        before = absences()
        text = "username,start,end,reason\nemp2,2025-06-01,2025-06-03,sick\n" + row + "\n"
        with pytest.raises(ImportRefused) as exc:
            importing.import_absences(write(tmp_path, "bad.csv", text))
        db.session.rollback()
        problem = exc.value.problems[0]
        assert (problem.file, problem.line, problem.column) == (str(tmp_path / "bad.csv"), 3, column)
        assert message in problem.message, problem.message
        assert absences() == before                # the good row on line 2 was not loaded either

    def test_the_same_absence_twice_in_a_file(self, bank, tmp_path):
        text = ("username,start,end,reason\nemp,2025-01-01,2025-01-05,sick\n"
                "emp,2025-01-01,2025-01-09,sick\n")
        with pytest.raises(ImportRefused) as exc:
            importing.import_absences(write(tmp_path, "dup.csv", text))
        assert str(exc.value.problems[0]).endswith(
            "line 3, column 'start': emp already has a sick absence from 2025-01-01 on line 2")

    def test_every_problem_at_once_with_the_header_as_written(self, bank, tmp_path):
        text = "Username,START,End,Reason\nghost,2025-01-01,2025-01-02,sick\nemp,2025-01-01,2025-01-02,rest\n"
        with pytest.raises(ImportRefused) as exc:
            importing.import_absences(write(tmp_path, "two.csv", text))
        assert [(p.line, p.column) for p in exc.value.problems] == [(2, "Username"), (3, "Reason")]

    @pytest.mark.parametrize("header, column, message", [
        ("username,start,end", "reason", "the column is missing from the header"),
        ("username,start,end,reason,note", "note", "unknown column"),
        ("username,start,start,end,reason", "start", "the column appears twice"),
    ])
    def test_bad_headers(self, bank, tmp_path, header, column, message):
        with pytest.raises(ImportRefused) as exc:
            importing.import_absences(write(tmp_path, "h.csv", header + "\n"))
        problem = exc.value.problems[0]
        assert (problem.line, problem.column) == (1, column) and message in problem.message


class TestCommand:
    def test_import_absences(self, bank, app, tmp_path):
        out = app.test_cli_runner().invoke(args=["import-absences", str(write(tmp_path, "a.csv", GOOD))])
        assert out.exit_code == 0, out.output
        assert "absences: 4 created, 0 updated" in out.output
        assert len(absences()) == 4

    def test_a_bad_file_changes_nothing(self, bank, app, tmp_path):
        text = GOOD + "emp,2025-05-01,2025-04-30,sick\nghost,2025-01-01,2025-01-01,other\n"
        out = app.test_cli_runner().invoke(args=["import-absences", str(write(tmp_path, "a.csv", text))])
        assert out.exit_code == 1
        assert "line 6, column 'end': 2025-04-30 is before the start (2025-05-01)" in out.output
        assert "line 7, column 'username': unknown username 'ghost'" in out.output
        assert "refused: 2 problem(s); nothing was changed" in out.output
        assert absences() == []
