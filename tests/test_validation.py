"""Rule-set validation (engine/pricing/validate.py): one test per kind of bad rule set."""

from __future__ import annotations

import copy
import re

import polars as pl
import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.pricing.catalogue import Catalogue
from engine.pricing.rules import parse_rules
from engine.pricing.validate import RuleSetInvalid, Violation, check, validate
from loyalty.v1 import rules_pb2

# --- helpers ---------------------------------------------------------------------------------


def offer(id: str = "o1", **fields) -> dict:
    """A valid percent-off offer on everything, with ``fields`` replacing its parts."""
    base = {"id": id, "scope": {"all": True}, "percent_off": {"percent_bps": 1000}}
    if any(k in fields for k in REWARD_KEYS):
        del base["percent_off"]
    base.update(fields)
    return base


REWARD_KEYS = (
    "percent_off",
    "amount_off",
    "fixed_price",
    "qty_tiers",
    "buy_x_get_y",
    "bundle_price",
    "spend_tiers",
    "order_percent_off",
    "order_amount_off",
    "points_multiplier",
    "bonus_points",
)


PROGRAMME = {"point_value_minor": 10, "earn_per_amount_minor": 1000, "redeem_step_points": 1}


def rules(*offers: dict, **top) -> rules_pb2.RuleSet:
    """A rule set of ``offers``; one with points rewards gets a valid points programme."""
    if any("points_multiplier" in o or "bonus_points" in o for o in offers):
        top.setdefault("points", PROGRAMME)
    return parse_rules({"offers": list(offers), **top})


def only(rule_set: rules_pb2.RuleSet, catalogue: Catalogue | None = None) -> Violation:
    """The single violation of ``rule_set``."""
    found = validate(rule_set, catalogue)
    assert len(found) == 1, found
    return found[0]


def bundle(*scopes: dict, price: int = 500) -> dict:
    return offer(
        bundle_price={"components": [{"scope": s, "qty": 1} for s in scopes], "price_minor": price}
    )


REALISTIC = """
currency: CNY
timezone: Asia/Shanghai
points:
  point_value_minor: 10
  earn_per_amount_minor: 1000
  pending_days: 14
  expiry_months: 24
  min_redeem_points: 100
  redeem_step_points: 100
  max_redeem_share_bps: 5000
tiers:
  - {id: member, name: Member, qualify_spend_minor: 0, earn_multiplier_bps: 10000}
  - {id: silver, name: Silver, qualify_spend_minor: 500000, earn_multiplier_bps: 12500}
  - {id: vip, name: VIP, qualify_spend_minor: 2000000, earn_multiplier_bps: 15000}
segments:
  - {id: "store-brand:high", name: Store brand loyal}
  - {id: switcher.low}
offers:
  - id: vip-skincare
    scope: {categories: [skincare]}
    conditions: {tiers: [vip, silver], weekdays: [6, 7], from_hour: 22, to_hour: 2}
    stacking: {priority: 10, group: skincare-best}
    funding: {funder_id: loreal, funded_share_bps: 5000}
    limits: {per_member: 1, per_member_period: MONTH, budget_minor: 10000000}
    percent_off: {percent_bps: 2000}
  - id: skincare-2nd-half
    scope: {categories: [skincare], exclude_skus: [SK-TESTER]}
    stacking: {priority: 10, group: skincare-best}
    buy_x_get_y: {buy: 1, get: 1, percent_bps: 5000}
  - id: member-price-rice
    scope: {skus: [RICE-5KG]}
    conditions: {member_required: true}
    fixed_price: {price_minor: 3990}
  - id: cola-3for2
    scope: {skus: [COLA]}
    stacking: {priority: 20, mode: EXCLUSIVE}
    limits: {per_transaction: 2}
    buy_x_get_y: {buy: 2, get: 1, percent_bps: 10000}
  - id: breakfast-bundle
    scope: {categories: [bakery, dairy]}
    bundle_price:
      price_minor: 1500
      components:
        - {scope: {categories: [bakery]}, qty: 1}
        - {scope: {categories: [dairy]}, qty: 2}
  - id: snack-qty
    scope: {brands: [lays]}
    qty_tiers: {steps: [{min_qty: 2, percent_bps: 500}, {min_qty: 4, percent_bps: 1000}]}
  - id: spend-ladder
    scope: {all: true}
    conditions:
      starts_at: 2025-01-01T00:00:00Z
      ends_at: 2025-02-01T00:00:00Z
      channels: [pos, app]
      stores: [SH-001]
      min_basket_minor: 5000
    stacking: {priority: 100}
    spend_tiers: {steps: [{threshold_minor: 10000, amount_minor: 1000},
                          {threshold_minor: 20000, amount_minor: 3000}]}
  - id: every-100-off-10
    activation: COUPON
    scope: {all: true, exclude_skus: [GIFT-CARD]}
    stacking: {priority: 110, mode: EXCLUSIVE_ORDER}
    limits: {per_transaction: 5, total_uses: 1000, max_discount_minor: 5000}
    spend_tiers: {repeat: true, steps: [{threshold_minor: 10000, amount_minor: 1000}]}
  - id: order-5pct
    scope: {all: true}
    conditions: {segments: [switcher.low]}
    order_percent_off: {percent_bps: 500}
  - id: welcome-coupon
    activation: COUPON
    scope: {all: true}
    order_amount_off: {amount_minor: 500}
  - id: double-points
    scope: {vendors: [unilever]}
    conditions: {birthday_month: true}
    points_multiplier: {extra_bps: 10000}
  - id: bonus-yoghurt
    scope: {skus: [YOG-1]}
    bonus_points: {per_unit: 5}
"""


