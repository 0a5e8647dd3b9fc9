"""Column-wise encoding of polars frames for the batch kernel, and decoding back to frames.

``lines`` columns: ``basket`` (0..B-1, non-decreasing), ``sku``, ``quantity``,
``unit_price_minor``; optional ``category``, ``brand``, ``vendor``, ``delivery`` (bool: the
line is the basket's delivery charge, ``Line.delivery``).

``baskets`` columns (row ``b`` is basket ``b``): ``occurred_at`` (datetime; naive = UTC);
optional ``store_id``, ``channel``, ``member_id`` (null or empty = guest), ``tier``,
``birthday_month``, ``available_points``, ``redeem_points``, ``segments`` (list of str),
``coupons`` (list of offer ids activated by presented coupons).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from engine.pricing import layout as L
from engine.pricing.attributes import member_mask
from engine.pricing.batch import ROWS_PER_LINE, BatchOutput, EncodedBatch, rows_of, run_batch
from engine.pricing.compiler import CompiledRules
from engine.pricing.dictionaries import lookup
from engine.pricing.kernel.line_rows import NOT_GIVEN, frame_rows
from engine.pricing.types import AttributeValue

if TYPE_CHECKING:
    from polars._typing import PolarsDataType


@dataclass(frozen=True)
class FramesResult:
    baskets: pl.DataFrame  # input columns + gross/discount/net/points figures
    lines: pl.DataFrame  # input columns + net_minor, points_tender_minor, points_earned
    discounts: pl.DataFrame  # basket, line, offer_id, funder_id, amount_minor, funded_minor


# Baskets priced at a time (price_frames, the simulation). A chunk of 100,000 history baskets
# keeps each of its arrays under ~32 MB, which the C allocator hands out again from memory
# already mapped once the first is freed; larger ones are mapped afresh and every page faulted
# in again. A million baskets, both rule sets, 2 cores: 25,000 3.0-3.2 s, 50,000 2.9,
# 75,000-100,000 2.6-2.9, 150,000 2.9, 250,000 2.9-3.3, 500,000 3.4-3.5.
CHUNK_BASKETS = 100_000
_DAY_S = 86_400


def _column(df: pl.DataFrame, name: str, default: str | int, dtype: PolarsDataType) -> pl.Series:
    if name in df.columns:
        return df[name].cast(dtype).fill_null(default)
    return pl.Series(name, [default] * len(df), dtype=dtype)


# what each part of an encoding reads of a rule set: two rule sets that agree on a part's
# fields encode the same frames to the same arrays there (encode_frames' ``like``)
_LINE_FIELDS = (
    "sku_index",
    "category_index",
    "brand_index",
    "vendor_index",
    "delivery_category",
    "sku_attr",  # the catalogue's rows
)
_MEMBER_FIELDS = ("tier_index", "segment_bit", "attr_predicates")
_CTX_FIELDS = ("timezone", "store_index", "channel_index")
_COUPON_FIELDS = ("offer_index",)


def _agree(a: CompiledRules, b: CompiledRules, fields: tuple[str, ...]) -> bool:
    """Whether ``a`` and ``b`` hold equal ``fields``."""
    for f in fields:
        x, y = getattr(a, f), getattr(b, f)
        if x is y:
            continue
        if not (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y):
            return False
    return True


def encode_frames(
    compiled: CompiledRules,
    lines: pl.DataFrame,
    baskets: pl.DataFrame,
    attributes: Mapping[str, Mapping[str, AttributeValue]] | None = None,
    like: tuple[CompiledRules, EncodedBatch] | None = None,
) -> EncodedBatch:
    """The kernel inputs of the frames (columns in the module docstring). ``like``: the same
    frames encoded for another rule set; the parts whose dictionaries the two agree on are
    taken from it (simulation encodes each chunk for the current and the draft rule set)."""

    def shared(fields: tuple[str, ...]) -> EncodedBatch | None:
        return like[1] if like is not None and _agree(compiled, like[0], fields) else None

    if (done := shared(_LINE_FIELDS)) is not None:
        enc, line_off = done.lines, done.line_off
    else:
        enc, line_off = encode_lines(compiled, lines, len(baskets))
    done = shared(_MEMBER_FIELDS)
    members = done.members if done is not None else encode_members(compiled, baskets, attributes)
    done = shared(_CTX_FIELDS)
    ctxs = done.ctxs if done is not None else encode_contexts(compiled, baskets)
    if (done := shared(_COUPON_FIELDS)) is not None:
        coupon_off, coupons = done.coupon_off, done.coupons
    else:
        coupon_off, coupons = encode_coupon_lists(compiled, baskets)
    return EncodedBatch(
        enc,
        line_off,
        members,
        ctxs,
        coupon_off,
        coupons,
        np.zeros(len(baskets) + 1, dtype=np.int64),
        np.zeros((0, L.LIM_COLS), dtype=np.int64),
    )


def encode_lines(
    compiled: CompiledRules, lines: pl.DataFrame, n_b: int
) -> tuple[np.ndarray, np.ndarray]:
    """The lines' kernel rows and the baskets' line offsets."""
    basket_col = lines["basket"].to_numpy().astype(np.int64)
    if len(basket_col) and (
        np.any(np.diff(basket_col) < 0) or basket_col[0] < 0 or basket_col[-1] >= n_b
    ):
        raise ValueError("lines.basket: must be non-decreasing basket numbers 0..len(baskets)-1")
    qty = lines["quantity"].to_numpy().astype(np.int64)
    price = lines["unit_price_minor"].to_numpy().astype(np.int64)
    if np.any(qty < 1):
        raise ValueError("lines.quantity: must be at least 1")
    if np.any(price < 0):
        raise ValueError("lines.unit_price_minor: must not be negative")

    n = len(lines)
    sku = lookup(lines["sku"], compiled.sku_index)
    given = np.zeros((0, 3), dtype=np.int64)  # category, brand, vendor: none given
    for c, (name, index) in enumerate(
        (
            ("category", compiled.category_index),
            ("brand", compiled.brand_index),
            ("vendor", compiled.vendor_index),
        )
    ):
        if name in lines.columns:
            if not len(given):
                given = np.full((n, 3), NOT_GIVEN, dtype=np.int64)
            named = lines[name].fill_null("")
            own = (named != "").to_numpy()
            given[own, c] = lookup(named.filter(own), index)
    dl = np.zeros(n, dtype=np.bool_)
    if "delivery" in lines.columns:
        dl[:] = lines["delivery"].fill_null(False).cast(pl.Boolean).to_numpy()
    enc = np.empty((n, L.LINE_COLS), dtype=np.int64)
    n_cat = len(compiled.catalogue)
    delivery_cat = compiled.delivery_category
    if frame_rows(sku, given, qty, price, dl, compiled.sku_attr, n_cat, delivery_cat, enc):
        # one id below -1 per sku the index lacks (and per delivery charge's sku), so lines
        # of one sku stay one kind (kernel/merge.py); ranked among those lines only
        own_id = (sku < 0) | dl
        named = lines["sku"].filter(own_id).cast(pl.String).fill_null("")
        enc[own_id, L.L_SKU] = -1 - named.rank("dense").to_numpy().astype(np.int64)
    line_off = np.searchsorted(basket_col, np.arange(n_b + 1)).astype(np.int64)
    return enc, line_off


def encode_members(
    compiled: CompiledRules,
    baskets: pl.DataFrame,
    attributes: Mapping[str, Mapping[str, AttributeValue]] | None = None,
) -> np.ndarray:
    """The baskets' member rows."""
    n_b = len(baskets)
    members = np.zeros((n_b, L.MEMBER_COLS), dtype=np.int64)
    member_id = _column(baskets, "member_id", "", pl.String)
    members[:, L.M_IS_MEMBER] = (member_id != "").to_numpy()
    members[:, L.M_TIER] = lookup(_column(baskets, "tier", "", pl.String), compiled.tier_index)
    members[:, L.M_BIRTH_MONTH] = _column(baskets, "birthday_month", 0, pl.Int64).to_numpy()
    members[:, L.M_POINTS] = _column(baskets, "available_points", 0, pl.Int64).to_numpy()
    if "segments" in baskets.columns and compiled.segment_bit:
        seg = baskets.select(pl.int_range(pl.len()).alias("b"), "segments").explode("segments")
        bits = lookup(seg["segments"], compiled.segment_bit)
        ok = bits >= 0
        mask = np.zeros(n_b, dtype=np.uint64)
        np.bitwise_or.at(
            mask, seg["b"].to_numpy()[ok], np.left_shift(np.uint64(1), bits[ok].astype(np.uint64))
        )
        members[:, L.M_SEGMENTS] = mask.view(np.int64)
    # M_ATTRS: the members' attributes as given (a history records none: without them, or for
    # a member they leave out, attribute conditions fail as for a member without attributes)
    if attributes and compiled.attr_predicates:
        masks = {m: member_mask(compiled.attr_predicates, a) for m, a in attributes.items()}
        members[:, L.M_ATTRS] = member_id.replace_strict(
            masks, default=0, return_dtype=pl.Int64
        ).to_numpy()
    members[members[:, L.M_IS_MEMBER] == 0] = 0
    members[:, L.M_REDEEM] = _column(baskets, "redeem_points", 0, pl.Int64).to_numpy()
    return members


