# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""A simulation chunk's figures from the batch kernel's output (``engine.analytics.scoring``),
net of returns: one pass over the baskets, their lines and their discount rows.

What a return of ``r`` of a line's ``q`` units leaves of an amount ``x`` of the line:
``x - x * r // q`` (docs/design.md §5).
"""

from __future__ import annotations

import numpy as np

from engine.pricing.jit import njit
from engine.pricing.layout import L_PRICE, L_QTY, ROW_DISCOUNT, ROW_TYPE

T_GROSS, T_EARNED = 0, 1  # tally_chunk's totals


@njit
def tally_chunk(
    lines,
    line_off,
    returned,
    points,
    rows,
    row_off,
    cancelled,
    alive,
    disc,
    offer_amount,
    offer_funded,
    offer_baskets,
    totals,
):
    """Fill ``alive[b]`` (not cancelled, some unit not returned), ``disc[b]`` (its discount
    left after returns), per offer the discount, funding and baskets it gave to (the
    ``offer_*`` arrays, added to), and ``totals`` (the gross and the points earned left on
    the lines of the baskets that count). Only discounts left above zero count."""
    last = np.full(offer_amount.shape[0], -1, dtype=np.int64)  # the last basket per offer
    for b in range(line_off.shape[0] - 1):
        lo, hi = line_off[b], line_off[b + 1]
        kept = 0
        for i in range(lo, hi):
            kept += lines[i, L_QTY] - returned[i]
        alive[b] = not cancelled[b] and kept > 0
        disc[b] = 0
        if not alive[b]:
            continue
        for i in range(lo, hi):
            q, r = lines[i, L_QTY], returned[i]
            gross = q * lines[i, L_PRICE]
            totals[T_GROSS] += gross - gross * r // q
            totals[T_EARNED] += points[i] - points[i] * r // q
        for k in range(row_off[b], row_off[b + 1]):
            if rows[k, ROW_TYPE] != ROW_DISCOUNT:
                continue
            i = lo + rows[k, 1]
            q, r = lines[i, L_QTY], returned[i]
            amount = rows[k, 3] - rows[k, 3] * r // q
            if amount <= 0:
                continue
            o = rows[k, 2]
            disc[b] += amount
            offer_amount[o] += amount
            offer_funded[o] += rows[k, 4] - rows[k, 4] * r // q
            if last[o] != b:
                last[o] = b
                offer_baskets[o] += 1
