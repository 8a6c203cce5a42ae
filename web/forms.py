"""Flask-WTF forms (CSRF included). Forms check the shape of the input; the engine decides the rest."""
from flask_babel import lazy_gettext as _l, ngettext
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (BooleanField, DateField, FloatField, HiddenField, PasswordField, SelectField,
                     SelectMultipleField, StringField, SubmitField, TextAreaField)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from workflow import engine
from workflow.models import db, OrgUnit

from .views import EVALUATION_ITEMS, KINDS, OUTCOMES, RATINGS, SEVERITIES, STATES


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    submit = SubmitField(_l("Log in"))


class ApplyForm(FlaskForm):
    """晋级申请表: the target grade, a statement and the exceptional mark; previewed before it is filed."""
    employee = HiddenField()
    target_grade = SelectField(_l("Target grade"), validators=[DataRequired()])
    statement = TextAreaField(_l("Statement"), validators=[Length(max=5000)],
                              description=_l("Your achievements and why you apply (shown to the reviewers)."),
                              render_kw={"rows": 5})
    exceptional = BooleanField(_l("Exceptional promotion (skips a grade or comes before eligibility; "
                                  "decided one org level higher)"))
    preview = SubmitField(_l("Preview eligibility"))
    submit = SubmitField(_l("Submit the application"))


class FileForForm(FlaskForm):
    """HR picks whom to file for (a GET form: no CSRF needed)."""
    class Meta:
        csrf = False

    employee = SelectField(_l("Employee"))
    go = SubmitField(_l("Choose"))


# --- actions on a case -------------------------------------------------------------------------------
# One small form per action; each carries the case version it was rendered from.

class ActionForm(FlaskForm):
    version = HiddenField()
    submit = SubmitField(_l("Confirm"))

    def engine_data(self) -> dict:
        """The body the engine's action takes."""
        return {}


class CommentForm(ActionForm):
    comment = TextAreaField(_l("Comment"), render_kw={"rows": 2})

    def engine_data(self) -> dict:
        return {"comment": self.comment.data or ""}


class ReasonRequiredForm(ActionForm):
    comment = TextAreaField(_l("Reason"), validators=[DataRequired(_l("Please say why."))], render_kw={"rows": 2})

    def engine_data(self) -> dict:
        return {"comment": self.comment.data or ""}


class ResubmitForm(ActionForm):
    statement = TextAreaField(_l("Revised statement"), render_kw={"rows": 4})

    def engine_data(self) -> dict:
        return {"statement": self.statement.data or ""}


class ScoreForm(ActionForm):
    score = FloatField(_l("Score (0-100)"), validators=[
        InputRequired(_l("Enter a score.")),
        NumberRange(min=0, max=100, message=_l("The score must be from 0 to 100."))],
        render_kw={"min": 0, "max": 100, "step": "0.5"})
    comment = TextAreaField(_l("Comment"), validators=[Optional()], render_kw={"rows": 2})

    def engine_data(self) -> dict:
        return {"score": self.score.data, "comment": self.comment.data or ""}


class ScoreForForm(ActionForm):
    """员工竞聘评价表 on paper: HR enters the score a panel member wrote on the form, for that member."""
    member = SelectField(_l("Panel member (from the paper form)"),
                         validators=[DataRequired(_l("Choose the panel member."))])
    score = FloatField(_l("Score (0-100)"), validators=[
        InputRequired(_l("Enter a score.")),
        NumberRange(min=0, max=100, message=_l("The score must be from 0 to 100."))],
        render_kw={"min": 0, "max": 100, "step": "0.5"})
    comment = TextAreaField(_l("Comment"), validators=[Optional()], render_kw={"rows": 2})

    def offer(self, case) -> None:
        self.member.choices = [(a.person.username, f"{a.person.name} ({a.person.username})")
                               for a in case.assignments if a.duty == "panel"]

    def engine_data(self) -> dict:
        return {"member": self.member.data, "score": self.score.data, "comment": self.comment.data or ""}


class PanelForm(ActionForm):
    members = SelectMultipleField(_l("Panel members"), option_widget=CheckboxInput(),
                                  widget=ListWidget(prefix_label=False),
                                  validators=[DataRequired(_l("Choose the panel members."))])

    def engine_data(self) -> dict:
        return {"members": list(self.members.data or [])}


# --- probation, demotion, dismissal --------------------------------------------------------------------

def _rating(label):
    return SelectField(label, validators=[DataRequired(_l("Rate every item of the form."))])


