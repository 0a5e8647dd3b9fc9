"""The Redis store's pieces on a real Redis Cluster (3 primaries, 3 replicas: ``redis_cluster``).

What runs on a cluster: the client and its settings, the key layout's slots,
the rule registry with its announcements, and the reserve/apply/confirm protocol for global
counters (:mod:`server.store.redis.reservations`) with its recovery sweep. Each test works
under its own key prefix, so they share the cluster without flushing it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import redis

from engine.errors import InvalidInput, NotFound
from server.rules.versions import RedisVersions
from server.settings import RedisSettings, Settings
from server.store.redis.cluster_process import ClusterProcess
from server.store.redis.io import connect
from server.store.redis.keys import Keys
from server.store.redis.reservations import Hold, Refused, Released, Reservations
from server.store.redis.store import RedisStore

MEMBERS = [f"M{i}" for i in range(64)]


@pytest.fixture
def client(redis_cluster: ClusterProcess) -> Iterator[redis.Redis]:
    c = connect(
        redis_cluster.url,
        connect_timeout_s=1.0,
        socket_timeout_s=5.0,
        max_connections=64,
        cluster=True,
    )
    yield c
    c.close()


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:8]}:", cluster=True)


@pytest.fixture
def res(client: redis.Redis, keys: Keys) -> Reservations:
    return Reservations(client, keys, ttl_ms=600_000)


def _slot(key: str) -> int:
    return int(redis.crc.key_slot(key.encode()))


def test_the_cluster_has_three_primaries_with_a_replica_each(client: redis.Redis) -> None:
    cluster = client  # a RedisCluster under the Redis typing (server.store.redis.io.connect)
    assert isinstance(cluster, redis.RedisCluster)
    assert len(cluster.get_primaries()) == 3
    info = cluster.cluster_info()  # type: ignore[no-untyped-call]
    assert info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == 6
    deadline = time.monotonic() + 20
    while True:  # replicas report in a little after cluster_state:ok
        nodes = cluster.cluster_nodes()  # type: ignore[no-untyped-call]
        roles = sorted("slave" in n["flags"] for n in nodes.values())
        if roles == [False] * 3 + [True] * 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert roles == [False] * 3 + [True] * 3, nodes


def test_key_layout_slots() -> None:
    k = Keys(cluster=True)
    m = "M1"
    # everything of one member shares the member's slot
    member_slot = {_slot(x) for x in (k.member(m), k.lease(m), k.wake(m), k.member_list(m))}
    assert member_slot == {_slot(k.fate(k.home(m), "tx-1")), _slot(k.tx("tx-1", k.home(m)))}
    # each global counter is its own slot, with its reservations and pending set
    for name in ("o:OFF1", "c:CODE1", "u:OFF1"):
        assert len({_slot(k.counter(name)), _slot(k.reservation(name, "tx")),
                    _slot(k.pending(name))}) == 1  # fmt: skip
    # the registry is one slot on a cluster; on a single Redis its names are unchanged
    rules = [k.rules_seq, k.rules_current, k.rules_version(7), k.catalogue, k.catalogue_stamp]
    assert len({_slot(x) for x in rules}) == 1
    assert Keys().rules_current == "loyalty:rules:current"
    # members spread over every shard
    slots = {_slot(k.member(x)) for x in MEMBERS}
    assert len(slots) > 32


def test_settings_and_cli_option() -> None:
    s = Settings.from_env({"LOYALTY_REDIS_CLUSTER": "1", "LOYALTY_REDIS_URL": "redis://h:7000"})
    assert s.redis.cluster and s.redis.url == "redis://h:7000"
    assert not Settings.from_env({}).redis.cluster
    with pytest.raises(InvalidInput, match="over TCP"):
        Settings.from_env({}, redis_cluster=True, redis_url="unix:///tmp/r.sock")
    with pytest.raises(InvalidInput, match="database 0"):
        Settings.from_env({}, redis_cluster=True, redis_url="redis://h:7000/3")
    with pytest.raises(InvalidInput, match="LOYALTY_REDIS_CLUSTER"):
        Settings.from_env({"LOYALTY_REDIS_CLUSTER": "maybe"})
    from server.cli.main import build_parser

    args = build_parser().parse_args(["demo", "--store", "redis", "--redis-cluster"])
    assert args.redis_cluster


def test_the_store_runs_on_a_cluster(redis_cluster: ClusterProcess, keys: Keys) -> None:
    # the store's own tests on the cluster: tests/test_redis_cluster_store.py
    settings = RedisSettings(url=redis_cluster.url, prefix=keys.prefix, cluster=True)
    with RedisStore(settings=settings) as store:
        assert store.keys.cluster and isinstance(store.client, redis.RedisCluster)
        with pytest.raises(NotFound):
            store.shopping_list_id("M1", datetime.now(UTC))


def test_registry_on_the_cluster(redis_cluster: ClusterProcess, keys: Keys) -> None:
    a = RedisVersions(redis_cluster.url, keys.prefix, cluster=True)
    b = RedisVersions.from_settings(
        RedisSettings(url=redis_cluster.url, prefix=keys.prefix, cluster=True)
    )
    try:
        b.wait(0.05)  # subscribes
        woke = threading.Event()

        def listen() -> None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and b.stamp() == (0, 0):
                b.wait(0.5)
            woke.set()

        t = threading.Thread(target=listen)
        t.start()
        v1 = a.add(b"rules-1", "2026-01-01T00:00:00+00:00", "first")
        t.join(10)
        assert woke.is_set()
        v2 = a.add(b"rules-2", "2026-01-02T00:00:00+00:00", "second")
        assert (v1, v2) == (1, 2) and b.current() == 2
        a.set_current(1)
        assert b.stamp() == (1, 0)
        a.save_catalogue(b"parquet")
        assert b.catalogue() == b"parquet" and b.stamp() == (1, 1)
        assert [r[0] for r in b.rows()] == [1, 2]
        assert b.load(2) == (2, b"rules-2", "2026-01-02T00:00:00+00:00", "second")
    finally:
        a.close()
        b.close()


def _commit(res: Reservations, tx: str, home: str, holds: list[Hold], deadline_us: int) -> bool:
    """The protocol's three steps (the member's change itself is the fence here)."""
    try:
        return res.transact(
            tx, home, holds, deadline_us, lambda: res.decide(home, tx, "applied") == "applied"
        )
    except Refused:
        return False


def test_1000_concurrent_commits_on_an_offer_capped_at_100_uses(res: Reservations) -> None:
    far = int(time.time() * 1e6) + 600_000_000

    def one(i: int) -> bool:
        holds = [Hold("o:CAPPED", (("u", 1, 100),))]
        home = MEMBERS[i % len(MEMBERS)]
        ok = _commit(res, f"tx-{i}", home, holds, far)
        if ok:  # every call races with itself and is retried: a repeat changes nothing
            assert _commit(res, f"tx-{i}", home, holds, far)
        return ok

    with ThreadPoolExecutor(32) as pool:
        wins = sum(pool.map(one, range(1000)))
    assert wins == 100
    assert res.value("o:CAPPED", "u") == 100
    assert res.value("o:CAPPED", "p+:u") == 0


def test_1000_concurrent_commits_on_a_budget(res: Reservations) -> None:
    far = int(time.time() * 1e6) + 600_000_000
    budget = 123_457  # minor units
    amounts = [37 + (i * 7919) % 500 for i in range(1000)]  # 37..536, 1000 commits >> budget

    def one(i: int) -> int:
        holds = [Hold("o:BUDGET", (("b", amounts[i], budget),))]
        return amounts[i] if _commit(res, f"tx-{i}", MEMBERS[i % 64], holds, far) else 0

    with ThreadPoolExecutor(32) as pool:
        spent = sum(pool.map(one, range(1000)))
    assert res.value("o:BUDGET", "b") == spent <= budget
    assert budget - spent < max(amounts)  # nothing refused that fitted at the end
    assert res.value("o:BUDGET", "p+:b") == 0


def test_a_refusal_releases_what_was_held(res: Reservations) -> None:
    far = int(time.time() * 1e6) + 600_000_000
    assert _commit(res, "first", "M1", [Hold("c:ONCE", (("left", -1, 0),))], far) is False
    res.give_back("mk", "c:ONCE", [("left", 1)])  # a code with one use left
    holds = [Hold("o:A", (("u", 1, 5),)), Hold("c:ONCE", (("left", -1, 0),))]
    assert _commit(res, "t1", "M1", holds, far)
    assert not _commit(res, "t2", "M2", holds, far)  # the code is used up
    assert res.value("o:A", "u") == 1 and res.value("o:A", "p+:u") == 0
    assert res.value("c:ONCE", "left") == 0


def test_give_back_is_once_per_reversal(res: Reservations) -> None:
    far = int(time.time() * 1e6) + 600_000_000
    assert _commit(res, "t", "M1", [Hold("o:G", (("u", 1, 0), ("b", 250, 1000)))], far)
    assert res.give_back("cancel:t", "o:G", [("u", -1), ("b", -250)])
    assert not res.give_back("cancel:t", "o:G", [("u", -1), ("b", -250)])
    assert (res.value("o:G", "u"), res.value("o:G", "b")) == (0, 0)


CRASHER = """
import os, signal, sys
from server.store.redis.io import connect
from server.store.redis.keys import Keys
from server.store.redis.reservations import Hold, Reservations
url, prefix, tx, home, step, deadline = sys.argv[1:7]
client = connect(url, connect_timeout_s=1, socket_timeout_s=5, max_connections=4, cluster=True)
res = Reservations(client, Keys(prefix, cluster=True), ttl_ms=600_000)
res.reserve(tx, home, [Hold("o:CRASH", (("u", 1, 2), ("b", 500, 1000)))], int(deadline))
if step == "applied":
    assert res.decide(home, tx, "applied") == "applied"
