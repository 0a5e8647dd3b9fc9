"""Transaction history as polars frames: the one schema of synthetic histories and ledger exports.

One row per basket line of a ledger entry (a commit, or the part of a commit a cancel or return
reversed). Targeting, reports and simulation read this schema whether it came from
:func:`generate_history` or from ``loyalty ledger export``.

Columns (:data:`HISTORY_SCHEMA`)
--------------------------------
seq : Int64             ledger sequence number of the entry (commit order)
kind : String           "commit" | "cancel" | "return"; reversals carry non-negative amounts
entry_id : String       transaction id (commit, cancel) or return id
transaction_id : String
member_id : String      null = guest
at : Datetime(us, UTC)  when the entry happened
store_id, channel, tier : String          "" = unknown
segments : List(String)                   the member's segment tags
birthday_month : Int64                    0 = unknown
line_no : Int64         0-based position of the line in its basket (pricing order)
line_id, sku, category, brand, vendor : String
quantity : Int64        units bought (commit) or reversed (reversal)
gross_minor, net_minor, tender_minor, discount_minor, funded_minor : Int64   minor units
points_earned, points_redeemed : Int64    points attributed to the line / burned for its tender
discounts : List(Struct(offer_id, funder_id, amount_minor, funded_minor))    per (line, offer)
recorded_at : Datetime(us, UTC)  when the server recorded the entry (missing: ``at``)
lane_at : Datetime(us, UTC)      the lane's clock on a commit (null: not sent, or a reversal)
ruleset_version : Int64          the rule-set version that priced the commit (0 = unknown)
delivery : Boolean               the line is the basket's delivery charge (Line.delivery), not
                                 goods (missing: false)

``at`` is the pricing time: the server's clock, or the lane's for a basket synced after the
lane was offline (then ``recorded_at`` is later). Simulation replays each basket at ``at``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.errors import InvalidFile

DISCOUNT_STRUCT = pl.Struct(
    {
        "offer_id": pl.String,
        "funder_id": pl.String,
        "amount_minor": pl.Int64,
        "funded_minor": pl.Int64,
    }
)
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "kind": pl.String(),
    "entry_id": pl.String(),
    "transaction_id": pl.String(),
    "member_id": pl.String(),
    "at": pl.Datetime("us", "UTC"),
    "store_id": pl.String(),
    "channel": pl.String(),
    "tier": pl.String(),
    "segments": pl.List(pl.String()),
    "birthday_month": pl.Int64(),
    "line_no": pl.Int64(),
    "line_id": pl.String(),
    "sku": pl.String(),
    "category": pl.String(),
    "brand": pl.String(),
    "vendor": pl.String(),
    "quantity": pl.Int64(),
    "gross_minor": pl.Int64(),
    "net_minor": pl.Int64(),
    "tender_minor": pl.Int64(),
    "discount_minor": pl.Int64(),
    "funded_minor": pl.Int64(),
    "points_earned": pl.Int64(),
    "points_redeemed": pl.Int64(),
    "discounts": pl.List(DISCOUNT_STRUCT),
    "recorded_at": pl.Datetime("us", "UTC"),
    "lane_at": pl.Datetime("us", "UTC"),
    "ruleset_version": pl.Int64(),
    "delivery": pl.Boolean(),
}
KINDS = ("commit", "cancel", "return")
_DEFAULTS: dict[str, object] = {
    "kind": "commit",
    "store_id": "",
    "channel": "",
    "tier": "",
    "birthday_month": 0,
    "category": "",
    "brand": "",
    "vendor": "",
    "tender_minor": 0,
    "discount_minor": 0,
    "funded_minor": 0,
    "points_earned": 0,
    "points_redeemed": 0,
    "ruleset_version": 0,
    "delivery": False,
}


class HistoryError(InvalidFile):
    """A history frame lacks a column or has a value of the wrong kind; the message names it."""

    subject = "history"


def sign() -> pl.Expr:
    """+1 for commits, -1 for cancels and returns: multiply amounts by it to net them."""
    return pl.when(pl.col("kind") == "commit").then(1).otherwise(-1).cast(pl.Int64)


def conform(df: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The frame in :data:`HISTORY_SCHEMA` order and types; optional columns filled.

    Required: ``transaction_id``, ``at``, ``sku``, ``quantity``, ``gross_minor`` and
    ``net_minor``. Missing ``seq``/``entry_id``/``line_no``/``line_id`` are derived.
    """
    lf = df.lazy()
    names = lf.collect_schema().names()
    missing = [
        c
        for c in ("transaction_id", "at", "sku", "quantity", "gross_minor", "net_minor")
        if c not in names
    ]
    if missing:
        raise HistoryError(f"history: missing column(s) {', '.join(missing)}")
    add: list[pl.Expr] = []
    for name, default in _DEFAULTS.items():
        if name not in names:
            add.append(pl.lit(default).alias(name))
    if "seq" not in names:
        add.append(pl.col("transaction_id").rank("dense").cast(pl.Int64).alias("seq"))
    if "entry_id" not in names:
        add.append(pl.col("transaction_id").alias("entry_id"))
    if "member_id" not in names:
        add.append(pl.lit(None, pl.String).alias("member_id"))
    if "segments" not in names:
        add.append(pl.lit([], pl.List(pl.String)).alias("segments"))
    if "lane_at" not in names:
        add.append(pl.lit(None, pl.Datetime("us", "UTC")).alias("lane_at"))
    if "discounts" not in names:
        add.append(pl.lit([], pl.List(DISCOUNT_STRUCT)).alias("discounts"))
    if "line_no" not in names:
        add.append(
            pl.int_range(pl.len())
            .over("entry_id" if "entry_id" in names else "transaction_id")
            .alias("line_no")
        )
    lf = lf.with_columns(add)
    if "line_id" not in names:
        lf = lf.with_columns((pl.col("line_no") + 1).cast(pl.String).alias("line_id"))
    schema = lf.collect_schema()
    times = []
    for name in ("at", "recorded_at", "lane_at"):
        col = pl.col(name if name in schema else "at")
        dtype = schema[name if name in schema else "at"]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:  # naive = UTC
            col = col.dt.replace_time_zone("UTC")
        times.append(col.alias(name))
    lf = lf.with_columns(times)
    return lf.with_columns(pl.col("recorded_at").fill_null(pl.col("at"))).select(
        [pl.col(c).cast(t) for c, t in HISTORY_SCHEMA.items()]
    )


