"""Point-lot and return arithmetic as pure functions, shared by every store implementation.

A member's points are lots ``(points left, earned_at, available_at, expires_at)`` plus a debt.

- A lot is *pending* while ``now < available_at``, *available* while
  ``available_at <= now < expires_at`` (``expires_at`` None = never), then *expired*.
- Burns (redemption, negative adjustment) take available lots FIFO by expiry: soonest expiry
  first, never-expiring last, ties by ``available_at`` then lot id.
- Debt arises only when a clawback (return, cancel) finds too few points. Every write first
  :func:`settle`\\s the member: debt is paid from lots that are available, in the order they
  became available, and expired lots are zeroed. Because a debt can exist after a write only if
  every available lot was drained by it, settling lazily (at the next read or write) gives the
  same result as settling at the instant each lot became available, so reads compute balances
  with the same function and never write.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(slots=True)
class Lot:
    """A mutable working copy of a lot; ``lot_id`` None = not stored yet."""

    lot_id: int | None
    points: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    changed: bool = False

    def is_available(self, now: datetime) -> bool:
        return self.available_at <= now and not self.is_expired(now)

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _expiry_key(lot: Lot) -> tuple[bool, float, float, int]:
    exp = lot.expires_at.timestamp() if lot.expires_at else 0.0
    return (lot.expires_at is None, exp, lot.available_at.timestamp(), lot.lot_id or 0)


def burn_order(lots: Iterable[Lot], now: datetime) -> list[Lot]:
    """Available lots with points left, in the order burns take them."""
    return sorted(
        (lot for lot in lots if lot.points > 0 and lot.is_available(now)), key=_expiry_key
    )


def settle(lots: Sequence[Lot], debt: int, now: datetime) -> tuple[int, int]:
    """Pay debt from lots that have become available, zero expired lots (in place).

    Returns ``(debt left, points expired now)``.
    """
    if debt > 0:
        for lot in sorted(
            (x for x in lots if x.points > 0 and x.available_at <= now),
            key=lambda x: (x.available_at, x.lot_id or 0),
        ):
            take = min(debt, lot.points)
            lot.points -= take
            lot.changed = True
            debt -= take
            if debt == 0:
                break
    expired = 0
    for lot in lots:
        if lot.points > 0 and lot.is_expired(now):
            expired += lot.points
            lot.points = 0
            lot.changed = True
    return debt, expired


def balances(lots: Iterable[Lot], debt: int, now: datetime) -> tuple[int, int]:
    """``(available net of debt, pending)`` at ``now``; lots must be settled at ``now``."""
    available = pending = 0
    for lot in lots:
        if lot.points <= 0 or lot.is_expired(now):
            continue
        if lot.available_at <= now:
            available += lot.points
        else:
            pending += lot.points
    return available - debt, pending


def burn(lots: Sequence[Lot], points: int, now: datetime) -> list[tuple[Lot, int]]:
    """Take ``points`` from available lots FIFO by expiry (in place); ``[(lot, taken)]``.

    Raises ValueError when the available lots hold fewer points (the caller decides whether
    the shortfall becomes debt).
    """
    taken: list[tuple[Lot, int]] = []
    left = points
    for lot in burn_order(lots, now):
        if left == 0:
            break
        t = min(left, lot.points)
        lot.points -= t
        lot.changed = True
        left -= t
        taken.append((lot, t))
    if left:
        raise ValueError(f"{left} points short")
    return taken


def available_points(lots: Iterable[Lot], now: datetime) -> int:
    return sum(lot.points for lot in lots if lot.points > 0 and lot.is_available(now))


def claw_back(lots: Sequence[Lot], points: int, now: datetime, own: Lot | None) -> int:
    """Remove ``points`` once earned: from ``own`` (the lot they went to, pending or not),
    then available lots FIFO by expiry; returns the shortfall, which becomes debt."""
    left = points
    if own is not None and own.points > 0 and not own.is_expired(now):
        t = min(left, own.points)
        own.points -= t
        own.changed = True
        left -= t
    if left:
        t = min(left, available_points(lots, now))
        if t:
            burn(lots, t, now)
            left -= t
    return left


def add_months(at: datetime, months: int) -> datetime:
    """``at`` plus whole calendar months, the day clamped to the target month's length."""
    m = at.month - 1 + months
    year, month = at.year + m // 12, m % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def earned_lot_times(
    now: datetime, pending_days: int, expiry_months: int
) -> tuple[datetime, datetime | None]:
    """``(available_at, expires_at)`` of points earned at ``now`` (expiry counts from
    availability; ``expiry_months`` 0 = never)."""
    available_at = now + timedelta(days=max(0, pending_days))
    expires_at = add_months(available_at, expiry_months) if expiry_months > 0 else None
    return available_at, expires_at


def share(total: int, returned: int, quantity: int) -> int:
    """Cumulative part of a line amount for ``returned`` of ``quantity`` units (DESIGN §5)."""
    return total * returned // quantity


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Largest-remainder split of ``amount`` over ``weights`` (docs/design.md §4.1)."""
    total = sum(weights)
    if amount == 0 or total <= 0:
        return [0] * len(weights)
    base = [amount * w // total for w in weights]
    rest = amount - sum(base)
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in order[:rest]:
        base[i] += 1
    return base