# --- valid rule sets -------------------------------------------------------------------------


def test_realistic_rule_set_has_no_violations():
    cat = Catalogue.from_rows(
        [
            {"sku": "BREAD", "category": "bakery", "brand": "own", "vendor": "bakehouse"},
            {"sku": "MILK", "category": "dairy", "brand": "mengniu", "vendor": "mengniu"},
            {"sku": "COLA", "category": "drinks", "brand": "coke", "vendor": "coca-cola"},
        ]
    )
    assert validate(parse_rules(REALISTIC)) == []
    assert validate(parse_rules(REALISTIC), cat) == []
    check(parse_rules(REALISTIC), cat)


def test_empty_rule_set_is_valid():
    assert validate(parse_rules({})) == []
    assert validate(parse_rules("")) == []


def test_all_day_window_with_both_hours_zero_is_valid():
    assert validate(rules(offer(conditions={"from_hour": 0, "to_hour": 0}))) == []
    assert validate(rules(offer(conditions={"from_hour": 0, "to_hour": 24}))) == []


# --- rule set header -------------------------------------------------------------------------


def test_unknown_timezone():
    assert only(rules(timezone="Mars/Olympus")) == Violation(
        "timezone", "unknown IANA time zone 'Mars/Olympus'"
    )


@pytest.mark.parametrize("tz", ["", "UTC", "Asia/Shanghai", "Europe/London"])
def test_valid_timezones(tz):
    assert validate(rules(timezone=tz)) == []


@pytest.mark.parametrize("tz", ["../etc/passwd", "/etc/localtime", "Asia", "x" * 300, "a\x00b"])
def test_timezone_that_zoneinfo_rejects_in_other_ways(tz):
    assert only(rules(timezone=tz)).field == "timezone"


@pytest.mark.parametrize("cur", ["cny", "CN", "CNYY", "C1Y"])
def test_currency_must_be_three_uppercase_letters(cur):
    v = only(rules(currency=cur))
    assert v.field == "currency"
    assert f"(got {cur!r})" in v.description


# --- points programme ------------------------------------------------------------------------

GOOD_POINTS = {
    "point_value_minor": 10,
    "earn_per_amount_minor": 1000,
    "redeem_step_points": 1,
    "max_redeem_share_bps": 10000,
}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("point_value_minor", 0, "must be greater than 0 (got 0)"),
        ("earn_per_amount_minor", 0, "must be greater than 0 (got 0)"),
        ("redeem_step_points", 0, "must be greater than 0 (got 0)"),
        ("point_value_minor", -10, "must be greater than 0 (got -10)"),
        ("pending_days", -1, "must not be negative (got -1)"),
        ("expiry_months", -3, "must not be negative (got -3)"),
        ("min_redeem_points", -100, "must not be negative (got -100)"),
        ("max_redeem_share_bps", 12000, "must be at most 10000 (got 12000)"),
        ("max_redeem_share_bps", -1, "must not be negative (got -1)"),
    ],
)
def test_bad_points_programme(name, value, message):
    assert only(rules(points={**GOOD_POINTS, name: value})) == Violation(f"points.{name}", message)


def test_points_programme_absent_is_not_checked():
    assert validate(rules()) == []


def test_empty_points_programme_reports_each_divisor():
    found = validate(rules(points={}))
    assert [v.field for v in found] == [
        "points.point_value_minor",
        "points.earn_per_amount_minor",
        "points.redeem_step_points",
    ]


# --- tiers and segments ----------------------------------------------------------------------


def tier(id: str, spend: int = 0, bps: int = 10000) -> dict:
    return {"id": id, "qualify_spend_minor": spend, "earn_multiplier_bps": bps}


def test_tier_id_empty():
    assert only(rules(tiers=[tier("")])) == Violation("tiers[0].id", "must not be empty")


def test_tier_id_bad_characters():
    v = only(rules(tiers=[tier("gold card")]))
    assert v.field == "tiers[0].id"
    assert "(got 'gold card')" in v.description


def test_tier_id_too_long():
    assert only(rules(tiers=[tier("x" * 65)])).field == "tiers[0].id"


def test_duplicate_tier_ids():
    assert only(rules(tiers=[tier("gold"), tier("gold", 100)])) == Violation(
        "tiers[1].id", "duplicate id 'gold' (also tiers[0])"
    )


def test_tier_multiplier_must_be_positive():
    assert only(rules(tiers=[tier("gold", bps=0)])) == Violation(
        "tiers[0].earn_multiplier_bps", "must be greater than 0 (got 0)"
    )


def test_tier_qualify_spend_negative():
    assert only(rules(tiers=[tier("gold", spend=-1)])) == Violation(
        "tiers[0].qualify_spend_minor", "must not be negative (got -1)"
    )


