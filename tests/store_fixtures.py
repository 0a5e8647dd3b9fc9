"""Builders for the store contract suite: the Watsons rule set, baskets and a checkout helper.

``checkout`` does what the Commit servicer does: it runs the commit loop every store shares
(:func:`server.store.checkout.commit`), pricing the basket with the engine on each fresh
snapshot the store reads.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import engine
from engine.pricing.types import Basket, Line
from loyalty.v1 import rules_pb2
from server.settings import RedisSettings
from server.store import CommitOutcome, MemberProfile, PricingState, Store
from server.store.checkout import commit
from server.store.policy import Policy
from server.store.records import payable

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RULES = engine.load_rules(EXAMPLES / "watsons.yaml")
CATALOGUE = engine.load_catalogue(EXAMPLES / "catalogue.csv")
COMPILED = engine.compile_rules(RULES, CATALOGUE)
POLICY = Policy.from_rules(RULES)  # what the stores need of it

# The same programme with the Panadol coupon limited only by a small total budget (4 uses of
# 500), so concurrent tests exercise a single-use code and a global budget on their own.
RULES_BUDGET = rules_pb2.RuleSet()
RULES_BUDGET.CopyFrom(RULES)
for _offer in RULES_BUDGET.offers:
    if _offer.id == "panadol-coupon":
        _offer.limits.Clear()
        _offer.limits.budget_minor = 2000
COMPILED_BUDGET = engine.compile_rules(RULES_BUDGET, CATALOGUE)
POLICY_BUDGET = Policy.from_rules(RULES_BUDGET)

# Wednesday 2025-03-12 12:00 Asia/Shanghai: no weekend double points.
T0 = datetime(2025, 3, 12, 4, 0, tzinfo=UTC)
DAY = timedelta(days=1)

# (line_id, sku, qty, unit price). For a plain member: cola 3-for-2 (350 off), spend ladder
# 1000 off; net 16180, 16 points.
BASKET_1 = (("1", "CREAM-50", 2, 5990), ("2", "COLA-330", 3, 350), ("3", "RICE-5KG", 1, 4500))
PANADOL = ("4", "PANADOL-20", 3, 2680)


def basket(lines: Sequence[tuple[str, str, int, int]], at: datetime = T0) -> Basket:
    return Basket(tuple(Line(*x) for x in lines), at, "SH-001", "pos")


def enrol(store: Store, member_id: str, tier: str = "member", at: datetime = T0) -> None:
    store.upsert_member(MemberProfile(member_id, tier=tier, birthday_month=7), at)


def checkout(
    store: Store,
    transaction_id: str,
    lines: Sequence[tuple[str, str, int, int]],
    member_id: str | None = None,
    *,
    at: datetime = T0,
    codes: Sequence[str] = (),
    redeem: int = 0,
    compiled: engine.CompiledRules = COMPILED,
) -> CommitOutcome:
    """Commit a basket priced by the engine on the store's fresh state."""
    b = basket(lines, at)

    def price_fn(state: PricingState) -> engine.PricingResult:
        return engine.price(
            compiled,
            b,
            state.member,
            coupons=state.coupons,
            redeem_points=redeem,
            limits=state.limits,
        )

    fingerprint = json.dumps(
        [member_id, [list(x) for x in lines], list(codes), redeem, at.isoformat()]
    )
    return commit(
        store,
        transaction_id,
        fingerprint,
        price_fn,
        at,
        policy=Policy.from_rules(compiled.rules),
        basket=b,
        member_id=member_id,
        coupon_codes=codes,
    ).outcome


def net(out: CommitOutcome) -> int:
    """The committed basket's net amount, from its stored lines."""
    return sum(line.net_minor for line in out.lines)


def paid(out: CommitOutcome) -> int:
    """What the customer paid for the committed basket (net less points tender)."""
    return sum(payable(line) for line in out.lines)


def discounted(out: CommitOutcome) -> int:
    """The committed basket's discounts, from its stored lines."""
    return sum(d.amount_minor for line in out.lines for d in line.discounts)


def on_cluster(url: str, tag: str = "c") -> RedisSettings:
    """The Redis store's settings on the cluster at ``url`` under a key prefix of its own (the
    tests share one cluster)."""
    return RedisSettings(url=url, prefix=f"{tag}{uuid.uuid4().hex[:8]}:", cluster=True)
