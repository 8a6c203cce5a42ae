"""The JSON shapes of CONTRACT.md, built for one viewer (blind scores stay hidden)."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from workflow import attachments, authority, clock, delegation, engine, signing
from workflow.models import Case, Person

ROUTING_SENTENCES = {
    "vacancy": lambda unit, named: _("Nobody at %(named)s holds the role, so the step went up to %(unit)s.",
                                     named=named, unit=unit),
    "self": lambda unit, named: _("The only holder at %(named)s is the applicant, so the step went up to "
                                  "%(unit)s.", named=named, unit=unit),
    "conflict": lambda unit, named: _("The holders at %(named)s have a conflict on this case, so the step "
                                      "went up to %(unit)s.", named=named, unit=unit),
    "exceptional": lambda unit, named: _("An exceptional promotion is decided one level higher, at %(unit)s.",
                                         unit=unit, named=named),
    "escalated": lambda unit, named: _("The step was escalated to %(unit)s.", unit=unit, named=named),
}


def routing_sentence(case: Case) -> str | None:
    if not case.routing_reason or case.step_unit is None:
        return None
    named = case.routing_from_unit.code if case.routing_from_unit else case.step_unit.code
    return ROUTING_SENTENCES[case.routing_reason](case.step_unit.code, named)


def me_json(person: Person) -> dict[str, Any]:
    return {"username": person.username, "name": person.name, "unit": person.unit.code,
            "grade": person.grade, "roles": person.role_strings(), "status": person.status}


def objector_visible(viewer: Person, case: Case, ev) -> bool:
    """公示: who objected is shown to the objector and to HR over the case (who weigh and answer the
    objection, and may need to ask the objector for facts); not to the applicant, nor to the colleagues
    in scope. A colleague could pass the name on, and an objector who fears retaliation would keep
    silent: the publicity exists so that people speak. Everyone who sees the case reads the statements."""
    if ev.action != "object" or ev.actor_id == viewer.id:
        return True
    if viewer.id == case.employee_id:
        return False
    return any(authority.hr_assignment_over(viewer, unit) is not None
               for unit in (case.step_unit, case.employee.unit) if unit is not None)


def event_json(ev, hide_score: bool, hide_actor: bool = False) -> dict[str, Any]:
    data = dict(ev.data or {})
    if hide_score and ev.action in ("score", "supervisor_score", "score_for"):
        data.pop("score", None)
    return {"seq": ev.seq, "action": ev.action, "from_state": ev.from_state, "to_state": ev.to_state,
            "actor": None if hide_actor else ev.actor, "role": ev.role,
            "unit": None if hide_actor else ev.unit,
            "at": ev.at.isoformat() + "Z", "comment": ev.comment, "data": data}


def scores_json(case: Case, viewer: Person) -> dict[str, Any]:
    show = authority.score_values_visible(viewer, case)
    own_or_shown = lambda s: show or s.scorer_id == viewer.id  # noqa: E731
    panel = [{"scorer": s.scorer.username, "value": s.value if own_or_shown(s) else None,
              "at": s.at.isoformat() + "Z"} for s in case.scores if s.component == "panel"]
    sup = next((s for s in case.scores if s.component == "supervisor"), None)
    supervisor = None if sup is None else {"scorer": sup.scorer.username,
                                           "value": sup.value if own_or_shown(sup) else None}
    return {"panel": panel, "panel_members": [m.person.username for m in case.panel],
            "supervisor": supervisor,
            "annual_performance": case.annual_performance}


def attachment_json(att) -> dict[str, Any]:
    return {"id": att.id, "filename": att.filename, "content_type": att.content_type, "size": att.size,
            "sha256": att.sha256, "uploaded_by": att.uploaded_by.username,
            "created_at": att.created_at.isoformat() + "Z",
            "url": f"/api/v1/cases/{att.case_id}/attachments/{att.id}"}


def case_json(case: Case, viewer: Person) -> dict[str, Any]:
    hide = not authority.score_values_visible(viewer, case)
    return {
        "id": case.id, "version": case.version,
        "policy_version": {"label": case.policy_version.label, "hash": case.policy_version.hash},
        "kind": case.kind, "employee": case.employee.username, "employee_name": case.employee.name,
        "filed_by": case.filed_by.username if case.filed_by else "system",
        "reason": case.reason, "severity": case.severity,
        "due_on": case.due_on.isoformat() if case.due_on else None, "outcome": case.outcome,
        "related_case": case.related_case_id,
        "from_grade": case.from_grade, "target_grade": case.target_grade, "state": case.state,
        "exceptional": case.exceptional, "statement": case.statement, "round": case.round_id,
        "step_unit": case.step_unit.code if case.step_unit else None,
        "assignees": sorted({a.person.username for a in case.assignments}),
        "routing_reason": case.routing_reason, "routing_note": routing_sentence(case),
        "eligibility": case.eligibility or [], "eligible": case.eligible,
        "scores": scores_json(case, viewer),
        "composite": case.composite if authority.composite_visible(viewer, case) else None,
        "deadline": case.deadline.isoformat() if case.deadline else None,
        "overdue": engine.is_overdue(case, clock.today()),
        "effective_on": case.effective_on.isoformat() if case.effective_on else None,
        "actions": engine.available_actions(case, viewer),
        "signing": signing.summary(case),
        "send_back_to": signing.send_back_targets(case),
        "events": [event_json(ev, hide, not objector_visible(viewer, case, ev)) for ev in case.events],
        "created_at": case.created_at.isoformat() + "Z",
        "attachments": [attachment_json(a) for a in attachments.of_case(case)],
        "copied_to": [c.person.username for c in case.copies],
        "acting_for": [{"principal": a["principal"].username, "delegate": a["delegate"].username,
                        "until": a["until"].isoformat()} for a in delegation.acting_on(case)] if not case.closed else [],
    }
