"""Input parsing shared by the kernel wrapper and the reference evaluator.

Resolves each line's category/brand/vendor and flags against the catalogue and reads the
basket time in the rule set's time zone (docs/pricing.md §1). Nothing here prices anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from engine.pricing.catalogue import Catalogue
from engine.pricing.types import Basket


@dataclass(frozen=True, slots=True)
class ResolvedLine:
    line_id: str
    sku: str
    quantity: int
    unit_price_minor: int
    category: str
    brand: str
    vendor: str
    no_discount: bool
    no_earn: bool


@dataclass(frozen=True, slots=True)
class LocalTime:
    epoch_s: int  # UTC epoch seconds, sub-second part dropped
    weekday: int  # ISO 1-7 in the rule set's time zone
    hour: int  # 0-23
    month: int  # 1-12


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


def local_time(at: datetime, timezone: str) -> LocalTime:
    if at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    local = at.astimezone(zone(timezone))
    epoch = int((at - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() // 1)
    return LocalTime(epoch, local.isoweekday(), local.hour, local.month)


def resolve_lines(basket: Basket, catalogue: Catalogue) -> tuple[ResolvedLine, ...]:
    out = []
    for line in basket.lines:
        row = catalogue.get(line.sku)
        if row is None:
            out.append(
                ResolvedLine(
                    line.line_id,
                    line.sku,
                    line.quantity,
                    line.unit_price_minor,
                    line.category,
                    line.brand,
                    line.vendor,
                    False,
                    False,
                )
            )
        else:
            out.append(
                ResolvedLine(
                    line.line_id,
                    line.sku,
                    line.quantity,
                    line.unit_price_minor,
                    line.category or row.category,
                    line.brand or row.brand,
                    line.vendor or row.vendor,
                    row.no_discount,
                    row.no_earn,
                )
            )
    return tuple(out)
