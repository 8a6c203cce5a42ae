"""Notifications, e-mail preferences, 催办 and e-mail addresses in the JSON API, on the API blueprint:
same auth, same JSON errors."""
from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask_login import current_user
from sqlalchemy import select

from workflow import authority, notify
from workflow.errors import Invalid, NotFound
from workflow.models import db, Person
from workflow.models.notifications import Notification

from .api import body, bp, paginate
from .notifications import describe, listing, mark_read, own_notification, set_preferences, unread_count
from .serialize import case_json
from .unit_of_work import load_visible_case


def notification_json(n: Notification) -> dict[str, Any]:
    title, text = describe(n)
    return {"id": n.id, "kind": n.kind, "case": n.case_id, "params": n.params or {}, "title": title,
            "text": text,
            "created_at": n.created_at.isoformat(timespec="seconds") + "Z",
            "read_at": n.read_at.isoformat(timespec="seconds") + "Z" if n.read_at else None,
            "read": n.read_at is not None, "mail": n.mail_state}


def preferences_json(person: Person) -> dict[str, Any]:
    return {"email": person.email, "email_notifications": person.email_notifications,
            "language": person.language or "zh_CN"}


def _flag(name: str) -> bool:
    raw = request.args.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise Invalid(f"{name} must be true or false", field=name)


@bp.get("/notifications")
def list_notifications():
    """The caller's notifications, unread first then newest; `?unread=true` for the unread only."""
    return paginate(listing(current_user, unread_only=_flag("unread")), notification_json)


@bp.get("/notifications/unread")
def count_unread():
    return jsonify({"unread": unread_count(current_user)})


@bp.post("/notifications/<int:notification_id>/read")
def read_notification(notification_id: int):
    n = own_notification(current_user, notification_id)
    mark_read(current_user, n.id)
    db.session.commit()
    db.session.refresh(n)
    return jsonify(notification_json(n))


@bp.post("/notifications/read")
def read_all_notifications():
    count = mark_read(current_user)
    db.session.commit()
    return jsonify({"marked": count, "unread": unread_count(current_user)})


@bp.get("/me/notification-settings")
def get_preferences():
    return jsonify(preferences_json(current_user))


@bp.post("/me/notification-settings")
def set_notification_preferences():
    data = body()
    unknown = sorted(set(data) - {"email_notifications", "language"})
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)} (email_notifications, language)",
                      field=unknown[0])
    set_preferences(current_user, data.get("email_notifications"), data.get("language"))
    db.session.commit()
    return jsonify(preferences_json(current_user))


@bp.post("/cases/<int:case_id>/urge")
def urge_case(case_id: int):
    """催办: remind the case's assignees (once a day per case and caller)."""
    data = body()
    case = load_visible_case(case_id, current_user, lock=True)
    urged = notify.urge(case, current_user, data.get("comment", ""))
    db.session.commit()
    return jsonify({"urged": [p.username for p in urged], "case": case_json(case, current_user)})


@bp.post("/people/<username>/email")
def set_person_email(username: str):
    """An administrator over the person's unit sets (or, with null, clears) their e-mail address."""
    data = body()
    if "email" not in data:
        raise Invalid("email is required (an address, or null to clear it)", field="email")
    person = db.session.scalar(select(Person).where(Person.username == username))
    if person is None or not authority.is_admin(current_user, person.unit):
        raise NotFound(f"no person '{username}' you administer")
    notify.set_email(person, data["email"], current_user)
    db.session.commit()
    return jsonify({"username": person.username, **preferences_json(person)})
