"""The commit plan and the loop every store shares (server/store/plan.py, checkout.py), and the
stored forms of outcomes: what the previous version wrote (JSON) is still read.

Each test runs on both stores. A race is made deterministic by changing the store between a
commit's read and its apply (a wrapped ``apply_commit``), never by timing.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

import engine
from engine.errors import AlreadyExists, FailedPrecondition
from engine.pricing.types import Basket
from server.store import (
    CommitOutcome,
    EmbeddedStore,
    LedgerEntry,
    PriceFn,
    PricingState,
    Store,
)
from server.store.base import CommitPlan, CommitSnapshot
from server.store.checkout import commit
from server.store.plan import plan_commit
from server.store.points import MAX_POINTS
from server.store.redis.store import RedisStore
from tests.legacy_forms import as_json, old_entry, plain
from tests.store_fixtures import (
    BASKET_1,
    COMPILED,
    DAY,
    PANADOL,
    POLICY,
    T0,
    basket,
    checkout,
    enrol,
)


@pytest.fixture(params=["embedded", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "redis":
        s = RedisStore(request.getfixturevalue("redis_url"))
    else:
        s = EmbeddedStore(tmp_path / "data")
    yield s
    s.close()


def _price(redeem: int = 0) -> tuple[Basket, PriceFn]:
    """The contract basket and a pricing function of it, as the Commit servicer prices."""
    b = basket(BASKET_1)

    def price(state: PricingState) -> engine.PricingResult:
        return engine.price(
            COMPILED,
            b,
            state.member,
            coupons=state.coupons,
            redeem_points=redeem,
            limits=state.limits,
        )

    return b, price


def test_a_plan_leaves_its_snapshot_as_read(store: Store) -> None:
    enrol(store, "m1")
    store.adjust_points("a", "m1", 300, "welcome", T0 - DAY)
    b, price = _price(redeem=100)
    snap = store.commit_snapshot(POLICY, "tx-1", "m1", [], T0)
    assert snap.member is not None
    before = [dataclasses.replace(x) for x in snap.member.lots]
    plan = plan_commit(snap, price(snap.state), POLICY, T0, b, [], "tx-1", "fp")
    assert snap.member.lots == before
    assert plan.member is not None and sum(x.points for x in plan.member.burned) == 100
    assert plan.outcome.points_available_after == 200
    assert plan.entry.kind == "commit" and list(plan.entry.lines) == list(plan.outcome.lines)


def test_an_apply_on_moved_state_is_refused_and_the_loop_prices_again(store: Store) -> None:
    """Points adjusted between the read and the apply: the first plan is refused (nothing
    written), the second is made on the new balance."""
    enrol(store, "m1")
    store.adjust_points("a", "m1", 300, "welcome", T0 - DAY)
    real = store.apply_commit
    replies: list[bool] = []

    def racing(snapshot: CommitSnapshot, plan: CommitPlan) -> bool:
        if not replies:
            store.adjust_points("b", "m1", 50, "meanwhile", T0)
        replies.append(real(snapshot, plan))
        return replies[-1]

    store.apply_commit = racing  # type: ignore[method-assign]
    b, price = _price(redeem=-1)  # as many points as the programme lets the member spend
    done = commit(store, "tx-1", "fp", price, T0, policy=POLICY, basket=b, member_id="m1")
    assert replies == [False, True]
    assert done.applied and done.priced == 2
    after = store.get_member("m1", T0).points_available
    assert after == done.outcome.points_available_after == 350 - done.outcome.points_redeemed
    assert [e.kind for e in store.ledger()] == ["adjust", "adjust", "commit"]


def test_a_commit_applied_meanwhile_under_the_same_id_is_answered_not_applied_twice(
    store: Store,
) -> None:
    enrol(store, "m1")
    b, price = _price()
    real = store.apply_commit
    first = checkout(store, "tx-0", BASKET_1, "m1")  # the member's version moves on

    def lost(snapshot: CommitSnapshot, plan: CommitPlan) -> bool:
        store.apply_commit = real  # type: ignore[method-assign]
        assert real(snapshot, plan)  # another lane with the same id gets there first
        return real(snapshot, plan)

    store.apply_commit = lost  # type: ignore[method-assign]
    done = commit(store, "tx-1", "fp", price, T0, policy=POLICY, basket=b, member_id="m1")
    assert not done.applied and done.state is None
    assert done.outcome.points_earned == first.points_earned
    assert [e.kind for e in store.ledger()] == ["commit", "commit"]
    with pytest.raises(AlreadyExists):
        commit(store, "tx-1", "other", price, T0, policy=POLICY, basket=b, member_id="m1")


# ---------------------------------------------------------------------------------------------
# Transactions stored by the previous version (JSON outcomes)


def _old_pack(outcome: CommitOutcome) -> str:
    """How version 0.2 kept an outcome in a Redis document."""
    return base64.b64encode(zlib.compress(as_json(outcome).encode(), 6)).decode("ascii")


def _make_old(store: Store, transaction_id: str, outcome: CommitOutcome) -> None:
    """Rewrite a committed transaction, and the ledger, as the previous version stored them."""
    if isinstance(store, EmbeddedStore):
        with sqlite3.connect(store.path) as db:
            db.execute(
                "UPDATE transactions SET outcome = ? WHERE transaction_id = ?",
                (as_json(outcome), transaction_id),
            )
            for seq, body in db.execute("SELECT seq, body FROM ledger").fetchall():
                entry = LedgerEntry.FromString(body)
                db.execute(
                    "UPDATE ledger SET body = ? WHERE seq = ?",
                    (as_json(old_entry(entry, iso=True)), seq),
                )
        return
    assert isinstance(store, RedisStore)
    key = store.keys.tx(transaction_id)
    raw = store.client.get(key)
    version, _, body = raw.partition(b"|")
    doc = msgspec.msgpack.decode(body)
    doc["o"] = _old_pack(outcome)
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    store.client.set(key, version + b"|" + text.encode(), keepttl=True)


def test_an_old_transaction_is_retried_returned_and_cancelled(store: Store) -> None:
    enrol(store, "m1")
    store.adjust_points("a", "m1", 300, "welcome", T0 - DAY)
    store.create_codes("panadol-coupon", ["PAN-1"], 1, False, T0 - DAY, T0 + DAY)
    lines = (*BASKET_1, PANADOL)
    out = checkout(store, "tx-1", lines, "m1", codes=["PAN-1"], redeem=100)
    _make_old(store, "tx-1", out)
    assert checkout(store, "tx-1", lines, "m1", codes=["PAN-1"], redeem=100) == out  # retry
    ret = store.return_lines("r-1", "tx-1", [("2", 1)], T0 + DAY)
    assert ret.lines[0].quantity == 1 and ret.refund_minor > 0
    cancelled = store.cancel("tx-1", T0 + DAY)
    assert cancelled.offers_released == tuple(u.offer_id for u in out.offers)
    assert store.cancel("tx-1", T0 + 2 * DAY) == cancelled
    m = store.get_member("m1", T0 + DAY)
    assert (m.points_available, m.points_pending, m.points_debt) == (300, 0, 0)
    assert [e.kind for e in store.ledger()] == ["adjust", "commit", "return", "cancel"]
    assert list(store.ledger()[1].lines) == list(out.lines)


def test_an_old_cancelled_redis_transaction_answers_its_stored_cancel(redis_url: str) -> None:
    """The previous version kept a cancel's outcome in the Redis document as a plain map."""
    store = RedisStore(redis_url)
    try:
        _old_cancel_is_answered(store)
    finally:
        store.close()


