"""Price many baskets at once with the parallel kernel (simulation, back-testing, reports).

Two ways in:

- ``price_batch(compiled, baskets, members=...)`` takes the same objects as ``engine.price``;
- ``engine.pricing.frames.price_frames(compiled, lines, baskets)`` takes polars frames (history,
  ledger exports) and encodes them column-wise, for millions of baskets.

Both run ``engine.pricing.kernel.batch.price_many``: one ``prange`` iteration per part (a run
of consecutive baskets), each reusing one workspace for all its baskets and writing only its
own region of the output tables; a basket's result never depends on where it sits in the batch.
A small batch (under ``PARALLEL_MIN_LINES`` lines) runs ``price_serial`` instead: one part on
the calling thread, on this thread's offer map (``engine.pricing.entry.offer_slots``), with no
thread woken and no rows to compact.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numba
import numpy as np

from engine.pricing import layout as L
from engine.pricing.api import (
    check_basket,
    decode,
    encode_context,
    encode_coupons,
    encode_limits,
    encode_lines,
    encode_member,
)
from engine.pricing.compiler import CompiledRules
from engine.pricing.entry import offer_slots, run_kernel
from engine.pricing.kernel.batch import (
    price_many,
    price_serial,
    take_rows,
    take_rows_parallel,
)
from engine.pricing.restrictions import restricted_lines
from engine.pricing.types import Basket, Member, PricingResult, RemainingLimits

# Row space per basket line in the batch slab, pooled over a part's baskets: history-like
# baskets (5 lines, ~25 candidate offers) need up to ~20; a basket that finds its part's space
# full is priced again alone. Only the rows written are ever touched.
ROWS_PER_LINE = 32
# A chunk's slab. Each thread keeps its own (``_slab``), so the pages of the rows written are
# faulted in once, not chunk after chunk and batch after batch: a fresh slab cost ~25% of K2's
# kernel time. Only the pages written become resident (~7 rows of the 32 per line on K2).
CHUNK_SLAB_BYTES = 256 * 2**20
PARTS_PER_THREAD = 4
# Below this many lines (~2 ms of work) a chunk is priced on the calling thread alone
# (``price_serial``): on a busy machine the other threads may not get a core soon, and the batch
# waits for them. Measured on K2 baskets, 2 busy cores (median per basket, parallel against
# serial): 80 lines 72 / 17 µs, 300 lines 17 / 11, 630 lines 10.2 / 10.8, 1,290 lines 11.7 /
# 13.2, 2,570 lines 7.7 / 11.7.
PARALLEL_MIN_LINES = 1_000
ALL_ROWS = -1  # run_batch's row_types: keep every row


def rows_of(*types: int) -> int:
    """``run_batch``'s ``row_types`` that keeps the rows of ``types`` (``layout.ROW_*``)."""
    return sum(1 << t for t in set(types))


@dataclass(frozen=True)
class EncodedBatch:
    """Kernel inputs for ``B`` baskets; ``*_off`` are CSR offsets (length ``B + 1``)."""

    lines: np.ndarray  # int64[N, LINE_COLS]
    line_off: np.ndarray
    members: np.ndarray  # int64[B, MEMBER_COLS]
    ctxs: np.ndarray  # int64[B, CTX_COLS]
    coupon_off: np.ndarray
    coupons: np.ndarray  # int64[K, 2]
    limit_off: np.ndarray
    limits: np.ndarray  # int64[M, LIM_COLS]

    @property
    def n_baskets(self) -> int:
        return len(self.line_off) - 1


@dataclass(frozen=True)
class BatchOutput:
    """Raw kernel outputs: per-line results and every basket's rows."""

    line_out: np.ndarray  # int64[3, N]
    rows: np.ndarray  # int64[R, ROW_COLS], valid rows only, grouped by basket
    row_off: np.ndarray  # int64[B + 1]: basket b's rows are rows[row_off[b]:row_off[b+1]]
    counts: np.ndarray  # int64[B, COUNT_COLS]
    line_off: np.ndarray
    retried: tuple[int, ...]  # baskets whose slab overflowed and were priced alone


def csr(parts: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """``parts`` (arrays of ``width`` columns) as one array and the offsets of each part."""
    off = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=off[1:])
    data = np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int64)
    return off, data.reshape(-1, width).astype(np.int64)


