"""Target units (``Offer.target_units``, rules.proto field 31): a reward on the cheapest or the
most expensive unit(s) of the scope, once per basket or per group of ``every`` units.

Pinned examples worked out by hand from the rule (docs/pricing.md §5, target_units) run
on both implementations (``pricer``); validation field paths. On random
rule sets: tests/test_constructs_random.py.

Shorthands: units are ranked by current unit net ``net_i/q_i`` descending, ties in basket
order (buy_x_get_y's list); MOST_EXPENSIVE takes from its head, CHEAPEST from its tail. A line
with ``n`` chosen units has chosen net ``c = floor(n·net/q)``; percent gives ``rhu(c·bps)``,
amount ``min(c, a·n)``, price ``max(0, c − f·n)``.
"""

from __future__ import annotations

import pytest

from engine.pricing.constants import Reason
from engine.pricing.rules import parse_rules
from engine.pricing.types import AppliedOffer, Explanation, RemainingLimits
from engine.pricing.validate import validate
from tests.helpers import make_basket, offer, ruleset

R = "retailer"


def _rows(result):
    return [[(d.offer_id, d.amount_minor) for d in ln.discounts] for ln in result.lines]


def _nets(result):
    return [ln.net_minor for ln in result.lines]


def _target(pick="CHEAPEST", units=1, every=0, **value):
    return {"target_units": {"pick": pick, "units": units, "every": every, **value}}


# --- choosing units ---------------------------------------------------------------------------


def test_once_per_order_the_cheapest_item_half_price(pricer):
    # given "once per order, 50% off the cheapest item"
    rules = ruleset(offer("cheap", _target(percent_bps=5000)))
    basket = make_basket(("L1", "A", 2, 1000), ("L2", "B", 1, 300), ("L3", "C", 3, 500))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then unit nets 1000, 300, 500: L2's unit; c = 300, rhu(300·5000/10000) = 150
    assert _rows(result) == [[], [("cheap", 150)], []]
    assert result.offers == (AppliedOffer("cheap", 150, R, 0, 0, 1, 1),)
    assert result.explanations == ()


def test_the_two_most_expensive_units_amount_off_each(pricer):
    # given "the 2 most expensive units at 10.00 off each"
    rules = ruleset(offer("top2", _target("MOST_EXPENSIVE", 2, amount_minor=1000)))
    basket = make_basket(("L1", "A", 1, 5000), ("L2", "B", 3, 2000), ("L3", "C", 1, 800))

    # when
    result = pricer(rules, None, basket)

    # then ranked L1 (5000), L2 (2000), L3 (800): L1's unit min(5000, 1000) = 1000, one of
    # L2's units: c = 1·6000//3 = 2000, min(2000, 1000) = 1000; units counted 1 + 3 (the lines
    # discounted, as for buy_x_get_y)
    assert _rows(result) == [[("top2", 1000)], [("top2", 1000)], []]
    assert result.offers == (AppliedOffer("top2", 2000, R, 0, 0, 1, 4),)


def test_amount_off_stops_at_the_chosen_units_net(pricer):
    # given 10.00 off each of the 3 most expensive units, which cost less
    rules = ruleset(offer("top3", _target("MOST_EXPENSIVE", 3, amount_minor=1000)))
    basket = make_basket(("L1", "A", 1, 600), ("L2", "B", 2, 400))

    # when
    result = pricer(rules, None, basket)

    # then L1: min(600, 1000) = 600; L2's 2 units: c = 800, min(800, 2000) = 800
    assert _rows(result) == [[("top3", 600)], [("top3", 800)]]
    assert _nets(result) == [0, 0]


def test_every_three_units_the_cheapest_free_with_seven_units(pricer):
    # given "for every 3 units in scope, the cheapest one free"
    rules = ruleset(offer("3for2", _target(units=1, every=3, percent_bps=10000)))
    basket = make_basket(("L1", "A", 2, 100), ("L2", "B", 4, 250), ("L3", "C", 1, 90))

    # when
    result = pricer(rules, None, basket)

    # then Q = 7, k = floor(7/3) = 2, so 2 units: L3's (90) then one of L1's (100):
    # c = 1·200//2 = 100; applications 2, units 2 + 1
    assert _rows(result) == [[("3for2", 100)], [], [("3for2", 90)]]
    assert result.offers == (AppliedOffer("3for2", 190, R, 0, 0, 2, 3),)


def test_fewer_units_than_every_is_a_quantity_shortfall(pricer):
    # given the same offer and 2 units
    rules = ruleset(offer("3for2", _target(units=1, every=3, percent_bps=10000)))
    basket = make_basket(("L1", "A", 2, 100))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then nothing; 3 − 2 = 1 unit short
    assert result.discount_minor == 0
    assert result.explanations == (Explanation("3for2", Reason.MIN_QTY_NOT_REACHED, 1),)


