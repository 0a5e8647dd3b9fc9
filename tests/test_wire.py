"""The byte-level Evaluate path (engine.pricing.wire) answers what the checked path answers.

The checked path parses with protobuf, checks with ``server.api.convert``, prices with
``engine.price`` and builds the response message; the byte path reads the request bytes into
the kernel's arrays and writes the response bytes. For every request the byte path takes,
both responses parse to equal messages; every request it refuses (``None``) is one the
checked path refuses too, or one it routes there on purpose (explanations).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings

from engine.errors import InvalidInput
from engine.pricing import wire
from engine.pricing.api import (
    check_basket,
    encode_coupons,
    encode_limits,
    encode_member,
    price,
    run_kernel,
)
from engine.pricing.compiler import compile_rules
from engine.pricing.types import Basket
from loyalty.v1 import checkout_pb2
from server.api.convert import basket_from_request, response_from_result
from tests.strategies import pricing_cases

NOW = datetime(2026, 3, 4, 12, 30, tzinfo=UTC)


def request_of(basket: Basket, member_id: str, redeem: int) -> checkout_pb2.EvaluateRequest:
    ts = Timestamp()
    ts.FromDatetime(basket.occurred_at)
    req = checkout_pb2.EvaluateRequest(
        member_id=member_id,
        store_id=basket.store_id,
        channel=basket.channel,
        occurred_at=ts,
        redeem_points=redeem,
    )
    for x in basket.lines:
        req.lines.add(
            line_id=x.line_id,
            sku=x.sku,
            quantity=x.quantity,
            unit_price_minor=x.unit_price_minor,
            category=x.category,
            brand=x.brand,
            vendor=x.vendor,
            delivery=x.delivery,
        )
    return req


def both(compiled, names, data: bytes, member, coupons, limits):
    """(checked response or the InvalidInput it raised, byte-path response or None)."""
    tables = wire.WireTables.build(compiled, names)
    req = checkout_pb2.EvaluateRequest.FromString(data)
    try:
        basket = basket_from_request(req, now=NOW)
        check_basket(basket)
        result = price(
            compiled,
            basket,
            member,
            coupons=coupons,
            redeem_points=req.redeem_points,
            limits=limits,
        )
        checked: checkout_pb2.EvaluateResponse | InvalidInput = response_from_result(
            result, 7, names, True
        )
    except InvalidInput as exc:
        checked = exc
    parsed = wire.parse(tables, compiled, data)
    if parsed is None:
        return checked, None
    # both price at the request's own time (the server decides the pricing time; here it is
    # the lane's, so that random times reach the byte path's local-time arithmetic)
    at = req.occurred_at.ToDatetime(tzinfo=UTC) if req.HasField("occurred_at") else NOW
    outputs = run_kernel(
        compiled,
        parsed.lines,
        encode_member(compiled, member, parsed.redeem_points),
        parsed.context(compiled.timezone, at),
        encode_coupons(compiled, member, coupons),
        encode_limits(compiled, limits),
        False,
    )
    body = wire.respond(tables, parsed, *outputs, 7, True)
    return checked, checkout_pb2.EvaluateResponse.FromString(body)


@settings(max_examples=300)
@given(pricing_cases())
def test_the_byte_path_answers_what_the_checked_path_answers(case):
    # given a random rule set, catalogue, basket, member, coupons and limits
    rules, catalogue, basket, member, kw = case
    compiled = compile_rules(rules, catalogue)
    names = {o.id: o.name or f"name of {o.id}" for o in rules.offers}
    data = request_of(basket, member.member_id if member else "", kw["redeem_points"])
    # when both paths price the request's bytes
    checked, fast = both(
        compiled, names, data.SerializeToString(), member, kw["coupons"], kw["limits"]
    )
    # then the byte path takes every valid request and answers the same message
    assert isinstance(checked, checkout_pb2.EvaluateResponse), checked
    assert fast is not None
    assert fast == checked


RULES = {
    "timezone": "Asia/Shanghai",
    "points": {
        "point_value_minor": 10,
        "earn_per_amount_minor": 100,
        "redeem_step_points": 1,
        "max_redeem_share_bps": 5000,
    },
    "offers": [
        {
            "id": "tea-10",
            "name": "Tea, ten percent off",
            "scope": {"skus": ["茶-500ml", "A"]},
            "percent_off": {"percent_bps": 1000},
        },
        {
            "id": "spend",
            "scope": {"all": True},
            "spend_tiers": {"steps": [{"threshold_minor": 1000, "amount_minor": 100}]},
        },
        {"id": "bonus", "scope": {"all": True}, "bonus_points": {"per_unit": 2}},
    ],
}


@pytest.fixture(scope="module")
def shop():
    from engine.pricing.catalogue import Catalogue
    from engine.pricing.rules import parse_rules
    from engine.pricing.types import Member

    catalogue = Catalogue.from_rows(
        [{"sku": "A", "category": "drinks", "brand": "b", "vendor": "v"}]
    )
    rules = parse_rules(RULES)
    names = {o.id: o.name for o in rules.offers}
    return compile_rules(rules, catalogue), names, Member("m1", available_points=500)


def base(**kw) -> checkout_pb2.EvaluateRequest:
    fields = {"member_id": "m1", "store_id": "s1", "channel": "pos", **kw}
    req = checkout_pb2.EvaluateRequest(**fields)
    req.lines.add(line_id="1", sku="A", quantity=2, unit_price_minor=700)
    req.lines.add(line_id="2", sku="茶-500ml", quantity=1, unit_price_minor=350, category="tea")
    return req


def _line(req: checkout_pb2.EvaluateRequest, **kw) -> checkout_pb2.EvaluateRequest:
    req.lines.add(**{"line_id": "9", "sku": "A", "quantity": 1, "unit_price_minor": 1, **kw})
    return req


ACCEPTED = {
    "a member": base(),
    "a guest": base(member_id=""),
    "redeem all": base(redeem_points=-1),
    "ids of 128 characters": _line(base(), line_id="é" * 128, sku="ü" * 128),
    "an unknown sku and store": _line(base(store_id="nowhere"), sku="??"),
    "attributes given": _line(base(), category="drinks", brand="x", vendor="v"),
    "coupon codes": base(coupon_codes=["C1", "C2", "C1"]),
    "the largest quantity and price": _line(base(), quantity=10_000, unit_price_minor=100_000),
}


@pytest.mark.parametrize("req", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_edge_requests_the_byte_path_takes_answer_the_same(shop, req):
    compiled, names, member = shop
    checked, fast = both(compiled, names, req.SerializeToString(), member, [], None)
    assert fast is not None
    assert fast == checked


def _ts(seconds: int) -> checkout_pb2.EvaluateRequest:
    req = base()
    req.occurred_at.seconds = seconds
    return req


REFUSED = {
    "no lines": checkout_pb2.EvaluateRequest(member_id="m1").SerializeToString(),
    "quantity 0": _line(base(), quantity=0).SerializeToString(),
    "negative quantity": _line(base(), quantity=-3).SerializeToString(),
    "quantity too large": _line(base(), quantity=10_001).SerializeToString(),
    "negative price": _line(base(), unit_price_minor=-1).SerializeToString(),
    "price too large": _line(base(), unit_price_minor=100_000_001).SerializeToString(),
    "duplicate line id": _line(base(), line_id="1").SerializeToString(),
    "no line id": _line(base(), line_id="").SerializeToString(),
    "no sku": _line(base(), sku="").SerializeToString(),
    "line id too long": _line(base(), line_id="x" * 129).SerializeToString(),
    "member id too long": base(member_id="m" * 129).SerializeToString(),
    "store id too long": base(store_id="s" * 129).SerializeToString(),
    "channel too long": base(channel="c" * 129).SerializeToString(),
    "a coupon code too long": base(coupon_codes=["x" * 129]).SerializeToString(),
    "a category too long": _line(base(), category="c" * 129).SerializeToString(),
    "a vendor too long": _line(base(), vendor="v" * 129).SerializeToString(),
    "too many codes": base(coupon_codes=[f"C{i}" for i in range(31)]).SerializeToString(),
    "redeem -2": base(redeem_points=-2).SerializeToString(),
    "basket over the total bound": b"".join(
        _line(
            checkout_pb2.EvaluateRequest(),
            line_id=f"L{i}",
            quantity=10_000,
            unit_price_minor=100_000_000,
        ).SerializeToString()
        for i in range(3)
    ),
    "a time before 0001-01-02": _ts(-62_135_510_401).SerializeToString(),
    "a time after 9999-12-30": _ts(253_402_214_400).SerializeToString(),
    "an unknown field": base().SerializeToString() + b"\xa0\x01\x05",
    "truncated": base().SerializeToString()[:-3],
    "a sku that is not UTF-8": base().SerializeToString().replace("茶".encode(), b"\xff\xfe\xfd"),
    "a surrogate in UTF-8": base().SerializeToString().replace("茶".encode(), b"\xed\xa0\x80"),
}


@pytest.mark.parametrize("data", REFUSED.values(), ids=REFUSED.keys())
def test_requests_outside_the_common_case_take_the_checked_path(shop, data):
    compiled, names, _ = shop
    # the byte path declines; the checked path then answers (or names the bad field)
    assert wire.parse(wire.WireTables.build(compiled, names), compiled, data) is None


def test_a_request_for_explanations_is_flagged_for_the_checked_path(shop):
    compiled, names, _ = shop
    tables = wire.WireTables.build(compiled, names)
    asked = wire.parse(tables, compiled, base(explain=True).SerializeToString())
    plain = wire.parse(tables, compiled, base().SerializeToString())
    assert asked is not None and asked.explain
    assert plain is not None and not plain.explain


def test_hostile_bytes_never_break_the_parser(shop):
    # given 3,000 seeded mutations of a valid request (flips, cuts, insertions)
    compiled, names, member = shop
    tables = wire.WireTables.build(compiled, names)
    good = base(coupon_codes=["C1"], redeem_points=-1).SerializeToString()
    rng = random.Random(20261203)
    taken = 0
    for _ in range(3_000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            op, at = rng.randint(0, 2), rng.randrange(len(data))
            if op == 0:
                data[at] = rng.randrange(256)
            elif op == 1:
                del data[at : at + rng.randint(1, 8)]
            else:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        # when the byte path reads them, it either declines or agrees with the checked path
        if wire.parse(tables, compiled, bytes(data)) is None:
            continue
        taken += 1
        checked, fast = both(compiled, names, bytes(data), member, [], None)
        assert fast == checked
    assert taken > 100  # many mutations stay valid requests (prices, quantities, ids)


ZONES = [
    "UTC",
    "Asia/Shanghai",  # +8, and +8:05:43 before 1901
    "Asia/Kolkata",  # +5:30
    "Asia/Kathmandu",  # +5:45
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/New_York",  # DST at 02:00 local
    "Australia/Lord_Howe",  # a 30-minute DST shift
]


@pytest.mark.parametrize("zone", ZONES)
def test_local_time_kept_per_quarter_hour_equals_the_time_zone_database(zone):
    # given 2,000 seeded instants from 1890 to 2100, and every second around DST changes
    from zoneinfo import ZoneInfo

    from engine.pricing.basket import local_time_at

    rng = random.Random(zone)
    instants = [rng.randrange(-2_524_521_600, 4_102_444_800) for _ in range(2_000)]
    instants += range(1_710_054_000 - 7_200, 1_710_054_000 + 7_200, 37)  # 2024-03-10 (US DST)
    tz = ZoneInfo(zone)
    for epoch in instants:
        # when the cached path answers, it is what the time zone database says
        got = local_time_at(epoch, zone)
        local = datetime.fromtimestamp(epoch, tz)
        assert (got.epoch_s, got.weekday, got.hour, got.month) == (
            epoch,
            local.isoweekday(),
            local.hour,
            local.month,
        ), (zone, epoch)


# --- member-only items (RuleSet.restricted_items) ------------------------------------------


def both_marked(compiled, names, data: bytes, member, coupons, limits):
    """:func:`both`, the byte path's answer marked as the server marks it: restricted lines
    from the parsed arrays (engine.pricing.restrictions), marked in the response bytes."""
    from engine.pricing.restrictions import restricted_lines
    from server.api.restricted import mark_restricted_bytes

    checked, fast = both(compiled, names, data, member, coupons, limits)
    parsed = wire.parse(wire.WireTables.build(compiled, names), compiled, data)
    if fast is None or parsed is None:
        return checked, None
    row = encode_member(compiled, member, parsed.redeem_points)
    body = mark_restricted_bytes(
        fast.SerializeToString(), restricted_lines(compiled, parsed.lines, row)
    )
    return checked, checkout_pb2.EvaluateResponse.FromString(body)


@settings(max_examples=150)
@given(pricing_cases())
def test_member_only_lines_are_marked_the_same_on_both_paths(case):
    # given a random case whose rule set restricts its first line's sku and second line's
    # category to its first tier (if any) and a segment
    rules, catalogue, basket, member, kw = case
    rules.segments.add(id="club")
    r = rules.restricted_items.add(id="members-only", segments=["club"])
    r.tiers.extend(t.id for t in rules.tiers[:1])
    r.scope.skus.append(basket.lines[0].sku)
    r.scope.categories.extend(x.category for x in basket.lines[1:2] if x.category)
    compiled = compile_rules(rules, catalogue)
    names = {o.id: o.name for o in rules.offers}
    data = request_of(basket, member.member_id if member else "", kw["redeem_points"])
    # when both paths price it
    checked, fast = both_marked(
        compiled, names, data.SerializeToString(), member, kw["coupons"], kw["limits"]
    )
    # then they mark and explain the same lines
    assert isinstance(checked, checkout_pb2.EvaluateResponse), checked
    assert fast == checked
    if member is None:
        assert checked.lines[0].restricted and checked.lines[0].restriction_id == "members-only"


@pytest.mark.parametrize("tier", ["", "vip", "gold"])
@pytest.mark.parametrize("member_id", ["", "m1"])
def test_a_restricted_edge_request_answers_the_same(member_id, tier):
    from engine.pricing.catalogue import Catalogue
    from engine.pricing.rules import parse_rules
    from engine.pricing.types import Member

    rules = parse_rules(
        {
            **RULES,
            "tiers": [
                {"id": "vip", "earn_multiplier_bps": 10000},
                {"id": "gold", "earn_multiplier_bps": 10000},
            ],
            "restricted_items": [
                {"id": "tea", "scope": {"categories": ["tea"]}, "tiers": ["gold"]},
                {
                    "id": "all",
                    "scope": {"all": True, "exclude_skus": ["茶-500ml"]},
                    "tiers": ["vip"],
                },
            ],
        }
    )
    catalogue = Catalogue.from_rows([{"sku": "A", "category": "drinks"}])
    compiled = compile_rules(rules, catalogue)
    member = Member(member_id, tier=tier) if member_id else None
    checked, fast = both_marked(
        compiled, {}, base(member_id=member_id).SerializeToString(), member, [], None
    )
    assert fast is not None and fast == checked
    marks = [(ln.restricted, ln.restriction_id) for ln in checked.lines]
    expected = {
        "": [(True, "all"), (True, "tea")],
        "vip": [(False, ""), (True, "tea")],
        "gold": [(True, "all"), (False, "")],
    }
    assert marks == expected[tier if member_id else ""]
