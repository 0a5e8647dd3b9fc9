"""Which clock prices a checkout call: the server's, within a bound of the lane's.

A lane's ``occurred_at`` is what its clock said. Online (Evaluate, Commit) the server's clock is
the pricing time, for offer windows, wallet and code validity, limit periods and points alike;
the lane's time is only checked (within ``max_skew`` of the server's, else INVALID_ARGUMENT on
the field) and recorded. A lane that sold while it could not reach the server syncs through
SyncOffline (the ``offline-sync`` role): there the lane's time is the pricing time, required,
no further ahead than ``max_skew`` and no older than ``offline_max_age``.

The bounds are checked when a commit is priced, not before: a retry of a commit recorded
earlier is answered from the store however late it comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.errors import InvalidInput


def _span(d: timedelta) -> str:
    s = int(d.total_seconds())
    if s and s % 3600 == 0:
        return f"{s // 3600} h"
    if s and s % 60 == 0:
        return f"{s // 60} min"
    return f"{s} s"


@dataclass(frozen=True, slots=True)
class PricingClock:
    max_skew: timedelta = timedelta(minutes=5)
    offline_max_age: timedelta = timedelta(hours=72)

    @classmethod
    def of(cls, max_skew_s: float, offline_max_age_s: float) -> PricingClock:
        return cls(timedelta(seconds=max_skew_s), timedelta(seconds=offline_max_age_s))

    def in_skew_s(self, lane_s: int, now: datetime) -> bool:
        """Whether the lane's time, whole UTC second ``lane_s`` (nanoseconds dropped), is
        surely within the skew of ``now``: the byte path's check. A request it does not pass
        goes the checked way, which decides to the nanosecond and names the field."""
        return abs(lane_s - now.timestamp()) <= self.max_skew.total_seconds() - 1

    def online(self, lane_at: datetime | None, now: datetime, field: str) -> datetime:
        """The pricing time of an online call (``now``); refuses a lane clock off by more than
        the skew."""
        if lane_at is not None and abs(lane_at - now) > self.max_skew:
            ahead = lane_at > now
            raise InvalidInput.at(
                field,
                f"{lane_at.isoformat()} is {'ahead of' if ahead else 'behind'} the server's "
                f"clock ({now.isoformat()}) by more than {_span(self.max_skew)}; "
                + (
                    "check the lane's clock"
                    if ahead
                    else "a lane that was offline syncs through SyncOffline"
                ),
            )
        return now

    def offline(self, lane_at: datetime | None, now: datetime, field: str) -> datetime:
        """The pricing time of an offline sync: the lane's, within ``[now - offline_max_age,
        now + max_skew]``."""
        if lane_at is None:
            raise InvalidInput.at(field, "is required: the time the lane sold the basket")
        if lane_at - now > self.max_skew:
            raise InvalidInput.at(
                field,
                f"{lane_at.isoformat()} is ahead of the server's clock ({now.isoformat()}) by "
                f"more than {_span(self.max_skew)}",
            )
        if now - lane_at > self.offline_max_age:
            raise InvalidInput.at(
                field,
                f"{lane_at.isoformat()} is older than {_span(self.offline_max_age)}, the "
                "longest a lane may stay offline",
            )
        return lane_at


__all__ = ["PricingClock"]
