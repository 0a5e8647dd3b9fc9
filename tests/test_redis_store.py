"""Redis-only behaviour of the Redis store: key schema, scripts re-loaded after NOSCRIPT, the
ledger as a stream, bulk enrolment, transaction retention."""

from __future__ import annotations

import pytest

from server.settings import RedisSettings
from server.store import MemberProfile
from server.store.redis.keys import Keys
from server.store.redis.process import RedisProcess
from server.store.redis.store import RedisStore
from tests.store_fixtures import BASKET_1, T0, checkout, enrol


@pytest.fixture
def store(redis_url: str):
    s = RedisStore(settings=RedisSettings(redis_url, tx_retention_s=3600))
    yield s
    s.close()


def test_a_member_is_one_hash_tagged_key_and_a_transaction_expires_after_retention(store):
    enrol(store, "m1")
    checkout(store, "tx-1", BASKET_1, "m1")
    keys = sorted(k.decode() for k in store.client.keys("*"))
    assert "loyalty:m:{m1}" in keys and "loyalty:tx:tx-1" in keys
    assert {k for k in keys if "m1" in k} == {"loyalty:m:{m1}"}
    assert 0 < store.client.pttl(Keys().tx("tx-1")) <= 3600 * 1000
    assert store.client.ttl(Keys().member("m1")) == -1  # members never expire


def test_scripts_are_loaded_again_after_a_script_flush(store):
    enrol(store, "m1")
    store.client.script_flush()
    out = checkout(store, "tx-1", BASKET_1, "m1")
    assert out.points_earned == 16
    assert store.get_member("m1", T0).lifetime_spend_minor == 16180


def test_the_ledger_is_a_stream_with_line_detail(store):
    enrol(store, "m1")
    checkout(store, "tx-1", BASKET_1, "m1")
    store.cancel("tx-1", T0)
    rows = store.client.xrange(Keys().ledger)
    assert [r[0] for r in rows] == [b"1-1", b"2-1"]
    assert [r[1][b"kind"] for r in rows] == [b"commit", b"cancel"]
    assert rows[0][1][b"transaction_id"] == b"tx-1" and rows[0][1][b"member_id"] == b"m1"
    assert [e.seq for e in store.ledger(since=1)] == [2]
    assert store.ledger()[0].lines[0].line_id == "1"


def test_bulk_enrolment_creates_only_new_members(store):
    enrol(store, "m1", tier="vip")
    created = store.import_members(
        [MemberProfile("m1", tier="member"), MemberProfile("m2", tier="member")], T0, batch=1
    )
    assert created == 1
    assert store.get_member("m1", T0).tier == "vip"  # existing members are not overwritten
    assert store.get_member("m2", T0).tier == "member"
    checkout(store, "tx-2", BASKET_1, "m2")  # an imported member is a normal document
    assert store.get_member("m2", T0).points_pending == 16


def test_a_unix_socket_url_works(tmp_path):
    with RedisProcess(unix_socket=True, data_dir=tmp_path / "r") as server:
        assert server.url.startswith("unix://")
        with RedisStore(server.url) as s:
            enrol(s, "m1")
            assert checkout(s, "tx-1", BASKET_1, "m1").points_earned == 16
