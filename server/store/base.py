"""The state store interface (docs/design.md §5): the ``Store`` protocol and its value types.

Every implementation (``embedded/`` on SQLite, ``redis/`` on Redis) runs the same contract
suite (``tests/test_store_contract.py``). Nothing here names a database: implementations take
and return only the records of :mod:`server.store.records` (re-exported here) and the commit
snapshot and plan below, and raise only errors of the family in :mod:`engine.errors`, which
the server's interceptor maps to gRPC codes.

Conventions
-----------
- Time is always passed in (``now``, timezone-aware); a store never reads the clock, so tests
  control pending and expiry exactly.
- Money is integer minor units, points are integers.
- Every operation is one atomic step (a transaction, a Lua script) and every operation that has
  an id (transaction, return, issue, adjustment) is idempotent on it: the same request returns the
  stored outcome, a different request under the same id raises :class:`AlreadyExists`. A
  commit is a read (``commit_snapshot``) and an atomic apply (``apply_commit``) that refuses a
  plan made on state that moved; the loop around them is :func:`server.store.checkout.commit`.
- Reversal amounts (cancel, return) are non-negative; the ledger entry ``kind`` gives the
  direction (:func:`sign`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from loyalty.v1.ledger_pb2 import LedgerEntry, LedgerLine, OfferUse
from server.store import points as P
from server.store.codes import BatchRecord, CodeBatch, CodeInfo
from server.store.policy import Policy
from server.store.records import (
    LEDGER_KINDS,
    AdjustOutcome,
    CancelOutcome,
    CodeStatus,
    CommitOutcome,
    Consent,
    CouponStatus,
    IssueOutcome,
    MemberProfile,
    MemberRecord,
    PointLot,
    PriceFn,
    PricingState,
    Provenance,
    RespondFn,
    ReturnOutcome,
    TierRun,
    WalletCoupon,
    funded_by,
    payable,
    sign,
)
from server.store.units import UnitOp

# ---------------------------------------------------------------------------------------------
# A commit: the snapshot it is planned on and the plan a store applies (server/store/plan.py)

# (start_us, end_us, amount): the qualifying spend of the commits made in [start, end), a day
# or month of the rule set's zone, net of their returns (docs/design.md §5, Points)
Spend = tuple[int, int, int]
# (offer_id, uses_left, per_member, valid_from_us, valid_until_us, bound member or "") of a
# code coupon
CodeRow = tuple[str, int, bool, int, int, str]


@dataclass(slots=True)
class MemberState:
    """A member as stored, read with its version: what a plan computes from.

    ``lots`` and ``spend`` are the stored rows (not settled at any time); ``wallet`` holds the
    coupons with uses left; ``usage`` the member-limit uses of the current periods. ``source``
    is the store's own form of the member (Redis: its document, rewritten whole by the apply;
    SQLite: None, rows are written one by one)."""

    member_id: str
    version: int
    tier: str
    segments: tuple[str, ...]  # sorted
    lots: list[P.Lot]
    debt: int
    legacy: bool  # lots stored before they were bucketed: the commit rebuckets them
    spend: list[Spend]
    wallet: tuple[WalletCoupon, ...]
    usage: Mapping[tuple[str, str], int]  # (offer id, period key) -> uses
    source: object = None
    # the tier held before commits raised it (Policy.reversed_tier); None = not raised since
    tier_floor: str | None = None


@dataclass(slots=True)
class CommitSnapshot:
    """One consistent read for a commit. ``stored`` = ``(fingerprint, outcome)`` when the
    transaction id was committed before (then nothing else is read). ``usage`` = offer id ->
    ``(uses, budget spent)`` of the offers that have limits; ``codes`` = each presented code's
    row (None when unknown); ``spend_months`` the rolling window the store keeps."""

    state: PricingState
    member: MemberState | None
    usage: Mapping[str, tuple[int, int]]
    codes: Mapping[str, CodeRow | None]
    spend_months: int
    stored: tuple[str, CommitOutcome] | None = None


EMPTY_STATE = PricingState(None, None, (), {}, {}, {})


def replay(fingerprint: str, outcome: CommitOutcome, spend_months: int) -> CommitSnapshot:
    """The snapshot of a transaction id committed before: only its stored outcome matters."""
    return CommitSnapshot(EMPTY_STATE, None, {}, {}, spend_months, (fingerprint, outcome))


@dataclass(frozen=True, slots=True)
class Burned:
    """Points a commit burns from one lot (``lot_id`` None: a lot the store has not numbered)."""

    lot_id: int | None
    points: int
    expires_at: datetime | None


@dataclass(slots=True)
class MemberEffects:
    """What a commit writes to its member: the lots after burn and earn (changed ones flagged,
    see :class:`server.store.points.Lot`), the debt, spend buckets, tier and lifetime spend
    after, and the uses it counts against the member."""

    member_id: str
    version: int  # the version the plan was made on: applying it requires it unchanged
    lots: list[P.Lot]
    burned: tuple[Burned, ...]
    earned: P.Lot | None  # the lot the earned points joined (one per bucket)
    debt: int
    spend: list[Spend]
    tier: str
    spend_minor: int  # qualifying spend added (lifetime and rolling)
    periods: dict[str, str]  # offer id -> member-limit period key counted
    coupons: tuple[str, ...]  # wallet coupons used, one use each
    redeemed: tuple[str, ...]  # per-member codes this member has now used
    current_periods: tuple[str, ...]  # member-limit periods current now (others are past)
    tier_floor: str | None = None  # the member's floor after (Policy.reversed_tier)


@dataclass(frozen=True, slots=True)
class OfferCount:
    """One use of an offer and its discount, counted globally; the caps (0 = none) are what
    the apply re-checks against the stored counters."""

    offer_id: str
    discount_minor: int
    uses_cap: int
    budget_cap: int


@dataclass(frozen=True, slots=True)
class CommitPlan:
    transaction_id: str
    fingerprint: str
    member: MemberEffects | None
    offers: tuple[OfferCount, ...]
    codes: tuple[str, ...]  # code coupons consumed, one use each
    outcome: CommitOutcome
    entry: LedgerEntry
    units: tuple[UnitOp, ...] = ()  # unit counters and reservations (server/store/units.py)


# ---------------------------------------------------------------------------------------------
# The interface


@runtime_checkable
class Store(Protocol):
    """docs/design.md §5 state. Each method is one atomic step; see the module docstring."""

    def upsert_member(self, profile: MemberProfile, now: datetime) -> MemberRecord:
        """Create the member or replace its profile fields; balances are never touched. In the
        same atomic step, a profile without marketing or automated-decisions consent revokes
        the member's active personalised coupons with uses left
        (:func:`server.store.snapshot.revoke_reason`); nothing ever restores them."""
        ...

    def get_member(self, member_id: str, now: datetime) -> MemberRecord:
        """The member as of ``now``. Raises NotFound."""
        ...

    def get_members(self, member_ids: Sequence[str], now: datetime) -> dict[str, MemberRecord]:
        """Many members as of ``now`` in few round trips; unknown ids are left out."""
        ...

    def update_segments(
        self, changes: Mapping[str, tuple[Iterable[str], Iterable[str]]], now: datetime
    ) -> int:
        """Per member ``(add, remove)`` segment tags, each member's change atomic (other
        profile fields and concurrent changes are kept); unknown members are skipped.
        Returns how many members changed."""
        ...

    def pricing_state(
        self,
        policy: Policy,
        member_id: str | None,
        offer_ids: Iterable[str] | None,
        coupon_codes: Sequence[str],
        now: datetime,
    ) -> PricingState:
        """Engine inputs for a quote; ``offer_ids=None`` = every offer with limits."""
        ...

    @property
    def max_attempts(self) -> int:
        """How often :func:`server.store.checkout.commit` reads and plans again after a
        refused apply before it gives up with Conflict."""
        ...

    def contended(
        self, member_id: str, deadline: float | None
    ) -> AbstractContextManager[Callable[[int], bool]]:
        """Around one commit's attempts for ``member_id``: a ``turn(attempt)`` that the loop
        (:func:`server.store.checkout.commit`) calls before each attempt. A store whose writes
        race (Redis) makes a contender wait there for the member's turn, so that lanes racing
        on one member take turns instead of pricing again and again; False when no turn came
        by ``deadline`` (``time.monotonic()``; None: the store's own bound), and the commit
        gives up (:class:`Conflict`). Waiting does not count as an attempt. Leaving the
        context gives the turn up. A store that serialises its writes itself (SQLite) answers
        True at once. Only liveness depends on turns: ``apply_commit`` still refuses a plan
        made on state that moved."""
        ...

    def commit_snapshot(
        self,
        policy: Policy,
        transaction_id: str,
        member_id: str | None,
        coupon_codes: Sequence[str],
        now: datetime,
    ) -> CommitSnapshot:
        """One consistent read for a commit (the stored outcome alone when the id was
        committed before); NotFound for an unknown member."""
        ...

    def apply_commit(self, snapshot: CommitSnapshot, plan: CommitPlan) -> bool:
        """Apply ``plan`` (made on ``snapshot``) atomically, exactly once; False, with nothing
        written, when the member's version, an offer's counters or a code's uses moved since
        the read, or the transaction was committed meanwhile (read again)."""
        ...

    def cancel(
        self, transaction_id: str, now: datetime, *, policy: Policy | None = None
    ) -> CancelOutcome:
        """Reverse what has not been returned yet; idempotent. With the rules' ``policy`` the
        member's tier is re-evaluated in the same step (:meth:`Policy.reversed_tier`); without
        one it is left as it is."""
        ...

    def return_lines(
        self,
        return_id: str,
        transaction_id: str,
        lines: Sequence[tuple[str, int]],
        now: datetime,
        *,
        policy: Policy | None = None,
    ) -> ReturnOutcome:
        """Return ``(line_id, quantity)`` units; cumulative arithmetic; idempotent per id; the
        tier as for :meth:`cancel`."""
        ...

    def requalify_tiers(
        self, policy: Policy, run_id: str, period_end: datetime, now: datetime
    ) -> TierRun:
        """Requalify every member at ``period_end`` (:mod:`server.store.tiers`), each member
        atomically beside concurrent commits; idempotent per ``run_id`` (AlreadyExists for the
        id with another period; FailedPrecondition when another run requalified this period or
        a later one)."""
        ...

    def issue_coupons(
        self,
        issue_id: str,
        offer_id: str,
        member_ids: Sequence[str],
        uses: int,
        valid_from: datetime,
        valid_until: datetime,
        now: datetime,
        *,
        personalised: bool = False,
        reserve_units: int = 0,
        reserve_until: datetime | None = None,
        units_cap: int = 0,
    ) -> IssueOutcome:
        """Put one wallet coupon per member; idempotent per (issue_id, member). A
        ``personalised`` issue skips (``IssueOutcome.skipped``) members without marketing
        and automated-decisions consent (:func:`server.store.snapshot.may_personalise`), read
        in the same atomic step; a coupon already issued under the id is returned as it is
        (revoked or not). ``reserve_units`` > 0 also holds that many of the offer's
        ``units_cap`` (its ``Limits.total_units``) for each member until ``reserve_until``
        (:mod:`server.store.units`); members for whom not enough units are left unreserved
        get nothing (``IssueOutcome.unreserved``)."""
        ...

    def release_reservation(self, member_id: str, offer_id: str, now: datetime) -> int:
        """Give the units still held for the member on the offer back to everyone; returns
        how many (0 when none). Idempotent."""
        ...

    def reservations(self, member_id: str, now: datetime) -> dict[str, tuple[int, datetime]]:
        """Wallet coupon id -> (units still held, until) of the member's live reservations."""
        ...

    def create_codes(
        self,
        offer_id: str,
        codes: Sequence[str],
        uses_per_code: int,
        per_member: bool,
        valid_from: datetime,
        valid_until: datetime,
    ) -> int:
        """Create code coupons; returns how many were new (identical re-creation is a no-op)."""
        ...

    def create_code_batch(self, batch: CodeBatch, now: datetime) -> BatchRecord:
        """Record ``batch`` and generate its codes, unique across every batch, in chunks (each
        atomic); idempotent per batch id (the same batch again completes and returns it,
        another under the id raises AlreadyExists)."""
        ...

    def code_batch(self, batch_id: str) -> BatchRecord | None:
        """A stored batch, or None."""
        ...

    def code_batches(self) -> list[BatchRecord]:
        """Every batch, oldest first."""
        ...

    def coupon_code(self, code: str) -> CodeInfo:
        """One code coupon (of a batch or not); NotFound when unknown."""
        ...

    def list_codes(
        self, batch_id: str, status: str, cursor: str, limit: int, now: datetime
    ) -> tuple[list[CodeInfo], str]:
        """A page of at most ``limit`` codes of batches (``batch_id`` "" = all) in generation
        order, only those of ``status`` (:data:`server.store.codes.STATUSES`, "" = any) at
        ``now``; and the cursor of the next page ("" = none). A page may be short while more
        follow. NotFound for an unknown batch; InvalidInput on ``page_token`` for a bad
        cursor."""
        ...

    def adjust_points(
        self,
        adjustment_id: str,
        member_id: str,
        points: int,
        reason: str,
        now: datetime,
        *,
        expires_at: datetime | None = None,
        allow_negative: bool = False,
    ) -> AdjustOutcome:
        """Add a lot (points > 0) or burn FIFO (points < 0); idempotent per id."""
        ...

    def ledger(self, since: int | None = None, limit: int | None = None) -> list[LedgerEntry]:
        """Ledger entries with ``seq > since``, oldest first."""
        ...

    def shopping_list_id(self, member_id: str, now: datetime) -> str:
        """The member's shopping-list id (:mod:`server.store.lists`): drawn at random and
        stored atomically on the first call, the same ever after. Raises NotFound."""
        ...

    def list_member(self, list_id: str) -> str | None:
        """The member whose shopping-list id ``list_id`` is; None when it is no list."""
        ...

    def close(self) -> None: ...


__all__ = [
    "LEDGER_KINDS",
    "AdjustOutcome",
    "Burned",
    "CancelOutcome",
    "CodeRow",
    "CodeStatus",
    "CommitOutcome",
    "CommitPlan",
    "CommitSnapshot",
    "Consent",
    "CouponStatus",
    "EMPTY_STATE",
    "IssueOutcome",
    "LedgerEntry",
    "LedgerLine",
    "MemberEffects",
    "MemberProfile",
    "MemberRecord",
    "MemberState",
    "OfferCount",
    "OfferUse",
    "PointLot",
    "PriceFn",
    "RespondFn",
    "PricingState",
    "Provenance",
    "ReturnOutcome",
    "Spend",
    "Store",
    "TierRun",
    "WalletCoupon",
    "funded_by",
    "payable",
    "replay",
    "sign",
]
