"""Notification pages: the list (unread first), marking read, the e-mail preference, 催办 from the case
page and the e-mail address an administrator sets. Also the wording of each notification, shared by the
pages, the API and the e-mails (web/mail.py)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from wtforms import BooleanField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from werkzeug.routing import BuildError
from wtforms.validators import Length, Optional

from workflow import authority, clock, notify
from workflow.errors import Forbidden, Invalid, NotFound, WorkflowError
from workflow.models import db, Person
from workflow.models.notifications import Notification

from .unit_of_work import load_visible_case
from .views import ACTIONS, KINDS, STATES, label

bp = Blueprint("notifications", __name__)
PER_PAGE = 25
LANGUAGE_CHOICES = (("zh_CN", "中文（简体）"), ("en", "English"))


# --- wording -------------------------------------------------------------------------------------------

def describe(n: Notification) -> tuple[str, str]:
    """(title, text) of a notification in the current language."""
    p = n.params or {}
    words = {"id": n.case_id or "", "kind": label(KINDS, p.get("case_kind", "")),
             "employee": p.get("employee", ""),
             "state": label(STATES, p.get("state", "")), "action": label(ACTIONS, p.get("action", "")),
             "actor": p.get("actor") or _("The system"), "deadline": p.get("deadline") or "—",
             "unit": p.get("unit") or "—", "from_unit": p.get("from_unit") or "—", "days": p.get("days", 0)}
    if n.kind == "assigned":
        title = _("Case %(id)s waits for you: %(state)s", **words)
        text = _("The %(kind)s of %(employee)s is at the step “%(state)s” and waits for you.", **words)
    elif n.kind == "escalated":
        title = _("Case %(id)s was escalated to you", **words)
        text = _("The step “%(state)s” of the %(kind)s of %(employee)s was overdue at %(from_unit)s and now "
                 "waits for you at %(unit)s.", **words)
    elif n.kind == "decided":
        title = _("Your case %(id)s: %(action)s", **words)
        text = _("%(actor)s decided on your %(kind)s: %(action)s. The case is now “%(state)s”.", **words)
    elif n.kind == "due_soon":
        title = _("Case %(id)s is due on %(deadline)s", **words)
        text = _("The step “%(state)s” of the %(kind)s of %(employee)s waits for you and is due on "
                 "%(deadline)s.", **words)
    elif n.kind == "overdue":
        title = _("Case %(id)s is overdue", **words)
        text = _("The step “%(state)s” of the %(kind)s of %(employee)s was due on %(deadline)s and still "
                 "waits for you.", **words)
    elif n.kind in CUSTOMER_KINDS:
        title, text = _describe_customer(n.kind, p)
    else:   # urged
        title = _("%(actor)s urges you to act on case %(id)s", **words)
        text = _("%(actor)s is waiting for the step “%(state)s” of the %(kind)s of %(employee)s and asks you "
                 "to act on it.", **words)
        if p.get("comment"):
            text += " " + _("Their message: %(comment)s", comment=p["comment"])
    if n.kind in ("assigned", "escalated") and p.get("deadline"):
        text += " " + _("Deadline: %(deadline)s.", **words)
    return title, text


CUSTOMER_KINDS = ("tier_changed", "tier_approval", "customers_released", "lead_assigned", "lead_overdue")


def _policy_label(value: Any) -> str:
    """A label stored in both languages ({"zh", "en"}) in the current one; a plain value as it is."""
    if isinstance(value, dict):
        return str(value.get("zh") if str(get_locale() or "zh").startswith("zh") else value.get("en", ""))
    return "—" if value is None else str(value)


def _describe_customer(kind: str, p: dict[str, Any]) -> tuple[str, str]:
    words = {"customer": p.get("customer", ""), "code": p.get("code", ""), "from": _policy_label(p.get("from")),
             "to": _policy_label(p.get("to")), "run": p.get("run", ""), "period": p.get("period", ""),
             "count": p.get("count", 0), "unit": p.get("unit") or "—", "manager": p.get("manager", ""),
             "reason": _policy_label(p.get("reason")), "title": p.get("title", ""),
             "lead_class": _policy_label(p.get("lead_class")), "deadline": p.get("deadline") or "—",
             "owner": p.get("owner", "")}
    if kind == "tier_changed":
        return (_("Customer %(customer)s is now %(to)s", **words),
                _("Customer %(customer)s (%(code)s), whom you hold, changed tier from %(from)s to %(to)s in "
                  "tiering run %(run)s (%(period)s). Its service standard changes with it.", **words))
    if kind == "tier_approval":
        return (_("%(count)s change(s) of tier await your approval", **words),
                _("Tiering run %(run)s (%(period)s) proposes %(count)s change(s) of tier at %(unit)s that "
                  "need your approval.", **words))
    if kind == "customers_released":
        return (_("%(count)s customer(s) of %(manager)s to reassign", **words),
                _("%(count)s customer(s) held by %(manager)s were released (%(reason)s) and wait to be "
                  "assigned to another manager.", **words))
    if kind == "lead_assigned":
        return (_("Lead assigned to you: %(title)s", **words),
                _("The sales lead %(title)s (%(lead_class)s) is yours to follow up by %(deadline)s.", **words))
    return (_("Lead overdue: %(title)s", **words),
            _("The sales lead %(title)s (%(lead_class)s) held by %(owner)s was due on %(deadline)s without a "
              "result; the sales manager may reassign it.", **words))


def target_url(n: Notification) -> str | None:
    """The page a notification about something other than a case opens, if any."""
    target = (n.params or {}).get("target")
    if not isinstance(target, dict) or not target.get("endpoint"):
        return None
    try:
        return url_for(target["endpoint"], **(target.get("values") or {}))
    except BuildError:
        return None


def unread_count(person: Person) -> int:
    return db.session.scalar(select(func.count(Notification.id)).where(
        Notification.recipient_id == person.id, Notification.read_at.is_(None))) or 0


def listing(person: Person, unread_only: bool = False):
    """The person's notifications: unread first, newest first within each."""
    q = select(Notification).where(Notification.recipient_id == person.id)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return q.order_by(Notification.read_at.is_not(None), Notification.id.desc())


