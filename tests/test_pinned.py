"""Pinned pricing examples: exact integers worked out by hand from docs/pricing.md.

Every expected number carries its arithmetic in a comment, like docs/design.md §4.3, and none was
copied from a program's output. Each test runs once per implementation (``pricer`` fixture).

Shorthands in comments: ``rhu(x)`` = round half up; ``alloc D / w1:w2`` = largest remainder
(docs/pricing.md §7), with the remainders ``D·w_i mod W`` written out when they matter.
"""

from __future__ import annotations

import pytest

from engine.pricing.constants import (
    LIMIT_BUDGET,
    LIMIT_MEMBER_USES,
    LIMIT_TOTAL_USES,
    Reason,
    Tender,
)
from engine.pricing.types import (
    AppliedOffer,
    Explanation,
    LineDiscount,
    LineResult,
    PointsComponent,
    RemainingLimits,
)
from tests.helpers import (
    make_basket,
    make_catalogue,
    member,
    offer,
    programme,
    ruleset,
    utc,
)

R = "retailer"


def _nets(result):
    return [ln.net_minor for ln in result.lines]


def _rows(result, i):
    return [(d.offer_id, d.amount_minor) for d in result.lines[i].discounts]


def _percent(bps):
    return {"percent_off": {"percent_bps": bps}}


def _amount(minor):
    return {"amount_off": {"amount_minor": minor}}


def _order_amount(minor):
    return {"order_amount_off": {"amount_minor": minor}}


# --- docs/design.md §4.3 ----------------------------------------------------------------------


def test_worked_example_of_design_4_3(pricer):
    # given the Watsons-style programme and the three offers of DESIGN §4.3, and a VIP
    rules = ruleset(
        offer(
            "vip-skincare",
            _percent(2000),
            scope={"categories": ["skincare"]},
            priority=10,
            conditions={"tiers": ["vip"]},
        ),
        offer(
            "cola-3for2",
            {"buy_x_get_y": {"buy": 2, "get": 1, "percent_bps": 10000}},
            scope={"skus": ["COLA"]},
            priority=20,
        ),
        offer(
            "spend-ladder",
            {
                "spend_tiers": {
                    "steps": [
                        {"threshold_minor": 10000, "amount_minor": 1000},
                        {"threshold_minor": 20000, "amount_minor": 3000},
                    ]
                }
            },
            priority=100,
        ),
        points=programme(point_value_minor=10, earn_per_amount_minor=1000),
        tiers=({"id": "vip", "name": "VIP", "earn_multiplier_bps": 10000},),
    )
    basket = make_basket(
        ("L1", "CREAM", 2, 5990, "skincare"),
        ("L2", "COLA", 3, 350),
        ("L3", "RICE", 1, 4500, "rice"),
    )

    # when
    result = pricer(rules, None, basket, member(tier="vip"))

    # then
    # L1: 11980 − rhu(11980·2000/10000) = 11980 − 2396 = 9584; L2: one free unit 350 → 700
    # S = 9584 + 700 + 4500 = 14784 ≥ 10000 → 1000 off, alloc over 9584 : 700 : 4500:
    #   bases 648, 47, 304 (999); remainders 3968, 5152, 5664 → last unit to L3
    assert result.lines == (
        # 9584 − 648 = 8936; 13·8936 = 116168 = 8·13784 + 5896
        LineResult(
            "L1",
            11980,
            8936,
            (LineDiscount("vip-skincare", 2396, R, 0), LineDiscount("spend-ladder", 648, R, 0)),
            0,
            8,
        ),
        # 700 − 47 = 653; 13·653 = 8489 = 0·13784 + 8489 (second largest: +1)
        LineResult(
            "L2",
            1050,
            653,
            (LineDiscount("cola-3for2", 350, R, 0), LineDiscount("spend-ladder", 47, R, 0)),
            0,
            1,
        ),
        # 4500 − 305 = 4195; 13·4195 = 54535 = 3·13784 + 13183 (largest: +1)
        LineResult("L3", 4500, 4195, (LineDiscount("spend-ladder", 305, R, 0),), 0, 4),
    )
    assert result.gross_minor == 17530  # 11980 + 1050 + 4500
    assert result.discount_minor == 3746  # 2396 + 350 + 1000
    assert result.net_minor == 13784  # 8936 + 653 + 4195
    assert result.payable_minor == 13784  # no points tender
    assert result.points_earned == 13  # ⌊13784·10000 / (1000·10000)⌋
    assert result.points == (PointsComponent("", "base", 13, (8, 1, 4)),)
    # last field: units of the lines each offer discounted (2 + 3 + 6; engine/pricing/units.py)
    assert result.offers == (
        AppliedOffer("vip-skincare", 2396, R, 0, 0, 1, 2),
        AppliedOffer("cola-3for2", 350, R, 0, 0, 1, 3),
        AppliedOffer("spend-ladder", 1000, R, 0, 0, 1, 6),
    )
    assert result.tender == Tender.NONE
    assert result.explanations == ()  # explain not asked


# --- one pinned example per reward kind ---------------------------------------------------


def test_percent_off_on_each_line(pricer):
    # given 15% off snacks
    rules = ruleset(offer("snacks-15", _percent(1500), scope={"categories": ["snack"]}))
    basket = make_basket(("L1", "CHIPS", 2, 1999, "snack"), ("L2", "WATER", 1, 300, "drink"))

    # when
    result = pricer(rules, None, basket)

    # then rhu(3998·1500/10000) = rhu(599.7) = 600; the drink is out of scope
    assert _rows(result, 0) == [("snacks-15", 600)]
    assert _nets(result) == [3398, 300]  # 3998 − 600
    assert result.offers == (AppliedOffer("snacks-15", 600, R, 0, 0, 1, 2),)


def test_percent_off_rounds_half_up_per_line(pricer):
    # given 0.01% off (1 bps) everything
    rules = ruleset(offer("tiny", _percent(1)))
    basket = make_basket(
        ("A", "A", 1, 5000), ("B", "B", 1, 4999), ("C", "C", 1, 15000), ("D", "D", 1, 14999)
    )

    # when
    result = pricer(rules, None, basket)

    # then 5000 → 0.5 → 1; 4999 → 0.4999 → 0 (no row); 15000 → 1.5 → 2; 14999 → 1.4999 → 1
    assert [_rows(result, i) for i in range(4)] == [[("tiny", 1)], [], [("tiny", 2)], [("tiny", 1)]]
    assert result.offers == (AppliedOffer("tiny", 4, R, 0, 0, 1, 3),)  # 1 + 0 + 2 + 1


