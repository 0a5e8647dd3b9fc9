"""The Redis store on a real Redis Cluster (3 primaries, 3 replicas: ``redis_cluster``).

The contract suite runs on the cluster too (``tests/test_store_contract.py``, param
``cluster``); this file holds what is particular to a cluster: the key layout, retries by
transaction id across home slots, the merged ledger, the sweep after a killed commit, races
of 1,000 commits over every shard, and the clear refusals of what does not run there yet.
Each test works under its own key prefix.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis

import engine
from engine.errors import AlreadyExists, NotFound
from loyalty.v1 import rules_pb2
from server.analytics.ledger import ledger_entries
from server.settings import RedisSettings
from server.store import CommitOutcome, MemberProfile
from server.store.policy import Policy
from server.store.redis.cache_cluster import ClusterMemberCache
from server.store.redis.cluster_process import ClusterProcess
from server.store.redis.keys import CLUSTER_SHARDS
from server.store.redis.store import RedisStore
from server.store.snapshot import to_us
from tests.store_fixtures import BASKET_1, CATALOGUE, DAY, PANADOL, RULES, T0, checkout, enrol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _slot(key: str) -> int:
    return int(redis.crc.key_slot(key.encode()))


@pytest.fixture
def prefix() -> str:
    return f"s{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def store(redis_cluster: ClusterProcess, prefix: str) -> Iterator[RedisStore]:
    s = RedisStore(settings=RedisSettings(url=redis_cluster.url, prefix=prefix, cluster=True))
    yield s
    s.close()


def _capped(uses: int = 0, budget: int = 0) -> tuple[engine.CompiledRules, Policy]:
    """The programme with the Panadol coupon capped at ``uses`` or ``budget`` in total only."""
    rules = rules_pb2.RuleSet()
    rules.CopyFrom(RULES)
    for offer in rules.offers:
        if offer.id == "panadol-coupon":
            offer.limits.Clear()
            offer.limits.total_uses = uses
            offer.limits.budget_minor = budget
    return engine.compile_rules(rules, CATALOGUE), Policy.from_rules(rules)


def test_a_commit_writes_one_home_slot_and_each_counter_its_own(store: RedisStore) -> None:
    enrol(store, "m1")
    store.create_codes("panadol-coupon", ["PAN-1"], 3, False, T0 - DAY, T0 + DAY)
    checkout(store, "t1", [*BASKET_1, PANADOL], "m1", codes=["PAN-1"])
    k = store.keys
    home = k.home("m1")
    member_slot = {_slot(x) for x in (k.member("m1"), k.tx("t1", home), *k.ledger_of(home))}
    assert member_slot == {_slot(k.fate(home, "t1#x")), _slot(k.adj("a", home))}
    assert store.client.hget(k.code("PAN-1"), "left") == b"2"
    assert store.client.hget(k.counter("o:panadol-coupon"), "u") == b"1"
    # single-Redis names are unchanged
    assert store.keys.shards == CLUSTER_SHARDS and type(k)().tx("t1") == "loyalty:tx:t1"


def test_a_retry_answers_the_stored_outcome_exactly_once(store: RedisStore) -> None:
    for m in ("m1", "m2"):
        enrol(store, m)
    first = checkout(store, "t1", BASKET_1, "m1")
    again = [checkout(store, "t1", BASKET_1, "m1") for _ in range(5)]
    assert all(a.response == first.response for a in again)
    with pytest.raises(AlreadyExists):  # the same id for another member
        checkout(store, "t1", BASKET_1, "m2")
    with pytest.raises(NotFound):  # an unknown member claims no transaction id
        checkout(store, "t9", BASKET_1, "ghost")
    checkout(store, "t9", BASKET_1, "m2")
    guest = checkout(store, "g1", BASKET_1)
    assert checkout(store, "g1", BASKET_1).response == guest.response
    assert [e.kind for e in store.ledger()] == ["commit", "commit", "commit"]
    # cancel and return find the transaction by its id, and give back once
    store.cancel("t1", T0 + DAY)
    assert store.cancel("t1", T0 + DAY).repeated
    assert [e.kind for e in store.ledger()].count("cancel") == 1


def test_cancel_and_return_give_the_counters_back_once(store: RedisStore) -> None:
    compiled, _ = _capped(budget=100_000)
    enrol(store, "m1")
    store.create_codes("panadol-coupon", ["PAN-1"], 5, False, T0 - DAY, T0 + DAY)
    lines = [("4", "PANADOL-20", 2, 2680)]
    checkout(store, "t1", lines, "m1", codes=["PAN-1"], compiled=compiled)
    k = store.keys
    spent = int(store.client.hget(k.counter("o:panadol-coupon"), "b") or 0)
    assert spent > 0
    store.return_lines("r1", "t1", [("4", 1)], T0 + DAY)
    assert store.return_lines("r1", "t1", [("4", 1)], T0 + DAY).repeated
    back = int(store.client.hget(k.counter("o:panadol-coupon"), "b") or 0)
    assert 0 < back < spent  # the returned unit's share of the discount, given back once
    store.cancel("t1", T0 + DAY)
    store.cancel("t1", T0 + DAY)
    assert int(store.client.hget(k.counter("o:panadol-coupon"), "b") or 0) == 0
    assert int(store.client.hget(k.counter("o:panadol-coupon"), "u") or 0) == 0
    assert store.client.hget(k.code("PAN-1"), "left") == b"5"


def test_the_ledger_merges_every_shard_in_order(store: RedisStore) -> None:
    members = [f"m{i}" for i in range(60)]
    for m in members:
        enrol(store, m)
    for i, m in enumerate(members):
        checkout(store, f"t{i}", BASKET_1, m)
    store.adjust_points("adj", "m0", 10, "welcome", T0)
    entries = store.ledger()
    assert len(entries) == 61 and len({store.keys.home(m) for m in members}) > 40
    seqs = [e.seq for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [e.transaction_id for e in entries[:60]] == [f"t{i}" for i in range(60)]
    paged = list(ledger_entries(store, page=7))
    assert [e.seq for e in paged] == seqs
    assert [e.seq for e in store.ledger(since=seqs[9], limit=5)] == seqs[10:15]


def test_quotes_on_a_cluster_read_through_the_member_cache(store: RedisStore) -> None:
    enrol(store, "m1")
    # quotes read through the per-process cache there too (tests/test_member_cache_cluster.py)
    assert isinstance(store.io.cache, ClusterMemberCache)


def _race(store: RedisStore, compiled: engine.CompiledRules, n: int) -> list[CommitOutcome]:
    members = [f"r{i}" for i in range(n)]
    cluster = store.client
    assert isinstance(cluster, redis.RedisCluster)
    nodes = {cluster.get_node_from_key(store.keys.member(m)).name for m in members}
    assert len(nodes) == 3  # members on every primary
    store.import_members((MemberProfile(m, tier="member") for m in members), T0)
    store.create_codes("panadol-coupon", ["PAN-R"], n, False, T0 - DAY, T0 + DAY)
    lines = [("4", "PANADOL-20", 1, 2680)]

    def one(i: int) -> CommitOutcome:
        return checkout(store, f"tx-{i}", lines, members[i], codes=["PAN-R"], compiled=compiled)

    with ThreadPoolExecutor(32) as pool:
        return list(pool.map(one, range(n)))


def _given(outcomes: list[CommitOutcome]) -> list[int]:
    return [u.discount_minor for o in outcomes for u in o.offers if u.offer_id == "panadol-coupon"]


def test_1000_concurrent_commits_on_an_offer_capped_at_100_uses(store: RedisStore) -> None:
    compiled, _ = _capped(uses=100)
    outcomes = _race(store, compiled, 1000)
    assert len(outcomes) == 1000 and len(_given(outcomes)) == 100
    k = store.keys
    assert store.client.hget(k.counter("o:panadol-coupon"), "u") == b"100"
    assert store.client.hget(k.code("PAN-R"), "left") == b"900"
    assert sum(1 for e in store.ledger() if e.kind == "commit") == 1000


def test_1000_concurrent_commits_on_a_budget(store: RedisStore) -> None:
    compiled, _ = _capped(budget=7_777)
    outcomes = _race(store, compiled, 1000)
    assert sum(_given(outcomes)) == 7_777
    assert store.client.hget(store.keys.counter("o:panadol-coupon"), "b") == b"7777"


CRASHER = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from server.settings import RedisSettings
from server.store.redis import homes
from server.store.redis.store import RedisStore
from tests.store_fixtures import PANADOL, checkout
url, prefix, step, member, reserve_s = sys.argv[2:7]
homes.RESERVE_S = float(reserve_s)  # how long until the sweep may settle what it held
store = RedisStore(settings=RedisSettings(url=url, prefix=prefix, cluster=True), sweep_s=0)
res = store.io.reservations
if step == "reserved":  # killed after reserving, before the commit script
    def die(**kw):
        os.kill(os.getpid(), signal.SIGKILL)
    store.io.scripts["commit_home"] = die
else:  # killed after the commit script, before confirming
    def die_confirm(tx, counters):
        os.kill(os.getpid(), signal.SIGKILL)
    res.confirm = die_confirm
checkout(store, "t-" + step, [PANADOL], member, codes=["PAN-K"])
"""


