"""The member cache on a Redis Cluster: one tracking connection per primary, and a watch on
the cluster's primaries (:mod:`server.store.redis.cache` says how the cache stays coherent).

A node broadcasts only the changes made on it, so :class:`ClusterMemberCache` keeps one
tracking connection (:func:`~server.store.redis.cache.subscribe`) on every primary, each
listened to by a thread of its own: a connection blocked connecting to one node, or waiting
on it, never holds up the invalidations another node sends (one thread for all would need
non-blocking connects and its own reads of redis-py's parser). One more thread, the watch,
asks every primary tracked for ``CLUSTER NODES`` every ``ping_s`` and at once whenever a
tracking connection opens or drops. The cache serves only while

- every primary the cluster reports has a subscribed tracking connection, and
- every primary tracked answered the last question, each reporting the same primaries and
  none of them failing (``fail?``/``fail``), and no tracking connection opened or dropped
  since that question was asked.

Anything else (a tracking connection's error or unanswered ``PING``, a primary that does not
answer or reports a primary failing, primaries that disagree, a primary added, promoted or
demoted) flushes the cache, and it serves nothing until the watch finds all of the above again.
A primary the cluster reports is tracked from then on, one it no longer reports is let go.

Why a value cannot change unseen while the cache serves:

- A crashed primary's tracking connection closes (its thread sees it at once); a primary
  that stops answering misses its ``PING`` within ``ping_s`` plus the socket timeout (3 s
  with the defaults). Either way the cache is off before its replica can be promoted: that
  takes ``cluster-node-timeout`` (15 s by default: keep it above those 3 s) and an election.
- A manual failover turns the old primary into a replica of the new one with its tracking
  connection still open; a replica reports the changes it copies from its primary too, so
  the new primary's changes keep arriving until the watch sees it (within ``ping_s``) and
  flushes.
- A primary cut off from the other primaries but not from this process: after
  ``cluster-node-timeout`` it reports them failing, as they report it, and the watch turns
  the cache off within ``ping_s``. The others elect its replica once they agree it failed,
  plus an election delay of 0.5 to 1 s, so in this case alone the cache may still serve,
  for up to about ``ping_s`` minus that delay (half a second at most with the defaults), a
  value the new primary has changed.
- A value is kept only if the client's slot map names a tracked primary for each key read
  (:meth:`ClusterMemberCache._trusted`): a read redis-py followed to a node not tracked (a
  ``MOVED`` to a new primary) is not kept, and the watch asks at once.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.crc import key_slot

from server.store.redis.cache import MemberCache, listen, subscribe

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True, slots=True)
class Primary:
    node_id: str
    host: str
    port: int

    @property
    def name(self) -> str:
        """redis-py's name of the node (``ClusterNode.name``)."""
        return f"{self.host}:{self.port}"


def parse_nodes(text: str) -> tuple[frozenset[Primary], frozenset[tuple[str, int]], bool]:
    """``CLUSTER NODES``: the primaries (those that serve slots, and those without slots that
    have not failed: slots may move to them at any time), every node's address, and whether a
    primary serving slots is failing (``fail?`` or ``fail``: a failover may follow)."""
    primaries: set[Primary] = set()
    nodes: set[tuple[str, int]] = set()
    failing = False
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = fields[2].split(",")
        host, _, port = fields[1].split("@", 1)[0].rpartition(":")
        if not host or not port.isdigit() or int(port) == 0:
            continue
        if "noaddr" in flags or "handshake" in flags:
            continue
        nodes.add((host, int(port)))
        slots = [f for f in fields[8:] if not f.startswith("[")]  # not the migration marks
        if "master" in flags and (slots or "fail" not in flags):
            primaries.add(Primary(fields[0], host, int(port)))
            failing = failing or bool(slots and ("fail" in flags or "fail?" in flags))
    return frozenset(primaries), frozenset(nodes), failing


