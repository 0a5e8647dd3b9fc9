"""Every pricing construct on random rule sets and baskets (docs/pricing.md §1.1, §4, §5).

One strategy per construct (tests/strategies.py): upper bounds and unit limits, target_units,
buy_get, unit_rates with complete groups, delivery lines with delivery_off, gifts. On each:

- the kernel and the reference agree exactly, and the result is sound;
- the batch kernel gives what the reference gives, basket by basket;
- the byte path answers the bytes the checked path answers (rule sets with gifts take the
  checked path: the byte path declines them);
- splitting a line into several of the same sku and price changes no total, offer,
  explanation or gift, and the lines of each kind add up to what they did.

The pinned examples of each construct are in its own test module.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.pricing.api import price
from engine.pricing.batch import price_batch
from engine.pricing.compiler import compile_rules
from engine.pricing.reference.core import price_reference
from loyalty.v1 import checkout_pb2
from tests.strategies import (
    baskets,
    bound_and_unit_limit_cases,
    buy_get_cases,
    delivery_cases,
    gift_cases,
    members,
    target_units_cases,
    unit_rates_cases,
)
from tests.test_split_invariance import check_split
from tests.test_twin import check_invariants
from tests.test_wire import both, request_of

CONSTRUCTS = {
    "bounds_and_unit_limits": bound_and_unit_limit_cases,
    "target_units": target_units_cases,
    "buy_get": buy_get_cases,
    "unit_rates_and_groups": unit_rates_cases,
    "delivery": delivery_cases,
    "gifts": gift_cases,
}


@pytest.mark.parametrize("construct", CONSTRUCTS)
@settings(max_examples=300)
@given(data=st.data())
def test_kernel_equals_reference(construct, data):
    # given a random valid rule set using the construct, and a basket
    rules, catalogue, basket, member, kw = data.draw(CONSTRUCTS[construct]())
    # when both implementations price it
    expected = price_reference(rules, catalogue, basket, member, **kw)
    got = price(compile_rules(rules, catalogue), basket, member, **kw)
    # then they agree exactly and the result is sound
    assert got == expected
    check_invariants(got)
    # a delivery line never takes points tender, and earns only when the programme says so
    for line, res in zip(basket.lines, got.lines, strict=True):
        if line.delivery:
            assert res.points_tender_minor == 0
            if not rules.points.earn_on_delivery:
                assert res.points_earned == 0
    # a listed gift is within its quantity
    for g in got.gifts:
        assert 0 <= g.in_basket <= g.quantity


@pytest.mark.parametrize("construct", CONSTRUCTS)
@settings(max_examples=60)
@given(data=st.data())
def test_batch_kernel_equals_reference(construct, data):
    # given several baskets priced together under a rule set using the construct
    rules, catalogue, basket, member, _ = data.draw(CONSTRUCTS[construct]())
    more = data.draw(st.lists(baskets(), max_size=4))
    ids = [o.id for o in rules.offers]
    basket_list = [basket, *more]
    member_list = [member, *(data.draw(members(ids)) for _ in more)]
    # when the batch kernel prices them
    results = price_batch(compile_rules(rules, catalogue), basket_list, member_list)
    # then each equals the reference
    for b, m, got in zip(basket_list, member_list, results, strict=True):
        assert got == price_reference(rules, catalogue, b, m)


@pytest.mark.parametrize("construct", CONSTRUCTS)
@settings(max_examples=150)
@given(data=st.data())
def test_the_byte_path_answers_the_same(construct, data):
    # given a random rule set using the construct, and a request
    rules, catalogue, basket, member, kw = data.draw(CONSTRUCTS[construct]())
    compiled = compile_rules(rules, catalogue)
    names = {o.id: o.name or f"name of {o.id}" for o in rules.offers}
    request = request_of(basket, member.member_id if member else "", kw["redeem_points"])
    # when both paths price its bytes
    checked, fast = both(
        compiled, names, request.SerializeToString(), member, kw["coupons"], kw["limits"]
    )
    # then the byte path answers the same message, or declines a rule set with gifts
    assert isinstance(checked, checkout_pb2.EvaluateResponse), checked
    if any(o.WhichOneof("reward") == "gift" for o in rules.offers):
        assert fast is None
    else:
        assert fast == checked


@pytest.mark.parametrize("construct", CONSTRUCTS)
@settings(max_examples=250)
@given(data=st.data(), rnd=st.randoms(use_true_random=False))
def test_splitting_a_line_changes_no_total(construct, data, rnd: random.Random):
    check_split(data.draw(CONSTRUCTS[construct]()), rnd)
