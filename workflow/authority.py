"""Who may do what: the one place where authority is decided.

`can()` tells the pages which buttons to show; `require()` runs inside `engine.fire()`, so the API, the
pages, the CLI and batch jobs cannot bypass it. Refusals carry a reason a person can read.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, false, or_, select, true

from . import delegation
from .errors import Forbidden
from .i18n import _l, term
from .machines import Rulebook
from .models import Case, CaseAssignee, CaseCopy, Event, OrgUnit, PanelMember, Person, Review, Round

SUBTREE_VIEWERS = ("hr", "approver", "supervisor", "admin")


@dataclass(frozen=True)
class Decision:
    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def can(actor: Person | None, case: Case, action: str, rb: Rulebook,
        round_decision: bool = False) -> Decision:
    """May `actor` (None: the system) take `action` on `case` in its current state? `round_decision`: the
    action is taken by the decision of the case's round (workflow/rounds.py), the only way to take the
    round actions (approve, not_select) on a round's case. A copy (抄送) gives no authority: a recipient whom
    nothing else allows is told the case was copied to them for information only."""
    decision = _can(actor, case, action, rb, round_decision)
    if not decision and actor is not None and delegation.is_copied_to(actor, case):
        return Decision(False, _l("case %(case)s was copied to you for information only: you cannot %(action)s "
                                  "it (%(why)s)", case=case.id, action=term("action", action),
                                  why=decision.reason))
    return decision


def _can(actor: Person | None, case: Case, action: str, rb: Rulebook, round_decision: bool) -> Decision:
    if actor is None:
        return Decision(action in rb.system_also or action in rb.automatic, _l("only people take this action"))
    if round_decision or (action in rb.round_actions and case.round_id is not None):
        return _round_decision(actor, case, action, rb, round_decision)
    if action in rb.round_only:
        return Decision(False, _l("'%(action)s' is taken only by a round's decision", action=term("action", action)))
    if action in rb.automatic:
        return Decision(False, _l("this move is made by the system"))
    duty = rb.actors[action]
    if duty == "system":
        return Decision(False, _l("this move is made by the system"))
    if actor.status == "dismissed":
        return Decision(False, _l("your employment has ended"))
    if duty == "applicant":
        if actor.id == case.employee_id:
            return Decision(True)
        return Decision(False, _l("only the applicant (%(username)s) may %(action)s this case",
                                  username=case.employee.username, action=term("action", action)))
    if duty == "initiator":
        if case.filed_by_id is not None and actor.id == case.filed_by_id:
            return Decision(True)
        opener = case.filed_by.username if case.filed_by else _l("the system")
        return Decision(False, _l("only who opened the case (%(opener)s) may %(action)s it", opener=opener,
                                  action=term("action", action)))
    if duty == "in_scope":
        if actor.id == case.employee_id:
            return Decision(False, _l("the applicant cannot object to their own promotion"))
        if not in_publicity_scope(actor, case):
            return Decision(False, _l("only people in the publicity's scope may object"))
        if any(ev.action == "object" and ev.actor_id == actor.id for ev in case.events):
            return Decision(False, _l("you have already objected"))
        if any(decided_by(ev) == actor.id for ev in case.events):
            return Decision(False, _l("you took a decision on this case; answer objections, do not file them"))
        return Decision(True)
    if duty == "any_assignee":
        if any(a.person_id == actor.id for a in case.assignments):
            return Decision(True)
        return Decision(False, _l("only a current assignee may declare a conflict on this step"))
    if duty == "hand_over":
        why = delegation.hand_over_refusal(actor, case)
        return Decision(why is None, why or "")
    if duty == "copy":
        why = delegation.copy_refusal(actor, case)
        return Decision(why is None, why or "")
    if duty == "contributor":
        return can_attach(actor, case)
    if duty == "hr_over_case":
        return _hr_over_case(actor, case, action)
    mine = [a for a in case.assignments if a.person_id == actor.id and a.duty == duty]
    if mine:
        if any(holds_assignment(actor, a) for a in mine):
            return Decision(True)
        return Decision(False, _l("you no longer hold %(role)s%(at)s; the step is being rerouted",
                                  role=term("role", mine[0].role),
                                  at="@" + mine[0].unit.code if mine[0].unit else ""))
    if duty in delegation.DELEGABLE_DUTIES:   # a delegate acts for an assignee (代理), on the dates
        held, why = delegation.acting_for(actor, case, duty, rb.steps.get(case.state, case.state))
        if held is not None or why:
            return Decision(held is not None, why or "")
    if duty == "panel" and any(s.scorer_id == actor.id and s.component == "panel" for s in case.scores):
        return Decision(False, _l("you have already scored this case"))
    names = ", ".join(p.username for p in case.assignee_people(duty)) or _l("nobody")
    return Decision(False, _l("only the current assignees of this step may %(action)s (now: %(names)s)",
                              action=term("action", action), names=names))


def _round_decision(actor: Person, case: Case, action: str, rb: Rulebook, round_decision: bool) -> Decision:
    """HR holding `hr` at the round's unit or above decides the round's cases together, and only so."""
    if action not in rb.round_actions or case.round_id is None:
        return Decision(False, _l("'%(action)s' is not part of a round's decision", action=term("action", action)))
    if not round_decision:
        return Decision(False, _l("this case is decided with round %(round)s, against its quotas "
                                  "(POST /api/v1/rounds/%(round)s/decide)", round=case.round_id))
    if actor.status == "dismissed":
        return Decision(False, _l("your employment has ended"))
    if hr_assignment_over(actor, case.round.unit) is None:
        return Decision(False, _l("only HR at %(unit)s or above decides round %(round)s", unit=case.round.unit.code,
                                  round=case.round_id))
    if actor.id == case.employee_id:
        return Decision(False, _l("nobody decides their own case (case %(case)s)", case=case.id))
    if any(c.person_id == actor.id for c in case.conflicts):
        return Decision(False, _l("you declared a conflict on case %(case)s", case=case.id))
    if any(decided_by(ev) == actor.id and ev.data.get("step") != "hr_approval" for ev in case.events):
        return Decision(False, _l("you took another decision on case %(case)s (four eyes)", case=case.id))
    return Decision(True)


def decided_by(ev: Event) -> int | None:
    """Who took the decision an event records (None: it records none): its actor, or the panel member whose
    paper form HR entered (`score_for`): the four-eyes rule binds the member, not the clerk."""
    if not ev.data.get("decision"):
        return None
    return ev.data.get("decided_by", ev.actor_id)


def can_attach(actor: Person, case: Case) -> Decision:
    """附件: the applicant while the case is open, its current assignees, and HR over the applicant's unit."""
    if case.closed:
        return Decision(False, _l("case %(case)s is closed: nothing more can be attached", case=case.id))
    if actor.status == "dismissed":
        return Decision(False, _l("your employment has ended"))
    if actor.id == case.employee_id or any(a.person_id == actor.id for a in case.assignments):
        return Decision(True)
    if hr_assignment_over(actor, case.employee.unit) is not None:
        return Decision(True)
    return Decision(False, _l("only the applicant, the current assignees and HR over the case may attach files"))


