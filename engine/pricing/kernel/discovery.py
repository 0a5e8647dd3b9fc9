# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Candidate discovery (docs/pricing.md §2-3): a basket's candidate offers, in evaluation
order, through the inverted indexes, with the lines each one's scope reaches.

Discovery also prefetches (``kernel/prefetch.py``) what comes next: the hot rows of the
positions it found, the product set of a candidate a few places ahead, and the offer row of
every candidate it keeps, which the evaluation reads right after it.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from engine.pricing.constants import Kind
from engine.pricing.jit import helper, njit
from engine.pricing.kernel.prefetch import prefetch_at, prefetch_cols, prefetch_line
from engine.pricing.kernel.util import contains, coupon_uses, in_set, in_window, sort_ints
from engine.pricing.layout import (
    CTX_COLS,
    FLAG_DELIVERY,
    H_ACTIVATION,
    H_GET_SET,
    H_KIND,
    H_SCOPE,
    H_STATIC,
    L_FLAGS,
    L_SKU,
    O_CHECKS_FROM,
    O_RARE_FROM,
    OFFER_COLS,
    S_EXCL_LEN,
    S_EXCL_OFF,
    SET_COLS,
)

AHEAD = 8  # how many candidates ahead discovery prefetches a product set


# sort_positions' bitmap leans on int64 wrap-around and an LLVM intrinsic: compiled code only
BITMAP_SORT = not numba.config.DISABLE_JIT  # type: ignore[attr-defined]


@helper
def sort_positions(a, m, bits, n):
    """Sort ``a[:m]``, distinct integers in ``[0, n)``, ascending in place, through a bitmap
    of ``n`` bits in ``bits`` (scratch, at least :func:`bitmap_words` long) and a summary
    bitmap of its non-zero words after it: only the words the values touch are cleared and
    read, so the cost follows ``m``, not ``n`` — a few hundred cycles for the ~30 candidates
    of a five-line basket, against heapsort's unpredictable branches. Few values, or a
    ``bits`` too short, go to :func:`sort_ints`."""
    words = (n >> 6) + 1
    tops = (words >> 6) + 1
    if not BITMAP_SORT or m <= 8 or words + tops > bits.shape[0] or tops > 4 * m:
        sort_ints(a, m)
        return
    for t in range(tops):
        bits[words + t] = 0
    for r in range(m):
        bits[a[r] >> 6] = 0
    for r in range(m):
        w = a[r] >> 6
        bits[w] |= np.int64(1) << (a[r] & 63)
        bits[words + (w >> 6)] |= np.int64(1) << (w & 63)
    r = 0
    for t in range(tops):
        y = bits[words + t]
        while y != 0:  # lowest set bit first; y & (y - 1) clears it (bit 63 included)
            w = (t << 6) + trailing_zeros(y)  # type: ignore[call-arg]
            y &= y - 1
            x = bits[w]
            while x != 0:
                a[r] = (w << 6) + trailing_zeros(x)
                r += 1
                x &= x - 1


@helper
def bitmap_words(n):
    """Words of scratch :func:`sort_positions` needs for values in ``[0, n)``."""
    words = (n >> 6) + 1
    return words + (words >> 6) + 1


@helper
def pair_capacity(rules, lines):
    """An upper bound on the (offer, line) pairs the inverted indexes give this basket."""
    n = lines.shape[0]
    cap = n * rules.all_pos.shape[0]
    for i in range(n):
        for k in range(4):
            _, lo, hi = index_list(rules, lines, i, k)
            cap += hi - lo
    return cap


@helper
def index_list(rules, lines, i, k):
    """List ``k`` of line ``i`` (0-3: its sku/category/brand/vendor key, 4: offers on
    everything) as (array of evaluation positions, first, end)."""
    if k == 4:
        if lines[i, L_FLAGS] & FLAG_DELIVERY:  # `all` means all goods
            return rules.all_pos, 0, 0
        return rules.all_pos, 0, rules.all_pos.shape[0]
    x = lines[i, k]
    if x < 0:
        return rules.all_pos, 0, 0
    key = rules.inv_base[k] + x
    if (rules.inv_bits[key >> 6] >> (key & 63)) & 1 == 0:  # no list: its offsets not read
        return rules.all_pos, 0, 0
    return rules.inv_pos, rules.inv_off[key], rules.inv_off[key + 1]


