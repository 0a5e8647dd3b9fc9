"""Buy one set, get from another (``Offer.buy_get``, rules.proto field 32): "buy a sweater,
get a t-shirt 50% off".

Pinned examples worked out by hand from the rule (docs/pricing.md §5, buy_get) run
on both implementations (``pricer``); validation field paths. On random
rule sets: tests/test_constructs_random.py.

Shorthands: the offer's scope is the buy set, ``get`` the get set; an eligible line in the get
set is a get line, any other a buy line. ``k = floor(B/buy_qty)`` (B: buy units) capped by
``per_transaction``; the ``k·get_qty`` cheapest get units by current unit net are chosen (get
lines ranked as target_units ranks, taken from the tail). A line with ``n`` chosen units has
chosen net ``c = floor(n·net/q)``; percent gives ``rhu(c·bps)``, amount ``min(c, a·n)``,
price ``max(0, c − f·n)``.
"""

from __future__ import annotations

import pytest

from engine.pricing.constants import Reason
from engine.pricing.rules import parse_rules
from engine.pricing.types import AppliedOffer, Explanation, RemainingLimits
from engine.pricing.validate import validate
from tests.helpers import make_basket, make_catalogue, offer, ruleset

R = "retailer"
SWEATERS = {"skus": ["SW"]}
TSHIRTS = {"skus": ["T1", "T2", "T3"]}


def _rows(result):
    return [[(d.offer_id, d.amount_minor) for d in ln.discounts] for ln in result.lines]


def _buy_get(buy_qty=1, get_qty=1, get=TSHIRTS, **value):
    return {"buy_get": {"get": get, "buy_qty": buy_qty, "get_qty": get_qty, **value}}


def _offer(offer_id, reward, scope=SWEATERS, **fields):
    return offer(offer_id, reward, scope=scope, **fields)


# --- choosing and discounting get units ------------------------------------------------------


def test_a_sweater_and_a_tshirt_half_price(pricer):
    # given "buy a sweater, get a t-shirt 50% off"
    rules = ruleset(_offer("bg", _buy_get(percent_bps=5000)))
    basket = make_basket(("L1", "SW", 1, 4000), ("L2", "T1", 1, 1500))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then k = 1: L2's unit, rhu(1500·0.5) = 750; the sweater keeps its price
    assert _rows(result) == [[], [("bg", 750)]]
    assert result.offers == (AppliedOffer("bg", 750, R, 0, 0, 1, 1),)
    assert result.explanations == ()


def test_two_sweaters_three_tshirts_the_two_cheapest_tshirts(pricer):
    # given buy 1 get 1 at 50%, 2 sweaters and 3 t-shirts
    rules = ruleset(_offer("bg", _buy_get(percent_bps=5000)))
    basket = make_basket(
        ("L1", "SW", 2, 4000), ("L2", "T1", 1, 1500), ("L3", "T2", 1, 1200), ("L4", "T3", 1, 2000)
    )

    # when
    result = pricer(rules, None, basket)

    # then k = 2: the 2 cheapest get units, L3 (1200 → 600) and L2 (1500 → 750); L4 untouched
    assert _rows(result) == [[], [("bg", 750)], [("bg", 600)], []]
    assert result.offers == (AppliedOffer("bg", 1350, R, 0, 0, 2, 2),)


def test_amount_off_per_get_unit(pricer):
    # given buy 2 sweaters, get 5.00 off a t-shirt
    rules = ruleset(_offer("bg", _buy_get(2, 1, amount_minor=500)))
    basket = make_basket(("L1", "SW", 3, 4000), ("L2", "T1", 2, 800))

    # when
    result = pricer(rules, None, basket)

    # then k = 3//2 = 1: one of L2's units, c = 1600//2 = 800, min(800, 500) = 500; the line's
    # 2 units are counted
    assert _rows(result) == [[], [("bg", 500)]]
    assert result.offers == (AppliedOffer("bg", 500, R, 0, 0, 1, 2),)


def test_fixed_price_per_get_unit(pricer):
    # given buy a sweater, get 2 t-shirts at 9.99 each
    rules = ruleset(_offer("bg", _buy_get(1, 2, price_minor=999)))
    basket = make_basket(("L1", "SW", 1, 4000), ("L2", "T1", 3, 1500), ("L3", "T2", 1, 900))

    # when
    result = pricer(rules, None, basket)

    # then k = 1, 2 units: L3's (900, already below 9.99: max(0, 900 − 999) = 0) then one of
    # L2's: c = 4500//3 = 1500, 1500 − 999 = 501
    assert _rows(result) == [[], [("bg", 501)], []]
    assert result.offers == (AppliedOffer("bg", 501, R, 0, 0, 1, 3),)


