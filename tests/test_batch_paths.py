"""The batch's two paths: a small batch priced on the calling thread (``price_serial``, on the
thread's offer map), a large one in parallel parts (``price_many``). Whichever runs, and
whatever ran before on the same buffers, every basket gets the single kernel's result."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.pricing import layout as L
from engine.pricing.api import price
from engine.pricing.batch import (
    BatchOutput,
    _Rows,
    encode_batch,
    price_batch,
    rows_of,
    run_batch,
)
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.entry import offer_slots
from engine.pricing.frames import price_frames
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member
from tests.strategies import T0

CATALOGUE = Catalogue.from_rows(
    [
        {"sku": "A", "category": "food", "brand": "x"},
        {"sku": "B", "category": "food", "brand": "y"},
        {"sku": "C", "category": "drink", "brand": "x"},
    ]
)


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
                {"id": "a10", "scope": {"skus": ["A"]}, "percent_off": {"percent_bps": 1000}},
                {
                    "id": "food",
                    "scope": {"categories": ["food"]},
                    "amount_off": {"amount_minor": 7},
                },
                {"id": "all1", "scope": {"all": True}, "percent_off": {"percent_bps": 100}},
                {"id": "x2", "scope": {"brands": ["x"]}, "bonus_points": {"per_unit": 2}},
            ],
        }
    )
    return compile_rules(rules, CATALOGUE)


def make_baskets(n: int, seed: int) -> tuple[list[Basket], list[Member | None]]:
    """Baskets of 0 to 9 lines, known and unknown skus, members and guests."""
    rng = np.random.default_rng(seed)
    baskets = [
        Basket(
            tuple(
                Line(str(k), "ABCZ"[int(rng.integers(4))], int(rng.integers(1, 4)), 50 * (k + 1))
                for k in range(int(rng.integers(0, 10)))
            ),
            T0,
        )
        for _ in range(n)
    ]
    members = [Member("m", available_points=80) if b % 3 else None for b in range(n)]
    return baskets, members


def same(a: BatchOutput, b: BatchOutput) -> bool:
    """The same tables (which baskets overflowed depends on how the rows were pooled)."""
    return (
        np.array_equal(a.line_out, b.line_out)
        and np.array_equal(a.rows, b.rows)
        and np.array_equal(a.row_off, b.row_off)
        and np.array_equal(a.counts, b.counts)
    )


@pytest.mark.parametrize("rows_per_line", [1, 32])
def test_serial_and_parallel_paths_agree_with_single_calls(compiled, monkeypatch, rows_per_line):
    # given a batch of baskets of many sizes
    baskets, members = make_baskets(60, seed=1)
    enc = encode_batch(compiled, baskets, members)
    # when it runs on the calling thread, then in parallel parts
    monkeypatch.setattr("engine.pricing.batch.PARALLEL_MIN_LINES", 10**9)
    serial = run_batch(compiled, enc, rows_per_line)
    monkeypatch.setattr("engine.pricing.batch.PARALLEL_MIN_LINES", 0)
    parallel = run_batch(compiled, enc, rows_per_line)
    # then both give the same tables, and each basket the single kernel's result
    assert same(serial, parallel)
    assert serial.row_off[-1] == len(serial.rows)
    assert bool(serial.retried) == bool(parallel.retried) == (rows_per_line == 1)
    got = price_batch(compiled, baskets, members, rows_per_line=rows_per_line)
    assert got == [price(compiled, b, m) for b, m in zip(baskets, members, strict=True)]


@pytest.mark.parametrize("parallel_min_lines", [0, 10**9])
def test_buffers_reused_across_batches_of_other_sizes_change_nothing(
    compiled, monkeypatch, parallel_min_lines
):
    # given batches of 1, 40 and 7 baskets, each first priced alone in a fresh process state
    monkeypatch.setattr("engine.pricing.batch.PARALLEL_MIN_LINES", parallel_min_lines)
    batches = [make_baskets(n, seed=n) for n in (1, 40, 7)]
    encoded = [encode_batch(compiled, b, m) for b, m in batches]
    first = [run_batch(compiled, e) for e in encoded]
    # when they run again in another order, interleaved with single calls on this thread
    for k in (2, 0, 1, 2, 1, 0):
        price(compiled, *(x[0] for x in batches[(k + 1) % 3]))
        again = run_batch(compiled, encoded[k])
        # then every run gives what the first did
        assert same(again, first[k]) and again.retried == first[k].retried
    # and the thread's offer map is left all -1 for the next call
    slots = offer_slots(len(compiled.offer_ids))
    assert np.all(slots == -1)


@pytest.mark.parametrize("parallel_min_lines", [0, 10**9])
@pytest.mark.parametrize("chunk_lines", [10**6, 24])
@pytest.mark.parametrize("rows_per_line", [1, 32])
@pytest.mark.parametrize("by_column", [False, True])
def test_a_batch_keeping_some_row_types_keeps_each_baskets_rows_of_them_in_order(
    compiled, monkeypatch, parallel_min_lines, chunk_lines, rows_per_line, by_column
):
    # given a batch priced in one chunk or in chunks of about 24 lines, on either path, its
    # rows kept row after row or column after column
    monkeypatch.setattr("engine.pricing.batch.PARALLEL_MIN_LINES", parallel_min_lines)
    slab_bytes = chunk_lines * rows_per_line * L.ROW_COLS * 8
    monkeypatch.setattr("engine.pricing.batch.CHUNK_SLAB_BYTES", slab_bytes)
    baskets, members = make_baskets(60, seed=3)
    enc = encode_batch(compiled, baskets, members)
    every = run_batch(compiled, enc, rows_per_line)
    assert every.row_off[-1] == len(every.rows)
    kinds = [(L.ROW_DISCOUNT,), (L.ROW_APPLIED,), (L.ROW_POINTS,), (L.ROW_EXPLANATION,)]
    for types in [*kinds, (L.ROW_DISCOUNT, L.ROW_APPLIED), (L.ROW_ATTRIBUTION, L.ROW_GIFT)]:
        # when only the rows of one type (or two) are kept
        kept = run_batch(compiled, enc, rows_per_line, rows_of(*types), by_column)
        assert len(kept.rows) < 2 or kept.rows[:, L.ROW_TYPE].flags.c_contiguous == by_column
        # then the per-line results and the counters are the same, and each basket's rows
        # are exactly its rows of that type, in the kernel's order (none for explanations),
        # which is all the kernel wrote of them
        assert np.array_equal(kept.line_out, every.line_out)
        counters = [k for k in range(L.COUNT_COLS) if k not in (L.N_ROWS, L.N_DROP)]
        assert np.array_equal(kept.counts[:, counters], every.counts[:, counters])
        assert kept.row_off[-1] == len(kept.rows)
        for b in range(len(baskets)):
            mine = every.rows[every.row_off[b] : every.row_off[b + 1]]
            want = mine[np.isin(mine[:, L.ROW_TYPE], types)]
            assert np.array_equal(kept.rows[kept.row_off[b] : kept.row_off[b + 1]], want)
            assert kept.counts[b, L.N_ROWS] == len(want)
    assert bool(every.retried) == (rows_per_line == 1)


def test_chunks_richer_than_the_first_grow_the_output_and_change_nothing(compiled, monkeypatch):
    # given guests buying unknown skus (few rows per line) ahead of members buying on offer
    poor = [Basket((Line("0", "Z", 1, 100),), T0) for _ in range(30)]
    rich, members = make_baskets(60, seed=9)
    baskets, who = poor + rich, [None] * 30 + members
    enc = encode_batch(compiled, baskets, who)
    whole = run_batch(compiled, enc)
    # when the batch runs in chunks of about 8 lines, the output sized from the first chunk
    sizes: list[int] = []
    room = _Rows.room

    def spy(self: _Rows, k: int, chunk_lines: int) -> np.ndarray:
        out = room(self, k, chunk_lines)
        sizes.append(len(self.buf))
        return out

    monkeypatch.setattr(_Rows, "room", spy)
    monkeypatch.setattr("engine.pricing.batch.CHUNK_SLAB_BYTES", 8 * 32 * L.ROW_COLS * 8)
    chunked = run_batch(compiled, enc)
    # then the space grew on the way, and the tables are those of the batch in one chunk
    assert len(set(sizes)) > 1
    assert same(chunked, whole)


def test_a_batch_of_one_is_the_single_call(compiled):
    baskets, members = make_baskets(12, seed=5)
    for b, m in zip(baskets, members, strict=True):
        assert price_batch(compiled, [b], [m]) == [price(compiled, b, m)]


def test_frames_give_unknown_skus_one_id_each_whatever_else_is_in_the_batch(compiled):
    # given frames with unknown skus (Z, Q) repeated within baskets, among known ones
    rows = [(0, "Z", 1, 300), (0, "A", 2, 100), (0, "Z", 2, 300), (1, "Q", 1, 300)]
    rows += [(1, "Z", 1, 300), (1, "Q", 1, 300), (2, "A", 1, 100), (2, "B", 3, 40)]
    lines = pl.DataFrame(
        rows, schema=["basket", "sku", "quantity", "unit_price_minor"], orient="row"
    )
    frames = pl.DataFrame({"occurred_at": [T0] * 3, "member_id": ["m", "", "m"]})
    # when they are priced as frames
    out = price_frames(compiled, lines, frames)
    # then each basket's figures are the single kernel's
    for b in range(3):
        mine = [r for r in rows if r[0] == b]
        basket = Basket(tuple(Line(str(k), s, q, p) for k, (_, s, q, p) in enumerate(mine)), T0)
        member = Member("m") if b != 1 else None
        want = price(compiled, basket, member)
        assert out.baskets["net_minor"][b] == want.net_minor
        assert out.baskets["points_earned"][b] == want.points_earned
        got_lines = out.lines.filter(pl.col("basket") == b)["net_minor"].to_list()
        assert got_lines == [ln.net_minor for ln in want.lines]


def test_frames_line_rows_are_the_requests_line_rows():
    # given a rule set that knows a sku the catalogue lacks (N), and frames' lines with
    # known and unknown skus, categories, brands and vendors given, empty, null or unknown,
    # and delivery charges (whose sku the catalogue may know)
    from engine.pricing.api import encode_lines
    from engine.pricing.frames import encode_frames

    rules = parse_rules(
        {
            "offers": [
                {"id": "n", "scope": {"skus": ["N"]}, "percent_off": {"percent_bps": 500}},
                {"id": "f", "scope": {"categories": ["food"]}, "percent_off": {"percent_bps": 100}},
            ]
        }
    )
    c = compile_rules(rules, CATALOGUE)
    assert "N" in c.sku_index and c.sku_index["N"] >= len(CATALOGUE)
    rows = [  # basket, sku, category, brand, vendor, delivery
        (0, "A", None, None, None, False),
        (0, "B", "drink", "", None, False),
        (0, "Z", "food", "nobody", "v?", False),
        (0, "Z", None, "x", None, False),
        (0, "N", None, None, None, None),
        (1, "C", "", "y", "", False),
        (1, "Q", None, None, None, False),
        (1, "ship", "food", None, None, True),
        (1, "A", None, None, None, True),
        (1, "ship", None, None, None, True),
        (2, "A", "unknown", None, None, False),
    ]
    lines = pl.DataFrame(
        [(b, s, 1 + k, 10 * k, cat, br, v, d) for k, (b, s, cat, br, v, d) in enumerate(rows)],
        schema=[
            "basket",
            "sku",
            "quantity",
            "unit_price_minor",
            "category",
            "brand",
            "vendor",
            "delivery",
        ],
        orient="row",
    )
    baskets = pl.DataFrame({"occurred_at": [T0] * 3})
    # when they are encoded as frames
    enc = encode_frames(c, lines, baskets)
    for b in range(3):
        mine = [(k, r) for k, r in enumerate(rows) if r[0] == b]
        basket = Basket(
            tuple(
                Line(str(k), s, 1 + k, 10 * k, cat or "", br or "", v or "", delivery=bool(d))
                for k, (_, s, cat, br, v, d) in mine
            ),
            T0,
        )
        got = enc.lines[enc.line_off[b] : enc.line_off[b + 1]]
        want = encode_lines(c, basket)
        # then every column is the request path's, and the lines that get ids of their own
        # (below -1) share them as the request path's do
        assert np.array_equal(got[:, 1:], want[:, 1:]), b
        own = want[:, L.L_SKU] < -1
        assert np.array_equal(got[:, L.L_SKU] < -1, own), b
        assert np.array_equal(got[~own, L.L_SKU], want[~own, L.L_SKU]), b
        g, w = got[own, L.L_SKU], want[own, L.L_SKU]
        assert np.array_equal(g[:, None] == g[None, :], w[:, None] == w[None, :]), b


def test_an_empty_batch_prices_nothing(compiled):
    out = run_batch(compiled, encode_batch(compiled, []))
    assert out.line_out.shape == (3, 0) and out.rows.shape[0] == 0
    assert out.row_off.tolist() == [0] and out.counts.shape[0] == 0 and out.retried == ()


def test_frames_encoded_like_another_rule_set_are_what_they_are_encoded_alone():
    # given a synthetic history's frames and rule sets that share the catalogue or not
    from engine.analytics.history import generate_history
    from engine.analytics.replay import basket_frames
    from engine.pricing.frames import encode_frames
    from engine.pricing.rules import load_rules
    from server.cli.analytics import demo_products
    from tests.store_fixtures import EXAMPLES

    catalogue, frame = demo_products()
    current = load_rules(EXAMPLES / "watsons.yaml")
    draft = load_rules(EXAMPLES / "draft.yaml")
    elsewhere = load_rules(EXAMPLES / "watsons.yaml")
    elsewhere.timezone = "America/New_York"
    tiers = [type(t)() for t in elsewhere.tiers]
    for copy, t in zip(tiers, elsewhere.tiers, strict=True):
        copy.CopyFrom(t)
    tiers[0].id, tiers[0].name = "member", "Member"
    tiers[1].id, tiers[1].name = "silver", "Silver"  # vip becomes silver: other tier numbers
    del elsewhere.tiers[:]
    elsewhere.tiers.extend(tiers)
    for offer in elsewhere.offers:
        kept = [t for t in offer.conditions.tiers if t != "vip"]
        del offer.conditions.tiers[:]
        offer.conditions.tiers.extend(kept)
    sets = {
        "current": compile_rules(current, catalogue),
        "draft": compile_rules(draft, catalogue),
        "elsewhere": compile_rules(elsewhere, catalogue),
        "small catalogue": compile_rules(current, Catalogue.from_rows([{"sku": "A"}])),
    }
    history = generate_history(frame, members=60, months=2, seed=11)
    lines, baskets = basket_frames(history, ["care-600", "panadol-coupon"])
    alone = {name: encode_frames(c, lines, baskets) for name, c in sets.items()}
    fields = ("lines", "line_off", "members", "ctxs", "coupon_off", "coupons")
    for a, b in [(x, y) for x in sets for y in sets if x != y]:
        # when b's encoding takes what it can from a's
        shared = encode_frames(sets[b], lines, baskets, like=(sets[a], alone[a]))
        # then every array is what b's own encoding gives
        for f in fields:
            assert np.array_equal(getattr(shared, f), getattr(alone[b], f)), (a, b, f)
    # and rule sets over one catalogue share the lines, members and contexts
    shared = encode_frames(sets["draft"], lines, baskets, like=(sets["current"], alone["current"]))
    assert shared.lines is alone["current"].lines and shared.ctxs is alone["current"].ctxs
    assert shared.members is alone["current"].members
    other = encode_frames(
        sets["elsewhere"], lines, baskets, like=(sets["current"], alone["current"])
    )
    assert other.lines is alone["current"].lines and other.ctxs is not alone["current"].ctxs
    assert not np.array_equal(other.ctxs, alone["current"].ctxs)
    assert not np.array_equal(other.members, alone["current"].members)


def test_frames_priced_a_chunk_at_a_time_are_the_frames_priced_at_once(compiled):
    # given 60 baskets as frames
    baskets, members = make_baskets(60, seed=4)
    lines = pl.DataFrame(
        [
            {
                "basket": b,
                "sku": ln.sku,
                "quantity": ln.quantity,
                "unit_price_minor": ln.unit_price_minor,
            }
            for b, basket in enumerate(baskets)
            for ln in basket.lines
        ]
    )
    frame = pl.DataFrame(
        {
            "occurred_at": [b.occurred_at for b in baskets],
            "member_id": [m.member_id if m else "" for m in members],
        }
    )
    whole = price_frames(compiled, lines, frame)
    for chunk in (1, 7, 59):
        # when they are priced 1, 7 or 59 baskets at a time
        part = price_frames(compiled, lines, frame, chunk=chunk)
        # then the baskets, lines and discounts are the same, basket numbers included
        assert part.baskets.equals(whole.baskets)
        assert part.lines.equals(whole.lines)
        assert part.discounts.equals(whole.discounts)
    assert whole.discounts.height > 20
