"""Personalised bundles (docs/design.md §7): a bundle-price coupon for the pair (or trio) of
skus each member buys together most, from the member's own baskets.

A playbook's ``bundles`` section lists bundle campaigns::

    bundles:
      - id: own-pair              # an id of at most 40 characters: [A-Za-z0-9._:-]
        size: 2                   # 2 = pairs, 3 = trios
        min_baskets: 2            # bought together in at least this many of the member's baskets
        weeks: 26                 # baskets of the last 26 weeks count (0 = all history)
        discount_bps: 1500        # the bundle costs its reference price less 15%
        funder: retailer
        uses: 1
        personalised: true
        spend_gate: {weeks: 8, min_weekly_minor: 5000}   # optional (engine.analytics.spend_gate)

How a member's bundle is chosen (:func:`picks`): every set of ``size`` distinct skus bought in
one of the member's committed baskets before as-of counts once per basket (:func:`co_purchases`;
baskets of more than :data:`MAX_BASKET_SKUS` distinct skus are left out); the set bought
together in the most baskets wins, at least ``min_baskets``, ties going to the set whose sorted
skus come first (plain string order), so a run is deterministic.

How it prices at the lane: the bundle is an ordinary offer of the rule set. Each chosen set is
one ``COUPON`` offer (:func:`bundle_offers`) with id ``<campaign>:<12 hex of SHA-256 of the
skus>`` (the same set in the same campaign is one offer, whoever buys it), a ``bundle_price``
reward whose components are the set's skus, one unit each, at ``price_minor`` = the set's
reference price (the sum of each sku's latest unit price in the history, :func:`reference_prices`)
less ``discount_bps`` (rounded half up), and ``limits.per_transaction`` 1 (one bundle per
basket). :func:`with_offers` adds them to a rule set (replacing offers of the same id): that
draft is published like any other, and the member's wallet coupon of the offer (issued by the
targeting run, ``value_minor`` = the saving) makes the kernel price the member's own pair at the
bundle price. Nobody without the coupon gets it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from engine.analytics.history import conform
from engine.analytics.playbook_errors import PlaybookError
from engine.analytics.spend_gate import MAX_WEEKS, SpendGate, parse_gate, whole_number
from loyalty.v1 import rules_pb2

MAX_BASKET_SKUS = 30  # C(30, 3) = 4,060 trios per basket at most
MAX_ID_CHARS = 40  # the campaign id; offer ids add 13 characters (rule-set ids: at most 64)
_ID = re.compile(r"[A-Za-z0-9._:-]+")
_FIELDS = (
    "id",
    "size",
    "min_baskets",
    "weeks",
    "discount_bps",
    "funder",
    "uses",
    "personalised",
    "priority",
    "spend_gate",
)
PICK_COLUMNS = (
    "campaign_id",
    "member_id",
    "offer_id",
    "skus",
    "baskets",
    "reference_minor",
    "price_minor",
    "saving_minor",
)


@dataclass(frozen=True)
class BundleCampaign:
    id: str
    size: int = 2  # 2 or 3 skus
    min_baskets: int = 2  # 1..10^6
    weeks: int = 0  # 0 = all history; else 1..MAX_WEEKS
    discount_bps: int = 1000  # 1..9999
    funder: str = "retailer"
    uses: int = 1
    personalised: bool = True
    priority: int = 0  # the offers' stacking priority
    spend_gate: SpendGate | None = None  # None = the playbook's


def parse_bundles(items: object) -> tuple[BundleCampaign, ...]:
    """The ``bundles`` section; raises :class:`PlaybookError` naming ``bundles[i].<field>``."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise PlaybookError("bundles: expected a list of bundle campaigns")
    out: list[BundleCampaign] = []
    for i, b in enumerate(items):
        where = f"bundles[{i}]"
        if not isinstance(b, dict):
            raise PlaybookError(f"{where}: expected a mapping")
        if unknown := sorted(set(b) - set(_FIELDS)):
            raise PlaybookError(f"{where}.{unknown[0]}: unknown field")
        cid = b.get("id")
        if not isinstance(cid, str) or not cid:
            raise PlaybookError(f"{where}.id: is required")
        if len(cid) > MAX_ID_CHARS or not _ID.fullmatch(cid):
            raise PlaybookError(
                f"{where}.id: 1-{MAX_ID_CHARS} characters of A-Z a-z 0-9 . _ : - (got {cid!r})"
            )
        if cid in {c.id for c in out}:
            raise PlaybookError(f"{where}.id: duplicate id {cid!r}")
        d = BundleCampaign(cid)
        size = _number(b, "size", d.size, where, 2, 3)
        least = _number(b, "min_baskets", d.min_baskets, where, 1, 10**6)
        weeks = _number(b, "weeks", d.weeks, where, 0, MAX_WEEKS)
        bps = _number(b, "discount_bps", d.discount_bps, where, 1, 9999)
        uses = _number(b, "uses", d.uses, where, 1, 10**9)
        priority = _number(b, "priority", d.priority, where, -(2**31), 2**31 - 1)
        funder = b.get("funder", d.funder)
        if not isinstance(funder, str) or not funder:
            raise PlaybookError(f"{where}.funder: must be a non-empty string")
        personalised = b.get("personalised", True)
        if not isinstance(personalised, bool):
            raise PlaybookError(f"{where}.personalised: must be true or false")
        gate = parse_gate(b.get("spend_gate"), where)
        out.append(
            BundleCampaign(cid, size, least, weeks, bps, funder, uses, personalised, priority, gate)
        )
    return tuple(out)


