"""Notifications on the pages and in the API, the e-mail outbox against a local SMTP server, and 催办."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import socketserver
import threading

import pytest

from tests.conftest import TODAY
from web import mail
from workflow import engine, notify
from workflow.models import db, Case, Notification, Person


def person(username):
    return db.session.query(Person).filter_by(username=username).one()


def file_case(who="emp"):
    case = engine.create_promotion(person(who), person(who), "senior", "申请晋级")
    db.session.commit()
    return case


def rows(username):
    return (db.session.query(Notification).filter_by(recipient_id=person(username).id)
            .order_by(Notification.id).all())


# --- a local SMTP server ------------------------------------------------------------------------------

class SmtpServer(socketserver.ThreadingTCPServer):
    """Enough of SMTP for smtplib: the mails it accepted, and a switch to refuse them (451, try later)."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.mails: list[email.message.EmailMessage] = []
        self.refuse = False


class SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 test ESMTP")
        while True:
            line = self.rfile.readline().decode().strip()
            verb = line[:4].upper()
            if not line or verb == "QUIT":
                self.reply("221 bye")
                return
            if verb == "EHLO":
                self.reply("250-test")
                self.reply("250 8BITMIME")
            elif verb == "MAIL" and self.server.refuse:
                self.reply("451 try again later")
            elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b""):
                        break
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.mails.append(email.message_from_bytes(data, policy=email.policy.default))
                self.reply("250 queued")
            else:
                self.reply("502 no")


@pytest.fixture
def smtp(app):
    server = SmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.server_address[1], MAIL_USE_TLS=False,
                      MAIL_TIMEOUT=5, MAIL_SENDER="人力资源部 <hr@bank.example>")
    yield server
    server.shutdown()
    server.server_close()


def with_mail(*usernames):
    for u in usernames:
        person(u).email = f"{u}@bank.example"
    db.session.commit()


# --- the outbox ---------------------------------------------------------------------------------------

def test_the_outbox_sends_each_mail_once_in_chinese_after_the_commit(bank, app, smtp):
    with_mail("appr_b1")
    case = file_case()
    assert smtp.mails == []                      # nothing is sent inside the filing's transaction
    assert mail.send_outbox() == {"sent": 1, "skipped": 0, "failed": 0, "retry": 0}
    [msg] = smtp.mails
    assert msg["To"].addresses[0].addr_spec == "appr_b1@bank.example"
    assert f"案件 {case.id}" in msg["Subject"] and "资格审核" in msg["Subject"]
    body = msg.get_content()
    assert "晋级" in body and f"/cases/{case.id}" in body and "Gradeflow" in body
    n = rows("appr_b1")[0]
    assert (n.mail_state, n.mail_attempts, n.mailed_at is not None) == ("sent", 1, True)
    assert mail.send_outbox()["sent"] == 0 and len(smtp.mails) == 1      # never twice


def test_a_mail_in_the_recipients_language(bank, app, smtp):
    with_mail("appr_b1")
    person("appr_b1").language = "en"
    db.session.commit()
    case = file_case()
    mail.send_outbox()
    assert smtp.mails[0]["Subject"] == f"[Gradeflow] Case {case.id} waits for you: Qualification review"


def test_a_failing_server_loses_nothing_and_sends_nothing_twice(bank, app, smtp):
    with_mail("appr_b1", "emp", "hr_b1", "sup_t1")
    case = file_case()
    engine.fire(case, "qualify", person("appr_b1"), {})
    db.session.commit()
    pending = db.session.query(Notification).filter_by(mail_state="pending").count()
    assert pending == 4          # appr_b1 (filed), emp (decided), hr_b1 and sup_t1 (panel step)
    smtp.refuse = True
    counts = mail.send_outbox()
    assert counts["sent"] == 0 and counts["retry"] == 1        # the pass stops at the first failure
    first = db.session.query(Notification).filter_by(mail_state="pending").order_by(Notification.id).first()
    assert first.mail_attempts == 1 and "451" in first.mail_error
    smtp.refuse = False
    assert mail.send_outbox()["sent"] == 4
    assert sorted(m["To"].addresses[0].username for m in smtp.mails) == ["appr_b1", "emp", "hr_b1", "sup_t1"]
    assert mail.send_outbox()["sent"] == 0


def test_a_server_that_is_down_leaves_the_mail_pending(bank, app):
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False, MAIL_TIMEOUT=2)
    with_mail("appr_b1")
    file_case()
    assert mail.send_outbox()["retry"] == 1
    assert rows("appr_b1")[0].mail_state == "pending"


