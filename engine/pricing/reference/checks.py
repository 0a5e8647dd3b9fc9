"""Reference evaluator, part 2: the state it carries and the checks of docs/pricing.md §4
(checks 1-13) that decide whether a considered offer may apply. Plain Python, like its caller
:mod:`engine.pricing.reference.core`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engine.pricing.attributes import conditions_hold
from engine.pricing.basket import LocalTime, ResolvedLine
from engine.pricing.constants import (
    KIND_BY_FIELD,
    LIMIT_BUDGET,
    LIMIT_MEMBER_USES,
    LIMIT_TOTAL_USES,
    LIMIT_UNITS,
    Kind,
    Mode,
    Phase,
    Reason,
    phase_of,
)
from engine.pricing.recurrence import next_start, schedule, time_conditions_hold
from engine.pricing.reference import rewards as rw
from engine.pricing.types import (
    AppliedOffer,
    Explanation,
    GiftResult,
    LineDiscount,
    Member,
    RemainingLimits,
)
from loyalty.v1 import rules_pb2


@dataclass(frozen=True, slots=True)
class Context:
    """Everything about the request that does not change while pricing."""

    rules: rules_pb2.RuleSet
    member: Member | None
    when: LocalTime
    store_id: str
    channel: str
    coupons: Sequence[str]
    limits: Mapping[str, RemainingLimits]

    def coupon_uses(self, offer_id: str) -> int:
        # each presented code is one coupon with one use
        wallet = self.member.wallet.get(offer_id, 0) if self.member else 0
        return max(0, wallet) + sum(1 for c in self.coupons if c == offer_id)

    def has_coupon(self, offer_id: str) -> bool:
        return offer_id in self.coupons or (
            self.member is not None and offer_id in self.member.wallet
        )

    def member_tier(self) -> str:
        """The member's tier id, or "" when the rule set does not know it (no tier)."""
        known = {t.id for t in self.rules.tiers}
        return self.member.tier if self.member and self.member.tier in known else ""


