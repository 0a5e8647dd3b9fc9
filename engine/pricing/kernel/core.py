# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""The pricing kernel for one basket (``price_one``); the batch entry (``price_many``) is in
``kernel/batch.py``.

Both run ``price_core`` over the candidate offers found through the inverted indexes, so the
work grows with the basket and its candidates, never with the size of the rule set. Outputs
are row tables decoded by ``engine.pricing.api`` (columns in ``engine.pricing.layout``).
"""

from __future__ import annotations

import numpy as np

from engine.pricing.constants import BPS, Kind, Mode, Phase, Reason
from engine.pricing.jit import helper, njit
from engine.pricing.kernel.checks import emit, evaluate_discount
from engine.pricing.kernel.discovery import bitmap_words, find_candidates, pair_capacity
from engine.pricing.kernel.merge import merge_lines, share, share_discount
from engine.pricing.kernel.points import earn_points, redeem_points
from engine.pricing.kernel.units import applied_units, units_left
from engine.pricing.kernel.util import rhu
from engine.pricing.kernel.views import as_table
from engine.pricing.layout import (
    FLAG_DELIVERY,
    L_FLAGS,
    L_PRICE,
    L_QTY,
    LINE_COLS,
    LO_NET,
    LO_POINTS,
    LO_TENDER,
    N_DROP,
    N_OVERFLOW,
    N_ROWS,
    NO_GROUP,
    O_FUNDED_BPS,
    O_GROUP,
    O_KIND,
    O_MODE,
    O_ORDER_POS,
    O_PHASE,
    P_MAX_BUNDLE_LEN,
    ROW_APPLIED,
    ROW_DISCOUNT,
    ROW_EXPLANATION,
    ROW_GIFT,
)
from engine.pricing.rule_arrays import unpack_rules

WS_LOCK, WS_ELIG, WS_BEST_ELIG, WS_PROP, WS_BEST, WS_OUTCOME = 0, 1, 2, 3, 4, 5
WS_SCRATCH = 9  # then 5 rows of scratch for rewards and points
WS_CAND, WS_MOFF, WS_MLINE, WS_FILL, WS_LAST = 14, 15, 16, 17, 18  # candidate discovery
# The per-line workspace (``lw``, its own small array: the rows above are as wide as the
# basket's (offer, line) pairs): runs of n (the basket's lines) one after another. In units of n:
LN_NET, LN_TENDER = 0, 1  # per merged line
LN_SHARE = 2  # first, nxt, then five runs of scratch for sharing (kernel/merge.py)
LN_TAIL = 9  # merging; then what each basket line pays
LN_HASH = 10  # four runs: the merge's hash table (a power of two, at least 2n)
LN_MERGED = 14  # LINE_COLS runs: the merged line table
LN_RUNS = LN_MERGED + LINE_COLS
WS_ROWS = 19


@helper
def width_for(rules, n_lines, pairs):
    """Row width of a workspace for baskets of at most ``n_lines`` lines and ``pairs``
    (offer, line) pairs (which bound their candidates): the lines, the pairs, any bundle's
    components, and a bit per offer (the bitmap that sorts the candidates,
    kernel/discovery.py ``sort_positions``)."""
    return max(
        n_lines,
        pairs + 1,
        rules.programme[P_MAX_BUNDLE_LEN],
        bitmap_words(rules.eval_order.shape[0]),
    )


@helper
def workspace_width(rules, lines):
    """Row width of the workspace one basket needs (:func:`width_for` its own pairs)."""
    return width_for(rules, lines.shape[0], pair_capacity(rules, lines))


@helper
def scratch_size(width, n):
    """Words of scratch ``price_one`` needs for a workspace of ``width`` (:func:`workspace`)
    and a line workspace for ``n`` lines (:func:`line_workspace`), one after the other."""
    return WS_ROWS * width + LN_RUNS * max(n, 1)


@njit
def workspace(width):
    """Scratch for ``price_core``: ``WS_ROWS`` rows of ``width``."""
    return np.empty((WS_ROWS, width), dtype=np.int64)


@njit
def line_workspace(n):
    """Scratch for ``price_core`` per basket line: ``LN_RUNS`` runs of ``n``."""
    return np.empty(LN_RUNS * max(n, 1), dtype=np.int64)


@helper
def price_core(
    rules,
    basket,
    member,
    ctx,
    coupons,
    limits,
    want_explain,
    ws,
    lw,
    slot,
    line_out,
    rows,
    counts,
):
    """Price one basket (its ``lines``, here ``basket``): per-line results into ``line_out``
    (int64[3, n]), every other output into ``rows`` (but the kinds of row the caller set in
    ``counts[N_DROP]``, which are not written). ``ws`` is scratch from :func:`workspace`,
    at least :func:`workspace_width` wide, and ``lw`` from :func:`line_workspace` for at least
    the basket's lines; ``slot`` (int64[n_offers], all -1) is the position -> candidate map of
    :func:`find_candidates`, left all -1. All three serve basket after basket. Allocates
    nothing.

    Lines of one kind are priced as one (``kernel/merge.py``): everything below runs on the
    merged table, and each result is shared back over the basket's lines as it is written.

    On a full row table ``counts[N_OVERFLOW]`` is set and the caller retries with more rows.
    """
    n_basket = basket.shape[0]
    nb = max(n_basket, 1)  # run k of the line workspace: lw[k * nb : (k + 1) * nb]
    table = as_table(lw, LN_MERGED * nb, nb, LINE_COLS)
    sh = as_table(lw, LN_SHARE * nb, 7, nb)
    first = sh[0]
    nxt = sh[1]
    tail = lw[LN_TAIL * nb : LN_HASH * nb]
    nm = merge_lines(basket, table, first, nxt, tail, lw[LN_HASH * nb : LN_MERGED * nb])
    lines = table[:nm]
    mg = sh  # kernel/merge.py: rows first, nxt, then scratch
    onet = line_out[LO_NET]
    for i in range(n_basket):
        onet[i] = basket[i, L_QTY] * basket[i, L_PRICE]
        line_out[LO_TENDER, i] = 0
        line_out[LO_POINTS, i] = 0
    # unexplained, checks 1-9 run in discovery (and a candidate that fails them is dropped
    # there), or are left to the evaluation where the hot table says the offer row is needed
    checked = not want_explain
    n_cand = find_candidates(
        rules,
        lines,
        coupons,
        ctx,
        checked,
        slot,
        ws[WS_CAND],
        ws[WS_MOFF],
        ws[WS_MLINE],
        ws[WS_FILL],
        ws[WS_LAST],
        ws[WS_ELIG],  # free until the evaluation
        ws[WS_PROP],
    )
    cand = ws[WS_CAND, :n_cand]
    moff = ws[WS_MOFF]
    mline = ws[WS_MLINE]
    n = lines.shape[0]
    for k in range(N_DROP):  # the counters; the caller's N_DROP stays
        counts[k] = 0
    net = lw[LN_NET * nb : LN_NET * nb + n]
    tender = lw[LN_TENDER * nb : LN_TENDER * nb + n]
    basket_net = 0
    for i in range(n):
        net[i] = lines[i, L_QTY] * lines[i, L_PRICE]
        if lines[i, L_FLAGS] & FLAG_DELIVERY == 0:  # the subtotal is the goods'
            basket_net += net[i]
        tender[i] = 0
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
                checked,
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
                        0 if lost else outcome[1, c],
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
                    funded = rhu(amount, funded_bps, BPS)
                    for k2 in range(share_discount(mg, basket, i, amount, funded, onet)):
                        if mg[3][k2] > 0 and not emit(
                            rows, counts, ROW_DISCOUNT, mg[5][k2], o, mg[3][k2], mg[6][k2], 0
                        ):
                            return
                    if net[i] == lines[i, L_QTY] * lines[i, L_PRICE]:
                        n_discounted += 1
                    net[i] -= amount
                    if lines[i, L_FLAGS] & FLAG_DELIVERY == 0:
                        basket_net -= amount
                    if exclusive:
                        lock[i] = o
            if rules.offer[o, O_MODE] == Mode.EXCLUSIVE_ORDER:
                order_lock = o
            units = applied_units(
                rules.offer, o, lines, best_elig, best, best_ne, units_left(limits, o)
            )
            if not emit(rows, counts, ROW_APPLIED, o, outcome[3, winner], 0, units, 0):
                return
        for c in range(j, end):  # the gifts the basket qualifies for, whatever is explained
            if rules.offer[cand[c], O_KIND] == Kind.GIFT:
                if c == winner or outcome[0, c] == Reason.GIFT_NOT_IN_BASKET:
                    found = outcome[1, c] if c == winner else 0
                    if not emit(rows, counts, ROW_GIFT, cand[c], found, 0, 0, 0):
                        return
        j = end

    redeem_points(rules, lines, member, net, basket_net, tender, counts, sc)
    otender = line_out[LO_TENDER]
    for g in range(n):
        if tender[g] > 0:
            for k in range(share(mg, basket, g, tender[g], onet, False)):
                otender[mg[5][k]] = mg[3][k]
    paid = tail  # what each basket line pays: the weights its points are shared by
    for i in range(n_basket):
        paid[i] = onet[i] - otender[i]
    earn_points(
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
    packed,
    lines,
    member,
    ctx,
    coupons,
    limits,
    want_explain,
    slot,
    scratch,
    line_out,
    rows,
    counts,
):
    """Price one basket into caller-owned ``line_out``, ``rows`` and ``counts``; ``slot`` is
    the caller's int64[n_offers] of -1 (see ``price_core``), kept from call to call, and
    ``scratch`` the caller's int64[] for the workspaces, also kept (:func:`scratch_size`).

    Returns the rows written; -1 when they did not fit (``counts[N_OVERFLOW]`` is set too);
    or, when ``scratch`` or ``slot`` is too short and nothing was priced, minus the words
    ``scratch`` needs.

    The rule arrays come as one block (``CompiledRules.packed``): numba unboxes each array
    argument of every call (~50 ns each), and a named tuple of them costs microseconds.
    """
    rules = unpack_rules(packed)
    width = workspace_width(rules, lines)
    size = scratch_size(width, lines.shape[0])
    if size > scratch.shape[0] or slot.shape[0] < rules.eval_order.shape[0]:
        return -size
    ws = as_table(scratch, 0, WS_ROWS, width)
    lw = scratch[WS_ROWS * width : size]
    price_core(
        rules,
        lines,
        member,
        ctx,
        coupons,
        limits,
        want_explain,
        ws,
        lw,
        slot,
        line_out,
        rows,
        counts,
    )
    return -1 if counts[N_OVERFLOW] else counts[N_ROWS]