def test_without_a_server_the_mail_goes_to_the_log(bank, app, caplog):
    with_mail("appr_b1")
    file_case()
    with caplog.at_level("INFO", logger="gradeflow.mail"):
        assert mail.send_outbox()["sent"] == 1
    assert rows("appr_b1")[0].mail_state == "logged"
    assert "appr_b1@bank.example" in caplog.text


def test_turning_email_off_skips_what_is_queued(bank, app, smtp, api):
    with_mail("appr_b1")
    file_case()
    resp = api("appr_b1").post("/me/notification-settings", json={"email_notifications": False})
    assert resp.status_code == 200 and resp.get_json()["email_notifications"] is False
    assert mail.send_outbox()["sent"] == 0 and smtp.mails == []
    assert rows("appr_b1")[0].mail_state == "skipped"
    assert len(rows("appr_b1")) == 1              # the in-app notification stays


def test_tick_reminds_escalates_and_mails(bank, app, smtp):
    with_mail("appr_b1")
    case = file_case()
    runner = app.test_cli_runner()
    deadline = case.deadline
    result = runner.invoke(args=["tick", "--today", (deadline - dt.timedelta(days=4)).isoformat()])
    assert result.exit_code == 0, result.output
    assert "reminders: 1 written" in result.output and "mail: 2 sent" in result.output
    result = runner.invoke(args=["tick", "--today", (deadline - dt.timedelta(days=3)).isoformat()])
    assert "reminders: 0 written" in result.output
    result = runner.invoke(args=["tick", "--today", (deadline + dt.timedelta(days=1)).isoformat()])
    assert "reminders: 1 written" in result.output
    assert [n.kind for n in rows("appr_b1")] == ["assigned", "due_soon", "overdue"]
    assert [m["Subject"] for m in smtp.mails][1:] == [f"[Gradeflow] 案件 {case.id} 将于 {deadline} 到期",
                                                      f"[Gradeflow] 案件 {case.id} 已逾期"]


def test_the_worker_sends_the_outbox_when_idle(bank, app, smtp):
    with_mail("appr_b1")
    file_case()
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert len(smtp.mails) == 1


# --- pages --------------------------------------------------------------------------------------------

def test_the_notifications_page_unread_first_and_marking_read(bank, page):
    case = file_case()
    notify.urge(case, person("hr_b1"), "请尽快")
    db.session.commit()
    p = page("appr_b1")
    html = p.get("/cases/").get_data(as_text=True)
    assert 'id="unread-count">2<' in html
    first = rows("appr_b1")[0]
    resp = p.post(f"/notifications/{first.id}/read", data={"go": "case"})
    assert resp.status_code == 302 and resp.location.endswith(f"/cases/{case.id}")
    html = p.get("/notifications").get_data(as_text=True)
    assert 'id="unread-count">1<' in html
    # Unread first: the urge, then the one read.
    urged = rows("appr_b1")[1]
    assert html.index(f'id="notification-{urged.id}"') < html.index(f'id="notification-{first.id}"')
    assert f"urges you to act on case {case.id}" in html and "Their message: 请尽快" in html
    assert p.post("/notifications/read-all").status_code == 302
    assert 'id="unread-count"' not in p.get("/notifications").get_data(as_text=True)
    # Someone else's notification is no one's business.
    assert page("emp").post(f"/notifications/{first.id}/read").status_code == 404


def test_the_pages_in_chinese(bank, page):
    case = file_case()
    html = page("appr_b1", "zh_CN").get("/notifications").get_data(as_text=True)
    assert f"案件 {case.id} 等待您处理：资格审核" in html and "全部标为已读" in html
    html = page("appr_b1", "zh_CN").get("/notifications/settings").get_data(as_text=True)
    assert "通过电子邮件" in html


def test_the_settings_page(bank, page):
    p = page("emp")
    assert p.get("/notifications/settings").status_code == 200
    resp = p.post("/notifications/settings", data={"language": "en"})       # the box unticked: off
    assert resp.status_code == 302
    db.session.expire_all()
    assert (person("emp").email_notifications, person("emp").language) == (False, "en")
    assert p.post("/notifications/settings", data={"language": "fr"}).status_code == 400
    p.post("/notifications/settings", data={"email_notifications": "y", "language": "zh_CN"})
    db.session.expire_all()
    assert person("emp").email_notifications is True