def _hr_over_case(actor: Person, case: Case, action: str) -> Decision:
    """HR over the applicant's unit, who is neither the applicant nor in a declared conflict on the case."""
    if actor.id == case.employee_id:
        return Decision(False, _l("nobody acts on their own case"))
    if hr_assignment_over(actor, case.employee.unit) is None:
        return Decision(False, _l("only HR over %(unit)s may %(action)s on this case", unit=case.employee.unit.code,
                                  action=term("action", action)))
    if any(c.person_id == actor.id for c in case.conflicts):
        return Decision(False, _l("you declared a conflict on this case"))
    return Decision(True)


def require(actor: Person | None, case: Case, action: str, rb: Rulebook,
            round_decision: bool = False) -> None:
    decision = can(actor, case, action, rb, round_decision)
    if not decision:
        raise Forbidden(decision.reason, action=action)


def holds_assignment(person: Person, a: CaseAssignee) -> bool:
    """Does the person still hold the role the assignment was made for? (Roles change; assignees are
    stored when a step starts.)"""
    if a.duty == "applicant":
        return True
    if person.status == "dismissed":
        return False
    if a.duty == "panel":
        return any(ra.role == "panel" and ra.unit.contains(a.case.step_unit) for ra in person.roles)
    return any(ra.role == a.role and ra.unit_id == a.unit_id for ra in person.roles)


