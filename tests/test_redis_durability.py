"""Redis durability and outages: a crash mid-stream loses no acknowledged commit and applies
none twice (AOF, appendfsync always); Redis unreachable is UNAVAILABLE quickly, with no partial
effect, and the service recovers by itself when Redis returns."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from engine.errors import Unavailable
from engine.pricing.rules import parse_rules
from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    rules_pb2,
)
from server.api.app import create_server
from server.settings import RedisSettings, Settings
from server.store.redis.process import RedisProcess
from server.store.redis.store import RedisStore
from tests.store_fixtures import BASKET_1, T0, checkout, enrol, net
from tests.test_server_checkout import CATALOGUE, RULES, basket


@pytest.fixture
def aof_redis(tmp_path):
    server = RedisProcess(appendonly=True, appendfsync="always", data_dir=tmp_path / "redis")
    server.start()
    yield server
    server.close()


def test_a_crash_mid_stream_keeps_every_acknowledged_commit_exactly_once(aof_redis):
    store = RedisStore(
        settings=RedisSettings(aof_redis.url, connect_timeout_s=0.2, socket_timeout_s=0.5)
    )
    enrol(store, "m1")
    acknowledged: list[str] = []
    totals = {"net": 0, "points": 0}
    retried: list[str] = []
    n = 120

    def stream() -> None:
        for i in range(n):
            tx = f"tx-{i:04d}"
            while True:  # a lane retries the same transaction id until it is acknowledged
                try:
                    out = checkout(store, tx, BASKET_1, "m1")
                    acknowledged.append(tx)
                    totals["net"] += net(out)
                    totals["points"] += out.points_earned
                    break
                except Unavailable:
                    retried.append(tx)
                    time.sleep(0.02)

    lane = threading.Thread(target=stream)
    lane.start()
    while len(acknowledged) < n // 3:
        time.sleep(0.005)
    aof_redis.kill()  # SIGKILL in the middle of the stream
    time.sleep(0.3)
    aof_redis.start()
    lane.join(60)
    assert not lane.is_alive()
    assert retried, "the crash happened while the stream was running"
    assert len(acknowledged) == n
    entries = store.ledger()
    assert sorted(e.entry_id for e in entries) == sorted(acknowledged)  # each once, none lost
    m = store.get_member("m1", T0)
    assert m.lifetime_spend_minor == totals["net"] == sum(e.amount_minor for e in entries)
    assert m.points_pending == totals["points"] == sum(e.points_earned for e in entries)
    store.close()


def _published_server(url: str, tmp_path):
    settings = Settings(port=0, data_dir=tmp_path / "data", store="redis").replace(redis_url=url)
    server, port, app = create_server(settings)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
    campaigns.ImportCatalogue(
        campaigns_pb2.ImportCatalogueRequest(
            rows=campaigns_pb2.CatalogueRows(
                items=[rules_pb2.CatalogueItem(sku=s, category=c) for s, c in CATALOGUE]
            )
        )
    )
    campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES)))
    members_pb2_grpc.MemberServiceStub(channel).UpsertMember(
        members_pb2.UpsertMemberRequest(member_id="vip1", tier="vip")
    )
    return server, app, channel


def test_redis_down_is_unavailable_fast_with_no_effect_and_recovers_by_itself(aof_redis, tmp_path):
    server, app, channel = _published_server(aof_redis.url, tmp_path)
    checkout_stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
    try:
        assert checkout_stub.Evaluate(basket(at=None), timeout=5).payable_minor > 0
        aof_redis.stop()
        for call in (
            lambda: checkout_stub.Evaluate(basket(at=None), timeout=10),
            lambda: checkout_stub.Commit(
                checkout_pb2.CommitRequest(transaction_id="down-1", basket=basket(at=None)),
                timeout=10,
            ),
        ):
            start = time.perf_counter()
            with pytest.raises(grpc.RpcError) as exc:
                call()
            assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.perf_counter() - start < 3.0
        aof_redis.start()
        deadline = time.monotonic() + 10
        while True:  # the pool reconnects on its own; no restart of the service
            try:
                done = checkout_stub.Commit(
                    checkout_pb2.CommitRequest(transaction_id="down-1", basket=basket(at=None)),
                    timeout=5,
                )
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert done.result.payable_minor > 0
        store = RedisStore(aof_redis.url)
        assert [e.entry_id for e in store.ledger()] == ["down-1"]  # refused calls left nothing
        store.close()
    finally:
        channel.close()
        server.stop(None).wait()
        app.close()
