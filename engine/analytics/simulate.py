"""Simulation before publish (docs/design.md §7): score rule sets over historical baskets.

The committed baskets of a history (:mod:`engine.analytics.history`) are priced again with the
batch kernel (:func:`engine.pricing.frames.price_frames`) under the current and a draft rule set,
and the two are compared: total discount, discount and funding by funder, points earned and
their liability, share of baskets affected, cost per offer and the biggest single-basket
discount (the guardrail against stacking accidents).

Each basket is priced with its member as the history recorded it (tier, segments, birthday
month), paying with the points it paid with, and presenting as coupons the coupon offers whose
discounts it received (plus ``assume_coupons``, to try a new wallet coupon on everyone).

What the simulation replays, so that the current rules over the ledger reproduce it exactly:

- **Pricing time.** Each basket is priced at its ``at``: the time it was priced, which for a
  basket synced after its lane was offline is the lane's clock, not ``recorded_at``.
- **Order and limits.** Baskets are priced in ledger order (``seq``) and the scored rule set's
  offer limits are applied as the store applies them at checkout: ``per_member`` per period
  (read in the rule set's time zone at the basket's ``at``), ``total_uses`` and
  ``budget_minor`` (a budget caps the last discount to what is left); ``per_transaction`` and
  ``max_discount_minor`` are part of the rules. A cancel gives back the uses and the unreturned
  discount of its commit, a return the discount of the returned units (⌊amount·returned /
  quantity⌋, docs/design.md §5), each at its place in ``seq`` order, so later baskets see what
  the store saw. Counts start at zero at the first entry of the history (a history that starts
  mid-way through an offer's life has not seen the earlier uses). Without limited offers the
  baskets are priced in parallel chunks; with them, a basket that used a limited offer is priced
  again alone whenever what was left of a limit at its turn would change its result.
- **Cancels and returns.** The figures are net: a cancelled basket counts nowhere (it is priced
  only for the limits it held until its cancel); a returned unit takes back its share of the
  line's gross, discounts, funding and points as a return does (a fully returned line drops,
  a partly returned one keeps the rest), and a basket with no unit left is not counted.
- **Versions.** ``Scored.by_version`` counts the counted baskets by the rule-set version that
  priced them (``ruleset_version``, 0 = unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.analytics.history import DISCOUNT_STRUCT, conform
from engine.analytics.limits import Event
from engine.analytics.replay import (
    CHUNK_BASKETS,
    Attributes,
    basket_frames,
    coupon_offers,
    priced,
    priced_each,
    reversal_events,
)
from engine.pricing.compiler import CompiledRules
from engine.pricing.frames import FramesResult, price_frames
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


def score_part(out: FramesResult) -> Partial:
    """The figures of one priced chunk, net of its cancels and returns (``returned`` and
    ``cancelled`` of :func:`basket_frames`)."""
    b, ln, d = out.baskets, out.lines, out.discounts
    n_b = len(b)
    q: npt.NDArray[np.int64] = ln["quantity"].to_numpy()
    r: npt.NDArray[np.int64] = (
        ln["returned"].to_numpy() if "returned" in ln.columns else np.zeros_like(q)
    )
    line_b = ln["basket"].to_numpy()

    def keep(x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return x - x * r // q  # what a return of r of q units leaves (docs/design.md §5)

    kept_units = np.bincount(line_b, weights=q - r, minlength=n_b)
    cancelled = b["cancelled"].to_numpy() if "cancelled" in b.columns else np.zeros(n_b, bool)
    alive = ~cancelled & (kept_units > 0)
    gross = keep(q * ln["unit_price_minor"].to_numpy())
    earned = keep(ln["points_earned"].to_numpy())
    line_alive = alive[line_b]
    first_line = np.searchsorted(line_b, np.arange(n_b))
    row = first_line[d["basket"].to_numpy()] + d["line"].to_numpy()
    kq, kr = q[row], r[row]
    amount = d["amount_minor"].to_numpy()
    funded = d["funded_minor"].to_numpy()
    d = d.with_columns(
        pl.Series("amount_minor", amount - amount * kr // kq),
        pl.Series("funded_minor", funded - funded * kr // kq),
    ).filter(pl.Series(alive[d["basket"].to_numpy()]) & (pl.col("amount_minor") > 0))
    disc = np.bincount(
        d["basket"].to_numpy(), weights=d["amount_minor"].to_numpy(), minlength=n_b
    ).astype(np.int64)
    redeemed = b["points_redeemed"].to_numpy().copy()
    partly = np.flatnonzero(alive & (np.bincount(line_b, weights=r, minlength=n_b) > 0))
    tender = ln["points_tender_minor"].to_numpy()
    for k in partly.tolist():  # the points a return gives back, per line as the store does
        lo, hi = int(first_line[k]), int(first_line[k + 1]) if k + 1 < n_b else len(q)
        per_line = allocate(int(redeemed[k]), tender[lo:hi].tolist())
        redeemed[k] = sum(
            p - p * int(rr) // int(qq)
            for p, rr, qq in zip(per_line, r[lo:hi], q[lo:hi], strict=True)
        )
    seqs = (
        b["seq"].to_numpy().astype(np.int64)
        if "seq" in b.columns
        else np.arange(n_b, dtype=np.int64)
    )
    best, best_seq, best_tx = -1, -1, ""
    if n_b:
        i = int(disc.argmax())
        best, best_seq, best_tx = int(disc[i]), int(seqs[i]), str(b["transaction_id"][i])
    totals = np.array(
        [
            int((disc > 0).sum()),
            int(gross[line_alive].sum()),
            int(disc.sum()),
            int(earned[line_alive].sum()),
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
        d.group_by("offer_id", "funder_id").agg(
            pl.col("basket").n_unique().alias("baskets"),
            pl.col("amount_minor").sum(),
            pl.col("funded_minor").sum(),
        ),
        b.filter(pl.Series(alive)).group_by("ruleset_version").agg(pl.len().alias("baskets"))
        if "ruleset_version" in b.columns
        else None,
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


def score(
    compiled: CompiledRules,
    lines: pl.DataFrame,
    baskets: pl.DataFrame,
    chunk: int = CHUNK_BASKETS,
    events: list[Event] | None = None,
    attributes: Attributes | None = None,
) -> Scored:
    """Price every basket in ledger order (in chunks of ``chunk`` baskets, limits applied) and
    add the figures up, net of cancels and returns (``events``: :func:`reversal_events`)."""
    parts = (
        score_part(out)
        for _, out in priced(compiled, lines, baskets, events, chunk, attributes=attributes)
    )
    return merge(parts, compiled.rules.points.point_value_minor)


def nice_width(largest: int, buckets: int) -> int:
    """The smallest width of 1, 2 or 5 times a power of ten (minor units) whose buckets
    ``[0, w), [w, 2w), ...`` hold ``0..largest`` in at most ``buckets`` buckets."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            width = step * scale
            if largest // width + 1 <= buckets:
                return width
        scale *= 10