def test_tier_qualify_spend_not_increasing():
    v = only(rules(tiers=[tier("a", 0), tier("b", 5000), tier("c", 5000)]))
    assert v.field == "tiers[2].qualify_spend_minor"
    assert "must be greater than tiers[1]'s 5000 (got 5000)" in v.description


def test_too_many_tiers():
    v = only(rules(tiers=[tier(f"t{i}", i) for i in range(65)]))
    assert v == Violation("tiers", "at most 64 tiers (got 65)")
    assert validate(rules(tiers=[tier(f"t{i}", i) for i in range(64)])) == []


def test_duplicate_segment_ids():
    assert only(rules(segments=[{"id": "s"}, {"id": "t"}, {"id": "s"}])) == Violation(
        "segments[2].id", "duplicate id 's' (also segments[0])"
    )


def test_segment_id_empty_and_bad():
    found = validate(rules(segments=[{"name": "no id"}, {"id": "a/b"}]))
    assert [v.field for v in found] == ["segments[0].id", "segments[1].id"]
    assert found[0].description == "must not be empty"
    assert "'a/b'" in found[1].description


def test_too_many_segments():
    assert only(rules(segments=[{"id": f"s{i}"} for i in range(65)])) == Violation(
        "segments", "at most 64 segments (got 65)"
    )


# --- offers: id, reward, scope ---------------------------------------------------------------


def test_offer_id_empty():
    assert only(rules(offer(id=""))) == Violation("offers[0].id", "must not be empty")


def test_offer_id_bad_characters():
    v = only(rules(offer(id="20% off!")))
    assert v.field == "offers[0].id"
    assert "(got '20% off!')" in v.description


def test_duplicate_offer_ids():
    found = validate(rules(offer("x"), offer("y"), offer("x")))
    assert found == [Violation("offers[2].id", "duplicate id 'x' (also offers[0])")]


def test_missing_reward():
    v = only(rules(offer("a"), {"id": "b", "scope": {"all": True}}))
    assert v.field == "offers[1].reward"
    assert v.description.startswith("missing reward")


def test_missing_scope():
    v = only(rules({"id": "a", "percent_off": {"percent_bps": 100}}))
    assert v.field == "offers[0].scope"
    assert "`all: true`" in v.description


def test_empty_scope():
    v = only(rules(offer(scope={"all": False})))
    assert v.field == "offers[0].scope"
    assert "empty product set" in v.description and "`all: true`" in v.description


def test_scope_with_only_exclusions_is_empty():
    v = only(rules(offer(scope={"all": False, "exclude_skus": ["TOBACCO"]})))
    assert v.field == "offers[0].scope"
    assert "empty product set" in v.description


def test_scope_entries_must_not_be_empty():
    v = only(rules(offer(scope={"categories": ["snacks", ""]})))
    assert v == Violation("offers[0].scope.categories[1]", "must not be empty")


def test_unknown_activation_number():
    v = only(rules(offer(activation=7)))
    assert v == Violation("offers[0].activation", "unknown activation 7")


# --- conditions ------------------------------------------------------------------------------


def test_condition_unknown_tier():
    rs = rules(offer(conditions={"tiers": ["silver", "gold"]}), tiers=[tier("silver")])
    assert only(rs) == Violation("offers[0].conditions.tiers[1]", "unknown tier 'gold'")


def test_condition_unknown_segment():
    rs = rules(offer(conditions={"segments": ["lapsed"]}), segments=[{"id": "new"}])
    assert only(rs) == Violation("offers[0].conditions.segments[0]", "unknown segment 'lapsed'")


@pytest.mark.parametrize(
    ("day", "message"),
    [
        (0, "must be greater than 0 (got 0)"),
        (8, "must be at most 7 (got 8)"),
        (-1, "must be greater than 0 (got -1)"),
    ],
)
def test_weekday_out_of_range(day, message):
    assert only(rules(offer(conditions={"weekdays": [1, day]}))) == Violation(
        "offers[0].conditions.weekdays[1]", message
    )


def test_duplicate_weekday():
    assert only(rules(offer(conditions={"weekdays": [6, 7, 6]}))) == Violation(
        "offers[0].conditions.weekdays[2]", "duplicate weekday 6"
    )


def test_from_hour_out_of_range():
    assert only(rules(offer(conditions={"from_hour": 24, "to_hour": 2}))) == Violation(
        "offers[0].conditions.from_hour", "must be at most 23 (got 24)"
    )


def test_to_hour_out_of_range():
    assert only(rules(offer(conditions={"from_hour": 8, "to_hour": 25}))) == Violation(
        "offers[0].conditions.to_hour", "must be at most 24 (got 25)"
    )


def test_negative_hour():
    assert (
        only(rules(offer(conditions={"from_hour": -1, "to_hour": 2}))).field
        == "offers[0].conditions.from_hour"
    )


def test_empty_hour_window():
    v = only(rules(offer(conditions={"from_hour": 9, "to_hour": 9})))
    assert v.field == "offers[0].conditions.to_hour"
    assert v.description.startswith("empty window") and "9" in v.description


def test_end_before_start():
    rs = rules(
        offer(conditions={"starts_at": "2025-03-01T00:00:00Z", "ends_at": "2025-02-01T00:00:00Z"})
    )
    v = only(rs)
    assert v.field == "offers[0].conditions.ends_at"
    assert v.description.startswith("end before start")
    assert "2025-02-01T00:00:00Z" in v.description and "2025-03-01T00:00:00Z" in v.description


