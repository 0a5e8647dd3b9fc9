"""Assemble the gRPC server: services, health, reflection, API keys, request logs, metrics
and traces.

``create_server(settings)`` returns a ready-to-start ``(server, port, app)``; ``serve`` runs
it until SIGTERM/SIGINT and stops gracefully, with logs configured and ``/metrics`` served
(by the one process, or by the supervisor of ``--workers``).

Sync server or grpc.aio? ``python -m benchmarks.echo`` (a bare echo of a 20-line request,
2 client processes x 8 calls in flight, 2 cores) measured them about even here: grpc.aio 2-8%
ahead on a quiet machine (e.g. 1,858 vs 1,828 req/s), the sync server ahead while another job
shared the CPU (1,556 vs 1,125). Every handler of this service blocks — a SQLite transaction,
a numba kernel that releases the GIL — which grpc.aio would have to hand to a thread pool on
each call, so the synchronous server with a thread pool is used.

Workers and threads: ``loyalty serve`` runs one worker per core (:func:`processes`), 4 threads
each. ``python -m benchmarks.grpc_load --quick --targets evaluate --store embedded`` on 2 cores
shared with other jobs (0.5-1.1 cores busy elsewhere), closed-loop Evaluate req/s per run:
2 x 4: 824, 896, 759; 2 x 2: 757, 771; 2 x 8: 688; 2 x 16: 639; 1 x 4: 1,054, 781, 650;
1 x 16: 721, 544; 1 x 2: 552. An earlier run on a quiet machine (Redis store): 2 x 4 1,357,
1 x 16 599. More threads than 4 only add contention inside a process (CPU per call grows).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from engine.pricing.warmup import warm_up
from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2
from server.api import edge, limits, logs
from server.api import tracing as tracing_
from server.api.auth import ApiKeyInterceptor
from server.api.campaigns import CampaignServicer
from server.api.checkout import CheckoutServicer, Clock, utc_now
from server.api.clock import PricingClock
from server.api.interceptors import CallInterceptor
from server.api.members import MemberServicer
from server.api.metrics import (
    Endpoint,
    Metrics,
    OfferLimitsCollector,
    add_process_collectors,
    multiprocess_dir,
    serve_http,
)
from server.api.tracing import Tracing
from server.api.workers import pin, processes
from server.rules.registry import RuleRegistry
from server.settings import Settings
from server.store import EmbeddedStore, Store
from server.web import app as web_

log = logging.getLogger(__name__)

# the loyalty.v1 services, each served by its servicer (create_server) through the edge
CHECKOUT = checkout_pb2.DESCRIPTOR.services_by_name["CheckoutService"]
MEMBERS = members_pb2.DESCRIPTOR.services_by_name["MemberService"]
CAMPAIGNS = campaigns_pb2.DESCRIPTOR.services_by_name["CampaignService"]
LOYALTY = (CHECKOUT, MEMBERS, CAMPAIGNS)
SERVICES = tuple(s.full_name for s in LOYALTY)
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
REFLECTION = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]


@dataclass
class App:
    """What the servicers share, and the health status to flip when ready."""

    settings: Settings
    registry: RuleRegistry
    store: Store
    health: health.HealthServicer
    metrics: Metrics | None = None  # None: --metrics-port 0
    tracing: Tracing | None = None
    limits: OfferLimitsCollector | None = None  # registered on metrics.registry
    endpoint: Endpoint | None = field(default=None, init=False)

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICES):
            self.health.set(name, status)

    def refresh_health(self) -> None:
        self.set_serving(self.registry.ready)

    def serve_metrics(self, host: str | None = None, port: int | None = None) -> Endpoint | None:
        """Serve this process's metrics on ``http://host:port/metrics`` (by default the
        settings' ``metrics_host`` or ``host``, and ``metrics_port``; port 0 here: a free one).
        None when metrics are off; OSError when the port cannot be bound."""
        if self.metrics is None:
            return None
        host = host or self.settings.metrics_host or self.settings.host
        port = self.settings.metrics_port if port is None else port
        self.endpoint = serve_http(self.metrics.registry, host, port)
        return self.endpoint

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
        if self.limits is not None:
            self.limits.close()
        self.registry.close()
        self.store.close()
        if self.tracing is not None:
            self.tracing.shutdown()


def open_state(settings: Settings, *, watch: bool = True) -> tuple[RuleRegistry, Store]:
    """The rule registry and the state store the settings name. ``watch``: follow rule
    changes made by other processes (every server does; one-shot commands need not)."""
    if settings.store == "redis":
        from server.rules.versions import RedisVersions
        from server.store.redis.store import RedisStore

        store: Store = RedisStore(settings=settings.redis)
        registry = RuleRegistry(versions=RedisVersions.from_settings(settings.redis))
    else:
        registry = RuleRegistry(settings.data_dir)
        store = EmbeddedStore(settings.data_dir, settings.embedded)
    if watch:
        registry.watch()
    return registry, store


def create_server(
    settings: Settings,
    *,
    warm: bool = True,
    clock: Clock = utc_now,
    tracing: Tracing | None = None,
) -> tuple[grpc.Server, int, App]:
    """Build the server bound to ``settings.host:settings.port`` (0 = a free port).

    Health reports NOT_SERVING until a rule set is loaded and the kernels are compiled.
    ``clock`` gives "now" to every call (tests move it to see points mature and expire).
    Metrics are recorded unless ``settings.metrics_port`` is 0 (:meth:`App.serve_metrics`
    serves them); traces when ``tracing`` is given or the settings ask for them
    (:mod:`server.api.tracing`).
    """
    if settings.plaintext_keys:  # allowed by --insecure-plaintext-keys (Settings.check)
        log.warning(
            "API keys on %s travel without TLS (--insecure-plaintext-keys): terminate TLS in "
            "front of this server",
            settings.host,
        )
    registry, store = open_state(settings)
    metrics = Metrics() if settings.metrics_port else None
    tracing = tracing if tracing is not None else tracing_.from_settings(settings)
    app = App(settings, registry, store, health.HealthServicer(), metrics, tracing)
    app.set_serving(False)
    if metrics is not None:
        registry.on_change(lambda active: metrics.ruleset_version.set(active.version))
        if registry.ready:
            metrics.ruleset_version.set(registry.current().version)
        if processes(settings) == 1:  # with workers, the supervisor reads the limits
            app.limits = OfferLimitsCollector(limits.from_registry(registry, store, clock))
            metrics.registry.register(app.limits)
    access_log = logs.AccessLog(member_ids=settings.log_member_ids, key=settings.log_member_key)
    interceptors: list[grpc.ServerInterceptor] = [CallInterceptor(metrics, access_log)]
    if settings.api_keys:
        interceptors.insert(0, ApiKeyInterceptor(settings.api_keys))
    if tracing is not None:  # first: the server span covers the key check and the call
        interceptors.insert(0, tracing.interceptor())
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # several worker processes share the port (--workers); one alone must not
        # silently share it with a stale server
        ("grpc.so_reuseport", 1 if processes(settings) > 1 else 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.threads),
        interceptors=interceptors,
        options=options,
    )
    registry.on_change(lambda _active: app.refresh_health())
    # every service through the edge (server.api.edge): bytes in, parsed by us, so bytes that
    # do not decode are INVALID_ARGUMENT and cost no memory
    servicers: list[tuple[ServiceDescriptor, object]] = [
        (
            CHECKOUT,
            CheckoutServicer(
                registry,
                store,
                clock,
                metrics=metrics,
                tracing=tracing,
                times=PricingClock.of(settings.max_skew_s, settings.offline_max_age_s),
            ),
        ),
        (MEMBERS, MemberServicer(registry, store, clock)),
        (
            CAMPAIGNS,
            CampaignServicer(
                registry, store, clock, publish_simulate_days=settings.publish_simulate_days
            ),
        ),
        (HEALTH, app.health),
        (
            REFLECTION,
            reflection.ReflectionServicer([*SERVICES, HEALTH.full_name, REFLECTION.full_name]),
        ),
    ]
    for service, servicer in servicers:
        edge.register(server, service, servicer)
    address = f"{settings.host}:{settings.port}"
    if settings.tls_cert is not None and settings.tls_key is not None:
        creds = grpc.ssl_server_credentials(
            [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())]
        )
        port = server.add_secure_port(address, creds)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    if warm:
        seconds = warm_up()
        log.info("kernels ready in %.1f s", seconds)
    app.refresh_health()
    return server, port, app


def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop taking calls and finish those in flight.

    With several workers (:func:`processes`: by default one per core), start that many
    server processes on the same port (SO_REUSEPORT: the kernel spreads new connections over
    them, so every core serves) and supervise them; a gRPC channel is one connection, so
    callers should open several. One worker runs in this process. ``settings.cpu_pin``: worker
    i runs on core i only. Logs go to stderr (``settings.log_format``) in every process, one
    access line per call.
    """
    workers = processes(settings)
    settings = settings.replace(workers=workers)  # what each process's create_server sees
    if workers > 1:
        logs.configure(settings.log_format)
        _supervise(settings)
    else:
        release = logs.configure(settings.log_format, hold=True)
        if settings.cpu_pin:
            pin(0)
        _run(settings, announce=True, started=release)


