"""The member cache on a Redis Cluster (server/store/redis/cache_cluster.py): one tracking
connection per primary, flushed and off while any is missing or the primaries change.

Stores ("servers") open on the shared test cluster under a key prefix of their own; the
failover test starts a cluster of its own, since it kills a primary. Round trips are counted
with ``INFO commandstats`` summed over every node, leaving out what the background threads
send (the watch's ``CLUSTER NODES``, the tracking connections' ``PING``) and ``INFO`` itself.
Freshness is the single Redis bound: a change made elsewhere is seen within 50 ms.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis

from engine.errors import Unavailable
from loyalty.v1 import rules_pb2
from server.settings import RedisSettings
from server.store import CodeStatus
from server.store.policy import Policy
from server.store.redis import cache_cluster
from server.store.redis.cache import MemberCache
from server.store.redis.cache_cluster import ClusterMemberCache, parse_nodes
from server.store.redis.cluster_process import ClusterProcess
from server.store.redis.store import RedisStore
from tests.store_fixtures import BASKET_1, DAY, PANADOL, POLICY, RULES, T0, checkout, enrol
from tests.test_member_cache import FRESH_S, SETTLE_S, points, within

BACKGROUND = ("cmdstat_info", "cmdstat_ping", "cmdstat_cluster|nodes")


def open_store(url: str, prefix: str, **changes: Any) -> RedisStore:
    settings = RedisSettings(url=url, prefix=prefix, cluster=True, wait_replicas=0, **changes)
    return RedisStore(settings=settings, sweep_s=0)


@pytest.fixture
def stores(redis_cluster: ClusterProcess) -> Iterator[Callable[..., RedisStore]]:
    """Opens stores on the shared test cluster, all under one new prefix; closes them."""
    prefix, opened = f"mc{uuid.uuid4().hex[:8]}:", list[RedisStore]()

    def open_one(**changes: Any) -> RedisStore:
        opened.append(open_store(redis_cluster.url, prefix, **changes))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


def counter(cluster: ClusterProcess) -> Callable[[], int]:
    """Commands every node of ``cluster`` has executed so far, background ones left out."""
    clients = [redis.Redis(port=n.port) for n in cluster.nodes if n.proc is not None]

    def count() -> int:
        total = 0
        for client in clients:
            stats = client.info("commandstats")
            total += sum(v["calls"] for k, v in stats.items() if k not in BACKGROUND)
        return total

    return count


def no_round_trip(calls: Callable[[], int], quote: Callable[[], Any], attempts: int = 3) -> Any:
    """``quote()``'s answer, given without a command reaching the cluster (``calls``, the
    count of :func:`counter`, the same after it as before). The cluster is shared with the
    session's other tests, whose clients may land a command of their own in between (a CI
    run once counted one): the quote is then asked again, up to ``attempts`` times, so only
    a quote that goes to the cluster each time fails."""
    for _ in range(attempts):
        before = calls()
        answer = quote()
        if calls() == before:
            return answer
    raise AssertionError(f"each of {attempts} quotes reached the cluster")


def cache_of(store: RedisStore) -> ClusterMemberCache:
    assert isinstance(store.io.cache, ClusterMemberCache)
    return store.io.cache


def one_member_per_primary(cluster: ClusterProcess, store: RedisStore) -> dict[int, str]:
    """Primary's port -> a member whose home slot it serves."""
    found: dict[int, str] = {}
    for i in range(1000):
        port = cluster.primary_of(store.keys.member(f"m{i}")).port
        found.setdefault(port, f"m{i}")
        if len(found) == 3:
            return found
    raise AssertionError("no member found for every primary")


def enrolled_and_cached(cluster: ClusterProcess, a: RedisStore, b: RedisStore) -> dict[int, str]:
    """One member per primary (:func:`one_member_per_primary`), enrolled through ``a`` and
    cached by ``b``."""
    members = one_member_per_primary(cluster, a)
    for m in members.values():
        enrol(a, m)
        warm(b, m)
    return members


def warm(store: RedisStore, member_id: str, codes: tuple[str, ...] = ()) -> None:
    store.pricing_state(POLICY, member_id, None, codes, T0)
    assert cache_of(store).wait_ready(SETTLE_S)
    store.pricing_state(POLICY, member_id, None, codes, T0)


