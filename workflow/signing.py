"""Who signs a step, in which order, and when it is done: 或签, 会签, a committee's votes (管理小组, with a pass
ratio), 加签 (a signer added before or after oneself) and 退回 (back to a step the case passed through).

Everything here is read from the case's own events since it last entered its state (a signature is an
event with `partial`, a committee member's rejection one with `vote: reject`, an added signer one with
`added_signer`), so routing afresh (a role change, an escalation) never loses a signature or an added
signer. The guards and effects below are callbacks of the machines (workflow/machines/idioms.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from .context import ActionContext
from .errors import Invalid, Refused
from .i18n import _l, term
from .models import db, Case, Person
from .routing import holds_role_at_or_above

POSITIONS = ("before", "after")
VOTES = {"qualify": "approve", "approve": "approve", "reject": "reject"}   # a committee member's vote


def _ctx(event) -> ActionContext:
    return event.kwargs["ctx"]


def signer_of(ctx: ActionContext) -> Person:
    """Whose signature or vote an action gives: the principal when a delegate acts for them."""
    return getattr(ctx, "on_behalf_of", None) or ctx.actor


def _by(ev) -> int | None:
    return (ev.data or {}).get("on_behalf_of_id") or ev.actor_id


@dataclass(frozen=True)
class Added:
    """A signer added to the current step (加签) by an assignee, before or after themselves."""
    person_id: int
    username: str
    position: str
    by_id: int
    by: str
    role: str
    unit: str
    seq: int


@dataclass
class Signatures:
    """The current step's signatures since the case entered its state, in event order."""
    approvals: list[int] = field(default_factory=list)
    rejections: list[int] = field(default_factory=list)
    added: list[Added] = field(default_factory=list)

    @property
    def signed(self) -> set[int]:
        return set(self.approvals)

    @property
    def added_ids(self) -> set[int]:
        return {a.person_id for a in self.added}

    def regular(self, ids) -> list[int]:
        """Of `ids`, the step's own holders (not added signers)."""
        return [i for i in ids if i not in self.added_ids]


def current(case: Case) -> Signatures:
    events = list(case.events)
    start = max((i for i, ev in enumerate(events) if ev.from_state != ev.to_state), default=-1) + 1
    sig = Signatures()
    for ev in events[start:]:
        data = ev.data or {}
        if data.get("partial") and _by(ev):
            sig.approvals.append(_by(ev))
        elif data.get("vote") == "reject" and _by(ev):
            sig.rejections.append(_by(ev))
        added = data.get("added_signer")
        if added and _by(ev):
            sig.added.append(Added(added["person_id"], added["person"], added["position"], _by(ev),
                                   data.get("on_behalf_of") or ev.actor, added["role"], added["unit"], ev.seq))
    return sig


@dataclass(frozen=True)
class Mode:
    sign: str                 # any (或签) or all (会签)
    committee: object = None  # the policy's Committee deciding the step, if any

    def needed(self, members: int) -> int:
        if self.committee is not None:
            return self.committee.needed(members)
        return members if self.sign == "all" else min(1, members)

    @property
    def ratio(self):
        return self.committee.pass_ratio if self.committee is not None else None


def mode(pol, case: Case, state: str | None = None) -> Mode:
    """How the case's current step is signed: the committee's rule where one decides it, else the step's."""
    from .machines import rulebook
    state = state or case.state
    step = rulebook(case.kind).steps.get(state)
    if case.kind != "promotion" or step not in pol.steps:
        return Mode("any")
    committee = pol.committee_for(step, case.target_level)
    if committee is not None:
        return Mode(committee.sign, committee)
    return Mode(pol.steps[step].sign)


def _excluded(case: Case) -> dict[int, str]:
    from .engine import exclusions      # the engine imports the machines, which import this module
    from .machines import rulebook
    return exclusions(case, rulebook(case.kind).steps.get(case.state, case.state))


