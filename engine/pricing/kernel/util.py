# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Kernel building blocks: rounding, largest-remainder allocation, product-set membership,
candidate discovery through the inverted indexes, and small in-place sorts.

Arrays and integers only. Numba does not inline one ``@njit`` function into another and
every call with arrays pays for reference counting, so the hot helpers here take scratch
buffers from the caller and allocate nothing.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from engine.pricing.constants import Kind
from engine.pricing.jit import helper, njit
from engine.pricing.layout import (
    C_EPOCH,
    C_WEEKDAY,
    CTX_COLS,
    FLAG_DELIVERY,
    H_ACTIVATION,
    H_ENDS,
    H_GET_SET,
    H_KIND,
    H_SCOPE,
    H_STARTS,
    H_WEEKDAYS,
    L_CAT,
    L_FLAGS,
    L_PRICE,
    L_SKU,
    LIM_OFFER,
    S_ALL,
    S_EXCL_LEN,
    S_EXCL_OFF,
)

# Above this many weights, allocation searches a remainder threshold instead of selecting
# the largest remainder once per unit left over.
SELECT_MAX = 32


@helper
def rhu(a, b, c):
    """Round half up of a*b/c for non-negative integers (docs/design.md §4)."""
    return (2 * a * b + c) // (2 * c)


@helper
def allocate(amount, weights, m, out, rem):
    """Split ``amount`` over ``weights[:m]`` by largest remainder (docs/design.md §4.1).

    Parameters
    ----------
    amount : int64
        Non-negative total to split.
    weights : int64[>= m]
        Non-negative weights with a positive sum over the first ``m``.
    m : int
        Number of weights used.
    out : int64[>= m]
        Receives the shares; they sum to ``amount``; ties go to the earlier position.
    rem : int64[>= m]
        Scratch. Nothing is allocated, so this runs without the numba runtime.

    ``amount`` is split as ``q·W + r`` first so that ``r·w_i`` stays inside int64 even when
    the amount exceeds the total weight (points can).
    """
    total = np.int64(0)
    for i in range(m):
        total += weights[i]
    q = amount // total
    r = amount - q * total
    given = np.int64(0)
    for i in range(m):
        p = r * weights[i]
        share = q * weights[i] + p // total
        out[i] = share
        rem[i] = p % total
        given += share
    left = amount - given
    if left == 0:
        return
    if m <= SELECT_MAX:
        for _ in range(left):  # left < m: pick the largest remainder, earliest on ties
            best = 0
            for i in range(1, m):
                if rem[i] > rem[best]:
                    best = i
            out[best] += 1
            rem[best] = -1
        return
    # Many weights: find the largest T with at least `left` remainders >= T (remainders lie
    # in [0, W)); every remainder above T gets a unit, then the earliest ones equal to T.
    lo = np.int64(0)
    hi = total
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        count = 0
        for i in range(m):
            if rem[i] >= mid:
                count += 1
        if count >= left:
            lo = mid
        else:
            hi = mid
    for i in range(m):
        if rem[i] > lo:
            out[i] += 1
            left -= 1
    for i in range(m):
        if left == 0:
            break
        if rem[i] == lo:
            out[i] += 1
            left -= 1


