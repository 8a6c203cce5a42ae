"""The JSON shape of a customer, for the API of every customer area (customers, tiering, portfolios,
leads): `customer_json(c, lang)`, and `customer_detail_json` with the tier history. Labels (the tier's, the
industry's) are the policy's, in `lang` (zh... or en)."""
from __future__ import annotations

from typing import Any

from workflow.customer_policy import CustomerPolicy
from workflow.models.customers import Customer


def _policy() -> CustomerPolicy | None:
    from .views import active_policy
    pol = active_policy()
    return pol.customers if pol is not None else None


def _day(value) -> str | None:
    return value.isoformat() if value is not None else None


def customer_json(c: Customer, lang: str = "en", cpol: CustomerPolicy | None = None) -> dict[str, Any]:
    cpol = cpol or _policy()
    tier_label = None
    if c.tier is not None and cpol is not None and c.tier in cpol.tier_ids:
        tier_label = cpol.tier(c.tier).label(lang)
    return {
        "id": c.id, "code": c.code, "name": c.name, "industry": c.industry,
        "industry_label": cpol.industry_label(c.industry, lang) if cpol is not None and c.industry else None,
        "unit": c.unit.code, "unit_name": c.unit.name, "inputs": dict(c.inputs or {}), "active": c.active,
        "tier": c.tier, "tier_label": tier_label, "tier_since": _day(c.tier_since),
        "tier_score": c.tier_score,
        "manager": c.manager.username if c.manager is not None else None,
        "assigned_on": _day(c.assigned_on),
        "released_from": c.released_from.username if c.released_from is not None else None,
        "released_reason": c.released_reason, "version": c.version,
    }


def tier_history_json(c: Customer) -> list[dict[str, Any]]:
    return [{"from_tier": t.from_tier, "to_tier": t.to_tier, "score": t.score,
             "effective_on": t.effective_on.isoformat(), "source": t.source, "run": t.run_id}
            for t in c.tier_history]


def customer_detail_json(c: Customer, lang: str = "en", cpol: CustomerPolicy | None = None) -> dict[str, Any]:
    return {**customer_json(c, lang, cpol), "tier_history": tier_history_json(c)}