def test_fixed_price_per_unit_leaves_cheaper_units_alone(pricer):
    # given the 4 most expensive units at 5.00 each
    rules = ruleset(offer("at5", _target("MOST_EXPENSIVE", 4, price_minor=500)))
    basket = make_basket(("L1", "A", 1, 1200), ("L2", "B", 2, 800), ("L3", "C", 1, 400))

    # when
    result = pricer(rules, None, basket)

    # then L1: 1200 − 500 = 700; L2: c = 1600, 1600 − 2·500 = 600; L3: max(0, 400 − 500) = 0
    assert _rows(result) == [[("at5", 700)], [("at5", 600)], []]
    assert result.offers == (AppliedOffer("at5", 1300, R, 0, 0, 1, 3),)


@pytest.mark.parametrize(
    ("pick", "lines", "rows"),
    [
        # ranked L3 (500), L1 (300), L2 (300): the cheapest is the tail, L2
        ("CHEAPEST", [("L1", "A", 1, 300), ("L2", "B", 1, 300), ("L3", "C", 1, 500)], [0, 300, 0]),
        # the most expensive is the head: L1 before L2
        ("MOST_EXPENSIVE", [("L1", "A", 1, 500), ("L2", "B", 1, 500)], [500, 0]),
        # 300/2 = 150 and 150/1 tie exactly: ranked L1, L2; the cheapest is L2
        ("CHEAPEST", [("L1", "A", 2, 150), ("L2", "B", 1, 150)], [0, 150]),
    ],
)
def test_ties_go_as_in_buy_x_get_y(pricer, pick, lines, rows):
    # given one unit free
    rules = ruleset(offer("one", _target(pick, 1, percent_bps=10000)))

    # when
    result = pricer(rules, None, make_basket(*lines))

    # then the tie-break of buy_x_get_y's list
    assert [ln.gross_minor - ln.net_minor for ln in result.lines] == rows


def test_units_are_ranked_by_their_net_after_an_earlier_percent_offer(pricer):
    # given 10% off A first, then the cheapest unit free
    rules = ruleset(
        offer("ten", {"percent_off": {"percent_bps": 1000}}, scope={"skus": ["A"]}),
        offer("free", _target(percent_bps=10000), priority=1),
    )
    basket = make_basket(("L1", "A", 3, 102), ("L2", "B", 1, 95))

    # when
    result = pricer(rules, None, basket)

    # then L1: rhu(306·0.1) = 31 → net 275, unit net 91.67 < 95 (though 102 > 95): L1's unit,
    # c = 1·275//3 = 91
    assert _rows(result) == [[("ten", 31), ("free", 91)], []]
    assert _nets(result) == [184, 95]


def test_the_worked_example_every_three_after_ten_percent(pricer):
    # given 10% off A, then "for every 3 units, the cheapest one free"
    rules = ruleset(
        offer("ten", {"percent_off": {"percent_bps": 1000}}, scope={"skus": ["A"]}),
        offer("3for2", _target(units=1, every=3, percent_bps=10000), priority=1),
    )
    basket = make_basket(("L1", "A", 3, 102), ("L2", "B", 2, 100), ("L3", "C", 2, 95))

    # when
    result = pricer(rules, None, basket)

    # then L1: rhu(306·0.1) = 31 → 275, unit net 91⅔; k = floor(7/3) = 2; listed L2 (100),
    # L3 (95), L1 (91⅔): the last 2 units are L1's, c = floor(2·275/3) = 183
    assert _rows(result) == [[("ten", 31), ("3for2", 183)], [], []]
    assert _nets(result) == [92, 200, 190]
    assert result.offers[1] == AppliedOffer("3for2", 183, R, 0, 0, 2, 3)


def test_units_with_no_net_left_are_not_chosen(pricer):
    # given A free first, then 50% off the cheapest unit
    rules = ruleset(
        offer("a-free", {"fixed_price": {"price_minor": 0}}, scope={"skus": ["A"]}),
        offer("half", _target(percent_bps=5000), priority=1),
    )
    basket = make_basket(("L1", "A", 1, 100), ("L2", "B", 1, 400))

    # when
    result = pricer(rules, None, basket)

    # then L1's unit (net 0) would give nothing: L2's, 200
    assert _rows(result) == [[("a-free", 100)], [("half", 200)]]


def test_per_transaction_caps_the_repetitions(pricer):
    # given "every 2 units, the cheapest free", once per basket at most
    rules = ruleset(
        offer("b1g1", _target(units=1, every=2, percent_bps=10000), limits={"per_transaction": 1})
    )
    basket = make_basket(("L1", "A", 4, 100), ("L2", "B", 2, 50))

    # when
    result = pricer(rules, None, basket)

    # then k = min(6//2, 1) = 1: one of L2's units, c = 100//2 = 50
    assert _rows(result) == [[], [("b1g1", 50)]]
    assert result.offers == (AppliedOffer("b1g1", 50, R, 0, 0, 1, 2),)


