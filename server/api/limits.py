"""What is left of the limited offers' total uses and budgets, for the metrics.

:class:`server.api.metrics.OfferLimitsCollector` calls a reader on scrape. A server process
reads with its own registry and store (:func:`from_registry`); the supervisor of ``--workers``
has no compiled rules, so :class:`FromStorage` takes the current version's limits straight from
the version store (no compiling) and opens the state store itself on first use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from engine.pricing.types import RemainingLimits
from loyalty.v1 import rules_pb2
from server.api.checkout import Clock
from server.api.metrics import LimitsReader
from server.rules.registry import RuleRegistry
from server.settings import Settings
from server.store.base import Store
from server.store.policy import Policy

if TYPE_CHECKING:
    from server.rules.versions import VersionStore

Limits = tuple[Policy, dict[str, RemainingLimits]]


def from_registry(registry: RuleRegistry, store: Store, clock: Clock) -> LimitsReader:
    """Read with this process's current rules and store; None before a rule set is loaded."""

    def read() -> Limits | None:
        if not registry.ready:
            return None
        policy = registry.current().policy
        return policy, dict(store.pricing_state(policy, None, None, (), clock()).limits)

    return read


class FromStorage:
    """Read from where the settings keep versions and state (opened on the first read: the
    workers create them meanwhile)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._versions: VersionStore | None = None
        self._store: Store | None = None
        self._policy: tuple[int, Policy] | None = None  # the last version's, parsed once

    def __call__(self) -> Limits | None:
        if self._versions is None or self._store is None:
            self._versions, self._store = _open(self.settings)
        version = self._versions.current()
        if not version:
            return None
        if self._policy is None or self._policy[0] != version:
            row = self._versions.load(version)
            if row is None:
                return None
            self._policy = version, Policy.from_rules(rules_pb2.RuleSet.FromString(row[1]))
        policy = self._policy[1]
        now = datetime.now(UTC)
        return policy, dict(self._store.pricing_state(policy, None, None, (), now).limits)

    def close(self) -> None:
        for opened in (self._versions, self._store):
            if opened is not None:
                opened.close()


def _open(settings: Settings) -> tuple[VersionStore, Store]:
    from server.rules.versions import RedisVersions, SqliteVersions

    if settings.store == "redis":
        from server.store.redis.store import RedisStore

        versions: VersionStore = RedisVersions.from_settings(settings.redis)
        return versions, RedisStore(settings=settings.redis)
    from server.store.embedded.store import EmbeddedStore

    return SqliteVersions(settings.data_dir), EmbeddedStore(settings.data_dir, settings.embedded)
