"""Synthetic but realistic workloads: a catalogue, a rule set of any size, baskets, members.

Deterministic for a given seed, so every benchmark run prices the same work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from engine.pricing.catalogue import Catalogue
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member
from loyalty.v1 import rules_pb2

N_CATEGORIES = 400
N_BRANDS = 2_000
N_VENDORS = 300
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Workload:
    catalogue: Catalogue
    rules: rules_pb2.RuleSet
    prices: np.ndarray  # list price per catalogue sku, minor units
    coupon_offers: tuple[str, ...]  # ids of COUPON offers, for wallets


def make_catalogue(n_skus: int, seed: int = 7) -> tuple[Catalogue, np.ndarray]:
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, N_CATEGORIES, n_skus)
    brand = rng.integers(0, N_BRANDS, n_skus)
    df = pl.DataFrame(
        {
            "sku": [f"SKU{i:07d}" for i in range(n_skus)],
            "category": [f"cat{c:03d}" for c in cat],
            "brand": [f"brand{b:04d}" for b in brand],
            "vendor": [f"vendor{b % N_VENDORS:03d}" for b in brand],
            "no_discount": rng.random(n_skus) < 0.01,
            "no_earn": rng.random(n_skus) < 0.005,
        }
    )
    prices = (rng.lognormal(7.5, 1.0, n_skus).astype(np.int64) // 10 * 10 + 90).clip(100, 500_000)
    return Catalogue.from_frame(df), prices


def make_rules(n_offers: int, n_skus: int, seed: int = 11, coupon_share: float = 0.2) -> dict:
    """A Watsons-style programme with ``n_offers`` offers of every kind."""
    rng = np.random.default_rng(seed)
    offers = []
    for k in range(n_offers):
        oid = f"o{k:06d}"
        u = rng.random()
        scope: dict = {"skus": [f"SKU{s:07d}" for s in rng.integers(0, n_skus, 3)]}
        if u < 0.25:
            scope = {"categories": [f"cat{rng.integers(0, N_CATEGORIES):03d}"]}
        elif u < 0.35:
            scope = {"brands": [f"brand{rng.integers(0, N_BRANDS):04d}"]}
        kind = k % 11
        offer: dict = {
            "id": oid,
            "scope": scope,
            "stacking": {"priority": int(rng.integers(0, 100))},
        }
        if kind == 0:
            offer["percent_off"] = {"percent_bps": int(rng.integers(1, 40)) * 100}
        elif kind == 1:
            offer["amount_off"] = {"amount_minor": int(rng.integers(1, 50)) * 10}
        elif kind == 2:
            offer["fixed_price"] = {"price_minor": int(rng.integers(5, 500)) * 10}
            offer["conditions"] = {"tiers": ["vip", "gold"]}
        elif kind == 3:
            offer["qty_tiers"] = {
                "steps": [{"min_qty": 2, "percent_bps": 500}, {"min_qty": 4, "percent_bps": 1200}]
            }
        elif kind == 4:
            offer["buy_x_get_y"] = {"buy": 2, "get": 1, "percent_bps": 10000}
            offer["limits"] = {"per_transaction": 2}
        elif kind == 5:
            # components must not overlap (validation): a clash moves the second one along,
            # without an extra draw, so every other offer stays as the seed made it
            c0, c1 = int(rng.integers(0, N_CATEGORIES)), int(rng.integers(0, N_CATEGORIES))
            c1 = (c1 + 1) % N_CATEGORIES if c1 == c0 else c1
            offer["bundle_price"] = {
                "components": [
                    {"scope": {"categories": [f"cat{c0:03d}"]}, "qty": 1},
                    {"scope": {"categories": [f"cat{c1:03d}"]}, "qty": 1},
                ],
                "price_minor": int(rng.integers(10, 200)) * 100,
            }
            offer["scope"] = {"all": True} if k % 1000 == 5 else offer["scope"]
        elif kind == 6:
            offer["spend_tiers"] = {
                "steps": [
                    {"threshold_minor": 10000, "amount_minor": 1000},
                    {"threshold_minor": 20000, "amount_minor": 3000},
                ]
            }
        elif kind == 7:
            offer["order_percent_off"] = {"percent_bps": 500}
            offer["conditions"] = {"min_basket_minor": 20000}
        elif kind == 8:
            offer["order_amount_off"] = {"amount_minor": 500}
            offer["stacking"]["group"] = f"g{k % 50}"
        elif kind == 9:
            offer["points_multiplier"] = {"extra_bps": 10000}
            offer["conditions"] = {"weekdays": [6, 7]}
        else:
            offer["bonus_points"] = {"per_unit": 5, "per_transaction": 0}
        if kind <= 8 and rng.random() < 0.3:
            offer["funding"] = {
                "funder_id": f"vendor{rng.integers(0, N_VENDORS):03d}",
                "funded_share_bps": 10000,
            }
        if kind <= 8 and rng.random() < coupon_share:
            offer["activation"] = "COUPON"
        offers.append(offer)
    # groups must stay inside one phase: only order_amount_off offers carry one here
    return {
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "points": {
            "point_value_minor": 10,
            "earn_per_amount_minor": 1000,
            "pending_days": 7,
            "min_redeem_points": 100,
            "redeem_step_points": 100,
            "max_redeem_share_bps": 5000,
        },
        "tiers": [
            {"id": "member", "earn_multiplier_bps": 10000},
            {"id": "gold", "qualify_spend_minor": 500000, "earn_multiplier_bps": 12500},
            {"id": "vip", "qualify_spend_minor": 2000000, "earn_multiplier_bps": 15000},
        ],
        "segments": [{"id": f"seg{i}"} for i in range(9)],
        "offers": offers,
    }


def make_workload(n_offers: int = 10_000, n_skus: int = 200_000, seed: int = 7) -> Workload:
    catalogue, prices = make_catalogue(n_skus, seed)
    data = make_rules(n_offers, n_skus, seed + 4)
    coupons = tuple(o["id"] for o in data["offers"] if o.get("activation") == "COUPON")
    return Workload(catalogue, parse_rules(data), prices, coupons)


def make_baskets(
    w: Workload, n_baskets: int, lines_per_basket: int | tuple[int, int], seed: int = 3
) -> list[Basket]:
    rng = np.random.default_rng(seed)
    out = []
    n = len(w.catalogue)
    for b in range(n_baskets):
        k = (
            lines_per_basket
            if isinstance(lines_per_basket, int)
            else int(rng.integers(lines_per_basket[0], lines_per_basket[1] + 1))
        )
        skus = rng.choice(n, size=k, replace=False)
        lines = tuple(
            Line(f"L{i + 1}", w.catalogue.sku[s], int(rng.integers(1, 4)), int(w.prices[s]))
            for i, s in enumerate(skus)
        )
        at = START + timedelta(minutes=int(rng.integers(0, 60 * 24 * 14)))
        out.append(Basket(lines, at, store_id=f"S{b % 50:03d}", channel="pos"))
    return out


def make_member(w: Workload, wallet_size: int = 20, seed: int = 5) -> Member:
    rng = np.random.default_rng(seed)
    wallet = {}
    if w.coupon_offers:
        picks = rng.choice(
            len(w.coupon_offers), size=min(wallet_size, len(w.coupon_offers)), replace=False
        )
        wallet = {w.coupon_offers[i]: 1 for i in picks}
    return Member(
        "M0000001",
        tier="vip",
        segments=frozenset({"seg1", "seg4"}),
        birthday_month=11,
        available_points=5_000,
        wallet=wallet,
    )


HISTORY_TIERS = ("", "member", "gold", "vip")  # "" = guest
HISTORY_SEGMENTS = ((), ("seg1",), ("seg1", "seg4"), ("seg2", "seg7"))


def make_history_frames(
    w: Workload, n_baskets: int, max_lines: int = 10, mean_lines: float = 5.0, seed: int = 13
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """History-like baskets as the polars frames ``engine.pricing.frames`` reads (lines, baskets).

    ``1..max_lines`` lines per basket (1 + binomial, mean ``mean_lines``); 70% of baskets
    belong to members of some tier, 10% present one coupon. Built column-wise, so a million
    baskets take seconds.
    """
    rng = np.random.default_rng(seed)
    n_lines = 1 + rng.binomial(max_lines - 1, (mean_lines - 1) / (max_lines - 1), n_baskets)
    total = int(n_lines.sum())
    skus = rng.integers(0, len(w.catalogue), total)
    lines = pl.DataFrame(
        {
            "basket": np.repeat(np.arange(n_baskets, dtype=np.int64), n_lines),
            "sku": pl.Series("sku", w.catalogue.sku, dtype=pl.String).gather(skus),
            "quantity": rng.integers(1, 4, total),
            "unit_price_minor": w.prices[skus].astype(np.int64),
        }
    )
    minutes = rng.integers(0, 60 * 24 * 14, n_baskets)
    at = np.datetime64(START.replace(tzinfo=None), "us") + minutes.astype("timedelta64[m]")
    tier = rng.choice(len(HISTORY_TIERS), n_baskets, p=(0.3, 0.4, 0.2, 0.1))
    segments = rng.integers(0, len(HISTORY_SEGMENTS), n_baskets)
    coupon = np.where(
        rng.random(n_baskets) < 0.1, rng.integers(0, max(len(w.coupon_offers), 1), n_baskets) + 1, 0
    )
    coupon_lists: list[list[str]] = [[], *([c] for c in w.coupon_offers)]
    coupon = np.minimum(coupon, len(coupon_lists) - 1)
    baskets = pl.DataFrame(
        {
            "occurred_at": pl.Series(at).dt.replace_time_zone("UTC"),
            "store_id": pl.Series([f"S{s:03d}" for s in range(50)]).gather(
                np.arange(n_baskets) % 50
            ),
            "channel": pl.Series(["pos"]).gather(np.zeros(n_baskets, dtype=np.int64)),
            "member_id": pl.Series(["", "M"]).gather((tier > 0).astype(np.int64)),
            "tier": pl.Series(HISTORY_TIERS).gather(tier),
            "birthday_month": rng.integers(1, 13, n_baskets),
            "available_points": rng.integers(0, 20_000, n_baskets),
            "segments": pl.Series(
                [list(s) for s in HISTORY_SEGMENTS], dtype=pl.List(pl.String)
            ).gather(segments),
            "coupons": pl.Series(coupon_lists, dtype=pl.List(pl.String)).gather(coupon),
        }
    )
    return lines, baskets


def frames_to_objects(
    lines: pl.DataFrame,
    baskets: pl.DataFrame,
    n: int,
) -> list[tuple[Basket, Member | None, tuple[str, ...]]]:
    """The first ``n`` baskets of ``make_history_frames`` as (basket, member, coupons) objects,
    for ``engine.price`` and the reference evaluator."""
    head = lines.filter(pl.col("basket") < n)
    by_basket: list[list[Line]] = [[] for _ in range(n)]
    for b, sku, q, p in head.select("basket", "sku", "quantity", "unit_price_minor").iter_rows():
        by_basket[b].append(Line(f"L{len(by_basket[b]) + 1}", sku, q, p))
    out = []
    for b, row in enumerate(baskets.head(n).iter_rows(named=True)):
        at = row["occurred_at"].astimezone(UTC)
        basket = Basket(tuple(by_basket[b]), at, store_id=row["store_id"], channel=row["channel"])
        member = (
            Member(
                f"M{b:07d}",
                tier=row["tier"],
                segments=frozenset(row["segments"]),
                birthday_month=row["birthday_month"],
                available_points=row["available_points"],
            )
            if row["member_id"]
            else None
        )
        out.append((basket, member, tuple(row["coupons"])))
    return out
