"""Pages about cases: my cases, the inbox, the application form, the case page and its actions."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from wtforms import SelectField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from workflow import authority, batch, clock, delegation, engine, reports, routing, signing
from workflow.errors import Conflict, Forbidden, NotFound, Refused, WorkflowError
from workflow.machines import RULEBOOKS, rulebook
from workflow.models import db, Case, OrgUnit, Person

from . import case_filters, jobs as web_jobs, printing, rounds as round_pages, serialize
from .forms import ApplyForm, FileForForm, action_form
from .unit_of_work import decide, load_visible_case
from .views import ACTIONS, STATES, active_policy, grade_label, label

bp = Blueprint("cases", __name__)
PER_PAGE = 25
# The order of the action forms on the case page: moving the case on first, then sending it back or out.
ACTION_ORDER = ["qualify", "open_evaluation", "evaluate", "confirm", "confirm_grounds", "uphold", "approve",
                "final_approve", "make_effective", "assign_panel", "score", "score_for", "supervisor_score", "resubmit",
                "appeal", "object", "accept_transfer", "extend", "retain", "overturn", "fail", "return",
                "reject", "send_back", "add_signer", "withdraw", "declare_conflict", "hand_over", "copy"]
SECONDARY = {"fail", "return", "reject", "withdraw", "declare_conflict", "hand_over", "copy", "add_signer",
             "send_back"}
ELSEWHERE = {"attach"}     # offered by the case page's own section (templates/print/_case_card.html)


@bp.before_request
@login_required
def _logged_in():
    return None


# --- lists -------------------------------------------------------------------------------------------

@bp.route("/")
def home():
    q = (select(Case).where(Case.employee_id == current_user.id)
         .order_by(Case.created_at.desc(), Case.id.desc()))
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    open_promotion = db.session.scalar(select(Case.id).where(
        Case.employee_id == current_user.id, Case.kind == "promotion", Case.closed.is_(False)))
    can_apply = current_user.level is not None and open_promotion is None
    files_for_others = any(ra.role == "hr" for ra in current_user.roles)
    return render_template("cases/home.html", page=page, cases=page.items, can_apply=can_apply,
                           files_for_others=files_for_others, today=clock.today())


class InboxBulkForm(FlaskForm):
    """The inbox's bulk decision: the cases ticked (`case`, each with the `version-ID` the page showed) get
    the one decision and comment."""
    action = SelectField(_l("Decision for the cases ticked"),
                         choices=[SelectChoice(a, text) for a, text in web_jobs.BULK_ACTIONS.items()],
                         validators=[DataRequired()])
    comment = TextAreaField(_l("Comment (for every case ticked)"), validators=[Length(max=batch.MAX_COMMENT)])
    submit = SubmitField(_l("Decide the cases ticked"))


@bp.route("/inbox")
def inbox(form: InboxBulkForm | None = None, results: list | None = None, alert: str | None = None,
          status: int = 200):
    """The open cases where the user has a part to play, a page at a time, with every part on each; the
    cases where a bulk decision (qualify, approve) is open to the user get a tick box."""
    # What the row shows and what the bulk tick boxes ask of each case (its actions read the case's events,
    # scores, panel and conflicts): loaded for the page at once, not per row.
    q = reports.assigned_query(current_user).options(*reports.case_full_options(), *reports.case_row_options())
    page = db.paginate(q, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    duties = reports.duties_of(current_user, [c.id for c in page.items])
    on_behalf = delegation.on_behalf_by_case(current_user, [c.id for c in page.items])
    items = [{"case": c, "duties": duties[c.id], "on_behalf": on_behalf.get(c.id, []),
              "bulk": [a for a in engine.available_actions(c, current_user) if a in web_jobs.BULK_ACTIONS]}
             for c in page.items]
    offered = {a for item in items for a in item["bulk"]}
    form = form or InboxBulkForm(formdata=None)
    form.action.choices = [SelectChoice(a, text) for a, text in web_jobs.BULK_ACTIONS.items() if a in offered] \
        or form.action.choices
    return render_template("cases/inbox.html", items=items, page=page, today=clock.today(),
                           overdue=lambda c: engine.is_overdue(c), form=form if offered else None,
                           results=results, alert=alert), status


@bp.route("/inbox/decide", methods=["POST"])
def inbox_decide():
    """Decide the cases ticked in the inbox, each on its own (web/jobs.bulk_decide): the inbox again with
    every case's outcome, or, for a large selection, the job that decides them."""
    form = InboxBulkForm()
    ids = request.form.getlist("case")
    if not form.validate():
        return inbox(form=form, status=400)
    if not ids or not all(i.isdigit() for i in ids):
        return inbox(form=form, alert=_("Tick at least one case."), status=400)
    versions = {i: request.form.get(f"version-{i}", "") for i in ids}
    params = {"action": form.action.data, "cases": [int(i) for i in ids], "comment": form.comment.data or "",
              "versions": {i: int(v) for i, v in versions.items() if v.isdigit()}}
    try:
        results, job = web_jobs.bulk_decide(params, current_user)
    except WorkflowError as exc:
        db.session.rollback()
        return inbox(form=form, alert=error_message(exc), status=exc.status)
    if job is not None:
        flash(_("The decisions have started: job %(id)s.", id=job.id), "success")
        return redirect(url_for("jobs.detail", job_id=job.id))
    done = sum(1 for r in results if r["ok"])
    flash(_("Decided: %(ok)s, refused: %(refused)s", ok=done, refused=len(results) - done),
          "success" if done == len(results) else "warning")
    return inbox(form=InboxBulkForm(formdata=None), results=results)