def test_amount_off_per_unit_capped_at_the_net(pricer):
    # given 300 off each unit
    rules = ruleset(offer("300-off", _amount(300)))
    basket = make_basket(("L1", "A", 2, 1000), ("L2", "B", 3, 200))

    # when
    result = pricer(rules, None, basket)

    # then L1: min(2000, 300·2) = 600; L2: min(600, 300·3 = 900) = 600 → net 0
    assert _rows(result, 0) == [("300-off", 600)]
    assert _rows(result, 1) == [("300-off", 600)]
    assert _nets(result) == [1400, 0]
    assert result.discount_minor == 1200


def test_fixed_price_is_a_member_price(pricer):
    # given a member price of 800 per unit
    rules = ruleset(offer("member-800", {"fixed_price": {"price_minor": 800}}))
    basket = make_basket(("L1", "A", 2, 1000), ("L2", "B", 1, 700))

    # when
    result = pricer(rules, None, basket)

    # then L1: max(0, 2000 − 800·2) = 400; L2: max(0, 700 − 800) = 0, no row
    assert _rows(result, 0) == [("member-800", 400)]
    assert _rows(result, 1) == []
    assert _nets(result) == [1600, 700]
    assert result.offers == (AppliedOffer("member-800", 400, R, 0, 0, 1, 2),)


def test_qty_tiers_highest_reached_step_applies_to_all_scope_lines(pricer):
    # given 2+ yoghurts 10% off, 4+ yoghurts 20% off
    rules = ruleset(
        offer(
            "yog",
            {
                "qty_tiers": {
                    "steps": [
                        {"min_qty": 2, "percent_bps": 1000},
                        {"min_qty": 4, "percent_bps": 2000},
                    ]
                }
            },
            scope={"categories": ["yoghurt"]},
        )
    )
    basket = make_basket(
        ("L1", "X", 3, 1000, "yoghurt"),
        ("L2", "Y", 2, 500, "yoghurt"),
        ("L3", "Z", 1, 900, "bread"),
    )

    # when
    result = pricer(rules, None, basket)

    # then Q = 3 + 2 = 5 ≥ 4 → 2000 bps: L1 3000·0.2 = 600; L2 1000·0.2 = 200
    assert _rows(result, 0) == [("yog", 600)]
    assert _rows(result, 1) == [("yog", 200)]
    assert _nets(result) == [2400, 800, 900]


def test_buy_x_get_y_cheapest_units_free_capped_per_transaction(pricer):
    # given buy 2 get 1 free on drinks, at most 2 applications per basket
    rules = ruleset(
        offer(
            "drinks-3for2",
            {"buy_x_get_y": {"buy": 2, "get": 1, "percent_bps": 10000}},
            scope={"categories": ["drinks"]},
            limits={"per_transaction": 2},
        )
    )
    basket = make_basket(
        ("L1", "A", 2, 500, "drinks"),
        ("L2", "B", 3, 300, "drinks"),
        ("L3", "C", 3, 300, "drinks"),
        ("L4", "D", 1, 100, "drinks"),
    )

    # when
    result = pricer(rules, None, basket)

    # then U = 9, k = ⌊9/3⌋ = 3 capped to 2 → the last 2 of the units by price descending
    # 500 500 | 300 300 300 (L2) | 300 300 300 (L3, later in basket) | 100 (L4):
    # one unit of L3 (300) and the unit of L4 (100)
    assert [_rows(result, i) for i in range(4)] == [
        [],
        [],
        [("drinks-3for2", 300)],
        [("drinks-3for2", 100)],
    ]
    assert _nets(result) == [1000, 900, 600, 0]
    assert result.offers == (AppliedOffer("drinks-3for2", 400, R, 0, 0, 2, 4),)


def test_buy_x_get_y_second_unit_half_price_rounds_half_up(pricer):
    # given buy 1 get 1 at 50% off
    rules = ruleset(offer("b1g1-half", {"buy_x_get_y": {"buy": 1, "get": 1, "percent_bps": 5000}}))
    basket = make_basket(("L1", "A", 1, 999), ("L2", "B", 1, 555))

    # when
    result = pricer(rules, None, basket)

    # then k = 1; the cheaper unit (L2) gets rhu(555·5000/10000) = rhu(277.5) = 278
    assert _rows(result, 0) == []
    assert _rows(result, 1) == [("b1g1-half", 278)]
    assert _nets(result) == [999, 277]


def test_bundle_price_with_two_components(pricer):
    # given burger + fries for 2000
    fries = ["FRIES_S", "FRIES_M", "FRIES_L"]
    rules = ruleset(
        offer(
            "meal",
            {
                "bundle_price": {
                    "price_minor": 2000,
                    "components": [
                        {"scope": {"skus": ["BURGER"]}, "qty": 1},
                        {"scope": {"skus": fries}, "qty": 1},
                    ],
                }
            },
            scope={"skus": ["BURGER", *fries]},
        )
    )
    basket = make_basket(
        ("L1", "BURGER", 2, 1500),
        ("L2", "FRIES_S", 1, 800),
        ("L3", "FRIES_L", 1, 900),
        ("L4", "FRIES_M", 1, 700),
    )

    # when
    result = pricer(rules, None, basket)

    # then k = min(⌊2/1⌋, ⌊3/1⌋) = 2; fries take their 2 dearest units: L3 900, L2 800
    # D = 3000 + 800 + 900 − 2·2000 = 700, alloc over 3000 : 800 : 900 (W = 4700):
    #   bases 446, 119, 134 (699); remainders 3800, 700, 200 → +1 to L1
    assert [_rows(result, i) for i in range(4)] == [
        [("meal", 447)],
        [("meal", 119)],
        [("meal", 134)],
        [],
    ]
    assert _nets(result) == [2553, 681, 766, 700]  # 3000−447, 800−119, 900−134
    assert result.offers == (AppliedOffer("meal", 700, R, 0, 0, 2, 4),)


