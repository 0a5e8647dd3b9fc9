"""The Redis store's per-process cache of what a quote reads (server/store/redis/cache.py).

Every test runs on the shared test Redis (flushed per test) with real stores; "another server"
is a second :class:`RedisStore` on the same Redis. Round trips are counted with ``INFO
commandstats`` on that Redis (``info`` itself and the tracking connection's ``ping`` left
out). Freshness is a correctness bound: a change made elsewhere must be seen within 50 ms, so
the tests poll for at most that long.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
import redis

import engine
from engine.errors import NotFound
from loyalty.v1 import rules_pb2
from server.settings import RedisSettings, Settings
from server.store import CodeStatus, PricingState
from server.store.policy import Policy
from server.store.redis.cache import MemberCache
from server.store.redis.keys import Keys
from server.store.redis.store import RedisStore
from tests.store_fixtures import (
    BASKET_1,
    COMPILED,
    DAY,
    PANADOL,
    POLICY,
    RULES,
    T0,
    basket,
    checkout,
    enrol,
)

FRESH_S = 0.05  # the bound: a change committed by another server is seen within 50 ms
SETTLE_S = 5.0  # generous wait for a (re)connection, which is not a freshness property


@pytest.fixture
def stores(redis_url: str) -> Iterator[Callable[..., RedisStore]]:
    """Opens stores ("servers") on the test Redis; closes them at teardown."""
    opened: list[RedisStore] = []

    def open_store(**changes: object) -> RedisStore:
        store = RedisStore(redis_url, dataclasses.replace(RedisSettings(), **changes))
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def calls(redis_url: str) -> Iterator[Callable[[], int]]:
    """Commands Redis has executed so far, from any client."""
    client = redis.Redis.from_url(redis_url)
    client.ping()  # its own connection exists before the first count

    def count() -> int:
        stats = client.info("commandstats")
        return sum(
            v["calls"] for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_ping")
        )

    yield count
    client.close()


def cache_of(store: RedisStore) -> MemberCache:
    assert store.io.cache is not None
    return store.io.cache


def warm(store: RedisStore, member_id: str | None, codes: Sequence[str] = ()) -> PricingState:
    """A first quote, which opens the tracking connection; then one that fills the cache."""
    store.pricing_state(POLICY, member_id, None, codes, T0)
    assert cache_of(store).wait_ready(SETTLE_S)
    return store.pricing_state(POLICY, member_id, None, codes, T0)


def within(seconds: float, check: Callable[[], bool]) -> bool:
    """Poll ``check`` until it holds or ``seconds`` have passed; whether it held."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)  # leave the cache's thread the interpreter


def points(store: RedisStore, member_id: str) -> tuple[int, int]:
    record = store.pricing_state(POLICY, member_id, None, [], T0 + DAY).record
    assert record is not None
    return record.points_available, record.points_pending


def test_a_second_quote_makes_no_round_trip_and_prices_the_same(
    stores: Callable[..., RedisStore], calls: Callable[[], int]
) -> None:
    store = stores()
    enrol(store, "m1")
    store.adjust_points("adj-1", "m1", 1000, "welcome", T0 - DAY)
    store.create_codes("panadol-coupon", ["PAN-1"], 5, False, T0 - DAY, T0 + DAY)
    checkout(store, "tx-1", [*BASKET_1, PANADOL], "m1", codes=["PAN-1"])
    first = warm(store, "m1", ["PAN-1", "NOPE"])

    before = calls()
    second = store.pricing_state(POLICY, "m1", None, ["PAN-1", "NOPE"], T0)
    assert calls() == before
    assert second == first
    assert second.code_status == {"PAN-1": CodeStatus.VALID, "NOPE": CodeStatus.INVALID}
    assert second.limits and second.record is not None and second.record.points_pending > 0

    fresh = stores(member_cache=False)
    before = calls()
    assert fresh.pricing_state(POLICY, "m1", None, ["PAN-1", "NOPE"], T0) == second
    assert calls() > before  # the count sees a quote that does reach Redis
    b = basket([*BASKET_1, PANADOL])
    assert engine.price(
        COMPILED, b, second.member, coupons=second.coupons, limits=second.limits
    ) == (engine.price(COMPILED, b, first.member, coupons=first.coupons, limits=first.limits))


