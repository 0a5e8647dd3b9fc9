"""The demo (``server.cli.demo.load_demo`` + ``server.cli.demo_features``) shows the newer
programme features, on every store (a Redis Cluster too), through the gRPC API: member-bound
coupon codes, a unit-capped offer with reservations, the fortnightly VIP Gold fragrance
special, and pricing by shopping-list id; and the commands the ``serve --demo`` banner prints
work as printed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
)
from server.api.app import create_server
from server.cli import demo_features as F
from server.cli.demo import DEMO_NOW, demo_members, load_demo
from server.settings import Settings
from tests.test_server_checkout import Clock, on_store

MEMBERS = 200  # enough for 20 VIP Gold holders and 10 bound codes
PROFILES = demo_members(MEMBERS)
GUEST, OTHER = "", "M10001"  # M10001: tier "member", no reservation, no bound code
ON = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # Tuesday 11:00 in Shanghai, a week it runs
OFF = ON + timedelta(days=7)  # the Tuesday after: the other week
SAVED = F.PRICE[F.GIFT_SET] - 9900  # the gift set's saving per unit
Status = checkout_pb2.CouponResult


class Demo:
    """The demo's server: its clock, its app and stubs."""

    def __init__(self, channel: grpc.Channel, app: Any, clock: Clock) -> None:
        self.app, self.clock = app, clock
        self.checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)  # type: ignore[no-untyped-call]
        self.members = members_pb2_grpc.MemberServiceStub(channel)  # type: ignore[no-untyped-call]
        self.campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)  # type: ignore[no-untyped-call]

    def member(self, member_id: str) -> members_pb2.Member:
        found: members_pb2.Member = self.members.GetMember(
            members_pb2.GetMemberRequest(member_id=member_id)
        )
        return found


@pytest.fixture(params=["embedded", "redis", "cluster"])
def demo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Demo]:
    settings = on_store(Settings(port=0, data_dir=tmp_path / "data"), request)
    clock = Clock(DEMO_NOW)
    server, port, app = create_server(settings, clock=clock)
    load_demo(app.registry, app.store, members=MEMBERS, now=DEMO_NOW)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield Demo(channel, app, clock)
    channel.close()
    server.stop(None).wait()
    app.close()


def request(
    member: str = GUEST,
    lines: dict[str, int] | None = None,
    codes: tuple[str, ...] = (),
    list_id: str = "",
) -> checkout_pb2.EvaluateRequest:
    """A basket of ``sku: quantity`` at the demo's shelf prices (priced at the server's clock)."""
    prices = F.PRICE | {"CREAM-50": 5990, "COLA-330": 350}
    return checkout_pb2.EvaluateRequest(
        member_id=member,
        shopping_list_id=list_id,
        store_id="SH-001",
        coupon_codes=codes,
        explain=True,
        lines=[
            checkout_pb2.Line(line_id=str(i), sku=s, quantity=q, unit_price_minor=prices[s])
            for i, (s, q) in enumerate((lines or {}).items(), 1)
        ],
    )


def discount(reply: checkout_pb2.EvaluateResponse, offer_id: str) -> int:
    return sum(o.discount_minor for o in reply.offers if o.offer_id == offer_id)


def usage(demo: Demo) -> campaigns_pb2.OfferUsage:
    req = campaigns_pb2.ListOfferUsageRequest(offer_ids=[F.LIMITED_ID])
    found: campaigns_pb2.OfferUsage = demo.campaigns.ListOfferUsage(req).offers[0]
    return found


