"""The figures of a simulation (:mod:`engine.analytics.simulate`): each priced chunk scored
from the kernel's arrays (:func:`score_part`), net of its cancels and returns, and the parts
added up (:func:`merge`) in any order to what one pass in ledger order gives."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.pricing import layout as L
from engine.pricing.batch import BatchOutput, EncodedBatch
from engine.pricing.compiler import CompiledRules
from engine.pricing.kernel.tally import T_EARNED, T_GROSS, tally_chunk
from engine.pricing.reference.rewards import allocate


@dataclass(frozen=True)
class Scored:
    """What one rule set gives over the baskets (all money in minor units)."""

    baskets: int
    baskets_affected: int  # baskets with any discount
    gross_minor: int
    discount_minor: int
    points_earned: int
    points_redeemed: int
    points_liability_minor: int  # points earned x point value
    max_basket_discount_minor: int
    max_basket_transaction_id: str
    by_funder: pl.DataFrame  # funder_id, discount_minor, funded_minor
    by_offer: pl.DataFrame  # offer_id, funder_id, baskets, discount_minor, funded_minor
    # the discount of every basket with any, in basket order (for its distribution)
    basket_discounts: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    # counted baskets by the rule-set version that priced them: ruleset_version, baskets
    by_version: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"ruleset_version": pl.Int64, "baskets": pl.Int64}
        )
    )

    def versions(self) -> dict[int, int]:
        """Counted baskets by the rule-set version that priced them (0 = unknown)."""
        return {int(v): int(n) for v, n in self.by_version.iter_rows()}

    @property
    def funded_minor(self) -> int:
        return int(self.by_funder["funded_minor"].sum()) if len(self.by_funder) else 0

    def paid_by(self) -> dict[str, int]:
        """Who pays the discount: each vendor what it funds, the retailer the rest."""
        out = {
            f: int(v)
            for f, v in self.by_funder.select("funder_id", "funded_minor").iter_rows()
            if f != "retailer" and v
        }
        out["retailer"] = self.discount_minor - sum(out.values())
        return out

    @property
    def affected_bps(self) -> int:
        """Share of baskets with any discount, basis points (floored)."""
        return self.baskets_affected * 10000 // self.baskets if self.baskets else 0


@dataclass(frozen=True)
class Partial:
    """The figures of some of the baskets (:func:`score_part`), to add up with :func:`merge`.

    Baskets are known by their ledger position (``seq``), so that parts added up in any order
    give what one pass in ledger order gives."""

    counted: int
    totals: npt.NDArray[np.int64]  # affected, gross, discount, earned, redeemed
    discounts: npt.NDArray[np.int64]  # the discount of every basket with any
    discount_seqs: npt.NDArray[np.int64]  # their seq
    best: int  # the biggest basket discount (-1: no basket)
    best_seq: int  # the first basket (by seq) that got it
    best_tx: str
    by_offer: pl.DataFrame  # offer_id, funder_id, baskets, amount_minor, funded_minor
    by_version: pl.DataFrame | None  # ruleset_version, baskets (None: not recorded)


def score_part(
    compiled: CompiledRules,
    enc: EncodedBatch,
    out: BatchOutput,
    baskets: pl.DataFrame,
    lines: pl.DataFrame,
) -> Partial:
    """The figures of one priced chunk (``out``, the kernel's output for ``enc``, the
    encoding of ``lines`` and ``baskets`` of :func:`~engine.analytics.replay.basket_frames`),
    net of its cancels and returns (their ``returned`` and ``cancelled`` columns)."""
    n_b, n_offers = enc.n_baskets, max(1, compiled.n_offers)
    q = enc.lines[:, L.L_QTY]
    r = (
        lines["returned"].to_numpy().astype(np.int64)
        if "returned" in lines.columns
        else np.zeros_like(q)
    )
    cancelled = np.zeros(n_b, dtype=np.bool_)
    if "cancelled" in baskets.columns:
        cancelled[:] = baskets["cancelled"].to_numpy()
    alive = np.empty(n_b, dtype=np.bool_)
    disc = np.empty(n_b, dtype=np.int64)
    amount, funded, given = (np.zeros(n_offers, dtype=np.int64) for _ in range(3))
    sums = np.zeros(2, dtype=np.int64)
    tally_chunk(
        enc.lines,
        enc.line_off,
        r,
        out.line_out[L.LO_POINTS],
        out.rows,
        out.row_off,
        cancelled,
        alive,
        disc,
        amount,
        funded,
        given,
        sums,
    )
    redeemed = out.counts[:, L.N_TENDER_POINTS].copy()
    returning = np.searchsorted(enc.line_off, np.flatnonzero(r), "right") - 1
    partly = np.unique(returning[alive[returning]])
    tender = out.line_out[L.LO_TENDER]
    for k in partly.tolist():  # the points a return gives back, per line as the store does
        lo, hi = int(enc.line_off[k]), int(enc.line_off[k + 1])
        per_line = allocate(int(redeemed[k]), tender[lo:hi].tolist())
        redeemed[k] = sum(
            p - p * int(rr) // int(qq)
            for p, rr, qq in zip(per_line, r[lo:hi], q[lo:hi], strict=True)
        )
    seqs = (
        baskets["seq"].to_numpy().astype(np.int64)
        if "seq" in baskets.columns
        else np.arange(n_b, dtype=np.int64)
    )
    best, best_seq, best_tx = -1, -1, ""
    if n_b:
        i = int(disc.argmax())
        best, best_seq, best_tx = int(disc[i]), int(seqs[i]), str(baskets["transaction_id"][i])
    totals = np.array(
        [
            int((disc > 0).sum()),
            int(sums[T_GROSS]),
            int(disc.sum()),
            int(sums[T_EARNED]),
            int(redeemed[alive].sum()),
        ],
        dtype=np.int64,
    )
    return Partial(
        int(alive.sum()),
        totals,
        disc[disc > 0],
        seqs[disc > 0],
        best,
        best_seq,
        best_tx,
        _by_offer(compiled, given, amount, funded),
        baskets.filter(pl.Series(alive)).group_by("ruleset_version").agg(pl.len().alias("baskets"))
        if "ruleset_version" in baskets.columns
        else None,
    )


def _by_offer(
    compiled: CompiledRules,
    given: npt.NDArray[np.int64],
    amount: npt.NDArray[np.int64],
    funded: npt.NDArray[np.int64],
) -> pl.DataFrame:
    """The offers that gave any discount (``given[o]`` baskets): ``offer_id, funder_id,
    baskets, amount_minor, funded_minor``."""
    o = np.flatnonzero(given)
    return pl.DataFrame(
        {
            "offer_id": pl.Series([compiled.offer_ids[k] for k in o.tolist()], dtype=pl.String),
            "funder_id": pl.Series([compiled.offer_funder[k] for k in o.tolist()], dtype=pl.String),
            "baskets": given[o],
            "amount_minor": amount[o],
            "funded_minor": funded[o],
        }
    )


def merge(parts: Iterable[Partial], point_value_minor: int) -> Scored:
    """Add up the parts of disjoint baskets (in any order): what :func:`score` gives over
    them all, ``point_value_minor`` the scored rule set's point value."""
    parts = list(parts)
    totals = np.zeros(5, dtype=np.int64)
    for part in parts:
        totals += part.totals
    # the biggest discount, the first basket in ledger order on ties (as one pass finds it)
    top = max(parts, key=lambda p: (p.best, -p.best_seq), default=None)
    best, best_tx = (top.best, top.best_tx) if top is not None else (-1, "")
    seqs = np.concatenate([p.discount_seqs for p in parts] or [np.zeros(0, dtype=np.int64)])
    discounts = np.concatenate([p.discounts for p in parts] or [np.zeros(0, dtype=np.int64)])
    offer_parts = [p.by_offer for p in parts]
    version_parts = [p.by_version for p in parts if p.by_version is not None]
    schema = {
        "offer_id": pl.String,
        "funder_id": pl.String,
        "baskets": pl.Int64,
        "discount_minor": pl.Int64,
        "funded_minor": pl.Int64,
    }
    by_offer = (
        pl.concat(offer_parts)
        .group_by("offer_id", "funder_id")
        .agg(
            pl.col("baskets").sum().cast(pl.Int64),
            pl.col("amount_minor").sum().alias("discount_minor"),
            pl.col("funded_minor").sum(),
        )
        .sort("offer_id", "funder_id")
        if offer_parts
        else pl.DataFrame(schema=schema)
    )
    by_funder = (
        by_offer.group_by("funder_id")
        .agg(pl.col("discount_minor").sum(), pl.col("funded_minor").sum())
        .sort("funder_id")
    )
    by_version = (
        pl.concat(version_parts)
        .group_by("ruleset_version")
        .agg(pl.col("baskets").sum().cast(pl.Int64))
        .sort("ruleset_version")
        if version_parts
        else pl.DataFrame(schema={"ruleset_version": pl.Int64, "baskets": pl.Int64})
    )
    return Scored(
        sum(p.counted for p in parts),
        int(totals[0]),
        int(totals[1]),
        int(totals[2]),
        int(totals[3]),
        int(totals[4]),
        int(totals[3]) * point_value_minor,
        max(best, 0),
        best_tx,
        by_funder,
        by_offer,
        discounts[np.argsort(seqs, kind="stable")],
        by_version,
    )


__all__ = ["Partial", "Scored", "merge", "score_part"]
