"""The store's records (docs/design.md §5): members, what a quote reads, outcomes, the ledger.

Frozen dataclasses of integers, strings and times. The lines and offer uses of outcomes and the
ledger entries are the protobuf messages of ``loyalty/v1/ledger.proto`` (``LedgerLine``,
``LineDiscount``, ``OfferUse``, ``LedgerEntry``), which is also how the stores keep them
(:mod:`server.store.stored`), so a retry is answered with an equal object. Re-exported by
:mod:`server.store.base`, the store's interface.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from engine.pricing.types import AttributeValue, Member, PricingResult, RemainingLimits
from loyalty.v1.ledger_pb2 import LedgerEntry, LedgerLine, OfferUse
from server.store.unit_usage import UnitUsage

# ---------------------------------------------------------------------------------------------
# Members


@dataclass(frozen=True, slots=True)
class Consent:
    marketing: bool = False
    automated_decisions: bool = False
    third_party: bool = False


@dataclass(frozen=True, slots=True)
class MemberProfile:
    """What ``upsert_member`` writes; points, spend and wallet are never written through it."""

    member_id: str
    tier: str = ""
    segments: frozenset[str] = frozenset()
    birthday_month: int = 0  # 1-12, 0 = unknown
    birthday_day: int = 0  # 1-31, 0 = unknown
    enrolled_on: date | None = None
    consent: Consent = Consent()
    # typed attributes (members.proto MemberAttribute), replaced as a whole
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PointLot:
    """Points earned (or restored, or adjusted) together; ``points`` is what is left of them."""

    points: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None  # None = never


class CouponStatus(StrEnum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"  # consent withdrawn (snapshot.revoke_reason): never usable again


@dataclass(frozen=True, slots=True)
class WalletCoupon:
    """A coupon in a member's wallet. ``personalised``: issued by a targeting run (or an
    ``IssueCoupons`` that says so) from the member's data, so it needs marketing and
    automated-decisions consent; withdrawing either revokes it (``status`` REVOKED, with
    ``revoked_reason`` and ``revoked_at``; ``uses_left`` keeps what was left then)."""

    coupon_id: str
    offer_id: str
    uses_left: int
    valid_from: datetime
    valid_until: datetime  # exclusive
    personalised: bool = False
    status: CouponStatus = CouponStatus.ACTIVE
    revoked_reason: str = ""
    revoked_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        """Active, with uses left and valid at ``now``."""
        return (
            self.status == CouponStatus.ACTIVE
            and self.uses_left > 0
            and self.valid_from <= now < self.valid_until
        )


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A member as of ``now``: balances already reflect pending → available and expiry.

    ``points_available`` is net of ``points_debt`` and so may be negative (returns only).
    ``lots`` lists the unexpired lots with points left (pending ones included), soonest expiry
    first; ``wallet`` lists every coupon with uses left, valid or not yet/no longer valid, and
    the revoked ones (``status`` REVOKED), which are never usable.
    """

    member_id: str
    tier: str
    segments: frozenset[str]
    birthday_month: int
    birthday_day: int
    enrolled_on: date | None
    consent: Consent
    points_available: int
    points_pending: int
    points_debt: int
    lots: tuple[PointLot, ...]
    wallet: tuple[WalletCoupon, ...]
    lifetime_spend_minor: int
    rolling_spend_minor: int
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    # the spend buckets (start_us, end_us, amount) inside the store's rolling window, for a tier
    # qualification window shorter than it (server/store/tiers.py tier_spend): filled by
    # get_member and get_members only, not on the pricing path (which never needs them)
    spend: tuple[tuple[int, int, int], ...] = field(default=(), compare=False)

    def engine_member(self, now: datetime) -> Member:
        """The engine's view: wallet = offer id → uses left of the coupons valid at ``now``."""
        wallet: dict[str, int] = {}
        for c in self.wallet:
            if c.usable(now):
                wallet[c.offer_id] = wallet.get(c.offer_id, 0) + c.uses_left
        return Member(
            self.member_id,
            self.tier,
            self.segments,
            self.birthday_month,
            self.points_available,
            wallet,
            self.attributes,
        )


# ---------------------------------------------------------------------------------------------
# Pricing state


class CodeStatus(StrEnum):
    VALID = "VALID"
    INVALID = "INVALID"  # unknown code, or its offer is not in the rule set
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    USED_UP = "USED_UP"  # no uses left, or a per-member code this member already used
    MEMBER_REQUIRED = "MEMBER_REQUIRED"  # per-member or bound code presented without a member
    WRONG_MEMBER = "WRONG_MEMBER"  # a code bound to another member


@dataclass(frozen=True, slots=True)
class PricingState:
    """Everything ``engine.price`` needs, read in one snapshot.

    ``coupons`` are the offer ids of the VALID presented codes, in presentation order (pass
    them as ``engine.price(..., coupons=state.coupons)``); ``code_offers`` maps each valid code
    to its offer.
    """

    member: Member | None
    record: MemberRecord | None
    coupons: tuple[str, ...]
    code_status: Mapping[str, CodeStatus]
    code_offers: Mapping[str, str]
    limits: Mapping[str, RemainingLimits]
    # unit counters of the offers with unit caps (server/store/units.py)
    units: Mapping[str, UnitUsage] = field(default_factory=dict)