def _run(settings: Settings, announce: bool, started: Callable[[], None] = lambda: None) -> None:
    """One server process until SIGTERM/SIGINT, then a graceful stop. ``announce``: the one
    process of ``serve`` (not a worker): print where it listens and serve ``/metrics``.
    ``started`` is called once it listens (after the ``listening on`` line). With
    ``--http-port``, the HTTP side (server.web.app) starts once gRPC listens, and stops first."""
    server, port, app = create_server(settings)
    target = web_.loopback_port(server) if settings.http_port else None
    server.start()
    web, web_failed = web_.start_or_fail(settings, target)
    stop = StopSignal()  # before the announce: a caller may stop it as soon as it reads that
    if announce:
        failed = None
        if app.metrics is not None:
            add_process_collectors(app.metrics.registry)
            try:
                app.serve_metrics()
            except OSError as exc:
                failed = exc
        scheme = "https" if settings.tls_cert else "plaintext"
        trust = f"-cacert {settings.tls_cert}" if settings.tls_cert else "-plaintext"
        print(
            f"loyalty engine listening on {settings.host}:{port} ({scheme}, store "
            f"{settings.store}); health: grpcurl {trust} {settings.host}:{port} "
            f"grpc.health.v1.Health/Check{_metrics_note(settings, failed)}"
            f"{web_.note(settings, web_failed)}",
            flush=True,
        )
        _log_metrics_failure(settings, failed)
    web_.log_failure(settings, web_failed)
    started()
    stop.wait()
    log.info("stopping: finishing calls in flight (up to %.0f s)", settings.grace_s)
    app.set_serving(False)
    end = time.monotonic() + settings.grace_s
    if web is not None:  # its requests in flight still need the gRPC server
        web.stop(settings.grace_s)
    server.stop(max(0.0, end - time.monotonic())).wait()
    app.close()


