"""The single-basket kernel's entry from Python: ``run_kernel`` and the per-thread buffers it
prices into (line outputs, rows, counts, the offer map and the scratch), reused call after call.
"""

from __future__ import annotations

import threading

import numpy as np

from engine.pricing import layout as L
from engine.pricing.compiler import CompiledRules
from engine.pricing.kernel.core import price_one


class _Buffers(threading.local):
    """One thread's buffers for ``price_one`` (line outputs, rows, counts, the kernel's offer
    -> candidate map, its scratch), grown on demand and reused call after call; ``views``
    keeps what a call with ``n`` lines passes, so a call builds no view but the rows'."""

    def __init__(self) -> None:
        self.line_out = np.empty((L.LINE_OUT_COLS, 64), dtype=np.int64)
        self.rows = np.empty((1024, L.ROW_COLS), dtype=np.int64)
        self.counts = np.zeros(L.COUNT_COLS, dtype=np.int64)
        self.slot = np.full(0, -1, dtype=np.int64)  # the kernel leaves it all -1 every call
        self.scratch = np.empty(0, dtype=np.int64)
        self.views: dict[int, tuple[np.ndarray, ...]] = {}

    def for_lines(self, n: int) -> tuple[np.ndarray, ...]:
        """(slot, scratch, line outputs [3, n], rows, counts) for a basket of ``n`` lines."""
        if self.line_out.shape[1] < n:
            self.line_out = np.empty((L.LINE_OUT_COLS, n), dtype=np.int64)
            self.views.clear()
        views = (self.slot, self.scratch, self.line_out[:, :n], self.rows, self.counts)
        if len(self.views) < 256:  # basket sizes seen; bounded whatever callers send
            self.views[n] = views
        return views

    def grow(self, rows: int = 0, scratch: int = 0, n_offers: int = 0) -> None:
        """At least ``rows`` rows, ``scratch`` words of scratch and a map of ``n_offers``."""
        if self.rows.shape[0] < rows:
            self.rows = np.empty((rows, L.ROW_COLS), dtype=np.int64)
        if self.scratch.shape[0] < scratch:
            # twice that, so that the next somewhat larger basket does not grow it again
            self.scratch = np.empty(2 * scratch, dtype=np.int64)
        if self.slot.shape[0] < n_offers:
            self.slot = np.full(n_offers, -1, dtype=np.int64)
        self.views.clear()


_buffers = _Buffers()


def offer_slots(n_offers: int) -> np.ndarray:
    """This thread's offer -> candidate map (all -1, at least ``n_offers`` long), the one
    ``run_kernel`` passes ``price_one``: every kernel call leaves it all -1, so the batch's
    calling-thread path (``engine.pricing.batch``) shares it."""
    _buffers.grow(n_offers=n_offers)
    return _buffers.slot


def run_kernel(
    compiled: CompiledRules,
    lines: np.ndarray,
    member: np.ndarray,
    ctx: np.ndarray,
    coupons: np.ndarray,
    limits: np.ndarray,
    explain: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Call ``price_one``, growing the row table and the scratch until everything fits.

    Returns views (line outputs int64[3, n], rows int64[k, ROW_COLS], counts) into per-thread
    buffers that the next call on this thread overwrites.
    """
    n = lines.shape[0]
    bufs = _buffers
    while True:
        slot, scratch, line_out, rows, counts = bufs.views.get(n) or bufs.for_lines(n)
        k = price_one(
            compiled.packed,
            lines,
            member,
            ctx,
            coupons,
            limits,
            explain,
            slot,
            scratch,
            line_out,
            rows,
            counts,
        )
        if k >= 0:
            return line_out, rows[:k], counts
        if k == -1:  # the rows did not fit
            bufs.grow(rows=4 * rows.shape[0])
        else:  # the scratch or the map is too short: the scratch needs -k words
            bufs.grow(scratch=-k, n_offers=compiled.n_offers)
