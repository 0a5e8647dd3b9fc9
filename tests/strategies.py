"""Hypothesis strategies: random but valid rule sets, catalogues, baskets and members.

The universe is small on purpose (a handful of skus, categories, tiers, stores) so random
offers and baskets collide often: shared lines, groups, exclusive modes, ties, caps.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from engine.pricing.catalogue import Catalogue
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member, RemainingLimits
from engine.pricing.validate import validate
from loyalty.v1 import rules_pb2

SKUS = [f"S{i}" for i in range(8)]
CATEGORIES = ["c1", "c2", "c3"]
BRANDS = ["b1", "b2"]
VENDORS = ["v1", "v2"]
TIERS = ["t1", "t2"]
SEGMENTS = ["g1", "g2", "g3"]
STORES = ["s1", "s2"]
CHANNELS = ["pos", "web"]
T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
ITEM = ("percent_off", "amount_off", "fixed_price", "qty_tiers", "buy_x_get_y", "bundle_price")
ORDER = ("spend_tiers", "order_percent_off", "order_amount_off")
POINTS = ("points_multiplier", "bonus_points")

small = st.integers(0, 3)
bps = st.integers(1, 10000)


def subset(items: list[str], max_size: int = 2) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), max_size=max_size, unique=True)


@st.composite
def product_sets(draw, skus: list[str] = SKUS) -> dict[str, Any]:
    if draw(st.integers(0, 2)) == 0:
        out: dict[str, Any] = {"all": True}
    else:
        out = {
            "skus": draw(subset(skus, 3)),
            "categories": draw(subset(CATEGORIES)),
            "brands": draw(subset(BRANDS, 1)),
            "vendors": draw(subset(VENDORS, 1)),
        }
        if not any(out.values()):
            out["skus"] = [draw(st.sampled_from(skus))]
    out["exclude_skus"] = draw(subset(SKUS, 1)) if rarely(draw) else []
    return out


# Prices and thresholds share values so that "spend equals the threshold" happens.
PRICES = [0, 1, 50, 100, 350, 999, 1000, 2000, 5990]
AMOUNTS = [100, 350, 700, 1000, 1050, 2000, 3000, 5990, 11980]


def lattice(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([a for a in AMOUNTS if lo <= a <= hi]), st.integers(lo, hi))


@st.composite
def ladders(draw, key: str, lo: int, hi: int) -> list[int]:
    values = lattice(lo, hi) if hi > 100 else st.integers(lo, hi)
    return sorted(draw(st.lists(values, min_size=1, max_size=3, unique=True)))


@st.composite
def rewards(draw, kind: str) -> dict[str, Any]:
    if kind in ("percent_off", "order_percent_off"):
        return {"percent_bps": draw(bps)}
    if kind in ("amount_off", "order_amount_off"):
        return {"amount_minor": draw(st.integers(1, 3000))}
    if kind == "fixed_price":
        return {"price_minor": draw(st.integers(0, 3000))}
    if kind == "qty_tiers":
        return {
            "steps": [{"min_qty": q, "percent_bps": draw(bps)} for q in draw(ladders("q", 1, 8))]
        }
    if kind == "buy_x_get_y":
        return {
            "buy": draw(st.integers(1, 3)),
            "get": draw(st.integers(1, 2)),
            "percent_bps": draw(st.sampled_from([10000, 5000, draw(bps)])),
        }
    if kind == "bundle_price":
        skus = draw(st.permutations(SKUS))
        n = draw(st.integers(1, 3))
        return {
            "components": [
                {"scope": {"skus": skus[2 * c : 2 * c + 2]}, "qty": draw(st.integers(1, 2))}
                for c in range(n)
            ],
            "price_minor": draw(st.integers(0, 6000)),
        }
    if kind == "spend_tiers":
        repeat = draw(st.booleans())
        steps = []
        for t in draw(ladders("t", 1, 20000)):
            if repeat or draw(st.booleans()):
                steps.append({"threshold_minor": t, "amount_minor": draw(st.integers(1, 3000))})
            else:
                steps.append({"threshold_minor": t, "percent_bps": draw(bps)})
        return {"steps": steps, "repeat": repeat}
    if kind == "points_multiplier":
        return {"extra_bps": draw(st.sampled_from([10000, 5000, draw(st.integers(1, 30000))]))}
    per_unit = draw(st.integers(0, 20))
    return {"per_unit": per_unit, "per_transaction": draw(st.integers(0 if per_unit else 1, 50))}


def rarely(draw) -> bool:
    """True about one time in eight: restrictive conditions must not drown the rewards."""
    return draw(st.integers(0, 7)) == 0


@st.composite
def conditions(draw) -> dict[str, Any]:
    c: dict[str, Any] = {}
    if rarely(draw):
        c["tiers"] = draw(subset(TIERS, 1))
    if rarely(draw):
        c["segments"] = draw(subset(SEGMENTS))
    if rarely(draw):
        c["stores"] = draw(subset(STORES, 1))
    if rarely(draw):
        c["channels"] = draw(subset(CHANNELS, 1))
    if rarely(draw):
        start = T0 + timedelta(hours=draw(st.integers(0, 24 * 7)))
        c["starts_at"] = start.isoformat()
        c["ends_at"] = (start + timedelta(hours=draw(st.integers(1, 24 * 7)))).isoformat()
    if rarely(draw):
        c["weekdays"] = draw(st.lists(st.integers(1, 7), min_size=1, max_size=5, unique=True))
    if rarely(draw):
        lo, hi = draw(st.integers(0, 23)), draw(st.integers(0, 24))
        if lo != hi:
            c["from_hour"], c["to_hour"] = lo, hi
    c["birthday_month"] = rarely(draw) and rarely(draw)
    c["member_required"] = rarely(draw)
    if rarely(draw):
        c["min_basket_minor"] = draw(lattice(0, 10000))
    if rarely(draw):
        c["min_qty"] = draw(st.integers(0, 6))
    if rarely(draw):
        c["min_amount_minor"] = draw(lattice(0, 6000))
    return c


@st.composite
def offers(draw, index: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(ITEM + ORDER + POINTS))
    phase = "item" if kind in ITEM else "order" if kind in ORDER else "points"
    group = "" if phase == "points" else draw(st.sampled_from(["", "", "ga", "ga", "gb"]))
    offer: dict[str, Any] = {
        "id": f"o{draw(st.integers(0, 99)):02d}x{index}",
        "activation": "COUPON" if rarely(draw) else "AUTOMATIC",
        "scope": draw(product_sets()),
        "conditions": draw(conditions()),
        "stacking": {
            "priority": draw(small),
            "group": f"{phase}-{group}" if group else "",
            "mode": draw(
                st.sampled_from(["STACKABLE", "STACKABLE", "EXCLUSIVE", "EXCLUSIVE_ORDER"])
            ),
        },
        "funding": {
            "funder_id": draw(st.sampled_from(["", "retailer", "v1", "v2"])),
            "funded_share_bps": draw(st.sampled_from([0, 5000, 10000, draw(bps)])),
        },
        "limits": {"per_transaction": draw(st.sampled_from([0, 0, 1, 2]))},
        kind: draw(rewards(kind)),
    }
    if phase != "points" and draw(st.integers(0, 3)) == 0:
        offer["limits"]["max_discount_minor"] = draw(st.integers(1, 3000))
    return offer


@st.composite
def rule_sets(draw, max_offers: int = 8) -> dict[str, Any]:
    out: dict[str, Any] = {
        "currency": "CNY",
        "timezone": draw(st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York"])),
        "tiers": [
            {"id": t, "earn_multiplier_bps": draw(st.sampled_from([10000, 12500, 20000]))}
            for t in TIERS
        ],
        "segments": [{"id": s} for s in SEGMENTS],
        "offers": [draw(offers(i)) for i in range(draw(st.integers(1, max_offers)))],
    }
    if draw(st.integers(0, 5)) > 0:
        out["points"] = {
            "point_value_minor": draw(st.sampled_from([1, 10, 7])),
            "earn_per_amount_minor": draw(st.sampled_from([1, 100, 1000, 333])),
            "min_redeem_points": draw(st.sampled_from([0, 10, 100])),
            "redeem_step_points": draw(st.sampled_from([1, 10, 50])),
            "max_redeem_share_bps": draw(st.sampled_from([0, 5000, 10000, draw(bps)])),
        }
    else:
        out["offers"] = [
            o for o in out["offers"] if not ({"points_multiplier", "bonus_points"} & o.keys())
        ]
    return out


@st.composite
def catalogues(draw) -> Catalogue:
    rows = []
    for sku in SKUS[:-1]:  # the last sku is unknown to the catalogue
        rows.append(
            {
                "sku": sku,
                "category": draw(st.sampled_from(CATEGORIES)),
                "brand": draw(st.sampled_from(BRANDS)),
                "vendor": draw(st.sampled_from(VENDORS)),
                "no_discount": draw(st.integers(0, 7)) == 0,
                "no_earn": draw(st.integers(0, 7)) == 0,
            }
        )
    return Catalogue.from_rows(rows)


@st.composite
def baskets(draw, max_lines: int = 6) -> Basket:
    n = draw(st.integers(2, max_lines))
    lines = []
    for i in range(n):
        override = draw(st.integers(0, 5)) == 0
        lines.append(
            Line(
                f"L{i}",
                draw(st.sampled_from(SKUS)),
                draw(st.integers(1, 5)),
                draw(st.one_of(st.sampled_from(PRICES), st.integers(0, 5000))),
                category=draw(st.sampled_from(CATEGORIES)) if override else "",
            )
        )
    at = T0 + timedelta(minutes=draw(st.integers(0, 60 * 24 * 9)))
    return Basket(
        tuple(lines),
        at,
        draw(st.sampled_from(STORES + [""])),
        draw(st.sampled_from(CHANNELS + [""])),
    )


@st.composite
def members(draw, offer_ids: list[str]) -> Member | None:
    if draw(st.integers(0, 4)) == 0:
        return None
    wallet = {o: draw(st.integers(0, 2)) for o in draw(subset(offer_ids, 3))} if offer_ids else {}
    return Member(
        "m1",
        tier=draw(st.sampled_from(TIERS + ["", "gone"])),
        segments=frozenset(draw(subset(SEGMENTS))),
        birthday_month=draw(st.integers(0, 12)),
        available_points=draw(st.one_of(st.sampled_from([0, 50, 1000]), st.integers(-5, 9000))),
        wallet=wallet,
    )


maybe = st.sampled_from([None, None, 0, 1, 2, 700])


@st.composite
def pricing_cases(draw, max_offers: int = 8):
    """(rules, catalogue, basket, member, keyword arguments) for ``pricer``."""
    data = draw(rule_sets(max_offers))
    rules = parse_rules(data)
    catalogue = draw(catalogues())
    assert validate(rules, catalogue) == [], validate(rules, catalogue)
    ids = [o["id"] for o in data["offers"]]
    kw = {
        "coupons": draw(subset(ids, 2)) if ids else [],
        "redeem_points": draw(st.sampled_from([0, -1, 100, draw(st.integers(1, 3000))])),
        "limits": {
            o: RemainingLimits(draw(maybe), draw(maybe), draw(maybe)) for o in draw(subset(ids, 3))
        }
        if ids
        else {},
        "explain": draw(st.booleans()),
    }
    return rules, catalogue, draw(baskets()), draw(members(ids)), kw


# ---- member attributes (tests/test_member_attributes.py) ----------------------------------
# Drawn on top of a pricing case, never inside the strategies above, so that the examples every
# other property test sees stay exactly what they were.

ATTRIBUTE_TYPES = {"hh": "NUMBER", "home": "STRING", "since": "DATE"}
ATTR_DATES = ["2019-01-01", "2020-06-15", "2022-03-01", "2024-12-31"]


@st.composite
def attribute_conditions(draw) -> dict[str, Any]:
    """One AttributeCondition (file form) over a small pool, so offers share tests."""
    name = draw(st.sampled_from(sorted(ATTRIBUTE_TYPES)))
    if name == "home":
        return {"name": name, "any_of": draw(subset(["S1", "S2", "S3"])) or ["S1"]}
    pool: list[Any] = [1, 3, 4, 6] if name == "hh" else ATTR_DATES
    lo, hi = draw(st.sampled_from([None, *pool])), draw(st.sampled_from([None, *pool]))
    if lo is None and hi is None:
        lo = pool[1]
    if lo is not None and hi is not None and not lo < hi:
        lo, hi = (hi, lo) if hi < lo else (lo, None)
    bounds = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    return {"name": name, "number" if name == "hh" else "date": bounds}


@st.composite
def member_attribute_values(draw) -> dict[str, Any]:
    """A member's attributes: each maybe missing, sometimes of the wrong type."""
    values: dict[str, Any] = {}
    if draw(st.integers(0, 7)) > 0:
        values["hh"] = draw(st.sampled_from([0, 1, 2, 3, 3, 4, 4, 5, 6, "3"]))
    if draw(st.integers(0, 7)) > 0:
        values["home"] = draw(st.sampled_from(["S1", "S1", "S2", "S3", "S4", 1]))
    if draw(st.integers(0, 7)) > 0:
        d = draw(st.sampled_from(ATTR_DATES))
        shift = timedelta(days=draw(st.sampled_from([-1, 0, 1, 400])))
        values["since"] = datetime.fromisoformat(d).date() + shift
    return values


