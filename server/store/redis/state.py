"""One consistent read on Redis (:class:`Snapshot`) and the engine inputs built from it.

A snapshot is one ``MULTI``/``EXEC`` pipeline (one round trip): the transaction document, the
member document, the global counters of the offers that have limits and the presented codes.
A quote prices on it; a commit prices on it and then applies with a script that re-checks
everything it read (:mod:`server.store.redis.checkout`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from engine.errors import NotFound
from server.store import snapshot
from server.store.base import CodeStatus, PricingState
from server.store.policy import Policy
from server.store.redis.docs import MemberDoc
from server.store.redis.io import RedisIO
from server.store.redis.keys import budget_field, uses_field
from server.store.snapshot import CodeRow, to_us


@dataclass(slots=True)
class Snapshot:
    """One consistent read: the documents and counters a quote or a commit depends on."""

    tx: bytes | None
    member: MemberDoc | None
    usage: dict[str, tuple[int, int]]
    codes: dict[str, CodeRow | None]


def read_snapshot(
    io: RedisIO,
    *,
    tx: str | None = None,
    member_id: str | None = None,
    offer_ids: Sequence[str] = (),
    codes: Sequence[str] = (),
) -> Snapshot:
    k = io.keys
    codes = list(dict.fromkeys(codes))
    pipe = io.client.pipeline(transaction=True)
    if tx is not None:
        pipe.get(k.tx(tx))
    if member_id is not None:
        pipe.get(k.member(member_id))
    if offer_ids:
        pipe.hmget(k.usage, [f for o in offer_ids for f in (uses_field(o), budget_field(o))])
    for code in codes:
        pipe.hmget(k.code(code), "offer", "left", "per_member", "from_us", "until_us")
    replies = iter(pipe.execute())
    tx_raw: bytes | None = next(replies) if tx is not None else None
    member = MemberDoc.load(member_id, next(replies)) if member_id is not None else None
    usage: dict[str, tuple[int, int]] = {}
    if offer_ids:
        values: list[bytes | None] = next(replies)
        usage = {
            o: (int(values[2 * i] or 0), int(values[2 * i + 1] or 0))
            for i, o in enumerate(offer_ids)
        }
    rows: dict[str, CodeRow | None] = {}
    for code in codes:
        r: list[bytes | None] = next(replies)
        if r[0] is None:
            rows[code] = None
        else:  # create_codes writes every field of a code together
            offer, left, per_member, from_us, until_us = cast(list[bytes], r)
            rows[code] = (
                offer.decode(),
                int(left),
                per_member == b"1",
                int(from_us),
                int(until_us),
            )
    return Snapshot(tx_raw, member, usage, rows)


def pricing_state(
    io: RedisIO,
    policy: Policy,
    member_id: str | None,
    offer_ids: Iterable[str] | None,
    codes: Sequence[str],
    now: datetime,
    tx: str | None = None,
) -> tuple[PricingState, Snapshot]:
    """Engine inputs from one snapshot: the member, the presented codes, the limits of the
    offers that have any (``offer_ids`` None) and, for a commit, the transaction."""
    ids = snapshot.limited_ids(policy, offer_ids)
    snap = read_snapshot(io, tx=tx, member_id=member_id, offer_ids=ids, codes=codes)
    if tx is not None and snap.tx is not None:
        return PricingState(None, None, (), {}, {}, {}), snap
    doc = snap.member
    if member_id is not None and doc is None:
        raise NotFound(f"member {member_id!r} not found")
    record = doc.record(now, io.spend_months) if doc else None
    status: dict[str, CodeStatus] = {}
    offers: dict[str, str] = {}
    now_us = to_us(now)
    for code, row in snap.codes.items():

        def redeemed(code: str = code) -> bool:
            return doc is not None and code in doc.codes

        status[code] = snapshot.code_status(row, policy, member_id, redeemed, now_us)
        if row is not None and status[code] == CodeStatus.VALID:
            offers[code] = row[0]
    state = PricingState(
        member=record.engine_member(now) if record else None,
        record=record,
        coupons=tuple(offers[c] for c in dict.fromkeys(codes) if c in offers),
        code_status=status,
        code_offers=offers,
        limits=snapshot.remaining_limits(
            policy, ids, snap.usage, doc.mine() if doc else {}, member_id, now
        ),
    )
    return state, snap


__all__ = ["Snapshot", "pricing_state", "read_snapshot"]
