"""The embedded store's records that marketing creates and lanes read: coupon codes and code
batches, unit reservations and shopping-list ids (a part of :class:`EmbeddedStore`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from server.store.codes import BatchRecord, CodeBatch, CodeInfo
from server.store.embedded import codes as embedded_codes
from server.store.embedded import lists as embedded_lists
from server.store.embedded import members as embedded_members
from server.store.embedded import units as embedded_units
from server.store.snapshot import at_us, check_codes, check_id, check_time, to_us


class CampaignRecords:
    """Codes, code batches, reservations and shopping lists on SQLite."""

    def _tx(self, write: bool) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # EmbeddedStore's

    def release_reservation(self, member_id: str, offer_id: str, now: datetime) -> int:
        now = check_time("now", now)
        with self._tx(write=True) as db:
            return embedded_units.release(db, member_id, offer_id, to_us(now))

    def reservations(self, member_id: str, now: datetime) -> dict[str, tuple[int, datetime]]:
        with self._tx(write=False) as db:
            held = embedded_units.held(db, member_id, to_us(check_time("now", now)))
        return {c: (n, at_us(until)) for c, (n, until) in held.items()}

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
        wanted = (offer_id, uses_per_code, int(per_member), from_us, until_us)
        with self._tx(write=True) as db:
            return embedded_members.create_codes(db, unique, wanted)

    def create_code_batch(self, batch: CodeBatch, now: datetime) -> BatchRecord:
        return embedded_codes.create_batch(self._tx, batch, to_us(check_time("now", now)))

    def code_batch(self, batch_id: str) -> BatchRecord | None:
        return embedded_codes.get_batch(self._tx, batch_id)

    def code_batches(self) -> list[BatchRecord]:
        return embedded_codes.list_batches(self._tx)

    def coupon_code(self, code: str) -> CodeInfo:
        return embedded_codes.get_code(self._tx, code)

    def list_codes(
        self, batch_id: str, status: str, cursor: str, limit: int, now: datetime
    ) -> tuple[list[CodeInfo], str]:
        now_us = to_us(check_time("now", now))
        return embedded_codes.list_codes(self._tx, batch_id, status, cursor, limit, now_us)

    def shopping_list_id(self, member_id: str, now: datetime) -> str:
        now_us = to_us(check_time("now", now))
        return embedded_lists.list_id(self._tx, check_id("member_id", member_id), now_us)

    def list_member(self, list_id: str) -> str | None:
        return embedded_lists.list_member(self._tx, list_id)