@st.composite
def attribute_cases(draw, max_offers: int = 8):
    """A pricing case whose rule set declares member attributes, whose offers test them
    (about one in three, one or two tests each) and whose member carries some."""
    rules, catalogue, basket, member, kw = draw(pricing_cases(max_offers))
    for name, kind in ATTRIBUTE_TYPES.items():
        rules.member_attributes.add(name=name, type=kind)
    for offer in rules.offers:
        if draw(st.integers(0, 2)) == 0:
            for c in draw(st.lists(attribute_conditions(), min_size=1, max_size=2)):
                parse_into = offer.conditions.attributes.add()
                parse_into.name = c["name"]
                parse_into.any_of.extend(c.get("any_of", []))
                for field in ("number", "date"):
                    for k, v in c.get(field, {}).items():
                        setattr(getattr(parse_into, field), k, v)
    assert validate(rules, catalogue) == [], validate(rules, catalogue)
    if member is not None:
        member = replace(member, attributes=draw(member_attribute_values()))
    return rules, catalogue, basket, member, kw


# ---- recurring schedules (tests/test_recurrence.py) ---------------------------------------
# Also drawn on top of a pricing case, so the other property tests' examples stay as they were.

RECURRENCE_ZONES = ["Asia/Shanghai", "UTC", "America/New_York", "Europe/Berlin"]
BERLIN_SWITCH = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:00 CET -> 03:00 CEST


