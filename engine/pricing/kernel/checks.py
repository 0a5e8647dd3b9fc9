# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Kernel checks shared by every phase: conditions that do not depend on earlier offers
(docs/pricing.md §4 checks 1-9), caps, thresholds (checks 11-13), the output-row writer, and
every check of a discount offer with its proposal (``evaluate_discount``)."""

from __future__ import annotations

import numpy as np

from engine.pricing.constants import Kind, Mode, Phase, Reason
from engine.pricing.jit import helper, inline_helper
from engine.pricing.kernel.rewards import cap_item, propose_item, propose_order
from engine.pricing.kernel.units import limit_units, units_left
from engine.pricing.kernel.util import contains, coupon_uses, find_limits, in_set, in_window
from engine.pricing.layout import (
    C_CHANNEL,
    C_HOUR,
    C_LOCAL_DAY,
    C_MONTH,
    C_MONTHDAY,
    C_STORE,
    FLAG_NO_DISCOUNT,
    H_ACTIVATION,
    H_STATIC,
    L_FLAGS,
    L_PRICE,
    L_QTY,
    LIM_BUDGET,
    LIM_MEMBER_USES,
    LIM_TOTAL_USES,
    LIM_UNITS,
    M_ATTRS,
    M_BIRTH_MONTH,
    M_IS_MEMBER,
    M_SEGMENTS,
    M_TIER,
    N_DROP,
    N_OVERFLOW,
    N_ROWS,
    O_ATTR_MASK,
    O_BIRTHDAY,
    O_CHANNEL_MASK,
    O_FROM_HOUR,
    O_GET_SET,
    O_KIND,
    O_MAX_AMOUNT,
    O_MAX_BASKET,
    O_MAX_DISCOUNT,
    O_MIN_AMOUNT,
    O_MIN_BASKET,
    O_MIN_QTY,
    O_MODE,
    O_NEEDS_MEMBER,
    O_PHASE,
    O_REC_ANCHOR,
    O_REC_FREQ,
    O_REC_INTERVAL,
    O_REC_MONTHDAYS,
    O_SEGMENT_MASK,
    O_STORE_LEN,
    O_STORE_OFF,
    O_TIER_MASK,
    O_TO_HOUR,
    O_UNITS_GROUPS,
)
from engine.pricing.recurrence import Freq
from engine.pricing.rule_arrays import check_arrays, reward_arrays

NO_CAP = np.int64(2**62)


@inline_helper
def static_reason(rules, o, member, ctx, coupons, limits):
    """Checks 1-9 of docs/pricing.md §4, which do not depend on earlier offers; ``rules``
    is a ``CheckArrays`` (``check_arrays``) or any tuple with its fields. Inlined (twice
    in ``price_core``, ~7 times a basket): its call passed ~60 words on the stack, more
    than the checks cost."""
    offer = rules.offer
    if rules.hot[o, H_ACTIVATION] == 1:
        _, uses = coupon_uses(coupons, o)
        if uses <= 0:
            return Reason.COUPON_USED_UP, 0
    if not in_window(rules.hot, o, ctx):
        return Reason.NOT_IN_TIME_WINDOW, 0
    if offer[o, O_REC_FREQ] != 0 and not recurs(offer, o, ctx):
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
    if offer[o, O_ATTR_MASK] & ~member[M_ATTRS] != 0:  # a member-attribute test fails
        return Reason.MEMBER_ATTRIBUTE_MISMATCH, 0
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
            if limits[k, LIM_UNITS] == 0:
                return Reason.LIMIT_REACHED, 4
    return 0, 0


@helper
def civil(day):
    """(year, month) of local day number ``day`` (days since 1970-01-01, proleptic Gregorian)."""
    z = day + 719468  # days since 0000-03-01
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month


@helper
def recurs(offer, o, ctx):
    """Whether the local day of ``ctx`` is a day of offer ``o``'s recurrence (O_REC_*; BYDAY
    is in O_WEEKDAYS): on or after the anchor, in a period ``n`` with ``n % interval == 0``,
    and on an allowed day of the month."""
    day, anchor = ctx[C_LOCAL_DAY], offer[o, O_REC_ANCHOR]
    if day < anchor:
        return False
    freq = offer[o, O_REC_FREQ]
    if freq == Freq.DAILY:
        n = day - anchor
    elif freq == Freq.WEEKLY:
        n = (day - (anchor - (anchor + 3) % 7)) // 7  # weeks since the anchor's Monday
    else:
        y, m = civil(day)
        ya, ma = civil(anchor)
        n = (y - ya) * 12 + m - ma
    if n % offer[o, O_REC_INTERVAL] != 0:
        return False
    days = offer[o, O_REC_MONTHDAYS]
    if days == 0:
        return True
    md = ctx[C_MONTHDAY]
    if (days >> md) & 1 != 0:
        return True
    y, m = civil(day)
    last = 28 + (1 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 0)
    if m != 2:
        last = 30 + ((m ^ (m >> 3)) & 1)
    return (days >> (31 + last + 1 - md)) & 1 != 0  # BYMONTHDAY -k is bit 31 + k


@helper
def discount_cap(rules, o, limits):
    cap = rules.offer[o, O_MAX_DISCOUNT] if rules.offer[o, O_MAX_DISCOUNT] > 0 else NO_CAP
    if limits.shape[0] > 0:
        k = find_limits(limits, o)
        if k >= 0 and limits[k, LIM_BUDGET] >= 0:
            cap = min(cap, limits[k, LIM_BUDGET])
    return cap


@inline_helper
def thresholds(offer, o, lines, net, basket_net, elig, ne):
    """Checks 11-13: minimum (then maximum) basket, quantity (then a complete group of
    ``Limits.units_in_groups_of``), minimum (then maximum) amount; returns (reason, shortfall
    or excess). Inlined (once per candidate): its call alone, every array passed on the
    stack, cost a quarter of ``price_core``'s time on history baskets when it took the whole
    rule set."""
    if basket_net < offer[o, O_MIN_BASKET]:
        return Reason.MIN_BASKET_NOT_REACHED, offer[o, O_MIN_BASKET] - basket_net
    top = offer[o, O_MAX_BASKET]
    if top > 0 and basket_net > top:
        return Reason.MAX_BASKET_EXCEEDED, basket_net - top
    qty = 0
    amount = 0
    for j in range(ne):
        qty += lines[elig[j], L_QTY]
        amount += net[elig[j]]
    if qty < offer[o, O_MIN_QTY]:
        return Reason.MIN_QTY_NOT_REACHED, offer[o, O_MIN_QTY] - qty
    if qty < offer[o, O_UNITS_GROUPS]:  # not one complete group
        return Reason.MIN_QTY_NOT_REACHED, offer[o, O_UNITS_GROUPS] - qty
    if amount < offer[o, O_MIN_AMOUNT]:
        return Reason.MIN_AMOUNT_NOT_REACHED, offer[o, O_MIN_AMOUNT] - amount
    top = offer[o, O_MAX_AMOUNT]
    if top > 0 and amount > top:
        return Reason.MAX_AMOUNT_EXCEEDED, amount - top
    return 0, 0


@helper
def gift_thresholds(rules, o, lines, net, basket_net, mline, m0, m1, elig, ne, qual):
    """Checks 11-13 of a gift offer, read without the gift's own lines: the basket net less
    theirs, and the eligible lines that are not gift lines (``qual``, scratch)."""
    s = rules.offer[o, O_GET_SET]
    for j in range(m0, m1):
        if in_set(rules.sets, rules.set_vals, s, lines, mline[j]):
            basket_net -= net[mline[j]]
    nq = 0
    for j in range(ne):
        if not in_set(rules.sets, rules.set_vals, s, lines, elig[j]):
            qual[nq] = elig[j]
            nq += 1
    if nq == 0:
        return Reason.NO_ELIGIBLE_LINES, 0
    return thresholds(rules.offer, o, lines, net, basket_net, qual, nq)


@helper
def emit(rows, counts, kind, a, b, c, d, e):
    """Append one output row (unless the caller drops its kind, ``counts[N_DROP]``); on a
    full table flag overflow and return False."""
    if (counts[N_DROP] >> kind) & 1:
        return True
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


@inline_helper
def evaluate_discount(
    rules,
    o,
    lines,
    mline,
    m0,
    m1,
    net,
    basket_net,
    n_discounted,
    lock,
    order_lock,
    member,
    ctx,
    coupons,
    limits,
    checked,
    elig,
    prop,
    sc,
):
    """Checks 1-15 for a discount offer (docs/pricing.md §4) and its proposal; ``checked``:
    discovery ran the hot table's checks 1-9 (``find_candidates``' prefilter).

    Fills ``elig`` and ``prop``; returns (reason, detail, related, applications, eligible
    count, total discount).
    """
    if not checked or rules.hot[o, H_STATIC] != 0 or limits.shape[0] > 0:
        reason, detail = static_reason(check_arrays(rules), o, member, ctx, coupons, limits)
        if reason != 0:
            return reason, detail, -1, 0, 0, 0
    # check 10: eligible lines; mline[m0:m1] are the scope lines, ascending
    ne = 0
    first_lock = -1
    for j in range(m0, m1):
        i = mline[j]
        if lines[i, L_FLAGS] & FLAG_NO_DISCOUNT == 0:
            elig[ne] = i
            ne += 1
    if ne == 0:
        return Reason.NO_ELIGIBLE_LINES, 0, -1, 0, 0, 0
    if order_lock >= 0:
        return Reason.EXCLUDED_BY_EXCLUSIVE, 0, order_lock, 0, 0, 0
    kept = 0
    for j in range(ne):
        i = elig[j]
        if lock[i] >= 0:
            if first_lock < 0:
                first_lock = lock[i]
        else:
            elig[kept] = i
            kept += 1
    ne = kept
    if ne == 0:
        return Reason.EXCLUDED_BY_EXCLUSIVE, 0, first_lock, 0, 0, 0
    mode = rules.offer[o, O_MODE]
    if mode == Mode.EXCLUSIVE:
        kept = 0
        for j in range(ne):
            i = elig[j]
            if net[i] == lines[i, L_QTY] * lines[i, L_PRICE]:  # no discount yet
                elig[kept] = i
                kept += 1
        ne = kept
        if ne == 0:
            return Reason.ALREADY_DISCOUNTED, 0, -1, 0, 0, 0
    elif mode == Mode.EXCLUSIVE_ORDER and n_discounted > 0:
        return Reason.ALREADY_DISCOUNTED, 0, -1, 0, 0, 0
    if rules.offer[o, O_KIND] == Kind.GIFT:
        reason, detail = gift_thresholds(
            rules, o, lines, net, basket_net, mline, m0, m1, elig, ne, sc[0]
        )
    else:
        reason, detail = thresholds(rules.offer, o, lines, net, basket_net, elig, ne)
    if reason != 0:
        return reason, detail, -1, 0, ne, 0
    cap = discount_cap(rules, o, limits)
    # delivery_off and gift run in the order phase but discount lines as item rewards do
    kind = rules.offer[o, O_KIND]
    if rules.offer[o, O_PHASE] == Phase.ITEM or kind == Kind.DELIVERY_OFF or kind == Kind.GIFT:
        reason, detail, apps = propose_item(reward_arrays(rules), o, lines, net, elig, ne, prop, sc)
        if reason == 0:
            limit_units(rules.offer, o, lines, elig, ne, prop, units_left(limits, o))
        total = cap_item(prop, elig, ne, cap, sc) if reason == 0 else 0
    else:
        reason, detail, apps = propose_order(reward_arrays(rules), o, net, elig, ne, cap, prop, sc)
        total = 0
        if reason == 0:
            for j in range(ne):
                total += prop[elig[j]]
    if reason == 0 and total == 0:
        reason = Reason.NO_BENEFIT
        detail = 0  # a gift's detail is its units found, meant for the winner alone
    return reason, detail, -1, apps, ne, total
