"""Assemble the gRPC server: services, health, reflection, API keys, request logs.

``create_server(settings)`` returns a ready-to-start ``(server, port, app)``; ``serve`` runs
it until SIGTERM/SIGINT and stops gracefully.

Sync server or grpc.aio? ``python -m benchmarks.echo`` (a bare echo of a 20-line request,
2 client processes x 8 calls in flight, 2 cores) measured them about even here: grpc.aio 2-8%
ahead on a quiet machine (e.g. 1,858 vs 1,828 req/s), the sync server ahead while another job
shared the CPU (1,556 vs 1,125). Every handler of this service blocks — a SQLite transaction,
a numba kernel that releases the GIL — which grpc.aio would have to hand to a thread pool on
each call, so the synchronous server with a thread pool is used.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine.pricing.warmup import warm_up
from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
)
from server.api.auth import ApiKeyInterceptor
from server.api.campaigns import CampaignServicer
from server.api.checkout import CheckoutServicer, Clock, utc_now
from server.api.interceptors import CallInterceptor
from server.api.members import MemberServicer
from server.rules.registry import RuleRegistry
from server.settings import Settings
from server.store import EmbeddedStore, Store

log = logging.getLogger(__name__)

SERVICES = ("loyalty.v1.CheckoutService", "loyalty.v1.MemberService", "loyalty.v1.CampaignService")


@dataclass
class App:
    """What the servicers share, and the health status to flip when ready."""

    settings: Settings
    registry: RuleRegistry
    store: Store
    health: health.HealthServicer

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

    def close(self) -> None:
        self.registry.close()
        self.store.close()


def open_state(settings: Settings, *, watch: bool = True) -> tuple[RuleRegistry, Store]:
    """The rule registry and the state store the settings name. ``watch``: follow rule
    changes made by other processes (every server does; one-shot commands need not)."""
    if settings.store == "redis":
        from server.rules.versions import RedisVersions
        from server.store.redis.store import RedisStore

        store: Store = RedisStore(settings=settings.redis)
        registry = RuleRegistry(versions=RedisVersions(settings.redis.url, settings.redis.prefix))
    else:
        registry = RuleRegistry(settings.data_dir)
        store = EmbeddedStore(settings.data_dir, settings.embedded)
    if watch:
        registry.watch()
    return registry, store


def create_server(
    settings: Settings, *, warm: bool = True, clock: Clock = utc_now
) -> tuple[grpc.Server, int, App]:
    """Build the server bound to ``settings.host:settings.port`` (0 = a free port).

    Health reports NOT_SERVING until a rule set is loaded and the kernels are compiled.
    ``clock`` gives "now" to every call (tests move it to see points mature and expire).
    """
    registry, store = open_state(settings)
    app = App(settings, registry, store, health.HealthServicer())
    app.set_serving(False)
    interceptors: list[grpc.ServerInterceptor] = [CallInterceptor()]
    if settings.api_keys:
        interceptors.insert(0, ApiKeyInterceptor(settings.api_keys))
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # several worker processes share the port (--workers); one alone must not
        # silently share it with a stale server
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.threads),
        interceptors=interceptors,
        options=options,
    )
    registry.on_change(lambda _active: app.refresh_health())
    # the generated *_pb2_grpc registration functions carry no annotations
    campaigns_pb2_grpc.add_CampaignServiceServicer_to_server(  # type: ignore[no-untyped-call]
        CampaignServicer(registry, store), server
    )
    checkout_pb2_grpc.add_CheckoutServiceServicer_to_server(  # type: ignore[no-untyped-call]
        CheckoutServicer(registry, store, clock), server
    )
    members_pb2_grpc.add_MemberServiceServicer_to_server(  # type: ignore[no-untyped-call]
        MemberServicer(registry, store, clock), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(app.health, server)
    names = (
        *SERVICES,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    # descriptors of every service must be loaded for reflection to describe them
    _ = (checkout_pb2.DESCRIPTOR, members_pb2.DESCRIPTOR, campaigns_pb2.DESCRIPTOR)
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

    With ``settings.workers`` > 1, start that many server processes on the same port
    (SO_REUSEPORT: the kernel spreads new connections over them, so every core serves) and
    supervise them; a gRPC channel is one connection, so callers should open several.
    """
    if settings.workers > 1:
        _supervise(settings)
    else:
        _run(settings, announce=True)


def _run(settings: Settings, announce: bool) -> None:
    """One server process until SIGTERM/SIGINT, then a graceful stop."""
    server, port, app = create_server(settings)
    server.start()
    if announce:
        scheme = "https" if settings.tls_cert else "plaintext"
        print(
            f"loyalty engine listening on {settings.host}:{port} ({scheme}, store "
            f"{settings.store}); health: grpcurl -plaintext {settings.host}:{port} "
            "grpc.health.v1.Health/Check",
            flush=True,
        )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("stopping: finishing calls in flight (up to %.0f s)", settings.grace_s)
    app.set_serving(False)
    server.stop(settings.grace_s).wait()
    app.close()


def _worker(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    _run(settings, announce=False)


def _supervise(settings: Settings) -> None:
    """Start the workers, forward SIGTERM/SIGINT to them, wait for all to finish."""
    ctx = multiprocessing.get_context("spawn")  # no fork after grpc and numba are loaded
    workers = [
        ctx.Process(target=_worker, args=(settings,), name=f"loyalty-worker-{i}")
        for i in range(settings.workers)
    ]
    for w in workers:
        w.start()
    print(
        f"loyalty engine: {settings.workers} workers listening on {settings.host}:"
        f"{settings.port} (store {settings.store}); open several channels to use them all",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if any(not w.is_alive() for w in workers):
            log.error("a worker exited; stopping the others")
            break
    for w in workers:
        if w.is_alive() and w.pid is not None:
            os.kill(w.pid, signal.SIGTERM)
    for w in workers:
        w.join(settings.grace_s + 5)