PriceFn = Callable[[PricingState], PricingResult]
# the answer to a commit, encoded: (the priced result, the state it was priced on, the outcome
# planned, still without its response) -> CommitResponse bytes
RespondFn = Callable[[PricingResult, PricingState, "CommitOutcome"], bytes]


# ---------------------------------------------------------------------------------------------
# Outcomes and the ledger


def payable(line: LedgerLine) -> int:
    """Money paid for a ledger line (commit) or refunded for it (reversal)."""
    return line.net_minor - line.tender_minor


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    """What a commit did, as stored under its transaction id (the same whether this call
    applied it or a retry read it back).

    A commit made through the service keeps ``response``, the ``CommitResponse`` bytes it
    answered: a retry is answered with those bytes unchanged. ``pricing`` (the priced result)
    is only on outcomes stored before answers were kept, which a retry renders again; a new
    commit's priced result is ``Committed.result`` of the call that applied it.
    """

    transaction_id: str
    member_id: str | None
    at: datetime
    pricing: PricingResult | None
    lines: tuple[LedgerLine, ...]
    offers: tuple[OfferUse, ...]
    points_earned: int
    points_redeemed: int
    points_available_at: datetime | None  # when the earned points can be spent
    points_expire_at: datetime | None
    qualifying_spend_minor: int
    tier_before: str
    tier_after: str
    # checkout context, for settlement per store and for replaying the basket (simulation)
    store_id: str = ""
    channel: str = ""
    segments: tuple[str, ...] = ()  # the member's segments when the basket was priced
    # the member's balances right after the commit (a retry answers with these too)
    points_available_after: int | None = None
    points_pending_after: int | None = None
    # provenance: ``at`` is the pricing time (the server's clock; the lane's for an offline
    # sync); when the server recorded it (None = ``at``), what the lane's clock said (None =
    # nothing sent) and the rule-set version that priced it (0 = not recorded)
    recorded_at: datetime | None = None
    lane_at: datetime | None = None
    ruleset_version: int = 0
    response: bytes = b""  # the CommitResponse answered (empty: a library commit, or legacy)


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a commit records beside its pricing time: when the server recorded it (None = the
    pricing time), what the lane's clock said (None = nothing sent) and the rule-set version
    that priced it."""

    recorded_at: datetime | None = None
    lane_at: datetime | None = None
    ruleset_version: int = 0


NO_PROVENANCE = Provenance()


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    transaction_id: str
    member_id: str | None
    at: datetime
    lines: tuple[LedgerLine, ...]  # what this cancel reversed (not what earlier returns did)
    refund_minor: int
    points_clawed_back: int
    points_restored: int  # points tender given back
    points_forfeited: int  # restored points whose original lot had expired meanwhile
    debt_added: int
    offers_released: tuple[str, ...]  # offer ids whose use (and coupon) was given back
    # the member's balances and tier right after the reversal, stored with the outcome so a
    # retry answers with these too (None: no member, or stored before they were kept)
    points_available_after: int | None = None
    points_pending_after: int | None = None
    tier_after: str | None = None
    # True when the store answered with the outcome stored by an earlier call (a retry); set
    # on the way out, always False as stored, and not compared: a retry's outcome equals the first
    repeated: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class ReturnOutcome:
    return_id: str
    transaction_id: str
    member_id: str | None
    at: datetime
    lines: tuple[LedgerLine, ...]  # the increase refunded by this return, per line
    refund_minor: int
    points_clawed_back: int
    points_restored: int
    points_forfeited: int
    debt_added: int
    # the member's balances and tier right after the reversal, stored with the outcome so a
    # retry answers with these too (None: no member, or stored before they were kept)
    points_available_after: int | None = None
    points_pending_after: int | None = None
    tier_after: str | None = None
    # True when the store answered with the outcome stored by an earlier call (a retry); set
    # on the way out, always False as stored, and not compared: a retry's outcome equals the first
    repeated: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class IssueOutcome:
    issue_id: str
    offer_id: str
    coupon_ids: tuple[str, ...]  # one per member, in the order given
    # personalised issues: members without marketing and automated-decisions consent, given
    # nothing (and not in coupon_ids)
    skipped: tuple[str, ...] = ()
    # issues with reserve_units: members given nothing for lack of unreserved units
    unreserved: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AdjustOutcome:
    adjustment_id: str
    member_id: str
    points: int
    reason: str
    at: datetime
    debt_added: int
    points_available_after: int


def sign(entry: LedgerEntry) -> int:
    """-1 for a reversal (its amounts are non-negative; multiply to net them against commits),
    1 for a commit or an adjustment."""
    return -1 if entry.kind in ("cancel", "return") else 1


def funded_by(entry: LedgerEntry) -> dict[str, int]:
    """Signed vendor funding per funder in ``entry`` (settlement)."""
    out: dict[str, int] = {}
    k = sign(entry)
    for line in entry.lines:
        for d in line.discounts:
            out[d.funder_id] = out.get(d.funder_id, 0) + k * d.funded_minor
    return out


LEDGER_KINDS = ("commit", "cancel", "return", "adjust")


@dataclass(frozen=True, slots=True)
class TierRun:
    """A tier requalification run's outcome (:mod:`server.store.tiers`): the period end
    requalified and what it did to members; ``repeated`` when it had completed before this
    call (nothing changed now)."""

    run_id: str
    period_end: datetime
    upgraded: int = 0
    downgraded: int = 0
    kept: int = 0
    repeated: bool = False