@bp.route("/cases/")
def index():
    """Every case the user may see, filtered by kind, state, target level, unit (its subtree, or only the
    people directly in it) and overdue (web/case_filters.py; a bad filter is a 400 saying which)."""
    filters = case_filters.parse(request.args, active_policy())
    args = {"kind": "", "state": "", "level": "", "unit": "", "direct": "", "overdue": "", **filters.args()}
    q = case_filters.apply(select(Case).where(authority.visible_filter(current_user)).order_by(Case.id.desc()),
                           filters)
    page = db.paginate(q.options(*reports.case_row_options()), per_page=PER_PAGE, max_per_page=PER_PAGE,
                       error_out=False)
    pol = active_policy()
    kinds = [args["kind"]] if args["kind"] in RULEBOOKS else list(RULEBOOKS)
    states = list(dict.fromkeys(s for kind in kinds for s in rulebook(kind).states))
    return render_template("cases/list.html", page=page, args=args, states=states, kinds=list(RULEBOOKS),
                           levels=[lv.id for lv in pol.ladder] if pol else [], today=clock.today(),
                           overdue=lambda c: engine.is_overdue(c))


# --- applying ----------------------------------------------------------------------------------------

def _fileable_people() -> list[Person]:
    """People the current user may file a promotion for: themselves (with a grade) and, for HR, the
    graded people of their subtree."""
    units = [ra.unit for ra in current_user.roles if ra.role == "hr"]
    people = []
    if units:
        people = db.session.scalars(
            select(Person).join(OrgUnit, Person.unit_id == OrgUnit.id)
            .where(db.or_(*[OrgUnit.path.startswith(u.path) for u in units]), Person.level.is_not(None),
                   Person.status != "dismissed")
            .order_by(OrgUnit.path, Person.username)).all()
    if current_user.level is not None and current_user not in people:
        people.insert(0, current_user)
    return people


def _grade_choices(employee: Person) -> list[tuple[str, str]]:
    """The next grade(s) first, then the higher ones (a skip: exceptional only)."""
    pol = active_policy()
    if pol is None or employee.level is None or employee.level not in pol.level_ids:
        return []
    nxt = [f"{lv}-{t}" for lv, t in pol.next_grades(employee.level, employee.tier)]
    here = (pol.level_index(employee.level), employee.tier)
    higher = [f"{lv.id}-{t}" for lv in pol.ladder for t in range(1, lv.tiers + 1)
              if (pol.level_index(lv.id), t) > here and f"{lv.id}-{t}" not in nxt]
    return ([(g, grade_label(g, pol)) for g in nxt]
            + [(g, _("%(grade)s (skips a grade: exceptional only)", grade=grade_label(g, pol))) for g in higher])


