"""The Redis store's records that marketing creates and lanes read: coupon codes and code
batches, unit reservations and shopping-list ids (a part of :class:`RedisStore`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from engine.errors import AlreadyExists
from server.store.base import MemberRecord
from server.store.codes import BatchRecord, CodeBatch, CodeInfo
from server.store.redis import code_claims
from server.store.redis import codes as redis_codes
from server.store.redis import lists as redis_lists
from server.store.redis import units as redis_units
from server.store.redis.io import RedisIO, ScriptArg, unavailable
from server.store.snapshot import at_us, check_codes, check_id, check_time, to_us


class CampaignRecords:
    """Codes, code batches, reservations and shopping lists on Redis."""

    io: RedisIO

    def _wrote(self, keys: Iterable[str]) -> None:
        raise NotImplementedError  # RedisStore's

    def get_member(self, member_id: str, now: datetime) -> MemberRecord:
        raise NotImplementedError  # RedisStore's

    @unavailable
    def release_reservation(self, member_id: str, offer_id: str, now: datetime) -> int:
        try:
            return redis_units.release(self.io, member_id, offer_id, check_time("now", now))
        finally:
            self._wrote([self.io.keys.units(offer_id)])

    @unavailable
    def reservations(self, member_id: str, now: datetime) -> dict[str, tuple[int, datetime]]:
        wallet = self.get_member(member_id, now).wallet
        held = redis_units.held(self.io, [(c.coupon_id, c.offer_id) for c in wallet], now)
        return {c: (n, at_us(until)) for c, (n, until) in held.items()}

    @unavailable
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
        keys = [self.io.keys.code(c) for c in unique]
        args: list[ScriptArg] = [offer_id, uses_per_code, int(per_member), from_us, until_us]
        # on a cluster each code is its own slot: one script per code (each idempotent, so a
        # retry of a batch cut short completes it)
        batches = [[key] for key in keys] if self.io.keys.cluster else [keys]
        created = 0
        try:
            for batch in batches:
                reply = self.io.run("create_codes", batch, args)
                if reply[0] == "EXISTS":
                    code = unique[keys.index(batch[int(reply[1]) - 1])]
                    raise AlreadyExists(f"code {code!r} exists with another definition")
                created += int(reply[1])
        finally:
            self._wrote(keys)
        return created

    @unavailable
    def create_code_batch(self, batch: CodeBatch, now: datetime) -> BatchRecord:
        now_us = to_us(check_time("now", now))
        if self.io.keys.cluster:  # a two-step claim across the codes' slots
            return code_claims.create_batch(self.io, batch, now_us)
        return redis_codes.create_batch(self.io, batch, now_us)

    @unavailable
    def code_batch(self, batch_id: str) -> BatchRecord | None:
        return redis_codes.get_batch(self.io, batch_id)

    @unavailable
    def code_batches(self) -> list[BatchRecord]:
        return redis_codes.list_batches(self.io)

    @unavailable
    def coupon_code(self, code: str) -> CodeInfo:
        return redis_codes.get_code(self.io, code)

    @unavailable
    def list_codes(
        self, batch_id: str, status: str, cursor: str, limit: int, now: datetime
    ) -> tuple[list[CodeInfo], str]:
        now_us = to_us(check_time("now", now))
        return redis_codes.list_codes(self.io, batch_id, status, cursor, limit, now_us)

    @unavailable
    def shopping_list_id(self, member_id: str, now: datetime) -> str:
        check_time("now", now)
        return redis_lists.list_id(self.io, check_id("member_id", member_id))

    @unavailable
    def list_member(self, list_id: str) -> str | None:
        return redis_lists.list_member(self.io, list_id)
