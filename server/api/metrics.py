"""Prometheus metrics: what the server records, and the ``/metrics`` endpoint that serves them.

:class:`Metrics` holds every metric of one server process in its own registry (so several
servers in one test process do not mix). :class:`server.api.interceptors.CallInterceptor`
records each call (count by method and status, latency by method) and the checkout servicer
records the kernel time and what commits did (discounts and vendor funding by funder, points,
retries, aborts). :class:`OfferLimitsCollector` reads what is left of the offers' limits from
the store when scraped.

One process (``--workers 1``): the process serves its own registry on ``--metrics-port``.
Several (``--workers N``): the supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at a clean folder
before it spawns the workers (:func:`multiprocess_dir`); each worker then writes its values to
files there, and the supervisor alone serves ``/metrics``, summing them
(``prometheus_client.multiprocess.MultiProcessCollector``) and reading the offers' limits itself.

Not here yet: the Redis store's quote cache (hits, misses, invalidations, flushes).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from engine.pricing.types import RemainingLimits
from server.store.base import CommitOutcome
from server.store.policy import Policy

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# a call takes about a millisecond; a commit on a busy store may take tens
RPC_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
KERNEL_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1)
RETAILER = "retailer"  # the funder label of an offer without a funder_id (docs/design.md §4.2)

# (the rule set's limits, remaining limits by offer id); None = no rule set yet
LimitsReader = Callable[[], tuple[Policy, Mapping[str, RemainingLimits]] | None]


class _Rpc:
    """One method's series, bound once: a call then costs a dict lookup and two updates."""

    __slots__ = ("_counter", "_method", "_by_code", "latency")

    def __init__(self, counter: Counter, latency: Histogram, method: str):
        self._counter, self._method = counter, method
        self._by_code: dict[str, Counter] = {}
        self.latency = latency.labels(method)

    def observe(self, code: str, seconds: float) -> None:
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = self._counter.labels(self._method, code)
        child.inc()
        self.latency.observe(seconds)