def mark_read(person: Person, notification_id: int | None = None) -> int:
    """Mark one of the person's notifications (or all of them) read; answers how many changed."""
    q = update(Notification).where(Notification.recipient_id == person.id, Notification.read_at.is_(None))
    if notification_id is not None:
        q = q.where(Notification.id == notification_id)
    q = q.values(read_at=clock.now()).execution_options(synchronize_session=False)
    return db.session.execute(q).rowcount


def own_notification(person: Person, notification_id: int) -> Notification:
    n = db.session.get(Notification, notification_id)
    if n is None or n.recipient_id != person.id:
        raise NotFound(f"no notification {notification_id}")
    return n


@bp.app_context_processor
def _unread():
    if not current_user.is_authenticated:
        return {}
    try:
        return {"notifications_unread": unread_count(current_user)}
    except SQLAlchemyError:     # the error page of a failing database still renders, without the count
        db.session.rollback()
        return {}


@bp.app_template_global()
def urge_offered(case) -> bool:
    """The case page's 催办 button: offered to those waiting on the step, once a day."""
    return current_user.is_authenticated and notify.can_urge(case, current_user)


# --- forms ---------------------------------------------------------------------------------------------

class PreferencesForm(FlaskForm):
    email_notifications = BooleanField(_l("Send me notifications by e-mail"))
    language = SelectField(_l("Language of my e-mails"),
                           choices=[SelectChoice(v, text) for v, text in LANGUAGE_CHOICES])
    submit = SubmitField(_l("Save"))


class EmailForm(FlaskForm):
    email = StringField(_l("E-mail address"), validators=[Optional(), Length(max=254)])
    submit = SubmitField(_l("Save the address"))


# --- pages ---------------------------------------------------------------------------------------------

@bp.before_request
@login_required
def _logged_in():
    return None