def _old_cancel_is_answered(store: RedisStore) -> None:
    enrol(store, "m1")
    out = checkout(store, "tx-1", BASKET_1, "m1")
    cancelled = store.cancel("tx-1", T0 + DAY)
    key = store.keys.tx("tx-1")
    version, _, body = store.client.get(key).partition(b"|")
    doc = msgspec.msgpack.decode(body)
    doc["o"], doc["co"] = _old_pack(out), plain(cancelled, iso=True)
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    store.client.set(key, version + b"|" + text.encode(), keepttl=True)
    assert store.cancel("tx-1", T0 + 2 * DAY) == cancelled


def test_a_commit_that_would_hold_more_than_the_bound_is_refused(store: Store) -> None:
    # given a member holding all but a point of what a member may hold
    enrol(store, "m1")
    store.adjust_points("a", "m1", MAX_POINTS - 1, "migration", T0 - DAY)
    # when a basket that earns points commits, it is refused and nothing is written
    b, price = _price()
    with pytest.raises(FailedPrecondition, match="more than the 1,000,000,000,000,000"):
        commit(store, "tx-1", "fp", price, T0, policy=POLICY, basket=b, member_id="m1")
    record = store.get_member("m1", T0)
    assert (record.points_available, record.points_pending) == (MAX_POINTS - 1, 0)
    assert [e.kind for e in store.ledger()] == ["adjust"]
    # and once the member spends, the same basket commits
    store.adjust_points("b", "m1", -1000, "spent", T0)
    assert commit(store, "tx-1", "fp", price, T0, policy=POLICY, basket=b, member_id="m1").applied