def discount_distribution(
    scores: Sequence[Scored], buckets: int = 20
) -> tuple[int, list[list[int]]]:
    """The distribution of per-basket discounts of each of ``scores`` over the same buckets:
    ``(width, counts)``, ``counts[i][k]`` = baskets of ``scores[i]`` whose discount lies in
    ``[k * width, (k + 1) * width)``, up to the bucket of the biggest discount of them all
    (no buckets when no basket has any; baskets without a discount are not counted)."""
    largest = max(
        (int(s.basket_discounts.max()) for s in scores if len(s.basket_discounts)), default=0
    )
    if largest <= 0:
        return 1, [[] for _ in scores]
    width = nice_width(largest, buckets)
    n = largest // width + 1
    return width, [
        np.bincount(s.basket_discounts // width, minlength=n).astype(int).tolist() for s in scores
    ]


@dataclass(frozen=True)
class Comparison:
    current: Scored
    draft: Scored

    def table(self) -> pl.DataFrame:
        """One row per figure: current, draft, change."""
        names = (
            "baskets",
            "baskets_affected",
            "affected_bps",
            "discount_minor",
            "funded_minor",
            "points_earned",
            "points_liability_minor",
            "max_basket_discount_minor",
        )
        cur = [int(getattr(self.current, n)) for n in names]
        new = [int(getattr(self.draft, n)) for n in names]
        return pl.DataFrame(
            {
                "figure": list(names),
                "current": cur,
                "draft": new,
                "change": [b - a for a, b in zip(cur, new, strict=True)],
            }
        )

    def offers(self) -> pl.DataFrame:
        """Per-offer cost under both rule sets (0 where an offer gave nothing)."""
        cols = ["baskets", "discount_minor", "funded_minor"]
        a = self.current.by_offer.rename({c: f"current_{c}" for c in cols})
        b = self.draft.by_offer.rename({c: f"draft_{c}" for c in cols})
        return (
            a.join(b, on=["offer_id", "funder_id"], how="full", coalesce=True)
            .fill_null(0)
            .sort("offer_id")
        )


def compare(
    current: CompiledRules,
    draft: CompiledRules,
    history: pl.DataFrame | pl.LazyFrame,
    assume_coupons: Iterable[str] = (),
    chunk: int = CHUNK_BASKETS,
    attributes: Attributes | None = None,
) -> Comparison:
    """Score the current and the draft rule set over the same committed baskets
    (``attributes``: the members' typed attributes, see :func:`priced`)."""
    coupons = set(coupon_offers(current.rules)) | set(coupon_offers(draft.rules))
    lines, baskets = basket_frames(history, coupons, assume_coupons)
    events = reversal_events(history)
    parts: tuple[list[Partial], list[Partial]] = ([], [])
    each = priced_each([current, draft], lines, baskets, events, chunk, attributes=attributes)
    for _, results in each:
        for mine, result in zip(parts, results, strict=True):
            mine.append(score_part(result))
    return Comparison(
        merge(parts[0], current.rules.points.point_value_minor),
        merge(parts[1], draft.rules.points.point_value_minor),
    )


def reprice(
    compiled: CompiledRules,
    history: pl.DataFrame | pl.LazyFrame,
    limits: bool = True,
    attributes: Attributes | None = None,
) -> pl.DataFrame:
    """The committed lines of ``history`` (cancelled ones too, not netted) with nets, tender,
    points and discounts as ``compiled`` gives them (a synthetic history priced under a
    programme, or a check that the ledger is what the rules give). With ``limits``, the
    offers' limits apply in ledger order, cancels and returns of ``history`` giving back what
    they held (module docstring); without, every basket is priced as if no limit were used."""
    hist = conform(history)
    commits = hist.filter(pl.col("kind") == "commit").sort("seq", "line_no").collect()
    lines, baskets = basket_frames(hist, coupon_offers(compiled.rules))
    events = reversal_events(hist) if limits else []
    parts = list(
        priced(
            compiled, lines, baskets, events, max(1, len(baskets)), limits, attributes=attributes
        )
    )
    out = parts[0][1] if parts else price_frames(compiled, lines.clear(), baskets.clear())
    d = out.discounts.with_columns(
        pl.struct(
            pl.col("offer_id"), pl.col("funder_id"), pl.col("amount_minor"), pl.col("funded_minor")
        )
        .cast(DISCOUNT_STRUCT)
        .alias("d")
    )
    first_line = np.searchsorted(lines["basket"].to_numpy(), d["basket"].to_numpy())
    per_line = (
        d.with_columns(pl.Series("row", first_line + d["line"].to_numpy()))
        .group_by("row")
        .agg(
            pl.col("d").alias("discounts"),
            pl.col("amount_minor").sum().alias("dsum"),
            pl.col("funded_minor").sum().alias("fsum"),
        )
    )
    again = commits.with_columns(
        pl.Series("net_minor", out.lines["net_minor"]),
        pl.Series("tender_minor", out.lines["points_tender_minor"]),
        pl.Series("points_earned", out.lines["points_earned"]),
        pl.int_range(pl.len()).alias("row"),
    ).drop("discounts")
    again = again.join(per_line, on="row", how="left", maintain_order="left").with_columns(
        pl.col("discounts").fill_null(pl.lit([], pl.List(DISCOUNT_STRUCT))),
        pl.col("dsum").fill_null(0).alias("discount_minor"),
        pl.col("fsum").fill_null(0).alias("funded_minor"),
    )
    return conform(again).collect()