def encode_batch(
    compiled: CompiledRules,
    baskets: Sequence[Basket],
    members: Sequence[Member | None] | None = None,
    coupons: Sequence[Sequence[str]] | None = None,
    redeem_points: Sequence[int] | None = None,
    limits: Sequence[Mapping[str, RemainingLimits] | None] | None = None,
) -> EncodedBatch:
    """Encode ``baskets`` (and per-basket members, coupons, redemptions, limits)."""
    n = len(baskets)
    members = members if members is not None else [None] * n
    coupons = coupons if coupons is not None else [()] * n
    redeem_points = redeem_points if redeem_points is not None else [0] * n
    limits = limits if limits is not None else [None] * n
    for b in baskets:
        check_basket(b)
    line_off, lines = csr([encode_lines(compiled, b) for b in baskets], L.LINE_COLS)
    coupon_off, coupon_rows = csr(
        [encode_coupons(compiled, m, c) for m, c in zip(members, coupons, strict=True)], 2
    )
    limit_off, limit_rows = csr([encode_limits(compiled, x) for x in limits], L.LIM_COLS)
    member_rows = np.array(
        [encode_member(compiled, m, r) for m, r in zip(members, redeem_points, strict=True)],
        dtype=np.int64,
    ).reshape(-1, L.MEMBER_COLS)
    ctx_rows = np.array([encode_context(compiled, b) for b in baskets], dtype=np.int64).reshape(
        -1, L.CTX_COLS
    )
    return EncodedBatch(
        lines, line_off, member_rows, ctx_rows, coupon_off, coupon_rows, limit_off, limit_rows
    )


