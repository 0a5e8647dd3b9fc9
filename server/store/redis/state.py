"""One consistent read on Redis (:class:`Snapshot`) and the engine inputs built from it.

A snapshot is one ``MULTI``/``EXEC`` pipeline (one round trip): the transaction document, the
member document, the global counters of the offers that have limits and the presented codes.
A quote prices on it; a commit prices on it and then applies with a script that re-checks
everything it read (:mod:`server.store.redis.checkout`).

A quote reads through the process's :class:`~server.store.redis.cache.MemberCache` when the
store has one (:func:`cached_snapshot`): what the cache holds costs no round trip, the rest
comes in one pipeline (on a cluster, plain reads split per node, each offer's and code's
counter with what commits under way hold counted, as :func:`_read_cluster` counts it). A commit
always reads everything from Redis (:func:`read_snapshot`): it reads its transaction key
anyway, so the round trip is paid, and pricing on fresh state keeps a stale entry from ever
reaching a sale (the script re-checks the member's version and the caps, but not, say, that an
offer the price left out as used up really was).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from engine.errors import NotFound
from server.store import snapshot
from server.store.base import CodeRow, CodeStatus, PricingState
from server.store.policy import Policy
from server.store.redis import homes
from server.store.redis.cache import MemberCache
from server.store.redis.docs import MemberDoc
from server.store.redis.io import RedisIO
from server.store.redis.keys import budget_field, uses_field
from server.store.redis.units import capped_ids, parse_units, read_units
from server.store.snapshot import to_us
from server.store.unit_usage import UnitUsage


@dataclass(slots=True)
class Snapshot:
    """One consistent read: the documents and counters a quote or a commit depends on."""

    tx: bytes | None
    member: MemberDoc | None
    usage: dict[str, tuple[int, int]]
    codes: dict[str, CodeRow | None]
    units: dict[str, UnitUsage] | None = None  # unit-capped offers' counters, when read here


def read_snapshot(
    io: RedisIO,
    *,
    tx: str | None = None,
    member_id: str | None = None,
    offer_ids: Sequence[str] = (),
    codes: Sequence[str] = (),
) -> Snapshot:
    """Everything from Redis, in one ``MULTI``/``EXEC``: what a commit prices on (on a
    cluster: :func:`_read_cluster`)."""
    k = io.keys
    codes = list(dict.fromkeys(codes))
    if k.cluster:
        return _read_cluster(io, tx, member_id, offer_ids, codes)
    fields = usage_fields(offer_ids)
    pipe = io.client.pipeline(transaction=True)
    if tx is not None:
        pipe.get(k.tx(tx))
    if member_id is not None:
        pipe.get(k.member(member_id))
    if fields:
        pipe.hmget(k.usage, fields)
    for code in codes:
        pipe.hmget(k.code(code), *CODE_FIELDS)
    replies = iter(pipe.execute())
    tx_raw: bytes | None = next(replies) if tx is not None else None
    member = MemberDoc.load(member_id, next(replies)) if member_id is not None else None
    counters = dict(zip(fields, map(_count, next(replies)), strict=True)) if fields else {}
    rows = {code: code_row(next(replies)) for code in codes}
    return Snapshot(tx_raw, member, usage_of(offer_ids, counters), rows)


def _read_cluster(
    io: RedisIO,
    tx: str | None,
    member_id: str | None,
    offer_ids: Sequence[str],
    codes: Sequence[str],
) -> Snapshot:
    """The same read on a cluster: the transaction and the member in one ``MULTI`` of their
    home slot (a commit whose transaction is not stored there claims the id for that home:
    :func:`server.store.redis.homes.claim`), the global counters with one plain read each
    (pipelined per node), their pending reservations counted as used. The commit re-checks
    the counters as it reserves (:mod:`server.store.redis.homes`)."""
    k = io.keys
    home = k.home(member_id if member_id is not None else (tx or ""))
    pipe = io.client.pipeline(transaction=True)
    if tx is not None:
        pipe.get(k.tx(tx, home))
    if member_id is not None:
        pipe.get(k.member(member_id))
    replies = iter(pipe.execute() if tx is not None or member_id is not None else [])
    tx_raw: bytes | None = next(replies) if tx is not None else None
    member_raw: bytes | None = next(replies) if member_id is not None else None
    if tx is not None and tx_raw is None and (member_id is None or member_raw is not None):
        # not stored here: claim the id (an unknown member claims nothing, NotFound follows)
        claimed = homes.claim(io, tx, member_id)
        if claimed != home:  # committed before for another member: its stored outcome
            return Snapshot(io.get(k.tx(tx, claimed)), None, {}, {})
    member = MemberDoc.load(member_id, member_raw) if member_id is not None else None
    reads = io.client.pipeline(transaction=False)
    for o in offer_ids:
        reads.hmget(k.counter(f"o:{o}"), OFFER_FIELDS)
    for code in codes:
        reads.hmget(k.code(code), [*CODE_FIELDS, "p-:left"])
    counters = iter(reads.execute() if offer_ids or codes else [])
    usage = {o: offer_usage(next(counters)) for o in offer_ids}
    rows = {code: cluster_code_row(next(counters)) for code in codes}
    return Snapshot(tx_raw, member, usage, rows)


def cached_snapshot(
    io: RedisIO,
    cache: MemberCache,
    member_id: str | None,
    offer_ids: Sequence[str],
    codes: Sequence[str],
    capped: Sequence[str] = (),
) -> Snapshot:
    """What a quote reads, from ``cache`` where it holds it and otherwise from Redis (one
    ``MULTI``/``EXEC`` for the missing keys, whose replies are cached; on a cluster one
    pipeline of plain reads, split per node, as :func:`_read_cluster` reads them); ``capped``
    = the unit-capped offers whose counters it needs."""
    cache.start()
    k = io.keys
    cluster = k.cluster
    code_keys = {c: k.code(c) for c in codes}  # presentation order, each code once
    unit_keys = {o: k.units(o) for o in capped}
    offer_keys = {o: k.counter(f"o:{o}") for o in offer_ids} if cluster else {}
    member_key = k.member(member_id) if member_id is not None else None
    usage_key = k.usage
    fields = [] if cluster else usage_fields(offer_ids)
    wanted = list(code_keys.values())
    if member_key is not None:
        wanted.append(member_key)
    if fields:
        wanted.append(usage_key)
    wanted += offer_keys.values()
    wanted += unit_keys.values()
    have = cache.get(wanted)
    counters = dict(cast(dict[str, int], have.get(usage_key, {})))
    unknown = [f for f in fields if f not in counters]  # fields the cached hash lacks
    missing = [key for key in wanted if key not in have or (key == usage_key and unknown)]
    units_of, offers_of = set(unit_keys.values()), set(offer_keys.values())
    if missing:
        pipe = io.client.pipeline(transaction=len(missing) > 1 and not cluster)
        for key in missing:
            if key == member_key:
                pipe.get(key)
            elif key == usage_key:
                pipe.hmget(key, unknown)
            elif key in units_of:
                pipe.hgetall(key)
            elif key in offers_of:
                pipe.hmget(key, OFFER_FIELDS)
            else:
                pipe.hmget(key, [*CODE_FIELDS, "p-:left"] if cluster else CODE_FIELDS)
        fresh: dict[str, object] = {}
        with cache.reading(missing) as fill:
            for key, reply in zip(missing, pipe.execute(), strict=True):
                if key == member_key:
                    fresh[key] = reply
                elif key == usage_key:
                    fresh[key] = dict(zip(unknown, map(_count, reply), strict=True))
                elif key in units_of:
                    fresh[key] = parse_units(reply)
                elif key in offers_of:
                    fresh[key] = offer_usage(reply)
                else:
                    fresh[key] = cluster_code_row(reply) if cluster else code_row(reply)
            fill(fresh)
        have.update(fresh)
        counters.update(cast(dict[str, int], fresh.get(usage_key, {})))
    member = None
    if member_id is not None and member_key is not None:
        member = MemberDoc.load(member_id, cast(bytes | None, have[member_key]))
    rows = {c: cast(CodeRow | None, have[key]) for c, key in code_keys.items()}
    units = {o: cast(UnitUsage, have[key]) for o, key in unit_keys.items()}
    if cluster:
        usage = {o: cast(tuple[int, int], have[key]) for o, key in offer_keys.items()}
    else:
        usage = usage_of(offer_ids, counters)
    return Snapshot(None, member, usage, rows, units)


CODE_FIELDS = ("offer", "left", "per_member", "from_us", "until_us", "member")
OFFER_FIELDS = ("u", "b", "p+:u", "p+:b")  # an offer's counter on a cluster: uses, budget


def offer_usage(reply: list[bytes | None]) -> tuple[int, int]:
    """On a cluster: an offer's uses and budget spent (:data:`OFFER_FIELDS`), those held by
    commits under way counted as spent."""
    u, b, pu, pb = map(_count, reply)
    return u + pu, b + pb


def cluster_code_row(reply: list[bytes | None]) -> CodeRow | None:
    """On a cluster: a code's row from :data:`CODE_FIELDS` and ``p-:left``, the uses held by
    commits under way not left."""
    row = code_row(reply[:-1])
    if row is None:
        return None
    return (row[0], row[1] + _count(reply[-1]), *row[2:])


def usage_fields(offer_ids: Sequence[str]) -> list[str]:
    """The fields of the ``usage`` hash that hold the offers' uses and budget spent."""
    return [f for o in offer_ids for f in (uses_field(o), budget_field(o))]


