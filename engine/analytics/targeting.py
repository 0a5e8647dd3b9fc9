"""Targeting from purchase history (docs/design.md §7): segments, purchase cycles, ABC, lapsed.

Pure polars over a history frame (:mod:`engine.analytics.history`); nothing here reads the clock:
the "as of" day is an argument (default: the day after the last entry).

Per member and category
    brand behaviour: ``national`` (store-brand share of units < ``store_share_low``),
    ``store`` (share >= ``store_share_high``) or ``switcher`` (in between);
    usage: ``low`` / ``medium`` / ``high`` by units per 30 days, either by explicit thresholds
    or by tertiles among the category's buyers (ties share their average rank); the 9
    segments are ``behaviour-usage`` and the member's tag is ``category:behaviour-usage``;
    purchase cycle: the median number of days between distinct purchase days (at least
    ``min_purchases`` purchase days), and the predicted next purchase = last purchase + cycle.
Per member
    value: net spend (reversals netted), per 30 days; ABC(D) class by cumulative share of sales
    (A = the biggest members up to ``abc[0]`` of sales, B up to ``abc[1]``, C up to ``abc[2]``,
    D the rest); ``lapsed`` = no purchase in the ``lapsed_days`` before as-of.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from engine.analytics.history import conform, last_day, sign

BEHAVIOURS = ("national", "store", "switcher")
USAGES = ("low", "medium", "high")
SEGMENTS = tuple(f"{b}-{u}" for b in BEHAVIOURS for u in USAGES)
ABC_CLASSES = ("A", "B", "C", "D")
LAPSED_TAG = "lapsed"
# the history columns targeting reads (the others may be left out of a frame sent elsewhere)
COLUMNS = (
    "seq",
    "kind",
    "transaction_id",
    "member_id",
    "at",
    "sku",
    "category",
    "vendor",
    "quantity",
    "gross_minor",
    "net_minor",
    "delivery",
)
VALUE_TAG_PREFIX = "value:"


@dataclass(frozen=True)
class TargetingConfig:
    """Thresholds of the segmentation; every default is documented in the module docstring."""

    store_brand_vendors: tuple[str, ...] = ("watsons",)
    store_share_low: float = 0.25
    store_share_high: float = 0.75
    # units per 30 days: category -> (medium from, high from); "*" applies to every category
    usage_thresholds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    min_purchases: int = 3
    lapsed_days: int = 60
    abc: tuple[float, float, float] = (0.5, 0.8, 0.95)


def is_targeting_tag(tag: str) -> bool:
    """Whether a member tag was written by targeting (and is replaced by the next run)."""
    if tag == LAPSED_TAG or tag.startswith(VALUE_TAG_PREFIX):
        return True
    _, sep, segment = tag.rpartition(":")
    return bool(sep) and segment in SEGMENTS


def _window(
    history: pl.DataFrame | pl.LazyFrame, as_of: datetime | None
) -> tuple[pl.LazyFrame, datetime, float]:
    lf = conform(history).filter(  # purchases: a delivery charge is no product
        pl.col("member_id").is_not_null() & (pl.col("member_id") != "") & ~pl.col("delivery")
    )
    as_of = as_of or last_day(lf)
    lf = lf.filter(pl.col("at") < as_of)
    first = lf.select(pl.col("at").min()).collect().item()
    span_days = max(1.0, (as_of - first).total_seconds() / 86400) if first else 1.0
    return lf, as_of, span_days


History = pl.DataFrame | pl.LazyFrame


def window(history: History, as_of: datetime | None = None) -> tuple[datetime, float]:
    """The run's as-of day and the days of purchase history before it (at least 1): what
    :func:`finish_profiles` and :func:`finish_values` need of the whole history."""
    _, as_of, span_days = _window(history, as_of)
    return as_of, span_days


def category_profiles(
    history: History, config: TargetingConfig = TargetingConfig(), as_of: datetime | None = None
) -> pl.DataFrame:
    """One row per (member, category) bought before ``as_of``.

    Returns
    -------
    DataFrame
        ``member_id, category, units, spend_minor, purchases, store_share, units_per_month,
        behaviour, usage, segment, tag, last_purchase (date), cycle_days (Int64, null = not
        enough purchases), next_purchase (date, null likewise)``.
    """
    as_of, span_days = window(history, as_of)
    return finish_profiles(category_totals(history, config, as_of), config, span_days)


def category_totals(history: History, config: TargetingConfig, as_of: datetime) -> pl.DataFrame:
    """The part of :func:`category_profiles` each member's own lines decide (so any split of
    the history by member gives the same rows): ``member_id, category, units, spend_minor,
    purchases, own_units, last_purchase, median_gap``, unordered."""
    lf, _, _ = _window(history, as_of)
    bought = lf.filter(pl.col("kind") == "commit").with_columns(
        pl.col("vendor").is_in(list(config.store_brand_vendors)).alias("own"),
        pl.col("at").dt.date().alias("day"),
    )
    keys = ["member_id", "category"]
    totals = bought.group_by(keys).agg(
        pl.col("quantity").sum().alias("units"),
        pl.col("net_minor").sum().alias("spend_minor"),
        pl.col("day").n_unique().alias("purchases"),
        (pl.col("quantity") * pl.col("own")).sum().alias("own_units"),
        pl.col("day").max().alias("last_purchase"),
    )
    gaps = (
        bought.select(*keys, "day")
        .unique()
        .sort(*keys, "day")
        .with_columns((pl.col("day").diff().over(keys).dt.total_days()).alias("gap"))
        .group_by(keys)
        .agg(pl.col("gap").drop_nulls().median().alias("median_gap"))
    )
    return totals.join(gaps, on=keys, how="left").collect()


def finish_profiles(
    totals: pl.DataFrame, config: TargetingConfig, span_days: float
) -> pl.DataFrame:
    """:func:`category_profiles` from the :func:`category_totals` of every member (the usage
    tertiles rank the category's buyers against each other)."""
    keys = ["member_id", "category"]
    df = totals.lazy().with_columns(
        (pl.col("own_units") / pl.col("units")).alias("store_share"),
        (pl.col("units") * 30.0 / span_days).alias("units_per_month"),
    )
    behaviour = (
        pl.when(pl.col("store_share") >= config.store_share_high)
        .then(pl.lit("store"))
        .when(pl.col("store_share") < config.store_share_low)
        .then(pl.lit("national"))
        .otherwise(pl.lit("switcher"))
    )
    df = df.with_columns(behaviour.alias("behaviour"), _usage(config).alias("usage"))
    cycle = pl.when(pl.col("purchases") >= config.min_purchases).then(
        pl.col("median_gap").round(0).cast(pl.Int64)
    )
    df = df.with_columns(cycle.alias("cycle_days")).with_columns(
        (pl.col("last_purchase") + pl.duration(days=pl.col("cycle_days"))).alias("next_purchase"),
        pl.format("{}-{}", "behaviour", "usage").alias("segment"),
    )
    return (
        df.with_columns(pl.format("{}:{}", "category", "segment").alias("tag"))
        .select(
            "member_id",
            "category",
            "units",
            "spend_minor",
            "purchases",
            "store_share",
            "units_per_month",
            "behaviour",
            "usage",
            "segment",
            "tag",
            "last_purchase",
            "cycle_days",
            "next_purchase",
        )
        .sort(keys)
        .collect()
    )


def _usage(config: TargetingConfig) -> pl.Expr:
    per_month = pl.col("units_per_month")
    rank = per_month.rank("average").over("category") / pl.len().over("category")
    by_rank = (
        pl.when(rank <= 1 / 3)
        .then(pl.lit("low"))
        .when(rank <= 2 / 3)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("high"))
    )
    if not config.usage_thresholds:
        return by_rank
    out = by_rank
    default = config.usage_thresholds.get("*")
    # explicit thresholds, category ones over the "*" default
    cats = [(c, t) for c, t in config.usage_thresholds.items() if c != "*"]
    if default is not None:
        out = _by_threshold(per_month, default)
    for cat, (mid, high) in cats:
        out = (
            pl.when(pl.col("category") == cat)
            .then(_by_threshold(per_month, (mid, high)))
            .otherwise(out)
        )
    return out