def _crash(cluster: ClusterProcess, prefix: str, step: str, member: str, reserve_s: float) -> None:
    args = [ROOT, cluster.url, prefix, step, member, str(reserve_s)]
    proc = subprocess.run([sys.executable, "-c", CRASHER, *args], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def test_the_store_sweeps_in_the_background(redis_cluster: ClusterProcess, prefix: str) -> None:
    settings = RedisSettings(url=redis_cluster.url, prefix=prefix, cluster=True)
    with RedisStore(settings=settings, sweep_s=0.1) as store:
        enrol(store, "m1")
        store.create_codes("panadol-coupon", ["PAN-K"], 5, False, T0 - DAY, T0 + DAY)
        _crash(redis_cluster, prefix, "reserved", "m1", 0.5)
        code = store.keys.code("PAN-K")
        deadline = time.monotonic() + 10
        while store.client.hget(code, "p-:left") != b"0" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.client.hget(code, "p-:left") == b"0"  # released by the store's thread
        assert store.client.hget(code, "left") == b"5" and store.ledger() == []
        checkout(store, "t-reserved", [PANADOL], "m1", codes=["PAN-K"])  # the retry, once
        assert store.client.hget(code, "left") == b"4"


def test_the_sweep_after_a_commit_killed_between_its_steps(
    redis_cluster: ClusterProcess, prefix: str
) -> None:
    settings = RedisSettings(url=redis_cluster.url, prefix=prefix, cluster=True)
    with RedisStore(settings=settings, sweep_s=0) as store:  # swept by hand here
        _killed_and_swept(redis_cluster, store, prefix)


def _killed_and_swept(redis_cluster: ClusterProcess, store: RedisStore, prefix: str) -> None:
    enrol(store, "m1")
    enrol(store, "m2")
    store.create_codes("panadol-coupon", ["PAN-K"], 5, False, T0 - DAY, T0 + DAY)
    k = store.keys
    for step, member in (("reserved", "m1"), ("applied", "m2")):
        _crash(redis_cluster, prefix, step, member, 10.0)
    code = k.code("PAN-K")
    assert store.client.hget(code, "left") == b"5"  # neither confirmed
    assert store.client.hget(code, "p-:left") == b"-2"  # both still held
    assert [e.transaction_id for e in store.ledger()] == ["t-applied"]
    later = to_us(T0) + 0  # before their deadline: nothing is settled
    assert store.sweep(later) == {}
    settled = store.sweep(to_us(T0 + timedelta(days=3650)))
    assert sorted(settled.values()) == ["c", "x"]  # the applied one counted, the other not
    assert store.client.hget(code, "left") == b"4" and store.client.hget(code, "p-:left") == b"0"
    # the transaction that died before applying commits once on a retry; the other answers
    checkout(store, "t-reserved", [PANADOL], "m1", codes=["PAN-K"])
    checkout(store, "t-applied", [PANADOL], "m2", codes=["PAN-K"])
    assert store.client.hget(code, "left") == b"3"
    assert [e.transaction_id for e in store.ledger()] == ["t-applied", "t-reserved"]
