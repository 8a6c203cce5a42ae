"""附件: certificates, diplomas and evidence of results attached to a case.

The bytes are kept outside the database, in a store directory, under a name derived from their SHA-256
(`ab/ab12…`), so the same file is kept once however often it is attached. A row of `attachments` names
the case, who attached it, the original file name, its type, size and checksum; attaching is the engine
action `attach` (no state change), so it sits in the case's audit chain with the checksum in its data.
Reading a file back checks the checksum again: a stored file changed outside the application is refused.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from . import clock
from .errors import Invalid, NotFound, Refused
from .i18n import _l
from .models import db, Case, Person
from .models.attachments import Attachment   # (also exported by the package)


@dataclass(frozen=True)
class Stored:
    """A file already written to the store, to be attached by the `attach` action. Only the upload
    handlers make one: a JSON body cannot name a stored file (and so reach another case's attachment)."""
    filename: str
    content_type: str
    size: int
    sha256: str


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def path_of(root: str | Path, sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise Invalid(_l("not a SHA-256 checksum"))
    return Path(root) / sha256[:2] / sha256


def store(root: str | Path, filename: str, content_type: str, data: bytes) -> Stored:
    """Write the bytes under their checksum (once; atomically) and describe them for `attach`. A file
    written for an attachment whose transaction then fails stays unreferenced and harmless."""
    sha = checksum(data)
    target = path_of(root, sha)
    if not target.exists() or target.stat().st_size != len(data):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return Stored(filename=filename, content_type=content_type, size=len(data), sha256=sha)


def read_verified(root: str | Path, att: Attachment) -> bytes:
    """The attachment's bytes, after checking them against the checksum recorded when it was attached."""
    try:
        data = path_of(root, att.sha256).read_bytes()
    except FileNotFoundError:
        raise NotFound(_l("the file of attachment %(id)s is missing from the store", id=att.id)) from None
    if checksum(data) != att.sha256 or len(data) != att.size:
        raise Refused(_l("the stored file of attachment %(id)s no longer matches its checksum (%(sha)s…): it was "
                         "changed or damaged outside the application", id=att.id, sha=att.sha256[:12]))
    return data


def of_case(case: Case) -> list[Attachment]:
    return list(case.attachments)


def find(case: Case, attachment_id: int) -> Attachment:
    att = db.session.get(Attachment, attachment_id)
    if att is None or att.case_id != case.id:
        raise NotFound(_l("no attachment %(id)s on case %(case)s", id=attachment_id, case=case.id))
    return att


def latest(case: Case, person: Person, sha256: str) -> Attachment | None:
    """The attachment just made by `attach` (after the engine fired it)."""
    return db.session.scalar(select(Attachment).where(
        Attachment.case_id == case.id, Attachment.uploaded_by_id == person.id, Attachment.sha256 == sha256)
        .order_by(Attachment.id.desc()).limit(1))


# --- the `attach` action's callbacks (used by the machines) ------------------------------------------------

def require_file(event) -> None:
    ctx = event.kwargs["ctx"]
    if not isinstance(ctx.data.get("file"), Stored):
        raise Invalid(_l("attach a file with POST /api/v1/cases/%(case)s/attachments (multipart/form-data, "
                         "field 'file')", case=ctx.case.id), field="file")


def record_attachment(event) -> None:
    ctx = event.kwargs["ctx"]
    f: Stored = ctx.data["file"]
    att = Attachment(case=ctx.case, uploaded_by_id=ctx.actor.id, filename=f.filename,
                     content_type=f.content_type, size=f.size, sha256=f.sha256, created_at=clock.now())
    db.session.add(att)
    db.session.flush()
    ctx.event_data.update(attachment=att.id, filename=f.filename, content_type=f.content_type, size=f.size,
                          sha256=f.sha256)