@st.composite
def recurrences(draw, with_dtstart: bool = True) -> str:
    """A Conditions.recurrence in the supported subset, anchored around the baskets' days."""
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY"]))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 3))}")
    if freq != "MONTHLY" and draw(st.booleans()):
        days = draw(subset(["MO", "TU", "WE", "TH", "FR", "SA", "SU"], 4))
        if days:
            parts.append("BYDAY=" + ",".join(days))
    if freq == "MONTHLY" and draw(st.booleans()):
        pool = [1, 2, 3, 5, 8, 10, 15, 28, 29, 30, 31, -1, -2, -3, -31]
        parts.append("BYMONTHDAY=" + ",".join(map(str, draw(subset(pool, 3)) or [2])))
    if with_dtstart:
        anchor = T0.date() + timedelta(days=draw(st.integers(-70, 12)))
        parts.append(f"DTSTART={anchor:%Y%m%d}")
    return ";".join(draw(st.permutations(parts)))


@st.composite
def recurrence_cases(draw, max_offers: int = 8):
    """A pricing case in one of :data:`RECURRENCE_ZONES` whose offers have a recurrence about
    one time in two; its basket is sometimes moved to the days around Berlin's DST switch."""
    rules, catalogue, basket, member, kw = draw(pricing_cases(max_offers))
    rules.timezone = draw(st.sampled_from(RECURRENCE_ZONES))
    for offer in rules.offers:
        if draw(st.booleans()):
            c = offer.conditions
            anchored = not c.HasField("starts_at") or draw(st.booleans())
            text = draw(recurrences(with_dtstart=anchored))
            if c.weekdays and "BYDAY" in text:
                del c.weekdays[:]
            c.recurrence = text
    assert validate(rules, catalogue) == [], validate(rules, catalogue)
    if draw(st.integers(0, 3)) == 0:
        shift = timedelta(minutes=draw(st.integers(-60 * 36, 60 * 36)))
        basket = replace(basket, occurred_at=BERLIN_SWITCH + shift)
    return rules, catalogue, basket, member, kw


