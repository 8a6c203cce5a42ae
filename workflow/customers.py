"""Customers (客户): the active policy's customer section, and the changes every customer area shares —
the tier (set_tier), the holding manager (assign, release). Each change writes its event on the customer's
audit chain ("customer:ID") in the caller's transaction; nothing here commits or checks authority (the
callers do: the import, a tiering run, the portfolio pages and a case's effect).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask_babel import get_locale
from flask_babel.speaklater import LazyString
from sqlalchemy import or_, select

from . import audit, authority, clock, engine
from .customer_policy import CustomerPolicy
from .errors import Conflict, Forbidden, Invalid, NotFound, Refused
from .i18n import Message, _l
from .models import db, Event, Person, PolicyVersion
from .models.customers import Customer, CustomerTier, TieringRun
from .policy import Policy

# Why a customer was released from its manager (Customer.released_reason).
RELEASE_REASONS = ("dismissal", "demotion", "promotion", "manual", "inactive")


def active() -> tuple[PolicyVersion, CustomerPolicy]:
    """The active policy version and its customer section; Refused when the policy has none."""
    pv, pol = engine.active_policy()
    if pol.customers is None:
        raise Refused(_l("the active policy (%(policy)s) has no customers section: customer tiering, portfolios "
                         "and leads are not in use", policy=pol.label))
    return pv, pol.customers


def record(customer: Customer, action: str, actor: Person | None, *, comment: str = "",
           data: dict[str, Any] | None = None) -> Event:
    """Append an event to the customer's chain and mark the row changed."""
    customer.updated_at = clock.now()
    return audit.append(customer, action=action, actor=actor, comment=comment, data=data)


def _label(item: Any, key: str) -> LazyString:
    """A tier's or a level's name in a message: its id in English (as the API has always said), the
    policy's Chinese label in Chinese."""
    def render() -> str:
        locale = get_locale()
        if item is None or locale is None or locale.language != "zh":
            return key
        return item.zh
    return LazyString(render)


def _level(pol: Policy, level_id: str | None) -> LazyString:
    try:
        return _label(pol.level(level_id), level_id)
    except KeyError:
        return _label(None, level_id)


def holder_problem(pol: Policy, manager: Person, tier: str | None) -> Message | None:
    """Why `manager` may not hold a customer of `tier` under the policy (None: they may): not active, a
    level that holds no portfolio, or below the tier's minimum level (客户经理等级与客户层级)."""
    cpol = pol.customers
    if manager.status == "dismissed":
        return _l("%(username)s has left and holds no customers", username=manager.username)
    if manager.level is None:
        return _l("%(username)s holds no grade of the ladder and cannot hold customers", username=manager.username)
    if cpol.holding_levels is not None and manager.level not in cpol.holding_levels:
        return _l("managers of level %(level)s hold no customers under the policy",
                  level=_level(pol, manager.level))
    if not cpol.may_hold(manager.level, tier, pol.level_ids):
        need = cpol.tier(tier).min_manager_level
        return _l("a customer of tier %(tier)s needs a manager of level %(need)s or above; %(username)s is %(level)s",
                  tier=_label(cpol.tier(tier), tier), need=_level(pol, need),
                  username=manager.username, level=_level(pol, manager.level))
    return None


def assign(customer: Customer, manager: Person, actor: Person | None, *, pol: Policy, today: dt.date | None = None,
           comment: str = "", source: str = "manual") -> Event:
    """Make `manager` the customer's holder (包保) from `today`. Refused when the policy's grade rule forbids
    it or the manager already holds it."""
    problem = holder_problem(pol, manager, customer.tier)
    if problem is not None:
        raise Refused(problem)
    if customer.manager_id == manager.id:
        raise Refused(_l("%(username)s already holds customer %(code)s", username=manager.username,
                         code=customer.code))
    before = customer.manager.username if customer.manager is not None else None
    customer.manager = manager
    customer.manager_id = manager.id
    customer.assigned_on = today or clock.today()
    customer.released_from_id = customer.released_reason = None
    return record(customer, "assign", actor, comment=comment,
                  data={"from": before, "to": manager.username, "on": customer.assigned_on.isoformat(),
                        "source": source})


def release(customer: Customer, actor: Person | None, *, reason: str, comment: str = "",
            case_id: int | None = None) -> Event:
    """Take the customer from its manager: it waits, with who held it and why, to be assigned again."""
    if reason not in RELEASE_REASONS:
        raise ValueError(reason)
    if customer.manager_id is None:
        raise Refused(_l("customer %(code)s is held by nobody", code=customer.code))
    before = customer.manager
    customer.released_from = before
    customer.released_from_id = before.id
    customer.released_reason = reason
    customer.manager = None
    customer.manager_id = customer.assigned_on = None
    return record(customer, "release", actor, comment=comment,
                  data={"from": before.username, "reason": reason, **({"case": case_id} if case_id else {})})