def test_end_equal_to_start_is_an_empty_window():
    rs = rules(
        offer(conditions={"starts_at": "2025-03-01T00:00:00Z", "ends_at": "2025-03-01T00:00:00Z"})
    )
    assert only(rs).field == "offers[0].conditions.ends_at"


def test_only_start_or_only_end_is_fine():
    assert validate(rules(offer(conditions={"starts_at": "2025-03-01T00:00:00Z"}))) == []
    assert validate(rules(offer(conditions={"ends_at": "2025-03-01T00:00:00Z"}))) == []


def test_out_of_range_timestamp_built_in_code():
    rs = rules(offer())
    rs.offers[0].conditions.starts_at.seconds = 2**62
    rs.offers[0].conditions.ends_at.nanos = -1
    found = validate(rs)
    assert [v.field for v in found] == [
        "offers[0].conditions.starts_at",
        "offers[0].conditions.ends_at",
    ]
    assert all(v.description.startswith("not a valid timestamp") for v in found)


@pytest.mark.parametrize("name", ["min_basket_minor", "min_qty", "min_amount_minor"])
def test_negative_minimums(name):
    assert only(rules(offer(conditions={name: -5}))) == Violation(
        f"offers[0].conditions.{name}", "must not be negative (got -5)"
    )


@pytest.mark.parametrize("name", ["stores", "channels"])
def test_empty_store_or_channel(name):
    assert only(rules(offer(conditions={name: ["a", ""]}))) == Violation(
        f"offers[0].conditions.{name}[1]", "must not be empty"
    )


def test_too_many_channels_reported_once_at_the_offer_that_crosses_64():
    offers = [
        offer(f"o{i}", conditions={"channels": [f"ch{i:02d}a", f"ch{i:02d}b"]}) for i in range(40)
    ]
    found = validate(rules(*offers))
    assert len(found) == 1
    assert found[0].field == "offers[32].conditions.channels"  # 33 offers x 2 = 66 > 64
    assert "more than 64 distinct channels" in found[0].description
    # repeating the same 64 names is fine
    same = [offer(f"o{i}", conditions={"channels": [f"c{j}" for j in range(64)]}) for i in range(3)]
    assert validate(rules(*same)) == []


# --- stacking, funding, limits ---------------------------------------------------------------


def test_group_mixing_phases():
    rs = rules(
        offer("pct", stacking={"group": "best"}),
        offer(
            "bxgy",
            stacking={"group": "best"},
            buy_x_get_y={"buy": 2, "get": 1, "percent_bps": 10000},
        ),
        offer("ord", stacking={"group": "best"}, order_amount_off={"amount_minor": 500}),
    )
    v = only(rs)
    assert v.field == "offers[2].stacking.group"
    assert "mixing phases" in v.description
    assert "order" in v.description and "item" in v.description and "'pct'" in v.description


def test_points_offer_in_a_group():
    rs = rules(offer("dbl", stacking={"group": "g"}, points_multiplier={"extra_bps": 10000}))
    v = only(rs)
    assert v.field == "offers[0].stacking.group"
    assert "points offers cannot be in a group" in v.description


def test_unknown_stacking_mode_number():
    assert only(rules(offer(stacking={"mode": 9}))) == Violation(
        "offers[0].stacking.mode", "unknown mode 9"
    )


@pytest.mark.parametrize(
    ("share", "message"),
    [(10001, "must be at most 10000 (got 10001)"), (-1, "must not be negative (got -1)")],
)
def test_funded_share_out_of_range(share, message):
    rs = rules(offer(funding={"funder_id": "pg", "funded_share_bps": share}))
    assert only(rs) == Violation("offers[0].funding.funded_share_bps", message)


def test_bad_funder_id():
    v = only(rules(offer(funding={"funder_id": "P&G", "funded_share_bps": 5000})))
    assert v.field == "offers[0].funding.funder_id"
    assert "'P&G'" in v.description


@pytest.mark.parametrize(
    "name", ["per_transaction", "per_member", "total_uses", "budget_minor", "max_discount_minor"]
)
def test_negative_limits(name):
    assert only(rules(offer(limits={name: -1}))) == Violation(
        f"offers[0].limits.{name}", "must not be negative (got -1)"
    )


@pytest.mark.parametrize("name", ["budget_minor", "max_discount_minor"])
def test_money_caps_not_allowed_on_points_rewards(name):
    rs = rules(offer(bonus_points={"per_transaction": 50}, limits={name: 10000}))
    v = only(rs)
    assert v.field == f"offers[0].limits.{name}"
    assert "not allowed on a points reward" in v.description and "10000" in v.description


def test_unknown_period_number():
    assert (
        only(rules(offer(limits={"per_member_period": 12}))).field
        == "offers[0].limits.per_member_period"
    )


def test_absurdly_large_amount_is_rejected():
    v = only(rules(offer(amount_off={"amount_minor": 2**62})))
    assert v.field == "offers[0].amount_off.amount_minor"
    assert v.description.startswith("must be at most")