class Gate:
    """Holds back every new tracking connection of the caches (``subscribe``) until opened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = threading.Event()
        self.open.set()
        self.held = 0
        real = cache_cluster.subscribe

        def held_back(*args: Any, **kwargs: Any) -> Any:
            if not self.open.is_set():
                self.held += 1
                assert self.open.wait(30)
            return real(*args, **kwargs)

        monkeypatch.setattr(cache_cluster, "subscribe", held_back)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate(monkeypatch)
    yield held
    held.open.set()  # before the stores close


def test_a_cached_quote_makes_no_round_trip_and_equals_an_uncached_one(
    redis_cluster: ClusterProcess, stores: Callable[..., RedisStore]
) -> None:
    a, b = stores(), stores()
    plain = stores(member_cache=False)
    assert plain.io.cache is None and type(b.io.cache) is ClusterMemberCache
    members = one_member_per_primary(redis_cluster, a)
    a.create_codes("panadol-coupon", ["PAN-1", "PAN-2"], 5, False, T0 - DAY, T0 + DAY)
    for n, m in enumerate(members.values()):
        enrol(a, m)
        checkout(a, f"tx-{n}", [*BASKET_1, PANADOL], m, codes=["PAN-1"])
    rules = rules_pb2.RuleSet()
    rules.CopyFrom(RULES)
    next(o for o in rules.offers if o.id == "panadol-coupon").limits.total_units = 10
    capped = Policy.from_rules(rules)  # and its units read through the cache too
    calls = counter(redis_cluster)
    for m in members.values():
        warm(b, m, ("PAN-1", "PAN-2", "NOPE"))
        b.pricing_state(capped, m, None, [], T0)
        quotes = ((POLICY, ["PAN-1", "PAN-2", "NOPE"]), (capped, []))
        # every key from the cache: no round trip
        cached = no_round_trip(
            calls,
            lambda m=m, quotes=quotes: [
                b.pricing_state(policy, m, None, codes, T0) for policy, codes in quotes
            ],
        )
        assert cached == [plain.pricing_state(p, m, None, codes, T0) for p, codes in quotes]
        assert cached[0].record is not None and cached[0].record.points_pending > 0
        assert cached[1].units == {"panadol-coupon": cached[1].units["panadol-coupon"]}
    state = b.pricing_state(POLICY, members[min(members)], None, ["PAN-1", "NOPE"], T0)
    assert state.code_status == {"PAN-1": CodeStatus.VALID, "NOPE": CodeStatus.INVALID}
    assert sorted(cache_of(b).client_ids) == sorted(f"127.0.0.1:{p}" for p in members)


def test_a_change_through_another_server_is_seen_within_50_ms_on_each_primary(
    redis_cluster: ClusterProcess, stores: Callable[..., RedisStore]
) -> None:
    a, b = stores(), stores()
    members = one_member_per_primary(redis_cluster, a)
    codes = {m: f"PAN-{m}" for m in members.values()}
    for m, code in codes.items():
        enrol(a, m)
        a.create_codes("panadol-coupon", [code], 1, False, T0 - DAY, T0 + DAY)
    calls = counter(redis_cluster)
    for n, (m, code) in enumerate(codes.items()):
        warm(b, m, (code,))
        # b answers from its cache: the changes must reach it
        no_round_trip(calls, lambda m=m, code=code: b.pricing_state(POLICY, m, None, [code], T0))
        budget = b.pricing_state(POLICY, m, None, [], T0).limits["panadol-coupon"].budget_minor

        a.adjust_points(f"adj-{m}", m, 100 + n, "goodwill", T0 - DAY)
        assert within(FRESH_S, lambda m=m, n=n: points(b, m) == (100 + n, 0))
        earned = checkout(a, f"tx-{m}", [*BASKET_1, PANADOL], m, codes=[code]).points_earned

        def committed(
            m: str = m, code: str = code, earned: int = earned, left: int = budget
        ) -> bool:
            state = b.pricing_state(POLICY, m, None, [code], T0)
            assert state.record is not None
            return (
                state.record.points_pending == earned
                and state.code_status == {code: CodeStatus.USED_UP}
                and state.limits["panadol-coupon"].budget_minor == left - 1500
            )

        assert within(FRESH_S, committed)


def test_losing_a_tracking_connection_flushes_and_serves_nothing_until_tracked_again(
    redis_cluster: ClusterProcess,
    stores: Callable[..., RedisStore],
    gate: Gate,
) -> None:
    a, b = stores(), stores()
    members = enrolled_and_cached(redis_cluster, a, b)
    cache, calls = cache_of(b), counter(redis_cluster)
    assert len(cache) > len(members) and cache.ready  # the members and the offers' counters
    port, m = next(iter(members.items()))
    lost = cache.client_ids[f"127.0.0.1:{port}"]
    gate.open.clear()  # its reconnection waits until the test lets it
    redis.Redis(port=port).client_kill_filter(_id=str(lost))
    assert within(SETTLE_S, lambda: not cache.ready and gate.held >= 1)  # it tries again
    assert len(cache) == 0 and cache.get([b.keys.member(x) for x in members.values()]) == {}
    a.adjust_points("adj-1", m, 300, "while b is not tracking", T0 - DAY)
    for other in members.values():  # every quote reads Redis, nothing is kept
        before = calls()
        assert points(b, other) == ((300, 0) if other == m else (0, 0))
        assert calls() > before
    assert len(cache) == 0 and not cache.ready

    gate.open.set()
    assert cache.wait_ready(SETTLE_S)
    assert cache.client_ids[f"127.0.0.1:{port}"] not in (None, lost)
    warm(b, m)
    assert no_round_trip(calls, lambda: points(b, m)) == (300, 0)  # serves again
    a.adjust_points("adj-2", m, 5, "after the reconnect", T0 - DAY)
    assert within(FRESH_S, lambda: points(b, m) == (305, 0))


def test_a_read_from_a_node_not_tracked_is_not_kept(
    redis_cluster: ClusterProcess, stores: Callable[..., RedisStore]
) -> None:
    # as after a MOVED to a primary the watch has not seen yet: redis-py's slot map names a
    # node the cache does not track for the member's slot
    a, b = stores(), stores()
    members = enrolled_and_cached(redis_cluster, a, b)
    cache, calls = cache_of(b), counter(redis_cluster)
    port, m = next(iter(members.items()))
    cache._names = cache._names - {f"127.0.0.1:{port}"}
    cache.drop([b.keys.member(m)])
    for _ in range(2):
        before = calls()
        assert points(b, m) == (0, 0)
        assert calls() > before  # read each time, never kept
    assert b.keys.member(m) not in cache.get([b.keys.member(m)])
    other = next(x for p, x in members.items() if p != port)
    # the other primaries' members are still served
    assert no_round_trip(calls, lambda: points(b, other)) == (0, 0)


def replicated(port: int) -> bool:
    """The primary on ``port`` has every replica caught up with its writes."""
    client = redis.Redis(port=port)
    try:
        info = client.info("replication")
    finally:
        client.close()
    replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    offset = info["master_repl_offset"]
    return bool(replicas) and all(r["offset"] >= offset for r in replicas)


def answered(quote: Callable[[], Any], seconds: float) -> Any:
    """The first answer of ``quote`` that is not UNAVAILABLE (the client finding the new
    primary), polling for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return quote()
        except Unavailable:
            assert time.monotonic() < deadline, "no answer in time"
            time.sleep(0.05)


