# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""The batch kernels: baskets in parallel (``price_many``), one contiguous part of the batch per
``prange`` iteration, each part priced basket after basket by ``price_core`` on one workspace;
or all on the calling thread (``price_serial``), for batches too small to wake other threads.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from engine.pricing.jit import helper, njit
from engine.pricing.kernel.core import (
    line_workspace,
    price_core,
    width_for,
    workspace,
    workspace_width,
)
from engine.pricing.layout import N_OVERFLOW, N_ROWS, P_LINE_PAIRS, ROW_COLS
from engine.pricing.rule_arrays import unpack_rules

# A part's workspace (kernel/core.py ``workspace``: 19 rows of this many words, ~600 KB at
# most) sized from its baskets' lines alone, without asking each basket (``range_width``)
QUICK_WIDTH = 4096


@helper
def range_lines(line_off, b0, b1):
    """The most lines any of baskets ``b0:b1`` has."""
    most = 1
    for b in range(b0, b1):
        most = max(most, line_off[b + 1] - line_off[b])
    return most


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
    lw,
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
            lw,
            slot,
            line_out[:, lo:hi],
            rows[used:],
            counts[b],
        )
        if counts[b, N_OVERFLOW] == 0:
            used += counts[b, N_ROWS]


@helper
def range_width(rules, lines, line_off, b0, b1):
    """The widest workspace any of baskets ``b0:b1`` needs, or more: where it is at most
    ``QUICK_WIDTH``, the bound from their most lines and the most (offer, line) pairs a line
    can find (``P_LINE_PAIRS``); else each basket's own (``workspace_width``: a read of
    every line's index offsets, each a random read from megabytes, as discovery reads them
    again later)."""
    most = range_lines(line_off, b0, b1)
    quick = width_for(rules, most, most * rules.programme[P_LINE_PAIRS])
    if quick <= QUICK_WIDTH:
        return quick
    width = 1
    for b in range(b0, b1):
        width = max(width, workspace_width(rules, lines[line_off[b] : line_off[b + 1]]))
    return width


@njit(parallel=True)
def price_many(
    packed,
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
    rules = unpack_rules(packed)
    for t in prange(part_off.shape[0] - 1):
        b0, b1 = part_off[t], part_off[t + 1]
        ws = workspace(range_width(rules, lines, line_off, b0, b1))
        lw = line_workspace(range_lines(line_off, b0, b1))
        slot = np.full(rules.eval_order.shape[0], -1, dtype=np.int64)
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
            lw,
            slot,
            line_out,
            rows[part_rows[t] : part_rows[t + 1]],
            counts,
        )


@njit
def price_serial(
    packed,
    lines,
    line_off,
    members,
    ctxs,
    coupon_off,
    coupons,
    limit_off,
    limits,
    slot,
    line_out,
    rows,
    counts,
):
    """``price_many`` as one part on the calling thread: no thread is woken, and ``slot`` is
    the caller's (all -1, left so, as for ``price_one``). Rows are packed from the start of
    ``rows``, an overflowed basket taking none (:func:`take_rows` reads them out)."""
    rules = unpack_rules(packed)
    n_b = line_off.shape[0] - 1
    ws = workspace(range_width(rules, lines, line_off, 0, n_b))
    lw = line_workspace(range_lines(line_off, 0, n_b))
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
        0,
        n_b,
        ws,
        lw,
        slot,
        line_out,
        rows,
        counts,
    )


@helper
def copy_part(slab, part_off, part_rows, counts, dest, k, p):
    """Copy the rows the baskets of part ``p`` wrote (an overflowed one: none) to ``dest``
    from row ``k``."""
    r = part_rows[p]
    for b in range(part_off[p], part_off[p + 1]):
        if counts[b, N_OVERFLOW]:
            continue
        for _ in range(counts[b, N_ROWS]):
            for j in range(ROW_COLS):
                dest[k, j] = slab[r, j]
            k += 1
            r += 1


@njit
def take_rows(slab, part_off, part_rows, counts, dest, start):
    """Copy the rows the parts packed into ``slab`` (part ``p``: baskets
    ``part_off[p]:part_off[p+1]``, their rows one after the other from ``part_rows[p]``, an
    overflowed basket having none) to ``dest``, part ``p``'s from row ``start[p]``: basket
    after basket. On the calling thread (:func:`take_rows_parallel`: the parts in
    parallel)."""
    for p in range(part_off.shape[0] - 1):
        copy_part(slab, part_off, part_rows, counts, dest, start[p], p)


@njit(parallel=True)
def take_rows_parallel(slab, part_off, part_rows, counts, dest, start):
    """:func:`take_rows` with its parts in parallel (the first write to fresh output pages,
    which the system clears, is spread over the threads as well)."""
    for p in prange(part_off.shape[0] - 1):
        copy_part(slab, part_off, part_rows, counts, dest, start[p], p)
