"""Idempotent answers are the stored answers (issue 17, item 7), on each store.

A retried Cancel says ALREADY_CANCELLED because the store answered from its stored outcome (not
because the clock moved) and repeats the original reversal; a retried Return answers exactly
its stored response, whatever happened to the member in between; a member in points debt is
shown with the debt counted once by GetMember, AdjustPoints and every checkout summary.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine.pricing.rules import parse_rules
from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2
from server.store import CancelOutcome, EmbeddedStore, ReturnOutcome, Store
from server.store.redis.store import RedisStore
from server.store.stored import decode_cancel, decode_return, encode_reversal
from tests import store_fixtures as sf
from tests.legacy_forms import as_json, as_msgpack, plain
from tests.test_server_checkout import RULES, T0, Stubs, basket, commit, published

DAY = timedelta(days=1)
NEW_FIELDS = ("points_available_after", "points_pending_after", "tier_after", "repeated")


@pytest.fixture(params=["embedded", "redis"])
def shop(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stubs]:
    """A published server on port 0, its stubs (``.clock`` moves its time), member vip1."""
    with published(tmp_path, request, RULES, members=[("vip1", "vip")]) as stubs:
        yield stubs


@pytest.fixture(params=["embedded", "redis"])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    s: Store = (
        EmbeddedStore(tmp_path / "data")
        if request.param == "embedded"
        else RedisStore(request.getfixturevalue("redis_url"))
    )
    yield s
    s.close()


def at(stubs: Stubs, when: datetime) -> None:
    """Move the server's clock; baskets sent afterwards are stamped with the same time."""
    stubs.clock.now = when


def adjust(stubs: Stubs, adjustment_id: str, points: int) -> members_pb2.Member:
    return stubs.members.AdjustPoints(
        members_pb2.AdjustPointsRequest(
            adjustment_id=adjustment_id, member_id="vip1", points=points, reason="goodwill"
        )
    )


def give_back(stubs: Stubs, return_id: str, txn: str, *lines: tuple[str, int]):
    return stubs.checkout.Return(
        checkout_pb2.ReturnRequest(
            return_id=return_id,
            transaction_id=txn,
            lines=[checkout_pb2.ReturnLine(line_id=i, quantity=q) for i, q in lines],
        )
    )


def wire(msg) -> bytes:
    return msg.SerializeToString(deterministic=True)


def but_status(resp: checkout_pb2.CancelResponse) -> bytes:
    """The response's bytes with the status cleared: what a retry must repeat exactly."""
    copy = checkout_pb2.CancelResponse()
    copy.CopyFrom(resp)
    copy.ClearField("status")
    return wire(copy)


def with_points(stubs: Stubs) -> None:
    """vip1 holds 500 spendable points."""
    adjust(stubs, "a0", 500)


# ---------------------------------------------------------------------------------------------
# Debt shown once


def test_a_member_in_debt_is_shown_with_the_debt_once_everywhere(shop):
    # given vip1 earned 13 points, which became spendable a week later
    earned = commit(shop, "t1")
    assert earned.result.points_earned == 13 and earned.member.pending_points == 13
    later = T0 + 8 * DAY
    at(shop, later)
    assert shop.member().available_points == 13
    # and spent 10 of them
    spent = commit(shop, "t2", basket(lines=[("L1", "COLA", 1, 350)], redeem=10, at=later))
    assert spent.result.points_redeemed == 10
    assert spent.member.available_points == shop.member().available_points == 3
    # when the first basket comes back whole: 13 points clawed back, 3 left to take them from
    ret = give_back(shop, "r1", "t1", ("L1", 2), ("L2", 3), ("L3", 1))
    assert ret.points_clawed_back == 13
    # then the member owes 10, and the Return's summary, GetMember and the full member agree
    assert ret.member.available_points == -10
    member = shop.member()
    assert member.available_points == -10 and member.pending_points == 0
    # and a +3 adjustment repays 3 of the 10: AdjustPoints answers -7, and so does GetMember
    assert adjust(shop, "a1", 3).available_points == -7
    assert shop.member().available_points == -7
    # and the Return retried still answers the balances it left (-10), not today's
    assert give_back(shop, "r1", "t1", ("L1", 2), ("L2", 3), ("L3", 1)) == ret
    # and cancelling the spend gives the 10 points tender back, which pays the rest of the debt
    cancel = shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t2"))
    assert cancel.points_tender_returned == 10
    assert cancel.member.available_points == shop.member().available_points == 3
    assert adjust(shop, "a2", 1).available_points == 4


def test_upsert_member_shows_the_debt_once(shop):
    # given vip1 owes 10 points (as above, in short)
    commit(shop, "t1")
    later = T0 + 8 * DAY
    at(shop, later)
    commit(shop, "t2", basket(lines=[("L1", "COLA", 1, 350)], redeem=10, at=later))
    give_back(shop, "r1", "t1", ("L1", 2), ("L2", 3), ("L3", 1))
    # when the profile is written again, the member it answers has the same balance
    again = shop.members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="vip1", tier="vip"))
    assert again.available_points == shop.member().available_points == -10