def test_offer_counters_are_cached_field_by_field(
    stores: Callable[..., RedisStore], calls: Callable[[], int]
) -> None:
    a, b = stores(), stores()
    a.create_codes("panadol-coupon", ["PAN-G"], 5, False, T0 - DAY, T0 + DAY)
    checkout(a, "tx-g", [*BASKET_1, PANADOL], codes=["PAN-G"])
    one = b.pricing_state(POLICY, None, ["panadol-coupon"], [], T0).limits
    assert cache_of(b).wait_ready(SETTLE_S)
    b.pricing_state(POLICY, None, ["panadol-coupon"], [], T0)
    every = b.pricing_state(POLICY, None, None, [], T0).limits  # adds the other offers' fields
    before = calls()
    assert b.pricing_state(POLICY, None, None, [], T0).limits == every
    assert b.pricing_state(POLICY, None, ["panadol-coupon"], [], T0).limits == one
    assert calls() == before
    assert every == stores(member_cache=False).pricing_state(POLICY, None, None, [], T0).limits
    assert every["panadol-coupon"] == one["panadol-coupon"] and len(every) > len(one)

    checkout(a, "tx-g2", [PANADOL], codes=["PAN-G"])
    budget_left = every["panadol-coupon"].budget_minor

    def counted() -> bool:
        left = b.pricing_state(POLICY, None, None, [], T0).limits["panadol-coupon"]
        return left.budget_minor == budget_left - 1500

    assert within(FRESH_S, counted)


def test_a_change_through_another_server_is_seen_within_50_ms(
    stores: Callable[..., RedisStore], calls: Callable[[], int]
) -> None:
    a, b = stores(), stores()
    enrol(a, "m1")
    a.create_codes("panadol-coupon", ["PAN-1"], 1, False, T0 - DAY, T0 + DAY)
    warm(b, "m1", ["PAN-1"])
    before = calls()
    quoted = b.pricing_state(POLICY, "m1", None, ["PAN-1"], T0)
    assert calls() == before  # b answers from its cache: the change below must reach it
    assert quoted.record is not None and quoted.record.points_pending == 0

    earned = checkout(a, "tx-1", [*BASKET_1, PANADOL], "m1", codes=["PAN-1"]).points_earned
    assert earned > 0

    def committed() -> bool:
        state = b.pricing_state(POLICY, "m1", None, ["PAN-1"], T0)
        assert state.record is not None
        return state.record.points_pending == earned and state.code_status == {
            "PAN-1": CodeStatus.USED_UP
        }

    assert within(FRESH_S, committed)
    warm(b, "m1")
    a.adjust_points("adj-1", "m1", 700, "goodwill", T0)
    assert within(FRESH_S, lambda: points(b, "m1")[0] == 700)


def test_a_commit_through_a_stale_cache_is_exact(stores: Callable[..., RedisStore]) -> None:
    a, b = stores(), stores()
    enrol(a, "m1")
    warm(b, "m1")
    cache, key = cache_of(b), Keys().member("m1")
    stale = b.client.get(key)
    a.adjust_points("adj-1", "m1", 1000, "welcome", T0 - DAY)
    assert within(FRESH_S, lambda: key not in cache.get([key]))
    # b now holds the document as it was before the adjustment, as it would while the
    # invalidation is still on its way
    with cache.reading([key]) as fill:
        fill({key: stale})
    assert points(b, "m1") == (0, 0)

    out = checkout(b, "tx-1", BASKET_1, "m1", redeem=600)
    assert out.points_redeemed == 600
    assert out.points_available_after == 400
    assert b.get_member("m1", T0).points_available == 400
    assert points(b, "m1") == (400, out.points_earned)  # its own commit, read back at once
    assert [(e.kind, e.points_redeemed) for e in b.ledger()] == [("adjust", 0), ("commit", 600)]


def test_a_store_reads_its_own_writes_at_once(stores: Callable[..., RedisStore]) -> None:
    # Redis's invalidation of a write races the writer's next quote; the store does not wait
    # for it. Many rounds, so a store that relied on it would be caught.
    store = stores()
    enrol(store, "m1")
    warm(store, "m1")
    for i in range(1, 101):
        store.adjust_points(f"adj-{i}", "m1", 1, "welcome", T0 - DAY)
        assert points(store, "m1") == (i, 0)
    out = checkout(store, "tx-1", BASKET_1, "m1")
    assert points(store, "m1") == (100, out.points_earned)
    store.cancel("tx-1", T0)
    assert points(store, "m1") == (100, 0)