def test_spend_tiers_repeat_capped_per_transaction(pricer):
    # given "every 100 yuan off 10", at most twice per basket
    rules = ruleset(
        offer(
            "every-100",
            {
                "spend_tiers": {
                    "steps": [{"threshold_minor": 10000, "amount_minor": 1000}],
                    "repeat": True,
                }
            },
            limits={"per_transaction": 2},
        )
    )
    basket = make_basket(("L1", "A", 1, 20000), ("L2", "B", 1, 15000))

    # when
    result = pricer(rules, None, basket)

    # then S = 35000, ⌊35000/10000⌋ = 3 capped to 2 → D = 2000, alloc over 20000 : 15000:
    #   bases 1142, 857; remainders 30000, 5000 → +1 to L1
    assert _rows(result, 0) == [("every-100", 1143)]
    assert _rows(result, 1) == [("every-100", 857)]
    assert _nets(result) == [18857, 14143]
    assert result.offers == (AppliedOffer("every-100", 2000, R, 0, 0, 2, 2),)


def test_spend_tiers_percent_step(pricer):
    # given 300 off from 50 yuan, 5% off from 100 yuan
    rules = ruleset(
        offer(
            "ladder",
            {
                "spend_tiers": {
                    "steps": [
                        {"threshold_minor": 5000, "amount_minor": 300},
                        {"threshold_minor": 10000, "percent_bps": 500},
                    ]
                }
            },
        )
    )
    basket = make_basket(("L1", "A", 1, 12345))

    # when
    result = pricer(rules, None, basket)

    # then S = 12345 reaches 10000: rhu(12345·500/10000) = rhu(617.25) = 617
    assert _rows(result, 0) == [("ladder", 617)]
    assert _nets(result) == [11728]


def test_order_percent_off_allocated_by_nets(pricer):
    # given 10% off the order
    rules = ruleset(offer("order-10", {"order_percent_off": {"percent_bps": 1000}}))
    basket = make_basket(("L1", "A", 1, 3333), ("L2", "B", 1, 6667))

    # when
    result = pricer(rules, None, basket)

    # then D = rhu(10000·0.1) = 1000, alloc over 3333 : 6667: bases 333, 666;
    # remainders 3000, 7000 → +1 to L2
    assert _rows(result, 0) == [("order-10", 333)]
    assert _rows(result, 1) == [("order-10", 667)]
    assert _nets(result) == [3000, 6000]


def test_order_amount_off_capped_at_scope_spend(pricer):
    # given 500 off an order worth 300
    rules = ruleset(offer("order-500", _order_amount(500)))
    basket = make_basket(("L1", "A", 1, 100), ("L2", "B", 1, 200))

    # when
    result = pricer(rules, None, basket)

    # then D = min(300, 500) = 300, alloc over 100 : 200 → 100, 200 exactly
    assert _rows(result, 0) == [("order-500", 100)]
    assert _rows(result, 1) == [("order-500", 200)]
    assert _nets(result) == [0, 0]
    assert result.offers == (AppliedOffer("order-500", 300, R, 0, 0, 1, 2),)


def test_points_multiplier_double_points(pricer):
    # given 1 point per yuan and double points on drinks, a member without tier
    rules = ruleset(
        offer(
            "double-drinks",
            {"points_multiplier": {"extra_bps": 10000}},
            scope={"categories": ["drink"]},
        ),
        points=programme(earn_per_amount_minor=100),
    )
    basket = make_basket(("L1", "A", 1, 1050, "snack"), ("L2", "B", 1, 2030, "drink"))

    # when
    result = pricer(rules, None, basket, member())

    # then base ⌊3080·10000/(100·10000)⌋ = 30, alloc over 1050 : 2030 (W = 3080):
    #   bases 10 (31500 = 10·3080 + 700), 19 (60900 = 19·3080 + 2380) → +1 to L2
    # double: ⌊2030·10000/(100·10000)⌋ = 20, all on L2
    assert result.points == (
        PointsComponent("", "base", 30, (10, 20)),
        PointsComponent("double-drinks", "multiplier", 20, (0, 20)),
    )
    assert result.points_earned == 50  # 30 + 20
    assert [ln.points_earned for ln in result.lines] == [10, 40]
    assert result.offers == (AppliedOffer("double-drinks", 0, R, 0, 20, 1),)


def test_bonus_points_per_unit_and_per_transaction(pricer):
    # given 5 points per unit of A or A2 plus 21 once, 1 base point per 10 yuan
    rules = ruleset(
        offer(
            "bonus-a",
            {"bonus_points": {"per_unit": 5, "per_transaction": 21}},
            scope={"skus": ["A", "A2"]},
        ),
        points=programme(earn_per_amount_minor=1000),
    )
    basket = make_basket(("L1", "A", 3, 100), ("L2", "A2", 1, 100), ("L3", "B", 1, 100))

    # when
    result = pricer(rules, None, basket, member())

    # then U = 3 + 1 = 4 → 5·4 + 21 = 41, alloc by quantity 3 : 1: bases 30 (123 = 30·4 + 3),
    # 10 (41 = 10·4 + 1) → +1 to L1; base points ⌊500/1000⌋ = 0 are not listed
    assert result.points == (PointsComponent("bonus-a", "bonus", 41, (31, 10, 0)),)
    assert result.points_earned == 41
    assert result.offers == (AppliedOffer("bonus-a", 0, R, 0, 41, 1),)


# --- stacking modes -------------------------------------------------------------------------


def test_stackable_applies_on_top_of_earlier_discounts(pricer):
    # given two stackable 10% offers
    rules = ruleset(
        offer("first", _percent(1000), priority=10), offer("second", _percent(1000), priority=20)
    )
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(rules, None, basket)

    # then 1000·0.1 = 100 → 900; then rhu(900·0.1) = 90 → 810
    assert _rows(result, 0) == [("first", 100), ("second", 90)]
    assert _nets(result) == [810]


def test_exclusive_takes_undiscounted_lines_and_locks_them(pricer):
    # given an exclusive snack offer first, then offers that meet its lock
    rules = ruleset(
        offer(
            "x-snacks",
            _percent(1000),
            scope={"categories": ["snack"]},
            priority=10,
            mode="EXCLUSIVE",
        ),
        offer("y-all", _percent(1000), priority=20),
        offer("z-all-exclusive", _percent(2000), priority=30, mode="EXCLUSIVE"),
        offer("w-snacks", _percent(1000), scope={"categories": ["snack"]}, priority=40),
    )
    basket = make_basket(("L1", "S", 1, 1000, "snack"), ("L2", "D", 1, 1000, "drink"))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then x: L1 100 off, L1 locked; y: L1 dropped, L2 100 off;
    # z: L1 locked, L2 already discounted → none left; w: its only line is locked by x
    assert _rows(result, 0) == [("x-snacks", 100)]
    assert _rows(result, 1) == [("y-all", 100)]
    assert _nets(result) == [900, 900]
    assert result.explanations == (
        Explanation("z-all-exclusive", Reason.ALREADY_DISCOUNTED),
        Explanation("w-snacks", Reason.EXCLUDED_BY_EXCLUSIVE, 0, "x-snacks"),
    )


