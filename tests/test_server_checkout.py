"""CheckoutService and MemberService over real gRPC on port 0, on each store (embedded, Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

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
from server.settings import Settings

T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai

# docs/design.md §4.3 plus a vendor-funded single-use coupon and a budgeted offer
RULES = {
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "points": {
        "point_value_minor": 10,
        "earn_per_amount_minor": 1000,
        "pending_days": 7,
        "expiry_months": 12,
        "redeem_step_points": 1,
        "max_redeem_share_bps": 5000,
    },
    "tiers": [
        {"id": "member", "earn_multiplier_bps": 10000},
        {"id": "vip", "qualify_spend_minor": 100000, "earn_multiplier_bps": 10000},
    ],
    "offers": [
        {
            "id": "vip-skincare",
            "scope": {"categories": ["skincare"]},
            "conditions": {"tiers": ["vip"]},
            "stacking": {"priority": 10},
            "percent_off": {"percent_bps": 2000},
        },
        {
            "id": "cola-3for2",
            "scope": {"skus": ["COLA"]},
            "stacking": {"priority": 20},
            "buy_x_get_y": {"buy": 2, "get": 1, "percent_bps": 10000},
        },
        {
            "id": "spend-ladder",
            "scope": {"all": True},
            "stacking": {"priority": 100},
            "spend_tiers": {
                "steps": [
                    {"threshold_minor": 10000, "amount_minor": 1000},
                    {"threshold_minor": 20000, "amount_minor": 3000},
                ]
            },
        },
        {
            "id": "rice-coupon",
            "activation": "COUPON",
            "scope": {"skus": ["RICE"]},
            "stacking": {"priority": 30},
            "funding": {"funder_id": "cofco", "funded_share_bps": 10000},
            "amount_off": {"amount_minor": 500},
        },
        {
            "id": "tea-budget",
            "scope": {"skus": ["TEA"]},
            "limits": {"budget_minor": 1000},
            "amount_off": {"amount_minor": 300},
        },
    ],
}
CATALOGUE = [("CREAM", "skincare"), ("COLA", "drinks"), ("RICE", "grocery"), ("TEA", "drinks")]


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def on_store(settings: Settings, request) -> Settings:
    """``settings`` on the store ``request.param`` names: embedded, the shared test Redis
    (flushed), or the shared test cluster under a key prefix of its own."""
    if request.param == "redis":
        return settings.replace(store="redis", redis_url=request.getfixturevalue("redis_url"))
    if request.param == "cluster":
        return settings.replace(
            store="redis",
            redis_url=request.getfixturevalue("redis_cluster").url,
            redis_cluster=True,
            redis_prefix=f"p{uuid.uuid4().hex[:8]}:",
        )
    return settings.replace(store=request.param)


@pytest.fixture(params=["embedded", "redis"])
def shop(tmp_path, request):
    """A published server, its stubs, and its clock."""
    yield from running_shop(tmp_path, request)


def running_shop(tmp_path, request):
    """:func:`shop` on the store ``request.param`` names (a module's own ``shop`` fixture may
    name more stores)."""
    clock = Clock(T0)
    servers = []
    settings = on_store(Settings(port=0, data_dir=tmp_path / "data"), request)

    def start():
        server, port, app = create_server(settings, clock=clock)
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        servers.append((server, channel, app))
        stubs = Stubs(channel)
        stubs.app = app  # the store, for what no RPC does yet (creating codes)
        return stubs

    stubs = start()
    stubs.campaigns.ImportCatalogue(
        campaigns_pb2.ImportCatalogueRequest(
            rows=campaigns_pb2.CatalogueRows(
                items=[rules_pb2.CatalogueItem(sku=s, category=c) for s, c in CATALOGUE]
            )
        )
    )
    stubs.campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES)))
    stubs.members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="vip1", tier="vip"))

    def restart():
        for server, channel, app in servers:
            channel.close()
            server.stop(None).wait()
            app.close()
        servers.clear()
        return start()

    stubs.clock, stubs.restart = clock, restart
    yield stubs
    for server, channel, app in servers:
        channel.close()
        server.stop(None).wait()
        app.close()


@contextmanager
def published(
    tmp_path,
    request,
    rules: Mapping[str, Any],
    catalogue: Sequence[tuple[str, str]] = CATALOGUE,
    members: Sequence[tuple[str, str]] = (),
) -> Iterator[Stubs]:
    """A server on port 0 on the store ``request.param`` names, on a test clock at T0, with
    ``catalogue`` (sku, category) imported, ``rules`` published and ``members`` (id, tier)
    enrolled: its stubs, with ``.app``, ``.clock`` and ``.target``."""
    clock = Clock(T0)
    settings = on_store(Settings(port=0, data_dir=tmp_path / "data"), request)
    server, port, app = create_server(settings, clock=clock)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stubs = Stubs(channel)
    stubs.app, stubs.clock, stubs.target = app, clock, f"127.0.0.1:{port}"
    try:
        stubs.campaigns.ImportCatalogue(
            campaigns_pb2.ImportCatalogueRequest(
                rows=campaigns_pb2.CatalogueRows(
                    items=[rules_pb2.CatalogueItem(sku=s, category=c) for s, c in catalogue]
                )
            )
        )
        stubs.campaigns.PublishRuleSet(
            campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(rules))
        )
        for member_id, tier in members:
            stubs.members.UpsertMember(
                members_pb2.UpsertMemberRequest(member_id=member_id, tier=tier)
            )
        yield stubs
    finally:
        channel.close()
        server.stop(None).wait()
        app.close()


class Stubs:
    def __init__(self, channel):
        self.channel = channel
        self.checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
        self.members = members_pb2_grpc.MemberServiceStub(channel)
        self.campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)

    def member(self, member_id: str = "vip1") -> members_pb2.Member:
        return self.members.GetMember(members_pb2.GetMemberRequest(member_id=member_id))


def basket(
    member_id: str = "vip1", lines=None, codes=(), redeem: int = 0, at: datetime | None = T0
) -> checkout_pb2.EvaluateRequest:
    """A basket sold at ``at`` (None: no occurred_at, the server's clock; for servers on a
    real clock, since the server refuses a lane time off its own by more than the skew)."""
    req = checkout_pb2.EvaluateRequest(
        member_id=member_id,
        store_id="s1",
        channel="pos",
        coupon_codes=list(codes),
        redeem_points=redeem,
    )
    if at is not None:
        req.occurred_at.FromDatetime(at)
    for line_id, sku, qty, price in lines or [
        ("L1", "CREAM", 2, 5990),
        ("L2", "COLA", 3, 350),
        ("L3", "RICE", 1, 4500),
    ]:
        req.lines.add(line_id=line_id, sku=sku, quantity=qty, unit_price_minor=price)
    return req


def commit(stubs, txn: str, req=None, **kw) -> checkout_pb2.CommitResponse:
    return stubs.checkout.Commit(
        checkout_pb2.CommitRequest(transaction_id=txn, basket=req or basket(), **kw)
    )


def lane_commit(stubs, txn: str, req, tries: int = 5) -> checkout_pb2.CommitResponse:
    """``commit`` as a checkout lane makes it: ``ABORTED`` (the member or a limit kept changing
    under the store's own attempts, which a slow machine with many lanes can reach) is asked
    again with the same transaction id, as the error says."""
    for _ in range(tries - 1):
        try:
            return commit(stubs, txn, req)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ABORTED:
                raise
    return commit(stubs, txn, req)


def issue_rice_coupon(stubs) -> members_pb2.IssueCouponsResponse:
    """One single-use rice coupon into vip1's wallet, valid around T0 (idempotent: issue i1)."""
    issue = members_pb2.IssueCouponsRequest(
        issue_id="i1", offer_id="rice-coupon", member_ids=["vip1"], uses=1
    )
    issue.valid_until.FromDatetime(T0 + timedelta(days=30))
    issue.valid_from.FromDatetime(T0 - timedelta(days=1))
    return stubs.members.IssueCoupons(issue)


def violations(exc: grpc.RpcError) -> list[str]:
    detail = error_details_pb2.BadRequest()
    rpc_status.from_call(exc).details[0].Unpack(detail)
    return [v.field for v in detail.field_violations]


def test_the_worked_example_through_evaluate(shop):
    r = shop.checkout.Evaluate(basket())
    assert [ln.net_minor for ln in r.lines] == [8936, 653, 4195]
    assert (r.net_minor, r.points_earned, r.points_pending) == (13784, 13, True)
    assert [(d.offer_id, d.amount_minor) for d in r.lines[2].discounts] == [("spend-ladder", 305)]
    assert r.ruleset_version == 1


def test_commit_then_the_member_balance(shop):
    reply = commit(shop, "t1")
    assert reply.result.points_earned == 13 and reply.member.pending_points == 13
    assert shop.member().available_points == 0
    # pending points become spendable at the end of the local day pending_days end on
    shop.clock.now = T0 + timedelta(days=8)
    assert shop.member().available_points == 13


def test_fifty_retries_of_one_commit_have_one_effect(shop):
    replies = [commit(shop, "same") for _ in range(50)]
    assert all(r.result == replies[0].result for r in replies)
    assert shop.member().pending_points == 13


def test_the_same_id_with_another_basket_is_already_exists(shop):
    commit(shop, "t1")
    with pytest.raises(grpc.RpcError) as exc:
        commit(shop, "t1", basket(lines=[("L1", "COLA", 1, 350)]))
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_cancel_restores_points_coupons_and_budget(shop):
    shop.members.AdjustPoints(
        members_pb2.AdjustPointsRequest(
            adjustment_id="a1", member_id="vip1", points=500, reason="goodwill"
        )
    )
    issue_rice_coupon(shop)
    req = basket(lines=[("L1", "RICE", 1, 4500), ("L2", "TEA", 3, 500)], redeem=-1)
    first = commit(shop, "t1", req)
    assert {o.offer_id for o in first.result.offers} == {"rice-coupon", "tea-budget"}
    assert first.result.points_redeemed > 0
    shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t1"))
    member = shop.member()
    assert member.available_points == 500 and member.pending_points == 0
    assert [c.uses_left for c in member.wallet] == [1]
    # and the budget is whole again: the same basket gets the same discounts
    again = commit(shop, "t2", req)
    assert again.result.discount_minor == first.result.discount_minor


def test_partial_then_full_return_claws_back_exactly(shop):
    reply = commit(shop, "t1", basket(lines=[("L1", "CREAM", 3, 5990)]))
    line = reply.result.lines[0]
    r1 = shop.checkout.Return(
        checkout_pb2.ReturnRequest(
            return_id="r1",
            transaction_id="t1",
            lines=[checkout_pb2.ReturnLine(line_id="L1", quantity=1)],
        )
    )
    r2 = shop.checkout.Return(
        checkout_pb2.ReturnRequest(
            return_id="r2",
            transaction_id="t1",
            lines=[checkout_pb2.ReturnLine(line_id="L1", quantity=2)],
        )
    )
    assert r1.refund_minor + r2.refund_minor == line.net_minor - line.points_tender_minor
    assert r1.points_clawed_back + r2.points_clawed_back == line.points_earned
    assert r1.refund_minor == (line.net_minor - line.points_tender_minor) // 3
    assert shop.member().pending_points == 0
    with pytest.raises(grpc.RpcError) as exc:
        shop.checkout.Return(
            checkout_pb2.ReturnRequest(
                return_id="r3",
                transaction_id="t1",
                lines=[checkout_pb2.ReturnLine(line_id="L1", quantity=1)],
            )
        )
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_concurrent_commits_never_overspend_points_or_a_single_use_coupon(shop):
    shop.members.AdjustPoints(
        members_pb2.AdjustPointsRequest(
            adjustment_id="a1", member_id="vip1", points=300, reason="goodwill"
        )
    )
    issue_rice_coupon(shop)
    req = basket(lines=[("L1", "RICE", 1, 4500)], redeem=100)
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda k: lane_commit(shop, f"lane-{k}", req), range(24)))
    coupon_uses = sum(1 for r in replies for o in r.result.offers if o.offer_id == "rice-coupon")
    burned = sum(r.result.points_redeemed for r in replies)
    assert coupon_uses == 1
    assert burned <= 300 and shop.member().available_points == 300 - burned >= 0


