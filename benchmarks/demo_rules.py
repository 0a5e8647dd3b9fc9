"""The rule-set size knob of the gRPC benchmarks: the demo programme plus N synthetic offers.

``benchmarks.workload.make_rules`` writes offers of every kind over its own synthetic names;
:func:`extra_offers` maps those names onto the demo catalogue (skus, categories, brands and
tiers of ``server.cli.demo``), so a running demo server can take them through ``PublishRuleSet``
like any rule change.
"""

from __future__ import annotations

from typing import Any

import grpc

from benchmarks.workload import make_rules
from engine.pricing.rules import load_rules, parse_rules
from loyalty.v1 import campaigns_pb2, campaigns_pb2_grpc, rules_pb2
from server.cli.demo import CATEGORIES, EXAMPLES, demo_catalogue

TIERS = {"vip": "vip", "gold": "vip-gold"}


def _remap_scope(scope: dict[str, Any], skus: list[str], brands: list[str]) -> dict[str, Any]:
    cats = list(CATEGORIES)
    if "skus" in scope:
        return {"skus": [skus[int(s[3:]) % len(skus)] for s in scope["skus"]]}
    if "categories" in scope:
        return {"categories": [cats[int(c[3:]) % len(cats)] for c in scope["categories"]]}
    if "brands" in scope:
        return {"brands": [brands[int(b[5:]) % len(brands)] for b in scope["brands"]]}
    return scope


def extra_offers(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` offers of every kind over the demo catalogue's names (ids ``bench-o000000``...)."""
    catalogue, _ = demo_catalogue()
    skus = list(catalogue.sku)
    brands = sorted({b for bs, _, _ in CATEGORIES.values() for b in bs})
    offers = make_rules(n, len(skus), seed)["offers"]
    for o in offers:
        o["id"] = f"bench-{o['id']}"
        o["scope"] = _remap_scope(o["scope"], skus, brands)
        if "tiers" in o.get("conditions", {}):
            o["conditions"]["tiers"] = [TIERS[t] for t in o["conditions"]["tiers"]]
        if "bundle_price" in o:
            comps = o["bundle_price"]["components"]
            for c in comps:
                c["scope"] = _remap_scope(c["scope"], skus, brands)
            if comps[0]["scope"] == comps[1]["scope"]:  # 400 categories fold onto 10
                cats = list(CATEGORIES)
                first = cats.index(comps[0]["scope"]["categories"][0])
                comps[1]["scope"] = {"categories": [cats[(first + 1) % len(cats)]]}
    return offers


def demo_rules(extra: int) -> rules_pb2.RuleSet:
    """``examples/watsons.yaml`` with ``extra`` synthetic offers appended."""
    rules = load_rules(EXAMPLES / "watsons.yaml")
    if extra:
        rules.offers.extend(parse_rules({"offers": extra_offers(extra)}).offers)
    return rules


def publish(port: int, extra: int, timeout_s: float = 120.0) -> dict[str, int]:
    """Publish :func:`demo_rules` to the server on ``port``; its version and compile time."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        reply = campaigns_pb2_grpc.CampaignServiceStub(ch).PublishRuleSet(
            campaigns_pb2.PublishRuleSetRequest(
                rules=demo_rules(extra), note=f"benchmark: demo + {extra} offers"
            ),
            timeout=timeout_s,
        )
    return {
        "version": reply.version,
        "compile_ms": reply.compile_ms,
        "offers": len(demo_rules(0).offers) + extra,
    }
