"""The Redis store: production state for many lanes and many server processes (docs/design.md §5).

Every request is one consistent read (a ``MULTI``/``EXEC`` pipeline: one round trip) and, for
a state change, one Lua script (:mod:`server.store.redis.scripts`) that re-checks what the
change depends on and applies all of it atomically, ledger entry included. Python never writes
what it read without that check (optimistic concurrency): when a script answers ``CONFLICT``
(another lane moved the member's document, or an offer's last uses or budget went meanwhile)
the operation reads again and tries again, ``max_attempts`` times, then raises
:class:`Conflict` (gRPC ``ABORTED``). A commit's loop (read, price, plan, apply) is the one
every store shares, :mod:`server.store.checkout`; this store reads its snapshot and applies
its plan, and makes lanes that race on one member take turns (:meth:`RedisStore.contended`,
a short per-member lease: :class:`server.store.redis.checkout.Turns`).

The store is a facade over one :class:`~server.store.redis.io.RedisIO` (client, keys, scripts,
retries: :mod:`server.store.redis.io`) and the operations that take it:

- :mod:`server.store.redis.state`: the consistent read and the inputs of a quote;
- :mod:`server.store.redis.checkout`: a commit's snapshot and apply;
- :mod:`server.store.redis.reversals`: cancel and return;
- :mod:`server.store.redis.members`: profiles, segments, wallet coupons, points adjustments.

Keys are listed in :mod:`server.store.redis.keys`, documents in :mod:`server.store.redis.docs`.

On a Redis Cluster (``RedisSettings.cluster``) the same operations run with each member's keys
in a home slot and the global counters reserved before a commit applies
(:mod:`server.store.redis.homes`); a background thread sweeps what a dead commit left
reserved (:meth:`RedisStore.sweep`); the ledger is one stream per home slot, merged when read
(:mod:`server.store.redis.ledger`). What does not run there yet is refused with InvalidInput.

Quotes read through a per-process cache (:mod:`server.store.redis.cache`, on unless
``member_cache`` is off; on a cluster :mod:`server.store.redis.cache_cluster`, tracking every
primary) that Redis keeps coherent with every process's writes; each write
operation here also drops the keys it wrote from this process's cache as it returns, so a lane
quoting right after its own commit sees it.

Durability is Redis's: run it with ``appendonly yes`` and ``appendfsync always`` and every
acknowledged commit survives a crash of Redis or of its machine; with ``appendfsync everysec``
(Redis's default) up to about one second of acknowledged commits can be lost on a machine or
Redis crash (a retry under the same transaction id then applies it again, once); without the
AOF everything since the last RDB snapshot is lost. Scripts are atomic in the AOF too: a crash
never leaves half a commit. README.md ("Durability") has the table.

Redis unreachable: connects time out after ``connect_timeout_s``, calls after
``socket_timeout_s``; the operation raises :class:`Unavailable` (gRPC ``UNAVAILABLE``) having
changed nothing, and the connection pool reconnects by itself once Redis is back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

import redis

from server.settings import RedisSettings
from server.store.base import (
    AdjustOutcome,
    CancelOutcome,
    CommitPlan,
    CommitSnapshot,
    IssueOutcome,
    LedgerEntry,
    MemberProfile,
    MemberRecord,
    PricingState,
    ReturnOutcome,
)
from server.store.policy import Policy
from server.store.redis import checkout as redis_checkout
from server.store.redis import homes
from server.store.redis import ledger as redis_ledger
from server.store.redis import members as redis_members
from server.store.redis import reversals as redis_reversals
from server.store.redis import state as redis_state
from server.store.redis import tiers as redis_tiers
from server.store.redis import units as redis_units
from server.store.redis.cache import MemberCache
from server.store.redis.cache_cluster import ClusterMemberCache
from server.store.redis.campaign_records import CampaignRecords
from server.store.redis.io import RedisIO, connect, unavailable
from server.store.redis.keys import Keys
from server.store.snapshot import (
    check_id,
    check_issue,
    check_profile,
    check_time,
)
from server.store.tiers import TierRun
from server.store.units import check_reserve

log = logging.getLogger(__name__)


class RedisStore(CampaignRecords):
    """The :class:`server.store.base.Store` on Redis."""

    def __init__(
        self,
        url: str | None = None,
        settings: RedisSettings | None = None,
        client: redis.Redis | None = None,
        *,
        sweep_s: float = homes.SWEEP_S,
    ) -> None:
        settings = settings or RedisSettings()
        if url is not None:
            settings = dataclasses.replace(settings, url=url)
        self.settings = settings
        self.max_attempts = settings.max_attempts  # of a commit (server.store.checkout)
        client = client or connect(
            settings.url,
            connect_timeout_s=settings.connect_timeout_s,
            socket_timeout_s=settings.socket_timeout_s,
            max_connections=settings.max_connections,
            cluster=settings.cluster,
        )
        keys = Keys(settings.prefix, cluster=settings.cluster)
        cache = None
        if settings.member_cache:  # on a cluster: one tracking connection per primary
            kind = ClusterMemberCache if settings.cluster else MemberCache
            cache = kind(client, tuple(keys.quote_prefixes), settings.member_cache_size)
        self.io = RedisIO(
            client,
            keys,
            ttl_ms=settings.tx_retention_s * 1000,
            max_attempts=settings.max_attempts,
            spend_months=settings.rolling_spend_months,
            cache=cache,
            wait_replicas=settings.replicas,
            wait_timeout_ms=settings.wait_timeout_ms,
        )
        # lanes racing on one member take turns (server.store.redis.checkout); a turn's BLPOP
        # must end before the client's socket timeout does
        self.turns = redis_checkout.Turns(
            self.io, poll_s=min(redis_checkout.TURN_POLL_S, settings.socket_timeout_s / 2)
        )
        # on a cluster, a background thread settles the reservations of commits that died
        # between their steps (server.store.redis.homes), every sweep_s
        self._sweeper = homes.Sweeper(self.io, sweep_s) if settings.cluster and sweep_s else None

    @property
    def client(self) -> redis.Redis:
        """The Redis client (its pool is shared by every operation of this store)."""
        return self.io.client

    @property
    def keys(self) -> Keys:
        """The key schema under ``settings.prefix``."""
        return self.io.keys

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.close()
        self.io.close()

    @unavailable
    def sweep(self, now_us: int | None = None) -> dict[str, str]:
        """On a cluster: settle the reservations of global counters past their deadline (a
        commit that died between reserving and confirming): ``{attempt id: 'c'|'x'}`` for
        those confirmed or released now. Nothing to do on a single Redis."""
        return homes.sweep(self.io, now_us) if self.keys.cluster else {}

    def _wrote(self, keys: Iterable[str]) -> None:
        """Drop what this process just wrote from its cache: Redis's invalidation of it may
        still be on its way when the caller quotes next."""
        if self.io.cache is not None:
            self.io.cache.drop(keys)

    def _reversed(self, member_id: str | None) -> None:
        """After a cancel or a return: the member, the offer counters and the codes given
        back (which codes the transaction used is not known here: all of them)."""
        if self.io.cache is not None:
            k, cache = self.io.keys, self.io.cache
            cache.drop([k.usage, *([k.member(member_id)] if member_id else [])])
            for prefix in k.quote_prefixes[1:]:  # codes, offer counters, units
                cache.drop_prefix(prefix)

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- members -------------------------------------------------------------------------------

    @unavailable
    def upsert_member(self, profile: MemberProfile, now: datetime) -> MemberRecord:
        try:
            record, revoked = redis_members.upsert_member(
                self.io, profile, check_profile(profile, now)
            )
            # then the revoked coupons' reserved units go back to the pool (a crash in between
            # leaves them held until the reservation's deadline, never sold twice)
            for coupon_id, offer_id in revoked:
                redis_units.drop_reservations(self.io, offer_id, [coupon_id])
                self._wrote([self.keys.units(offer_id)])
            return record
        finally:
            self._wrote([self.keys.member(profile.member_id)])

    @unavailable
    def import_members(
        self, profiles: Iterable[MemberProfile], now: datetime, batch: int = 10_000
    ) -> int:
        """Bulk enrolment (migrations, demo data): create members that do not exist yet,
        pipelined; existing members are left untouched. Returns how many were created."""

        def checked() -> Iterable[MemberProfile]:
            for profile in profiles:
                check_id("member_id", profile.member_id)
                yield profile

        try:
            return redis_members.import_members(self.io, checked(), check_time("now", now), batch)
        finally:
            if self.io.cache is not None:  # a bulk load: forget all rather than keep the ids
                self.io.cache.flush()

    @unavailable
    def get_member(self, member_id: str, now: datetime) -> MemberRecord:
        now = check_time("now", now)
        months = self.settings.rolling_spend_months
        return self.io.member_doc(member_id).record(now, months, with_spend=True)

    @unavailable
    def get_members(self, member_ids: Sequence[str], now: datetime) -> dict[str, MemberRecord]:
        return redis_members.get_members(self.io, member_ids, check_time("now", now))

    @unavailable
    def update_segments(
        self, changes: Mapping[str, tuple[Iterable[str], Iterable[str]]], now: datetime
    ) -> int:
        try:
            return redis_members.update_segments(self.io, changes, check_time("now", now))
        finally:
            self._wrote(self.keys.member(m) for m in changes)

    @unavailable
    def pricing_state(
        self,
        policy: Policy,
        member_id: str | None,
        offer_ids: Iterable[str] | None,
        coupon_codes: Sequence[str],
        now: datetime,
    ) -> PricingState:
        return redis_state.pricing_state(
            self.io,
            policy,
            member_id,
            offer_ids,
            list(coupon_codes),
            check_time("now", now),
        )[0]

    # -- checkout ------------------------------------------------------------------------------

    @unavailable
    def commit_snapshot(
        self,
        policy: Policy,
        transaction_id: str,
        member_id: str | None,
        coupon_codes: Sequence[str],
        now: datetime,
    ) -> CommitSnapshot:
        return redis_checkout.read_snapshot(
            self.io, policy, transaction_id, member_id, list(coupon_codes), check_time("now", now)
        )

    def contended(
        self, member_id: str, deadline: float | None
    ) -> AbstractContextManager[Callable[[int], bool]]:
        return self.turns.contended(member_id, deadline)

    @unavailable
    def apply_commit(self, snapshot: CommitSnapshot, plan: CommitPlan) -> bool:
        k = self.keys
        turn = self.turns.token(plan.member.member_id) if plan.member is not None else ""
        try:
            applied = redis_checkout.apply(self.io, snapshot, plan, turn)
            if applied and turn and plan.member is not None:
                self.turns.given(plan.member.member_id)
            return applied
        finally:
            written = [k.usage, *(k.code(c) for c in plan.codes)]
            if k.cluster:  # each offer's counter is a key of its own there
                written += (k.counter(f"o:{o.offer_id}") for o in plan.offers)
            written += (k.units(op.offer_id) for op in plan.units)
            if plan.member is not None:
                written.append(k.member(plan.member.member_id))
            self._wrote(written)

    @unavailable
    def cancel(
        self, transaction_id: str, now: datetime, *, policy: Policy | None = None
    ) -> CancelOutcome:
        outcome = None
        try:
            outcome = redis_reversals.cancel(
                self.io, transaction_id, check_time("now", now), policy
            )
            return outcome
        finally:
            self._reversed(outcome.member_id if outcome else None)

    @unavailable
    def return_lines(
        self,
        return_id: str,
        transaction_id: str,
        lines: Sequence[tuple[str, int]],
        now: datetime,
        *,
        policy: Policy | None = None,
    ) -> ReturnOutcome:
        now = check_time("now", now)
        check_id("return_id", return_id)
        outcome = None
        try:
            outcome = redis_reversals.return_lines(
                self.io, return_id, transaction_id, list(lines), now, policy
            )
            return outcome
        finally:
            self._reversed(outcome.member_id if outcome else None)

    @unavailable
    def requalify_tiers(
        self, policy: Policy, run_id: str, period_end: datetime, now: datetime
    ) -> TierRun:
        check_id("run_id", run_id)
        return redis_tiers.requalify(self.io, policy, run_id, period_end, check_time("now", now))

    # -- coupons and points --------------------------------------------------------------------

    @unavailable
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
        window = check_issue(issue_id, offer_id, uses, valid_from, valid_until, now)
        hold = check_reserve(reserve_units, reserve_until, units_cap, now)
        try:
            return redis_units.issue(
                self.io,
                issue_id,
                offer_id,
                member_ids,
                uses,
                window,
                check_time("now", now),
                personalised,
                (reserve_units, hold, units_cap),
            )
        finally:
            self._wrote([*(self.keys.member(m) for m in member_ids), self.keys.units(offer_id)])

    @unavailable
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
        now = check_time("now", now)
        check_id("adjustment_id", adjustment_id)
        try:
            return redis_members.adjust_points(
                self.io, adjustment_id, member_id, points, reason, now, expires_at, allow_negative
            )
        finally:
            self._wrote([self.keys.member(member_id)])

    @unavailable
    def ledger(self, since: int | None = None, limit: int | None = None) -> list[LedgerEntry]:
        return redis_ledger.read(self.io, since, limit)


__all__ = ["RedisStore"]