def test_a_failover_never_serves_a_stale_value(own_cluster: ClusterProcess, gate: Gate) -> None:
    started = time.monotonic()
    a, b = open_store(own_cluster.url, "fo:"), open_store(own_cluster.url, "fo:")
    try:
        members = enrolled_and_cached(own_cluster, a, b)
        cache = cache_of(b)
        port = min(members)
        victim, m = next(n for n in own_cluster.nodes if n.port == port), members[port]
        assert points(b, m) == (0, 0) and cache.ready and len(cache) > 3
        assert within(SETTLE_S, lambda: replicated(victim.port))  # m is on its replica
        gate.open.clear()  # no tracking connection opens until the test lets it
        victim.kill()  # SIGKILL: its replica takes over within seconds
        assert within(SETTLE_S, lambda: not cache.ready)
        assert len(cache) == 0
        # on the promoted replica, once a's client finds it (the retry under the same id
        # answers the stored outcome if an attempt went through)
        answered(lambda: a.adjust_points("adj-1", m, 70, "on the new primary", T0 - DAY), 20)
        client = cast(redis.RedisCluster, a.client)  # the seed node may be the one killed
        assert client.get_node_from_key(a.keys.member(m)).port != port  # type: ignore[no-untyped-call]
        # b does not track the new primary yet: its first answer reads Redis
        assert answered(lambda: points(b, m), 10) == (70, 0)
        assert not cache.ready and len(cache) == 0
        assert within(SETTLE_S, lambda: gate.held >= 1)  # it tries to track the new primary
        assert not cache.ready
        gate.open.set()
        assert cache.wait_ready(SETTLE_S)
        assert f"127.0.0.1:{port}" not in cache.client_ids and len(cache.client_ids) == 3
        warm(b, m)
        assert points(b, m) == (70, 0)
        a.adjust_points("adj-2", m, 5, "tracked again", T0 - DAY)
        assert within(FRESH_S, lambda: points(b, m) == (75, 0))
    finally:
        gate.open.set()
        a.close()
        b.close()
    assert time.monotonic() - started < 30


def test_cluster_nodes_is_read_as_the_primaries_to_track() -> None:
    text = (
        "a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n"
        "b1 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922 [10923->-c1]\n"
        "c1 127.0.0.1:7003@17003 master,fail - 0 0 3 disconnected\n"
        "c2 127.0.0.1:7006@17006 master - 0 0 4 connected 10923-16383\n"
        "d1 127.0.0.1:7007@17007 master - 0 0 0 connected\n"
        "a2 127.0.0.1:7004@17004 slave a1 0 0 1 connected\n"
        "x1 :0@0 master,noaddr - 0 0 0 disconnected\n"
    )
    primaries, nodes, failing = parse_nodes(text)
    # the failed primary without slots is left out; one without slots that is up is tracked
    assert sorted(p.name for p in primaries) == [f"127.0.0.1:{p}" for p in (7001, 7002, 7006, 7007)]
    assert len(nodes) == 6 and not failing
    suspect = text.replace("7002@17002 master", "7002@17002 master,fail?")
    assert parse_nodes(suspect)[0] == primaries and parse_nodes(suspect)[2]


def test_the_cache_is_off_on_a_cluster_when_configured_so(
    stores: Callable[..., RedisStore],
) -> None:
    assert stores(member_cache=False).io.cache is None
    assert isinstance(stores().io.cache, MemberCache)
