"""Member-limit periods: the bucket a time falls in, one rule for checkout and simulation.

``rules.proto`` Limits.Period: EVER, DAY, WEEK (ISO), MONTH, read in the rule set's time zone.
The stores key a member's uses of an offer by it (``server.store.policy.Policy.period_key``),
and simulation replays them the same way (``engine.analytics.limits``).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt

PERIOD_EVER, PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH = 0, 1, 2, 3


def period_key(period: int, local: datetime) -> str:
    """The member-limit bucket of ``local``, a time already in the rule set's zone."""
    if period == PERIOD_DAY:
        return f"D{local.date().isoformat()}"
    if period == PERIOD_WEEK:
        y, w, _ = local.isocalendar()
        return f"W{y}-{w:02d}"
    if period == PERIOD_MONTH:
        return f"M{local.year}-{local.month:02d}"
    return "E"


# days from 0001-01-01 to 1970-01-01: day numbers from the first day of the calendar
_EPOCH_DAY = 719_162


def period_buckets(days: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The member-limit buckets of local days (days since 1970-01-01 in the rule set's zone,
    the kernel context's ``C_LOCAL_DAY``) as numbers, ``int64[n, 4]``, one column per period
    (``PERIOD_*``): two days share a bucket number exactly when :func:`period_key` gives them
    the same key (EVER: 0; DAY: the day's number; WEEK: the number of its ISO week's Monday;
    MONTH: ``12 * year + month - 1``)."""
    days = np.asarray(days, dtype=np.int64)
    out = np.zeros((len(days), 4), dtype=np.int64)
    out[:, PERIOD_DAY] = days + _EPOCH_DAY
    out[:, PERIOD_WEEK] = days - (days + 3) % 7 + _EPOCH_DAY  # 1970-01-01 was a Thursday
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    out[:, PERIOD_MONTH] = months + 1970 * 12
    return out


__all__ = [
    "PERIOD_DAY",
    "PERIOD_EVER",
    "PERIOD_MONTH",
    "PERIOD_WEEK",
    "period_buckets",
    "period_key",
]