def capacity(actor: Person | None, case: Case, action: str, rb: Rulebook,
             round_decision: bool = False) -> tuple[str | None, str | None]:
    """The role and unit (code) in which the actor takes the action, for the audit event."""
    if actor is None:
        return None, None
    if round_decision:
        ra = hr_assignment_over(actor, case.round.unit)
        return ("hr", ra.unit.code) if ra else (None, None)
    duty = rb.actors.get(action)
    if duty == "applicant" or (duty == "any_assignee" and actor.id == case.employee_id):
        return "employee", case.employee.unit.code
    if duty == "in_scope":
        return "employee", actor.unit.code
    if duty == "contributor":
        if actor.id == case.employee_id:
            return "employee", case.employee.unit.code
        mine = next((a for a in case.assignments if a.person_id == actor.id), None)
        if mine is not None:
            return mine.role, mine.unit.code if mine.unit else None
    if duty in ("contributor", "hr_over_case"):
        ra = hr_assignment_over(actor, case.employee.unit)
        return ("hr", ra.unit.code) if ra else (None, None)
    if duty == "initiator":
        ra = hr_assignment_over(actor, case.employee.unit) or supervisor_assignment_over(actor, case.employee.unit)
        return (ra.role, ra.unit.code) if ra else (None, None)
    if duty == "copy" and not any(a.person_id == actor.id for a in case.assignments):
        ra = hr_assignment_over(actor, case.employee.unit)
        return ("hr", ra.unit.code) if ra else (None, None)
    for a in case.assignments:
        if a.person_id == actor.id and (duty in ("any_assignee", "hand_over", "copy", a.duty)):
            return a.role, a.unit.code if a.unit else None
    principal = acting_for(actor, case, action, rb)
    if principal is not None:   # on behalf of: the principal's capacity; the event names both
        a = next(a for a in case.assignments if a.person_id == principal.id and a.duty == duty)
        return a.role, a.unit.code if a.unit else None
    return None, None


def acting_for(actor: Person | None, case: Case, action: str, rb: Rulebook,
               round_decision: bool = False) -> Person | None:
    """The assignee on whose behalf `actor` takes `action` (a delegation in force), or None when they act
    in their own right."""
    duty = rb.actors.get(action)
    if actor is None or round_decision or duty not in delegation.DELEGABLE_DUTIES:
        return None
    if any(a.person_id == actor.id and a.duty == duty for a in case.assignments):
        return None
    held, _why = delegation.acting_for(actor, case, duty, rb.steps.get(case.state, case.state))
    return held.person if held is not None else None


# --- filing and visibility ---------------------------------------------------------------------------

def hr_assignment_over(person: Person, unit: OrgUnit):
    """The person's `hr` role at the unit or an ancestor, if any."""
    chain = {u.id for u in unit.ancestors()}
    return next((ra for ra in person.roles if ra.role == "hr" and ra.unit_id in chain), None)


def supervisor_assignment_over(person: Person, unit: OrgUnit):
    """The person's `supervisor` role at the unit or an ancestor, if any."""
    chain = {u.id for u in unit.ancestors()}
    return next((ra for ra in person.roles if ra.role == "supervisor" and ra.unit_id in chain), None)


