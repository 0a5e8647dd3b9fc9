"""Coupon code batches on a Redis Cluster: each code claimed in its own slot, then recorded in
the batch's (docs/design.md §5).

On a single Redis one script checks and writes a whole slice of codes with the batch's records
(:mod:`server.store.redis.codes`). On a cluster each code is its own slot (``ctr:{c:<code>}``,
the global counter a commit reserves on) and the batch's records share the ``{batches}`` tag
(:meth:`server.store.redis.keys.Keys.code_batch`), so no script can touch both. A batch is
generated from a fixed sequence of *candidates*: candidate ``i`` is a pure function of the
batch's secret ``seed`` (random, stored with the batch when it is opened) and ``i``
(:func:`candidates`; SHAKE-256 of the seed and the block of :data:`BLOCK` candidates, drawn by
:func:`server.store.codes.draw`). The batch hash keeps ``cursor``: the candidates consumed so
far. Each round of up to :data:`ROUND` codes goes in three steps, each idempotent:

1. *claim*, in each code's slot (:data:`_CLAIM`, one script per slot with that slot's codes,
   pipelined per node): an absent code is created as a bare claim (``batch``, ``cand`` = the
   candidate number; no ``offer`` and no ``left``, so checkout and the listing do not see it);
   a claim for this batch *and this candidate* is this batch's own (an attempt cut short or a
   concurrent one made it); anything else is a collision (another batch's or a single code, or
   the same string drawn twice in the sequence: its earlier candidate holds it).
2. *record*, in the batch slot (:data:`_RECORD`): only if ``cursor`` is still where this
   process read it, append the round's own codes to the list, advance ``cursor`` past the
   round, add to ``generated`` and ``collisions``; otherwise nothing (another process recorded
   the same candidates: they are its list entries too).
3. *activate*, in each code's slot (:data:`_ACTIVATE`): a listed claim becomes the full code
   hash (``offer``, ``left``, ``per_code``, ``per_member``, ``from_us``, ``until_us``, and
   ``member`` k for code k of a bound batch); then ``active`` is advanced in the batch slot.

Whether a candidate is the batch's own or a collision is settled by its first claim and is the
same for every process, so every process that records candidates ``[cursor, cursor + n)``
records the same codes, and a round claims no further than the candidate that completes the
batch: a retry or a concurrent request ends with exactly ``count`` codes, each listed once, in
candidate order (member order for a bound batch). A crash between the steps is completed by
the same request again, which re-draws the same candidates and finds its claims. What a batch
never retried can leave: bare claims (not redeemable, not listed; a code string no other batch
or ``create_codes`` can take) and listed codes not yet active (the listing skips them, the
batch reports ``active`` codes as generated).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, cast

import redis
from redis.commands.core import Script
from redis.crc import key_slot

from engine.errors import AlreadyExists, Unavailable
from server.store.codes import BatchRecord, CodeBatch, draw
from server.store.redis.codes import get_batch
from server.store.redis.io import RedisIO, ScriptArg
from server.store.redis.replicas import MOVING, refresh, run_script

BLOCK = 1_000  # candidates drawn together: part of every batch's sequence, never change it
# codes claimed (and activated) per round: about 16,000 slots, so the more codes a round has
# the more each slot's script carries (100,000: about 6 a script, one script per slot)
ROUND = 100_000
RECORD_CODES = 10_000  # codes a record script appends at most: Redis busy a few ms at a time

# KEYS: batch hash, batch ids list; ARGV: fingerprint, body, created_us, batch id, seed.
# Reply: the stored fingerprint (the given one when the batch is new).
_OPEN = """
local fp = redis.call('HGET', KEYS[1], 'fp')
if fp then return fp end
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'body', ARGV[2], 'created_us', ARGV[3],
           'generated', 0, 'collisions', 0, 'cursor', 0, 'active', 0, 'seed', ARGV[5])
redis.call('RPUSH', KEYS[2], ARGV[4])
return ARGV[1]
"""

# KEYS: codes of one slot, in candidate order; ARGV: batch id, then each code's candidate number.
# Reply: per code 1 (the batch's own) or 0 (a collision).
_CLAIM = """
local out = {}
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'batch', 'cand')
  if not cur[1] and redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('HSET', KEYS[i], 'batch', ARGV[1], 'cand', ARGV[i + 1])
    out[i] = 1
  elseif cur[1] == ARGV[1] and cur[2] == ARGV[i + 1] then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS: batch hash, batch codes list; ARGV: cursor as read, candidates consumed, collisions,
