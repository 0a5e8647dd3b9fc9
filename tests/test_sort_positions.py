"""Candidate positions are sorted through a bitmap and its summary of non-zero words when
that is cheap (kernel/discovery.py ``sort_positions``): the same order as any sort, in both
of its regimes, whatever the scratch held before."""

from __future__ import annotations

import numpy as np
import pytest

from engine.pricing.jit import njit
from engine.pricing.kernel.discovery import sort_positions


@njit
def _sorted(a, bits, n):
    b = a.copy()
    sort_positions(b, b.shape[0], bits, n)
    return b


@pytest.mark.parametrize(
    ("m", "n", "words"),
    [
        (5, 100, 8),  # short: insertion sort
        (28, 10_000, 200),  # a five-line basket: 157 words and a summary of 3
        (112, 10_000, 200),  # the K1 case
        (200, 200, 8),  # positions 0..199, every one of them, bit 63 of each word included
        (8192, 8192, 200),  # every bit of every word and of the summary words
        (500, 64 * 40, 100),  # dense
        (300, 1_000_000, 16_000),  # many offers: a summary of 245 words
        (40, 1_000_000, 16_000),  # a summary long next to the values: heapsort
        (40, 10_000, 100),  # the bitmap does not fit the scratch: heapsort
    ],
)
def test_positions_come_out_ascending(m, n, words):
    rng = np.random.default_rng(m * 7 + n)
    for _ in range(20):
        a = rng.choice(n, size=m, replace=False).astype(np.int64)
        bits = np.full(words, -1, dtype=np.int64)  # garbage scratch
        assert _sorted(a, bits, n).tolist() == sorted(a.tolist())