class _Listener:
    """One primary's tracking connection, listened to by a thread of its own until stopped;
    reconnects (backing off up to 1 s) after every loss."""

    def __init__(self, cache: ClusterMemberCache, primary: Primary) -> None:
        self.cache, self.primary = cache, primary
        self.stop = threading.Event()
        self.conn: Any = None
        self.client_id: int | None = None  # while subscribed
        self.thread = threading.Thread(
            target=self._run, name=f"loyalty-member-cache-{primary.name}", daemon=True
        )

    def _run(self) -> None:
        cache, pause = self.cache, 0.05
        at = {"host": self.primary.host, "port": self.primary.port}
        while not self.stop.is_set():
            try:
                conn, client_id = subscribe(cache._pool(), at, cache._prefixes, self._bind)
                cache._opened(self, client_id)
                pause = 0.05
                listen(conn, cache, self.stop, cache._ping_s)
            except redis.ResponseError as exc:  # no client tracking: the cache never serves
                log.error("member cache off: %s refused client tracking: %s", at, exc)
                cache._lost(self, exc)
                return
            except Exception as exc:
                cache._lost(self, f"tracking connection to {self.primary.name} lost: {exc}")
            finally:
                cache._lost(self, None)
                self.close()
            self.stop.wait(pause)
            pause = min(pause * 2, 1.0)

    def _bind(self, conn: Any) -> None:
        self.conn = conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.disconnect()  # wakes the thread blocked on the socket