def test_a_code_batch_bound_to_members_serves_each_code_to_its_member_only(demo: Demo) -> None:
    reply = demo.campaigns.ListCouponCodeBatches(campaigns_pb2.ListCouponCodeBatchesRequest())
    batches = {b.batch_id: b for b in reply.batches}
    bound = F.bound_members(PROFILES)
    mailer = batches[F.BOUND_BATCH]
    assert (mailer.offer_id, mailer.count, mailer.bound_codes) == ("panadol-coupon", 10, 10)
    assert batches["demo-colgate-print"].bound_codes == 0  # the printed batch: anyone's
    listed = campaigns_pb2.ListCouponCodesRequest(batch_id=F.BOUND_BATCH)
    codes = demo.campaigns.ListCouponCodes(listed).codes
    assert [c.member_id for c in codes] == bound
    code, owner = codes[0].code, codes[0].member_id

    def present(member: str) -> tuple[int, int]:
        r = demo.checkout.Evaluate(request(member, {"PANADOL-20": 1}, (code,)))
        return r.coupons[0].status, discount(r, "panadol-coupon")

    assert present(owner) == (Status.APPLIED, 500)
    assert present(codes[1].member_id) == (Status.WRONG_MEMBER, 0)
    assert present(GUEST) == (Status.MEMBER_REQUIRED, 0)


def test_the_gift_set_sells_only_the_units_neither_sold_nor_reserved(demo: Demo) -> None:
    holders = F.reserved_members(PROFILES)
    assert len(holders) == F.RESERVED_MEMBERS and OTHER not in holders
    first = usage(demo)
    assert (first.total_units_cap, first.units_sold, first.units_reserved) == (100, 0, 20)
    wallet = {c.offer_id: c for c in demo.member(holders[0]).wallet}
    assert wallet[F.LIMITED_ID].reserved_units == 1
    assert F.LIMITED_ID not in {c.offer_id for c in demo.member(OTHER).wallet}
    # a guest buys 3 sets: 3 sold, the 20 held for VIP Gold stay held
    sale = checkout_pb2.CommitRequest(transaction_id="t1", basket=request(lines={F.GIFT_SET: 3}))
    assert discount(demo.checkout.Commit(sale).result, F.LIMITED_ID) == 3 * SAVED
    after = usage(demo)
    assert (after.units_sold, after.units_reserved) == (3, 20)
    left = 100 - 3 - 20
    # asking for more than is left: the special price on the units left only ...
    many = {F.GIFT_SET: left + 5}
    assert discount(demo.checkout.Evaluate(request(OTHER, many)), F.LIMITED_ID) == left * SAVED
    # ... and a holder also gets the set reserved for them
    reply = demo.checkout.Evaluate(request(holders[0], many))
    assert discount(reply, F.LIMITED_ID) == (left + 1) * SAVED


def test_the_fortnightly_vip_gold_fragrance_special_applies_only_on_its_days(demo: Demo) -> None:
    assert demo.member(F.EXAMPLE_MEMBER).tier == "vip-gold"
    assert demo.member(OTHER).tier == "member"

    def fragrance(member: str, at: datetime) -> checkout_pb2.EvaluateResponse:
        demo.clock.now = at
        reply: checkout_pb2.EvaluateResponse = demo.checkout.Evaluate(
            request(member, {"FRAG-EDT-50": 1})
        )
        return reply

    assert discount(fragrance(F.EXAMPLE_MEMBER, ON), F.FRAGRANCE_OFFER) == 52000 * 15 // 100
    assert discount(fragrance(OTHER, ON), F.FRAGRANCE_OFFER) == 0  # not VIP Gold
    for at, starts in [
        (OFF, datetime(2026, 12, 8, 2, 0, tzinfo=UTC)),  # off week: 10:00 Tuesday fortnight
        (ON.replace(hour=14), ON.replace(day=25, hour=2)),  # 22:00 Tuesday: Wednesday 10:00
        (DEMO_NOW, ON.replace(hour=2)),  # the demo's Saturday: Tuesday 10:00
    ]:
        reply = fragrance(F.EXAMPLE_MEMBER, at)
        assert discount(reply, F.FRAGRANCE_OFFER) == 0
        why = {e.offer_id: e for e in reply.explanations}[F.FRAGRANCE_OFFER]
        assert (why.reason, why.next_start.ToDatetime(UTC)) == ("NOT_IN_TIME_WINDOW", starts)


