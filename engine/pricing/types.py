"""Plain data the engine takes and returns; no numpy, no protobuf.

Inputs are what a checkout knows (a basket, a member, presented coupons); outputs follow
docs/design.md §4 line by line. Both the numba path and the reference evaluator return the same
:class:`PricingResult`, so tests compare them with ``==``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from engine.pricing.constants import Reason, Tender

# A member attribute's value (members.proto MemberAttribute): string, whole number or date.
AttributeValue = str | int | date


@dataclass(frozen=True, slots=True)
class Line:
    line_id: str
    sku: str
    quantity: int
    unit_price_minor: int
    category: str = ""
    brand: str = ""
    vendor: str = ""
    # the basket's delivery charge, not goods (docs/pricing.md §1): only delivery_off reads it
    delivery: bool = False

    @property
    def gross_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True, slots=True)
class Basket:
    lines: tuple[Line, ...]
    occurred_at: datetime  # timezone-aware
    store_id: str = ""
    channel: str = ""


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    tier: str = ""
    segments: frozenset[str] = frozenset()
    birthday_month: int = 0  # 1-12, 0 = unknown
    available_points: int = 0
    wallet: Mapping[str, int] = field(default_factory=dict)  # offer id -> remaining uses
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)  # name -> value


@dataclass(frozen=True, slots=True)
class RemainingLimits:
    """What is left of an offer's limits for this member now; ``None`` = not tracked."""

    member_uses: int | None = None
    total_uses: int | None = None
    budget_minor: int | None = None
    units: int | None = None  # units the offer may still discount (unit caps, reservations)


@dataclass(frozen=True, slots=True)
class LineDiscount:
    offer_id: str
    amount_minor: int
    funder_id: str
    funded_minor: int


@dataclass(frozen=True, slots=True)
class LineResult:
    line_id: str
    gross_minor: int
    net_minor: int
    discounts: tuple[LineDiscount, ...]
    points_tender_minor: int
    points_earned: int


@dataclass(frozen=True, slots=True)
class PointsComponent:
    """One floored points amount and its attribution to the basket's lines (for returns)."""

    offer_id: str  # "" for the base points of the programme
    kind: str  # "base" | "multiplier" | "bonus"
    points: int
    line_points: tuple[int, ...]  # one entry per basket line


@dataclass(frozen=True, slots=True)
class AppliedOffer:
    offer_id: str
    discount_minor: int
    funder_id: str
    funded_minor: int
    points: int
    applications: int
    units: int = 0  # units of the lines a discount offer discounted (engine/pricing/units.py)


@dataclass(frozen=True, slots=True)
class Explanation:
    offer_id: str
    reason: Reason
    detail: int = 0  # shortfall (minor units or units) or LIMIT_* code
    related_offer_id: str = ""  # winner of the group / the exclusive offer
    # NOT_IN_TIME_WINDOW of an offer with a recurrence: when its time conditions next hold
    next_start: datetime | None = None

    @property
    def message(self) -> str:
        return describe(self)


@dataclass(frozen=True, slots=True)
class RestrictedLine:
    """A basket line the member may not buy (``RuleSet.restricted_items``)."""

    line: int  # index in the basket's lines
    restriction_id: str  # the first restriction (rule-set order) the member does not meet
    message: str  # the restriction's message, or a sentence naming its tiers and segments


@dataclass(frozen=True, slots=True)
class GiftResult:
    """A gift the basket qualifies for (``Offer.gift``): the lane adds what is not in it."""

    offer_id: str
    sku: str
    quantity: int  # gift units the offer gives
    in_basket: int  # of those, the units in the basket (and discounted)
    price_minor: int  # what each gift unit costs the customer


@dataclass(frozen=True, slots=True)
class PricingResult:
    lines: tuple[LineResult, ...]
    gross_minor: int
    discount_minor: int
    net_minor: int
    points_redeemed: int
    points_tender_minor: int
    payable_minor: int
    points_earned: int
    tender: Tender
    points: tuple[PointsComponent, ...]
    offers: tuple[AppliedOffer, ...]
    explanations: tuple[Explanation, ...] = ()
    # member-only items this member may not buy, in basket order (docs/pricing.md, member-only
    # items); pricing ignores them
    restricted: tuple[RestrictedLine, ...] = ()
    # the gifts the basket qualifies for, in evaluation order (docs/pricing.md §5, Gifts)
    gifts: tuple[GiftResult, ...] = ()


_LIMIT_WORDS = {
    1: "the member's uses of this offer are used up",
    2: "the offer's total uses are used up",
    3: "the offer's budget is spent",
    4: "no units of the offer are left",
}


def describe(e: Explanation) -> str:
    """A sentence a cashier or a marketer can read."""
    r, d, other = e.reason, e.detail, e.related_offer_id
    texts = {
        Reason.COUPON_USED_UP: "the coupon has no uses left",
        Reason.NOT_IN_TIME_WINDOW: "not valid at this date, weekday or hour"
        + (f"; next from {e.next_start:%Y-%m-%d %H:%M} UTC" if e.next_start else ""),
        Reason.STORE_NOT_ELIGIBLE: "not valid in this store",
        Reason.CHANNEL_NOT_ELIGIBLE: "not valid in this channel",
        Reason.MEMBER_REQUIRED: "for members only",
        Reason.TIER_NOT_ELIGIBLE: "not for the member's tier",
        Reason.SEGMENT_NOT_ELIGIBLE: "not for the member's segments",
        Reason.MEMBER_ATTRIBUTE_MISMATCH: "not for the member's attributes",
        Reason.NOT_BIRTHDAY_MONTH: "only in the member's birthday month",
        Reason.LIMIT_REACHED: _LIMIT_WORDS.get(d, "a limit is reached"),
        Reason.NO_ELIGIBLE_LINES: "no line in scope can take it",
        Reason.EXCLUDED_BY_EXCLUSIVE: f"excluded by exclusive offer {other}",
        Reason.ALREADY_DISCOUNTED: "exclusive offer, but the items are already discounted",
        Reason.MIN_BASKET_NOT_REACHED: f"basket minimum not reached: {d} short",
        Reason.MIN_QTY_NOT_REACHED: f"quantity not reached: {d} more unit(s) needed",
        Reason.MIN_AMOUNT_NOT_REACHED: f"spend on qualifying items not reached: {d} short",
        Reason.MAX_BASKET_EXCEEDED: f"basket above the offer's maximum: {d} over",
        Reason.MAX_AMOUNT_EXCEEDED: f"spend on qualifying items above the maximum: {d} over",
        Reason.MIN_SPEND_NOT_REACHED: f"spend threshold not reached: {d} short",
        Reason.NO_BENEFIT: "gives nothing on this basket",
        Reason.LOST_TO_GROUP: f"a better offer of the same group applied: {other}",
        Reason.GIFT_NOT_IN_BASKET: f"the basket qualifies for a gift: add {d} unit(s) of it",
    }
    return texts[r]
