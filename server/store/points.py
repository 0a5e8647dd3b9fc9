"""Point-lot and return arithmetic as pure functions, shared by every store implementation.

A member's points are lots ``(points left, earned_at, available_at, expires_at)`` plus a debt.

- A lot is *pending* while ``now < available_at``, *available* while
  ``available_at <= now < expires_at`` (``expires_at`` None = never), then *expired*.
- Lots merge (docs/design.md §5, Points): two lots that can no longer be told apart by any
  burn, settlement or expiry are one. Pending lots are one lot per ``(available_at,
  expires_at)``; available lots are one lot per ``expires_at``, since once spendable only the
  expiry orders them. Earned points get bucketed times (:meth:`Policy.earned_lot_times
  <server.store.policy.Policy.earned_lot_times>`), so a member holds one lot per bucket.
  The surviving lot keeps the lowest id, the earliest ``earned_at`` and ``available_at``.
- Burns (redemption, negative adjustment) take available lots FIFO by expiry: soonest expiry
  first, never-expiring last, ties by ``available_at`` then lot id.
- Debt arises only when a clawback (return, cancel) finds too few points. Every write first
  :func:`settle`\\s the member: debt is paid from lots that are available, in the order they
  became available, expired lots are zeroed and lots that now share a key merge. Because a
  debt can exist after a write only if every available lot was drained by it, settling lazily
  (at the next read or write) gives the same result as settling at the instant each lot became
  available, so reads compute balances with the same function and never write.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.errors import FailedPrecondition

# The most points a member may hold (every lot, pending included) or owe: earning or adding
# beyond it is refused (FAILED_PRECONDITION). It leaves int64 a margin of 9,000 times itself, so
# no sum of lots, restore or debt a sequence of calls can reach overflows a stored integer.
MAX_POINTS = 10**15


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
    merge(lots, now)
    return debt, expired


LotKey = tuple[datetime | None, datetime | None]


def lot_key(lot: Lot, now: datetime) -> LotKey:
    """``(expires_at, available_at)`` for a pending lot, ``(expires_at, None)`` once available:
    lots with equal keys burn, settle and expire alike."""
    return lot.expires_at, (lot.available_at if lot.available_at > now else None)


def _survivor_order(lot: Lot) -> tuple[bool, int]:
    return lot.lot_id is None, lot.lot_id or 0


def merge(lots: Sequence[Lot], now: datetime) -> None:
    """Fold every live lot into the first stored lot of its key (in place): the others are
    left with 0 points (stores drop drained lots when they write)."""
    first: dict[LotKey, Lot] = {}
    for lot in sorted(lots, key=_survivor_order):
        if lot.points <= 0 or lot.is_expired(now):
            continue
        into = first.setdefault(lot_key(lot, now), lot)
        if into is not lot:
            into.points += lot.points
            into.earned_at = min(into.earned_at, lot.earned_at)
            into.available_at = min(into.available_at, lot.available_at)
            into.changed = True
            lot.points = 0
            lot.changed = True


def add_lot(lots: list[Lot], lot: Lot, now: datetime) -> Lot:
    """Add the points of a new ``lot`` (not stored yet) to the lot of its key, appending it
    when there is none; returns the lot that holds them. A lot of the key drained earlier in
    the same operation is reused, so one operation never leaves two lots of one key."""
    key = lot_key(lot, now)
    into = min(
        (x for x in lots if not x.is_expired(now) and lot_key(x, now) == key),
        key=_survivor_order,
        default=None,
    )
    if into is None:
        lots.append(lot)
        return lot
    into.points += lot.points
    into.earned_at = min(into.earned_at, lot.earned_at)
    into.changed = True
    return into


def find_lot(
    lots: Iterable[Lot],
    lot_id: int | None,
    available_at: datetime | None,
    expires_at: datetime | None,
    now: datetime,
) -> Lot | None:
    """The lot that holds a commit's earned points: the lot ``lot_id`` if it still has points,
    else the live lot of the key those points had (it absorbed them when lots merged)."""
    live = [x for x in lots if x.points > 0 and not x.is_expired(now)]
    by_id = next((x for x in live if lot_id is not None and x.lot_id == lot_id), None)
    if by_id is not None or available_at is None:
        return by_id
    key = (expires_at, available_at if available_at > now else None)
    return next((x for x in live if lot_key(x, now) == key), None)


def rebucket(lots: Iterable[Lot], bucket_end: Callable[[datetime], datetime]) -> None:
    """Round every expiry up to the end of its bucket (in place): what a member stored before
    lots merged (one lot per commit, exact expiries) needs once, at its next commit. Points
    never expire earlier than they were told; pending lots keep their availability."""
    for lot in lots:
        if lot.expires_at is not None:
            end = bucket_end(lot.expires_at)
            if end != lot.expires_at:
                lot.expires_at = end
                lot.changed = True


def check_held(lots: Iterable[Lot], debt: int, member_id: str) -> None:
    """Refuse a change that would leave the member holding or owing more than MAX_POINTS."""
    held = sum(lot.points for lot in lots)
    if held > MAX_POINTS or debt > MAX_POINTS:
        what = f"hold {held}" if held > MAX_POINTS else f"owe {debt}"
        raise FailedPrecondition(
            f"member {member_id!r} would {what} points, more than the {MAX_POINTS:,} a member "
            "may hold or owe"
        )


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
