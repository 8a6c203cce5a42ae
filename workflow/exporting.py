"""Spreadsheets for HR (XLSX): case lists, the grade roster (花名册), grade changes for payroll with the level
allowance (级别津贴), and the import templates.

Every workbook is written by openpyxl in write-only mode from rows read in batches (`yield_per`), into a
temporary file: a list of 100,000 cases never sits in memory as a sheet. What a viewer may see is decided
here, with workflow.authority's filters; the words (headers, state and level names) come from the caller,
in the viewer's language, through `Words`; ids stay ids when no word is given.
"""
from __future__ import annotations

import datetime as dt
import functools
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased

from . import authority, importing
from .errors import Forbidden, Invalid, NotFound
from .i18n import _l
from .models import db, Case, GradeHistory, OrgUnit, Person
from .policy import Policy

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BATCH = 2000                                # rows read from the database at a time
ROSTER_ROLES = ("hr", "approver", "admin")  # who sees the roster of their unit's subtree
PAYROLL_ROLES = ("hr", "admin")             # who exports grade changes for payroll
MAX_RANGE_DAYS = 3660                       # a payroll export spans at most ten years

CASE_COLUMNS = ("id", "kind", "username", "name", "unit_code", "unit_name", "from_grade", "target_grade",
                "state", "exceptional", "step_unit", "deadline", "effective_on", "created_at")
ROSTER_COLUMNS = ("username", "name", "unit_code", "unit_name", "level", "tier", "grade", "grade_since",
                  "hired_on", "education", "status")
CHANGE_COLUMNS = ("effective_on", "username", "name", "unit_code", "unit_name", "from_grade", "to_grade",
                  "from_allowance", "to_allowance", "allowance_change", "source", "case")
NOTE_COLUMNS = ("header", "column", "required", "description", "allowed", "example")


def _same(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class Words:
    """The words of a workbook in the viewer's language: `header(column)`, and the names of states, kinds,
    grades, levels, statuses, education, sources, yes/no; each defaults to the id itself."""
    header: Callable[[str], str] = _same
    state: Callable[[str], str] = _same
    kind: Callable[[str], str] = _same
    grade: Callable[[str | None], str] = _same
    level: Callable[[str | None], str] = _same
    status: Callable[[str], str] = _same
    education: Callable[[str | None], str] = _same
    source: Callable[[str], str] = _same
    yes_no: Callable[[bool], str] = lambda b: "yes" if b else "no"
    sheet: Callable[[str], str] = _same
    chinese: bool = False           # import templates: the Chinese headers (else the column ids)


@dataclass
class Sheet:
    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Any]]
    widths: Sequence[int] = field(default_factory=tuple)


def write(sheets: Iterable[Sheet]) -> IO[bytes]:
    """The sheets as one XLSX workbook in a temporary file (deleted when closed), positioned at its start.
    Rows are streamed: openpyxl's write-only mode writes each row out as it is appended."""
    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for sheet in sheets:
        ws = wb.create_sheet(title=_sheet_title(sheet.title))
        ws.freeze_panes = "A2"
        for i, width in enumerate(sheet.widths):
            ws.column_dimensions[get_column_letter(i + 1)].width = width
        header = []
        for text in sheet.headers:
            cell = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", str(text)))
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for row in sheet.rows:
            ws.append([_value(ws, v) for v in row])
    out = tempfile.TemporaryFile()
    try:
        wb.save(out)
    except Exception:
        out.close()
        raise
    out.seek(0)
    return out


def _sheet_title(title: str) -> str:
    """A title Excel accepts: at most 31 characters, none of []:*?/\\."""
    clean = "".join("_" if c in "[]:*?/\\" else c for c in str(title)).strip() or "Sheet"
    return clean[:31]


def _value(ws, v: Any) -> Any:
    """A cell value: dates stay dates (Excel shows them as such); text loses the control characters XLSX
    cannot hold, and text starting with `=` stays text (openpyxl would write it as a formula)."""
    if not isinstance(v, str):
        return v
    v = ILLEGAL_CHARACTERS_RE.sub("", v)
    if v.startswith("="):
        cell = WriteOnlyCell(ws, value=v)
        cell.data_type = "s"
        return cell
    return v