def _by_threshold(per_month: pl.Expr, limits: tuple[float, float]) -> pl.Expr:
    mid, high = limits
    return (
        pl.when(per_month >= high)
        .then(pl.lit("high"))
        .when(per_month >= mid)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )


def member_values(
    history: History, config: TargetingConfig = TargetingConfig(), as_of: datetime | None = None
) -> pl.DataFrame:
    """One row per member with history before ``as_of``.

    Returns
    -------
    DataFrame
        ``member_id, spend_minor (Int64, reversals netted), baskets, last_purchase (datetime),
        value_minor (Int64, spend per 30 days), abc (A-D), lapsed (bool), sales_share``.
    """
    as_of, span_days = window(history, as_of)
    return finish_values(member_totals(history, as_of), config, as_of, span_days)


def member_totals(history: History, as_of: datetime) -> pl.DataFrame:
    """The part of :func:`member_values` each member's own lines decide: ``member_id,
    spend_minor, baskets, last_purchase``, unordered."""
    lf, _, _ = _window(history, as_of)
    return (
        lf.group_by("member_id")
        .agg(
            (pl.col("net_minor") * sign()).sum().alias("spend_minor"),
            pl.col("transaction_id").filter(pl.col("kind") == "commit").n_unique().alias("baskets"),
            pl.col("at").filter(pl.col("kind") == "commit").max().alias("last_purchase"),
        )
        .collect()
    )


