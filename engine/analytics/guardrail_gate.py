"""The simulation gate before a publish: recent baskets that a rule set's guardrails refuse.

The committed baskets of a history (:mod:`engine.analytics.history`) are priced with the whole
candidate rule set exactly as :mod:`engine.analytics.simulate` prices them (ledger order, offer
limits applied, cancels and returns giving back what they hold), and each basket's figures
are compared with ``rules.guardrails`` by :func:`engine.pricing.guardrails.breaches`, the
check validation's probes use. Cancelled baskets are left out; a basket counts as it was
priced (returns taken later do not lower its discount). Points guardrails count the points of
points offers: the baskets' points less their base points, which come from pricing them again
without the points offers (only when a points guardrail and a points offer are both there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from engine.analytics.history import conform
from engine.analytics.replay import (
    Attributes,
    basket_frames,
    coupon_offers,
    priced,
    reversal_events,
)
from engine.pricing.catalogue import NO_COST
from engine.pricing.compiler import CompiledRules, compile_rules
from engine.pricing.constants import KIND_BY_FIELD, Phase, phase_of
from engine.pricing.guardrails import BasketFigures, Breach, breaches, enabled, money
from loyalty.v1 import rules_pb2


@dataclass(frozen=True, slots=True)
class BasketBreach:
    """One guardrail one recent basket breaches under the candidate rules."""

    transaction_id: str
    gross_minor: int
    # the offers that discounted the basket, by id (a points breach names none: the priced
    # frames do not say which offer gave which points)
    offers: tuple[str, ...]
    breach: Breach

    def describe(self) -> str:
        named = self.offers and self.breach.guardrail != "max_points"  # no per-offer points
        by = f" (offers {', '.join(self.offers)})" if named else ""
        return (
            f"transaction {self.transaction_id}: a basket of {money(self.gross_minor)} "
            f"{self.breach.text}{by}"
        )


def _without_points_offers(rules: rules_pb2.RuleSet) -> rules_pb2.RuleSet | None:
    """``rules`` less its points offers; None when it has none."""
    kept = [
        o
        for o in rules.offers
        if o.WhichOneof("reward") is None
        or phase_of(KIND_BY_FIELD[o.WhichOneof("reward") or ""]) is not Phase.POINTS
    ]
    if len(kept) == len(rules.offers):
        return None
    out = rules_pb2.RuleSet()
    out.CopyFrom(rules)
    del out.offers[:]
    out.offers.extend(kept)
    return out


def _per_basket(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    if not len(values):
        return np.zeros(n, dtype=np.int64)
    return np.bincount(index, weights=values, minlength=n).astype(np.int64)


def simulated_breaches(
    compiled: CompiledRules,
    history: pl.DataFrame | pl.LazyFrame,
    since: datetime | None = None,
    attributes: Attributes | None = None,
) -> list[BasketBreach]:
    """Every guardrail breach of the committed baskets of ``history`` at or after ``since``
    (all of them when None), priced with ``compiled``, in ledger order."""
    g = compiled.rules.guardrails
    if not enabled(g):
        return []
    hist = conform(history)
    if since is not None:
        hist = hist.filter(pl.col("at") >= since)
    lines, baskets = basket_frames(hist, coupon_offers(compiled.rules))
    if not len(baskets):
        return []
    events = reversal_events(hist)
    cat = compiled.catalogue
    base_rules = _without_points_offers(compiled.rules) if g.max_points else None
    base = (
        list(
            priced(
                compile_rules(base_rules, cat, validate=False),
                lines,
                baskets,
                events,
                attributes=attributes,
            )
        )
        if base_rules is not None
        else None
    )
    costs = pl.DataFrame(
        {"sku": pl.Series(cat.sku, dtype=pl.String), "unit_cost": cat.unit_cost_minor}
    ).filter(pl.col("unit_cost") != NO_COST)
    out: list[BasketBreach] = []
    for k, (_, res) in enumerate(priced(compiled, lines, baskets, events, attributes=attributes)):
        b, ln = res.baskets, res.lines
        n = len(b)
        line_b = ln["basket"].to_numpy()
        unit = ln.select("sku").join(costs, on="sku", how="left", maintain_order="left")
        unit_cost = unit["unit_cost"].to_numpy().astype(np.float64)  # NaN = no cost
        has = ~np.isnan(unit_cost)
        q = ln["quantity"].to_numpy()
        gross_l = q * ln["unit_price_minor"].to_numpy()
        costed_gross = _per_basket(line_b[has], gross_l[has], n)
        costed_net = _per_basket(line_b[has], ln["net_minor"].to_numpy()[has], n)
        cost = _per_basket(line_b[has], (unit_cost[has] * q[has]).astype(np.int64), n)
        points = b["points_earned"].to_numpy()
        offer_points = points - (
            base[k][1].baskets["points_earned"].to_numpy() if base is not None else points
        )
        gross, discount = b["gross_minor"].to_numpy(), b["discount_minor"].to_numpy()
        cancelled = b["cancelled"].to_numpy()
        offers = (
            res.discounts.group_by("basket")
            .agg(pl.col("offer_id").unique(maintain_order=True))
            .rows_by_key("basket", unique=True)
        )
        units = _per_basket(line_b, q, n)
        for i in np.flatnonzero(~cancelled & ((discount > 0) | (offer_points > 0))).tolist():
            figures = BasketFigures(
                int(gross[i]),
                int(discount[i]),
                int(offer_points[i]),
                int(costed_gross[i]),
                int(costed_net[i]),
                int(cost[i]),
                int(units[i]),
            )
            for breach in breaches(g, figures):
                ids = offers.get(i, ([],))[0]
                out.append(
                    BasketBreach(str(b["transaction_id"][i]), int(gross[i]), tuple(ids), breach)
                )
    return out
