"""A quote's member rows, kept per process and checked by the member's version.

A quote reads a member's row, lots, wallet coupons and spend buckets: four statements, and
most of an embedded `Evaluate`'s store time. Every change to any of them bumps
``members.version`` in the same transaction (:func:`server.store.embedded.state.set_debt` and
the writers that bump it themselves), so one indexed read of the version says whether the rows
kept from an earlier quote are still the member's, whichever process changed them. What is
kept is rows, not a balance: the member is computed as of each quote's "now" from them.

Commits never price from here: they read their snapshot fresh and apply only on the version
they read (:mod:`server.store.embedded.checkout`).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from engine.errors import NotFound
from server.store import points as P
from server.store.base import MemberRecord, Spend, WalletCoupon
from server.store.embedded.state import (
    load_lots,
    load_spend,
    load_wallet,
    member_record,
    member_row,
)
from server.store.snapshot import rolling_sum, spend_since

MAX_MEMBERS = 10_000  # a few KB each: tens of MB per process at most


@dataclass(frozen=True, slots=True)
class MemberRows:
    """What a quote reads of a member, as of ``version``; spend buckets ending after ``since``."""

    version: int
    row: sqlite3.Row
    lots: tuple[P.Lot, ...]
    wallet: tuple[WalletCoupon, ...]
    spend: tuple[Spend, ...]
    since: int


class QuoteCache:
    """Members' rows by id, the least recently used dropped first (thread-safe)."""

    def __init__(self, size: int = MAX_MEMBERS):
        self.size = size
        self._rows: OrderedDict[str, MemberRows] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def record(
        self, db: sqlite3.Connection, member_id: str, now: datetime, spend_months: int
    ) -> MemberRecord:
        """The member as of ``now``, from kept rows when the version still matches; ``db`` is
        inside a read transaction, so the version and the rows read with it agree."""
        found = db.execute(
            "SELECT version FROM members WHERE member_id = ?", (member_id,)
        ).fetchone()
        if found is None:
            raise NotFound(f"member {member_id!r} not found")
        since = spend_since(now, spend_months)
        with self._lock:
            rows = self._rows.get(member_id)
            if rows is not None:
                self._rows.move_to_end(member_id)
        if rows is None or rows.version != found[0] or since < rows.since:
            rows = MemberRows(
                found[0],
                member_row(db, member_id),
                tuple(load_lots(db, member_id)),
                tuple(load_wallet(db, member_id)),
                tuple(load_spend(db, member_id, since)),
                since,
            )
            with self._lock:
                self._rows[member_id] = rows
                self._rows.move_to_end(member_id)
                while len(self._rows) > self.size:
                    self._rows.popitem(last=False)
        return member_record(
            db,
            member_id,
            now,
            spend_months,
            row=rows.row,
            lots=[dataclasses.replace(lot) for lot in rows.lots],  # settled in place
            wallet=list(rows.wallet),
            rolling=rolling_sum(rows.spend, now, spend_months),
        )
