"""Import files: org units, people, scores and absences from CSV (UTF-8) or XLSX (see CONTRACT.md,
"Import files").

An import is all or nothing. Every row is checked first, against the policy, the rest of the file and
the database; if anything is wrong, `ImportRefused` carries every problem, each naming the file's line
(the header is line 1), the exact column header and what is wrong, and nothing is changed. Otherwise the
rows are upserted (by unit code, username, person + kind + period, person + start + reason) through
workflow.directory and flushed; the caller commits once, so units and people load in one transaction.
"""
from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import math
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload

from . import audit, clock, directory, engine, i18n, notify
from .errors import Refused, WorkflowError
from .i18n import _l
from .models import db, Absence, Case, GradeHistory, OrgUnit, Person, RoleAssignment, Score
from .models.absences import ABSENCE_REASONS
from .models.org import ROLES
from .policy import Policy

Source = str | Path | bytes | BinaryIO

UNIT_COLUMNS = ("code", "name", "level", "parent_code")
PEOPLE_REQUIRED = ("username", "name", "unit_code")
PEOPLE_OPTIONAL = ("grade", "grade_since", "hired_on", "education", "status", "roles", "password", "email")
SCORE_COLUMNS = ("username", "period", "kind", "value")
ABSENCE_COLUMNS = ("username", "start", "end", "reason")
HISTORY_COLUMNS = ("username", "grade", "grade_since")
# Chinese headers, accepted as aliases of each file's column ids (the first is the one templates write;
# `机构代码` is the unit's own code in the units file, the person's unit in the people file).
UNIT_HEADERS_ZH = {"code": ("机构代码", "单位代码"), "name": ("机构名称", "单位名称"),
                   "level": ("机构层级", "单位层级", "层级"), "parent_code": ("上级机构代码", "上级单位代码")}
PEOPLE_HEADERS_ZH = {"username": ("用户名", "工号"), "name": ("姓名",),
                     "unit_code": ("机构代码", "所在机构代码", "单位代码"),
                     "grade": ("职级",), "grade_since": ("任现职级日期", "定级日期"), "hired_on": ("入职日期",),
                     "education": ("学历",), "status": ("状态", "人员状态"), "roles": ("角色",),
                     "password": ("初始密码", "密码"), "email": ("电子邮箱", "邮箱", "电子邮件")}
SCORE_HEADERS_ZH = {"username": ("用户名", "工号"), "period": ("考核期间", "期间"), "kind": ("考核类别", "类别"),
                    "value": ("得分", "分值", "成绩")}
ABSENCE_HEADERS_ZH = {"username": ("用户名", "工号"), "start": ("开始日期",), "end": ("结束日期",),
                      "reason": ("缺勤原因", "原因")}
HISTORY_HEADERS_ZH = {"username": ("用户名", "工号"), "grade": ("职级",), "grade_since": ("起始日期", "任职级日期")}
# The people file's optional second sheet of earlier grades (an XLSX people file only; else a history file).
HISTORY_SHEETS = ("职级履历", "history", "grade history")
PASS_WORDS = {"pass": True, "fail": False, "通过": True, "不通过": False, "合格": True, "不合格": False}
ROLE_SEPARATORS = re.compile(r"[;；]")
MAX_PROBLEM_ROWS = 200         # problems a refusal lists as rows (all of them as text)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-(?:[Qq](?P<quarter>[1-4])|(?P<month>0[1-9]|1[0-2])))?$")


# --- problems ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One thing wrong with an import file: where (file, line, column header) and what. The message is a
    workflow/i18n.py message, in the reader's language when it is turned into text (English outside a
    request: the command line, a job's worker)."""
    file: str
    line: int
    column: str | None
    message: i18n.Message | str

    def text(self) -> i18n.Message:
        """Where and what, as one message."""
        if self.column:
            return _l("%(file)s, line %(line)s, column '%(column)s': %(message)s", file=self.file,
                      line=self.line, column=self.column, message=self.message)
        return _l("%(file)s, line %(line)s: %(message)s", file=self.file, line=self.line,
                  message=self.message)

    def __str__(self) -> str:
        return str(self.text())

    def row(self) -> dict[str, Any]:
        """{file, line, column, message}: the message still a message, for the API's JSON or a page."""
        return {"file": self.file, "line": self.line, "column": self.column, "message": self.message}

    def stored(self) -> dict[str, Any]:
        """The row as a job keeps it (JSON): the message as text now and, under `stored`, in the form
        `shown_row` shows again in its reader's language."""
        row = {**self.row(), "message": str(self.message)}
        if isinstance(self.message, i18n.Message):
            row["stored"] = self.message.stored()
        return row


def shown_row(row: dict[str, Any]) -> dict[str, Any]:
    """A problem row a job stored (`Problem.stored`) as {file, line, column, message}, the message in the
    current language (as stored when it was kept as text only)."""
    message = i18n.from_stored(row.get("stored"))
    return {k: v for k, v in row.items() if k != "stored"} | (
        {"message": str(message)} if message is not None else {})


def shown_details(details: dict[str, Any]) -> dict[str, Any]:
    """A refused import's details as a job stored them (`ImportRefused.stored_details`), in the current
    language: the rows' messages, the problems (each the row of the same index, where the row has its
    message) and the summary message."""
    rows = details.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return details
    shown = [shown_row(r) for r in rows]
    problems = list(details.get("problems") or [])
    for i, (stored, row) in enumerate(zip(rows, shown)):
        if i < len(problems) and "stored" in stored:
            problems[i] = str(Problem(row.get("file"), row.get("line"), row.get("column"), row["message"]))
    out = {**details, "rows": shown, "problems": problems}
    message = i18n.from_stored(details.get("message"))
    if message is not None:
        out["message"] = str(message)
    return out


def _refusal(problems: list[Problem]) -> i18n.Message:
    if not problems:
        return _l("the import was refused, nothing was changed")
    if len(problems) == 1:
        return _l("the import was refused, nothing was changed: %(first)s", first=problems[0].text())
    return _l("the import was refused, nothing was changed: %(first)s (%(more)s more problems)",
              first=problems[0].text(), more=len(problems) - 1)


class ImportRefused(WorkflowError):
    """The import was refused whole; `problems` lists everything that is wrong. Nothing was changed. Its
    message and its details' messages are translated when shown (the API: in the request's language);
    a job keeps `stored_details()` instead."""
    status, code = 422, "import_refused"

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        # `rows`: the first MAX_PROBLEM_ROWS problems as {file, line, column, message}, for a table of them
        super().__init__(_refusal(problems), problems=[p.text() for p in problems],
                         rows=[p.row() for p in problems[:MAX_PROBLEM_ROWS]])

    def stored_details(self) -> dict[str, Any]:
        """The details as JSON, for a job: the problems and rows' messages as text now (English in a
        worker), each row's and the refusal's own message also in the form `shown_details` translates."""
        return {"problems": [str(p) for p in self.problems],
                "rows": [p.stored() for p in self.problems[:MAX_PROBLEM_ROWS]],
                "message": self.message.stored()}


