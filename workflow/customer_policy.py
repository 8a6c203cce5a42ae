"""The `customers` section of a policy: customer tiers, how they are scored, who approves a change of tier,
the managers' portfolio norms and the sales leads' deadlines. Validated by workflow/policy.py on load;
see docs/customers.md for the shape and an example.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

APPROVAL_ROLES = ("supervisor", "approver", "hr", "admin")


@dataclass(frozen=True)
class Input:
    """A scoring input every customer carries (monthly revenue, employees...): a number, 0 or more."""
    id: str
    zh: str
    en: str
    unit: str = ""          # shown beside the value: 万元, 人, 次/年

    def label(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en


@dataclass(frozen=True)
class Term:
    """A value score term: `weight` points at `full_at` or more of the input, pro rata below it."""
    input: str
    weight: float
    full_at: float


@dataclass(frozen=True)
class Tier:
    """A customer tier, best first. A customer scoring `min_score` or more is in the first tier it reaches;
    `min_manager_level` is the lowest ladder level that may hold it; a visit is due every `visit_months`."""
    id: str
    zh: str
    en: str
    min_score: float
    min_manager_level: str | None = None
    visit_months: int | None = None
    duties: tuple[str, ...] = ()

    def label(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en


@dataclass(frozen=True)
class Floor:
    """Customers of the listed industries are at least `at_least` (新疆: 政府和特殊行业客户至少为 A2)."""
    industries: tuple[str, ...]
    at_least: str


@dataclass(frozen=True)
class Approval:
    """A change of tier into or out of `at_or_above` (or a better tier) is approved by a holder of `role` at
    the customer's unit's ancestor at `org_level` (or above)."""
    at_or_above: str
    org_level: str
    role: str


@dataclass(frozen=True)
class Area:
    """A workload norm (编制): each manager holds `min` to `max` customers; `units` (codes) and their subtrees
    are in the area (the default area needs none)."""
    id: str
    zh: str
    en: str
    min: int
    max: int
    units: tuple[str, ...] = ()

    def label(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en


@dataclass(frozen=True)
class LeadClass:
    id: str
    zh: str
    en: str
    days: int

    def label(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en


@dataclass(frozen=True)
class CustomerPolicy:
    inputs: tuple[Input, ...]
    industries: tuple[tuple[str, str, str], ...]          # (id, zh, en)
    tiers: tuple[Tier, ...]
    score: tuple[Term, ...]
    floors: tuple[Floor, ...] = ()
    approval: Approval | None = None
    areas: tuple[Area, ...] = ()
    default_area: str | None = None
    lead_classes: tuple[LeadClass, ...] = ()
    lead_reassign_role: str = "supervisor"
    # The ladder levels whose managers hold portfolios (None: every level). When a case takes effect the
    # manager's customers they may no longer hold are released for reassignment: all of them on dismissal
    # or on a promotion to a level outside these, those whose tier needs a higher level on a demotion.
    holding_levels: tuple[str, ...] | None = None

    def may_hold(self, level: str | None, tier_id: str | None, level_ids: tuple[str, ...]) -> bool:
        """May a manager of ladder level `level` hold a customer of the tier?"""
        if level is None or (self.holding_levels is not None and level not in self.holding_levels):
            return False
        need = self.tier(tier_id).min_manager_level if tier_id in self.tier_ids else None
        return need is None or level_ids.index(level) >= level_ids.index(need)

    # --- look-ups ---------------------------------------------------------------------------------
    @property
    def tier_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tiers)

    def tier(self, tier_id: str) -> Tier:
        for t in self.tiers:
            if t.id == tier_id:
                return t
        raise KeyError(tier_id)

    def tier_rank(self, tier_id: str | None) -> int:
        """0 for the best tier; len(tiers) for none (an untiered customer ranks below every tier)."""
        return self.tier_ids.index(tier_id) if tier_id in self.tier_ids else len(self.tiers)

    @property
    def input_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.inputs)

    @property
    def industry_ids(self) -> tuple[str, ...]:
        return tuple(i[0] for i in self.industries)

    def industry_label(self, industry: str | None, lang: str) -> str:
        for iid, zh, en in self.industries:
            if iid == industry:
                return zh if lang.startswith("zh") else en
        return industry or ""

    def lead_class(self, class_id: str) -> LeadClass:
        for c in self.lead_classes:
            if c.id == class_id:
                return c
        raise KeyError(class_id)

    def needs_approval(self, from_tier: str | None, to_tier: str) -> bool:
        """A change into or out of the approval's tier or a better one (the same tier never needs it)."""
        if self.approval is None or from_tier == to_tier:
            return False
        bar = self.tier_rank(self.approval.at_or_above)
        return self.tier_rank(to_tier) <= bar or self.tier_rank(from_tier) <= bar

    def classify(self, industry: str | None, inputs: dict[str, Any]) -> tuple[str, float, dict[str, Any]]:
        """(tier, score, breakdown) of a customer: the weighted value score (0-100, 2 decimals), the first
        tier it reaches, raised by a floor rule of the customer's industry. The breakdown lists each term
        (value, points, weight) and the floor applied, if any."""
        total_weight = sum(t.weight for t in self.score)
        terms, points = [], 0.0
        for t in self.score:
            raw = inputs.get(t.input)
            value = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else 0.0
            got = t.weight * min(max(value, 0.0) / t.full_at, 1.0)
            points += got
            terms.append({"input": t.input, "value": value, "full_at": t.full_at, "weight": t.weight,
                          "points": round(got * 100 / total_weight, 2)})
        score = round(points * 100 / total_weight, 2)
        tier = next((t.id for t in self.tiers if score >= t.min_score), self.tiers[-1].id)
        by_score, floor = tier, None
        for f in self.floors:
            if industry in f.industries and self.tier_rank(f.at_least) < self.tier_rank(tier):
                tier, floor = f.at_least, {"industry": industry, "at_least": f.at_least}
        return tier, score, {"terms": terms, "by_score": by_score, "floor": floor}

    def area_of(self, unit_codes: list[str]) -> Area | None:
        """The workload area of a unit, given the codes of the unit and its ancestors (nearest first): the
        first area listing one of them, else the default area."""
        for code in unit_codes:
            for a in self.areas:
                if code in a.units:
                    return a
        return next((a for a in self.areas if a.id == self.default_area), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": [{"id": i.id, "zh": i.zh, "en": i.en, "unit": i.unit} for i in self.inputs],
            "industries": [{"id": i, "zh": zh, "en": en} for i, zh, en in self.industries],
            "tiers": [{"id": t.id, "zh": t.zh, "en": t.en, "min_score": t.min_score,
                       "min_manager_level": t.min_manager_level, "visit_months": t.visit_months,
                       "duties": list(t.duties)} for t in self.tiers],
            "score": [{"input": t.input, "weight": t.weight, "full_at": t.full_at} for t in self.score],
            "floors": [{"industries": list(f.industries), "at_least": f.at_least} for f in self.floors],
            "approval": None if self.approval is None else {
                "at_or_above": self.approval.at_or_above, "org_level": self.approval.org_level,
                "role": self.approval.role},
            "workload": {"default_area": self.default_area, "areas": [
                {"id": a.id, "zh": a.zh, "en": a.en, "min": a.min, "max": a.max, "units": list(a.units)}
                for a in self.areas]} if self.areas else None,
            "leads": {"classes": [{"id": c.id, "zh": c.zh, "en": c.en, "days": c.days}
                                  for c in self.lead_classes],
                      "reassign_role": self.lead_reassign_role} if self.lead_classes else None,
            "holding_levels": None if self.holding_levels is None else list(self.holding_levels),
        }