# --- rewards ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reward", "value", "message"),
    [
        ("percent_off", 12000, "must be at most 10000 (got 12000)"),
        ("percent_off", 0, "must be greater than 0 (got 0)"),
        ("order_percent_off", 10001, "must be at most 10000 (got 10001)"),
        ("order_percent_off", -5, "must be greater than 0 (got -5)"),
    ],
)
def test_percent_out_of_range(reward, value, message):
    assert only(rules(offer(**{reward: {"percent_bps": value}}))) == Violation(
        f"offers[0].{reward}.percent_bps", message
    )


@pytest.mark.parametrize("reward", ["amount_off", "order_amount_off"])
def test_amount_must_be_positive(reward):
    assert only(rules(offer(**{reward: {"amount_minor": 0}}))) == Violation(
        f"offers[0].{reward}.amount_minor", "must be greater than 0 (got 0)"
    )


def test_fixed_price_negative():
    assert only(rules(offer(fixed_price={"price_minor": -1}))) == Violation(
        "offers[0].fixed_price.price_minor", "must not be negative (got -1)"
    )


def test_fixed_price_zero_is_allowed():
    assert validate(rules(offer(fixed_price={"price_minor": 0}))) == []


def test_qty_tiers_without_steps():
    assert only(rules(offer(qty_tiers={}))) == Violation(
        "offers[0].qty_tiers.steps", "needs at least one step"
    )


def test_qty_tiers_steps_not_increasing():
    rs = rules(
        offer(
            qty_tiers={
                "steps": [{"min_qty": 3, "percent_bps": 500}, {"min_qty": 2, "percent_bps": 1000}]
            }
        )
    )
    v = only(rs)
    assert v.field == "offers[0].qty_tiers.steps[1].min_qty"
    assert "ladder steps not increasing" in v.description and "(got 2)" in v.description


def test_qty_tiers_bad_step_values():
    rs = rules(
        offer(
            qty_tiers={
                "steps": [{"min_qty": 0, "percent_bps": 500}, {"min_qty": 2, "percent_bps": 20000}]
            }
        )
    )
    assert validate(rs) == [
        Violation("offers[0].qty_tiers.steps[0].min_qty", "must be greater than 0 (got 0)"),
        Violation("offers[0].qty_tiers.steps[1].percent_bps", "must be at most 10000 (got 20000)"),
    ]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("buy", 0, "must be greater than 0 (got 0)"),
        ("get", 0, "must be greater than 0 (got 0)"),
        ("get", -2, "must be greater than 0 (got -2)"),
        ("percent_bps", 0, "must be greater than 0 (got 0)"),
        ("percent_bps", 10001, "must be at most 10000 (got 10001)"),
    ],
)
def test_bad_buy_x_get_y(name, value, message):
    reward = {"buy": 2, "get": 1, "percent_bps": 10000, name: value}
    assert only(rules(offer(buy_x_get_y=reward))) == Violation(
        f"offers[0].buy_x_get_y.{name}", message
    )


def test_bundle_without_components():
    assert only(rules(offer(bundle_price={"price_minor": 100}))) == Violation(
        "offers[0].bundle_price.components", "needs at least one component"
    )


def test_bundle_component_qty_and_price():
    rs = rules(
        offer(
            bundle_price={"components": [{"scope": {"skus": ["A"]}, "qty": 0}], "price_minor": -1}
        )
    )
    assert validate(rs) == [
        Violation("offers[0].bundle_price.components[0].qty", "must be greater than 0 (got 0)"),
        Violation("offers[0].bundle_price.price_minor", "must not be negative (got -1)"),
    ]


def test_bundle_component_empty_scope():
    rs = rules(
        offer(
            bundle_price={
                "components": [{"scope": {"skus": ["A"]}, "qty": 1}, {"qty": 1}],
                "price_minor": 100,
            }
        )
    )
    v = only(rs)
    assert v.field == "offers[0].bundle_price.components[1].scope"
    assert "`all: true`" in v.description


def test_bundle_components_both_all():
    v = only(rules(bundle({"all": True}, {"all": True})))
    assert v.field == "offers[0].bundle_price.components[1].scope"
    assert v.description.startswith("components[0] and components[1] overlap")


def test_bundle_component_all_and_another():
    v = only(rules(bundle({"categories": ["bakery"]}, {"all": True})))
    assert v.field == "offers[0].bundle_price.components[1].scope"
    assert "components[0] and components[1] overlap" in v.description


def test_bundle_component_all_minus_the_other_components_skus_is_disjoint():
    assert (
        validate(rules(bundle({"all": True, "exclude_skus": ["GIFT"]}, {"skus": ["GIFT"]}))) == []
    )


@pytest.mark.parametrize(
    ("key", "word"),
    [("skus", "sku"), ("categories", "category"), ("brands", "brand"), ("vendors", "vendor")],
)
def test_bundle_components_share_a_value(key, word):
    rs = rules(bundle({"skus": ["X"]}, {key: ["shared"]}, {key: ["other", "shared"]}))
    v = only(rs)
    assert v == Violation(
        "offers[0].bundle_price.components[2].scope",
        f"components[1] and components[2] overlap: both list {word} 'shared'",
    )


