"""Shared fixtures: ``pricer`` runs every pricing test once per implementation.

Tests call ``pricer(rules, catalogue, basket, member=None, **kw)`` and never an
implementation directly, so the kernel can be added as a second parameter and every pinned
expectation then holds for both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from engine.pricing.api import price
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.reference.core import price_reference
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Member, PricingResult
from loyalty.v1 import rules_pb2
from server.store import Store, open_store
from server.store.redis.cluster_process import ClusterProcess, cluster_support
from server.store.redis.process import RedisProcess
from server.store.redis.store import RedisStore
from tests.store_fixtures import on_cluster

Pricer = Callable[..., PricingResult]

# Deterministic by default (CI and `make test`); HYPOTHESIS_PROFILE=explore searches afresh.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _price_with_reference(
    rules: rules_pb2.RuleSet, catalogue: Catalogue, basket: Basket, member: Member | None, **kw: Any
) -> PricingResult:
    return price_reference(rules, catalogue, basket, member, **kw)


def _price_with_kernel(
    rules: rules_pb2.RuleSet, catalogue: Catalogue, basket: Basket, member: Member | None, **kw: Any
) -> PricingResult:
    return price(compile_rules(rules, catalogue), basket, member, **kw)


_IMPLEMENTATIONS: dict[str, Callable[..., PricingResult]] = {
    "reference": _price_with_reference,
    "kernel": _price_with_kernel,
}


@pytest.fixture(params=list(_IMPLEMENTATIONS), ids=list(_IMPLEMENTATIONS))
def pricer(request: pytest.FixtureRequest) -> Pricer:
    """``pricer(rules, catalogue, basket, member=None, **kw) -> PricingResult``.

    ``rules`` may be a dict in rule-file form or a ``RuleSet``; ``catalogue`` may be ``None``
    for an empty one.
    """
    implementation = _IMPLEMENTATIONS[request.param]

    def run(
        rules: Mapping[str, Any] | rules_pb2.RuleSet,
        catalogue: Catalogue | None,
        basket: Basket,
        member: Member | None = None,
        **kw: Any,
    ) -> PricingResult:
        if not isinstance(rules, rules_pb2.RuleSet):
            rules = parse_rules(dict(rules))
        if catalogue is None:
            catalogue = Catalogue.empty()
        return implementation(rules, catalogue, basket, member, **kw)

    return run


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    """A private redis-server on a free loopback port for the whole run (AOF off: tests that
    need durability start their own)."""
    with RedisProcess() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterProcess]:
    """A private Redis Cluster for the whole run: 3 primaries and 3 replicas on free loopback
    ports (server.store.redis.cluster_process); skipped only where redis-server cannot run one."""
    reason = cluster_support()
    if reason is not None:
        pytest.skip(f"no Redis Cluster here: {reason}")
    with ClusterProcess() as cluster:
        yield cluster


@pytest.fixture
def redis_url(redis_server: RedisProcess, request: pytest.FixtureRequest) -> str:
    """The shared test Redis, flushed so each test starts empty."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(params=["embedded", "redis", "cluster"])
def each_store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty store of each kind: embedded in ``tmp_path``, Redis on the shared test Redis,
    and the Redis store on the shared test cluster under a key prefix of its own."""
    if request.param == "embedded":
        store = open_store("embedded", data_dir=tmp_path / "data")
    elif request.param == "redis":
        store = open_store("redis", url=request.getfixturevalue("redis_url"))
    else:
        url = request.getfixturevalue("redis_cluster").url
        store = open_store("redis", settings=on_cluster(url, "e"))
    yield store
    store.close()


@pytest.fixture
def cluster_store(redis_cluster: ClusterProcess) -> Iterator[RedisStore]:
    """The Redis store on the shared test cluster under a key prefix of its own."""
    store = RedisStore(settings=on_cluster(redis_cluster.url))
    yield store
    store.close()


@pytest.fixture
def own_cluster() -> Iterator[ClusterProcess]:
    """A cluster of the test's own (3 primaries, 3 replicas) whose nodes time out after 1 s, so
    a primary killed by the test is failed over within seconds."""
    reason = cluster_support()
    if reason is not None:
        pytest.skip(f"no Redis Cluster here: {reason}")
    with ClusterProcess(node_timeout_ms=1000) as cluster:
        yield cluster