@bp.route("/notifications")
def index():
    page = db.paginate(listing(current_user), per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    return render_template("notifications/index.html", page=page, unread=unread_count(current_user),
                           items=[(n, *describe(n)) for n in page.items], target_url=target_url)


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
def read(notification_id: int):
    try:
        n = own_notification(current_user, notification_id)
    except NotFound:
        abort(404)
    mark_read(current_user, n.id)
    db.session.commit()
    if request.form.get("go") == "case" and n.case_id is not None:
        return redirect(url_for("cases.detail", case_id=n.case_id))
    if request.form.get("go") == "target" and target_url(n):
        return redirect(target_url(n))
    return redirect(url_for("notifications.index"))


@bp.route("/notifications/read-all", methods=["POST"])
def read_all():
    count = mark_read(current_user)
    db.session.commit()
    flash(_("%(n)s notification(s) marked as read.", n=count), "success")
    return redirect(url_for("notifications.index"))


@bp.route("/notifications/settings", methods=["GET", "POST"])
def settings():
    form = PreferencesForm(formdata=request.form if request.method == "POST" else None,
                           email_notifications=current_user.email_notifications,
                           language=current_user.language or "zh_CN")
    if request.method == "POST":
        if not form.validate():
            return render_template("notifications/settings.html", form=form), 400
        set_preferences(current_user, form.email_notifications.data, form.language.data)
        db.session.commit()
        flash(_("Your notification settings have been saved."), "success")
        return redirect(url_for("notifications.settings"))
    return render_template("notifications/settings.html", form=form)


def set_preferences(person: Person, email_notifications, language) -> None:
    """Store a person's e-mail preference (shared by the page and the API)."""
    if email_notifications is not None:
        if not isinstance(email_notifications, bool):
            raise Invalid("email_notifications must be true or false", field="email_notifications")
        person.email_notifications = email_notifications
        if not email_notifications:
            # What is queued and not yet sent is not sent either.
            db.session.execute(update(Notification).where(
                Notification.recipient_id == person.id, Notification.mail_state == "pending")
                .values(mail_state="skipped").execution_options(synchronize_session=False))
    if language is not None:
        if language not in dict(LANGUAGE_CHOICES):
            raise Invalid(f"language must be one of {', '.join(dict(LANGUAGE_CHOICES))}", field="language")
        person.language = language


@bp.route("/cases/<int:case_id>/urge", methods=["POST"])
def urge(case_id: int):
    """催办 from the case page: refusals other than authority are said on the case page."""
    try:
        case = load_visible_case(case_id, current_user, lock=True)
        urged = notify.urge(case, current_user, request.form.get("comment", ""))
        db.session.commit()
    except (Forbidden, NotFound) as exc:
        db.session.rollback()
        abort(exc.status, exc.message if exc.status == 403 else None)
    except WorkflowError as exc:
        db.session.rollback()
        flash(urge_refusal(exc), "error")
        return redirect(url_for("cases.detail", case_id=case_id))
    flash(_("You urged %(names)s.", names="、".join(p.name for p in urged)), "success")
    return redirect(url_for("cases.detail", case_id=case_id))


def urge_refusal(exc: WorkflowError) -> str:
    """A refused urge, said in the page's language."""
    reason = exc.details.get("reason")
    if reason == "urged_today":
        return _("You have already urged this case today; you may urge it again tomorrow.")
    if reason == "closed":
        return _("The case is closed: there is nobody to urge.")
    if isinstance(exc, Invalid) and exc.details.get("field") == "comment":
        return _("The message is too long.")
    if reason == "nobody_else":
        return _("The case waits on nobody but you.")
    return _("Another change to the case came first; reload the page and try again.")


@bp.route("/admin/people/<username>/email", methods=["POST"])
def admin_email(username: str):
    person = db.session.scalar(select(Person).where(Person.username == username))
    if person is None or not authority.is_admin(current_user, person.unit):
        abort(404)
    form = EmailForm(formdata=request.form)
    if not form.validate():
        flash(" ".join(e for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for("admin.person", username=username))
    try:
        notify.set_email(person, form.email.data, current_user)
    except WorkflowError:
        db.session.rollback()
        flash(_("“%(email)s” is not an e-mail address.", email=form.email.data), "error")
        return redirect(url_for("admin.person", username=username))
    db.session.commit()
    flash(_("The e-mail address of %(name)s has been saved.", name=person.name), "success")
    return redirect(url_for("admin.person", username=username))