def test_bundle_components_overlap_in_the_catalogue():
    cat = Catalogue.from_rows(
        [
            {"sku": "B1", "category": "bakery", "brand": "own", "vendor": "v1"},
            {"sku": "M1", "category": "dairy", "brand": "own", "vendor": "v2"},
            {"sku": "M2", "category": "dairy", "brand": "mengniu", "vendor": "v2"},
        ]
    )
    rs = rules(bundle({"categories": ["bakery"]}, {"brands": ["mengniu"]}, {"brands": ["own"]}))
    assert validate(rs) == []  # structurally disjoint
    assert only(rs, cat) == Violation(
        "offers[0].bundle_price.components[2].scope",
        "components[0] and components[2] overlap: catalogue sku 'B1' matches both",
    )


def test_bundle_catalogue_overlap_respects_exclusions():
    cat = Catalogue.from_rows(
        [
            {"sku": "B1", "category": "bakery", "brand": "own"},
            {"sku": "M1", "category": "dairy", "brand": "own"},
        ]
    )
    rs = rules(bundle({"categories": ["bakery"]}, {"brands": ["own"], "exclude_skus": ["B1"]}))
    assert validate(rs, cat) == []
    assert validate(rs, Catalogue.empty()) == []


def test_bundle_catalogue_overlap_on_a_large_catalogue():
    n = 200_000
    cat = Catalogue.from_frame(
        pl.DataFrame(
            {
                "sku": [f"S{i:06d}" for i in range(n)],
                "category": [f"c{i % 500}" for i in range(n)],
                "brand": [f"b{i % 3000}" for i in range(n)],
                "vendor": [f"v{i % 200}" for i in range(n)],
            }
        )
    )
    rs = rules(
        bundle({"categories": ["c7"]}, {"brands": ["b1007"]}),  # both: rows 1007+3000k
        bundle({"categories": ["c1"]}, {"vendors": ["v2"]}),
    )  # odd rows vs even rows
    rs.offers[1].id = "o2"
    assert validate(rs, cat) == [
        Violation(
            "offers[0].bundle_price.components[1].scope",
            "components[0] and components[1] overlap: catalogue sku 'S001007' matches both",
        )
    ]


def test_spend_tiers_without_steps():
    assert only(rules(offer(spend_tiers={"repeat": False}))) == Violation(
        "offers[0].spend_tiers.steps", "needs at least one step"
    )


def test_spend_tiers_threshold_must_be_positive():
    rs = rules(offer(spend_tiers={"steps": [{"threshold_minor": 0, "amount_minor": 100}]}))
    assert only(rs) == Violation(
        "offers[0].spend_tiers.steps[0].threshold_minor", "must be greater than 0 (got 0)"
    )


def test_spend_tiers_steps_not_increasing():
    rs = rules(
        offer(
            spend_tiers={
                "steps": [
                    {"threshold_minor": 20000, "amount_minor": 3000},
                    {"threshold_minor": 10000, "amount_minor": 1000},
                ]
            }
        )
    )
    v = only(rs)
    assert v.field == "offers[0].spend_tiers.steps[1].threshold_minor"
    assert "ladder steps not increasing" in v.description and "20000" in v.description


def test_spend_tier_step_with_both_amount_and_percent():
    rs = rules(
        offer(
            spend_tiers={
                "steps": [{"threshold_minor": 100, "amount_minor": 10, "percent_bps": 500}]
            }
        )
    )
    v = only(rs)
    assert v.field == "offers[0].spend_tiers.steps[0]"
    assert "exactly one of amount_minor and percent_bps (got both" in v.description


def test_spend_tier_step_with_neither_amount_nor_percent():
    rs = rules(offer(spend_tiers={"steps": [{"threshold_minor": 100}]}))
    assert only(rs) == Violation(
        "offers[0].spend_tiers.steps[0]",
        "set exactly one of amount_minor and percent_bps (got neither)",
    )


def test_spend_tier_step_bad_amount_and_percent():
    rs = rules(
        offer(
            spend_tiers={
                "steps": [
                    {"threshold_minor": 100, "amount_minor": -10},
                    {"threshold_minor": 200, "percent_bps": 10500},
                ]
            }
        )
    )
    assert validate(rs) == [
        Violation(
            "offers[0].spend_tiers.steps[0].amount_minor", "must be greater than 0 (got -10)"
        ),
        Violation(
            "offers[0].spend_tiers.steps[1].percent_bps", "must be at most 10000 (got 10500)"
        ),
    ]


def test_spend_tiers_repeat_with_percent_steps():
    rs = rules(
        offer(
            spend_tiers={
                "repeat": True,
                "steps": [
                    {"threshold_minor": 100, "amount_minor": 10},
                    {"threshold_minor": 200, "percent_bps": 500},
                ],
            }
        )
    )
    v = only(rs)
    assert v.field == "offers[0].spend_tiers.repeat"
    assert "amount steps only" in v.description and "steps[1]" in v.description


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "must be greater than 0 (got 0)"),
        (1_000_001, "must be at most 1000000 (got 1000001)"),
    ],
)
def test_points_multiplier_out_of_range(value, message):
    assert only(rules(offer(points_multiplier={"extra_bps": value}))) == Violation(
        "offers[0].points_multiplier.extra_bps", message
    )


def test_bonus_points_both_zero():
    v = only(rules(offer(bonus_points={})))
    assert v.field == "offers[0].bonus_points"
    assert "both 0" in v.description


