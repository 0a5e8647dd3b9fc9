"""Validation of a RuleSet before it is compiled or published.

``validate`` collects every problem at once, in rule-file order (the field order of the
``loyalty.v1.RuleSet`` message), as :class:`Violation` rows whose ``field`` is the path in the
rule file (proto field names, ``[i]`` indexes, the reward's oneof member name). It never raises
on RuleSet content: rule files are user input. ``check`` raises :class:`RuleSetInvalid`.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence

from engine.errors import InvalidInput
from engine.errors import Violation as Violation  # re-exported: violations are part of this API
from engine.pricing import recurrence
from engine.pricing.catalogue import Catalogue
from engine.pricing.checker import (
    ACTIVATIONS,
    CURRENCY_PATTERN,
    ID_PATTERN,
    MAX_CHANNELS,
    MAX_COUNT,
    MAX_DESCRIPTION_CHARS,
    MAX_EXPIRY_MONTHS,
    MAX_MINOR,
    MAX_MULTIPLIER_BPS,
    MAX_PENDING_DAYS,
    MAX_SEGMENTS,
    MAX_TIER_WINDOW_MONTHS,
    MAX_TIERS,
    MAX_TS,
    MIN_TS,
    MODES,
    PERIODS,
    REWARDS,
    TIER_PERIOD_MONTHS,
    Checker,
    check_product_set,
)
from engine.pricing.constants import (
    BPS,
    KIND_BY_FIELD,
    Phase,
    phase_of,
)
from engine.pricing.guardrails import guardrail_problems
from engine.pricing.overlap import quoted
from engine.pricing.units import check_unit_limits
from engine.pricing.validate_attributes import attribute_violations
from engine.pricing.validate_restrictions import check_restricted_items
from engine.pricing.validate_rewards import check_buy_get_sets, check_reward
from loyalty.v1 import rules_pb2
from loyalty.v1.rules_pb2 import RuleSet


class RuleSetInvalid(InvalidInput):
    """The rule set has violations (paths in the rule file); ``str`` lists them, one per line."""

    def __init__(self, violations: list[Violation] | tuple[Violation, ...]) -> None:
        super().__init__(violations, message="\n".join(str(v) for v in violations))


def validate(rules: RuleSet, catalogue: Catalogue | None = None) -> list[Violation]:
    """Every problem of ``rules`` (and of its bundles against ``catalogue``), in file order."""
    v = Checker(catalogue)
    _check_header(v, rules)
    if rules.HasField("points"):
        _check_points(v, rules.points)
    _check_tiers(v, rules.tiers)
    v.tiers, v.segments = {t.id for t in rules.tiers}, {s.id for s in rules.segments}
    v.has_points = rules.HasField("points")
    for i, offer in enumerate(rules.offers):
        _check_offer(v, f"offers[{i}]", offer)
    _check_segments(v, rules.segments)
    v.out += attribute_violations(rules)  # member_attributes, offers[i].conditions.attributes
    if rules.HasField("tier_policy"):
        _check_tier_policy(v, rules.tier_policy)
    check_restricted_items(v, rules.restricted_items, check_product_set)
    _check_guardrails(v, rules.guardrails)
    if not v.out:  # probing prices each offer: only a rule set valid in every other way
        v.out += guardrail_problems(rules, catalogue)
    return v.out


def check(rules: RuleSet, catalogue: Catalogue | None = None) -> None:
    """Raise :class:`RuleSetInvalid` listing every violation, if there is any."""
    violations = validate(rules, catalogue)
    if violations:
        raise RuleSetInvalid(violations)


# --- rule set header, points programme, tiers, segments -------------------------------------


def _check_header(v: Checker, rules: RuleSet) -> None:
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


def _check_points(v: Checker, p: rules_pb2.PointsProgram) -> None:
    for name, lo, hi in _POINTS_RANGES:
        v.range(f"points.{name}", getattr(p, name), lo, hi)
    # proto3 enums are open: a number no build knows would decode, so say so here
    if p.lot_bucket not in rules_pb2.PointsProgram.LotBucket.values():
        v.add("points.lot_bucket", f"unknown lot bucket {p.lot_bucket} (DAY or MONTH)")


def _check_tiers(v: Checker, tiers: Sequence[rules_pb2.Tier]) -> None:
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


def _check_tier_policy(v: Checker, p: rules_pb2.TierPolicy) -> None:
    v.range(
        "tier_policy.qualification_window_months",
        p.qualification_window_months,
        0,
        MAX_TIER_WINDOW_MONTHS,
    )
    # periods must repeat every year from the anchor month, so their length divides 12
    if p.period_months not in TIER_PERIOD_MONTHS:
        v.add(
            "tier_policy.period_months",
            f"must be 1, 2, 3, 4, 6 or 12 (0 = 12) (got {p.period_months})",
        )
    v.range("tier_policy.anchor_month", p.anchor_month, 0, 12)
    if p.downgrade not in rules_pb2.TierPolicy.Downgrade.values():
        v.add(
            "tier_policy.downgrade",
            f"unknown downgrade {p.downgrade} (NEVER, ONE_STEP or TO_QUALIFYING)",
        )


def _check_guardrails(v: Checker, g: rules_pb2.Guardrails) -> None:
    v.money("guardrails.max_discount_minor", g.max_discount_minor)
    v.range("guardrails.max_discount_bps", g.max_discount_bps, 0, BPS)
    v.count("guardrails.max_points", g.max_points)
    v.range("guardrails.min_margin_bps", g.min_margin_bps, 0, BPS - 1)


def _check_segments(v: Checker, segments: Sequence[rules_pb2.Segment]) -> None:
    if len(segments) > MAX_SEGMENTS:
        v.add("segments", f"at most {MAX_SEGMENTS} segments (got {len(segments)})")
    seen: dict[str, str] = {}
    for i, s in enumerate(segments):
        v.ident(f"segments[{i}].id", s.id, seen, f"segments[{i}]")
        v.text(f"segments[{i}].name", s.name)


# --- offers ----------------------------------------------------------------------------------


def _check_offer(v: Checker, path: str, offer: rules_pb2.Offer) -> None:
    v.ident(f"{path}.id", offer.id, v.ids, path)
    v.text(f"{path}.name", offer.name)
    v.text(f"{path}.description", offer.description, MAX_DESCRIPTION_CHARS)
    if offer.activation not in ACTIVATIONS:
        v.add(f"{path}.activation", f"unknown activation {offer.activation}")
    reward = offer.WhichOneof("reward")
    if reward == "delivery_off":  # its lines are the basket's delivery lines
        if offer.HasField("scope"):
            v.add(f"{path}.scope", "delivery_off discounts the delivery lines: leave scope out")
    elif not offer.HasField("scope"):
        v.add(f"{path}.scope", "missing product set; use `all: true` for everything")
    else:
        check_product_set(v, f"{path}.scope", offer.scope)
    phase = phase_of(KIND_BY_FIELD[reward]) if reward else None
    _check_conditions(v, f"{path}.conditions", offer.conditions)
    _check_stacking(v, f"{path}.stacking", offer, phase)
    _check_funding(v, f"{path}.funding", offer.funding)
    _check_limits(v, f"{path}.limits", offer.limits, phase, reward)
    if reward is None:
        v.add(f"{path}.reward", "missing reward: set one of " + ", ".join(REWARDS))
    else:
        check_reward(v, f"{path}.{reward}", reward, getattr(offer, reward))
        if reward == "buy_get":
            check_buy_get_sets(v, path, offer)
        if phase == Phase.POINTS and not v.has_points:
            v.add(f"{path}.{reward}", "points rewards need a points programme (`points`)")


def _check_conditions(v: Checker, path: str, c: rules_pb2.Conditions) -> None:
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
    for low, high in (
        ("min_basket_minor", "max_basket_minor"),
        ("min_amount_minor", "max_amount_minor"),
    ):
        lo, hi = getattr(c, low), getattr(c, high)
        if v.money(f"{path}.{high}", hi) and hi and lo > hi:
            v.add(f"{path}.{high}", f"below {low} ({hi} < {lo})")


def _check_window(v: Checker, path: str, c: rules_pb2.Conditions) -> None:
    valid = True
    for name in ("starts_at", "ends_at"):
        ts = getattr(c, name)
        if c.HasField(name) and not (MIN_TS <= ts.seconds <= MAX_TS and 0 <= ts.nanos < 10**9):
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
    v.out += recurrence.violations(path, c)


def _check_stacking(v: Checker, path: str, offer: rules_pb2.Offer, phase: Phase | None) -> None:
    s = offer.stacking
    if s.mode not in MODES:
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


def _check_funding(v: Checker, path: str, f: rules_pb2.Funding) -> None:
    if f.funder_id and not ID_PATTERN.fullmatch(f.funder_id):
        v.add(
            f"{path}.funder_id", f"must be 1-64 of A-Z a-z 0-9 . _ : - (got {quoted(f.funder_id)})"
        )
    v.range(f"{path}.funded_share_bps", f.funded_share_bps, 0, BPS)


def _check_limits(
    v: Checker, path: str, lim: rules_pb2.Limits, phase: Phase | None, reward: str | None
) -> None:
    v.count(f"{path}.per_transaction", lim.per_transaction)
    v.count(f"{path}.per_member", lim.per_member)
    if lim.per_member_period not in PERIODS:
        v.add(f"{path}.per_member_period", f"unknown period {lim.per_member_period}")
    v.count(f"{path}.total_uses", lim.total_uses)
    for name in ("budget_minor", "max_discount_minor"):
        value = getattr(lim, name)
        if v.money(f"{path}.{name}", value) and value and phase is Phase.POINTS:
            v.add(f"{path}.{name}", f"not allowed on a points reward, it caps money (got {value})")
    check_unit_limits(v, path, lim, phase, reward)
