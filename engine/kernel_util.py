"""Kernel building blocks: rounding, largest-remainder allocation, product-set membership and
candidate discovery through the inverted indexes. Arrays and integers only."""

from __future__ import annotations

import numpy as np

from engine.config import njit
from engine.layout import (
    L_PRICE,
    L_SKU,
    LIM_OFFER,
    O_ACTIVATION,
    O_ORDER_POS,
    O_SCOPE,
    S_ALL,
    S_EXCL_LEN,
    S_EXCL_OFF,
)


@njit
def rhu(a, b, c):
    """Round half up of a*b/c for non-negative integers (DESIGN.md §4)."""
    return (2 * a * b + c) // (2 * c)


@njit
def allocate(amount, weights, out):
    """Split ``amount`` over ``weights`` by largest remainder (DESIGN.md §4.1).

    Parameters
    ----------
    amount : int64
        Non-negative total to split.
    weights : int64[m]
        Non-negative weights with a positive sum.
    out : int64[m]
        Receives the shares; they sum to ``amount``, ties go to the earlier position.

    ``amount`` is split as ``q·W + r`` first so that ``r·w_i`` stays inside int64 even when
    the amount exceeds the total weight (points can).
    """
    m = weights.shape[0]
    total = np.int64(0)
    for i in range(m):
        total += weights[i]
    q = amount // total
    r = amount - q * total
    rem = np.empty(m, dtype=np.int64)
    given = np.int64(0)
    for i in range(m):
        p = r * weights[i]
        share = q * weights[i] + p // total
        out[i] = share
        rem[i] = p % total
        given += share
    left = amount - given
    if left > 0:
        order = np.argsort(-rem, kind="mergesort")
        for j in range(left):
            out[order[j]] += 1


@njit
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


@njit
def excluded(rules, s, line):
    row = rules.sets[s]
    return contains(rules.set_vals, row[S_EXCL_OFF], row[S_EXCL_LEN], line[L_SKU])


@njit
def in_set(rules, s, line):
    """Whether basket ``line`` (a row of the line table) is in product set ``s``."""
    row = rules.sets[s]
    if row[S_ALL] == 0:
        found = False
        for k in range(4):  # sku, category, brand, vendor: same order in sets and lines
            if contains(rules.set_vals, row[1 + 2 * k], row[2 + 2 * k], line[k]):
                found = True
                break
        if not found:
            return False
    return not excluded(rules, s, line)


@njit
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


@njit
def find_limits(limits, o):
    for k in range(limits.shape[0]):
        if limits[k, LIM_OFFER] == o:
            return k
    return -1


@njit
def candidates(rules, lines, coupons):
    """Offers this basket can meet, in evaluation order, with their matching lines.

    Returns
    -------
    cand : int64[c]
        Offer indexes sorted by evaluation position.
    match : bool[c, n]
        ``match[j, i]``: line ``i`` is in the scope of ``cand[j]`` (exclusions applied).
    """
    n = lines.shape[0]
    off = rules.inv_off
    base = rules.inv_base
    n_all = rules.all_offers.shape[0]
    cap = n * n_all
    for i in range(n):
        for k in range(4):
            x = lines[i, k]
            if x >= 0:
                cap += off[base[k] + x + 1] - off[base[k] + x]
    keys = np.empty(cap, dtype=np.int64)
    m = 0
    for i in range(n):
        for k in range(4):
            x = lines[i, k]
            if x >= 0:
                for j in range(off[base[k] + x], off[base[k] + x + 1]):
                    keys[m] = rules.offer[rules.inv_val[j], O_ORDER_POS] * n + i
                    m += 1
        for j in range(n_all):
            keys[m] = rules.offer[rules.all_offers[j], O_ORDER_POS] * n + i
            m += 1
    keys = np.sort(keys[:m])

    n_pos = 0
    last = -1
    for j in range(m):
        pos = keys[j] // n
        if pos != last:
            n_pos += 1
            last = pos
    cand = np.empty(n_pos, dtype=np.int64)
    match = np.zeros((n_pos, n), dtype=np.bool_)
    c = -1
    last = -1
    keep = False
    for j in range(m):
        pos = keys[j] // n
        i = keys[j] - pos * n
        if pos != last:
            last = pos
            o = rules.eval_order[pos]
            keep = True
            if rules.offer[o, O_ACTIVATION] == 1:
                keep, _ = coupon_uses(coupons, o)
            if keep:
                c += 1
                cand[c] = o
        if keep and not excluded(rules, rules.offer[cand[c], O_SCOPE], lines[i]):
            match[c, i] = True
    # drop offers whose every matching line was excluded
    k = 0
    for j in range(c + 1):
        if match[j].any():
            cand[k] = cand[j]
            match[k] = match[j]
            k += 1
    return cand[:k], match[:k]


@njit
def units_by_price(lines, idx, descending):
    """Positions of ``idx`` ordered by unit price (basket order within a price)."""
    m = idx.shape[0]
    n = lines.shape[0]
    key = np.empty(m, dtype=np.int64)
    for j in range(m):
        i = idx[j]
        if descending:
            key[j] = -(lines[i, L_PRICE] * n) + i
        else:
            key[j] = lines[i, L_PRICE] * n + (n - 1 - i)
    return idx[np.argsort(key, kind="mergesort")]
