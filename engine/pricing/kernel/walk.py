# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""The limits' walk of a replay (``engine.analytics.limits``): baskets priced without the
offers' limits across transactions, taken in ledger order against the counters the store
keeps, each priced again alone with what is left when the limits change its result.

Limited offers are numbered ``0..J-1`` (their slots). The counters: ``uses[j]`` and
``spent[j]`` (total uses and discount of slot ``j``), ``mine[key]`` (a member's uses of a
slot in one period, ``key`` numbered by the caller). ``caps[j]``: per member, total uses,
budget (0 = no cap).
"""

from __future__ import annotations

import numpy as np

from engine.pricing.jit import helper, njit
from engine.pricing.kernel.core import price_one
from engine.pricing.layout import LIM_COLS, N_ROWS, ROW_APPLIED, ROW_COLS, ROW_DISCOUNT, ROW_TYPE
from engine.pricing.rule_arrays import unpack_rules


@helper
def limited_applied(rows, slot_of, hit, disc):
    """Which limited offers a basket's ``rows`` applied (``hit[j]`` = 1) and the discount
    each gave (``disc[j]``, the sum of its discount rows)."""
    for j in range(hit.shape[0]):
        hit[j] = 0
        disc[j] = 0
    for r in range(rows.shape[0]):
        if rows[r, ROW_TYPE] == ROW_APPLIED and slot_of[rows[r, 1]] >= 0:
            hit[slot_of[rows[r, 1]]] = 1
    for r in range(rows.shape[0]):
        if rows[r, ROW_TYPE] == ROW_DISCOUNT:
            j = slot_of[rows[r, 2]]
            if j >= 0 and hit[j]:
                disc[j] += rows[r, 3]


@helper
def left_of(j, key, caps, uses, spent, mine, out):
    """What is left of slot ``j``'s limits into ``out[0:3]``: the member's uses (``key`` < 0:
    no member limit applies), total uses, budget; -1 where there is no cap."""
    out[0] = -1
    if caps[j, 0] > 0 and key >= 0:
        out[0] = max(0, caps[j, 0] - mine[key])
    out[1] = max(0, caps[j, 1] - uses[j]) if caps[j, 1] else -1
    out[2] = max(0, caps[j, 2] - spent[j]) if caps[j, 2] else -1


@helper
def stands(hit, disc, keys, caps, uses, spent, mine, left):
    """Whether a result priced without limits stands: every limited offer it applied has
    uses left and at least its discount of budget (limits only refuse or cap the offers they
    name, so then they change nothing)."""
    for j in range(hit.shape[0]):
        if hit[j]:
            left_of(j, keys[j], caps, uses, spent, mine, left)
            mu, tu, budget = left[0], left[1], left[2]
            if mu == 0 or tu == 0 or budget == 0 or 0 < budget < disc[j]:
                return False
    return True


@njit
def walk_limits(
    packed,
    rows,
    row_off,
    lines,
    line_off,
    members,
    ctxs,
    coupon_off,
    coupons,
    probe_b,
    keys,
    slot_of,
    offer_of,
    caps,
    uses,
    spent,
    mine,
    p0,
    p1,
    line_out,
    counts,
    ov_rows,
    ov_at,
    state,
):
    """Walk probes ``p0:p1`` in order: probe ``p`` is basket ``probe_b[p]`` of the batch
    (``rows``/``row_off`` priced without limits; ``lines``, ``members``, ... as encoded),
    ``keys[p, j]`` its member-period counter of slot ``j`` (-1: none). A basket whose result
    stands adds its limited offers to the counters; one that does not is priced again with
    the limit rows of what is left, its line outputs and counts written over its own in
    ``line_out`` and ``counts``, its rows appended to ``ov_rows`` from ``state[0]``
    (``ov_at[p]`` = where they start), and what it applied then counts.

    Returns ``p1``, or the probe whose rows did not fit in ``ov_rows``: nothing of it was
    counted, and the caller goes on from it with a longer ``ov_rows``."""
    n_slots = offer_of.shape[0]
    hit = np.zeros(n_slots, dtype=np.int64)
    disc = np.zeros(n_slots, dtype=np.int64)
    left = np.zeros(3, dtype=np.int64)
    lim = np.empty((n_slots, LIM_COLS), dtype=np.int64)
    slot = np.full(unpack_rules(packed).eval_order.shape[0], -1, dtype=np.int64)
    scratch = np.empty(0, dtype=np.int64)
    for p in range(p0, p1):
        b = probe_b[p]
        limited_applied(rows[row_off[b] : row_off[b + 1]], slot_of, hit, disc)
        if not stands(hit, disc, keys[p], caps, uses, spent, mine, left):
            for j in range(n_slots):
                left_of(j, keys[p, j], caps, uses, spent, mine, left)
                lim[j, 0] = offer_of[j]
                lim[j, 1] = left[0]
                lim[j, 2] = left[1]
                lim[j, 3] = left[2]
                lim[j, 4] = -1
            lo, hi = line_off[b], line_off[b + 1]
            k = -2
            while k < -1:  # the scratch too short: it needs -k words
                k = price_one(
                    packed,
                    lines[lo:hi],
                    members[b],
                    ctxs[b],
                    coupons[coupon_off[b] : coupon_off[b + 1]],
                    lim,
                    False,
                    slot,
                    scratch,
                    line_out[:, lo:hi],
                    ov_rows[state[0] :],
                    counts[b],
                )
                if k < -1:
                    scratch = np.empty(-2 * k, dtype=np.int64)
            if k == -1:
                return p
            ov_at[p] = state[0]
            state[0] += counts[b, N_ROWS]
            limited_applied(ov_rows[ov_at[p] : state[0]], slot_of, hit, disc)
        for j in range(n_slots):
            if hit[j]:
                uses[j] += 1
                spent[j] += disc[j]
                if keys[p, j] >= 0:
                    mine[keys[p, j]] += 1
    return p1


@njit
def splice_rows(rows, row_off, new_rows, new_at, n_rows, dest):
    """Copy every basket's rows to ``dest``, one basket after another: basket ``b``'s
    ``n_rows[b]`` from ``new_rows[new_at[b]:]`` where ``new_at[b]`` >= 0, else its own from
    ``rows[row_off[b]:]``."""
    k = 0
    for b in range(n_rows.shape[0]):
        if new_at[b] >= 0:
            src, r = new_rows, new_at[b]
        else:
            src, r = rows, row_off[b]
        for i in range(n_rows[b]):
            for c in range(ROW_COLS):
                dest[k, c] = src[r + i, c]
            k += 1
