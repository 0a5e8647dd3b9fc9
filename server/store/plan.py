"""The commit plan: what a commit changes, decided once, in pure Python, for every store.

A commit is read → price → plan → apply (docs/design.md §5). A store reads a snapshot
(:class:`~server.store.base.CommitSnapshot`: the member as stored with its version, the
presented codes, the global counters of the offers that have limits, the stored outcome when
the id was committed before); :func:`plan_commit` turns it and the priced result into a
:class:`~server.store.base.CommitPlan`; the store applies the plan in one atomic step that
first re-checks what the plan depends on (the member's version, the offers' caps and budgets,
the codes' uses) and refuses it when anything moved. The loop around the four steps is
:func:`server.store.checkout.commit`; the snapshot and plan types are in
:mod:`server.store.base`, with the interface that takes them.

The rules of a commit (which lot a burn takes from, which lot earned points join, which coupon
an offer uses, when a cap is hit, what the outcome and the ledger entry say) live here only:
the stores translate a plan into SQL rows or Redis documents and check nothing but versions
and counters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from engine.errors import Conflict
from engine.pricing.types import Basket, PricingResult
from server.store import effects, snapshot
from server.store import points as P
from server.store import units as U
from server.store.base import (
    Burned,
    CommitOutcome,
    CommitPlan,
    CommitSnapshot,
    MemberEffects,
    MemberState,
    OfferCount,
    OfferUse,
    Provenance,
    WalletCoupon,
)
from server.store.policy import Policy
from server.store.records import NO_PROVENANCE
from server.store.snapshot import to_us
from server.store.stored import ledger_entry
from server.store.tiers import tier_spend


def plan_commit(
    snap: CommitSnapshot,
    result: PricingResult,
    policy: Policy,
    now: datetime,
    basket: Basket,
    codes: Sequence[str],
    transaction_id: str,
    fingerprint: str,
    provenance: Provenance = NO_PROVENANCE,
) -> CommitPlan:
    """Every effect of committing ``result`` (priced on ``snap.state``) at ``now``, the
    pricing time; ``provenance`` goes on the outcome and the ledger entry as it is.

    A result the snapshot cannot pay for (more points than available, an offer without a
    coupon left, a cap already reached) raises :class:`Conflict`: it was priced on other
    state, and reading again would not change that."""
    effects.check_result(result, basket)
    m = snap.member
    member = None if m is None else _member_effects(m, result, policy, now, snap.spend_months)
    if member is None and (result.points_redeemed or result.points_earned):
        raise Conflict("a guest transaction cannot earn or redeem points")
    uses, counts, used_codes = [], [], []
    coupons, redeemed = [], []
    unit_ops = U.plan_ops(
        policy, snap.state.units, result, basket.store_id, m.member_id if m else None, to_us(now)
    )
    counted = {op.offer_id: op for op in unit_ops}
    for applied in result.offers:
        o = applied.offer_id
        p = policy.offers.get(o)
        coupon_id = code = ""
        if p is not None and p.coupon:
            coupon = _wallet_coupon(m, o, now)
            if coupon is not None:
                coupon_id = coupon.coupon_id
                coupons.append(coupon_id)
            else:
                offers = snap.state.code_offers
                code = next((c for c in codes if offers.get(c) == o and c not in used_codes), "")
                row = snap.codes.get(code)
                if not code or row is None or row[1] <= 0:
                    raise Conflict(f"offer {o!r} applied without a coupon left to use")
                used_codes.append(code)
                if m is not None and row[2]:
                    redeemed.append(code)
        if p is not None and p.per_member and m is not None and member is not None:
            period = policy.period_key(p.period, now)
            if m.usage.get((o, period), 0) >= p.per_member:
                raise Conflict(f"offer {o!r}: the member's uses are used up")
            member.periods[o] = period
        used, spent = snap.usage.get(o, (0, 0))
        if p is not None and p.total_uses and used >= p.total_uses:
            raise Conflict(f"offer {o!r}: total uses are used up")
        if p is not None and p.budget_minor and spent + applied.discount_minor > p.budget_minor:
            raise Conflict(f"offer {o!r}: the budget would be overspent")
        counts.append(
            OfferCount(
                o, applied.discount_minor, p.total_uses if p else 0, p.budget_minor if p else 0
            )
        )
        units, store_units = U.use_fields(counted.get(o))
        uses.append(
            OfferUse(
                offer_id=o,
                funder_id=applied.funder_id,
                discount_minor=applied.discount_minor,
                funded_minor=applied.funded_minor,
                points=applied.points,
                coupon_id=coupon_id,
                code=code,
                units=units,
                store_units=store_units,
            )
        )
    if member is not None:
        member.coupons, member.redeemed = tuple(coupons), tuple(redeemed)
    outcome = _outcome(snap, member, result, basket, tuple(uses), policy, now, transaction_id)
    outcome = dataclasses.replace(
        outcome,
        recorded_at=provenance.recorded_at,
        lane_at=provenance.lane_at,
        ruleset_version=provenance.ruleset_version,
    )
    entry = ledger_entry(
        "commit",
        transaction_id,
        transaction_id,
        outcome.member_id,
        now,
        outcome.lines,
        result.payable_minor,
        result.points_earned,
        result.points_redeemed,
        recorded_at=provenance.recorded_at,
        lane_at=provenance.lane_at,
        **effects.context(outcome),
    )
    return CommitPlan(
        transaction_id,
        fingerprint,
        member,
        tuple(counts),
        tuple(used_codes),
        outcome,
        entry,
        unit_ops,
    )


def _member_effects(
    m: MemberState, result: PricingResult, policy: Policy, now: datetime, months: int
) -> MemberEffects:
    """Points (burn soonest expiry first, earn into the lot of the bucket), spend and tier."""
    lots = [dataclasses.replace(x) for x in m.lots]  # the snapshot stays as it was read
    if m.legacy:
        P.rebucket(lots, policy.bucket_end)
    debt, _ = P.settle(lots, m.debt, now)
    burned: tuple[Burned, ...] = ()
    if result.points_redeemed:
        taken = effects.burn_points(lots, result.points_redeemed, now)
        burned = tuple(Burned(lot.lot_id, n, lot.expires_at) for lot, n in taken)
    earned = None
    if result.points_earned:
        available_at, expires_at = policy.earned_lot_times(now)
        new = P.Lot(None, result.points_earned, now, available_at, expires_at)
        earned = P.add_lot(lots, new, now)
        P.check_held(lots, debt, m.member_id)
    debt, _ = P.settle(lots, debt, now)
    spend = snapshot.add_spend(m.spend, now, result.net_minor, policy)
    tier = policy.upgraded_tier(m.tier, tier_spend(policy, spend, now, months))
    # a raise remembers the tier it started from: a reversal never goes below it
    floor = m.tier_floor if tier == m.tier or m.tier_floor is not None else m.tier
    return MemberEffects(
        m.member_id,
        m.version,
        lots,
        burned,
        earned,
        debt,
        spend,
        tier,
        result.net_minor,
        {},
        (),
        (),
        policy.current_keys(now),
        floor,
    )


def _wallet_coupon(m: MemberState | None, offer_id: str, now: datetime) -> WalletCoupon | None:
    """The member's coupon for the offer valid at ``now`` that runs out first."""
    valid = [c for c in (m.wallet if m else ()) if c.offer_id == offer_id and c.usable(now)]
    return min(valid, key=lambda c: (c.valid_until, c.coupon_id), default=None)


def _outcome(
    snap: CommitSnapshot,
    member: MemberEffects | None,
    result: PricingResult,
    basket: Basket,
    uses: tuple[OfferUse, ...],
    policy: Policy,
    now: datetime,
    transaction_id: str,
) -> CommitOutcome:
    m = snap.member
    available_at = expires_at = None
    after: tuple[int, int] | tuple[None, None] = (None, None)
    if member is not None:
        if member.earned is not None:
            available_at, expires_at = policy.earned_lot_times(now)
        after = P.balances(member.lots, member.debt, now)
    return CommitOutcome(
        transaction_id=transaction_id,
        member_id=m.member_id if m else None,
        at=now,
        pricing=None,
        lines=effects.line_details(basket, result),
        offers=uses,
        points_earned=result.points_earned,
        points_redeemed=result.points_redeemed,
        points_available_at=available_at,
        points_expire_at=expires_at,
        qualifying_spend_minor=result.net_minor if m else 0,
        tier_before=m.tier if m else "",
        tier_after=member.tier if member else "",
        store_id=basket.store_id,
        channel=basket.channel,
        segments=m.segments if m else (),
        points_available_after=after[0],
        points_pending_after=after[1],
    )


__all__ = ["plan_commit"]
