"""The e-mail outbox: notifications whose mail is pending are sent after the commit that wrote them, by
`tick` and by the worker, never inside a decision's transaction.

One row at a time: the row is locked (PostgreSQL: FOR UPDATE SKIP LOCKED, so several senders share the
outbox without sending a row twice), its mail handed to the SMTP server, and the row marked sent and
committed at once. A server that is down leaves the row pending (its attempts and the error recorded) and
ends the pass: nothing is lost, and the next pass tries again. A row the server refuses for good (a bad
address) is given up after MAIL_MAX_ATTEMPTS. Without MAIL_SERVER (development, tests) each mail is
printed to the `gradeflow.mail` log instead and marked logged.

The standard library's smtplib and email suffice: the sender runs outside any request, from the command
line, where Flask-Mail's request-bound conveniences bring nothing.
"""
from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.utils import formataddr, format_datetime, make_msgid, parseaddr
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import force_locale, gettext as _
from sqlalchemy import select
from werkzeug.routing import BuildError

from workflow import clock, notify
from workflow.models import db
from workflow.models.notifications import Notification

log = logging.getLogger("gradeflow.mail")


def _log_handler() -> None:
    """Mail printed to the log is seen on stderr even when nothing configured logging."""
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def compose(n: Notification) -> EmailMessage:
    """The notification's e-mail, in the recipient's language (Chinese unless they chose otherwise)."""
    from .notifications import describe
    cfg = current_app.config
    person = n.recipient
    base = urlsplit(cfg["BASE_URL"])
    links = current_app.url_map.bind(base.netloc, script_name=base.path or "/",
                                     url_scheme=base.scheme or "http")

    def link(endpoint: str, **values) -> str:
        return links.build(endpoint, values, force_external=True)

    with force_locale(person.language or "zh_CN"):
        title, text = describe(n)
        lines = [_("Hello %(name)s,", name=person.name), "", text, ""]
        if n.case_id is not None:
            lines.append(_("Open the case: %(url)s", url=link("cases.detail", case_id=n.case_id)))
        elif isinstance((n.params or {}).get("target"), dict):
            target = n.params["target"]
            try:
                lines.append(_("Open: %(url)s", url=link(target["endpoint"], **(target.get("values") or {}))))
            except (KeyError, BuildError):
                pass
        lines += [_("All your notifications: %(url)s", url=link("notifications.index")), "",
                  "-- ", _("Gradeflow sent this because of your part in the case. To stop these e-mails, "
                           "turn them off at %(url)s", url=link("notifications.settings"))]
        subject = f"[Gradeflow] {title}"
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = cfg["MAIL_SENDER"]
    msg["To"] = formataddr((person.name, person.email))
    msg["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
    msg["Message-ID"] = make_msgid(idstring=f"gradeflow-notification-{n.id}",
                                   domain=parseaddr(cfg["MAIL_SENDER"])[1].rpartition("@")[2] or None)
    msg.set_content("\n".join(lines))
    return msg


class LogTransport:
    """Development: the mail goes to the log."""
    state = "logged"

    def send(self, msg: EmailMessage) -> None:
        _log_handler()
        log.info("--- mail (not sent: MAIL_SERVER is not set) ---\n%s", msg.as_string())

    def close(self) -> None:
        pass


class SmtpTransport:
    """One SMTP connection per pass, opened at the first mail."""
    state = "sent"

    def __init__(self, cfg):
        self.cfg = cfg
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.cfg
        timeout = cfg["MAIL_TIMEOUT"]
        if cfg["MAIL_USE_SSL"]:
            conn = smtplib.SMTP_SSL(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=timeout,
                                    context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=timeout)
            if cfg["MAIL_USE_TLS"]:
                conn.starttls(context=ssl.create_default_context())
        if cfg["MAIL_USERNAME"]:
            conn.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
        return conn

    def send(self, msg: EmailMessage) -> None:
        if self.conn is None:
            self.conn = self._connect()
        self.conn.send_message(msg)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self.conn = None


def transport():
    cfg = current_app.config
    return SmtpTransport(cfg) if cfg.get("MAIL_SERVER") else LogTransport()


# A refusal about this one mail (a bad address, a message the server will not take): the row fails, the
# pass goes on. Anything else (connection refused, timeout, authentication, a 4xx) is the server's: retry.
def _refused_for_good(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _msg in exc.recipients.values())
    if isinstance(exc, (smtplib.SMTPSenderRefused, smtplib.SMTPDataError)):
        return exc.smtp_code >= 500
    return False


def send_outbox(limit: int = 500, say=lambda line: None) -> dict[str, int]:
    """Send the pending mails, oldest first, one committed row at a time. Answers the counts of the
    outcomes (sent or logged, skipped, failed, retry: left pending for the next pass)."""
    ids = list(db.session.scalars(select(Notification.id).where(Notification.mail_state == "pending")
                                  .order_by(Notification.id).limit(limit)))
    db.session.rollback()
    counts = {"sent": 0, "skipped": 0, "failed": 0, "retry": 0}
    if not ids:
        return counts
    out = transport()
    max_attempts = current_app.config["MAIL_MAX_ATTEMPTS"]
    try:
        for nid in ids:
            n = db.session.scalar(select(Notification).where(Notification.id == nid,
                                                             Notification.mail_state == "pending")
                                  .with_for_update(of=Notification, skip_locked=True)
                                  .execution_options(populate_existing=True))
            if n is None:      # another sender has it, or had it
                db.session.rollback()
                continue
            if not notify.wants_mail(n.recipient):
                n.mail_state = "skipped"
                db.session.commit()
                counts["skipped"] += 1
                continue
            try:
                msg = compose(n)
            except (ValueError, TypeError) as exc:     # an address or name no mail header can carry
                n.mail_state, n.mail_error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
                db.session.commit()
                counts["failed"] += 1
                say(f"mail {nid}: cannot be written ({n.mail_error})")
                continue
            try:
                out.send(msg)
            except (OSError, smtplib.SMTPException) as exc:
                n.mail_attempts += 1
                n.mail_error = f"{type(exc).__name__}: {exc}"[:1000]
                for_good = _refused_for_good(exc)
                if for_good and n.mail_attempts >= max_attempts:
                    n.mail_state = "failed"
                db.session.commit()
                if not for_good:
                    out.close()
                    counts["retry"] += 1
                    say(f"mail {nid}: the SMTP server failed ({n.mail_error}); the rest waits for the next "
                        f"pass")
                    break
                counts["failed" if n.mail_state == "failed" else "retry"] += 1
                say(f"mail {nid}: refused ({n.mail_error})")
                continue
            n.mail_state, n.mailed_at, n.mail_error = out.state, clock.now(), None
            n.mail_attempts += 1
            db.session.commit()
            counts["sent"] += 1
    finally:
        db.session.rollback()
        out.close()
    return counts