# ---------------------------------------------------------------------------------------------
# Cancel: a retry says so, with the original reversal


def test_a_cancel_answers_with_its_reversal(shop):
    with_points(shop)
    first = commit(shop, "t1", basket(redeem=50))
    assert first.result.points_redeemed == 50 and first.result.points_earned > 0
    reply = shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t1"))
    assert reply.status == checkout_pb2.CancelResponse.CANCELLED
    assert reply.refund_minor == first.result.payable_minor
    assert reply.points_clawed_back == first.result.points_earned
    assert reply.points_tender_returned == 50
    assert [(ln.line_id, ln.quantity) for ln in reply.lines] == [("L1", 2), ("L2", 3), ("L3", 1)]
    assert sum(ln.refund_minor for ln in reply.lines) == reply.refund_minor
    assert sum(ln.points_tender_returned for ln in reply.lines) == 50
    assert (reply.member.available_points, reply.member.pending_points) == (500, 0)
    assert reply.member.tier == "vip"


def test_a_cancel_after_a_return_reverses_only_the_rest(shop):
    first = commit(shop, "t1")
    ret = give_back(shop, "r1", "t1", ("L2", 3))
    reply = shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t1"))
    assert [(ln.line_id, ln.quantity) for ln in reply.lines] == [("L1", 2), ("L3", 1)]
    assert ret.refund_minor + reply.refund_minor == first.result.payable_minor
    assert ret.points_clawed_back + reply.points_clawed_back == first.result.points_earned


def test_a_cancel_retried_later_repeats_the_original_reversal(shop):
    with_points(shop)
    commit(shop, "t1", basket(redeem=50))
    cancel = checkout_pb2.CancelRequest(transaction_id="t1")
    first = shop.checkout.Cancel(cancel)
    # when the member's balance changes and the lane retries a day later
    at(shop, T0 + DAY)
    adjust(shop, "a1", 7)
    again = shop.checkout.Cancel(cancel)
    # then it says so, and repeats the first answer exactly, balances included
    assert first.status == checkout_pb2.CancelResponse.CANCELLED
    assert again.status == checkout_pb2.CancelResponse.ALREADY_CANCELLED
    assert but_status(again) == but_status(first)
    assert again.member.available_points == 500 and shop.member().available_points == 507


def test_a_cancel_retried_at_the_same_instant_still_says_already_cancelled(shop):
    # the frozen clock reads the same microsecond for both calls: the store decides, not time
    commit(shop, "t1")
    cancel = checkout_pb2.CancelRequest(transaction_id="t1")
    first = shop.checkout.Cancel(cancel)
    again = shop.checkout.Cancel(cancel)
    assert first.status == checkout_pb2.CancelResponse.CANCELLED
    assert again.status == checkout_pb2.CancelResponse.ALREADY_CANCELLED
    assert but_status(again) == but_status(first)


def test_twenty_concurrent_cancels_one_cancels_the_rest_say_already(shop):
    with_points(shop)
    commit(shop, "t1", basket(redeem=50))
    barrier = threading.Barrier(20, timeout=30)

    def cancel(_: int) -> checkout_pb2.CancelResponse:
        barrier.wait()
        return shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t1"))

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(cancel, range(20)))
    statuses = [r.status for r in replies]
    assert statuses.count(checkout_pb2.CancelResponse.CANCELLED) == 1
    assert statuses.count(checkout_pb2.CancelResponse.ALREADY_CANCELLED) == 19
    assert len({but_status(r) for r in replies}) == 1
    assert replies[0].points_tender_returned == 50
    # and the reversal happened once: the 50 points came back once
    assert shop.member().available_points == 500


def test_a_guest_cancel_has_no_member(shop):
    commit(shop, "g1", basket(member_id=""))
    first = shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="g1"))
    again = shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="g1"))
    assert not first.HasField("member") and first.refund_minor > 0
    assert again.status == checkout_pb2.CancelResponse.ALREADY_CANCELLED
    assert but_status(again) == but_status(first)


# ---------------------------------------------------------------------------------------------
# Return: a retry is the stored response


