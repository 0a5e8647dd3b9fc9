"""The pricing kernels: one basket (``price_one``) and a batch in parallel (``price_many``).

Both run ``price_core`` over the candidate offers found through the inverted indexes, so the
work grows with the basket and its candidates, never with the size of the rule set. Outputs
are row tables decoded by ``engine.api`` (columns in ``engine.layout``).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from engine.config import njit
from engine.constants import Kind, Mode, Phase, Reason, Tender
from engine.kernel_rewards import cap_item, propose_item, propose_order
from engine.kernel_util import allocate, candidates, contains, coupon_uses, find_limits, rhu
from engine.compiler import RuleArrays
from engine.layout import (
    C_CHANNEL, C_EPOCH, C_HOUR, C_MONTH, C_STORE, C_WEEKDAY,
    FLAG_NO_DISCOUNT, FLAG_NO_EARN,
    L_FLAGS, L_PRICE, L_QTY, LIM_BUDGET, LIM_MEMBER_USES, LIM_TOTAL_USES,
    LO_NET, LO_POINTS, LO_TENDER,
    M_BIRTH_MONTH, M_IS_MEMBER, M_POINTS, M_REDEEM, M_SEGMENTS, M_TIER,
    N_COMPONENTS, N_OVERFLOW, N_ROWS, N_TENDER_CODE, N_TENDER_POINTS, NO_GROUP,
    O_ACTIVATION, O_BIRTHDAY, O_CHANNEL_MASK, O_ENDS, O_FROM_HOUR, O_FUNDED_BPS, O_GROUP,
    O_KIND, O_MAX_DISCOUNT, O_MIN_AMOUNT, O_MIN_BASKET, O_MIN_QTY, O_MODE, O_NEEDS_MEMBER,
    O_ORDER_POS, O_P1, O_P2, O_PHASE, O_SEGMENT_MASK, O_STARTS, O_STORE_LEN, O_STORE_OFF,
    O_TIER_MASK, O_TO_HOUR, O_WEEKDAYS,
    P_EARN_PER, P_ENABLED, P_MAX_SHARE_BPS, P_MIN_REDEEM, P_POINT_VALUE, P_STEP,
    ROW_APPLIED, ROW_ATTRIBUTION, ROW_DISCOUNT, ROW_EXPLANATION, ROW_POINTS,
)

BPS = 10000
NO_CAP = np.int64(2**62)


@njit
def static_reason(rules, o, member, ctx, coupons, limits):
    """Checks 1-9 of docs/pricing.md §4, which do not depend on earlier offers."""
    t = rules.offer[o]
    if t[O_ACTIVATION] == 1:
        _, uses = coupon_uses(coupons, o)
        if uses <= 0:
            return Reason.COUPON_USED_UP, 0
    if ctx[C_EPOCH] < t[O_STARTS] or ctx[C_EPOCH] >= t[O_ENDS]:
        return Reason.NOT_IN_TIME_WINDOW, 0
    if t[O_WEEKDAYS] != 0 and (t[O_WEEKDAYS] >> ctx[C_WEEKDAY]) & 1 == 0:
        return Reason.NOT_IN_TIME_WINDOW, 0
    lo, hi, h = t[O_FROM_HOUR], t[O_TO_HOUR], ctx[C_HOUR]
    if lo != 0 or hi != 0:
        inside = (lo <= h < hi) if lo < hi else (h >= lo or h < hi)
        if not inside:
            return Reason.NOT_IN_TIME_WINDOW, 0
    if t[O_STORE_LEN] > 0 and not contains(rules.stores, t[O_STORE_OFF], t[O_STORE_LEN],
                                           ctx[C_STORE]):
        return Reason.STORE_NOT_ELIGIBLE, 0
    if t[O_CHANNEL_MASK] != 0 and (ctx[C_CHANNEL] < 0
                                   or (t[O_CHANNEL_MASK] >> ctx[C_CHANNEL]) & 1 == 0):
        return Reason.CHANNEL_NOT_ELIGIBLE, 0
    if member[M_IS_MEMBER] == 0 and t[O_NEEDS_MEMBER] != 0:
        return Reason.MEMBER_REQUIRED, 0
    if t[O_TIER_MASK] != 0 and (member[M_TIER] < 0
                                or (t[O_TIER_MASK] >> member[M_TIER]) & 1 == 0):
        return Reason.TIER_NOT_ELIGIBLE, 0
    if t[O_SEGMENT_MASK] != 0 and t[O_SEGMENT_MASK] & member[M_SEGMENTS] == 0:
        return Reason.SEGMENT_NOT_ELIGIBLE, 0
    if t[O_BIRTHDAY] != 0 and member[M_BIRTH_MONTH] != ctx[C_MONTH]:
        return Reason.NOT_BIRTHDAY_MONTH, 0
    k = find_limits(limits, o)
    if k >= 0:
        for col, code in ((LIM_MEMBER_USES, 1), (LIM_TOTAL_USES, 2), (LIM_BUDGET, 3)):
            if limits[k, col] == 0:
                return Reason.LIMIT_REACHED, code
    return 0, 0


@njit
def discount_cap(rules, o, limits):
    cap = rules.offer[o, O_MAX_DISCOUNT] if rules.offer[o, O_MAX_DISCOUNT] > 0 else NO_CAP
    k = find_limits(limits, o)
    if k >= 0 and limits[k, LIM_BUDGET] >= 0:
        cap = min(cap, limits[k, LIM_BUDGET])
    return cap


@njit
def flagged_out(match, lines, flag, elig):
    """Scope lines without ``flag`` into ``elig``; whether there is any."""
    anyone = False
    for i in range(lines.shape[0]):
        elig[i] = match[i] and (lines[i, L_FLAGS] & flag) == 0
        anyone = anyone or elig[i]
    return anyone


@njit
def eligible_lines(rules, o, match, lines, discounted, lock, order_lock, elig):
    """Check 10 of docs/pricing.md §4: fills ``elig``; returns (reason, related offer)."""
    t = rules.offer[o]
    n = lines.shape[0]
    if not flagged_out(match, lines, FLAG_NO_DISCOUNT, elig):
        return Reason.NO_ELIGIBLE_LINES, -1
    if order_lock >= 0:
        return Reason.EXCLUDED_BY_EXCLUSIVE, order_lock
    first_lock = -1
    anyone = False
    for i in range(n):
        if elig[i] and lock[i] >= 0:
            if first_lock < 0:
                first_lock = lock[i]
            elig[i] = False
        anyone = anyone or elig[i]
    if not anyone:
        return Reason.EXCLUDED_BY_EXCLUSIVE, first_lock
    if t[O_MODE] == Mode.EXCLUSIVE:
        anyone = False
        for i in range(n):
            elig[i] = elig[i] and not discounted[i]
            anyone = anyone or elig[i]
        if not anyone:
            return Reason.ALREADY_DISCOUNTED, -1
    elif t[O_MODE] == Mode.EXCLUSIVE_ORDER and discounted.any():
        return Reason.ALREADY_DISCOUNTED, -1
    return 0, -1


@njit
def thresholds(rules, o, lines, net, elig):
    """Checks 11-13: minimum basket, quantity and amount; returns (reason, shortfall)."""
    t = rules.offer[o]
    basket = net.sum()
    if basket < t[O_MIN_BASKET]:
        return Reason.MIN_BASKET_NOT_REACHED, t[O_MIN_BASKET] - basket
    qty = 0
    amount = 0
    for i in range(lines.shape[0]):
        if elig[i]:
            qty += lines[i, L_QTY]
            amount += net[i]
    if qty < t[O_MIN_QTY]:
        return Reason.MIN_QTY_NOT_REACHED, t[O_MIN_QTY] - qty
    if amount < t[O_MIN_AMOUNT]:
        return Reason.MIN_AMOUNT_NOT_REACHED, t[O_MIN_AMOUNT] - amount
    return 0, 0


@njit
def emit(rows, counts, kind, a, b, c, d, e):
    """Append one output row; on a full table flag overflow and return False."""
    k = counts[N_ROWS]
    if k >= rows.shape[0]:
        counts[N_OVERFLOW] = 1
        return False
    rows[k, 0], rows[k, 1], rows[k, 2], rows[k, 3], rows[k, 4], rows[k, 5] = kind, a, b, c, d, e
    counts[N_ROWS] = k + 1
    return True


@njit
def evaluate_discount(rules, o, match, lines, net, discounted, lock, order_lock,
                      member, ctx, coupons, limits, elig, prop):
    """Checks 1-15 for a discount offer; fills ``prop``; returns (reason, detail, related, apps)."""
    reason, detail = static_reason(rules, o, member, ctx, coupons, limits)
    if reason != 0:
        return reason, detail, -1, 0
    reason, related = eligible_lines(rules, o, match, lines, discounted, lock, order_lock, elig)
    if reason != 0:
        return reason, 0, related, 0
    reason, detail = thresholds(rules, o, lines, net, elig)
    if reason != 0:
        return reason, detail, -1, 0
    prop[:] = 0
    cap = discount_cap(rules, o, limits)
    if rules.offer[o, O_PHASE] == Phase.ITEM:
        reason, detail, apps = propose_item(rules, o, lines, net, elig, prop)
        if reason == 0:
            cap_item(prop, cap)
    else:
        reason, detail, apps = propose_order(rules, o, net, elig, cap, prop)
    if reason == 0 and prop.sum() == 0:
        reason = Reason.NO_BENEFIT
    return reason, detail, -1, apps


@njit
def price_core(rules, lines, member, ctx, coupons, limits, want_explain, cand, match,
               line_out, rows, counts):
    """Price one basket: per-line results into ``line_out`` (int64[3, n]), every other output into ``rows``.

    On a full row table ``counts[N_OVERFLOW]`` is set and the caller retries with more rows.
    """
    n = lines.shape[0]
    counts[:] = 0
    net = line_out[LO_NET]
    tender = line_out[LO_TENDER]
    for i in range(n):
        net[i] = lines[i, L_QTY] * lines[i, L_PRICE]
        tender[i] = 0
        line_out[LO_POINTS, i] = 0
    discounted = np.zeros(n, dtype=np.bool_)
    lock = np.full(n, -1, dtype=np.int64)
    order_lock = -1
    elig = np.zeros(n, dtype=np.bool_)
    prop = np.zeros(n, dtype=np.int64)
    best = np.zeros(n, dtype=np.int64)
    n_cand = cand.shape[0]
    outcome = np.zeros((n_cand, 4), dtype=np.int64)  # reason, detail, related, apps

    j = 0
    while j < n_cand and rules.offer[cand[j], O_PHASE] != Phase.POINTS:
        # a group (or a lone offer) is the run of candidates sharing a group number
        g = rules.offer[cand[j], O_GROUP]
        end = j + 1
        while g != NO_GROUP and end < n_cand and rules.offer[cand[end], O_GROUP] == g:
            end += 1
        winner = -1
        best_total = 0
        for c in range(j, end):
            r, d, rel, apps = evaluate_discount(rules, cand[c], match[c], lines, net, discounted,
                                                lock, order_lock, member, ctx, coupons, limits,
                                                elig, prop)
            outcome[c, 0], outcome[c, 1], outcome[c, 2], outcome[c, 3] = r, d, rel, apps
            if r == 0 and prop.sum() > best_total:
                best_total = prop.sum()
                winner = c
                best[:] = prop
        if want_explain:
            for c in range(j, end):
                if c != winner:
                    lost = outcome[c, 0] == 0
                    if not emit(rows, counts, ROW_EXPLANATION, rules.offer[cand[c], O_ORDER_POS],
                                cand[c], Reason.LOST_TO_GROUP if lost else outcome[c, 0],
                                outcome[c, 1], cand[winner] if lost else outcome[c, 2]):
                        return
        if winner >= 0:
            o = cand[winner]
            t = rules.offer[o]
            for i in range(n):
                if best[i] > 0:
                    if not emit(rows, counts, ROW_DISCOUNT, i, o, best[i],
                                rhu(best[i], t[O_FUNDED_BPS], BPS), 0):
                        return
                    net[i] -= best[i]
                    discounted[i] = True
                    if t[O_MODE] == Mode.EXCLUSIVE:
                        lock[i] = o
            if t[O_MODE] == Mode.EXCLUSIVE_ORDER:
                order_lock = o
            if not emit(rows, counts, ROW_APPLIED, o, outcome[winner, 3], 0, 0, 0):
                return
        j = end

    redeem_points(rules, lines, member, net, tender, counts)
    earn_points(rules, lines, member, ctx, coupons, limits, want_explain, cand[j:], match[j:],
                net, tender, line_out[LO_POINTS], rows, counts, elig)


@njit
def redeem_points(rules, lines, member, net, tender, counts):
    """Points tender (docs/pricing.md §6)."""
    requested = member[M_REDEEM]
    prog = rules.programme
    if requested == 0:
        counts[N_TENDER_CODE] = Tender.NONE
        return
    if member[M_IS_MEMBER] == 0:
        counts[N_TENDER_CODE] = Tender.NOT_MEMBER
        return
    if prog[P_ENABLED] == 0 or prog[P_MAX_SHARE_BPS] == 0:
        counts[N_TENDER_CODE] = Tender.DISABLED
        return
    total = net.sum()
    allowed = min(max(member[M_POINTS], 0),
                  total * prog[P_MAX_SHARE_BPS] // (BPS * prog[P_POINT_VALUE]))
    if requested >= 0:
        allowed = min(allowed, requested)
    allowed -= allowed % prog[P_STEP]
    if allowed == 0 or allowed < prog[P_MIN_REDEEM]:
        counts[N_TENDER_CODE] = Tender.BELOW_MINIMUM
        return
    counts[N_TENDER_CODE] = Tender.LIMITED if 0 <= requested and allowed < requested else Tender.OK
    counts[N_TENDER_POINTS] = allowed
    allocate(allowed * prog[P_POINT_VALUE], net.copy(), tender)


@njit
def add_points(component_offer, points, weights, line_pts, rows, counts):
    """Record one points component and its attribution over the lines."""
    k = counts[N_COMPONENTS]
    if not emit(rows, counts, ROW_POINTS, component_offer, points, 0, 0, 0):
        return False
    counts[N_COMPONENTS] = k + 1
    shares = np.empty(weights.shape[0], dtype=np.int64)
    allocate(points, weights, shares)
    for i in range(weights.shape[0]):
        if shares[i] > 0:
            if not emit(rows, counts, ROW_ATTRIBUTION, k, i, shares[i], 0, 0):
                return False
            line_pts[i] += shares[i]
    return True


@njit
def earn_points(rules, lines, member, ctx, coupons, limits, want_explain, cand, match, net,
                tender, line_pts, rows, counts, elig):
    """Points phase: base points, then points offers in order (docs/pricing.md §6)."""
    n = lines.shape[0]
    prog = rules.programme
    earning = member[M_IS_MEMBER] != 0 and prog[P_ENABLED] != 0
    amount = np.zeros(n, dtype=np.int64)
    for i in range(n):
        if (lines[i, L_FLAGS] & FLAG_NO_EARN) == 0:
            amount[i] = net[i] - tender[i]
    if earning:
        tier_bps = BPS if member[M_TIER] < 0 else rules.tier_bps[member[M_TIER]]
        base = amount.sum() * tier_bps // (prog[P_EARN_PER] * BPS)
        if base > 0 and not add_points(-1, base, amount, line_pts, rows, counts):
            return
    weights = np.zeros(n, dtype=np.int64)
    for c in range(cand.shape[0]):
        o = cand[c]
        t = rules.offer[o]
        reason, detail = static_reason(rules, o, member, ctx, coupons, limits)
        if reason == 0 and not flagged_out(match[c], lines, FLAG_NO_EARN, elig):
            reason = Reason.NO_ELIGIBLE_LINES
        if reason == 0:
            reason, detail = thresholds(rules, o, lines, net, elig)
        points = 0
        if reason == 0 and earning:
            for i in range(n):
                if not elig[i]:
                    weights[i] = 0
                elif t[O_KIND] == Kind.POINTS_MULTIPLIER:
                    weights[i] = amount[i]
                else:
                    weights[i] = lines[i, L_QTY]
            if t[O_KIND] == Kind.POINTS_MULTIPLIER:
                points = weights.sum() * t[O_P1] // (prog[P_EARN_PER] * BPS)
            else:
                points = t[O_P1] * weights.sum() + t[O_P2]
        if reason == 0 and points == 0:
            reason = Reason.NO_BENEFIT
        if reason != 0:
            if want_explain and not emit(rows, counts, ROW_EXPLANATION, t[O_ORDER_POS], o,
                                         reason, detail, -1):
                return
            continue
        if not add_points(o, points, weights, line_pts, rows, counts):
            return
        if not emit(rows, counts, ROW_APPLIED, o, 1, points, 0, 0):
            return


@njit
def price_one(offer, eval_order, sets, set_vals, inv_base, inv_off, inv_val, all_offers, ladder,
              bundle, stores, tier_bps, programme,
              lines, member, ctx, coupons, limits, want_explain, line_out, rows, counts):
    """Price one basket into caller-owned ``line_out``, ``rows`` and ``counts``.

    The rule arrays come one by one (the fields of ``RuleArrays``, in order): unboxing a
    named tuple costs the caller several microseconds, unboxing plain arrays a fraction.
    """
    rules = RuleArrays(offer, eval_order, sets, set_vals, inv_base, inv_off, inv_val,
                       all_offers, ladder, bundle, stores, tier_bps, programme)
    cand, match = candidates(rules, lines, coupons)
    price_core(rules, lines, member, ctx, coupons, limits, want_explain, cand, match,
               line_out, rows, counts)


@njit(parallel=True)
def price_many(offer, eval_order, sets, set_vals, inv_base, inv_off, inv_val, all_offers,
               ladder, bundle, stores, tier_bps, programme,
               lines, line_off, members, ctxs, coupon_off, coupons, limit_off, limits,
               rows_per_line, line_out, rows, counts):
    """Price a batch of baskets in parallel, one basket per ``prange`` iteration.

    Basket ``b`` owns lines ``line_off[b]:line_off[b+1]`` and the row slab
    ``line_off[b]*rows_per_line : line_off[b+1]*rows_per_line``; iterations share no writes.
    A basket whose slab fills gets ``counts[b, N_OVERFLOW] = 1`` and the caller prices it
    again alone.
    """
    rules = RuleArrays(offer, eval_order, sets, set_vals, inv_base, inv_off, inv_val,
                       all_offers, ladder, bundle, stores, tier_bps, programme)
    r = rows_per_line
    for b in prange(line_off.shape[0] - 1):
        lo, hi = line_off[b], line_off[b + 1]
        bl = lines[lo:hi]
        bc = coupons[coupon_off[b]:coupon_off[b + 1]]
        cand, match = candidates(rules, bl, bc)
        price_core(rules, bl, members[b], ctxs[b], bc, limits[limit_off[b]:limit_off[b + 1]],
                   False, cand, match, line_out[:, lo:hi], rows[lo * r:hi * r], counts[b])