def encode_contexts(compiled: CompiledRules, baskets: pl.DataFrame) -> np.ndarray:
    """The baskets' context rows (store, channel, time as the rule set's zone reads it)."""
    n_b = len(baskets)
    at = baskets["occurred_at"]
    if getattr(at.dtype, "time_zone", None) is None:
        at = at.dt.replace_time_zone("UTC")
    # the clock on the wall in the rule set's zone, seconds from its 1970-01-01 00:00
    local = at.dt.convert_time_zone(compiled.timezone).dt.replace_time_zone(None)
    wall = local.dt.epoch("s").to_numpy().astype(np.int64)
    days = wall // _DAY_S  # the local day, days since 1970-01-01
    date = days.astype("datetime64[D]")
    month = date.astype("datetime64[M]")
    ctxs = np.empty((n_b, L.CTX_COLS), dtype=np.int64)
    ctxs[:, L.C_STORE] = lookup(_column(baskets, "store_id", "", pl.String), compiled.store_index)
    ctxs[:, L.C_CHANNEL] = lookup(
        _column(baskets, "channel", "", pl.String), compiled.channel_index
    )
    ctxs[:, L.C_EPOCH] = at.dt.epoch("s").to_numpy()
    ctxs[:, L.C_WEEKDAY] = (days + 3) % 7 + 1  # ISO, Monday = 1: 1970-01-01 was a Thursday
    ctxs[:, L.C_HOUR] = wall % _DAY_S // 3600
    ctxs[:, L.C_MONTH] = month.astype(np.int64) % 12 + 1
    ctxs[:, L.C_LOCAL_DAY] = days
    ctxs[:, L.C_MONTHDAY] = (date - month.astype("datetime64[D]")).astype(np.int64) + 1
    return ctxs