def test_exclusive_order_locks_the_basket_but_points_are_earned(pricer):
    # given an EXCLUSIVE_ORDER item offer, another item offer and an order offer
    rules = ruleset(
        offer("p-exclusive-order", _percent(1000), priority=10, mode="EXCLUSIVE_ORDER"),
        offer("q-item", _percent(1000), priority=20),
        offer("r-order", _order_amount(100), priority=0),
        points=programme(earn_per_amount_minor=100),
    )
    basket = make_basket(("L1", "A", 1, 1000), ("L2", "B", 1, 2000))

    # when
    result = pricer(rules, None, basket, member(), explain=True)

    # then p: 100 and 200 off; q and r (order phase comes after the item phase whatever its
    # priority) are excluded by p
    assert _nets(result) == [900, 1800]
    assert result.offers == (AppliedOffer("p-exclusive-order", 300, R, 0, 0, 1, 2),)
    assert result.explanations == (
        Explanation("q-item", Reason.EXCLUDED_BY_EXCLUSIVE, 0, "p-exclusive-order"),
        Explanation("r-order", Reason.EXCLUDED_BY_EXCLUSIVE, 0, "p-exclusive-order"),
    )
    # ⌊2700·10000/(100·10000)⌋ = 27, alloc over 900 : 1800 → 9, 18 exactly
    assert result.points == (PointsComponent("", "base", 27, (9, 18)),)


