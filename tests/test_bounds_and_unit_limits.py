"""Upper bounds as conditions (``Conditions.max_basket_minor`` / ``max_amount_minor``) and unit
limits on item rewards (``Limits.max_units_per_line`` / ``max_units``): pinned examples run on
both implementations (``pricer``), validation (on random rule
sets: tests/test_constructs_random.py)."""

from __future__ import annotations

import pytest

from engine.pricing.constants import Reason
from engine.pricing.rules import parse_rules
from engine.pricing.types import AppliedOffer, Explanation, RemainingLimits
from engine.pricing.validate import validate
from tests.helpers import make_basket, member, offer, programme, ruleset

R = "retailer"


def _nets(result):
    return [ln.net_minor for ln in result.lines]


def _rows(result):
    return [[(d.offer_id, d.amount_minor) for d in ln.discounts] for ln in result.lines]


def _percent(bps):
    return {"percent_off": {"percent_bps": bps}}


# --- Conditions.max_basket_minor ------------------------------------------------------------


def test_max_basket_exceeded_is_explained_with_the_excess(pricer):
    # given 10% off while the basket is at most 2500
    rules = ruleset(offer("small-basket", _percent(1000), conditions={"max_basket_minor": 2500}))
    basket = make_basket(("L1", "A", 2, 1000), ("L2", "B", 1, 1000))

    # when the basket is 3000
    result = pricer(rules, None, basket, explain=True)

    # then nothing applies; the excess is 3000 − 2500 = 500
    assert result.discount_minor == 0
    assert result.explanations == (Explanation("small-basket", Reason.MAX_BASKET_EXCEEDED, 500),)
    assert "500 over" in result.explanations[0].message


def test_max_basket_met_exactly_applies(pricer):
    # given the same offer and a basket of exactly 2500
    rules = ruleset(offer("small-basket", _percent(1000), conditions={"max_basket_minor": 2500}))
    basket = make_basket(("L1", "A", 2, 1000), ("L2", "B", 1, 500))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then 10% of 2000 and of 500
    assert _rows(result) == [[("small-basket", 200)], [("small-basket", 50)]]
    assert result.offers == (AppliedOffer("small-basket", 250, R, 0, 0, 1, 3),)
    assert result.explanations == ()


