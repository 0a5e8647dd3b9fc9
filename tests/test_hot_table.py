"""The hot offer table (layout ``H_*``) and the checks candidate discovery runs from it."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.kernel import kernel_calls
from benchmarks.workload import make_baskets, make_member, make_workload
from engine import compile_rules
from engine.pricing import layout as L
from engine.pricing.compiler import _STATIC_COLS, hot_table
from engine.pricing.constants import Reason
from engine.pricing.entry import run_kernel
from engine.pricing.kernel.discovery import candidates

COPIED = {
    L.H_ACTIVATION: L.O_ACTIVATION,
    L.H_SCOPE: L.O_SCOPE,
    L.H_KIND: L.O_KIND,
    L.H_GET_SET: L.O_GET_SET,
    L.H_STARTS: L.O_STARTS,
    L.H_ENDS: L.O_ENDS,
    L.H_WEEKDAYS: L.O_WEEKDAYS,
}
DROPPED = (Reason.NOT_IN_TIME_WINDOW, Reason.COUPON_USED_UP)


@pytest.fixture(scope="module")
def workload():
    w = make_workload(400, 3_000, seed=11)
    return w, compile_rules(w.rules, w.catalogue)


def test_hot_table_copies_the_offer_columns(workload) -> None:
    _, compiled = workload
    offer, hot = compiled.arrays.offer, compiled.arrays.hot
    assert hot.shape == (offer.shape[0], L.HOT_COLS)
    assert hot.flags.c_contiguous and hot.ctypes.data % 64 == 0  # a row per cache line
    for h, o in COPIED.items():
        assert np.array_equal(hot[:, h], offer[:, o])
    assert np.array_equal(hot[:, L.H_STATIC], (offer[:, _STATIC_COLS] != 0).any(axis=1))
    assert set(COPIED) | {L.H_STATIC} == set(range(L.HOT_COLS))


def test_hot_table_flags_every_other_static_condition() -> None:
    table = np.zeros((len(_STATIC_COLS) + 1, L.OFFER_COLS), dtype=np.int64)
    for k, col in enumerate(_STATIC_COLS):
        table[k, col] = 1
    assert hot_table(table)[:, L.H_STATIC].tolist() == [1] * len(_STATIC_COLS) + [0]


def test_prefiltered_discovery_prices_as_the_explained_path(workload) -> None:
    """Unexplained, discovery drops the candidates that fail the hot table's checks and the
    evaluation skips checks 1-9 where H_STATIC is 0; explained, every candidate is evaluated
    in full. Both must give the same lines and the same rows, explanations aside."""
    w, compiled = workload
    member = make_member(w, 20, seed=5)
    calls = kernel_calls(compiled, make_baskets(w, 60, (1, 30), seed=9), member)
    dropped = 0
    for args in calls:
        plain_lines, plain_rows, _ = (x.copy() for x in run_kernel(*args[:-1], False))
        lines, rows, _ = run_kernel(*args[:-1], True)
        assert np.array_equal(plain_lines, lines)
        explained = rows[rows[:, 0] == L.ROW_EXPLANATION]
        assert np.array_equal(plain_rows, rows[rows[:, 0] != L.ROW_EXPLANATION])
        dropped += int(np.isin(explained[:, 3], DROPPED).sum())
    assert dropped > 0  # the workload has offers outside their weekdays


def test_a_coupon_offer_is_a_candidate_only_where_its_coupon_was_presented(workload) -> None:
    """The index marks coupon offers; discovery takes one only for a basket that presented
    its coupon, used up or not (the explained path reports a used-up one)."""
    _, compiled = workload
    a = compiled.arrays
    coupon = [
        o
        for o in range(a.offer.shape[0])
        if a.offer[o, L.O_ACTIVATION] == 1 and a.sets[a.offer[o, L.O_SCOPE], L.S_SKU_LEN] > 0
    ]
    assert len(coupon) >= 3
    for o in coupon[:3]:
        s = a.offer[o, L.O_SCOPE]
        lines = np.full((2, L.LINE_COLS), -1, dtype=np.int64)
        lines[:, L.L_QTY], lines[:, L.L_PRICE], lines[:, L.L_FLAGS] = 1, 1_000, 0
        lines[1, L.L_SKU] = a.set_vals[a.sets[s, L.S_SKU_OFF]]  # a sku of its scope
        none = np.zeros((0, 2), dtype=np.int64)
        assert o not in candidates(a, lines, none)
        for uses in (1, 0):
            presented = np.array([[o, uses]], dtype=np.int64)
            assert o in candidates(a, lines, presented)
        other = np.array([[next(c for c in coupon if c != o), 1]], dtype=np.int64)
        assert o not in candidates(a, lines, other)