# ---- upper bounds and unit limits (tests/test_bounds_and_unit_limits.py) ------------------
# Also drawn on top of a pricing case, so the other property tests' examples stay as they were.

UNIT_LIMIT_REWARDS = ("percent_off", "amount_off", "fixed_price", "qty_tiers")


@st.composite
def bound_and_unit_limit_cases(draw, max_offers: int = 8):
    """A pricing case whose offers have ``Conditions.max_basket_minor`` / ``max_amount_minor``
    about one time in four each, whose percent_off, amount_off, fixed_price and qty_tiers
    offers have ``Limits.max_units_per_line`` / ``max_units`` about one time in two each, and
    whose remaining limits sometimes track units."""
    rules, catalogue, basket, member, kw = draw(pricing_cases(max_offers))
    for offer in rules.offers:
        c = offer.conditions
        if draw(st.integers(0, 3)) == 0:
            c.max_basket_minor = max(c.min_basket_minor, draw(lattice(1, 40000)))
        if draw(st.integers(0, 3)) == 0:
            c.max_amount_minor = max(c.min_amount_minor, draw(lattice(1, 20000)))
        if offer.WhichOneof("reward") in UNIT_LIMIT_REWARDS:
            if draw(st.booleans()):
                offer.limits.max_units_per_line = draw(st.integers(1, 4))
            if draw(st.booleans()):
                offer.limits.max_units = draw(st.integers(1, 8))
    assert validate(rules, catalogue) == [], validate(rules, catalogue)
    limits = dict(kw["limits"])
    for offer in rules.offers:
        if offer.WhichOneof("reward") in UNIT_LIMIT_REWARDS and draw(st.integers(0, 3)) == 0:
            old = limits.get(offer.id, RemainingLimits())
            limits[offer.id] = replace(old, units=draw(st.integers(1, 9)))
    kw = {**kw, "limits": limits}
    return rules, catalogue, basket, member, kw