class ClusterMemberCache(MemberCache):
    """:class:`~server.store.redis.cache.MemberCache` on a Redis Cluster (``client`` is a
    ``RedisCluster``): tracking connections to every primary, and the watch above."""

    def __init__(
        self, client: redis.Redis, prefixes: tuple[str, ...], size: int, *, ping_s: float = 1.0
    ) -> None:
        super().__init__(client, prefixes, size, ping_s=ping_s)
        self._cluster = cast(redis.RedisCluster, client)
        self._listeners: dict[Primary, _Listener] = {}
        self._tracked: frozenset[Primary] = frozenset()
        self._names: frozenset[str] = frozenset()  # the tracked primaries' names
        self._known: frozenset[tuple[str, int]] = frozenset()  # every node last reported
        self._changes = 0  # tracking connections opened or lost, and re-tracks
        self._wake = threading.Event()
        self._probes: dict[tuple[str, int], redis.Redis] = {}

    @property
    def client_ids(self) -> dict[str, int]:
        with self._lock:
            listeners = list(self._listeners.values())
        return {x.primary.name: x.client_id for x in listeners if x.client_id is not None}

    # -- listeners' events ---------------------------------------------------------------------

    def _opened(self, listener: _Listener, client_id: int) -> None:
        with self._lock:
            if listener.stop.is_set():
                return
            listener.client_id = client_id
            self._changes += 1
        self._wake.set()

    def _lost(self, listener: _Listener, reason: object) -> None:
        with self._lock:
            if listener.stop.is_set() or (listener.client_id is None and reason is None):
                listener.client_id = None
                return  # let go (not tracked any more), or already counted
            listener.client_id = None
            self._changes += 1
        self._unserve(reason)
        self._wake.set()

    # -- the watch -----------------------------------------------------------------------------

    def _track(self) -> None:
        self._thread = threading.Thread(
            target=self._watch, name="loyalty-member-cache-topology", daemon=True
        )
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            with self._lock:
                before = self._changes
            try:
                view, agreed = self._survey()
            except Exception as exc:
                self._unserve(f"the cluster's primaries are unknown: {exc}")
            else:
                if view != self._tracked:
                    names = ", ".join(sorted(p.name for p in view))
                    self._unserve(f"the cluster's primaries are now {names}")
                    self._retrack(view)
                elif not agreed:
                    self._unserve("a primary did not answer, sees one failing, or disagrees")
                elif not self._ready:
                    self._serve(functools.partial(self._all_subscribed, before))
            self._wake.wait(self._ping_s)

    def _all_subscribed(self, before: int) -> bool:
        """Under the lock: nothing opened or lost since ``before``, every primary tracked."""
        listeners = self._listeners.values()
        return (
            self._changes == before
            and bool(listeners)
            and all(x.client_id is not None for x in listeners)
        )

    def _survey(self) -> tuple[frozenset[Primary], bool]:
        """The primaries as the cluster reports them, and whether every primary tracked
        answered with that same set and none sees a primary failing; asks the other nodes
        only when no tracked one answers."""
        tracked = sorted(self._tracked)
        views: list[frozenset[Primary]] = []
        failing = False
        for p in tracked:
            try:
                view, fails = self._ask(p.host, p.port)
            except redis.RedisError:
                continue
            views.append(view)
            failing = failing or fails
        if not views:
            for host, port in self._seeds():
                try:
                    views.append(self._ask(host, port)[0])
                    break
                except redis.RedisError:
                    continue
            else:
                raise redis.ConnectionError("no node of the cluster answered CLUSTER NODES")
        agreed = len(views) == len(tracked) and all(v == views[0] for v in views)
        agreed = agreed and not failing
        # a view that differs from what is tracked wins: it is what changed
        return next((v for v in views if v != self._tracked), views[0]), agreed

    def _ask(self, host: str, port: int) -> tuple[frozenset[Primary], bool]:
        probe = self._probes.get((host, port))
        if probe is None:
            pool = self._pool()
            probe = redis.Redis(
                connection_pool=redis.ConnectionPool(
                    connection_class=pool.connection_class,
                    **{**pool.connection_kwargs, "host": host, "port": port},
                )
            )
            self._probes[host, port] = probe
        raw = probe.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
        primaries, nodes, failing = parse_nodes(
            raw.decode() if isinstance(raw, bytes) else str(raw)
        )
        self._known = self._known | nodes
        return primaries, failing

    def _seeds(self) -> list[tuple[str, int]]:
        """Nodes to ask when no tracked primary answers: every node reported so far, then
        those the client knows."""
        client = [(n.host, n.port) for n in self._nodes()]
        return sorted(self._known) + [a for a in client if a not in self._known]

    def _pool(self) -> Any:
        """A node's connection pool: the kind and settings of connection to open."""
        return self._nodes()[0].redis_connection.connection_pool

    def _nodes(self) -> list[Any]:
        return cast(list[Any], self._cluster.get_nodes())  # type: ignore[no-untyped-call]

    def _retrack(self, view: frozenset[Primary]) -> None:
        """Track the primaries of ``view``: a listener for each new one, let go the others."""
        with self._lock:
            gone = [x for p, x in self._listeners.items() if p not in view]
            for x in gone:
                x.stop.set()
                del self._listeners[x.primary]
            added = [_Listener(self, p) for p in view if p not in self._listeners]
            for x in added:
                self._listeners[x.primary] = x
            self._tracked, self._names = view, frozenset(p.name for p in view)
            self._changes += 1
        for x in gone:
            x.close()
        for x in added:
            x.thread.start()

    # -- reads ---------------------------------------------------------------------------------

    def _trusted(self, keys: Sequence[str]) -> bool:
        """The client's slot map names a tracked primary for each key read (redis-py updates
        it when it follows a ``MOVED``); otherwise nothing is kept and the watch asks now."""
        if not self._ready:
            return False
        names, slots = self._names, self._cluster.nodes_manager.slots_cache
        for key in keys:
            nodes = slots.get(key_slot(key.encode()))
            if not nodes or nodes[0].name not in names:
                self._wake.set()
                return False
        return True

    def _untrack(self) -> None:
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            listeners = list(self._listeners.values())
            self._listeners.clear()
        for x in listeners:
            x.stop.set()
            x.close()
        for x in listeners:
            if x.thread.is_alive():
                x.thread.join(timeout=5)
        for probe in self._probes.values():
            probe.close()


__all__ = ["ClusterMemberCache", "Primary", "parse_nodes"]