def test_a_budget_is_never_exceeded_under_concurrent_commits(shop):
    req = basket(member_id="", lines=[("L1", "TEA", 1, 500)])
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda k: lane_commit(shop, f"tea-{k}", req), range(20)))
    given = sum(
        o.discount_minor for r in replies for o in r.result.offers if o.offer_id == "tea-budget"
    )
    assert given == 1000  # budget 1000 = three full 300s and a last 100


def test_points_expire_by_lot(shop):
    commit(shop, "t1")
    shop.clock.now = T0 + timedelta(days=8)
    assert shop.member().available_points == 13
    shop.clock.now = T0 + timedelta(days=7 + 366)
    assert shop.member().available_points == 0


def test_rollback_prices_with_the_earlier_version(shop):
    changed = dict(RULES, offers=[o for o in RULES["offers"] if o["id"] != "spend-ladder"])
    shop.campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(changed)))
    assert shop.checkout.Evaluate(basket()).net_minor == 14784
    shop.campaigns.ActivateRuleSet(campaigns_pb2.ActivateRuleSetRequest(version=1))
    reply = shop.checkout.Evaluate(basket())
    assert (reply.net_minor, reply.ruleset_version) == (13784, 1)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: setattr(r.lines[0], "unit_price_minor", -1), "lines[0].unit_price_minor"),
        (lambda r: setattr(r.lines[1], "quantity", 0), "lines[1].quantity"),
        (lambda r: setattr(r.lines[1], "line_id", "L1"), "lines[1].line_id"),
        (lambda r: setattr(r.lines[0], "sku", ""), "lines[0].sku"),
        (lambda r: r.ClearField("lines"), "lines"),
        (
            lambda r: r.lines.extend(
                [
                    checkout_pb2.Line(line_id=f"x{k}", sku="COLA", quantity=1, unit_price_minor=1)
                    for k in range(10_001)
                ]
            ),
            "lines",
        ),
    ],
)
def test_bad_baskets_are_invalid_argument_naming_the_field(shop, mutate, field):
    req = basket()
    mutate(req)
    with pytest.raises(grpc.RpcError) as exc:
        shop.checkout.Evaluate(req)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(exc.value)
    assert shop.checkout.Evaluate(basket()).net_minor == 13784  # still serving