# count, then the codes to append. Reply: 1 recorded, 0 the cursor moved (nothing written).
_RECORD = """
local cur = redis.call('HMGET', KEYS[1], 'cursor', 'generated')
if tonumber(cur[1]) ~= tonumber(ARGV[1]) then return 0 end
if tonumber(cur[2]) + #ARGV - 4 > tonumber(ARGV[4]) then
  return redis.error_reply('ERR more codes than the batch asks for')
end
for at = 5, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, at, math.min(at + 999, #ARGV)))
end
redis.call('HINCRBY', KEYS[1], 'cursor', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'generated', #ARGV - 4)
redis.call('HINCRBY', KEYS[1], 'collisions', ARGV[3])
return 1
"""

# KEYS: listed codes of one slot; ARGV: offer, uses per code, per_member, from_us, until_us,
# batch id, bound 0/1, then (bound) each code's member. Reply: codes activated now.
_ACTIVATE = """
local done = 0
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'batch', 'offer')
  local absent = not cur[1] and redis.call('EXISTS', KEYS[i]) == 0
  if absent or (cur[1] == ARGV[6] and not cur[2]) then
    redis.call('HSET', KEYS[i], 'offer', ARGV[1], 'left', ARGV[2], 'per_code', ARGV[2],
               'per_member', ARGV[3], 'from_us', ARGV[4], 'until_us', ARGV[5], 'batch', ARGV[6])
    if ARGV[7] == '1' then redis.call('HSET', KEYS[i], 'member', ARGV[7 + i]) end
    done = done + 1
  end
end
return done
"""

# KEYS: batch hash; ARGV: codes active now. Reply: codes active.
_ADVANCE = """
local active = tonumber(redis.call('HGET', KEYS[1], 'active') or '0')
if active < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'active', ARGV[1])
  return tonumber(ARGV[1])
end
return active
"""


def _stream(seed: bytes, block: int) -> Callable[[int], bytes]:
    """The bytes of candidate block ``block``: SHAKE-256 of the seed and the block number."""
    xof = hashlib.shake_256(seed + block.to_bytes(8, "big"))
    taken = 0

    def read(n: int) -> bytes:
        nonlocal taken
        out = xof.digest(taken + n)[taken:]
        taken += n
        return out

    return read