def run_batch(
    compiled: CompiledRules,
    enc: EncodedBatch,
    rows_per_line: int = ROWS_PER_LINE,
    row_types: int = ALL_ROWS,
    by_column: bool = False,
) -> BatchOutput:
    """Price every basket of ``enc``, chunk by chunk; baskets whose rows overflowed are priced
    again alone. With ``row_types`` (:func:`rows_of`) only rows of those types are kept:
    ``price_frames`` keeps the discounts, a fifth of a history basket's rows, a simulation
    the discounts and the offers applied (its limits' walk reads those). ``by_column``: the
    rows are stored column after column (``rows[:, j]`` contiguous, for a caller that turns
    columns into frames) instead of row after row.

    Chunks keep the row slab near ``CHUNK_SLAB_BYTES`` whatever the batch size, so millions of
    baskets price in bounded memory; a batch of one chunk is priced as it is, unsliced. Each
    chunk's rows are copied once, from the slab straight to where they end in the output.
    """
    n_b, n_lines = enc.n_baskets, enc.lines.shape[0]
    lines_per_chunk = max(1, CHUNK_SLAB_BYTES // (rows_per_line * L.ROW_COLS * 8))
    rows = _Rows(n_lines, by_column)
    if n_lines <= lines_per_chunk:
        return _run_chunk(compiled, enc, rows_per_line, row_types, rows)
    line_out = np.empty((L.LINE_OUT_COLS, n_lines), dtype=np.int64)
    counts = np.empty((n_b, L.COUNT_COLS), dtype=np.int64)
    row_off = np.zeros(n_b + 1, dtype=np.int64)
    retried: list[int] = []
    b0 = 0
    while b0 < n_b:
        target = enc.line_off[b0] + lines_per_chunk
        b1 = min(n_b, max(b0 + 1, int(np.searchsorted(enc.line_off, target, "right")) - 1))
        out = _run_chunk(compiled, sub_batch(enc, b0, b1), rows_per_line, row_types, rows)
        line_out[:, enc.line_off[b0] : enc.line_off[b1]] = out.line_out
        counts[b0:b1] = out.counts
        row_off[b0 + 1 : b1 + 1] = row_off[b0] + out.row_off[1:]
        retried += [b0 + b for b in out.retried]
        b0 = b1
    return BatchOutput(line_out, rows.taken(), row_off, counts, enc.line_off, tuple(retried))


class _Rows:
    """Where a batch's rows end, appended chunk by chunk: sized from the first chunk's rows
    per line (an eighth more, for the batch's later baskets), grown by half when a chunk
    does not fit, so each row is copied once, not once per chunk and again to join them.
    ``by_column``: stored column after column (the kernel copies into the transposed view)."""

    def __init__(self, n_lines: int, by_column: bool = False) -> None:
        self.n_lines = n_lines
        self.by_column = by_column
        self.buf = self._empty(0)
        self.n = 0

    def _empty(self, size: int) -> np.ndarray:
        if self.by_column:
            return np.empty((L.ROW_COLS, size), dtype=np.int64).T
        return np.empty((size, L.ROW_COLS), dtype=np.int64)

    def room(self, k: int, chunk_lines: int) -> np.ndarray:
        """Space for ``k`` more rows, from the end of those appended (:meth:`add` them)."""
        if self.n + k > len(self.buf):
            guess = self.n + k + k * max(self.n_lines - chunk_lines, 0) // max(chunk_lines, 1)
            size = max(guess + guess // 8, len(self.buf) * 3 // 2)
            grown = self._empty(size)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        return self.buf[self.n : self.n + k]

    def add(self, k: int) -> np.ndarray:
        """The ``k`` rows just written to :meth:`room`, appended."""
        self.n += k
        return self.buf[self.n - k : self.n]

    def taken(self) -> np.ndarray:
        """The rows appended: a view (the space past them was never written, so it holds no
        memory)."""
        return self.buf[: self.n]


def sub_batch(enc: EncodedBatch, b0: int, b1: int) -> EncodedBatch:
    """Baskets ``b0:b1`` of ``enc``, their offsets from 0 (views where they can be)."""
    lo, c0, m0 = int(enc.line_off[b0]), int(enc.coupon_off[b0]), int(enc.limit_off[b0])
    return EncodedBatch(
        enc.lines[lo : enc.line_off[b1]],
        enc.line_off[b0 : b1 + 1] - lo,
        enc.members[b0:b1],
        enc.ctxs[b0:b1],
        enc.coupon_off[b0 : b1 + 1] - c0,
        enc.coupons[c0 : enc.coupon_off[b1]],
        enc.limit_off[b0 : b1 + 1] - m0,
        enc.limits[m0 : enc.limit_off[b1]],
    )


def batch_parts(line_off: np.ndarray, rpl: int, n_parts: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a chunk's baskets into at most ``n_parts`` runs of consecutive baskets with about
    equal lines, and give each part ``rpl`` rows per line: (part -> first basket, part -> first
    row), ``parts + 1`` long. Parts may be empty."""
    n_b = len(line_off) - 1
    n_parts = max(1, min(n_b, n_parts))
    goal = np.arange(1, n_parts, dtype=np.int64) * int(line_off[-1]) // n_parts
    part_off = np.empty(n_parts + 1, dtype=np.int64)
    part_off[0], part_off[-1] = 0, n_b
    part_off[1:-1] = np.searchsorted(line_off, goal, "left")
    return part_off, line_off[part_off] * rpl


_slabs = threading.local()


def _slab(n_rows: int) -> np.ndarray:
    """Row space for a chunk: this thread's slab, grown on demand up to ``CHUNK_SLAB_BYTES``
    (a larger one, for a basket bigger than a chunk, is not kept). The kernels write into it;
    the rows handed back are always copies."""
    slab: np.ndarray | None = getattr(_slabs, "slab", None)
    if slab is None or slab.shape[0] < n_rows:
        slab = np.empty((n_rows, L.ROW_COLS), dtype=np.int64)
        if n_rows * L.ROW_COLS * 8 <= CHUNK_SLAB_BYTES:
            _slabs.slab = slab
    return slab[:n_rows]


def _run_chunk(
    compiled: CompiledRules, enc: EncodedBatch, rpl: int, row_types: int, into: _Rows
) -> BatchOutput:
    """One chunk: in parallel parts, or on the calling thread when it is small (waking the
    other threads would cost more than they save) or numba has one thread. Its rows (of
    ``row_types``) are appended to ``into``."""
    n_b, n_lines = enc.n_baskets, enc.lines.shape[0]
    inputs = (enc.lines, enc.line_off, enc.members, enc.ctxs, enc.coupon_off, enc.coupons)
    line_out = np.empty((L.LINE_OUT_COLS, n_lines), dtype=np.int64)
    counts = np.zeros((n_b, L.COUNT_COLS), dtype=np.int64)
    counts[:, L.N_DROP] = ~row_types  # the kernel writes only the rows kept (-1: all)
    threads = 1 if n_lines < PARALLEL_MIN_LINES else numba.get_num_threads()  # it takes a lock
    if threads == 1:
        part_off, part_rows = np.array([0, n_b]), np.array([0, n_lines * rpl])
        slab = _slab(n_lines * rpl)
        slot = offer_slots(compiled.n_offers)
        limits = (enc.limit_off, enc.limits)
        price_serial(compiled.packed, *inputs, *limits, slot, line_out, slab, counts)
    else:
        part_off, part_rows = batch_parts(enc.line_off, rpl, PARTS_PER_THREAD * threads)
        slab = _slab(int(part_rows[-1]))
        price_many(
            compiled.packed,
            *inputs,
            enc.limit_off,
            enc.limits,
            part_off,
            part_rows,
            line_out,
            slab,
            counts,
        )
    over = counts[:, L.N_OVERFLOW] != 0
    row_off = np.zeros(n_b + 1, dtype=np.int64)  # an overflowed basket has no rows here
    np.cumsum(np.where(over, 0, counts[:, L.N_ROWS]), out=row_off[1:])
    k = int(row_off[-1])
    take = take_rows if threads == 1 else take_rows_parallel
    take(slab, part_off, part_rows, counts, into.room(k, n_lines), row_off[part_off])
    rows = into.add(k)
    if not over.any():
        return BatchOutput(line_out, rows, row_off, counts, enc.line_off, ())
    into.n -= k  # taken back: the retries splice their rows in between
    out = _retry(compiled, enc, line_out, rows.copy(), row_off, counts, row_types)
    into.room(len(out.rows), n_lines)[:] = out.rows
    return replace(out, rows=into.add(len(out.rows)))


def _retry(
    compiled: CompiledRules,
    enc: EncodedBatch,
    line_out: np.ndarray,
    rows: np.ndarray,
    row_off: np.ndarray,
    counts: np.ndarray,
    row_types: int,
) -> BatchOutput:
    """Price the baskets that overflowed alone and splice their rows (of ``row_types``) in, in
    basket order; ``row_off``: where each basket's rows begin in ``rows`` (an overflowed one
    has none)."""
    over = np.nonzero(counts[:, L.N_OVERFLOW])[0].tolist()
    kept = np.diff(row_off)
    pieces, pos = [], 0
    for b in over:  # price alone, then splice in basket order (linear)
        lo, hi = int(enc.line_off[b]), int(enc.line_off[b + 1])
        lv, rows_b, counts_b = run_kernel(
            compiled,
            enc.lines[lo:hi],
            enc.members[b],
            enc.ctxs[b],
            enc.coupons[enc.coupon_off[b] : enc.coupon_off[b + 1]],
            enc.limits[enc.limit_off[b] : enc.limit_off[b + 1]],
            False,
        )
        line_out[:, lo:hi] = lv
        counts[b, : L.N_DROP] = counts_b[: L.N_DROP]
        if row_types != ALL_ROWS:
            rows_b = rows_b[((row_types >> rows_b[:, L.ROW_TYPE]) & 1) == 1]
        counts[b, L.N_ROWS] = kept[b] = len(rows_b)
        pieces += [rows[pos : row_off[b]], rows_b.copy()]
        pos = int(row_off[b])
    pieces.append(rows[pos:])
    row_off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(kept, out=row_off[1:])
    return BatchOutput(line_out, np.concatenate(pieces), row_off, counts, enc.line_off, tuple(over))


def price_batch(
    compiled: CompiledRules,
    baskets: Sequence[Basket],
    members: Sequence[Member | None] | None = None,
    coupons: Sequence[Sequence[str]] | None = None,
    redeem_points: Sequence[int] | None = None,
    limits: Sequence[Mapping[str, RemainingLimits] | None] | None = None,
    rows_per_line: int = ROWS_PER_LINE,
) -> list[PricingResult]:
    """Price every basket with the parallel kernel; same results as ``engine.price`` each."""
    enc = encode_batch(compiled, baskets, members, coupons, redeem_points, limits)
    out = run_batch(compiled, enc, rows_per_line)
    results = []
    for b, basket in enumerate(baskets):
        lo, hi = out.line_off[b], out.line_off[b + 1]
        results.append(
            decode(
                compiled,
                basket,
                out.line_out[:, lo:hi],
                out.rows[out.row_off[b] : out.row_off[b + 1]],
                out.counts[b],
                restricted_lines(compiled, enc.lines[lo:hi], enc.members[b]),
            )
        )
    return results