def test_exclusive_order_needs_a_basket_without_discount(pricer):
    # given a stackable item discount on A and an EXCLUSIVE_ORDER order discount
    rules = ruleset(
        offer("a-10", _percent(1000), scope={"skus": ["A"]}, priority=10),
        offer("order-excl", _order_amount(100), priority=20, mode="EXCLUSIVE_ORDER"),
    )
    basket = make_basket(("L1", "A", 1, 1000), ("L2", "B", 1, 1000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then
    assert _nets(result) == [900, 1000]  # only a-10: 1000·0.1 = 100
    assert result.explanations == (Explanation("order-excl", Reason.ALREADY_DISCOUNTED),)


# --- groups -------------------------------------------------------------------------------


def test_group_best_deal_wins_on_the_same_state(pricer):
    # given three members of group "g"; the third needs a 5000 basket
    rules = ruleset(
        offer("g1", _percent(500), priority=10, group="g"),
        offer("g2", _percent(2000), priority=20, group="g"),
        offer("g3", _amount(300), priority=30, group="g", conditions={"min_basket_minor": 5000}),
    )
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then g1 would give 50, g2 200; g3 sees the same undiscounted 1000: 5000 − 1000 = 4000
    assert _rows(result, 0) == [("g2", 200)]
    assert result.explanations == (
        Explanation("g1", Reason.LOST_TO_GROUP, 0, "g2"),
        Explanation("g3", Reason.MIN_BASKET_NOT_REACHED, 4000),
    )


def test_group_tie_goes_to_the_lower_priority(pricer):
    # given two group members saving 100 each; "z-first" has the lower priority
    rules = ruleset(
        offer("z-first", _amount(100), priority=10, group="g"),
        offer("a-second", _percent(1000), priority=20, group="g"),
    )
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then 100 = 1000·0.1: a tie, priority 10 beats 20 although "a" < "z"
    assert _rows(result, 0) == [("z-first", 100)]
    assert result.explanations == (Explanation("a-second", Reason.LOST_TO_GROUP, 0, "z-first"),)


def test_group_tie_with_equal_priority_goes_to_the_lower_id(pricer):
    # given two group members saving 100 each at the same priority
    rules = ruleset(
        offer("g-b", _percent(1000), priority=20, group="g"),
        offer("g-a", _amount(100), priority=20, group="g"),
    )
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then 100 = 100: "g-a" < "g-b"
    assert _rows(result, 0) == [("g-a", 100)]
    assert result.explanations == (Explanation("g-b", Reason.LOST_TO_GROUP, 0, "g-a"),)


def test_group_runs_at_its_first_member_position_over_the_whole_rule_set(pricer):
    # given group "g" whose first member (priority 5) is not in the basket, its second at 50,
    # and an EXCLUSIVE offer at priority 20
    rules = ruleset(
        offer("g1", _percent(5000), scope={"skus": ["NOT-HERE"]}, priority=5, group="g"),
        offer("g2", _percent(1000), priority=50, group="g"),
        offer("s-exclusive", _amount(50), priority=20, mode="EXCLUSIVE"),
    )
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then the group runs at priority 5: g2 takes 100 first, so s-exclusive finds the line
    # discounted; g1 is not considered and says nothing
    assert _rows(result, 0) == [("g2", 100)]
    assert result.explanations == (Explanation("s-exclusive", Reason.ALREADY_DISCOUNTED),)


# --- caps ---------------------------------------------------------------------------------


def test_max_discount_caps_and_reallocates_by_uncapped_line_discounts(pricer):
    # given half price, at most 1000 per transaction
    rules = ruleset(offer("half", _percent(5000), limits={"max_discount_minor": 1000}))
    basket = make_basket(("L1", "A", 1, 1500), ("L2", "B", 1, 701), ("L3", "C", 1, 333))

    # when
    result = pricer(rules, None, basket)

    # then uncapped 750, rhu(350.5) = 351, rhu(166.5) = 167 → 1268 > 1000;
    # alloc 1000 over 750 : 351 : 167 (W = 1268): bases 591, 276, 131 (998);
    # remainders 612, 1032, 892 → +1 to L2 and L3
    assert [_rows(result, i) for i in range(3)] == [
        [("half", 591)],
        [("half", 277)],
        [("half", 132)],
    ]
    assert _nets(result) == [909, 424, 201]
    assert result.offers == (AppliedOffer("half", 1000, R, 0, 0, 1, 3),)


def test_remaining_budget_caps_an_order_discount_and_ties_go_to_the_earlier_line(pricer):
    # given 1000 off the order but only 250 of budget left
    rules = ruleset(offer("order-1000", _order_amount(1000)))
    basket = make_basket(("L1", "A", 1, 3000), ("L2", "B", 1, 1000))

    # when
    result = pricer(rules, None, basket, limits={"order-1000": RemainingLimits(budget_minor=250)})

    # then D = min(1000, 250) = 250, alloc over 3000 : 1000: bases 187, 62;
    # remainders 750000 − 187·4000 = 2000 and 250000 − 62·4000 = 2000 → tie → L1
    assert _rows(result, 0) == [("order-1000", 188)]
    assert _rows(result, 1) == [("order-1000", 62)]
    assert result.discount_minor == 250


def test_item_cap_is_the_smaller_of_max_discount_and_budget(pricer):
    # given 10% off, max 50 per transaction, 60 of budget left
    rules = ruleset(offer("ten", _percent(1000), limits={"max_discount_minor": 50}))
    basket = make_basket(("L1", "A", 1, 1000), ("L2", "B", 1, 500))

    # when
    result = pricer(rules, None, basket, limits={"ten": RemainingLimits(budget_minor=60)})

    # then uncapped 100 + 50 = 150 > cap min(50, 60) = 50; alloc 50 over 100 : 50:
    # bases 33 (5000 = 33·150 + 50), 16 (2500 = 16·150 + 100) → +1 to L2
    assert _rows(result, 0) == [("ten", 33)]
    assert _rows(result, 1) == [("ten", 17)]


def test_allocation_ties_go_to_the_earlier_lines(pricer):
    # given 2 off an order of three equal lines
    rules = ruleset(offer("two-off", _order_amount(2)))
    basket = make_basket(("L1", "A", 1, 100), ("L2", "B", 1, 100), ("L3", "C", 1, 100))

    # when
    result = pricer(rules, None, basket)

    # then bases 0, 0, 0; remainders 200, 200, 200 → L1 and L2 get one each
    assert [_rows(result, i) for i in range(3)] == [[("two-off", 1)], [("two-off", 1)], []]
    assert _nets(result) == [99, 99, 100]


# --- points ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "points"),
    [
        ("gold", 18),  # ⌊12345·15000/(1000·10000)⌋ = ⌊18.5175⌋
        ("silver", 14),  # ⌊12345·12000/(1000·10000)⌋ = ⌊14.814⌋
        ("", 12),  # no tier: ⌊12345·10000/(1000·10000)⌋ = ⌊12.345⌋
        ("platinum", 12),  # a tier the rule set does not know counts as no tier
    ],
)
def test_base_points_use_the_tier_multiplier(pricer, tier, points):
    # given 1 point per 10 yuan, silver x1.2 and gold x1.5
    rules = ruleset(
        points=programme(earn_per_amount_minor=1000),
        tiers=(
            {"id": "silver", "earn_multiplier_bps": 12000},
            {"id": "gold", "earn_multiplier_bps": 15000},
        ),
    )
    basket = make_basket(("L1", "A", 1, 12345))

    # when
    result = pricer(rules, None, basket, member(tier=tier))

    # then
    assert result.points == (PointsComponent("", "base", points, (points,)),)
    assert result.lines[0].points_earned == points


def test_no_points_for_a_guest_and_points_offers_need_a_member(pricer):
    # given a programme and a bonus offer, and a guest basket
    rules = ruleset(
        offer("bonus", {"bonus_points": {"per_transaction": 10}}),
        points=programme(earn_per_amount_minor=100),
    )
    basket = make_basket(("L1", "A", 1, 5000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then
    assert result.points == ()
    assert result.points_earned == 0
    assert result.explanations == (Explanation("bonus", Reason.MEMBER_REQUIRED),)


# --- points tender --------------------------------------------------------------------------

_TENDER_PROGRAMME = programme(
    point_value_minor=10,
    earn_per_amount_minor=1000,
    min_redeem_points=200,
    redeem_step_points=100,
    max_redeem_share_bps=5000,
)


@pytest.mark.parametrize(
    ("requested", "available", "redeemed", "tender", "earned"),
    [
        # share limit: ⌊10000·5000/(10000·10)⌋ = 500 points; earned = ⌊(10000 − 10·redeemed)/1000⌋
        (-1, 1234, 500, Tender.OK, 5),  # min(1234, 500) = 500, a multiple of 100; ⌊5000/1000⌋
        (500, 1000, 500, Tender.OK, 5),  # exactly what was asked
        (350, 1234, 300, Tender.LIMITED, 7),  # 350 → step 100 → 300 < 350; ⌊7000/1000⌋
        (1000, 250, 200, Tender.LIMITED, 8),  # available 250 → 200 < 1000; ⌊8000/1000⌋
        (150, 1234, 0, Tender.BELOW_MINIMUM, 10),  # 150 → 100 < minimum 200
        (-1, 199, 0, Tender.BELOW_MINIMUM, 10),  # 199 → 100 < 200
        (-1, -50, 0, Tender.BELOW_MINIMUM, 10),  # a negative balance counts as 0
        (0, 1234, 0, Tender.NONE, 10),  # nothing asked
    ],
)
def test_points_tender_limits(pricer, requested, available, redeemed, tender, earned):
    # given a programme: point = 10 fen, max 50% of the bill, steps of 100, minimum 200
    rules = ruleset(points=_TENDER_PROGRAMME)
    basket = make_basket(("L1", "A", 1, 10000))

    # when
    result = pricer(
        rules, None, basket, member(available_points=available), redeem_points=requested
    )

    # then the tender is worth redeemed·10 fen and points are earned on what is left
    assert (result.points_redeemed, result.tender) == (redeemed, tender)
    assert result.points_tender_minor == redeemed * 10
    assert result.payable_minor == 10000 - redeemed * 10
    assert result.points_earned == earned


def test_points_tender_for_a_guest_is_not_member(pricer):
    # given a guest asking to pay with points
    rules = ruleset(points=_TENDER_PROGRAMME)
    basket = make_basket(("L1", "A", 1, 10000))

    # when
    result = pricer(rules, None, basket, redeem_points=-1)

    # then
    assert (result.points_redeemed, result.tender, result.payable_minor) == (
        0,
        Tender.NOT_MEMBER,
        10000,
    )


def test_points_tender_disabled_without_a_share(pricer):
    # given a programme with max_redeem_share_bps = 0
    rules = ruleset(points=programme(max_redeem_share_bps=0))
    basket = make_basket(("L1", "A", 1, 10000))

    # when
    result = pricer(rules, None, basket, member(available_points=5000), redeem_points=-1)

    # then
    assert (result.points_redeemed, result.tender) == (0, Tender.DISABLED)


def test_points_tender_is_allocated_by_nets_and_earning_uses_the_rest(pricer):
    # given half the bill payable with points, a member with plenty
    rules = ruleset(points=_TENDER_PROGRAMME)
    basket = make_basket(("L1", "A", 1, 6001), ("L2", "B", 1, 3999))

    # when
    result = pricer(rules, None, basket, member(available_points=10000), redeem_points=-1)

    # then ⌊10000·5000/(10000·10)⌋ = 500 points = 5000 fen, alloc over 6001 : 3999:
    # bases 3000, 1999; remainders 30005000 mod 10000 = 5000, 19995000 mod 10000 = 5000 → L1
    assert [ln.points_tender_minor for ln in result.lines] == [3001, 1999]
    assert (result.points_redeemed, result.points_tender_minor, result.tender) == (
        500,
        5000,
        Tender.OK,
    )
    assert result.payable_minor == 5000  # 10000 − 5000
    # B = (6001 − 3001) + (3999 − 1999) = 5000 → 5 points, alloc 3000 : 2000 → 3, 2
    assert result.points == (PointsComponent("", "base", 5, (3, 2)),)


# --- flags ----------------------------------------------------------------------------------


def test_no_discount_and_no_earn_lines(pricer):
    # given tobacco (no discount) and a gift card (no points)
    catalogue = make_catalogue(
        {"sku": "TOBACCO", "no_discount": True}, {"sku": "GIFT", "no_earn": True}
    )
    rules = ruleset(
        offer("ten", _percent(1000), priority=10),
        offer("tobacco-deal", _amount(100), scope={"skus": ["TOBACCO"]}, priority=20),
        offer("gift-bonus", {"bonus_points": {"per_transaction": 50}}, scope={"skus": ["GIFT"]}),
        points=programme(earn_per_amount_minor=100),
    )
    basket = make_basket(
        ("L1", "FOOD", 1, 5000), ("L2", "TOBACCO", 1, 3000), ("L3", "GIFT", 1, 2000)
    )

    # when
    result = pricer(rules, catalogue, basket, member(), explain=True)

    # then 10% off food (500) and the gift card (200), not tobacco
    assert _nets(result) == [4500, 3000, 1800]
    # B = 4500 + 3000 = 7500 (gift card excluded) → 75 points, alloc 4500 : 3000 → 45, 30
    assert result.points == (PointsComponent("", "base", 75, (45, 30, 0)),)
    assert result.explanations == (
        Explanation("tobacco-deal", Reason.NO_ELIGIBLE_LINES),
        Explanation("gift-bonus", Reason.NO_ELIGIBLE_LINES),
    )


# --- time -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        ("2025-03-12T14:00:00", True),  # 22:00 in Shanghai: from_hour is inclusive
        ("2025-03-12T17:59:59", True),  # 01:59:59 the next day
        ("2025-03-12T18:00:00", False),  # 02:00: to_hour is exclusive
        ("2025-03-12T13:59:59", False),  # 21:59:59
        ("2025-03-12T04:00:00", False),  # noon
    ],
)
def test_hour_window_across_midnight_in_the_rule_set_timezone(pricer, at, inside):
    # given a late-night offer 22:00–02:00 Asia/Shanghai (UTC+8)
    rules = ruleset(offer("night", _percent(1000), conditions={"from_hour": 22, "to_hour": 2}))
    basket = make_basket(("L1", "A", 1, 1000), at=utc(at))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then 1000·0.1 = 100 off inside the window
    if inside:
        assert (_nets(result), result.explanations) == ([900], ())
    else:
        assert _nets(result) == [1000]
        assert result.explanations == (Explanation("night", Reason.NOT_IN_TIME_WINDOW),)


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        ("2025-03-14T15:59:59", False),  # Friday 23:59:59 in Shanghai
        ("2025-03-14T16:00:00", True),  # Saturday 00:00 in Shanghai (still Friday in UTC)
        ("2025-03-16T15:59:59", True),  # Sunday 23:59:59
        ("2025-03-16T16:00:00", False),  # Monday 00:00
    ],
)
def test_weekdays_in_the_rule_set_timezone(pricer, at, inside):
    # given a weekend offer (ISO 6 and 7)
    rules = ruleset(offer("weekend", _percent(1000), conditions={"weekdays": [6, 7]}))
    basket = make_basket(("L1", "A", 1, 1000), at=utc(at))

    # when
    result = pricer(rules, None, basket)

    # then
    assert _nets(result) == ([900] if inside else [1000])


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        ("2025-02-28T23:59:59.999", False),  # whole seconds: 23:59:59 < starts_at
        ("2025-03-01T00:00:00", True),  # starts_at is inclusive
        ("2025-03-31T23:59:59.999", True),  # whole seconds: 23:59:59 < ends_at
        ("2025-04-01T00:00:00", False),  # ends_at is exclusive
    ],
)
def test_starts_at_inclusive_ends_at_exclusive(pricer, at, inside):
    # given an offer valid in March 2025 (UTC bounds)
    rules = ruleset(
        offer(
            "march",
            _percent(1000),
            conditions={"starts_at": "2025-03-01T00:00:00Z", "ends_at": "2025-04-01T00:00:00Z"},
        )
    )
    basket = make_basket(("L1", "A", 1, 1000), at=utc(at))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then
    assert _nets(result) == ([900] if inside else [1000])
    assert result.explanations == (
        () if inside else (Explanation("march", Reason.NOT_IN_TIME_WINDOW),)
    )


