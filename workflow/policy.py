"""Load and validate policy files into frozen objects.

A policy file is YAML (see docs/policies.md). Validation refuses a bad file with a `PolicyError`
that names the file, the key path and the problem; nothing of a policy is written in Python code.
"""
from __future__ import annotations

import datetime as dt
import fractions
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .customer_policy import CustomerPolicy, section as _customers_section

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
PROMOTION_STEPS = ("qualification_review", "panel_scoring", "hr_approval")
ROLES = ("supervisor", "approver", "hr", "panel", "admin")   # a step's role; committees use COMMITTEE_ROLE
WEIGHT_COMPONENTS = ("supervisor", "panel", "annual_performance")
EFFECTIVE_WHEN = ("on_approval", "first_of_next_month")
SIGN_MODES = ("any", "all")
COMMITTEE_ROLE = "committee"   # the members of the policy's committee hold this role at a unit
COMMITTEE_STEPS = ("qualification_review", "hr_approval")   # the promotion steps a committee may decide
RATIO_KINDS = ("cap", "target")
NO_PANEL = "none"   # authority.<level>.panel_scoring: promotions to the level skip the panel
TIE_BREAK_KEYS = ("composite", "annual_performance", "months_at_grade", "applied_at")   # the default order
# `awards` (a policy may add it): the best `award` score of last year, higher first (Jilin: 得到省市级奖励者优先).
TIE_BREAK_OPTIONAL = ("awards",)


class PolicyError(ValueError):
    """A policy file is refused: `source` is the file, `path` the key path, `problem` what is wrong."""

    def __init__(self, source: str, path: str, problem: str):
        self.source, self.path, self.problem = source, path, problem
        super().__init__(f"{source}: {path or '(top)'}: {problem}")