def test_per_transaction_caps_the_repetitions(pricer):
    # given buy 1 get 1 free, once per basket
    rules = ruleset(
        _offer("bg", _buy_get(percent_bps=10000), limits={"per_transaction": 1}),
    )
    basket = make_basket(("L1", "SW", 3, 4000), ("L2", "T1", 3, 1000))

    # when
    result = pricer(rules, None, basket)

    # then k = min(3, 1) = 1: one of L2's units, c = 3000//3 = 1000
    assert _rows(result) == [[], [("bg", 1000)]]
    assert result.offers == (AppliedOffer("bg", 1000, R, 0, 0, 1, 3),)


def test_no_get_item_is_no_benefit(pricer):
    # given buy 1 get 1 at 50% and sweaters only
    rules = ruleset(_offer("bg", _buy_get(percent_bps=5000)))

    # when
    result = pricer(rules, None, make_basket(("L1", "SW", 2, 4000)), explain=True)

    # then
    assert result.offers == ()
    assert result.explanations == (Explanation("bg", Reason.NO_BENEFIT),)


def test_below_the_buy_quantity_is_a_shortfall(pricer):
    # given buy 3 get 1 and one sweater
    rules = ruleset(_offer("bg", _buy_get(3, 1, percent_bps=5000)))
    basket = make_basket(("L1", "SW", 1, 4000), ("L2", "T1", 1, 1000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then 3 − 1 = 2 buy units short; get units do not count
    assert result.discount_minor == 0
    assert result.explanations == (Explanation("bg", Reason.MIN_QTY_NOT_REACHED, 2),)


def test_get_items_alone_are_a_shortfall(pricer):
    # given buy 1 get 1 and t-shirts only
    rules = ruleset(_offer("bg", _buy_get(percent_bps=5000)))

    # when
    result = pricer(rules, None, make_basket(("L1", "T1", 4, 1000)), explain=True)

    # then the offer is considered (its get set matches) and 1 buy unit is missing
    assert result.explanations == (Explanation("bg", Reason.MIN_QTY_NOT_REACHED, 1),)


def test_get_units_are_ranked_by_their_net_after_an_earlier_offer(pricer):
    # given 10% off T2 first, then buy a sweater get a t-shirt 50% off
    rules = ruleset(
        offer("ten", {"percent_off": {"percent_bps": 1000}}, scope={"skus": ["T2"]}),
        _offer("bg", _buy_get(percent_bps=5000), priority=1),
    )
    basket = make_basket(("L1", "SW", 1, 4000), ("L2", "T1", 1, 1000), ("L3", "T2", 1, 1050))

    # when
    result = pricer(rules, None, basket)

    # then L3: rhu(105) = 105 → 945 < 1000 (though 1050 > 1000): L3 is the cheapest,
    # rhu(945·0.5) = rhu(472.5) = 473
    assert _rows(result) == [[], [], [("ten", 105), ("bg", 473)]]
    assert [ln.net_minor for ln in result.lines] == [4000, 1000, 472]


def test_a_line_in_both_sets_is_a_get_line(pricer):
    # given buy a "tops" item, get sku X free; X (unknown to the catalogue) is also a top
    rules = ruleset(
        _offer(
            "bg", _buy_get(get={"skus": ["X"]}, percent_bps=10000), scope={"categories": ["tops"]}
        )
    )
    both_lines = make_basket(("L1", "SW", 1, 4000, "tops"), ("L2", "X", 1, 1000, "tops"))

    # when
    result = pricer(rules, None, both_lines)
    alone = pricer(rules, None, make_basket(("L1", "X", 2, 1000, "tops")), explain=True)

    # then L2 is a get line: L1 buys, L2 is free; X alone buys nothing
    assert _rows(result) == [[], [("bg", 1000)]]
    assert alone.explanations == (Explanation("bg", Reason.MIN_QTY_NOT_REACHED, 1),)


def test_units_left_walk_the_discounted_get_lines(pricer):
    # given buy 1 get 2 free with 1 unit of total_units left
    rules = ruleset(_offer("bg", _buy_get(1, 2, percent_bps=10000), limits={"total_units": 9}))
    basket = make_basket(("L1", "SW", 2, 4000), ("L2", "T1", 2, 500))

    # when
    result = pricer(rules, None, basket, limits={"bg": RemainingLimits(units=1)})

    # then proposal L2 1000 (k = 2, 4 wanted, 2 there); the walk keeps 1 of 2 units: 500
    assert _rows(result) == [[], [("bg", 500)]]
    assert result.offers == (AppliedOffer("bg", 500, R, 0, 0, 2, 1),)


def test_no_discount_items_neither_buy_nor_get(pricer):
    # given the sweater is no_discount in the catalogue
    rules = ruleset(_offer("bg", _buy_get(percent_bps=5000)))
    catalogue = make_catalogue({"sku": "SW", "no_discount": True}, {"sku": "T1"})
    basket = make_basket(("L1", "SW", 1, 4000), ("L2", "T1", 1, 1000))

    # when
    result = pricer(rules, catalogue, basket, explain=True)

    # then no buy unit: 1 short
    assert result.explanations == (Explanation("bg", Reason.MIN_QTY_NOT_REACHED, 1),)


# --- validation -------------------------------------------------------------------------------


def _fields(*offers, catalogue=None):
    rules = parse_rules(ruleset(*offers))
    return [(v.field, v.description) for v in validate(rules, catalogue)]


def test_valid_buy_get_pass():
    assert (
        _fields(
            _offer("a", _buy_get(percent_bps=10000)),
            _offer("b", _buy_get(10**9, 10**9, amount_minor=10**12)),
            _offer("c", _buy_get(price_minor=0), limits={"total_units": 9}),
        )
        == []
    )


def test_buy_get_fields_are_checked_with_their_paths():
    found = _fields(
        _offer("a", {"buy_get": {"buy_qty": 1, "get_qty": 1, "percent_bps": 100}}),
        _offer("b", _buy_get(get={"skus": [""]}, percent_bps=100)),
        _offer("c", _buy_get(0, -1, percent_bps=10001)),
        _offer("d", _buy_get()),
        _offer("e", _buy_get(get={"skus": ["SW", "T1"]}, amount_minor=1)),
        _offer("f", _buy_get(price_minor=1), limits={"max_units_per_line": 1, "max_units": 2}),
    )
    assert [f for f, _ in found] == [
        "offers[0].buy_get.get",
        "offers[1].buy_get.get.skus[0]",
        "offers[2].buy_get.buy_qty",
        "offers[2].buy_get.get_qty",
        "offers[2].buy_get.percent_bps",
        "offers[3].buy_get",
        "offers[4].buy_get.get",
        "offers[5].limits.max_units_per_line",
        "offers[5].limits.max_units",
    ]
    assert "missing product set" in found[0][1]
    assert "exactly one of percent_bps, amount_minor and price_minor" in found[5][1]
    assert "overlap: both list sku 'SW'" in found[6][1]
    assert "not buy_get" in found[7][1]


def test_sets_overlapping_on_the_catalogue_are_refused():
    # given a category to buy and a sku of that category to get
    catalogue = make_catalogue({"sku": "T1", "category": "tops"})
    found = _fields(
        _offer(
            "a", _buy_get(get={"skus": ["T1"]}, percent_bps=100), scope={"categories": ["tops"]}
        ),
        catalogue=catalogue,
    )
    assert found == [
        (
            "offers[0].buy_get.get",
            "the get set and the scope (the buy set) overlap: catalogue sku 'T1' matches both",
        )
    ]


def _guarded(reward, **guardrails):
    return parse_rules({**ruleset(_offer("t", reward)), "guardrails": guardrails})


def test_guardrail_probes_price_buy_get():
    # buy 1 get 2 free: a probe of 1 sweater and 2 t-shirts at one price is 2/3 discount
    [problem] = validate(_guarded(_buy_get(1, 2, percent_bps=10000), max_discount_bps=5000))
    assert problem.field == "offers[0].buy_get"
    assert "above guardrails.max_discount_bps 5000" in problem.description
    # buy 2 get 1 free: a third at most
    assert validate(_guarded(_buy_get(2, 1, percent_bps=10000), max_discount_bps=5000)) == []


# --- the console's offer form -----------------------------------------------------------------


@pytest.mark.parametrize(
    "reward",
    [
        _buy_get(1, 1, percent_bps=5000),
        _buy_get(2, 1, get={"categories": ["tees"], "exclude_skus": ["T9"]}, amount_minor=1050),
        _buy_get(3, 2, get={"brands": ["b1"]}, price_minor=0),
    ],
)
def test_buy_get_survives_the_console_form(reward):
    from server.web.console import offer_form as F

    [o] = parse_rules({"offers": [{"id": "t", "scope": SWEATERS, **reward}]}).offers
    values = F.values_from_offer(o, "CNY", "Asia/Shanghai")
    assert values["kind"] == "buy_get"
    parsed = F.offer_from_values(values, "CNY", "Asia/Shanghai")
    assert parsed.errors == {}
    assert parsed.offer == o
