"""The Redis store under races from several processes at once (docs/design.md §5, issue S2 setup).

Each test starts worker processes (spawned, each with its own RedisStore and connection pool)
that hit one private redis-server together, then asserts only on end states: a single-use
coupon used once, a capped offer given exactly its cap, a member's points never below zero,
one transaction retried by everyone applied once.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from typing import Any

import pytest

from engine.errors import Unavailable
from loyalty.v1 import rules_pb2
from server.store.policy import Policy
from server.store.redis.keys import Keys, uses_field
from server.store.redis.store import RedisStore
from tests.store_fixtures import (
    CATALOGUE,
    COMPILED_BUDGET,
    DAY,
    RULES,
    T0,
    checkout,
    enrol,
    paid,
)

PROCESSES = 4

# The Watsons programme with the cola 3-for-2 limited to 100 uses in total.
RULES_CAPPED = rules_pb2.RuleSet()
RULES_CAPPED.CopyFrom(RULES)
for _offer in RULES_CAPPED.offers:
    if _offer.id == "cola-3for2":
        _offer.limits.total_uses = 100


def _compiled(name: str):
    import engine

    return COMPILED_BUDGET if name == "budget" else engine.compile_rules(RULES_CAPPED, CATALOGUE)


def _lane(args: tuple[str, int, int, str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One process: ``count`` commits; returns what each applied."""
    url, lane, count, rules, kw = args
    compiled = _compiled(rules)
    store = RedisStore(url)
    out = []
    try:
        for i in range(count):
            tx = kw.get("tx") or f"tx-{lane}-{i}"
            while True:
                try:
                    r = checkout(
                        store,
                        tx,
                        kw["lines"],
                        kw.get("member"),
                        codes=kw.get("codes", ()),
                        redeem=kw.get("redeem", 0),
                        compiled=compiled,
                    )
                    break
                except Unavailable:  # pragma: no cover - a loaded machine; retry the same id
                    continue
            out.append(
                {
                    "tx": tx,
                    "codes": [u.code for u in r.offers if u.code],
                    "offers": [u.offer_id for u in r.offers],
                    "redeemed": r.points_redeemed,
                    "earned": r.points_earned,
                    "payable": paid(r),
                    "outcome": repr(r),
                }
            )
    finally:
        store.close()
    return out


def _race(url: str, per_lane: int, rules: str, **kw: Any) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        lanes = pool.map(_lane, [(url, lane, per_lane, rules, kw) for lane in range(PROCESSES)])
    return [r for lane in lanes for r in lane]


@pytest.fixture
def store(redis_url: str):
    s = RedisStore(redis_url)
    yield s
    s.close()


def _kinds(store: RedisStore) -> Callable[[str], int]:
    entries = store.ledger()
    return lambda kind: sum(1 for e in entries if e.kind == kind)


def test_a_single_use_code_is_won_by_exactly_one_of_a_thousand(store, redis_url):
    store.create_codes("panadol-coupon", ["ONE"], 1, False, T0 - DAY, T0 + DAY)
    results = _race(redis_url, 250, "budget", lines=[("1", "PANADOL-20", 1, 2680)], codes=["ONE"])
    assert len(results) == 1000
    assert sum(1 for r in results if r["codes"] == ["ONE"]) == 1
    assert int(store.client.hget(Keys().code("ONE"), "left")) == 0
    assert _kinds(store)("commit") == 1000


def test_an_offer_capped_at_100_uses_is_given_exactly_100_times(store, redis_url):
    results = _race(redis_url, 250, "capped", lines=[("1", "COLA-330", 3, 350)])
    assert sum(1 for r in results if "cola-3for2" in r["offers"]) == 100
    assert int(store.client.hget(Keys().usage, uses_field("cola-3for2"))) == 100
    state = store.pricing_state(Policy.from_rules(RULES_CAPPED), None, ["cola-3for2"], [], T0)
    assert state.limits["cola-3for2"].total_uses == 0


def test_two_lanes_spending_one_members_points_never_go_below_zero(store, redis_url):
    enrol(store, "m1")
    store.adjust_points("welcome", "m1", 300, "welcome", T0 - DAY)
    # each basket can take at most 50% of 7180 in points: 359; 300 are there in all
    results = _race(
        redis_url,
        10,
        "budget",
        lines=[("1", "RICE-5KG", 1, 4500), ("2", "PANADOL-20", 1, 2680)],
        member="m1",
        redeem=-1,
    )
    assert sum(r["redeemed"] for r in results) == 300
    m = store.get_member("m1", T0)
    assert (m.points_available, m.points_debt) == (0, 0)
    assert m.points_pending == sum(r["earned"] for r in results)
    assert _kinds(store)("commit") == len(results) == PROCESSES * 10


def test_one_transaction_retried_by_everyone_is_applied_once(store, redis_url):
    enrol(store, "m1")
    results = _race(
        redis_url, 25, "budget", lines=[("1", "RICE-5KG", 2, 4500)], member="m1", tx="tx-same"
    )
    assert len(results) == 100
    assert len({r["outcome"] for r in results}) == 1
    assert _kinds(store)("commit") == 1
    m = store.get_member("m1", T0)
    assert m.lifetime_spend_minor == results[0]["payable"]