@dataclass
class ImportResult:
    units_created: int = 0
    units_updated: int = 0
    people_created: int = 0
    people_updated: int = 0
    grade_changes: int = 0
    role_changes: int = 0
    passwords_set: int = 0
    scores_created: int = 0
    scores_updated: int = 0
    probations_opened: int = 0
    absences_created: int = 0
    absences_updated: int = 0
    history_rows: int = 0

    def summary(self) -> str:
        parts = []
        if self.units_created or self.units_updated:
            parts.append(f"units: {self.units_created} created, {self.units_updated} updated")
        if self.people_created or self.people_updated:
            parts.append(f"people: {self.people_created} created, {self.people_updated} updated "
                         f"({self.grade_changes} grade changes, {self.role_changes} role changes, "
                         f"{self.passwords_set} passwords set)")
        if self.scores_created or self.scores_updated:
            parts.append(f"scores: {self.scores_created} created, {self.scores_updated} updated")
        if self.history_rows:
            parts.append(f"grade history: {self.history_rows} rows")
        if self.probations_opened:
            parts.append(f"probations opened: {self.probations_opened}")
        if self.absences_created or self.absences_updated:
            parts.append(f"absences: {self.absences_created} created, {self.absences_updated} updated")
        return "; ".join(parts) or "nothing to import"


# --- reading files -----------------------------------------------------------------------------------

Row = tuple[int, dict[str, str]]     # (line, {column: text})


@dataclass
class Table:
    """A file's rows as {column: text}, with their line numbers; blank rows are left out. A streamed table
    (`read_table(..., stream=True)`) yields its rows once, as they are read, instead of holding them."""
    name: str
    columns: list[str]
    rows: list[Row] | Iterator[Row] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)   # normalised column -> header as written

    def header(self, column: str) -> str:
        return self.headers.get(column, column)


def _read_bytes(source: Source) -> tuple[bytes, str]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        return path.read_bytes(), str(source)
    if isinstance(source, bytes):
        return source, "upload"
    name = getattr(source, "filename", None) or getattr(source, "name", None) or "upload"
    return source.read(), str(name)