def can_file_for(filer: Person, employee: Person) -> Decision:
    if filer.id == employee.id:
        return Decision(True)
    if hr_assignment_over(filer, employee.unit):
        return Decision(True)
    return Decision(False, _l("only HR over %(unit)s may file a case for %(username)s", unit=employee.unit.code,
                              username=employee.username))


def _subtree_units(person: Person, roles=SUBTREE_VIEWERS) -> list[OrgUnit]:
    return [ra.unit for ra in person.roles if ra.role in roles]


def visible_filter(person: Person):
    """A WHERE clause for the cases `person` may see: their own, those they filed, are assigned to, sit on
    the panel of or acted on, and those of employees in the subtree of a unit where they hold HR,
    approver, supervisor or admin."""
    units = _subtree_units(person)
    if any(u.parent_id is None for u in units):
        return true()     # the root's subtree is everyone: no clause for the database to evaluate per case
    conds = [
        Case.employee_id == person.id, Case.filed_by_id == person.id,
        Case.id.in_(select(CaseAssignee.case_id).where(CaseAssignee.person_id == person.id)),
        Case.id.in_(select(PanelMember.case_id).where(PanelMember.person_id == person.id)),
        Case.id.in_(select(Event.case_id).where(Event.actor_id == person.id)),
        Case.id.in_(select(CaseCopy.case_id).where(CaseCopy.person_id == person.id)),
        Case.id.in_(delegation.delegated_case_ids(person)),
    ]
    if person.status != "dismissed":   # 公示 is for the people working in the approving unit
        conds.append(and_(Case.state == "publicity",
                          Case.step_unit_id.in_([u.id for u in person.unit.ancestors()])))
    if units:
        in_subtree = or_(*[OrgUnit.path.startswith(u.path) for u in units])
        conds.append(Case.employee_id.in_(
            select(Person.id).join(OrgUnit, Person.unit_id == OrgUnit.id).where(in_subtree)))
    return or_(*conds) if conds else false()


def in_publicity_scope(person: Person, case: Case) -> bool:
    """公示: a promotion in publicity is listed for everyone in the unit that approved it."""
    return (case.state == "publicity" and case.step_unit is not None and person.status != "dismissed"
            and case.step_unit.contains(person.unit))


def can_see(person: Person, case: Case) -> bool:
    if person.id in (case.employee_id, case.filed_by_id) or in_publicity_scope(person, case):
        return True
    if any(a.person_id == person.id for a in case.assignments) or any(m.person_id == person.id for m in case.panel):
        return True
    if any(u.contains(case.employee.unit) for u in _subtree_units(person)):
        return True
    if delegation.is_copied_to(person, case) or delegation.acting_on_case(person, case):
        return True
    return any(ev.actor_id == person.id for ev in case.events)


def score_values_visible(viewer: Person, case: Case) -> bool:
    """Blind scoring: the applicant never sees individual panel scores; a scorer sees the others' values
    only after giving their own."""
    if viewer.id == case.employee_id:
        return False
    return not any(a.person_id == viewer.id and a.duty in ("panel", "supervisor") for a in case.assignments)


def composite_visible(viewer: Person, case: Case) -> bool:
    """The applicant sees the composite once HR has decided."""
    return viewer.id != case.employee_id or case.decided_at is not None


def can_view_unit(person: Person, unit: OrgUnit, roles=("hr", "approver", "admin")) -> bool:
    """HR and approvers (and admins) of the unit or above see its pipeline."""
    return any(ra.role in roles and ra.unit.contains(unit) for ra in person.roles)


# --- promotion rounds --------------------------------------------------------------------------------

def can_manage_round(person: Person, unit: OrgUnit) -> Decision:
    """Open, close and decide a round at `unit`: HR holding `hr` there or at an ancestor."""
    if person.status == "dismissed":
        return Decision(False, _l("your employment has ended"))
    if hr_assignment_over(person, unit) is None:
        return Decision(False, _l("only HR at %(unit)s or above may open, close or decide its rounds", unit=unit.code))
    return Decision(True)