def test_losing_the_tracking_connection_flushes_the_cache(
    stores: Callable[..., RedisStore],
) -> None:
    a, b = stores(), stores()
    enrol(a, "m1")
    enrol(a, "m2")
    warm(b, "m1")
    cache = cache_of(b)
    assert len(cache) > 0
    lost = cache.client_id
    assert lost is not None
    a.client.client_kill_filter(_id=str(lost))
    a.adjust_points("adj-1", "m1", 300, "while b reconnects", T0 - DAY)
    assert within(SETTLE_S, lambda: cache.client_id not in (None, lost))
    assert len(cache) == 0
    assert points(b, "m1") == (300, 0)
    assert points(b, "m2") == (0, 0)
    a.adjust_points("adj-2", "m1", 5, "after the reconnect", T0 - DAY)
    assert within(FRESH_S, lambda: points(b, "m1") == (305, 0))


def test_a_flush_of_redis_empties_the_cache(stores: Callable[..., RedisStore]) -> None:
    store = stores()
    enrol(store, "m1")
    warm(store, "m1")
    redis.Redis.from_url(store.settings.url).flushall()
    assert within(FRESH_S, lambda: len(cache_of(store)) == 0)
    with pytest.raises(NotFound):
        store.pricing_state(POLICY, "m1", None, [], T0)


def test_a_read_racing_an_invalidation_is_not_cached(stores: Callable[..., RedisStore]) -> None:
    a, b = stores(), stores()
    enrol(a, "m1")
    warm(b, "m1")
    cache, key = cache_of(b), Keys().member("m1")
    raw = b.client.get(key)
    with cache.reading([key]) as fill:
        fill({key: raw})
    assert cache.get([key]) == {key: raw}  # a read nothing raced is kept

    with cache.reading([key]) as fill:
        before = b.client.get(key)
        a.adjust_points("adj-1", "m1", 40, "meanwhile", T0 - DAY)
        assert within(FRESH_S, lambda: key not in cache.get([key]))
        fill({key: before})
    assert cache.get([key]) == {}
    assert points(b, "m1") == (40, 0)


def test_the_cache_holds_at_most_its_size(
    stores: Callable[..., RedisStore], calls: Callable[[], int]
) -> None:
    store = stores(member_cache_size=3)
    members = [f"m{i}" for i in range(5)]
    for m in members:
        enrol(store, m)
    store.pricing_state(POLICY, None, [], [], T0)
    assert cache_of(store).wait_ready(SETTLE_S)
    for m in members:
        store.pricing_state(POLICY, m, [], [], T0)  # no limited offers, no codes: one key each
        assert len(cache_of(store)) <= 3
    before = calls()
    for m in reversed(members[2:]):
        store.pricing_state(POLICY, m, [], [], T0)
    assert calls() == before  # the three used last are cached
    store.pricing_state(POLICY, members[0], [], [], T0)
    assert calls() > before  # the first was evicted
    assert len(cache_of(store)) == 3


def test_the_cache_is_configured_by_the_environment(stores: Callable[..., RedisStore]) -> None:
    env = {"LOYALTY_REDIS_MEMBER_CACHE": "off", "LOYALTY_REDIS_MEMBER_CACHE_SIZE": "5000"}
    settings = Settings.from_env(env).redis
    assert (settings.member_cache, settings.member_cache_size) == (False, 5000)
    assert stores(member_cache=False).io.cache is None
    with pytest.raises(ValueError, match="at least 1"):
        stores(member_cache_size=0)


def test_unit_counters_are_cached_and_seen_from_another_server_within_50_ms(
    stores: Callable[..., RedisStore], calls: Callable[[], int]
) -> None:
    rules = rules_pb2.RuleSet()
    rules.CopyFrom(RULES)
    capped = next(o for o in rules.offers if o.id == "panadol-coupon")
    capped.limits.total_units = 10
    policy = Policy.from_rules(rules)
    a, b = stores(), stores()
    enrol(a, "m1")

    def held() -> int:
        usage = b.pricing_state(policy, "m1", None, [], T0).units["panadol-coupon"]
        return sum(r.units for r in usage.reservations)

    assert held() == 0
    assert cache_of(b).wait_ready(SETTLE_S)
    assert held() == 0  # fills the cache
    before = calls()
    assert held() == 0
    assert calls() == before  # the units hash came from the cache
    # when another server reserves 3 units for m1, this one sees it within the bound
    a.issue_coupons(
        "i1", "panadol-coupon", ["m1"], 1, T0 - DAY, T0 + DAY, T0,
        reserve_units=3, reserve_until=T0 + DAY, units_cap=10,
    )  # fmt: skip
    assert within(FRESH_S, lambda: held() == 3)
    # and its own release is seen at once
    assert b.release_reservation("m1", "panadol-coupon", T0) == 3
    assert held() == 0
