"""Uploaded import files (people, units, scores, absences): CSV or XLSX, checked by name and by content
before a single row is read. The request's size is capped by MAX_CONTENT_LENGTH (413, see web/security.py);
this refuses, with 400 and a sentence that says why, what is not one of the two kinds."""
from __future__ import annotations

import io
import zipfile

from werkzeug.datastructures import FileStorage

from workflow.errors import Invalid
from workflow.i18n import _l

KINDS = ("csv", "xlsx")
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"          # the old binary Excel (.xls) and other OLE documents
XLSX_PARTS = ("[Content_Types].xml", "xl/workbook.xml")
# A workbook's parts compress well, but not a thousandfold: more than this is a zip bomb, not a sheet.
XLSX_MAX_RATIO = 200
XLSX_MAX_EXPANDED = 1024 * 1024 * 1024


def checked_upload(storage: FileStorage | None, field: str = "file") -> tuple[str, bytes]:
    """The uploaded file's kind (`csv` or `xlsx`) and its bytes. Raises Invalid (400) for no file, another
    extension, content that is not what the extension says (a renamed .xls, a binary .csv), a workbook with
    macros, or a zip that would expand beyond reason."""
    if storage is None or not storage.filename:
        raise Invalid("choose a CSV or XLSX file to upload", field=field)
    name = storage.filename
    kind = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if kind not in KINDS:
        hint = " (old Excel files: save them as XLSX or 'CSV UTF-8')" if kind == "xls" else ""
        raise Invalid(f"only .csv and .xlsx files can be imported, not {name!r}{hint}", field=field)
    data = storage.read()
    if not data:
        raise Invalid(f"{name!r} is empty", field=field)
    if kind == "xlsx":
        _check_xlsx(name, data, field)
    else:
        _check_csv(name, data, field)
    return kind, data


def _check_xlsx(name: str, data: bytes, field: str) -> None:
    if not data.startswith(ZIP_MAGIC):
        raise Invalid(f"{name!r} is not an XLSX workbook (its content is not one)", field=field)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        raise Invalid(f"{name!r} is a damaged XLSX workbook", field=field) from None
    names = {e.filename for e in entries}
    if not all(part in names for part in XLSX_PARTS):
        raise Invalid(f"{name!r} is a zip file but not an XLSX workbook", field=field)
    if "xl/vbaProject.bin" in names:
        raise Invalid(f"{name!r} contains macros; save it as a plain XLSX workbook", field=field)
    expanded = sum(e.file_size for e in entries)
    if expanded > XLSX_MAX_EXPANDED or expanded > XLSX_MAX_RATIO * len(data):
        raise Invalid(f"{name!r} would expand to {expanded // (1024 * 1024)} MB; that is not a sheet of "
                      "people or scores", field=field)


def _check_csv(name: str, data: bytes, field: str) -> None:
    if data.startswith((ZIP_MAGIC, OLE_MAGIC)) or b"\x00" in data:
        raise Invalid(f"{name!r} is not CSV text (an Excel workbook renamed? save it as 'CSV UTF-8' or "
                      "upload the .xlsx)", field=field)
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise Invalid(f"{name!r} is not UTF-8 text (line {line}); in Excel use Save As 'CSV UTF-8'",
                      field=field) from None


# --- attachments (certificates, diplomas, evidence of results) ---------------------------------------------

ATTACHMENT_TYPES = {     # extension -> (content type, how its content starts)
    "pdf": ("application/pdf", (b"%PDF-",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (ZIP_MAGIC,)),
}


def checked_attachment(storage: FileStorage | None, max_bytes: int, field: str = "file") -> tuple[str, str, bytes]:
    """An attachment's display name, content type and bytes. Raises Invalid (400) for no file, a type other
    than PDF, PNG, JPEG or XLSX (by extension and by content, whatever the browser claims), a workbook
    that fails the import checks, or more than `max_bytes`."""
    if storage is None or not storage.filename:
        raise Invalid(_l("choose a file to attach (PDF, PNG, JPEG or XLSX)"), field=field)
    # The name as the person knows it (Chinese included), without any folder part or control characters.
    name = storage.filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:255]
    kind = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if kind not in ATTACHMENT_TYPES:
        raise Invalid(_l("only PDF, PNG, JPEG and XLSX files can be attached, not “%(name)s”", name=name), field=field)
    data = storage.read(max_bytes + 1)
    if not data:
        raise Invalid(_l("“%(name)s” is empty", name=name), field=field)
    if len(data) > max_bytes:
        raise Invalid(_l("“%(name)s” is larger than %(mb)s MB", name=name, mb=max_bytes // (1024 * 1024)),
                      field=field)
    content_type, magic = ATTACHMENT_TYPES[kind]
    if not data.startswith(magic):
        raise Invalid(_l("“%(name)s” is not a %(kind)s file (its content is not one)", name=name,
                         kind=kind.upper()), field=field)
    if kind == "xlsx":
        _check_xlsx(name, data, field)
    return name, content_type, data
