"""Playbooks: which members get which personalised coupon, when, paid by whom (docs/design.md §7).

A playbook (YAML or JSON) maps targeting segments to offer templates::

    # targeting settings (engine.analytics.targeting.TargetingConfig)
    store_brand_vendors: [watsons]
    lapsed_days: 60
    holdout_bps: 1000                  # 10% of each campaign's members form the control group
    window: {before_days: 2, after_days: 7, default_days: 14}
    budgets: {gsk: 5000000}            # face value issued per funder and run, minor units
    campaigns:
      - id: panadol-heavy
        category: pain-relief
        segments: [national-high, switcher-high]   # behaviour-usage; omitted = all nine
        abc: [A, B]                     # optional value classes
        lapsed: false                   # optional: true = lapsed only, false = active only
        personalised: true              # needs automated-decisions consent (default true)
        funder: gsk
        value_bps: 300                  # target value = 3% of the member's monthly spend
        uses: 1
        offers:                         # denominations, each an offer of the rule set
          - {offer_id: panadol-300, value_minor: 300}
          - {offer_id: panadol-800, value_minor: 800}

Each member gets the largest denomination not above its target value (the smallest if none
is), so offer value is proportional to member value in steps. The coupon is valid from
``before_days`` before the member's predicted next purchase in the category until
``after_days`` after it (from as-of for ``default_days`` when no cycle is known).
Every member needs marketing consent; personalised campaigns also automated-decisions consent.
The holdout is a stable hash of (campaign, member), so a member stays in the control group of
a campaign across runs. Budgets go to the most valuable members first.

A campaign's ``spend_gate: {weeks: 8, min_weekly_minor: 5000}`` (or the playbook's, for every
campaign without one) keeps only members whose average weekly net spend over the last 8 weeks
is above 50.00 (:mod:`engine.analytics.spend_gate`). ``bundles`` campaigns give each member a
bundle-price coupon for the pair or trio they buy together most (:mod:`engine.analytics.bundles`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from engine.analytics import bundles as bd
from engine.analytics.playbook_errors import PlaybookError
from engine.analytics.spend_gate import SpendGate, members_above, parse_gate
from engine.analytics.targeting import ABC_CLASSES, SEGMENTS, TargetingConfig


@dataclass(frozen=True)
class Denomination:
    offer_id: str
    value_minor: int


@dataclass(frozen=True)
class Campaign:
    id: str
    category: str
    offers: tuple[Denomination, ...]  # ascending value
    funder: str = "retailer"
    segments: tuple[str, ...] = SEGMENTS
    abc: tuple[str, ...] = ABC_CLASSES
    lapsed: bool | None = None
    personalised: bool = True
    value_bps: int = 200
    uses: int = 1
    spend_gate: SpendGate | None = None  # None = the playbook's


@dataclass(frozen=True)
class Playbook:
    campaigns: tuple[Campaign, ...]
    targeting: TargetingConfig = TargetingConfig()
    holdout_bps: int = 0
    before_days: int = 2
    after_days: int = 7
    default_days: int = 14
    budgets: Mapping[str, int] = field(default_factory=dict)
    spend_gate: SpendGate | None = None  # every campaign's without its own
    bundles: tuple[bd.BundleCampaign, ...] = ()


def parse_playbook(data: Mapping[str, Any]) -> Playbook:
    """A playbook from its dict form; raises :class:`PlaybookError` naming the bad field."""

    def need(obj: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in obj or obj[key] in (None, "", []):
            raise PlaybookError(f"{where}.{key}: is required")
        return obj[key]

    campaigns = []
    seen: set[str] = set()
    for i, c in enumerate(data.get("campaigns") or ()):
        where = f"campaigns[{i}]"
        cid = str(need(c, "id", where))
        if cid in seen:
            raise PlaybookError(f"{where}.id: duplicate id {cid!r}")
        seen.add(cid)
        offers = []
        for j, o in enumerate(need(c, "offers", where)):
            value = int(need(o, "value_minor", f"{where}.offers[{j}]"))
            if value <= 0:
                raise PlaybookError(f"{where}.offers[{j}].value_minor: must be positive")
            offers.append(Denomination(str(need(o, "offer_id", f"{where}.offers[{j}]")), value))
        segments = tuple(c.get("segments") or SEGMENTS)
        if bad := [s for s in segments if s not in SEGMENTS]:
            raise PlaybookError(
                f"{where}.segments: unknown segment {bad[0]!r} (one of {', '.join(SEGMENTS)})"
            )
        abc = tuple(c.get("abc") or ABC_CLASSES)
        if bad := [a for a in abc if a not in ABC_CLASSES]:
            raise PlaybookError(f"{where}.abc: unknown class {bad[0]!r}")
        uses = int(c.get("uses", 1))
        if uses < 1:
            raise PlaybookError(f"{where}.uses: must be at least 1")
        campaigns.append(
            Campaign(
                cid,
                str(need(c, "category", where)),
                tuple(sorted(offers, key=lambda d: d.value_minor)),
                str(c.get("funder", "retailer")),
                segments,
                abc,
                c.get("lapsed"),
                bool(c.get("personalised", True)),
                int(c.get("value_bps", 200)),
                uses,
                parse_gate(c.get("spend_gate"), where),
            )
        )
    bundles = bd.parse_bundles(data.get("bundles"))
    for i, b in enumerate(bundles):
        if b.id in seen:
            raise PlaybookError(f"bundles[{i}].id: duplicate id {b.id!r} (a campaign has it)")
    if not campaigns and not bundles:
        raise PlaybookError("campaigns: at least one campaign is required")
    holdout = int(data.get("holdout_bps", 0))
    if not 0 <= holdout < 10000:
        raise PlaybookError("holdout_bps: must be 0..9999")
    window = data.get("window") or {}
    targeting = TargetingConfig(
        store_brand_vendors=tuple(data.get("store_brand_vendors", ("watsons",))),
        usage_thresholds={
            k: (float(v[0]), float(v[1])) for k, v in (data.get("usage_thresholds") or {}).items()
        },
        lapsed_days=int(data.get("lapsed_days", 60)),
        min_purchases=int(data.get("min_purchases", 3)),
    )
    return Playbook(
        tuple(campaigns),
        targeting,
        holdout,
        int(window.get("before_days", 2)),
        int(window.get("after_days", 7)),
        int(window.get("default_days", 14)),
        {str(k): int(v) for k, v in (data.get("budgets") or {}).items()},
        parse_gate(data.get("spend_gate"), ""),
        bundles,
    )


def load_playbook(path: str | Path) -> Playbook:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PlaybookError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise PlaybookError(f"{path}: expected a mapping")
    return parse_playbook(data)


def in_holdout(campaign_id: str, member_id: str, holdout_bps: int) -> bool:
    """Stable across runs and versions: the first 8 bytes of a SHA-256, modulo 10000."""
    digest = hashlib.sha256(f"{campaign_id}\x00{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10000 < holdout_bps


PLAN_COLUMNS = (
    "campaign_id",
    "member_id",
    "category",
    "segment",
    "abc",
    "lapsed",
    "member_value_minor",
    "offer_id",
    "funder_id",
    "value_minor",
    "uses",
    "predicted_next",
    "valid_from",
    "valid_until",
    "group",
    "status",
)


def plan(
    playbook: Playbook,
    profiles: pl.DataFrame,
    values: pl.DataFrame,
    consent: pl.DataFrame,
    as_of: datetime,
    *,
    history: pl.DataFrame | pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """Who gets what: one row per (campaign, member) the campaign's selectors match.

    ``history`` (the targeting history) is needed by spend gates and bundle campaigns: a
    gated campaign keeps only the members above its gate, and each bundle campaign adds a
    row per member with a bundle (:func:`engine.analytics.bundles.picks`).

    ``consent`` has ``member_id, marketing, automated_decisions`` (members absent from it are
    not enrolled). ``status`` is ``issue``, ``holdout``, ``no_consent``, ``not_enrolled`` or
    ``over_budget``; ``group`` is ``treatment`` or ``holdout``.
    """
    as_of = as_of.astimezone(UTC)
    above = _gates(playbook, history, as_of)
    frames = []
    prof = profiles.join(
        values.select("member_id", "abc", "lapsed", "value_minor"), on="member_id", how="inner"
    )
    for c in playbook.campaigns:
        sel = prof.filter(
            (pl.col("category") == c.category)
            & pl.col("segment").is_in(list(c.segments))
            & pl.col("abc").is_in(list(c.abc))
        )
        if c.lapsed is not None:
            sel = sel.filter(pl.col("lapsed") == c.lapsed)
        if (gate := c.spend_gate or playbook.spend_gate) is not None:
            sel = sel.filter(pl.col("member_id").is_in(above[gate]))
        target = pl.col("value_minor").clip(lower_bound=0) * c.value_bps // 10000
        denoms = pl.DataFrame(
            {
                "offer_id": [d.offer_id for d in c.offers],
                "value": [d.value_minor for d in c.offers],
            },
            schema={"offer_id": pl.String, "value": pl.Int64},
        )
        sel = sel.with_columns(target.clip(lower_bound=c.offers[0].value_minor).alias("value"))
        sel = sel.sort("value").join_asof(denoms, on="value", strategy="backward")
        frames.append(
            sel.select(
                pl.lit(c.id).alias("campaign_id"),
                "member_id",
                "category",
                "segment",
                "abc",
                "lapsed",
                pl.col("value_minor").alias("member_value_minor"),
                "offer_id",
                pl.lit(c.funder).alias("funder_id"),
                pl.col("offer_id")
                .replace_strict(denoms["offer_id"], denoms["value"], return_dtype=pl.Int64)
                .alias("value_minor"),
                pl.lit(c.uses, pl.Int64).alias("uses"),
                pl.col("next_purchase").alias("predicted_next"),
                pl.lit(c.personalised).alias("_personalised"),
            )
        )
    for b in playbook.bundles:
        assert history is not None  # _gates checked it
        next_dtype = profiles.schema.get("next_purchase", pl.Date())
        rows = bd.plan_rows(b, bd.picks(history, b, as_of), values, next_dtype)
        if (gate := b.spend_gate or playbook.spend_gate) is not None:
            rows = rows.filter(pl.col("member_id").is_in(above[gate]))
        frames.append(rows)
    df = pl.concat(frames) if frames else pl.DataFrame()
    if df.is_empty():
        return pl.DataFrame(schema={c: pl.String for c in PLAN_COLUMNS})
    start_of_day = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    predicted = pl.col("predicted_next").cast(pl.Datetime("us", "UTC"))
    from_ = pl.max_horizontal(
        predicted - timedelta(days=playbook.before_days), pl.lit(as_of)
    ).fill_null(pl.lit(as_of))
    # max_horizontal skips nulls: a member with no known cycle takes default_days explicitly
    until = (
        pl.when(predicted.is_null())
        .then(pl.lit(start_of_day + timedelta(days=playbook.default_days)))
        .otherwise(
            pl.max_horizontal(
                predicted + timedelta(days=playbook.after_days + 1),
                pl.lit(start_of_day + timedelta(days=playbook.before_days + 1)),
            )
        )
    )
    df = df.with_columns(from_.alias("valid_from"), until.alias("valid_until"))
    pairs = df.select("campaign_id", "member_id")
    holdout = (
        [in_holdout(c, m, playbook.holdout_bps) for c, m in pairs.iter_rows()]
        if playbook.holdout_bps
        else [False] * len(df)
    )
    df = df.with_columns(pl.Series("_holdout", holdout, pl.Boolean)).join(
        consent.select("member_id", "marketing", "automated_decisions"), on="member_id", how="left"
    )
    allowed = pl.col("marketing") & (pl.col("automated_decisions") | ~pl.col("_personalised"))
    status = (
        pl.when(pl.col("marketing").is_null())
        .then(pl.lit("not_enrolled"))
        .when(~allowed)
        .then(pl.lit("no_consent"))
        .when(pl.col("_holdout"))
        .then(pl.lit("holdout"))
        .otherwise(pl.lit("issue"))
    )
    df = df.with_columns(
        status.alias("status"),
        pl.when(pl.col("_holdout"))
        .then(pl.lit("holdout"))
        .otherwise(pl.lit("treatment"))
        .alias("group"),
    )
    # budgets: most valuable members first, then member id, across the funder's campaigns
    df = df.sort(
        ["member_value_minor", "member_id", "campaign_id"], descending=[True, False, False]
    )
    face = (
        pl.when(pl.col("status") == "issue")
        .then(pl.col("value_minor") * pl.col("uses"))
        .otherwise(0)
    )
    df = df.with_columns(face.cum_sum().over("funder_id").alias("_spent"))
    budgets = pl.DataFrame(
        {"funder_id": list(playbook.budgets), "_budget": list(playbook.budgets.values())},
        schema={"funder_id": pl.String, "_budget": pl.Int64},
    )
    df = df.join(budgets, on="funder_id", how="left").with_columns(
        pl.when(
            (pl.col("status") == "issue")
            & pl.col("_budget").is_not_null()
            & (pl.col("_spent") > pl.col("_budget"))
        )
        .then(pl.lit("over_budget"))
        .otherwise(pl.col("status"))
        .alias("status")
    )
    return df.select(PLAN_COLUMNS).sort("campaign_id", "member_id")


def _gates(
    playbook: Playbook, history: pl.DataFrame | pl.LazyFrame | None, as_of: datetime
) -> dict[SpendGate, list[str]]:
    """The members above each spend gate the playbook uses."""
    gates = {playbook.spend_gate} | {c.spend_gate for c in playbook.campaigns}
    gates |= {b.spend_gate for b in playbook.bundles}
    used = {g for g in gates if g is not None}
    if (used or playbook.bundles) and history is None:
        raise ValueError("plan() needs the history for spend gates and bundle campaigns")
    return {g: members_above(history, g, as_of) for g in used if history is not None}


def summary(planned: pl.DataFrame) -> pl.DataFrame:
    """Coupons and face value per campaign, segment, offer and funder; holdout and skipped."""
    st = pl.col("status")
    return (
        planned.group_by("campaign_id", "segment", "offer_id", "funder_id")
        .agg(
            (st == "issue").sum().alias("coupons"),
            pl.when(st == "issue")
            .then(pl.col("value_minor") * pl.col("uses"))
            .otherwise(0)
            .sum()
            .alias("value_minor"),
            (st == "holdout").sum().alias("holdout"),
            (st == "no_consent").sum().alias("no_consent"),
            (st == "not_enrolled").sum().alias("not_enrolled"),
            (st == "over_budget").sum().alias("over_budget"),
        )
        .sort("campaign_id", "segment", "offer_id")
    )