# --- coupons and limits ---------------------------------------------------------------------

_COUPON_RULES = ruleset(offer("c10", _percent(1000), activation="COUPON"))


def test_coupon_not_presented_is_not_considered(pricer):
    # given a coupon offer, a member whose wallet does not hold it
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(_COUPON_RULES, None, basket, member(wallet={"other": 1}), explain=True)

    # then no output at all
    assert (_nets(result), result.offers, result.explanations) == ([1000], (), ())


def test_presented_coupon_applies_for_a_guest(pricer):
    # given a presented code of the coupon offer
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(_COUPON_RULES, None, basket, coupons=["c10"])

    # then 1000·0.1 = 100
    assert result.offers == (AppliedOffer("c10", 100, R, 0, 0, 1, 1),)


@pytest.mark.parametrize(
    ("uses", "coupons", "applies"),
    [
        (0, [], False),  # wallet coupon used up
        (0, ["c10"], True),  # ... but a presented code gives one use
        (2, [], True),  # wallet coupon with uses left
    ],
)
def test_wallet_coupon_uses(pricer, uses, coupons, applies):
    # given a member's wallet coupon of c10
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(
        _COUPON_RULES, None, basket, member(wallet={"c10": uses}), coupons=coupons, explain=True
    )

    # then
    if applies:
        assert (_nets(result), result.explanations) == ([900], ())
    else:
        assert _nets(result) == [1000]
        assert result.explanations == (Explanation("c10", Reason.COUPON_USED_UP),)


