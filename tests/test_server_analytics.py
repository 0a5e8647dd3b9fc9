"""CampaignService.Simulate and the personalised shopping list over real gRPC on port 0."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from engine.pricing.rules import load_rules
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
from tests.store_fixtures import EXAMPLES
from tests.test_server_checkout import violations

T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # a Wednesday
# the checkout stub of each running ``served`` server, by id of its campaign stub
CHECKOUT: dict[int, checkout_pb2_grpc.CheckoutServiceStub] = {}


class Clock:
    now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def served(tmp_path):
    """The Watsons programme published, one VIP with a Panadol coupon, two commits."""
    server, port, app = create_server(Settings(port=0, data_dir=tmp_path / "data"), clock=Clock())
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
    members = members_pb2_grpc.MemberServiceStub(channel)
    campaigns.ImportCatalogue(
        campaigns_pb2.ImportCatalogueRequest(csv=(EXAMPLES / "catalogue.csv").read_bytes())
    )
    campaigns.PublishRuleSet(
        campaigns_pb2.PublishRuleSetRequest(rules=load_rules(EXAMPLES / "watsons.yaml"))
    )
    members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="vip1", tier="vip"))
    issue(members, "i1", "panadol-coupon", T0 - timedelta(days=1), T0 + timedelta(days=30))
    checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
    for txn, lines in (
        ("t1", [("1", "CREAM-50", 2, 5990), ("2", "PANADOL-20", 2, 2680)]),
        ("t2", [("1", "COLA-330", 3, 350), ("2", "RICE-5KG", 3, 4500)]),
    ):
        req = checkout_pb2.EvaluateRequest(member_id="vip1", store_id="SH-001", channel="pos")
        req.occurred_at.FromDatetime(T0)
        for line_id, sku, qty, price in lines:
            req.lines.add(line_id=line_id, sku=sku, quantity=qty, unit_price_minor=price)
        checkout.Commit(checkout_pb2.CommitRequest(transaction_id=txn, basket=req))
    CHECKOUT[id(campaigns)] = checkout
    yield campaigns, members
    del CHECKOUT[id(campaigns)]
    channel.close()
    server.stop(None).wait()
    app.close()


def issue(members, issue_id: str, offer_id: str, start: datetime, until: datetime) -> None:
    req = members_pb2.IssueCouponsRequest(
        issue_id=issue_id, offer_id=offer_id, member_ids=["vip1"], uses=1
    )
    req.valid_from.FromDatetime(start)
    req.valid_until.FromDatetime(until)
    members.IssueCoupons(req)


def test_simulate_the_current_rules_over_the_ledger_gives_what_was_committed(served):
    campaigns, _ = served
    reply = campaigns.Simulate(
        campaigns_pb2.SimulateRequest(rules=load_rules(EXAMPLES / "watsons.yaml"))
    )
    # t1: skincare 20% = 2396, Panadol coupon 2 x 500 (GSK), ladder 1000 on 13944; t2: one
    # free cola 350, ladder 1000 on 14200
    assert reply.current_version == 1
    assert reply.current.discount_minor == reply.draft.discount_minor == 2396 + 2000 + 350 + 1000
    assert reply.current.baskets == 2 and reply.current.baskets_affected == 2
    assert {(f.funder_id, f.funded_minor) for f in reply.current.funders} == {
        ("gsk", 1000),
        ("retailer", 0),
    }
    assert [(o.offer_id, o.discount_minor) for o in reply.current.offers] == [
        ("cola-3for2", 350),
        ("panadol-coupon", 1000),
        ("spend-ladder", 2000),
        ("vip-skincare", 2396),
    ]
    assert (reply.current.max_basket_transaction_id, reply.current.max_basket_discount_minor) == (
        "t1",
        4396,
    )
    assert reply.current.points_liability_minor == 10 * reply.current.points_earned > 0


def test_simulate_a_draft_without_the_ladder_over_a_parquet_history(served, tmp_path):
    campaigns, _ = served
    draft = load_rules(EXAMPLES / "watsons.yaml")
    keep = [o for o in draft.offers if o.id != "spend-ladder"]
    del draft.offers[:]
    draft.offers.extend(keep)
    # the ledger as Parquet bytes, the way `loyalty ledger export` writes it
    from server.analytics.ledger import history_rows

    ledger = campaigns.Simulate(campaigns_pb2.SimulateRequest(rules=draft))
    buf = io.BytesIO()
    history_rows([]).write_parquet(buf)
    empty = campaigns.Simulate(
        campaigns_pb2.SimulateRequest(rules=draft, history_parquet=buf.getvalue())
    )
    assert empty.current.baskets == 0
    assert ledger.draft.discount_minor == ledger.current.discount_minor - 2000
    assert "spend-ladder" not in [o.offer_id for o in ledger.draft.offers]
    assert ledger.draft.max_basket_discount_minor == 2396 + 1000  # t1 without the ladder


def test_simulate_rejects_a_bad_draft_and_bad_history(served):
    campaigns, _ = served
    bad = rules_pb2.RuleSet()
    bad.CopyFrom(load_rules(EXAMPLES / "watsons.yaml"))
    bad.offers[0].percent_off.percent_bps = 12000
    with pytest.raises(grpc.RpcError) as exc:
        campaigns.Simulate(campaigns_pb2.SimulateRequest(rules=bad))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "offers[0].percent_off.percent_bps" in violations(exc.value)
    with pytest.raises(grpc.RpcError) as exc:
        campaigns.Simulate(
            campaigns_pb2.SimulateRequest(
                rules=load_rules(EXAMPLES / "watsons.yaml"), history_parquet=b"not parquet"
            )
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == ["history_parquet"]


def test_the_shopping_list_orders_by_relevance_and_shows_upcoming_coupons(served):
    _, members = served
    # the Panadol coupon was used by t1; a Colgate coupon timed to a purchase in 5 days, an
    # Olay one valid now, one starting after the list's fortnight
    issue(members, "i2", "colgate-coupon", T0 + timedelta(days=4), T0 + timedelta(days=9))
    issue(members, "i3", "olay-skincare-coupon", T0 - timedelta(days=1), T0 + timedelta(days=9))
    issue(members, "i4", "panadol-coupon", T0 + timedelta(days=20), T0 + timedelta(days=25))
    offers = members.ListOffers(members_pb2.ListOffersRequest(member_id="vip1")).offers
    assert [(o.offer_id, o.source, o.expected_saving_minor) for o in offers] == [
        ("olay-skincare-coupon", "wallet", 1000),  # usable now
        ("colgate-coupon", "wallet", 2000),  # from day 4: up to its 20.00 cap
        ("vip-skincare", "member", 0),
    ]
    assert not offers[0].HasField("valid_from")
    assert offers[1].valid_from.ToDatetime(tzinfo=UTC) == T0 + timedelta(days=4)


def test_simulate_nets_cancels_and_returns_and_spends_a_budget_as_checkout_did(served):
    """Version 2 caps the Panadol coupon at 2,500 in all: the budget runs out, a cancel and a
    return give some back, and the simulation of the current rules over the ledger grants what
    checkout granted, to the minor unit (ListOfferUsage's budget_spent_minor)."""
    campaigns, members = served
    limited = load_rules(EXAMPLES / "watsons.yaml")
    for offer in limited.offers:
        if offer.id == "panadol-coupon":
            offer.limits.budget_minor = 2500
    campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=limited))
    for m in ("m1", "m2", "m3"):
        members.UpsertMember(members_pb2.UpsertMemberRequest(member_id=m, tier="member"))
    req = members_pb2.IssueCouponsRequest(
        issue_id="i2", offer_id="panadol-coupon", member_ids=["m1", "m2", "m3"], uses=1
    )
    req.valid_from.FromDatetime(T0 - timedelta(days=1))
    req.valid_until.FromDatetime(T0 + timedelta(days=30))
    members.IssueCoupons(req)
    checkout = CHECKOUT[id(campaigns)]

    def buy(txn: str, member: str, packs: int) -> int:
        basket = checkout_pb2.EvaluateRequest(member_id=member, store_id="SH-001", channel="pos")
        basket.occurred_at.FromDatetime(T0)
        basket.lines.add(line_id="1", sku="PANADOL-20", quantity=packs, unit_price_minor=2680)
        reply = checkout.Commit(checkout_pb2.CommitRequest(transaction_id=txn, basket=basket))
        return sum(
            d.amount_minor
            for line in reply.result.lines
            for d in line.discounts
            if d.offer_id == "panadol-coupon"
        )

    # t1 (version 1) spent 1000 of it already
    assert buy("t3", "m1", 3) == 1500  # the budget is spent
    assert buy("t4", "m2", 2) == 0
    checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t3"))  # 1500 back
    assert buy("t5", "m3", 3) == 1500
    checkout.Return(
        checkout_pb2.ReturnRequest(
            return_id="r1",
            transaction_id="t1",
            lines=[checkout_pb2.ReturnLine(line_id="2", quantity=1)],
        )
    )  # 500 back
    assert buy("t6", "m2", 2) == 500  # what is left
    usage = campaigns.ListOfferUsage(
        campaigns_pb2.ListOfferUsageRequest(offer_ids=["panadol-coupon"])
    ).offers[0]
    assert usage.budget_spent_minor == 2500 == 500 + 1500 + 500
    reply = campaigns.Simulate(campaigns_pb2.SimulateRequest(rules=limited))
    assert reply.current_version == 2
    for figures in (reply.current, reply.draft):
        panadol = {o.offer_id: o.discount_minor for o in figures.offers}["panadol-coupon"]
        assert panadol == usage.budget_spent_minor
        assert figures.baskets == 5  # t3 was cancelled
    assert [(v.ruleset_version, v.baskets) for v in reply.baskets_by_version] == [(1, 2), (2, 3)]
    # a draft without the budget: the history shows the coupon only where it gave a discount
    unlimited = load_rules(EXAMPLES / "watsons.yaml")
    free = campaigns.Simulate(campaigns_pb2.SimulateRequest(rules=unlimited))
    panadol = {o.offer_id: o.discount_minor for o in free.draft.offers}["panadol-coupon"]
    assert panadol == 500 + 1500 + 1000
