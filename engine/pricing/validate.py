"""Validation of a RuleSet before it is compiled or published.

``validate`` collects every problem at once, in rule-file order (the field order of the
``loyalty.v1.RuleSet`` message), as :class:`Violation` rows whose ``field`` is the path in the
rule file (proto field names, ``[i]`` indexes, the reward's oneof member name). It never raises
on RuleSet content: rule files are user input. ``check`` raises :class:`RuleSetInvalid`.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from google.protobuf.message import Message

from engine.errors import InvalidInput
from engine.errors import Violation as Violation  # re-exported: violations are part of this API
from engine.pricing.catalogue import Catalogue
from engine.pricing.constants import (
    BPS,
    KIND_BY_FIELD,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    Phase,
    phase_of,
)
from engine.pricing.overlap import CatalogueIndex, quoted, structural_overlap
from loyalty.v1 import rules_pb2
from loyalty.v1.rules_pb2 import RuleSet

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
MAX_TIERS = 64
MAX_SEGMENTS = 64
MAX_CHANNELS = 64
MAX_EXTRA_BPS = 1_000_000
MAX_MULTIPLIER_BPS = 1_000_000  # tier earn multiplier: x100 at most (int64 headroom)
MAX_MINOR = 10**12  # any money amount in a rule, minor units (int64 headroom in the kernels)
MAX_COUNT = 10**9  # any quantity, use count or points figure in a rule
MAX_POINTS_PER_UNIT = 10**6
# Points' pending days and expiry months: the dates they give must stay inside what a datetime
# holds (a commit computes them; beyond, every commit that earns points would fail).
MAX_PENDING_DAYS = 3_650  # ten years
MAX_EXPIRY_MONTHS = 1_200  # a hundred years
MAX_NAME_CHARS = MAX_ID_CHARS  # names, product-set entries, stores, channels, groups
MAX_DESCRIPTION_CHARS = MAX_TEXT_CHARS
REWARDS = tuple(KIND_BY_FIELD)
_MODES = {0, 1, 2}
_ACTIVATIONS = {0, 1}
_PERIODS = {0, 1, 2, 3}
_MIN_TS, _MAX_TS = -62_135_596_800, 253_402_300_799  # 0001-01-01 .. 9999-12-31 UTC


class RuleSetInvalid(InvalidInput):
    """The rule set has violations (paths in the rule file); ``str`` lists them, one per line."""

    def __init__(self, violations: list[Violation] | tuple[Violation, ...]) -> None:
        super().__init__(violations, message="\n".join(str(v) for v in violations))


def validate(rules: RuleSet, catalogue: Catalogue | None = None) -> list[Violation]:
    """Every problem of ``rules`` (and of its bundles against ``catalogue``), in file order."""
    v = _Collector(catalogue)
    _check_header(v, rules)
    if rules.HasField("points"):
        _check_points(v, rules.points)
    _check_tiers(v, rules.tiers)
    v.tiers, v.segments = {t.id for t in rules.tiers}, {s.id for s in rules.segments}
    v.has_points = rules.HasField("points")
    for i, offer in enumerate(rules.offers):
        _check_offer(v, f"offers[{i}]", offer)
    _check_segments(v, rules.segments)
    return v.out


def check(rules: RuleSet, catalogue: Catalogue | None = None) -> None:
    """Raise :class:`RuleSetInvalid` listing every violation, if there is any."""
    violations = validate(rules, catalogue)
    if violations:
        raise RuleSetInvalid(violations)


# --- helpers -------------------------------------------------------------------------------


class _Collector:
    def __init__(self, catalogue: Catalogue | None) -> None:
        self.out: list[Violation] = []
        self.catalogue = catalogue
        self._index: CatalogueIndex | None = None
        # shared across offers:
        self.tiers: set[str] = set()
        self.segments: set[str] = set()
        self.ids: dict[str, str] = {}  # offer id -> path of its first use
        self.channels: set[str] = set()
        self.channels_reported = False
        self.groups: dict[str, tuple[Phase, str]] = {}  # group -> (phase, first member's id)
        self.has_points = False

    def add(self, field: str, description: str) -> None:
        self.out.append(Violation(field, description))

    def range(self, field: str, value: int, lo: int, hi: int | None = None) -> bool:
        """Check ``lo <= value <= hi``; report and return False when outside."""
        if value < lo:
            if lo == 0:
                self.add(field, f"must not be negative (got {value})")
            elif lo == 1:
                self.add(field, f"must be greater than 0 (got {value})")
            else:
                self.add(field, f"must be at least {lo} (got {value})")
            return False
        if hi is not None and value > hi:
            self.add(field, f"must be at most {hi} (got {value})")
            return False
        return True

    def text(self, field: str, value: str, limit: int = MAX_NAME_CHARS) -> None:
        """A name or free text of at most ``limit`` characters."""
        if len(value) > limit:
            self.add(field, f"longer than {limit:,} characters (got {len(value):,})")

    def money(self, field: str, value: int, lo: int = 0) -> bool:
        return self.range(field, value, lo, MAX_MINOR)

    def count(self, field: str, value: int, lo: int = 0) -> bool:
        return self.range(field, value, lo, MAX_COUNT)

    def ident(self, field: str, value: str, seen: dict[str, str], owner: str) -> None:
        """A non-empty id of the allowed characters, unique among ``seen`` (id -> owner path)."""
        if not value:
            self.add(field, "must not be empty")
        elif not ID_PATTERN.fullmatch(value):
            self.add(field, f"must be 1-64 of A-Z a-z 0-9 . _ : - (got {quoted(value)})")
        elif value in seen:
            self.add(field, f"duplicate id {quoted(value)} (also {seen[value]})")
        else:
            seen[value] = owner

    def index(self) -> CatalogueIndex:
        if self._index is None:
            assert self.catalogue is not None
            self._index = CatalogueIndex(self.catalogue)
        return self._index


# --- rule set header, points programme, tiers, segments -------------------------------------


def _check_header(v: _Collector, rules: RuleSet) -> None:
    if rules.currency and not CURRENCY_PATTERN.fullmatch(rules.currency):
        v.add("currency", f"must be 3 uppercase letters, e.g. 'CNY' (got {quoted(rules.currency)})")
    if rules.timezone:
        try:
            zoneinfo.ZoneInfo(rules.timezone)
        except Exception:  # ZoneInfoNotFoundError, ValueError, OSError...: all mean "unknown"
            v.add("timezone", f"unknown IANA time zone {quoted(rules.timezone)}")


_POINTS_RANGES = (
    ("point_value_minor", 1, MAX_MINOR),
    ("earn_per_amount_minor", 1, MAX_MINOR),
    ("pending_days", 0, MAX_PENDING_DAYS),
    ("expiry_months", 0, MAX_EXPIRY_MONTHS),
    ("min_redeem_points", 0, MAX_COUNT),
    ("redeem_step_points", 1, MAX_COUNT),
    ("max_redeem_share_bps", 0, BPS),
)


def _check_points(v: _Collector, p: rules_pb2.PointsProgram) -> None:
    for name, lo, hi in _POINTS_RANGES:
        v.range(f"points.{name}", getattr(p, name), lo, hi)
    # proto3 enums are open: a number no build knows would decode, so say so here
    if p.lot_bucket not in rules_pb2.PointsProgram.LotBucket.values():
        v.add("points.lot_bucket", f"unknown lot bucket {p.lot_bucket} (DAY or MONTH)")


def _check_tiers(v: _Collector, tiers: Sequence[rules_pb2.Tier]) -> None:
    if len(tiers) > MAX_TIERS:
        v.add("tiers", f"at most {MAX_TIERS} tiers (got {len(tiers)})")
    seen: dict[str, str] = {}
    last_spend, last_at = 0, -1
    for i, t in enumerate(tiers):
        path = f"tiers[{i}]"
        v.ident(f"{path}.id", t.id, seen, path)
        v.text(f"{path}.name", t.name)
        # 0 = assigned by hand (staff, partners); spend thresholds rise down the list
        spend = t.qualify_spend_minor
        if v.money(f"{path}.qualify_spend_minor", spend) and spend > 0:
            if spend <= last_spend:
                v.add(
                    f"{path}.qualify_spend_minor",
                    f"must be greater than tiers[{last_at}]'s {last_spend} (got {spend}); "
                    "tiers are listed lowest first",
                )
            last_spend, last_at = spend, i
        v.range(f"{path}.earn_multiplier_bps", t.earn_multiplier_bps, 1, MAX_MULTIPLIER_BPS)


def _check_segments(v: _Collector, segments: Sequence[rules_pb2.Segment]) -> None:
    if len(segments) > MAX_SEGMENTS:
        v.add("segments", f"at most {MAX_SEGMENTS} segments (got {len(segments)})")
    seen: dict[str, str] = {}
    for i, s in enumerate(segments):
        v.ident(f"segments[{i}].id", s.id, seen, f"segments[{i}]")
        v.text(f"segments[{i}].name", s.name)


# --- offers ----------------------------------------------------------------------------------


def _check_offer(v: _Collector, path: str, offer: rules_pb2.Offer) -> None:
    v.ident(f"{path}.id", offer.id, v.ids, path)
    v.text(f"{path}.name", offer.name)
    v.text(f"{path}.description", offer.description, MAX_DESCRIPTION_CHARS)
    if offer.activation not in _ACTIVATIONS:
        v.add(f"{path}.activation", f"unknown activation {offer.activation}")
    if not offer.HasField("scope"):
        v.add(f"{path}.scope", "missing product set; use `all: true` for everything")
    else:
        _check_product_set(v, f"{path}.scope", offer.scope)
    reward = offer.WhichOneof("reward")
    phase = phase_of(KIND_BY_FIELD[reward]) if reward else None
    _check_conditions(v, f"{path}.conditions", offer.conditions)
    _check_stacking(v, f"{path}.stacking", offer, phase)
    _check_funding(v, f"{path}.funding", offer.funding)
    _check_limits(v, f"{path}.limits", offer.limits, phase)
    if reward is None:
        v.add(f"{path}.reward", "missing reward: set one of " + ", ".join(REWARDS))
    else:
        _check_reward(v, f"{path}.{reward}", reward, getattr(offer, reward))
        if phase == Phase.POINTS and not v.has_points:
            v.add(f"{path}.{reward}", "points rewards need a points programme (`points`)")


def _check_reward(v: _Collector, path: str, reward: str, r: Message) -> None:
    for name, lo, hi in _RANGES.get(reward, ()):
        v.range(f"{path}.{name}", getattr(r, name), lo, hi)
    if reward in _REWARD_CHECKS:
        _REWARD_CHECKS[reward](v, path, r)


def _is_empty_set(ps: rules_pb2.ProductSet) -> bool:
    return not (ps.all or ps.skus or ps.categories or ps.brands or ps.vendors)


def _check_product_set(v: _Collector, path: str, ps: rules_pb2.ProductSet) -> None:
    if _is_empty_set(ps):
        v.add(
            path,
            "empty product set: list skus, categories, brands or vendors, "
            "or use `all: true` for everything",
        )
    for name in ("skus", "categories", "brands", "vendors", "exclude_skus"):
        for j, value in enumerate(getattr(ps, name)):
            if not value:
                v.add(f"{path}.{name}[{j}]", "must not be empty")
            else:
                v.text(f"{path}.{name}[{j}]", value)


def _check_conditions(v: _Collector, path: str, c: rules_pb2.Conditions) -> None:
    for j, tier in enumerate(c.tiers):
        if tier not in v.tiers:
            v.add(f"{path}.tiers[{j}]", f"unknown tier {quoted(tier)}")
    for j, seg in enumerate(c.segments):
        if seg not in v.segments:
            v.add(f"{path}.segments[{j}]", f"unknown segment {quoted(seg)}")
    for name in ("stores", "channels"):
        for j, value in enumerate(getattr(c, name)):
            if not value:
                v.add(f"{path}.{name}[{j}]", "must not be empty")
            else:
                v.text(f"{path}.{name}[{j}]", value)
    new = {ch for ch in c.channels if ch} - v.channels
    v.channels |= new
    if new and len(v.channels) > MAX_CHANNELS and not v.channels_reported:
        v.channels_reported = True
        v.add(
            f"{path}.channels",
            f"more than {MAX_CHANNELS} distinct channels in the rule set "
            f"(this offer adds {quoted(min(new))})",
        )
    _check_window(v, path, c)
    v.money(f"{path}.min_basket_minor", c.min_basket_minor)
    v.count(f"{path}.min_qty", c.min_qty)
    v.money(f"{path}.min_amount_minor", c.min_amount_minor)


def _check_window(v: _Collector, path: str, c: rules_pb2.Conditions) -> None:
    valid = True
    for name in ("starts_at", "ends_at"):
        ts = getattr(c, name)
        if c.HasField(name) and not (_MIN_TS <= ts.seconds <= _MAX_TS and 0 <= ts.nanos < 10**9):
            v.add(f"{path}.{name}", f"not a valid timestamp ({ts.seconds}s {ts.nanos}ns)")
            valid = False
    if (
        valid
        and c.HasField("starts_at")
        and c.HasField("ends_at")
        and c.ends_at.seconds <= c.starts_at.seconds
    ):
        v.add(
            f"{path}.ends_at",
            f"end before start: {c.ends_at.ToJsonString()} is not after "
            f"starts_at {c.starts_at.ToJsonString()}",
        )
    seen_days: set[int] = set()
    for j, day in enumerate(c.weekdays):
        if v.range(f"{path}.weekdays[{j}]", day, 1, 7):
            if day in seen_days:
                v.add(f"{path}.weekdays[{j}]", f"duplicate weekday {day}")
            seen_days.add(day)
    ok_from = v.range(f"{path}.from_hour", c.from_hour, 0, 23)
    ok_to = v.range(f"{path}.to_hour", c.to_hour, 0, 24)
    if ok_from and ok_to and c.from_hour == c.to_hour != 0:
        v.add(
            f"{path}.to_hour",
            f"empty window: from_hour and to_hour are both {c.to_hour} (use 0 and 0 for all day)",
        )


def _check_stacking(v: _Collector, path: str, offer: rules_pb2.Offer, phase: Phase | None) -> None:
    s = offer.stacking
    if s.mode not in _MODES:
        v.add(f"{path}.mode", f"unknown mode {s.mode}")
    v.text(f"{path}.group", s.group)
    if not s.group or phase is None:
        return
    if phase is Phase.POINTS:
        v.add(
            f"{path}.group",
            f"points offers cannot be in a group (got {quoted(s.group)}); "
            "groups concern discounts only",
        )
        return
    first = v.groups.setdefault(s.group, (phase, offer.id))
    if first[0] is not phase:
        v.add(
            f"{path}.group",
            f"group {quoted(s.group)} mixing phases: {phase.name.lower()} here, "
            f"{first[0].name.lower()} for its first member {quoted(first[1])}",
        )


def _check_funding(v: _Collector, path: str, f: rules_pb2.Funding) -> None:
    if f.funder_id and not ID_PATTERN.fullmatch(f.funder_id):
        v.add(
            f"{path}.funder_id", f"must be 1-64 of A-Z a-z 0-9 . _ : - (got {quoted(f.funder_id)})"
        )
    v.range(f"{path}.funded_share_bps", f.funded_share_bps, 0, BPS)


def _check_limits(v: _Collector, path: str, lim: rules_pb2.Limits, phase: Phase | None) -> None:
    v.count(f"{path}.per_transaction", lim.per_transaction)
    v.count(f"{path}.per_member", lim.per_member)
    if lim.per_member_period not in _PERIODS:
        v.add(f"{path}.per_member_period", f"unknown period {lim.per_member_period}")
    v.count(f"{path}.total_uses", lim.total_uses)
    for name in ("budget_minor", "max_discount_minor"):
        value = getattr(lim, name)
        if v.money(f"{path}.{name}", value) and value and phase is Phase.POINTS:
            v.add(f"{path}.{name}", f"not allowed on a points reward, it caps money (got {value})")


# --- rewards ---------------------------------------------------------------------------------


def _increasing(
    v: _Collector,
    path: str,
    steps: Sequence[rules_pb2.QtyTier] | Sequence[rules_pb2.SpendTier],
    name: str,
    j: int,
) -> None:
    if j > 0:
        prev, cur = getattr(steps[j - 1], name), getattr(steps[j], name)
        if cur <= prev:
            v.add(
                f"{path}.steps[{j}].{name}",
                f"ladder steps not increasing: must be greater "
                f"than steps[{j - 1}]'s {prev} (got {cur})",
            )


def _check_qty_tiers(v: _Collector, path: str, r: rules_pb2.QtyTiers) -> None:
    if not r.steps:
        v.add(f"{path}.steps", "needs at least one step")
    for j, step in enumerate(r.steps):
        if v.count(f"{path}.steps[{j}].min_qty", step.min_qty, 1):
            _increasing(v, path, r.steps, "min_qty", j)
        v.range(f"{path}.steps[{j}].percent_bps", step.percent_bps, 1, BPS)


def _check_bundle_price(v: _Collector, path: str, r: rules_pb2.BundlePrice) -> None:
    if not r.components:
        v.add(f"{path}.components", "needs at least one component")
    usable: list[int] = []  # components with a non-empty product set, checked for overlaps
    masks: dict[int, np.ndarray] = {}  # component -> catalogue rows it matches, when needed
    for j, comp in enumerate(r.components):
        cpath = f"{path}.components[{j}]"
        if not comp.HasField("scope"):
            v.add(f"{cpath}.scope", "missing product set; use `all: true` for everything")
        else:
            _check_product_set(v, f"{cpath}.scope", comp.scope)
        if comp.HasField("scope") and not _is_empty_set(comp.scope):
            for a in usable:
                why = structural_overlap(r.components[a].scope, comp.scope)
                if why is None and v.catalogue is not None and len(v.catalogue):
                    why = v.index().overlap(r.components, a, j, masks)
                if why is not None:
                    v.add(f"{cpath}.scope", f"components[{a}] and components[{j}] overlap: {why}")
            usable.append(j)
        v.count(f"{cpath}.qty", comp.qty, 1)
    v.money(f"{path}.price_minor", r.price_minor)


def _check_spend_tiers(v: _Collector, path: str, r: rules_pb2.SpendTiers) -> None:
    if not r.steps:
        v.add(f"{path}.steps", "needs at least one step")
    percent_step = None
    for j, step in enumerate(r.steps):
        spath = f"{path}.steps[{j}]"
        if v.money(f"{spath}.threshold_minor", step.threshold_minor, 1):
            _increasing(v, path, r.steps, "threshold_minor", j)
        if step.amount_minor and step.percent_bps:
            v.add(
                spath,
                f"set exactly one of amount_minor and percent_bps (got both: "
                f"{step.amount_minor} and {step.percent_bps})",
            )
        elif not step.amount_minor and not step.percent_bps:
            v.add(spath, "set exactly one of amount_minor and percent_bps (got neither)")
        elif step.amount_minor:
            v.money(f"{spath}.amount_minor", step.amount_minor, 1)
        else:
            v.range(f"{spath}.percent_bps", step.percent_bps, 1, BPS)
            if percent_step is None:
                percent_step = j
    if r.repeat and percent_step is not None:
        v.add(
            f"{path}.repeat",
            f"repeat works with amount steps only (steps[{percent_step}] "
            f"has percent_bps {r.steps[percent_step].percent_bps})",
        )


def _check_bonus_points(v: _Collector, path: str, r: rules_pb2.BonusPoints) -> None:
    # per_unit times a basket's units (at most 10^7) must stay inside int64
    ok = v.range(f"{path}.per_unit", r.per_unit, 0, MAX_POINTS_PER_UNIT)
    ok &= v.count(f"{path}.per_transaction", r.per_transaction)
    if ok and r.per_unit == 0 and r.per_transaction == 0:
        v.add(path, "per_unit and per_transaction are both 0: the offer gives no points")


# reward -> (field, lowest, highest) of its plain numeric fields
_RANGES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "percent_off": (("percent_bps", 1, BPS),),
    "amount_off": (("amount_minor", 1, MAX_MINOR),),
    "fixed_price": (("price_minor", 0, MAX_MINOR),),
    "buy_x_get_y": (("buy", 1, MAX_COUNT), ("get", 1, MAX_COUNT), ("percent_bps", 1, BPS)),
    "order_percent_off": (("percent_bps", 1, BPS),),
    "order_amount_off": (("amount_minor", 1, MAX_MINOR),),
    "points_multiplier": (("extra_bps", 1, MAX_EXTRA_BPS),),
}
# reward -> its own checks; each takes that reward's message, looked up by field name
_REWARD_CHECKS: dict[str, Callable[[_Collector, str, Any], None]] = {
    "qty_tiers": _check_qty_tiers,
    "bundle_price": _check_bundle_price,
    "spend_tiers": _check_spend_tiers,
    "bonus_points": _check_bonus_points,
}
assert set(_RANGES) | set(_REWARD_CHECKS) == set(REWARDS)
