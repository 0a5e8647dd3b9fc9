"""Pay JIT compile time before serving: price a tiny basket through every kernel.

With ``cache=True`` a warm machine only loads the compiled kernels from disk; a fresh one
compiles them here (tens of seconds), never on a customer's first request.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import polars as pl

from engine.pricing import layout as L
from engine.pricing.api import encode_coupons, encode_limits, encode_member, price
from engine.pricing.batch import price_batch
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import CompiledRules, compile_rules
from engine.pricing.entry import run_kernel
from engine.pricing.frames import encode_lines
from engine.pricing.kernel.tally import tally_chunk
from engine.pricing.kernel.walk import splice_rows, walk_limits
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member
from engine.pricing.wire import WireTables, parse, respond
from loyalty.v1.checkout_pb2 import EvaluateRequest
from loyalty.v1.checkout_pb2 import Line as ProtoLine

_RULES = {
    "points": {
        "point_value_minor": 10,
        "earn_per_amount_minor": 100,
        "redeem_step_points": 1,
        "max_redeem_share_bps": 5000,
    },
    "tiers": [{"id": "t", "earn_multiplier_bps": 10000}],
    "offers": [
        {
            "id": "a",
            "scope": {"skus": ["X"]},
            "percent_off": {"percent_bps": 1000},
            "limits": {"max_discount_minor": 50},
        },
        {
            "id": "b",
            "scope": {"all": True},
            "buy_x_get_y": {"buy": 1, "get": 1, "percent_bps": 5000},
        },
        {
            "id": "c",
            "scope": {"all": True},
            "spend_tiers": {"steps": [{"threshold_minor": 100, "amount_minor": 10}]},
        },
        {"id": "d", "scope": {"all": True}, "bonus_points": {"per_unit": 1}},
    ],
    # compiles engine.pricing.restrictions.find_restricted (no warm-up line is restricted)
    "restricted_items": [{"id": "r", "scope": {"skus": ["Z"]}, "tiers": ["t"]}],
}


def _warm_wire(compiled: CompiledRules) -> None:
    """The byte-level Evaluate path (``engine.pricing.wire``): index, parser and writer."""
    tables = WireTables.build(compiled, {})
    data = EvaluateRequest(
        member_id="m",
        lines=[ProtoLine(line_id="1", sku="X", quantity=2, unit_price_minor=500)],
        coupon_codes=["C"],
    ).SerializeToString()
    parsed = parse(tables, compiled, data)
    if parsed is None:  # the warm-up request is well formed: the byte path must take it
        raise RuntimeError("warm-up request refused by the byte-level parser")
    member = encode_member(compiled, Member("m"), parsed.redeem_points)
    ctx = parsed.context(compiled.timezone, datetime(2026, 1, 1, tzinfo=UTC))
    no_coupons = encode_coupons(compiled, None, ())
    outputs = run_kernel(
        compiled, parsed.lines, member, ctx, no_coupons, encode_limits(compiled, None), False
    )
    respond(tables, parsed, *outputs, 1, False)


def _warm_replay(compiled: CompiledRules) -> None:
    """The kernels of a simulation beside the batch (``engine.analytics``): the limits' walk,
    its splice, the figures' tally and the frames' line rows, with the argument types a
    simulation passes and no basket to walk or count (but one line to encode)."""

    def table(cols: int) -> np.ndarray:
        return np.zeros((1, cols), dtype=np.int64)

    def column(n: int = 1) -> np.ndarray:
        return np.zeros(n, dtype=np.int64)

    walk_limits(
        compiled.packed,
        table(L.ROW_COLS),
        column(2),
        table(L.LINE_COLS),
        column(2),
        table(L.MEMBER_COLS),
        table(L.CTX_COLS),
        column(2),
        table(2),
        column(),
        table(1),
        column(compiled.n_offers),
        column(),
        table(3),
        column(),
        column(),
        column(),
        0,
        0,
        np.zeros((L.LINE_OUT_COLS, 1), dtype=np.int64),
        table(L.COUNT_COLS),
        table(L.ROW_COLS),
        column(),
        column(),
    )
    splice_rows(
        table(L.ROW_COLS), column(2), table(L.ROW_COLS), column(), column(), table(L.ROW_COLS)
    )
    frame = pl.DataFrame({"basket": [0], "sku": ["X"], "quantity": [1], "unit_price_minor": [1]})
    encode_lines(compiled, frame, 1)
    no = np.zeros(1, dtype=np.bool_)
    tally_chunk(
        table(L.LINE_COLS),
        np.zeros(1, dtype=np.int64),
        column(),
        column(),
        table(L.ROW_COLS),
        column(),
        no,
        no.copy(),
        column(),
        column(),
        column(),
        column(),
        column(2),
    )


def warm_up() -> float:
    """Compile (or load) every kernel; returns the seconds it took."""
    start = time.perf_counter()
    compiled = compile_rules(parse_rules(_RULES), Catalogue.empty())
    basket = Basket(
        (Line("1", "X", 2, 500), Line("2", "Y", 1, 300)), datetime(2026, 1, 1, tzinfo=UTC)
    )
    member = Member("m", tier="t", available_points=100)
    price(compiled, basket, member, redeem_points=-1, explain=True)
    price(compiled, basket, member)
    price_batch(compiled, [basket, basket], [member, None])
    _warm_wire(compiled)
    _warm_replay(compiled)
    return time.perf_counter() - start
