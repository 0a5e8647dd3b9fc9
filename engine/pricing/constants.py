"""Codes shared by the compiler, the kernels and the reference evaluator.

Kernels see these as plain integers; Python code uses the enums. In the kernels' arrays -1
means "none" (no offer, no tier, not tracked), as ``engine.pricing.layout`` documents per column.
"""

from __future__ import annotations

from enum import IntEnum

BPS = 10_000


class Kind(IntEnum):
    """Reward kinds, in the order of the ``reward`` oneof (``phase_of`` gives each its phase;
    TARGET_UNITS, BUY_GET and UNIT_RATES, added last, are item rewards; DELIVERY_OFF is an
    order reward, and so is GIFT)."""

    PERCENT_OFF = 0
    AMOUNT_OFF = 1
    FIXED_PRICE = 2
    QTY_TIERS = 3
    BUY_X_GET_Y = 4
    BUNDLE_PRICE = 5
    SPEND_TIERS = 6
    ORDER_PERCENT_OFF = 7
    ORDER_AMOUNT_OFF = 8
    POINTS_MULTIPLIER = 9
    BONUS_POINTS = 10
    TARGET_UNITS = 11
    BUY_GET = 12
    UNIT_RATES = 13
    DELIVERY_OFF = 14
    GIFT = 15


class Phase(IntEnum):
    ITEM = 0
    ORDER = 1
    POINTS = 2


# reward oneof field name -> kind
KIND_BY_FIELD: dict[str, Kind] = {
    "percent_off": Kind.PERCENT_OFF,
    "amount_off": Kind.AMOUNT_OFF,
    "fixed_price": Kind.FIXED_PRICE,
    "qty_tiers": Kind.QTY_TIERS,
    "buy_x_get_y": Kind.BUY_X_GET_Y,
    "bundle_price": Kind.BUNDLE_PRICE,
    "spend_tiers": Kind.SPEND_TIERS,
    "order_percent_off": Kind.ORDER_PERCENT_OFF,
    "order_amount_off": Kind.ORDER_AMOUNT_OFF,
    "points_multiplier": Kind.POINTS_MULTIPLIER,
    "bonus_points": Kind.BONUS_POINTS,
    "target_units": Kind.TARGET_UNITS,
    "buy_get": Kind.BUY_GET,
    "unit_rates": Kind.UNIT_RATES,
    "delivery_off": Kind.DELIVERY_OFF,
    "gift": Kind.GIFT,
}


def phase_of(kind: int) -> Phase:
    if kind in (Kind.DELIVERY_OFF, Kind.GIFT):  # line rewards that run after the item phase
        return Phase.ORDER
    if kind <= Kind.BUNDLE_PRICE or kind in (Kind.TARGET_UNITS, Kind.BUY_GET, Kind.UNIT_RATES):
        return Phase.ITEM
    if kind <= Kind.ORDER_AMOUNT_OFF:
        return Phase.ORDER
    return Phase.POINTS


class Mode(IntEnum):
    """Stacking modes (same numbers as ``Stacking.Mode`` in rules.proto)."""

    STACKABLE = 0
    EXCLUSIVE = 1
    EXCLUSIVE_ORDER = 2


class Reason(IntEnum):
    """Why a considered offer did not apply (docs/pricing.md §4)."""

    COUPON_USED_UP = 1
    NOT_IN_TIME_WINDOW = 2
    STORE_NOT_ELIGIBLE = 3
    CHANNEL_NOT_ELIGIBLE = 4
    MEMBER_REQUIRED = 5
    TIER_NOT_ELIGIBLE = 6
    SEGMENT_NOT_ELIGIBLE = 7
    NOT_BIRTHDAY_MONTH = 8
    LIMIT_REACHED = 9
    NO_ELIGIBLE_LINES = 10
    EXCLUDED_BY_EXCLUSIVE = 11
    ALREADY_DISCOUNTED = 12
    MIN_BASKET_NOT_REACHED = 13
    MIN_QTY_NOT_REACHED = 14
    MIN_AMOUNT_NOT_REACHED = 15
    MIN_SPEND_NOT_REACHED = 16
    NO_BENEFIT = 17
    LOST_TO_GROUP = 18
    MEMBER_ATTRIBUTE_MISMATCH = 19  # a Conditions.attributes test failed (check 7)
    MAX_BASKET_EXCEEDED = 20  # basket nets above Conditions.max_basket_minor; detail = excess
    MAX_AMOUNT_EXCEEDED = 21  # scope nets above Conditions.max_amount_minor; detail = excess
    GIFT_NOT_IN_BASKET = 22  # the basket qualifies for a gift it lacks; detail = gift units


# LIMIT_REACHED details
LIMIT_MEMBER_USES = 1
LIMIT_TOTAL_USES = 2
LIMIT_BUDGET = 3
LIMIT_UNITS = 4  # no units left (Limits.total_units / units_per_store)


class Tender(IntEnum):
    """Outcome of a points redemption request (docs/pricing.md §6)."""

    NONE = 0
    OK = 1
    LIMITED = 2
    BELOW_MINIMUM = 3
    NOT_MEMBER = 4
    DISABLED = 5


# ---- what a checkout request may hold -----------------------------------------------------
# Read by the checked path (server.api.convert, check_basket in engine.pricing.api) and by the
# byte-level parser (engine.pricing.kernel.wire_in), which hands anything outside them over.
MAX_LINES = 1_000
MAX_QUANTITY = 10_000
MAX_UNIT_PRICE_MINOR = 100_000_000  # 1,000,000.00 in a two-decimal currency
MAX_COUPON_CODES = 30
MAX_ID_CHARS = 128  # every id and string of a request
MAX_TEXT_CHARS = 1_024  # free text of a request: reasons, notes, descriptions
# Bounds that keep every product in the kernels inside int64 (allocation multiplies an amount
# below the total weight by a weight; validation bounds the rule-set side).
MAX_BASKET_GROSS_MINOR = 2_000_000_000
MAX_BASKET_UNITS = 10_000_000
# A day inside what a datetime holds at each end, so the time read in any time zone stays in it.
EARLIEST_S = -62_135_510_400  # 0001-01-02T00:00:00Z
LATEST_S = 253_402_214_399  # 9999-12-30T23:59:59Z
