"""Coupon code batches on Redis (:mod:`server.store.codes`; keys in
:mod:`server.store.redis.keys`): ``codebatch:<id>`` holds the batch, ``codebatch:<id>:codes``
its codes in generation order, ``codebatches`` every batch id in creation order, and each code
is the ``code:<code>`` hash checkout reads, with ``batch`` (and ``last_tx``/``last_us`` once
redeemed). Codes are drawn :data:`server.store.codes.CHUNK` at a time and inserted by a Lua
script per :data:`SCRIPT_CODES` codes (pipelined), which skips the codes that exist already and
never goes past the batch's count, so Redis is never busy long for other clients."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import cast

from engine.errors import AlreadyExists, InvalidInput, NotFound
from server.store.codes import CHUNK, BatchRecord, CodeBatch, CodeInfo, draw
from server.store.redis.io import RedisIO

# KEYS: batch hash, batch list; ARGV: fingerprint, body, created_us, batch id.
# Reply: the stored fingerprint (the given one when the batch is new).
_OPEN = """
local fp = redis.call('HGET', KEYS[1], 'fp')
if fp then return fp end
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'body', ARGV[2], 'created_us', ARGV[3],
           'generated', 0, 'collisions', 0)
redis.call('RPUSH', KEYS[2], ARGV[4])
return ARGV[1]
"""

# KEYS: batch hash, batch codes list, code keys...; ARGV: count, offer, uses per code,
# per_member, from_us, until_us, batch id, length of the code key prefix.
# Reply: {added, collided}.
_FILL = """
local want = tonumber(ARGV[1]) - tonumber(redis.call('HGET', KEYS[1], 'generated') or '0')
local plen = tonumber(ARGV[8])
local added, collided, pending = 0, 0, {}
for i = 3, #KEYS do
  if added >= want then break end
  if redis.call('EXISTS', KEYS[i]) == 1 then
    collided = collided + 1
  else
    redis.call('HSET', KEYS[i], 'offer', ARGV[2], 'left', ARGV[3], 'per_code', ARGV[3],
               'per_member', ARGV[4], 'from_us', ARGV[5], 'until_us', ARGV[6], 'batch', ARGV[7])
    pending[#pending + 1] = string.sub(KEYS[i], plen + 1)
    added = added + 1
    if #pending == 1000 then
      redis.call('RPUSH', KEYS[2], unpack(pending))
      pending = {}
    end
  end
end
if #pending > 0 then redis.call('RPUSH', KEYS[2], unpack(pending)) end
redis.call('HINCRBY', KEYS[1], 'generated', added)
redis.call('HINCRBY', KEYS[1], 'collisions', collided)
return {added, collided}
"""

# A batch bound to members (code k for member k): as _FILL, one call at a time; ARGV[9] = the
# codes generated so far as the caller read it (a mismatch replies {-1, 0}: read again),
# ARGV[10..] = the members of the next codes, in order.
_FILL_BOUND = """
local generated = tonumber(redis.call('HGET', KEYS[1], 'generated') or '0')
if generated ~= tonumber(ARGV[9]) then return {-1, 0} end
local want = tonumber(ARGV[1]) - generated
local plen = tonumber(ARGV[8])
local added, collided = 0, 0
for i = 3, #KEYS do
  if added >= want or 10 + added > #ARGV then break end
  if redis.call('EXISTS', KEYS[i]) == 1 then
    collided = collided + 1
  else
    redis.call('HSET', KEYS[i], 'offer', ARGV[2], 'left', ARGV[3], 'per_code', ARGV[3],
               'per_member', ARGV[4], 'from_us', ARGV[5], 'until_us', ARGV[6], 'batch', ARGV[7],
               'member', ARGV[10 + added])
    redis.call('RPUSH', KEYS[2], string.sub(KEYS[i], plen + 1))
    added = added + 1
  end
end
redis.call('HINCRBY', KEYS[1], 'generated', added)
redis.call('HINCRBY', KEYS[1], 'collisions', collided)
return {added, collided}
"""

_FIELDS = (
    "offer", "left", "per_code", "per_member", "from_us", "until_us", "batch", "last_tx",
    "last_us", "member",
)  # fmt: skip
SCRIPT_CODES = 2_000  # codes per script call: Redis is busy a few milliseconds at a time
SCAN = 20_000  # codes a page reads at most when filtering by status


def _record(raw: dict[bytes, bytes]) -> BatchRecord:
    return BatchRecord(
        CodeBatch(**json.loads(raw[b"body"])),
        int(raw[b"created_us"]),
        int(raw[b"generated"]),
        int(raw[b"collisions"]),
    )


def _info(code: str, values: Sequence[bytes | None]) -> CodeInfo | None:
    if values[0] is None:
        return None
    v = [x.decode() if x is not None else "" for x in values]
    return CodeInfo(
        code,
        v[6],
        v[0],
        int(v[2]),
        int(v[1]),
        v[3] == "1",
        int(v[4]),
        int(v[5]),
        v[7],
        int(v[8] or 0),
        v[9],
    )


def create_batch(io: RedisIO, batch: CodeBatch, now_us: int) -> BatchRecord:
    k = io.keys
    fingerprint = batch.fingerprint()
    opened = io.client.register_script(_OPEN)
    fill = io.client.register_script(_FILL)
    stored = opened(
        keys=[k.code_batch(batch.batch_id), k.code_batches],
        args=[fingerprint, json.dumps(asdict(batch)), now_us, batch.batch_id],
    )
    if (stored.decode() if isinstance(stored, bytes) else stored) != fingerprint:
        raise AlreadyExists(f"batch {batch.batch_id!r} was created with another request")
    record = get_batch(io, batch.batch_id)
    assert record is not None
    generated = record.generated
    plen = len(k.code(""))
    args: list[str | int] = [
        batch.count, batch.offer_id, batch.uses_per_code, int(batch.per_member),
        batch.valid_from_us, batch.valid_until_us, batch.batch_id, plen,
    ]  # fmt: skip
    head = [k.code_batch(batch.batch_id), k.code_batch_codes(batch.batch_id)]
    if batch.member_ids:
        _fill_bound(io, batch, head, args, generated)
        generated = batch.count
    while generated < batch.count:
        codes = draw(batch, min(CHUNK, batch.count - generated))
        pipe = io.client.pipeline(transaction=False)
        for at in range(0, len(codes), SCRIPT_CODES):
            part = codes[at : at + SCRIPT_CODES]
            fill(keys=head + [k.code(c) for c in part], args=args, client=pipe)
        generated += sum(int(cast(list[int], r)[0]) for r in pipe.execute())
        if generated < batch.count:  # another process may have filled it meanwhile
            generated = int(io.client.hget(head[0], "generated") or 0)
    record = get_batch(io, batch.batch_id)
    assert record is not None
    return record


def _fill_bound(
    io: RedisIO, batch: CodeBatch, head: list[str], args: list[str | int], generated: int
) -> None:
    """Fill a batch bound to members, :data:`SCRIPT_CODES` codes per call, in member order."""
    fill = io.client.register_script(_FILL_BOUND)
    while generated < batch.count:
        part = draw(batch, min(SCRIPT_CODES, batch.count - generated))
        members: list[str | int] = list(batch.member_of(generated, len(part)))
        keys = head + [io.keys.code(c) for c in part]
        added, _ = cast(list[int], fill(keys=keys, args=args + [generated] + members))
        if added < 0:  # another process filled some meanwhile
            generated = int(io.client.hget(head[0], "generated") or 0)
        else:
            generated += int(added)


def get_batch(io: RedisIO, batch_id: str) -> BatchRecord | None:
    raw = cast(dict[bytes, bytes], io.client.hgetall(io.keys.code_batch(batch_id)))
    return _record(raw) if raw else None


def list_batches(io: RedisIO) -> list[BatchRecord]:
    ids = [b.decode() for b in cast(list[bytes], io.client.lrange(io.keys.code_batches, 0, -1))]
    pipe = io.client.pipeline(transaction=False)
    for b in ids:
        pipe.hgetall(io.keys.code_batch(b))
    return [_record(raw) for raw in pipe.execute() if raw]


def get_code(io: RedisIO, code: str) -> CodeInfo:
    found = _info(code, cast(list[bytes | None], io.client.hmget(io.keys.code(code), _FIELDS)))
    if found is None:
        raise NotFound(f"code {code!r} not found")
    return found


def list_codes(
    io: RedisIO, batch_id: str, status: str, cursor: str, limit: int, now_us: int
) -> tuple[list[CodeInfo], str]:
    """A page in generation order; the cursor is ``<batch index>.<offset>`` (the batch index
    in ``codebatches``; 0 when listing one batch). Reads at most :data:`SCAN` codes a page."""
    k = io.keys
    try:
        b, off = (int(x) for x in cursor.split(".")) if cursor else (0, 0)
        if b < 0 or off < 0:
            raise ValueError
    except ValueError:
        raise InvalidInput.at("page_token", "is not a token of this listing") from None
    if batch_id:
        if not io.client.exists(k.code_batch(batch_id)):
            raise NotFound(f"batch {batch_id!r} not found")
        if b != 0:
            raise InvalidInput.at("page_token", "is not a token of this listing")
        ids = [batch_id]
    else:
        ids = [x.decode() for x in cast(list[bytes], io.client.lrange(k.code_batches, b, -1))]
    out: list[CodeInfo] = []
    scanned, budget = 0, max(SCAN, limit)
    for j, bid in enumerate(ids):
        key = k.code_batch_codes(bid)
        total = int(io.client.llen(key))
        while off < total and len(out) < limit and scanned < budget:
            step = min(limit - len(out) if not status else 2_000, total - off)
            got = cast(list[bytes], io.client.lrange(key, off, off + step - 1))
            codes = [c.decode() for c in got]
            pipe = io.client.pipeline(transaction=False)
            for c in codes:
                pipe.hmget(k.code(c), _FIELDS)
            for c, values in zip(codes, pipe.execute(), strict=True):
                off += 1
                scanned += 1
                info = _info(c, values)
                if info is not None and (not status or info.status(now_us) == status):
                    out.append(info)
                    if len(out) == limit:
                        break
        if off < total:  # stopped inside this batch
            return out, f"{b + j}.{off}"
        off = 0
        if len(out) == limit or scanned >= budget:
            return out, f"{b + j + 1}.0" if j + 1 < len(ids) else ""
    return out, ""


__all__ = ["create_batch", "get_batch", "get_code", "list_batches", "list_codes"]
