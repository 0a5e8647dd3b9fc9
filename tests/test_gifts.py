"""Gifts: a product as the reward (docs/pricing.md §5, Gifts).

When a basket qualifies for a gift offer (its scope, conditions and limits, read without the
gift's own lines) the result lists the gift for the lane to add; the gift's units in the basket
are discounted to the gift price and attributed to the offer.
On random rule sets: tests/test_constructs_random.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.pricing import wire
from engine.pricing.api import price
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.constants import Reason
from engine.pricing.reference.core import price_reference
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, GiftResult, Line, PricingResult, RemainingLimits
from engine.pricing.validate import validate
from loyalty.v1 import rules_pb2
from tests.test_twin import check_invariants
from tests.test_wire import request_of

AT = datetime(2026, 3, 2, 12, tzinfo=UTC)
CATALOGUE = Catalogue.from_rows(
    [
        {"sku": "CREAM", "category": "skincare"},
        {"sku": "SERUM", "category": "skincare"},
        {"sku": "BAG", "category": "skincare"},
        {"sku": "COLA", "category": "drinks"},
    ]
)
BAG = {
    "id": "bag",
    "scope": {"categories": ["skincare"]},
    "conditions": {"min_amount_minor": 10000},
    "gift": {"sku": "BAG", "quantity": 1},
    "funding": {"funder_id": "brand", "funded_share_bps": 10000},
}


def rules_of(*offers: dict) -> rules_pb2.RuleSet:
    return parse_rules({"offers": list(offers)})


def both(rules, basket, member=None, **kw) -> PricingResult:
    got = price(compile_rules(rules, CATALOGUE), basket, member, **kw)
    assert got == price_reference(rules, CATALOGUE, basket, member, **kw)
    check_invariants(got)
    return got


def basket(*lines: tuple[str, int, int]) -> Basket:
    return Basket(tuple(Line(f"L{k}", s, q, p) for k, (s, q, p) in enumerate(lines)), AT)


def test_a_qualifying_basket_lists_the_gift_it_lacks():
    r = both(rules_of(BAG), basket(("CREAM", 2, 6000)), explain=True)
    assert r.gifts == (GiftResult("bag", "BAG", 1, 0, 0),)
    assert r.discount_minor == 0 and r.offers == ()
    [why] = r.explanations
    assert (why.reason, why.detail) == (Reason.GIFT_NOT_IN_BASKET, 1)


def test_the_gift_in_the_basket_is_free_and_funded_like_any_discount():
    r = both(rules_of(BAG), basket(("CREAM", 2, 6000), ("BAG", 1, 1500)))
    assert r.gifts == (GiftResult("bag", "BAG", 1, 1, 0),)
    assert [ln.net_minor for ln in r.lines] == [12000, 0]
    [applied] = r.offers
    assert (applied.offer_id, applied.discount_minor, applied.funded_minor) == ("bag", 1500, 1500)


def test_the_gifts_own_price_never_counts_towards_its_threshold():
    # 90.00 of cream and a 15.00 bag: the bag is skincare too, but the 100.00 reads 90.00
    r = both(rules_of(BAG), basket(("CREAM", 1, 9000), ("BAG", 1, 1500)), explain=True)
    assert r.gifts == () and r.discount_minor == 0
    [why] = r.explanations
    assert (why.reason, why.detail) == (Reason.MIN_AMOUNT_NOT_REACHED, 1000)
    # nor towards the basket minimum
    by_basket = {**BAG, "conditions": {"min_basket_minor": 10000}}
    r = both(rules_of(by_basket), basket(("CREAM", 1, 9000), ("BAG", 1, 1500)), explain=True)
    assert [(e.reason, e.detail) for e in r.explanations] == [(Reason.MIN_BASKET_NOT_REACHED, 1000)]


def test_a_basket_of_the_gift_alone_has_nothing_that_qualifies():
    r = both(rules_of({**BAG, "conditions": {}}), basket(("BAG", 1, 1500)), explain=True)
    assert r.gifts == ()
    assert [e.reason for e in r.explanations] == [Reason.NO_ELIGIBLE_LINES]


def test_a_gift_price_and_a_quantity():
    offer = {**BAG, "gift": {"sku": "BAG", "quantity": 2, "price_minor": 500}}
    # three bags on one line: two of them at 5.00 each
    r = both(rules_of(offer), basket(("CREAM", 2, 6000), ("BAG", 3, 1500)))
    assert r.gifts == (GiftResult("bag", "BAG", 2, 2, 500),)
    assert r.lines[1].net_minor == 1500 + 2 * 500
    # one bag in the basket of the two: it is discounted, and the lane may add the other
    r = both(rules_of(offer), basket(("CREAM", 2, 6000), ("BAG", 1, 1500)))
    assert r.gifts == (GiftResult("bag", "BAG", 2, 1, 500),)
    assert r.discount_minor == 1000


def test_a_gift_already_cheaper_than_its_price_gives_no_benefit_and_is_not_listed():
    offer = {**BAG, "gift": {"sku": "BAG", "quantity": 1, "price_minor": 2000}}
    r = both(rules_of(offer), basket(("CREAM", 2, 6000), ("BAG", 1, 1500)), explain=True)
    assert r.gifts == ()
    assert [e.reason for e in r.explanations] == [Reason.NO_BENEFIT]


def test_limits_apply_and_a_used_up_gift_is_not_listed():
    b = basket(("CREAM", 2, 6000))
    r = both(rules_of(BAG), b, limits={"bag": RemainingLimits(total_uses=0)}, explain=True)
    assert r.gifts == ()
    assert [e.reason for e in r.explanations] == [Reason.LIMIT_REACHED]


def test_two_gift_offers_for_one_sku_give_two_units():
    second = {**BAG, "id": "bag2", "stacking": {"priority": 1}}
    r = both(rules_of(BAG, second), basket(("CREAM", 2, 6000), ("BAG", 1, 1500)))
    # the first takes the bag in the basket; the second finds none left at a price above 0
    assert r.gifts == (GiftResult("bag", "BAG", 1, 1, 0), GiftResult("bag2", "BAG", 1, 0, 0))
    r = both(rules_of(BAG, second), basket(("CREAM", 2, 6000), ("BAG", 2, 1500)))
    assert r.gifts == (GiftResult("bag", "BAG", 1, 1, 0), GiftResult("bag2", "BAG", 1, 1, 0))
    assert r.lines[1].net_minor == 0


@pytest.mark.parametrize(
    ("gift", "path"),
    [
        ({"quantity": 1}, "offers[0].gift.sku"),
        ({"sku": "BAG"}, "offers[0].gift.quantity"),
        ({"sku": "BAG", "quantity": 1001}, "offers[0].gift.quantity"),
        ({"sku": "BAG", "quantity": 1, "price_minor": -1}, "offers[0].gift.price_minor"),
    ],
)
def test_invalid_gifts_name_the_field(gift, path):
    problems = validate(rules_of({**BAG, "gift": gift}), CATALOGUE)
    assert path in [v.field for v in problems], problems


def test_unit_limits_are_refused_on_a_gift():
    problems = validate(rules_of({**BAG, "limits": {"max_units": 1}}), CATALOGUE)
    assert "offers[0].limits.max_units" in [v.field for v in problems]


def test_a_rule_set_with_gifts_answers_on_the_checked_path():
    compiled = compile_rules(rules_of(BAG), CATALOGUE)
    tables = wire.WireTables.build(compiled, {})
    data = request_of(basket(("CREAM", 2, 6000)), "", 0).SerializeToString()
    assert wire.parse(tables, compiled, data) is None
    no_gift = {k: v for k, v in BAG.items() if k != "gift"}
    plain = compile_rules(rules_of({**no_gift, "percent_off": {"percent_bps": 100}}), CATALOGUE)
    assert wire.parse(wire.WireTables.build(plain, {}), plain, data) is not None


_SERVED = {
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "tiers": [{"id": "member", "earn_multiplier_bps": 10000}],
    "offers": [{**BAG, "limits": {"per_member": 1}}],
}


@pytest.fixture(params=["embedded", "redis"])
def served(tmp_path, request):
    from tests.test_server_checkout import CATALOGUE as SERVED_CATALOGUE
    from tests.test_server_checkout import published

    catalogue = [*SERVED_CATALOGUE, ("BAG", "skincare")]
    with published(tmp_path, request, _SERVED, catalogue, members=[("m1", "member")]) as stubs:
        yield stubs


def _request(with_bag: bool, explain: bool = False):
    from google.protobuf.timestamp_pb2 import Timestamp

    from loyalty.v1 import checkout_pb2
    from tests.test_server_checkout import T0

    ts = Timestamp()
    ts.FromDatetime(T0)
    req = checkout_pb2.EvaluateRequest(
        member_id="m1", store_id="s1", occurred_at=ts, explain=explain
    )
    req.lines.add(line_id="1", sku="CREAM", quantity=2, unit_price_minor=6000)
    if with_bag:
        req.lines.add(line_id="2", sku="BAG", quantity=1, unit_price_minor=1500)
    return req


def test_evaluate_lists_the_gift_and_commit_gives_it_once_per_member(served):
    from loyalty.v1 import checkout_pb2

    # given a qualifying basket without the bag: the quote lists the gift for the lane to add
    quote = served.checkout.Evaluate(_request(with_bag=False, explain=True))
    assert [(g.offer_id, g.sku, g.quantity, g.in_basket, g.price_minor) for g in quote.gifts] == [
        ("bag", "BAG", 1, 0, 0)
    ]
    assert [(e.offer_id, e.reason) for e in quote.explanations] == [("bag", "GIFT_NOT_IN_BASKET")]
    assert quote.discount_minor == 0
    # when the lane adds it and commits: the bag is free, funded by the brand, counted once
    done = served.checkout.Commit(
        checkout_pb2.CommitRequest(transaction_id="t1", basket=_request(with_bag=True))
    )
    assert [(ln.line_id, ln.net_minor) for ln in done.result.lines] == [("1", 12000), ("2", 0)]
    assert [(g.sku, g.in_basket) for g in done.result.gifts] == [("BAG", 1)]
    [applied] = done.result.offers
    assert (applied.offer_id, applied.discount_minor, applied.funded_minor) == ("bag", 1500, 1500)
    # a retry answers the same
    again = served.checkout.Commit(
        checkout_pb2.CommitRequest(transaction_id="t1", basket=_request(with_bag=True))
    )
    assert again.result.gifts == done.result.gifts
    # then the member's one use is spent: no gift is listed any more, the bag is paid for
    after = served.checkout.Evaluate(_request(with_bag=True, explain=True))
    assert list(after.gifts) == [] and after.payable_minor == 12000 + 1500
    assert [(e.offer_id, e.reason) for e in after.explanations] == [("bag", "LIMIT_REACHED")]


@pytest.mark.parametrize(
    "offer",
    [
        {**BAG, "limits": {"per_member": 1}},
        {**BAG, "gift": {"sku": "BAG", "quantity": 2, "price_minor": 500}},
        {
            "id": "ship",
            "delivery_off": {"percent_bps": 10000},
            "conditions": {"min_basket_minor": 5000},
        },
        {"id": "ship2", "delivery_off": {"price_minor": 299}},
    ],
)
def test_gift_and_delivery_offers_survive_the_console_form(offer):
    from server.web.console import offer_form as F

    [o] = rules_of(offer).offers
    values = F.values_from_offer(o, "CNY", "Asia/Shanghai")
    assert values["kind"] == o.WhichOneof("reward")
    parsed = F.offer_from_values(values, "CNY", "Asia/Shanghai")
    assert parsed.errors == {}
    assert parsed.offer == o
