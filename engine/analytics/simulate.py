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
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.analytics.history import DISCOUNT_STRUCT, conform
from engine.analytics.limits import Event
from engine.analytics.replay import (
    Attributes,
    basket_frames,
    coupon_offers,
    priced,
    priced_each,
    reversal_events,
)
from engine.analytics.scoring import Partial, Scored, merge, score_part
from engine.pricing.compiler import CompiledRules
from engine.pricing.frames import CHUNK_BASKETS, price_frames


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
    each = priced_each([compiled], lines, baskets, events, chunk, attributes=attributes)
    parts = (
        score_part(compiled, enc, out, part_b, part_l) for _, part_l, part_b, [(enc, out)] in each
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
    for _, part_l, part_b, outputs in each:
        for mine, compiled, (enc, out) in zip(parts, (current, draft), outputs, strict=True):
            mine.append(score_part(compiled, enc, out, part_b, part_l))
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


__all__ = [
    "Comparison",
    "Scored",
    "compare",
    "discount_distribution",
    "nice_width",
    "reprice",
    "score",
]