def _memo(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    """A word function remembered per id for one sheet: a sheet names the same few states and grades
    thousands of times, and each name is a catalog look-up."""
    return functools.lru_cache(maxsize=4096)(fn)


def _batches(query) -> Iterator[Any]:
    yield from db.session.execute(query.execution_options(yield_per=BATCH))


def _grade(level: str | None, tier: int | None) -> str | None:
    return f"{level}-{tier}" if level else None


# --- cases ---------------------------------------------------------------------------------------------

def case_sheet(viewer: Person, words: Words, narrow: Callable[[Any], Any] | None = None) -> Sheet:
    """The case list as a sheet: one row per case the viewer may see (authority.visible_filter), newest
    first; `narrow(select of Case)` adds the list's filters."""
    q = select(Case).where(authority.visible_filter(viewer))
    ids = (narrow(q) if narrow is not None else q).with_only_columns(Case.id).order_by(None)
    step = aliased(OrgUnit)
    q = (select(Case.id, Case.kind, Person.username, Person.name, OrgUnit.code, OrgUnit.name,
                Case.from_level, Case.from_tier, Case.target_level, Case.target_tier, Case.state,
                Case.exceptional, step.code, Case.deadline, Case.effective_on, Case.created_at)
         .join(Person, Case.employee_id == Person.id).join(OrgUnit, Person.unit_id == OrgUnit.id)
         .outerjoin(step, Case.step_unit_id == step.id)
         .where(Case.id.in_(ids)).order_by(Case.id.desc()))

    def rows():
        kind_, grade, state_ = _memo(words.kind), _memo(words.grade), _memo(words.state)
        yes_no = _memo(words.yes_no)
        for (cid, kind, username, name, ucode, uname, fl, ft, tl, tt, state, exc, scode, deadline, eff,
             created) in _batches(q):
            yield (cid, kind_(kind), username, name, ucode, uname, grade(_grade(fl, ft)) or "",
                   grade(_grade(tl, tt)) or "", state_(state), yes_no(bool(exc)), scode or "",
                   deadline, eff, created.replace(microsecond=0) if created else None)

    return Sheet(words.sheet("cases"), [words.header(c) for c in CASE_COLUMNS], rows(),
                 (8, 10, 14, 12, 12, 18, 22, 22, 16, 8, 12, 12, 12, 20))


# --- the roster ----------------------------------------------------------------------------------------

def roster_units(viewer: Person, unit: OrgUnit | None = None) -> list[OrgUnit]:
    """The units whose subtrees the viewer's roster covers: where they hold HR, approver or admin (or
    `unit`, if it lies in one of them; NotFound otherwise, as for a unit one may not see)."""
    units = [ra.unit for ra in viewer.roles if ra.role in ROSTER_ROLES]
    if not units:
        raise Forbidden(_l("the roster is for HR, approvers and administrators"))
    if unit is not None:
        if not authority.can_view_unit(viewer, unit, ROSTER_ROLES):
            raise NotFound(_l("no unit '%(code)s' in your scope", code=unit.code))
        return [unit]
    return [u for u in units if not any(o is not u and o.contains(u) for o in units)]


def roster_sheet(viewer: Person, words: Words, unit: OrgUnit | None = None,
                 include_dismissed: bool = False) -> Sheet:
    """花名册: everyone in the viewer's subtree (or `unit`'s), by unit and username, with unit, grade level
    and tier, since when, hire date, education and status; dismissed people only when asked."""
    units = roster_units(viewer, unit)
    q = (select(Person.username, Person.name, OrgUnit.code, OrgUnit.name, Person.level, Person.tier,
                Person.grade_since, Person.hired_on, Person.education, Person.status)
         .join(OrgUnit, Person.unit_id == OrgUnit.id)
         .where(or_(*[OrgUnit.path.startswith(u.path) for u in units]))
         .order_by(OrgUnit.path, Person.username))
    if not include_dismissed:
        q = q.where(Person.status != "dismissed")

    def rows():
        level_, grade, education, status_ = (_memo(words.level), _memo(words.grade), _memo(words.education),
                                             _memo(words.status))
        for username, name, ucode, uname, level, tier, since, hired, edu, status in _batches(q):
            yield (username, name, ucode, uname, level_(level) if level else "", tier,
                   grade(_grade(level, tier)) if level else "", since, hired,
                   education(edu) if edu else "", status_(status))

    return Sheet(words.sheet("roster"), [words.header(c) for c in ROSTER_COLUMNS], rows(),
                 (14, 12, 12, 18, 18, 6, 24, 12, 12, 10, 10))


# --- grade changes for payroll -------------------------------------------------------------------------

@dataclass(frozen=True)
class GradeChange:
    effective_on: dt.date
    username: str
    name: str
    unit_code: str
    unit_name: str
    from_grade: str | None
    to_grade: str | None
    from_allowance: float | None
    to_allowance: float | None
    source: str
    case: int | None

    @property
    def allowance_change(self) -> float | None:
        if self.from_allowance is None and self.to_allowance is None:
            return None
        if (self.from_allowance is None and self.from_grade) or (self.to_allowance is None and self.to_grade):
            return None         # one side's amount is not given: the change is unknown
        return (self.to_allowance or 0) - (self.from_allowance or 0)

    def to_json(self) -> dict[str, Any]:
        return {"effective_on": self.effective_on.isoformat(), "username": self.username, "name": self.name,
                "unit": self.unit_code, "from_grade": self.from_grade, "to_grade": self.to_grade,
                "from_allowance": self.from_allowance, "to_allowance": self.to_allowance,
                "allowance_change": self.allowance_change, "source": self.source, "case": self.case}


def payroll_range(start: Any, end: Any) -> tuple[dt.date, dt.date]:
    """The export's dates (ISO text or dates), checked: Invalid naming the field otherwise."""
    out = []
    for name, value in (("from", start), ("to", end)):
        if isinstance(value, dt.date):
            out.append(value)
            continue
        try:
            out.append(dt.date.fromisoformat(str(value or "").strip()))
        except ValueError:
            raise Invalid(_l("%(field)s must be a date YYYY-MM-DD", field=name), field=name) from None
    if out[1] < out[0]:
        raise Invalid(_l("to (%(to)s) is before from (%(from)s)", to=out[1].isoformat(), **{"from": out[0].isoformat()}),
                      field="to")
    if (out[1] - out[0]).days > MAX_RANGE_DAYS:
        raise Invalid(_l("the range spans more than %(max)s days", max=MAX_RANGE_DAYS), field="to")
    return out[0], out[1]


def payroll_units(viewer: Person, unit: OrgUnit | None = None) -> list[OrgUnit]:
    units = [ra.unit for ra in viewer.roles if ra.role in PAYROLL_ROLES]
    if not units:
        raise Forbidden(_l("grade changes for payroll are exported by HR and administrators"))
    if unit is not None:
        if not authority.can_view_unit(viewer, unit, PAYROLL_ROLES):
            raise NotFound(_l("no unit '%(code)s' in your scope", code=unit.code))
        return [unit]
    return [u for u in units if not any(o is not u and o.contains(u) for o in units)]


def grade_changes_query(viewer: Person, start: dt.date, end: dt.date, unit: OrgUnit | None = None):
    """The grade-history rows (职级履历) taking effect from `start` to `end` (inclusive) of the people in the
    viewer's HR or admin subtree (or `unit`'s), by date, unit and username."""
    units = payroll_units(viewer, unit)
    return (select(GradeHistory.effective_on, Person.username, Person.name, OrgUnit.code, OrgUnit.name,
                   GradeHistory.from_grade, GradeHistory.to_grade, GradeHistory.source, GradeHistory.case_id)
            .join(Person, GradeHistory.person_id == Person.id).join(OrgUnit, Person.unit_id == OrgUnit.id)
            .where(and_(GradeHistory.effective_on >= start, GradeHistory.effective_on <= end),
                   or_(*[OrgUnit.path.startswith(u.path) for u in units]))
            .order_by(GradeHistory.effective_on, OrgUnit.path, Person.username, GradeHistory.id))


def grade_changes(query, policy: Policy) -> Iterator[GradeChange]:
    """The rows of `grade_changes_query` with the policy's monthly level allowance of each grade."""
    for on, username, name, ucode, uname, frm, to, source, case_id in _batches(query):
        yield GradeChange(on, username, name, ucode, uname, frm, to, policy.allowance(frm),
                          policy.allowance(to), source, case_id)


def grade_change_sheet(viewer: Person, words: Words, policy: Policy, start: dt.date, end: dt.date,
                       unit: OrgUnit | None = None) -> Sheet:
    """Grade changes for payroll: effective date, who, from and to grade, the monthly level allowance of
    each (empty where the policy gives none) and the difference."""
    q = grade_changes_query(viewer, start, end, unit)

    def rows():
        grade, source = _memo(words.grade), _memo(words.source)
        for c in grade_changes(q, policy):
            yield (c.effective_on, c.username, c.name, c.unit_code, c.unit_name,
                   grade(c.from_grade) if c.from_grade else "", grade(c.to_grade) if c.to_grade else "",
                   c.from_allowance, c.to_allowance, c.allowance_change, source(c.source), c.case)

    return Sheet(words.sheet("grade_changes"), [words.header(c) for c in CHANGE_COLUMNS], rows(),
                 (12, 14, 12, 12, 18, 24, 24, 12, 12, 12, 10, 8))


# --- import templates ----------------------------------------------------------------------------------

TEMPLATES = {
    "units": (importing.UNIT_COLUMNS, (), importing.UNIT_HEADERS_ZH),
    "people": (importing.PEOPLE_REQUIRED, importing.PEOPLE_OPTIONAL, importing.PEOPLE_HEADERS_ZH),
    "scores": (importing.SCORE_COLUMNS, (), importing.SCORE_HEADERS_ZH),
    "absences": (importing.ABSENCE_COLUMNS, (), importing.ABSENCE_HEADERS_ZH),
}


def template_headers(kind: str, chinese: bool) -> list[str]:
    """The header row of an import file of `kind`, exactly as the importer reads it: Chinese or ids."""
    required, optional, zh = TEMPLATES[kind]
    return [zh[c][0] if chinese else c for c in required + optional]


def allowed_values(kind: str, column: str, policy: Policy, words: Words) -> str:
    """The values a column accepts under the policy, as `id (name)` lists; empty where any text goes."""
    def named(items):
        return "; ".join(f"{i.id} ({i.label('zh' if words.chinese else 'en')})" for i in items)
    if column == "level" and kind == "units":
        return named(policy.org_levels)
    if column == "grade":
        return "; ".join(f"{lv.id}-1..{lv.id}-{lv.tiers} ({lv.label('zh' if words.chinese else 'en')})"
                         if lv.tiers > 1 else f"{lv.id} ({lv.label('zh' if words.chinese else 'en')})"
                         for lv in policy.ladder)
    if column == "education":
        return named(policy.education)
    if column == "status":
        return "; ".join(f"{s} ({words.status(s)})" for s in ("active", "probation"))
    if column == "roles":
        from .models.org import ROLES
        return "; ".join(ROLES)
    if column == "kind":
        return "; ".join(policy.score_kinds)
    if column == "reason":
        from .models.absences import ABSENCE_REASONS
        return "; ".join(ABSENCE_REASONS)
    return ""


def template(kind: str, policy: Policy, words: Words, notes: dict[str, tuple[str, str]]) -> IO[bytes]:
    """An empty import file of `kind` (units, people, scores, absences): the data sheet with the header row
    the importer accepts (Chinese with `words.chinese`), and a notes sheet with one row per column: its
    header, its id, whether it is required, what it holds, the values it accepts under the policy and an
    example (`notes`: column -> (description, example)). A people template also has the sheet of earlier
    grades (职级履历) the importer reads with it."""
    if kind not in TEMPLATES:
        raise NotFound(_l("no import template '%(kind)s' (templates: %(templates)s)", kind=kind,
                           templates=", ".join(TEMPLATES)))
    required, optional, zh = TEMPLATES[kind]
    sheets = [Sheet(words.sheet(kind), template_headers(kind, words.chinese), (),
                    [16] * len(required + optional))]
    note_rows = []

    def describe(file_kind, cols, req, zh_headers):
        for c in cols:
            description, example = notes.get(f"{file_kind}.{c}") or notes.get(c, ("", ""))
            note_rows.append((zh_headers[c][0] if words.chinese else c, c, words.yes_no(c in req), description,
                              allowed_values(file_kind, c, policy, words), example))

    describe(kind, required + optional, required, zh)
    if kind == "people":
        history_title = importing.HISTORY_SHEETS[0] if words.chinese else importing.HISTORY_SHEETS[1]
        sheets.append(Sheet(history_title, [importing.HISTORY_HEADERS_ZH[c][0] if words.chinese else c
                                            for c in importing.HISTORY_COLUMNS], (), (16, 16, 16)))
        describe("history", importing.HISTORY_COLUMNS, importing.HISTORY_COLUMNS, importing.HISTORY_HEADERS_ZH)
    sheets.append(Sheet(words.sheet("notes"), [words.header(f"note.{c}") for c in NOTE_COLUMNS], note_rows,
                        (16, 14, 8, 60, 50, 20)))
    return write(sheets)
