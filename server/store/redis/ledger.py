"""Reading the Redis ledger: the one stream of a single Redis, or a cluster's shards merged.

On a single Redis the ledger is one stream (``ledger``), its entry ids ``<seq>-1`` with ``seq``
from ``INCR``. On a cluster every home slot appends to its own shard (``ledger:{s<k>}``,
:meth:`server.store.redis.keys.Keys.ledger_of`) in the same atomic script as the change it
records, numbered ``t * 1000 + k`` (``t`` the node's clock in microseconds, at least the
shard's last ``t`` + 1: see ``append`` in :mod:`server.store.redis.scripts`), so seqs are
unique across shards, increase within each and follow time across them.

:func:`read` merges the shards in seq order with a horizon that makes ``since`` a safe
cursor: each shard is read by a script that also returns its node's clock ``T``, and an entry
appended to that shard later gets a seq of at least ``T * 1000``; so the merge answers only
the entries below the smallest ``T * 1000`` of all shards (and below the last entry of a
shard whose read stopped at ``limit``). An entry a page leaves out is on the next page, never
skipped. Clocks that disagree between nodes only delay entries (by the difference), and a
node's clock that steps back keeps its shard's order (its seqs run on from the last). The
shards are read in one pipeline per node (:func:`_read_shards`).
"""

from __future__ import annotations

from typing import Any, cast

import redis

from engine.errors import Unavailable
from server.store.base import LedgerEntry
from server.store.redis.io import RedisIO
from server.store.redis.replicas import MOVING, node, refresh
from server.store.stored import read_entry

SEQ_SHARDS = 1000  # a cluster's seq is t * SEQ_SHARDS + the shard's number


def read(io: RedisIO, since: int | None, limit: int | None) -> list[LedgerEntry]:
    """The entries after ``since`` (all: None or 0), oldest first, ``limit`` at the most."""
    k = io.keys
    start = f"({since}-1" if since else "-"
    if not k.cluster:
        one = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            io.client.xrange(k.ledger, start, "+", count=limit),
        )
        return [read_entry(fields[b"body"], _seq(entry_id)) for entry_id, fields in one]
    horizon: int | None = None
    found: list[tuple[int, bytes]] = []
    replies = _read_shards(io, k.ledgers(), [start, limit or 0])
    for stream in k.ledgers():
        secs, micros, rows = cast(
            tuple[bytes, bytes, list[tuple[bytes, list[bytes]]]], replies[stream]
        )
        cap = (int(secs) * 1_000_000 + int(micros)) * SEQ_SHARDS
        if limit and len(rows) >= limit:
            cap = min(cap, _seq(rows[-1][0]) + 1)
        horizon = cap if horizon is None else min(horizon, cap)
        for entry_id, flat in rows:
            values = dict(zip(flat[::2], flat[1::2], strict=True))
            found.append((_seq(entry_id), values[b"body"]))
    found.sort()
    merged = [read_entry(body, seq) for seq, body in found if horizon is None or seq < horizon]
    return merged[:limit] if limit else merged


def _read_shards(io: RedisIO, streams: list[str], args: list[str | int]) -> dict[str, Any]:
    """``ledger_read`` of every shard: one pipeline per node, not a round trip per shard.
    Each shard's read is still its own script with its own clock reading, as the horizon
    needs. A node gone or a slot moved: the slot map is read again, :class:`Unavailable`."""
    groups: dict[int, tuple[redis.Redis, list[str]]] = {}
    for stream in streams:
        target = node(io.client, stream)
        groups.setdefault(id(target), (target, []))[1].append(stream)
    replies: dict[str, Any] = {}
    for target, mine in groups.values():
        pipe = target.pipeline(transaction=False)
        for stream in mine:
            io.scripts["ledger_read"](keys=[stream], args=args, client=pipe)
        try:
            replies.update(zip(mine, pipe.execute(), strict=True))
        except MOVING as exc:
            refresh(io.client)
            raise Unavailable(f"redis node moved or unreachable, retry: {exc}") from exc
    return replies


def _seq(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[0])


__all__ = ["SEQ_SHARDS", "read"]