def _cell(value: Any) -> str:
    """A spreadsheet cell as the text a CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _xlsx_rows(wb, ws, name: str, problems: list[Problem]) -> Iterator[list[str]]:
    """The sheet's rows, read one at a time (openpyxl's read-only mode keeps no sheet in memory)."""
    line = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for line, row in enumerate(ws.iter_rows(values_only=True), start=1):
                yield [_cell(v) for v in row]
    except Exception as exc:   # a damaged sheet: openpyxl raises many kinds
        problems.append(Problem(name, line + 1, None, _l("cannot read the XLSX file (%(error)s)",
                                                         error=f"{exc.__class__.__name__}: {exc}")))
    finally:
        wb.close()


def _sheet(ws_list, sheets: tuple[str, ...] | None):
    """The first sheet, or with `sheets` the first whose title (case and spaces aside) is one of them."""
    if sheets is None:
        return ws_list[0]
    wanted = {s.strip().lower() for s in sheets}
    return next((ws for ws in ws_list if ws.title.strip().lower() in wanted), None)


def _raw_rows(data: bytes, name: str, problems: list[Problem],
              sheets: tuple[str, ...] | None = None) -> Iterator[list[str]] | None:
    """The file's rows of cells (an XLSX file's first sheet, or the sheet `sheets` names), streamed; None
    (with a problem) when the file cannot be read at all, or (without one) when it has no such sheet."""
    if sheets is not None and data[:4] != b"PK\x03\x04":
        return None
    if data[:4] == b"PK\x03\x04":
        try:
            from openpyxl import load_workbook
            with warnings.catch_warnings():
                # openpyxl warns about styles and extensions it ignores; they do not matter here.
                warnings.simplefilter("ignore")
                wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
                if not wb.worksheets:
                    raise ValueError("the workbook has no sheet")
        except Exception as exc:   # a damaged or foreign zip: openpyxl raises many kinds
            problems.append(Problem(name, 1, None, _l("cannot read the XLSX file (%(error)s)",
                                                      error=f"{exc.__class__.__name__}: {exc}")))
            return None
        ws = _sheet(wb.worksheets, sheets)
        if ws is None:
            wb.close()
            return None
        return _xlsx_rows(wb, ws, name, problems)
    if data[:4] == b"\xd0\xcf\x11\xe0":
        problems.append(Problem(name, 1, None,
                                _l("old Excel (.xls) files are not read; save it as XLSX or CSV UTF-8")))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        problems.append(Problem(name, line, None, _l(
            "the file is not UTF-8 text (in Excel: Save As 'CSV UTF-8', or use XLSX)")))
        return None
    return _csv_rows(text, name, problems)


def _csv_rows(text: str, name: str, problems: list[Problem]) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            yield [c.strip() for c in row]
    except csv.Error as exc:
        problems.append(Problem(name, reader.line_num or 1, None,
                                _l("not a readable CSV file: %(error)s", error=str(exc))))


def read_table(source: Source, required: tuple[str, ...], optional: tuple[str, ...] = (),
               problems: list[Problem] | None = None, stream: bool = False,
               aliases: dict[str, tuple[str, ...]] | None = None,
               sheets: tuple[str, ...] | None = None) -> Table | None:
    """Read a CSV or XLSX file (first sheet) with a header row. A header may be a column's id or one of its
    `aliases` (Chinese headers: {column: (header, ...)}). Problems with the file itself or its header go
    to `problems` (or raise ImportRefused when none is given) and the answer is None. With `stream`, the
    table's rows are read as they are iterated (once); problems found on the way join `problems`. With
    `sheets`, the XLSX sheet of one of those titles is read instead, and a file without one answers None
    with no problem."""
    own = problems is None
    problems = [] if own else problems
    try:
        data, name = _read_bytes(source)
    except OSError as exc:
        problems.append(Problem(str(source), 1, None,
                                _l("cannot read the file: %(error)s", error=str(exc.strerror or exc))))
        data, name = None, str(source)
    raw = _raw_rows(data, name, problems, sheets) if data is not None else None
    table = None
    if raw is not None:
        if sheets is not None:
            name = f"{name} [{sheets[0]}]"
        table = _table(raw, name, required, optional, problems, aliases or {})
        if table is not None and not stream:
            table.rows = list(table.rows)
    if own and problems:
        raise ImportRefused(problems)
    return table


def _table(raw: Iterator[list[str]], name: str, required, optional, problems: list[Problem],
           aliases: dict[str, tuple[str, ...]]) -> Table | None:
    first = next(raw, None)
    if not first or not any(first):
        problems.append(Problem(name, 1, None, _l("the first line must be the header: %(columns)s",
                                                  columns=",".join(required))))
        return None
    header = list(first)
    while header and not header[-1]:
        header.pop()
    by_alias = {alias: col for col, names in aliases.items() for alias in names}
    columns, headers, bad = [], {}, False
    for text in header:
        col = text.strip().lower()
        col = by_alias.get(text.strip(), col)
        if not col:
            problems.append(Problem(name, 1, None, _l("a column has no header")))
            bad = True
        elif col in headers:
            problems.append(Problem(name, 1, text, _l("the column appears twice")))
            bad = True
        elif col not in required and col not in optional:
            known = ", ".join(f"{c} ({aliases[c][0]})" if c in aliases else c for c in required + optional)
            problems.append(Problem(name, 1, text, _l("unknown column (columns: %(known)s)", known=known)))
            bad = True
        headers[col] = text
        columns.append(col)
    for col in required:
        if col not in headers:
            problems.append(Problem(name, 1, col, _l("the column is missing from the header")))
            bad = True
    if bad:
        return None
    return Table(name, columns, rows=_rows(raw, name, columns, problems), headers=headers)


def _rows(raw: Iterator[list[str]], name: str, columns: list[str],
          problems: list[Problem]) -> Iterator[tuple[int, dict[str, str]]]:
    for line, cells in enumerate(raw, start=2):
        if not any(cells):
            continue
        extra = [c for c in cells[len(columns):] if c]
        if extra:
            problems.append(Problem(name, line, None, _l("the row has %(cells)s cells but the header only "
                                                         "%(columns)s columns", cells=len(cells),
                                                         columns=len(columns))))
            continue
        cells = list(cells) + [""] * (len(columns) - len(cells))
        yield line, dict(zip(columns, cells))


# --- values ------------------------------------------------------------------------------------------

class _Bad(Exception):
    """A value is wrong; its one argument is the message."""


def _date(text: str) -> dt.date | None:
    if not text:
        return None
    if not _DATE.match(text):
        raise _Bad(_l("'%(value)s' is not a date YYYY-MM-DD", value=text))
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _Bad(_l("'%(value)s' is not a real date", value=text)) from None


def parse_period(text: str) -> tuple[str, str, dt.date, dt.date]:
    """`2025`, `2025-Q3` or `2025-07` -> (period, granularity, first day, last day). ValueError otherwise
    (its one argument the message)."""
    m = _PERIOD.match((text or "").strip())
    if not m:
        raise ValueError(_l("'%(value)s' is not a period: use a year (2025), a quarter (2025-Q3) "
                            "or a month (2025-07)", value=text))
    year = int(m["year"])
    if not 1900 <= year <= 2200:
        raise ValueError(_l("'%(value)s': the year %(year)s is out of range", value=text, year=year))
    if m["quarter"]:
        q = int(m["quarter"])
        start, end_month = dt.date(year, 3 * q - 2, 1), 3 * q
        end = dt.date(year, end_month, calendar.monthrange(year, end_month)[1])
        return f"{year}-Q{q}", "quarter", start, end
    if m["month"]:
        month = int(m["month"])
        return (f"{year}-{month:02d}", "month", dt.date(year, month, 1),
                dt.date(year, month, calendar.monthrange(year, month)[1]))
    return str(year), "year", dt.date(year, 1, 1), dt.date(year, 12, 31)


class _Checker:
    """Collects the problems of one table's rows."""

    def __init__(self, table: Table, problems: list[Problem]):
        self.table, self.problems = table, problems
        self.line = 0
        self.failed = False
        self.bad_lines: set[int] = set()

    def row(self, line: int) -> None:
        self.line, self.failed = line, False

    def bad(self, column: str | None, message: i18n.Message | str) -> None:
        self.failed = True
        self.bad_lines.add(self.line)
        header = self.table.header(column) if column else None
        self.problems.append(Problem(self.table.name, self.line, header, message))

    def header(self, column: str) -> str:
        """The column as this file's header names it (the id or its Chinese header), for a message."""
        return self.table.header(column)

    def first_time(self, column: str, key: str, seen: dict[str, int]) -> bool:
        """Whether `key` (the row's code or username) appears here for the first time in the file; a
        repeat is a problem naming the line it was first on."""
        if key in seen:
            self.bad(column, _l("'%(value)s' is already on line %(line)s", value=key, line=seen[key]))
            return False
        if key:
            seen[key] = self.line
        return True

    def text(self, row: dict[str, str], column: str, required: bool = True, max_len: int | None = None,
             spaces: bool = True) -> str:
        value = row.get(column, "")
        if required and not value:
            self.bad(column, _l("is empty"))
        elif max_len and len(value) > max_len:
            self.bad(column, _l("is longer than %(max)s characters", max=max_len))
        elif not spaces and any(c.isspace() for c in value):
            self.bad(column, _l("'%(value)s' must not contain spaces", value=value))
        return value

    def date(self, row: dict[str, str], column: str) -> dt.date | None:
        try:
            return _date(row.get(column, ""))
        except _Bad as exc:
            self.bad(column, exc.args[0])
            return None

    def grade(self, row: dict[str, str], column: str, policy: Policy) -> str | None:
        """The row's grade as LEVEL-TIER (None when empty or wrong: a problem names what is wrong)."""
        text = (row.get(column) or "").strip()
        if not text:
            return None
        try:
            level, tier = policy.parse_grade(text)
        except ValueError:
            self.bad(column, _grade_problem(policy, text))
            return None
        return f"{level}-{tier}"


def _grade_problem(policy: Policy, text: str) -> i18n.Message:
    """What `Policy.parse_grade` refuses in `text`, as a message."""
    level, sep, tier = text.rpartition("-") if "-" in text else (text, "", "")
    if sep and not tier.isdigit():
        return _l("'%(value)s' is not LEVEL or LEVEL-TIER", value=text)
    if level not in policy.level_ids:
        return _l("unknown level '%(level)s' (levels: %(levels)s)", level=level,
                  levels=", ".join(policy.level_ids))
    return _l("level '%(level)s' has tiers 1 to %(tiers)s, not %(tier)s", level=level,
              tiers=policy.level(level).tiers, tier=int(tier) if sep else 1)


# --- units -------------------------------------------------------------------------------------------

@dataclass
class UnitRow:
    line: int
    code: str
    name: str
    level: str
    parent_code: str | None


