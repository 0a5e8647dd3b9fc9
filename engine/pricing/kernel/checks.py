# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Kernel checks shared by every phase: conditions that do not depend on earlier offers
(docs/pricing.md §4 checks 1-9), caps, thresholds (checks 11-13), and the output-row writer."""

from __future__ import annotations

import numpy as np

from engine.pricing.constants import Reason
from engine.pricing.jit import helper
from engine.pricing.kernel.util import contains, coupon_uses, find_limits
from engine.pricing.layout import (
    C_CHANNEL,
    C_EPOCH,
    C_HOUR,
    C_MONTH,
    C_STORE,
    C_WEEKDAY,
    L_QTY,
    LIM_BUDGET,
    LIM_MEMBER_USES,
    LIM_TOTAL_USES,
    M_BIRTH_MONTH,
    M_IS_MEMBER,
    M_SEGMENTS,
    M_TIER,
    N_OVERFLOW,
    N_ROWS,
    O_ACTIVATION,
    O_BIRTHDAY,
    O_CHANNEL_MASK,
    O_ENDS,
    O_FROM_HOUR,
    O_MAX_DISCOUNT,
    O_MIN_AMOUNT,
    O_MIN_BASKET,
    O_MIN_QTY,
    O_NEEDS_MEMBER,
    O_SEGMENT_MASK,
    O_STARTS,
    O_STORE_LEN,
    O_STORE_OFF,
    O_TIER_MASK,
    O_TO_HOUR,
    O_WEEKDAYS,
)

NO_CAP = np.int64(2**62)


@helper
def static_reason(rules, o, member, ctx, coupons, limits):
    """Checks 1-9 of docs/pricing.md §4, which do not depend on earlier offers."""
    offer = rules.offer
    if offer[o, O_ACTIVATION] == 1:
        _, uses = coupon_uses(coupons, o)
        if uses <= 0:
            return Reason.COUPON_USED_UP, 0
    now = ctx[C_EPOCH]
    if now < offer[o, O_STARTS] or now >= offer[o, O_ENDS]:
        return Reason.NOT_IN_TIME_WINDOW, 0
    days = offer[o, O_WEEKDAYS]
    if days != 0 and (days >> ctx[C_WEEKDAY]) & 1 == 0:
        return Reason.NOT_IN_TIME_WINDOW, 0
    lo, hi, h = offer[o, O_FROM_HOUR], offer[o, O_TO_HOUR], ctx[C_HOUR]
    if lo != 0 or hi != 0:
        inside = (lo <= h < hi) if lo < hi else (h >= lo or h < hi)
        if not inside:
            return Reason.NOT_IN_TIME_WINDOW, 0
    if offer[o, O_STORE_LEN] > 0 and not contains(
        rules.stores, offer[o, O_STORE_OFF], offer[o, O_STORE_LEN], ctx[C_STORE]
    ):
        return Reason.STORE_NOT_ELIGIBLE, 0
    channels = offer[o, O_CHANNEL_MASK]
    if channels != 0 and (ctx[C_CHANNEL] < 0 or (channels >> ctx[C_CHANNEL]) & 1 == 0):
        return Reason.CHANNEL_NOT_ELIGIBLE, 0
    if member[M_IS_MEMBER] == 0 and offer[o, O_NEEDS_MEMBER] != 0:
        return Reason.MEMBER_REQUIRED, 0
    tiers = offer[o, O_TIER_MASK]
    if tiers != 0 and (member[M_TIER] < 0 or (tiers >> member[M_TIER]) & 1 == 0):
        return Reason.TIER_NOT_ELIGIBLE, 0
    if offer[o, O_SEGMENT_MASK] != 0 and offer[o, O_SEGMENT_MASK] & member[M_SEGMENTS] == 0:
        return Reason.SEGMENT_NOT_ELIGIBLE, 0
    if offer[o, O_BIRTHDAY] != 0 and member[M_BIRTH_MONTH] != ctx[C_MONTH]:
        return Reason.NOT_BIRTHDAY_MONTH, 0
    if limits.shape[0] > 0:
        k = find_limits(limits, o)
        if k >= 0:
            if limits[k, LIM_MEMBER_USES] == 0:
                return Reason.LIMIT_REACHED, 1
            if limits[k, LIM_TOTAL_USES] == 0:
                return Reason.LIMIT_REACHED, 2
            if limits[k, LIM_BUDGET] == 0:
                return Reason.LIMIT_REACHED, 3
    return 0, 0


@helper
def discount_cap(rules, o, limits):
    cap = rules.offer[o, O_MAX_DISCOUNT] if rules.offer[o, O_MAX_DISCOUNT] > 0 else NO_CAP
    if limits.shape[0] > 0:
        k = find_limits(limits, o)
        if k >= 0 and limits[k, LIM_BUDGET] >= 0:
            cap = min(cap, limits[k, LIM_BUDGET])
    return cap


@helper
def thresholds(rules, o, lines, net, basket_net, elig, ne):
    """Checks 11-13: minimum basket, quantity and amount; returns (reason, shortfall)."""
    if basket_net < rules.offer[o, O_MIN_BASKET]:
        return Reason.MIN_BASKET_NOT_REACHED, rules.offer[o, O_MIN_BASKET] - basket_net
    qty = 0
    amount = 0
    for j in range(ne):
        qty += lines[elig[j], L_QTY]
        amount += net[elig[j]]
    if qty < rules.offer[o, O_MIN_QTY]:
        return Reason.MIN_QTY_NOT_REACHED, rules.offer[o, O_MIN_QTY] - qty
    if amount < rules.offer[o, O_MIN_AMOUNT]:
        return Reason.MIN_AMOUNT_NOT_REACHED, rules.offer[o, O_MIN_AMOUNT] - amount
    return 0, 0


@helper
def emit(rows, counts, kind, a, b, c, d, e):
    """Append one output row; on a full table flag overflow and return False."""
    k = counts[N_ROWS]
    if k >= rows.shape[0]:
        counts[N_OVERFLOW] = 1
        return False
    rows[k, 0] = kind
    rows[k, 1] = a
    rows[k, 2] = b
    rows[k, 3] = c
    rows[k, 4] = d
    rows[k, 5] = e
    counts[N_ROWS] = k + 1
    return True
