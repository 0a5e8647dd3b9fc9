"""Failover without loss on a real Redis Cluster (its own: 3 primaries, 3 replicas).

Lanes commit from several threads while the primary holding an offer's global counter (and a
third of the members' home slots) is killed with SIGKILL; its replica takes over within
seconds (``cluster-node-timeout`` 1 s). Every commit waits for one replica's acknowledgement
before it is answered OK (``wait_replicas`` 1, the cluster default: server.store.redis.
replicas); a lane that hears UNAVAILABLE retries the same transaction id until it is
acknowledged. Afterwards every acknowledged commit is in the store exactly once (ledger and
member balances agree with what the lanes were told) and the offer capped at 40 uses counted
exactly the acknowledged commits that used it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict
from typing import cast

import pytest
import redis

from engine.errors import Unavailable
from server.settings import RedisSettings
from server.store import CommitOutcome, MemberProfile
from server.store.redis import homes
from server.store.redis.cluster_process import ClusterProcess
from server.store.redis.process import RedisProcess
from server.store.redis.store import RedisStore
from tests.store_fixtures import DAY, T0, checkout, enrol
from tests.test_redis_cluster_store import _capped

CAP = 40  # the offer's total uses
LANES, PER_LANE, MEMBERS_PER_LANE = 6, 40, 4
LINES = [("1", "CREAM-50", 1, 5990), ("4", "PANADOL-20", 1, 2680)]


def _slots_served(node: RedisProcess, dead: int) -> bool:
    """``node`` sees every slot served by a primary other than the port ``dead``."""
    client = redis.Redis(port=node.port, socket_timeout=1)
    try:
        slots = cast(list[list[object]], client.execute_command("CLUSTER", "SLOTS"))  # type: ignore[no-untyped-call]
    except redis.RedisError:
        return False
    finally:
        client.close()
    covered = 0
    for row in slots:
        start, end, primary = cast(int, row[0]), cast(int, row[1]), cast(list[object], row[2])
        if int(cast(int, primary[1])) == dead:
            return False
        covered += end - start + 1
    return covered == 16384


def _fail_over(cluster: ClusterProcess, victim: RedisProcess, deadline: float) -> None:
    """Kill ``victim`` (SIGKILL), wait until its replica serves its slots, then start it again
    (it rejoins as the new primary's replica, so commits there are acknowledged again)."""
    port = victim.port
    victim.kill()
    live = [n for n in cluster.nodes if n.proc is not None]
    while not all(_slots_served(n, port) for n in live):
        assert time.monotonic() < deadline, "the replica did not take over in time"
        time.sleep(0.1)
    victim.start()
    cluster.wait_ok(deadline)


def test_a_primary_killed_under_commit_load_loses_no_acknowledged_commit(
    own_cluster: ClusterProcess,
) -> None:
    cluster = own_cluster
    started = time.monotonic()
    settings = RedisSettings(
        url=cluster.url,
        prefix="fo:",
        cluster=True,
        connect_timeout_s=0.2,
        socket_timeout_s=1.0,
        wait_timeout_ms=300,
    )
    assert settings.replicas == 1  # the cluster default
    store = RedisStore(settings=settings, sweep_s=0)
    compiled, _ = _capped(uses=CAP)
    members = [f"m{i}" for i in range(LANES * MEMBERS_PER_LANE)]
    for m in members:
        enrol(store, m)
    store.create_codes("panadol-coupon", ["PAN-F"], 100_000, False, T0 - DAY, T0 + DAY)
    acknowledged: dict[str, CommitOutcome] = {}
    retried: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + 45

    def lane(n: int) -> None:
        mine = members[n * MEMBERS_PER_LANE : (n + 1) * MEMBERS_PER_LANE]
        for i in range(PER_LANE):
            tx, member = f"t{n}-{i}", mine[i % len(mine)]
            while time.monotonic() < stop:  # retry the same id until acknowledged
                try:
                    out = checkout(store, tx, LINES, member, codes=["PAN-F"], compiled=compiled)
                except Unavailable:
                    with lock:
                        retried.append(tx)
                    time.sleep(0.05)
                    continue
                with lock:
                    acknowledged[tx] = out
                break

    threads = [threading.Thread(target=lane, args=(n,)) for n in range(LANES)]
    for t in threads:
        t.start()
    while len(acknowledged) < LANES * PER_LANE // 4:
        assert time.monotonic() < stop
        time.sleep(0.01)
    victim = cluster.primary_of(store.keys.counter("o:panadol-coupon"))
    at_kill = len(acknowledged)
    _fail_over(cluster, victim, time.monotonic() + 20)
    for t in threads:
        t.join(max(0.0, stop - time.monotonic()) + 5)
    assert not any(t.is_alive() for t in threads)
    # the kill came mid-stream; the lanes that heard UNAVAILABLE (``retried``: how many
    # depends on timing, redis-py also retries inside) retried the same id
    assert at_kill < LANES * PER_LANE
    assert len(acknowledged) == LANES * PER_LANE  # every lane got through in the end

    homes.sweep(store.io, now_us=2**62)  # settle what commits left reserved (none counted twice)
    entries = [e for e in store.ledger() if e.kind == "commit"]
    assert sorted(e.entry_id for e in entries) == sorted(acknowledged)  # each exactly once
    points: dict[str, int] = defaultdict(int)
    for out in acknowledged.values():
        points[out.member_id or ""] += out.points_earned
    for m in members:
        assert store.get_member(m, T0).points_pending == points[m]
    used = sum(1 for o in acknowledged.values() for u in o.offers if u.offer_id == "panadol-coupon")
    k = store.keys
    assert used == CAP  # the cap was reached, and not passed
    assert store.client.hget(k.counter("o:panadol-coupon"), "u") == str(CAP).encode()
    assert store.client.hget(k.code("PAN-F"), "left") == str(100_000 - CAP).encode()
    store.close()
    assert time.monotonic() - started < 60


def test_too_few_replicas_is_unavailable_and_the_retry_answers_the_stored_outcome(
    redis_cluster: ClusterProcess,
) -> None:
    """A commit that fewer replicas acknowledged than asked is applied but not answered OK; a
    retry under its id answers the stored outcome once the replicas hold it."""
    base = RedisSettings(url=redis_cluster.url, prefix="wr:", cluster=True, wait_timeout_ms=50)
    greedy = RedisStore(settings=dataclasses.replace(base, wait_replicas=2), sweep_s=0)
    store = RedisStore(settings=base, sweep_s=0)  # the default: one replica
    try:
        enrol(store, "w1")
        with pytest.raises(Unavailable, match="0 of 2|1 of 2"):
            checkout(greedy, "tw", LINES, "w1")
        first = [e.entry_id for e in store.ledger()]
        assert first == ["tw"]  # applied on the primary all the same
        with pytest.raises(Unavailable):  # a retry waits for the replicas as well
            checkout(greedy, "tw", LINES, "w1")
        again = checkout(store, "tw", LINES, "w1")
        assert again.transaction_id == "tw"
        assert [e.entry_id for e in store.ledger()] == ["tw"]  # once
        assert store.get_member("w1", T0).points_pending == again.points_earned
    finally:
        greedy.close()
        store.close()


def test_member_writes_in_bulk_wait_for_the_replicas_too(redis_cluster: ClusterProcess) -> None:
    """Enrolment, imports, segment tags, coupon issues and tier runs change member documents
    outside a commit: on a cluster they too are answered only once a replica holds them."""
    base = RedisSettings(url=redis_cluster.url, prefix="wb:", cluster=True, wait_timeout_ms=50)
    greedy = RedisStore(settings=dataclasses.replace(base, wait_replicas=2), sweep_s=0)
    store = RedisStore(settings=base, sweep_s=0)  # the default: one replica
    try:
        profiles = [MemberProfile(f"b{i}", tier="member") for i in range(30)]
        with pytest.raises(Unavailable, match="of 2 replica"):
            greedy.import_members(profiles, T0)
        assert store.import_members(profiles, T0) == 0  # applied all the same, and answered
        with pytest.raises(Unavailable, match="of 2 replica"):
            greedy.upsert_member(MemberProfile("b0", tier="gold"), T0)
        assert store.get_member("b0", T0).tier == "gold"
        with pytest.raises(Unavailable, match="of 2 replica"):
            greedy.update_segments({"b1": (["sports"], [])}, T0)
        assert store.upsert_member(MemberProfile("b2", tier="silver"), T0).tier == "silver"
    finally:
        greedy.close()
        store.close()