def pending_added(case: Case, sig: Signatures, excluded: dict[int, str] | None = None) -> list[tuple[Added, object]]:
    """Added signers still to sign, each with the role assignment they act in; those who can no longer
    act (excluded since, a role lost, employment ended) drop out."""
    excluded = _excluded(case) if excluded is None else excluded
    out = []
    for a in sig.added:
        if a.person_id in sig.signed or a.person_id in excluded:
            continue
        person = db.session.get(Person, a.person_id)
        ra = holds_role_at_or_above(person, a.role, case.step_unit) if case.step_unit else None
        if ra is not None and person.status != "dismissed":
            out.append((a, ra))
    return out


def _holders_done(md: Mode, sig: Signatures, remaining: list[int]) -> bool:
    """Have the step's own holders signed enough? `remaining`: holders still to sign."""
    approvals = sig.regular(sig.approvals)
    if md.ratio is not None:
        members = len(set(approvals) | set(sig.regular(sig.rejections)) | set(remaining))
        return len(approvals) >= md.needed(members)
    if md.sign == "any":
        return bool(approvals)
    return not remaining


def deciders(case: Case, pol, found, excluded: dict[int, str], entering: bool) -> list[tuple[Person, str, object]]:
    """Who decides the current step now, as (person, role, unit): the step's holders, less those who signed
    or voted; only the pending signers added before someone while there are any; a signer added after
    someone once that person signed (or the holders are done)."""
    if entering:
        return [(p, found.role, found.unit) for p in found.people]
    sig = current(case)
    pending = pending_added(case, sig, excluded)
    before = [(a, ra) for a, ra in pending if a.position == "before"]
    if before:
        return [(db.session.get(Person, a.person_id), ra.role, ra.unit) for a, ra in before]
    voted = sig.signed | set(sig.rejections)
    remaining = [p for p in found.people if p.id not in voted and p.id not in sig.added_ids]
    done = _holders_done(mode(pol, case), sig, [p.id for p in remaining])
    out = [] if done else [(p, found.role, found.unit) for p in remaining]
    out += [(db.session.get(Person, a.person_id), ra.role, ra.unit) for a, ra in pending
            if a.position == "after" and (done or a.by_id in sig.signed)]
    return out


# --- guards ------------------------------------------------------------------------------------------

def completes_step(case: Case, pol, actor: Person, state: str) -> bool:
    """Does the actor's approval finish the step? Not while an added signer is still to sign (nor the
    approval of a signer added before someone: the step then goes back); else as the step signs: 或签 one
    holder, 会签 the last holder, a committee's pass ratio the approval that reaches it."""
    sig = current(case)
    mine = next((a for a in sig.added if a.person_id == actor.id), None)
    if mine is not None and mine.position == "before":
        return False
    if any(a.person_id != actor.id for a, _ in pending_added(case, sig)):
        return False
    md = mode(pol, case, state)
    remaining = [a.person_id for a in case.assignments if a.duty == "decide" and a.person_id != actor.id
                 and a.person_id not in sig.added_ids]
    if mine is None:
        sig = Signatures(sig.approvals + [actor.id], sig.rejections, sig.added)
    return _holders_done(md, sig, remaining)


def vote_short_of_failure(event) -> bool:
    """A committee member's rejection under a pass ratio is one vote: the case is rejected only once the
    approvals can no longer reach the ratio."""
    ctx = _ctx(event)
    md = mode(ctx.policy, ctx.case, event.state.name)
    if md.ratio is None or ctx.round_decision:
        return False
    sig = current(ctx.case)
    if signer_of(ctx).id in sig.added_ids:
        return False     # an added signer's rejection is no member's vote: it rejects
    t = tally(ctx.case, ctx.policy, signer_of(ctx), "reject", event.state.name)
    return t["rejections"] <= t["members"] - t["needed"]


