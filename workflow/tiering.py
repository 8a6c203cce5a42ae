"""客户分级 — the periodic re-tiering of a unit's customers (the policy's 客户分类 → 客户评估打分 → 分级确定 →
客户沟通).

HR over a unit starts a run for a period: every active customer of the unit's subtree is classified under
the active policy's customers section (score terms, tiers, floors) into a proposal — `unchanged` (same
tier), `auto` (a change no approval covers) or `pending` (a change customers.approval covers: into or out
of its tier or a better one), the pending ones waiting on a holder of the approval role at the customer
unit's ancestor at the approval's org level (`step_unit`). The approvers approve or reject them; HR then
determines the run: the auto and approved changes take effect through workflow.customers.set_tier (the
customer's history and event), each holding manager is told, and the run is `effective`. Or HR cancels it.

The run heads an audit chain ("tiering:ID"): `create`, each proposal's `approve_tier` / `reject_tier` (the
run stays in review), `determine` or `cancel`; `version` is the chain's length and the optimistic lock of
the row (version_id_col), so a decision and the determination cannot both win. Nothing here commits: the
caller commits once (web/tiering.py, web/api_tiering.py, bench/tiering.py).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from types import SimpleNamespace
from typing import Any, Iterable

from sqlalchemy import exists, false, func, insert, or_, select, true, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError
from transitions import Machine

from . import audit, authority, clock, engine, notify, policy as policy_mod, rules
from . import customers as customers_mod
from .customer_policy import CustomerPolicy
from .errors import Conflict, Forbidden, Invalid, Refused
from .i18n import _l
from .machines import tiering as spec
from .models import db, OrgUnit, Person, RoleAssignment
from .models.customers import PROPOSAL_STATES, Customer, TieringRun, TierProposal
from .policy import Policy

PERIOD_MAX, COMMENT_MAX = 20, 2000
DECISIONS = {"approve": "approve_tier", "reject": "reject_tier"}
DECIDED = {"approve": "approved", "reject": "rejected"}

# The run's machine, built once from its data (model=None: no ORM object is ever added to it).
MACHINE = Machine(model=None, states=spec.STATES, transitions=spec.TRANSITIONS, initial=spec.CREATED,
                  auto_transitions=False, send_event=True, queued=False, ignore_invalid_triggers=False)


class StaleRun(Conflict):
    """The run row changed under us (another transaction committed first)."""


def can_fire(run: TieringRun, action: str) -> bool:
    event = MACHINE.events.get(action)
    return event is not None and bool(event.transitions.get(run.state))


def _destination(run: TieringRun, action: str) -> str:
    """The state `action` leads the run to (its own for a proposal's decision); Conflict when it cannot."""
    if not can_fire(run, action):
        raise Conflict(_l("tiering run %(run)s is %(state)s: it cannot %(action)s", run=run.id,
                          state=run.state, action=action), state=run.state)
    return MACHINE.events[action].transitions[run.state][0].dest or run.state


def policy_of(run: TieringRun) -> Policy:
    """The policy version the run was started under: its tiers, score terms, floors and approval."""
    return policy_mod.from_stored(run.policy_version.content)


def customer_policy_of(run: TieringRun) -> CustomerPolicy:
    return policy_of(run).customers


def _flush() -> None:
    try:
        db.session.flush()
    except StaleDataError:
        raise StaleRun(_l("another change to this tiering run came first; reload it")) from None


def _check_version(run: TieringRun, expected: Any) -> None:
    if expected is None:
        return
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise Invalid(_l("version must be an integer"), field="version")
    if expected != run.version:
        raise Conflict(_l("the tiering run has changed since version %(seen)s (now %(now)s); reload it",
                          seen=expected, now=run.version), version=run.version)


def _comment(comment: Any, required: bool) -> str:
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise Invalid(_l("comment must be a text"), field="comment")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise Invalid(_l("comment must have at most %(max)s characters", max=COMMENT_MAX), field="comment")
    if required and not comment:
        raise Refused(_l("a comment is required: say why"), field="comment")
    return comment


def _hr_capacity(actor: Person, unit: OrgUnit) -> tuple[str | None, str | None]:
    ra = next((ra for ra in actor.roles if ra.role in authority.CUSTOMER_KEEPERS and ra.unit.contains(unit)),
              None)
    return (ra.role, ra.unit.code) if ra else (None, None)


# --- who sees a run ------------------------------------------------------------------------------
# HR, approvers and admins of a run's unit or above see it; so does a holder of the policy's approval role
# at or above one of its proposals' step units (they decide those). Who acts is decided in workflow/authority
# (can_manage_customers, can_decide_tier).

VIEWERS = ("hr", "approver", "admin")


def _under(units: list[OrgUnit]):
    return select(OrgUnit.id).where(or_(*[OrgUnit.path.startswith(u.path) for u in units]))


def visible_filter(person: Person, approval_role: str | None = None):
    """A WHERE clause on TieringRun for the runs `person` may see."""
    units = [ra.unit for ra in person.roles if ra.role in VIEWERS]
    if any(u.parent_id is None for u in units):
        return true()
    conds = [TieringRun.unit_id.in_(_under(units))] if units else []
    deciding = [ra.unit for ra in person.roles if approval_role and ra.role == approval_role]
    if deciding:
        conds.append(TieringRun.id.in_(select(TierProposal.run_id).where(
            TierProposal.step_unit_id.in_(_under(deciding)))))
    return or_(*conds) if conds else false()


def can_see(person: Person, run: TieringRun, approval_role: str | None = None) -> bool:
    if authority.can_view_unit(person, run.unit, VIEWERS):
        return True
    deciding = [ra.unit for ra in person.roles if approval_role and ra.role == approval_role]
    return bool(deciding) and bool(db.session.scalar(select(exists().where(
        TierProposal.run_id == run.id, TierProposal.step_unit_id.in_(_under(deciding))))))


def subtree_ids(unit: OrgUnit):
    return select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path))