@dataclass(frozen=True)
class Named:
    id: str
    zh: str
    en: str

    def label(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en


@dataclass(frozen=True)
class Level(Named):
    tiers: int = 1


@dataclass(frozen=True)
class Step:
    name: str
    role: str
    sign: str
    deadline_days: int | None
    escalate_after_days: int | None = None   # working days past the deadline before tick sends it up


@dataclass(frozen=True)
class Committee:
    """管理小组: the holders of the `committee` role at the unit a step is routed to decide it, for the target
    levels listed per step, signing as `sign` says; with `pass_ratio` (会签 by a share) the step passes when
    that share of the members approve and fails once it can no longer reach it."""
    name: Named
    sign: str
    pass_ratio: fractions.Fraction | None
    steps: dict[str, tuple[str, ...]]     # promotion step -> target levels it decides

    def decides(self, step: str, target_level: str | None) -> bool:
        return target_level in self.steps.get(step, ())

    def needed(self, members: int) -> int:
        """Approvals the step needs from `members` members."""
        if self.pass_ratio is None:
            return members if self.sign == "all" else min(1, members)
        return max(1, -(-self.pass_ratio.numerator * members // self.pass_ratio.denominator))


@dataclass(frozen=True)
class KindStep:
    """A step of a lifecycle case kind (probation, demotion, dismissal): who acts, at which org level."""
    state: str
    org_level: str
    role: str
    deadline_days: int | None


@dataclass(frozen=True)
class KindPolicy:
    """The policy of one lifecycle case kind."""
    kind: str
    steps: dict[str, KindStep]
    appeal_days: int = 7                  # the notice window, calendar days from entering `notice`
    months: int | None = None             # probation: its length after hired_on
    evaluation_lead_days: int = 7         # probation: tick opens the evaluation this many days ahead
    first_grade: str | None = None        # probation: the first regular grade on confirmation
    extend_max_months: int | None = None  # probation: the longest extension
    tier_after: str = "top"               # demotion: tier in the lower level: top, bottom or same


# Lifecycle kinds: the states whose assignees the policy names (org level and role).
KIND_STEPS = {"probation": ("in_probation", "hr_review"), "demotion": ("review", "hr_approval"),
              "dismissal": ("review", "hr_approval", "final_approval")}
SEVERITIES = ("minor", "major", "severe")
SANCTIONS = ("demotion", "standby", "dismissal")


@dataclass(frozen=True)
class Rule:
    """One eligibility rule: a type from workflow.rules.RULE_TYPES and its parameters."""
    type: str
    params: dict[str, Any]
    targets: tuple[str, ...] | None   # None: every target level

    def applies_to(self, level: str) -> bool:
        return self.targets is None or level in self.targets


@dataclass(frozen=True)
class ScoreKind:
    id: str
    min: float
    max: float
    pass_mark: float | None
    pass_fail: bool


@dataclass(frozen=True)
class Ratio:
    """A level's share of the managers in a round's scope: a hard `cap` or a `target` (dashboards only)."""
    kind: str
    share: float


# Absences that exempt from the annual review when they leave too few worked months (产假, 病假, 事假);
# any other absence (`other`) never does.
LEAVE_REASONS = ("maternity", "sick", "personal")


@dataclass(frozen=True)
class AnnualReview:
    """年度考核排名: the org level within which managers are ranked, the bottom share of each level that
    re-competes (percent), and the worked months under which absence exempts or demotes."""
    ranking_scope: str
    recompete: dict[str, float]
    min_worked_months: float = 2
    exempt_reasons: tuple[str, ...] = LEAVE_REASONS
    tier_up: float | None = None       # 级档浮动: the top share of a level moves up one tier within it
    tier_down: float | None = None     # ... and the bottom share (re-competitors aside) one tier down


@dataclass(frozen=True)
class Policy:
    id: str
    version: str
    name: Named
    org_levels: tuple[Named, ...]
    education: tuple[Named, ...]
    ladder: tuple[Level, ...]
    steps: dict[str, Step]
    authority: dict[str, dict[str, str]]
    exceptional_levels_up: int
    eligibility: tuple[Rule, ...]
    score_kinds: dict[str, ScoreKind]
    weights: dict[str, float]
    panel_min_size: int
    trim_at_least: int | None
    effective_when: str
    holidays: frozenset[dt.date]
    hash: str
    document: dict[str, Any] = field(repr=False, compare=False)
    kinds: dict[str, KindPolicy] = field(default_factory=dict)
    publicity_days: int | None = None   # 公示: working days between HR approval and taking effect
    appeal_days: int | None = None      # 申诉: calendar days in which a rejected promotion may be appealed
    sanctions: dict[str, tuple[str, ...]] = field(default_factory=dict)   # misconduct severity -> allowed
    ratios: dict[str, Ratio] = field(default_factory=dict)        # level -> its cap or target share
    round_min_composite: float | None = None                      # rounds: nobody below it is promoted
    tie_break: tuple[str, ...] = TIE_BREAK_KEYS                   # rounds: the ranking order
    annual_review: AnnualReview | None = None                     # None: the policy runs no annual review
    # 级别津贴: the monthly level allowance per level and tier; a level left out has none given
    allowances: dict[str, dict[int, float]] = field(default_factory=dict)
    committee: Committee | None = None                            # 管理小组 deciding some promotion steps
    customers: CustomerPolicy | None = None                       # 客户分级, portfolios, leads (optional)

    def allowance(self, grade: str | None) -> float | None:
        """The monthly level allowance of a grade (`LEVEL-TIER`), or None where the policy names none."""
        if not grade:
            return None
        level, _sep, tier = grade.rpartition("-")
        per_tier = self.allowances.get(level)
        return per_tier.get(int(tier)) if per_tier is not None and tier.isdigit() else None

    def cap(self, level: str) -> float | None:
        """The level's hard cap (a share of headcount), or None when it has none."""
        ratio = self.ratios.get(level)
        return ratio.share if ratio is not None and ratio.kind == "cap" else None

    def kind(self, kind: str) -> KindPolicy:
        """The policy of a lifecycle kind; a Refused-like KeyError when the policy has no such section."""
        if kind not in self.kinds:
            raise KeyError(kind)
        return self.kinds[kind]

    @property
    def label(self) -> str:
        return f"{self.id} {self.version}"

    # --- look-ups -----------------------------------------------------------------------------------
    @property
    def org_level_ids(self) -> tuple[str, ...]:
        return tuple(o.id for o in self.org_levels)

    def org_level_index(self, level: str) -> int:
        """0 for the top org level."""
        return self.org_level_ids.index(level)

    @property
    def level_ids(self) -> tuple[str, ...]:
        return tuple(lv.id for lv in self.ladder)

    def level(self, level_id: str) -> Level:
        for lv in self.ladder:
            if lv.id == level_id:
                return lv
        raise KeyError(level_id)

    def level_index(self, level_id: str) -> int:
        return self.level_ids.index(level_id)

    def education_index(self, edu: str | None) -> int:
        ids = [e.id for e in self.education]
        return ids.index(edu) if edu in ids else -1

    def parse_grade(self, text: str) -> tuple[str, int]:
        """`LEVEL` (first tier) or `LEVEL-TIER` -> (level, tier); ValueError naming what is wrong."""
        text = (text or "").strip()
        level, sep, tier = text.rpartition("-") if "-" in text else (text, "", "")
        if not sep:
            level, tier_no = text, 1
        else:
            if not tier.isdigit():
                raise ValueError(f"'{text}' is not LEVEL or LEVEL-TIER")
            tier_no = int(tier)
        if level not in self.level_ids:
            raise ValueError(f"unknown level '{level}' (levels: {', '.join(self.level_ids)})")
        tiers = self.level(level).tiers
        if not 1 <= tier_no <= tiers:
            raise ValueError(f"level '{level}' has tiers 1 to {tiers}, not {tier_no}")
        return level, tier_no

    def next_grades(self, level: str, tier: int) -> list[tuple[str, int]]:
        """The normal (non-exceptional) promotions from a grade: next tier, or first tier of next level."""
        if tier < self.level(level).tiers:
            return [(level, tier + 1)]
        i = self.level_index(level)
        return [(self.ladder[i + 1].id, 1)] if i + 1 < len(self.ladder) else []

    def step_org_level(self, target_level: str, step: str) -> str:
        return self.authority[target_level][step]

    def committee_for(self, step: str, target_level: str | None) -> Committee | None:
        """The committee deciding a promotion step for a target level, if the policy gives it one."""
        return self.committee if self.committee and self.committee.decides(step, target_level) else None

    def step_role(self, step: str, target_level: str | None) -> str:
        """The role whose holders act on a promotion step: the committee's where it decides the step."""
        return COMMITTEE_ROLE if self.committee_for(step, target_level) else self.steps[step].role

    def has_panel(self, target_level: str) -> bool:
        """Does a promotion to the level pass panel scoring? (`panel_scoring: none` skips it.)"""
        return self.authority[target_level]["panel_scoring"] != NO_PANEL

    def rules_for(self, target_level: str) -> list[Rule]:
        return [r for r in self.eligibility if r.applies_to(target_level)]

    def version_info(self) -> dict[str, str]:
        return {"label": self.label, "hash": self.hash}

    def to_json(self) -> dict[str, Any]:
        """The shape `GET /api/v1/policy` answers."""
        return {
            "id": self.id, "version": self.version, "label": self.label, "hash": self.hash,
            "name": {"zh": self.name.zh, "en": self.name.en},
            "org_levels": [{"id": o.id, "zh": o.zh, "en": o.en} for o in self.org_levels],
            "education": [{"id": e.id, "zh": e.zh, "en": e.en} for e in self.education],
            "ladder": [{"id": lv.id, "name": {"zh": lv.zh, "en": lv.en}, "tiers": lv.tiers}
                       for lv in self.ladder],
            "steps": {s.name: {"role": s.role, "sign": s.sign, "deadline_days": s.deadline_days,
                               "escalate_after_days": s.escalate_after_days}
                      for s in self.steps.values()},
            "authority": self.authority,
            "exceptional": {"levels_up": self.exceptional_levels_up},
            "eligibility": [{"rule": r.type, **r.params, "targets": list(r.targets) if r.targets else None}
                            for r in self.eligibility],
            "weights": self.weights,
            "panel_min_size": self.panel_min_size,
            "trim": {"drop_extremes_when_at_least": self.trim_at_least} if self.trim_at_least else None,
            "effective": {"when": self.effective_when},
            "ratios": {lv: {r.kind: r.share} for lv, r in self.ratios.items()},
            "rounds": {"min_composite": self.round_min_composite, "tie_break": list(self.tie_break)},
            "annual_review": None if self.annual_review is None else {
                "ranking_scope": self.annual_review.ranking_scope, "recompete": self.annual_review.recompete,
                "min_worked_months": self.annual_review.min_worked_months,
                "exempt_reasons": list(self.annual_review.exempt_reasons),
                **({"tier_moves": {"up": self.annual_review.tier_up, "down": self.annual_review.tier_down}}
                   if self.annual_review.tier_up or self.annual_review.tier_down else {})},
            "appeal": None if self.appeal_days is None else {"days": self.appeal_days},
            **({"allowances": {lv: {str(t): a for t, a in tiers.items()} for lv, tiers in self.allowances.items()}}
               if self.allowances else {}),
            "committee": None if self.committee is None else {
                "name": {"zh": self.committee.name.zh, "en": self.committee.name.en}, "role": COMMITTEE_ROLE,
                "sign": self.committee.sign,
                "pass_ratio": None if self.committee.pass_ratio is None else str(self.committee.pass_ratio),
                "steps": {k: list(v) for k, v in self.committee.steps.items()}},
            "customers": None if self.customers is None else self.customers.to_json(),
        }


# --- loading ---------------------------------------------------------------------------------------

def resolve(name_or_path: str) -> Path:
    """A policy name (a file in policies/) or a path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    for ext in (".yaml", ".yml"):
        candidate = POLICY_DIR / f"{name_or_path}{ext}"
        if candidate.exists():
            return candidate
    known = ", ".join(sorted(f.stem for f in POLICY_DIR.glob("*.y*ml")))
    raise PolicyError(str(name_or_path), "", f"no such policy file or name (shipped: {known})")


def load_file(name_or_path: str) -> Policy:
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), "", f"cannot read the file: {exc.strerror}") from exc
    return loads(text, str(path))


def loads(text: str, source: str = "<policy>") -> Policy:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyError(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    return from_document(doc, source)


_cache: dict[str, Policy] = {}


def from_stored(content: str) -> Policy:
    """A policy from its stored canonical JSON (a case's policy version), cached by content."""
    key = hashlib.sha256(content.encode()).hexdigest()
    if key not in _cache:
        _cache[key] = from_document(json.loads(content), "<stored policy>")
    return _cache[key]


def canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


class _V:
    """Walks a document, keeping the key path for error messages."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, problem: str):
        raise PolicyError(self.source, path, problem)

    def mapping(self, value, path, required=(), optional=()):
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {type(value).__name__}")
        for key in required:
            if key not in value:
                self.fail(_join(path, key), "is required")
        unknown = set(value) - set(required) - set(optional)
        if unknown:
            self.fail(_join(path, sorted(map(str, unknown))[0]),
                      f"unknown key (allowed: {', '.join(list(required) + list(optional))})")
        return value

    def seq(self, value, path, min_len=1):
        if not isinstance(value, list):
            self.fail(path, f"must be a list, not {type(value).__name__}")
        if len(value) < min_len:
            self.fail(path, f"must have at least {min_len} item(s)")
        return value

    def text(self, value, path):
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty text")
        return value

    def ident(self, value, path):
        self.text(value, path)
        if not value.replace("_", "").isalnum() or not value.isascii() or "-" in value:
            self.fail(path, f"'{value}' must be an id of ASCII letters, digits and _")
        return value

    def number(self, value, path, lo=None, hi=None, integer=False):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.fail(path, f"must be {'a whole number' if integer else 'a number'}, not {value!r}")
        if lo is not None and value < lo:
            self.fail(path, f"must be at least {lo}, not {value}")
        if hi is not None and value > hi:
            self.fail(path, f"must be at most {hi}, not {value}")
        return value

    def one_of(self, value, path, choices, what="value"):
        if value not in choices:
            self.fail(path, f"unknown {what} {value!r} (expected one of: {', '.join(map(str, choices))})")
        return value

    def named_list(self, value, path, extra_required=(), extra_optional=()):
        items, seen = [], set()
        for i, item in enumerate(self.seq(value, path)):
            p = f"{path}[{i}]"
            self.mapping(item, p, required=("id", "zh", "en", *extra_required), optional=extra_optional)
            self.ident(item["id"], f"{p}.id")
            self.text(item["zh"], f"{p}.zh")
            self.text(item["en"], f"{p}.en")
            if item["id"] in seen:
                self.fail(f"{p}.id", f"duplicate id '{item['id']}'")
            seen.add(item["id"])
            items.append(item)
        return items


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


TOP_KEYS_REQUIRED = ("policy", "version", "name", "org_levels", "education", "ladder", "steps", "authority",
                     "eligibility", "scoring")
TOP_KEYS_OPTIONAL = ("exceptional", "scores", "effective", "calendar", "probation", "demotion", "dismissal",
                     "misconduct", "publicity", "ratios", "rounds", "annual_review", "appeal", "allowances",
                     "committee", "customers")


def _customer_tier_ids(section: Any) -> list[str] | None:
    """The tier ids the customers section declares (None without one), for the eligibility rules that name
    tiers; the section itself is validated later."""
    if not isinstance(section, dict):
        return None
    tiers = section.get("tiers")
    return [t["id"] for t in tiers if isinstance(t, dict) and "id" in t] if isinstance(tiers, list) else []


def from_document(doc: Any, source: str) -> Policy:
    # Imported here: rules imports this module for the Policy type.
    from .rules import RULE_TYPES

    v = _V(source)
    v.mapping(doc, "", TOP_KEYS_REQUIRED, TOP_KEYS_OPTIONAL)
    pid = v.ident(doc["policy"], "policy")
    version = str(doc["version"]).strip() or v.fail("version", "must not be empty")
    name = v.mapping(doc["name"], "name", ("zh", "en"))
    org_levels = v.named_list(doc["org_levels"], "org_levels")
    education = v.named_list(doc["education"], "education")
    ladder = v.named_list(doc["ladder"], "ladder", extra_required=("tiers",))
    for i, lv in enumerate(ladder):
        v.number(lv["tiers"], f"ladder[{i}].tiers", lo=1, hi=20, integer=True)
    level_ids = [lv["id"] for lv in ladder]
    org_ids = [o["id"] for o in org_levels]
    if len(ladder) < 2:
        v.fail("ladder", "must have at least 2 levels")

    steps = {}
    v.mapping(doc["steps"], "steps", PROMOTION_STEPS)
    for sname in PROMOTION_STEPS:
        p = f"steps.{sname}"
        s = v.mapping(doc["steps"][sname], p, ("role",), ("sign", "deadline_days", "escalate_after_days"))
        v.one_of(s["role"], f"{p}.role", ROLES, "role")
        v.one_of(s.get("sign", "any"), f"{p}.sign", SIGN_MODES, "sign mode")
        if s.get("deadline_days") is not None:
            v.number(s["deadline_days"], f"{p}.deadline_days", lo=1, hi=365, integer=True)
        if s.get("escalate_after_days") is not None:
            v.number(s["escalate_after_days"], f"{p}.escalate_after_days", lo=0, hi=365, integer=True)
            if s.get("deadline_days") is None:
                v.fail(f"{p}.escalate_after_days", "needs deadline_days on the same step")
        steps[sname] = Step(sname, s["role"], s.get("sign", "any"), s.get("deadline_days"),
                            s.get("escalate_after_days"))

    authority = {}
    v.mapping(doc["authority"], "authority", required=level_ids)
    for lid in level_ids:
        p = f"authority.{lid}"
        row = v.mapping(doc["authority"][lid], p, PROMOTION_STEPS)
        for sname in PROMOTION_STEPS:
            # panel_scoring may be none: e.g. Quzhou's 试用期 → 初级, arranged by the district without a panel
            v.one_of(row[sname], f"{p}.{sname}", org_ids + ([NO_PANEL] if sname == "panel_scoring" else []),
                     "org level")
        authority[lid] = {s: row[s] for s in PROMOTION_STEPS}

    exc = v.mapping(doc.get("exceptional", {"levels_up": 1}), "exceptional", ("levels_up",))
    levels_up = v.number(exc["levels_up"], "exceptional.levels_up", lo=1, hi=len(org_ids), integer=True)

    score_kinds = {}
    scores_doc = doc.get("scores", {"performance": {"min": 0, "max": 100},
                                    "skill_test": {"min": 0, "max": 100, "pass_mark": 60, "pass_fail": True}})
    v.mapping(scores_doc, "scores", optional=tuple(scores_doc) if isinstance(scores_doc, dict) else ())
    for kind, spec in scores_doc.items():
        p = f"scores.{kind}"
        v.ident(kind, p)
        v.mapping(spec, p, ("min", "max"), ("pass_mark", "pass_fail"))
        lo = v.number(spec["min"], f"{p}.min")
        hi = v.number(spec["max"], f"{p}.max")
        if hi <= lo:
            v.fail(f"{p}.max", f"must be greater than min ({lo})")
        if spec.get("pass_mark") is not None:
            v.number(spec["pass_mark"], f"{p}.pass_mark", lo=lo, hi=hi)
        if not isinstance(spec.get("pass_fail", False), bool):
            v.fail(f"{p}.pass_fail", "must be true or false")
        score_kinds[kind] = ScoreKind(kind, lo, hi, spec.get("pass_mark"), spec.get("pass_fail", False))
    for needed in ("performance", "skill_test"):
        if needed not in score_kinds:
            v.fail("scores", f"must define the score kind '{needed}'")

    rules = []
    for i, item in enumerate(v.seq(doc["eligibility"], "eligibility", min_len=0)):
        p = f"eligibility[{i}]"
        if not isinstance(item, dict) or "rule" not in item:
            v.fail(p, "must be a mapping with a 'rule' key")
        rtype = v.one_of(item["rule"], f"{p}.rule", sorted(RULE_TYPES), "rule type")
        rtype_spec = RULE_TYPES[rtype]
        params = {k: val for k, val in item.items() if k not in ("rule", "targets")}
        v.mapping(params, p, rtype_spec.required, rtype_spec.optional)
        rtype_spec.validate(v, p, params, {"education": [e["id"] for e in education],
                                           "org_levels": org_ids, "score_kinds": score_kinds,
                                           "customer_tiers": _customer_tier_ids(doc.get("customers"))})
        targets = None
        if "targets" in item:
            targets = tuple(v.seq(item["targets"], f"{p}.targets"))
            for j, t in enumerate(targets):
                v.one_of(t, f"{p}.targets[{j}]", level_ids, "level")
        rules.append(Rule(rtype, params, targets))

    scoring = v.mapping(doc["scoring"], "scoring", ("weights",), ("panel_min_size", "trim"))
    weights = v.mapping(scoring["weights"], "scoring.weights", optional=WEIGHT_COMPONENTS)
    for k, w in weights.items():
        v.number(w, f"scoring.weights.{k}", lo=0)
    if sum(weights.values()) <= 0:
        v.fail("scoring.weights", "must have a positive sum")
    panel_min = v.number(scoring.get("panel_min_size", 3), "scoring.panel_min_size", lo=1, hi=50, integer=True)
    trim_at_least = None
    if scoring.get("trim") is not None:
        trim = v.mapping(scoring["trim"], "scoring.trim", ("drop_extremes_when_at_least",))
        trim_at_least = v.number(trim["drop_extremes_when_at_least"],
                                 "scoring.trim.drop_extremes_when_at_least", lo=3, integer=True)

    eff = v.mapping(doc.get("effective", {"when": "on_approval"}), "effective", ("when",))
    v.one_of(eff["when"], "effective.when", EFFECTIVE_WHEN)

    cal = v.mapping(doc.get("calendar", {}), "calendar", optional=("holidays",))
    holidays = set()
    for i, d in enumerate(v.seq(cal.get("holidays", []), "calendar.holidays", min_len=0)):
        try:
            holidays.add(d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)))
        except ValueError:
            v.fail(f"calendar.holidays[{i}]", f"'{d}' is not a date YYYY-MM-DD")

    kinds = {k: _kind_policy(v, doc[k], k, org_ids, ladder) for k in KIND_STEPS if k in doc}
    publicity_days = None
    if doc.get("publicity") is not None:
        pub = v.mapping(doc["publicity"], "publicity", ("working_days",))
        publicity_days = v.number(pub["working_days"], "publicity.working_days", lo=1, hi=30, integer=True)
    appeal_days = None
    if doc.get("appeal") is not None:
        appeal = v.mapping(doc["appeal"], "appeal", ("days",))
        appeal_days = v.number(appeal["days"], "appeal.days", lo=1, hi=90, integer=True)
    sanctions = {}
    if "misconduct" in doc:
        v.mapping(doc["misconduct"], "misconduct", SEVERITIES)
        for sev in SEVERITIES:
            allowed = v.seq(doc["misconduct"][sev], f"misconduct.{sev}")
            for i, sanction in enumerate(allowed):
                v.one_of(sanction, f"misconduct.{sev}[{i}]", SANCTIONS, "sanction")
            sanctions[sev] = tuple(allowed)

    ratios, min_composite, tie_break = _rounds_section(v, doc, level_ids, score_kinds)
    annual_review = _annual_review_section(v, doc, org_ids, level_ids)
    allowances = _allowances_section(v, doc, ladder)
    committee = _committee_section(v, doc.get("committee"), level_ids)
    customers = _customers_section(v, doc.get("customers"), level_ids, org_ids)

    canonical_doc = json.loads(canonical(doc))
    return Policy(
        id=pid, version=version, name=Named(pid, v.text(name["zh"], "name.zh"), v.text(name["en"], "name.en")),
        org_levels=tuple(Named(o["id"], o["zh"], o["en"]) for o in org_levels),
        education=tuple(Named(e["id"], e["zh"], e["en"]) for e in education),
        ladder=tuple(Level(lv["id"], lv["zh"], lv["en"], lv["tiers"]) for lv in ladder),
        steps=steps, authority=authority, exceptional_levels_up=levels_up, eligibility=tuple(rules),
        score_kinds=score_kinds, weights={k: float(w) for k, w in weights.items()}, panel_min_size=panel_min,
        trim_at_least=trim_at_least, effective_when=eff["when"], holidays=frozenset(holidays),
        hash=hashlib.sha256(canonical(canonical_doc).encode()).hexdigest(), document=canonical_doc,
        kinds=kinds, sanctions=sanctions, publicity_days=publicity_days, appeal_days=appeal_days, ratios=ratios,
        round_min_composite=min_composite, tie_break=tie_break,
        annual_review=annual_review, committee=committee, allowances=allowances, customers=customers,
    )


def _kind_policy(v: _V, section: Any, kind: str, org_ids: list[str], ladder: list[dict]) -> KindPolicy:
    extra = {"probation": ("months", "evaluation_lead_days", "first_grade", "extend_max_months"),
             "demotion": ("appeal_days", "tier_after"), "dismissal": ("appeal_days",)}[kind]
    v.mapping(section, kind, ("steps",), extra)
    v.mapping(section["steps"], f"{kind}.steps", KIND_STEPS[kind])
    steps = {}
    for state in KIND_STEPS[kind]:
        p = f"{kind}.steps.{state}"
        s = v.mapping(section["steps"][state], p, ("org_level", "role"), ("deadline_days",))
        v.one_of(s["org_level"], f"{p}.org_level", org_ids, "org level")
        v.one_of(s["role"], f"{p}.role", ROLES, "role")
        if s.get("deadline_days") is not None:
            v.number(s["deadline_days"], f"{p}.deadline_days", lo=1, hi=365, integer=True)
        steps[state] = KindStep(state, s["org_level"], s["role"], s.get("deadline_days"))
    out: dict[str, Any] = {"kind": kind, "steps": steps}
    if "appeal_days" in section:
        out["appeal_days"] = v.number(section["appeal_days"], f"{kind}.appeal_days", lo=1, hi=90, integer=True)
    if kind == "probation":
        for key in ("months",):
            if key not in section:
                v.fail(f"{kind}.{key}", "is required")
        out["months"] = v.number(section["months"], "probation.months", lo=1, hi=36, integer=True)
        if "evaluation_lead_days" in section:
            out["evaluation_lead_days"] = v.number(section["evaluation_lead_days"],
                                                   "probation.evaluation_lead_days", lo=0, hi=90, integer=True)
        if "extend_max_months" in section:
            out["extend_max_months"] = v.number(section["extend_max_months"], "probation.extend_max_months",
                                                lo=1, hi=24, integer=True)
        first = v.text(section.get("first_grade") or v.fail("probation.first_grade", "is required"),
                       "probation.first_grade")
        level, _, tier = first.rpartition("-") if "-" in first else (first, "", "1")
        known = {lv["id"]: lv["tiers"] for lv in ladder}
        if level not in known or not tier.isdigit() or not 1 <= int(tier) <= known[level]:
            v.fail("probation.first_grade", f"'{first}' is not a grade of the ladder (LEVEL or LEVEL-TIER)")
        out["first_grade"] = f"{level}-{int(tier)}"
    if kind == "demotion" and "tier_after" in section:
        out["tier_after"] = v.one_of(section["tier_after"], "demotion.tier_after", ("top", "bottom", "same"))
    return KindPolicy(**out)


def _rounds_section(v: _V, doc: dict, level_ids: list[str],
                    score_kinds: dict[str, ScoreKind]) -> tuple[dict[str, Ratio], float | None, tuple]:
    """`ratios` (per level: a cap or a target share of headcount) and `rounds` (the minimum composite and
    the tie-break of a round's ranking); both optional."""
    ratios = {}
    section = v.mapping(doc.get("ratios", {}), "ratios", optional=level_ids)
    for lv, spec in section.items():
        p = f"ratios.{lv}"
        v.mapping(spec, p, optional=RATIO_KINDS)
        if len(spec) != 1:
            v.fail(p, "must give exactly one of cap (a hard limit) or target (shown only)")
        (kind, share), = spec.items()
        ratios[lv] = Ratio(kind, float(v.number(share, f"{p}.{kind}", lo=0, hi=1)))
    total = sum(r.share for r in ratios.values())
    if total > 1 + 1e-9:
        v.fail("ratios", f"the shares add up to {total:g}, more than 1")

    rounds = v.mapping(doc.get("rounds", {}), "rounds", optional=("min_composite", "tie_break"))
    min_composite = rounds.get("min_composite")
    if min_composite is not None:
        min_composite = float(v.number(min_composite, "rounds.min_composite", lo=0, hi=100))
    tie_break = tuple(v.seq(rounds.get("tie_break", list(TIE_BREAK_KEYS)), "rounds.tie_break"))
    for i, key in enumerate(tie_break):
        v.one_of(key, f"rounds.tie_break[{i}]", TIE_BREAK_KEYS + TIE_BREAK_OPTIONAL, "tie-break key")
        if key == "awards" and "award" not in score_kinds:
            v.fail(f"rounds.tie_break[{i}]", "awards ranks by the 'award' score: add it under `scores`")
        if key in tie_break[:i]:
            v.fail(f"rounds.tie_break[{i}]", f"'{key}' is listed twice")
    if tie_break[0] != "composite":
        v.fail("rounds.tie_break[0]", "must be composite: a round ranks by the composite score first")
    return ratios, min_composite, tie_break


def _annual_review_section(v: _V, doc: dict, org_ids: list[str], level_ids: list[str]) -> AnnualReview | None:
    """`annual_review` (optional): the ranking scope (an org level), the bottom percent of each level that
    re-competes, the worked months under which absence counts, and the leave reasons that exempt."""
    if "annual_review" not in doc:
        return None
    p = "annual_review"
    section = v.mapping(doc[p], p, ("ranking_scope",), ("recompete", "min_worked_months", "exempt_reasons",
                                                        "tier_moves"))
    scope = v.one_of(section["ranking_scope"], f"{p}.ranking_scope", org_ids, "org level")
    recompete = {}
    for lv, percent in v.mapping(section.get("recompete", {}), f"{p}.recompete", optional=level_ids).items():
        if lv == level_ids[0]:
            v.fail(f"{p}.recompete.{lv}", "is the lowest level: nobody can be demoted from it, so it cannot "
                                          "re-compete")
        recompete[lv] = float(v.number(percent, f"{p}.recompete.{lv}", lo=0, hi=100))
    months = v.number(section.get("min_worked_months", 2), f"{p}.min_worked_months", lo=0, hi=12)
    reasons = v.seq(section.get("exempt_reasons", list(LEAVE_REASONS)), f"{p}.exempt_reasons", min_len=0)
    for i, reason in enumerate(reasons):
        v.one_of(reason, f"{p}.exempt_reasons[{i}]", LEAVE_REASONS, "leave reason")
        if reason in reasons[:i]:
            v.fail(f"{p}.exempt_reasons[{i}]", f"'{reason}' is listed twice")
    up = down = None
    if section.get("tier_moves") is not None:
        moves = v.mapping(section["tier_moves"], f"{p}.tier_moves", (), ("up", "down"))
        up, down = (None if moves.get(k) is None else float(v.number(moves[k], f"{p}.tier_moves.{k}", lo=0, hi=100))
                    for k in ("up", "down"))
        if (up or 0) + (down or 0) > 100:
            v.fail(f"{p}.tier_moves", f"up {up:g}% and down {down:g}% add up to more than 100%")
    return AnnualReview(scope, recompete, months, tuple(reasons), up, down)


def _ratio(v: _V, value: Any, path: str) -> fractions.Fraction:
    """A share above 0 and at most 1, written as a fraction ("2/3") or a number (0.67)."""
    try:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError
        ratio = fractions.Fraction(str(value).strip()).limit_denominator(1000)
    except (ValueError, ZeroDivisionError):
        v.fail(path, f"must be a share such as 2/3 or 0.67, not {value!r}")
    if not 0 < ratio <= 1:
        v.fail(path, f"must be above 0 and at most 1, not {value}")
    return ratio


def _committee_section(v: _V, doc: Any, level_ids: list[str]) -> Committee | None:
    """`committee`: 管理小组, the holders of the committee role at the routed unit, deciding listed steps."""
    if doc is None:
        return None
    c = v.mapping(doc, "committee", ("name", "steps"), ("sign", "pass_ratio"))
    name = v.mapping(c["name"], "committee.name", ("zh", "en"))
    sign = v.one_of(c.get("sign", "all"), "committee.sign", SIGN_MODES, "sign mode")
    ratio = None
    if c.get("pass_ratio") is not None:
        if sign != "all":
            v.fail("committee.pass_ratio", "needs sign: all (会签); with sign: any one member decides")
        ratio = _ratio(v, c["pass_ratio"], "committee.pass_ratio")
    steps = {}
    v.mapping(c["steps"], "committee.steps", optional=COMMITTEE_STEPS)
    if not c["steps"]:
        v.fail("committee.steps", f"must name at least one of: {', '.join(COMMITTEE_STEPS)}")
    for step, levels in c["steps"].items():
        p = f"committee.steps.{step}"
        for i, level in enumerate(v.seq(levels, p)):
            v.one_of(level, f"{p}[{i}]", level_ids, "ladder level")
        if len(set(levels)) != len(levels):
            v.fail(p, "names a level twice")
        steps[step] = tuple(levels)
    return Committee(Named("committee", v.text(name["zh"], "committee.name.zh"),
                           v.text(name["en"], "committee.name.en")), sign, ratio, steps)


def _allowances_section(v: _V, doc: dict, ladder: list[dict]) -> dict[str, dict[int, float]]:
    """`allowances: {LEVEL: AMOUNT | {TIER: AMOUNT}}`: the monthly level allowance (级别津贴), one amount for
    every tier of the level or one per tier (every tier named); levels left out have none given."""
    if doc.get("allowances") is None:
        return {}
    tiers_of = {lv["id"]: lv["tiers"] for lv in ladder}
    section = v.mapping(doc["allowances"], "allowances", optional=tuple(tiers_of))
    out: dict[str, dict[int, float]] = {}
    for level, spec in section.items():
        p = f"allowances.{level}"
        if isinstance(spec, dict):
            names = tuple(str(t) for t in range(1, tiers_of[level] + 1))
            given = v.mapping({str(k): val for k, val in spec.items()}, p, required=names)
            out[level] = {int(t): float(v.number(given[t], f"{p}.{t}", lo=0, hi=10_000_000)) for t in names}
        else:
            amount = float(v.number(spec, p, lo=0, hi=10_000_000))
            out[level] = {t: amount for t in range(1, tiers_of[level] + 1)}
    return out
