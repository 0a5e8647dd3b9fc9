"""The pricing kernels: one basket (``price_one``) and a batch in parallel (``price_many``).

Both run ``price_core`` over the candidate offers found through the inverted indexes, so the
work grows with the basket and its candidates, never with the size of the rule set. Outputs
are row tables decoded by ``engine.api`` (columns in ``engine.layout``).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from engine.compiler import RuleArrays
from engine.config import helper, njit
from engine.constants import Kind, Mode, Phase, Reason, Tender
from engine.kernel_rewards import cap_item, propose_item, propose_order
from engine.kernel_util import allocate, candidates, contains, coupon_uses, find_limits, rhu
from engine.layout import (
    C_CHANNEL,
    C_EPOCH,
    C_HOUR,
    C_MONTH,
    C_STORE,
    C_WEEKDAY,
    FLAG_NO_DISCOUNT,
    FLAG_NO_EARN,
    L_FLAGS,
    L_PRICE,
    L_QTY,
    LIM_BUDGET,
    LIM_MEMBER_USES,
    LIM_TOTAL_USES,
    LO_NET,
    LO_POINTS,
    LO_TENDER,
    M_BIRTH_MONTH,
    M_IS_MEMBER,
    M_POINTS,
    M_REDEEM,
    M_SEGMENTS,
    M_TIER,
    N_COMPONENTS,
    N_OVERFLOW,
    N_ROWS,
    N_TENDER_CODE,
    N_TENDER_POINTS,
    NO_GROUP,
    O_ACTIVATION,
    O_BIRTHDAY,
    O_BUNDLE_LEN,
    O_CHANNEL_MASK,
    O_ENDS,
    O_FROM_HOUR,
    O_FUNDED_BPS,
    O_GROUP,
    O_KIND,
    O_MAX_DISCOUNT,
    O_MIN_AMOUNT,
    O_MIN_BASKET,
    O_MIN_QTY,
    O_MODE,
    O_NEEDS_MEMBER,
    O_ORDER_POS,
    O_P1,
    O_P2,
    O_PHASE,
    O_SEGMENT_MASK,
    O_STARTS,
    O_STORE_LEN,
    O_STORE_OFF,
    O_TIER_MASK,
    O_TO_HOUR,
    O_WEEKDAYS,
    P_EARN_PER,
    P_ENABLED,
    P_MAX_SHARE_BPS,
    P_MIN_REDEEM,
    P_POINT_VALUE,
    P_STEP,
    ROW_APPLIED,
    ROW_ATTRIBUTION,
    ROW_DISCOUNT,
    ROW_EXPLANATION,
    ROW_POINTS,
)

BPS = 10000
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
    if offer[o, O_STORE_LEN] > 0 and not contains(rules.stores, offer[o, O_STORE_OFF],
                                                  offer[o, O_STORE_LEN], ctx[C_STORE]):
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


@helper
def evaluate_discount(rules, o, lines, mline, m0, m1, net, basket_net, n_discounted, lock,
                      order_lock, member, ctx, coupons, limits, elig, prop, sc):
    """Checks 1-15 for a discount offer (docs/pricing.md §4) and its proposal.

    Fills ``elig`` and ``prop``; returns (reason, detail, related, applications, eligible
    count, total discount).
    """
    reason, detail = static_reason(rules, o, member, ctx, coupons, limits)
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
    reason, detail = thresholds(rules, o, lines, net, basket_net, elig, ne)
    if reason != 0:
        return reason, detail, -1, 0, ne, 0
    cap = discount_cap(rules, o, limits)
    if rules.offer[o, O_PHASE] == Phase.ITEM:
        reason, detail, apps = propose_item(rules, o, lines, net, elig, ne, prop, sc)
        total = cap_item(prop, elig, ne, cap, sc) if reason == 0 else 0
    else:
        reason, detail, apps = propose_order(rules, o, net, elig, ne, cap, prop, sc)
        total = 0
        if reason == 0:
            for j in range(ne):
                total += prop[elig[j]]
    if reason == 0 and total == 0:
        reason = Reason.NO_BENEFIT
    return reason, detail, -1, apps, ne, total


WS_LOCK, WS_ELIG, WS_BEST_ELIG, WS_PROP, WS_BEST, WS_OUTCOME = 0, 1, 2, 3, 4, 5
WS_SCRATCH = 9  # then 5 rows of scratch for rewards and points
WS_ROWS = 14


@njit
def workspace(rules, n, cand):
    """Scratch for ``price_core``: wide enough for the lines, the candidates and any
    candidate bundle's components."""
    width = max(n, cand.shape[0])
    for c in range(cand.shape[0]):
        width = max(width, rules.offer[cand[c], O_BUNDLE_LEN])
    return np.empty((WS_ROWS, width), dtype=np.int64)