@pytest.mark.parametrize(
    ("remaining", "detail"),
    [
        (RemainingLimits(member_uses=0), LIMIT_MEMBER_USES),
        (RemainingLimits(total_uses=0), LIMIT_TOTAL_USES),
        (RemainingLimits(budget_minor=0), LIMIT_BUDGET),
        (RemainingLimits(member_uses=0, total_uses=0, budget_minor=0), LIMIT_MEMBER_USES),
        (RemainingLimits(member_uses=1, total_uses=0), LIMIT_TOTAL_USES),
        (RemainingLimits(member_uses=3, total_uses=7, budget_minor=5000), None),
        (RemainingLimits(), None),  # nothing tracked
    ],
)
def test_limit_reached_reasons(pricer, remaining, detail):
    # given an offer and what is left of its limits
    rules = ruleset(offer("ten", _percent(1000)))
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(rules, None, basket, member(), limits={"ten": remaining}, explain=True)

    # then
    if detail is None:
        assert (_nets(result), result.explanations) == ([900], ())
    else:
        assert _nets(result) == [1000]
        assert result.explanations == (Explanation("ten", Reason.LIMIT_REACHED, detail),)


# --- explanations -----------------------------------------------------------------------------


def test_explanations_give_shortfalls_in_evaluation_order(pricer):
    # given offers that each miss a threshold on a 4200 basket (snack 1500, drink 2700)
    snack, drink = {"categories": ["snack"]}, {"categories": ["drink"]}
    rules = ruleset(
        offer(
            "ladder",
            {
                "spend_tiers": {
                    "steps": [
                        {"threshold_minor": 5000, "amount_minor": 500},
                        {"threshold_minor": 8000, "amount_minor": 1000},
                    ]
                }
            },
            priority=1,
        ),
        offer("min-basket", _percent(1000), priority=10, conditions={"min_basket_minor": 5000}),
        offer("min-qty", _percent(1000), scope=snack, priority=20, conditions={"min_qty": 3}),
        offer(
            "min-amount",
            _percent(1000),
            scope=snack,
            priority=30,
            conditions={"min_amount_minor": 2000},
        ),
        offer(
            "qty-tiers",
            {"qty_tiers": {"steps": [{"min_qty": 3, "percent_bps": 1000}]}},
            scope=drink,
            priority=40,
        ),
        offer("bxgy", {"buy_x_get_y": {"buy": 2, "get": 1, "percent_bps": 10000}}, priority=50),
        offer(
            "bundle",
            {
                "bundle_price": {
                    "price_minor": 1000,
                    "components": [
                        {"scope": snack, "qty": 1},
                        {"scope": drink, "qty": 1},
                        {"scope": {"categories": ["fruit"]}, "qty": 1},
                    ],
                }
            },
            priority=60,
        ),
    )
    basket = make_basket(("L1", "A", 1, 1500, "snack"), ("L2", "B", 1, 2700, "drink"))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then nothing applies; item phase first (by priority), the order-phase ladder last
    assert result.offers == ()
    assert result.explanations == (
        Explanation("min-basket", Reason.MIN_BASKET_NOT_REACHED, 800),  # 5000 − 4200
        Explanation("min-qty", Reason.MIN_QTY_NOT_REACHED, 2),  # 3 − 1 unit
        Explanation("min-amount", Reason.MIN_AMOUNT_NOT_REACHED, 500),  # 2000 − 1500
        Explanation("qty-tiers", Reason.MIN_QTY_NOT_REACHED, 2),  # 3 − 1 unit
        Explanation("bxgy", Reason.MIN_QTY_NOT_REACHED, 1),  # x + y − U = 3 − 2
        Explanation("bundle", Reason.MIN_QTY_NOT_REACHED, 1),  # 0 + 0 + (1 − 0) fruit
        Explanation("ladder", Reason.MIN_SPEND_NOT_REACHED, 800),  # 5000 − 4200
    )