def can_see_round(person: Person, rnd: Round) -> bool:
    """HR, approvers and admins of the round's unit or above."""
    return can_view_unit(person, rnd.unit)


def round_visible_filter(person: Person):
    """A WHERE clause for the rounds `person` may see."""
    units = _subtree_units(person, ("hr", "approver", "admin"))
    if not units:
        return false()
    return Round.unit_id.in_(select(OrgUnit.id).where(or_(*[OrgUnit.path.startswith(u.path) for u in units])))


# --- the annual review -------------------------------------------------------------------------------

def can_run_review(person: Person, unit: OrgUnit) -> Decision:
    """Run the annual review (年度考核排名) of `unit`'s subtree: HR holding `hr` there or at an ancestor."""
    if person.status == "dismissed":
        return Decision(False, _l("your employment has ended"))
    if hr_assignment_over(person, unit) is None:
        return Decision(False, _l("only HR at %(unit)s or above may run its annual review", unit=unit.code))
    return Decision(True)


def review_visible_filter(person: Person):
    """A WHERE clause for the stored reviews `person` may see: HR, approvers and admins of the unit or
    above."""
    units = _subtree_units(person, ("hr", "approver", "admin"))
    if not units:
        return false()
    return Review.unit_id.in_(select(OrgUnit.id).where(
        or_(*[OrgUnit.path.startswith(u.path) for u in units])))


def can_verify_audit(person: Person) -> bool:
    return any(ra.role in ("admin", "hr") and ra.unit.parent_id is None for ra in person.roles)


def is_admin(person: Person, unit: OrgUnit | None = None) -> bool:
    return any(ra.role == "admin" and (unit is None or ra.unit.contains(unit)) for ra in person.roles)


def can_urge(person: Person, case: Case) -> Decision:
    """催办: may `person` urge the current assignees of `case`? Those waiting on it may: the applicant,
    whoever filed the case, and HR over the applicant's unit; never about a closed case or a step that
    waits on nobody but themselves."""
    if case.closed:
        return Decision(False, _l("case %(case)s is closed: there is nobody to urge", case=case.id))
    waiting = (person.id in (case.employee_id, case.filed_by_id)
               or hr_assignment_over(person, case.employee.unit) is not None)
    if not waiting:
        return Decision(False, _l("only the applicant, whoever filed the case or HR over the applicant's unit "
                                  "may urge its assignees"))
    if not any(a.person_id != person.id for a in case.assignments):
        return Decision(False, _l("case %(case)s waits on nobody but you", case=case.id))
    return Decision(True)


# --- customers, portfolios, tiering, visits and leads ------------------------------------------------
# HR (and admins) of a unit or above keep its customers: import, edit, assign and release them, start a
# tiering run. Approvers and supervisors of the unit or above see them too. A manager sees and serves the
# customers they hold.

CUSTOMER_KEEPERS = ("hr", "admin")
CUSTOMER_VIEWERS = ("hr", "admin", "approver", "supervisor")


def _active(person: Person) -> Decision | None:
    if person.status == "dismissed":
        return Decision(False, _l("your employment has ended"))
    return None


def can_manage_customers(person: Person, unit: OrgUnit) -> Decision:
    """Import, edit, assign and release the customers of `unit`'s subtree; start its tiering runs."""
    refused = _active(person)
    if refused:
        return refused
    if not any(ra.role in CUSTOMER_KEEPERS and ra.unit.contains(unit) for ra in person.roles):
        return Decision(False, _l("only HR at %(unit)s or above may manage its customers", unit=unit.code))
    return Decision(True)


def can_view_customers(person: Person, unit: OrgUnit) -> bool:
    """See the customers, portfolios and visits of `unit`'s subtree."""
    return any(ra.role in CUSTOMER_VIEWERS and ra.unit.contains(unit) for ra in person.roles)


