"""Values a request may carry but the service does not take: INVALID_ARGUMENT naming the field.

Timestamps outside 0001-01-02 .. 9999-12-30 UTC (read in a rule set's time zone they would leave
what a datetime holds) or with nanos outside 0..999,999,999, and points adjustments beyond a
billion in magnitude (a balance must stay far inside int64). Each used to answer INTERNAL.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
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
)
from server.api.app import create_server
from server.settings import Settings

RULES = {
    "timezone": "Asia/Shanghai",  # UTC+8: 9999-12-31T16:00Z is year 10000 there
    "offers": [{"id": "p", "scope": {"all": True}, "percent_off": {"percent_bps": 1000}}],
}
LATE = Timestamp(seconds=253_402_300_799 - 8 * 3600 + 1)  # 9999-12-31T16:00:00Z
EARLY = Timestamp(seconds=-62_135_596_800)  # 0001-01-01T00:00:00Z
HUGE = Timestamp(seconds=2**63 - 1)


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    data = tmp_path_factory.mktemp("bounds")
    server, port, app = create_server(Settings(port=0, data_dir=data, metrics_port=0))
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        campaigns_pb2_grpc.CampaignServiceStub(ch).PublishRuleSet(
            campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES))
        )
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(ch)
        members = members_pb2_grpc.MemberServiceStub(ch)
        members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="m1"))
        yield checkout_pb2_grpc.CheckoutServiceStub(ch), members, campaigns
    server.stop(None)
    app.close()


def refused(call, request) -> list[str]:
    """The fields an INVALID_ARGUMENT answer names."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    status = rpc_status.from_call(info.value)
    assert status is not None
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        fields += [v.field for v in bad.field_violations]
    return fields


def basket(at: Timestamp) -> checkout_pb2.EvaluateRequest:
    req = checkout_pb2.EvaluateRequest(member_id="m1", occurred_at=at)
    req.lines.add(line_id="1", sku="A", quantity=1, unit_price_minor=100)
    return req


@pytest.mark.parametrize(
    "at", [LATE, EARLY, HUGE, Timestamp(seconds=0, nanos=-1), Timestamp(nanos=10**9)]
)
def test_a_basket_time_out_of_range_names_occurred_at(stubs, at):
    checkout, _, _ = stubs
    assert refused(checkout.Evaluate, basket(at)) == ["occurred_at"]
    commit = checkout_pb2.CommitRequest(transaction_id="t1", basket=basket(at))
    assert refused(checkout.Commit, commit) == ["basket.occurred_at"]


def test_the_last_day_inside_the_range_is_priced(stubs):
    checkout, _, _ = stubs
    reply = checkout.Evaluate(basket(Timestamp(seconds=253_402_214_399)), timeout=30)
    assert reply.discount_minor == 10


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("ListOffers", members_pb2.ListOffersRequest(member_id="m1", at=EARLY), "at"),
        (
            "ListOffers",
            members_pb2.ListOffersRequest(member_id="m1", at=Timestamp(nanos=-5)),
            "at",
        ),
        (
            "UpsertMember",
            members_pb2.UpsertMemberRequest(member_id="m2", enrolled_at=HUGE),
            "enrolled_at",
        ),
        (
            "IssueCoupons",
            members_pb2.IssueCouponsRequest(
                issue_id="i",
                offer_id="p",
                member_ids=["m1"],
                uses=1,
                valid_until=Timestamp(seconds=1, nanos=10**9),
            ),
            "valid_until",
        ),
        (
            "AdjustPoints",
            members_pb2.AdjustPointsRequest(
                adjustment_id="a", member_id="m1", points=2**63 - 1, reason="r"
            ),
            "points",
        ),
        (
            "AdjustPoints",
            members_pb2.AdjustPointsRequest(
                adjustment_id="b", member_id="m1", points=-(2**63), reason="r"
            ),
            "points",
        ),
    ],
)
def test_member_requests_out_of_range_name_the_field(stubs, method, request_, field):
    _, members, _ = stubs
    assert refused(getattr(members, method), request_) == [field]
    # and the member stays usable
    assert members.GetMember(members_pb2.GetMemberRequest(member_id="m1"), timeout=30)


LONG = "x" * 129
SOON = Timestamp(seconds=1_900_000_000)  # 2030


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: setattr(r, "channel", LONG), "channel"),
        (lambda r: r.coupon_codes.append(LONG), "coupon_codes[0]"),
        (lambda r: setattr(r.lines[0], "category", LONG), "lines[0].category"),
        (lambda r: setattr(r.lines[0], "brand", LONG), "lines[0].brand"),
        (lambda r: setattr(r.lines[0], "vendor", LONG), "lines[0].vendor"),
    ],
)
def test_every_string_of_a_basket_is_at_most_128_characters(stubs, change, field):
    checkout, _, _ = stubs
    req = basket(Timestamp(seconds=1_800_000_000))
    change(req)
    assert refused(checkout.Evaluate, req) == [field]
    commit = checkout_pb2.CommitRequest(transaction_id="t-long", basket=req)
    assert refused(checkout.Commit, commit) == [f"basket.{field}"]


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("UpsertMember", members_pb2.UpsertMemberRequest(member_id=LONG), "member_id"),
        ("UpsertMember", members_pb2.UpsertMemberRequest(member_id="m3", tier=LONG), "tier"),
        (
            "UpsertMember",
            members_pb2.UpsertMemberRequest(member_id="m3", segments=["a", LONG]),
            "segments[1]",
        ),
        (
            "UpsertMember",
            members_pb2.UpsertMemberRequest(member_id="m3", segments=["s"] * 257),
            "segments",
        ),
        (
            "UpsertMember",
            members_pb2.UpsertMemberRequest(member_id="m3", birthday_month=2, birthday_day=31),
            "birthday_day",
        ),
        ("GetMember", members_pb2.GetMemberRequest(member_id=LONG), "member_id"),
        ("ListOffers", members_pb2.ListOffersRequest(member_id=LONG), "member_id"),
        (
            "IssueCoupons",
            members_pb2.IssueCouponsRequest(
                issue_id=LONG, offer_id="p", member_ids=["m1"], uses=1, valid_until=SOON
            ),
            "issue_id",
        ),
        (
            "IssueCoupons",
            members_pb2.IssueCouponsRequest(
                issue_id="i2", offer_id="p", member_ids=["m1", ""], uses=1, valid_until=SOON
            ),
            "member_ids[1]",
        ),
        (
            "AdjustPoints",
            members_pb2.AdjustPointsRequest(
                adjustment_id="c", member_id="m1", points=5, reason="r" * 1025
            ),
            "reason",
        ),
    ],
)
def test_member_ids_and_text_are_bounded(stubs, method, request_, field):
    _, members, _ = stubs
    assert refused(getattr(members, method), request_) == [field]


def test_a_leap_day_birthday_is_a_date(stubs):
    _, members, _ = stubs
    reply = members.UpsertMember(
        members_pb2.UpsertMemberRequest(member_id="m4", birthday_month=2, birthday_day=29),
        timeout=30,
    )
    assert (reply.birthday_month, reply.birthday_day) == (2, 29)


def test_publishing_needs_a_rule_set_and_a_short_note(stubs):
    _, _, campaigns = stubs
    assert refused(campaigns.PublishRuleSet, campaigns_pb2.PublishRuleSetRequest()) == ["rules"]
    long_note = campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES), note="n" * 1025)
    assert refused(campaigns.PublishRuleSet, long_note) == ["note"]
