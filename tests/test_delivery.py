"""Delivery charges and delivery offers (docs/pricing.md §1, §5 Delivery).

A basket line with ``delivery`` set is the basket's delivery charge: no product set, threshold,
order reward or points tender reads it, base points are earned on it only when the programme
says so, and only ``delivery_off`` offers discount it ("free delivery over 50.00").
On random rule sets: tests/test_constructs_random.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from engine.pricing.api import price
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.constants import Reason
from engine.pricing.frames import price_frames
from engine.pricing.guardrails import guardrail_problems
from engine.pricing.reference.core import price_reference
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member, PricingResult
from engine.pricing.validate import validate
from loyalty.v1 import rules_pb2
from tests.test_twin import check_invariants

AT = datetime(2026, 3, 2, 12, tzinfo=UTC)
CATALOGUE = Catalogue.from_rows(
    [
        {"sku": "shirt", "category": "clothes", "vendor": "acme"},
        {"sku": "DELIVERY", "category": "clothes"},  # a catalogue row is never read for it
    ]
)
POINTS = {
    "point_value_minor": 1,
    "earn_per_amount_minor": 100,
    "redeem_step_points": 1,
    "max_redeem_share_bps": 10000,
}
FREE_OVER_50 = {
    "id": "free-delivery",
    "delivery_off": {"percent_bps": 10000},
    "conditions": {"min_basket_minor": 5000},
}


def rules_of(*offers: dict, **extra) -> rules_pb2.RuleSet:
    return parse_rules({"offers": list(offers), **extra})


def both(rules, basket, member=None, **kw) -> PricingResult:
    got = price(compile_rules(rules, CATALOGUE), basket, member, **kw)
    assert got == price_reference(rules, CATALOGUE, basket, member, **kw)
    check_invariants(got)
    return got


def basket(goods: int, delivery: int = 599, qty: int = 1) -> Basket:
    return Basket(
        (
            Line("1", "shirt", qty, goods),
            Line("d", "DELIVERY", 1, delivery, delivery=True),
        ),
        AT,
    )


def discount(r: PricingResult, line_id: str) -> int:
    return next(ln.gross_minor - ln.net_minor for ln in r.lines if ln.line_id == line_id)


def test_free_delivery_over_a_threshold_of_goods():
    rules = rules_of(FREE_OVER_50)
    # given goods of 60.00 and 5.99 delivery: the delivery is free
    r = both(rules, basket(6000))
    assert discount(r, "d") == 599 and discount(r, "1") == 0
    assert [(o.offer_id, o.discount_minor, o.units) for o in r.offers] == [
        ("free-delivery", 599, 1)
    ]
    # given goods of 40.00: the delivery charge never counts towards the 50.00
    r = both(rules, basket(4000, delivery=2000), explain=True)
    assert r.discount_minor == 0
    [why] = r.explanations
    assert (why.offer_id, why.reason, why.detail) == (
        "free-delivery",
        Reason.MIN_BASKET_NOT_REACHED,
        1000,
    )


def test_the_threshold_reads_the_goods_after_item_discounts():
    ten = {"id": "ten", "scope": {"all": True}, "percent_off": {"percent_bps": 1000}}
    # 55.00 of goods less 10% is 49.50: below 50.00
    r = both(rules_of(FREE_OVER_50, ten), basket(5500), explain=True)
    assert discount(r, "d") == 0 and discount(r, "1") == 550
    assert any(e.reason == Reason.MIN_BASKET_NOT_REACHED for e in r.explanations)


@pytest.mark.parametrize(
    ("value", "off"),
    [
        ({"percent_bps": 5000}, 300),  # rhu(599 / 2) = 300
        ({"amount_minor": 300}, 300),
        ({"amount_minor": 900}, 599),  # never below 0
        ({"price_minor": 100}, 499),  # delivery at 1.00
        ({"price_minor": 700}, 0),  # already cheaper: NO_BENEFIT
    ],
)
def test_percent_amount_or_price_off_the_delivery(value, off):
    r = both(rules_of({"id": "d", "delivery_off": value}), basket(1000), explain=True)
    assert discount(r, "d") == off
    if off == 0:
        assert [e.reason for e in r.explanations] == [Reason.NO_BENEFIT]


def test_goods_offers_never_touch_the_delivery_line():
    rules = rules_of(
        {"id": "all", "scope": {"all": True}, "percent_off": {"percent_bps": 5000}},
        {"id": "sku", "scope": {"skus": ["DELIVERY"]}, "amount_off": {"amount_minor": 100}},
        {"id": "order", "scope": {"all": True}, "order_amount_off": {"amount_minor": 400}},
        {
            "id": "spend",
            "scope": {"all": True},
            "spend_tiers": {"steps": [{"threshold_minor": 1000, "amount_minor": 10}]},
        },
    )
    r = both(rules, basket(1000, delivery=5000), explain=True)
    # 50% of the shirt, then 4.00 of the order on the shirt alone; the spend tier reads 1.00
    assert discount(r, "d") == 0
    assert discount(r, "1") == 900
    assert {e.offer_id: e.reason for e in r.explanations} == {"spend": Reason.MIN_SPEND_NOT_REACHED}


def test_a_vendor_can_fund_the_delivery_discount():
    offer = {**FREE_OVER_50, "funding": {"funder_id": "carrier", "funded_share_bps": 5000}}
    r = both(rules_of(offer), basket(6000))
    [row] = [d for ln in r.lines for d in ln.discounts]
    assert (row.funder_id, row.amount_minor, row.funded_minor) == ("carrier", 599, 300)


@pytest.mark.parametrize(("earn", "points"), [(False, 60), (True, 65)])
def test_points_are_earned_on_delivery_only_when_the_programme_says_so(earn, points):
    rules = rules_of(
        {"id": "bonus", "scope": {"all": True}, "bonus_points": {"per_unit": 3}},
        points={**POINTS, "earn_on_delivery": earn},
    )
    r = both(rules, basket(6000), Member("m1"))
    # base floor(6000/100) = 60, or floor(6599/100) = 65; the bonus counts the shirt only
    assert r.points_earned == points + 3
    delivery_points = next(ln.points_earned for ln in r.lines if ln.line_id == "d")
    assert (delivery_points > 0) is earn


def test_points_never_pay_for_the_delivery():
    rules = rules_of(points={**POINTS, "max_redeem_share_bps": 5000})
    r = both(rules, basket(6000), Member("m1", available_points=10**6), redeem_points=-1)
    # half of the goods (3000), never the delivery
    assert r.points_redeemed == 3000
    assert [ln.points_tender_minor for ln in r.lines] == [3000, 0]


def test_a_delivery_line_is_never_a_member_only_item():
    rules = rules_of(
        restricted_items=[{"id": "vip", "scope": {"all": True}, "tiers": ["gold"]}],
        tiers=[{"id": "gold", "earn_multiplier_bps": 10000}],
    )
    r = both(rules, basket(1000))
    assert [x.line for x in r.restricted] == [0]


def test_delivery_lines_of_one_kind_are_priced_as_one_and_goods_never_join_them():
    # two parcels at 5.99 and a shirt whose sku is the delivery's
    b = Basket(
        (
            Line("d1", "DELIVERY", 1, 599, delivery=True),
            Line("1", "DELIVERY", 1, 599),
            Line("d2", "DELIVERY", 1, 599, delivery=True),
        ),
        AT,
    )
    r = both(rules_of({"id": "d", "delivery_off": {"percent_bps": 5000}}), b)
    # rhu(1198 / 2) = 599 on the merged parcels, shared 300 / 299; the goods line untouched
    assert [discount(r, x) for x in ("d1", "1", "d2")] == [300, 0, 299]


@pytest.mark.parametrize(
    ("offer", "path"),
    [
        ({**FREE_OVER_50, "scope": {"all": True}}, "offers[0].scope"),
        ({"id": "d", "delivery_off": {}}, "offers[0].delivery_off"),
        ({"id": "d", "delivery_off": {"percent_bps": 0}}, "offers[0].delivery_off.percent_bps"),
        ({"id": "d", "delivery_off": {"amount_minor": 0}}, "offers[0].delivery_off.amount_minor"),
        ({**FREE_OVER_50, "limits": {"max_units": 1}}, "offers[0].limits.max_units"),
        ({**FREE_OVER_50, "limits": {"total_units": 5}}, "offers[0].limits.total_units"),
        (
            {
                "id": "x",
                "scope": {"categories": ["\x00delivery"]},
                "percent_off": {"percent_bps": 1},
            },
            "offers[0].scope.categories[0]",
        ),
    ],
)
def test_invalid_delivery_offers_name_the_field(offer, path):
    problems = validate(rules_of(offer), CATALOGUE)
    assert path in [v.field for v in problems], problems


def test_guardrails_leave_delivery_offers_alone():
    rules = rules_of(FREE_OVER_50, guardrails={"max_discount_minor": 100})
    assert guardrail_problems(rules, CATALOGUE) == []


def test_the_batch_path_reads_a_delivery_column():
    rules = rules_of(FREE_OVER_50, points=POINTS)
    compiled = compile_rules(rules, CATALOGUE)
    lines = pl.DataFrame(
        {
            "basket": [0, 0, 1, 1],
            "sku": ["shirt", "DELIVERY", "shirt", "DELIVERY"],
            "quantity": [6, 1, 1, 1],
            "unit_price_minor": [1000, 599, 1000, 599],
            "delivery": [False, True, False, True],
        }
    )
    baskets = pl.DataFrame({"occurred_at": [AT, AT], "member_id": ["m1", ""]})
    out = price_frames(compiled, lines, baskets)
    singles = [
        price(compiled, basket(1000, qty=6), Member("m1")),
        price(compiled, basket(1000), None),
    ]
    assert out.baskets["discount_minor"].to_list() == [r.discount_minor for r in singles]
    assert out.baskets["points_earned"].to_list() == [r.points_earned for r in singles]


_SERVED_RULES = {
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "points": {**POINTS, "earn_per_amount_minor": 1000},
    "tiers": [{"id": "member", "earn_multiplier_bps": 10000}],
    "offers": [
        {**FREE_OVER_50, "funding": {"funder_id": "carrier", "funded_share_bps": 10000}},
        {"id": "rice-10", "scope": {"skus": ["RICE"]}, "percent_off": {"percent_bps": 1000}},
    ],
}


@pytest.fixture(params=["embedded", "redis"])
def served(tmp_path, request):
    from tests.test_server_checkout import published

    with published(tmp_path, request, _SERVED_RULES, members=[("m1", "member")]) as stubs:
        yield stubs


def _request(rice_qty: int):
    from google.protobuf.timestamp_pb2 import Timestamp

    from loyalty.v1 import checkout_pb2
    from tests.test_server_checkout import T0

    ts = Timestamp()
    ts.FromDatetime(T0)
    req = checkout_pb2.EvaluateRequest(member_id="m1", store_id="s1", occurred_at=ts)
    req.lines.add(line_id="1", sku="RICE", quantity=rice_qty, unit_price_minor=1000)
    req.lines.add(line_id="d", sku="SHIP", quantity=1, unit_price_minor=800, delivery=True)
    return req


def test_a_delivery_line_is_priced_committed_recorded_and_replayed(served):
    from loyalty.v1 import campaigns_pb2, checkout_pb2
    from server.analytics.ledger import export_ledger

    # given 6 bags of rice (54.00 after 10%) and 8.00 delivery: the delivery is free
    quote = served.checkout.Evaluate(_request(6))
    assert [(ln.line_id, ln.net_minor) for ln in quote.lines] == [("1", 5400), ("d", 0)]
    assert quote.points_earned == 5  # floor(5400 / 1000): the delivery earns nothing
    # when it is committed, and a small basket too
    done = served.checkout.Commit(
        checkout_pb2.CommitRequest(transaction_id="t1", basket=_request(6))
    )
    assert done.result.payable_minor == quote.payable_minor == 5400
    small = served.checkout.Commit(
        checkout_pb2.CommitRequest(transaction_id="t2", basket=_request(2))
    )
    assert small.result.payable_minor == 1800 + 800
    # then the ledger keeps which line was the delivery, and who funded its discount
    history = export_ledger(served.app.store)
    rows = history.filter(pl.col("kind") == "commit").sort("seq", "line_no")
    assert rows.select("transaction_id", "sku", "delivery", "funded_minor").rows() == [
        ("t1", "RICE", False, 0),
        ("t1", "SHIP", True, 800),
        ("t2", "RICE", False, 0),
        ("t2", "SHIP", True, 0),
    ]
    # and a simulation of the same rules on the ledger gives what the checkout gave
    sim = served.campaigns.Simulate(campaigns_pb2.SimulateRequest(rules=parse_rules(_SERVED_RULES)))
    assert sim.draft.discount_minor == (600 + 800) + 200
    assert {f.funder_id: f.funded_minor for f in sim.draft.funders}["carrier"] == 800
    # and a cancel gives the delivery back with the rest
    back = served.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t1"))
    assert back.refund_minor == 5400
