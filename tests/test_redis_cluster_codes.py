"""Coupon code batches on a Redis Cluster, the store itself (:mod:`server.store.redis.
code_claims`): a batch listed in candidate order and redeemed at checkout, a batch cut short
between its steps and completed by the retry, concurrent requests for one batch, a bound batch
in member order through forced collisions. The gRPC suite runs on the cluster too
(``tests/test_codes.py``, param ``cluster``). Each test works under its own key prefix.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.errors import AlreadyExists, NotFound
from server.settings import RedisSettings
from server.store.codes import DEFAULT_ALPHABET, CodeBatch
from server.store.redis import code_claims
from server.store.redis.store import RedisStore
from server.store.snapshot import to_us
from tests import store_fixtures as sf


def _batch(count: int = 0, members: tuple[str, ...] = (), batch_id: str = "b1") -> CodeBatch:
    at = to_us(sf.T0)
    day = to_us(sf.T0 + sf.DAY) - at
    return CodeBatch(
        batch_id, "panadol-coupon", count or len(members), "PAN-", "", 10, DEFAULT_ALPHABET, 2,
        False, at - day, at + 30 * day, members,
    )  # fmt: skip


def _listed(store: RedisStore, batch_id: str = "b1") -> list[str]:
    return [c.decode() for c in store.client.lrange(store.keys.code_batch_codes(batch_id), 0, -1)]


def _hashes(store: RedisStore, batch_id: str = "b1") -> dict[str, dict[bytes, bytes]]:
    """Every code hash on the cluster that names ``batch_id`` (claims included), by code."""
    head, tail = store.keys.code("*").split("*")
    out = {}
    for key in store.client.scan_iter(match=store.keys.code("*"), count=1_000):
        fields = store.client.hgetall(key)
        if fields.get(b"batch") == batch_id.encode():
            out[key.decode()[len(head) : -len(tail)]] = fields
    return out


def _pages(store: RedisStore, batch_id: str, size: int) -> list[str]:
    out, token = [], ""
    while True:
        page, token = store.list_codes(batch_id, "", token, size, sf.T0)
        out += [c.code for c in page]
        if not token:
            return out


def test_a_cluster_batch_is_listed_in_candidate_order_and_redeems(cluster_store, monkeypatch):
    store, k = cluster_store, cluster_store.keys
    monkeypatch.setattr(code_claims, "ROUND", 1_000)
    monkeypatch.setattr(code_claims, "RECORD_CODES", 300)
    batch = _batch(2_500)
    done = store.create_code_batch(batch, sf.T0)
    assert (done.generated, done.collisions) == (2_500, 0)
    seed = bytes.fromhex(store.client.hget(k.code_batch("b1"), "seed").decode())
    listed = _listed(store)
    assert listed == code_claims.candidates(batch, seed, 0, 2_500) == _pages(store, "b1", 700)
    assert store.create_code_batch(batch, sf.T0) == done  # the same request: nothing new
    one = store.coupon_code(listed[7])
    assert (one.batch_id, one.uses_left, one.status(to_us(sf.T0))) == ("b1", 2, "UNUSED")
    # its hash is the global counter a commit reserves on (``left``): it redeems at checkout
    sf.enrol(store, "m1")
    sf.checkout(store, "t1", [sf.PANADOL], "m1", codes=[listed[7]])
    assert store.client.hget(k.code(listed[7]), "left") == b"1"
    assert store.coupon_code(listed[7]).last_tx == "t1"
    assert [r.batch.batch_id for r in store.code_batches()] == ["b1"]
    # the batch's keys share one slot; the codes are their own
    slots = {store.client.keyslot(x) for x in (k.code_batch("b1"), k.code_batch_codes("b1"))}
    assert slots == {store.client.keyslot(k.code_batches)}
    assert k.code(listed[0]) == f"{k.prefix}ctr:{{c:{listed[0]}}}"
    plain = type(k)()  # the names on a single Redis are unchanged
    assert (plain.code_batch("b1"), plain.code_batch_codes("b1"), plain.code_batches) == (
        "loyalty:codebatch:b1",
        "loyalty:codebatch:b1:codes",
        "loyalty:codebatches",
    )


def test_a_cluster_batch_cut_short_between_its_steps_is_completed_by_the_retry(
    cluster_store, monkeypatch
):
    store = cluster_store
    monkeypatch.setattr(code_claims, "ROUND", 400)
    monkeypatch.setattr(code_claims, "RECORD_CODES", 150)
    batch = _batch(1_000)
    real_record, real_activate = code_claims.record, code_claims.activate
    records: list[int] = []

    def crash_after_claims(*args, **kw):  # the second round's claims made, none recorded
        records.append(1)
        if len(records) == 2:
            raise RuntimeError("crash")
        return real_record(*args, **kw)

    monkeypatch.setattr(code_claims, "record", crash_after_claims)
    with pytest.raises(RuntimeError):
        store.create_code_batch(batch, sf.T0)
    claims = _hashes(store)
    bare = {code for code, fields in claims.items() if b"offer" not in fields}
    assert len(_listed(store)) == 400 and len(claims) == 800 and len(bare) == 400
    assert store.code_batch("b1").generated == 400
    code = min(bare)  # a bare claim: not redeemable, not listed, not for anyone else
    with pytest.raises(NotFound):
        store.coupon_code(code)
    with pytest.raises(AlreadyExists):
        store.create_codes("panadol-coupon", [code], 1, False, sf.T0, sf.T0 + sf.DAY)

    def crash_before_activating(io, b, start, end):  # the last round listed, not active
        if start >= 800:
            raise RuntimeError("crash")
        real_activate(io, b, start, end)

    monkeypatch.setattr(code_claims, "record", real_record)
    monkeypatch.setattr(code_claims, "activate", crash_before_activating)
    with pytest.raises(RuntimeError):
        store.create_code_batch(batch, sf.T0)
    assert len(_listed(store)) == 1_000 and store.code_batch("b1").generated == 800
    assert len(_pages(store, "b1", 300)) == 800  # the inactive ones are not listed yet
    monkeypatch.setattr(code_claims, "activate", real_activate)
    done = store.create_code_batch(batch, sf.T0)
    listed = _listed(store)
    assert done.generated == 1_000 == len(listed) == len(set(listed)) and done.collisions == 0
    claims = _hashes(store)
    assert set(claims) == set(listed) and bare <= set(listed)  # the first claims are its own
    assert all(fields[b"left"] == b"2" for fields in claims.values())
    assert _pages(store, "b1", 300) == listed


def test_concurrent_requests_for_a_cluster_batch_list_each_code_once(
    redis_cluster, cluster_store, monkeypatch
):
    from server.store import codes as shared

    monkeypatch.setattr(code_claims, "ROUND", 300)
    monkeypatch.setattr(code_claims, "RECORD_CODES", 100)
    monkeypatch.setattr(code_claims, "BLOCK", 64)
    settings = RedisSettings(url=redis_cluster.url, prefix=cluster_store.keys.prefix, cluster=True)
    stores = [cluster_store, RedisStore(settings=settings), RedisStore(settings=settings)]
    cluster_store.create_code_batch(_batch(40, batch_id="b0"), sf.T0)
    taken = _listed(cluster_store, "b0")
    real = shared.draw

    def colliding(batch, n, *args, **kw):  # taken codes and strings drawn twice, forced
        if batch.batch_id != "b2":
            return real(batch, n, *args, **kw)
        codes = real(batch, n, *args, **kw)
        return [taken[n % len(taken)], *codes[: n // 2], *codes[: n - 1 - n // 2]]

    monkeypatch.setattr(code_claims, "draw", colliding)
    members = tuple(f"p{i:04d}" for i in range(700))
    try:
        for batch in (_batch(2_000), _batch(members=members, batch_id="b2")):
            start = threading.Barrier(len(stores))

            def create(
                store: RedisStore, batch: CodeBatch = batch, gate: threading.Barrier = start
            ) -> int:
                gate.wait()
                return store.create_code_batch(batch, sf.T0).generated

            with ThreadPoolExecutor(len(stores)) as pool:
                assert list(pool.map(create, stores)) == [batch.count] * len(stores)
            listed = _listed(cluster_store, batch.batch_id)
            assert len(listed) == batch.count == len(set(listed))
            assert set(_hashes(cluster_store, batch.batch_id)) == set(listed)  # no claim left
            assert not set(listed) & set(taken)
        infos = [cluster_store.coupon_code(c) for c in _listed(cluster_store, "b2")]
        assert [i.member_id for i in infos] == list(members)  # member order through collisions
        assert cluster_store.code_batch("b2").collisions > 0
    finally:
        for store in stores[1:]:
            store.close()
