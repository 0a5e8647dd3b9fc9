# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Lines of one kind priced as one line, and the results shared back (docs/pricing.md §1.1).

Two lines that agree on every column a rule can read (sku, category, brand, vendor, unit
price, flags) are priced as a single line at the place of the first of them, holding both
quantities, so a price never depends on how the till split the units. ``merge_lines`` builds
the merged table; ``share`` splits each merged result back over the basket's own lines.

``mg`` bundles the merge for the helpers that share: an int64[7, n] table whose rows are
``first, nxt, w, out, rem, idx, out2`` — ``first[g]`` is merged line ``g``'s first basket
line, ``nxt[i]`` the next basket line of ``i``'s merged line (-1 after the last), the rest
scratch. One table, not a tuple of seven rows: numba passes each array to a helper as seven
words on the stack, and the kernel shares a result for every discounted line. Allocates
nothing.
"""

from __future__ import annotations

from engine.pricing.jit import helper, inline_helper
from engine.pricing.kernel.util import allocate
from engine.pricing.layout import (
    L_BRAND,
    L_CAT,
    L_FLAGS,
    L_PRICE,
    L_QTY,
    L_SKU,
    L_VENDOR,
    LINE_COLS,
)


@helper
def same_kind(a, i, b, g):
    """Whether line ``i`` of ``a`` and line ``g`` of ``b`` agree on everything but quantity."""
    return (
        a[i, L_SKU] == b[g, L_SKU]
        and a[i, L_PRICE] == b[g, L_PRICE]
        and a[i, L_CAT] == b[g, L_CAT]
        and a[i, L_BRAND] == b[g, L_BRAND]
        and a[i, L_VENDOR] == b[g, L_VENDOR]
        and a[i, L_FLAGS] == b[g, L_FLAGS]
    )


@helper
def merge_lines(lines, merged, first, nxt, tail, table):
    """Fill ``merged`` (int64[>= n, LINE_COLS]) with the basket's lines of one kind added up,
    in order of their first line; returns how many. ``table`` (length a power of two, at least
    twice the lines) is scratch for the hash of (sku, unit price)."""
    n = lines.shape[0]
    cap = 1
    while cap < 2 * n:
        cap *= 2
    mask = cap - 1
    for s in range(cap):
        table[s] = -1
    nm = 0
    for i in range(n):
        nxt[i] = -1
        # skus below -1 are the basket's own ids for skus the index lacks; & keeps it in range
        s = (lines[i, L_SKU] * 1000003 + lines[i, L_PRICE] * 7919) & mask
        g = -1
        while table[s] >= 0:
            if same_kind(lines, i, merged, table[s]):
                g = table[s]
                break
            s = (s + 1) & mask
        if g < 0:
            g = nm
            nm += 1
            table[s] = g
            for c in range(LINE_COLS):  # a constant width: LLVM copies the row in a few moves
                merged[g, c] = lines[i, c]
            first[g] = i
        else:
            merged[g, L_QTY] += lines[i, L_QTY]
            nxt[tail[g]] = i
        tail[g] = i
    return nm


@inline_helper
def share(mg, lines, g, amount, weights_of, fallback_qty):
    """Split ``amount`` of merged line ``g`` over its basket lines by largest remainder with
    weights ``weights_of[i]`` (or their quantities when those are all 0 and ``fallback_qty``).

    Returns how many lines it went to; line ``mg[5][k]`` gets ``mg[3][k]`` for ``k`` below that.
    Inlined: a kind of one basket line (the usual case) takes it all without a call.
    """
    first, nxt = mg[0], mg[1]
    if nxt[first[g]] < 0:
        mg[5][0] = first[g]
        mg[3][0] = amount
        return 1
    return share_lines(mg, lines, g, amount, weights_of, fallback_qty)


@helper
def share_lines(mg, lines, g, amount, weights_of, fallback_qty):
    """:func:`share` over a kind of more than one basket line."""
    first, nxt, w, out, rem, idx = mg[0], mg[1], mg[2], mg[3], mg[4], mg[5]
    m = 0
    total = 0
    i = first[g]
    while i >= 0:
        idx[m] = i
        w[m] = weights_of[i]
        total += w[m]
        m += 1
        i = nxt[i]
    if total == 0:
        if not fallback_qty:
            return 0
        for k in range(m):
            w[k] = lines[idx[k], L_QTY]
    allocate(amount, w, m, out, rem)
    return m


@inline_helper
def share_discount(mg, lines, g, amount, funded, onet):
    """Share one discount row of merged line ``g`` by the current nets of its lines (so none
    goes below 0) and lower them; the funded part follows the shares. Returns the count; line
    ``mg[5][k]`` gets ``mg[3][k]`` of which ``mg[6][k]`` funded."""
    m = share(mg, lines, g, amount, onet, False)
    out, rem, idx, out2 = mg[3], mg[4], mg[5], mg[6]
    if m == 1:
        out2[0] = funded
    else:
        allocate(funded, out, m, out2, rem)
    for k in range(m):
        onet[idx[k]] -= out[k]
    return m