def test_evaluate_by_shopping_list_id_is_evaluate_by_the_member(demo: Demo) -> None:
    demo.clock.now = ON  # the fragrance special runs: the list's member must be VIP Gold
    offers = demo.members.ListOffers(members_pb2.ListOffersRequest(member_id=F.EXAMPLE_MEMBER))
    list_id = offers.list_id
    assert list_id.startswith("SL-") and demo.app.store.list_member(list_id) == F.EXAMPLE_MEMBER
    lines = {"FRAG-EDT-50": 1, F.GIFT_SET: 2, "CREAM-50": 2, "COLA-330": 3}
    by_list = demo.checkout.Evaluate(request(lines=lines, list_id=list_id))
    assert by_list == demo.checkout.Evaluate(request(F.EXAMPLE_MEMBER, lines))
    applied = {o.offer_id for o in by_list.offers}
    assert {F.FRAGRANCE_OFFER, F.LIMITED_ID, "vip-skincare", "cola-3for2"} <= applied
    sale = checkout_pb2.CommitRequest(
        transaction_id="t-list", basket=request(lines=lines, list_id=list_id)
    )
    assert demo.checkout.Commit(sale).member.member_id == F.EXAMPLE_MEMBER


def test_the_banner_commands_answer_what_it_says(demo: Demo) -> None:
    hints = "\n".join(F.try_it(demo.app.store, "127.0.0.1", 50051, DEMO_NOW))
    calls = re.findall(r"-d '(.*?)' 127\.0\.0\.1:50051 loyalty\.v1\.(\w+)/(\w+)", hints)
    assert [c[2] for c in calls] == ["Evaluate", "ListOfferUsage", "Evaluate"]
    kinds: dict[str, Any] = {
        "Evaluate": checkout_pb2.EvaluateRequest,
        "ListOfferUsage": campaigns_pb2.ListOfferUsageRequest,
    }
    replies = []
    for body, service, method in calls:
        stub = {"CheckoutService": demo.checkout, "CampaignService": demo.campaigns}[service]
        replies.append(getattr(stub, method)(json_format.Parse(body, kinds[method]())))
    by_list, offered, wrong = replies
    why = {e.offer_id: e.reason for e in by_list.explanations}
    assert why[F.FRAGRANCE_OFFER] == "NOT_IN_TIME_WINDOW"  # the demo's Saturday
    assert offered.offers[0].units_reserved == 20
    assert [c.status for c in wrong.coupons] == [Status.WRONG_MEMBER]


def test_loading_the_demo_again_changes_none_of_it(demo: Demo) -> None:
    list_id = demo.app.store.shopping_list_id(F.EXAMPLE_MEMBER, DEMO_NOW)
    codes = campaigns_pb2.ListCouponCodesRequest(batch_id=F.BOUND_BATCH)
    before = demo.campaigns.ListCouponCodes(codes)
    summary = load_demo(demo.app.registry, demo.app.store, members=MEMBERS, now=DEMO_NOW)
    assert summary["bound_codes"] == 10
    assert demo.campaigns.ListCouponCodes(codes) == before
    assert demo.app.store.shopping_list_id(F.EXAMPLE_MEMBER, DEMO_NOW) == list_id
    assert usage(demo).units_reserved == 20


def test_every_demo_offer_survives_the_console_offer_editor() -> None:
    """The gift set's unit cap too: saving it from the console must not drop the cap."""
    from server.web.console import offer_form

    rules = F.demo_rules()
    assert [o.id for o in rules.offers][-1] == F.LIMITED_ID
    for offer in rules.offers:
        values = offer_form.values_from_offer(offer, rules.currency, rules.timezone)
        parsed = offer_form.offer_from_values(values, rules.currency, rules.timezone)
        assert (parsed.errors, parsed.offer) == ({}, offer), offer.id