@dataclass(slots=True)
class State:
    """The basket as the offers see it: current nets, discount rows, locks, outcomes."""

    lines: tuple[ResolvedLine, ...]
    nets: list[int]
    rows: list[list[LineDiscount]]
    locked_by: list[str]  # per line, the EXCLUSIVE offer that discounted it, or ""
    order_locked_by: str = ""  # the EXCLUSIVE_ORDER offer that applied, or ""
    applied: list[AppliedOffer] = field(default_factory=list)
    explanations: list[Explanation] = field(default_factory=list)
    gifts: list[GiftResult] = field(default_factory=list)

    @classmethod
    def start(cls, lines: tuple[ResolvedLine, ...]) -> State:
        return cls(
            lines,
            [ln.quantity * ln.unit_price_minor for ln in lines],
            [[] for _ in lines],
            ["" for _ in lines],
        )

    def explain(self, offer_id: str, refusal: Refusal) -> None:
        self.explanations.append(
            Explanation(
                offer_id,
                refusal.reason,
                refusal.detail,
                refusal.related,
                next_start=refusal.next_start,
            )
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """The first failing check of §4: a reason, its detail, and the offer it points at."""

    reason: Reason
    detail: int = 0
    related: str = ""
    next_start: datetime | None = None  # NOT_IN_TIME_WINDOW of an offer with a recurrence


@dataclass(frozen=True, slots=True)
class Proposal:
    """What a discount offer would give now, after its cap: positive amounts by line index."""

    amounts: dict[int, int]
    applications: int
    units: int = 0  # units counted (engine/pricing/units.py)
    found: int = 0  # gift: the gift units found in the basket

    @property
    def total(self) -> int:
        return sum(self.amounts.values())


def kind_of(offer: rules_pb2.Offer) -> Kind:
    return KIND_BY_FIELD[offer.WhichOneof("reward")]


def scope_lines(offer: rules_pb2.Offer, lines: Sequence[ResolvedLine]) -> list[int]:
    """Lines in the offer's scope; for buy_get, also those in its get set; for delivery_off,
    the delivery lines."""
    reward = offer.WhichOneof("reward")
    if reward == "delivery_off":
        return [i for i, line in enumerate(lines) if line.delivery]
    sets = [offer.scope]
    if reward == "buy_get":
        sets.append(offer.buy_get.get)
    elif reward == "gift":
        sets.append(rw.gift_set(offer.gift))
    return [i for i, line in enumerate(lines) if any(rw.in_product_set(s, line) for s in sets)]


# --- §4 checks 1–9: coupons, time, place, member, limits -----------------------------------


def check_conditions(offer: rules_pb2.Offer, ctx: Context) -> Refusal | None:
    cond, member = offer.conditions, ctx.member
    if offer.activation == rules_pb2.Offer.COUPON and ctx.coupon_uses(offer.id) == 0:
        return Refusal(Reason.COUPON_USED_UP)
    if not in_time_window(cond, ctx.when, ctx.rules.timezone):
        upcoming = next_start(cond, ctx.rules.timezone, ctx.when.epoch_s)
        return Refusal(Reason.NOT_IN_TIME_WINDOW, next_start=upcoming)
    if cond.stores and ctx.store_id not in cond.stores:
        return Refusal(Reason.STORE_NOT_ELIGIBLE)
    if cond.channels and ctx.channel not in cond.channels:
        return Refusal(Reason.CHANNEL_NOT_ELIGIBLE)
    if member is None:
        if (
            cond.member_required
            or cond.tiers
            or cond.segments
            or cond.birthday_month
            or cond.attributes
            or phase_of(kind_of(offer)) == Phase.POINTS
        ):
            return Refusal(Reason.MEMBER_REQUIRED)
    else:
        if cond.tiers and ctx.member_tier() not in cond.tiers:
            return Refusal(Reason.TIER_NOT_ELIGIBLE)
        if cond.segments and not any(s in cond.segments for s in member.segments):
            return Refusal(Reason.SEGMENT_NOT_ELIGIBLE)
        if cond.attributes and not conditions_hold(ctx.rules, cond.attributes, member.attributes):
            return Refusal(Reason.MEMBER_ATTRIBUTE_MISMATCH)
        if cond.birthday_month and member.birthday_month != ctx.when.month:
            return Refusal(Reason.NOT_BIRTHDAY_MONTH)
    return limit_reached(ctx.limits.get(offer.id))


def in_time_window(cond: rules_pb2.Conditions, when: LocalTime, timezone: str = "") -> bool:
    """``starts_at ≤ t < ends_at`` (whole seconds), weekday, local hour window and recurrence,
    stated once in :func:`engine.pricing.recurrence.time_conditions_hold`."""
    return time_conditions_hold(cond, schedule(cond, timezone), when)


def limit_reached(remaining: RemainingLimits | None) -> Refusal | None:
    if remaining is None:
        return None
    for left, detail in (
        (remaining.member_uses, LIMIT_MEMBER_USES),
        (remaining.total_uses, LIMIT_TOTAL_USES),
        (remaining.budget_minor, LIMIT_BUDGET),
        (remaining.units, LIMIT_UNITS),
    ):
        if left is not None and left <= 0:
            return Refusal(Reason.LIMIT_REACHED, detail)
    return None


# --- §4 check 10: eligible lines, and checks 11–13: minimums -------------------------------


def discount_eligible(offer: rules_pb2.Offer, state: State) -> list[int] | Refusal:
    """Scope lines that may take this discount under the stacking rules."""
    free = [i for i in scope_lines(offer, state.lines) if not state.lines[i].no_discount]
    if not free:
        return Refusal(Reason.NO_ELIGIBLE_LINES)
    if state.order_locked_by:
        return Refusal(Reason.EXCLUDED_BY_EXCLUSIVE, related=state.order_locked_by)
    unlocked = [i for i in free if not state.locked_by[i]]
    if not unlocked:
        # every line was dropped, so the first dropped line is the first free one
        return Refusal(Reason.EXCLUDED_BY_EXCLUSIVE, related=state.locked_by[free[0]])
    mode: int = offer.stacking.mode  # a Stacking.Mode number, compared with constants.Mode
    if mode == Mode.EXCLUSIVE:
        unlocked = [i for i in unlocked if not state.rows[i]]
        if not unlocked:
            return Refusal(Reason.ALREADY_DISCOUNTED)
    elif mode == Mode.EXCLUSIVE_ORDER and any(state.rows):
        return Refusal(Reason.ALREADY_DISCOUNTED)
    return unlocked


def points_eligible(offer: rules_pb2.Offer, state: State) -> list[int] | Refusal:
    """Scope lines that earn points; stacking does not concern points offers."""
    earning = [i for i in scope_lines(offer, state.lines) if not state.lines[i].no_earn]
    return earning or Refusal(Reason.NO_ELIGIBLE_LINES)


def check_minimums(
    cond: rules_pb2.Conditions, scope: rw.Scope, groups_of: int = 0
) -> Refusal | None:
    """Minimum then maximum basket (whole basket), minimum quantity then one complete group of
    ``groups_of`` units (``Limits.units_in_groups_of``; 0 = off), minimum then maximum amount
    (eligible lines), on current nets."""
    # the subtotal is the goods': a delivery charge never counts towards it
    basket_net = sum(
        n for n, line in zip(scope.nets, scope.lines, strict=True) if not line.delivery
    )
    if basket_net < cond.min_basket_minor:
        return Refusal(Reason.MIN_BASKET_NOT_REACHED, cond.min_basket_minor - basket_net)
    if cond.max_basket_minor and basket_net > cond.max_basket_minor:
        return Refusal(Reason.MAX_BASKET_EXCEEDED, basket_net - cond.max_basket_minor)
    if scope.units < cond.min_qty:
        return Refusal(Reason.MIN_QTY_NOT_REACHED, cond.min_qty - scope.units)
    if scope.units < groups_of:
        return Refusal(Reason.MIN_QTY_NOT_REACHED, groups_of - scope.units)
    if scope.spend < cond.min_amount_minor:
        return Refusal(Reason.MIN_AMOUNT_NOT_REACHED, cond.min_amount_minor - scope.spend)
    if cond.max_amount_minor and scope.spend > cond.max_amount_minor:
        return Refusal(Reason.MAX_AMOUNT_EXCEEDED, scope.spend - cond.max_amount_minor)
    return None
