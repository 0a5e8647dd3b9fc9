"""The batch kernel's parts: runs of consecutive baskets priced on one workspace each, their
rows packed into one region per part. Whatever the split, every basket's result is the
single kernel's (``engine.price``)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.pricing.api import price
from engine.pricing.batch import batch_parts, encode_batch, price_batch, run_batch
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.jit import njit
from engine.pricing.kernel.batch import QUICK_WIDTH, range_width
from engine.pricing.kernel.core import workspace_width
from engine.pricing.layout import P_LINE_PAIRS
from engine.pricing.rule_arrays import unpack_rules
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member
from tests.strategies import T0


@pytest.fixture(scope="module")
def compiled():
    rules = parse_rules(
        {
            "points": {
                "point_value_minor": 10,
                "earn_per_amount_minor": 10,
                "redeem_step_points": 1,
            },
            "offers": [
                {"id": "p0", "scope": {"skus": ["A"]}, "percent_off": {"percent_bps": 1000}},
                {"id": "p1", "scope": {"all": True}, "percent_off": {"percent_bps": 100}},
                {"id": "b", "scope": {"skus": ["B", "C"]}, "bonus_points": {"per_unit": 2}},
            ],
        }
    )
    return compile_rules(rules, Catalogue.empty())


def test_parts_cover_the_baskets_in_order():
    # given baskets of 0, 3, 0, 0, 5 and 1 lines
    line_off = np.array([0, 0, 3, 3, 3, 8, 9], dtype=np.int64)
    for n_parts in (1, 2, 4, 8):
        # when they are split into that many parts
        part_off, part_rows = batch_parts(line_off, 4, n_parts)
        # then the parts run over every basket once, in order, with 4 rows per line
        assert part_off[0] == 0 and part_off[-1] == 6
        assert np.all(np.diff(part_off) >= 0)
        assert len(part_off) == min(6, n_parts) + 1
        assert part_rows.tolist() == (line_off[part_off] * 4).tolist()


@pytest.mark.parametrize("parallel_min_lines", [0, 1_000])
@pytest.mark.parametrize("rows_per_line", [1, 32])
def test_batch_matches_single_whatever_the_split(
    compiled, monkeypatch, parallel_min_lines, rows_per_line
):
    # given baskets of very different sizes (some empty), members and guests
    baskets = [
        Basket(
            tuple(
                Line(str(k), "ABCZ"[(b + k) % 4], 1 + k % 3, 100 * (b + 1) + 7 * k)
                for k in range(b % 7)
            ),
            T0,
        )
        for b in range(40)
    ]
    members = [Member("m", available_points=50) if b % 3 else None for b in range(40)]
    # when they are priced in one batch, in parallel parts or on the calling thread, with
    # rows enough or so few that baskets overflow their part and are priced again alone
    monkeypatch.setattr("engine.pricing.batch.PARALLEL_MIN_LINES", parallel_min_lines)
    out = run_batch(compiled, encode_batch(compiled, baskets, members), rows_per_line)
    got = price_batch(compiled, baskets, members, rows_per_line=rows_per_line)
    # then every basket gets exactly what the single kernel gives it
    assert got == [price(compiled, b, m) for b, m in zip(baskets, members, strict=True)]
    assert bool(out.retried) == (rows_per_line == 1)
    assert out.row_off[-1] == len(out.rows)


@njit
def _widths(packed, lines, line_off):
    """(a part's workspace width, the widest any of its baskets needs)."""
    rules = unpack_rules(packed)
    n_b = line_off.shape[0] - 1
    widest = 1
    for b in range(n_b):
        widest = max(widest, workspace_width(rules, lines[line_off[b] : line_off[b + 1]]))
    return range_width(rules, lines, line_off, 0, n_b), widest


@pytest.mark.parametrize("most_lines", [0, 1, 7, 40, 3_000])
def test_a_parts_workspace_is_as_wide_as_its_widest_basket_needs(compiled, most_lines):
    # given a line finds at most two offers: one of the sku lists (each has one) and the
    # offer on everything
    assert compiled.arrays.programme[P_LINE_PAIRS] == 2
    # and a part whose baskets have up to `most_lines` lines, on skus with offers and without
    baskets = [
        Basket(tuple(Line(str(k), "ABCZ"[(b + k) % 4], 1, 100) for k in range(n)), T0)
        for b, n in enumerate((most_lines, most_lines // 2, 1, 0))
    ]
    enc = encode_batch(compiled, baskets)
    # when the part's workspace is sized
    width, widest = _widths(compiled.packed, enc.lines, enc.line_off)
    # then it is wide enough for every basket: from its lines alone while that bound is
    # small, else each basket's own
    assert width >= widest
    bound = max(most_lines, 1) * 2 + 1
    assert width == (max(bound, widest) if bound <= QUICK_WIDTH else widest)