def _number(obj: Mapping[str, Any], key: str, default: int, where: str, lo: int, hi: int) -> int:
    value = whole_number(obj.get(key, default), f"{where}.{key}")
    if not lo <= value <= hi:
        raise PlaybookError(f"{where}.{key}: must be {lo}..{hi} (got {value})")
    return value


def _sku_columns(size: int) -> list[str]:
    return [f"sku_{k}" for k in range(size)]


def co_purchases(
    history: pl.DataFrame | pl.LazyFrame, size: int, as_of: datetime, weeks: int = 0
) -> pl.DataFrame:
    """``member_id, sku_0 .. sku_<size-1> (ascending), baskets (Int64)``: every set of ``size``
    distinct skus bought in one committed basket of a member before ``as_of`` (in the last
    ``weeks`` weeks unless 0), with the number of the member's baskets that held it all.
    Sorted by member, most baskets first, then skus."""
    lf = conform(history).filter(
        (pl.col("kind") == "commit")
        & ~pl.col("delivery")  # a delivery charge is no product the member bought
        & pl.col("member_id").is_not_null()
        & (pl.col("member_id") != "")
        & (pl.col("at") < as_of)
    )
    if weeks:
        lf = lf.filter(pl.col("at") >= as_of - timedelta(days=7 * weeks))
    keys = ["member_id", "transaction_id"]
    items = lf.select(*keys, "sku").unique()
    n = pl.col("sku").count().over(keys)
    items = items.filter((n >= size) & (n <= MAX_BASKET_SKUS))
    cols = _sku_columns(size)
    sets = items.rename({"sku": cols[0]})
    for k in range(1, size):
        sets = sets.join(items.rename({"sku": cols[k]}), on=keys).filter(
            pl.col(cols[k - 1]) < pl.col(cols[k])
        )
    return (
        sets.group_by("member_id", *cols)
        .agg(pl.len().cast(pl.Int64).alias("baskets"))
        .sort(["member_id", "baskets", *cols], descending=[False, True, *([False] * size)])
        .collect()
    )


