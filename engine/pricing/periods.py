"""Member-limit periods: the bucket a time falls in, one rule for checkout and simulation.

``rules.proto`` Limits.Period: EVER, DAY, WEEK (ISO), MONTH, read in the rule set's time zone.
The stores key a member's uses of an offer by it (``server.store.policy.Policy.period_key``),
and simulation replays them the same way (``engine.analytics.limits``).
"""

from __future__ import annotations

from datetime import datetime

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


__all__ = ["PERIOD_DAY", "PERIOD_EVER", "PERIOD_MONTH", "PERIOD_WEEK", "period_key"]
