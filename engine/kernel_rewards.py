"""Discount rewards as proposals: each function fills ``prop[i]`` (the discount line ``i``
would get) for the eligible lines and returns ``(reason, detail, applications)``; nothing is
applied here, so a group can compare its members on the same state (docs/pricing.md §5)."""

from __future__ import annotations

import numpy as np

from engine.config import njit
from engine.constants import Kind, Reason
from engine.kernel_util import allocate, in_set, rhu, units_by_price
from engine.layout import (
    B_QTY,
    B_SET,
    L_AMOUNT,
    L_BPS,
    L_PRICE,
    L_QTY,
    L_THRESHOLD,
    O_BUNDLE_LEN,
    O_BUNDLE_OFF,
    O_KIND,
    O_LADDER_LEN,
    O_LADDER_OFF,
    O_P1,
    O_P2,
    O_P3,
    O_PER_TX,
)

BPS = 10000
MIN_QTY = Reason.MIN_QTY_NOT_REACHED.value
MIN_SPEND = Reason.MIN_SPEND_NOT_REACHED.value
NO_BENEFIT = Reason.NO_BENEFIT.value


@njit
def eligible_index(elig):
    return np.nonzero(elig)[0]


@njit
def floor_sub(value, a, b):
    """max(0, value - a*b) without forming a*b when it would pass ``value`` (int64 safety)."""
    if a > 0 and b > value // a:
        return 0
    return max(0, value - a * b)


@njit
def percent_lines(bps, net, idx, prop):
    for i in idx:
        prop[i] = rhu(net[i], bps, BPS)


@njit
def propose_item(rules, o, lines, net, elig, prop):
    """Item-phase reward of offer ``o``; returns (reason, detail, applications)."""
    t = rules.offer[o]
    kind = t[O_KIND]
    idx = eligible_index(elig)
    if kind == Kind.PERCENT_OFF:
        percent_lines(t[O_P1], net, idx, prop)
    elif kind == Kind.AMOUNT_OFF:
        for i in idx:
            prop[i] = net[i] - floor_sub(net[i], t[O_P1], lines[i, L_QTY])
    elif kind == Kind.FIXED_PRICE:
        for i in idx:
            prop[i] = floor_sub(net[i], t[O_P1], lines[i, L_QTY])
    elif kind == Kind.QTY_TIERS:
        q = 0
        for i in idx:
            q += lines[i, L_QTY]
        step = -1
        for s in range(t[O_LADDER_OFF], t[O_LADDER_OFF] + t[O_LADDER_LEN]):
            if rules.ladder[s, L_THRESHOLD] <= q:
                step = s
        if step < 0:
            return MIN_QTY, rules.ladder[t[O_LADDER_OFF], L_THRESHOLD] - q, 0
        percent_lines(rules.ladder[step, L_BPS], net, idx, prop)
    elif kind == Kind.BUY_X_GET_Y:
        return buy_x_get_y(t, lines, net, idx, prop)
    elif kind == Kind.BUNDLE_PRICE:
        return bundle_price(rules, o, lines, net, idx, prop)
    return 0, 0, 1


@njit
def buy_x_get_y(t, lines, net, idx, prop):
    group = t[O_P1] + t[O_P2]
    units = 0
    for i in idx:
        units += lines[i, L_QTY]
    k = units // group
    if t[O_PER_TX] > 0:
        k = min(k, t[O_PER_TX])
    if k == 0:
        return MIN_QTY, group - units, 0
    free = k * t[O_P2]
    for i in units_by_price(lines, idx, False):  # cheapest first = the tail of the list
        if free == 0:
            break
        n_free = min(free, lines[i, L_QTY])
        free -= n_free
        prop[i] = min(net[i], n_free * rhu(lines[i, L_PRICE], t[O_P3], BPS))
    return 0, 0, k


