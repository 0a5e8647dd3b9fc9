"""MemberService: profiles, balances, wallets, hand adjustments and the shopping list."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import grpc

from engine.errors import InvalidInput
from engine.pricing.attributes import conditions_hold
from engine.pricing.recurrence import next_start
from engine.pricing.reference.rewards import rhu
from loyalty.v1 import members_pb2, members_pb2_grpc, rules_pb2
from server.api.checkout import Clock, utc_now
from server.api.convert import (
    MAX_ADJUST_POINTS,
    MAX_ISSUE_MEMBERS,
    MAX_SEGMENTS,
    check_ids,
    check_list,
    check_text,
    require_id,
    timestamp,
    when,
)
from server.api.member_attributes import attribute_messages, attributes_from_request
from server.api.reservations import issue_response, release, reserve_request, show_reservations
from server.api.shopping_list import check_barcode, member_list
from server.api.tiers import requalify_tiers, show_tier
from server.rules.registry import RuleRegistry
from server.store.base import Consent, CouponStatus, MemberProfile, MemberRecord, Store

_COUPON_STATUS = {
    CouponStatus.ACTIVE: members_pb2.WalletCoupon.STATUS_ACTIVE,
    CouponStatus.REVOKED: members_pb2.WalletCoupon.STATUS_REVOKED,
}


def member_message(r: MemberRecord) -> members_pb2.Member:
    enrolled = (
        datetime(r.enrolled_on.year, r.enrolled_on.month, r.enrolled_on.day, tzinfo=UTC)
        if r.enrolled_on
        else None
    )
    return members_pb2.Member(
        member_id=r.member_id,
        tier=r.tier,
        segments=sorted(r.segments),
        birthday_month=r.birthday_month,
        birthday_day=r.birthday_day,
        enrolled_at=timestamp(enrolled),
        consent=members_pb2.Consent(
            marketing=r.consent.marketing,
            automated_decisions=r.consent.automated_decisions,
            third_party=r.consent.third_party,
        ),
        available_points=r.points_available,  # already net of debt
        pending_points=r.points_pending,
        lots=[
            members_pb2.PointsLot(
                points=lot.points,
                earned_at=timestamp(lot.earned_at),
                available_at=timestamp(lot.available_at),
                expires_at=timestamp(lot.expires_at),
            )
            for lot in r.lots
        ],
        wallet=[
            members_pb2.WalletCoupon(
                coupon_id=c.coupon_id,
                offer_id=c.offer_id,
                uses_left=c.uses_left,
                valid_from=timestamp(c.valid_from),
                valid_until=timestamp(c.valid_until),
                personalised=c.personalised,
                status=_COUPON_STATUS[c.status],
                revoked_reason=c.revoked_reason,
                revoked_at=timestamp(c.revoked_at),
            )
            for c in r.wallet
        ],
        lifetime_spend_minor=r.lifetime_spend_minor,
        rolling_spend_minor=r.rolling_spend_minor,
        attributes=attribute_messages(r.attributes),
    )


LIST_HORIZON = timedelta(days=14)  # the list covers the fortnight ahead (a biweekly list)


def expected_saving(offer: rules_pb2.Offer) -> int:
    """A first estimate of what one use saves, minor units, from the offer alone.

    Amount rewards save their amount (on the delivery too; per chosen unit, for the units the
    reward chooses); unit rates their first unit and the further units up to their maximum;
    ladders their first step; a percentage saves its share of the least the member must spend
    to use it (minimum amount in scope or basket), capped by the offer's cap, or the cap alone
    when there is no minimum; prices, gifts and buy-x-get-y depend on the basket and count 0.
    """
    reward = offer.WhichOneof("reward")
    if reward in ("amount_off", "order_amount_off", "delivery_off"):
        return int(getattr(offer, reward).amount_minor)
    if reward == "target_units":
        return offer.target_units.amount_minor * offer.target_units.units
    if reward == "buy_get":
        return offer.buy_get.amount_minor * offer.buy_get.get_qty
    if reward == "unit_rates":
        r = offer.unit_rates
        return r.first_minor + r.additional_minor * max(0, r.max_units - 1)
    if reward == "spend_tiers" and offer.spend_tiers.steps:
        return offer.spend_tiers.steps[0].amount_minor
    if reward in ("percent_off", "order_percent_off"):
        bps = getattr(offer, reward).percent_bps
        base = max(offer.conditions.min_amount_minor, offer.conditions.min_basket_minor)
        cap = offer.limits.max_discount_minor
        if base:
            saving = rhu(base, bps, 10000)
            return min(saving, cap) if cap else saving
        return cap
    return 0


def shopping_list(
    rules: rules_pb2.RuleSet,
    record: MemberRecord,
    now: datetime,
    held: Mapping[str, tuple[int, datetime]] | None = None,
) -> list[members_pb2.PersonalOffer]:
    """The member's personalised offers, most relevant first.

    Wallet coupons (issued to this member) come before member offers (for the member's tier
    or segments). Wallet coupons usable now come first, then those starting within
    :data:`LIST_HORIZON` (timed to the member's predicted purchase, with ``valid_from``);
    within each, the larger expected saving first, then the sooner expiry, then offer id.
    Revoked coupons (consent withdrawn) are left out. ``held``: coupon id -> the units
    reserved for it and until when (``Store.reservations``).
    """
    offers = {o.id: o for o in rules.offers}
    wallet = []
    for c in record.wallet:
        offer = offers.get(c.offer_id)
        if (
            offer is None
            or c.status != CouponStatus.ACTIVE
            or c.uses_left <= 0
            or not c.valid_from <= now + LIST_HORIZON
            or now >= c.valid_until
        ):
            continue
        later = c.valid_from > now
        saving = expected_saving(offer)
        units, until = (held or {}).get(c.coupon_id, (0, None))
        wallet.append(
            (
                (later, -saving, c.valid_until, offer.id),
                members_pb2.PersonalOffer(
                    offer_id=offer.id,
                    name=offer.name,
                    description=offer.description,
                    source="wallet",
                    expected_saving_minor=saving,
                    valid_until=timestamp(c.valid_until),
                    uses_left=c.uses_left,
                    valid_from=timestamp(c.valid_from) if later else None,
                    reserved_units=units,
                    reserved_until=timestamp(until) if until is not None else None,
                ),
            )
        )
    member_offers = []
    for offer in rules.offers:
        cond = offer.conditions
        targeted = bool(cond.tiers or cond.segments or cond.attributes)
        if offer.activation != rules_pb2.Offer.AUTOMATIC or not targeted:
            continue
        if cond.tiers and record.tier not in cond.tiers:
            continue
        if cond.segments and not set(cond.segments) & record.segments:
            continue
        if cond.attributes and not conditions_hold(rules, cond.attributes, record.attributes):
            continue
        until = cond.ends_at.ToDatetime(tzinfo=UTC) if cond.HasField("ends_at") else None
        if until is not None and until <= now:
            continue
        # a recurring offer is listed when it is on now or starts within the horizon
        start = next_start(cond, rules.timezone, int(now.timestamp())) if cond.recurrence else None
        if cond.recurrence and (start is None or start > now + LIST_HORIZON):
            continue
        saving = expected_saving(offer)
        member_offers.append(
            (
                (-saving, until or datetime.max.replace(tzinfo=UTC), offer.id),
                members_pb2.PersonalOffer(
                    offer_id=offer.id,
                    name=offer.name,
                    description=offer.description,
                    source="member",
                    expected_saving_minor=saving,
                    valid_until=timestamp(until),
                    valid_from=timestamp(start) if start is not None and start > now else None,
                ),
            )
        )
    return [o for _, o in sorted(wallet, key=lambda x: x[0])] + [
        o for _, o in sorted(member_offers, key=lambda x: x[0])
    ]


class MemberServicer(members_pb2_grpc.MemberServiceServicer):
    def __init__(self, registry: RuleRegistry, store: Store, clock: Clock = utc_now):
        self.registry, self.store, self.clock = registry, store, clock

    def UpsertMember(
        self, request: members_pb2.UpsertMemberRequest, context: grpc.ServicerContext
    ) -> members_pb2.Member:
        bad = InvalidInput()
        check_ids(bad, request, ("member_id",), ("tier",))
        check_list(bad, "segments", request.segments, MAX_SEGMENTS)
        month, day = request.birthday_month, request.birthday_day
        if not 0 <= month <= 12:
            bad.add("birthday_month", f"must be 0..12 (got {month})")
        if not 0 <= day <= 31:
            bad.add("birthday_day", f"must be 0..31 (got {day})")
        elif 1 <= month <= 12 and day > calendar.monthrange(2000, month)[1]:  # 2000: 29 Feb
            bad.add("birthday_day", f"month {month} has no day {day}")
        at = when(bad, request, "enrolled_at")
        attributes = attributes_from_request(bad, request.attributes)
        if bad.violations:
            raise bad
        enrolled = at.date() if at is not None else date.today()
        c = request.consent
        profile = MemberProfile(
            request.member_id,
            request.tier,
            frozenset(request.segments),
            request.birthday_month,
            request.birthday_day,
            enrolled,
            Consent(c.marketing, c.automated_decisions, c.third_party),
            attributes,
        )
        return member_message(self.store.upsert_member(profile, self.clock()))

    def GetMember(
        self, request: members_pb2.GetMemberRequest, context: grpc.ServicerContext
    ) -> members_pb2.Member:
        require_id("member_id", request.member_id)
        now = self.clock()
        record = self.store.get_member(request.member_id, now)
        member = member_message(record)
        show_reservations(member, self.store, now)
        show_tier(member, record, self.registry.current_or_none(), now)
        return member

    def ListOffers(
        self, request: members_pb2.ListOffersRequest, context: grpc.ServicerContext
    ) -> members_pb2.ListOffersResponse:
        bad = InvalidInput()
        check_ids(bad, request, ("member_id",), ("store_id", "channel"))
        check_barcode(bad, request.barcode)
        at = when(bad, request, "at")
        if bad.violations:
            raise bad
        now = at or self.clock()
        record = self.store.get_member(request.member_id, now)
        active = self.registry.current()
        rules = active.compiled.rules
        # reserved units, read only where the rules cap units and the member holds coupons
        held = (
            self.store.reservations(request.member_id, now)
            if active.policy.units_capped and record.wallet
            else {}
        )
        list_id, image, media_type = member_list(
            self.store, request.member_id, self.clock(), request.barcode
        )
        return members_pb2.ListOffersResponse(
            offers=shopping_list(rules, record, now, held),
            list_id=list_id,
            barcode=image,
            barcode_media_type=media_type,
        )

    def IssueCoupons(
        self, request: members_pb2.IssueCouponsRequest, context: grpc.ServicerContext
    ) -> members_pb2.IssueCouponsResponse:
        bad = InvalidInput()
        check_ids(bad, request, ("issue_id", "offer_id"))
        if not request.member_ids:
            bad.add("member_ids", "at least one member is required")
        check_list(bad, "member_ids", request.member_ids, MAX_ISSUE_MEMBERS)
        if request.uses < 1:
            bad.add("uses", f"must be at least 1 (got {request.uses})")
        until = when(bad, request, "valid_until")
        if not request.HasField("valid_until"):
            bad.add("valid_until", "is required")
        if request.offer_id and request.offer_id not in self.registry.current().names:
            bad.add("offer_id", f"no offer {request.offer_id!r} in the current rule set")
        start = when(bad, request, "valid_from")
        reserve_units, reserve_until, units_cap = reserve_request(bad, request, self.registry)
        if bad.violations or until is None:
            raise bad
        now = self.clock()
        outcome = self.store.issue_coupons(
            request.issue_id,
            request.offer_id,
            list(request.member_ids),
            request.uses,
            start or now,
            until,
            now,
            personalised=request.personalised,
            reserve_units=reserve_units,
            reserve_until=reserve_until,
            units_cap=units_cap,
        )
        return issue_response(len(outcome.coupon_ids), outcome.skipped, outcome.unreserved)

    def RequalifyTiers(
        self, request: members_pb2.RequalifyTiersRequest, context: grpc.ServicerContext
    ) -> members_pb2.RequalifyTiersResponse:
        return requalify_tiers(self.registry, self.store, request, self.clock())

    def ReleaseReservation(
        self, request: members_pb2.ReleaseReservationRequest, context: grpc.ServicerContext
    ) -> members_pb2.ReleaseReservationResponse:
        return release(self.store, request, self.clock())

    def AdjustPoints(
        self, request: members_pb2.AdjustPointsRequest, context: grpc.ServicerContext
    ) -> members_pb2.Member:
        bad = InvalidInput()
        check_ids(bad, request, ("adjustment_id", "member_id"))
        check_text(bad, "reason", request.reason)
        if request.points == 0:
            bad.add("points", "must not be 0")
        elif abs(request.points) > MAX_ADJUST_POINTS:
            bad.add("points", f"must be within ±{MAX_ADJUST_POINTS:,} (got {request.points})")
        if bad.violations:
            raise bad
        now = self.clock()
        self.store.adjust_points(
            request.adjustment_id, request.member_id, request.points, request.reason, now
        )
        return member_message(self.store.get_member(request.member_id, now))