def tally(case: Case, pol, actor: Person, action: str, state: str | None = None) -> dict | None:
    """The committee's count with the actor's vote on `action` counted: members, needed, approvals,
    rejections. None when no committee decides the step or the actor is an added signer."""
    md = mode(pol, case, state)
    if md.committee is None or action not in VOTES:
        return None
    sig = current(case)
    if actor.id in sig.added_ids:
        return None
    approvals, rejections = sig.regular(sig.approvals), sig.regular(sig.rejections)
    remaining = {a.person_id for a in case.assignments if a.duty == "decide" and a.person_id not in sig.added_ids}
    members = len(set(approvals) | set(rejections) | remaining | {actor.id})
    vote = VOTES[action]
    return {"name": md.committee.name.zh, "sign": md.sign,
            "pass_ratio": None if md.ratio is None else str(md.ratio), "members": members,
            "needed": md.needed(members), "vote": vote,
            "approvals": len(approvals) + (vote == "approve"), "rejections": len(rejections) + (vote == "reject")}


def require_signer(event) -> None:
    """加签: `person` (a username) and `position` (before or after). The added signer must be able to act
    on this step by the authority matrix — hold the adder's role for it at the step's unit or above — and
    must not be excluded from it (the applicant, a conflict, four eyes)."""
    ctx = _ctx(event)
    case, data = ctx.case, ctx.data
    position = data.get("position")
    if position not in POSITIONS:
        raise Invalid(_l("position must be 'before' (they sign first, then you) or 'after' (they sign after "
                         "you)"), field="position")
    username = data.get("person")
    if not isinstance(username, str) or not username.strip():
        raise Invalid(_l("person must be the username of the signer to add"), field="person")
    person = db.session.scalar(select(Person).where(Person.username == username.strip()))
    if person is None:
        raise Refused(_l("no person '%(username)s'", username=username.strip()), field="person")
    me = signer_of(ctx)
    mine = next((a for a in case.assignments if a.person_id == me.id and a.duty == "decide"), None)
    if mine is None:
        raise Refused(_l("only an assignee deciding this step may add a signer to it"))
    role, unit = mine.role, case.step_unit
    if person.id in (me.id, ctx.actor.id):
        raise Refused(_l("you cannot add yourself as a signer"), field="person")
    if person.status == "dismissed":
        raise Refused(_l("%(username)s is no longer employed", username=person.username), field="person")
    sig = current(case)
    if person.id in sig.added_ids or any(a.person_id == person.id for a in case.assignments):
        raise Refused(_l("%(username)s already signs this step", username=person.username), field="person")
    if person.id in sig.signed or person.id in sig.rejections:
        raise Refused(_l("%(username)s has already signed this step", username=person.username), field="person")
    if holds_role_at_or_above(person, role, unit) is None:
        raise Refused(_l("%(username)s does not hold %(role)s at %(unit)s or above, so cannot act on this step",
                         username=person.username, role=term("role", role), unit=unit.code), field="person")
    reason = _excluded(case).get(person.id)
    if reason == "self":
        raise Refused(_l("%(username)s is the applicant and cannot sign their own case", username=person.username),
                      field="person")
    if reason:
        raise Refused(_l("%(username)s may not act on this step (a declared conflict, or a decision on another "
                         "step of the case)", username=person.username), field="person")
    ctx.data["_signer"] = (person, holds_role_at_or_above(person, role, unit))


def require_passed_step(event) -> None:
    """退回: `to_step` must be a step the case passed through that its current one may send it back to."""
    ctx = _ctx(event)
    allowed = send_back_targets(ctx.case)
    target = ctx.data.get("to_step")
    if target not in allowed:
        raise Refused(_l("to_step must be one of the steps this case passed through: %(steps)s",
                         steps=", ".join(allowed) or "—"), field="to_step")


