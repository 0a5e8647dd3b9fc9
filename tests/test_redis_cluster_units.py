"""Unit-capped offers on a real Redis Cluster (the shared ``redis_cluster``): each offer's
units hash is its own slot and a commit holds its units there before it applies in the
member's home slot (server.store.redis.unit_scripts.HOLD). The gRPC behaviour (caps, per-store
caps, reservations, cancels) runs on the cluster through ``tests/test_reservations.py``'s
``cluster`` param; this file holds the race and what is particular to the cluster."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.store import MemberProfile
from server.store.redis import homes
from server.store.redis.reservations import Hold
from server.store.redis.store import RedisStore
from server.store.units import to_us
from tests import test_reservations as R


@pytest.fixture
def store(cluster_store: RedisStore) -> RedisStore:
    return cluster_store


def test_a_thousand_racing_commits_sell_exactly_the_cap_on_a_cluster(store: RedisStore) -> None:
    """100 units, 30 of them reserved for holders: 1,000 commits on 16 threads sell exactly
    70 to others and 30 to the holders, as on a single Redis."""
    R.test_a_thousand_racing_commits_sell_exactly_the_cap(store)
    k = store.keys
    assert store.client.hget(k.units("limited"), "sold") == b"100"
    assert store.client.hget(k.units("limited"), "p+:sold") in (None, b"0")  # none held


def test_units_live_in_their_own_slot_and_a_cancel_gives_them_back_once(
    store: RedisStore,
) -> None:
    k = store.keys
    assert k.units("limited") == k.counter("u:limited")
    store.upsert_member(MemberProfile("b1", tier=""), R.NOW)
    assert R._buy(store, "c1", "b1") == 1
    assert store.pricing_state(R.RACE_POLICY, None, None, (), R.NOW).units["limited"].sold == 1
    for _ in range(2):  # a repeated cancel gives nothing back twice
        store.cancel("c1", R.NOW)
        assert store.pricing_state(R.RACE_POLICY, None, None, (), R.NOW).units["limited"].sold == 0


def test_a_swept_commit_gives_its_holders_reserved_units_back(store: RedisStore) -> None:
    """A commit that reserved its holder's units and died before applying: the sweep
    releases them, and the holder's reservation is whole again."""
    store.upsert_member(MemberProfile("h1", tier=""), R.NOW)
    store.issue_coupons(
        "r1",
        "limited",
        ["h1"],
        1,
        R.NOW - timedelta(days=1),
        R.NOW + timedelta(days=1),
        R.NOW,
        reserve_units=2,
        reserve_until=R.NOW + timedelta(hours=1),
        units_cap=100,
    )
    res = homes.reservations(store.io)
    hold = Hold("u:limited", (), (1, 100, "", 0, "h1", to_us(R.NOW)))
    res.register(["u:limited"])
    res.reserve("dead#1", store.keys.home("h1"), [hold], 0)  # past its deadline at once
    raw = store.client.hget(store.keys.units("limited"), "r:r1:h1")
    assert raw is not None and raw.decode().split("|")[1] == "1"  # taken by the commit
    assert homes.sweep(store.io) == {"dead#1": "x"}
    raw = store.client.hget(store.keys.units("limited"), "r:r1:h1")
    assert raw is not None and raw.decode().split("|")[1] == "2"  # given back
    assert homes.sweep(store.io) == {}
