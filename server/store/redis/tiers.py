"""Tier requalification runs on Redis, by the rules of :mod:`server.store.tiers`.

The run is claimed by the ``tier_claim`` script (its hash records the period and the counts).
Member documents are found with ``SCAN`` (which may return a key twice: a member already
carrying the period end is skipped), read :data:`~server.store.tiers.BATCH` at a time, and
written by the ``tier_apply`` script, which writes each member only if its document's version
did not move since the read (a commit in between: that member is read and requalified again)
and counts it in the run in the same atomic step.

On a Redis Cluster the run's claim and ``tiers:last`` share the ``{tiers}`` slot, the members
of a batch are written per home slot (one ``tier_apply`` per home), and each home slot keeps
its own counts of the run (``tierrun:{s<k>}:<run>``, written by the same script as its
members), which the run's answer sums: a run cut short and run again counts every member once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import cast

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
        _requalify_batch(io, policy, run_id, ids, period_end, now)
    io.acknowledged_everywhere()  # the members written on the replicas too
    io.client.hset(run, "done", 1)
    return _counts(io, run_id, period_end, repeated=False)


def _batches(io: RedisIO) -> Iterator[list[str]]:
    """Every member id, :data:`BATCH` at a time (from the member documents' keys; on a
    cluster every primary is scanned)."""
    k = io.keys
    batch: list[str] = []
    for key in io.client.scan_iter(match=k.member_pattern(), count=1000):
        batch.append(k.member_of(key.decode() if isinstance(key, bytes) else str(key)))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _requalify_batch(
    io: RedisIO, policy: Policy, run_id: str, ids: list[str], period_end: datetime, now: datetime
) -> None:
    k, period_us = io.keys, to_us(period_end)
    for _ in io.attempts():
        writes: dict[str, tuple[list[str], list[ScriptArg]]] = {}  # by counts hash
        for doc in io.member_docs(ids):
            if doc is None or doc.requalified >= period_us:
                continue
            tier, kind = requalify_member(policy, doc.tier, doc.spend, period_end, io.spend_months)
            doc.tier, doc.tier_floor, doc.requalified = tier, None, period_us
            counts = _counts_key(io, run_id, doc.member_id)
            keys, args = writes.setdefault(counts, ([counts], []))
            keys.append(k.member(doc.member_id))
            args += [doc.version, doc.dump(now, io.spend_months), kind]
        ids = []
        for keys, args in writes.values():  # one atomic step per home slot on a cluster
            moved = io.run("tier_apply", keys, args)[1:]
            if io.cache is not None:
                io.cache.drop(keys[1:])
            ids += [k.member_of(keys[int(i)]) for i in moved]
        if not ids:
            return
    raise Conflict(f"members {ids[0]!r}... kept changing during the tier run; run it again")


def _counts_key(io: RedisIO, run_id: str, member_id: str) -> str:
    """Where a member's requalification is counted: the run's hash, or on a cluster the
    run's counts in the member's home slot."""
    k = io.keys
    return k.tier_counts(run_id, k.home(member_id)) if k.cluster else k.tier_run(run_id)


def _counts(io: RedisIO, run_id: str, period_end: datetime, *, repeated: bool) -> TierRun:
    k, fields = io.keys, ["upgraded", "downgraded", "kept"]
    if k.cluster:  # the counts of every home slot, in one pipeline per node
        pipe = io.client.pipeline(transaction=False)
        for i in range(k.shards):
            pipe.hmget(k.tier_counts(run_id, f"s{i}"), fields)
        rows = cast(list[list[bytes | None]], pipe.execute())
    else:
        rows = [cast(list[bytes | None], io.client.hmget(k.tier_run(run_id), fields))]
    upgraded, downgraded, kept = (sum(int(r[j] or 0) for r in rows) for j in range(3))
    return TierRun(run_id, period_end, upgraded, downgraded, kept, repeated)


__all__ = ["requalify"]
