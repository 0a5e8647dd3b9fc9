"""The rule registry: published rule-set versions, the catalogue, and the compiled current one.

Publishing validates and compiles first (off the request path, outside any lock), stores the
version, then swaps one reference. A request takes ``registry.current()`` once at its start
and finishes on that version even if another is published meanwhile.

Versions and the catalogue persist in ``rules.sqlite`` in the data directory: table
``versions(version, rules, published_at, note)`` holds each RuleSet serialised as protobuf,
``state(key, value)`` the current version, ``catalogue(id, parquet)`` the catalogue as Parquet.
"""

from __future__ import annotations

import io
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from engine.catalogue import Catalogue
from engine.compiler import CompiledRules, compile_rules
from engine.validate import Violation, validate
from loyalty.v1 import rules_pb2
from server.store.base import FailedPrecondition, NotFound

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ActiveRules:
    """One compiled version, as requests see it."""

    version: int
    compiled: CompiledRules
    names: dict[str, str]  # offer id -> name, for responses
    points_pending: bool  # earned points wait pending_days before they can be spent


@dataclass(frozen=True)
class VersionInfo:
    version: int
    rules: rules_pb2.RuleSet
    published_at: datetime
    note: str
    current: bool


class RuleRegistry:
    """Rule-set versions in ``data_dir/rules.sqlite`` and the current compiled one."""

    def __init__(self, data_dir: str | Path):
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path / "rules.sqlite", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        # guards the connection; requests never take it: they read one reference
        self._lock = threading.RLock()
        self._active: ActiveRules | None = None
        self._listeners: list[Callable[[ActiveRules], None]] = []
        self._catalogue = self._load_catalogue()
        current = self._current_version()
        if current:
            self._active = self._compile(current, self._load(current).rules)

    def close(self) -> None:
        self._db.close()

    def on_change(self, listener: Callable[[ActiveRules], None]) -> None:
        """Call ``listener(active)`` after every swap of the current version."""
        self._listeners.append(listener)

    def _swap(self, active: ActiveRules) -> None:
        self._active = active
        for listener in self._listeners:
            listener(active)

    # --- reading ---------------------------------------------------------------------------

    def current(self) -> ActiveRules:
        active = self._active  # one read: the request keeps this version to the end
        if active is None:
            raise FailedPrecondition("no rule set is published yet")
        return active

    @property
    def ready(self) -> bool:
        return self._active is not None

    @property
    def catalogue(self) -> Catalogue:
        return self._catalogue

    def get(self, version: int = 0) -> VersionInfo:
        with self._lock:
            return self._load(version or self._current_version() or -1)

    def versions(self) -> list[VersionInfo]:
        with self._lock:
            current = self._current_version()
            rows = self._db.execute("SELECT version, rules, published_at, note FROM versions "
                                    "ORDER BY version").fetchall()
        return [self._info(row, current) for row in rows]

    # --- writing ---------------------------------------------------------------------------

    def check(self, rules: rules_pb2.RuleSet) -> list[Violation]:
        return validate(rules, self._catalogue)

    def publish(self, rules: rules_pb2.RuleSet, note: str = "",
                now: datetime | None = None) -> tuple[int, float]:
        """Validate, compile, store as a new version, make it current.

        Returns (version, seconds spent compiling). Raises RuleSetInvalid.
        """
        start = time.perf_counter()
        compiled = compile_rules(rules, self._catalogue)  # validates; outside the lock
        seconds = time.perf_counter() - start
        with self._lock:
            published = (now or datetime.now(UTC)).isoformat()
            with self._transaction():
                cur = self._db.execute(
                    "INSERT INTO versions (rules, published_at, note) VALUES (?, ?, ?)",
                    (rules.SerializeToString(deterministic=True), published, note))
                version = int(cur.lastrowid or 0)
                self._set_current(version)
            self._swap(_active(version, compiled))
        log.info("published rule set version %d (%d offers, compiled in %.3f s)", version,
                 len(rules.offers), seconds)
        return version, seconds

    def activate(self, version: int) -> ActiveRules:
        """Make an earlier version current again (rollback)."""
        with self._lock:
            info = self._load(version)
        active = self._compile(version, info.rules)
        with self._lock:
            with self._transaction():
                self._set_current(version)
            self._swap(active)
        log.info("activated rule set version %d", version)
        return active

    def import_catalogue(self, catalogue: Catalogue) -> int:
        """Replace the catalogue and recompile the current version against it.

        Returns the current version (0 if none). Raises RuleSetInvalid when the current rule set
        does not hold with the new catalogue (e.g. bundle components now overlap); then nothing
        changes.
        """
        with self._lock:
            current = self._current_version()
            rules = self._load(current).rules if current else None
        active = None
        if rules is not None:
            active = _active(current, compile_rules(rules, catalogue))
        buf = io.BytesIO()
        _catalogue_frame(catalogue).write_parquet(buf)
        with self._lock:
            with self._transaction():
                self._db.execute("INSERT OR REPLACE INTO catalogue (id, parquet) VALUES (1, ?)",
                                 (buf.getvalue(),))
            self._catalogue = catalogue
            if active is not None:
                self._swap(active)
        log.info("imported a catalogue of %d skus", len(catalogue))
        return current

    # --- internals -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _compile(self, version: int, rules: rules_pb2.RuleSet) -> ActiveRules:
        # stored versions were valid when published; the catalogue may have changed since
        return _active(version, compile_rules(rules, self._catalogue))

    def _current_version(self) -> int:
        row = self._db.execute("SELECT value FROM state WHERE key = 'current'").fetchone()
        return int(row[0]) if row else 0

    def _set_current(self, version: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO state (key, value) VALUES ('current', ?)",
                         (version,))

    def _load(self, version: int) -> VersionInfo:
        row = self._db.execute("SELECT version, rules, published_at, note FROM versions "
                               "WHERE version = ?", (version,)).fetchone()
        if row is None:
            raise NotFound(f"rule set version {version} does not exist")
        return self._info(row, self._current_version())

    @staticmethod
    def _info(row: tuple, current: int) -> VersionInfo:
        rules = rules_pb2.RuleSet()
        rules.ParseFromString(row[1])
        return VersionInfo(int(row[0]), rules, datetime.fromisoformat(row[2]), row[3],
                           int(row[0]) == current)

    def _load_catalogue(self) -> Catalogue:
        row = self._db.execute("SELECT parquet FROM catalogue WHERE id = 1").fetchone()
        if row is None or row[0] is None:
            return Catalogue.empty()
        return Catalogue.from_frame(pl.read_parquet(io.BytesIO(row[0])))


def _active(version: int, compiled: CompiledRules) -> ActiveRules:
    rules = compiled.rules
    pending = rules.HasField("points") and rules.points.pending_days > 0
    return ActiveRules(version, compiled, {o.id: o.name for o in rules.offers}, pending)


def _catalogue_frame(c: Catalogue) -> pl.DataFrame:
    return pl.DataFrame({"sku": list(c.sku), "category": list(c.category),
                         "brand": list(c.brand), "vendor": list(c.vendor),
                         "no_discount": c.no_discount, "no_earn": c.no_earn},
                        schema={"sku": pl.String, "category": pl.String, "brand": pl.String,
                                "vendor": pl.String, "no_discount": pl.Boolean,
                                "no_earn": pl.Boolean})