def finish_values(
    totals: pl.DataFrame, config: TargetingConfig, as_of: datetime, span_days: float
) -> pl.DataFrame:
    """:func:`member_values` from the :func:`member_totals` of every member (ABC classes rank
    the members by their share of all sales)."""
    a, b, c = config.abc
    df = (
        totals.lazy()
        .sort(["spend_minor", "member_id"], descending=[True, False])
        .with_columns(pl.col("spend_minor").clip(lower_bound=0).alias("_pos"))
    )
    total = pl.col("_pos").sum()
    total = pl.when(total > 0).then(total).otherwise(1)
    before = (pl.col("_pos").cum_sum() - pl.col("_pos")) / total
    abc = (
        pl.when(pl.col("_pos") <= 0)
        .then(pl.lit("D"))
        .when(before < a)
        .then(pl.lit("A"))
        .when(before < b)
        .then(pl.lit("B"))
        .when(before < c)
        .then(pl.lit("C"))
        .otherwise(pl.lit("D"))
    )
    lapsed_before = as_of - timedelta(days=config.lapsed_days)
    return (
        df.with_columns(
            abc.alias("abc"),
            (pl.col("last_purchase").is_null() | (pl.col("last_purchase") < lapsed_before)).alias(
                "lapsed"
            ),
            (pl.col("spend_minor") * 30 / span_days).round(0).cast(pl.Int64).alias("value_minor"),
            (pl.col("_pos") / total).alias("sales_share"),
        )
        .select(
            "member_id",
            "spend_minor",
            "baskets",
            "last_purchase",
            "value_minor",
            "abc",
            "lapsed",
            "sales_share",
        )
        .collect()
    )


def member_tags(profiles: pl.DataFrame, values: pl.DataFrame) -> pl.DataFrame:
    """``member_id, tags (List(String))``: every category segment, ``value:X`` and ``lapsed``."""
    seg = profiles.group_by("member_id").agg(pl.col("tag").sort().alias("seg_tags"))
    return (
        values.select("member_id", "abc", "lapsed")
        .join(seg, on="member_id", how="left")
        .select(
            "member_id",
            pl.concat_list(
                pl.col("seg_tags").fill_null(pl.lit([], pl.List(pl.String))),
                pl.format("value:{}", "abc"),
                pl.when(pl.col("lapsed"))
                .then(pl.lit([LAPSED_TAG]))
                .otherwise(pl.lit([], pl.List(pl.String))),
            ).alias("tags"),
        )
        .sort("member_id")
    )
