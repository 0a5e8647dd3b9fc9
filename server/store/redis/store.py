"""The Redis store: production state for many lanes and many server processes (DESIGN.md §5).

Every request is one consistent read (a ``MULTI``/``EXEC`` pipeline: one round trip) and, for
a state change, one Lua script (:mod:`server.store.redis.scripts`) that re-checks what the
change depends on and applies all of it atomically, ledger entry included. Python never writes
what it read without that check (optimistic concurrency): when a script answers ``CONFLICT``
(another lane moved the member's document, or an offer's last uses or budget went meanwhile)
the store re-reads, re-prices with ``price_fn`` and tries again, ``max_attempts`` times, then
raises :class:`Conflict` (gRPC ``ABORTED``).

Keys are listed in :mod:`server.store.redis.keys`, documents in :mod:`server.store.redis.docs`,
commit/cancel/return in :mod:`server.store.redis.checkout`.

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
import functools
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from engine.pricing.types import Basket
from loyalty.v1 import rules_pb2
from server.store import codec
from server.store.base import (
    AdjustOutcome,
    AlreadyExists,
    CancelOutcome,
    CommitOutcome,
    IssueOutcome,
    LedgerEntry,
    MemberProfile,
    MemberRecord,
    NotFound,
    PriceFn,
    PricingState,
    ReturnOutcome,
    Unavailable,
)
from server.store.policy import policy_for
from server.store.redis import checkout as redis_checkout
from server.store.redis import members as redis_members
from server.store.redis.docs import MemberDoc, dumps
from server.store.redis.keys import Keys, budget_field, uses_field
from server.store.redis.scripts import SCRIPTS
from server.store.snapshot import (
    CodeRow,
    check_codes,
    check_id,
    check_issue,
    check_profile,
    check_time,
    to_us,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str = "redis://127.0.0.1:6379/0"  # or unix:///path/redis.sock
    prefix: str = "loyalty:"
    # transactions, returns, adjustments (0 = forever): longer than the return window; a
    # 20-line commit keeps about 3 KB of Redis memory for this long
    tx_retention_s: int = 60 * 86400
    max_attempts: int = 16  # optimistic retries of one operation under contention
    connect_timeout_s: float = 0.5
    socket_timeout_s: float = 2.0
    max_connections: int = 64
    rolling_spend_months: int = 12

    @classmethod
    def from_env(cls, prefix: str = "LOYALTY_", **overrides: Any) -> RedisSettings:
        env, d = os.environ, cls()
        values: dict[str, Any] = dict(
            url=env.get(f"{prefix}REDIS_URL", d.url),
            prefix=env.get(f"{prefix}REDIS_PREFIX", d.prefix),
            tx_retention_s=int(env.get(f"{prefix}TX_RETENTION_S", d.tx_retention_s)),
            max_attempts=int(env.get(f"{prefix}REDIS_MAX_ATTEMPTS", d.max_attempts)),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _unavailable(method: Callable[..., T]) -> Callable[..., T]:
    """Redis errors that mean 'not reachable now' become Unavailable; nothing was applied."""

    @functools.wraps(method)
    def wrapped(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except (
            redis.ConnectionError,
            redis.TimeoutError,
            redis.BusyLoadingError,
            redis.ReadOnlyError,
        ) as exc:
            raise Unavailable(f"redis unavailable: {exc}") from exc
        except redis.ResponseError as exc:
            if "OOM" in str(exc) or "MISCONF" in str(exc):
                raise Unavailable(f"redis refused the write: {exc}") from exc
            raise

    return wrapped


@dataclass(slots=True)
class Snapshot:
    """One consistent read: the documents and counters a quote or a commit depends on."""

    tx: bytes | None
    member: MemberDoc | None
    usage: dict[str, tuple[int, int]]
    codes: dict[str, CodeRow | None]


class RedisStore:
    """The :class:`server.store.base.Store` on Redis."""

    def __init__(
        self,
        url: str | None = None,
        settings: RedisSettings | None = None,
        client: redis.Redis | None = None,
    ):
        settings = settings or RedisSettings()
        if url is not None:
            settings = dataclasses.replace(settings, url=url)
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.client = client or redis.Redis.from_url(
            settings.url,
            socket_connect_timeout=settings.connect_timeout_s,
            socket_timeout=settings.socket_timeout_s,
            max_connections=settings.max_connections,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        self.scripts = {name: self.client.register_script(src) for name, src in SCRIPTS.items()}
        self.ttl_ms = settings.tx_retention_s * 1000

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> list:
        reply = self.scripts[script](keys=keys, args=args)
        return [x.decode() if isinstance(x, bytes) else x for x in reply]

    def attempts(self) -> Iterable[int]:
        """Attempt numbers, with a short random pause between them (lanes racing on one
        member or on an offer's last uses spread out instead of colliding again)."""
        for attempt in range(self.settings.max_attempts):
            if attempt:
                time.sleep(random.uniform(0, 0.0005 * min(attempt, 8)))
            yield attempt

    def snapshot(
        self,
        *,
        tx: str | None = None,
        member_id: str | None = None,
        offer_ids: Sequence[str] = (),
        codes: Sequence[str] = (),
    ) -> Snapshot:
        k = self.keys
        codes = list(dict.fromkeys(codes))
        pipe = self.client.pipeline(transaction=True)
        if tx is not None:
            pipe.get(k.tx(tx))
        if member_id is not None:
            pipe.get(k.member(member_id))
        if offer_ids:
            pipe.hmget(k.usage, [f for o in offer_ids for f in (uses_field(o), budget_field(o))])
        for code in codes:
            pipe.hmget(k.code(code), "offer", "left", "per_member", "from_us", "until_us")
        replies = iter(pipe.execute())
        tx_raw = next(replies) if tx is not None else None
        member = MemberDoc.load(member_id, next(replies)) if member_id is not None else None
        usage = {}
        if offer_ids:
            values = next(replies)
            usage = {
                o: (int(values[2 * i] or 0), int(values[2 * i + 1] or 0))
                for i, o in enumerate(offer_ids)
            }
        rows: dict[str, CodeRow | None] = {}
        for code in codes:
            r = next(replies)
            rows[code] = (
                None
                if r[0] is None
                else (r[0].decode(), int(r[1]), r[2] == b"1", int(r[3]), int(r[4]))
            )
        return Snapshot(tx_raw, member, usage, rows)

    def member_doc(self, member_id: str) -> MemberDoc:
        doc = MemberDoc.load(member_id, self.client.get(self.keys.member(member_id)))
        if doc is None:
            raise NotFound(f"member {member_id!r} not found")
        return doc

    def ledger_args(self, entry: LedgerEntry, lines: Any = None) -> list[Any]:
        """The ledger fields a script appends; ``lines`` = the entry's lines already in plain
        form (a commit has them from its outcome), to encode them once."""
        if lines is None:
            body = codec.to_plain(entry)
        else:
            body = codec.to_plain(dataclasses.replace(entry, lines=()))
            body["lines"] = lines
        return [
            entry.kind,
            entry.entry_id,
            entry.transaction_id,
            entry.member_id or "",
            to_us(entry.at),
            dumps(body),
        ]

    # -- members -------------------------------------------------------------------------------

    @_unavailable
    def upsert_member(self, profile: MemberProfile, now: datetime) -> MemberRecord:
        return redis_members.upsert_member(self, profile, check_profile(profile, now))

    @_unavailable
    def import_members(
        self, profiles: Iterable[MemberProfile], now: datetime, batch: int = 10_000
    ) -> int:
        """Bulk enrolment (migrations, demo data): create members that do not exist yet,
        pipelined; existing members are left untouched. Returns how many were created."""

        def checked() -> Iterable[MemberProfile]:
            for profile in profiles:
                check_id("member_id", profile.member_id)
                yield profile

        return redis_members.import_members(self, checked(), check_time("now", now), batch)

    @_unavailable
    def get_member(self, member_id: str, now: datetime) -> MemberRecord:
        now = check_time("now", now)
        return self.member_doc(member_id).record(now, self.settings.rolling_spend_months)

    @_unavailable
    def get_members(self, member_ids: Sequence[str], now: datetime) -> dict[str, MemberRecord]:
        return redis_members.get_members(self, member_ids, check_time("now", now))

    @_unavailable
    def update_segments(
        self, changes: Mapping[str, tuple[Iterable[str], Iterable[str]]], now: datetime
    ) -> int:
        return redis_members.update_segments(self, changes, check_time("now", now))

    @_unavailable
    def pricing_state(
        self,
        rules: rules_pb2.RuleSet,
        member_id: str | None,
        offer_ids: Iterable[str] | None,
        coupon_codes: Sequence[str],
        now: datetime,
    ) -> PricingState:
        return redis_checkout.pricing_state(
            self,
            policy_for(rules),
            member_id,
            offer_ids,
            list(coupon_codes),
            check_time("now", now),
        )[0]

    # -- checkout ------------------------------------------------------------------------------

    @_unavailable
    def commit(
        self,
        transaction_id: str,
        request_fingerprint: str,
        price_fn: PriceFn,
        now: datetime,
        *,
        rules: rules_pb2.RuleSet,
        basket: Basket,
        member_id: str | None = None,
        coupon_codes: Sequence[str] = (),
    ) -> CommitOutcome:
        now = check_time("now", now)
        check_id("transaction_id", transaction_id)
        return redis_checkout.commit(
            self,
            policy_for(rules),
            transaction_id,
            request_fingerprint,
            price_fn,
            now,
            basket,
            member_id,
            list(coupon_codes),
        )

    @_unavailable
    def cancel(self, transaction_id: str, now: datetime) -> CancelOutcome:
        return redis_checkout.cancel(self, transaction_id, check_time("now", now))

    @_unavailable
    def return_lines(
        self, return_id: str, transaction_id: str, lines: Sequence[tuple[str, int]], now: datetime
    ) -> ReturnOutcome:
        now = check_time("now", now)
        check_id("return_id", return_id)
        return redis_checkout.return_lines(self, return_id, transaction_id, list(lines), now)

    # -- coupons and points --------------------------------------------------------------------

    @_unavailable
    def issue_coupons(
        self,
        issue_id: str,
        offer_id: str,
        member_ids: Sequence[str],
        uses: int,
        valid_from: datetime,
        valid_until: datetime,
        now: datetime,
    ) -> IssueOutcome:
        from_us, until_us = check_issue(issue_id, offer_id, uses, valid_from, valid_until, now)
        return redis_members.issue_coupons(
            self, issue_id, offer_id, member_ids, uses, from_us, until_us, check_time("now", now)
        )

    @_unavailable
    def create_codes(
        self,
        offer_id: str,
        codes: Sequence[str],
        uses_per_code: int,
        per_member: bool,
        valid_from: datetime,
        valid_until: datetime,
    ) -> int:
        unique, from_us, until_us = check_codes(
            offer_id, codes, uses_per_code, valid_from, valid_until
        )
        if not unique:
            return 0
        reply = self.run(
            "create_codes",
            [self.keys.code(c) for c in unique],
            [offer_id, uses_per_code, int(per_member), from_us, until_us],
        )
        if reply[0] == "EXISTS":
            raise AlreadyExists(f"code {unique[reply[1] - 1]!r} exists with another definition")
        return int(reply[1])

    @_unavailable
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
        return redis_members.adjust_points(
            self, adjustment_id, member_id, points, reason, now, expires_at, allow_negative
        )

    @_unavailable
    def ledger(self, since: int | None = None, limit: int | None = None) -> list[LedgerEntry]:
        start = f"({since}-1" if since else "-"
        rows: Any = self.client.xrange(self.keys.ledger, start, "+", count=limit)
        out = []
        for entry_id, fields in rows:
            data = json.loads(fields[b"body"])
            data["seq"] = int(entry_id.split(b"-")[0])
            out.append(codec.from_plain(LedgerEntry, data))
        return out


__all__ = ["RedisSettings", "RedisStore"]