def candidates(batch: CodeBatch, seed: bytes, start: int, n: int) -> list[str]:
    """Candidates ``start .. start + n - 1`` of the batch's sequence."""
    out: list[str] = []
    for block in range(start // BLOCK, (start + n - 1) // BLOCK + 1):
        drawn = draw(batch, BLOCK, _stream(seed, block))
        lo = max(start - block * BLOCK, 0)
        out += drawn[lo : min(start + n - block * BLOCK, BLOCK)]
    return out


def create_batch(io: RedisIO, batch: CodeBatch, now_us: int) -> BatchRecord:
    """Open the batch (or find it) and claim, record and activate until it has ``count``."""
    k = io.keys
    fingerprint = batch.fingerprint()
    head = [k.code_batch(batch.batch_id), k.code_batch_codes(batch.batch_id)]
    stored = _in_batch_slot(
        io,
        _OPEN,
        [head[0], k.code_batches],
        [fingerprint, json.dumps(asdict(batch)), now_us, batch.batch_id, secrets.token_hex()],
    )
    if (stored.decode() if isinstance(stored, bytes) else stored) != fingerprint:
        raise AlreadyExists(f"batch {batch.batch_id!r} was created with another request")
    while True:
        raw = cast(list[bytes], io.client.hmget(head[0], ["generated", "cursor", "active", "seed"]))
        generated, cursor, active = (int(x) for x in raw[:3])
        if active < generated:  # listed, not yet active (this round's, or one cut short)
            activate(io, batch, active, min(generated, active + ROUND))
            continue
        if generated >= batch.count:
            break
        seed = bytes.fromhex(raw[3].decode())
        ours, end = claim(io, batch, seed, cursor, min(ROUND, batch.count - generated))
        record(io, batch, cursor, ours, end)
    done = get_batch(io, batch.batch_id)
    assert done is not None
    return done


def claim(
    io: RedisIO, batch: CodeBatch, seed: bytes, cursor: int, need: int
) -> tuple[list[tuple[int, str]], int]:
    """Step 1 from candidate ``cursor`` until ``need`` codes are the batch's own: those codes
    (candidate number, code) in candidate order, and the candidate after the last claimed."""
    script = io.client.register_script(_CLAIM)
    ours: list[tuple[int, str]] = []
    at = cursor
    while len(ours) < need:
        n = need - len(ours)
        drawn = candidates(batch, seed, at, n)
        groups: dict[int, tuple[list[str], list[ScriptArg]]] = {}
        for i, code in enumerate(drawn):
            key = io.keys.code(code)
            keys, args = groups.setdefault(_slot(key), ([], [batch.batch_id]))
            keys.append(key)
            args.append(at + i)
        mine = [0] * n
        for slot, reply in _per_slot(io, script, groups).items():
            for cand, flag in zip(groups[slot][1][1:], cast(list[int], reply), strict=True):
                mine[int(cand) - at] = int(flag)
        ours += [(at + i, code) for i, code in enumerate(drawn) if mine[i]]
        at += n
    return ours, at


def record(
    io: RedisIO, batch: CodeBatch, cursor: int, ours: list[tuple[int, str]], end: int
) -> None:
    """Step 2: list ``ours`` (claimed from candidate ``cursor`` up to ``end``), at most
    :data:`RECORD_CODES` a script, each recording the candidates up to its last code (the
    last one up to ``end``); stops where another process recorded first."""
    k = io.keys
    head = [k.code_batch(batch.batch_id), k.code_batch_codes(batch.batch_id)]
    for at in range(0, max(len(ours), 1), RECORD_CODES):
        part = ours[at : at + RECORD_CODES]
        upto = end if at + RECORD_CODES >= len(ours) else part[-1][0] + 1
        collided = upto - cursor - len(part)
        args: list[ScriptArg] = [cursor, upto - cursor, collided, batch.count]
        args += [code for _, code in part]
        if not _in_batch_slot(io, _RECORD, head, args):
            return
        cursor = upto


def activate(io: RedisIO, batch: CodeBatch, start: int, end: int) -> None:
    """Step 3 for the listed codes ``start .. end - 1``, then ``active`` = ``end``."""
    k = io.keys
    head = k.code_batch(batch.batch_id)
    listed = k.code_batch_codes(batch.batch_id)
    codes = [c.decode() for c in cast(list[bytes], io.client.lrange(listed, start, end - 1))]
    bound = bool(batch.member_ids)
    members = batch.member_of(start, len(codes))
    common: list[ScriptArg] = [
        batch.offer_id, batch.uses_per_code, int(batch.per_member), batch.valid_from_us,
        batch.valid_until_us, batch.batch_id, int(bound),
    ]  # fmt: skip
    groups: dict[int, tuple[list[str], list[ScriptArg]]] = {}
    for code, member in zip(codes, members, strict=True):
        keys, args = groups.setdefault(_slot(k.code(code)), ([], list(common)))
        keys.append(k.code(code))
        if bound:
            args.append(member)
    _per_slot(io, io.client.register_script(_ACTIVATE), groups)
    io.client.register_script(_ADVANCE)(keys=[head], args=[start + len(codes)])


def _in_batch_slot(io: RedisIO, source: str, keys: list[str], args: list[ScriptArg]) -> Any:
    """A script on the batch's keys, acknowledged by ``wait_replicas`` when that is > 0 (so a
    failover cannot lose a batch, or a record, that its codes' claims outlive)."""
    script = io.client.register_script(source)
    if io.wait_replicas > 0:
        return run_script(io.client, script, keys, args, io.wait_replicas, io.wait_timeout_ms)
    return script(keys=keys, args=args)


def _slot(key: str) -> int:
    return int(key_slot(key.encode()))


def _per_slot(
    io: RedisIO, script: Script, groups: dict[int, tuple[list[str], list[ScriptArg]]]
) -> dict[int, Any]:
    """``script`` once per slot (its keys and args), in one pipeline per node (each followed
    by ``WAIT`` when ``wait_replicas`` > 0); the replies by slot. A node gone or a slot moved:
    the slot map is read again, :class:`Unavailable` (the request's retry completes it)."""
    if not groups:
        return {}
    cluster = cast(redis.RedisCluster, io.client)
    by_node: dict[str, tuple[Any, list[int]]] = {}
    for slot in groups:
        node = cluster.nodes_manager.get_node_from_slot(slot)
        by_node.setdefault(node.name, (node, []))[1].append(slot)

    def run(node: Any, slots: list[int]) -> list[tuple[int, Any]]:
        pipe = cluster.get_redis_connection(node).pipeline(transaction=False)
        for slot in slots:
            keys, args = groups[slot]
            script(keys=keys, args=args, client=pipe)
        if io.wait_replicas > 0:
            pipe.wait(io.wait_replicas, io.wait_timeout_ms)
        try:
            got = pipe.execute()
        except MOVING as exc:
            refresh(io.client)
            raise Unavailable(f"redis node moved or unreachable, retry: {exc}") from exc
        if io.wait_replicas > 0 and int(got.pop()) < io.wait_replicas:
            raise Unavailable("code claims not acknowledged by enough replicas; retry")
        return list(zip(slots, got, strict=True))

    # the nodes in parallel: one packs its commands while another's are run
    with ThreadPoolExecutor(len(by_node)) as pool:
        done = list(pool.map(lambda item: run(*item), by_node.values()))
    return {slot: reply for part in done for slot, reply in part}


__all__ = ["BLOCK", "activate", "candidates", "claim", "create_batch"]
