"""The rule registry: published rule-set versions, the catalogue, and the compiled current one.

Publishing validates and compiles first (off the request path, outside any lock), stores the
version, then swaps one reference. A request takes ``registry.current()`` once at its start
and finishes on that version even if another is published meanwhile.

Versions and the catalogue persist in a :class:`server.rules.versions.VersionStore`:
``rules.sqlite`` in the data directory (embedded) or Redis. Several server processes can share
one: :meth:`RuleRegistry.watch` runs a thread that notices another process's publish, rollback
or catalogue import (Redis pub/sub wakes it at once; it also polls every ``interval_s``),
compiles the new version there — off the request path — and swaps it in.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from engine.errors import FailedPrecondition, NotFound, Violation
from engine.pricing.catalogue import NO_COST, Catalogue
from engine.pricing.compiler import CompiledRules, compile_rules
from engine.pricing.validate import validate
from engine.pricing.wire import WireTables
from loyalty.v1 import rules_pb2
from server.rules.versions import SqliteVersions, VersionRow, VersionStore
from server.store.policy import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveRules:
    """One compiled version, as requests see it."""

    version: int
    compiled: CompiledRules
    names: dict[str, str]  # offer id -> name, for responses
    points_pending: bool  # earned points wait pending_days before they can be spent
    policy: Policy  # what the store needs of these rules (limits, points, tiers)
    wire: WireTables  # the byte-level Evaluate path's string index and response strings


@dataclass(frozen=True)
class VersionInfo:
    version: int
    rules: rules_pb2.RuleSet
    published_at: datetime
    note: str
    current: bool


class RuleRegistry:
    """Rule-set versions in a VersionStore and the current compiled one."""

    def __init__(self, data_dir: str | Path | None = None, *, versions: VersionStore | None = None):
        if versions is None:
            if data_dir is None:
                raise ValueError("RuleRegistry needs a data_dir or a version store")
            versions = SqliteVersions(data_dir)
        self._versions = versions
        # serialises this process's writers; requests never take it: they read one reference
        self._lock = threading.RLock()
        self._active: ActiveRules | None = None
        self._listeners: list[Callable[[ActiveRules], None]] = []
        self._catalogue = self._load_catalogue()
        self._stamp = versions.stamp()
        current = self._stamp[0]
        if current:
            self._active = self._compile(current, self._load(current).rules)
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:  # it wakes within interval_s; then nobody reads versions
            self._watcher.join(5)
        self._versions.close()

    # --- following other processes ------------------------------------------------------------

    def watch(self, interval_s: float = 0.5) -> None:
        """Follow publishes, rollbacks and imports made by other processes (daemon thread)."""
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._follow, args=(interval_s,), name="rules-watch", daemon=True
            )
            self._watcher.start()

    def _follow(self, interval_s: float) -> None:
        while not self._stop.is_set():
            try:
                self._versions.wait(interval_s)
                if not self._stop.is_set():
                    self.refresh()
            except Exception:  # noqa: BLE001 - keep serving the version we have; retry later
                log.exception(
                    "rule registry refresh failed; keeping version %s",
                    self._active.version if self._active else None,
                )
                self._stop.wait(interval_s)

    def refresh(self) -> bool:
        """Load what another process changed, if anything; True when something was swapped."""
        stamp = self._versions.stamp()
        if stamp == self._stamp:
            return False
        catalogue = self._load_catalogue() if stamp[1] != self._stamp[1] else self._catalogue
        version = stamp[0]
        active = None
        if version:
            active = _active(version, compile_rules(self._load(version).rules, catalogue))
        with self._lock:
            self._catalogue, self._stamp = catalogue, stamp
            if active is not None:
                self._swap(active)
        log.info("now serving rule set version %d (changed by another process)", version)
        return True

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

    def current_or_none(self) -> ActiveRules | None:
        """The current version, or None before the first publish (no exception to raise)."""
        return self._active

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
        current = self._current_version()
        return [self._info(row, current) for row in self._versions.rows()]

    # --- writing ---------------------------------------------------------------------------

    def check(self, rules: rules_pb2.RuleSet) -> list[Violation]:
        return validate(rules, self._catalogue)

    def publish(
        self,
        rules: rules_pb2.RuleSet,
        note: str = "",
        now: datetime | None = None,
        *,
        compiled: CompiledRules | None = None,
    ) -> tuple[int, float]:
        """Validate, compile, store as a new version, make it current.

        ``compiled``: ``rules`` already validated and compiled against the current catalogue
        (the publish gate's). Returns (version, seconds spent compiling). Raises RuleSetInvalid.
        """
        start = time.perf_counter()
        if compiled is None:
            compiled = compile_rules(rules, self._catalogue)  # validates; outside the lock
        seconds = time.perf_counter() - start
        with self._lock:
            published = (now or datetime.now(UTC)).isoformat()
            version = self._versions.add(
                rules.SerializeToString(deterministic=True), published, note
            )
            self._stamp = (version, self._stamp[1])
            self._swap(_active(version, compiled))
        log.info(
            "published rule set version %d (%d offers, compiled in %.3f s)",
            version,
            len(rules.offers),
            seconds,
        )
        return version, seconds

    def activate(self, version: int) -> ActiveRules:
        """Make an earlier version current again (rollback)."""
        with self._lock:
            info = self._load(version)
        active = self._compile(version, info.rules)
        with self._lock:
            self._versions.set_current(version)
            self._stamp = (version, self._stamp[1])
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
            self._versions.save_catalogue(buf.getvalue())
            self._stamp = self._versions.stamp()
            self._catalogue = catalogue
            if active is not None:
                self._swap(active)
        log.info("imported a catalogue of %d skus", len(catalogue))
        return current

    # --- internals -------------------------------------------------------------------------

    def _compile(self, version: int, rules: rules_pb2.RuleSet) -> ActiveRules:
        # stored versions were valid when published; the catalogue may have changed since
        return _active(version, compile_rules(rules, self._catalogue))

    def _current_version(self) -> int:
        return self._versions.current()

    def _load(self, version: int) -> VersionInfo:
        row = self._versions.load(version)
        if row is None:
            raise NotFound(f"rule set version {version} does not exist")
        return self._info(row, self._current_version())

    @staticmethod
    def _info(row: VersionRow, current: int) -> VersionInfo:
        rules = rules_pb2.RuleSet()
        rules.ParseFromString(row[1])
        return VersionInfo(
            int(row[0]), rules, datetime.fromisoformat(row[2]), row[3], int(row[0]) == current
        )

    def _load_catalogue(self) -> Catalogue:
        data = self._versions.catalogue()
        if data is None:
            return Catalogue.empty()
        return Catalogue.from_frame(pl.read_parquet(io.BytesIO(data)))


def _active(version: int, compiled: CompiledRules) -> ActiveRules:
    rules = compiled.rules
    pending = rules.HasField("points") and rules.points.pending_days > 0
    names = {o.id: o.name for o in rules.offers}
    return ActiveRules(
        version,
        compiled,
        names,
        pending,
        Policy.from_rules(rules),
        WireTables.build(compiled, names),
    )


def _catalogue_frame(c: Catalogue) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sku": list(c.sku),
            "category": list(c.category),
            "brand": list(c.brand),
            "vendor": list(c.vendor),
            "no_discount": c.no_discount,
            "no_earn": c.no_earn,
            "unit_cost_minor": [None if x == NO_COST else x for x in c.unit_cost_minor.tolist()],
        },
        schema={
            "sku": pl.String,
            "category": pl.String,
            "brand": pl.String,
            "vendor": pl.String,
            "no_discount": pl.Boolean,
            "no_earn": pl.Boolean,
            "unit_cost_minor": pl.Int64,
        },
    )
