"""Unit rates (``Offer.unit_rates``, rules.proto field 33) and discounts on complete unit
groups only (``Limits.units_in_groups_of``, field 11).

Pinned examples worked out by hand from the rules (docs/pricing.md §5, "Unit limits"
and "Complete groups") run on both implementations (``pricer``);
explanations; validation field paths. On random rule sets:
tests/test_constructs_random.py.

Shorthands. unit_rates: the eligible lines with a net > 0 are listed as target_units'
MOST_EXPENSIVE lists them (unit net ``net_i/q_i`` descending, ties in basket order), over the
whole offer; the first ``max_units`` units of the list are chosen (all when 0); a line with
``n`` chosen units, ``f`` (0 or 1) of them the very first, has ``c = floor(n·net/q)`` and gets
``min(c, first·f + additional·(n − f))``. units_in_groups_of = N: with ``U`` eligible units,
``floor(U/N)·N`` units are discounted, walked in basket order as ``max_units`` (the smaller of
the two when both are set); ``U < N`` is MIN_QTY_NOT_REACHED, ``N − U`` short.
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


def _rates(first=0, additional=0, max_units=0):
    return {
        "unit_rates": {
            "first_minor": first,
            "additional_minor": additional,
            "max_units": max_units,
        }
    }


def _percent(bps):
    return {"percent_off": {"percent_bps": bps}}


# --- unit_rates -------------------------------------------------------------------------------


def test_first_unit_then_each_further_unit_up_to_max_units(pricer):
    # given "5.00 off the first unit, 2.00 off each further unit, up to 4 units"
    rules = ruleset(offer("flex", _rates(500, 200, 4)))
    basket = make_basket(("L1", "A", 1, 1200), ("L2", "B", 3, 800), ("L3", "C", 2, 300))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then listed L1 (1200), L2 (800), L3 (300): L1's unit is the first, min(1200, 500) = 500;
    # L2's 3 units are further units, c = 2400, min(2400, 3·200) = 600; 4 units taken, L3 none;
    # units counted 1 + 3 (the lines discounted, as for target_units)
    assert _rows(result) == [[("flex", 500)], [("flex", 600)], []]
    assert result.offers == (AppliedOffer("flex", 1100, R, 0, 0, 1, 4),)
    assert result.explanations == ()


def test_max_units_zero_takes_every_unit(pricer):
    # given 3.00 off the first unit and 1.00 off every further one
    rules = ruleset(offer("flex", _rates(300, 100)))
    basket = make_basket(("L1", "A", 2, 400), ("L2", "B", 3, 900))

    # when
    result = pricer(rules, None, basket)

    # then listed L2 (900), L1 (400): L2 holds the first unit, 300 + 2·100 = 500;
    # L1: 2·100 = 200
    assert _rows(result) == [[("flex", 200)], [("flex", 500)]]
    assert result.offers == (AppliedOffer("flex", 700, R, 0, 0, 1, 5),)


def test_splitting_a_line_does_not_change_the_discount(pricer):
    # given 3.00 off the first unit and 1.00 off each further one
    rules = ruleset(offer("flex", _rates(300, 100)))

    # when 2 units of A come as one line, and as two lines
    one = pricer(rules, None, make_basket(("L1", "A", 2, 1000)))
    two = pricer(rules, None, make_basket(("L1", "A", 1, 1000), ("L2", "A", 1, 1000)))

    # then 300 + 100 either way: the first unit is the offer's, not each line's
    assert _rows(one) == [[("flex", 400)]]
    assert one.discount_minor == two.discount_minor == 400
    assert [o.discount_minor for o in two.offers] == [400]


def test_a_rate_never_passes_the_chosen_units_net(pricer):
    # given 10.00 off the first unit and 5.00 off each further one
    rules = ruleset(offer("flex", _rates(1000, 500)))
    basket = make_basket(("L1", "A", 1, 600), ("L2", "B", 3, 150))

    # when
    result = pricer(rules, None, basket)

    # then L1: min(600, 1000) = 600; L2: c = 450, min(450, 3·500) = 450: both free
    assert _rows(result) == [[("flex", 600)], [("flex", 450)]]
    assert _nets(result) == [0, 0]


@pytest.mark.parametrize(
    ("lines", "rows"),
    [
        # equal unit nets: basket order, L1 holds the first unit
        ([("L1", "A", 1, 500), ("L2", "B", 1, 500)], [300, 100]),
        # 1000/2 = 500 and 500/1 tie exactly: L1 first again
        ([("L1", "A", 2, 500), ("L2", "B", 1, 500)], [400, 100]),
        # the dearer unit holds the first whatever its place
        ([("L1", "A", 1, 400), ("L2", "B", 1, 500)], [100, 300]),
    ],
)
def test_the_first_unit_is_the_most_expensive_ties_in_basket_order(pricer, lines, rows):
    # given 3.00 off the first unit, 1.00 off each further one
    rules = ruleset(offer("flex", _rates(300, 100)))

    # when
    result = pricer(rules, None, make_basket(*lines))

    # then
    assert [ln.gross_minor - ln.net_minor for ln in result.lines] == rows


def test_units_are_listed_by_their_net_after_an_earlier_offer(pricer):
    # given 10% off A first, then 0.50 off the first unit and 0.40 off one more
    rules = ruleset(
        offer("ten", _percent(1000), scope={"skus": ["A"]}),
        offer("flex", _rates(50, 40, 2), priority=1),
    )
    basket = make_basket(("L1", "A", 3, 102), ("L2", "B", 1, 95))

    # when
    result = pricer(rules, None, basket)

    # then L1: rhu(306·0.1) = 31 → net 275, unit net 91⅔ < 95: L2 holds the first unit,
    # min(95, 50) = 50; one of L1's units: c = 1·275//3 = 91, min(91, 40) = 40
    assert _rows(result) == [[("ten", 31), ("flex", 40)], [("flex", 50)]]
    assert _nets(result) == [235, 45]


def test_the_worked_example_after_ten_percent_off_the_shirts(pricer):
    # given 10% off B, then "5.00 off the first unit, 2.00 off each further one, 5 units"
    rules = ruleset(
        offer("ten", _percent(1000), scope={"skus": ["B"]}),
        offer("flex", _rates(500, 200, 5), priority=1),
    )
    basket = make_basket(("L1", "A", 1, 12000), ("L2", "B", 3, 2999), ("L3", "C", 2, 150))

    # when
    result = pricer(rules, None, basket)

    # then L2: rhu(8997·0.1) = 900 → net 8097, unit net 2699; listed L1, L2, L3: L1 holds the
    # first unit, 500; L2's 3: min(8097, 600) = 600; 1 of L3's 2: c = 300//2 = 150,
    # min(150, 200) = 150; units counted 1 + 3 + 2
    assert _rows(result) == [[("flex", 500)], [("ten", 900), ("flex", 600)], [("flex", 150)]]
    assert _nets(result) == [11500, 7497, 150]
    assert result.offers[1] == AppliedOffer("flex", 1250, R, 0, 0, 1, 6)


def test_only_the_additional_rate(pricer):
    # given nothing off the first unit, 2.00 off each further one, 3 units at most
    rules = ruleset(offer("flex", _rates(0, 200, 3)))
    basket = make_basket(("L1", "A", 1, 900), ("L2", "B", 4, 300))

    # when
    result = pricer(rules, None, basket)

    # then L1's unit is the first (0 off); 2 of L2's: c = 2·1200//4 = 600, min(600, 400) = 400
    assert _rows(result) == [[], [("flex", 400)]]
    assert result.offers == (AppliedOffer("flex", 400, R, 0, 0, 1, 4),)


def test_units_with_no_net_left_are_not_listed(pricer):
    # given A free first, then 2.00 off the first unit in scope
    rules = ruleset(
        offer("a-free", {"fixed_price": {"price_minor": 0}}, scope={"skus": ["A"]}),
        offer("flex", _rates(200, 100), priority=1),
    )
    basket = make_basket(("L1", "A", 1, 900), ("L2", "B", 1, 400))

    # when
    result = pricer(rules, None, basket)

    # then L1 (net 0) is not listed: L2 holds the first unit
    assert _rows(result) == [[("a-free", 900)], [("flex", 200)]]


def test_nothing_to_discount_is_no_benefit(pricer):
    # given A free, then unit rates on A only
    rules = ruleset(
        offer("a-free", {"fixed_price": {"price_minor": 0}}, scope={"skus": ["A"]}),
        offer("flex", _rates(200, 100), scope={"skus": ["A"]}, priority=1),
    )

    # when
    result = pricer(rules, None, make_basket(("L1", "A", 2, 100)), explain=True)

    # then
    assert [o.offer_id for o in result.offers] == ["a-free"]
    assert result.explanations == (Explanation("flex", Reason.NO_BENEFIT),)


def test_units_left_walk_the_discounted_lines(pricer):
    # given 5.00 off the first unit and 2.00 off the others, 2 units of total_units left
    rules = ruleset(offer("flex", _rates(500, 200), limits={"total_units": 10}))
    basket = make_basket(("L1", "A", 2, 1000), ("L2", "B", 1, 800))

    # when
    result = pricer(rules, None, basket, limits={"flex": RemainingLimits(units=2)})

    # then proposal L1 min(2000, 500 + 200) = 700, L2 200; L1 takes both units left, L2 none
    assert _rows(result) == [[("flex", 700)], []]
    assert result.offers == (AppliedOffer("flex", 700, R, 0, 0, 1, 2),)


# --- Limits.units_in_groups_of ----------------------------------------------------------------


def test_half_price_on_complete_groups_of_three_with_seven_units(pricer):
    # given "50% off, only full groups of 3"
    rules = ruleset(offer("groups", _percent(5000), limits={"units_in_groups_of": 3}))
    basket = make_basket(("L1", "A", 2, 100), ("L2", "B", 4, 250), ("L3", "C", 1, 90))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then U = 7: floor(7/3)·3 = 6 units, in basket order: L1's 2 (100), L2's 4 (500), L3 none
    assert _rows(result) == [[("groups", 100)], [("groups", 500)], []]
    assert result.offers == (AppliedOffer("groups", 600, R, 0, 0, 1, 6),)
    assert result.explanations == ()


def test_fewer_units_than_a_group_is_a_quantity_shortfall(pricer):
    # given the same offer and 2 units
    rules = ruleset(offer("groups", _percent(5000), limits={"units_in_groups_of": 3}))

    # when
    result = pricer(rules, None, make_basket(("L1", "A", 2, 100)), explain=True)

    # then nothing; 3 − 2 = 1 unit short
    assert result.discount_minor == 0
    assert result.explanations == (Explanation("groups", Reason.MIN_QTY_NOT_REACHED, 1),)
    assert "1 more unit(s) needed" in result.explanations[0].message


def test_min_qty_is_checked_before_the_first_complete_group(pricer):
    # given a minimum of 3 units and groups of 5, and 2 units in the basket
    rules = ruleset(
        offer(
            "groups",
            _percent(1000),
            conditions={"min_qty": 3},
            limits={"units_in_groups_of": 5},
        )
    )
    basket = make_basket(("L1", "A", 2, 100))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then the minimum speaks first: 3 − 2 = 1 unit short (not 5 − 2)
    assert result.explanations == (Explanation("groups", Reason.MIN_QTY_NOT_REACHED, 1),)


def test_groups_count_the_eligible_units_only(pricer):
    # given complete groups of 3 units of A
    rules = ruleset(
        offer("groups", _percent(5000), scope={"skus": ["A"]}, limits={"units_in_groups_of": 3})
    )
    basket = make_basket(("L1", "A", 2, 100), ("L2", "B", 5, 100))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then U = 2 (B is out of scope): 1 short
    assert result.explanations == (Explanation("groups", Reason.MIN_QTY_NOT_REACHED, 1),)


def test_min_qty_is_checked_before_the_groups(pricer):
    # given groups of 3 from 5 units on
    rules = ruleset(
        offer(
            "groups",
            _percent(5000),
            conditions={"min_qty": 5},
            limits={"units_in_groups_of": 3},
        )
    )

    # when
    result = pricer(rules, None, make_basket(("L1", "A", 2, 100)), explain=True)

    # then min_qty's shortfall, 5 − 2 = 3
    assert result.explanations == (Explanation("groups", Reason.MIN_QTY_NOT_REACHED, 3),)


@pytest.mark.parametrize(
    ("max_units", "rows", "units"),
    [
        # room min(4, 6) = 4: L1's 2 units (200), then 2 of L2's 5: 500·2//5 = 200
        (4, [200, 200], 4),
        # room min(8, 6) = 6: L1's 2 (200), then 4 of L2's 5: 500·4//5 = 400
        (8, [200, 400], 6),
        # no max_units: the groups' 6
        (0, [200, 400], 6),
    ],
)
def test_groups_and_max_units_share_one_room(pricer, max_units, rows, units):
    # given 1.00 off each unit, complete groups of 3, maybe max_units
    limits = {"units_in_groups_of": 3, "max_units": max_units}
    rules = ruleset(offer("g", {"amount_off": {"amount_minor": 100}}, limits=limits))
    basket = make_basket(("L1", "A", 2, 500), ("L2", "B", 5, 500))

    # when
    result = pricer(rules, None, basket)

    # then
    assert [ln.gross_minor - ln.net_minor for ln in result.lines] == rows
    assert result.offers == (AppliedOffer("g", sum(rows), R, 0, 0, 1, units),)


def test_a_line_cut_by_the_groups_keeps_the_floor_of_its_share(pricer):
    # given 33.33% off, complete groups of 2
    rules = ruleset(offer("g", _percent(3333), limits={"units_in_groups_of": 2}))

    # when 3 units
    result = pricer(rules, None, make_basket(("L1", "A", 3, 101)))

    # then proposal rhu(303·0.3333) = rhu(100.99) = 101; 2 of 3 units: 101·2//3 = 67
    assert _rows(result) == [[("g", 67)]]
    assert result.offers == (AppliedOffer("g", 67, R, 0, 0, 1, 2),)


def test_qty_tiers_step_reads_all_units_then_the_groups_cut(pricer):
    # given 20% off from 2 units, complete groups of 2
    tiers = {"qty_tiers": {"steps": [{"min_qty": 2, "percent_bps": 2000}]}}
    rules = ruleset(offer("g", tiers, limits={"units_in_groups_of": 2}))

    # when 3 units
    result = pricer(rules, None, make_basket(("L1", "A", 3, 100)))

    # then step reached with 3 units, rhu(300·0.2) = 60; 2 of 3 units: 60·2//3 = 40
    assert _rows(result) == [[("g", 40)]]


def test_groups_then_per_line_then_units_left(pricer):
    # given free, 1 unit per line, complete groups of 2, 1 unit of total_units left
    limits = {"units_in_groups_of": 2, "max_units_per_line": 1, "total_units": 9}
    rules = ruleset(offer("g", _percent(10000), limits=limits))
    basket = make_basket(("L1", "A", 3, 100), ("L2", "B", 1, 100))

    # when
    result = pricer(rules, None, basket, limits={"g": RemainingLimits(units=1)})

    # then U = 4, room 4; L1: 300·1//3 = 100 on 1 unit, the one unit left; L2: none left
    assert _rows(result) == [[("g", 100)], []]
    assert result.offers == (AppliedOffer("g", 100, R, 0, 0, 1, 1),)


# --- validation -------------------------------------------------------------------------------


def _fields(*offers):
    return [(v.field, v.description) for v in validate(parse_rules(ruleset(*offers)))]


def test_valid_unit_rates_and_groups_pass():
    assert (
        _fields(
            offer("a", _rates(500)),
            offer("b", _rates(0, 10**9, 10**9), limits={"total_units": 9}),
            offer("c", _percent(100), limits={"units_in_groups_of": 10**9, "max_units": 3}),
            offer("d", {"fixed_price": {"price_minor": 0}}, limits={"units_in_groups_of": 2}),
        )
        == []
    )


def test_unit_rates_fields_are_checked_with_their_paths():
    found = _fields(
        offer("a", _rates(-1, 10**9 + 1, -1)),
        offer("b", {"unit_rates": {}}),
        offer("c", _rates(100), limits={"max_units_per_line": 1, "max_units": 2}),
    )
    assert [f for f, _ in found] == [
        "offers[0].unit_rates.first_minor",
        "offers[0].unit_rates.additional_minor",
        "offers[0].unit_rates.max_units",
        "offers[1].unit_rates",
        "offers[2].limits.max_units_per_line",
        "offers[2].limits.max_units",
    ]
    assert "both 0" in found[3][1]
    assert "not unit_rates" in found[4][1]


@pytest.mark.parametrize(
    "reward",
    [
        _rates(100),
        {"target_units": {"units": 1, "percent_bps": 100}},
        {"buy_x_get_y": {"buy": 2, "get": 1, "percent_bps": 10000}},
        {"order_percent_off": {"percent_bps": 100}},
    ],
)
def test_groups_are_refused_where_max_units_is(reward):
    found = _fields(offer("x", reward, limits={"units_in_groups_of": 3}))
    assert [f for f, _ in found] == ["offers[0].limits.units_in_groups_of"]
    assert "only on percent_off, amount_off, fixed_price, qty_tiers" in found[0][1]


def test_negative_or_huge_groups_are_refused():
    found = _fields(
        offer("x", _percent(1), limits={"units_in_groups_of": -1}),
        offer("y", _percent(1), limits={"units_in_groups_of": 10**9 + 1}),
    )
    assert [f for f, _ in found] == [
        "offers[0].limits.units_in_groups_of",
        "offers[1].limits.units_in_groups_of",
    ]


def _guarded(reward, limits=None, **guardrails):
    rules = ruleset(offer("u", reward, limits=limits or {}))
    return parse_rules({**rules, "guardrails": guardrails})


def test_guardrail_probes_price_unit_rates():
    # 10.00 off the first unit: a basket of one unit at 10.00 is all discount
    [problem] = validate(_guarded(_rates(1000, 0, 1), max_discount_bps=5000))
    assert problem.field == "offers[0].unit_rates"
    assert "(100%), above guardrails.max_discount_bps 5000" in problem.description


def test_guardrail_probes_reach_a_complete_group():
    # free on complete groups of 150 units: only a probe of 150 units or more (past the 100 of
    # the "many units" probe) sees the discount
    [problem] = validate(
        _guarded(_percent(10000), {"units_in_groups_of": 150}, max_discount_bps=5000)
    )
    assert problem.field == "offers[0].percent_off.percent_bps"
    assert "(100%), above guardrails.max_discount_bps 5000" in problem.description


@pytest.mark.parametrize(
    ("reward", "limits"),
    [
        (_rates(500, 250, 4), {}),
        (_rates(0, 1050), {"total_units": 7}),
        (_percent(5000), {"units_in_groups_of": 3, "max_units": 6}),
    ],
)
def test_unit_rates_and_groups_survive_the_console_form(reward, limits):
    from server.web.console import offer_form as F

    file_offer = {
        "id": "u",
        "scope": {"all": True},
        **reward,
        **({"limits": limits} if limits else {}),
    }
    [o] = parse_rules({"offers": [file_offer]}).offers
    values = F.values_from_offer(o, "CNY", "Asia/Shanghai")
    assert values["kind"] == next(iter(reward))
    parsed = F.offer_from_values(values, "CNY", "Asia/Shanghai")
    assert parsed.errors == {}
    assert parsed.offer == o
