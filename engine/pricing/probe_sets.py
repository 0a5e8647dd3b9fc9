"""The product sets a guardrail probe basket takes one line from each of
(:mod:`engine.pricing.guardrails`), for rewards that need more than one set."""

from __future__ import annotations

from loyalty.v1 import rules_pb2


def probe_parts(offer: rules_pb2.Offer) -> list[tuple[rules_pb2.ProductSet, int]] | None:
    """(set, units per repetition) for a bundle's components or a buy_get's buy and get
    sets; None for rewards probed one item at a time."""
    reward = offer.WhichOneof("reward")
    if reward == "bundle_price":
        return [(c.scope, c.qty) for c in offer.bundle_price.components]
    if reward == "buy_get":
        r = offer.buy_get
        return [(offer.scope, r.buy_qty), (r.get, r.get_qty)]
    return None


def probe_within(offer: rules_pb2.Offer, ps: rules_pb2.ProductSet) -> rules_pb2.ProductSet:
    """The set a probe item of ``ps`` must also be in: the scope, but for buy_get, whose get
    items lie outside it, ``ps`` itself."""
    return ps if offer.WhichOneof("reward") == "buy_get" else offer.scope