@helper
def contains(vals, off, length, x):
    """Whether the sorted slice ``vals[off:off+length]`` holds ``x``."""
    if length == 0 or x < 0:
        return False
    lo = off
    hi = off + length
    while lo < hi:
        mid = (lo + hi) >> 1
        if vals[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo < off + length and vals[lo] == x


@helper
def in_set(sets, set_vals, s, lines, i):
    """Whether basket line ``i`` is in product set ``s`` (a delivery line is in no set but a
    delivery offer's, which names the delivery category)."""
    if lines[i, L_FLAGS] & FLAG_DELIVERY:
        return contains(set_vals, sets[s, 3], sets[s, 4], lines[i, L_CAT])
    if sets[s, S_ALL] == 0:
        found = False
        for k in range(4):  # sku, category, brand, vendor: same order in sets and lines
            if contains(set_vals, sets[s, 1 + 2 * k], sets[s, 2 + 2 * k], lines[i, k]):
                found = True
                break
        if not found:
            return False
    return not contains(set_vals, sets[s, S_EXCL_OFF], sets[s, S_EXCL_LEN], lines[i, L_SKU])


@helper
def coupon_uses(coupons, o):
    """(any coupon row for offer o, total remaining uses over its rows)."""
    seen = False
    uses = np.int64(0)
    for k in range(coupons.shape[0]):
        if coupons[k, 0] == o:
            seen = True
            if coupons[k, 1] > 0:
                uses += coupons[k, 1]
    return seen, uses


@helper
def in_window(hot, o, ctx):
    """Whether ``ctx`` is inside offer ``o``'s activation window and on one of its weekdays
    (check 2 less recurrence and hours), read from the hot table."""
    now = ctx[C_EPOCH]
    if now < hot[o, H_STARTS] or now >= hot[o, H_ENDS]:
        return False
    days = hot[o, H_WEEKDAYS]
    return days == 0 or (days >> ctx[C_WEEKDAY]) & 1 != 0


@helper
def find_limits(limits, o):
    for k in range(limits.shape[0]):
        if limits[k, LIM_OFFER] == o:
            return k
    return -1


@helper
def sort_ints(a, m):
    """Sort ``a[:m]`` ascending in place (heapsort; insertion sort when short)."""
    if m <= 16:
        for i in range(1, m):
            x = a[i]
            j = i - 1
            while j >= 0 and a[j] > x:
                a[j + 1] = a[j]
                j -= 1
            a[j + 1] = x
        return
    for start in range(m // 2 - 1, -1, -1):
        sift_down(a, start, m)
    for end in range(m - 1, 0, -1):
        a[0], a[end] = a[end], a[0]
        sift_down(a, 0, end)


# sort_positions' bitmap leans on int64 wrap-around and an LLVM intrinsic: compiled code only
BITMAP_SORT = not numba.config.DISABLE_JIT  # type: ignore[attr-defined]


@helper
def sort_positions(a, m, bits, n):
    """Sort ``a[:m]``, distinct integers in ``[0, n)``, ascending in place: through a bitmap
    of ``n`` bits in ``bits`` (scratch) when that is short next to ``m`` — a few hundred
    words for the ~100 candidates of a basket against 10,000 offers, against heapsort's
    ~1,500 unpredictable branches — else :func:`sort_ints`."""
    words = (n >> 6) + 1
    if not BITMAP_SORT or m <= 16 or words > bits.shape[0] or words > 4 * m:
        sort_ints(a, m)
        return
    for w in range(words):
        bits[w] = 0
    for r in range(m):
        bits[a[r] >> 6] |= np.int64(1) << (a[r] & 63)
    r = 0
    for w in range(words):
        x = bits[w]
        while x != 0:  # lowest set bit first; x & (x - 1) clears it (bit 63 included)
            a[r] = (w << 6) + trailing_zeros(x)  # type: ignore[call-arg]
            r += 1
            x &= x - 1


@helper
def sift_down(a, root, end):
    x = a[root]
    while True:
        child = 2 * root + 1
        if child >= end:
            break
        if child + 1 < end and a[child + 1] > a[child]:
            child += 1
        if a[child] <= x:
            break
        a[root] = a[child]
        root = child
    a[root] = x


@helper
def pair_capacity(rules, lines):
    """An upper bound on the (offer, line) pairs the inverted indexes give this basket."""
    off = rules.inv_off
    base = rules.inv_base
    n = lines.shape[0]
    cap = n * rules.all_pos.shape[0]
    for i in range(n):
        for k in range(4):
            x = lines[i, k]
            if x >= 0:
                cap += off[base[k] + x + 1] - off[base[k] + x]
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
    return rules.inv_pos, rules.inv_off[key], rules.inv_off[key + 1]


@helper
def find_candidates(rules, lines, coupons, ctx, prefilter, slot, cand, moff, mline, fill, last):
    """Offers this basket can meet, in evaluation order, with their matching lines.

    With ``prefilter`` it also drops the candidates that the hot table shows fail a check
    1-9 (a used-up coupon, outside the window or its weekdays); what else checks 1-9 ask is
    left to the evaluation, where ``H_STATIC`` says whether anything is. Without it (the
    explained path, which reports every candidate's reason) it drops only coupons nobody
    presented.

    ``slot`` (int64[n_offers]) maps an evaluation position to its candidate while this runs;
    it is -1 everywhere on entry and is left so. ``cand``, ``moff``, ``mline``, ``fill`` and
    ``last`` are int64 rows at least :func:`pair_capacity` + 1 long. Allocates nothing.

    Returns ``c``: offer indexes ``cand[:c]`` in evaluation order; for candidate ``j``,
    ``mline[moff[j]:moff[j+1]]`` are the lines in its scope (exclusions applied), ascending.
    """
    n = lines.shape[0]
    # 1. distinct positions (in discovery order) and how many lines each one reaches
    u = 0
    for i in range(n):
        for k in range(5):
            src, lo, hi = index_list(rules, lines, i, k)
            for j in range(lo, hi):
                pos = src[j]
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
    # 2. evaluation order; each position's lines get a contiguous run of mline
    sort_positions(cand, u, mline, slot.shape[0])  # mline is free until filled below
    moff[0] = 0
    for r in range(u):
        s = slot[cand[r]]
        count = fill[s]
        fill[s] = moff[r]
        moff[r + 1] = moff[r] + count
        last[s] = -1
    for i in range(n):  # lines in ascending order, so each run comes out ascending
        for k in range(5):
            src, lo, hi = index_list(rules, lines, i, k)
            for j in range(lo, hi):
                s = slot[src[j]]
                if last[s] != i:
                    last[s] = i
                    mline[fill[s]] = i
                    fill[s] += 1
    # 3. drop coupons nobody presented (prefilter: failed checks) and excluded skus, in place
    hot = rules.hot
    c = 0
    k = 0
    lo = 0
    for r in range(u):
        pos = cand[r]
        slot[pos] = -1
        hi = moff[r + 1]
        o = rules.eval_order[pos]
        keep = True
        if hot[o, H_ACTIVATION] == 1:
            keep, uses = coupon_uses(coupons, o)
            keep = keep and (uses > 0 or not prefilter)
        if keep and prefilter:
            keep = in_window(hot, o, ctx)
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
                cand[c] = o
                c += 1
                moff[c] = k
        lo = hi
    return c


@njit
def candidates(rules, lines, coupons):
    """``cand`` of :func:`find_candidates` in a fresh array (benchmarks, tests)."""
    width = pair_capacity(rules, lines) + 1
    scratch = np.empty((5, width), dtype=np.int64)
    slot = np.full(rules.eval_order.shape[0], -1, dtype=np.int64)
    ctx = np.zeros(CTX_COLS, dtype=np.int64)  # not read without the prefilter
    s = scratch
    c = find_candidates(rules, lines, coupons, ctx, False, slot, s[0], s[1], s[2], s[3], s[4])
    return scratch[0, :c].copy()


@helper
def sort_by_price(lines, idx, m, descending):
    """Sort ``idx[:m]`` (line numbers, ascending) in place by unit price, basket order kept
    within a price when descending and reversed when ascending (insertion sort: m is small)."""
    for a in range(1, m):
        x = idx[a]
        px = lines[x, L_PRICE]
        b = a - 1
        while b >= 0:
            py = lines[idx[b], L_PRICE]
            if descending:
                move = py < px
            else:
                move = py > px or (py == px and idx[b] < x)
            if not move:
                break
            idx[b + 1] = idx[b]
            b -= 1
        idx[b + 1] = x
