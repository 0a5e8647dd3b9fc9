"""Guardrails (``RuleSet.guardrails``): what no single basket may get, checked before publishing.

Two checks share :func:`breaches`, which compares one basket's figures with the guardrails:

- **Probing at validation** (:func:`guardrail_problems`, called by
  :func:`engine.pricing.validate.validate` once everything else is valid): each offer is priced
  *alone* (the rule set's header, tiers and segments plus that one offer) with the reference
  evaluator over adversarial baskets, and every guardrail it can breach is reported once, on
  ``offers[i]`` (or the reward figure that sets the amount, e.g.
  ``offers[i].amount_off.amount_minor``), with the worst basket found. The baskets: one
  in-scope item (the scope's first sku, category, brand or vendor, or ``all``; with a margin
  floor also the in-scope catalogue skus with the lowest and the highest unit cost) at unit
  prices 1, each of the offer's own figures and thresholds (amount, member price,
  min_basket_minor, min_amount_minor, spend-tier thresholds) minus one, exactly and plus
  one, and the threshold divided over the units; a costed sku also at the price whose margin
  lies halfway between the floor and 100%; in quantities 1, min_qty, each qty-tier step,
  buy + get (once and twice) and 100 units. The baskets' sizes come from the offer and the
  catalogue only, so an uncapped percentage does not breach an absolute cap here: real
  baskets do, in the simulation gate. The member has the first tier and segment the offer
  names (the tier changes no offer's figures, only base points) and its birthday this month;
  the basket time is the first hour inside the offer's window; a coupon offer's coupon is
  presented. Cost: 20-60 baskets per offer, at most :data:`MAX_PROBES`; a 1,000-offer rule
  set takes about 2 s on one core (3-5 s with a margin floor and a 20,000-sku costed
  catalogue), 300,000 reference prices (about a minute) at the very worst.
- **The simulation gate** (:mod:`engine.analytics.guardrail_gate`, run by the server before a
  publish): the recent ledger's baskets priced with the whole rule set.

Points guardrails count the points offers give (multipliers and bonuses), not the programme's
base points; margins count only lines whose sku has a catalogue ``unit_cost_minor``, and only
a basket that met the floor before its discounts can breach it (the offers broke it). Offers
priced alone cannot show stacking; the simulation gate does, on real baskets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from engine.errors import Violation
from engine.pricing.basket import local_time, resolve_lines
from engine.pricing.catalogue import NO_COST, Catalogue
from engine.pricing.constants import BPS, KIND_BY_FIELD, MAX_BASKET_GROSS_MINOR, Phase, phase_of
from engine.pricing.overlap import CatalogueIndex
from engine.pricing.probe_sets import probe_parts, probe_within
from engine.pricing.reference.checks import in_time_window
from engine.pricing.reference.core import price_reference
from engine.pricing.reference.rewards import in_product_set
from engine.pricing.types import Basket, Line, Member, PricingResult
from loyalty.v1 import rules_pb2

MAX_PROBES = 300  # baskets priced per offer, at most
MANY_UNITS = 100  # the "many units" quantity; also the most units a unit-listing reward gets
WINDOW_SEARCH_HOURS = 35 * 24  # how far the first hour inside an offer's window is looked for
PROBE_EPOCH = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday: where that search starts, unbounded
_FIELDS = ("max_discount_minor", "max_discount_bps", "max_points", "min_margin_bps")
_NO_MARGIN = 10**30  # the rank of a free costed line: worse than any margin
# reward -> the figure that sets how much it gives (the path a breach is reported on)
_FIGURE = {
    "percent_off": "percent_bps",
    "amount_off": "amount_minor",
    "fixed_price": "price_minor",
    "order_percent_off": "percent_bps",
    "order_amount_off": "amount_minor",
    "points_multiplier": "extra_bps",
}


@dataclass(frozen=True, slots=True)
class BasketFigures:
    """What one basket got (minor units, points): the inputs of :func:`breaches`."""

    gross_minor: int
    discount_minor: int
    offer_points: int  # from points offers, base points left out
    costed_gross_minor: int = 0  # over the lines whose sku has a unit cost
    costed_net_minor: int = 0
    cost_minor: int = 0  # unit cost times quantity over those lines
    units: int = 0  # in the basket (a tie-break between breaches: fewer units say more)


@dataclass(frozen=True, slots=True)
class Breach:
    guardrail: str  # the Guardrails field breached
    text: str  # "gets 12.90 off (100%), above guardrails.max_discount_bps 5000"
    rank: tuple[int, ...]  # the worst breach of a guardrail has the largest rank


def enabled(g: rules_pb2.Guardrails) -> bool:
    return any(getattr(g, name) > 0 for name in _FIELDS)


def money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"


def _share(part: int, whole: int) -> str:
    return f"{part * BPS // whole / 100:g}%" if whole else "all"


def breaches(g: rules_pb2.Guardrails, f: BasketFigures) -> list[Breach]:
    """The guardrails ``f`` breaches, in Guardrails field order."""
    out = []
    d, gross = f.discount_minor, f.gross_minor
    if g.max_discount_minor and d > g.max_discount_minor:
        text = f"above guardrails.max_discount_minor {money(g.max_discount_minor)}"
        out.append(
            Breach(
                "max_discount_minor",
                f"gets {money(d)} off ({_share(d, gross)}), {text}",
                (-gross, -f.units, d),  # the smallest basket that breaches says most
            )
        )
    if g.max_discount_bps and d * BPS > g.max_discount_bps * gross:
        out.append(
            Breach(
                "max_discount_bps",
                f"gets {money(d)} off ({_share(d, gross)}), "
                f"above guardrails.max_discount_bps {g.max_discount_bps}",
                # the largest share, then the fewest units, then the largest basket
                (d * BPS // max(gross, 1), -f.units, gross),
            )
        )
    if g.max_points and f.offer_points > g.max_points:
        out.append(
            Breach(
                "max_points",
                f"earns {f.offer_points:,} points from offers, "
                f"above guardrails.max_points {g.max_points:,}",
                (-gross, -f.units, f.offer_points),
            )
        )
    floor, net, cost = g.min_margin_bps, f.costed_net_minor, f.cost_minor
    if (
        floor
        and f.costed_gross_minor > 0
        and (f.costed_gross_minor - cost) * BPS >= floor * f.costed_gross_minor
        and (net - cost) * BPS < floor * net
    ):
        margin = f"{(net - cost) * 100 / net:.2f}%" if net else "none"
        out.append(
            Breach(
                "min_margin_bps",
                f"keeps a margin of {margin} over cost on its costed lines (net {money(net)}, "
                f"cost {money(cost)}), below guardrails.min_margin_bps {floor}",
                # the lowest margin, then the fewest units, then the smallest basket
                (-((net - cost) * BPS // net) if net else _NO_MARGIN, -f.units, -gross),
            )
        )
    return out


def guardrail_problems(
    rules: rules_pb2.RuleSet, catalogue: Catalogue | None = None
) -> list[Violation]:
    """One problem per offer and guardrail that an adversarial basket breaches (module
    docstring); ``rules`` must be valid in every other way (guardrails' bounds included)."""
    g = rules.guardrails
    problems: list[Violation] = []
    if not enabled(g):
        return problems
    catalogue = catalogue if catalogue is not None else Catalogue.empty()
    header = rules_pb2.RuleSet()
    header.CopyFrom(rules)
    del header.offers[:]
    header.ClearField("guardrails")
    costed = _Costed(catalogue) if g.min_margin_bps else None
    for i, offer in enumerate(rules.offers):
        alone = rules_pb2.RuleSet()
        alone.CopyFrom(header)
        alone.offers.append(offer)
        worst: dict[str, tuple[Breach, int]] = {}
        for basket, member in _probes(alone, offer, catalogue, costed, g):
            result = price_reference(
                alone,
                catalogue,
                basket,
                member,
                coupons=(offer.id,) if offer.activation == rules_pb2.Offer.COUPON else (),
            )
            for b in breaches(g, figures(result, basket, catalogue)):
                if b.guardrail not in worst or b.rank > worst[b.guardrail][0].rank:
                    worst[b.guardrail] = (b, result.gross_minor)
        path = _path(i, offer)
        for name in _FIELDS:
            if name in worst:
                b, gross = worst[name]
                problems.append(Violation(path, f"a basket of {money(gross)} in scope {b.text}"))
    return problems


def figures(result: PricingResult, basket: Basket, catalogue: Catalogue) -> BasketFigures:
    """The guardrail figures of one priced basket."""
    costed_gross = costed_net = cost = 0
    for line, out in zip(basket.lines, result.lines, strict=True):
        unit = catalogue.unit_cost(line.sku)
        if unit is not None:
            costed_gross += out.gross_minor
            costed_net += out.net_minor
            cost += unit * line.quantity
    return BasketFigures(
        result.gross_minor,
        result.discount_minor,
        sum(p.points for p in result.points if p.kind != "base"),
        costed_gross,
        costed_net,
        cost,
        sum(line.quantity for line in basket.lines),
    )


def _path(i: int, offer: rules_pb2.Offer) -> str:
    reward = offer.WhichOneof("reward") or ""
    figure = _FIGURE.get(reward)
    return f"offers[{i}].{reward}.{figure}" if figure else f"offers[{i}].{reward}"


# --- the probe baskets ------------------------------------------------------------------------


class _Costed:
    """Catalogue skus with a unit cost, lowest cost first (for the margin floor)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.index = CatalogueIndex(catalogue)
        self.cost = catalogue.unit_cost_minor
        self.order = np.argsort(self.cost, kind="stable")
        self.order = self.order[self.cost[self.order] != NO_COST]
        self.catalogue = catalogue

    def in_scope(self, ps: rules_pb2.ProductSet, flags: np.ndarray) -> list[str]:
        """The skus of ``ps`` (not ``flags``) with the lowest and the highest unit cost (the
        worst for an amount off and for a member price)."""
        mask = self.index.mask(ps) & ~flags
        rows = self.order[mask[self.order]]
        return (
            [self.catalogue.sku[r] for r in dict.fromkeys(rows[[0, -1]].tolist())]
            if len(rows)
            else []
        )


def _probes(
    alone: rules_pb2.RuleSet,
    offer: rules_pb2.Offer,
    catalogue: Catalogue,
    costed: _Costed | None,
    g: rules_pb2.Guardrails,
) -> Iterator[tuple[Basket, Member]]:
    at = _inside_window(offer, alone.timezone)
    if at is None:
        return
    cond = offer.conditions
    member = Member(
        "guardrail-probe",
        tier=cond.tiers[0] if cond.tiers else "",
        segments=frozenset(cond.segments[:1]),
        birthday_month=local_time(at, alone.timezone).month,
    )
    store = cond.stores[0] if cond.stores else ""
    channel = cond.channels[0] if cond.channels else ""
    reward = offer.WhichOneof("reward") or ""
    points = phase_of(KIND_BY_FIELD[reward]) is Phase.POINTS
    parts = probe_parts(offer)  # bundle components, or buy_get's buy and get sets
    sets = [ps for ps, _ in parts] if parts is not None else [offer.scope]
    items = [_items(probe_within(offer, ps), ps, catalogue, costed, points) for ps in sets]
    if not all(items):
        return  # nothing in scope can take the offer
    if parts is None:  # each item alone
        plans = [([item], [1], catalogue.unit_cost(item[0])) for item in items[0]]
    else:  # one line per set, in the set's quantity
        plans = [([its[0] for its in items], [n for _, n in parts], None)]
    seen = 0
    for chosen, per, unit_cost in plans:
        for q, p in _grid(offer, g, unit_cost):
            units = q * sum(per)
            if units > _max_units(reward) or units * p > MAX_BASKET_GROSS_MINOR:
                continue
            if seen >= MAX_PROBES:
                return
            seen += 1
            lines = tuple(
                Line(str(k), sku, q * n, p, cat, brand, vendor)
                for k, ((sku, cat, brand, vendor), n) in enumerate(zip(chosen, per, strict=True))
            )
            yield Basket(lines, at, store, channel), member


_Item = tuple[str, str, str, str]  # sku, category, brand, vendor


def _items(
    scope: rules_pb2.ProductSet,
    ps: rules_pb2.ProductSet,
    catalogue: Catalogue,
    costed: _Costed | None,
    points: bool,
) -> list[_Item]:
    """In-scope items that can take the offer: the first of ``ps``'s own entries that can,
    then the costed catalogue skus of :meth:`_Costed.in_scope` (``ps`` is the scope, or a
    bundle component's set)."""
    probe_sku = "guardrail-probe"
    while probe_sku in catalogue.index or probe_sku in ps.exclude_skus:
        probe_sku += "-"
    candidates: list[_Item] = [(probe_sku, "", "", "")] if ps.all else []
    candidates += [(s, "", "", "") for s in ps.skus]
    candidates += [(probe_sku, c, "", "") for c in ps.categories[:1]]
    candidates += [(probe_sku, "", b, "") for b in ps.brands[:1]]
    candidates += [(probe_sku, "", "", v) for v in ps.vendors[:1]]
    first = next((c for c in candidates if _takes(c, scope, ps, catalogue, points)), None)
    out = [first] if first is not None else []
    if costed is not None:
        flags = catalogue.no_earn if points else catalogue.no_discount
        out += [
            (s, "", "", "")
            for s in costed.in_scope(ps, flags)
            if _takes((s, "", "", ""), scope, ps, catalogue, points)
        ]
    return list(dict.fromkeys(out))


def _takes(
    item: _Item,
    scope: rules_pb2.ProductSet,
    ps: rules_pb2.ProductSet,
    catalogue: Catalogue,
    points: bool,
) -> bool:
    basket = Basket((Line("0", item[0], 1, 1, *item[1:]),), PROBE_EPOCH)
    [line] = resolve_lines(basket, catalogue)
    flagged = line.no_earn if points else line.no_discount
    return in_product_set(scope, line) and in_product_set(ps, line) and not flagged


def _max_units(reward: str) -> int:
    # the reference lists buy_x_get_y and bundle units one by one
    return MANY_UNITS if reward in ("buy_x_get_y", "bundle_price") else 10**7


def _grid(
    offer: rules_pb2.Offer, g: rules_pb2.Guardrails, unit_cost: int | None
) -> Iterator[tuple[int, int]]:
    """(units, unit price) pairs for one item, the smallest quantities first. An item with a
    unit cost (and a margin floor) gets the prices at one unit, and every quantity at the
    price whose margin lies halfway between the floor and 100%."""
    cond = offer.conditions
    reward = offer.WhichOneof("reward") or ""
    r = getattr(offer, reward)
    quantities = {1, MANY_UNITS, cond.min_qty, offer.limits.units_in_groups_of}
    thresholds = {cond.min_basket_minor, cond.min_amount_minor}
    figures = set(thresholds)
    if reward == "qty_tiers":
        quantities |= {s.min_qty for s in r.steps[:8]}
    elif reward == "buy_x_get_y":
        quantities |= {r.buy + r.get, 2 * (r.buy + r.get)}
    elif reward in ("target_units", "buy_get"):
        quantities |= {r.units, r.every, 2 * r.every} if reward == "target_units" else set()
        if r.WhichOneof("value") in ("amount_minor", "price_minor"):
            figures.add(getattr(r, r.WhichOneof("value")))
    elif reward == "unit_rates":  # the first unit alone, and past max_units
        quantities |= {2, r.max_units, r.max_units + 1}
        figures |= {r.first_minor, r.additional_minor}
    elif reward == "spend_tiers":
        thresholds |= {s.threshold_minor for s in r.steps[:8]}
        figures |= thresholds | {s.amount_minor for s in r.steps[:8]}
    elif reward == "bundle_price":
        units = sum(c.qty for c in r.components) or 1
        figures |= {r.price_minor, -(-r.price_minor // units)}
    elif reward in ("amount_off", "order_amount_off"):
        figures.add(r.amount_minor)
    elif reward == "fixed_price":
        figures.add(r.price_minor)
    prices = {1} | {f + e for f in figures if f > 0 for e in (-1, 0, 1)}
    costed = unit_cost is not None and g.min_margin_bps > 0
    if unit_cost is not None and costed:
        fair = -(-2 * unit_cost * BPS // (BPS - g.min_margin_bps))
        for q in sorted(x for x in quantities if 0 < x <= 10**7):
            yield q, max(fair, 1)
    for q in sorted(x for x in quantities if 0 < x <= 10**7):
        own = {-(-t // q) for t in thresholds if t > 0}
        for p in sorted(x for x in prices | own if 0 < x <= MAX_BASKET_GROSS_MINOR):
            if q == 1 or not costed:
                yield q, p


def _inside_window(offer: rules_pb2.Offer, timezone: str) -> datetime | None:
    """The first whole hour (from the offer's start, or :data:`PROBE_EPOCH`) inside its time
    conditions; None when there is none within :data:`WINDOW_SEARCH_HOURS`."""
    cond = offer.conditions
    try:
        start = PROBE_EPOCH
        if cond.HasField("starts_at"):
            start = datetime.fromtimestamp(cond.starts_at.seconds, UTC)
        elif cond.HasField("ends_at"):
            start = datetime.fromtimestamp(cond.ends_at.seconds, UTC) - timedelta(days=7)
        for h in range(WINDOW_SEARCH_HOURS):
            at = start + timedelta(hours=h)
            if in_time_window(cond, local_time(at, timezone), timezone):
                return at
    except (OverflowError, OSError, ValueError):  # a window at the ends of the calendar
        pass
    return None
