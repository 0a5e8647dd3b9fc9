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
from engine.pricing.kernel.checks import emit, evaluate_discount
from engine.pricing.kernel.points import earn_points, redeem_points
from engine.pricing.kernel.units import applied_units, units_left
from engine.pricing.kernel.util import find_candidates, pair_capacity, rhu
from engine.pricing.layout import (
    L_PRICE,
    L_QTY,
    LO_NET,
    LO_POINTS,
    LO_TENDER,
    N_OVERFLOW,
    N_ROWS,
    NO_GROUP,
    O_FUNDED_BPS,
    O_GROUP,
    O_MODE,
    O_ORDER_POS,
    O_PHASE,
    P_MAX_BUNDLE_LEN,
    ROW_APPLIED,
    ROW_DISCOUNT,
    ROW_EXPLANATION,
)

WS_LOCK, WS_ELIG, WS_BEST_ELIG, WS_PROP, WS_BEST, WS_OUTCOME = 0, 1, 2, 3, 4, 5
WS_SCRATCH = 9  # then 5 rows of scratch for rewards and points
WS_CAND, WS_MOFF, WS_MLINE, WS_FILL, WS_LAST = 14, 15, 16, 17, 18  # candidate discovery
WS_ROWS = 19


@helper
def workspace_width(rules, lines):
    """Row width of the workspace one basket needs: its lines, its (offer, line) pairs
    (which bound its candidates) and any bundle's components."""
    return max(lines.shape[0], pair_capacity(rules, lines) + 1, rules.programme[P_MAX_BUNDLE_LEN])


@njit
def workspace(width):
    """Scratch for ``price_core``: ``WS_ROWS`` rows of ``width``."""
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
    ws,
    slot,
    line_out,
    rows,
    counts,
):
    """Price one basket: per-line results into ``line_out`` (int64[3, n]), every other
    output into ``rows``. ``ws`` is scratch from :func:`workspace`, at least
    :func:`workspace_width` wide; ``slot`` (int64[n_offers], all -1) is the position ->
    candidate map of :func:`find_candidates`, left all -1. Both serve basket after basket.
    Allocates nothing.

    On a full row table ``counts[N_OVERFLOW]`` is set and the caller retries with more rows.
    """
    n_cand = find_candidates(
        rules,
        lines,
        coupons,
        slot,
        ws[WS_CAND],
        ws[WS_MOFF],
        ws[WS_MLINE],
        ws[WS_FILL],
        ws[WS_LAST],
    )
    cand = ws[WS_CAND, :n_cand]
    moff = ws[WS_MOFF]
    mline = ws[WS_MLINE]
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
            units = applied_units(rules, o, lines, best_elig, best, best_ne, units_left(limits, o))
            if not emit(rows, counts, ROW_APPLIED, o, outcome[3, winner], 0, units, 0):
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
    slot,
    line_out,
    rows,
    counts,
):
    """Price one basket into caller-owned ``line_out``, ``rows`` and ``counts``; ``slot`` is
    the caller's int64[n_offers] of -1 (see ``price_core``), kept from call to call.

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
    ws = workspace(workspace_width(rules, lines))
    price_core(
        rules, lines, member, ctx, coupons, limits, want_explain, ws, slot, line_out, rows, counts
    )


@helper
def price_range(
    rules,
    lines,
    line_off,
    members,
    ctxs,
    coupon_off,
    coupons,
    limit_off,
    limits,
    b0,
    b1,
    ws,
    slot,
    line_out,
    rows,
    counts,
):
    """Baskets ``b0:b1`` one after another on one workspace, their rows packed from the start
    of ``rows``: a basket that does not fit gets ``N_OVERFLOW`` and takes no room."""
    used = 0
    for b in range(b0, b1):
        lo, hi = line_off[b], line_off[b + 1]
        price_core(
            rules,
            lines[lo:hi],
            members[b],
            ctxs[b],
            coupons[coupon_off[b] : coupon_off[b + 1]],
            limits[limit_off[b] : limit_off[b + 1]],
            False,
            ws,
            slot,
            line_out[:, lo:hi],
            rows[used:],
            counts[b],
        )
        if counts[b, N_OVERFLOW] == 0:
            used += counts[b, N_ROWS]


@helper
def range_width(rules, lines, line_off, b0, b1):
    """The widest workspace any of baskets ``b0:b1`` needs."""
    width = 1
    for b in range(b0, b1):
        width = max(width, workspace_width(rules, lines[line_off[b] : line_off[b + 1]]))
    return width


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
    part_off,
    part_rows,
    line_out,
    rows,
    counts,
):
    """Price a batch of baskets in parallel, one contiguous part of the batch per ``prange``
    iteration.

    Part ``t`` holds baskets ``part_off[t]:part_off[t+1]``, priced in order on one workspace,
    and packs their rows into ``rows[part_rows[t]:part_rows[t+1]]``: basket ``b``'s rows
    follow those of the baskets before it in its part (``counts[b, N_ROWS]`` each). A basket
    that does not fit gets ``counts[b, N_OVERFLOW] = 1`` and no room; the caller prices it
    again alone. Parts share no writes, and nothing is allocated per basket.
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
    for t in prange(part_off.shape[0] - 1):
        b0, b1 = part_off[t], part_off[t + 1]
        ws = workspace(range_width(rules, lines, line_off, b0, b1))
        slot = np.full(eval_order.shape[0], -1, dtype=np.int64)
        price_range(
            rules,
            lines,
            line_off,
            members,
            ctxs,
            coupon_off,
            coupons,
            limit_off,
            limits,
            b0,
            b1,
            ws,
            slot,
            line_out,
            rows[part_rows[t] : part_rows[t + 1]],
            counts,
        )
