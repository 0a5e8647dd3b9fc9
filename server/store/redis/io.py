"""What every Redis operation shares: :class:`RedisIO`, and the mapping of Redis errors.

The operations (:mod:`server.store.redis.state`, :mod:`server.store.redis.checkout`,
:mod:`server.store.redis.members`) are functions that take a :class:`RedisIO`; the facade
:class:`server.store.redis.store.RedisStore` builds one from its settings and hands it to them.
Nothing here imports the facade or the operations, so the package has no import cycle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import ParamSpec, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from engine.errors import NotFound, Unavailable
from loyalty.v1.ledger_pb2 import LedgerEntry
from server.store.checkout import attempts
from server.store.redis.cache import MemberCache
from server.store.redis.docs import MemberDoc
from server.store.redis.keys import Keys
from server.store.redis.replicas import node_name, run_script, sync
from server.store.redis.reservations import RECORD_TTL_MS, Reservations
from server.store.redis.scripts import scripts

P = ParamSpec("P")
T = TypeVar("T")

ScriptArg = str | bytes | int  # what the operations pass in a script's ARGV (documents as bytes)
Reply = str | int  # one element of a script's reply, bytes decoded

# the scripts whose writes wait for replicas when RedisIO.wait_replicas > 0
# (server.store.redis.replicas): what a lane is told OK about
DURABLE = frozenset({"commit", "commit_home", "cancel", "return", "adjust"})


def unavailable(method: Callable[P, T]) -> Callable[P, T]:
    """Redis errors that mean 'not reachable now' become Unavailable; nothing was applied."""

    @functools.wraps(method)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except (
            redis.ConnectionError,
            redis.TimeoutError,
            redis.BusyLoadingError,
            redis.ReadOnlyError,
        ) as exc:
            raise Unavailable(f"redis unavailable: {exc}") from exc
        except redis.ResponseError as exc:
            if "OOM" in str(exc) or "MISCONF" in str(exc):
                raise Unavailable(f"redis refused the write: {exc}") from exc
            raise

    return wrapped


def connect(
    url: str,
    *,
    connect_timeout_s: float,
    socket_timeout_s: float,
    max_connections: int,
    cluster: bool = False,
) -> redis.Redis:
    """A client with its own connection pool: no retries inside redis-py (a failed call is
    :class:`Unavailable` at once), and the pool reconnects by itself once Redis is back.

    ``cluster``: ``url`` names any node of a Redis Cluster; the client is redis-py's
    ``RedisCluster`` (one pool per node, follows ``MOVED``/``ASK`` and re-reads the slot map by
    itself; it offers the same commands for keys of one slot, the typing pretends it is a
    ``Redis``)."""
    if cluster:
        return cast(
            redis.Redis,
            redis.RedisCluster.from_url(
                url,
                socket_connect_timeout=connect_timeout_s,
                socket_timeout=socket_timeout_s,
                max_connections=max_connections,
                health_check_interval=30,
            ),
        )
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=socket_timeout_s,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


class RedisIO:
    """The Redis side of the store, shared by every operation.

    Holds the client (and so its connection pool), the key schema (:class:`Keys`), the Lua
    scripts registered on that client, and the few settings the operations need:

    - ``ttl_ms``: how long transaction, return and adjustment documents are kept (0 = forever);
    - ``max_attempts``: optimistic retries of one operation under contention;
    - ``spend_months``: the rolling spend window a member document keeps and reports;
    - ``cache``: the per-process cache quotes read through (:mod:`server.store.redis.cache`),
      or None;
    - ``reservations``: on a cluster, the global counters' reservations
      (:mod:`server.store.redis.homes`); None on a single Redis;
    - ``wait_replicas``, ``wait_timeout_ms``: the :data:`DURABLE` scripts' writes (and a
      cluster's reservations) wait for this many replicas' acknowledgement, or raise
      :class:`Unavailable` (:mod:`server.store.redis.replicas`); 0 = no wait.

    It offers what the operations do the same way: run a script (:meth:`run`), loop over the
    optimistic attempts (:meth:`attempts`), read documents (:meth:`get`, :meth:`member_doc`,
    :meth:`member_docs`) and build a ledger entry's script arguments (:meth:`ledger_args`).
    Redis errors are mapped to :class:`Unavailable` by :func:`unavailable`, once, around each
    public operation of the facade.
    """

    __slots__ = (
        "cache",
        "client",
        "keys",
        "max_attempts",
        "reservations",
        "scripts",
        "spend_months",
        "ttl_ms",
        "wait_replicas",
        "wait_timeout_ms",
    )

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        ttl_ms: int,
        max_attempts: int,
        spend_months: int,
        cache: MemberCache | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> None:
        self.client = client
        self.wait_replicas, self.wait_timeout_ms = wait_replicas, wait_timeout_ms
        self.cache = cache
        self.keys = keys
        self.ttl_ms = ttl_ms
        self.max_attempts = max_attempts
        self.spend_months = spend_months
        self.reservations = (
            Reservations(
                client,
                keys,
                ttl_ms=RECORD_TTL_MS,
                wait_replicas=wait_replicas,
                wait_timeout_ms=wait_timeout_ms,
            )
            if keys.cluster
            else None
        )
        self.scripts: dict[str, Script] = {
            name: client.register_script(src)
            for name, src in scripts(keys.shards if keys.cluster else 0).items()
        }

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        self.client.close()

    def run(self, script: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> list[Reply]:
        """Run one of the scripts (:func:`server.store.redis.scripts.scripts`) atomically; its
        reply with strings decoded. A :data:`DURABLE` script waits for ``wait_replicas``."""
        if script in DURABLE and self.wait_replicas > 0:
            reply = run_script(
                self.client,
                self.scripts[script],
                keys,
                args,
                self.wait_replicas,
                self.wait_timeout_ms,
            )
        else:
            reply = cast(list[bytes | int], self.scripts[script](keys=keys, args=args))
        return [x.decode() if isinstance(x, bytes) else x for x in reply]

    def acknowledged(self, *homes: str) -> None:
        """Before answering what was written in ``homes``' slots (a retry's stored outcome,
        member documents written in bulk): wait until the replicas have it, one
        :func:`server.store.redis.replicas.sync` per node (a replica that acknowledged a
        later write of its primary holds every earlier one); nothing when ``wait_replicas``
        is 0."""
        if self.wait_replicas <= 0:
            return
        by_node: dict[str, str] = {}
        for home in homes:
            key = self.keys.sync(home)
            by_node.setdefault(node_name(self.client, key), key)
        for key in by_node.values():
            sync(self.client, key, self.wait_replicas, self.wait_timeout_ms)

    def acknowledged_everywhere(self) -> None:
        """:meth:`acknowledged` for every home slot (one sync per node): after bulk writes."""
        self.acknowledged(*(f"s{i}" for i in range(self.keys.shards)))

    def attempts(self) -> Iterator[int]:
        """Attempt numbers of one optimistic operation (:func:`server.store.checkout.attempts`)."""
        return attempts(self.max_attempts)

    def get(self, key: str) -> bytes | None:
        """A string key's stored value; None when absent."""
        return cast(bytes | None, self.client.get(key))

    def member_doc(self, member_id: str) -> MemberDoc:
        """The member's document as stored now; NotFound when there is none."""
        doc = MemberDoc.load(member_id, self.get(self.keys.member(member_id)))
        if doc is None:
            raise NotFound(f"member {member_id!r} not found")
        return doc

    def member_docs(self, member_ids: Sequence[str]) -> list[MemberDoc | None]:
        """The members' documents in one round trip, in order; None where absent."""
        keys = [self.keys.member(m) for m in member_ids]
        if self.keys.cluster:  # one MGET per slot (redis-py's RedisCluster splits it)
            cluster = cast(redis.RedisCluster, self.client)
            raws = cast(list[bytes | None], cluster.mget_nonatomic(keys))
        else:
            raws = cast(list[bytes | None], self.client.mget(keys))
        return [MemberDoc.load(m, raw) for m, raw in zip(member_ids, raws, strict=True)]

    def ledger_args(self, entry: LedgerEntry) -> list[ScriptArg]:
        """The ledger fields a script appends; the body is the LedgerEntry message."""
        return [
            entry.kind,
            entry.entry_id,
            entry.transaction_id,
            entry.member_id,
            entry.at_us,
            entry.SerializeToString(),
        ]


__all__ = ["DURABLE", "RedisIO", "Reply", "ScriptArg", "connect", "unavailable"]