def read_history(path: str) -> pl.LazyFrame:
    """A history file (Parquet, or CSV without the list columns) as a lazy frame."""
    if str(path).endswith(".csv"):
        return conform(pl.scan_csv(path, try_parse_dates=True))
    return conform(pl.scan_parquet(path))


# ---------------------------------------------------------------------------------------------
# Synthetic history


def generate_history(
    catalogue: pl.DataFrame,
    *,
    members: int = 2_000,
    months: int = 6,
    start: datetime = datetime(2026, 5, 1, tzinfo=UTC),
    seed: int = 7,
    store_brand_vendor: str = "watsons",
    stores: int = 8,
    lapsed_share: float = 0.1,
    first_member: int = 10001,
) -> pl.DataFrame:
    """A realistic synthetic purchase history in :data:`HISTORY_SCHEMA`, unpriced (net = gross).

    Each member buys some categories, each on their own purchase cycle (7-45 days, with a day
    of jitter, moved to the member's next shopping trip), with a brand behaviour per category
    (national-brand loyal, store-brand loyal or switcher) and a usage level (units per
    purchase); a share of members lapse part-way. Lines bought by one member on one day form
    one basket in the member's home store. Tiers are the demo programme's (member, vip,
    vip-gold).

    Parameters
    ----------
    catalogue : DataFrame
        ``sku, category, brand, vendor, unit_price_minor`` (Int64); the store brand is the
        vendor ``store_brand_vendor``.
    members, months, start, seed, stores, lapsed_share
        Size, span, first day, random seed, number of stores, share of members who lapse.
    first_member
        Members are ``M<first_member>``, ``M<first_member + 1>``, ... (the demo's ids).
    """
    rng = np.random.default_rng(seed)
    cat = catalogue.select(
        "sku", "category", "brand", "vendor", pl.col("unit_price_minor").cast(pl.Int64)
    ).sort("category", "brand", "sku")
    categories = cat["category"].unique(maintain_order=True).to_list()
    is_store = (cat["vendor"] == store_brand_vendor).to_numpy()
    cat_of_row = cat["category"].to_numpy()
    n_cat, days = len(categories), max(1, round(months * 365 / 12))
    # per category: rows of national skus and of store-brand skus (catalogue row indexes)
    national = [np.flatnonzero((cat_of_row == c) & ~is_store) for c in categories]
    own = [np.flatnonzero((cat_of_row == c) & is_store) for c in categories]

    # members x categories they buy
    buys = rng.random((members, n_cat)) < 0.3
    m_idx, c_idx = np.nonzero(buys)
    n_pairs = len(m_idx)
    lapse_day = np.where(
        rng.random(members) < lapsed_share,
        rng.integers(days // 4, max(days // 4 + 1, days * 3 // 4), members),
        days,
    )
    cycle = rng.choice(np.array([7, 7, 10, 14, 14, 21, 30, 30, 45]), n_pairs)
    first = rng.integers(0, cycle)
    end = lapse_day[m_idx]
    n_ev = np.maximum(0, (end - first + cycle - 1) // cycle)
    has_own = np.array([len(o) > 0 for o in own])[c_idx]
    behaviour = rng.choice(3, n_pairs, p=[0.45, 0.25, 0.30])  # national, store, switcher
    behaviour = np.where((behaviour == 1) & ~has_own, 0, behaviour)
    usage = rng.choice(np.array([1, 1, 1, 2, 2, 4]), n_pairs)
    favourite = rng.integers(0, 1 << 30, n_pairs)

    ev = np.repeat(np.arange(n_pairs), n_ev)
    k = np.arange(len(ev)) - np.repeat(np.cumsum(n_ev) - n_ev, n_ev)
    day = first[ev] + k * cycle[ev] + rng.integers(-1, 2, len(ev))
    # purchases fall on the member's shopping trips (every 2-7 days), so baskets hold several
    trip = rng.choice(np.array([2, 3, 3, 4, 7]), members)[m_idx[ev]]
    day = np.clip((day + trip // 2) // trip * trip, 0, days - 1)
    b = behaviour[ev]
    pick_own = (b == 1) & (rng.random(len(ev)) < 0.9) | (b == 2) & (rng.random(len(ev)) < 0.5)
    pick_own &= has_own[ev]
    loyal = (b == 0) & (rng.random(len(ev)) < 0.9)
    r = np.where(loyal, favourite[ev], rng.integers(0, 1 << 30, len(ev)))
    n_nat = np.array([len(x) for x in national])[c_idx[ev]]
    n_own = np.array([len(x) for x in own])[c_idx[ev]]
    nat_off = np.concatenate([[0], np.cumsum([len(x) for x in national])])[c_idx[ev]]
    own_off = np.concatenate([[0], np.cumsum([len(x) for x in own])])[c_idx[ev]]
    nat_all = np.concatenate(national) if national else np.zeros(0, np.int64)
    own_all = np.concatenate(own) if own else np.zeros(0, np.int64)
    row = np.where(
        pick_own,
        _take(own_all, own_off + r % np.maximum(n_own, 1)),
        _take(nat_all, nat_off + r % np.maximum(n_nat, 1)),
    )
    qty = usage[ev] + (rng.random(len(ev)) < 0.2)
    member = m_idx[ev]

    lines = pl.DataFrame({"m": member, "day": day, "row": row, "quantity": qty.astype(np.int64)})
    lines = lines.sort("day", "m", "row")
    basket_key = lines["day"].to_numpy() * members + lines["m"].to_numpy()
    new = (
        np.concatenate([[True], basket_key[1:] != basket_key[:-1]])
        if len(lines)
        else np.zeros(0, bool)
    )
    basket = np.cumsum(new) - 1
    n_b = int(basket[-1]) + 1 if len(basket) else 0
    starts = np.flatnonzero(new)
    line_no = np.arange(len(lines)) - np.repeat(starts, np.diff(np.append(starts, len(lines))))
    seconds = rng.integers(8 * 3600, 21 * 3600, n_b)[basket]
    m = lines["m"].to_numpy()
    home = rng.integers(0, stores, members)
    ids = pl.Series("member_id", [f"M{first_member + i}" for i in range(members)], pl.String)
    cat_rows = lines["row"].to_numpy()
    out = pl.DataFrame(
        {
            "seq": basket.astype(np.int64) + 1,
            "member_id": ids.gather(m),
            "at": pl.Series(
                np.datetime64(start.replace(tzinfo=None), "us")
                + (lines["day"].to_numpy() * 86400 + seconds).astype("timedelta64[s]")
            ),
            "store_id": pl.Series([f"S{s + 1:02d}" for s in range(stores)]).gather(home[m]),
            "line_no": line_no.astype(np.int64),
            "sku": cat["sku"].gather(cat_rows),
            "category": cat["category"].gather(cat_rows),
            "brand": cat["brand"].gather(cat_rows),
            "vendor": cat["vendor"].gather(cat_rows),
            "quantity": lines["quantity"],
            "gross_minor": lines["quantity"] * cat["unit_price_minor"].gather(cat_rows),
        }
    )
    out = out.with_columns(
        pl.format("T{}", pl.col("seq").cast(pl.String).str.zfill(9)).alias("transaction_id"),
        pl.lit("pos").alias("channel"),
        pl.Series(["member", "member", "member", "vip", "vip", "vip-gold"])
        .gather(rng.integers(0, 6, members)[m])
        .alias("tier"),
        pl.col("gross_minor").alias("net_minor"),
    )
    return conform(out).collect()


def _take(rows: npt.NDArray[np.int64], at: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``rows[at]`` where ``at`` may point past the end (a category without such skus)."""
    if not len(rows):
        return np.zeros(len(at), dtype=np.int64)
    return rows[np.minimum(at, len(rows) - 1)]


def last_day(history: pl.LazyFrame) -> datetime:
    """The day after the latest entry: the default "as of" of targeting and reports."""
    latest = history.select(pl.col("at").max()).collect().item()
    if latest is None:
        raise HistoryError("history: no entries")
    return datetime(latest.year, latest.month, latest.day, tzinfo=UTC) + timedelta(days=1)