def test_an_unknown_coupon_is_reported_on_evaluate_and_refused_on_commit(shop):
    quote = shop.checkout.Evaluate(basket(codes=["NOPE"]))
    assert quote.coupons[0].status == checkout_pb2.CouponResult.INVALID
    with pytest.raises(grpc.RpcError) as exc:
        commit(shop, "t1", basket(codes=["NOPE"]))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == ["basket.coupon_codes[0]"]


def test_garbage_bytes_are_invalid_argument_and_the_server_keeps_serving(shop):
    raw = shop.channel.unary_unary(
        "/loyalty.v1.CheckoutService/Evaluate",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as exc:
        raw(b"\xff\xff\xff\xff garbage")
    assert exc.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL)
    assert shop.checkout.Evaluate(basket()).net_minor == 13784


def test_commit_without_an_id_or_a_basket_names_the_field(shop):
    with pytest.raises(grpc.RpcError) as exc:
        shop.checkout.Commit(checkout_pb2.CommitRequest(basket=basket()))
    assert violations(exc.value) == ["transaction_id"]
    with pytest.raises(grpc.RpcError) as exc:
        shop.checkout.Commit(checkout_pb2.CommitRequest(transaction_id="t"))
    assert violations(exc.value) == ["basket"]


def test_data_survives_a_server_restart(shop):
    commit(shop, "t1")
    stubs = shop.restart()
    member = stubs.member()
    assert member.pending_points == 13 and member.tier == "vip"
    assert stubs.checkout.Evaluate(basket()).ruleset_version == 1
    again = stubs.checkout.Commit(checkout_pb2.CommitRequest(transaction_id="t1", basket=basket()))
    assert again.result.points_earned == 13
    assert stubs.member().pending_points == 13  # the retry after restart had no effect