@pytest.mark.parametrize("name", ["per_unit", "per_transaction"])
def test_bonus_points_negative(name):
    rs = rules(offer(bonus_points={"per_unit": 5, "per_transaction": 5, name: -5}))
    assert only(rs) == Violation(f"offers[0].bonus_points.{name}", "must not be negative (got -5)")


_SKUS = ["A", "B", "C", "D"]
_PRODUCT_SETS = st.fixed_dictionaries(
    {
        "skus": st.lists(st.sampled_from(_SKUS), max_size=2, unique=True),
        "categories": st.lists(st.sampled_from(["c1", "c2"]), max_size=1),
        "brands": st.lists(st.sampled_from(["b1", "b2"]), max_size=1),
        "vendors": st.lists(st.sampled_from(["v1"]), max_size=1),
        "exclude_skus": st.lists(st.sampled_from(_SKUS), max_size=2, unique=True),
    }
).filter(lambda ps: ps["skus"] or ps["categories"] or ps["brands"] or ps["vendors"])
_ROWS = st.tuples(
    *[
        st.fixed_dictionaries(
            {
                "sku": st.just(sku),
                "category": st.sampled_from(["", "c1", "c2"]),
                "brand": st.sampled_from(["", "b1", "b2"]),
                "vendor": st.sampled_from(["", "v1"]),
            }
        )
        for sku in _SKUS
    ]
)


def _matches(ps: dict, row: dict) -> bool:
    return row["sku"] not in ps["exclude_skus"] and (
        row["sku"] in ps["skus"]
        or row["category"] in ps["categories"]
        or row["brand"] in ps["brands"]
        or row["vendor"] in ps["vendors"]
    )


def _shares_a_value(a: dict, b: dict) -> bool:
    excluded = set(a["exclude_skus"]) | set(b["exclude_skus"])
    if (set(a["skus"]) & set(b["skus"])) - excluded:
        return True
    return any(set(a[k]) & set(b[k]) for k in ("categories", "brands", "vendors"))


@settings(max_examples=150, deadline=None)
@given(st.lists(_PRODUCT_SETS, min_size=2, max_size=3), _ROWS)
def test_bundle_overlap_matches_a_naive_check(scopes, rows):
    cat = Catalogue.from_rows(list(rows))
    found = validate(rules(bundle(*scopes)), cat)
    flagged = {}
    for v in found:
        a, b = (int(x) for x in re.findall(r"components\[(\d+)\]", v.description)[:2])
        assert v.field == f"offers[0].bundle_price.components[{b}].scope"
        flagged[(a, b)] = v.description
    expected = set()
    for b in range(len(scopes)):
        for a in range(b):
            both = [r["sku"] for r in rows if _matches(scopes[a], r) and _matches(scopes[b], r)]
            if _shares_a_value(scopes[a], scopes[b]):
                expected.add((a, b))
            elif both:
                expected.add((a, b))
                assert flagged.get((a, b), "").endswith(f"catalogue sku {both[0]!r} matches both")
    assert set(flagged) == expected


# --- many problems at once, RuleSetInvalid ---------------------------------------------------

MANY_PROBLEMS = """
currency: yuan
points: {point_value_minor: 0, earn_per_amount_minor: 1000, redeem_step_points: 1}
tiers:
  - {id: silver, earn_multiplier_bps: 10000}
offers:
  - id: a
    scope: {all: true}
    percent_off: {percent_bps: 12000}
  - id: a
    scope: {all: true}
    conditions: {tiers: [gold], weekdays: [8]}
    amount_off: {amount_minor: 100}
  - id: b
    scope: {all: false}
  - id: c
    scope: {all: true}
    qty_tiers: {steps: [{min_qty: 5, percent_bps: 500}, {min_qty: 3, percent_bps: 900}]}
"""


def test_several_problems_are_reported_at_once_in_file_order():
    found = validate(parse_rules(MANY_PROBLEMS))
    assert [v.field for v in found] == [
        "currency",
        "points.point_value_minor",
        "offers[0].percent_off.percent_bps",
        "offers[1].id",
        "offers[1].conditions.tiers[0]",
        "offers[1].conditions.weekdays[0]",
        "offers[2].scope",
        "offers[2].reward",
        "offers[3].qty_tiers.steps[1].min_qty",
    ]
    assert found[3].description == "duplicate id 'a' (also offers[0])"
    assert found[4].description == "unknown tier 'gold'"


def test_rule_set_invalid_lists_every_violation():
    rs = parse_rules(MANY_PROBLEMS)
    with pytest.raises(RuleSetInvalid) as info:
        check(rs)
    exc = info.value
    assert isinstance(exc, ValueError)
    assert exc.violations == tuple(validate(rs))
    lines = str(exc).splitlines()
    assert len(lines) == 9
    assert lines == [f"{v.field}: {v.description}" for v in exc.violations]
    assert "offers[1].conditions.tiers[0]: unknown tier 'gold'" in lines


def test_check_passes_silently_on_a_valid_rule_set():
    assert check(rules(offer())) is None


def test_violation_is_frozen():
    v = Violation("currency", "x")
    with pytest.raises(AttributeError):
        v.field = "y"  # type: ignore[misc]


def test_validate_does_not_change_the_rule_set():
    rs = parse_rules(MANY_PROBLEMS)
    before = copy.deepcopy(rs)
    validate(rs)
    assert rs == before