# --- validation -------------------------------------------------------------------------------------

def _named(v, item, path, required=(), optional=()):
    v.mapping(item, path, ("id", "zh", "en", *required), optional)
    v.ident(item["id"], f"{path}.id")
    v.text(item["zh"], f"{path}.zh")
    v.text(item["en"], f"{path}.en")
    return item


def _unique(v, items, path, what):
    seen = set()
    for i, item in enumerate(items):
        if item["id"] in seen:
            v.fail(f"{path}[{i}].id", f"{what} '{item['id']}' is listed twice")
        seen.add(item["id"])


def section(v, doc: Any, level_ids: list[str], org_ids: list[str]) -> CustomerPolicy | None:
    """Validate `customers` (optional) with the walker `v` of workflow/policy.py."""
    if doc is None:
        return None
    p = "customers"
    c = v.mapping(doc, p, ("inputs", "tiers", "score"),
                  ("industries", "floors", "approval", "workload", "leads", "holding_levels"))

    inputs = []
    for i, item in enumerate(v.seq(c["inputs"], f"{p}.inputs")):
        _named(v, item, f"{p}.inputs[{i}]", optional=("unit",))
        if "unit" in item and not isinstance(item["unit"], str):
            v.fail(f"{p}.inputs[{i}].unit", "must be a text")
        inputs.append(Input(item["id"], item["zh"], item["en"], item.get("unit", "")))
    _unique(v, c["inputs"], f"{p}.inputs", "input")
    input_ids = [i.id for i in inputs]

    industries = []
    for i, item in enumerate(v.seq(c.get("industries", []), f"{p}.industries", min_len=0)):
        _named(v, item, f"{p}.industries[{i}]")
        industries.append((item["id"], item["zh"], item["en"]))
    _unique(v, c.get("industries", []), f"{p}.industries", "industry")
    industry_ids = [i[0] for i in industries]

    tiers = []
    raw_tiers = v.seq(c["tiers"], f"{p}.tiers", min_len=2)
    for i, item in enumerate(raw_tiers):
        tp = f"{p}.tiers[{i}]"
        _named(v, item, tp, ("min_score",), ("min_manager_level", "visit_months", "duties"))
        lo = v.number(item["min_score"], f"{tp}.min_score", lo=0, hi=100)
        if tiers and lo >= tiers[-1].min_score:
            prev = tiers[-1].min_score
            v.fail(f"{tp}.min_score", f"must be below the previous tier's ({prev:g}): tiers are listed best first")
        if i == len(raw_tiers) - 1 and lo != 0:
            v.fail(f"{tp}.min_score", "must be 0: the last tier takes every customer the others do not")
        level = item.get("min_manager_level")
        if level is not None:
            v.one_of(level, f"{tp}.min_manager_level", level_ids, "ladder level")
        months = item.get("visit_months")
        if months is not None:
            v.number(months, f"{tp}.visit_months", lo=1, hi=60, integer=True)
        duties = tuple(v.text(d, f"{tp}.duties[{j}]")
                       for j, d in enumerate(v.seq(item.get("duties", []), f"{tp}.duties", min_len=0)))
        tiers.append(Tier(item["id"], item["zh"], item["en"], float(lo), level, months, duties))
    _unique(v, raw_tiers, f"{p}.tiers", "tier")
    tier_ids = [t.id for t in tiers]

    terms = []
    for i, item in enumerate(v.seq(c["score"], f"{p}.score")):
        sp = f"{p}.score[{i}]"
        v.mapping(item, sp, ("input", "weight", "full_at"))
        v.one_of(item["input"], f"{sp}.input", input_ids, "input")
        if item["input"] in [t.input for t in terms]:
            v.fail(f"{sp}.input", f"'{item['input']}' is scored twice")
        weight = v.number(item["weight"], f"{sp}.weight", lo=0)
        full = v.number(item["full_at"], f"{sp}.full_at", lo=0)
        if full <= 0:
            v.fail(f"{sp}.full_at", "must be above 0")
        terms.append(Term(item["input"], float(weight), float(full)))
    if sum(t.weight for t in terms) <= 0:
        v.fail(f"{p}.score", "the weights must have a positive sum")

    floors = []
    for i, item in enumerate(v.seq(c.get("floors", []), f"{p}.floors", min_len=0)):
        fp = f"{p}.floors[{i}]"
        v.mapping(item, fp, ("industries", "at_least"))
        for j, ind in enumerate(v.seq(item["industries"], f"{fp}.industries")):
            v.one_of(ind, f"{fp}.industries[{j}]", industry_ids,
                     "industry (declare it under customers.industries)")
        v.one_of(item["at_least"], f"{fp}.at_least", tier_ids, "tier")
        floors.append(Floor(tuple(item["industries"]), item["at_least"]))

    approval = None
    if c.get("approval") is not None:
        ap = f"{p}.approval"
        a = v.mapping(c["approval"], ap, ("at_or_above", "org_level", "role"))
        v.one_of(a["at_or_above"], f"{ap}.at_or_above", tier_ids, "tier")
        v.one_of(a["org_level"], f"{ap}.org_level", org_ids, "org level")
        v.one_of(a["role"], f"{ap}.role", APPROVAL_ROLES, "role")
        approval = Approval(a["at_or_above"], a["org_level"], a["role"])

    areas, default_area = [], None
    if c.get("workload") is not None:
        wp = f"{p}.workload"
        w = v.mapping(c["workload"], wp, ("areas",), ("default_area",))
        claimed: dict[str, str] = {}
        for i, item in enumerate(v.seq(w["areas"], f"{wp}.areas")):
            ap = f"{wp}.areas[{i}]"
            _named(v, item, ap, ("min", "max"), ("units",))
            lo = v.number(item["min"], f"{ap}.min", lo=0, hi=100_000, integer=True)
            hi = v.number(item["max"], f"{ap}.max", lo=1, hi=100_000, integer=True)
            if hi < lo:
                v.fail(f"{ap}.max", f"must be at least min ({lo})")
            units = []
            for j, code in enumerate(v.seq(item.get("units", []), f"{ap}.units", min_len=0)):
                v.text(code, f"{ap}.units[{j}]")
                if code in claimed:
                    v.fail(f"{ap}.units[{j}]", f"unit '{code}' is already in area '{claimed[code]}'")
                claimed[code] = item["id"]
                units.append(code)
            areas.append(Area(item["id"], item["zh"], item["en"], int(lo), int(hi), tuple(units)))
        _unique(v, w["areas"], f"{wp}.areas", "area")
        default_area = w.get("default_area")
        if default_area is not None:
            v.one_of(default_area, f"{wp}.default_area", [a.id for a in areas], "area")
        elif len(areas) == 1:
            default_area = areas[0].id

    classes, reassign_role = [], "supervisor"
    if c.get("leads") is not None:
        lp = f"{p}.leads"
        leads = v.mapping(c["leads"], lp, ("classes",), ("reassign_role",))
        for i, item in enumerate(v.seq(leads["classes"], f"{lp}.classes")):
            cp = f"{lp}.classes[{i}]"
            _named(v, item, cp, ("days",))
            classes.append(LeadClass(item["id"], item["zh"], item["en"],
                                     int(v.number(item["days"], f"{cp}.days", lo=1, hi=365, integer=True))))
        _unique(v, leads["classes"], f"{lp}.classes", "lead class")
        reassign_role = v.one_of(leads.get("reassign_role", "supervisor"), f"{lp}.reassign_role",
                                 APPROVAL_ROLES, "role")

    holding = None
    if c.get("holding_levels") is not None:
        holding = tuple(v.seq(c["holding_levels"], f"{p}.holding_levels"))
        for i, level in enumerate(holding):
            v.one_of(level, f"{p}.holding_levels[{i}]", level_ids, "ladder level")

    return CustomerPolicy(tuple(inputs), tuple(industries), tuple(tiers), tuple(terms), tuple(floors),
                          approval, tuple(areas), default_area, tuple(classes), reassign_role, holding)