def send_back_targets(case: Case) -> list[str]:
    """The earlier steps the case may be sent back to from its state: those the kind allows that the case's
    own events show it was in."""
    from .machines import idioms
    passed = {ev.to_state for ev in case.events}
    return [s for s in idioms.SEND_BACK.get(case.kind, {}).get(case.state, ()) if s in passed]


def back_to(target: str):
    """The condition choosing the send_back transition into `target`."""
    def names_the_step(event) -> bool:
        return _ctx(event).data.get("to_step") == target
    return names_the_step


# --- effects -----------------------------------------------------------------------------------------

def add_signer(event) -> None:
    ctx = _ctx(event)
    person, ra = ctx.data.pop("_signer")
    ctx.event_data["added_signer"] = {"person": person.username, "person_id": person.id, "name": person.name,
                                      "position": ctx.data["position"], "role": ra.role, "unit": ra.unit.code}
    ctx.reroute = True


def record_vote(event) -> None:
    """A committee member's rejection that leaves the ratio reachable: their vote, and they are done."""
    ctx = _ctx(event)
    for a in list(ctx.case.assignments):
        if a.duty == "decide" and a.person_id == signer_of(ctx).id:
            ctx.case.assignments.remove(a)
    ctx.event_data["vote"] = "reject"


def record_send_back(event) -> None:
    ctx = _ctx(event)
    ctx.event_data["to_step"] = ctx.data["to_step"]


# --- for the pages and the API -----------------------------------------------------------------------

def summary(case: Case) -> dict | None:
    """The current step's added signers in order and its committee count, for the case page and the API."""
    if case.closed:
        return None
    from . import engine
    pol = engine.policy_for(case)
    sig = current(case)
    pending = {a.person_id for a, _ in pending_added(case, sig)} if sig.added else set()
    added = [{"person": a.username, "position": a.position, "added_by": a.by, "order": i + 1,
              "signed": a.person_id in sig.signed, "waiting": a.person_id in pending}
             for i, a in enumerate(sig.added)]
    md = mode(pol, case)
    committee = None
    if md.committee is not None:
        approvals, rejections = sig.regular(sig.approvals), sig.regular(sig.rejections)
        remaining = {a.person_id for a in case.assignments if a.duty == "decide" and a.person_id not in sig.added_ids}
        members = len(set(approvals) | set(rejections) | remaining)
        committee = {"name": {"zh": md.committee.name.zh, "en": md.committee.name.en}, "sign": md.sign,
                     "pass_ratio": None if md.ratio is None else str(md.ratio), "members": members,
                     "needed": md.needed(members), "approvals": len(approvals), "rejections": len(rejections)}
    if not added and committee is None:
        return None
    return {"added_signers": added, "committee": committee}


def signature_awaited(event) -> bool:
    """A lifecycle decision taken while an added signer is still to sign (or by a signer added before
    someone) is a signature: the step waits for the others."""
    ctx = _ctx(event)
    return not ctx.round_decision and not completes_step(ctx.case, ctx.policy, signer_of(ctx), event.state.name)


def candidates(case: Case, adder: Person) -> list[Person]:
    """Whom `adder` may add as a signer to the current step: holders of the adder's role for it at the
    step's unit or an ancestor, not excluded from the step, not already signing it (the page's choices; the
    engine checks again)."""
    from .models import RoleAssignment
    mine = next((a for a in case.assignments if a.person_id == adder.id and a.duty == "decide"), None)
    if mine is None or case.step_unit is None:
        return []
    sig = current(case)
    taken = {a.person_id for a in case.assignments} | sig.added_ids | sig.signed | set(sig.rejections) | {adder.id}
    excluded = _excluded(case)
    people = db.session.scalars(
        select(Person).join(RoleAssignment, RoleAssignment.person_id == Person.id)
        .where(RoleAssignment.role == mine.role, RoleAssignment.unit_id.in_([u.id for u in case.step_unit.ancestors()]),
               Person.status != "dismissed").order_by(Person.username).distinct())
    return [p for p in people if p.id not in taken and p.id not in excluded]
