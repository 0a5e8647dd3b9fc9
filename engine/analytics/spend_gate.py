"""The weekly-spend gate of playbooks (docs/design.md §7): only members whose average weekly
net spend over the last ``weeks`` weeks is above a threshold get a campaign's coupon.

Pure polars over the history schema (:mod:`engine.analytics.history`). The window is the
``7 × weeks`` days before as-of (``[as_of − 7·weeks days, as_of)``); net spend is the lines'
``net_minor`` of commits less those of cancels and returns made in the window (reversals count
when they happen, as in :func:`engine.analytics.targeting.member_values`); the average is that
sum over ``weeks``, weeks without a purchase included. "Above" is strict and computed in
integers: ``spend_minor > min_weekly_minor × weeks``, so no rounding decides a member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from engine.analytics.history import conform, sign
from engine.analytics.playbook_errors import PlaybookError

MAX_WEEKS = 520
MAX_MINOR = 10**12


@dataclass(frozen=True)
class SpendGate:
    """Average weekly net spend over the last ``weeks`` weeks above ``min_weekly_minor``."""

    weeks: int  # 1..MAX_WEEKS
    min_weekly_minor: int  # minor units, 0..10^12


def weekly_spend(history: pl.DataFrame | pl.LazyFrame, weeks: int, as_of: datetime) -> pl.DataFrame:
    """``member_id, spend_minor (Int64, net over the window), weekly_minor (Int64, spend_minor
    // weeks, floored)``: one row per member with a line in the window, sorted by member."""
    start = as_of - timedelta(days=7 * weeks)
    return (
        conform(history)
        .filter(
            pl.col("member_id").is_not_null()
            & (pl.col("member_id") != "")
            & (pl.col("at") >= start)
            & (pl.col("at") < as_of)
        )
        .group_by("member_id")
        .agg((pl.col("net_minor") * sign()).sum().alias("spend_minor"))
        .with_columns((pl.col("spend_minor") // weeks).alias("weekly_minor"))
        .sort("member_id")
        .collect()
    )


def members_above(
    history: pl.DataFrame | pl.LazyFrame, gate: SpendGate, as_of: datetime
) -> list[str]:
    """The members whose average weekly net spend is above the gate's threshold, sorted."""
    spend = weekly_spend(history, gate.weeks, as_of)
    above = spend.filter(pl.col("spend_minor") > gate.min_weekly_minor * gate.weeks)
    return [str(m) for m in above["member_id"].to_list()]


def parse_gate(obj: object, where: str) -> SpendGate | None:
    """A ``spend_gate: {weeks, min_weekly_minor}`` mapping (None when absent); raises
    :class:`PlaybookError` naming ``<where>.spend_gate.<field>``."""
    if obj is None:
        return None
    path = f"{where}.spend_gate" if where else "spend_gate"
    if not isinstance(obj, dict):
        raise PlaybookError(f"{path}: expected a mapping with weeks and min_weekly_minor")
    if unknown := sorted(set(obj) - {"weeks", "min_weekly_minor"}):
        raise PlaybookError(f"{path}.{unknown[0]}: unknown field")
    weeks = whole_number(obj.get("weeks"), f"{path}.weeks")
    if not 1 <= weeks <= MAX_WEEKS:
        raise PlaybookError(f"{path}.weeks: must be 1..{MAX_WEEKS} (got {weeks})")
    least = whole_number(obj.get("min_weekly_minor"), f"{path}.min_weekly_minor")
    if not 0 <= least <= MAX_MINOR:
        raise PlaybookError(f"{path}.min_weekly_minor: must be 0..10^12 (got {least})")
    return SpendGate(weeks, least)


def whole_number(value: object, path: str) -> int:
    """``value`` as a whole number; PlaybookError on ``path`` when it is missing or not one."""
    if value is None or value == "":
        raise PlaybookError(f"{path}: is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlaybookError(f"{path}: must be a whole number (got {value!r})")
    return value