def test_thresholds_are_measured_on_current_nets(pricer):
    # given 20% off, then a 10000 spend ladder on a 12000 basket
    rules = ruleset(
        offer("twenty", _percent(2000), priority=10),
        offer(
            "ladder",
            {"spend_tiers": {"steps": [{"threshold_minor": 10000, "amount_minor": 1000}]}},
            priority=20,
        ),
    )
    basket = make_basket(("L1", "A", 1, 12000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then 12000 − 2400 = 9600 < 10000: 400 short
    assert _nets(result) == [9600]
    assert result.explanations == (Explanation("ladder", Reason.MIN_SPEND_NOT_REACHED, 400),)


def test_condition_checks_in_order(pricer):
    # given a silver member of segment "young-parents" born in July, shopping in March at s1/pos
    rules = ruleset(
        offer("store-and-tier", _percent(100), conditions={"stores": ["s9"], "tiers": ["gold"]}),
        offer("web-only", _percent(100), conditions={"channels": ["web"]}),
        offer("gold-only", _percent(100), conditions={"tiers": ["gold"]}),
        offer("pet-owners", _percent(100), conditions={"segments": ["pet-owners"]}),
        offer("birthday", _percent(100), conditions={"birthday_month": True}),
        offer(
            "parents",
            _percent(1000),
            conditions={"segments": ["pet-owners", "young-parents"], "tiers": ["silver", "gold"]},
        ),
        tiers=(
            {"id": "silver", "earn_multiplier_bps": 10000},
            {"id": "gold", "earn_multiplier_bps": 10000},
        ),
    )
    basket = make_basket(("L1", "A", 1, 1000))
    shopper = member(tier="silver", segments=("young-parents",), birthday_month=7)

    # when
    result = pricer(rules, None, basket, shopper, explain=True)

    # then all priorities are 0, so evaluation goes by id
    assert result.offers == (AppliedOffer("parents", 100, R, 0, 0, 1, 1),)  # 1000·0.1
    assert result.explanations == (
        Explanation("birthday", Reason.NOT_BIRTHDAY_MONTH),
        Explanation("gold-only", Reason.TIER_NOT_ELIGIBLE),
        Explanation("pet-owners", Reason.SEGMENT_NOT_ELIGIBLE),
        Explanation("store-and-tier", Reason.STORE_NOT_ELIGIBLE),
        Explanation("web-only", Reason.CHANNEL_NOT_ELIGIBLE),
    )


def test_member_conditions_on_a_guest_basket(pricer):
    # given offers for members, tiers and segments, and a guest
    rules = ruleset(
        offer("members", _percent(1000), conditions={"member_required": True}),
        offer("segment", _percent(1000), conditions={"segments": ["x"]}),
        offer("anyone", _percent(1000)),
    )
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then only "anyone" applies: 1000·0.1 = 100
    assert result.offers == (AppliedOffer("anyone", 100, R, 0, 0, 1, 1),)
    assert result.explanations == (
        Explanation("members", Reason.MEMBER_REQUIRED),
        Explanation("segment", Reason.MEMBER_REQUIRED),
    )


def test_explanations_are_empty_unless_asked(pricer):
    # given an offer that cannot apply
    rules = ruleset(offer("web-only", _percent(1000), conditions={"channels": ["web"]}))
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(rules, None, basket)

    # then
    assert result.explanations == ()


def test_offer_without_a_basket_line_in_scope_says_nothing(pricer):
    # given an offer on a sku the basket does not have
    rules = ruleset(offer("elsewhere", _percent(1000), scope={"skus": ["NOPE"]}))
    basket = make_basket(("L1", "A", 1, 1000))

    # when
    result = pricer(rules, None, basket, explain=True)

    # then
    assert (result.offers, result.explanations) == ((), ())


# --- funding --------------------------------------------------------------------------------


def test_funded_amounts_are_rounded_per_line(pricer):
    # given a vendor paying half of 333 off per unit, and a retailer order discount with a
    # 33.33% share and no funder id
    rules = ruleset(
        offer(
            "vendor-deal",
            _amount(333),
            priority=10,
            funding={"funder_id": "vendor-a", "funded_share_bps": 5000},
        ),
        offer(
            "promo",
            _order_amount(100),
            scope={"skus": ["A"]},
            priority=20,
            funding={"funded_share_bps": 3333},
        ),
    )
    basket = make_basket(("L1", "A", 1, 1000), ("L2", "B", 1, 101))

    # when
    result = pricer(rules, None, basket)

    # then L1: 333 off, funded rhu(166.5) = 167; L2: min(101, 333) = 101, rhu(50.5) = 51
    # promo on L1: 100 off, funded rhu(100·3333/10000) = rhu(33.33) = 33, funder "retailer"
    assert result.lines[0].discounts == (
        LineDiscount("vendor-deal", 333, "vendor-a", 167),
        LineDiscount("promo", 100, R, 33),
    )
    assert result.lines[1].discounts == (LineDiscount("vendor-deal", 101, "vendor-a", 51),)
    assert _nets(result) == [567, 0]  # 1000 − 333 − 100; 101 − 101
    # funded sums the rounded rows: 167 + 51 = 218 (not rhu(434·0.5) = 217)
    assert result.offers == (
        AppliedOffer("vendor-deal", 434, "vendor-a", 218, 0, 1, 2),
        AppliedOffer("promo", 100, R, 33, 0, 1, 1),
    )


# --- thresholds at their boundary: one unit below, exactly at, one unit above ---------------
# A basket of one line, 1 x 1000 (or q x 100 for quantities), and an offer whose threshold is
# 1000 (or 5 units); "at" must apply, "below" must not (with a shortfall of 1).

_SPEND = {"spend_tiers": {"steps": [{"threshold_minor": 1000, "amount_minor": 100}]}}
_QTY = {"qty_tiers": {"steps": [{"min_qty": 5, "percent_bps": 1000}]}}


@pytest.mark.parametrize(
    ("reward", "conditions", "price", "qty", "reason"),
    [
        (_SPEND, {}, 1000, 1, None),  # S = 1000 = threshold -> 100 off
        (_SPEND, {}, 999, 1, Reason.MIN_SPEND_NOT_REACHED),
        (_SPEND, {}, 1001, 1, None),
        (_order_amount(100), {"min_basket_minor": 1000}, 1000, 1, None),
        (_order_amount(100), {"min_basket_minor": 1000}, 999, 1, Reason.MIN_BASKET_NOT_REACHED),
        (_order_amount(100), {"min_amount_minor": 1000}, 1000, 1, None),
        (_order_amount(100), {"min_amount_minor": 1000}, 999, 1, Reason.MIN_AMOUNT_NOT_REACHED),
        (_order_amount(100), {"min_qty": 5}, 100, 5, None),
        (_order_amount(100), {"min_qty": 5}, 100, 4, Reason.MIN_QTY_NOT_REACHED),
        (_QTY, {}, 200, 5, None),  # 5 units -> 10% of 1000 = 100 off
        (_QTY, {}, 200, 4, Reason.MIN_QTY_NOT_REACHED),
    ],
)
def test_thresholds_apply_exactly_at_the_boundary(pricer, reward, conditions, price, qty, reason):
    # given one offer with a threshold and a basket right at, below or above it
    rules = ruleset(offer("t", reward, conditions=conditions))
    # when priced with explanations
    result = pricer(rules, None, make_basket(("L1", "A", qty, price)), explain=True)
    # then at or above the threshold it applies (100 off), below it explains a shortfall of 1
    if reason is None:
        assert result.discount_minor == 100
        assert result.explanations == ()
    else:
        assert result.discount_minor == 0
        assert result.explanations == (Explanation("t", reason, 1),)
