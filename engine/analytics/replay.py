"""The committed baskets of a history as batch-kernel input, priced in ledger order with the
offers' limits (what a simulation, the audit and the publish gate replay; the rules of the
replay are in :mod:`engine.analytics.simulate`'s docstring)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import polars as pl

from engine.analytics.history import conform
from engine.analytics.limits import Event, Limiter, offer_limits
from engine.pricing import layout as L
from engine.pricing.batch import BatchOutput, EncodedBatch, rows_of, run_batch
from engine.pricing.compiler import CompiledRules
from engine.pricing.frames import (
    CHUNK_BASKETS,
    FramesResult,
    chunks,
    decode_frames,
    encode_frames,
)
from engine.pricing.types import AttributeValue
from loyalty.v1 import rules_pb2

# the history columns a replay reads (the others may be left out of a frame sent elsewhere)
COLUMNS = (
    "seq",
    "kind",
    "transaction_id",
    "member_id",
    "at",
    "store_id",
    "channel",
    "tier",
    "segments",
    "birthday_month",
    "line_no",
    "line_id",
    "sku",
    "category",
    "brand",
    "vendor",
    "quantity",
    "gross_minor",
    "net_minor",
    "points_redeemed",
    "discounts",
    "ruleset_version",
    "delivery",
)


# member id -> typed attributes (engine.pricing.types.Member.attributes)
Attributes = Mapping[str, Mapping[str, AttributeValue]]


def coupon_offers(rules: rules_pb2.RuleSet) -> list[str]:
    return [o.id for o in rules.offers if o.activation == rules_pb2.Offer.COUPON]


def reversed_units(history: pl.LazyFrame) -> pl.DataFrame:
    """Units taken back from each committed line by cancels and returns:
    ``transaction_id, line_id, returned``."""
    return (
        history.filter(pl.col("kind") != "commit")
        .group_by("transaction_id", "line_id")
        .agg(pl.col("quantity").sum().alias("returned"))
        .collect()
    )


def reversal_events(
    history: pl.DataFrame | pl.LazyFrame,
) -> list[tuple[int, bool, str, dict[str, int]]]:
    """The history's cancels and returns in ledger order: ``(seq, is_cancel, transaction_id,
    {line_id: units})``."""
    rows = (
        conform(history)
        .filter(pl.col("kind") != "commit")
        .group_by("seq", "kind", "transaction_id", maintain_order=True)
        .agg(pl.col("line_id"), pl.col("quantity"))
        .sort("seq")
        .collect()
    )
    return [
        (seq, kind == "cancel", tid, dict(zip(ids, qty, strict=True)))
        for seq, kind, tid, ids, qty in rows.iter_rows()
    ]


def basket_frames(
    history: pl.DataFrame | pl.LazyFrame,
    coupons: Iterable[str] = (),
    assume_coupons: Iterable[str] = (),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The committed baskets as ``price_frames`` input: ``(lines, baskets)``, in ledger order,
    cancelled ones included (they held limits until their cancel).

    Beyond the pricing columns, ``lines`` carry ``line_id`` and ``returned`` (units cancels and
    returns took back, at most the quantity) and ``baskets`` carry ``seq``,
    ``ruleset_version`` and ``cancelled``. ``coupons``: offer ids that count as presented when
    the basket received their discount.
    """
    hist = conform(history)
    df = hist.filter(pl.col("kind") == "commit").select(COLUMNS).collect()
    if not _in_ledger_order(df):  # an export is; sorting copies every column
        df = df.sort("seq", "line_no")
    # Each frame below is a query over ``df`` run by the in-memory engine: eager calls would
    # copy the whole of ``df`` (lists of discounts and segments included) into one piece once
    # a column computed here sits beside columns read in many pieces (10 million baskets read
    # from Parquet: 13-16 s -> 9-10 s; a million in memory: 0.5 -> 0.41-0.43 s, where polars'
    # default engine takes 1.3-1.4 s). The returned units are joined on the two key columns
    # alone, not on the whole frame.
    back = reversed_units(hist)
    returned = (
        df.lazy()
        .select("transaction_id", "line_id")
        .join(back.lazy(), on=["transaction_id", "line_id"], how="left", maintain_order="left")
        .select("returned")
        .collect(engine="in-memory")["returned"]
    )
    frame = df.lazy().with_columns(pl.col("seq").rle_id().cast(pl.Int64).alias("basket"))
    lines = (
        frame.select(
            "basket",
            "sku",
            "quantity",
            (pl.col("gross_minor") // pl.col("quantity")).alias("unit_price_minor"),
            "category",
            "brand",
            "vendor",
            "delivery",
            "line_id",
        )
        .collect(engine="in-memory")
        .with_columns(
            pl.min_horizontal(returned.fill_null(0), pl.col("quantity")).alias("returned")
        )
    )
    # the presented coupons: those whose discounts a basket received, then the assumed ones
    extra = list(dict.fromkeys(assume_coupons))
    used = (
        frame.select("basket", "discounts")
        .explode("discounts")
        .select("basket", pl.col("discounts").struct.field("offer_id").alias("o"))
        .filter(pl.col("o").is_in(list(coupons)) & ~pl.col("o").is_in(extra))
        .unique(maintain_order=True)
        .group_by("basket", maintain_order=True)
        .agg(pl.col("o").alias("used"))
    )
    cancelled = (
        hist.filter(pl.col("kind") == "cancel")
        .select("transaction_id")
        .unique()
        .with_columns(pl.lit(True).alias("cancelled"))
    )
    presented = pl.col("used").fill_null(pl.lit([], pl.List(pl.String)))
    if extra:
        presented = pl.concat_list(presented, pl.lit(extra, pl.List(pl.String)))
    baskets = (
        frame.group_by("basket", maintain_order=True)
        .agg(
            pl.col("transaction_id").first(),
            pl.col("at").first().alias("occurred_at"),
            pl.col("store_id").first(),
            pl.col("channel").first(),
            pl.col("member_id").first().fill_null(""),
            pl.col("tier").first(),
            pl.col("segments").first(),
            pl.col("birthday_month").first(),
            pl.col("points_redeemed").sum().alias("redeem_points"),
            pl.col("seq").first(),
            pl.col("ruleset_version").first(),
        )
        .join(cancelled, on="transaction_id", how="left", maintain_order="left")
        .with_columns(pl.col("cancelled").fill_null(False))
        .join(used, on="basket", how="left", maintain_order="left")
        .with_columns(pl.col("redeem_points").alias("available_points"), presented.alias("coupons"))
        .drop("used")
        .collect(engine="in-memory")
    )
    return lines, baskets


def _in_ledger_order(df: pl.DataFrame) -> bool:
    """Whether the lines are sorted by ``seq``, then ``line_no``."""
    step = df.select(
        pl.col("seq").diff().fill_null(1).alias("s"), pl.col("line_no").diff().fill_null(0)
    )
    return bool(((step["s"] > 0) | ((step["s"] == 0) & (step["line_no"] >= 0))).all())


def price_chunk(
    compiled: CompiledRules,
    lines: pl.DataFrame,
    baskets: pl.DataFrame,
    attributes: Attributes | None = None,
    like: tuple[CompiledRules, EncodedBatch] | None = None,
) -> tuple[EncodedBatch, BatchOutput]:
    """One chunk of :func:`chunks` priced by the batch kernel as if no limit were used (the
    part of a replay that needs no other chunk: :class:`Limiter` then walks the results in
    ledger order). Of the kernel's rows only the discounts and the offers applied are kept:
    the scores read the one, the walk both. ``like``: the chunk encoded for another rule set
    (:func:`encode_frames`)."""
    enc = encode_frames(compiled, lines, baskets, attributes, like)
    return enc, run_batch(compiled, enc, row_types=rows_of(L.ROW_DISCOUNT, L.ROW_APPLIED))


def priced(
    compiled: CompiledRules,
    lines: pl.DataFrame,
    baskets: pl.DataFrame,
    events: list[Event] | None = None,
    chunk: int = CHUNK_BASKETS,
    limits: bool = True,
    *,
    attributes: Attributes | None = None,
) -> Iterator[tuple[int, FramesResult]]:
    """Price the baskets of :func:`basket_frames` in ledger order, ``chunk`` at a time:
    ``(first basket, result)`` per chunk, basket numbers in the result relative to it. With
    ``limits``, the offer limits of ``compiled`` apply as the module docstring says, the cancels
    and returns of ``events`` (:func:`reversal_events`) giving back what they give back.
    ``attributes``: member id -> typed attributes, for the offers' attribute conditions (a
    history records none)."""
    for lo_b, part_l, part_b, [(enc, out)] in priced_each(
        [compiled], lines, baskets, events, chunk, limits, attributes=attributes
    ):
        yield lo_b, decode_frames(compiled, enc, out, part_b, part_l)


# a chunk priced under each rule set: first basket, lines, baskets, (encoding, output) each
Priced = tuple[int, pl.DataFrame, pl.DataFrame, list[tuple[EncodedBatch, BatchOutput]]]


def priced_each(
    rule_sets: Sequence[CompiledRules],
    lines: pl.DataFrame,
    baskets: pl.DataFrame,
    events: list[Event] | None = None,
    chunk: int = CHUNK_BASKETS,
    limits: bool = True,
    *,
    attributes: Attributes | None = None,
) -> Iterator[Priced]:
    """:func:`priced` for several rule sets over the same baskets, chunk by chunk, the kernel's
    outputs as they are: each chunk is cut once and priced under each rule set in turn, its
    encoding shared where the rule sets' dictionaries agree (a draft over the current rule
    set's catalogue)."""
    limiters = []
    for compiled in rule_sets:
        found = offer_limits(compiled) if limits else {}
        limiters.append(Limiter(compiled, found, events or []) if found else None)
    for lo_b, part_l, part_b in chunks(lines, baskets, chunk):
        outputs: list[tuple[EncodedBatch, BatchOutput]] = []
        like: tuple[CompiledRules, EncodedBatch] | None = None
        for compiled, limiter in zip(rule_sets, limiters, strict=True):
            enc, out = price_chunk(compiled, part_l, part_b, attributes, like)
            like = (compiled, enc)
            if limiter is not None:
                out = limiter.walk(enc, out, part_b, part_l["line_id"])
            outputs.append((enc, out))
        yield lo_b, part_l, part_b, outputs