@bp.route("/cases/new", methods=["GET", "POST"])
def apply():
    people = _fileable_people()
    if not people:
        flash(_("You hold no grade of the ladder, so there is nothing to apply for."), "warning")
        return redirect(url_for("cases.home"))
    default = current_user if current_user.level is not None else people[0]
    wanted = request.values.get("employee") or default.username
    employee = next((p for p in people if p.username == wanted), None)
    if employee is None:
        abort(403)

    picker = None
    if len(people) > 1:
        picker = FileForForm(formdata=None, employee=employee.username)
        picker.employee.choices = [(p.username, f"{p.name} ({p.username}) · {grade_label(p.grade)}")
                                   for p in people]

    form = ApplyForm(formdata=request.form if request.method == "POST" else None, employee=employee.username)
    form.target_grade.choices = _grade_choices(employee)
    round_id, in_round, open_rounds = round_pages.for_application(employee)
    preview, alert, status = None, None, 200
    if request.method == "POST" and form.validate():
        try:
            if form.submit.data:
                case = engine.create_promotion(current_user, employee, form.target_grade.data,
                                               form.statement.data or "", bool(form.exceptional.data),
                                               round=round_id)
                for upload in request.files.getlist("attachments"):    # 附件, in the same commit
                    if upload.filename:
                        printing.attach_in_transaction(case, upload, current_user)
                db.session.commit()
                flash(_("Your application has been filed: case %(id)s.", id=case.id), "success")
                return redirect(url_for("cases.detail", case_id=case.id))
            _level, _tier, preview = engine.preview_eligibility(employee, form.target_grade.data,
                                                                in_round.opens_on if in_round else None)
        except WorkflowError as exc:
            db.session.rollback()
            status = exc.status
            preview = exc.details.get("eligibility") or preview
            alert = _attach_error(form, exc)
    elif request.method == "POST":
        status = 400
    return render_template("cases/apply.html", form=form, picker=picker, employee=employee, preview=preview,
                           alert=alert, pol=active_policy(), round_id=round_id,
                           open_rounds=open_rounds), status


def _attach_error(form, exc: WorkflowError) -> Markup | None:
    """Show an engine refusal next to the field it names; else return it for an alert."""
    field = exc.details.get("field")
    message = error_message(exc)
    if field and field in form._fields and field not in ("version", "employee"):
        form[field].errors = list(form[field].errors or []) + [message]
        return None
    return message


def error_message(exc: WorkflowError) -> Markup:
    """An engine refusal in the user's words: a lead-in, then the engine's own sentence (the API's message),
    translated when shown (workflow/i18n.py)."""
    field = exc.details.get("field")
    if isinstance(exc, Conflict):
        return Markup.escape(_("The case has changed since you loaded it; reload the page and decide again."))
    if "eligibility" in exc.details:
        return Markup.escape(_("Not eligible: some rules fail (see the table). Tick “Exceptional promotion” to "
                               "file it anyway; it will be decided one org level higher."))
    if field == "comment":
        return Markup.escape(_("Please give a reason."))
    if field == "score":
        return Markup.escape(_("The score must be from 0 to 100."))
    lead = {"members": _("The panel cannot be formed this way:"),
            "target_grade": _("This target grade is not possible:"),
            "employee": _("This application is not possible:")}.get(field)
    if lead is None:
        lead = _("You may not do this:") if isinstance(exc, Forbidden) else _("Refused:")
    return Markup('{} <span class="engine-reason">{}</span>').format(lead, exc.message)


# --- the case page -----------------------------------------------------------------------------------

def _panel_candidates(case: Case) -> list[Person]:
    """People who hold `panel` at the step unit or above, less the applicant (the engine checks the rest)."""
    if case.step_unit is None:
        return []
    seen, people = set(), []
    for unit in case.step_unit.ancestors():
        for p in routing.holders("panel", unit):
            if p.id not in seen and p.id != case.employee_id:
                seen.add(p.id)
                people.append(p)
    return people