def set_tier(customer: Customer, to_tier: str, *, score: float | None, source: str, actor: Person | None,
             run: TieringRun | None = None, effective_on: dt.date | None = None,
             comment: str = "") -> CustomerTier:
    """Put the customer in `to_tier` from `effective_on` (today): the history row and the event."""
    day = effective_on or clock.today()
    row = CustomerTier(customer=customer, from_tier=customer.tier, to_tier=to_tier, score=score, effective_on=day,
                       run=run, source=source)
    db.session.add(row)
    record(customer, "tier", actor, comment=comment,
           data={"from": customer.tier, "to": to_tier, "score": score, "source": source,
                 **({"run": run.id} if run is not None else {})})
    customer.tier, customer.tier_since, customer.tier_score = to_tier, day, score
    return row


# --- creating, editing and listing customers (the customers area) -------------------------------------
# HR (and admins) at a customer's unit or above keep it: create it, edit it, move it to another unit (with
# the authority at both). Every change is one event on the customer's chain, in the caller's transaction.

CODE_MAX, NAME_MAX = 64, 200
INPUT_MAX = 1e15                 # an input larger than this is a typing error, not a customer
EDITABLE = ("code", "name", "industry", "unit", "inputs", "active")
CREATE_FIELDS = (*EDITABLE, "tier", "manager")
TRUE_WORDS = ("1", "true", "yes", "on", "y", "是", "有效")
FALSE_WORDS = ("0", "false", "no", "off", "n", "否", "无效")