# ---- target units (tests/test_target_units.py) --------------------------------------------
# Also drawn on top of a pricing case, so the other property tests' examples stay as they were.

TARGET_UNITS_VALUES = ("percent_bps", "amount_minor", "price_minor")


@st.composite
def target_units_rewards(draw) -> dict[str, Any]:
    """A TargetUnits reward (file form): once per basket or per group of ``every`` units."""
    every = draw(st.sampled_from([0, 0, 2, 3, draw(st.integers(1, 6))]))
    out: dict[str, Any] = {
        "pick": draw(st.sampled_from(["CHEAPEST", "MOST_EXPENSIVE"])),
        "units": draw(st.integers(1, every if every else 5)),
        "every": every,
    }
    form = draw(st.sampled_from(TARGET_UNITS_VALUES))
    if form == "percent_bps":
        out[form] = draw(st.sampled_from([10000, 5000, draw(bps)]))
    elif form == "amount_minor":
        out[form] = draw(st.integers(1, 3000))
    else:
        out[form] = draw(st.sampled_from([0, draw(st.integers(0, 3000))]))
    return out


@st.composite
def target_units_cases(draw, max_offers: int = 8):
    """A pricing case whose item offers become target_units about one time in two, and whose
    remaining limits sometimes track their units (Limits.total_units)."""
    rules, catalogue, basket, member, kw = draw(pricing_cases(max_offers))
    for offer in rules.offers:
        if offer.WhichOneof("reward") in ITEM and draw(st.booleans()):
            parse_into = type(offer.target_units)()
            for name, value in draw(target_units_rewards()).items():
                setattr(parse_into, name, value)
            offer.target_units.CopyFrom(parse_into)
    assert validate(rules, catalogue) == [], validate(rules, catalogue)
    limits = dict(kw["limits"])
    for offer in rules.offers:
        if offer.WhichOneof("reward") == "target_units" and draw(st.integers(0, 3)) == 0:
            old = limits.get(offer.id, RemainingLimits())
            limits[offer.id] = replace(old, units=draw(st.integers(1, 9)))
    kw = {**kw, "limits": limits}
    return rules, catalogue, basket, member, kw