def _forms_for(case: Case, actions: list[str], posted: dict | None = None) -> dict:
    forms = {}
    for action in actions:
        form = posted.get(action) if posted else None
        if form is None:
            form = action_form(action, formdata=None, version=case.version, kind=case.kind)
        if action == "assign_panel":
            scored = {s.scorer_id for s in case.scores if s.component == "panel"}
            form.members.choices = [(p.username, f"{p.name} ({p.username}) · {p.unit.name}")
                                    for p in _panel_candidates(case) if p.id not in scored]
            if form.members.data is None:
                form.members.data = [m.person.username for m in case.panel if m.person_id not in scored]
        if hasattr(form, "offer"):        # choices that depend on the case (policy limits, units)
            form.offer(case)
        forms[action] = form
    return forms


def render_detail(case: Case, posted: dict | None = None, alert: str | None = None, status: int = 200):
    viewer = current_user
    pol = engine.policy_for(case)
    actions = sorted((a for a in engine.available_actions(case, viewer) if a not in ELSEWHERE),
                     key=lambda a: ACTION_ORDER.index(a) if a in ACTION_ORDER else len(ACTION_ORDER))
    names = {p.username: p.name for p in db.session.scalars(
        select(Person).where(Person.username.in_({ev.actor for ev in case.events})))}
    return render_template(
        "cases/detail.html", case=case, pol=pol, actions=actions, forms=_forms_for(case, actions, posted),
        scores=serialize.scores_json(case, viewer), hide_scores=not authority.score_values_visible(viewer, case),
        composite_visible=authority.composite_visible(viewer, case), routing_note=serialize.routing_sentence(case),
        overdue=engine.is_overdue(case), names=names, secondary=SECONDARY, alert=alert,
        signing=signing.summary(case),
        supervisors=case.assignee_people("supervisor"), assignments=case.assignments), status


@bp.route("/cases/<int:case_id>")
def detail(case_id: int):
    try:
        case = load_visible_case(case_id, current_user)
    except NotFound:
        abort(404)
    return render_detail(case)


@bp.route("/cases/<int:case_id>/<action>", methods=["POST"])
def act(case_id: int, action: str):
    """Take an action from its form: checks in the contract's order (404, 409, 403, then the body)."""
    try:
        case = load_visible_case(case_id, current_user)
    except NotFound:
        abort(404)
    rb = rulebook(case.kind)
    if action not in rb.actors:
        abort(404)
    if not rb.can_fire(case.state, action):
        alert = _("The case has changed since you loaded it: it is now “%(state)s”, so “%(action)s” is no "
                  "longer possible. The page shows it as it is now.",
                  state=label(STATES, case.state), action=_action_word(action))
        return render_detail(case, alert=alert, status=409)
    allowed = authority.can(current_user, case, action, rb)
    if not allowed:
        abort(403, allowed.reason)
    form = action_form(action, formdata=request.form, kind=case.kind)
    if action == "assign_panel" or hasattr(form, "offer"):
        _forms_for(case, [action], {action: form})
    if not form.validate():
        return render_detail(case, posted={action: form}, status=400)
    version = form.version.data
    version = int(version) if version and version.isdigit() else -1
    try:
        decide(case.id, action, current_user, form.engine_data(), version)
    except Conflict:
        case = load_visible_case(case_id, current_user)
        alert = _("The case has changed since you loaded it (another decision came first). The page now "
                  "shows it as it is; check it and decide again.")
        return render_detail(case, alert=alert, status=409)
    except (Forbidden, NotFound) as exc:
        abort(exc.status, exc.message)
    except (Refused, WorkflowError) as exc:
        case = load_visible_case(case_id, current_user)
        alert = _attach_error(form, exc)
        return render_detail(case, posted={action: form}, alert=alert, status=exc.status)
    flash(_("Done: %(action)s.", action=_action_word(action)), "success")
    if authority.can_see(current_user, case):
        return redirect(url_for("cases.detail", case_id=case.id))
    return redirect(url_for("cases.inbox"))


def _action_word(action: str) -> str:
    return label(ACTIONS, action)