def check_units(table: Table, policy: Policy, problems: list[Problem]) -> list[UnitRow]:
    """The valid unit rows, in an order that puts every parent before its children."""
    chk = _Checker(table, problems)
    by_id = {r.id: r for r in db.session.execute(
        select(OrgUnit.id, OrgUnit.code, OrgUnit.level, OrgUnit.parent_id))}
    # The tree as it will be: code -> (level, parent code), the database's units overlaid by the file's.
    tree: dict[str, tuple[str, str | None]] = {
        r.code: (r.level, by_id[r.parent_id].code if r.parent_id else None) for r in by_id.values()}
    in_db = set(tree)
    first_line: dict[str, int] = {}
    good: dict[str, UnitRow] = {}
    for line, row in table.rows:
        chk.row(line)
        code = chk.text(row, "code", max_len=directory.CODE_MAX, spaces=False)
        if not chk.first_time("code", code, first_line):
            continue
        name = chk.text(row, "name", max_len=directory.NAME_MAX)
        level = chk.text(row, "level")
        if level and level not in policy.org_level_ids:
            chk.bad("level", _l("unknown org level '%(level)s' (levels: %(levels)s)", level=level,
                                levels=", ".join(policy.org_level_ids)))
        parent = row.get("parent_code") or None
        if parent is not None and parent == code:
            chk.bad("parent_code", _l("a unit cannot be its own parent"))
        if not chk.failed:
            good[code] = UnitRow(line, code, name, level, parent)
            tree[code] = (level, parent)
    children: dict[str, list[str]] = {}
    for child, (_, parent) in tree.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    for code, r in good.items():
        chk.row(r.line)
        for child in children.get(code, ()):
            if child not in good:      # a unit of the file checks its own parent
                problem = directory.check_unit_levels(policy, tree[child][0], r.level)
                if problem:
                    chk.bad("level", _l("its sub-unit %(child)s: %(problem)s", child=child, problem=problem))
        if r.parent_code is None:
            continue
        if r.parent_code not in tree:
            if r.parent_code in first_line:
                chk.bad("parent_code", _l("the unit '%(code)s' (line %(line)s) is not valid",
                                          code=r.parent_code, line=first_line[r.parent_code]))
            else:
                chk.bad("parent_code", _l("unknown unit '%(code)s' (neither in this file nor in the "
                                          "database)", code=r.parent_code))
            continue
        problem = directory.check_unit_levels(policy, r.level, tree[r.parent_code][0])
        if problem:
            chk.bad("level", problem)
    _check_cycles_and_root(chk, good, tree, in_db)
    valid = [r for r in good.values() if r.line not in chk.bad_lines]
    return sorted(valid, key=lambda r: (_depth(r.code, tree), r.line))


def _depth(code: str, tree: dict[str, tuple[str, str | None]]) -> int:
    depth, seen = 0, set()
    while code is not None and code in tree and code not in seen:
        seen.add(code)
        code = tree[code][1]
        depth += 1
    return depth


def _check_cycles_and_root(chk: _Checker, good: dict[str, UnitRow], tree, in_db: set[str]) -> None:
    reported: set[str] = set()
    for code, r in good.items():
        path, node = [code], tree[code][1]
        while node is not None and node in tree and node != code and len(path) <= len(tree):
            path.append(node)
            node = tree[node][1]
        if node == code and code not in reported:
            reported.update(path)
            chk.row(r.line)
            chk.bad("parent_code", _l("'%(code)s' makes a cycle: %(cycle)s", code=r.parent_code,
                                      cycle=" > ".join(path + [code])))
    roots = [c for c, (_, parent) in tree.items() if parent is None]
    if len(roots) > 1:
        in_file = sorted((c for c in roots if c in good), key=lambda c: good[c].line)
        first = ([c for c in roots if c in in_db] or in_file)[0]
        for c in roots:
            if c != first and c in good:
                chk.row(good[c].line)
                if first in good:
                    chk.bad("parent_code", _l("is empty, but the tree already has its root '%(root)s' (line "
                                              "%(line)s); name a parent unit", root=first,
                                              line=good[first].line))
                else:
                    chk.bad("parent_code", _l("is empty, but the tree already has its root '%(root)s' (the "
                                              "database); name a parent unit", root=first))


# --- people ------------------------------------------------------------------------------------------

@dataclass(slots=True)
class PersonRow:
    line: int
    username: str
    values: dict[str, Any]
    roles: list[str] | None          # None: the file has no roles column (keep the person's roles)
    password: str | None             # None: keep the current one