def customer_visible_filter(person: Person):
    """A WHERE clause on Customer for the customers `person` may see: those of the units where they hold a
    viewing role, and those they hold themselves."""
    from .models.customers import Customer
    units = _subtree_units(person, CUSTOMER_VIEWERS)
    own = Customer.manager_id == person.id
    if not units:
        return own
    if any(u.parent_id is None for u in units):
        return true()
    return or_(own, Customer.unit_id.in_(select(OrgUnit.id).where(
        or_(*[OrgUnit.path.startswith(u.path) for u in units]))))


def can_see_customer(person: Person, customer) -> bool:
    return customer.manager_id == person.id or can_view_customers(person, customer.unit)


def can_serve_customer(person: Person, customer) -> Decision:
    """Record a visit to a customer: its holding manager, or a supervisor, HR or admin of its unit or above."""
    refused = _active(person)
    if refused:
        return refused
    if customer.manager_id == person.id or any(
            ra.role in ("supervisor", "hr", "admin") and ra.unit.contains(customer.unit) for ra in person.roles):
        return Decision(True)
    return Decision(False, _l("only the manager holding customer %(code)s, or a supervisor or HR over its unit, "
                              "may record its visits", code=customer.code))


def can_decide_tier(person: Person, proposal, approval) -> Decision:
    """Approve or reject a proposed change of tier: a holder of the policy's approval role at the
    proposal's step unit or above (customers.approval)."""
    refused = _active(person)
    if refused:
        return refused
    if proposal.step_unit is None or approval is None:
        return Decision(False, _l("this change of tier needs no approval"))
    if not any(ra.role == approval.role and ra.unit.contains(proposal.step_unit) for ra in person.roles):
        return Decision(False, _l("only a holder of %(role)s at %(unit)s or above may approve this change of tier",
                                  role=term("role", approval.role), unit=proposal.step_unit.code))
    return Decision(True)


def can_reassign_lead(person: Person, lead, role: str) -> Decision:
    """Reassign a sales lead: the sales manager (the policy's customers.leads.reassign_role) or HR over the
    lead's unit."""
    refused = _active(person)
    if refused:
        return refused
    if any(ra.role in (role, "hr") and ra.unit.contains(lead.unit) for ra in person.roles):
        return Decision(True)
    return Decision(False, _l("only a holder of %(role)s or HR at %(unit)s or above may reassign its leads",
                              role=term("role", role), unit=lead.unit.code))


def can_follow_lead(person: Person, lead, role: str) -> Decision:
    """Close (won, lost) or reclassify a lead: its owner, or whoever may reassign it."""
    if lead.owner_id == person.id and person.status != "dismissed":
        return Decision(True)
    return can_reassign_lead(person, lead, role)


def can_open_lead(person: Person, unit: OrgUnit, role: str) -> Decision:
    """Open a sales lead at `unit`: a person of that very unit (for themselves), or the sales manager (the
    policy's customers.leads.reassign_role) or HR over it (for anyone active in its subtree)."""
    refused = _active(person)
    if refused:
        return refused
    if person.unit_id == unit.id or any(
            ra.role in (role, "hr") and ra.unit.contains(unit) for ra in person.roles):
        return Decision(True)
    return Decision(False, _l("only a person of %(unit)s, or a holder of %(role)s or HR at %(unit)s or above, "
                              "may open its leads", unit=unit.code, role=term("role", role)))


def lead_visible_filter(person: Person):
    """A WHERE clause on Lead for the leads `person` may see: their own, and those of the units where they
    hold a viewing role (the sales manager's role is one of them)."""
    from .models.customers import Lead
    units = _subtree_units(person, CUSTOMER_VIEWERS)
    own = Lead.owner_id == person.id
    if not units:
        return own
    if any(u.parent_id is None for u in units):
        return true()
    return or_(own, Lead.unit_id.in_(select(OrgUnit.id).where(
        or_(*[OrgUnit.path.startswith(u.path) for u in units]))))


def can_see_lead(person: Person, lead) -> bool:
    return lead.owner_id == person.id or can_view_customers(person, lead.unit)
