"""Tier requalification runs on Redis, by the rules of :mod:`server.store.tiers`.

The run is claimed by the ``tier_claim`` script (its hash records the period and the counts).
Member documents are found with ``SCAN`` (which may return a key twice: a member already
carrying the period end is skipped), read :data:`~server.store.tiers.BATCH` at a time, and
written by the ``tier_apply`` script, which writes each member only if its document's version
did not move since the read (a commit in between: that member is read and requalified again)
and counts it in the run in the same atomic step.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from engine.errors import Conflict
from server.store.policy import Policy
from server.store.redis.io import RedisIO, ScriptArg
from server.store.snapshot import at_us, to_us
from server.store.tiers import (
    BATCH,
    TierRun,
    check_run,
    refuse_older,
)
from server.store.tiers import (
    requalify as requalify_member,
)


def requalify(
    io: RedisIO, policy: Policy, run_id: str, period_end: datetime, now: datetime
) -> TierRun:
    """Run (or go on with, or answer again) ``run_id`` at ``period_end``."""
    k, period_us = io.keys, to_us(period_end)
    run = k.tier_run(run_id)
    reply = io.run("tier_claim", [run, k.tier_last], [run_id, period_us])
    if reply[0] == "EXISTS":
        check_run(run_id, period_us, int(reply[1]))
    if reply[0] == "REFUSED":
        refuse_older(run_id, str(reply[2]), at_us(int(reply[1])), period_end)
    if str(reply[1]) == "1":
        return _counts(io, run_id, period_end, repeated=True)
    for ids in _batches(io):
        _requalify_batch(io, policy, run, ids, period_end, now)
    io.client.hset(run, "done", 1)
    return _counts(io, run_id, period_end, repeated=False)


def _batches(io: RedisIO) -> Iterator[list[str]]:
    """Every member id, :data:`BATCH` at a time (from the member documents' keys)."""
    head = io.keys.member("")[:-1]  # "<prefix>m:{"
    batch: list[str] = []
    for key in io.client.scan_iter(match=head.replace("[", "\\[") + "*", count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        batch.append(name[len(head) : -1])
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _requalify_batch(
    io: RedisIO, policy: Policy, run: str, ids: list[str], period_end: datetime, now: datetime
) -> None:
    period_us = to_us(period_end)
    for _ in io.attempts():
        keys: list[str] = [run]
        args: list[ScriptArg] = []
        for doc in io.member_docs(ids):
            if doc is None or doc.requalified >= period_us:
                continue
            tier, kind = requalify_member(policy, doc.tier, doc.spend, period_end, io.spend_months)
            doc.tier, doc.tier_floor, doc.requalified = tier, None, period_us
            keys.append(io.keys.member(doc.member_id))
            args += [doc.version, doc.dump(now, io.spend_months), kind]
        if len(keys) == 1:
            return
        moved = io.run("tier_apply", keys, args)[1:]
        if io.cache is not None:
            io.cache.drop(keys[1:])
        if not moved:
            return
        ids = [keys[int(i)].partition("{")[2][:-1] for i in moved]
    raise Conflict(f"members {ids[0]!r}... kept changing during the tier run; run it again")


def _counts(io: RedisIO, run_id: str, period_end: datetime, *, repeated: bool) -> TierRun:
    got = io.client.hmget(io.keys.tier_run(run_id), ["upgraded", "downgraded", "kept"])
    upgraded, downgraded, kept = (int(x or 0) for x in got)
    return TierRun(run_id, period_end, upgraded, downgraded, kept, repeated)


__all__ = ["requalify"]