def test_a_commit_retried_after_the_rules_and_balance_changed_answers_the_same_bytes(shop):
    """The store keeps a commit's answer with its outcome: a retry is not rendered again from
    today's rule set (offer names, version, points pending) or today's balances."""
    with_points(shop)
    first = commit(shop, "t1", basket(redeem=50))
    assert first.result.offers and first.member.available_points == 450
    # when a new rule set renames the offers and earns points at once, the member's points
    # change and the clock moves on before the lane retries
    renamed = json.loads(json.dumps(RULES))
    for offer in renamed["offers"]:
        offer["name"] = f"renamed {offer['id']}"
    renamed["points"]["pending_days"] = 0
    shop.campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(renamed)))
    at(shop, T0 + 2 * DAY)
    adjust(shop, "a1", -100)
    fresh = commit(shop, "t2", basket(lines=[("L1", "CREAM", 1, 9900)], at=T0 + 2 * DAY))
    assert fresh.result.ruleset_version != first.result.ruleset_version
    assert fresh.result.offers[0].name.startswith("renamed")
    again = commit(shop, "t1", basket(redeem=50))
    # then the retry is the first answer, byte for byte
    assert wire(again) == wire(first)


def test_a_return_retried_after_the_balance_changed_answers_the_same_bytes(shop):
    with_points(shop)
    commit(shop, "t1", basket(redeem=50))
    first = give_back(shop, "r1", "t1", ("L1", 1), ("L3", 1))
    assert first.member.available_points > 450 and first.points_tender_returned > 0
    # when the member's points change and the clock moves before the lane retries
    at(shop, T0 + 2 * DAY)
    adjust(shop, "a1", -100)
    commit(shop, "t2", basket(lines=[("L1", "RICE", 1, 4500)], at=T0 + 2 * DAY))
    assert shop.member().available_points != first.member.available_points
    again = give_back(shop, "r1", "t1", ("L1", 1), ("L3", 1))
    # then the retry is the first answer, byte for byte
    assert wire(again) == wire(first)


def test_concurrent_return_retries_answer_the_same_bytes(shop):
    commit(shop, "t1")
    barrier = threading.Barrier(10, timeout=30)

    def ret(_: int) -> bytes:
        barrier.wait()
        return wire(give_back(shop, "r1", "t1", ("L1", 1)))

    with ThreadPoolExecutor(10) as pool:
        replies = set(pool.map(ret, range(10)))
    assert len(replies) == 1
    assert shop.member().pending_points == commit(shop, "t1").result.points_earned - (
        give_back(shop, "r1", "t1", ("L1", 1)).points_clawed_back
    )


# ---------------------------------------------------------------------------------------------
# The stores: what they keep and mark


def test_the_stores_mark_a_retry_and_keep_the_balances(store: Store):
    sf.enrol(store, "m1")
    sf.checkout(store, "tx-1", sf.BASKET_1, "m1")
    sf.checkout(store, "tx-2", sf.BASKET_1, "m1")
    ret = store.return_lines("r-1", "tx-1", [("2", 1)], sf.T0 + DAY)
    member = store.get_member("m1", sf.T0 + DAY)
    assert not ret.repeated
    assert (ret.points_available_after, ret.points_pending_after, ret.tier_after) == (
        member.points_available,
        member.points_pending,
        member.tier,
    )
    again = store.return_lines("r-1", "tx-1", [("2", 1)], sf.T0 + 2 * DAY)
    assert again.repeated and again == ret
    cancelled = store.cancel("tx-2", sf.T0 + 2 * DAY)
    member = store.get_member("m1", sf.T0 + 2 * DAY)
    assert not cancelled.repeated
    assert (cancelled.points_available_after, cancelled.points_pending_after) == (
        member.points_available,
        member.points_pending,
    )
    retried = store.cancel("tx-2", sf.T0 + 2 * DAY)  # the very same instant
    assert retried.repeated and retried == cancelled


def test_a_guest_reversal_keeps_no_balances(store: Store):
    sf.checkout(store, "g-1", sf.BASKET_1)
    out = store.cancel("g-1", sf.T0)
    assert (out.points_available_after, out.points_pending_after, out.tier_after) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("cls", [CancelOutcome, ReturnOutcome])
def test_outcomes_stored_before_the_balances_were_kept_still_decode(store: Store, cls):
    # given an outcome as it is stored now
    sf.enrol(store, "m1")
    sf.checkout(store, "tx-1", sf.BASKET_1, "m1")
    outcome = (
        store.cancel("tx-1", sf.T0)
        if cls is CancelOutcome
        else store.return_lines("r-1", "tx-1", [("2", 1)], sf.T0)
    )
    # when it is stored without the fields added since (msgpack and the older JSON form)
    packed, text = plain(outcome, iso=False), plain(outcome, iso=True)
    for old in (packed, text):
        for name in NEW_FIELDS:
            old.pop(name, None)
    decode = decode_cancel if cls is CancelOutcome else decode_return
    decoded = [decode(as_msgpack(packed)), decode(as_json(text))]
    # then it decodes with the balances unknown and everything else as it was
    for d in decoded:
        assert (d.points_available_after, d.points_pending_after, d.tier_after) == (None,) * 3
        assert not d.repeated
        assert d.lines == outcome.lines and d.refund_minor == outcome.refund_minor
    # and the form stored now gives back an equal outcome
    assert decode(encode_reversal(outcome)) == outcome
