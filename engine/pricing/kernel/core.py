# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""The pricing kernels: one basket (``price_one``) and a batch in parallel (``price_many``).

Both run ``price_core`` over the candidate offers found through the inverted indexes, so the
work grows with the basket and its candidates, never with the size of the rule set. Outputs
are row tables decoded by ``engine.pricing.api`` (columns in ``engine.pricing.layout``).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from engine.pricing.compiler import RuleArrays
from engine.pricing.constants import BPS, Mode, Phase, Reason
from engine.pricing.jit import helper, njit
from engine.pricing.kernel.checks import discount_cap, emit, static_reason, thresholds
from engine.pricing.kernel.points import earn_points, redeem_points
from engine.pricing.kernel.rewards import cap_item, propose_item, propose_order
from engine.pricing.kernel.util import candidates, rhu
from engine.pricing.layout import (
    FLAG_NO_DISCOUNT,
    L_FLAGS,
    L_PRICE,
    L_QTY,
    LO_NET,
    LO_POINTS,
    LO_TENDER,
    NO_GROUP,
    O_BUNDLE_LEN,
    O_FUNDED_BPS,
    O_GROUP,
    O_MODE,
    O_ORDER_POS,
    O_PHASE,
    ROW_APPLIED,
    ROW_DISCOUNT,
    ROW_EXPLANATION,
)


@helper
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
    elig,
    prop,
    sc,
):
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
def price_core(
    rules,
    lines,
    member,
    ctx,
    coupons,
    limits,
    want_explain,
    cand,
    moff,
    mline,
    ws,
    line_out,
    rows,
    counts,
):
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
    outcome = ws[WS_OUTCOME : WS_OUTCOME + 4]  # reason, detail, related, applications per candidate
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
                rules,
                cand[c],
                lines,
                mline,
                moff[c],
                moff[c + 1],
                net,
                basket_net,
                n_discounted,
                lock,
                order_lock,
                member,
                ctx,
                coupons,
                limits,
                elig,
                prop,
                sc,
            )
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
                    if not emit(
                        rows,
                        counts,
                        ROW_EXPLANATION,
                        rules.offer[cand[c], O_ORDER_POS],
                        cand[c],
                        Reason.LOST_TO_GROUP if lost else outcome[0, c],
                        outcome[1, c],
                        cand[winner] if lost else outcome[2, c],
                    ):
                        return
        if winner >= 0:
            o = cand[winner]
            funded_bps = rules.offer[o, O_FUNDED_BPS]
            exclusive = rules.offer[o, O_MODE] == Mode.EXCLUSIVE
            for k in range(best_ne):
                i = best_elig[k]
                amount = best[k]
                if amount > 0:
                    if not emit(
                        rows, counts, ROW_DISCOUNT, i, o, amount, rhu(amount, funded_bps, BPS), 0
                    ):
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
    earn_points(
        rules,
        lines,
        member,
        ctx,
        coupons,
        limits,
        want_explain,
        cand,
        moff,
        mline,
        j,
        net,
        basket_net,
        tender,
        line_out[LO_POINTS],
        rows,
        counts,
        elig,
        sc,
    )


@njit
def price_one(
    offer,
    eval_order,
    sets,
    set_vals,
    inv_base,
    inv_off,
    inv_pos,
    all_pos,
    ladder,
    bundle,
    stores,
    tier_bps,
    programme,
    lines,
    member,
    ctx,
    coupons,
    limits,
    want_explain,
    line_out,
    rows,
    counts,
):
    """Price one basket into caller-owned ``line_out``, ``rows`` and ``counts``.

    The rule arrays come one by one (the fields of ``RuleArrays``, in order): unboxing a
    named tuple costs the caller several microseconds, unboxing plain arrays a fraction.
    """
    rules = RuleArrays(
        offer,
        eval_order,
        sets,
        set_vals,
        inv_base,
        inv_off,
        inv_pos,
        all_pos,
        ladder,
        bundle,
        stores,
        tier_bps,
        programme,
    )
    cand, moff, mline = candidates(rules, lines, coupons)
    price_core(
        rules,
        lines,
        member,
        ctx,
        coupons,
        limits,
        want_explain,
        cand,
        moff,
        mline,
        workspace(rules, lines.shape[0], cand),
        line_out,
        rows,
        counts,
    )


@njit(parallel=True)
def price_many(
    offer,
    eval_order,
    sets,
    set_vals,
    inv_base,
    inv_off,
    inv_pos,
    all_pos,
    ladder,
    bundle,
    stores,
    tier_bps,
    programme,
    lines,
    line_off,
    members,
    ctxs,
    coupon_off,
    coupons,
    limit_off,
    limits,
    rows_per_line,
    line_out,
    rows,
    counts,
):
    """Price a batch of baskets in parallel, one basket per ``prange`` iteration.

    Basket ``b`` owns lines ``line_off[b]:line_off[b+1]`` and the row slab
    ``line_off[b]*rows_per_line : line_off[b+1]*rows_per_line``; iterations share no writes.
    A basket whose slab fills gets ``counts[b, N_OVERFLOW] = 1`` and the caller prices it
    again alone.
    """
    rules = RuleArrays(
        offer,
        eval_order,
        sets,
        set_vals,
        inv_base,
        inv_off,
        inv_pos,
        all_pos,
        ladder,
        bundle,
        stores,
        tier_bps,
        programme,
    )
    r = rows_per_line
    for b in prange(line_off.shape[0] - 1):
        lo, hi = line_off[b], line_off[b + 1]
        bl = lines[lo:hi]
        bc = coupons[coupon_off[b] : coupon_off[b + 1]]
        cand, moff, mline = candidates(rules, bl, bc)
        price_core(
            rules,
            bl,
            members[b],
            ctxs[b],
            bc,
            limits[limit_off[b] : limit_off[b + 1]],
            False,
            cand,
            moff,
            mline,
            workspace(rules, hi - lo, cand),
            line_out[:, lo:hi],
            rows[lo * r : hi * r],
            counts[b],
        )
