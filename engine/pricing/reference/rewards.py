"""Reward kinds of docs/pricing.md §5–§6 and the allocation rule of §7, in plain Python.

Each reward function reads one ``reward`` message of an offer and the current state of the
eligible lines, and says what the offer *would* give: per-line discounts (item phase), one
order discount (order phase), or points with their attribution weights (points phase). It
never changes any state; caps, stacking and recording are the orchestrator's business
(:mod:`engine.pricing.reference.core`). When the reward's own threshold is not reached (check 14) it
returns a :class:`Shortfall` instead.

All arithmetic is on Python ints; nothing here rounds except :func:`rhu` and :func:`allocate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from engine.pricing.basket import ResolvedLine
from engine.pricing.constants import BPS, Reason
from loyalty.v1 import rules_pb2


def rhu(a: int, b: int, c: int) -> int:
    """``a·b/c`` rounded half up, for non-negative integers (DESIGN §4)."""
    return (2 * a * b + c) // (2 * c)


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` over ``weights`` by largest remainder (docs/pricing.md §7).

    ``base_i = floor(amount·w_i / W)``; the units left over go one each to the lines with the
    largest ``(amount·w_i) mod W``, ties to the earlier line.
    """
    total = sum(weights)
    if amount == 0 or total == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    left = amount - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares


def in_product_set(products: rules_pb2.ProductSet, line: ResolvedLine) -> bool:
    """A union of skus, categories, brands and vendors (or ``all``), minus ``exclude_skus``;
    a delivery line is in none."""
    if line.delivery or line.sku in products.exclude_skus:
        return False
    return (
        products.all
        or line.sku in products.skus
        or line.category in products.categories
        or line.brand in products.brands
        or line.vendor in products.vendors
    )


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The reward's own threshold is not reached (check 14)."""

    reason: Reason
    detail: int


@dataclass(frozen=True, slots=True)
class ItemDiscount:
    """Uncapped discount per line index (item phase)."""

    amounts: dict[int, int]
    applications: int = 1
    found: int = 0  # gift: the gift units found in the basket


@dataclass(frozen=True, slots=True)
class OrderDiscount:
    """Uncapped total discount ``D`` on the eligible lines (order phase)."""

    amount: int
    applications: int = 1


@dataclass(frozen=True, slots=True)
class Points:
    """Floored points of one component and the weights attributing them to line indexes."""

    points: int
    weights: dict[int, int]


@dataclass(frozen=True, slots=True)
class Scope:
    """The eligible lines of an offer at the moment it is considered."""

    lines: Sequence[ResolvedLine]  # the whole basket, in basket order
    nets: Sequence[int]  # current net per basket line
    eligible: Sequence[int]  # indexes of the eligible lines, ascending
    per_transaction: int  # limits.per_transaction; 0 = no cap

    @property
    def units(self) -> int:
        return sum(self.lines[i].quantity for i in self.eligible)

    @property
    def spend(self) -> int:
        return sum(self.nets[i] for i in self.eligible)

    def capped(self, k: int) -> int:
        return min(k, self.per_transaction) if self.per_transaction > 0 else k


# --- item phase ---------------------------------------------------------------------------


def percent_off(reward: rules_pb2.PercentOff, scope: Scope) -> ItemDiscount:
    """``d_i = rhu(net_i·bps/10000)`` on each line's current net."""
    return _percent_of_nets(reward.percent_bps, scope)


def _percent_of_nets(bps: int, scope: Scope) -> ItemDiscount:
    # min(): a net never goes below 0, even for a (non-validated) bps above 10000
    return ItemDiscount(
        {i: min(scope.nets[i], rhu(scope.nets[i], bps, BPS)) for i in scope.eligible}
    )


def amount_off(reward: rules_pb2.AmountOff, scope: Scope) -> ItemDiscount:
    """``d_i = min(net_i, a·q_i)``."""
    a = reward.amount_minor
    return ItemDiscount(
        {i: min(scope.nets[i], a * scope.lines[i].quantity) for i in scope.eligible}
    )


def fixed_price(reward: rules_pb2.FixedPrice, scope: Scope) -> ItemDiscount:
    """Member price: ``d_i = max(0, net_i − f·q_i)``."""
    f = reward.price_minor
    return ItemDiscount(
        {i: max(0, scope.nets[i] - f * scope.lines[i].quantity) for i in scope.eligible}
    )


