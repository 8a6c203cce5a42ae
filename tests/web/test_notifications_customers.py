"""Notifications about customers and leads: worded in the reader's language from their params, with a button
(and in the e-mail a link) to the page they are about."""
from flask_babel import force_locale

from web.mail import compose
from web.notifications import describe
from workflow import notify
from workflow.models import db
from workflow.models.notifications import Notification

TIER = {"customer": "杭州某集团", "code": "C-001", "from": {"zh": "核心客户", "en": "Core"},
        "to": {"zh": "重要客户", "en": "Important"}, "run": 3, "period": "2026-H1",
        "target": {"endpoint": "hr.pipeline", "values": {}}}


def test_a_tier_change_is_worded_in_each_language(bank, app):
    n = notify.notify(bank["emp"], "tier_changed", params=TIER)
    db.session.commit()
    with app.test_request_context(), force_locale("en"):
        title, text = describe(n)
        assert title == "Customer 杭州某集团 is now Important"
        assert "changed tier from Core to Important in tiering run 3 (2026-H1)" in text
    with app.test_request_context(), force_locale("zh_CN"):
        assert "由核心客户调整为重要客户" in describe(n)[1]


def test_each_customer_kind_has_its_own_words(bank, app):
    params = {"count": 4, "manager": "王芳", "reason": {"zh": "降级", "en": "demotion"}, "title": "某公司扩容",
              "lead_class": {"zh": "A类", "en": "A"}, "deadline": "2026-03-09", "owner": "李扬", "unit": "B1",
              "run": 2, "period": "2026"}
    with app.test_request_context(), force_locale("en"):
        words = {kind: describe(Notification(kind=kind, params=params))
                 for kind in ("tier_approval", "customers_released", "lead_assigned", "lead_overdue")}
    assert words["tier_approval"][0] == "4 change(s) of tier await your approval"
    assert "released (demotion)" in words["customers_released"][1]
    assert words["lead_assigned"][1] == "The sales lead 某公司扩容 (A) is yours to follow up by 2026-03-09."
    assert "held by 李扬 was due on 2026-03-09" in words["lead_overdue"][1]


def test_the_page_opens_the_target_and_the_mail_links_it(bank, page, app):
    bank["emp"].email = "emp@example.com"
    n = notify.notify(bank["emp"], "tier_changed", params=TIER)
    db.session.commit()
    client = page("emp")
    client.get("/lang/en")
    body = client.get("/notifications").get_data(as_text=True)
    assert "Customer 杭州某集团 is now Important" in body and "Open the page" in body
    resp = client.post(f"/notifications/{n.id}/read", data={"go": "target"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/hr/pipeline")
    assert db.session.get(Notification, n.id).read_at is not None
    with app.app_context():
        mail = compose(db.session.get(Notification, n.id))
    assert "/hr/pipeline" in mail.get_content()


def test_a_target_that_names_no_page_offers_no_button(bank, page):
    notify.notify(bank["emp"], "lead_overdue", params={"title": "x", "target": {"endpoint": "nowhere.page"}})
    db.session.commit()
    client = page("emp")
    client.get("/lang/en")
    body = client.get("/notifications").get_data(as_text=True)
    assert "Lead overdue: x" in body and "Open the page" not in body
