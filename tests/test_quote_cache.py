"""The embedded store's quote cache (server/store/embedded/quotes.py): a quote for a member seen
before reads one version instead of the member's rows, and never answers from rows that
another process (another store on the same file) has changed since."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.store import EmbeddedStore, MemberProfile
from server.store.embedded.quotes import QuoteCache
from server.store.embedded.state import pricing_state
from tests.store_fixtures import BASKET_1, DAY, POLICY, T0, checkout, enrol


@pytest.fixture
def two(tmp_path):
    """Two stores on one file, as two worker processes have."""
    a, b = EmbeddedStore(tmp_path), EmbeddedStore(tmp_path)
    yield a, b
    a.close()
    b.close()


def statements(store: EmbeddedStore, quote) -> list[str]:
    """The SQL a quote ran on this thread's connection."""
    seen: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(seen.append)
    try:
        quote()
    finally:
        conn.set_trace_callback(None)
    return seen


def uncached(store: EmbeddedStore, member_id: str, now):
    with store._tx(write=False) as db:
        return pricing_state(db, POLICY, member_id, None, ["PANADOL-SWITCH"], now, 12)


def test_a_second_quote_reads_the_version_not_the_rows(two):
    store, _ = two
    enrol(store, "m1")
    checkout(store, "t1", BASKET_1, "m1")

    def quote():
        return store.pricing_state(POLICY, "m1", None, [], T0)

    first = statements(store, quote)
    second = statements(store, quote)
    tables = ("point_lots", "wallet_coupons", "member_spend", "SELECT * FROM members")
    assert any(t in sql for sql in first for t in tables)
    assert not any(t in sql for sql in second for t in tables), second
    assert any("SELECT version FROM members" in sql for sql in second)


def test_a_change_by_another_process_is_seen_at_once(two):
    a, b = two
    enrol(a, "m1")
    now = T0 + 20 * DAY  # past the 14 pending days: the first commit's points are available
    assert b.pricing_state(POLICY, "m1", None, [], now).member.available_points == 0
    # each kind of change through one store, then a quote through the other
    checkout(a, "t1", BASKET_1, "m1")
    assert b.pricing_state(POLICY, "m1", None, [], now).member.available_points == 16
    a.adjust_points("adj-1", "m1", 5, "goodwill", now)
    assert b.pricing_state(POLICY, "m1", None, [], now).member.available_points == 21
    a.issue_coupons("i1", "panadol-coupon", ["m1"], 1, T0, T0 + 30 * DAY, now)
    assert b.pricing_state(POLICY, "m1", None, [], now).member.wallet == {"panadol-coupon": 1}
    a.upsert_member(MemberProfile("m1", tier="vip"), now)
    assert b.pricing_state(POLICY, "m1", None, [], now).member.tier == "vip"
    a.cancel("t1", now)
    assert b.pricing_state(POLICY, "m1", None, [], now).member.available_points == 5


def test_cached_quotes_equal_uncached_ones_as_time_passes(two):
    a, b = two
    enrol(a, "m1")
    for k in range(5):
        checkout(a, f"t{k}", BASKET_1, "m1", at=T0 + k * 3 * DAY)
    # pending -> available -> expired, read through the cache and straight from the rows
    for days in (0, 1, 7, 8, 15, 30, 400, 800, 1200):
        now = T0 + timedelta(days=days)
        for store in (a, b):
            got = store.pricing_state(POLICY, "m1", None, ["PANADOL-SWITCH"], now)
            assert got == uncached(store, "m1", now), days


def test_an_unknown_member_is_not_found_and_the_cache_is_bounded(tmp_path):
    from engine.errors import NotFound

    store = EmbeddedStore(tmp_path)
    store._quotes = cache = QuoteCache(size=3)
    try:
        with pytest.raises(NotFound):
            store.pricing_state(POLICY, "nobody", None, [], T0)
        for k in range(5):
            enrol(store, f"m{k}")
            store.pricing_state(POLICY, f"m{k}", None, [], T0)
        assert len(cache) == 3
    finally:
        store.close()
