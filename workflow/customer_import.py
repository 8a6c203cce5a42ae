"""The import of customers (客户导入) from CSV (UTF-8) or XLSX, all or nothing, like the import of people.

Columns: code, name, industry, unit_code (required), manager, tier, active (optional), and one optional
column per scoring input of the active policy (its id, or its Chinese or English label); the Chinese
headers 客户编码, 客户名称, 行业, 所属单位, 客户经理, 客户层级, 是否有效 are read too. An industry or a tier is
given by its id or its label; `active` as 1/0, true/false, 是/否.

Every row is checked first, against the policy, the rest of the file, the database and the importer's
authority (HR at the customer's unit or above; at both units for a customer moved to another unit); any
problem refuses the file whole (`importing.ImportRefused`, each problem naming the line, the column and
what is wrong) and nothing is written. Otherwise, in the caller's transaction: a code already stored
updates that customer (one "edit" event with the changed fields), a new code creates one ("create"); a
tier given is set with source "import" (history and event) and a manager given holds the customer
(`customers.assign`, source "import", under the policy's grade rule). The units, the people named and
the stored customers are read once, in a few queries, so 10,000 rows load in seconds.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from . import authority, clock, customers, engine
from .customer_policy import CustomerPolicy
from .i18n import _l
from .importing import ImportRefused, Problem, Source, Table, _Checker, read_table
from .models import db, Event, OrgUnit, Person
from .models.customers import Customer, CustomerTier
from .policy import Policy

REQUIRED = ("code", "name", "industry", "unit_code")
OPTIONAL = ("manager", "tier", "active")
HEADERS_ZH = {"code": ("客户编码", "客户编号", "客户代码"), "name": ("客户名称",), "industry": ("行业", "所属行业"),
              "unit_code": ("所属单位", "所属机构", "单位代码", "机构代码"),
              "manager": ("客户经理", "包保客户经理"), "tier": ("客户层级", "客户分级", "层级"),
              "active": ("是否有效", "有效")}
BLOCK = 500          # codes or usernames per look-up query


@dataclass
class CustomerImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    tiers_set: int = 0
    assigned: int = 0

    def summary(self) -> str:
        return (f"customers: {self.created} created, {self.updated} updated, {self.unchanged} unchanged "
                f"({self.tiers_set} tiers set, {self.assigned} assigned)")

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Row:
    line: int
    code: str
    values: dict[str, Any]               # name, industry, unit_id, inputs (given), active (or None)
    unit: OrgUnit
    stored: Customer | None
    tier: str | None = None              # a tier to set (None: none given)
    manager: Person | None = None        # a holder to assign (None: none given)
    changes: dict[str, Any] = field(default_factory=dict)


def columns(cpol: CustomerPolicy) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(required, optional, Chinese and label aliases) of a customers file under the policy."""
    aliases = dict(HEADERS_ZH)
    for i in cpol.inputs:
        names = [i.zh, i.en]
        if i.unit:
            names += [f"{i.zh}（{i.unit}）", f"{i.zh}({i.unit})"]
        aliases[i.id] = tuple(names)
    return REQUIRED, OPTIONAL + cpol.input_ids, aliases


def _blocks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), BLOCK):
        yield items[i:i + BLOCK]