def test_shopping_list_shows_wallet_coupons_first(shop):
    assert issue_rice_coupon(shop).issued == 1
    assert issue_rice_coupon(shop).issued == 1  # a retry issues nothing new
    offers = shop.members.ListOffers(members_pb2.ListOffersRequest(member_id="vip1")).offers
    assert [(o.offer_id, o.source) for o in offers] == [
        ("rice-coupon", "wallet"),
        ("vip-skincare", "member"),
    ]
    assert offers[0].expected_saving_minor == 500


def test_unknown_member_is_not_found(shop):
    with pytest.raises(grpc.RpcError) as exc:
        shop.member("ghost")
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


def statuses(result: checkout_pb2.EvaluateResponse) -> list[tuple[str, int]]:
    return [(c.code, c.status) for c in result.coupons]


def rice_codes(shop, *codes: str) -> None:
    shop.app.store.create_codes(
        "rice-coupon", list(codes), 1, False, T0 - timedelta(days=1), T0 + timedelta(days=30)
    )


S = checkout_pb2.CouponResult


def test_a_code_beside_a_wallet_coupon_of_its_offer_is_not_needed_and_stays_unused(shop):
    # given a member holding a rice coupon who also presents a one-use rice code
    issue_rice_coupon(shop)
    rice_codes(shop, "RICE-1")
    req = basket(codes=["RICE-1"])
    # the wallet coupon is the one used; the code is not needed, on the quote and the commit
    assert statuses(shop.checkout.Evaluate(req)) == [("RICE-1", S.NOT_NEEDED)]
    done = commit(shop, "t-wallet", req)
    assert statuses(done.result) == [("RICE-1", S.NOT_NEEDED)]
    assert [c.uses_left for c in shop.member().wallet] == []  # the wallet coupon is spent
    # and the code is still there for the next customer, once
    guest = basket(member_id="", codes=["RICE-1"])
    assert statuses(shop.checkout.Evaluate(guest)) == [("RICE-1", S.APPLIED)]
    assert statuses(commit(shop, "t-guest", guest).result) == [("RICE-1", S.APPLIED)]
    assert statuses(shop.checkout.Evaluate(guest)) == [("RICE-1", S.USED_UP)]


def test_of_two_codes_of_one_offer_the_first_is_used_and_the_second_not_needed(shop):
    rice_codes(shop, "R-A", "R-B")
    done = commit(shop, "t-two", basket(codes=["R-A", "R-B", "R-A"]))
    assert statuses(done.result) == [
        ("R-A", S.APPLIED),
        ("R-B", S.NOT_NEEDED),
        ("R-A", S.NOT_NEEDED),
    ]
    guest = basket(member_id="", codes=["R-A", "R-B"])
    assert statuses(shop.checkout.Evaluate(guest)) == [("R-A", S.USED_UP), ("R-B", S.APPLIED)]


def test_a_cancel_retried_says_it_was_already_cancelled(shop):
    commit(shop, "t-c", basket())
    cancel = checkout_pb2.CancelRequest(transaction_id="t-c")
    first = shop.checkout.Cancel(cancel)
    shop.clock.now = T0 + timedelta(seconds=5)  # a retry, a moment later
    again = shop.checkout.Cancel(cancel)
    assert first.status == checkout_pb2.CancelResponse.CANCELLED
    assert again.status == checkout_pb2.CancelResponse.ALREADY_CANCELLED
    assert again.member == first.member  # and nothing was given back twice
