"""Reports over a history or ledger export (docs/design.md §7), reconciled exactly with the ledger.

- :func:`settlement_lines` / :func:`settlement`: what each funder owes, line by line and per
  funder, offer, store and day. Reversals (cancel, return) count negative, so the totals per
  funder equal the sum of ``funded_by(entry)`` over the ledger to the cent.
- :func:`vendor_statement` / :func:`statement_summary`: a vendor's deduction statement for a
  period: every discount it funds with line detail, reversals negative, per offer and total.
- :func:`anonymised_extract`: a vendor's sales with member identity replaced by a keyed hash
  (HMAC-SHA256 with a secret the retailer keeps): stable within the extract, so the vendor can
  analyse repeat buying, but not reversible or linkable to other data without the secret.
- :func:`campaign_performance`: redemptions, cost by funder, budget burn, points, and uplift
  against the holdout group of a targeting run (:func:`engine.analytics.playbook.plan`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

import polars as pl

from engine.analytics.history import conform, sign

SETTLEMENT_KEYS = ("funder_id", "offer_id", "store_id", "day")


def _discount_rows(history: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return (
        conform(history)
        .filter(pl.col("discounts").list.len() > 0)
        .with_columns(sign().alias("sign"))
        .drop("discount_minor", "funded_minor")
        .explode("discounts")
        .unnest("discounts")
    )


def settlement_lines(history: pl.DataFrame | pl.LazyFrame, timezone: str = "UTC") -> pl.DataFrame:
    """One row per (ledger entry, line, offer) discount, amounts signed (reversals negative).

    Columns: ``seq, kind, entry_id, transaction_id, at, day (local to timezone), store_id,
    line_id, sku, brand, vendor, quantity, offer_id, funder_id, amount_minor, funded_minor``.
    """
    day = pl.col("at").dt.convert_time_zone(timezone).dt.date().alias("day")
    return (
        _discount_rows(history)
        .select(
            "seq",
            "kind",
            "entry_id",
            "transaction_id",
            "at",
            day,
            "store_id",
            "line_id",
            "sku",
            "brand",
            "vendor",
            pl.col("quantity") * pl.col("sign"),
            "offer_id",
            "funder_id",
            pl.col("amount_minor") * pl.col("sign"),
            pl.col("funded_minor") * pl.col("sign"),
        )
        .sort("seq", "line_id", "offer_id")
        .collect()
    )


def settlement(
    history: pl.DataFrame | pl.LazyFrame,
    funders: Iterable[str] | None = None,
    timezone: str = "UTC",
) -> pl.DataFrame:
    """Per funder, offer, store and day: discount given, funded (what the funder owes), the
    retailer's share, lines and transactions. ``funders`` keeps only those (None = all);
    days are local to ``timezone`` (the rule set's, for a retail day)."""
    lines = settlement_lines(history, timezone)
    if funders is not None:
        lines = lines.filter(pl.col("funder_id").is_in(list(funders)))
    return (
        lines.group_by(*SETTLEMENT_KEYS)
        .agg(
            pl.col("amount_minor").sum().alias("discount_minor"),
            pl.col("funded_minor").sum(),
            (pl.col("amount_minor") - pl.col("funded_minor")).sum().alias("retailer_minor"),
            pl.len().alias("lines"),
            pl.col("transaction_id").n_unique().alias("transactions"),
        )
        .sort(*SETTLEMENT_KEYS)
    )


def owed_by_funder(history: pl.DataFrame | pl.LazyFrame) -> dict[str, int]:
    """Funder -> net minor units owed; the figure settlement invoices carry."""
    df = settlement_lines(history).group_by("funder_id").agg(pl.col("funded_minor").sum())
    return {f: int(v) for f, v in df.iter_rows()}


STATEMENT_COLUMNS = (
    "seq",
    "kind",
    "entry_id",
    "transaction_id",
    "at",
    "day",
    "store_id",
    "line_id",
    "sku",
    "quantity",
    "offer_id",
    "amount_minor",
    "funded_minor",
)


def vendor_statement(
    history: pl.DataFrame | pl.LazyFrame,
    vendor: str,
    first_day: date | None = None,
    last_day: date | None = None,
    timezone: str = "UTC",
) -> pl.DataFrame:
    """What is deducted from ``vendor``'s account over ``first_day..last_day`` (local days of
    ``timezone``, both included; None = open): every discount it funds, line by line
    (:func:`settlement_lines` rows of funder ``vendor``), reversals (cancels, returns) as
    negative lines dated when they happened. ``funded_minor`` sums to the signed
    ``funded_by(entry)[vendor]`` of the ledger entries of those days, to the cent."""
    lines = settlement_lines(history, timezone).filter(pl.col("funder_id") == vendor)
    if first_day is not None:
        lines = lines.filter(pl.col("day") >= first_day)
    if last_day is not None:
        lines = lines.filter(pl.col("day") <= last_day)
    return lines.select(STATEMENT_COLUMNS)


def statement_summary(statement: pl.DataFrame) -> pl.DataFrame:
    """Per offer: deducted (commits), reversed (cancels and returns, negative), net, discount
    given and lines; then a ``TOTAL`` row. ``net_minor`` of ``TOTAL`` is the deduction."""
    commit = pl.col("kind") == "commit"
    per_offer = (
        statement.group_by("offer_id")
        .agg(
            pl.col("funded_minor").filter(commit).sum().alias("deducted_minor"),
            pl.col("funded_minor").filter(~commit).sum().alias("reversed_minor"),
            pl.col("funded_minor").sum().alias("net_minor"),
            pl.col("amount_minor").sum().alias("discount_minor"),
            pl.len().alias("lines"),
            pl.col("transaction_id").n_unique().alias("transactions"),
        )
        .sort("offer_id")
        .cast({"lines": pl.Int64, "transactions": pl.Int64})
    )
    total = per_offer.select(
        pl.lit("TOTAL").alias("offer_id"),
        pl.col("deducted_minor", "reversed_minor", "net_minor", "discount_minor", "lines").sum(),
        pl.lit(statement["transaction_id"].n_unique(), pl.Int64).alias("transactions"),
    )
    return pl.concat([per_offer, total])


def keyed_hash(value: str, secret: bytes, purpose: str) -> str:
    """HMAC-SHA256 of ``purpose:value`` under ``secret``, hex, 32 characters (128 bits)."""
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _pseudonyms(values: pl.Series, secret: bytes, purpose: str) -> pl.DataFrame:
    distinct = values.drop_nulls().unique()
    return pl.DataFrame(
        {"k": distinct, "v": [keyed_hash(x, secret, purpose) for x in distinct]},
        schema={"k": pl.String, "v": pl.String},
    )


def anonymised_extract(
    history: pl.DataFrame | pl.LazyFrame,
    vendor: str,
    secret: bytes,
    shared_members: Iterable[str] | None = None,
) -> pl.DataFrame:
    """The vendor's product lines with no member identity.

    ``customer_key`` and ``basket_key`` are keyed hashes of the member and transaction ids;
    lines of guests and of members not in ``shared_members`` (those without third-party
    consent; None = everyone consented) keep their sales figures but get no keys, so they
    cannot be linked to anything. Amounts are signed (reversals negative); ``funded_minor`` is
    what this vendor paid of the line's discounts.
    """
    if not secret:
        raise ValueError("secret: required (the keyed hash must not be computable without it)")
    lf = conform(history).filter(pl.col("vendor") == vendor).with_columns(sign().alias("sign"))
    df = lf.with_columns(
        pl.col("discounts")
        .list.eval(
            pl.element()
            .filter(pl.element().struct.field("funder_id") == vendor)
            .struct.field("funded_minor")
        )
        .list.sum()
        .fill_null(0)
        .alias("vendor_funded")
    ).collect()
    ok = pl.col("member_id").is_not_null() & (pl.col("member_id") != "")
    if shared_members is not None:
        ok = ok & pl.col("member_id").is_in(list(shared_members))
    df = df.with_columns(ok.alias("_share"))
    members = _pseudonyms(df.filter("_share")["member_id"], secret, "member")
    baskets = _pseudonyms(df.filter("_share")["transaction_id"], secret, "basket")
    df = df.join(
        members.rename({"k": "member_id", "v": "customer_key"}),
        on="member_id",
        how="left",
        maintain_order="left",
    ).join(
        baskets.rename({"k": "transaction_id", "v": "basket_key"}),
        on="transaction_id",
        how="left",
        maintain_order="left",
    )
    s = pl.col("sign")
    return df.select(
        pl.col("at").dt.date().alias("day"),
        pl.col("at").dt.hour().alias("hour"),
        "kind",
        "store_id",
        pl.when("_share").then(pl.col("customer_key")).alias("customer_key"),
        pl.when("_share").then(pl.col("basket_key")).alias("basket_key"),
        "sku",
        "category",
        "brand",
        pl.col("quantity") * s,
        pl.col("gross_minor") * s,
        pl.col("net_minor") * s,
        pl.col("discount_minor") * s,
        (pl.col("vendor_funded") * s).alias("funded_minor"),
    )


def campaign_performance(
    history: pl.DataFrame | pl.LazyFrame,
    planned: pl.DataFrame,
    as_of: datetime,
    days: int = 28,
    budgets: Mapping[str, int] | None = None,
) -> pl.DataFrame:
    """Per campaign over ``[as_of, as_of + days)``.

    ``planned`` is the plan of the run (``engine.analytics.playbook.plan`` columns; ``status``
    issued or issue = coupon given, ``group`` holdout = control). Redemptions and cost count the
    lines discounted by the campaign's offers for its treated members, signed; uplift compares
    the average spend in the campaign's category of treated and holdout members. Budget burn is
    the discount redeemed against the funder's budget of the playbook, in basis points.
    """
    lf = conform(history).filter(
        (pl.col("at") >= as_of) & (pl.col("at") < as_of + timedelta(days=days))
    )
    plan = planned.filter(pl.col("status").is_in(["issue", "issued", "holdout"])).select(
        "campaign_id", "member_id", "category", "offer_id", "funder_id", "group"
    )
    offers = plan.select("campaign_id", "offer_id").unique()
    treated = plan.filter(pl.col("group") == "treatment")
    used = (
        _discount_rows(lf)
        .join(treated.lazy().select("campaign_id", "member_id"), on="member_id")
        .join(offers.lazy(), on=["campaign_id", "offer_id"])
        .collect()
    )
    cost = used.group_by("campaign_id").agg(
        pl.col("transaction_id").filter(pl.col("sign") > 0).n_unique().alias("redemptions"),
        (pl.col("amount_minor") * pl.col("sign")).sum().alias("discount_minor"),
        (pl.col("funded_minor") * pl.col("sign")).sum().alias("funded_minor"),
    )
    signed = lf.with_columns(sign().alias("sign")).select(
        "member_id",
        "category",
        (pl.col("net_minor") * pl.col("sign")).alias("spend"),
        (pl.col("points_earned") * pl.col("sign")).alias("earned"),
        (pl.col("points_redeemed") * pl.col("sign")).alias("redeemed"),
    )
    spend = (
        plan.lazy()
        .join(signed, on=["member_id", "category"], how="left")
        .group_by("campaign_id", "member_id", "group")
        .agg(pl.col("spend").sum(), pl.col("earned").sum(), pl.col("redeemed").sum())
        .collect()
    )
    by_group = spend.group_by("campaign_id").agg(
        (pl.col("group") == "treatment").sum().alias("treated"),
        (pl.col("group") == "holdout").sum().alias("holdout"),
        pl.col("spend").filter(pl.col("group") == "treatment").mean().alias("spend_treated"),
        pl.col("spend").filter(pl.col("group") == "holdout").mean().alias("spend_holdout"),
        pl.col("earned").filter(pl.col("group") == "treatment").sum().alias("points_earned"),
        pl.col("redeemed").filter(pl.col("group") == "treatment").sum().alias("points_redeemed"),
    )
    funders = plan.group_by("campaign_id").agg(pl.col("funder_id").first())
    out = by_group.join(funders, on="campaign_id").join(cost, on="campaign_id", how="left")
    out = out.with_columns(pl.col("redemptions", "discount_minor", "funded_minor").fill_null(0))
    budget = pl.DataFrame(
        {"funder_id": list((budgets or {}).keys()), "budget_minor": list((budgets or {}).values())},
        schema={"funder_id": pl.String, "budget_minor": pl.Int64},
    )
    out = out.join(budget, on="funder_id", how="left").with_columns(
        (pl.col("discount_minor") - pl.col("funded_minor")).alias("retailer_minor"),
        (pl.col("spend_treated") - pl.col("spend_holdout"))
        .round(0)
        .cast(pl.Int64)
        .alias("uplift_minor"),
        ((pl.col("spend_treated") / pl.col("spend_holdout") - 1) * 100)
        .round(2)
        .alias("uplift_pct"),
        pl.col("spend_treated", "spend_holdout").round(0).cast(pl.Int64),
        (pl.col("discount_minor") * 10000 // pl.col("budget_minor")).alias("budget_burn_bps"),
    )
    return out.select(
        "campaign_id",
        "funder_id",
        "treated",
        "holdout",
        "redemptions",
        "discount_minor",
        "funded_minor",
        "retailer_minor",
        "budget_minor",
        "budget_burn_bps",
        "points_earned",
        "points_redeemed",
        "spend_treated",
        "spend_holdout",
        "uplift_minor",
        "uplift_pct",
    ).sort("campaign_id")
