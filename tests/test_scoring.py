"""Sums of a simulation's figures (engine.analytics.scoring): exact in minor units whatever
their size."""

from __future__ import annotations

import numpy as np

from engine.analytics.scoring import _sums


def test_sums_by_key_are_exact_below_and_above_what_a_float_holds():
    at = np.array([0, 2, 2, 1, 2], dtype=np.int64)
    small = np.array([5, 7, -3, 1, 10**6], dtype=np.int64)
    assert _sums(at, small, 4).tolist() == [5, 1, 10**6 + 4, 0]
    # 2**53 + 1 has no float64 of its own: a float sum would give 2**53
    big = np.array([2**53, 0, 1, 3, 0], dtype=np.int64)
    got = _sums(at, big, 3)
    assert got.dtype == np.int64 and got.tolist() == [2**53, 3, 1]
    big = np.array([2**52, 1, 2**52, 0, 1], dtype=np.int64)
    assert _sums(at, big, 3).tolist() == [2**52, 0, 2**52 + 2]
    assert _sums(at[:0], small[:0], 2).tolist() == [0, 0]
