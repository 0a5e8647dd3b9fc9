"""The baskets a limits' walk looks at (:mod:`engine.analytics.limits`): those whose results
priced without the limits applied a limited offer, and their results priced again spliced
back into the batch's output."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.pricing import layout as L
from engine.pricing.batch import BatchOutput, EncodedBatch, csr
from engine.pricing.kernel.walk import splice_rows

# a basket's result priced again with the limits: line values, kernel rows, counts
Override = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


@dataclass(frozen=True, slots=True)
class Probe:
    """A basket whose result priced without limits applied a limited offer: what
    :meth:`engine.analytics.limits.Limiter.walk_each` needs to check it and, when the limits
    change it, to price it again alone (picklable, so that a partition priced elsewhere can be
    walked in one place)."""

    seq: int
    transaction_id: str
    member: str
    rows: npt.NDArray[np.int64]  # its kernel rows priced without limits
    lines: npt.NDArray[np.int64]  # its encoded lines (EncodedBatch.lines rows)
    member_row: npt.NDArray[np.int64]
    ctx: npt.NDArray[np.int64]
    coupons: npt.NDArray[np.int64]
    line_ids: list[str]


def touching(
    mask: npt.NDArray[np.bool_], enc: EncodedBatch, out: BatchOutput
) -> npt.NDArray[np.int64]:
    """The baskets of a batch priced without limits that applied an offer of ``mask``."""
    rows = out.rows
    row_basket = np.repeat(np.arange(enc.n_baskets), np.diff(out.row_off))
    app = np.flatnonzero(rows[:, L.ROW_TYPE] == L.ROW_APPLIED)
    app = app[mask[rows[app, 1]]]
    return np.unique(row_basket[app]).astype(np.int64)


def probes(
    mask: npt.NDArray[np.bool_],
    enc: EncodedBatch,
    out: BatchOutput,
    baskets: pl.DataFrame,
    line_ids: list[str],
) -> list[tuple[int, Probe]]:
    """The baskets of a chunk priced without limits that applied an offer of ``mask``, in
    chunk order: ``(basket, probe)``."""
    found = touching(mask, enc, out)
    if not len(found):
        return []
    idx = pl.Series(found)
    seqs = baskets["seq"].gather(idx).to_list()
    tids = baskets["transaction_id"].gather(idx).to_list()
    members = baskets["member_id"].gather(idx).fill_null("").to_list()
    rows = out.rows
    return [
        (
            b,
            Probe(
                seq,
                tid,
                member,
                rows[out.row_off[b] : out.row_off[b + 1]],
                enc.lines[enc.line_off[b] : enc.line_off[b + 1]],
                enc.members[b],
                enc.ctxs[b],
                enc.coupons[enc.coupon_off[b] : enc.coupon_off[b + 1]],
                line_ids[enc.line_off[b] : enc.line_off[b + 1]],
            ),
        )
        for b, seq, tid, member in zip(found.tolist(), seqs, tids, members, strict=True)
    ]


def splice(
    out: BatchOutput,
    baskets: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    new_rows: npt.NDArray[np.int64],
) -> BatchOutput:
    """``out`` with the rows of ``baskets`` (ascending) replaced by ``lengths`` rows of
    ``new_rows`` from ``starts`` each (all the rows a basket priced again has, whatever types
    ``out`` kept: readers pick the types they read)."""
    if not len(baskets):
        return out
    n_rows = np.diff(out.row_off)
    n_rows[baskets] = lengths
    new_at = np.full(len(n_rows), -1, dtype=np.int64)
    new_at[baskets] = starts
    row_off = np.zeros(len(n_rows) + 1, dtype=np.int64)
    np.cumsum(n_rows, out=row_off[1:])
    rows = np.empty((row_off[-1], L.ROW_COLS), dtype=np.int64)
    splice_rows(out.rows, out.row_off, new_rows, new_at, n_rows, rows)
    return BatchOutput(out.line_out, rows, row_off, out.counts, out.line_off, out.retried)


def patch(enc: EncodedBatch, out: BatchOutput, overrides: Mapping[int, Override]) -> BatchOutput:
    """``out`` with the results of the baskets in ``overrides`` replaced."""
    if not overrides:
        return out
    line_out, counts = out.line_out.copy(), out.counts.copy()
    order = sorted(overrides)
    for b in order:
        lv, _, cb = overrides[b]
        line_out[:, enc.line_off[b] : enc.line_off[b + 1]] = lv
        counts[b] = cb
    off, new_rows = csr([overrides[b][1] for b in order], L.ROW_COLS)
    return splice(
        BatchOutput(line_out, out.rows, out.row_off, counts, out.line_off, out.retried),
        np.array(order, dtype=np.int64),
        off[:-1],
        np.diff(off),
        new_rows,
    )


__all__ = ["Override", "Probe", "patch", "probes", "splice", "touching"]