def test_max_basket_reads_current_nets_after_earlier_discounts(pricer):
    # given 500 off each A first, then 10% off a basket of at most 2500
    rules = ruleset(
        offer("a-500", {"amount_off": {"amount_minor": 500}}, scope={"skus": ["A"]}),
        offer("small-basket", _percent(1000), priority=1, conditions={"max_basket_minor": 2500}),
    )
    basket = make_basket(("L1", "A", 1, 1000), ("L2", "B", 2, 1000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then gross 3000, 2500 after a-500: the bound holds; 10% of 500 and of 2000
    assert _rows(result) == [[("a-500", 500), ("small-basket", 50)], [("small-basket", 200)]]
    assert _nets(result) == [450, 1800]
    assert result.explanations == ()


def test_min_basket_is_checked_before_max_basket_and_max_basket_before_min_qty(pricer):
    rules = ruleset(
        offer(
            "band",
            _percent(1000),
            conditions={"min_basket_minor": 5000, "max_basket_minor": 6000},
        ),
        offer(
            "cap-then-qty",
            _percent(1000),
            conditions={"max_basket_minor": 2000, "min_qty": 10},
        ),
    )
    basket = make_basket(("L1", "A", 3, 1000))

    result = pricer(rules, None, basket, explain=True)

    # then 3000 is 2000 short of 5000; and 1000 over 2000 (before 7 units short)
    assert result.explanations == (
        Explanation("band", Reason.MIN_BASKET_NOT_REACHED, 2000),
        Explanation("cap-then-qty", Reason.MAX_BASKET_EXCEEDED, 1000),
    )


def test_max_basket_applies_to_points_offers(pricer):
    # given 10 bonus points per unit while the basket is at most 1000
    rules = ruleset(
        offer(
            "bonus",
            {"bonus_points": {"per_unit": 10, "per_transaction": 0}},
            conditions={"max_basket_minor": 1000},
        ),
        points=programme(),
    )
    basket = make_basket(("L1", "A", 3, 400))

    result = pricer(rules, None, basket, member(), explain=True)

    # then 1200 is 200 over
    assert result.explanations == (Explanation("bonus", Reason.MAX_BASKET_EXCEEDED, 200),)
    assert result.offers == ()


# --- Conditions.max_amount_minor ------------------------------------------------------------


def test_max_amount_exceeded_reads_the_scope_only(pricer):
    # given 10% off drinks while drinks come to at most 1500
    rules = ruleset(
        offer(
            "few-drinks",
            _percent(1000),
            scope={"categories": ["drinks"]},
            conditions={"max_amount_minor": 1500},
        )
    )
    over = make_basket(("L1", "A", 2, 1000, "drinks"), ("L2", "B", 1, 5000, "food"))
    within = make_basket(("L1", "A", 1, 1500, "drinks"), ("L2", "B", 1, 5000, "food"))

    # when
    refused = pricer(rules, None, over, explain=True)
    applied = pricer(rules, None, within, explain=True)

    # then 2000 in scope is 500 over; 1500 is within (food does not count)
    assert refused.explanations == (Explanation("few-drinks", Reason.MAX_AMOUNT_EXCEEDED, 500),)
    assert "500 over" in refused.explanations[0].message
    assert _rows(applied) == [[("few-drinks", 150)], []]


def test_min_qty_and_min_amount_are_checked_before_max_amount(pricer):
    rules = ruleset(
        offer("qty-first", _percent(1000), conditions={"min_qty": 5, "max_amount_minor": 100}),
        offer(
            "band",
            _percent(1000),
            conditions={"min_amount_minor": 4000, "max_amount_minor": 5000},
        ),
        offer("cap", _percent(1000), conditions={"max_amount_minor": 2999}),
    )
    basket = make_basket(("L1", "A", 3, 1000))

    result = pricer(rules, None, basket, explain=True)

    assert result.explanations == (
        Explanation("band", Reason.MIN_AMOUNT_NOT_REACHED, 1000),
        Explanation("cap", Reason.MAX_AMOUNT_EXCEEDED, 1),
        Explanation("qty-first", Reason.MIN_QTY_NOT_REACHED, 2),
    )  # evaluation order: (priority, id)


# --- Limits.max_units_per_line --------------------------------------------------------------


def test_max_units_per_line_keeps_the_floor_of_the_share(pricer):
    # given 10% off, at most 2 units of each line
    rules = ruleset(offer("two-each", _percent(1000), limits={"max_units_per_line": 2}))
    basket = make_basket(("L1", "A", 5, 1000), ("L2", "B", 1, 333), ("L3", "C", 3, 333))

    # when
    result = pricer(rules, None, basket)

    # then L1: 500·2/5 = 200; L2: 1 unit ≤ 2, rhu(33.3) = 33; L3: rhu(99.9) = 100, ⌊100·2/3⌋ = 66
    assert _rows(result) == [[("two-each", 200)], [("two-each", 33)], [("two-each", 66)]]
    # units: 2 + 1 + 2
    assert result.offers == (AppliedOffer("two-each", 299, R, 0, 0, 1, 5),)


def test_max_units_per_line_on_amount_off(pricer):
    # given 300 off each unit, at most 2 units per line
    rules = ruleset(
        offer("300-off", {"amount_off": {"amount_minor": 300}}, limits={"max_units_per_line": 2})
    )
    basket = make_basket(("L1", "A", 3, 1000))

    result = pricer(rules, None, basket)

    # then d = min(3000, 900) = 900 → ⌊900·2/3⌋ = 600
    assert _rows(result) == [[("300-off", 600)]]
    assert result.offers == (AppliedOffer("300-off", 600, R, 0, 0, 1, 2),)


# --- Limits.max_units -----------------------------------------------------------------------


def test_max_units_walks_the_lines_in_basket_order(pricer):
    # given a member price of 800, at most 4 units per basket
    rules = ruleset(offer("m800", {"fixed_price": {"price_minor": 800}}, limits={"max_units": 4}))
    basket = make_basket(
        ("L0", "Z", 1, 500),  # no discount: takes no units
        ("L1", "A", 2, 1000),
        ("L2", "B", 3, 1000),
        ("L3", "C", 2, 1000),
    )

    result = pricer(rules, None, basket)

    # then L1 takes 2 (400); L2 takes the 2 left of 3: ⌊600·2/3⌋ = 400; L3 nothing
    assert _rows(result) == [[], [("m800", 400)], [("m800", 400)], []]
    assert result.offers == (AppliedOffer("m800", 800, R, 0, 0, 1, 4),)


def test_qty_tiers_step_reads_all_units_then_max_units_caps(pricer):
    # given 4+ units 20% off, at most 3 units per basket
    rules = ruleset(
        offer(
            "tiers",
            {"qty_tiers": {"steps": [{"min_qty": 4, "percent_bps": 2000}]}},
            limits={"max_units": 3},
        )
    )
    basket = make_basket(("L1", "A", 3, 500), ("L2", "B", 2, 500))

    result = pricer(rules, None, basket)

    # then Q = 5 reaches 4: 300 and 200 proposed; L1 takes all 3 units, L2 none
    assert _rows(result) == [[("tiers", 300)], []]
    assert result.offers == (AppliedOffer("tiers", 300, R, 0, 0, 1, 3),)


@pytest.mark.parametrize(
    ("units_left", "rows", "total", "units"),
    [
        # per line 2: 100, 100, 100 (2 units each); max 5: L3 keeps ⌊100·1/2⌋ = 50
        (None, [[("half", 100)], [("half", 100)], [("half", 50)]], 250, 5),
        # then 4 units left: L1 2, L2 2, L3 nothing
        (4, [[("half", 100)], [("half", 100)], []], 200, 4),
        # 3 units left: L2 keeps ⌊100·1/2⌋ = 50
        (3, [[("half", 100)], [("half", 50)], []], 150, 3),
    ],
)
def test_per_line_then_per_offer_then_units_left(pricer, units_left, rows, total, units):
    # given 50% off, at most 2 units per line and 5 per basket
    rules = ruleset(offer("half", _percent(5000), limits={"max_units_per_line": 2, "max_units": 5}))
    basket = make_basket(("L1", "A", 4, 100), ("L2", "B", 3, 100), ("L3", "C", 2, 100))
    limits = {} if units_left is None else {"half": RemainingLimits(units=units_left)}

    result = pricer(rules, None, basket, limits=limits)

    # proposals 200, 150, 100 → per line ⌊200·2/4⌋ = 100, ⌊150·2/3⌋ = 100, 100
    assert _rows(result) == rows
    assert result.offers == (AppliedOffer("half", total, R, 0, 0, 1, units),)


def test_unit_limits_come_before_the_discount_cap(pricer):
    # given 50% off, at most 1 unit per line, at most 60 off in all
    rules = ruleset(
        offer(
            "capped",
            _percent(5000),
            limits={"max_units_per_line": 1, "max_discount_minor": 60},
        )
    )
    basket = make_basket(("L1", "A", 2, 100), ("L2", "B", 2, 100))

    result = pricer(rules, None, basket)

    # then 100, 100 → 50, 50 per line → cap 60 re-allocated 30, 30
    assert _rows(result) == [[("capped", 30)], [("capped", 30)]]
    assert result.offers == (AppliedOffer("capped", 60, R, 0, 0, 1, 2),)


# --- validation -----------------------------------------------------------------------------


def _fields(*offers):
    return [(v.field, v.description) for v in validate(parse_rules(ruleset(*offers)))]


def test_valid_bounds_and_unit_limits_pass():
    assert (
        _fields(
            offer(
                "ok",
                _percent(1000),
                conditions={
                    "min_basket_minor": 100,
                    "max_basket_minor": 100,
                    "max_amount_minor": 10**12,
                },
                limits={"max_units_per_line": 10**9, "max_units": 1},
            ),
            offer(
                "qt",
                {"qty_tiers": {"steps": [{"min_qty": 2, "percent_bps": 10}]}},
                limits={"max_units": 3},
            ),
        )
        == []
    )


def test_bounds_out_of_range_or_below_the_minimum_are_refused():
    found = _fields(
        offer(
            "x",
            _percent(1000),
            conditions={
                "min_basket_minor": 500,
                "max_basket_minor": 499,
                "min_amount_minor": 10,
                "max_amount_minor": 10**12 + 1,
            },
        ),
        offer(
            "y",
            _percent(1000),
            conditions={"max_basket_minor": -1, "min_amount_minor": 7, "max_amount_minor": 6},
        ),
    )
    assert [f for f, _ in found] == [
        "offers[0].conditions.max_basket_minor",
        "offers[0].conditions.max_amount_minor",
        "offers[1].conditions.max_basket_minor",
        "offers[1].conditions.max_amount_minor",
    ]
    assert "below min_basket_minor (499 < 500)" in found[0][1]
    assert "below min_amount_minor (6 < 7)" in found[3][1]


@pytest.mark.parametrize(
    "reward",
    [
        {"buy_x_get_y": {"buy": 2, "get": 1, "percent_bps": 10000}},
        {"bundle_price": {"components": [{"scope": {"skus": ["A"]}, "qty": 1}], "price_minor": 1}},
        {"spend_tiers": {"steps": [{"threshold_minor": 100, "amount_minor": 10}]}},
        {"order_percent_off": {"percent_bps": 100}},
    ],
)
def test_unit_limits_are_refused_outside_the_four_item_rewards(reward):
    found = _fields(offer("x", reward, limits={"max_units_per_line": 2, "max_units": 3}))
    assert [f for f, _ in found] == [
        "offers[0].limits.max_units_per_line",
        "offers[0].limits.max_units",
    ]
    assert all("only on percent_off, amount_off, fixed_price, qty_tiers" in d for _, d in found)


def test_negative_or_huge_unit_limits_are_refused():
    found = _fields(
        offer("x", _percent(1), limits={"max_units_per_line": -1, "max_units": 10**9 + 1})
    )
    assert [f for f, _ in found] == [
        "offers[0].limits.max_units_per_line",
        "offers[0].limits.max_units",
    ]
