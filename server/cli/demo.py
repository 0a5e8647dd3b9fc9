"""Demo data: a Watsons-style programme, a catalogue of a few thousand skus, members.

``load_demo(registry, store)`` publishes ``examples/watsons.yaml`` against a generated
catalogue (the example skus plus ~3,000 others across categories and vendor brands), creates
members across tiers and segments, and issues three vendor-funded coupons (GSK, Colgate, P&G)
into their wallets; :mod:`server.cli.demo_features` adds a gift-set offer capped at 100
units with reservations, member-bound codes, fragrance skus for the recurring VIP Gold
special and shopping-list ids.
Deterministic for a seed, so demos and screenshots repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from engine.pricing.catalogue import Catalogue, load_catalogue
from server.cli.demo_features import demo_rules, feature_rows, load_features
from server.rules.registry import RuleRegistry
from server.store.base import Consent, MemberProfile, Store
from server.store.codes import DEFAULT_ALPHABET, CodeBatch
from server.store.snapshot import to_us

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# category -> (brands, vendor of each brand, price range in fen)
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[int, int]]] = {
    "skincare": (("olay", "lancome", "watsons-skin"), ("pg", "loreal", "watsons"), (3990, 39900)),
    "hair-care": (
        ("head-shoulders", "pantene", "watsons-hair"),
        ("pg", "pg", "watsons"),
        (1990, 8990),
    ),
    "oral-care": (("colgate", "crest", "darlie"), ("colgate", "pg", "colgate"), (590, 4990)),
    "sun-care": (("anessa", "biore"), ("shiseido", "kao"), (5990, 25900)),
    "pain-relief": (("panadol", "fenbid", "watsons-care"), ("gsk", "gsk", "watsons"), (990, 4990)),
    "vitamins": (
        ("by-health", "swisse", "centrum"),
        ("by-health", "swisse", "pfizer"),
        (4990, 29900),
    ),
    "baby": (
        ("pampers", "huggies", "watsons-baby"),
        ("pg", "kimberly-clark", "watsons"),
        (2990, 16900),
    ),
    "drinks": (
        ("coca-cola", "nongfu", "watsons-water"),
        ("coca-cola", "nongfu", "watsons"),
        (200, 1500),
    ),
    "snacks": (("oreo", "lays", "watsons-snacks"), ("mondelez", "pepsico", "watsons"), (390, 2990)),
    "grocery": (("golden-dragon", "arawana"), ("cofco", "wilmar"), (990, 9990)),
}
N_MEMBERS = 3_000
DEMO_NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def demo_catalogue(n_skus: int = 3_000, seed: int = 1) -> tuple[Catalogue, dict[str, int]]:
    """The example skus plus ``n_skus`` generated ones; also a shelf price per sku."""
    rng = np.random.default_rng(seed)
    example = load_catalogue(EXAMPLES / "catalogue.csv")
    rows = [
        {
            "sku": s,
            "category": example.category[i],
            "brand": example.brand[i],
            "vendor": example.vendor[i],
            "no_discount": bool(example.no_discount[i]),
            "no_earn": bool(example.no_earn[i]),
        }
        for i, s in enumerate(example.sku)
    ]
    names = list(CATEGORIES)
    prices: dict[str, int] = {}
    for k in range(n_skus):
        category = names[k % len(names)]
        brands, vendors, (lo, hi) = CATEGORIES[category]
        b = int(rng.integers(len(brands)))
        sku = f"{category[:4].upper()}-{k:05d}"
        rows.append(
            {
                "sku": sku,
                "category": category,
                "brand": brands[b],
                "vendor": vendors[b],
                "no_discount": False,
                "no_earn": False,
            }
        )
        prices[sku] = int(rng.integers(lo // 10, hi // 10)) * 10
    rows += feature_rows()  # unpriced: `demo history` draws from the generated skus only
    return Catalogue.from_frame(pl.DataFrame(rows)), prices


def demo_members(n: int = N_MEMBERS, seed: int = 2) -> list[MemberProfile]:
    rng = np.random.default_rng(seed)
    tiers = ("member", "member", "member", "vip", "vip", "vip-gold")
    segments = ("skincare-heavy", "switcher-pain-relief")
    out = []
    for k in range(n):
        tags = frozenset(s for s in segments if rng.random() < 0.3)
        out.append(
            MemberProfile(
                member_id=f"M{10001 + k}",
                tier=tiers[int(rng.integers(len(tiers)))],
                segments=tags,
                birthday_month=int(rng.integers(1, 13)),
                birthday_day=int(rng.integers(1, 29)),
                enrolled_on=date(2020, 1, 1) + timedelta(days=int(rng.integers(0, 2000))),
                consent=Consent(
                    marketing=rng.random() < 0.8,
                    automated_decisions=rng.random() < 0.7,
                    third_party=rng.random() < 0.3,
                ),
            )
        )
    return out


def load_demo(
    registry: RuleRegistry,
    store: Store,
    *,
    members: int = N_MEMBERS,
    now: datetime = DEMO_NOW,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """Publish the demo programme and fill the store; safe to run twice (idempotent ids)."""
    report = progress or (lambda step, done, total: None)
    catalogue, _ = demo_catalogue()
    registry.import_catalogue(catalogue)
    version, _ = registry.publish(demo_rules(), "demo programme")
    profiles = demo_members(members)
    for k, profile in enumerate(profiles, 1):
        store.upsert_member(profile, now)
        if k % 250 == 0 or k == len(profiles):
            report("members", k, len(profiles))
    # vendor-funded coupons: Panadol for pain-relief switchers and a third of the rest,
    # Colgate for every other member, Olay for heavy skincare buyers
    campaigns = {
        "demo-panadol": (
            "panadol-coupon",
            [
                p.member_id
                for i, p in enumerate(profiles)
                if "switcher-pain-relief" in p.segments or i % 3 == 0
            ],
        ),
        "demo-colgate": ("colgate-coupon", [p.member_id for p in profiles[::2]]),
        "demo-olay": (
            "olay-skincare-coupon",
            [p.member_id for p in profiles if "skincare-heavy" in p.segments],
        ),
    }
    issued = 0
    for issue_id, (offer_id, chosen) in campaigns.items():
        store.issue_coupons(
            issue_id, offer_id, chosen, 1, now - timedelta(days=1), now + timedelta(days=30), now
        )
        issued += len(chosen)
        report("coupons", issued, sum(len(c) for _, c in campaigns.values()))
    # printed codes for the Colgate coupon (what `loyalty codes generate` asks the server for)
    window = (to_us(now - timedelta(days=1)), to_us(now + timedelta(days=30)))
    printed = CodeBatch(
        "demo-colgate-print", "colgate-coupon", 1_000, "CLG-", "####-####", 8,
        DEFAULT_ALPHABET, 1, False, *window,
    )  # fmt: skip
    codes = store.create_code_batch(printed, now).generated
    report("codes", codes, printed.count)
    bound = load_features(store, profiles, now)
    for i, p in enumerate(profiles[:500]):  # some history: welcome points
        store.adjust_points(
            f"demo-welcome-{p.member_id}", p.member_id, 200 + 10 * (i % 50), "welcome bonus", now
        )
    report("points", 500, 500)
    return {
        "version": version,
        "skus": len(catalogue),
        "members": len(profiles),
        "coupons": issued,
        "codes": codes,
        "bound_codes": bound,
    }
