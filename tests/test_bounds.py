"""Values a request may carry but the service does not take: INVALID_ARGUMENT naming the field.

Timestamps outside 0001-01-02 .. 9999-12-30 UTC (read in a rule set's time zone they would leave
what a datetime holds) or with nanos outside 0..999,999,999, and points adjustments beyond a
billion in magnitude (a balance must stay far inside int64). Each used to answer INTERNAL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import polars as pl
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from engine.errors import LoyaltyError
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
from server.store import Consent, MemberProfile, Store, open_store
from server.store.points import MAX_POINTS
from server.store.policy import Policy

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


def test_the_last_day_inside_the_range_is_priced(tmp_path):
    # a server whose clock reads the last second of 9999-12-30 (the server's clock prices)
    last = Timestamp(seconds=253_402_214_399)
    server, port, app = create_server(
        Settings(port=0, data_dir=tmp_path, metrics_port=0),
        clock=lambda: last.ToDatetime(tzinfo=UTC),
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            campaigns_pb2_grpc.CampaignServiceStub(ch).PublishRuleSet(
                campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES))
            )
            members_pb2_grpc.MemberServiceStub(ch).UpsertMember(
                members_pb2.UpsertMemberRequest(member_id="m1")
            )
            checkout = checkout_pb2_grpc.CheckoutServiceStub(ch)
            assert checkout.Evaluate(basket(last), timeout=30).discount_minor == 10
    finally:
        server.stop(None)
        app.close()


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
        ("ListOffers", members_pb2.ListOffersRequest(member_id="m1", store_id=LONG), "store_id"),
        ("ListOffers", members_pb2.ListOffersRequest(member_id="m1", channel=LONG), "channel"),
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


def test_a_commit_names_the_basket_total_under_basket(stubs):
    checkout, _, _ = stubs
    req = checkout_pb2.EvaluateRequest(member_id="m1")
    for k in range(3):  # 3 x 10,000 x 1,000,000.00: over the 2,000,000,000 a basket may total
        req.lines.add(line_id=str(k), sku="A", quantity=10_000, unit_price_minor=100_000_000)
    assert refused(checkout.Evaluate, req) == ["lines"]
    commit = checkout_pb2.CommitRequest(transaction_id="t-gross", basket=req)
    assert refused(checkout.Commit, commit) == ["basket.lines"]


def test_very_many_bad_fields_still_answer_invalid_argument(stubs):
    # every one of 5,000 empty ids is a violation; all of them would not fit in the trailers a
    # client takes (8 KiB), which it would report as RESOURCE_EXHAUSTED
    _, members, _ = stubs
    request_ = members_pb2.IssueCouponsRequest(
        issue_id="many", offer_id="p", member_ids=[""] * 5_000, uses=1, valid_until=SOON
    )
    fields = refused(members.IssueCoupons, request_)
    assert fields[:3] == ["member_ids[0]", "member_ids[1]", "member_ids[2]"]
    assert 3 < len(fields) < 5_000


POINTS = {"point_value_minor": 1, "earn_per_amount_minor": 100, "redeem_step_points": 1}


@pytest.mark.parametrize(
    ("points", "field"),
    [
        ({"pending_days": 3_651}, "points.pending_days"),
        ({"pending_days": 2**31 - 1}, "points.pending_days"),
        ({"expiry_months": 1_201}, "points.expiry_months"),
        ({"expiry_months": 2**31 - 1}, "points.expiry_months"),
    ],
)
def test_points_dates_past_what_a_datetime_holds_are_refused(stubs, points, field):
    # these were published, then every commit earning points answered INTERNAL
    _, _, campaigns = stubs
    rules = parse_rules({**RULES, "points": {**POINTS, **points}})
    assert refused(campaigns.PublishRuleSet, campaigns_pb2.PublishRuleSetRequest(rules=rules)) == [
        field
    ]


def test_the_longest_points_dates_allowed_can_be_computed():
    rules = parse_rules(
        {**RULES, "points": {**POINTS, "pending_days": 3_650, "expiry_months": 1_200}}
    )
    available, expires = Policy.from_rules(rules).earned_lot_times(datetime.now(UTC))
    assert expires is not None and available < expires


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: setattr(o, "name", "n" * 129), "offers[0].name"),
        (lambda o: setattr(o, "description", "d" * 1025), "offers[0].description"),
        (lambda o: o.scope.skus.append(LONG), "offers[0].scope.skus[0]"),
        (lambda o: o.conditions.channels.append(LONG), "offers[0].conditions.channels[0]"),
        (lambda o: setattr(o.stacking, "group", LONG), "offers[0].stacking.group"),
    ],
)
def test_rule_set_names_and_text_are_bounded(stubs, change, field):
    _, _, campaigns = stubs
    rules = parse_rules(RULES)
    change(rules.offers[0])
    reply = campaigns.ValidateRuleSet(campaigns_pb2.ValidateRuleSetRequest(rules=rules), timeout=30)
    assert [p.field for p in reply.problems] == [field]
    assert refused(campaigns.PublishRuleSet, campaigns_pb2.PublishRuleSetRequest(rules=rules)) == [
        field
    ]


def _parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd")
    return buf.getvalue()


# 2,000,000 equal rows in a few kilobytes: read whole they would take hundreds of megabytes
MANY_ROWS = _parquet(pl.select(pl.repeat("SKU-0001", 2_000_000).alias("sku")))
LONG_HISTORY = _parquet(pl.select(pl.repeat(1, 6_000_000, dtype=pl.Int64).alias("seq")))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (campaigns_pb2.ImportCatalogueRequest(parquet=MANY_ROWS), "parquet"),
        (
            campaigns_pb2.ImportCatalogueRequest(
                rows=campaigns_pb2.CatalogueRows(
                    items=[rules_pb2.CatalogueItem(sku="A", brand=LONG)]
                )
            ),
            "rows.items[0].brand",
        ),
        (campaigns_pb2.ImportCatalogueRequest(csv=f"sku\nA\n{LONG}\n".encode()), "csv"),
    ],
)
def test_catalogues_are_bounded(stubs, request_, field):
    _, _, campaigns = stubs
    assert refused(campaigns.ImportCatalogue, request_) == [field]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (campaigns_pb2.SimulateRequest(history_parquet=LONG_HISTORY), "history_parquet"),
        (campaigns_pb2.SimulateRequest(assume_coupons=["p"] * 31), "assume_coupons"),
        (campaigns_pb2.SimulateRequest(assume_coupons=["p", LONG]), "assume_coupons[1]"),
        (campaigns_pb2.SimulateRequest(assume_coupons=[""]), "assume_coupons[0]"),
    ],
)
def test_simulation_inputs_are_bounded(stubs, request_, field):
    _, _, campaigns = stubs
    request_.rules.CopyFrom(parse_rules(RULES))
    assert refused(campaigns.Simulate, request_) == [field]


# ---- balances inside int64 ----------------------------------------------------------------------
# AdjustPoints takes at most 10^9 points a call and a commit earns at most some 10^13 per bonus
# offer, but nothing caps what they add up to: 2^62 here stands for 4.6 billion AdjustPoints(+10^9)
# or a few hundred 1,000-line commits under a rule set of many stacking bonus offers. The store
# must refuse what would leave int64 (FAILED_PRECONDITION) and the member must stay readable.

INT64_MAX = 2**63 - 1
NOW = datetime(2025, 3, 12, 4, 0, tzinfo=UTC)


@pytest.fixture(params=["embedded", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "redis":
        s = open_store("redis", url=request.getfixturevalue("redis_url"))
    else:
        s = open_store("embedded", data_dir=tmp_path / "data")
    s.upsert_member(
        MemberProfile("m1", "", frozenset(), 0, 0, NOW.date(), Consent(False, False, False)), NOW
    )
    yield s
    s.close()


@pytest.mark.parametrize("later", [None, datetime(2030, 1, 1, tzinfo=UTC)], ids=["one lot", "two"])
def test_points_beyond_int64_are_refused_and_the_member_stays_usable(store, later):
    store.adjust_points("a1", "m1", MAX_POINTS - 5, "goodwill", NOW)
    with pytest.raises(LoyaltyError) as info:  # not OverflowError, not stored
        store.adjust_points("a2", "m1", 6, "goodwill", NOW, expires_at=later)
    assert info.value.code == code_pb2.FAILED_PRECONDITION
    assert "more than the 1,000,000,000,000,000" in str(info.value)
    store.adjust_points("a2b", "m1", 5, "goodwill", NOW, expires_at=later)  # up to the bound
    record = store.get_member("m1", NOW)
    assert record.points_available + record.points_pending == MAX_POINTS <= INT64_MAX
    store.adjust_points("a3", "m1", -1, "correction", NOW)  # and it still takes changes
    assert store.get_member("m1", NOW).points_available == MAX_POINTS - 1


def test_a_debt_beyond_the_bound_is_refused(store):
    with pytest.raises(LoyaltyError) as info:
        store.adjust_points("d1", "m1", -(MAX_POINTS + 1), "x", NOW, allow_negative=True)
    assert info.value.code == code_pb2.FAILED_PRECONDITION
    assert store.get_member("m1", NOW).points_available == 0
