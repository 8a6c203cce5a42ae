"""The state machines of the case kinds, drawn for people: /machines lists every kind, /machines/<kind> draws
one. The case page shows the same picture with the case's state highlighted (the `machine_diagram` global).
"""
from __future__ import annotations

import logging
import subprocess

from flask import Blueprint, abort, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from workflow import diagrams
from workflow.machines import RULEBOOKS

from .views import ACTIONS, DUTIES, KINDS, STATES

bp = Blueprint("diagrams", __name__, url_prefix="/machines")
log = logging.getLogger(__name__)

# Who acts, beyond the duties of the case page.
MORE_DUTIES = {"any_assignee": _l("Any assignee"), "system": _l("System"), "initiator": _l("Initiator"),
               "in_scope": _l("Anyone in scope")}

# The guards of the machine modules (functions of workflow/rules.py), in words.
GUARDS = {
    "require_comment": _l("needs a comment"), "require_statement": _l("needs a statement"),
    "require_score": _l("a score from 0 to 100"), "require_members": _l("names the members"),
    "require_file": _l("an uploaded file"), "require_paper_member": _l("a panel member due to score"),
    "require_effective_date": _l("on or after the effective date"),
    "require_overdue": _l("overdue long enough"),
    "last_signature": _l("last signature"), "effective_on_approval": _l("policy: effective on approval"),
    "scoring_complete": _l("panel and supervisor have scored"),
    "require_inside_window": _l("inside the appeal window"), "require_window_over": _l("the window is over"),
    "require_evaluation_window": _l("near the end of probation, or early by HR"),
    "require_evaluation_form": _l("the evaluation form's answers"),
    "require_extension": _l("no longer than the policy allows, once"),
    "require_fail_outcome": _l("dismissal or transfer"), "require_transfer_unit": _l("names another unit"),
    "has_publicity": _l("policy: publicity first"),
    "require_pending_objection": _l("an objection waits for an answer"),
    "require_publicity_open": _l("inside the publicity window"),
    "require_publicity_over": _l("the publicity is over, no objection open"),
    "require_appeal_open": _l("inside the appeal window, once"),
    "rejected_at_qualification": _l("rejected at qualification review"),
    "no_panel": _l("policy: no panel for this level"),
    "require_hand_over": _l("to a holder of the same role at the step's unit or above, without a conflict"),
    "require_copy": _l("names someone the case was not copied to"),
    "vote_short_of_failure": _l("a committee vote: the pass ratio is still reachable"),
    "signature_awaited": _l("an added signer is still to sign"),
    "require_signer": _l("names a signer who may act on this step"),
    "require_passed_step": _l("a step the case passed through"),
    "names_the_step": _l("the step named"),
}


def labels() -> diagrams.Labels:
    """The words of the current request's language."""
    return diagrams.Labels.of(states=STATES, actions=ACTIONS, duties={**DUTIES, **MORE_DUTIES}, guards=GUARDS,
                              titles=KINDS)


def machine_diagram(kind: str, current: str | None = None) -> dict:
    """What a page needs to show a kind's machine: the SVG where Graphviz can draw it, else None, and always
    the table of its states and transitions."""
    words = labels()
    svg = None
    if diagrams.graphviz_available():
        try:
            svg = diagrams.svg(kind, words, current)
        except (OSError, subprocess.SubprocessError) as exc:
            # A broken Graphviz install must not take the page down: the table says the same.
            log.warning("drawing the %s machine failed: %s", kind, exc)
    return {"kind": kind, "current": current, "svg": svg, "table": diagrams.table(kind), "words": words}


@bp.app_template_global()
def case_machine(case) -> dict | None:
    """The machine of a case's kind with its state highlighted (None for a kind without a rulebook)."""
    if case.kind not in RULEBOOKS:
        return None
    return machine_diagram(case.kind, case.state)


@bp.before_request
@login_required
def _logged_in():
    return None


@bp.route("/")
def index():
    return render_template("diagrams/index.html", machines=[machine_diagram(kind) for kind in RULEBOOKS])


@bp.route("/<kind>")
def kind(kind: str):
    if kind not in RULEBOOKS:
        abort(404)
    state = request.args.get("state")
    current = state if state in RULEBOOKS[kind].states else None
    return render_template("diagrams/kind.html", m=machine_diagram(kind, current))