@helper
def find_candidates(
    rules, lines, coupons, ctx, prefilter, slot, cand, moff, mline, fill, last, pair_s, pair_i
):
    """Offers this basket can meet, in evaluation order, with their matching lines.

    With ``prefilter`` it also drops the candidates that the hot table shows fail a check
    1-9 (a used-up coupon, outside the window or its weekdays); what else checks 1-9 ask is
    left to the evaluation, where ``H_STATIC`` says whether anything is. Without it (the
    explained path, which reports every candidate's reason) it drops only coupons nobody
    presented. Those never take a slot: the index marks a coupon offer (``~position``), and
    the walk reads its coupon only for a basket that presented any.

    ``slot`` (int64[n_offers]) maps an evaluation position to its candidate while this runs;
    it is -1 everywhere on entry and is left so. ``cand``, ``moff``, ``mline``, ``fill``,
    ``last``, ``pair_s`` and ``pair_i`` are int64 rows at least :func:`pair_capacity` + 1
    long. Allocates nothing.

    On the way it prefetches what it and the evaluation read next (``kernel/prefetch.py``):
    the hot rows, the product sets, and the offer row of every candidate it keeps.

    Returns ``c``: offer indexes ``cand[:c]`` in evaluation order; for candidate ``j``,
    ``mline[moff[j]:moff[j+1]]`` are the lines in its scope (exclusions applied), ascending.
    """
    n = lines.shape[0]
    # 0. every line's index lists, asked for at once: each key's offsets are a read from a
    # table of every sku, category, brand and vendor (megabytes), and the walk below would
    # wait for them one line after another; these reads do not depend on each other
    for i in range(n):
        for k in range(4):
            src, lo, hi = index_list(rules, lines, i, k)
            if hi > lo:
                prefetch_at(src, lo)
    n_coupons = coupons.shape[0]
    # 1. distinct positions (in discovery order) and how many lines each one reaches; each
    # (position, line) pair once, as (its slot, the line), lines ascending
    u = 0
    p = 0
    for i in range(n):
        for k in range(5):
            src, lo, hi = index_list(rules, lines, i, k)
            for j in range(lo, hi):
                pos = src[j]
                if pos < 0:  # a coupon offer (~position): a candidate if its coupon was presented
                    if n_coupons == 0:
                        continue
                    pos = ~pos
                    if not coupon_uses(coupons, rules.eval_order[pos])[0]:
                        continue
                s = slot[pos]
                if s < 0:
                    s = u
                    slot[pos] = u
                    cand[u] = pos
                    fill[u] = 0
                    last[u] = -1
                    u += 1
                if last[s] != i:  # the same line found through two keys (e.g. sku, category)
                    last[s] = i
                    fill[s] += 1
                    pair_s[p] = s
                    pair_i[p] = i
                    p += 1
    # 2. evaluation order; each position's lines get a contiguous run of mline
    sort_positions(cand, u, mline, slot.shape[0])  # mline is free until filled below
    moff[0] = 0
    for r in range(u):
        s = slot[cand[r]]
        prefetch_line(rules.hot, rules.eval_order[cand[r]], 0)  # read in step 3
        count = fill[s]
        fill[s] = moff[r]
        moff[r + 1] = moff[r] + count
    for q in range(p):  # lines in ascending order, so each run comes out ascending
        s = pair_s[q]
        mline[fill[s]] = pair_i[q]
        fill[s] += 1
    # 3. drop used-up coupons and failed checks (prefilter) and excluded skus, in place
    hot = rules.hot
    c = 0
    k = 0
    lo = 0
    for r in range(u):
        pos = cand[r]
        slot[pos] = -1
        hi = moff[r + 1]
        o = rules.eval_order[pos]
        if r + AHEAD < u:  # the product set of a later candidate (its hot row has arrived)
            prefetch_cols(rules.sets, hot[rules.eval_order[cand[r + AHEAD]], H_SCOPE], 0, SET_COLS)
        keep = True
        if prefilter:  # a coupon here was presented (step 1); has it a use left?
            keep = hot[o, H_ACTIVATION] != 1 or coupon_uses(coupons, o)[1] > 0
            keep = keep and in_window(hot, o, ctx)
        if keep:
            s = hot[o, H_SCOPE]
            excl_off = rules.sets[s, S_EXCL_OFF]
            excl_len = rules.sets[s, S_EXCL_LEN]
            # buy_get and gift: lines of the scope or of the get (gift) set
            two_sets = hot[o, H_KIND] == Kind.BUY_GET or hot[o, H_KIND] == Kind.GIFT
            start = k
            for j in range(lo, hi):
                i = mline[j]
                if two_sets:
                    ok = in_set(rules.sets, rules.set_vals, s, lines, i) or in_set(
                        rules.sets, rules.set_vals, hot[o, H_GET_SET], lines, i
                    )
                else:
                    ok = excl_len == 0 or not contains(
                        rules.set_vals, excl_off, excl_len, lines[i, L_SKU]
                    )
                if ok:
                    mline[k] = i
                    k += 1
            if k > start:
                # the evaluation reads the row after discovery: lines 0-2, and 4-5 where
                # checks 1-9 will run (layout.py)
                prefetch_cols(rules.offer, o, 0, O_RARE_FROM)
                if hot[o, H_STATIC] != 0 or not prefilter:
                    prefetch_cols(rules.offer, o, O_CHECKS_FROM, OFFER_COLS)
                cand[c] = o
                c += 1
                moff[c] = k
        lo = hi
    return c


@njit
def candidates(rules, lines, coupons):
    """``cand`` of :func:`find_candidates` in a fresh array (benchmarks, tests)."""
    width = pair_capacity(rules, lines) + 1
    scratch = np.empty((7, width), dtype=np.int64)
    slot = np.full(rules.eval_order.shape[0], -1, dtype=np.int64)
    ctx = np.zeros(CTX_COLS, dtype=np.int64)  # not read without the prefilter
    s = scratch
    c = find_candidates(
        rules, lines, coupons, ctx, False, slot, s[0], s[1], s[2], s[3], s[4], s[5], s[6]
    )
    return scratch[0, :c].copy()
