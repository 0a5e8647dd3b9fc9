"""The checkout protocol through the client against a real demo server."""

from __future__ import annotations

import grpc
import pytest
from harness import FAST, FlakyProxy, LoyaltyServer, for_member, member_points, tx

from loyalty.v1 import checkout_pb2
from loyalty_client import CheckoutClient, RetriesExhausted


def test_evaluate_prices_the_sample_basket_without_side_effects(client, basket):
    before = member_points(client.channel, "M10004")
    quote = client.evaluate(basket)
    assert quote.ruleset_version >= 1
    assert [line.line_id for line in quote.lines] == ["1", "2", "3", "4"]
    assert quote.gross_minor == 2 * 5990 + 3 * 350 + 2680 + 10000
    assert quote.payable_minor == quote.net_minor - quote.points_tender_minor
    assert client.evaluate(basket) == quote  # a pure quote: the same again
    assert member_points(client.channel, "M10004") == before


def test_commit_under_the_same_id_twice_gives_the_stored_result_and_applies_once(client, basket):
    basket = for_member(basket, "M10011")
    quote = client.evaluate(basket)
    before = member_points(client.channel, "M10011")
    t = tx()
    first = client.commit(t, basket, expected_payable_minor=quote.payable_minor)
    after = member_points(client.channel, "M10011")
    again = client.commit(t, basket, expected_payable_minor=quote.payable_minor)
    assert again == first
    assert not first.changed_from_quote
    assert first.result.payable_minor == quote.payable_minor
    assert after - before == first.result.points_earned - first.result.points_redeemed
    assert member_points(client.channel, "M10011") == after  # the repeat applied nothing


def test_another_basket_under_a_used_id_is_already_exists_and_not_retried(
    server: LoyaltyServer, proxy: FlakyProxy, basket
):
    with CheckoutClient.connect(proxy.target, retry=FAST) as client:
        t = tx()
        client.commit(t, basket)
        other = for_member(basket, "M10012")
        with pytest.raises(grpc.RpcError) as caught:
            client.commit(t, other)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert not isinstance(caught.value, RetriesExhausted)
    assert proxy.count("Commit") == 2  # one each: ALREADY_EXISTS is final


def test_bad_input_is_raised_at_once_with_the_servers_status(proxy: FlakyProxy, basket):
    bad = for_member(basket, "M10004")
    bad.lines[0].quantity = 0
    with CheckoutClient.connect(proxy.target, retry=FAST) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.commit(tx(), bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "lines[0].quantity" in (caught.value.details() or "")
    assert proxy.count("Commit") == 1


def test_cancel_and_return_are_idempotent(client, basket):
    basket = for_member(basket, "M10013")
    t = tx()
    done = client.commit(t, basket)
    cola = next(line for line in done.result.lines if line.line_id == "2")
    returned = client.return_lines(tx("R"), t, {"2": 1})
    r = tx("R")
    first = client.return_lines(r, t, [("2", 1)])
    assert client.return_lines(r, t, [checkout_pb2.ReturnLine(line_id="2", quantity=1)]) == first
    assert returned.lines[0].quantity == first.lines[0].quantity == 1
    assert returned.refund_minor + first.refund_minor <= cola.net_minor
    with pytest.raises(grpc.RpcError) as over:
        client.return_lines(tx("R"), t, {"2": 2})  # 3 bought, 2 back already
    assert over.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    cancelled = client.cancel(t)
    assert cancelled.transaction_id == t
    assert cancelled.status == checkout_pb2.CancelResponse.CANCELLED
    again = client.cancel(t)  # repeating it is harmless, and says so
    assert again.status == checkout_pb2.CancelResponse.ALREADY_CANCELLED
    assert again.member == cancelled.member
    with pytest.raises(grpc.RpcError) as late:
        client.return_lines(tx("R"), t, {"1": 1})
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_empty_ids_are_refused_before_sending(client, basket):
    for call in (
        lambda: client.commit("", basket),
        lambda: client.cancel(" "),
        lambda: client.return_lines("", "T-1", {"1": 1}),
    ):
        with pytest.raises(ValueError):
            call()