def test_percent_rounds_once_per_line(pricer):
    # given 25% off the 3 cheapest units
    rules = ruleset(offer("q", _target(units=3, percent_bps=2500)))
    basket = make_basket(("L1", "A", 3, 33))

    # when
    result = pricer(rules, None, basket)

    # then c = 99, rhu(99·0.25) = rhu(24.75) = 25 (per unit it would be 3·rhu(8.25) = 24)
    assert _rows(result) == [[("q", 25)]]


def test_nothing_to_discount_is_no_benefit(pricer):
    # given the cheapest unit at 5.00 and nothing dearer than 4.00
    rules = ruleset(offer("at5", _target(price_minor=500)))
    basket = make_basket(("L1", "A", 1, 400))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then
    assert result.offers == ()
    assert result.explanations == (Explanation("at5", Reason.NO_BENEFIT),)


def test_min_qty_is_checked_first(pricer):
    # given the cheapest unit free from 3 units on
    rules = ruleset(offer("free", _target(percent_bps=10000), conditions={"min_qty": 3}))

    # when
    result = pricer(rules, None, make_basket(("L1", "A", 2, 100)), explain=True)

    # then
    assert result.explanations == (Explanation("free", Reason.MIN_QTY_NOT_REACHED, 1),)


def test_units_left_walk_the_discounted_lines(pricer):
    # given the 3 most expensive units free with 1 unit of total_units left
    rules = ruleset(
        offer("top", _target("MOST_EXPENSIVE", 3, percent_bps=10000), limits={"total_units": 5})
    )
    basket = make_basket(("L1", "A", 2, 300), ("L2", "B", 1, 200))

    # when
    result = pricer(rules, None, basket, limits={"top": RemainingLimits(units=1)})

    # then proposal L1 600, L2 200; the unit-caps walk: L1 takes 1 of 2 units, 600·1//2 = 300
    assert _rows(result) == [[("top", 300)], []]
    assert result.offers == (AppliedOffer("top", 300, R, 0, 0, 1, 1),)


# --- validation -------------------------------------------------------------------------------


def _fields(*offers):
    return [(v.field, v.description) for v in validate(parse_rules(ruleset(*offers)))]


def test_valid_target_units_pass():
    assert (
        _fields(
            offer("a", _target(percent_bps=10000)),
            offer("b", _target("MOST_EXPENSIVE", 3, 3, amount_minor=10**12)),
            offer("c", _target(units=10**9, price_minor=0), limits={"total_units": 9}),
        )
        == []
    )


def test_target_units_fields_are_checked_with_their_paths():
    found = _fields(
        offer("a", _target(units=0, every=-1, percent_bps=10001)),
        offer("b", _target(units=4, every=3, amount_minor=0)),
        offer("c", {"target_units": {"units": 1}}),
        offer("d", _target(price_minor=10**12 + 1), limits={"max_units_per_line": 1}),
    )
    assert [f for f, _ in found] == [
        "offers[0].target_units.units",
        "offers[0].target_units.every",
        "offers[0].target_units.percent_bps",
        "offers[1].target_units.units",
        "offers[1].target_units.amount_minor",
        "offers[2].target_units",
        "offers[3].limits.max_units_per_line",
        "offers[3].target_units.price_minor",
    ]
    assert "at most every (3)" in found[3][1]
    assert "exactly one of percent_bps, amount_minor and price_minor" in found[5][1]


def test_an_unknown_pick_is_refused():
    rules = parse_rules(ruleset(offer("a", _target(percent_bps=100))))
    rules.offers[0].target_units.pick = 7  # type: ignore[assignment]
    assert [v.field for v in validate(rules)] == ["offers[0].target_units.pick"]


def _guarded(reward, **guardrails):
    return parse_rules({**ruleset(offer("t", reward)), "guardrails": guardrails})


def test_guardrail_probes_price_target_units():
    # the cheapest unit free: a basket of one unit is all discount
    [problem] = validate(_guarded(_target(percent_bps=10000), max_discount_bps=5000))
    assert problem.field == "offers[0].target_units"
    assert "(100%), above guardrails.max_discount_bps 5000" in problem.description
    # one unit free per 3: a third of any probe basket at most
    assert validate(_guarded(_target(every=3, percent_bps=10000), max_discount_bps=5000)) == []


@pytest.mark.parametrize(
    "reward",
    [
        _target("MOST_EXPENSIVE", 2, 3, price_minor=0),
        _target(units=1, amount_minor=1050),
        _target(units=2, every=2, percent_bps=1250),
    ],
)
def test_target_units_survive_the_console_form(reward):
    from server.web.console import offer_form as F

    [o] = parse_rules({"offers": [{"id": "t", "scope": {"all": True}, **reward}]}).offers
    values = F.values_from_offer(o, "CNY", "Asia/Shanghai")
    assert values["kind"] == "target_units"
    parsed = F.offer_from_values(values, "CNY", "Asia/Shanghai")
    assert parsed.errors == {}
    assert parsed.offer == o