def _by_word(items: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """id, Chinese label or English label (any case) -> id."""
    out = {}
    for iid, zh, en in items:
        out[zh] = iid
        out[en.lower()] = iid
        out[iid.lower()] = iid
    return out


def _number(text: str) -> float | int:
    value = float(text.replace(",", "").replace("，", ""))
    if not math.isfinite(value) or value < 0 or value > customers.INPUT_MAX:
        raise ValueError(text)
    return int(value) if value.is_integer() else value


def check(source: Source, actor: Person | None, *, policy: Policy | None = None) -> list[_Row]:
    """Read and check the file whole; ImportRefused with every problem, or the rows to load. Writes
    nothing."""
    pol = policy if policy is not None else engine.active_policy()[1]
    cpol = pol.customers
    if cpol is None:
        customers.active()          # refuses: the policy has no customers section
    required, optional, aliases = columns(cpol)
    problems: list[Problem] = []
    table = read_table(source, required, optional, problems, aliases=aliases)
    if table is None:
        raise ImportRefused(problems)
    rows = _check_rows(table, pol, cpol, actor, problems)
    if problems:
        raise ImportRefused(problems)
    return rows


def _check_rows(table: Table, pol: Policy, cpol: CustomerPolicy, actor: Person | None,
                problems: list[Problem]) -> list[_Row]:
    chk = _Checker(table, problems)
    cols = set(table.columns)
    raw = list(table.rows)
    units = {u.code: u for u in db.session.scalars(select(OrgUnit))}
    units_by_id = {u.id: u for u in units.values()}
    codes = list(dict.fromkeys(r.get("code", "").strip() for _, r in raw if r.get("code", "").strip()))
    stored: dict[str, Customer] = {}
    for block in _blocks(codes):
        stored.update({c.code: c for c in db.session.scalars(
            select(Customer).where(Customer.code.in_(block)))})
    usernames = list(dict.fromkeys(
        r.get("manager", "").strip() for _, r in raw if r.get("manager", "").strip()))
    people: dict[str, Person] = {}
    for block in _blocks(usernames):
        people.update({p.username: p for p in db.session.scalars(
            select(Person).where(Person.username.in_(block)))})
    holder_ids = list({c.manager_id for c in stored.values() if c.manager_id is not None})
    holders: dict[int, Person] = {}
    for i in range(0, len(holder_ids), BLOCK):
        holders.update({p.id: p for p in db.session.scalars(
            select(Person).where(Person.id.in_(holder_ids[i:i + BLOCK])))})
    industries = _by_word(cpol.industries)
    tiers = _by_word((t.id, t.zh, t.en) for t in cpol.tiers)
    may: dict[int, bool] = {}

    def manages(unit: OrgUnit) -> bool:
        if actor is None:
            return True
        if unit.id not in may:
            may[unit.id] = bool(authority.can_manage_customers(actor, unit))
        return may[unit.id]

    seen: dict[str, int] = {}
    out: list[_Row] = []
    for line, row in raw:
        chk.row(line)
        code = chk.text(row, "code", max_len=customers.CODE_MAX, spaces=False)
        if not chk.first_time("code", code, seen):
            continue
        customer = stored.get(code)
        name = chk.text(row, "name", max_len=customers.NAME_MAX)
        text = row.get("industry", "").strip()
        industry = None
        if text:
            industry = industries.get(text) or industries.get(text.lower())
            if industry is None:
                chk.bad("industry", _l("unknown industry '%(value)s' (one of: %(known)s)", value=text,
                                       known=", ".join(f"{i} ({zh})" for i, zh, _ in cpol.industries)))
        unit_code = chk.text(row, "unit_code")
        unit = units.get(unit_code) if unit_code else None
        if unit_code and unit is None:
            chk.bad("unit_code", _l("unknown unit '%(code)s'", code=unit_code))
        elif unit is not None and not manages(unit):
            chk.bad("unit_code", _l("you may not manage the customers of %(unit)s", unit=unit.code))
        if customer is not None and unit is not None and customer.unit_id != unit.id:
            old = units_by_id.get(customer.unit_id)
            if old is not None and not manages(old):
                chk.bad("unit_code", _l(
                    "customer %(code)s is at %(unit)s, whose customers you may not manage",
                    code=code, unit=old.code))
        inputs: dict[str, Any] = {}
        for iid in cpol.input_ids:
            cell = row.get(iid, "").strip() if iid in cols else ""
            if not cell:
                continue
            try:
                inputs[iid] = _number(cell)
            except ValueError:
                chk.bad(iid, _l("'%(value)s' is not a number from 0 up", value=cell))
        active = None
        cell = row.get("active", "").strip().lower()
        if cell:
            if cell in customers.TRUE_WORDS:
                active = True
            elif cell in customers.FALSE_WORDS:
                active = False
            else:
                chk.bad("active", _l("'%(value)s' is not 1/0, true/false or 是/否", value=row["active"]))
        tier = None
        cell = row.get("tier", "").strip()
        if cell:
            tier = tiers.get(cell) or tiers.get(cell.lower())
            if tier is None:
                chk.bad("tier", _l("unknown tier '%(value)s' (one of: %(known)s)", value=cell,
                                   known=", ".join(f"{t.id} ({t.zh})" for t in cpol.tiers)))
        manager = None
        cell = row.get("manager", "").strip()
        if cell:
            manager = people.get(cell)
            if manager is None:
                chk.bad("manager", _l("no person '%(username)s'", username=cell))
        if chk.failed:
            continue
        in_tier = tier if tier is not None else (customer.tier if customer is not None else None)
        if manager is not None:
            problem = customers.holder_problem(pol, manager, in_tier)
            if problem is not None:
                chk.bad("manager", problem)
                continue
        elif customer is not None and customer.manager_id is not None and tier is not None:
            holder = holders.get(customer.manager_id)
            problem = customers.holder_problem(pol, holder, in_tier) if holder is not None else None
            if problem is not None:
                chk.bad("tier", problem)
                continue
        out.append(_Row(line, code, {"name": name, "industry": industry, "inputs": inputs, "active": active},
                        unit, customer, tier, manager))
    return out


def load(rows: list[_Row], actor: Person | None, *, policy: Policy | None = None) -> CustomerImportResult:
    """Write checked rows: stored customers updated in place, new ones created; the tiers and the holders
    set; every change its event (customers.record, set_tier, assign, as everywhere). Flushes; the caller
    commits. The new customers are written in bulk: their ids are taken first (`_new_ids`), so that they
    reach the database once, whole, with their events and tier history in a statement each."""
    pol = policy if policy is not None else engine.active_policy()[1]
    result = CustomerImportResult()
    db.session.flush()       # what the caller did before is written: only the import's own rows are pending
    stored = [r for r in rows if r.stored is not None]
    new = [r for r in rows if r.stored is None]
    retiered = [r.stored.id for r in stored if r.tier is not None and r.tier != r.stored.tier]
    # set_tier appends to the history: load it for the customers whose tier changes
    for i in range(0, len(retiered), BLOCK):
        db.session.scalars(select(Customer).where(Customer.id.in_(retiered[i:i + BLOCK]))
                           .options(selectinload(Customer.tier_history))).all()
    with db.session.no_autoflush:
        for r in stored:
            c = r.stored
            changes = _update(r)
            if changes:
                customers.record(c, "edit", actor, data={"changes": changes, "source": "import"})
            moved = bool(changes) or (r.tier is not None and r.tier != c.tier) or (
                r.manager is not None and r.manager.id != c.manager_id)
            result.updated += moved
            result.unchanged += not moved
            _tier_and_holder(r, actor, pol, result)
    db.session.flush()
    if not new:
        return result
    now = clock.now()
    with db.session.no_autoflush:
        for r, cid in zip(new, _new_ids(len(new))):
            v = r.values
            r.stored = c = Customer(
                id=cid, code=r.code, name=v["name"], industry=v["industry"], unit_id=r.unit.id,
                inputs=v["inputs"], active=True if v["active"] is None else v["active"], version=0,
                created_at=now, updated_at=now, tier_history=[])
            db.session.add(c)
            customers.record(c, "create", actor, data={
                "code": c.code, "name": c.name, "industry": c.industry, "unit": r.unit.code,
                "inputs": c.inputs, "active": c.active, "source": "import"})
            result.created += 1
            _tier_and_holder(r, actor, pol, result)
        # The events and tier rows of the new customers go in one statement each, after the customers.
        events = [o for o in db.session.new if isinstance(o, Event) and o.chain.startswith("customer:")]
        tiers = [t for r in new for t in r.stored.tier_history]
        for obj in events + tiers:
            db.session.expunge(obj)
        for r in new:
            set_committed_value(r.stored, "tier_history", [])
    db.session.flush()
    _insert_all(Event, events)
    _insert_all(CustomerTier, tiers)
    for r in new:     # the history as stored, for whoever reads it in this session
        db.session.expire(r.stored, ["tier_history"])
    return result


def _tier_and_holder(r: _Row, actor: Person | None, pol: Policy, result: CustomerImportResult) -> None:
    c = r.stored
    if r.tier is not None and r.tier != c.tier:
        customers.set_tier(c, r.tier, score=None, source="import", actor=actor)
        result.tiers_set += 1
    if r.manager is not None and r.manager.id != c.manager_id:
        customers.assign(c, r.manager, actor, pol=pol, source="import")
        result.assigned += 1


def _new_ids(n: int) -> list[int]:
    """`n` ids for new customers: from the sequence on PostgreSQL; on SQLite the next ones after the
    largest (the import's transaction holds the database's write lock from its first write on, and a
    concurrent import that took them first makes ours fail whole on the unique key: 409, nothing written)."""
    if db.engine.dialect.name == "postgresql":
        return list(db.session.scalars(text(
            "SELECT nextval(pg_get_serial_sequence('customers', 'id')) FROM generate_series(1, :n)"),
            {"n": n}))
    top = db.session.scalar(select(func.max(Customer.id))) or 0
    return list(range(top + 1, top + n + 1))


def _insert_all(model, objects: list) -> None:
    """Insert pending-to-be objects (expunged) as rows, in one statement: their set columns, id left out."""
    if not objects:
        return
    columns = [c.key for c in model.__table__.columns if c.key != "id"]
    rows = [{k: v for k, v in ((k, obj.__dict__.get(k, _UNSET)) for k in columns) if v is not _UNSET}
            for obj in objects]
    if model is CustomerTier:         # the customer, by its relationship until now
        for row, obj in zip(rows, objects):
            row["customer_id"] = obj.customer.id
    keys = set(rows[0])
    if any(set(row) != keys for row in rows):
        raise AssertionError(f"{model.__name__} rows of different shapes")
    db.session.execute(insert(model.__table__), rows)


_UNSET = object()


def _update(r: _Row) -> dict[str, Any]:
    """Apply a row to its stored customer; the changed fields, before and after."""
    c, v = r.stored, r.values
    after = {"name": v["name"], "industry": v["industry"], "unit": r.unit.code,
             "inputs": {**(c.inputs or {}), **v["inputs"]},
             "active": c.active if v["active"] is None else v["active"]}
    before = {"name": c.name, "industry": c.industry, "unit": c.unit.code, "inputs": dict(c.inputs or {}),
              "active": c.active}
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    for key in changes:
        if key == "unit":
            c.unit, c.unit_id = r.unit, r.unit.id
        else:
            setattr(c, key, after[key])
    return changes


def import_customers(source: Source, actor: Person | None, *,
                     policy: Policy | None = None) -> CustomerImportResult:
    """Check the file whole (ImportRefused with every problem, nothing written), then load it. The caller
    commits once: the whole file lands in one transaction."""
    pol = policy if policy is not None else engine.active_policy()[1]
    return load(check(source, actor, policy=pol), actor, policy=pol)