def encode_coupon_lists(
    compiled: CompiledRules, baskets: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """The baskets' presented coupons: offsets and (offer, uses) rows."""
    n_b = len(baskets)
    coupon_off = np.zeros(n_b + 1, dtype=np.int64)
    coupons = np.zeros((0, 2), dtype=np.int64)
    if "coupons" in baskets.columns:
        cp = baskets.select(pl.int_range(pl.len()).alias("b"), "coupons").explode("coupons")
        offer = lookup(cp["coupons"], compiled.offer_index)
        ok = offer >= 0
        b = cp["b"].to_numpy()[ok]
        coupons = np.stack([offer[ok], np.ones(ok.sum(), dtype=np.int64)], axis=1)
        coupon_off[1:] = np.cumsum(np.bincount(b, minlength=n_b))
    return coupon_off, coupons


def decode_frames(
    compiled: CompiledRules,
    enc: EncodedBatch,
    out: BatchOutput,
    baskets: pl.DataFrame,
    lines: pl.DataFrame | None = None,
    first: int = 0,
) -> FramesResult:
    """The frames of a batch's results; ``first``: the number of its first basket, from which
    the discounts' ``basket`` counts (a chunk's place in the whole)."""
    n_b = enc.n_baskets
    net, tender, pts = out.line_out
    line_basket = np.repeat(np.arange(n_b), np.diff(enc.line_off))
    gross_l = enc.lines[:, L.L_QTY] * enc.lines[:, L.L_PRICE]

    def per_basket(x: np.ndarray) -> np.ndarray:
        return (
            np.bincount(line_basket, weights=x, minlength=n_b).astype(np.int64)
            if len(x)
            else np.zeros(n_b, dtype=np.int64)
        )

    # bincount with float weights is exact below 2**53; baskets are bounded far below that
    gross, net_b, tender_b, pts_b = (
        per_basket(gross_l),
        per_basket(net),
        per_basket(tender),
        per_basket(pts),
    )
    basket_out = baskets.with_columns(
        pl.Series("gross_minor", gross),
        pl.Series("discount_minor", gross - net_b),
        pl.Series("net_minor", net_b),
        pl.Series("points_redeemed", out.counts[:, L.N_TENDER_POINTS]),
        pl.Series("points_tender_minor", tender_b),
        pl.Series("payable_minor", net_b - tender_b),
        pl.Series("points_earned", pts_b),
    )
    line_frame = (
        lines if lines is not None else pl.DataFrame({"basket": line_basket.astype(np.int64)})
    )
    line_out = line_frame.with_columns(
        pl.Series("net_minor", net),
        pl.Series("points_tender_minor", tender),
        pl.Series("points_earned", pts),
    )
    row_basket = np.repeat(np.arange(first, first + n_b), np.diff(out.row_off))
    rows = out.rows
    d = rows[:, L.ROW_TYPE] == L.ROW_DISCOUNT
    if not d.all():  # run_batch kept every row (price_frames keeps the discounts only)
        rows, row_basket = rows[d], row_basket[d]
    line, offer, amount, funded = (rows[:, j] for j in range(1, 5))  # layout.ROW_DISCOUNT
    discounts = pl.DataFrame(
        {
            "basket": row_basket,
            "line": line,
            "offer_id": pl.Series(compiled.offer_ids, dtype=pl.String).gather(offer),
            "funder_id": pl.Series(compiled.offer_funder, dtype=pl.String).gather(offer),
            "amount_minor": amount,
            "funded_minor": funded,
        }
    )
    return FramesResult(basket_out, line_out, discounts)


def chunks(
    lines: pl.DataFrame, baskets: pl.DataFrame, chunk: int = CHUNK_BASKETS
) -> Iterator[tuple[int, pl.DataFrame, pl.DataFrame]]:
    """The baskets of frames ``chunk`` at a time, in order: ``(first basket, lines,
    baskets)``, basket numbers in the chunk's lines relative to it."""
    n = len(baskets)
    line_basket = lines["basket"].to_numpy()
    cuts = np.searchsorted(line_basket, np.arange(0, n + chunk, chunk).clip(max=n))
    for k in range(len(cuts) - 1):
        lo_b, hi_b = k * chunk, min(n, (k + 1) * chunk)
        if lo_b >= hi_b:
            break
        part_b = baskets.slice(lo_b, hi_b - lo_b)
        part_l = lines.slice(cuts[k], cuts[k + 1] - cuts[k]).with_columns(pl.col("basket") - lo_b)
        yield lo_b, part_l, part_b


def price_frames(
    compiled: CompiledRules,
    lines: pl.DataFrame,
    baskets: pl.DataFrame,
    rows_per_line: int = ROWS_PER_LINE,
    attributes: Mapping[str, Mapping[str, AttributeValue]] | None = None,
    chunk: int = CHUNK_BASKETS,
) -> FramesResult:
    """Price baskets given as polars frames (columns in this module's docstring), ``chunk``
    baskets at a time (:data:`CHUNK_BASKETS`: a million K2 baskets 8.0-8.3 -> 5.0-5.2 s
    against one pass); ``attributes``: member id -> typed attributes (:func:`encode_frames`)."""
    if len(baskets) <= chunk:
        return _price_once(compiled, lines, baskets, rows_per_line, attributes)
    parts = [
        _price_once(compiled, part_l, part_b, rows_per_line, attributes, lo_b)
        for lo_b, part_l, part_b in chunks(lines, baskets, chunk)
    ]
    return FramesResult(
        pl.concat([r.baskets for r in parts]),
        pl.concat([r.lines for r in parts]).with_columns(lines["basket"]),
        pl.concat([r.discounts for r in parts]),
    )


def _price_once(
    compiled: CompiledRules,
    lines: pl.DataFrame,
    baskets: pl.DataFrame,
    rows_per_line: int,
    attributes: Mapping[str, Mapping[str, AttributeValue]] | None,
    first: int = 0,
) -> FramesResult:
    enc = encode_frames(compiled, lines, baskets, attributes)
    # the frames report discounts only: the kernel's other rows are dropped as they are taken,
    # into columns that become the discounts' columns
    out = run_batch(compiled, enc, rows_per_line, rows_of(L.ROW_DISCOUNT), by_column=True)
    return decode_frames(compiled, enc, out, baskets, lines, first)