def qty_tiers(reward: rules_pb2.QtyTiers, scope: Scope) -> ItemDiscount | Shortfall:
    """The highest step with ``min_qty ≤ Q`` applies as ``percent_off``."""
    if not reward.steps:
        return ItemDiscount({})
    q = scope.units
    reached = [s for s in reward.steps if s.min_qty <= q]
    if not reached:
        first = min(s.min_qty for s in reward.steps)
        return Shortfall(Reason.MIN_QTY_NOT_REACHED, first - q)
    step = max(reached, key=lambda s: s.min_qty)
    return _percent_of_nets(step.percent_bps, scope)


def _units_by_price(scope: Scope, indexes: Sequence[int]) -> list[int]:
    """One entry (the line index) per unit, by unit price descending, ties in basket order."""
    ordered = sorted(indexes, key=lambda i: (-scope.lines[i].unit_price_minor, i))
    return [i for i in ordered for _ in range(scope.lines[i].quantity)]


def buy_x_get_y(reward: rules_pb2.BuyXGetY, scope: Scope) -> ItemDiscount | Shortfall:
    """The cheapest ``k·y`` units (the end of the price-descending list of the lines not yet
    discounted to 0) get ``bps`` off."""
    x, y, u = reward.buy, reward.get, scope.units
    if x + y <= 0:
        return ItemDiscount({})
    k = scope.capped(u // (x + y))
    if k == 0:
        return Shortfall(Reason.MIN_QTY_NOT_REACHED, x + y - u)
    # a line already discounted to 0 gives no unit: its units are free already
    units = _units_by_price(scope, [i for i in scope.eligible if scope.nets[i] > 0])
    free = units[max(0, len(units) - k * y) :]
    counts: dict[int, int] = {}
    for i in free:
        counts[i] = counts.get(i, 0) + 1
    amounts = {}
    for i in sorted(counts):
        off = rhu(scope.lines[i].unit_price_minor, reward.percent_bps, BPS)
        amounts[i] = min(scope.nets[i], counts[i] * off)
    return ItemDiscount(amounts, applications=k)


def bundle_price(reward: rules_pb2.BundlePrice, scope: Scope) -> ItemDiscount | Shortfall:
    """``k`` bundles of the most expensive units of each component at ``P`` each."""
    components = [c for c in reward.components if c.qty > 0]
    if not components:
        return ItemDiscount({})
    members: list[list[int]] = [[] for _ in components]
    for i in scope.eligible:
        # a line belongs to the first component whose set matches it
        for c, component in enumerate(components):
            if in_product_set(component.scope, scope.lines[i]):
                members[c].append(i)
                break
    units = [sum(scope.lines[i].quantity for i in m) for m in members]
    k = scope.capped(min(u // c.qty for u, c in zip(units, components, strict=True)))
    if k == 0:
        return Shortfall(
            Reason.MIN_QTY_NOT_REACHED,
            sum(max(0, c.qty - u) for u, c in zip(units, components, strict=True)),
        )
    selected: dict[int, int] = {}
    for m, component in zip(members, components, strict=True):
        for i in _units_by_price(scope, m)[: k * component.qty]:
            selected[i] = selected.get(i, 0) + 1
    chosen = sorted(selected)
    weights = [selected[i] * scope.lines[i].unit_price_minor for i in chosen]
    d = max(0, sum(weights) - k * reward.price_minor)
    shares = allocate(d, weights)
    return ItemDiscount(
        {i: min(scope.nets[i], s) for i, s in zip(chosen, shares, strict=True)}, applications=k
    )


def units_off(
    reward: rules_pb2.TargetUnits | rules_pb2.BuyGet | rules_pb2.DeliveryOff, chosen: int, n: int
) -> int:
    """The discount on ``n`` chosen units whose net is ``chosen``, by the reward's value:
    ``rhu(chosen·bps/10000)``, ``min(chosen, a·n)`` or ``max(0, chosen − f·n)``."""
    form = reward.WhichOneof("value")
    if form == "amount_minor":
        return min(chosen, reward.amount_minor * n)
    if form == "price_minor":
        return max(0, chosen - reward.price_minor * n)
    return min(chosen, rhu(chosen, reward.percent_bps, BPS))


def target_units(reward: rules_pb2.TargetUnits, scope: Scope) -> ItemDiscount | Shortfall:
    """``k`` times the ``units`` cheapest (or most expensive) units by current unit net.

    ``k = 1`` without ``every``, else ``floor(Q/every)`` capped by ``per_transaction``
    (0: shortfall ``every − Q``). A line's units are alike, each at ``net_i/q_i``; lines with
    ``net_i = 0`` give no unit. Ranked like buy_x_get_y's list (unit net descending, ties in
    basket order): MOST_EXPENSIVE takes from its head, CHEAPEST from its tail. A line with
    ``n_i`` chosen units has chosen net ``c_i = floor(n_i·net_i/q_i)`` and gets
    ``rhu(c_i·bps/10000)``, ``min(c_i, a·n_i)`` or ``max(0, c_i − f·n_i)``.
    """
    q = scope.units
    k = 1
    if reward.every > 0:
        k = scope.capped(q // reward.every)
        if k == 0:
            return Shortfall(Reason.MIN_QTY_NOT_REACHED, reward.every - q)
    lines, nets = scope.lines, scope.nets
    ranked = sorted(
        (i for i in scope.eligible if nets[i] > 0),
        key=lambda i: (-Fraction(nets[i], lines[i].quantity), i),
    )
    if reward.pick == rules_pb2.TargetUnits.CHEAPEST:
        ranked.reverse()
    left = k * reward.units
    amounts: dict[int, int] = {}
    for i in ranked:
        n = min(left, lines[i].quantity)
        if n == 0:
            break
        left -= n
        amounts[i] = units_off(reward, n * nets[i] // lines[i].quantity, n)
    return ItemDiscount(dict(sorted(amounts.items())), applications=k)


def buy_get(reward: rules_pb2.BuyGet, scope: Scope) -> ItemDiscount | Shortfall:
    """Buy ``buy_qty`` units of the scope, get ``get_qty`` units of the get set at a discount.

    The eligible lines are those of the scope (the buy set) and of ``get``; a line in ``get``
    is a get line, any other a buy line. ``k = floor(B/buy_qty)`` capped by
    ``per_transaction``, ``B`` the buy lines' units (0: shortfall ``buy_qty − B``). Get lines
    with ``net_i > 0`` are ranked as target_units ranks them (unit net descending, ties in
    basket order) and the ``k·get_qty`` cheapest units (from the tail) are chosen; a line with
    ``n_i`` of them has ``c_i = floor(n_i·net_i/q_i)`` and gets ``rhu(c_i·bps/10000)``,
    ``min(c_i, a·n_i)`` or ``max(0, c_i − f·n_i)``.
    """
    lines, nets = scope.lines, scope.nets
    get = [i for i in scope.eligible if in_product_set(reward.get, lines[i])]
    bought = sum(lines[i].quantity for i in scope.eligible if i not in get)
    k = scope.capped(bought // reward.buy_qty)
    if k == 0:
        return Shortfall(Reason.MIN_QTY_NOT_REACHED, reward.buy_qty - bought)
    ranked = sorted(
        (i for i in get if nets[i] > 0), key=lambda i: (-Fraction(nets[i], lines[i].quantity), i)
    )
    left = k * reward.get_qty
    amounts: dict[int, int] = {}
    for i in reversed(ranked):
        n = min(left, lines[i].quantity)
        if n == 0:
            break
        left -= n
        amounts[i] = units_off(reward, n * nets[i] // lines[i].quantity, n)
    return ItemDiscount(dict(sorted(amounts.items())), applications=k)


def unit_rates(reward: rules_pb2.UnitRates, scope: Scope) -> ItemDiscount:
    """``first_minor`` off the first unit, ``additional_minor`` off each further unit.

    Over the whole offer, not per line: the eligible lines with ``net_i > 0`` are ranked as
    target_units ranks them (unit net ``net_i/q_i`` descending, ties in basket order) and their
    units taken from the head, ``max_units`` of them (all when 0). The very first unit taken
    gets ``first_minor``, every other one ``additional_minor``; a line with ``n_i`` chosen
    units, ``f_i`` (0 or 1) of them the first, has ``c_i = floor(n_i·net_i/q_i)`` and gets
    ``min(c_i, first_minor·f_i + additional_minor·(n_i − f_i))``. One application.
    """
    lines, nets = scope.lines, scope.nets
    ranked = sorted(
        (i for i in scope.eligible if nets[i] > 0),
        key=lambda i: (-Fraction(nets[i], lines[i].quantity), i),
    )
    left = reward.max_units if reward.max_units > 0 else sum(lines[i].quantity for i in ranked)
    amounts: dict[int, int] = {}
    for i in ranked:
        n = min(left, lines[i].quantity)
        if n == 0:
            break
        first = 1 if not amounts else 0
        left -= n
        chosen = n * nets[i] // lines[i].quantity
        amounts[i] = min(chosen, reward.first_minor * first + reward.additional_minor * (n - first))
    return ItemDiscount(dict(sorted(amounts.items())))


def gift_set(reward: rules_pb2.Gift) -> rules_pb2.ProductSet:
    """The gift's lines: those of its sku (never a delivery line)."""
    return rules_pb2.ProductSet(skus=[reward.sku])


def gift(reward: rules_pb2.Gift, scope: Scope) -> ItemDiscount | Shortfall:
    """The first ``quantity`` gift units among the eligible lines (lines of the gift's sku with
    ``net_i > 0``, basket order) down to ``price_minor``: a line with ``n_i`` of them gets
    ``max(0, min(net_i, n_i·p_i) − price·n_i)``. None of them in the basket:
    GIFT_NOT_IN_BASKET, detail = the gift's quantity."""
    gifts = gift_set(reward)
    want = reward.quantity
    amounts = {}
    for i in scope.eligible:
        line, net = scope.lines[i], scope.nets[i]
        if want > 0 and net > 0 and in_product_set(gifts, line):
            n = min(want, line.quantity)
            want -= n
            value = min(net, n * line.unit_price_minor)  # shelf price, as buy_x_get_y's
            amounts[i] = max(0, value - reward.price_minor * n)
    found = reward.quantity - want
    if found == 0:
        return Shortfall(Reason.GIFT_NOT_IN_BASKET, reward.quantity)
    return ItemDiscount(amounts, found=found)


def delivery_off(reward: rules_pb2.DeliveryOff, scope: Scope) -> ItemDiscount:
    """On each delivery line (the offer's eligible lines): ``percent_bps`` of its net, or
    ``amount_minor`` off each unit, or each unit down to ``price_minor`` — as percent_off,
    amount_off and fixed_price read a line."""
    amounts = {i: units_off(reward, scope.nets[i], scope.lines[i].quantity) for i in scope.eligible}
    return ItemDiscount(amounts)


# --- order phase --------------------------------------------------------------------------


def spend_tiers(reward: rules_pb2.SpendTiers, scope: Scope) -> OrderDiscount | Shortfall:
    """The highest step with ``threshold ≤ S``; amount, repeated amount or percent of ``S``."""
    if not reward.steps:
        return OrderDiscount(0)
    s = scope.spend
    reached = [t for t in reward.steps if t.threshold_minor <= s]
    if not reached:
        first = min(t.threshold_minor for t in reward.steps)
        return Shortfall(Reason.MIN_SPEND_NOT_REACHED, first - s)
    step = max(reached, key=lambda t: t.threshold_minor)
    if step.percent_bps:
        return OrderDiscount(min(s, rhu(s, step.percent_bps, BPS)))
    times = 1
    if reward.repeat and step.threshold_minor > 0:
        times = scope.capped(s // step.threshold_minor)
    return OrderDiscount(min(s, times * step.amount_minor), applications=times)


def order_percent_off(reward: rules_pb2.OrderPercentOff, scope: Scope) -> OrderDiscount:
    """``D = rhu(S·bps/10000)``."""
    s = scope.spend
    return OrderDiscount(min(s, rhu(s, reward.percent_bps, BPS)))


def order_amount_off(reward: rules_pb2.OrderAmountOff, scope: Scope) -> OrderDiscount:
    """``D = min(S, a)``."""
    return OrderDiscount(min(scope.spend, reward.amount_minor))


# --- points phase -------------------------------------------------------------------------


def base_points(amounts: dict[int, int], tier_bps: int, earn_per_amount: int) -> Points:
    """``floor(B·tier_bps / (earn_per_amount·10000))``, attributed with weights ``amount_i``."""
    b = sum(amounts.values())
    return Points(b * tier_bps // (earn_per_amount * BPS), amounts)


def points_multiplier(
    reward: rules_pb2.PointsMultiplier, amounts: dict[int, int], earn_per_amount: int
) -> Points:
    """Extra points on the scope's earning amounts (``extra_bps = 10000`` = double points)."""
    b_scope = sum(amounts.values())
    return Points(b_scope * reward.extra_bps // (earn_per_amount * BPS), amounts)


def bonus_points(reward: rules_pb2.BonusPoints, scope: Scope) -> Points:
    """``per_unit·U + per_transaction``, attributed with weights ``q_i``."""
    points = reward.per_unit * scope.units + reward.per_transaction
    return Points(points, {i: scope.lines[i].quantity for i in scope.eligible})