# ---- buy one set, get from another (tests/test_buy_get.py) --------------------------------
# Drawn on top of a pricing case, so the other property tests' examples stay as they were.


@st.composite
def buy_get_sets(draw) -> tuple[dict[str, Any], dict[str, Any]]:
    """(buy set, get set), disjoint on any catalogue: split skus, or a category to buy and
    the sku the catalogue does not know to get (a basket line may still match both)."""
    if draw(st.integers(0, 3)) == 0:
        return {"categories": [draw(st.sampled_from(CATEGORIES))]}, {"skus": [SKUS[-1]]}
    skus = draw(st.permutations(SKUS))
    a, b = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    buy: dict[str, Any] = {"skus": skus[:a]}
    get: dict[str, Any] = {"skus": skus[a : a + b]}
    if draw(st.integers(0, 3)) == 0:
        get["exclude_skus"] = [skus[a]]
        get["skus"] = skus[a : a + b + 1]
    return buy, get


@st.composite
def buy_get_rewards(draw, get: dict[str, Any]) -> dict[str, Any]:
    """A BuyGet reward (file form) with the get set ``get``."""
    out: dict[str, Any] = {
        "get": get,
        "buy_qty": draw(st.integers(1, 3)),
        "get_qty": draw(st.integers(1, 3)),
    }
    form = draw(st.sampled_from(TARGET_UNITS_VALUES))
    if form == "percent_bps":
        out[form] = draw(st.sampled_from([10000, 5000, draw(bps)]))
    elif form == "amount_minor":
        out[form] = draw(st.integers(1, 3000))
    else:
        out[form] = draw(st.sampled_from([0, draw(st.integers(0, 3000))]))
    return out


@st.composite
def buy_get_cases(draw, max_offers: int = 8):
    """A pricing case whose item offers become buy_get about one time in two (scope and get
    set redrawn, disjoint), and whose remaining limits sometimes track their units."""
    from google.protobuf.json_format import ParseDict

    from loyalty.v1 import rules_pb2

    rules, catalogue, basket, member, kw = draw(pricing_cases(max_offers))
    for offer in rules.offers:
        if offer.WhichOneof("reward") in ITEM and draw(st.booleans()):
            buy, get = draw(buy_get_sets())
            offer.scope.CopyFrom(ParseDict(buy, rules_pb2.ProductSet()))
            offer.buy_get.CopyFrom(ParseDict(draw(buy_get_rewards(get)), rules_pb2.BuyGet()))
    assert validate(rules, catalogue) == [], validate(rules, catalogue)
    limits = dict(kw["limits"])
    for offer in rules.offers:
        if offer.WhichOneof("reward") == "buy_get" and draw(st.integers(0, 3)) == 0:
            old = limits.get(offer.id, RemainingLimits())
            limits[offer.id] = replace(old, units=draw(st.integers(1, 9)))
    kw = {**kw, "limits": limits}
    return rules, catalogue, basket, member, kw


# ---- unit rates and complete unit groups (tests/test_unit_rates.py) -----------------------
# Drawn on top of a pricing case, so the other property tests' examples stay as they were.


@st.composite
def unit_rates_rewards(draw) -> dict[str, Any]:
    """A UnitRates reward (file form): not both rates 0; every unit or up to ``max_units``."""
    first = draw(st.sampled_from([0, 500, draw(st.integers(0, 3000))]))
    additional = draw(st.sampled_from([0, 200, draw(st.integers(0, 3000))]))
    if first + additional == 0:
        additional = draw(st.integers(1, 3000))
    return {
        "first_minor": first,
        "additional_minor": additional,
        "max_units": draw(st.sampled_from([0, 0, 1, draw(st.integers(1, 8))])),
    }