def _worker(settings: Settings, index: int, ready: EventType) -> None:
    logs.configure(settings.log_format)
    if settings.cpu_pin:
        pin(index)
    _run(settings, announce=False, started=ready.set)


def _supervise(settings: Settings) -> None:
    """Start the workers, forward SIGTERM/SIGINT to them, wait for all to finish; serve the
    metrics of them all on ``--metrics-port``."""
    shared = multiprocess_dir() if settings.metrics_port else None  # before the spawn
    ctx = multiprocessing.get_context("spawn")  # no fork after grpc and numba are loaded
    ready = [ctx.Event() for _ in range(settings.workers)]
    workers = [
        ctx.Process(target=_worker, args=(settings, i, ready[i]), name=f"loyalty-worker-{i}")
        for i in range(settings.workers)
    ]
    for w in workers:
        w.start()
    stop = StopSignal()
    reader = limits.FromStorage(settings)
    endpoint, collector, failed = None, None, None
    try:
        if shared is not None:
            registry = shared.registry()
            collector = OfferLimitsCollector(reader)
            registry.register(collector)
            try:
                endpoint = serve_http(
                    registry, settings.metrics_host or settings.host, settings.metrics_port
                )
            except OSError as exc:
                failed = exc
        # announce only once every worker listens: callers connect as soon as they read it
        while not all(r.is_set() for r in ready):
            if stop.wait(0.05) or any(not w.is_alive() for w in workers):
                break
        print(
            f"loyalty engine: {settings.workers} workers listening on {settings.host}:"
            f"{settings.port} (store {settings.store}); open several channels to use them all"
            f"{_metrics_note(settings, failed)}{web_.note(settings, None)}",
            flush=True,
        )
        _log_metrics_failure(settings, failed)
        while not stop.wait(0.5):
            if any(not w.is_alive() for w in workers):
                log.error("a worker exited; stopping the others")
                break
        for w in workers:
            if w.is_alive() and w.pid is not None:
                os.kill(w.pid, signal.SIGTERM)
        for w in workers:
            w.join(settings.grace_s + 5)
    finally:
        for thing in (endpoint, collector):
            if thing is not None:
                thing.close()
        reader.close()
        if shared is not None:
            for w in workers:
                if w.pid is not None:
                    shared.worker_gone(w.pid)
            shared.close()


class StopSignal:
    """SIGTERM or SIGINT asks to stop. The handler only sets a flag and :meth:`wait` polls it:
    a handler that takes a lock (``threading.Event.set`` does) deadlocks when the signal lands
    while the main thread it interrupts holds that lock."""

    POLL_S = 0.05

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def wait(self, timeout_s: float | None = None) -> bool:
        """Until asked to stop, or ``timeout_s`` passed; whether asked."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.requested:
            left = self.POLL_S if end is None else min(self.POLL_S, end - time.monotonic())
            if left <= 0:
                break
            time.sleep(left)
        return self.requested


def _metrics_note(settings: Settings, failed: OSError | None) -> str:
    if not settings.metrics_port or failed is not None:
        return ""
    host = settings.metrics_host or settings.host
    host = f"[{host}]" if ":" in host else host
    return f"; metrics: http://{host}:{settings.metrics_port}/metrics"


def _log_metrics_failure(settings: Settings, failed: OSError | None) -> None:
    """Metrics must not keep checkout from starting: a port in use is an error in the log."""
    if failed is not None:
        host = settings.metrics_host or settings.host
        log.error(
            "metrics: cannot listen on %s:%d (%s); serving without /metrics",
            host,
            settings.metrics_port,
            failed,
        )
