"""The server's clock prices; offline lanes sync through SyncOffline (server/api/clock.py).

Over real gRPC on port 0, on each store, with a clock the test moves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

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
from server.analytics.ledger import export_ledger
from server.api.app import create_server
from server.settings import Settings
from server.store.stored import entry_at, entry_lane_at, entry_recorded_at
from tests.test_server_checkout import Clock, violations

FRIDAY_LATE = datetime(2026, 11, 20, 23, 58, tzinfo=UTC)  # Friday 23:58 (the zone is UTC)
SATURDAY = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 47 hours after SATURDAY

RULES = {
    "currency": "CNY",
    "timezone": "UTC",
    "points": {
        "point_value_minor": 10,
        "earn_per_amount_minor": 100,
        "pending_days": 7,
        "expiry_months": 12,
        "redeem_step_points": 1,
        "max_redeem_share_bps": 5000,
    },
    "tiers": [{"id": "member", "earn_multiplier_bps": 10000}],
    "offers": [
        {
            "id": "weekend",
            "scope": {"skus": ["BREAD"]},
            "conditions": {"weekdays": [6, 7]},
            "percent_off": {"percent_bps": 1000},
        },
        {
            "id": "tea-coupon",
            "activation": "COUPON",
            "scope": {"skus": ["TEA"]},
            "amount_off": {"amount_minor": 100},
        },
        {
            "id": "milk-daily",
            "scope": {"skus": ["MILK"]},
            "limits": {"per_member": 1, "per_member_period": "DAY"},
            "amount_off": {"amount_minor": 50},
        },
    ],
}
LINES = [("L1", "BREAD", 1, 1000), ("L2", "TEA", 1, 500), ("L3", "MILK", 1, 300)]
SYNC_KEYS = {"k-lane": "checkout", "k-sync": "offline-sync"}


@pytest.fixture(params=["embedded", "redis"])
def lane(tmp_path, request):
    clock = Clock(FRIDAY_LATE)
    settings = Settings(port=0, data_dir=tmp_path / "data", store=request.param)
    if request.param == "redis":
        settings = settings.replace(redis_url=request.getfixturevalue("redis_url"))
    server, port, app = create_server(settings, clock=clock)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
    campaigns.ImportCatalogue(
        campaigns_pb2.ImportCatalogueRequest(
            rows=campaigns_pb2.CatalogueRows(
                items=[
                    rules_pb2.CatalogueItem(sku=s, category="food")
                    for s in ("BREAD", "TEA", "MILK")
                ]
            )
        )
    )
    campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES)))
    members = members_pb2_grpc.MemberServiceStub(channel)
    members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="m1"))
    # a tea coupon valid on Saturday only
    issue = members_pb2.IssueCouponsRequest(
        issue_id="i1", offer_id="tea-coupon", member_ids=["m1"], uses=1
    )
    issue.valid_from.FromDatetime(SATURDAY - timedelta(hours=10))
    issue.valid_until.FromDatetime(SATURDAY + timedelta(hours=14))
    members.IssueCoupons(issue)
    lane = checkout_pb2_grpc.CheckoutServiceStub(channel)
    lane.clock, lane.app, lane.members = clock, app, members
    yield lane
    channel.close()
    server.stop(None).wait()
    app.close()


def basket(at: datetime | None) -> checkout_pb2.EvaluateRequest:
    req = checkout_pb2.EvaluateRequest(member_id="m1", store_id="s1", channel="pos")
    if at is not None:
        req.occurred_at.FromDatetime(at)
    for line_id, sku, qty, price in LINES:
        req.lines.add(line_id=line_id, sku=sku, quantity=qty, unit_price_minor=price)
    return req


def offers(result: checkout_pb2.EvaluateResponse) -> list[str]:
    return sorted(o.offer_id for o in result.offers)


def sync(lane, txn: str, at: datetime | None, **kw) -> checkout_pb2.SyncOfflineResponse:
    return lane.SyncOffline(
        checkout_pb2.SyncOfflineRequest(
            commit=checkout_pb2.CommitRequest(transaction_id=txn, basket=basket(at))
        ),
        **kw,
    )


def test_the_servers_clock_prices_a_lane_within_the_skew(lane):
    # given the server's clock at Friday 23:58 and a lane 4 minutes ahead (Saturday 00:02)
    ahead = FRIDAY_LATE + timedelta(minutes=4)
    # when the lane quotes and commits
    quote = lane.Evaluate(basket(ahead))
    done = lane.Commit(checkout_pb2.CommitRequest(transaction_id="t1", basket=basket(ahead)))
    # then both are priced on Friday: no weekend discount, and the daily milk offer counts
    # against Friday's limit
    assert offers(quote) == offers(done.result) == ["milk-daily"]
    assert quote.payable_minor == done.result.payable_minor == 1000 + 500 + 250
    # and the ledger records the server's time, the lane's and the rule-set version
    (entry,) = lane.app.store.ledger()
    assert (entry_at(entry), entry_recorded_at(entry)) == (FRIDAY_LATE, FRIDAY_LATE)
    assert (entry_lane_at(entry), entry.ruleset_version) == (ahead, 1)


@pytest.mark.parametrize("shift", [timedelta(minutes=6), timedelta(minutes=-6)])
def test_a_lane_clock_beyond_the_skew_is_refused_naming_the_field(lane, shift):
    for call, req, field in (
        (lane.Evaluate, basket(FRIDAY_LATE + shift), "occurred_at"),
        (
            lane.Commit,
            checkout_pb2.CommitRequest(transaction_id="t1", basket=basket(FRIDAY_LATE + shift)),
            "basket.occurred_at",
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call(req)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(err.value) == [field]
        hint = "SyncOffline" if shift < timedelta(0) else "lane's clock"
        assert hint in err.value.details()
    # a year-9999 Saturday cannot buy weekend prices either
    with pytest.raises(grpc.RpcError) as err:
        lane.Evaluate(basket(datetime(9999, 1, 2, tzinfo=UTC)))
    assert violations(err.value) == ["occurred_at"]
    assert lane.app.store.ledger() == []


def test_a_retry_of_a_recorded_commit_is_answered_however_late(lane):
    req = checkout_pb2.CommitRequest(transaction_id="t1", basket=basket(FRIDAY_LATE))
    first = lane.Commit(req)
    lane.clock.now = FRIDAY_LATE + timedelta(hours=2)  # the lane retries after a long outage
    assert lane.Commit(req) == first


def test_an_offline_basket_is_priced_at_the_lanes_time(lane):
    # given the server on Monday and a lane syncing a basket it sold on Saturday
    lane.clock.now = MONDAY
    synced = sync(lane, "off-1", SATURDAY, metadata=None).commit
    # then Saturday priced it: the weekend discount, the tea coupon valid on Saturday only
    assert offers(synced.result) == ["milk-daily", "tea-coupon", "weekend"]
    assert synced.result.payable_minor == 900 + 400 + 250
    # and its points count from Saturday: pending until the end of the 7th day after the sale
    m = lane.members.GetMember(members_pb2.GetMemberRequest(member_id="m1"))
    (lot,) = m.lots
    assert lot.earned_at.ToDatetime(tzinfo=UTC) == SATURDAY
    assert lot.available_at.ToDatetime(tzinfo=UTC) == datetime(2026, 11, 29, tzinfo=UTC)
    # and the ledger says when it was sold, when it was recorded, and which rules priced it
    (entry,) = lane.app.store.ledger()
    assert (entry_at(entry), entry_recorded_at(entry), entry_lane_at(entry)) == (
        SATURDAY,
        MONDAY,
        SATURDAY,
    )
    assert entry.ruleset_version == 1
    # which the export carries
    row = export_ledger(lane.app.store, now=MONDAY).row(0, named=True)
    assert (row["at"], row["recorded_at"], row["lane_at"]) == (SATURDAY, MONDAY, SATURDAY)
    assert row["ruleset_version"] == 1
    # and the same basket online on Monday gets none of Saturday's prices (the daily milk
    # offer is Monday's, so it applies again)
    quote = lane.Evaluate(basket(MONDAY))
    assert offers(quote) == ["milk-daily"]


def test_an_offline_sync_needs_a_lane_time_within_the_offline_age(lane):
    lane.clock.now = MONDAY
    cases = [
        (None, "is required"),
        (MONDAY - timedelta(hours=72, seconds=1), "older than 72 h"),
        (MONDAY + timedelta(minutes=6), "ahead of the server's clock"),
    ]
    for at, message in cases:
        with pytest.raises(grpc.RpcError) as err:
            sync(lane, "off-1", at)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(err.value) == ["commit.basket.occurred_at"]
        assert message in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        lane.SyncOffline(checkout_pb2.SyncOfflineRequest())
    assert violations(err.value) == ["commit"]
    assert lane.app.store.ledger() == []
    # exactly at the limit is still taken
    sync(lane, "off-2", MONDAY - timedelta(hours=72))


def test_the_skew_and_the_offline_age_are_settings(tmp_path):
    settings = Settings(port=0, data_dir=tmp_path / "d", max_skew_s=0, offline_max_age_s=3600)
    clock = Clock(FRIDAY_LATE)
    server, port, app = create_server(settings, clock=clock)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
            campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES)))
            stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
            req = basket(FRIDAY_LATE + timedelta(seconds=1))
            req.member_id = ""
            with pytest.raises(grpc.RpcError) as err:
                stub.Evaluate(req)
            assert violations(err.value) == ["occurred_at"]
            req.occurred_at.FromDatetime(FRIDAY_LATE)
            assert stub.Evaluate(req).gross_minor == 1800
            old = checkout_pb2.CommitRequest(transaction_id="t", basket=req)
            old.basket.occurred_at.FromDatetime(FRIDAY_LATE - timedelta(hours=2))
            with pytest.raises(grpc.RpcError) as err:
                stub.SyncOffline(checkout_pb2.SyncOfflineRequest(commit=old))
            assert "older than 1 h" in err.value.details()
    finally:
        server.stop(None).wait()
        app.close()


def test_only_the_offline_sync_role_may_sync(tmp_path):
    settings = Settings(port=0, data_dir=tmp_path / "d", api_keys=SYNC_KEYS | {"k": "admin"})
    clock = Clock(MONDAY)
    server, port, app = create_server(settings, clock=clock)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            campaigns_pb2_grpc.CampaignServiceStub(channel).PublishRuleSet(
                campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES)),
                metadata=(("x-api-key", "k"),),
            )
            stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
            req = basket(SATURDAY)
            req.member_id = ""
            offline = checkout_pb2.SyncOfflineRequest(
                commit=checkout_pb2.CommitRequest(transaction_id="t", basket=req)
            )
            with pytest.raises(grpc.RpcError) as err:
                stub.SyncOffline(offline, metadata=(("x-api-key", "k-lane"),))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            done = stub.SyncOffline(offline, metadata=(("x-api-key", "k-sync"),))
            assert offers(done.commit.result) == ["milk-daily", "weekend"]
    finally:
        server.stop(None).wait()
        app.close()