class Metrics:
    """Every metric one server process records (``loyalty_`` prefix, units in the names)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "loyalty_rpc_requests",
            "gRPC calls by method and status code",
            ["method", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "loyalty_rpc_duration_seconds",
            "gRPC call duration in the server, by method",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self.kernel = Histogram(
            "loyalty_kernel_duration_seconds",
            "time in engine.price (encode, kernel, decode)",
            buckets=KERNEL_BUCKETS,
            registry=r,
        )
        self.commits = Counter(
            "loyalty_commits",
            "commits: committed (new), replayed (same id again), aborted "
            "(ABORTED: optimistic conflict outlasted the retries)",
            ["result"],
            registry=r,
        )
        self.retries = Counter(
            "loyalty_commit_retries",
            "commit attempts priced again after another lane won",
            registry=r,
        )
        self.discount = Counter(
            "loyalty_discount_minor",
            "discounts committed, minor units, by funder",
            ["funder"],
            registry=r,
        )
        self.funding = Counter(
            "loyalty_vendor_funding_minor",
            "vendor-funded part of committed discounts, minor units, by funder",
            ["funder"],
            registry=r,
        )
        self.points_issued = Counter(
            "loyalty_points_issued", "points earned by committed baskets", registry=r
        )
        self.points_redeemed = Counter(
            "loyalty_points_redeemed", "points redeemed as tender by committed baskets", registry=r
        )
        self.ruleset_version = Gauge(
            "loyalty_ruleset_version",
            "the rule-set version this process serves (0 = none)",
            registry=r,
            multiprocess_mode="liveall",
        )
        for result in ("committed", "replayed", "aborted"):
            self.commits.labels(result)  # present at 0 from the start
        self._committed = self.commits.labels("committed")
        self._replayed = self.commits.labels("replayed")
        self._aborted = self.commits.labels("aborted")
        self._rpcs: dict[str, _Rpc] = {}
        self._discount: dict[str, Counter] = {}  # funder_id -> bound series
        self._funding: dict[str, Counter] = {}

    def rpc(self, method: str) -> _Rpc:
        """The bound series of one method (``/loyalty.v1.CheckoutService/Commit`` is labelled
        ``loyalty.v1.CheckoutService/Commit``)."""
        rpc = self._rpcs.get(method)
        if rpc is None:
            rpc = self._rpcs[method] = _Rpc(self.requests, self.latency, method.lstrip("/"))
        return rpc

    def committed(self, outcome: CommitOutcome, *, fresh: bool, priced: int) -> None:
        """A commit returned ``outcome``; ``fresh``: applied by this call (not a stored outcome
        answered again); ``priced``: how many times the store priced it."""
        if not fresh:
            self._replayed.inc()
            self._retried(priced)  # each priced attempt lost its race before the replay
            return
        self._committed.inc()
        self._retried(priced - 1)
        for use in outcome.offers:
            if use.discount_minor:
                _child(self._discount, self.discount, use.funder_id).inc(use.discount_minor)
            if use.funded_minor:
                _child(self._funding, self.funding, use.funder_id).inc(use.funded_minor)
        if outcome.points_earned:
            self.points_issued.inc(outcome.points_earned)
        if outcome.points_redeemed:
            self.points_redeemed.inc(outcome.points_redeemed)

    def aborted(self, priced: int) -> None:
        """A commit ended in ABORTED after pricing ``priced`` times."""
        self._aborted.inc()
        self._retried(priced - 1)

    def _retried(self, n: int) -> None:
        if n > 0:
            self.retries.inc(n)


def _child(bound: dict[str, Counter], counter: Counter, funder_id: str) -> Counter:
    child = bound.get(funder_id)
    if child is None:
        child = bound[funder_id] = counter.labels(funder_id or RETAILER)
    return child


class OfferLimitsCollector(Collector):
    """What is left of every limited offer's total uses and budget, read on scrape.

    ``read`` does one store read (the usage counters of the offers with limits, no member). It
    runs on one thread of its own, so a store that keeps one connection per thread keeps one
    for this, and within ``timeout_s``; a scrape within ``min_interval_s`` of the last read
    answers the same values.
    """

    def __init__(self, read: LimitsReader, *, min_interval_s: float = 2.0, timeout_s: float = 2.0):
        self._read = read
        self._min_interval_s, self._timeout_s = min_interval_s, timeout_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-limits")
        self._lock = threading.Lock()
        self._last: tuple[float, list[Metric]] = (float("-inf"), [])

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> Iterable[Metric]:
        return []  # read on scrape only, not at registration

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            at, families = self._last
            if time.monotonic() - at >= self._min_interval_s:
                try:
                    families = _limit_families(
                        self._pool.submit(self._read).result(self._timeout_s)
                    )
                except Exception:  # noqa: BLE001 - a scrape must not fail on the store
                    log.warning("metrics: cannot read the offers' limits", exc_info=True)
                    families = []
                self._last = (time.monotonic(), families)
        return families


def _limit_families(
    read: tuple[Policy, Mapping[str, RemainingLimits]] | None,
) -> list[Metric]:
    families = {
        name: GaugeMetricFamily(name, text, labels=["offer"])
        for name, text in (
            ("loyalty_offer_uses_limit", "total uses an offer may have (offers with a cap)"),
            ("loyalty_offer_uses_remaining", "total uses an offer has left"),
            ("loyalty_offer_budget_limit_minor", "an offer's budget, minor units"),
            ("loyalty_offer_budget_remaining_minor", "what is left of an offer's budget"),
        )
    }
    if read is not None:
        policy, limits = read
        for offer_id in sorted(limits):
            p, left = policy.offers.get(offer_id), limits[offer_id]
            if p is None:
                continue
            if p.total_uses and left.total_uses is not None:
                families["loyalty_offer_uses_limit"].add_metric([offer_id], p.total_uses)
                families["loyalty_offer_uses_remaining"].add_metric([offer_id], left.total_uses)
            if p.budget_minor and left.budget_minor is not None:
                families["loyalty_offer_budget_limit_minor"].add_metric([offer_id], p.budget_minor)
                families["loyalty_offer_budget_remaining_minor"].add_metric(
                    [offer_id], left.budget_minor
                )
    return list(families.values())


def add_process_collectors(registry: CollectorRegistry) -> None:
    """The standard ``process_*``, ``python_*`` series of this process (one-process mode)."""
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)


@dataclass
class Endpoint:
    """A running ``/metrics`` HTTP server."""

    server: WSGIServer
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_http(registry: CollectorRegistry, host: str, port: int) -> Endpoint:
    """Serve ``registry`` on ``http://host:port/metrics`` (port 0: a free one) from a daemon
    thread. Raises OSError when the port cannot be bound."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return Endpoint(server, thread, host, int(server.server_port))


@dataclass
class MultiprocessDir:
    """The folder the workers write their values to (``PROMETHEUS_MULTIPROC_DIR``)."""

    path: Path
    owned: bool  # made by us (a temporary folder): removed at the end

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.path))  # type: ignore[no-untyped-call]
        return registry

    def worker_gone(self, pid: int) -> None:
        mark_process_dead(pid, str(self.path))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


def multiprocess_dir() -> MultiprocessDir:
    """Prepare the folder before the workers are spawned: ``$PROMETHEUS_MULTIPROC_DIR`` when
    set (its ``*.db`` files, left by an earlier run, are removed), else a new temporary folder,
    exported so that spawned workers inherit it."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        owned = False
    else:
        path, owned = Path(tempfile.mkdtemp(prefix="loyalty-metrics-")), True
    os.environ[MULTIPROC_ENV] = str(path)
    return MultiprocessDir(path, owned)
