"""Advertised equals charged (docs/domain.md, CRV): every committed line's discounts re-derived
from the rule-set version that priced it.

Each committed basket of a history (the ledger export: :mod:`server.analytics.ledger`) is priced
again with the compiled rules of the version its ledger entry recorded (``ruleset_version``),
at its ``at``, with the member as the ledger recorded them (tier, segments, birthday month),
paying with the points it paid with and presenting as coupons the coupon offers whose
discounts it received: the baskets :func:`engine.analytics.simulate.basket_frames` builds for
simulation, priced by the batch kernel (:func:`engine.pricing.frames.price_frames`). Every
(line, offer) discount and its funding is compared with the ledger's; what differs is listed,
so an empty :attr:`Audit.differences` means the audit passed.

Limits. Per-line and per-basket limits (``per_transaction``, ``max_discount_minor``) are in the
rules and re-derived like the rest. Limits across transactions (``per_member``,
``total_uses``, ``budget_minor``) depend on what had happened before the commit, which the
ledger does not record. An offer with such limits that gave *less* in the ledger than the
rules give without limits (nothing: exhausted; less: the budget's remainder) is therefore
not reported as a difference outright: the basket is priced again (scalar engine) with that
limit state — the offer exhausted, or with the recorded amount as its remaining budget — and
if that reproduces the ledger exactly, the offer is listed in :attr:`Audit.limit_dependent`
with the state assumed; otherwise the remaining differences are reported. An offer that gave
*more* than the rules allow is always a difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from engine.analytics.history import conform
from engine.analytics.replay import Attributes, basket_frames, coupon_offers
from engine.pricing.api import price
from engine.pricing.compiler import CompiledRules
from engine.pricing.frames import price_frames
from engine.pricing.types import Basket, Line, Member, RemainingLimits
from loyalty.v1 import rules_pb2

KEYS = ("seq", "line_no", "offer_id")
FLAT_SCHEMA = pl.Schema(
    {
        "seq": pl.Int64,
        "line_no": pl.Int64,
        "offer_id": pl.String,
        "amount_minor": pl.Int64,
        "funded_minor": pl.Int64,
    }
)
DIFFERENCE_SCHEMA = pl.Schema(
    {
        "transaction_id": pl.String(),
        "seq": pl.Int64(),
        "at": pl.Datetime("us", "UTC"),
        "ruleset_version": pl.Int64(),
        "line_id": pl.String(),
        "sku": pl.String(),
        "offer_id": pl.String(),
        "recorded_minor": pl.Int64(),
        "rederived_minor": pl.Int64(),
        "recorded_funded_minor": pl.Int64(),
        "rederived_funded_minor": pl.Int64(),
        "reason": pl.String(),  # "amount" | "no_version" (the version is not recorded or not known)
    }
)
LIMIT_SCHEMA = pl.Schema(
    {
        "transaction_id": pl.String,
        "seq": pl.Int64,
        "ruleset_version": pl.Int64,
        "offer_id": pl.String,
        "recorded_minor": pl.Int64,
        "unlimited_minor": pl.Int64,  # what the rules give without cross-transaction limits
        "assumed": pl.String,  # "exhausted" | "budget_left:<minor>"
    }
)


def limited_offers(rules: rules_pb2.RuleSet) -> set[str]:
    """Offers whose result depends on earlier transactions (per member, total uses, budget)."""
    return {
        o.id
        for o in rules.offers
        if o.limits.per_member or o.limits.total_uses or o.limits.budget_minor
    }


@dataclass(frozen=True)
class Audit:
    baskets: int  # committed baskets checked
    lines: int
    discounts: int  # recorded (line, offer) discounts checked
    by_version: dict[int, int]  # baskets per rule-set version
    differences: pl.DataFrame  # DIFFERENCE_SCHEMA; empty = passed
    limit_dependent: pl.DataFrame  # LIMIT_SCHEMA

    @property
    def passed(self) -> bool:
        return self.differences.is_empty()


def _flat(history: pl.DataFrame) -> pl.DataFrame:
    """One row per (basket, line, offer) discount: ``FLAT_SCHEMA``."""
    return (
        history.select("seq", "line_no", "discounts")
        .explode("discounts")
        .filter(pl.col("discounts").is_not_null())
        .unnest("discounts")
        .group_by(*KEYS)
        .agg(pl.col("amount_minor").sum(), pl.col("funded_minor").sum())
        .select(list(FLAT_SCHEMA))
        .cast(FLAT_SCHEMA)
    )


def _rederive(
    compiled: CompiledRules, commits: pl.DataFrame, attributes: Attributes | None
) -> pl.DataFrame:
    """The committed baskets (sorted by ``seq, line_no``) priced by the batch kernel, without
    cross-transaction limits, as ``FLAT_SCHEMA`` rows."""
    lines, baskets = basket_frames(commits, coupon_offers(compiled.rules))
    out = price_frames(compiled, lines, baskets, attributes=attributes).discounts
    first = np.searchsorted(lines["basket"].to_numpy(), out["basket"].to_numpy())
    row = pl.Series("row", first + out["line"].to_numpy().astype(np.int64), pl.Int64)
    keys = commits.select(pl.col("seq").gather(row), pl.col("line_no").gather(row))
    return (
        pl.concat([keys, out.select("offer_id", "amount_minor", "funded_minor")], how="horizontal")
        .group_by(*KEYS)
        .agg(pl.col("amount_minor").sum(), pl.col("funded_minor").sum())
        .select(list(FLAT_SCHEMA))
        .cast(FLAT_SCHEMA)
    )


def _compare(commits: pl.DataFrame, recorded: pl.DataFrame, again: pl.DataFrame) -> pl.DataFrame:
    both = (
        recorded.join(again, on=list(KEYS), how="full", coalesce=True, suffix="_again")
        .with_columns(
            pl.col("amount_minor", "funded_minor", "amount_minor_again", "funded_minor_again")
            .fill_null(0)
            .cast(pl.Int64)
        )
        .filter(
            (pl.col("amount_minor") != pl.col("amount_minor_again"))
            | (pl.col("funded_minor") != pl.col("funded_minor_again"))
        )
    )
    info = commits.select(
        "seq", "line_no", "transaction_id", "at", "ruleset_version", "line_id", "sku"
    )
    return (
        both.join(info, on=["seq", "line_no"], how="left")
        .select(
            "transaction_id",
            "seq",
            "at",
            "ruleset_version",
            "line_id",
            "sku",
            "offer_id",
            pl.col("amount_minor").alias("recorded_minor"),
            pl.col("amount_minor_again").alias("rederived_minor"),
            pl.col("funded_minor").alias("recorded_funded_minor"),
            pl.col("funded_minor_again").alias("rederived_funded_minor"),
            pl.lit("amount").alias("reason"),
            "line_no",
        )
        .sort("seq", "line_no", "offer_id")
        .drop("line_no")
        .cast(DIFFERENCE_SCHEMA)
    )


def _price_limited(
    compiled: CompiledRules,
    rows: pl.DataFrame,
    limits: Mapping[str, RemainingLimits],
    attributes: Attributes | None,
) -> pl.DataFrame:
    """One committed basket (its history rows) priced by the scalar engine under ``limits``,
    as ``FLAT_SCHEMA`` rows."""
    first = rows.row(0, named=True)
    basket = Basket(
        tuple(
            Line(
                r["line_id"],
                r["sku"],
                r["quantity"],
                r["gross_minor"] // r["quantity"],
                r["category"],
                r["brand"],
                r["vendor"],
            )
            for r in rows.iter_rows(named=True)
        ),
        first["at"],
        first["store_id"],
        first["channel"],
    )
    redeem = int(rows["points_redeemed"].sum())
    member = (
        Member(
            first["member_id"],
            first["tier"],
            frozenset(first["segments"]),
            first["birthday_month"],
            available_points=redeem,
            attributes=(attributes or {}).get(first["member_id"], {}),
        )
        if first["member_id"]
        else None
    )
    wanted = set(coupon_offers(compiled.rules))
    used = {d["offer_id"] for ds in rows["discounts"] for d in ds if d["offer_id"] in wanted}
    result = price(
        compiled, basket, member, coupons=sorted(used), redeem_points=redeem, limits=limits
    )
    line_no = dict(zip(rows["line_id"], rows["line_no"], strict=True))
    out = [
        (first["seq"], line_no[ln.line_id], d.offer_id, d.amount_minor, d.funded_minor)
        for ln in result.lines
        for d in ln.discounts
    ]
    return pl.DataFrame(out, schema=FLAT_SCHEMA, orient="row")


def _limit_pass(
    compiled: CompiledRules,
    commits: pl.DataFrame,
    recorded: pl.DataFrame,
    diffs: pl.DataFrame,
    attributes: Attributes | None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Baskets whose differences a cross-transaction limit can explain, priced again with the
    limit state the ledger implies: ``(differences, limit_dependent)``."""
    limited = limited_offers(compiled.rules)
    budgeted = {o.id for o in compiled.rules.offers if o.limits.budget_minor}
    per_offer = diffs.group_by("seq", "offer_id").agg(
        pl.col("recorded_minor").sum(), pl.col("rederived_minor").sum()
    )
    kept, found = [diffs.filter(pl.lit(False))], []
    for (seq,), part in diffs.group_by("seq", maintain_order=True):
        offers = per_offer.filter(pl.col("seq") == seq)
        limits: dict[str, RemainingLimits] = {}
        assumed: list[tuple[str, int, int, str]] = []
        for offer, rec, again in offers.select(
            "offer_id", "recorded_minor", "rederived_minor"
        ).iter_rows():
            if offer in limited and rec < again and (rec == 0 or offer in budgeted):
                state = (
                    RemainingLimits(member_uses=0, total_uses=0)
                    if rec == 0
                    else RemainingLimits(budget_minor=rec)
                )
                limits[offer] = state
                assumed.append(
                    (offer, rec, again, "exhausted" if rec == 0 else f"budget_left:{rec}")
                )
        if not limits:
            kept.append(part)
            continue
        rows = commits.filter(pl.col("seq") == seq).sort("line_no")
        again_flat = _price_limited(compiled, rows, limits, attributes)
        rest = _compare(rows, recorded.filter(pl.col("seq") == seq), again_flat)
        if rest.is_empty():
            first = rows.row(0, named=True)
            found += [(first["transaction_id"], seq, first["ruleset_version"], *a) for a in assumed]
        else:
            kept.append(part)  # the limits do not explain it: report what the rules give
    limit_dependent = pl.DataFrame(found, schema=LIMIT_SCHEMA, orient="row")
    return pl.concat(kept), limit_dependent