def overlapping(unit: OrgUnit) -> TieringRun | None:
    """A run in review covering the unit, one of its ancestors or one of its descendants."""
    ancestors = [u.id for u in unit.ancestors()]
    return db.session.scalar(select(TieringRun).where(
        TieringRun.state == "review",
        or_(TieringRun.unit_id.in_(ancestors), TieringRun.unit_id.in_(subtree_ids(unit))))
        .order_by(TieringRun.id).limit(1))


def matrix_key(tier: str | None) -> str:
    """A tier as a key of the from→to matrix ("" for a customer not yet tiered)."""
    return tier or ""


# --- starting a run ----------------------------------------------------------------------------------

def start(actor: Person, unit: OrgUnit, period: Any, today: dt.date | None = None) -> TieringRun:
    """Start a run at `unit` for `period`: a proposal per active customer of the unit's subtree, the
    approvers of the pending ones told once per step unit. Refused while another run in review covers the
    unit, an ancestor or a descendant."""
    today = today or clock.today()
    allowed = authority.can_manage_customers(actor, unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    if not isinstance(period, str) or not period.strip():
        raise Invalid(_l("period must be a text such as '2026-H1'"), field="period")
    period = period.strip()
    if len(period) > PERIOD_MAX:
        raise Invalid(_l("period must have at most %(max)s characters", max=PERIOD_MAX), field="period")
    pv, cpol = customers_mod.active()
    pol = engine.active_policy()[1]
    # Overlapping starts are serialised on the unit's ancestors (on PostgreSQL; SQLite writes one at a time).
    chain = [u.id for u in unit.ancestors()]
    db.session.execute(select(OrgUnit.id).where(OrgUnit.id.in_(chain)).order_by(OrgUnit.id).with_for_update())
    other = overlapping(unit)
    if other is not None:
        raise Refused(_l("tiering run %(run)s (%(period)s) at %(unit)s is still in review and covers "
                         "%(here)s: determine or cancel it first", run=other.id, period=other.period,
                         unit=other.unit.code, here=unit.code), field="unit", run=other.id)

    run = TieringRun(unit=unit, period=period, state="review", policy_version=pv, created_by=actor,
                     created_at=clock.now(), counts={}, version=1)
    db.session.add(run)
    db.session.flush()

    units = {u.id: u for u in db.session.scalars(select(OrgUnit).where(OrgUnit.path.startswith(unit.path)))}
    step_of: dict[int, OrgUnit | None] = {}

    def step_unit(unit_id: int) -> OrgUnit | None:
        if unit_id not in step_of:
            step_of[unit_id] = (rules.scope_unit(units[unit_id], cpol.approval.org_level, pol)
                                if cpol.approval is not None else None)
        return step_of[unit_id]

    rows, states, matrix = [], Counter(), defaultdict(Counter)
    pending_at: Counter = Counter()
    steps: dict[int, OrgUnit] = {}
    customers = db.session.execute(
        select(Customer.id, Customer.industry, Customer.inputs, Customer.tier, Customer.unit_id)
        .where(Customer.active.is_(True), Customer.unit_id.in_(list(units))).order_by(Customer.id))
    for c in customers:
        tier, score, breakdown = cpol.classify(c.industry, c.inputs or {})
        current = c.tier
        if current == tier:
            state, step = "unchanged", None
        elif cpol.needs_approval(current, tier):
            state, step = "pending", step_unit(c.unit_id)
            pending_at[step.id] += 1
            steps[step.id] = step
        else:
            state, step = "auto", None
        states[state] += 1
        matrix[matrix_key(current)][tier] += 1
        rows.append({"run_id": run.id, "customer_id": c.id, "current_tier": current, "proposed_tier": tier,
                     "score": score, "breakdown": breakdown, "state": state,
                     "step_unit_id": step.id if step is not None else None, "comment": ""})
    # With RETURNING, SQLAlchemy batches the rows into multi-row INSERTs ("insertmanyvalues"), compiled once;
    # without it psycopg's executemany sends a statement per row.
    if rows:
        db.session.execute(insert(TierProposal.__table__).returning(TierProposal.__table__.c.id), rows).all()
    run.counts = {"customers": len(rows),
                  "states": {s: states.get(s, 0) for s in PROPOSAL_STATES},
                  "matrix": {k: dict(v) for k, v in matrix.items()}}
    role, code = _hr_capacity(actor, unit)
    audit.append(run, action="create", actor=actor, role=role, unit=code, from_state=None, to_state="review",
                 data={"period": period, "unit": unit.code, "counts": run.counts})
    if cpol.approval is not None:
        for step_id, count in sorted(pending_at.items()):
            for person in approvers_at(steps[step_id], cpol.approval.role):
                notify.notify(person, "tier_approval", params={
                    "run": run.id, "period": period, "count": count, "unit": steps[step_id].code,
                    "target": {"endpoint": "tiering.pending", "values": {}}})
    _flush()
    return run


def approvers_at(unit: OrgUnit, role: str) -> list[Person]:
    """The active holders of `role` at the unit; if none, at the nearest unit above that has one."""
    chain = unit.ancestors()
    found = db.session.execute(
        select(RoleAssignment.unit_id, Person).join(Person, RoleAssignment.person_id == Person.id)
        .where(RoleAssignment.role == role, RoleAssignment.unit_id.in_([u.id for u in chain]),
               Person.status != "dismissed").order_by(Person.username)).all()
    by_unit: dict[int, list[Person]] = defaultdict(list)
    for unit_id, person in found:
        by_unit[unit_id].append(person)
    return next((by_unit[u.id] for u in chain if by_unit.get(u.id)), [])


# --- deciding the proposals -------------------------------------------------------------------------

def _bump(run: TieringRun, before: str, after: str) -> None:
    states = dict((run.counts or {}).get("states", {}))
    states[before] = states.get(before, 0) - 1
    states[after] = states.get(after, 0) + 1
    run.counts = {**(run.counts or {}), "states": states}


def _approval_capacity(actor: Person, unit: OrgUnit, role: str) -> str | None:
    ra = next((ra for ra in actor.roles if ra.role == role and ra.unit.contains(unit)), None)
    return ra.unit.code if ra else None


def _apply_decision(actor: Person, run: TieringRun, proposal: TierProposal, decision: str, comment: str,
                    cpol: CustomerPolicy, code: str) -> None:
    action = DECISIONS[decision]
    to_state = _destination(run, action)
    before = proposal.state
    proposal.state = DECIDED[decision]
    proposal.decided_by, proposal.decided_by_id = actor, actor.id
    proposal.decided_at = clock.now()
    proposal.comment = comment
    _bump(run, before, proposal.state)
    audit.append(run, action=action, actor=actor, role=cpol.approval.role,
                 unit=_approval_capacity(actor, proposal.step_unit, cpol.approval.role), from_state=run.state,
                 to_state=to_state, comment=comment,
                 data={"proposal": proposal.id, "customer": code, "from": proposal.current_tier,
                       "to": proposal.proposed_tier})


def _decision(decision: Any) -> str:
    if decision not in DECISIONS:
        raise Invalid(_l("decision must be approve or reject"), field="decision")
    return decision


def decide(actor: Person, proposal: TierProposal, decision: Any, comment: Any = "",
           expected_version: Any = None) -> TierProposal:
    """Approve or reject one pending proposal of a run in review (409 otherwise); a holder of the policy's
    approval role at its step unit or above (403); a rejection says why (422)."""
    run = proposal.run
    decision = _decision(decision)
    if run.state != "review" or proposal.state != "pending":
        raise Conflict(_l("proposal %(proposal)s is %(state)s in a run that is %(run_state)s: it awaits no "
                          "decision", proposal=proposal.id, state=proposal.state, run_state=run.state),
                       state=proposal.state)
    cpol = customer_policy_of(run)
    allowed = authority.can_decide_tier(actor, proposal, cpol.approval)
    if not allowed:
        raise Forbidden(allowed.reason)
    comment = _comment(comment, required=decision == "reject")
    _check_version(run, expected_version)
    _apply_decision(actor, run, proposal, decision, comment, cpol, proposal.customer.code)
    _flush()
    return proposal


def decidable_filter(actor: Person, approval) -> Any:
    """A WHERE clause on TierProposal: the pending ones whose step unit lies under a unit where `actor`
    holds the approval role."""
    if approval is None or actor.status == "dismissed":
        return TierProposal.id.is_(None)
    units = [ra.unit for ra in actor.roles if ra.role == approval.role]
    if not units:
        return TierProposal.id.is_(None)
    return TierProposal.step_unit_id.in_(select(OrgUnit.id).where(
        or_(*[OrgUnit.path.startswith(u.path) for u in units])))


def decide_many(actor: Person, run: TieringRun, proposal_ids: Iterable[Any] | None, decision: Any,
                comment: Any = "", expected_version: Any = None) -> list[dict[str, Any]]:
    """Decide several proposals of the run at once, in the caller's one transaction: the listed ids, or
    (None) every pending proposal the actor may decide. Refuses nothing silently: one result per id asked
    for — `approved` / `rejected`, or `not_found`, `conflict` (not pending), `forbidden` with the reason."""
    decision = _decision(decision)
    if run.state != "review":
        raise Conflict(_l("tiering run %(run)s is %(state)s: its proposals await no decision", run=run.id,
                          state=run.state), state=run.state)
    comment = _comment(comment, required=decision == "reject")
    _check_version(run, expected_version)
    cpol = customer_policy_of(run)
    q = (select(TierProposal, Customer.code).join(Customer, TierProposal.customer_id == Customer.id)
         .where(TierProposal.run_id == run.id).options(joinedload(TierProposal.step_unit))
         .order_by(TierProposal.id))
    if proposal_ids is None:
        q = q.where(TierProposal.state == "pending", decidable_filter(actor, cpol.approval))
        asked: list[int] = []
    else:
        asked = list(proposal_ids)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in asked):
            raise Invalid(_l("proposals must be a list of proposal ids"), field="proposals")
        if len(set(asked)) != len(asked):
            raise Invalid(_l("proposals lists a proposal twice"), field="proposals")
        q = q.where(TierProposal.id.in_(asked))
    found = {p.id: (p, code) for p, code in db.session.execute(q)}
    results = []
    for pid in (asked if proposal_ids is not None else list(found)):
        if pid not in found:
            results.append({"proposal": pid, "customer": None, "result": "not_found",
                            "reason": str(_l("no proposal %(proposal)s in tiering run %(run)s", proposal=pid,
                                             run=run.id))})
            continue
        proposal, code = found[pid]
        out = {"proposal": pid, "customer": code}
        if proposal.state != "pending":
            reason = _l("proposal %(proposal)s is %(state)s: it awaits no decision", proposal=pid,
                        state=proposal.state)
            results.append({**out, "result": "conflict", "reason": str(reason)})
            continue
        allowed = authority.can_decide_tier(actor, proposal, cpol.approval)
        if not allowed:
            results.append({**out, "result": "forbidden", "reason": str(allowed.reason)})
            continue
        _apply_decision(actor, run, proposal, decision, comment, cpol, code)
        results.append({**out, "result": DECIDED[decision], "reason": ""})
    _flush()
    return results