class EvaluationForm(ActionForm):
    """见习期工作表现评价表: an overall score, a rating per item (sent as the `form` object) and a comment."""
    score = FloatField(_l("Overall score (0-100)"), validators=[
        InputRequired(_l("Enter a score.")),
        NumberRange(min=0, max=100, message=_l("The score must be from 0 to 100."))],
        render_kw={"min": 0, "max": 100, "step": "0.5"})
    attitude = _rating(EVALUATION_ITEMS["attitude"])
    skills = _rating(EVALUATION_ITEMS["skills"])
    service = _rating(EVALUATION_ITEMS["service"])
    teamwork = _rating(EVALUATION_ITEMS["teamwork"])
    comment = TextAreaField(_l("Comment"), render_kw={"rows": 2})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for item in EVALUATION_ITEMS:
            self[item].choices = [("", "—"), *RATINGS.items()]

    def engine_data(self) -> dict:
        return {"score": self.score.data, "comment": self.comment.data or "",
                "form": {item: self[item].data for item in EVALUATION_ITEMS}}


class ExtendForm(ActionForm):
    """延长见习期, once: the months on offer are those the case's policy allows."""
    months = SelectField(_l("Extend by"), coerce=int, validators=[InputRequired(_l("Choose how long."))])
    comment = TextAreaField(_l("Comment"), render_kw={"rows": 2})

    def offer(self, case) -> None:
        longest = engine.policy_for(case).kind("probation").extend_max_months or 0
        self.months.choices = [(n, ngettext("%(num)s month", "%(num)s months", n))
                               for n in range(1, longest + 1)]
        self.months.description = ngettext("At most %(num)s month, and only once.",
                                           "At most %(num)s months, and only once.", longest)

    def engine_data(self) -> dict:
        return {"months": self.months.data, "comment": self.comment.data or ""}


class FailForm(ActionForm):
    """辞退或换岗: what follows a failed probation, and why."""
    outcome = SelectField(_l("Outcome"), validators=[DataRequired()])
    comment = TextAreaField(_l("Reason"), validators=[DataRequired(_l("Please say why."))],
                            render_kw={"rows": 2})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcome.choices = [(o, OUTCOMES[o]) for o in ("dismissal", "transfer")]

    def engine_data(self) -> dict:
        return {"outcome": self.outcome.data, "comment": self.comment.data or ""}


class AppealForm(ActionForm):
    """申诉: the employee's statement, inside the notice window."""
    statement = TextAreaField(_l("Your appeal"), validators=[DataRequired(_l("Please write your appeal."))],
                              description=_l("Heard by an approver one level above the one who confirmed the "
                                             "grounds."), render_kw={"rows": 4})

    def engine_data(self) -> dict:
        return {"statement": self.statement.data or ""}


class TransferForm(ActionForm):
    """转岗: the employee accepts a post in another unit instead of the dismissal."""
    unit = SelectField(_l("New unit"), validators=[DataRequired(_l("Choose the unit."))])

    def offer(self, case) -> None:
        units = db.session.scalars(select(OrgUnit).where(OrgUnit.id != case.employee.unit_id)
                                   .order_by(OrgUnit.path)).all()
        self.unit.choices = [("", "—")] + [(u.code, f"{u.name} ({u.code})") for u in units]

    def engine_data(self) -> dict:
        return {"unit": self.unit.data}


# --- publicity (公示) -----------------------------------------------------------------------------------

class ObjectionForm(ActionForm):
    """异议: anyone in the publicity's scope, once, with the facts."""
    statement = TextAreaField(_l("Your objection"),
                              validators=[DataRequired(_l("Please write your objection."))],
                              description=_l("The facts you object on. HR answers it; the applicant reads the "
                                             "statement but not your name."), render_kw={"rows": 3})

    def engine_data(self) -> dict:
        return {"statement": self.statement.data or ""}


class PublicityAnswerForm(ActionForm):
    """HR's answer to the objections: the promotion stands (uphold) or is withdrawn (overturn)."""
    comment = TextAreaField(_l("Answer to the objections"), validators=[DataRequired(_l("Please say why."))],
                            render_kw={"rows": 2})

    def engine_data(self) -> dict:
        return {"comment": self.comment.data or ""}


