# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Kernel building blocks: rounding, largest-remainder allocation, product-set membership,
the hot table's checks, and small in-place sorts (candidate discovery is in
``kernel/discovery.py``).

Arrays and integers only. Numba does not inline one ``@njit`` function into another and
every call with arrays pays for reference counting, so the hot helpers here take scratch
buffers from the caller and allocate nothing.
"""

from __future__ import annotations

import numpy as np

from engine.pricing.jit import helper, inline_helper
from engine.pricing.layout import (
    C_EPOCH,
    C_WEEKDAY,
    FLAG_DELIVERY,
    H_ENDS,
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


@inline_helper
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
    if m == 1:  # one weight takes it all: the usual share, over one line, divides nothing
        out[0] = amount
    else:
        allocate_many(amount, weights, m, out, rem)


@helper
def allocate_many(amount, weights, m, out, rem):
    """:func:`allocate` over more than one weight. Inlined, :func:`allocate` tests for one
    weight where it is called, and that common share costs no call (whose arguments, three
    arrays, cost more than the share)."""
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


@inline_helper
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
