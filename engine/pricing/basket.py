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
    delivery: bool = False  # the delivery charge (Line.delivery): in no product set


@dataclass(frozen=True, slots=True)
class LocalTime:
    epoch_s: int  # UTC epoch seconds, sub-second part dropped
    weekday: int  # ISO 1-7 in the rule set's time zone
    hour: int  # 0-23
    month: int  # 1-12
    day: int  # local day number: days since 1970-01-01 in the rule set's time zone
    monthday: int  # 1-31


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUARTER_S = 900
# (time zone, quarter hour since the epoch) -> (weekday, hour, month, day, monthday): bounded,
# cleared when full
_QUARTERS: dict[tuple[str, int], tuple[int, int, int, int, int]] = {}
_UNIX_ORDINAL = _EPOCH.toordinal()
_QUARTERS_MAX = 4096


def local_time(at: datetime, timezone: str) -> LocalTime:
    if at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    return local_time_at(int((at - _EPOCH).total_seconds() // 1), timezone)


def local_time_at(epoch_s: int, timezone: str) -> LocalTime:
    """The local weekday, hour, month and day of UTC second ``epoch_s`` in ``timezone``.

    Every call of a checkout asks this, so the answer is kept per quarter hour: a quarter hour
    of UTC whose offset is a whole number of quarter hours and does not change inside it lies
    in one local hour, so its weekday, hour, month and day are those of its first second.
    """
    key = (timezone, epoch_s // QUARTER_S)
    fields = _QUARTERS.get(key)
    if fields is None:
        tz = zone(timezone)
        start = datetime.fromtimestamp(key[1] * QUARTER_S, tz)
        end = datetime.fromtimestamp(key[1] * QUARTER_S + QUARTER_S - 1, tz)
        offset = start.utcoffset()
        if offset is None or offset != end.utcoffset() or offset.total_seconds() % QUARTER_S:
            local = datetime.fromtimestamp(epoch_s, tz)  # an odd offset: this second alone
            return LocalTime(epoch_s, *_fields(local))
        if len(_QUARTERS) >= _QUARTERS_MAX:
            _QUARTERS.clear()
        fields = _QUARTERS[key] = _fields(start)
    return LocalTime(epoch_s, *fields)


def _fields(local: datetime) -> tuple[int, int, int, int, int]:
    return (
        local.isoweekday(),
        local.hour,
        local.month,
        local.toordinal() - _UNIX_ORDINAL,
        local.day,
    )


def resolve_lines(basket: Basket, catalogue: Catalogue) -> tuple[ResolvedLine, ...]:
    out = []
    for line in basket.lines:
        # the catalogue is not read for the delivery charge, nor are the lane's attributes
        row = None if line.delivery else catalogue.get(line.sku)
        given = ("", "", "") if line.delivery else (line.category, line.brand, line.vendor)
        category, brand, vendor = given
        if row is not None:
            category, brand, vendor = (
                category or row.category,
                brand or row.brand,
                vendor or row.vendor,
            )
        out.append(
            ResolvedLine(
                line.line_id,
                line.sku,
                line.quantity,
                line.unit_price_minor,
                category,
                brand,
                vendor,
                row is not None and row.no_discount,
                row is not None and row.no_earn,
                line.delivery,
            )
        )
    return tuple(out)
