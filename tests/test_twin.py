"""Kernel == reference, exactly, on random rule sets and baskets (the twin comparison).

Also run by ``make test`` with ``NUMBA_DISABLE_JIT=1`` so coverage sees the kernel lines as
plain Python.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.pricing.api import price
from engine.pricing.batch import encode_batch, price_batch, run_batch
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.reference.core import price_reference
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member, PricingResult
from tests.strategies import T0, baskets, catalogues, members, pricing_cases, rule_sets


def check_invariants(r: PricingResult) -> None:
    """What must hold for any basket (docs/design.md §4)."""
    assert all(line.net_minor >= 0 for line in r.lines)
    assert r.net_minor == sum(line.net_minor for line in r.lines)
    assert r.gross_minor - r.discount_minor == r.net_minor
    for line in r.lines:
        assert line.gross_minor - sum(d.amount_minor for d in line.discounts) == line.net_minor
        assert 0 <= line.points_tender_minor <= line.net_minor
        for d in line.discounts:
            assert 0 < d.amount_minor and 0 <= d.funded_minor <= d.amount_minor
    for offer in r.offers:  # each offer's line rows add up to its discount
        rows = [d for line in r.lines for d in line.discounts if d.offer_id == offer.offer_id]
        assert sum(d.amount_minor for d in rows) == offer.discount_minor
        assert sum(d.funded_minor for d in rows) == offer.funded_minor <= offer.discount_minor
    assert r.points_tender_minor == sum(line.points_tender_minor for line in r.lines)
    assert r.payable_minor == r.net_minor - r.points_tender_minor >= 0
    for comp in r.points:  # each component's attribution adds up to it
        assert sum(comp.line_points) == comp.points > 0
    assert r.points_earned == sum(c.points for c in r.points)
    assert r.points_earned == sum(line.points_earned for line in r.lines)


@settings(max_examples=300)
@given(pricing_cases())
def test_kernel_equals_reference(case):
    # given a random valid rule set, catalogue, basket, member, coupons and limits
    rules, catalogue, basket, member, kw = case
    # when both implementations price it
    expected = price_reference(rules, catalogue, basket, member, **kw)
    got = price(compile_rules(rules, catalogue), basket, member, **kw)
    # then they agree on every field, and the result is sound
    assert got == expected
    check_invariants(got)


@st.composite
def batches(draw):
    data = draw(rule_sets())
    ids = [o["id"] for o in data["offers"]]
    n = draw(st.integers(1, 12))
    return (
        parse_rules(data),
        draw(catalogues()),
        [draw(baskets()) for _ in range(n)],
        [draw(members(ids)) for _ in range(n)],
        [draw(st.sampled_from([0, -1, 200])) for _ in range(n)],
    )


@settings(max_examples=120)
@given(batches(), st.randoms(use_true_random=False))
def test_batch_kernel_equals_reference_at_any_position(case, rnd: random.Random):
    # given many baskets priced together by the parallel kernel
    rules, catalogue, basket_list, member_list, redeem = case
    compiled = compile_rules(rules, catalogue)
    results = price_batch(compiled, basket_list, member_list, redeem_points=redeem)
    # then each equals the reference on its own
    for b, m, r, got in zip(basket_list, member_list, redeem, results, strict=True):
        assert got == price_reference(rules, catalogue, b, m, redeem_points=r)
        check_invariants(got)
    # and shuffling the batch changes no basket's result
    order = list(range(len(basket_list)))
    rnd.shuffle(order)
    shuffled = price_batch(
        compiled,
        [basket_list[i] for i in order],
        [member_list[i] for i in order],
        redeem_points=[redeem[i] for i in order],
    )
    assert [shuffled[order.index(i)] for i in range(len(order))] == results


def test_batch_retries_baskets_whose_rows_overflow():
    # given baskets that produce more rows than a slab of one row per line holds
    rules = parse_rules(
        {
            "points": {
                "point_value_minor": 10,
                "earn_per_amount_minor": 10,
                "redeem_step_points": 1,
            },
            "offers": [
                {"id": f"p{i}", "scope": {"all": True}, "percent_off": {"percent_bps": 100}}
                for i in range(5)
            ]
            + [{"id": "bonus", "scope": {"all": True}, "bonus_points": {"per_unit": 1}}],
        }
    )
    compiled = compile_rules(rules, Catalogue.empty())
    basket = Basket((Line("1", "A", 1, 1000), Line("2", "B", 2, 700)), T0)
    small = Basket((Line("1", "A", 1, 5),), T0)
    members = [Member("m"), None, None]
    # when the batch runs with one row per line
    out = run_batch(
        compiled, encode_batch(compiled, [basket, small, basket], members), rows_per_line=1
    )
    # then the overflowing baskets were priced alone, and every result matches the single kernel
    assert out.retried == (0, 2)
    got = price_batch(compiled, [basket, small, basket], members, rows_per_line=1)
    assert got == [
        price(compiled, b, m) for b, m in zip([basket, small, basket], members, strict=True)
    ]


def test_batch_in_small_chunks_matches_one_chunk(monkeypatch):
    # given a batch split into many chunks (and slabs that overflow), as for huge histories
    rules = parse_rules(
        {
            "points": {
                "point_value_minor": 10,
                "earn_per_amount_minor": 10,
                "redeem_step_points": 1,
            },
            "offers": [
                {"id": f"p{i}", "scope": {"all": True}, "percent_off": {"percent_bps": 100}}
                for i in range(3)
            ]
            + [{"id": "bonus", "scope": {"all": True}, "bonus_points": {"per_unit": 1}}],
        }
    )
    compiled = compile_rules(rules, Catalogue.empty())
    baskets = [
        Basket(
            tuple(Line(str(k), f"S{k}", 1 + k % 3, 100 * (b + k + 1)) for k in range(1 + b % 4)), T0
        )
        for b in range(30)
    ]
    members = [Member("m") if b % 2 else None for b in range(30)]
    whole = price_batch(compiled, baskets, members)
    # when the slab budget holds only a few lines per chunk
    monkeypatch.setattr("engine.pricing.batch.CHUNK_SLAB_BYTES", 3 * 2 * 6 * 8)
    out = run_batch(compiled, encode_batch(compiled, baskets, members), rows_per_line=2)
    # then it ran in many chunks, retried baskets whose slab overflowed, and changed nothing
    assert out.retried
    assert price_batch(compiled, baskets, members, rows_per_line=2) == whole
