"""The tamper-evident audit trail.

Each chain ("case:ID", "person:ID", "round:ID", "customer:ID", "tiering:ID" or "lead:ID") is a sequence of events; each event carries an
HMAC-SHA256, keyed by AUDIT_KEY (kept outside the database), over its content and the previous event's MAC.
The case (or person, round, customer, tiering run, lead) row holds the chain's head MAC and length, so an edited, inserted or deleted
event, the last one included, is detected by `verify()` even by someone who can write the database directly.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from . import clock
from .models import db, Event, Case, Person, Round
from .models.customers import Customer, Lead, TieringRun

# Chains headed by a row with `version` and `head_mac` columns, by prefix; a person's chain uses
# `audit_version` and `audit_head` instead.
HEADS = {Case: "case", Round: "round", Customer: "customer", TieringRun: "tiering", Lead: "lead"}

_key: bytes | None = None


def set_key(key: bytes) -> None:
    global _key
    _key = key


def derive_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"gradeflow-audit:" + secret_key.encode()).digest()


def _mac(ev: Event) -> str:
    if _key is None:
        raise RuntimeError("the audit key is not set")
    content = {
        "chain": ev.chain, "seq": ev.seq, "case": ev.case_id, "person": ev.person_id, "action": ev.action, "actor_id": ev.actor_id,
        "from": ev.from_state, "to": ev.to_state, "actor": ev.actor, "role": ev.role, "unit": ev.unit,
        "at": ev.at.isoformat(timespec="microseconds"), "comment": ev.comment or "", "data": ev.data or {},
        "prev": ev.prev_mac,
    }
    msg = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hmac.new(_key, msg.encode(), hashlib.sha256).hexdigest()


def append(head: Case | Person | Round | Customer | TieringRun | Lead, *, action: str, actor: Person | None,
           role: str | None = None, unit: str | None = None, from_state: str | None = None,
           to_state: str | None = None, comment: str = "", data: dict[str, Any] | None = None) -> Event:
    """Append an event to the chain of `head` (a case, a person, a round, a customer, a tiering run or a
    lead) and move the head. Flushes nothing: the caller's transaction writes the event together with the
    change it records."""
    prefix = HEADS.get(type(head))
    if prefix is not None:
        chain, seq, prev = f"{prefix}:{head.id}", head.version + 1 if head.head_mac else 1, head.head_mac
    else:
        chain, seq, prev = f"person:{head.id}", (head.audit_version or 0) + 1, head.audit_head
    ev = Event(chain=chain, seq=seq, action=action, actor=actor.username if actor else "system",
               actor_id=actor.id if actor else None, role=role, unit=unit, from_state=from_state,
               to_state=to_state, at=clock.now(), comment=comment or "", data=data or {}, prev_mac=prev)
    if isinstance(head, Case):
        ev.case_id = head.id
        ev.case = head
        head.version, head.head_mac = seq, None
    elif prefix is not None:
        head.version = seq
    else:
        ev.person_id = head.id
        head.audit_version = seq
    ev.mac = _mac(ev)
    if prefix is not None:
        head.head_mac = ev.mac
    else:
        head.audit_head = ev.mac
    db.session.add(ev)
    return ev


@dataclass
class Report:
    ok: bool = True
    events: int = 0
    chains: int = 0
    first_bad: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def bad(self, ev_id: int | None, chain: str, seq: int | None, why: str) -> None:
        if self.ok:
            self.first_bad = {"chain": chain, "seq": seq, "event": ev_id, "reason": why}
        self.ok = False
        self.problems.append(f"{chain} #{seq}: {why}")


def _check_chain(report: Report, chain: str, events: list[Event], head_mac: str | None, length: int,
                 state: str | None = None) -> None:
    prev = None
    for expected_seq, ev in enumerate(events, start=1):
        report.events += 1
        if ev.seq != expected_seq:
            report.bad(ev.id, chain, expected_seq, "an event is missing")
            return
        if ev.prev_mac != prev or not hmac.compare_digest(ev.mac, _mac(ev)):
            report.bad(ev.id, chain, ev.seq, "the event was altered")
            return
        prev = ev.mac
    if len(events) != length or prev != head_mac:
        report.bad(None, chain, length, "the chain's last events were removed or replaced")
    elif state is not None and events and events[-1].to_state != state:
        # The case row's state must be the one its last (authenticated) event moved it to.
        report.bad(events[-1].id, chain, length, f"the case's state '{state}' is not where its last event "
                                                 f"left it ('{events[-1].to_state}')")


def verify(batch: int = 500, progress=None) -> Report:
    """Check every chain. `progress(done, total)` is called after each batch of heads."""
    report = Report()
    heads: list[tuple[str, Any]] = [("case", c) for c in db.session.execute(
        select(Case.id, Case.head_mac, Case.version, Case.state).order_by(Case.id))]
    heads += [("person", p) for p in db.session.execute(
        select(Person.id, Person.audit_head, Person.audit_version, None).where(Person.audit_version > 0)
        .order_by(Person.id))]
    heads += [("round", r) for r in db.session.execute(
        select(Round.id, Round.head_mac, Round.version, Round.state).order_by(Round.id))]
    heads += [("customer", c) for c in db.session.execute(
        select(Customer.id, Customer.head_mac, Customer.version, None).where(Customer.head_mac.is_not(None))
        .order_by(Customer.id))]
    heads += [("tiering", r) for r in db.session.execute(
        select(TieringRun.id, TieringRun.head_mac, TieringRun.version, TieringRun.state).order_by(TieringRun.id))]
    heads += [("lead", ld) for ld in db.session.execute(
        select(Lead.id, Lead.head_mac, Lead.version, Lead.state).order_by(Lead.id))]
    known = {f"{kind}:{row[0]}" for kind, row in heads}
    for start in range(0, len(heads), batch):
        part = heads[start:start + batch]
        chains = [f"{kind}:{row[0]}" for kind, row in part]
        by_chain: dict[str, list[Event]] = {c: [] for c in chains}
        for ev in db.session.scalars(select(Event).where(Event.chain.in_(chains)).order_by(Event.chain, Event.seq)):
            by_chain[ev.chain].append(ev)
        for (kind, row), chain in zip(part, chains):
            report.chains += 1
            _check_chain(report, chain, by_chain[chain], row[1], row[2] if row[1] else 0, row[3])
        if progress:
            progress(min(start + batch, len(heads)), len(heads))
    orphans = db.session.scalar(select(db.func.count()).select_from(Event).where(Event.chain.not_in(known))) \
        if known else db.session.scalar(select(db.func.count()).select_from(Event))
    if orphans:
        report.bad(None, "(none)", None, f"{orphans} event(s) belong to no known chain")
    return report