def audit(
    history: pl.DataFrame | pl.LazyFrame,
    rules: Mapping[int, CompiledRules],
    since: datetime | None = None,
    until: datetime | None = None,
    attributes: Attributes | None = None,
) -> Audit:
    """Re-derive the discounts of every commit of ``history`` with ``since <= at < until``
    from ``rules[ruleset_version]`` and list what differs (module docstring). ``attributes``:
    member id -> the typed attributes to price attribute conditions with (a history records
    none; without them those conditions fail)."""
    lf = conform(history).filter(pl.col("kind") == "commit")
    if since is not None:
        lf = lf.filter(pl.col("at") >= since)
    if until is not None:
        lf = lf.filter(pl.col("at") < until)
    commits = lf.sort("seq", "line_no").collect()
    recorded_all = _flat(commits)
    diffs: list[pl.DataFrame] = [pl.DataFrame(schema=DIFFERENCE_SCHEMA)]
    limit_parts = [pl.DataFrame(schema=LIMIT_SCHEMA)]
    by_version: dict[int, int] = {}
    for (version,), part in commits.group_by("ruleset_version", maintain_order=True):
        v = int(str(version))
        by_version[v] = part["seq"].n_unique()
        compiled = rules.get(v)
        if compiled is None:  # not recorded (0) or not in the registry: cannot be checked
            diffs.append(
                part.group_by("seq", maintain_order=True)
                .agg(
                    pl.col("transaction_id", "at", "ruleset_version").first(),
                    pl.col("discount_minor").sum().alias("recorded_minor"),
                    pl.col("funded_minor").sum().alias("recorded_funded_minor"),
                )
                .with_columns(
                    pl.lit("").alias("line_id"),
                    pl.lit("").alias("sku"),
                    pl.lit("").alias("offer_id"),
                    pl.lit(None, pl.Int64).alias("rederived_minor"),
                    pl.lit(None, pl.Int64).alias("rederived_funded_minor"),
                    pl.lit("no_version").alias("reason"),
                )
                .select(list(DIFFERENCE_SCHEMA))
                .cast(DIFFERENCE_SCHEMA)
            )
            continue
        recorded = recorded_all.join(part.select("seq").unique(), on="seq")
        found = _compare(part, recorded, _rederive(compiled, part, attributes))
        if not found.is_empty():
            found, dependent = _limit_pass(compiled, part, recorded, found, attributes)
            limit_parts.append(dependent)
        diffs.append(found)
    return Audit(
        commits["seq"].n_unique(),
        len(commits),
        len(recorded_all),
        dict(sorted(by_version.items())),
        pl.concat(diffs).sort("seq", "line_id", "offer_id"),
        pl.concat(limit_parts).sort("seq", "offer_id"),
    )
