"""An offer's unit counters as a store reads them (rules in :mod:`server.store.units`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Reservation:
    """Units held for a member until ``until_us`` (exclusive); ``reservation_id`` is
    ``"<issue_id>:<member_id>"``, the id of the wallet coupon issued with it."""

    reservation_id: str
    member_id: str
    units: int  # still held (reserved less bought since, 0 once released)
    until_us: int

    def live(self, now_us: int) -> bool:
        return self.units > 0 and now_us < self.until_us


@dataclass(frozen=True, slots=True)
class UnitUsage:
    """An offer's unit counters as read."""

    sold: int = 0
    by_store: Mapping[str, int] = field(default_factory=dict)
    reservations: tuple[Reservation, ...] = ()

    def held(self, now_us: int, member_id: str | None = None) -> tuple[int, int]:
        """``(units held for others, units held for member_id)``, unexpired at ``now_us``."""
        others = mine = 0
        for r in self.reservations:
            if r.live(now_us):
                if member_id is not None and r.member_id == member_id:
                    mine += r.units
                else:
                    others += r.units
        return others, mine


__all__ = ["Reservation", "UnitUsage"]