def _unit_for(actor: Person, code: Any, field: str = "unit"):
    """The org unit a request names by code: 404 when unknown or out of the actor's sight, 403 when the
    actor may see but not keep its customers."""
    from .models import OrgUnit
    if not isinstance(code, str) or not code.strip():
        raise Invalid(_l("unit must be the code of an org unit"), field=field)
    unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code.strip()))
    if unit is None or not (authority.can_view_customers(actor, unit) or unit.contains(actor.unit)):
        raise NotFound(_l("no unit '%(code)s' in your scope", code=code.strip()), field=field)
    allowed = authority.can_manage_customers(actor, unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    return unit


def number(value: Any, field: str) -> float:
    """A scoring input: a number, 0 or more (an integer stays an integer)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(_l("%(field)s must be a number", field=field), field=field)
    if value != value or value < 0 or value > INPUT_MAX:
        raise Invalid(_l("%(field)s must be a number from 0 to %(max)s", field=field, max=f"{INPUT_MAX:g}"),
                      field=field)
    return int(value) if isinstance(value, int) or float(value).is_integer() else float(value)


def _text(value: Any, field: str, max_len: int, spaces: bool = True) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(_l("%(field)s must be a non-empty text", field=field), field=field)
    value = value.strip()
    if len(value) > max_len:
        raise Invalid(_l("%(field)s must have at most %(max)s characters", field=field, max=max_len),
                      field=field)
    if not spaces and any(c.isspace() for c in value):
        raise Invalid(_l("%(field)s must not contain spaces", field=field), field=field)
    return value


def _industry(cpol: CustomerPolicy, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in cpol.industry_ids:
        raise Invalid(_l("industry must be one of %(ids)s", ids=", ".join(cpol.industry_ids) or "-"),
                      field="industry")
    return value


def _inputs(cpol: CustomerPolicy, value: Any, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The policy's inputs from `value` ({input id: number}); those it leaves out keep `before`'s values."""
    if not isinstance(value, dict):
        raise Invalid(_l("inputs must be an object {input id: number}"), field="inputs")
    unknown = [k for k in value if k not in cpol.input_ids]
    if unknown:
        raise Invalid(_l("unknown input(s) %(unknown)s (inputs: %(ids)s)",
                         unknown=", ".join(map(str, unknown)), ids=", ".join(cpol.input_ids)), field="inputs")
    out = dict(before or {})
    for key, raw in value.items():
        if raw is None:
            out.pop(key, None)
        else:
            out[key] = number(raw, f"inputs.{key}")
    return out


def _flag(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    raise Invalid(_l("%(field)s must be true or false", field=field), field=field)


def _code_taken(code: str, but: int | None = None) -> bool:
    q = select(Customer.id).where(Customer.code == code)
    if but is not None:
        q = q.where(Customer.id != but)
    return db.session.scalar(q) is not None


def _check_object(data: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Invalid(_l("the body must be a JSON object"))
    unknown = [k for k in data if k not in allowed and k != "version"]
    if unknown:
        raise Invalid(_l("unknown field(s) %(unknown)s (fields: %(known)s)",
                         unknown=", ".join(map(str, unknown)), known=", ".join(allowed)),
                      field=str(unknown[0]))
    return data


def _manager(username: Any) -> Person:
    if not isinstance(username, str) or not username.strip():
        raise Invalid(_l("manager must be a username"), field="manager")
    person = db.session.scalar(select(Person).where(Person.username == username.strip()))
    if person is None:
        raise Refused(_l("no person '%(username)s'", username=username.strip()), field="manager")
    return person


def create_customer(actor: Person, data: dict[str, Any], *, today: dt.date | None = None) -> Customer:
    """A new customer from `data` ({code, name, industry, unit (code), inputs, active, tier?, manager?}): HR
    at the unit or above. An initial tier is set by the administrator (source "admin"); a manager given
    holds it under the policy's grade rule. One "create" event (and a "tier", an "assign" one); flushes."""
    pv, cpol = active()
    data = _check_object(data, CREATE_FIELDS)
    unit = _unit_for(actor, data.get("unit"))
    code = _text(data.get("code"), "code", CODE_MAX, spaces=False)
    name = _text(data.get("name"), "name", NAME_MAX)
    industry = _industry(cpol, data.get("industry"))
    inputs = _inputs(cpol, data.get("inputs", {}))
    is_active = _flag(data.get("active", True), "active")
    tier = data.get("tier")
    if tier is not None and tier not in cpol.tier_ids:
        raise Invalid(_l("tier must be one of %(ids)s", ids=", ".join(cpol.tier_ids)), field="tier")
    manager = _manager(data["manager"]) if data.get("manager") not in (None, "") else None
    if _code_taken(code):
        raise Refused(_l("customer code %(code)s is already used", code=code), field="code")
    pol = engine.active_policy()[1]
    if manager is not None:
        problem = holder_problem(pol, manager, tier)
        if problem is not None:
            raise Refused(problem, field="manager")
    customer = Customer(code=code, name=name, industry=industry, unit=unit, unit_id=unit.id, inputs=inputs,
                        active=is_active, version=0)
    db.session.add(customer)
    db.session.flush()
    record(customer, "create", actor, data={"code": code, "name": name, "industry": industry,
                                            "unit": unit.code, "inputs": inputs, "active": is_active,
                                            "source": "admin"})
    if tier is not None:
        set_tier(customer, tier, score=None, source="admin", actor=actor, effective_on=today)
    if manager is not None:
        assign(customer, manager, actor, pol=pol, today=today, source="admin")
    db.session.flush()
    return customer


def check_version(customer: Customer, expected: Any) -> None:
    """The version the editor saw must be the customer's: 409 when it moved on."""
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise Invalid(_l("version must be an integer: the customer's version you saw"), field="version")
    if expected != customer.version:
        raise Conflict(_l("customer %(code)s has changed since version %(seen)s (now %(now)s); reload it",
                          code=customer.code, seen=expected, now=customer.version), version=customer.version)


def edit_customer(customer: Customer, actor: Person, data: dict[str, Any], version: Any) -> dict[str, Any]:
    """Change the fields `data` names (code, name, industry, unit, inputs, active) as seen at `version`: HR
    at the customer's unit or above, and at the new unit too for a move. One "edit" event with each changed
    field before and after; answers those changes ({} when nothing changed, and then no event). Flushes."""
    _, cpol = active()
    allowed = authority.can_manage_customers(actor, customer.unit)
    if not allowed:
        raise Forbidden(allowed.reason)
    data = _check_object(data, EDITABLE)
    check_version(customer, version)
    after: dict[str, Any] = {}
    if "code" in data:
        after["code"] = _text(data["code"], "code", CODE_MAX, spaces=False)
    if "name" in data:
        after["name"] = _text(data["name"], "name", NAME_MAX)
    if "industry" in data:
        after["industry"] = _industry(cpol, data["industry"])
    if "inputs" in data:
        after["inputs"] = _inputs(cpol, data["inputs"], customer.inputs)
    if "active" in data:
        after["active"] = _flag(data["active"], "active")
    unit = None
    if "unit" in data:
        unit = _unit_for(actor, data["unit"])
        after["unit"] = unit.code
    before = {"code": customer.code, "name": customer.name, "industry": customer.industry,
              "inputs": dict(customer.inputs or {}), "active": customer.active, "unit": customer.unit.code}
    changes = {k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v}
    if "code" in changes and _code_taken(after["code"], customer.id):
        raise Refused(_l("customer code %(code)s is already used", code=after["code"]), field="code")
    if not changes:
        return {}
    for key in changes:
        if key == "unit":
            customer.unit, customer.unit_id = unit, unit.id
        else:
            setattr(customer, key, after[key])
    record(customer, "edit", actor, data={"changes": changes, "source": "edit"})
    db.session.flush()
    return changes


# --- finding customers ----------------------------------------------------------------------------------

@dataclass
class Filters:
    """The list's filters, checked (`parse_filters`)."""
    unit: Any = None                  # an OrgUnit: its subtree
    tier: str | None = None           # a tier id, or "none" (not yet tiered)
    manager: str | None = None        # a holder's username
    industry: str | None = None
    active: bool | None = None
    q: str | None = None              # text in the code or the name
    unassigned: bool = False

    def args(self) -> dict[str, str]:
        """The filters as query parameters (the pager's links, the export's)."""
        out = {"unit": self.unit.code if self.unit is not None else "", "tier": self.tier or "",
               "manager": self.manager or "", "industry": self.industry or "",
               "active": "" if self.active is None else ("1" if self.active else "0"), "q": self.q or "",
               "unassigned": "1" if self.unassigned else ""}
        return {k: v for k, v in out.items() if v}


def _arg_flag(value: str, field: str) -> bool | None:
    value = (value or "").strip().lower()
    if not value:
        return None
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise Invalid(_l("%(field)s must be 1 or 0", field=field), field=field)


def parse_filters(args, viewer: Person, cpol: CustomerPolicy) -> Filters:
    """The list's query parameters (unit, tier, manager, industry, active, q, unassigned): a bad one is
    Invalid naming it; a unit unknown or out of the viewer's sight is NotFound."""
    from .models import OrgUnit
    f = Filters()
    code = (args.get("unit") or "").strip()
    if code:
        unit = db.session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if unit is None or not (authority.can_view_customers(viewer, unit) or unit.contains(viewer.unit)):
            raise NotFound(_l("no unit '%(code)s' in your scope", code=code), field="unit")
        f.unit = unit
    tier = (args.get("tier") or "").strip()
    if tier:
        if tier != "none" and tier not in cpol.tier_ids:
            raise Invalid(_l("tier must be one of %(ids)s or none", ids=", ".join(cpol.tier_ids)),
                          field="tier")
        f.tier = tier
    f.manager = (args.get("manager") or "").strip() or None
    industry = (args.get("industry") or "").strip()
    if industry:
        if industry not in cpol.industry_ids:
            raise Invalid(_l("industry must be one of %(ids)s", ids=", ".join(cpol.industry_ids)),
                          field="industry")
        f.industry = industry
    f.active = _arg_flag(args.get("active", ""), "active")
    q = (args.get("q") or "").strip()
    if len(q) > NAME_MAX:
        raise Invalid(_l("q must have at most %(max)s characters", max=NAME_MAX), field="q")
    f.q = q or None
    f.unassigned = bool(_arg_flag(args.get("unassigned", ""), "unassigned"))
    return f


def customer_query(viewer: Person, filters: Filters | None = None):
    """The customers `viewer` may see (authority.customer_visible_filter), narrowed by the filters, by
    code."""
    from .models import OrgUnit
    q = select(Customer).where(authority.customer_visible_filter(viewer)).order_by(Customer.code)
    f = filters or Filters()
    if f.unit is not None:
        q = q.where(Customer.unit_id.in_(select(OrgUnit.id).where(OrgUnit.path.startswith(f.unit.path))))
    if f.tier == "none":
        q = q.where(Customer.tier.is_(None))
    elif f.tier:
        q = q.where(Customer.tier == f.tier)
    if f.manager:
        q = q.where(Customer.manager_id.in_(select(Person.id).where(Person.username == f.manager)))
    if f.industry:
        q = q.where(Customer.industry == f.industry)
    if f.active is not None:
        q = q.where(Customer.active.is_(f.active))
    if f.q:
        q = q.where(or_(Customer.code.icontains(f.q, autoescape=True),
                        Customer.name.icontains(f.q, autoescape=True)))
    if f.unassigned:
        q = q.where(Customer.manager_id.is_(None))
    return q


def visible_customer(customer_id: int, viewer: Person, lock: bool = False) -> Customer:
    """The customer, if the viewer may see it (404 otherwise); row-locked on PostgreSQL when `lock`."""
    q = select(Customer).where(Customer.id == customer_id).execution_options(populate_existing=True)
    if lock and db.engine.dialect.name == "postgresql":
        q = q.with_for_update(of=Customer)
    customer = db.session.scalar(q)
    if customer is None or not authority.can_see_customer(viewer, customer):
        raise NotFound(_l("no customer %(id)s", id=customer_id))
    return customer


def may_keep_customers(person: Person) -> bool:
    """Whether the person keeps customers somewhere (HR or admin at some unit): the create and import
    pages."""
    return any(ra.role in authority.CUSTOMER_KEEPERS for ra in person.roles)
