"""Recurring offer schedules: the RRULE subset of ``Conditions.recurrence``.

A recurrence picks local days (in the rule set's time zone) out of the calendar; the offer's
other time conditions (``starts_at``/``ends_at``, ``weekdays``, ``from_hour``/``to_hour``) still
apply on those days. The subset of RFC 5545 (rules.proto documents it for rule authors):

- ``FREQ=DAILY|WEEKLY|MONTHLY`` (required) and ``INTERVAL=N`` (default 1): day ``d`` is in
  period ``n`` = days since DTSTART, weeks since the Monday of DTSTART's week, or months since
  DTSTART's month; it occurs when ``d >= DTSTART`` and ``n % N == 0``;
- ``BYDAY=MO,...`` (DAILY, WEEKLY): ISO weekdays; WEEKLY without it (and without the offer's
  ``weekdays``) takes DTSTART's weekday;
- ``BYMONTHDAY=1..31|-31..-1`` (MONTHLY): days of the month, ``-1`` the last; MONTHLY without
  it takes DTSTART's day;
- ``DTSTART=YYYYMMDD``: the anchor, a local date; without it, the local date of ``starts_at``.

This module parses and validates the text, compiles it into the offer table's ``O_REC_*``
columns (which ``engine.pricing.kernel.checks`` reads with integer arithmetic), states the
whole time-window check (docs/pricing.md §4 check 2) in plain Python for the reference
evaluator, and finds the next start an explanation reports. Pure computation.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from functools import lru_cache

import numpy as np

from engine.errors import Violation
from engine.pricing import layout as L
from engine.pricing.basket import QUARTER_S, LocalTime, local_time_at, zone
from loyalty.v1 import rules_pb2

MAX_RECURRENCE_CHARS = 256
MAX_INTERVAL = 999
# How far ahead the next start is looked for, in local days (about ten years).
NEXT_START_HORIZON_DAYS = 3_653
UNIX_ORDINAL = date(1970, 1, 1).toordinal()  # local day number 0
WEEKDAY_CODES = {"MO": 1, "TU": 2, "WE": 3, "TH": 4, "FR": 5, "SA": 6, "SU": 7}
SUPPORTED = (
    "supported: FREQ=DAILY|WEEKLY|MONTHLY; INTERVAL=1..999; BYDAY=MO,TU,WE,TH,FR,SA,SU "
    "(DAILY, WEEKLY); BYMONTHDAY=1..31 or -31..-1 (MONTHLY); DTSTART=YYYYMMDD "
    "(hours come from from_hour/to_hour, the end from ends_at)"
)


class Freq(IntEnum):
    """``O_REC_FREQ`` values."""

    NONE = 0
    DAILY = 1
    WEEKLY = 2
    MONTHLY = 3


class RecurrenceError(ValueError):
    """The text is outside the supported subset; ``problems`` says why, one entry each (the
    message joins them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Recurrence:
    freq: Freq
    interval: int
    anchor: int  # local day number of DTSTART (days since 1970-01-01)
    weekdays: frozenset[int]  # ISO weekdays the rule allows; empty = any
    monthdays: frozenset[int]  # 1..31 and -31..-1; empty = any

    def occurs(self, day: int) -> bool:
        """Whether local day number ``day`` is a day of the schedule."""
        if day < self.anchor:
            return False
        d, a = day_date(day), day_date(self.anchor)
        if self.freq == Freq.DAILY:
            n = (d - a).days
        elif self.freq == Freq.WEEKLY:
            n = (d - (a - timedelta(days=a.weekday()))).days // 7
        else:
            n = (d.year - a.year) * 12 + d.month - a.month
        if n % self.interval:
            return False
        if self.weekdays and d.isoweekday() not in self.weekdays:
            return False
        if not self.monthdays:
            return True
        last = calendar.monthrange(d.year, d.month)[1]
        return d.day in self.monthdays or d.day - last - 1 in self.monthdays

    def monthday_mask(self) -> int:
        """``O_REC_MONTHDAYS``: bit d for day d, bit 31 + k for day -k."""
        return sum(1 << (d if d > 0 else 31 - d) for d in self.monthdays)


def day_number(d: date) -> int:
    return d.toordinal() - UNIX_ORDINAL


def day_date(day: int) -> date:
    return date.fromordinal(day + UNIX_ORDINAL)


def parse(text: str, default_anchor: date | None = None) -> Recurrence:
    """The schedule ``text`` describes; ``default_anchor`` stands in for a missing DTSTART.

    Raises
    ------
    RecurrenceError
        Listing every part outside the subset.
    """
    problems: list[str] = []
    if len(text) > MAX_RECURRENCE_CHARS:
        raise RecurrenceError([f"longer than {MAX_RECURRENCE_CHARS} characters ({len(text)})"])
    parts: dict[str, str] = {}
    for part in text.split(";"):
        key, eq, value = part.strip().partition("=")
        key = key.strip().upper()
        if not part.strip():
            continue
        if not eq or not key:
            problems.append(f"{part.strip()!r} is not KEY=VALUE")
        elif key in parts:
            problems.append(f"{key} given twice")
        else:
            parts[key] = value.strip().upper()
    freq = _freq(parts.pop("FREQ", None), problems)
    interval = _interval(parts.pop("INTERVAL", "1"), problems)
    weekdays = _weekdays(parts.pop("BYDAY", None), freq, problems)
    monthdays = _monthdays(parts.pop("BYMONTHDAY", None), freq, problems)
    anchor = _anchor(parts.pop("DTSTART", None), default_anchor, problems)
    for key in parts:
        hint = " (use the offer's ends_at)" if key in ("UNTIL", "COUNT") else ""
        problems.append(f"{key} is not supported{hint}")
    if problems or freq is None or anchor is None:
        raise RecurrenceError(problems)
    if freq == Freq.MONTHLY and not monthdays:
        monthdays = frozenset({anchor.day})
    return Recurrence(freq, interval, day_number(anchor), weekdays, monthdays)


def _freq(value: str | None, problems: list[str]) -> Freq | None:
    if value is None:
        problems.append("FREQ is required")
        return None
    if value not in ("DAILY", "WEEKLY", "MONTHLY"):
        problems.append(f"FREQ={value} is not supported")
        return None
    return Freq[value]


def _interval(value: str, problems: list[str]) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_INTERVAL:
        problems.append(f"INTERVAL must be 1..{MAX_INTERVAL} (got {value!r})")
        return 1
    return int(value)


def _weekdays(value: str | None, freq: Freq | None, problems: list[str]) -> frozenset[int]:
    if value is None:
        return frozenset()
    if freq not in (Freq.DAILY, Freq.WEEKLY, None):
        problems.append(f"BYDAY is not supported with FREQ={freq.name}")
    days: set[int] = set()
    for code in value.split(","):
        day = WEEKDAY_CODES.get(code.strip())
        if day is None:
            problems.append(f"BYDAY takes MO,TU,WE,TH,FR,SA,SU without ordinals (got {code!r})")
        elif day in days:
            problems.append(f"BYDAY repeats {code.strip()}")
        else:
            days.add(day)
    return frozenset(days)


def _monthdays(value: str | None, freq: Freq | None, problems: list[str]) -> frozenset[int]:
    if value is None:
        return frozenset()
    if freq not in (Freq.MONTHLY, None):
        problems.append(f"BYMONTHDAY is not supported with FREQ={freq.name}")
    days: set[int] = set()
    for item in value.split(","):
        item = item.strip()
        n = int(item) if item.lstrip("+-").isdigit() and len(item) <= 3 else 0
        if not 1 <= abs(n) <= 31:
            problems.append(f"BYMONTHDAY takes 1..31 or -31..-1 (got {item!r})")
        elif n in days:
            problems.append(f"BYMONTHDAY repeats {n}")
        else:
            days.add(n)
    return frozenset(days)


def _anchor(value: str | None, default: date | None, problems: list[str]) -> date | None:
    if value is None:
        if default is None:
            problems.append("DTSTART=YYYYMMDD is required when starts_at is not set")
        return default
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        problems.append(f"DTSTART must be a local date YYYYMMDD (got {value!r})")
        return None


# --- the offer's conditions ------------------------------------------------------------------


def schedule(cond: rules_pb2.Conditions, timezone: str) -> Recurrence | None:
    """The offer's recurrence (None without one); the conditions are valid."""
    if not cond.recurrence:
        return None
    starts = cond.starts_at.seconds if cond.HasField("starts_at") else None
    return _schedule(cond.recurrence, starts, timezone, not cond.weekdays)


@lru_cache(maxsize=1024)
def _schedule(text: str, starts: int | None, timezone: str, no_weekdays: bool) -> Recurrence:
    default = None
    if starts is not None:
        try:
            default = datetime.fromtimestamp(starts, zone(timezone)).date()
        except (OverflowError, ValueError):  # local date outside 0001..9999: take UTC's
            default = datetime.fromtimestamp(starts, UTC).date()
    rec = parse(text, default)
    if rec.freq == Freq.WEEKLY and not rec.weekdays and no_weekdays:
        rec = replace(rec, weekdays=frozenset({day_date(rec.anchor).isoweekday()}))
    return rec


def violations(path: str, cond: rules_pb2.Conditions) -> list[Violation]:
    """Problems of ``cond.recurrence``, named ``{path}.recurrence`` (validate.py calls this)."""
    if not cond.recurrence:
        return []
    field = f"{path}.recurrence"
    try:
        rec = parse(cond.recurrence, date(1970, 1, 1) if cond.HasField("starts_at") else None)
    except RecurrenceError as exc:
        return [Violation(field, f"{exc}; {SUPPORTED}")]
    if rec.weekdays and cond.weekdays:
        return [Violation(field, "BYDAY and weekdays both set: give the weekdays once")]
    return []


def compile_into(row: np.ndarray, cond: rules_pb2.Conditions, timezone: str) -> None:
    """Write the recurrence columns of one offer-table row (and BYDAY into O_WEEKDAYS)."""
    rec = schedule(cond, timezone)
    if rec is None:
        return
    row[L.O_REC_FREQ] = rec.freq
    row[L.O_REC_INTERVAL] = rec.interval
    row[L.O_REC_ANCHOR] = rec.anchor
    row[L.O_REC_MONTHDAYS] = rec.monthday_mask()
    for day in rec.weekdays:
        row[L.O_WEEKDAYS] |= 1 << day


def time_conditions_hold(
    cond: rules_pb2.Conditions, rec: Recurrence | None, when: LocalTime
) -> bool:
    """docs/pricing.md §4 check 2: ``starts_at ≤ t < ends_at`` (whole seconds), weekday, local
    hour window, and the recurrence on the local day."""
    if cond.HasField("starts_at") and when.epoch_s < cond.starts_at.seconds:
        return False
    if cond.HasField("ends_at") and when.epoch_s >= cond.ends_at.seconds:
        return False
    if cond.weekdays and when.weekday not in cond.weekdays:
        return False
    if rec is not None and not rec.occurs(when.day):
        return False
    start, end = cond.from_hour, cond.to_hour
    if start == 0 and end == 0:
        return True
    if start > end:  # crosses midnight, e.g. 22 → 2
        return when.hour >= start or when.hour < end
    return start <= when.hour < end


def next_start(cond: rules_pb2.Conditions, timezone: str, epoch_s: int) -> datetime | None:
    """The first whole UTC second from ``epoch_s`` on at which the time conditions of an offer
    with a recurrence hold (``epoch_s`` itself when they hold then).

    None for an offer without a recurrence, and when there is no such instant before
    ``ends_at`` within :data:`NEXT_START_HORIZON_DAYS`. The conditions only change at a UTC
    quarter hour (local hours and days change there in every zone whose offset is whole
    quarter hours) or at ``starts_at``, so those are the instants tried, on the days the
    recurrence and the weekdays allow.
    """
    rec = schedule(cond, timezone)
    if rec is None:
        return None
    try:
        return _search(cond, rec, timezone, epoch_s)
    except (OverflowError, ValueError):  # the search reached the ends of the calendar
        return None


def _search(
    cond: rules_pb2.Conditions, rec: Recurrence, timezone: str, epoch_s: int
) -> datetime | None:
    t = max(epoch_s, cond.starts_at.seconds) if cond.HasField("starts_at") else epoch_s
    end = cond.ends_at.seconds if cond.HasField("ends_at") else L.OPEN_END
    tz = zone(timezone)
    first = local_time_at(t, timezone).day
    last = min(first + NEXT_START_HORIZON_DAYS, day_number(date.max))
    if end != L.OPEN_END:
        last = min(last, local_time_at(end, timezone).day + 1)
    for day in range(first, last):
        d = day_date(day)
        if not rec.occurs(day) or cond.weekdays and d.isoweekday() not in cond.weekdays:
            continue
        midnight = datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)
        lo = max(t, int(midnight.timestamp()))
        hi = int((midnight + timedelta(days=1, hours=3)).timestamp())  # past any DST shift
        while lo < min(hi, end):
            when = local_time_at(lo, timezone)
            if when.day > day:
                break
            if time_conditions_hold(cond, rec, when):
                return datetime.fromtimestamp(lo, UTC)
            lo = (lo // QUARTER_S + 1) * QUARTER_S
    return None