def reference_prices(history: pl.DataFrame | pl.LazyFrame, as_of: datetime) -> pl.DataFrame:
    """``sku, unit_price_minor (Int64)``: each sku's unit price (``gross_minor // quantity``)
    on its latest committed line before ``as_of`` (by time, ledger order, line)."""
    return (
        conform(history)
        .filter((pl.col("kind") == "commit") & (pl.col("at") < as_of) & (pl.col("quantity") > 0))
        .sort("at", "seq", "line_no")
        .group_by("sku")
        .agg((pl.col("gross_minor") // pl.col("quantity")).last().alias("unit_price_minor"))
        .sort("sku")
        .collect()
    )


def offer_id(campaign_id: str, skus: Sequence[str]) -> str:
    """``<campaign>:<12 hex>``: the same skus in the same campaign are always the same offer."""
    digest = hashlib.sha256("\x00".join(sorted(skus)).encode()).hexdigest()[:12]
    return f"{campaign_id}:{digest}"


def picks(
    history: pl.DataFrame | pl.LazyFrame, campaign: BundleCampaign, as_of: datetime
) -> pl.DataFrame:
    """One row per member with a set bought together in at least ``min_baskets`` baskets and a
    positive saving (:data:`PICK_COLUMNS`): the member's most frequent set, its offer, the
    number of baskets, its reference price, bundle price and saving (minor units)."""
    cols = _sku_columns(campaign.size)
    counts = co_purchases(history, campaign.size, as_of, campaign.weeks)
    top = (
        counts.filter(pl.col("baskets") >= campaign.min_baskets)
        .group_by("member_id", maintain_order=True)
        .first()
    )
    prices = reference_prices(history, as_of)
    for c in cols:
        top = top.join(prices.rename({"sku": c, "unit_price_minor": f"_p_{c}"}), on=c, how="left")
    reference = pl.sum_horizontal(*(pl.col(f"_p_{c}") for c in cols))
    saving = (pl.col("reference_minor") * campaign.discount_bps + 5000) // 10000
    top = (
        top.with_columns(reference.alias("reference_minor"))
        .with_columns(saving.alias("saving_minor"))
        .with_columns((pl.col("reference_minor") - pl.col("saving_minor")).alias("price_minor"))
        .filter(pl.col("saving_minor") > 0)
        .with_columns(pl.concat_list(*cols).alias("skus"))
    )
    ids = [offer_id(campaign.id, s) for s in top["skus"].to_list()]
    return (
        top.with_columns(
            pl.lit(campaign.id).alias("campaign_id"), pl.Series("offer_id", ids, pl.String)
        )
        .select(PICK_COLUMNS)
        .sort("member_id")
    )


def plan_rows(
    campaign: BundleCampaign, picked: pl.DataFrame, values: pl.DataFrame, next_dtype: pl.DataType
) -> pl.DataFrame:
    """The campaign's rows in the shape of :func:`engine.analytics.playbook.plan`'s frames
    before timing, consent, holdout and budgets: category "", segment "bundle", the coupon's
    value its saving, no predicted purchase (valid for the playbook's ``default_days``)."""
    return picked.join(
        values.select("member_id", "abc", "lapsed", "value_minor"), on="member_id", how="inner"
    ).select(
        pl.lit(campaign.id).alias("campaign_id"),
        "member_id",
        pl.lit("").alias("category"),
        pl.lit("bundle").alias("segment"),
        "abc",
        "lapsed",
        pl.col("value_minor").alias("member_value_minor"),
        "offer_id",
        pl.lit(campaign.funder).alias("funder_id"),
        pl.col("saving_minor").alias("value_minor"),
        pl.lit(campaign.uses, pl.Int64).alias("uses"),
        pl.lit(None, next_dtype).alias("predicted_next"),
        pl.lit(campaign.personalised).alias("_personalised"),
    )


def bundle_offers(
    picked: pl.DataFrame, campaigns: Sequence[BundleCampaign]
) -> list[rules_pb2.Offer]:
    """One ``COUPON`` bundle offer per distinct offer of ``picked`` (rows of :func:`picks`),
    sorted by offer id. A vendor funder pays the whole discount; the retailer funds its own."""
    by_id = {c.id: c for c in campaigns}
    rows = picked.unique("offer_id").sort("offer_id")
    offers = []
    for cid, oid, skus, price in rows.select(
        "campaign_id", "offer_id", "skus", "price_minor"
    ).iter_rows():
        c = by_id[cid]
        offers.append(
            rules_pb2.Offer(
                id=oid,
                name=f"Your bundle: {' + '.join(skus)}",
                description=f"{' + '.join(skus)} together for {price} (personalised bundle)",
                activation=rules_pb2.Offer.COUPON,
                scope=rules_pb2.ProductSet(skus=skus),
                stacking=rules_pb2.Stacking(priority=c.priority),
                funding=rules_pb2.Funding(
                    funder_id=c.funder, funded_share_bps=0 if c.funder == "retailer" else 10000
                ),
                limits=rules_pb2.Limits(per_transaction=1),
                bundle_price=rules_pb2.BundlePrice(
                    components=[
                        rules_pb2.BundleComponent(scope=rules_pb2.ProductSet(skus=[s]), qty=1)
                        for s in skus
                    ],
                    price_minor=price,
                ),
            )
        )
    return offers


def with_offers(rules: rules_pb2.RuleSet, offers: Sequence[rules_pb2.Offer]) -> rules_pb2.RuleSet:
    """A copy of ``rules`` with ``offers``: an offer of the same id is replaced where it
    stands, the others are appended in order (the draft to publish)."""
    draft = rules_pb2.RuleSet()
    draft.CopyFrom(rules)
    new = {o.id: o for o in offers}
    for existing in draft.offers:
        if existing.id in new:
            existing.CopyFrom(new.pop(existing.id))
    draft.offers.extend(o for o in offers if o.id in new)
    return draft


def draft_rules(
    rules: rules_pb2.RuleSet,
    history: pl.DataFrame | pl.LazyFrame,
    campaigns: Sequence[BundleCampaign],
    as_of: datetime,
) -> rules_pb2.RuleSet:
    """``rules`` with the bundle offers of every member's pick as of ``as_of``: publish it
    before (or with) the run that issues the coupons, as of the same day."""
    picked = [picks(history, c, as_of) for c in campaigns]
    if not picked:
        return with_offers(rules, [])
    return with_offers(rules, bundle_offers(pl.concat(picked), campaigns))
