"""Pure pieces of a pricing snapshot, shared by every store implementation.

A store fetches rows its own way (SQL, one Redis round trip); what the rows *mean* — a code's
status, what is left of an offer's limits, a member's balances as of ``now`` — is decided here
once, so the embedded and Redis stores cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from engine.errors import InvalidInput
from engine.pricing.types import AttributeValue, RemainingLimits
from server.store import points as P
from server.store import units as U
from server.store.base import (
    CodeRow,
    CodeStatus,
    Consent,
    CouponStatus,
    MemberProfile,
    MemberRecord,
    PointLot,
    Spend,
    WalletCoupon,
)
from server.store.member_attributes import check_attributes
from server.store.policy import Policy
from server.store.unit_usage import UnitUsage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def at_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def check_time(name: str, at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInput.at(name, "must be a timezone-aware datetime")
    return at.astimezone(UTC)


def check_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidInput.at(name, "must be a non-empty string of at most 200 characters")
    return value


def check_window(valid_from: datetime, valid_until: datetime) -> tuple[datetime, datetime]:
    valid_from = check_time("valid_from", valid_from)
    valid_until = check_time("valid_until", valid_until)
    if valid_until <= valid_from:
        raise InvalidInput.at("valid_until", "must be after valid_from")
    return valid_from, valid_until


def code_status(
    row: CodeRow | None,
    policy: Policy,
    member_id: str | None,
    redeemed: Callable[[], bool],
    now_us: int,
) -> CodeStatus:
    """What a presented code is worth now; ``redeemed()`` says whether this member already
    used a per-member code (asked only when it matters)."""
    if row is None or row[0] not in policy.offers:
        return CodeStatus.INVALID
    offer_id, uses_left, per_member, valid_from_us, valid_until_us, bound = row
    if now_us < valid_from_us:
        return CodeStatus.NOT_YET_VALID
    if now_us >= valid_until_us:
        return CodeStatus.EXPIRED
    if uses_left <= 0:
        return CodeStatus.USED_UP
    if (per_member or bound) and member_id is None:
        return CodeStatus.MEMBER_REQUIRED
    if bound and member_id != bound:
        return CodeStatus.WRONG_MEMBER
    if per_member and redeemed():
        return CodeStatus.USED_UP
    return CodeStatus.VALID


def limited_ids(policy: Policy, offer_ids: Iterable[str] | None) -> list[str]:
    """The offers whose limits a quote must know: all limited ones, or those of ``offer_ids``."""
    if offer_ids is None:
        return list(policy.limited)
    return [o for o in dict.fromkeys(offer_ids) if o in policy.offers and policy.offers[o].limited]


def remaining_limits(
    policy: Policy,
    ids: Sequence[str],
    usage: Mapping[str, tuple[int, int]],
    mine: Mapping[tuple[str, str], int],
    member_id: str | None,
    now: datetime,
    units: Mapping[str, UnitUsage] | None = None,
) -> dict[str, RemainingLimits]:
    """What is left of each offer's limits: ``usage`` = offer -> (uses, budget spent) over all
    members, ``mine`` = (offer, period key) -> this member's uses, ``units`` = the unit
    counters of the offers with unit caps (:mod:`server.store.units`)."""
    out = {}
    now_us = to_us(now)
    for o in ids:
        p = policy.offers[o]
        uses, spent = usage.get(o, (0, 0))
        member_uses = None
        if p.per_member and member_id is not None:
            used = mine.get((o, policy.period_key(p.period, now)), 0)
            member_uses = max(0, p.per_member - used)
        out[o] = RemainingLimits(
            member_uses=member_uses,
            total_uses=max(0, p.total_uses - uses) if p.total_uses else None,
            budget_minor=max(0, p.budget_minor - spent) if p.budget_minor else None,
            units=U.remaining(p, (units or {}).get(o), member_id, now_us),
        )
    return out


def spend_since(now: datetime, months: int) -> int:
    """The far edge of the rolling window ending ``now``: buckets ending at or before it are
    out of the window (and dropped when a store writes)."""
    return to_us(P.add_months(now, -months))


def rolling_sum(spend: Iterable[Spend], now: datetime, months: int) -> int:
    """Qualifying spend of the buckets that reach into the rolling window ending ``now``: a
    bucket counts while its end is inside the window, so the far edge is rounded out to whole
    buckets (spend up to one bucket older than the window still counts)."""
    since = spend_since(now, months)
    return sum(amount for _, end, amount in spend if end > since)


def add_spend(spend: Iterable[Spend], now: datetime, amount: int, policy: Policy) -> list[Spend]:
    """The records after a commit's ``amount`` at ``now``, sorted: it joins the record whose
    span holds ``now``, else a new one for the bucket of ``now``. Every record whose span fits
    in the bucket of its start merges into that bucket first: per-transaction records stored
    before spend was bucketed (span of 1 µs), or buckets of a finer setting. A record at least
    as long as the setting's buckets (its own bucket, or a month when the setting went from
    MONTH to DAY) stays whole, so spans never overlap and a reversal always finds the one
    record its commit went to (:func:`take_spend`)."""

    def span_of(at: datetime) -> tuple[int, int]:
        start, end = policy.bucket(at)
        return to_us(start), to_us(end)

    whole = policy.shortest_bucket // timedelta(microseconds=1)
    merged: dict[tuple[int, int], int] = {}
    for start, end, amt in spend:
        span = (start, end)
        if end - start < whole:
            bucket = span_of(at_us(start))
            span = bucket if end <= bucket[1] else span
        merged[span] = merged.get(span, 0) + amt
    now_us = to_us(now)
    span = next((k for k in merged if k[0] <= now_us < k[1]), None) or span_of(now)
    merged[span] = merged.get(span, 0) + amount
    return sorted((s, e, a) for (s, e), a in merged.items())


def take_spend(spend: Iterable[Spend], committed_at: datetime, amount: int) -> list[Spend]:
    """The records after a reversal takes ``amount`` back from the record of the commit made
    at ``committed_at`` (nothing, if that record has left the window)."""
    at = to_us(committed_at)
    out, left = [], amount
    for start, end, amt in spend:
        if left and start <= at < end:
            amt, left = amt - left, 0
        out.append((start, end, amt))
    return out


def member_record(
    member_id: str,
    *,
    tier: str,
    segments: Iterable[str],
    birthday_month: int,
    birthday_day: int,
    enrolled_on: str | None,
    consent: Consent,
    lots: Sequence[P.Lot],
    debt: int,
    wallet: Iterable[WalletCoupon],
    lifetime_spend_minor: int,
    rolling_spend_minor: int,
    now: datetime,
    attributes: Mapping[str, AttributeValue] | None = None,
    spend: Iterable[Spend] = (),
) -> MemberRecord:
    """The member as of ``now`` from stored rows; ``lots`` are settled in place (working
    copies: callers that only read never write them back, see points.settle)."""
    debt, _ = P.settle(lots, debt, now)
    available, pending = P.balances(lots, debt, now)
    live = sorted(
        (x for x in lots if x.points > 0 and not x.is_expired(now)),
        key=lambda x: (x.expires_at is None, x.expires_at or now, x.lot_id or 0),
    )
    return MemberRecord(
        member_id=member_id,
        tier=tier,
        segments=frozenset(segments),
        birthday_month=birthday_month,
        birthday_day=birthday_day,
        enrolled_on=date.fromisoformat(enrolled_on) if enrolled_on else None,
        consent=consent,
        points_available=available,
        points_pending=pending,
        points_debt=debt,
        lots=tuple(PointLot(x.points, x.earned_at, x.available_at, x.expires_at) for x in live),
        wallet=tuple(
            sorted(
                (c for c in wallet if c.uses_left > 0 or c.status == CouponStatus.REVOKED),
                key=lambda c: (c.valid_until, c.coupon_id),
            )
        ),
        lifetime_spend_minor=lifetime_spend_minor,
        rolling_spend_minor=rolling_spend_minor,
        attributes=dict(attributes or {}),
        spend=tuple(spend),
    )


# ---------------------------------------------------------------------------------------------
# Consent and personalised coupons (docs/design.md §7): the rule both stores apply


def may_personalise(consent: Consent) -> bool:
    """Whether the member may hold personalised coupons: every coupon needs marketing
    consent, a personalised one also automated-decisions consent."""
    return consent.marketing and consent.automated_decisions


def revoke_reason(consent: Consent) -> str:
    """Why a member with this consent may not keep personalised coupons ("" = they may):
    ``consent withdrawn: marketing``, ``... automated_decisions`` or both, comma-separated.
    ``upsert_member`` revokes every active personalised coupon with uses left with it."""
    missing = [
        name
        for name, given in (
            ("marketing", consent.marketing),
            ("automated_decisions", consent.automated_decisions),
        )
        if not given
    ]
    return "consent withdrawn: " + ", ".join(missing) if missing else ""


# ---------------------------------------------------------------------------------------------
# Request checks every store makes before touching state


def check_profile(profile: MemberProfile, now: datetime) -> datetime:
    now = check_time("now", now)
    check_id("member_id", profile.member_id)
    if not 0 <= profile.birthday_month <= 12:
        raise InvalidInput.at("birthday_month", "must be 0 (unknown) or 1-12")
    if not 0 <= profile.birthday_day <= 31:
        raise InvalidInput.at("birthday_day", "must be 0 (unknown) or 1-31")
    check_attributes(profile.attributes)
    return now


def check_issue(
    issue_id: str,
    offer_id: str,
    uses: int,
    valid_from: datetime,
    valid_until: datetime,
    now: datetime,
) -> tuple[int, int]:
    """Check a coupon issue; returns the validity window in microseconds."""
    check_id("issue_id", issue_id)
    check_id("offer_id", offer_id)
    valid_from, valid_until = check_window(valid_from, valid_until)
    check_time("now", now)
    if uses < 1:
        raise InvalidInput.at("uses", "must be at least 1")
    return to_us(valid_from), to_us(valid_until)


def check_codes(
    offer_id: str,
    codes: Sequence[str],
    uses_per_code: int,
    valid_from: datetime,
    valid_until: datetime,
) -> tuple[list[str], int, int]:
    """Check a code creation; returns the distinct codes and the window in microseconds."""
    check_id("offer_id", offer_id)
    valid_from, valid_until = check_window(valid_from, valid_until)
    if uses_per_code < 1:
        raise InvalidInput.at("uses_per_code", "must be at least 1")
    unique = list(dict.fromkeys(codes))
    for k, code in enumerate(unique):
        if not isinstance(code, str) or not code:
            raise InvalidInput.at(f"codes[{k}]", "must be a non-empty string")
    return unique, to_us(valid_from), to_us(valid_until)
