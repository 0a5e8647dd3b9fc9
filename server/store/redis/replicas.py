"""Writes acknowledged by replicas before a lane hears OK (README "Durability on a cluster").

Redis replicates asynchronously: a primary that dies before its replica copied a write loses
it when the replica takes over, and the lane was told OK. With ``wait_replicas`` > 0
(``LOYALTY_REDIS_WAIT_REPLICAS``; 1 on a cluster by default, 0 on a single Redis) a durable
write (:data:`server.store.redis.io.DURABLE`: commits, cancels, returns, points adjustments,
and on a cluster the reservation of a global counter) is followed by ``WAIT replicas
timeout_ms`` on *the same connection* of the node that took it (``WAIT`` counts the replicas
that acknowledged that connection's last write): one pipeline, one round trip more only in the
replica's copy time.

Fewer replicas in time: the write is applied on the primary but :class:`Unavailable` is
raised (gRPC ``UNAVAILABLE``), never OK. An OK is a promise the commit survives a failover; an
unacknowledged write may be lost, or may not. The lane retries under the same transaction id
(``UNAVAILABLE`` is retryable): if the write survived, the retry finds the stored outcome and
answers it only once the replicas acknowledged (:func:`sync`: a tiny write in the same slot,
then ``WAIT``, so every earlier write of that primary is on the replica too); if it was lost
in a failover, the retry applies it afresh, once. Answering OK and logging instead would make
``wait_replicas`` a metric, not a guarantee.

A node that stopped answering, or a slot that moved (``MOVED`` after a failover), re-reads the
cluster's slot map and raises :class:`Unavailable` too: the lane's retry goes to the new
primary.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import redis
from redis.commands.core import Script
from redis.exceptions import AskError, MovedError, TryAgainError

from engine.errors import Unavailable

log = logging.getLogger(__name__)

MOVING = (redis.ConnectionError, redis.TimeoutError, MovedError, AskError, TryAgainError)


def node(client: redis.Redis, key: str) -> redis.Redis:
    """The client of the node serving ``key`` (``client`` itself on a single Redis)."""
    if isinstance(client, redis.RedisCluster):
        return client.get_redis_connection(client.get_node_from_key(key))
    return client


def node_name(client: redis.Redis, key: str) -> str:
    """Which node serves ``key`` (``host:port``; one name on a single Redis)."""
    if isinstance(client, redis.RedisCluster):
        return str(client.get_node_from_key(key).name)
    return ""


def refresh(client: redis.Redis) -> None:
    """Re-read a cluster's slot map (after a node failed or a slot moved)."""
    if isinstance(client, redis.RedisCluster):
        try:
            client.nodes_manager.initialize()
        except redis.RedisError:  # the next call tries again
            log.warning("could not re-read the cluster's slot map", exc_info=True)


def acked(
    client: redis.Redis,
    key: str,
    stage: Any,
    replicas: int,
    timeout_ms: int,
) -> Any:
    """Run ``stage(pipe)`` (the write, queued on a pipeline of ``key``'s node) then ``WAIT``
    on the same connection; the write's reply. :class:`Unavailable` when fewer than
    ``replicas`` acknowledged within ``timeout_ms`` (the write stays applied) or the node
    moved."""
    pipe = node(client, key).pipeline(transaction=False)
    stage(pipe)
    pipe.wait(replicas, timeout_ms)
    try:
        reply, count = pipe.execute()
    except MOVING as exc:
        refresh(client)
        raise Unavailable(f"redis node moved or unreachable, retry: {exc}") from exc
    if int(count) < replicas:
        raise Unavailable(
            f"written, but {count} of {replicas} replica(s) acknowledged it within "
            f"{timeout_ms} ms; retry with the same id (its stored outcome is answered)"
        )
    return reply


def run_script(
    client: redis.Redis,
    script: Script,
    keys: Sequence[str],
    args: Sequence[Any],
    replicas: int,
    timeout_ms: int,
) -> list[bytes | int]:
    """``script`` on ``keys`` (one slot) acknowledged by ``replicas`` (:func:`acked`)."""

    def stage(pipe: Any) -> None:
        script(keys=keys, args=args, client=pipe)

    return cast(list[bytes | int], acked(client, keys[0], stage, replicas, timeout_ms))


def sync(client: redis.Redis, key: str, replicas: int, timeout_ms: int) -> None:
    """Before answering a stored outcome: a write to ``key`` (in the slot of what is
    answered), acknowledged by ``replicas``, so every earlier write of that primary, the
    stored outcome included, is on the replicas."""

    def stage(pipe: Any) -> None:
        pipe.set(key, 1, px=60_000)

    acked(client, key, stage, replicas, timeout_ms)


__all__ = ["MOVING", "acked", "node", "node_name", "refresh", "run_script", "sync"]