@st.composite
def unit_rates_cases(draw, max_offers: int = 8):
    """A pricing case whose item offers become unit_rates about one time in three, whose
    percent_off, amount_off, fixed_price and qty_tiers offers have
    ``Limits.units_in_groups_of`` about one time in two (and ``max_units`` one time in four),
    and whose remaining limits sometimes track units."""
    from google.protobuf.json_format import ParseDict

    from loyalty.v1 import rules_pb2

    rules, catalogue, basket, member, kw = draw(pricing_cases(max_offers))
    for offer in rules.offers:
        reward = offer.WhichOneof("reward")
        if reward in ITEM and draw(st.integers(0, 2)) == 0:
            offer.unit_rates.CopyFrom(ParseDict(draw(unit_rates_rewards()), rules_pb2.UnitRates()))
        elif reward in UNIT_LIMIT_REWARDS:
            if draw(st.booleans()):
                offer.limits.units_in_groups_of = draw(st.sampled_from([2, 3, draw(small) + 1]))
            if draw(st.integers(0, 3)) == 0:
                offer.limits.max_units = draw(st.integers(1, 8))
    assert validate(rules, catalogue) == [], validate(rules, catalogue)
    limits = dict(kw["limits"])
    for offer in rules.offers:
        if offer.WhichOneof("reward") in (*ITEM, "unit_rates") and draw(st.integers(0, 3)) == 0:
            old = limits.get(offer.id, RemainingLimits())
            limits[offer.id] = replace(old, units=draw(st.integers(1, 9)))
    kw = {**kw, "limits": limits}
    return rules, catalogue, basket, member, kw


@st.composite
def delivery_cases(draw):
    """A pricing case with 1-2 delivery lines in random places, about one offer in three a
    delivery_off, and earning on delivery sometimes on."""
    rules, catalogue, b, member, kw = draw(pricing_cases())
    lines = list(b.lines)
    for k in range(draw(st.integers(1, 2))):
        sku = draw(st.sampled_from(["DELIVERY", "DELIVERY", *SKUS]))
        price_ = draw(st.sampled_from([0, 599, 599, draw(st.integers(0, 5000))]))
        line = Line(f"D{k}", sku, draw(st.integers(1, 2)), price_, delivery=True)
        lines.insert(draw(st.integers(0, len(lines))), line)
    for offer in rules.offers:
        if draw(st.integers(0, 2)) == 0 and offer.WhichOneof("reward") not in (
            "points_multiplier",
            "bonus_points",
        ):
            form = draw(st.sampled_from(["percent_bps", "amount_minor", "price_minor"]))
            value = {
                "percent_bps": draw(st.sampled_from([10000, 5000, draw(st.integers(1, 10000))])),
                "amount_minor": draw(st.integers(1, 3000)),
                "price_minor": draw(st.integers(0, 3000)),
            }[form]
            offer.ClearField("scope")
            offer.stacking.group = ""  # an order reward now: groups do not mix phases
            offer.delivery_off.CopyFrom(rules_pb2.DeliveryOff(**{form: value}))
            offer.limits.ClearField("max_units_per_line")
    if rules.HasField("points"):
        rules.points.earn_on_delivery = draw(st.booleans())
    assert validate(rules, catalogue) == [], validate(rules, catalogue)
    return rules, catalogue, replace(b, lines=tuple(lines)), member, kw


@st.composite
def gift_cases(draw):
    """A pricing case in which about one offer in three is a gift of a random sku."""
    rules, catalogue, b, member, kw = draw(pricing_cases())
    for offer in rules.offers:
        if draw(st.integers(0, 2)) == 0 and offer.WhichOneof("reward") not in (
            "points_multiplier",
            "bonus_points",
        ):
            offer.gift.CopyFrom(
                rules_pb2.Gift(
                    sku=draw(st.sampled_from(SKUS)),
                    quantity=draw(st.integers(1, 3)),
                    price_minor=draw(st.sampled_from([0, 0, draw(st.integers(0, 2000))])),
                )
            )
            offer.stacking.group = ""  # an order reward now: groups do not mix phases
            offer.limits.ClearField("max_units_per_line")
    assert validate(rules, catalogue) == [], validate(rules, catalogue)
    return rules, catalogue, b, member, kw
