"""Where the rule registry keeps its versions: SQLite next to the embedded store, or Redis.

Both keep every published RuleSet (protobuf), the current-version pointer and the catalogue
(Parquet), and both expose a *stamp* — ``(current version, catalogue stamp)`` — that changes
whenever another process publishes, rolls back or imports, so every server process can notice
and swap (:meth:`server.rules.registry.RuleRegistry.watch`). Redis also announces each change on a
pub/sub channel, so processes wake at once instead of at their next poll.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import redis

from server.settings import RedisSettings
from server.store.redis.io import connect
from server.store.redis.keys import Keys

# (version, RuleSet bytes, published_at ISO 8601, note)
VersionRow = tuple[int, bytes, str, str]
Stamp = tuple[int, int]  # (current version, catalogue stamp)


class VersionStore(Protocol):
    def add(self, rules: bytes, published_at: str, note: str) -> int:
        """Store a new version and make it current, atomically; returns its number."""
        ...

    def set_current(self, version: int) -> None: ...

    def current(self) -> int: ...

    def load(self, version: int) -> VersionRow | None: ...

    def rows(self) -> list[VersionRow]: ...

    def catalogue(self) -> bytes | None: ...

    def save_catalogue(self, parquet: bytes) -> None: ...

    def stamp(self) -> Stamp: ...

    def wait(self, timeout_s: float) -> None:
        """Return when a change may have happened, or after ``timeout_s``."""
        ...

    def close(self) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    version INTEGER PRIMARY KEY,
    rules BLOB NOT NULL,
    published_at TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS catalogue (id INTEGER PRIMARY KEY CHECK (id = 1), parquet BLOB);
"""


class SqliteVersions:
    """``data_dir/rules.sqlite``: table ``versions``, ``state`` (``current`` and
    ``catalogue_stamp``) and ``catalogue`` (one Parquet blob). Several processes may share it
    (WAL); they notice each other's changes by polling the stamp."""

    def __init__(self, data_dir: str | Path):
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            path / "rules.sqlite", check_same_thread=False, isolation_level=None, timeout=10
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._closed = threading.Event()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _state(self, key: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_state(self, key: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))

    def add(self, rules: bytes, published_at: str, note: str) -> int:
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO versions (rules, published_at, note) VALUES (?, ?, ?)",
                (rules, published_at, note),
            )
            version = int(cur.lastrowid or 0)
            self._set_state("current", version)
        return version

    def set_current(self, version: int) -> None:
        with self._transaction():
            self._set_state("current", version)

    def current(self) -> int:
        return self._state("current")

    def load(self, version: int) -> VersionRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT version, rules, published_at, note FROM versions WHERE version = ?",
                (version,),
            ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), row[2], row[3])

    def rows(self) -> list[VersionRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT version, rules, published_at, note FROM versions ORDER BY version"
            ).fetchall()
        return [(int(r[0]), bytes(r[1]), r[2], r[3]) for r in rows]

    def catalogue(self) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT parquet FROM catalogue WHERE id = 1").fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def save_catalogue(self, parquet: bytes) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO catalogue (id, parquet) VALUES (1, ?)", (parquet,)
            )
            self._set_state("catalogue_stamp", self._state("catalogue_stamp") + 1)

    def stamp(self) -> Stamp:
        return self.current(), self._state("catalogue_stamp")

    def wait(self, timeout_s: float) -> None:
        self._closed.wait(timeout_s)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._db.close()


class RedisVersions:
    """Versions in Redis (keys ``rules:*`` of :mod:`server.store.redis.keys`); every change
    is announced on ``rules:events``.

    ``cluster``: ``url`` names a node of a Redis Cluster. The keys then share the ``{rules}``
    hash tag (one slot: the version counter, the versions and the current pointer change
    together), and the announcements are plain ``PUBLISH``, which a cluster forwards to every
    node, so a subscriber on any node hears them; the stamp poll (:meth:`stamp`) still catches
    an announcement lost while a node was away."""

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> RedisVersions:
        """The registry beside the Redis store of ``settings`` (its URL, prefix, cluster)."""
        return cls(settings.url, settings.prefix, cluster=settings.cluster)

    def __init__(
        self,
        url: str,
        prefix: str = "loyalty:",
        client: redis.Redis | None = None,
        *,
        cluster: bool = False,
    ):
        self.keys = Keys(prefix, cluster=cluster)
        if client is None and cluster:
            client = connect(
                url, connect_timeout_s=1.0, socket_timeout_s=5.0, max_connections=8, cluster=True
            )
        self.client = client or redis.Redis.from_url(
            url, socket_connect_timeout=1.0, socket_timeout=5.0
        )
        self._pubsub: Any = None
        self._closed = threading.Event()

    def _announce(self, what: str) -> None:
        self.client.publish(self.keys.rules_events, what)

    def add(self, rules: bytes, published_at: str, note: str) -> int:
        k = self.keys
        version = int(self.client.incr(k.rules_seq))
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            k.rules_version(version),
            mapping={"rules": rules, "published_at": published_at, "note": note},
        )
        pipe.set(k.rules_current, version)
        pipe.execute()
        self._announce(f"version {version}")
        return version

    def set_current(self, version: int) -> None:
        self.client.set(self.keys.rules_current, version)
        self._announce(f"version {version}")

    def current(self) -> int:
        return int(self.client.get(self.keys.rules_current) or 0)

    def load(self, version: int) -> VersionRow | None:
        h: Any = self.client.hgetall(self.keys.rules_version(version))
        if not h:
            return None
        return version, h[b"rules"], h[b"published_at"].decode(), h[b"note"].decode()

    def rows(self) -> list[VersionRow]:
        last = int(self.client.get(self.keys.rules_seq) or 0)
        return [row for v in range(1, last + 1) if (row := self.load(v)) is not None]

    def catalogue(self) -> bytes | None:
        return self.client.get(self.keys.catalogue)  # type: ignore[return-value]

    def save_catalogue(self, parquet: bytes) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.catalogue, parquet)
        pipe.incr(self.keys.catalogue_stamp)
        stamp = pipe.execute()[1]
        self._announce(f"catalogue {stamp}")

    def stamp(self) -> Stamp:
        current, catalogue = self.client.mget(
            self.keys.rules_current,
            self.keys.catalogue_stamp,
        )
        return int(current or 0), int(catalogue or 0)

    def wait(self, timeout_s: float) -> None:
        try:
            if self._pubsub is None:
                self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]
                self._pubsub.subscribe(self.keys.rules_events)
            self._pubsub.get_message(timeout=timeout_s)
        except (redis.ConnectionError, redis.TimeoutError):
            # Redis is away: poll again later; a fresh subscription is made then
            self._pubsub = None
            self._closed.wait(timeout_s)

    def close(self) -> None:
        self._closed.set()
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass
        self.client.close()