class OpenCaseForm(FlaskForm):
    """降级或辞退: whom, on which grounds (the reasons are grouped by kind) and the facts."""
    kind = SelectField(_l("Kind"), validators=[DataRequired()])
    employee = SelectField(_l("Employee"), validators=[DataRequired(_l("Choose the employee."))])
    reason = SelectField(_l("Reason"), validators=[DataRequired(_l("Choose the reason."))])
    severity = SelectField(_l("Severity"), validators=[Optional()],
                           description=_l("For misconduct only; the policy says which sanction each allows."))
    comment = TextAreaField(_l("Facts"), validators=[Length(max=5000)], render_kw={"rows": 4}, description=_l(
        "What happened, when, and on what evidence (required for misconduct)."))
    submit = SubmitField(_l("Open the case"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = [(k, KINDS[k]) for k in ("demotion", "dismissal")]
        self.severity.choices = [("", "—"), *SEVERITIES.items()]


class OpenProbationForm(FlaskForm):
    """见习期: HR starts the probation of a person whose status is probation."""
    employee = SelectField(_l("Employee"), validators=[DataRequired(_l("Choose the employee."))])
    submit = SubmitField(_l("Start the probation"))


class HandOverForm(ActionForm):
    """转办: the person who takes over the task (same role at the step's unit or above) and why."""
    to = StringField(_l("Hand over to (username)"), validators=[DataRequired(_l("Name the person."))],
                     description=_l("They must hold your role at this step's unit or above it, and have no "
                                    "conflict on the case."))
    comment = TextAreaField(_l("Reason"), validators=[DataRequired(_l("Please say why."))], render_kw={"rows": 2})

    def engine_data(self) -> dict:
        return {"to": (self.to.data or "").strip(), "comment": self.comment.data or ""}


class CopyForm(ActionForm):
    """抄送: who reads the case, for information only."""
    to = StringField(_l("Copy to (username)"), validators=[DataRequired(_l("Name the person."))],
                     description=_l("They will see the case and cannot act on it."))
    comment = TextAreaField(_l("Note"), validators=[Length(max=2000)], render_kw={"rows": 2})

    def engine_data(self) -> dict:
        return {"to": (self.to.data or "").strip(), "comment": self.comment.data or ""}


class AddSignerForm(ActionForm):
    """加签: a signer added to this step, before oneself (they sign first) or after (they sign after you)."""
    # The engine decides who may be added (validate_choice=False): a refusal says why, not "not a choice".
    person = SelectField(_l("Signer to add"), validators=[DataRequired(_l("Name the person."))],
                         validate_choice=False,
                         description=_l("They must hold your role for this step at its unit or above it, and "
                                        "have no conflict on the case."))
    position = SelectField(_l("Order"), validators=[DataRequired()])
    comment = TextAreaField(_l("Note"), validators=[Length(max=2000)], render_kw={"rows": 2})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.position.choices = [("before", _l("Before me: they sign first, then the step comes back to me")),
                                 ("after", _l("After me: they sign once I have signed"))]

    def offer(self, case) -> None:
        from flask_login import current_user
        from workflow.signing import candidates
        self.person.choices = [("", "—")] + [(p.username, f"{p.name} ({p.username}) · {p.unit.name}")
                                             for p in candidates(case, current_user)]

    def engine_data(self) -> dict:
        return {"person": (self.person.data or "").strip(), "position": self.position.data,
                "comment": self.comment.data or ""}


class SendBackForm(ActionForm):
    """退回: back to an earlier step the case passed through, with the reason."""
    to_step = SelectField(_l("Back to the step"), validators=[DataRequired(_l("Choose the step."))])
    comment = TextAreaField(_l("Reason"), validators=[DataRequired(_l("Please say why."))], render_kw={"rows": 2})

    def offer(self, case) -> None:
        from workflow.signing import send_back_targets
        self.to_step.choices = [(s, STATES.get(s, s)) for s in send_back_targets(case)]

    def engine_data(self) -> dict:
        return {"to_step": self.to_step.data, "comment": self.comment.data or ""}


class DelegationForm(FlaskForm):
    """代理: a colleague acts for me on my approver and HR duties between two dates."""
    delegate = StringField(_l("Colleague (username)"), validators=[DataRequired(_l("Name the colleague."))])
    starts_on = DateField(_l("From"), validators=[InputRequired(_l("Enter a date."))])
    ends_on = DateField(_l("Until (included)"), validators=[InputRequired(_l("Enter a date."))])
    comment = TextAreaField(_l("Comment"), validators=[Length(max=2000)], render_kw={"rows": 2})
    submit = SubmitField(_l("Delegate"))


class RevokeDelegationForm(FlaskForm):
    comment = StringField(_l("Reason"), validators=[Length(max=2000)])
    submit = SubmitField(_l("Revoke"))


ACTION_FORMS = {
    "hand_over": HandOverForm, "copy": CopyForm, "add_signer": AddSignerForm, "send_back": SendBackForm,
    "return": ReasonRequiredForm, "reject": ReasonRequiredForm, "resubmit": ResubmitForm,
    "assign_panel": PanelForm, "score": ScoreForm, "supervisor_score": ScoreForm, "score_for": ScoreForForm,
    "declare_conflict": ReasonRequiredForm, "qualify": CommentForm, "approve": CommentForm,
    "withdraw": CommentForm, "make_effective": ActionForm,
    "open_evaluation": CommentForm, "evaluate": EvaluationForm, "confirm": CommentForm, "extend": ExtendForm,
    "fail": FailForm, "confirm_grounds": CommentForm, "retain": ReasonRequiredForm, "appeal": AppealForm,
    "accept_transfer": TransferForm, "uphold": CommentForm, "overturn": ReasonRequiredForm,
    "final_approve": CommentForm, "sustain": ReasonRequiredForm, "reinstate": ReasonRequiredForm,
}


# Where one action means something else in a kind: a promotion's uphold and overturn answer the
# publicity's objections (a comment is required), not an appeal.
KIND_ACTION_FORMS = {
    ("promotion", "object"): ObjectionForm, ("promotion", "uphold"): PublicityAnswerForm,
    ("promotion", "overturn"): PublicityAnswerForm,
}


def action_form(action: str, formdata=None, kind: str | None = None, **kwargs) -> ActionForm:
    """The form of an action; fields are prefixed by the action so several fit on one page."""
    cls = KIND_ACTION_FORMS.get((kind, action)) or ACTION_FORMS.get(action, CommentForm)
    return cls(formdata=formdata, prefix=action, **kwargs)


# --- administration ----------------------------------------------------------------------------------

class PasswordResetForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[
        DataRequired(), Length(min=8, message=_l("At least 8 characters."))])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))])
    submit = SubmitField(_l("Set the password"))