os.kill(os.getpid(), signal.SIGKILL)  # the server dies before the next step
"""


def _crash(cluster: ClusterProcess, keys: Keys, tx: str, home: str, step: str, dl: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, cluster.url, keys.prefix, tx, home, step, str(dl)],
        cwd=os.path.dirname(os.path.dirname(__file__)),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def test_recovery_sweep_after_a_server_is_killed(
    redis_cluster: ClusterProcess, keys: Keys, res: Reservations
) -> None:
    now = int(time.time() * 1e6)
    _crash(redis_cluster, keys, "lost", "M1", "reserved", now + 1)  # died before applying
    _crash(redis_cluster, keys, "kept", "M2", "applied", now + 1)  # died before confirming
    # both hold the cap meanwhile: nothing can oversell while they are in doubt
    assert not _commit(res, "third", "M3", [Hold("o:CRASH", (("u", 1, 2),))], now + 10**9)
    assert res.sweep(None, now) == {}  # not due yet
    assert res.sweep(None, now + 2) == {"lost": "x", "kept": "c"}
    assert res.sweep(None, now + 2) == {}  # a second sweep has nothing left
    assert (res.value("o:CRASH", "u"), res.value("o:CRASH", "b")) == (1, 500)
    assert (res.value("o:CRASH", "p+:u"), res.value("o:CRASH", "p+:b")) == (0, 0)
    # the server that held "lost" comes back late: its change is fenced off, its reserve too
    assert res.decide("M1", "lost", "applied") == "aborted"
    with pytest.raises(Released):
        res.reserve("lost", "M1", [Hold("o:CRASH", (("u", 1, 2),))], now + 10**9)
    # what was released is free again
    assert _commit(res, "fourth", "M4", [Hold("o:CRASH", (("u", 1, 2),))], now + 10**9)
    assert res.value("o:CRASH", "u") == 2


def test_a_conflict_keeps_the_reservation_for_the_retry_and_abandon_frees_it(
    res: Reservations,
) -> None:
    far = int(time.time() * 1e6) + 600_000_000
    holds = [Hold("o:RETRY", (("u", 1, 1),))]
    assert not res.transact("t", "M1", holds, far, lambda: False)  # the member moved
    assert not _commit(res, "other", "M2", holds, far)  # the use is still held for "t"
    assert _commit(res, "t", "M1", holds, far)  # its retry goes through on the same hold
    assert not res.transact("u", "M3", [Hold("o:RETRY2", (("u", 1, 1),))], far, lambda: False)
    assert res.abandon("u", "M3", ["o:RETRY2"]) is False  # given up: released, fenced off
    assert res.value("o:RETRY2", "p+:u") == 0 and res.decide("M3", "u", "applied") == "aborted"
    assert _commit(res, "v", "M4", [Hold("o:RETRY2", (("u", 1, 1),))], far)