# --- the validator never raises --------------------------------------------------------------

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}
_TEXT = st.one_of(
    st.sampled_from(
        ["", "a", "gold", "x y", "COLA", "UTC", "Asia/Shanghai", "..", "/", "cny", "CNY"]
    ),
    st.text(max_size=20),
)


def _scalar(data, fd: FieldDescriptor):
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return data.draw(st.booleans())
    if fd.type == FieldDescriptor.TYPE_STRING:
        return data.draw(_TEXT)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return data.draw(st.integers(-3, 5))
    lo, hi = _INT_RANGES[fd.type]
    return data.draw(
        st.one_of(st.integers(-2, 12), st.sampled_from([lo, hi, 10000, 10001]), st.integers(lo, hi))
    )


def _fill(data, msg, depth: int = 0) -> None:
    """Set a random subset of ``msg``'s fields to random (possibly nonsensical) values."""
    for fd in msg.DESCRIPTOR.fields:
        if fd.containing_oneof is not None or not data.draw(st.booleans()):
            continue
        repeated = fd.is_repeated
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 4:
                continue
            target = getattr(msg, fd.name)
            for _ in range(data.draw(st.integers(0, 3)) if repeated else 1):
                _fill(data, target.add() if repeated else target, depth + 1)
                if not repeated:
                    target.SetInParent()
        elif repeated:
            getattr(msg, fd.name).extend(
                _scalar(data, fd) for _ in range(data.draw(st.integers(0, 3)))
            )
        else:
            setattr(msg, fd.name, _scalar(data, fd))
    for oneof in msg.DESCRIPTOR.oneofs:
        if depth < 4 and data.draw(st.booleans()):
            fd = data.draw(st.sampled_from(list(oneof.fields)))
            if fd.type != FieldDescriptor.TYPE_MESSAGE:  # e.g. TargetUnits.value, BuyGet.value
                setattr(msg, fd.name, _scalar(data, fd))
                continue
            target = getattr(msg, fd.name)
            target.SetInParent()
            _fill(data, target, depth + 1)


_CATALOGUE_ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "sku": st.sampled_from(["", "a", "COLA", "x y"]) | st.text(max_size=4),
            "category": _TEXT,
            "brand": _TEXT,
            "vendor": _TEXT,
        }
    ),
    max_size=8,
    unique_by=lambda row: row["sku"].strip(),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_validate_never_raises_on_random_rule_sets(data):
    rs = rules_pb2.RuleSet()
    _fill(data, rs)
    rows = [r for r in data.draw(_CATALOGUE_ROWS) if r["sku"].strip()]
    cat = Catalogue.from_rows(rows) if rows else None
    found = validate(rs, cat)
    assert isinstance(found, list)
    assert all(isinstance(v, Violation) and v.field and v.description for v in found)
    if found:
        with pytest.raises(RuleSetInvalid):
            check(rs, cat)
    else:
        check(rs, cat)


_REALISTIC = parse_rules(REALISTIC)
_ANY_INT = st.one_of(st.integers(-3, 30), st.integers(-(2**31), 2**31 - 1))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_validate_never_raises_on_mutated_realistic_rule_sets(data):
    rs = rules_pb2.RuleSet()
    rs.CopyFrom(_REALISTIC)
    # overwrite a few numeric fields with arbitrary values and a few ids with arbitrary text
    for _ in range(data.draw(st.integers(1, 6))):
        o = rs.offers[data.draw(st.integers(0, len(rs.offers) - 1))]
        what = data.draw(
            st.sampled_from(["priority", "from_hour", "weekday", "id", "group", "tier", "share"])
        )
        if what == "priority":
            o.stacking.priority = data.draw(_ANY_INT)
        elif what == "from_hour":
            o.conditions.from_hour = data.draw(_ANY_INT)
        elif what == "weekday":
            o.conditions.weekdays.append(data.draw(_ANY_INT))
        elif what == "id":
            o.id = data.draw(_TEXT)
        elif what == "group":
            o.stacking.group = data.draw(st.sampled_from(["skincare-best", "g", ""]))
        elif what == "tier":
            o.conditions.tiers.append(data.draw(_TEXT))
        else:
            o.funding.funded_share_bps = data.draw(_ANY_INT)
    assert isinstance(validate(rs), list)


def test_points_reward_without_a_programme():
    rule_set = parse_rules({"offers": [offer(bonus_points={"per_unit": 5})]})
    assert only(rule_set) == Violation(
        "offers[0].bonus_points", "points rewards need a points programme (`points`)"
    )


def test_bonus_points_per_unit_is_bounded():
    v = only(rules(offer(bonus_points={"per_unit": 1_000_001})))
    assert v == Violation(
        "offers[0].bonus_points.per_unit", "must be at most 1000000 (got 1000001)"
    )


def test_tiers_assigned_by_hand_need_no_spend_threshold():
    rule_set = rules(
        tiers=[
            {"id": "member", "earn_multiplier_bps": 10000},
            {"id": "gold", "qualify_spend_minor": 500000, "earn_multiplier_bps": 12500},
            {"id": "staff", "earn_multiplier_bps": 20000},
        ]
    )
    assert validate(rule_set) == []