def test_urge_from_the_case_page(bank, page):
    case = file_case()
    p = page("emp")
    html = p.get(f"/cases/{case.id}").get_data(as_text=True)
    assert 'id="do-urge"' in html
    resp = p.post(f"/cases/{case.id}/urge", data={"comment": "请尽快"}, follow_redirects=True)
    assert resp.status_code == 200 and "You urged" in resp.get_data(as_text=True)
    assert [n.kind for n in rows("appr_b1")] == ["assigned", "urged"]
    html = p.get(f"/cases/{case.id}").get_data(as_text=True)
    assert 'id="do-urge"' not in html                   # once a day
    assert "Urged the assignees" in html                # on the record
    resp = p.post(f"/cases/{case.id}/urge", data={}, follow_redirects=True)
    assert "already urged this case today" in resp.get_data(as_text=True)
    assert len(rows("appr_b1")) == 2
    # The approver waits on nobody: no button, and a refusal.
    assert 'id="do-urge"' not in page("appr_b1").get(f"/cases/{case.id}").get_data(as_text=True)
    assert page("appr_b1").post(f"/cases/{case.id}/urge").status_code == 403
    assert page("emp2").post(f"/cases/{case.id}/urge").status_code == 404       # cannot see the case


def test_the_admin_sets_an_email_address(bank, page):
    p = page("admin")
    assert 'id="email-form"' in p.get("/admin/people/emp").get_data(as_text=True)
    assert p.post("/admin/people/emp/email", data={"email": "emp@bank.example"}).status_code == 302
    db.session.expire_all()
    assert person("emp").email == "emp@bank.example"
    assert person("emp").audit_version >= 1
    resp = p.post("/admin/people/emp/email", data={"email": "not an address"}, follow_redirects=True)
    assert "is not an e-mail address" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert person("emp").email == "emp@bank.example"
    assert page("hr_b1").post("/admin/people/emp/email", data={"email": "x@y.cn"}).status_code in (403, 404)


# --- API ----------------------------------------------------------------------------------------------

def test_api_lists_pages_and_marks_read(bank, api):
    case = file_case()
    notify.urge(case, person("hr_b1"))
    db.session.commit()
    a = api("appr_b1")
    body = a.get("/notifications?per_page=1").get_json()
    assert (body["total"], body["page"], body["per_page"], len(body["items"])) == (2, 1, 1, 1)
    item = a.get("/notifications").get_json()["items"][1]
    assert (item["kind"], item["case"], item["read"], item["params"]["state"]) == (
        "assigned", case.id, False, "qualification_review")
    assert item["title"] == f"Case {case.id} waits for you: Qualification review"
    assert a.get("/notifications/unread").get_json() == {"unread": 2}
    resp = a.post(f"/notifications/{item['id']}/read")
    assert resp.status_code == 200 and resp.get_json()["read"] is True
    assert a.get("/notifications?unread=true").get_json()["total"] == 1
    assert a.post("/notifications/read").get_json() == {"marked": 1, "unread": 0}
    assert api("emp").post(f"/notifications/{item['id']}/read").status_code == 404
    assert a.get("/notifications?unread=maybe").status_code == 400


def test_api_preferences(bank, api):
    a = api("emp")
    assert a.get("/me/notification-settings").get_json() == {
        "email": None, "email_notifications": True, "language": "zh_CN"}
    assert a.post("/me/notification-settings", json={"email_notifications": "no"}).status_code == 400
    assert a.post("/me/notification-settings", json={"language": "fr"}).status_code == 400
    assert a.post("/me/notification-settings", json={"email": "x@y.cn"}).status_code == 400
    body = a.post("/me/notification-settings", json={"email_notifications": False, "language": "en"})
    body = body.get_json()
    assert body == {"email": None, "email_notifications": False, "language": "en"}


def test_api_urge(bank, api):
    case = file_case()
    resp = api("emp").post(f"/cases/{case.id}/urge", json={"comment": "请尽快审核"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["urged"] == ["appr_b1"]
    assert resp.get_json()["case"]["state"] == "qualification_review"
    again = api("emp").post(f"/cases/{case.id}/urge")
    assert again.status_code == 422 and "already urged" in again.get_json()["error"]["message"]
    assert api("appr_b1").post(f"/cases/{case.id}/urge").status_code == 403
    assert api("emp2").post(f"/cases/{case.id}/urge").status_code == 404
    assert api("hr_b1").post(f"/cases/{case.id}/urge", json={"comment": 5}).status_code == 400
    assert api("hr_b1").post(f"/cases/{case.id}/urge").status_code == 200
    assert [n.kind for n in rows("appr_b1")] == ["assigned", "urged", "urged"]


def test_api_admin_sets_an_email_address(bank, api):
    resp = api("admin").post("/people/emp/email", json={"email": "emp@bank.example"})
    assert resp.status_code == 200 and resp.get_json()["email"] == "emp@bank.example"
    assert api("admin").post("/people/emp/email", json={"email": "bad@"}).status_code == 400
    assert api("admin").post("/people/emp/email", json={}).status_code == 400
    assert api("hr_b1").post("/people/emp/email", json={"email": "a@b.cn"}).status_code == 404
    assert api("admin").post("/people/emp/email", json={"email": None}).get_json()["email"] is None