# --- determining -------------------------------------------------------------------------------------

def pending_count(run: TieringRun) -> int:
    return db.session.scalar(select(func.count()).select_from(TierProposal).where(
        TierProposal.run_id == run.id, TierProposal.state == "pending")) or 0


def label_of(cpol: CustomerPolicy, tier: str | None) -> dict[str, str] | None:
    """A tier's label in both languages, for a notification shown later in its reader's language."""
    if tier is None:
        return None
    if tier not in cpol.tier_ids:
        return {"zh": tier, "en": tier}
    t = cpol.tier(tier)
    return {"zh": t.zh, "en": t.en}


def determine(actor: Person, run: TieringRun, expected_version: Any = None,
              today: dt.date | None = None) -> TieringRun:
    """Apply the run: each auto or approved change through customers.set_tier (history and event), each
    holding manager told (`tier_changed`; `grade_rule` when their level may no longer hold the customer —
    the customer stays with them, the portfolio pages list the breach). A change whose customer's tier moved
    since the run started, or who is no longer active, is skipped and counted. An unchanged proposal only
    refreshes the customer's tier_score (no history row, no event). Refused while a proposal is pending."""
    today = today or clock.today()
    to_state = _destination(run, "determine")
    allowed = authority.can_manage_customers(actor, run.unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    _check_version(run, expected_version)
    waiting = pending_count(run)
    if waiting:
        raise Refused(_l("%(n)s proposal(s) of tiering run %(run)s still await approval", n=waiting,
                         run=run.id), pending=waiting)
    pol = policy_of(run)
    cpol = pol.customers
    changed = stale = inactive = grade_rule = 0
    # The proposals' columns only (not their breakdowns): a run of 10,000 customers loads fast.
    rows = db.session.execute(
        select(TierProposal.current_tier, TierProposal.proposed_tier, TierProposal.score, Customer)
        .join(Customer, TierProposal.customer_id == Customer.id)
        .where(TierProposal.run_id == run.id, TierProposal.state.in_(("auto", "approved")))
        .options(joinedload(Customer.manager)).order_by(TierProposal.id)).all()
    for proposal, customer in ((SimpleNamespace(current_tier=r[0], proposed_tier=r[1], score=r[2]), r[3])
                               for r in rows):
        if not customer.active:
            inactive += 1
            continue
        if customer.tier != proposal.current_tier:
            stale += 1
            continue
        customers_mod.set_tier(customer, proposal.proposed_tier, score=proposal.score, source="tiering",
                               actor=actor, run=run, effective_on=today)
        changed += 1
        manager = customer.manager
        if manager is not None:
            problem = customers_mod.holder_problem(pol, manager, proposal.proposed_tier)
            if problem is not None:
                grade_rule += 1
            notify.notify(manager, "tier_changed", params={
                "customer": customer.name, "code": customer.code,
                "from": label_of(cpol, proposal.current_tier), "to": label_of(cpol, proposal.proposed_tier),
                "run": run.id, "period": run.period, **({"grade_rule": True} if problem is not None else {}),
                "target": {"endpoint": "customers.detail", "values": {"customer_id": customer.id}}})
    # Unchanged: the score is refreshed where the tier still is what the run saw.
    same = db.session.execute(
        select(Customer.id, TierProposal.score).join(TierProposal, TierProposal.customer_id == Customer.id)
        .where(TierProposal.run_id == run.id, TierProposal.state == "unchanged",
               Customer.tier == TierProposal.current_tier, Customer.active.is_(True))).all()
    if same:
        db.session.execute(update(Customer), [{"id": cid, "tier_score": score} for cid, score in same])
    result = {"changed": changed, "stale": stale, "inactive": inactive, "refreshed": len(same),
              "grade_rule": grade_rule}
    run.counts = {**(run.counts or {}), "determined": result}
    from_state = run.state
    run.state, run.determined_at, run.effective_on = to_state, clock.now(), today
    role, code = _hr_capacity(actor, run.unit)
    audit.append(run, action="determine", actor=actor, role=role, unit=code, from_state=from_state,
                 to_state=to_state, data={"effective_on": today.isoformat(), **result})
    _flush()
    return run


def cancel(actor: Person, run: TieringRun, comment: Any, expected_version: Any = None) -> TieringRun:
    """Drop the run (review → cancelled): no tier changes; the decisions taken stay on its chain."""
    to_state = _destination(run, "cancel")
    allowed = authority.can_manage_customers(actor, run.unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    comment = _comment(comment, required=True)
    _check_version(run, expected_version)
    from_state = run.state
    run.state = to_state
    role, code = _hr_capacity(actor, run.unit)
    audit.append(run, action="cancel", actor=actor, role=role, unit=code, from_state=from_state,
                 to_state=to_state, comment=comment)
    _flush()
    return run
