"""A per-process cache of the Redis keys a quote reads, kept coherent by Redis itself.

Why: a quote (``Evaluate``) on Redis spent most of its store time on one round trip for the
member document, the presented codes and the counters of limited offers, though a lane asks
again for the same member at every scan. With this cache a quote for a member seen recently
makes no round trip at all, and a change made by any process on any server is seen within
milliseconds (the tests hold it to 50 ms).

How it stays coherent: Redis server-assisted client-side caching in *broadcasting* mode. One
dedicated connection per process (per primary on a cluster; RESP2) runs ``CLIENT TRACKING ON
REDIRECT <its own id> BCAST PREFIX ...`` for the member, code and usage keys and subscribes to
``__redis__:invalidate``; from then on Redis sends it the name of every key under those
prefixes that any client changes, right after the change (a null after
``FLUSHALL``/``FLUSHDB``), and a background thread drops those entries. Broadcasting rather
than Redis's default tracking mode, because the default mode tracks what each *reading*
connection read: every pooled connection would need its tracking redirected here, and a pooled
connection that closed would silently end the invalidations for what it had read. Here nothing
depends on the connections that read, only on one connection whose loss the thread sees (an
error, or no answer to a ``PING`` within the socket timeout): it then flushes everything, and
the cache serves nothing until it is subscribed again. The price: every process hears of every
change under the prefixes, not only of keys it holds (one short message per change and process,
batched by Redis).

redis-py's own client-side cache (``cache_config``) does not fit: it needs Redis 7.4, caches
single commands but not the ``MULTI`` a quote reads with, and reads a connection's
invalidations only when that connection is used again.

A read that races an invalidation must not cache what it read. A read takes a ticket before it
sends its commands (:meth:`MemberCache.reading`); an invalidation of a key being read marks
it, and the value is kept only if neither that key nor the whole cache was invalidated since
the ticket was taken. Invalidations of this process's own writes travel the same way, a little
after the write's reply; the store drops the keys it wrote itself as soon as the write returns
(:meth:`MemberCache.drop`) so that a lane reads its own writes.

Values are immutable (bytes, tuples) or replaced whole: callers decode their own copy. A hash
is cached as the fields read so far (a ``dict``): new fields merge into the fields cached.

Redis Cluster (:mod:`server.store.redis.cache_cluster`): a node broadcasts only the changes
made on it, so :class:`~server.store.redis.cache_cluster.ClusterMemberCache` keeps one such
tracking connection on every primary, each with a thread of its own, and one more thread
watches the cluster's primaries (``CLUSTER NODES``, asked of every primary tracked, every
``ping_s`` and whenever a tracking connection opens or drops). It serves only while every
primary the cluster reports is tracked and every tracked primary confirms that list; a lost
tracking connection, a primary that does not answer or a changed list of primaries (failover,
a primary added or removed) flushes everything, and it serves nothing until it tracks every
primary again. A value read from a node the client's slot map does not name as a tracked
primary is not kept. Entries are keyed by full key name, as on a single Redis; quotes read
the keys they miss with one pipeline of plain reads, split per node by redis-py
(:func:`server.store.redis.state.cached_snapshot`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import redis

log = logging.getLogger(__name__)

CHANNEL = "__redis__:invalidate"


class Fill(Protocol):
    def __call__(self, values: Mapping[str, object]) -> None: ...


class MemberCache:
    """Up to ``size`` keys' values (least recently used go first), coherent with Redis.

    ``prefixes``: the key prefixes Redis reports changes under; every key cached must start
    with one of them. The tracking connection is opened by :meth:`start` (the first quote),
    with the client's connection settings, and the cache serves nothing until it is
    subscribed. ``ping_s``: how often a quiet tracking connection is checked.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefixes: Sequence[str],
        size: int,
        *,
        ping_s: float = 1.0,
    ) -> None:
        if size < 1:
            raise ValueError(f"member cache size must be at least 1 (got {size})")
        self._client = client
        self._prefixes = tuple(prefixes)
        self._size = size
        self._ping_s = ping_s
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, object] = OrderedDict()
        self._under: dict[str, set[str]] = {p: set() for p in self._prefixes}
        self._reading: dict[str, int] = {}  # key -> reads in flight
        self._touched: dict[str, int] = {}  # key being read -> sequence of its invalidation
        self._seq = 0  # bumped by every invalidation
        self._flushed = 0  # the sequence of the last flush
        self._ready = False
        self._started = False
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._conn: Any = None
        self._thread: threading.Thread | None = None
        self.client_id: int | None = None  # the tracking connection's id while connected

    def __len__(self) -> int:
        return len(self._entries)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, keys: Iterable[str]) -> dict[str, object]:
        """The cached values of those of ``keys`` that are cached (none until subscribed)."""
        out: dict[str, object] = {}
        with self._lock:
            if self._ready:
                for key in keys:
                    if key in self._entries:
                        self._entries.move_to_end(key)
                        out[key] = self._entries[key]
        return out

    @contextmanager
    def reading(self, keys: Sequence[str]) -> Iterator[Fill]:
        """A read of ``keys`` from Redis: enter before sending the commands, call the fill
        with what was read; a value invalidated since entering is not kept."""
        with self._lock:
            seq = self._seq
            for key in keys:
                self._reading[key] = self._reading.get(key, 0) + 1

        def fill(values: Mapping[str, object]) -> None:
            if not self._trusted(keys):
                return
            with self._lock:
                if not self._ready or self._flushed > seq:
                    return
                for key in keys:
                    if key in values and self._touched.get(key, 0) <= seq:
                        self._put(key, values[key])

        try:
            yield fill
        finally:
            with self._lock:
                for key in keys:
                    left = self._reading[key] - 1
                    if left:
                        self._reading[key] = left
                    else:
                        del self._reading[key]
                        self._touched.pop(key, None)

    def _put(self, key: str, value: object) -> None:
        old = self._entries.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            value = {**old, **value}
        self._entries[key] = value
        self._entries.move_to_end(key)
        self._under[self._prefix(key)].add(key)
        while len(self._entries) > self._size:
            gone, _ = self._entries.popitem(last=False)
            self._under[self._prefix(gone)].discard(gone)

    def _prefix(self, key: str) -> str:
        for p in self._prefixes:
            if key.startswith(p):
                return p
        raise ValueError(f"key {key!r} is under none of the tracked prefixes")

    # -- invalidation --------------------------------------------------------------------------

    def drop(self, keys: Iterable[str]) -> None:
        """Forget ``keys`` (changed by Redis, or written by this process just now)."""
        with self._lock:
            self._seq += 1
            for key in keys:
                if key in self._entries:
                    del self._entries[key]
                    self._under[self._prefix(key)].discard(key)
                if key in self._reading:
                    self._touched[key] = self._seq

    def drop_prefix(self, prefix: str) -> None:
        """Forget every key under ``prefix`` (one of the tracked prefixes)."""
        with self._lock:
            self._seq += 1
            for key in self._under[prefix]:
                del self._entries[key]
            self._under[prefix].clear()
            for key in self._reading:
                if key.startswith(prefix):
                    self._touched[key] = self._seq

    def flush(self) -> None:
        """Forget everything, including what reads in flight are about to bring."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        self._seq += 1
        self._flushed = self._seq
        self._entries.clear()
        for keys in self._under.values():
            keys.clear()

    # -- serving ------------------------------------------------------------------------------

    def _serve(self, when: Callable[[], bool] | None = None) -> bool:
        """Every tracking connection is subscribed: flush (reads begun before now may have
        missed an invalidation), then serve and keep values; ``when``: a last check, made
        under the cache's lock. Whether it serves now."""
        with self._lock:
            if when is not None and not when():
                return False
            self._flush()
            self._ready = True
            self._subscribed.set()
        return True

    def _unserve(self, reason: object = None) -> None:
        """A tracking connection is lost or in doubt: forget everything and serve nothing."""
        with self._lock:
            was, self._ready = self._ready, False
            self._flush()
            self._subscribed.clear()
        if was and reason is not None and not self._stop.is_set():  # once per loss
            log.warning("member cache: flushed, serving nothing until tracked again: %s", reason)

    # -- the tracking connection ---------------------------------------------------------------

    def start(self) -> None:
        """Open the tracking connection(s) in the background (once; later calls return)."""
        if self._started:  # every quote calls this: no lock once started
            return
        with self._lock:
            if self._started or self._stop.is_set():
                return
            self._started = True
        self._track()

    def _track(self) -> None:
        self._thread = threading.Thread(target=self._run, name="loyalty-member-cache", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        """Subscribed: the cache serves and keeps values."""
        return self._ready

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until subscribed (after :meth:`start`, or a reconnect); whether it is."""
        return self._subscribed.wait(timeout_s)

    @property
    def client_ids(self) -> dict[str, int]:
        """The subscribed tracking connections' ids by node (``host:port``): one on a single
        Redis, one per primary on a cluster."""
        conn, client_id = self._conn, self.client_id
        if conn is None or client_id is None:
            return {}
        name = f"{conn.host}:{conn.port}" if hasattr(conn, "host") else str(conn.path)
        return {name: client_id}

    def close(self) -> None:
        self._stop.set()
        self._untrack()
        self.flush()

    def _untrack(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.disconnect()  # wakes the thread blocked on the socket
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _trusted(self, keys: Sequence[str]) -> bool:
        """Whether what was just read of ``keys`` came from a node whose changes this cache
        hears of (always, on a single Redis)."""
        return True

    def _run(self) -> None:
        pause = 0.05
        while not self._stop.is_set():
            try:
                self._conn, self.client_id = subscribe(
                    self._client.connection_pool, {}, self._prefixes, self._bind
                )
                self._serve()
                pause = 0.05
                listen(self._conn, self, self._stop, self._ping_s)
            except redis.ResponseError as exc:  # no client tracking: stay a cache that misses
                log.error("member cache off: Redis refused client tracking: %s", exc)
                return
            except Exception as exc:  # every loss means the same: flush, then reconnect
                self._unserve(f"tracking connection lost: {exc}")
            finally:
                self._unserve()
                self.client_id = None
                if self._conn is not None:
                    self._conn.disconnect()
                    self._conn = None
            self._stop.wait(pause)
            pause = min(pause * 2, 1.0)

    def _bind(self, conn: Any) -> None:
        self._conn = conn  # close() can wake the thread while it connects


def subscribe(
    pool: Any, at: Mapping[str, object], prefixes: Sequence[str], bind: Callable[[Any], None]
) -> tuple[Any, int]:
    """A new connection of ``pool``'s kind (``at``: its host and port, when not the pool's)
    subscribed to its own invalidations: ``CLIENT ID``, ``CLIENT TRACKING ON REDIRECT <id>
    BCAST PREFIX ...``, ``SUBSCRIBE``; ``bind`` gets the connection before it connects."""
    conn = pool.connection_class(
        **{
            **pool.connection_kwargs,
            **at,
            "protocol": 2,  # invalidations as pub/sub messages, replies in order
            "health_check_interval": 0,  # its PING would read a message as the reply
            "client_name": "loyalty-member-cache",
        }
    )
    bind(conn)
    conn.connect()
    conn.send_command("CLIENT", "ID")
    client_id = int(conn.read_response())
    tracked = [x for p in prefixes for x in ("PREFIX", p)]
    conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *tracked)
    conn.read_response()
    conn.send_command("SUBSCRIBE", CHANNEL)
    conn.read_response()
    return conn, client_id


def listen(conn: Any, cache: MemberCache, stop: threading.Event, ping_s: float) -> None:
    """Apply invalidations until ``stop``; a connection that does not answer a ``PING``
    within the socket timeout is lost (raises)."""
    timeout = conn.socket_timeout or 5.0
    next_ping = time.monotonic() + ping_s
    pong_by = 0.0  # 0: no PING outstanding
    while not stop.is_set():
        if conn.can_read(timeout=ping_s / 4):
            message = conn.read_response()
            if message[0] == b"message":
                if message[2] is None:
                    cache.flush()
                else:
                    cache.drop(k.decode("utf-8", "surrogateescape") for k in message[2])
            elif message[0] == b"pong":
                pong_by = 0.0
                next_ping = time.monotonic() + ping_s
        now = time.monotonic()
        if pong_by and now > pong_by:
            raise redis.TimeoutError("tracking connection: no answer to PING")
        if not pong_by and now >= next_ping:
            conn.send_command("PING")
            pong_by = now + timeout


__all__ = ["CHANNEL", "Fill", "MemberCache", "listen", "subscribe"]