@helper
def price_core(rules, lines, member, ctx, coupons, limits, want_explain, cand, moff, mline,
               ws, line_out, rows, counts):
    """Price one basket: per-line results into ``line_out`` (int64[3, n]), every other
    output into ``rows``; ``ws`` is scratch from :func:`workspace`. Allocates nothing.

    On a full row table ``counts[N_OVERFLOW]`` is set and the caller retries with more rows.
    """
    n = lines.shape[0]
    for k in range(counts.shape[0]):
        counts[k] = 0
    net = line_out[LO_NET]
    tender = line_out[LO_TENDER]
    basket_net = 0
    for i in range(n):
        net[i] = lines[i, L_QTY] * lines[i, L_PRICE]
        basket_net += net[i]
        tender[i] = 0
        line_out[LO_POINTS, i] = 0
    n_discounted = 0  # lines carrying a discount
    order_lock = -1
    lock = ws[WS_LOCK]
    elig = ws[WS_ELIG]
    best_elig = ws[WS_BEST_ELIG]
    prop = ws[WS_PROP]
    best = ws[WS_BEST]
    outcome = ws[WS_OUTCOME:WS_OUTCOME + 4]  # reason, detail, related, applications per candidate
    sc = ws[WS_SCRATCH:]
    for i in range(n):
        lock[i] = -1
    n_cand = cand.shape[0]

    j = 0
    while j < n_cand and rules.offer[cand[j], O_PHASE] != Phase.POINTS:
        # a group (or a lone offer) is the run of candidates sharing a group number
        g = rules.offer[cand[j], O_GROUP]
        end = j + 1
        while g != NO_GROUP and end < n_cand and rules.offer[cand[end], O_GROUP] == g:
            end += 1
        winner = -1
        best_total = 0
        best_ne = 0
        for c in range(j, end):
            r, d, rel, apps, ne, total = evaluate_discount(
                rules, cand[c], lines, mline, moff[c], moff[c + 1], net, basket_net,
                n_discounted, lock, order_lock, member, ctx, coupons, limits, elig, prop, sc)
            outcome[0, c] = r
            outcome[1, c] = d
            outcome[2, c] = rel
            outcome[3, c] = apps
            if r == 0 and total > best_total:
                best_total = total
                winner = c
                best_ne = ne
                for k in range(ne):
                    best_elig[k] = elig[k]
                    best[k] = prop[elig[k]]
        if want_explain:
            for c in range(j, end):
                if c != winner:
                    lost = outcome[0, c] == 0
                    if not emit(rows, counts, ROW_EXPLANATION, rules.offer[cand[c], O_ORDER_POS],
                                cand[c], Reason.LOST_TO_GROUP if lost else outcome[0, c],
                                outcome[1, c], cand[winner] if lost else outcome[2, c]):
                        return
        if winner >= 0:
            o = cand[winner]
            funded_bps = rules.offer[o, O_FUNDED_BPS]
            exclusive = rules.offer[o, O_MODE] == Mode.EXCLUSIVE
            for k in range(best_ne):
                i = best_elig[k]
                amount = best[k]
                if amount > 0:
                    if not emit(rows, counts, ROW_DISCOUNT, i, o, amount,
                                rhu(amount, funded_bps, BPS), 0):
                        return
                    if net[i] == lines[i, L_QTY] * lines[i, L_PRICE]:
                        n_discounted += 1
                    net[i] -= amount
                    basket_net -= amount
                    if exclusive:
                        lock[i] = o
            if rules.offer[o, O_MODE] == Mode.EXCLUSIVE_ORDER:
                order_lock = o
            if not emit(rows, counts, ROW_APPLIED, o, outcome[3, winner], 0, 0, 0):
                return
        j = end

    redeem_points(rules, member, net, basket_net, tender, counts, sc)
    earn_points(rules, lines, member, ctx, coupons, limits, want_explain, cand, moff, mline, j,
                net, basket_net, tender, line_out[LO_POINTS], rows, counts, elig, sc)


