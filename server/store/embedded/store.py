"""The embedded store: one SQLite file in WAL mode under ``--data-dir`` (default ``./.loyalty``).

Zero set-up, durable, one node (docs/design.md §5). The schema is documented table by table in
:mod:`server.store.embedded.schema`; a commit's snapshot and apply live in
:mod:`server.store.embedded.checkout`, cancel and return in
:mod:`server.store.embedded.reversals`, coupons and points adjustments in
:mod:`server.store.embedded.members`, state reads in :mod:`server.store.embedded.state`.

Concurrency. Each thread gets its own connection (thread-local; every connection is also kept
in a list so :meth:`EmbeddedStore.close` closes them all). Every state change runs in one
``BEGIN IMMEDIATE`` transaction, which takes SQLite's single write lock up front: two lanes
committing for the same member, or many competing for an offer's last uses, are serialised, and
each sees the other's effects. Waiting for the lock is bounded by ``busy_timeout_ms``; past it
the operation raises :class:`Unavailable` and changed nothing, so the caller retries with the
same id. Reads (``get_member``, ``pricing_state``, ``commit_snapshot``, ``ledger``) run in a
deferred transaction and see one consistent snapshot without blocking writers (WAL). A commit
is optimistic, as on Redis (:mod:`server.store.checkout`): its snapshot is read without the
lock, and its apply, under the lock, checks the member's version and the offers' and codes'
counters and is refused (read, price and plan again) when another writer moved them.

Durability. ``synchronous=FULL`` (the default here) fsyncs the WAL on every commit: an
acknowledged commit survives power loss. With ``synchronous=NORMAL`` the WAL is synced only at
checkpoints: the database stays consistent, but the last transactions acknowledged before a
power loss (not a process crash) may be rolled back. A retry under the same transaction id is
then applied again, which is what the checkout expects.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path

from engine.errors import InvalidInput, NotFound, Unavailable
from server.settings import EmbeddedSettings
from server.store import effects
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
from server.store.embedded import checkout as embedded_checkout
from server.store.embedded import members as embedded_members
from server.store.embedded import reservations as embedded_reservations
from server.store.embedded import reversals as embedded_reversals
from server.store.embedded import schema
from server.store.embedded import tiers as embedded_tiers
from server.store.embedded.campaign_records import CampaignRecords
from server.store.embedded.quotes import QuoteCache
from server.store.embedded.state import (
    member_record,
    pricing_state,
    read_ledger,
    revoke_personalised,
)
from server.store.member_attributes import dump_attributes
from server.store.policy import Policy
from server.store.snapshot import (
    check_id,
    check_issue,
    check_profile,
    check_time,
    to_us,
)
from server.store.tiers import TierRun
from server.store.units import check_reserve

log = logging.getLogger(__name__)

DB_FILE = "loyalty.sqlite3"


class EmbeddedStore(CampaignRecords):
    """The :class:`server.store.base.Store` on SQLite."""

    # A commit's apply is refused only when another writer changed what it read in the
    # moment between its read and its write; 16 tries ride out heavy contention on one offer.
    max_attempts = 16

    def __init__(self, data_dir: str | Path = ".loyalty", settings: EmbeddedSettings | None = None):
        settings = settings or EmbeddedSettings()
        if settings.synchronous.upper() not in ("FULL", "NORMAL"):
            raise InvalidInput.at("synchronous", "must be FULL or NORMAL")
        self.settings = settings
        self.path = Path(data_dir) / DB_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._quotes = QuoteCache()
        # Wall clock only for the schema_version metadata row, never for domain state.
        schema.create(self._conn(), time.time_ns() // 1000)
        log.info("embedded store at %s", self.path)

    # -- connections and transactions ----------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise Unavailable("the store is closed")
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.settings.busy_timeout_ms / 1000,
            )
        except sqlite3.Error as exc:
            raise Unavailable(f"cannot open {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.settings.busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.settings.synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._lock:
            self._conns.append(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self, write: bool) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"store busy: {exc}") from exc
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise Unavailable(f"store error: {exc}") from exc
            raise

    def close(self) -> None:
        """Close every connection this store opened, from any thread."""
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- members -------------------------------------------------------------------------------

    def upsert_member(self, profile: MemberProfile, now: datetime) -> MemberRecord:
        now = check_profile(profile, now)
        c = profile.consent
        values = (
            profile.tier,
            json.dumps(sorted(profile.segments)),
            profile.birthday_month,
            profile.birthday_day,
            profile.enrolled_on.isoformat() if profile.enrolled_on else None,
            int(c.marketing),
            int(c.automated_decisions),
            int(c.third_party),
            to_us(now),
            json.dumps(dump_attributes(profile.attributes)),
        )
        with self._tx(write=True) as db:
            db.execute(
                "INSERT INTO members (member_id, tier, segments, birthday_month, birthday_day,"
                " enrolled_on, consent_marketing, consent_automated, consent_third_party,"
                " updated_us, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET"
                " tier = excluded.tier, segments = excluded.segments, birthday_month ="
                " excluded.birthday_month, birthday_day = excluded.birthday_day, enrolled_on ="
                " excluded.enrolled_on, consent_marketing = excluded.consent_marketing,"
                " consent_automated = excluded.consent_automated, consent_third_party ="
                " excluded.consent_third_party, updated_us = excluded.updated_us,"
                " attributes = excluded.attributes, tier_floor = NULL, version = version + 1",
                (profile.member_id, *values),
            )
            revoke_personalised(db, profile.member_id, c, to_us(now))
            return member_record(db, profile.member_id, now, self.settings.rolling_spend_months)

    def get_member(self, member_id: str, now: datetime) -> MemberRecord:
        now = check_time("now", now)
        with self._tx(write=False) as db:
            return member_record(db, member_id, now, self.settings.rolling_spend_months)

    def get_members(self, member_ids: Sequence[str], now: datetime) -> dict[str, MemberRecord]:
        now = check_time("now", now)
        out = {}
        with self._tx(write=False) as db:
            for m in dict.fromkeys(member_ids):
                try:
                    out[m] = member_record(db, m, now, self.settings.rolling_spend_months)
                except NotFound:
                    continue
        return out

    def update_segments(
        self, changes: Mapping[str, tuple[Iterable[str], Iterable[str]]], now: datetime
    ) -> int:
        now = check_time("now", now)
        changed = 0
        with self._tx(write=True) as db:
            for m, (add, remove) in changes.items():
                row = db.execute(
                    "SELECT segments FROM members WHERE member_id = ?", (m,)
                ).fetchone()
                if row is None:
                    continue
                old = set(json.loads(row[0]))
                new = (old - set(remove)) | set(add)
                if new != old:
                    db.execute(
                        "UPDATE members SET segments = ?, updated_us = ?, version = version + 1"
                        " WHERE member_id = ?",
                        (json.dumps(sorted(new)), to_us(now), m),
                    )
                    changed += 1
        return changed

    def pricing_state(
        self,
        policy: Policy,
        member_id: str | None,
        offer_ids: Iterable[str] | None,
        coupon_codes: Sequence[str],
        now: datetime,
    ) -> PricingState:
        now = check_time("now", now)
        with self._tx(write=False) as db:
            return pricing_state(
                db,
                policy,
                member_id,
                offer_ids,
                list(coupon_codes),
                now,
                self.settings.rolling_spend_months,
                self._quotes.record,
            )

    # -- checkout ------------------------------------------------------------------------------

    def commit_snapshot(
        self,
        policy: Policy,
        transaction_id: str,
        member_id: str | None,
        coupon_codes: Sequence[str],
        now: datetime,
    ) -> CommitSnapshot:
        with self._tx(write=False) as db:
            return embedded_checkout.read_snapshot(
                db,
                policy,
                transaction_id,
                member_id,
                list(coupon_codes),
                check_time("now", now),
                self.settings.rolling_spend_months,
            )

    def apply_commit(self, snapshot: CommitSnapshot, plan: CommitPlan) -> bool:
        with self._tx(write=True) as db:
            return embedded_checkout.apply(db, snapshot, plan, plan.outcome.at)

    def contended(
        self, member_id: str, deadline: float | None
    ) -> AbstractContextManager[Callable[[int], bool]]:
        """No turns to take: ``BEGIN IMMEDIATE`` serialises the writes already."""
        return nullcontext(_any_turn)

    def cancel(
        self, transaction_id: str, now: datetime, *, policy: Policy | None = None
    ) -> CancelOutcome:
        now = check_time("now", now)
        with self._tx(write=True) as db:
            return embedded_reversals.cancel(db, transaction_id, now, self._tiers(policy))

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
        with self._tx(write=True) as db:
            return embedded_reversals.return_lines(
                db, return_id, transaction_id, list(lines), now, self._tiers(policy)
            )

    def _tiers(self, policy: Policy | None) -> tuple[Policy, int] | None:
        return None if policy is None else (policy, self.settings.rolling_spend_months)

    def requalify_tiers(
        self, policy: Policy, run_id: str, period_end: datetime, now: datetime
    ) -> TierRun:
        check_id("run_id", run_id)
        check_time("now", now)
        months = self.settings.rolling_spend_months
        return embedded_tiers.requalify(self._tx, policy, run_id, period_end, months)

    # -- coupons -------------------------------------------------------------------------------

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
        with self._tx(write=True) as db:
            return embedded_reservations.issue(
                db,
                issue_id,
                offer_id,
                member_ids,
                uses,
                window,
                personalised,
                (reserve_units, hold, units_cap),
                to_us(now),
            )

    # -- points --------------------------------------------------------------------------------

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
        fingerprint = effects.adjust_fingerprint(
            member_id, points, reason, allow_negative, expires_at, now
        )
        with self._tx(write=True) as db:
            return embedded_members.adjust_points(
                db,
                adjustment_id,
                member_id,
                points,
                reason,
                now,
                fingerprint,
                expires_at,
                allow_negative,
            )

    def ledger(self, since: int | None = None, limit: int | None = None) -> list[LedgerEntry]:
        with self._tx(write=False) as db:
            return read_ledger(db, since, limit)


def _any_turn(attempt: int) -> bool:
    return True


__all__ = ["DB_FILE", "EmbeddedStore"]
