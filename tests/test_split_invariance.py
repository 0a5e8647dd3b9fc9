"""Prices do not depend on how the till splits a sku's units into lines (docs/pricing.md §1.1).

Lines of one kind (same sku, unit price, category, brand, vendor and flags, as far as the
rules can tell) are priced as one line at the place of the first of them, and the results are
shared back. So the totals of a basket are exactly those of the basket with the lines merged,
on the kernel and on the reference alike.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.pricing.api import price
from engine.pricing.basket import resolve_lines
from engine.pricing.batch import price_batch
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.reference.core import price_reference
from engine.pricing.reference.merge import line_kind, vocabulary
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, PricingResult
from tests.strategies import (
    pricing_cases,
)
from tests.test_twin import check_invariants

AT = datetime(2026, 3, 2, 12, tzinfo=UTC)
CATALOGUE = Catalogue.from_rows(
    [
        {"sku": "wine", "category": "drinks"},
        {"sku": "beer", "category": "drinks"},
        {"sku": "cheese", "category": "deli"},
    ]
)


def both(rules, basket, member=None, **kw) -> PricingResult:
    """The kernel's result, after checking that the reference gives the same."""
    got = price(compile_rules(rules, CATALOGUE), basket, member, **kw)
    assert got == price_reference(rules, CATALOGUE, basket, member, **kw)
    check_invariants(got)
    return got


def basket(*lines: tuple[str, str, int, int]) -> Basket:
    return Basket(tuple(Line(i, sku, q, p) for i, sku, q, p in lines), AT)


TWO_BXGY = parse_rules(
    {
        "offers": [
            {
                "id": "b1g1",
                "scope": {"categories": ["drinks"]},
                "buy_x_get_y": {"buy": 1, "get": 1, "percent_bps": 10000},
                "stacking": {"priority": 1},
            },
            {
                "id": "b3g1",
                "scope": {"categories": ["drinks"]},
                "buy_x_get_y": {"buy": 3, "get": 1, "percent_bps": 10000},
                "stacking": {"priority": 2},
            },
        ],
    }
)


@pytest.mark.parametrize(
    "lines",
    [
        [("L1", "wine", 10, 100)],
        [("L1", "wine", 5, 100), ("L2", "wine", 5, 100)],
        [("L1", "wine", 1, 100)] + [(f"L{k}", "wine", 1, 100) for k in range(2, 11)],
        [("L1", "wine", 3, 100), ("L2", "cheese", 1, 900), ("L3", "wine", 7, 100)],
    ],
    ids=["one-line", "two-lines", "ten-scans", "interleaved"],
)
def test_two_buy_x_get_y_give_the_same_however_the_units_are_split(lines):
    # given 10 bottles at 1.00 under "buy 1 get 1" then "buy 3 get 1", however scanned
    result = both(TWO_BXGY, basket(*lines))
    # then the first frees 5 bottles and the second 2 of the 5 still paid for: 7.00 off
    by_offer = {o.offer_id: o.discount_minor for o in result.offers}
    assert by_offer == {"b1g1": 500, "b3g1": 200}
    assert result.net_minor - (900 if len(lines) == 3 else 0) == 300


def test_a_merged_discount_is_shared_by_the_lines_nets_largest_remainder_first():
    # given 10% off wine over three scans of one bottle at 1.05
    rules = parse_rules(
        {
            "offers": [
                {"id": "ten", "scope": {"skus": ["wine"]}, "percent_off": {"percent_bps": 1000}},
            ],
        }
    )
    result = both(
        rules, basket(("A", "wine", 1, 105), ("B", "wine", 1, 105), ("C", "wine", 1, 105))
    )
    # then the merged line's rhu(31.5) = 32 goes 11, 11, 10 (ties to the earlier line)
    assert [sum(d.amount_minor for d in ln.discounts) for ln in result.lines] == [11, 11, 10]
    # and one line of 3 gives exactly the same total
    one = both(rules, basket(("A", "wine", 3, 105)))
    assert one.discount_minor == result.discount_minor == 32


def test_lines_the_rules_can_tell_apart_are_not_merged():
    # given the same sku at two prices, and a line whose own category differs
    rules = parse_rules(
        {
            "offers": [
                {"id": "d", "scope": {"categories": ["deli"]}, "percent_off": {"percent_bps": 5000}}
            ],
        }
    )
    lines = (
        Line("A", "wine", 1, 100),
        Line("B", "wine", 1, 120),
        Line("C", "wine", 1, 100, category="deli"),
    )
    result = both(rules, Basket(lines, AT))
    # then only the deli-category line is discounted, and each line keeps its own result
    assert [ln.net_minor for ln in result.lines] == [100, 120, 50]


