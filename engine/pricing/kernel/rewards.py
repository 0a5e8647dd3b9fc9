# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Discount rewards as proposals (docs/pricing.md §5).

Each function reads the eligible lines ``elig[:ne]`` (ascending line numbers), writes
``prop[i]`` — the discount line ``i`` would get — for exactly those lines, and returns
``(reason, detail, applications)``. Nothing is applied here, so a group can compare its
members on the same state. ``sc`` is a per-basket scratch table (int64[5, width]) with
``width`` at least the number of lines and of any candidate bundle's components.
"""

from __future__ import annotations

from engine.pricing.constants import BPS, Kind, Reason
from engine.pricing.jit import helper, inline_helper
from engine.pricing.kernel.util import allocate, in_set, rhu, sort_by_price
from engine.pricing.layout import (
    B_QTY,
    B_SET,
    L_AMOUNT,
    L_BPS,
    L_PRICE,
    L_QTY,
    L_THRESHOLD,
    O_BUNDLE_LEN,
    O_BUNDLE_OFF,
    O_GET_SET,
    O_KIND,
    O_LADDER_LEN,
    O_LADDER_OFF,
    O_P1,
    O_P2,
    O_P3,
    O_PER_TX,
    O_TU_FORM,
    O_TU_PICK,
    TU_AMOUNT,
    TU_PERCENT,
)

MIN_QTY = Reason.MIN_QTY_NOT_REACHED.value
MIN_SPEND = Reason.MIN_SPEND_NOT_REACHED.value
NO_BENEFIT = Reason.NO_BENEFIT.value
GIFT_MISSING = Reason.GIFT_NOT_IN_BASKET.value
# rows of the scratch table
SC_A, SC_B, SC_C, SC_D, SC_E = 0, 1, 2, 3, 4


@helper
def floor_sub(value, a, b):
    """max(0, value - a*b) without forming a*b when it would pass ``value`` (int64 safety)."""
    if a > 0 and b > value // a:
        return 0
    return max(0, value - a * b)


@inline_helper
def highest_step(ladder, first, count, reached):
    """The last ladder step whose threshold is at most ``reached``, or -1. Inlined: a ladder
    is a few steps, fewer instructions than the call."""
    step = -1
    for s in range(first, first + count):
        if ladder[s, L_THRESHOLD] <= reached:
            step = s
    return step


@inline_helper
def propose_item(rules, o, lines, net, elig, ne, prop, sc):
    """Item-phase reward of offer ``o``."""
    kind = rules.offer[o, O_KIND]
    p1 = rules.offer[o, O_P1]
    if kind == Kind.PERCENT_OFF:
        for j in range(ne):
            prop[elig[j]] = rhu(net[elig[j]], p1, BPS)
    elif kind == Kind.AMOUNT_OFF:
        for j in range(ne):
            i = elig[j]
            prop[i] = net[i] - floor_sub(net[i], p1, lines[i, L_QTY])
    elif kind == Kind.FIXED_PRICE:
        for j in range(ne):
            i = elig[j]
            prop[i] = floor_sub(net[i], p1, lines[i, L_QTY])
    elif kind == Kind.QTY_TIERS:
        q = 0
        for j in range(ne):
            q += lines[elig[j], L_QTY]
        first = rules.offer[o, O_LADDER_OFF]
        step = highest_step(rules.ladder, first, rules.offer[o, O_LADDER_LEN], q)
        if step < 0:
            return MIN_QTY, rules.ladder[first, L_THRESHOLD] - q, 0
        bps = rules.ladder[step, L_BPS]
        for j in range(ne):
            prop[elig[j]] = rhu(net[elig[j]], bps, BPS)
    elif kind == Kind.BUY_X_GET_Y:
        return buy_x_get_y(rules, o, lines, net, elig, ne, prop, sc)
    elif kind == Kind.BUNDLE_PRICE:
        return bundle_price(rules, o, lines, net, elig, ne, prop, sc)
    elif kind == Kind.TARGET_UNITS:
        return target_units(rules, o, lines, net, elig, ne, prop, sc)
    elif kind == Kind.BUY_GET:
        return buy_get(rules, o, lines, net, elig, ne, prop, sc)
    elif kind == Kind.GIFT:
        return gift(rules, o, lines, net, elig, ne, prop, sc)
    elif kind == Kind.DELIVERY_OFF:  # its lines are the delivery lines
        form = rules.offer[o, O_TU_FORM]
        for j in range(ne):
            i = elig[j]
            prop[i] = chosen_units_off(form, rules.offer[o, O_P3], net[i], lines[i, L_QTY])
    elif kind == Kind.UNIT_RATES:
        return unit_rates(rules, o, lines, net, elig, ne, prop, sc)
    return 0, 0, 1


@inline_helper
def buy_x_get_y(rules, o, lines, net, elig, ne, prop, sc):
    group = rules.offer[o, O_P1] + rules.offer[o, O_P2]
    units = 0
    for j in range(ne):
        units += lines[elig[j], L_QTY]
        prop[elig[j]] = 0
    k = units // group
    if rules.offer[o, O_PER_TX] > 0:
        k = min(k, rules.offer[o, O_PER_TX])
    if k == 0:
        return MIN_QTY, group - units, 0
    order = sc[SC_A]
    m = 0
    for j in range(ne):  # a line already discounted to 0 gives no unit
        if net[elig[j]] > 0:
            order[m] = elig[j]
            m += 1
    sort_by_price(lines, order, m, False)  # cheapest first = the tail of the list
    free = k * rules.offer[o, O_P2]
    bps = rules.offer[o, O_P3]
    for j in range(m):
        if free == 0:
            break
        i = order[j]
        n_free = min(free, lines[i, L_QTY])
        free -= n_free
        prop[i] = min(net[i], n_free * rhu(lines[i, L_PRICE], bps, BPS))
    return 0, 0, k


@helper
def sort_by_unit_net(lines, net, idx, m):
    """Sort ``idx[:m]`` (line numbers, ascending) in place by unit net ``net/qty`` descending,
    basket order kept within a unit net (cross-multiplied: exact, inside int64)."""
    for a in range(1, m):
        x = idx[a]
        b = a - 1
        while b >= 0 and net[idx[b]] * lines[x, L_QTY] < net[x] * lines[idx[b], L_QTY]:
            idx[b + 1] = idx[b]
            b -= 1
        idx[b + 1] = x


@inline_helper
def target_units(rules, o, lines, net, elig, ne, prop, sc):
    """``k`` repetitions of ``units`` units (the cheapest or most expensive by current unit net,
    units with a net of 0 left out); a line with ``n`` of them has chosen net
    ``c = floor(n·net/q)`` and gets the reward on ``c`` as percent_off / amount_off /
    fixed_price would on a line of ``n`` units."""
    every = rules.offer[o, O_P2]
    value = rules.offer[o, O_P3]
    form = rules.offer[o, O_TU_FORM]
    units = 0
    m = 0
    order = sc[SC_A]
    for j in range(ne):
        i = elig[j]
        prop[i] = 0
        units += lines[i, L_QTY]
        if net[i] > 0:
            order[m] = i
            m += 1
    k = 1
    if every > 0:
        k = units // every
        if rules.offer[o, O_PER_TX] > 0:
            k = min(k, rules.offer[o, O_PER_TX])
        if k == 0:
            return MIN_QTY, every - units, 0
    sort_by_unit_net(lines, net, order, m)  # most expensive first, ties in basket order
    want = k * rules.offer[o, O_P1]
    cheapest = rules.offer[o, O_TU_PICK] == 0
    for s in range(m):
        if want == 0:
            break
        i = order[m - 1 - s] if cheapest else order[s]
        q = lines[i, L_QTY]
        n = min(want, q)
        want -= n
        chosen = n * net[i] // q
        if form == TU_PERCENT:
            prop[i] = min(chosen, rhu(chosen, value, BPS))
        elif form == TU_AMOUNT:
            prop[i] = chosen - floor_sub(chosen, value, n)
        else:
            prop[i] = floor_sub(chosen, value, n)
    return 0, 0, k


@helper
def chosen_units_off(form, value, chosen, n):
    """A target_units / buy_get value on ``n`` chosen units of chosen net ``chosen``."""
    if form == TU_PERCENT:
        return min(chosen, rhu(chosen, value, BPS))
    if form == TU_AMOUNT:
        return chosen - floor_sub(chosen, value, n)
    return floor_sub(chosen, value, n)


@inline_helper
def buy_get(rules, o, lines, net, elig, ne, prop, sc):
    """Eligible lines in the get set are get lines, the others buy lines; ``k`` repetitions of
    ``buy_qty`` buy units discount the ``k·get_qty`` cheapest get units (current unit net,
    nets of 0 left out), each line's chosen net valued as in target_units."""
    get_set = rules.offer[o, O_GET_SET]
    bought = 0
    m = 0
    order = sc[SC_A]
    for j in range(ne):
        i = elig[j]
        prop[i] = 0
        if in_set(rules.sets, rules.set_vals, get_set, lines, i):
            if net[i] > 0:
                order[m] = i
                m += 1
        else:
            bought += lines[i, L_QTY]
    k = bought // rules.offer[o, O_P1]
    if rules.offer[o, O_PER_TX] > 0:
        k = min(k, rules.offer[o, O_PER_TX])
    if k == 0:
        return MIN_QTY, rules.offer[o, O_P1] - bought, 0
    sort_by_unit_net(lines, net, order, m)  # most expensive first: take from the tail
    want = k * rules.offer[o, O_P2]
    value = rules.offer[o, O_P3]
    form = rules.offer[o, O_TU_FORM]
    for s in range(m):
        if want == 0:
            break
        i = order[m - 1 - s]
        q = lines[i, L_QTY]
        n = min(want, q)
        want -= n
        prop[i] = chosen_units_off(form, value, n * net[i] // q, n)
    return 0, 0, k


@inline_helper
def unit_rates(rules, o, lines, net, elig, ne, prop, sc):
    """``first_minor`` off the first unit, ``additional_minor`` off each further one, over the
    whole offer: the eligible units with a net > 0, most expensive first (target_units'
    MOST_EXPENSIVE list), up to ``max_units`` of them (0 = all); a line with ``n`` chosen units,
    ``f`` (0 or 1) of them the first, gets ``min(c, first·f + additional·(n − f))`` with
    ``c = floor(n·net/q)``."""
    first = rules.offer[o, O_P1]
    additional = rules.offer[o, O_P2]
    most = rules.offer[o, O_P3]
    m = 0
    order = sc[SC_A]
    for j in range(ne):
        i = elig[j]
        prop[i] = 0
        if net[i] > 0:
            order[m] = i
            m += 1
    sort_by_unit_net(lines, net, order, m)  # most expensive first, ties in basket order
    taken = 0
    for s in range(m):
        if 0 < most <= taken:
            break
        i = order[s]
        q = lines[i, L_QTY]
        n = min(most - taken, q) if most > 0 else q
        f = 1 if taken == 0 else 0
        taken += n
        chosen = n * net[i] // q
        # min(chosen, first·f + additional·(n − f)), no product formed past chosen
        prop[i] = chosen - floor_sub(floor_sub(chosen, additional, n - f), first, f)
    return 0, 0, 1


@inline_helper
def gift(rules, o, lines, net, elig, ne, prop, sc):
    """The gift's units among the eligible lines (lines of its sku with a net > 0, basket
    order, up to its quantity) down to its price: ``max(0, min(net, n·p) − price·n)``;
    ``detail`` = the gift units found."""
    want = rules.offer[o, O_P1]
    price = rules.offer[o, O_P3]
    for j in range(ne):
        i = elig[j]
        prop[i] = 0
        if (
            want > 0
            and net[i] > 0
            and in_set(rules.sets, rules.set_vals, rules.offer[o, O_GET_SET], lines, i)
        ):
            q = lines[i, L_QTY]
            n = min(want, q)
            want -= n
            # valued at the shelf price, as buy_x_get_y's free units: a unit another gift
            # made free is not chosen again
            prop[i] = floor_sub(min(net[i], n * lines[i, L_PRICE]), price, n)
    found = rules.offer[o, O_P1] - want
    if found == 0:
        return GIFT_MISSING, rules.offer[o, O_P1], 0
    return 0, found, 1


@inline_helper
def bundle_price(rules, o, lines, net, elig, ne, prop, sc):
    first, n_comp = rules.offer[o, O_BUNDLE_OFF], rules.offer[o, O_BUNDLE_LEN]
    comp_of = sc[SC_A]
    units = sc[SC_E]
    for c in range(n_comp):
        units[c] = 0
    for j in range(ne):
        i = elig[j]
        prop[i] = 0
        comp_of[i] = -1
        for c in range(n_comp):
            if in_set(rules.sets, rules.set_vals, rules.bundle[first + c, B_SET], lines, i):
                comp_of[i] = c
                units[c] += lines[i, L_QTY]
                break
    k = units[0] // rules.bundle[first, B_QTY]
    for c in range(1, n_comp):
        k = min(k, units[c] // rules.bundle[first + c, B_QTY])
    if rules.offer[o, O_PER_TX] > 0:
        k = min(k, rules.offer[o, O_PER_TX])
    if k == 0:
        short = 0
        for c in range(n_comp):
            short += max(0, rules.bundle[first + c, B_QTY] - units[c])
        return MIN_QTY, short, 0
    order = sc[SC_B]
    for j in range(ne):
        order[j] = elig[j]
    sort_by_price(lines, order, ne, True)  # most expensive first
    selected = sc[SC_C]
    for j in range(ne):
        selected[elig[j]] = 0
    for c in range(n_comp):
        want = k * rules.bundle[first + c, B_QTY]
        for j in range(ne):
            if want == 0:
                break
            i = order[j]
            if comp_of[i] == c:
                take = min(want, lines[i, L_QTY])
                selected[i] = take
                want -= take
    # weights in basket order (elig is ascending); reuse the sorted row as the shares buffer
    weights = sc[SC_D]
    m = 0
    total = 0
    for j in range(ne):
        i = elig[j]
        if selected[i] > 0:
            order[m] = i
            weights[m] = selected[i] * lines[i, L_PRICE]
            total += weights[m]
            m += 1
    discount = floor_sub(total, k, rules.offer[o, O_P1])
    if discount == 0:
        return NO_BENEFIT, 0, 0
    shares = sc[SC_A]  # comp_of is no longer needed
    allocate(discount, weights, m, shares, selected)
    for j in range(m):
        prop[order[j]] = min(shares[j], net[order[j]])
    return 0, 0, k


@inline_helper
def order_amount(rules, o, spend):
    """Order-phase discount D before caps; returns (reason, detail, D, applications)."""
    kind = rules.offer[o, O_KIND]
    if kind == Kind.ORDER_PERCENT_OFF:
        return 0, 0, rhu(spend, rules.offer[o, O_P1], BPS), 1
    if kind == Kind.ORDER_AMOUNT_OFF:
        return 0, 0, min(spend, rules.offer[o, O_P1]), 1
    # SPEND_TIERS
    first = rules.offer[o, O_LADDER_OFF]
    step = highest_step(rules.ladder, first, rules.offer[o, O_LADDER_LEN], spend)
    if step < 0:
        return MIN_SPEND, rules.ladder[first, L_THRESHOLD] - spend, 0, 0
    amount = rules.ladder[step, L_AMOUNT]
    if amount == 0:
        return 0, 0, min(spend, rhu(spend, rules.ladder[step, L_BPS], BPS)), 1
    if rules.offer[o, O_P1] == 0:  # no repeat
        return 0, 0, min(spend, amount), 1
    times = spend // rules.ladder[step, L_THRESHOLD]
    if rules.offer[o, O_PER_TX] > 0:
        times = min(times, rules.offer[o, O_PER_TX])
    # beyond spend // amount + 1 repetitions the discount is capped at S anyway; this also
    # keeps times * amount inside int64
    times_eff = min(times, spend // amount + 1)
    return 0, 0, min(spend, times_eff * amount), times


@inline_helper
def propose_order(rules, o, net, elig, ne, cap, prop, sc):
    """Order-phase reward of offer ``o`` allocated over the eligible lines by their nets."""
    spend = 0
    weights = sc[SC_A]
    for j in range(ne):
        weights[j] = net[elig[j]]
        spend += weights[j]
        prop[elig[j]] = 0
    reason, detail, discount, apps = order_amount(rules, o, spend)
    if reason != 0:
        return reason, detail, 0
    discount = min(discount, cap)
    if discount == 0:
        return NO_BENEFIT, 0, 0
    shares = sc[SC_B]
    allocate(discount, weights, ne, shares, sc[SC_C])
    for j in range(ne):
        prop[elig[j]] = shares[j]
    return 0, 0, apps


@inline_helper
def cap_item(prop, elig, ne, cap, sc):
    """Cap an item discount at ``cap``, re-allocated with weights = the uncapped discounts.

    Returns the total after the cap.
    """
    total = 0
    for j in range(ne):
        total += prop[elig[j]]
    if total <= cap:
        return total
    weights = sc[SC_A]
    for j in range(ne):
        weights[j] = prop[elig[j]]
    shares = sc[SC_B]
    allocate(cap, weights, ne, shares, sc[SC_C])
    for j in range(ne):
        prop[elig[j]] = shares[j]
    return cap
