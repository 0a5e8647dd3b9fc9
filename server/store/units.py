"""Unit caps and reservations (``Limits.total_units``, ``units_per_store``): the rules every
store applies, in pure Python (the stores only read and write rows or hash fields).

Counters, per offer with a unit cap: ``sold`` (units discounted by committed transactions, net
of cancels), ``by_store`` (the same per basket store id, kept for offers with
``units_per_store``) and the reservations made by ``IssueCoupons`` (``reserve_units``), one
per ``(issue, member)`` with the units still held and the time they lapse.

Availability is computed with the expiry, so nothing sweeps: for a member at ``now``

    units left = total_units − sold − Σ units held for other members, unexpired
    (and, with units_per_store, at most units_per_store − by_store[basket store])

A commit consumes the member's own unexpired reservations first (soonest lapse first), so the
units held for the others stay untouched; a cancel gives its units back to everyone (not to a
reservation). Reservations hold total units only, not per-store units.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.errors import Conflict, InvalidInput
from engine.pricing.types import PricingResult, RemainingLimits
from loyalty.v1.ledger_pb2 import OfferUse
from server.store.policy import OfferPolicy, Policy
from server.store.unit_usage import Reservation, UnitUsage


@dataclass(frozen=True, slots=True)
class UnitOp:
    """What a commit (units > 0) or a cancel (units < 0) changes of an offer's counters; the
    caps (0 = none) are what the apply re-checks against the stored counters at ``now_us``."""

    offer_id: str
    units: int
    total_cap: int
    store_id: str | None  # the counter per store (None: the offer has no per-store cap)
    store_cap: int
    holder: str  # the member whose reservations are used first ("" = guest)
    now_us: int


def check_reserve(units: int, until: datetime | None, cap: int, now: datetime) -> int | None:
    """Check an issue's reservation; returns its lapse in microseconds (None: no reservation)."""
    if units == 0:
        return None
    if units < 0:
        raise InvalidInput.at("reserve_units", f"must not be negative (got {units})")
    if not cap:
        raise InvalidInput.at("reserve_units", "the offer has no Limits.total_units to reserve")
    if until is None or until.tzinfo is None:
        raise InvalidInput.at("reserve_until", "is required with reserve_units")
    if until <= now:
        raise InvalidInput.at("reserve_until", "must be after now")
    return to_us(until)


def use_fields(op: UnitOp | None) -> tuple[int, bool]:
    """``OfferUse.units`` and ``store_units`` of a commit's op (none: nothing counted)."""
    return (0, False) if op is None else (op.units, op.store_id is not None)


def to_us(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def capped(p: OfferPolicy | None) -> bool:
    return p is not None and bool(p.total_units or p.units_per_store)


def total_left(p: OfferPolicy, u: UnitUsage | None, member_id: str | None, now_us: int) -> int:
    """Units of the total cap left to ``member_id`` (or a guest); a large number when the
    offer has only a per-store cap."""
    if not p.total_units:
        return 2**62
    u = u or UnitUsage()
    others, _ = u.held(now_us, member_id)
    return max(0, p.total_units - u.sold - others)


def store_left(p: OfferPolicy, u: UnitUsage | None, store_id: str) -> int:
    if not p.units_per_store:
        return 2**62
    return max(0, p.units_per_store - (u.by_store.get(store_id, 0) if u else 0))


def remaining(
    p: OfferPolicy, u: UnitUsage | None, member_id: str | None, now_us: int
) -> int | None:
    """``RemainingLimits.units`` as a store reads it: the total cap's share only (the basket's
    store is applied by :func:`at_store` at pricing time); None = no unit cap."""
    if not capped(p):
        return None
    return total_left(p, u, member_id, now_us) if p.total_units else None


def at_store(
    policy: Policy,
    limits: Mapping[str, RemainingLimits],
    units: Mapping[str, UnitUsage],
    store_id: str,
) -> Mapping[str, RemainingLimits]:
    """The limits with the basket store's per-store caps applied (``limits`` itself when no
    offer has one)."""
    if not policy.store_capped:
        return limits
    out = dict(limits)
    for o in policy.store_capped:
        lim = out.get(o)
        if lim is None:
            continue
        left = store_left(policy.offers[o], units.get(o), store_id)
        out[o] = dataclasses.replace(lim, units=left if lim.units is None else min(lim.units, left))
    return out


def plan_ops(
    policy: Policy,
    units: Mapping[str, UnitUsage],
    result: PricingResult,
    store_id: str,
    member_id: str | None,
    now_us: int,
) -> tuple[UnitOp, ...]:
    """The unit counters a commit of ``result`` changes; Conflict when it was priced on other
    counters (more units than are left now)."""
    ops = []
    for applied in result.offers:
        p = policy.offers.get(applied.offer_id)
        if p is None or not capped(p) or applied.units <= 0:
            continue
        u = units.get(applied.offer_id)
        left = min(total_left(p, u, member_id, now_us), store_left(p, u, store_id))
        if applied.units > left:
            raise Conflict(f"offer {applied.offer_id!r}: only {left} units are left")
        ops.append(
            UnitOp(
                applied.offer_id,
                applied.units,
                p.total_units,
                store_id if p.units_per_store else None,
                p.units_per_store,
                member_id or "",
                now_us,
            )
        )
    return tuple(ops)


def give_back(uses: Sequence[OfferUse], store_id: str) -> list[UnitOp]:
    """The ops of a cancel: every unit the commit counted goes back to everyone."""
    return [
        UnitOp(u.offer_id, -u.units, 0, store_id if u.store_units else None, 0, "", 0)
        for u in uses
        if u.units > 0
    ]


def consume(
    reservations: Sequence[Reservation], holder: str, units: int, now_us: int
) -> list[tuple[str, int]]:
    """``(reservation id, units taken)`` of a commit by ``holder``: its live reservations,
    soonest lapse first, until ``units`` are covered (the rest is unreserved stock)."""
    out: list[tuple[str, int]] = []
    if not holder:
        return out
    mine = sorted(
        (r for r in reservations if r.member_id == holder and r.live(now_us)),
        key=lambda r: (r.until_us, r.reservation_id),
    )
    for r in mine:
        if units <= 0:
            break
        take = min(units, r.units)
        out.append((r.reservation_id, take))
        units -= take
    return out


def admit(
    cap: int, usage: UnitUsage, member_ids: Sequence[str], units: int, now_us: int
) -> tuple[list[str], list[str]]:
    """Which members of an issue get a reservation of ``units`` each (in the order given) and
    which do not (not enough unreserved units left); members holding a reservation of this
    issue already (a retry) are kept without counting again (the caller filters them)."""
    free = max(0, cap - usage.sold - usage.held(now_us)[0])
    got, refused = [], []
    for m in member_ids:
        if units <= free:
            got.append(m)
            free -= units
        else:
            refused.append(m)
    return got, refused


__all__ = [
    "Reservation",
    "UnitOp",
    "UnitUsage",
    "admit",
    "at_store",
    "capped",
    "consume",
    "give_back",
    "plan_ops",
    "remaining",
    "store_left",
    "total_left",
]