@helper
def redeem_points(rules, member, net, basket_net, tender, counts, sc):
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
    allowed = min(max(member[M_POINTS], 0),
                  basket_net * prog[P_MAX_SHARE_BPS] // (BPS * prog[P_POINT_VALUE]))
    if requested >= 0:
        allowed = min(allowed, requested)
    allowed -= allowed % prog[P_STEP]
    if allowed == 0 or allowed < prog[P_MIN_REDEEM]:
        counts[N_TENDER_CODE] = Tender.BELOW_MINIMUM
        return
    counts[N_TENDER_CODE] = Tender.LIMITED if 0 <= requested and allowed < requested else Tender.OK
    counts[N_TENDER_POINTS] = allowed
    allocate(allowed * prog[P_POINT_VALUE], net, net.shape[0], tender, sc[0])


@helper
def add_points(component_offer, points, weights, lines_of, m, line_pts, rows, counts, sc):
    """Record one points component, attributed over lines ``lines_of[:m]`` by ``weights``."""
    k = counts[N_COMPONENTS]
    if not emit(rows, counts, ROW_POINTS, component_offer, points, 0, 0, 0):
        return False
    counts[N_COMPONENTS] = k + 1
    shares = sc[2]
    allocate(points, weights, m, shares, sc[3])
    for j in range(m):
        if shares[j] > 0:
            i = lines_of[j]
            if not emit(rows, counts, ROW_ATTRIBUTION, k, i, shares[j], 0, 0):
                return False
            line_pts[i] += shares[j]
    return True


@helper
def earn_points(rules, lines, member, ctx, coupons, limits, want_explain, cand, moff, mline,
                first, net, basket_net, tender, line_pts, rows, counts, elig, sc):
    """Points phase: base points, then points offers ``cand[first:]`` in order (§6)."""
    n = lines.shape[0]
    prog = rules.programme
    earning = member[M_IS_MEMBER] != 0 and prog[P_ENABLED] != 0
    amount = sc[0]
    every = sc[1]
    total = 0
    for i in range(n):
        every[i] = i
        amount[i] = net[i] - tender[i] if lines[i, L_FLAGS] & FLAG_NO_EARN == 0 else 0
        total += amount[i]
    if earning:
        tier_bps = BPS if member[M_TIER] < 0 else rules.tier_bps[member[M_TIER]]
        base = total * tier_bps // (prog[P_EARN_PER] * BPS)
        if base > 0 and not add_points(-1, base, amount, every, n, line_pts, rows, counts, sc):
            return
    weights = sc[4]
    for c in range(first, cand.shape[0]):
        o = cand[c]
        reason, detail = static_reason(rules, o, member, ctx, coupons, limits)
        ne = 0
        if reason == 0:
            for j in range(moff[c], moff[c + 1]):
                if lines[mline[j], L_FLAGS] & FLAG_NO_EARN == 0:
                    elig[ne] = mline[j]
                    ne += 1
            if ne == 0:
                reason = Reason.NO_ELIGIBLE_LINES
        if reason == 0:
            reason, detail = thresholds(rules, o, lines, net, basket_net, elig, ne)
        points = 0
        if reason == 0 and earning:
            multiplier = rules.offer[o, O_KIND] == Kind.POINTS_MULTIPLIER
            w = 0
            for j in range(ne):
                weights[j] = amount[elig[j]] if multiplier else lines[elig[j], L_QTY]
                w += weights[j]
            if multiplier:
                points = w * rules.offer[o, O_P1] // (prog[P_EARN_PER] * BPS)
            else:
                points = rules.offer[o, O_P1] * w + rules.offer[o, O_P2]
        if reason == 0 and points == 0:
            reason = Reason.NO_BENEFIT
        if reason != 0:
            if want_explain and not emit(rows, counts, ROW_EXPLANATION,
                                         rules.offer[o, O_ORDER_POS], o, reason, detail, -1):
                return
            continue
        if not add_points(o, points, weights, elig, ne, line_pts, rows, counts, sc):
            return
        if not emit(rows, counts, ROW_APPLIED, o, 1, points, 0, 0):
            return


@njit
def price_one(offer, eval_order, sets, set_vals, inv_base, inv_off, inv_pos, all_pos, ladder,
              bundle, stores, tier_bps, programme,
              lines, member, ctx, coupons, limits, want_explain, line_out, rows, counts):
    """Price one basket into caller-owned ``line_out``, ``rows`` and ``counts``.

    The rule arrays come one by one (the fields of ``RuleArrays``, in order): unboxing a
    named tuple costs the caller several microseconds, unboxing plain arrays a fraction.
    """
    rules = RuleArrays(offer, eval_order, sets, set_vals, inv_base, inv_off, inv_pos,
                       all_pos, ladder, bundle, stores, tier_bps, programme)
    cand, moff, mline = candidates(rules, lines, coupons)
    price_core(rules, lines, member, ctx, coupons, limits, want_explain, cand, moff, mline,
               workspace(rules, lines.shape[0], cand), line_out, rows, counts)


@njit(parallel=True)
def price_many(offer, eval_order, sets, set_vals, inv_base, inv_off, inv_pos, all_pos,
               ladder, bundle, stores, tier_bps, programme,
               lines, line_off, members, ctxs, coupon_off, coupons, limit_off, limits,
               rows_per_line, line_out, rows, counts):
    """Price a batch of baskets in parallel, one basket per ``prange`` iteration.

    Basket ``b`` owns lines ``line_off[b]:line_off[b+1]`` and the row slab
    ``line_off[b]*rows_per_line : line_off[b+1]*rows_per_line``; iterations share no writes.
    A basket whose slab fills gets ``counts[b, N_OVERFLOW] = 1`` and the caller prices it
    again alone.
    """
    rules = RuleArrays(offer, eval_order, sets, set_vals, inv_base, inv_off, inv_pos,
                       all_pos, ladder, bundle, stores, tier_bps, programme)
    r = rows_per_line
    for b in prange(line_off.shape[0] - 1):
        lo, hi = line_off[b], line_off[b + 1]
        bl = lines[lo:hi]
        bc = coupons[coupon_off[b]:coupon_off[b + 1]]
        cand, moff, mline = candidates(rules, bl, bc)
        price_core(rules, bl, members[b], ctxs[b], bc, limits[limit_off[b]:limit_off[b + 1]],
                   False, cand, moff, mline, workspace(rules, hi - lo, cand), line_out[:, lo:hi],
                   rows[lo * r:hi * r], counts[b])
