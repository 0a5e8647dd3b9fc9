"""Simulation before publish (docs/design.md §7): score rule sets over historical baskets.

The committed baskets of a history (:mod:`engine.analytics.history`) are priced again with the
batch kernel (:func:`engine.pricing.frames.price_frames`) under the current and a draft rule set,
and the two are compared: total discount, discount and funding by funder, points earned and
their liability, share of baskets affected, cost per offer and the biggest single-basket
discount (the guardrail against stacking accidents).

Each basket is priced with its member as the history recorded it (tier, segments, birthday
month), paying with the points it paid with, and presenting as coupons the coupon offers whose
discounts it received (plus ``assume_coupons``, to try a new wallet coupon on everyone).
Offer limits (per member, total uses, budgets) are not applied: the simulation shows what the
rules would give, the limits cap it at checkout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.analytics.history import DISCOUNT_STRUCT, conform
from engine.pricing.compiler import CompiledRules
from engine.pricing.frames import price_frames
from loyalty.v1 import rules_pb2

CHUNK_BASKETS = 500_000


def coupon_offers(rules: rules_pb2.RuleSet) -> list[str]:
    return [o.id for o in rules.offers if o.activation == rules_pb2.Offer.COUPON]


def basket_frames(
    history: pl.DataFrame | pl.LazyFrame,
    coupons: Iterable[str] = (),
    assume_coupons: Iterable[str] = (),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The committed baskets as ``price_frames`` input: ``(lines, baskets)``.

    ``coupons``: offer ids that count as presented when the basket received their discount.
    """
    lf = conform(history).filter(pl.col("kind") == "commit").sort("seq", "line_no")
    df = lf.collect()
    first = df.select(pl.col("seq").rle_id().alias("basket"))["basket"]
    df = df.with_columns(first.cast(pl.Int64).alias("basket"))
    lines = df.select(
        "basket",
        "sku",
        "quantity",
        (pl.col("gross_minor") // pl.col("quantity")).alias("unit_price_minor"),
        "category",
        "brand",
        "vendor",
    )
    wanted = list(coupons)
    extra = list(assume_coupons)
    used = (
        df.select(
            "basket",
            pl.col("discounts").list.eval(pl.element().struct.field("offer_id")).alias("o"),
        )
        .explode("o")
        .filter(pl.col("o").is_in(wanted))
        .group_by("basket")
        .agg(pl.col("o").unique(maintain_order=True).alias("used"))
    )
    baskets = df.group_by("basket", maintain_order=True).agg(
        pl.col("transaction_id").first(),
        pl.col("at").first().alias("occurred_at"),
        pl.col("store_id").first(),
        pl.col("channel").first(),
        pl.col("member_id").first().fill_null(""),
        pl.col("tier").first(),
        pl.col("segments").first(),
        pl.col("birthday_month").first(),
        pl.col("points_redeemed").sum().alias("redeem_points"),
    )
    baskets = (
        baskets.join(used, on="basket", how="left")
        .with_columns(
            pl.col("redeem_points").alias("available_points"),
            pl.concat_list(
                pl.col("used").fill_null(pl.lit([], pl.List(pl.String))),
                pl.lit(extra, pl.List(pl.String)),
            )
            .list.unique(maintain_order=True)
            .alias("coupons"),
        )
        .drop("used")
        .sort("basket")
    )
    return lines, baskets


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


def score(
    compiled: CompiledRules, lines: pl.DataFrame, baskets: pl.DataFrame, chunk: int = CHUNK_BASKETS
) -> Scored:
    """Price every basket (in chunks of ``chunk`` baskets) and add the figures up."""
    n = len(baskets)
    line_basket = lines["basket"].to_numpy()
    cuts = np.searchsorted(line_basket, np.arange(0, n + chunk, chunk).clip(max=n))
    totals = np.zeros(5, dtype=np.int64)  # affected, gross, discount, earned, redeemed
    best, best_tx = -1, ""
    offer_parts = []
    discounted = []
    for k in range(len(cuts) - 1):
        lo_b, hi_b = k * chunk, min(n, (k + 1) * chunk)
        if lo_b >= hi_b:
            break
        part_b = baskets.slice(lo_b, hi_b - lo_b)
        part_l = lines.slice(cuts[k], cuts[k + 1] - cuts[k]).with_columns(pl.col("basket") - lo_b)
        out = price_frames(compiled, part_l, part_b)
        b = out.baskets
        disc = b["discount_minor"].to_numpy()
        totals += [
            int((disc > 0).sum()),
            int(b["gross_minor"].sum()),
            int(disc.sum()),
            int(b["points_earned"].sum()),
            int(b["points_redeemed"].sum()),
        ]
        discounted.append(disc[disc > 0].astype(np.int64))
        if len(disc) and disc.max() > best:
            i = int(disc.argmax())
            best, best_tx = int(disc[i]), str(b["transaction_id"][i])
        offer_parts.append(
            out.discounts.group_by("offer_id", "funder_id").agg(
                pl.col("basket").n_unique().alias("baskets"),
                pl.col("amount_minor").sum(),
                pl.col("funded_minor").sum(),
            )
        )
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
        .sort("offer_id")
        if offer_parts
        else pl.DataFrame(schema=schema)
    )
    by_funder = (
        by_offer.group_by("funder_id")
        .agg(pl.col("discount_minor").sum(), pl.col("funded_minor").sum())
        .sort("funder_id")
    )
    point_value = compiled.rules.points.point_value_minor
    return Scored(
        n,
        int(totals[0]),
        int(totals[1]),
        int(totals[2]),
        int(totals[3]),
        int(totals[4]),
        int(totals[3]) * point_value,
        max(best, 0),
        best_tx,
        by_funder,
        by_offer,
        np.concatenate(discounted) if discounted else np.zeros(0, dtype=np.int64),
    )


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
) -> Comparison:
    """Score the current and the draft rule set over the same committed baskets."""
    coupons = set(coupon_offers(current.rules)) | set(coupon_offers(draft.rules))
    lines, baskets = basket_frames(history, coupons, assume_coupons)
    return Comparison(score(current, lines, baskets, chunk), score(draft, lines, baskets, chunk))


def reprice(compiled: CompiledRules, history: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The committed lines of ``history`` with nets, tender, points and discounts as
    ``compiled`` gives them (a synthetic history priced under a programme, or a check that the
    ledger is what the rules give)."""
    commits = conform(history).filter(pl.col("kind") == "commit").sort("seq", "line_no").collect()
    lines, baskets = basket_frames(commits, coupon_offers(compiled.rules))
    out = price_frames(compiled, lines, baskets)
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
    priced = commits.with_columns(
        pl.Series("net_minor", out.lines["net_minor"]),
        pl.Series("tender_minor", out.lines["points_tender_minor"]),
        pl.Series("points_earned", out.lines["points_earned"]),
        pl.int_range(pl.len()).alias("row"),
    ).drop("discounts")
    priced = priced.join(per_line, on="row", how="left", maintain_order="left").with_columns(
        pl.col("discounts").fill_null(pl.lit([], pl.List(DISCOUNT_STRUCT))),
        pl.col("dsum").fill_null(0).alias("discount_minor"),
        pl.col("fsum").fill_null(0).alias("funded_minor"),
    )
    return conform(priced).collect()