def _existing_people(usernames: list[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    for i in range(0, len(usernames), 500):
        part = usernames[i:i + 500]
        found.update({p.username: p
                      for p in db.session.scalars(select(Person).where(Person.username.in_(part)))})
    return found


def _blocks(rows: Iterable, size: int) -> Iterator[list]:
    block = []
    for item in rows:
        block.append(item)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def check_people(table: Table, policy: Policy, unit_codes: set[str],
                 problems: list[Problem]) -> list[PersonRow]:
    """The valid people rows. The table's rows are read once, in blocks of 500 (a streamed table is never
    held whole); each block looks up its stored people in one query."""
    chk = _Checker(table, problems)
    cols = set(table.columns)
    open_case = dict(db.session.execute(
        select(Case.employee_id, Case.id).where(Case.closed.is_(False))).all())
    education = [e.id for e in policy.education]
    seen: dict[str, int] = {}
    out = []
    for block in _blocks(table.rows, 500):
        existing = _existing_people([row.get("username", "") for _, row in block])
        for line, row in block:
            chk.row(line)
            _check_person(chk, row, cols, policy, unit_codes, existing, open_case, education, seen, out)
    return out


def _check_person(chk: _Checker, row: dict[str, str], cols: set[str], policy: Policy, unit_codes: set[str],
                  existing: dict[str, Person], open_case: dict[int, int], education: list[str],
                  seen: dict[str, int], out: list[PersonRow]) -> None:
    line = chk.line
    username = chk.text(row, "username", max_len=directory.USERNAME_MAX, spaces=False)
    if not chk.first_time("username", username, seen):
        return
    person = existing.get(username)
    values: dict[str, Any] = {"name": chk.text(row, "name", max_len=directory.NAME_MAX)}
    unit_code = chk.text(row, "unit_code")
    if unit_code and unit_code not in unit_codes:
        chk.bad("unit_code", _l("unknown unit '%(code)s' (neither in the units file nor in the database)",
                                code=unit_code))
    values["unit_code"] = unit_code

    grade = person.grade if person and "grade" not in cols else None
    if row.get("grade"):
        grade = chk.grade(row, "grade", policy)
    values["grade"] = grade
    if "grade_since" in cols or person is None:
        since = chk.date(row, "grade_since")
        if grade and since is None and not row.get("grade_since"):
            chk.bad("grade_since", _l("is empty; a person with a grade needs the date they reached it"))
    else:   # no such column: the date stays, or a new grade starts today
        since = person.grade_since if grade == person.grade else (clock.today() if grade else None)
    if not grade and row.get("grade_since") and "grade" in cols and not row.get("grade"):
        chk.bad("grade_since", _l("is given but %(grade)s is empty", grade=chk.header("grade")))
    values["grade_since"] = since
    if person and grade != person.grade and person.id in open_case:
        chk.bad("grade", _l("%(username)s has an open case (#%(case)s); the grade changes when it ends, not "
                            "by import", username=username, case=open_case[person.id]))

    values["hired_on"] = (person.hired_on if person and "hired_on" not in cols
                          else chk.date(row, "hired_on"))
    if "education" in cols:
        edu = row.get("education") or None
        if edu is not None and edu not in education:
            chk.bad("education", _l("unknown education '%(education)s' (one of: %(known)s)", education=edu,
                                    known=", ".join(education)))
        values["education"] = edu
    else:
        values["education"] = person.education if person else None
    values["email"] = person.email if person else None
    if "email" in cols:     # where notifications are mailed (workflow/notify.py); empty: none
        try:
            values["email"] = notify.check_email(row.get("email"))
        except WorkflowError as exc:
            chk.bad("email", exc.message)
    if "status" in cols:
        status = row.get("status") or "active"
        if status == "dismissed":
            chk.bad("status", _l("'dismissed' is set by a dismissal case, not by an import"))
        elif status not in directory.EDITABLE_STATUSES:
            chk.bad("status", _l("unknown status '%(status)s' (one of: %(known)s)", status=status,
                                 known=", ".join(directory.EDITABLE_STATUSES)))
        values["status"] = status
    else:
        values["status"] = person.status if person else "active"
    if person and person.status == "dismissed":
        chk.bad("username", _l("%(username)s was dismissed; an import cannot re-employ them",
                               username=username))

    roles = None
    if "roles" in cols:
        roles = []
        for spec in filter(None, (s.strip() for s in ROLE_SEPARATORS.split(row.get("roles", "")))):
            role, at, code = spec.partition("@")
            role, code = role.strip(), code.strip()
            if not at or not role or not code:
                chk.bad("roles", _l("'%(spec)s' is not ROLE@UNIT_CODE", spec=spec))
            elif role not in ROLES:
                chk.bad("roles", _l("unknown role '%(role)s' in '%(spec)s' (roles: %(roles)s)", role=role,
                                    spec=spec, roles=", ".join(ROLES)))
            elif code not in unit_codes:
                chk.bad("roles", _l("unknown unit '%(code)s' in '%(spec)s'", code=code, spec=spec))
            else:
                roles.append(f"{role}@{code}")
    password = row.get("password") or None
    if password is not None:
        problem = directory.check_password(password)
        if problem:
            chk.bad("password", problem)
    if not chk.failed:
        out.append(PersonRow(line, username, values, roles, password))


# --- scores ------------------------------------------------------------------------------------------

@dataclass
class ScoreRow:
    line: int
    person: Person
    kind: str
    period: str
    granularity: str
    start: dt.date
    end: dt.date
    value: float | None
    passed: bool | None


def check_scores(table: Table, policy: Policy, problems: list[Problem]) -> list[ScoreRow]:
    chk = _Checker(table, problems)
    people = _existing_people([row.get("username", "") for _, row in table.rows])
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for line, row in table.rows:
        chk.row(line)
        username = chk.text(row, "username")
        person = people.get(username)
        if username and person is None:
            chk.bad("username", _l("unknown username '%(username)s'", username=username))
        period = gran = start = end = None
        text = chk.text(row, "period")
        if text:
            try:
                period, gran, start, end = parse_period(text)
            except ValueError as exc:
                problem = exc.args[0]
                if _DATE.match(text):
                    problem = _l("%(problem)s (in Excel, format the column as text)", problem=problem)
                chk.bad("period", problem)
        kind = chk.text(row, "kind")
        spec = policy.score_kinds.get(kind)
        if kind and spec is None:
            chk.bad("kind", _l("unknown score kind '%(kind)s' (kinds: %(kinds)s)", kind=kind,
                               kinds=", ".join(policy.score_kinds)))
        value, passed = None, None
        raw = chk.text(row, "value")
        if raw and spec is not None:
            if raw.lower() in PASS_WORDS:
                if spec.pass_fail:
                    passed = PASS_WORDS[raw.lower()]
                else:
                    chk.bad("value", _l("'%(value)s': %(kind)s takes a number from %(min)s to %(max)s",
                                        value=raw, kind=kind, min=f"{spec.min:g}", max=f"{spec.max:g}"))
            else:
                try:
                    value = float(raw)
                    if not math.isfinite(value):
                        raise ValueError
                except ValueError:
                    if spec.pass_fail:
                        chk.bad("value", _l("'%(value)s' is not a number from %(min)s to %(max)s or "
                                            "pass/fail", value=raw, min=f"{spec.min:g}", max=f"{spec.max:g}"))
                    else:
                        chk.bad("value", _l("'%(value)s' is not a number from %(min)s to %(max)s", value=raw,
                                            min=f"{spec.min:g}", max=f"{spec.max:g}"))
                    value = None
                else:
                    if not spec.min <= value <= spec.max:
                        chk.bad("value", _l("%(value)s is out of range for %(kind)s (%(min)s to %(max)s)",
                                            value=raw, kind=kind, min=f"{spec.min:g}", max=f"{spec.max:g}"))
        key = (username, kind, period or text)
        if username and kind and text:
            if key in seen:
                chk.bad("period", _l("%(username)s already has a %(kind)s score for %(period)s on line "
                                     "%(line)s", username=username, kind=kind, period=period or text,
                                     line=seen[key]))
            else:
                seen[key] = line
        if not chk.failed:
            out.append(ScoreRow(line, person, kind, period, gran, start, end, value, passed))
    return out


# --- absences ----------------------------------------------------------------------------------------

@dataclass
class AbsenceRow:
    line: int
    person: Person
    start: dt.date
    end: dt.date
    reason: str


def check_absences(table: Table, problems: list[Problem]) -> list[AbsenceRow]:
    chk = _Checker(table, problems)
    people = _existing_people([row.get("username", "") for _, row in table.rows])
    seen: dict[tuple[str, dt.date, str], int] = {}
    out = []
    for line, row in table.rows:
        chk.row(line)
        username = chk.text(row, "username")
        person = people.get(username)
        if username and person is None:
            chk.bad("username", _l("unknown username '%(username)s'", username=username))
        start = chk.date(row, "start") if chk.text(row, "start") else None
        end = chk.date(row, "end") if chk.text(row, "end") else None
        if start and end and end < start:
            chk.bad("end", _l("%(end)s is before the start (%(start)s)", end=end.isoformat(),
                              start=start.isoformat()))
        reason = chk.text(row, "reason")
        if reason and reason not in ABSENCE_REASONS:
            chk.bad("reason", _l("unknown reason '%(reason)s' (reasons: %(reasons)s)", reason=reason,
                                 reasons=", ".join(ABSENCE_REASONS)))
        key = (username, start, reason)
        if username and start and reason:
            if key in seen:
                chk.bad("start", _l("%(username)s already has a %(reason)s absence from %(start)s on line "
                                    "%(line)s", username=username, reason=reason, start=start.isoformat(),
                                    line=seen[key]))
            else:
                seen[key] = line
        if not chk.failed:
            out.append(AbsenceRow(line, person, start, end, reason))
    return out


# --- grade history -----------------------------------------------------------------------------------

@dataclass
class HistoryPlan:
    """A person's earlier grades, checked: the grade-history rows (from, to, date) to write, ending with
    the move into the current grade on its `grade_since`."""
    line: int                                   # the person's first history line
    username: str
    rows: list[tuple[str | None, str, dt.date]]


def check_history(table: Table, policy: Policy, people: list[PersonRow],
                  problems: list[Problem]) -> list[HistoryPlan]:
    """The earlier grades of staff loaded for the first time (职级履历): rows `username, grade, grade_since`,
    each person's in the order they held them. Each person is in the people file or the database, has a
    grade now, and has no grade history yet (or exactly this one: a re-run); the dates go up, none before
    the person was hired and none on or after the current grade's `grade_since`; two grades in a row
    differ, and the last differs from the current one."""
    chk = _Checker(table, problems)
    in_file = {r.username: r for r in people}
    rows = list(table.rows)
    stored = _existing_people([row.get("username", "") for _, row in rows
                               if row.get("username", "") not in in_file])
    today = clock.today()
    by_person: dict[str, list[tuple[int, str, dt.date]]] = {}
    last_line: dict[str, int] = {}
    for line, row in rows:
        chk.row(line)
        username = chk.text(row, "username")
        person_row, person = in_file.get(username), stored.get(username)
        if username and person_row is None and person is None:
            chk.bad("username", _l("unknown username '%(username)s' (neither in the people file nor in the "
                                   "database)", username=username))
        grade = None
        if chk.text(row, "grade"):
            grade = chk.grade(row, "grade", policy)
        since = chk.date(row, "grade_since") if chk.text(row, "grade_since") else None
        if since and since > today:
            chk.bad("grade_since", _l("%(date)s is in the future", date=since.isoformat()))
        if chk.failed:
            continue
        current = (person_row.values if person_row else
                   {"grade": person.grade, "grade_since": person.grade_since, "hired_on": person.hired_on})
        earlier = by_person.setdefault(username, [])
        if not current["grade"]:
            chk.bad("username", _l("%(username)s has no grade; earlier grades lead to a current one",
                                   username=username))
        elif current["grade_since"] and since >= current["grade_since"]:
            chk.bad("grade_since", _l("%(date)s is not before %(username)s's current grade, held since "
                                      "%(since)s", date=since.isoformat(), username=username,
                                      since=current["grade_since"].isoformat()))
        if current["hired_on"] and since < current["hired_on"]:
            chk.bad("grade_since", _l("%(date)s is before %(username)s was hired (%(hired)s)",
                                      date=since.isoformat(), username=username,
                                      hired=current["hired_on"].isoformat()))
        if earlier:
            prev_line, prev_grade, prev_since = earlier[-1]
            if since <= prev_since:
                chk.bad("grade_since", _l("%(date)s is not after the previous grade's date (%(previous)s, "
                                          "line %(line)s); list each person's grades in the order they were "
                                          "held", date=since.isoformat(), previous=prev_since.isoformat(),
                                          line=prev_line))
            elif grade == prev_grade:
                chk.bad("grade", _l("%(grade)s is the same grade as on line %(line)s", grade=grade,
                                    line=prev_line))
        if not chk.failed:
            earlier.append((line, grade, since))
            last_line[username] = line
    plans = []
    for username, earlier in by_person.items():
        if not earlier:
            continue
        person_row = in_file.get(username)
        current_grade = person_row.values["grade"] if person_row else stored[username].grade
        current_since = person_row.values["grade_since"] if person_row else stored[username].grade_since
        chk.row(last_line[username])
        if current_grade and earlier[-1][1] == current_grade:
            chk.bad("grade", _l("%(grade)s is %(username)s's current grade; list only the grades before it",
                                grade=current_grade, username=username))
            continue
        chain = [(None if i == 0 else earlier[i - 1][1], grade, since)
                 for i, (_, grade, since) in enumerate(earlier)]
        chain.append((earlier[-1][1], current_grade, current_since))
        plans.append(HistoryPlan(earlier[0][0], username, chain))
    _check_stored_history(chk, plans, people, stored)
    return [p for p in plans if p.line not in chk.bad_lines]


def _history_of(person_ids: list[int]) -> dict[int, list[tuple[str | None, str | None, dt.date]]]:
    found: dict[int, list] = {}
    for i in range(0, len(person_ids), 500):
        for h in db.session.scalars(select(GradeHistory).where(GradeHistory.person_id.in_(person_ids[i:i + 500]))
                                    .order_by(GradeHistory.effective_on, GradeHistory.id)):
            found.setdefault(h.person_id, []).append((h.from_grade, h.to_grade, h.effective_on))
    return found


def _check_stored_history(chk: _Checker, plans: list[HistoryPlan], people: list[PersonRow],
                          stored: dict[str, Person]) -> None:
    """History is loaded with staff the first time: a stored person who has grade history (other than
    exactly this, from an earlier run of the same file), or whose grade this import changes, is refused."""
    file_rows = {r.username: r for r in people}
    stored = {**stored, **_existing_people([p.username for p in plans if p.username in file_rows])}
    history = _history_of([stored[p.username].id for p in plans if p.username in stored])
    for plan in plans:
        person = stored.get(plan.username)
        if person is None:
            continue
        chk.row(plan.line)
        have = history.get(person.id, [])
        if have and have != plan.rows:
            chk.bad("username", _l("%(username)s already has grade history (%(rows)s rows); earlier grades "
                                   "are imported when staff are first loaded", username=plan.username,
                                   rows=len(have)))
        elif plan.username in file_rows and file_rows[plan.username].values["grade"] != person.grade:
            chk.bad("username", _l("this import changes %(username)s's grade; load the grade first, then the "
                                   "earlier grades", username=plan.username))


def _load_history(plan: "OrgPlan", items: list[HistoryPlan], actor: Person | None, result: "ImportResult") -> None:
    """Write the checked history of these people (skipping anyone whose rows are already there: a load
    that stopped half-way goes on), with a `grade_history` event on each person's audit chain."""
    people = {p.username: p for p in db.session.scalars(
        select(Person).where(Person.username.in_([h.username for h in items])))}
    history = _history_of([p.id for p in people.values()])
    for h in items:
        person = people[h.username]
        if history.get(person.id) == h.rows:
            continue
        with _at(plan.history_file, h.line):
            for from_grade, to_grade, since in h.rows:
                db.session.add(GradeHistory(person_id=person.id, from_grade=from_grade, to_grade=to_grade,
                                            effective_on=since, source="import"))
                result.history_rows += 1
            audit.append(person, action="grade_history", actor=actor, role=directory._role(actor, person),
                         unit=person.unit.code,
                         data={"source": "import", "rows": [{"from": f, "to": t, "on": d.isoformat()}
                                                             for f, t, d in h.rows]})


# --- the imports -------------------------------------------------------------------------------------

@dataclass
class OrgPlan:
    """A checked import of units and people, ready to load: `total` steps (a unit, a person, a probation
    to open), loaded in order; `load_org` may start at any step, so a load that stopped half-way goes on
    where it stopped."""
    policy: Policy
    units_file: str | None
    people_file: str | None
    units: list[UnitRow]
    people: list[PersonRow]
    probations: list[int]           # indexes into `people` of the rows with status probation
    history: list[HistoryPlan] = field(default_factory=list)
    history_file: str | None = None

    @property
    def total(self) -> int:
        return len(self.units) + len(self.people) + len(self.history) + len(self.probations)


class _Blob:
    """A file read once, to be read again (the people file's history sheet): its bytes and its name."""

    def __init__(self, data: bytes, name: str):
        self.name, self._data = name, data

    def read(self) -> bytes:
        return self._data


def check_org(units: Source | None = None, people: Source | None = None, *,
              policy: Policy | None = None, history: Source | None = None) -> OrgPlan:
    """Read and check the files whole (the people file streamed, row by row) against the policy, each other
    and the database; raise ImportRefused with every problem, or answer the plan. Writes nothing. The
    earlier grades of the people (`history`, or else an XLSX people file's sheet 职级履历 / history) are
    checked with them (see `check_history`)."""
    pol = policy if policy is not None else engine.active_policy()[1]
    problems: list[Problem] = []
    unit_table = (read_table(units, UNIT_COLUMNS, (), problems, aliases=UNIT_HEADERS_ZH)
                  if units is not None else None)
    history_table = None
    if people is not None and history is None:
        try:
            data, name = _read_bytes(people)
        except OSError:
            pass            # read_table names the problem below
        else:
            people = _Blob(data, name)
            history_table = read_table(people, HISTORY_COLUMNS, (), problems, aliases=HISTORY_HEADERS_ZH,
                                       sheets=HISTORY_SHEETS)
    elif history is not None:
        history_table = read_table(history, HISTORY_COLUMNS, (), problems, aliases=HISTORY_HEADERS_ZH)
    people_table = (read_table(people, PEOPLE_REQUIRED, PEOPLE_OPTIONAL, problems, stream=True,
                               aliases=PEOPLE_HEADERS_ZH)
                    if people is not None else None)
    unit_rows = check_units(unit_table, pol, problems) if unit_table else []
    known_units = set(db.session.scalars(select(OrgUnit.code)))
    if unit_table:
        known_units |= {row.get("code", "") for _, row in unit_table.rows} - {""}
    people_rows = check_people(people_table, pol, known_units, problems) if people_table else []
    history_plans = check_history(history_table, pol, people_rows, problems) if history_table else []
    if problems:
        raise ImportRefused(problems)
    probations = [i for i, r in enumerate(people_rows) if r.values["status"] == "probation"] \
        if "probation" in pol.kinds else []
    return OrgPlan(pol, unit_table.name if unit_table else None, people_table.name if people_table else None,
                   unit_rows, people_rows, probations, history_plans,
                   history_table.name if history_table else None)


def import_org(units: Source | None = None, people: Source | None = None, *, policy: Policy | None = None,
               actor: Person | None = None, history: Source | None = None) -> ImportResult:
    """Load or update org units and people (either file may be None). Checks everything first and raises
    ImportRefused with every problem, changing nothing; else upserts units (parents first), then people,
    their roles (when the file has a `roles` column) and passwords (when given), then the earlier grades
    of staff loaded for the first time (`history`, or the people XLSX's 职级履历 sheet) as grade history
    from source `import`, and flushes. A changed grade writes grade history and an audit event by `actor`
    (None: the system). One transaction: the caller commits (a job loads the plan in chunks instead:
    `check_org` and `load_org`)."""
    return load_org(check_org(units, people, policy=policy, history=history), actor=actor)


def load_org(plan: OrgPlan, *, actor: Person | None = None, start: int = 0, chunk: int | None = None,
             result: ImportResult | None = None,
             after_chunk: Callable[[int, ImportResult], None] | None = None) -> ImportResult:
    """Load a checked plan from step `start` on, flushing each chunk of `chunk` steps and then calling
    `after_chunk(steps done, result so far)`, where a job commits. Units load as one chunk, before the
    people; new people are inserted in bulk, stored ones updated in place; probations open last, once
    every role of the file is in place to route them. Every step is an upsert, so loading a step again
    changes nothing: a load that stopped between chunks may restart at the last step committed."""
    result = result or ImportResult()
    chunk = chunk or plan.total or 1
    done = start
    n_units, n_people = len(plan.units), len(plan.people)
    if done < n_units:
        for r in plan.units:
            with _at(plan.units_file, r.line):
                _, created = directory.upsert_unit(r.code, name=r.name, level=r.level,
                                                   parent_code=r.parent_code, policy=plan.policy)
            result.units_created += created
            result.units_updated += not created
        done = n_units
        _after(done, result, after_chunk)
    # ids, not rows: rows would expire at every chunk's commit and load again one by one
    units = dict(db.session.execute(select(OrgUnit.code, OrgUnit.id)).all()) if plan.people else {}
    while done < n_units + n_people:
        rows = plan.people[done - n_units:done - n_units + chunk]
        _load_people(plan, rows, units, actor, result)
        done += len(rows)
        _after(done, result, after_chunk)
    n_history = len(plan.history)
    while done < n_units + n_people + n_history:
        items = plan.history[done - n_units - n_people:done - n_units - n_people + chunk]
        _load_history(plan, items, actor, result)
        done += len(items)
        _after(done, result, after_chunk)
    end = plan.total
    while done < end:
        first = done - n_units - n_people - n_history
        for index in plan.probations[first:first + chunk]:
            r = plan.people[index]
            person = directory.person_by_username(r.username)
            if person.status == "probation" and not db.session.scalar(select(Case.id).where(
                    Case.employee_id == person.id, Case.kind == "probation", Case.closed.is_(False))):
                with _at(plan.people_file, r.line):
                    engine.open_probation(person, None)
                result.probations_opened += 1
            done += 1
        _after(done, result, after_chunk)
    return result


def _insert_people(values: list[dict[str, Any]]) -> dict[str, int]:
    """Insert new people in one statement (PostgreSQL: COPY, as psycopg would spend longer preparing a
    multi-row INSERT of thousands of parameters than the server spends on it); username -> id."""
    if db.engine.dialect.name != "postgresql":
        inserted = db.session.execute(insert(Person).returning(Person.id, Person.username), values)
        return {username: pid for pid, username in inserted}
    columns = list(values[0])
    raw = db.session.connection().connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {Person.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for v in values:
                copy.write_row([v[c] for c in columns])
    return dict(db.session.execute(select(Person.username, Person.id).where(
        Person.username.in_([v["username"] for v in values]))).all())


def _after(done: int, result: ImportResult, after_chunk) -> None:
    db.session.flush()
    if after_chunk is not None:
        after_chunk(done, result)


def _load_people(plan: OrgPlan, rows: list[PersonRow], units: dict[str, int], actor: Person | None,
                 result: ImportResult) -> None:
    """One chunk of people: the stored ones (found in one query) are updated in place through the directory
    where a grade, roles or a password change (history and audit events); the new ones are inserted in one
    statement, with their roles and the audit events of their roles."""
    stored = {p.username: p for p in db.session.scalars(
        select(Person).where(Person.username.in_([r.username for r in rows]))
        .options(selectinload(Person.roles).joinedload(RoleAssignment.unit)))}
    new = [r for r in rows if r.username not in stored]
    for r in rows:
        person = stored.get(r.username)
        if person is None:
            continue
        with _at(plan.people_file, r.line):
            v = r.values
            before = person.grade
            if v["grade"] != person.grade:
                directory.change_grade(person, v["grade"], since=v["grade_since"], actor=actor,
                                       source="import", policy=plan.policy)
            person.grade_since = v["grade_since"] if person.level else None
            if person.unit_id != units[v["unit_code"]]:
                person.unit = db.session.get(OrgUnit, units[v["unit_code"]])
            person.name, person.hired_on, person.education, person.status, person.email = \
                v["name"], v["hired_on"], v["education"], v["status"], v["email"]
            result.people_updated += 1
            result.grade_changes += person.grade != before
            if r.roles is not None:
                result.role_changes += directory.set_roles(person, r.roles, actor=actor, source="import")
            if r.password is not None:
                directory.set_password(person, r.password, actor=actor, source="import")
                result.passwords_set += 1
    if not new:
        return
    values = []
    for r in new:
        v = r.values
        level, tier = directory.parse_grade(plan.policy, v["grade"])
        values.append({"username": r.username, "name": v["name"], "unit_id": units[v["unit_code"]],
                       "level": level, "tier": tier, "grade_since": v["grade_since"] if level else None,
                       "hired_on": v["hired_on"], "education": v["education"], "status": v["status"],
                       "email": v["email"], "session_generation": 0, "audit_version": 0})
    db.session.flush()
    ids = _insert_people(values)
    result.people_created += len(new)
    with_roles = [r for r in new if r.roles]
    if with_roles:
        db.session.execute(insert(RoleAssignment), [
            {"person_id": ids[r.username], "role": role, "unit_id": units[code]}
            for r in with_roles
            for role, _, code in (spec.partition("@") for spec in dict.fromkeys(r.roles))])
        result.role_changes += len(with_roles)
    needs_events = [r for r in new if r.roles or r.password]
    if needs_events:
        people = {p.username: p for p in db.session.scalars(
            select(Person).where(Person.id.in_([ids[r.username] for r in needs_events])))}
        for r in needs_events:
            person = people[r.username]
            with _at(plan.people_file, r.line):
                if r.roles:
                    # what directory.set_roles records for a person who had no roles
                    audit.append(person, action="roles_change", actor=actor,
                                 role=directory._role(actor, person), unit=r.values["unit_code"],
                                 data={"from": [], "to": sorted(set(r.roles)), "source": "import"})
                if r.password is not None:
                    directory.set_password(person, r.password, actor=actor, source="import")
                    result.passwords_set += 1


def import_scores(scores: Source, *, policy: Policy | None = None) -> ImportResult:
    """Load or update scores, upserting by person, kind and period. All or nothing, as `import_org`."""
    pol = policy if policy is not None else engine.active_policy()[1]
    problems: list[Problem] = []
    table = read_table(scores, SCORE_COLUMNS, (), problems, aliases=SCORE_HEADERS_ZH)
    rows = check_scores(table, pol, problems) if table else []
    if problems:
        raise ImportRefused(problems)
    result = ImportResult()
    existing = _rows_of(Score, rows, lambda s: (s.person_id, s.kind, s.period))
    now = clock.now()
    for r in rows:
        score = existing.get((r.person.id, r.kind, r.period))
        if score is None:
            db.session.add(Score(person=r.person, kind=r.kind, period=r.period, granularity=r.granularity,
                                 period_start=r.start, period_end=r.end, value=r.value, passed=r.passed,
                                 imported_at=now))
            result.scores_created += 1
        else:
            score.value, score.passed, score.imported_at = r.value, r.passed, now
            result.scores_updated += 1
    db.session.flush()
    return result


def _rows_of(model, rows, key) -> dict:
    """The stored rows of `model` (Score, Absence) of the people in `rows`, by `key(row)`: one query per
    500 people, for the upsert."""
    person_ids = sorted({r.person.id for r in rows})
    found = {}
    for i in range(0, len(person_ids), 500):
        for obj in db.session.scalars(select(model).where(model.person_id.in_(person_ids[i:i + 500]))):
            found[key(obj)] = obj
    return found


def import_absences(absences: Source) -> ImportResult:
    """Load or update absences (`username,start,end,reason`), upserting by person, start and reason (a
    re-import may move the end). All or nothing, as `import_org`."""
    problems: list[Problem] = []
    table = read_table(absences, ABSENCE_COLUMNS, (), problems, aliases=ABSENCE_HEADERS_ZH)
    rows = check_absences(table, problems) if table else []
    if problems:
        raise ImportRefused(problems)
    result = ImportResult()
    existing = _rows_of(Absence, rows, lambda a: (a.person_id, a.start, a.reason))
    now = clock.now()
    for r in rows:
        absence = existing.get((r.person.id, r.start, r.reason))
        if absence is None:
            db.session.add(Absence(person=r.person, start=r.start, end=r.end, reason=r.reason,
                                   imported_at=now))
            result.absences_created += 1
        else:
            absence.end, absence.imported_at = r.end, now
            result.absences_updated += 1
    db.session.flush()
    return result


@contextmanager
def _at(file: str, line: int):
    """Turn a refusal while loading a row (which the checks should have caught) into an ImportRefused
    naming the row; the caller rolls back."""
    try:
        yield
    except (directory.DirectoryError, Refused) as exc:
        raise ImportRefused([Problem(file, line, exc.details.get("field") or "status", exc.message)]) from exc