class RolesForm(FlaskForm):
    """Keep or drop the roles a person holds, and add one."""
    keep = SelectMultipleField(_l("Roles held (untick to remove)"), option_widget=CheckboxInput(),
                               widget=ListWidget(prefix_label=False), validate_choice=False)
    add_role = SelectField(_l("Add a role"), validators=[Optional()])
    add_unit = SelectField(_l("At unit"), validators=[Optional()])
    submit = SubmitField(_l("Save the roles"))


class PeopleSearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional()])
    status = SelectField(_l("Status"), validators=[Optional()], validate_choice=False)
    role = SelectField(_l("Role"), validators=[Optional()], validate_choice=False)
    submit = SubmitField(_l("Search"))


# --- promotion rounds --------------------------------------------------------------------------------

class OpenRoundForm(FlaskForm):
    """晋级周期: where, for which period and target levels, and when applications are taken."""
    unit = SelectField(_l("Unit"), validators=[DataRequired()])
    period = StringField(_l("Period"), validators=[DataRequired(), Length(max=20)],
                         description=_l("For example 2026, or 2026-H1."))
    title = StringField(_l("Title"), validators=[Optional(), Length(max=200)],
                        description=_l("Shown to HR and the applicants; the period when left empty."))
    opens_on = DateField(_l("Applications open on"), validators=[InputRequired(_l("Enter a date."))])
    closes_on = DateField(_l("Applications close on"), validators=[InputRequired(_l("Enter a date."))])
    levels = SelectMultipleField(_l("Target levels"), option_widget=CheckboxInput(),
                                 widget=ListWidget(prefix_label=False),
                                 validators=[DataRequired(_l("Choose at least one target level."))])
    submit = SubmitField(_l("Open the round"))


class RoundActionForm(FlaskForm):
    """Close or decide a round; carries the round version the page showed."""
    version = HiddenField()
    submit = SubmitField(_l("Confirm"))


# --- the annual review -------------------------------------------------------------------------------

class ReviewPreviewForm(FlaskForm):
    """年度考核排名: which unit and year to preview (a GET form: it changes nothing, so no CSRF)."""
    class Meta:
        csrf = False

    unit = SelectField(_l("Unit"), validators=[DataRequired()])
    period = StringField(_l("Year"), validators=[DataRequired(), Length(max=20)],
                         description=_l("The calendar year reviewed, for example 2025."))
    submit = SubmitField(_l("Preview"))


class ReviewRunForm(FlaskForm):
    """Run the previewed review for real: store it and open its cases."""
    unit = HiddenField(validators=[DataRequired()])
    period = HiddenField(validators=[DataRequired()])
    submit = SubmitField(_l("Open the cases"))