def usage_of(offer_ids: Sequence[str], counters: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {o: (counters[uses_field(o)], counters[budget_field(o)]) for o in offer_ids}


def code_row(reply: list[bytes | None]) -> CodeRow | None:
    """A code's hash fields (:data:`CODE_FIELDS`) as a row; None when the code is unknown."""
    if reply[0] is None:
        return None
    # create_codes writes every field of a code together; "member" only for a bound code
    offer, left, per_member, from_us, until_us = cast(list[bytes], reply[:5])
    member = reply[5].decode() if reply[5] is not None else ""
    return (offer.decode(), int(left), per_member == b"1", int(from_us), int(until_us), member)


def _count(value: bytes | None) -> int:
    return int(value or 0)


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
    if tx is None and io.cache is not None:
        capped = capped_ids(policy, ids)
        snap = cached_snapshot(io, io.cache, member_id, ids, codes, capped)
    else:
        snap = read_snapshot(io, tx=tx, member_id=member_id, offer_ids=ids, codes=codes)
    if tx is not None and snap.tx is not None:
        return PricingState(None, None, (), {}, {}, {}), snap
    doc = snap.member
    if member_id is not None and doc is None:
        raise NotFound(f"member {member_id!r} not found")
    record = doc.record(now, io.spend_months) if doc else None
    units = snap.units
    if units is None:
        units = read_units(io, policy, ids) if policy.units_capped else {}
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
            policy, ids, snap.usage, doc.mine() if doc else {}, member_id, now, units
        ),
        units=units,
    )
    return state, snap


__all__ = ["Snapshot", "cached_snapshot", "code_row", "pricing_state", "read_snapshot"]
