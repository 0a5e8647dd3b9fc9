"""The MemberService side of unit reservations (server/store/units.py): the IssueCoupons
fields ``reserve_units``/``reserve_until``, ReleaseReservation, and the reservation shown on a
member's wallet coupons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from engine.errors import InvalidInput
from loyalty.v1 import members_pb2
from server.api.convert import check_ids, when
from server.rules.registry import RuleRegistry
from server.store.base import Store
from server.store.policy import Policy
from server.store.snapshot import to_us

MAX_RESERVE_UNITS = 10**9


def reserve_request(
    bad: InvalidInput, request: members_pb2.IssueCouponsRequest, registry: RuleRegistry
) -> tuple[int, datetime | None, int]:
    """``(reserve_units, reserve_until, the offer's total_units)`` of an issue, with
    violations added to ``bad`` (the store checks the deadline against now)."""
    units = request.reserve_units
    until = when(bad, request, "reserve_until")
    if not 0 <= units <= MAX_RESERVE_UNITS:
        bad.add("reserve_units", f"must be 0..{MAX_RESERVE_UNITS:,} (got {units})")
        return 0, None, 0
    if units == 0:
        if request.HasField("reserve_until"):
            bad.add("reserve_until", "only with reserve_units")
        return 0, None, 0
    if not request.HasField("reserve_until"):
        bad.add("reserve_until", "is required with reserve_units")
    policy = registry.current().policy
    offer = policy.offers.get(request.offer_id)
    cap = offer.total_units if offer is not None else 0
    if offer is not None and not cap:
        bad.add("reserve_units", f"offer {request.offer_id!r} has no limits.total_units")
    return units, until, cap


def issue_response(
    issued: int, skipped: tuple[str, ...], unreserved: tuple[str, ...]
) -> members_pb2.IssueCouponsResponse:
    return members_pb2.IssueCouponsResponse(
        issued=issued, skipped_member_ids=skipped, unreserved_member_ids=unreserved
    )


def release(
    store: Store, request: members_pb2.ReleaseReservationRequest, now: datetime
) -> members_pb2.ReleaseReservationResponse:
    bad = InvalidInput()
    check_ids(bad, request, ("member_id", "offer_id"))
    if bad.violations:
        raise bad
    units = store.release_reservation(request.member_id, request.offer_id, now)
    return members_pb2.ReleaseReservationResponse(units_released=units)


def show_reservations(member: members_pb2.Member, store: Store, now: datetime) -> None:
    """Fill ``reserved_units``/``reserved_until`` of the member's wallet coupons."""
    if not member.wallet:
        return
    held = store.reservations(member.member_id, now)
    for coupon in member.wallet:
        got = held.get(coupon.coupon_id)
        if got is not None:
            coupon.reserved_units = got[0]
            coupon.reserved_until.FromDatetime(got[1])


def unit_counts(
    store: Store, policy: Policy, offer_ids: Sequence[str], now: datetime
) -> dict[str, tuple[int, int]]:
    """Offer id -> ``(units sold, units reserved now)`` of the offers with unit caps."""
    capped = set(policy.units_capped)
    ids = [o for o in offer_ids if o in capped]
    if not ids:
        return {}
    units = store.pricing_state(policy, None, ids, (), now).units
    now_us = to_us(now)
    return {o: (u.sold, u.held(now_us)[0]) for o, u in units.items()}