def test_a_bottle_freed_by_one_offer_is_not_freed_again_by_the_next():
    # given two different wines at the same price under two "buy 1 get 1" offers in turn
    rules = parse_rules(
        {
            "offers": [
                {
                    "id": f"b1g1-{k}",
                    "scope": {"categories": ["drinks"]},
                    "buy_x_get_y": {"buy": 1, "get": 1, "percent_bps": 10000},
                    "stacking": {"priority": k},
                }
                for k in (1, 2)
            ],
        }
    )
    result = both(rules, basket(("A", "wine", 1, 100), ("B", "beer", 1, 100)))
    # then the second offer frees the unit still paid for, as it would on one line of 2
    assert {o.offer_id: o.discount_minor for o in result.offers} == {"b1g1-1": 100, "b1g1-2": 100}
    assert result.net_minor == 0


def split(b: Basket, rnd: random.Random) -> Basket | None:
    """``b`` with one line of 2+ units split into parts: the first part stays in place, the
    others go to random later places."""
    multi = [i for i, ln in enumerate(b.lines) if ln.quantity >= 2]
    if not multi:
        return None
    i = rnd.choice(multi)
    line = b.lines[i]
    cuts = sorted(rnd.sample(range(1, line.quantity), rnd.randint(1, min(3, line.quantity - 1))))
    sizes = [hi - lo for lo, hi in zip([0, *cuts], [*cuts, line.quantity], strict=True)]
    out = list(b.lines)
    out[i] = replace(line, quantity=sizes[0])
    for k, q in enumerate(sizes[1:], start=1):
        out.insert(
            rnd.randint(i + 1, len(out)), replace(line, line_id=f"{line.line_id}.{k}", quantity=q)
        )
    return replace(b, lines=tuple(out))


def totals(r: PricingResult) -> tuple[object, ...]:
    """Everything about a result that does not name a line."""
    return (
        r.gross_minor,
        r.discount_minor,
        r.net_minor,
        r.points_redeemed,
        r.points_tender_minor,
        r.payable_minor,
        r.points_earned,
        r.tender,
        r.offers,
        r.explanations,
        r.gifts,
        tuple((c.offer_id, c.kind, c.points) for c in r.points),
    )


def check_split(case, rnd: random.Random) -> None:
    rules, catalogue, b, member, kw = case
    parts = split(b, rnd)
    assume(parts is not None)
    assert parts is not None
    compiled = compile_rules(rules, catalogue)
    whole = price(compiled, b, member, **kw)
    got = price(compiled, parts, member, **kw)
    # the same totals, offers and explanations as the basket before the split ...
    assert totals(got) == totals(whole)
    # ... the twin agrees line by line, and the result is sound
    assert got == price_reference(rules, catalogue, parts, member, **kw)
    check_invariants(got)
    # ... and the lines of each kind add up to what they did before the split
    v = vocabulary(rules, catalogue)

    def by_kind(bk: Basket, r: PricingResult) -> dict[object, tuple[int, int, int]]:
        out: dict[object, tuple[int, int, int]] = {}
        for line, res in zip(resolve_lines(bk, catalogue), r.lines, strict=True):
            net, tender, points = out.get(line_kind(line, v), (0, 0, 0))
            out[line_kind(line, v)] = (
                net + res.net_minor,
                tender + res.points_tender_minor,
                points + res.points_earned,
            )
        return out

    assert by_kind(parts, got) == by_kind(b, whole)


@settings(max_examples=700)
@given(pricing_cases(), st.randoms(use_true_random=False))
def test_splitting_a_line_changes_no_total(case, rnd):
    check_split(case, rnd)


@settings(max_examples=60)
@given(pricing_cases(), st.randoms(use_true_random=False))
def test_the_batch_kernel_shares_back_like_the_single_call(case, rnd):
    # given a basket with a split line, priced in a batch with its unsplit self
    rules, catalogue, b, member, kw = case
    parts = split(b, rnd)
    assume(parts is not None)
    compiled = compile_rules(rules, catalogue)
    redeem = kw["redeem_points"]
    batch = price_batch(compiled, [b, parts], [member, member], redeem_points=[redeem, redeem])
    # then each equals the single call (no limits or coupons in a batch call here)
    for one, r in zip((b, parts), batch, strict=True):
        assert r == price(compiled, one, member, redeem_points=redeem)