@njit
def bundle_price(rules, o, lines, net, idx, prop):
    t = rules.offer[o]
    first, n_comp = t[O_BUNDLE_OFF], t[O_BUNDLE_LEN]
    comp_of = np.full(lines.shape[0], -1, dtype=np.int64)
    units = np.zeros(n_comp, dtype=np.int64)
    for i in idx:
        for c in range(n_comp):
            if in_set(rules, rules.bundle[first + c, B_SET], lines[i]):
                comp_of[i] = c
                units[c] += lines[i, L_QTY]
                break
    k = units[0] // rules.bundle[first, B_QTY]
    for c in range(1, n_comp):
        k = min(k, units[c] // rules.bundle[first + c, B_QTY])
    if t[O_PER_TX] > 0:
        k = min(k, t[O_PER_TX])
    if k == 0:
        short = 0
        for c in range(n_comp):
            short += max(0, rules.bundle[first + c, B_QTY] - units[c])
        return MIN_QTY, short, 0
    selected = np.zeros(lines.shape[0], dtype=np.int64)
    for c in range(n_comp):
        want = k * rules.bundle[first + c, B_QTY]
        for i in units_by_price(lines, idx, True):
            if want == 0:
                break
            if comp_of[i] == c:
                take = min(want, lines[i, L_QTY])
                selected[i] = take
                want -= take
    sel = np.nonzero(selected)[0]  # basket order
    weights = np.empty(sel.shape[0], dtype=np.int64)
    total = 0
    for j in range(sel.shape[0]):
        weights[j] = selected[sel[j]] * lines[sel[j], L_PRICE]
        total += weights[j]
    discount = floor_sub(total, k, t[O_P1])
    if discount == 0:
        return NO_BENEFIT, 0, 0
    shares = np.empty(sel.shape[0], dtype=np.int64)
    allocate(discount, weights, shares)
    for j in range(sel.shape[0]):
        prop[sel[j]] = min(shares[j], net[sel[j]])
    return 0, 0, k


@njit
def order_amount(rules, o, spend):
    """Order-phase discount D before caps; returns (reason, detail, D, applications)."""
    t = rules.offer[o]
    kind = t[O_KIND]
    if kind == Kind.ORDER_PERCENT_OFF:
        return 0, 0, rhu(spend, t[O_P1], BPS), 1
    if kind == Kind.ORDER_AMOUNT_OFF:
        return 0, 0, min(spend, t[O_P1]), 1
    # SPEND_TIERS
    step = -1
    for s in range(t[O_LADDER_OFF], t[O_LADDER_OFF] + t[O_LADDER_LEN]):
        if rules.ladder[s, L_THRESHOLD] <= spend:
            step = s
    if step < 0:
        return MIN_SPEND, rules.ladder[t[O_LADDER_OFF], L_THRESHOLD] - spend, 0, 0
    amount = rules.ladder[step, L_AMOUNT]
    if amount == 0:
        return 0, 0, min(spend, rhu(spend, rules.ladder[step, L_BPS], BPS)), 1
    if t[O_P1] == 0:  # no repeat
        return 0, 0, min(spend, amount), 1
    times = spend // rules.ladder[step, L_THRESHOLD]
    if t[O_PER_TX] > 0:
        times = min(times, t[O_PER_TX])
    # beyond spend // amount + 1 repetitions the discount is capped at S anyway; this also
    # keeps times * amount inside int64
    times_eff = min(times, spend // amount + 1)
    return 0, 0, min(spend, times_eff * amount), times


@njit
def propose_order(rules, o, net, elig, cap, prop):
    """Order-phase reward of offer ``o`` allocated over eligible lines by their nets."""
    idx = eligible_index(elig)
    spend = 0
    for i in idx:
        spend += net[i]
    reason, detail, discount, apps = order_amount(rules, o, spend)
    if reason != 0:
        return reason, detail, 0
    discount = min(discount, cap)
    if discount == 0:
        return NO_BENEFIT, 0, 0
    weights = np.empty(idx.shape[0], dtype=np.int64)
    for j in range(idx.shape[0]):
        weights[j] = net[idx[j]]
    shares = np.empty(idx.shape[0], dtype=np.int64)
    allocate(discount, weights, shares)
    for j in range(idx.shape[0]):
        prop[idx[j]] = shares[j]
    return 0, 0, apps


@njit
def cap_item(prop, cap):
    """Cap an item discount at ``cap``, re-allocated with weights = the uncapped discounts."""
    total = prop.sum()
    if total <= cap:
        return
    idx = np.nonzero(prop)[0]
    weights = prop[idx].copy()
    shares = np.empty(idx.shape[0], dtype=np.int64)
    allocate(cap, weights, shares)
    for j in range(idx.shape[0]):
        prop[idx[j]] = shares[j]
