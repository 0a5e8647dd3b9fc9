# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Kernel points phases: points tender, then base points and points offers (§6)."""

from __future__ import annotations

from engine.pricing.constants import BPS, Kind, Reason, Tender
from engine.pricing.jit import inline_helper
from engine.pricing.kernel.checks import emit, static_reason, thresholds
from engine.pricing.kernel.merge import share
from engine.pricing.kernel.util import allocate
from engine.pricing.layout import (
    FLAG_DELIVERY,
    FLAG_NO_EARN,
    H_STATIC,
    L_FLAGS,
    L_QTY,
    M_IS_MEMBER,
    M_POINTS,
    M_REDEEM,
    M_TIER,
    N_COMPONENTS,
    N_TENDER_CODE,
    N_TENDER_POINTS,
    O_KIND,
    O_ORDER_POS,
    O_P1,
    O_P2,
    P_EARN_DELIVERY,
    P_EARN_PER,
    P_ENABLED,
    P_MAX_SHARE_BPS,
    P_MIN_REDEEM,
    P_POINT_VALUE,
    P_STEP,
    ROW_APPLIED,
    ROW_ATTRIBUTION,
    ROW_EXPLANATION,
    ROW_POINTS,
)
from engine.pricing.rule_arrays import check_arrays


@inline_helper
def redeem_points(rules, lines, member, net, basket_net, tender, counts, sc):
    """Points tender (docs/pricing.md §6), over the goods (``basket_net`` is theirs)."""
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
    allowed = min(
        max(member[M_POINTS], 0), basket_net * prog[P_MAX_SHARE_BPS] // (BPS * prog[P_POINT_VALUE])
    )
    if requested >= 0:
        allowed = min(allowed, requested)
    allowed -= allowed % prog[P_STEP]
    if allowed == 0 or allowed < prog[P_MIN_REDEEM]:
        counts[N_TENDER_CODE] = Tender.BELOW_MINIMUM
        return
    counts[N_TENDER_CODE] = Tender.LIMITED if 0 <= requested and allowed < requested else Tender.OK
    counts[N_TENDER_POINTS] = allowed
    goods = sc[1]
    for i in range(net.shape[0]):
        goods[i] = 0 if lines[i, L_FLAGS] & FLAG_DELIVERY else net[i]
    allocate(allowed * prog[P_POINT_VALUE], goods, net.shape[0], tender, sc[0])


@inline_helper
def add_points(
    component_offer, points, weights, lines_of, m, basket, mg, paid, line_pts, rows, counts, sc
):
    """Record one points component, attributed over merged lines ``lines_of[:m]`` by
    ``weights``; a merged line's share goes to its basket lines by what they paid (``paid``),
    or by quantity when they paid nothing (kernel/merge.py)."""
    k = counts[N_COMPONENTS]
    if not emit(rows, counts, ROW_POINTS, component_offer, points, 0, 0, 0):
        return False
    counts[N_COMPONENTS] = k + 1
    shares = sc[2]
    allocate(points, weights, m, shares, sc[3])
    for j in range(m):
        if shares[j] > 0:
            for t in range(share(mg, basket, lines_of[j], shares[j], paid, True)):
                i = mg[5][t]
                if mg[3][t] > 0:
                    if not emit(rows, counts, ROW_ATTRIBUTION, k, i, mg[3][t], 0, 0):
                        return False
                    line_pts[i] += mg[3][t]
    return True


@inline_helper
def earn_points(
    rules,
    basket,
    mg,
    paid,
    lines,
    member,
    ctx,
    coupons,
    limits,
    want_explain,
    cand,
    moff,
    mline,
    first,
    net,
    basket_net,
    tender,
    line_pts,
    rows,
    counts,
    elig,
    sc,
):
    """Points phase: base points, then points offers ``cand[first:]`` in order (§6), on the
    merged ``lines``; ``line_pts`` and the attribution rows are per ``basket`` line."""
    n = lines.shape[0]
    prog = rules.programme
    earning = member[M_IS_MEMBER] != 0 and prog[P_ENABLED] != 0
    amount = sc[0]
    every = sc[1]
    total = 0
    # delivery lines earn base points only when the programme says so
    no_earn = FLAG_NO_EARN if prog[P_EARN_DELIVERY] else FLAG_NO_EARN | FLAG_DELIVERY
    for i in range(n):
        every[i] = i
        amount[i] = net[i] - tender[i] if lines[i, L_FLAGS] & no_earn == 0 else 0
        total += amount[i]
    if earning:
        tier_bps = BPS if member[M_TIER] < 0 else rules.tier_bps[member[M_TIER]]
        base = total * tier_bps // (prog[P_EARN_PER] * BPS)
        if base > 0 and not add_points(
            -1, base, amount, every, n, basket, mg, paid, line_pts, rows, counts, sc
        ):
            return
    weights = sc[4]
    for c in range(first, cand.shape[0]):
        o = cand[c]
        reason, detail = 0, 0
        # unexplained, discovery ran what the hot table holds of checks 1-9
        if want_explain or rules.hot[o, H_STATIC] != 0 or limits.shape[0] > 0:
            reason, detail = static_reason(check_arrays(rules), o, member, ctx, coupons, limits)
        ne = 0
        if reason == 0:
            for j in range(moff[c], moff[c + 1]):
                if lines[mline[j], L_FLAGS] & FLAG_NO_EARN == 0:
                    elig[ne] = mline[j]
                    ne += 1
            if ne == 0:
                reason = Reason.NO_ELIGIBLE_LINES
        if reason == 0:
            reason, detail = thresholds(rules.offer, o, lines, net, basket_net, elig, ne)
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
            if want_explain and not emit(
                rows, counts, ROW_EXPLANATION, rules.offer[o, O_ORDER_POS], o, reason, detail, -1
            ):
                return
            continue
        if not add_points(
            o, points, weights, elig, ne, basket, mg, paid, line_pts, rows, counts, sc
        ):
            return
        if not emit(rows, counts, ROW_APPLIED, o, 1, points, 0, 0):
            return
