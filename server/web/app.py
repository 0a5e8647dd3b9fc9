"""The HTTP side of ``loyalty serve``: the JSON API (Connect, :mod:`server.web.connect`),
``GET /healthz`` and the marketing console, on one port (``--http-port``, default 8080).

``create_web_app(rpc, settings)`` builds the Starlette app; :func:`start_web` runs it with
uvicorn on a thread of the server process, after the gRPC server listens, and
:meth:`WebServer.stop` stops it with the gRPC server (in-flight requests get the grace period).

Every HTTP request is answered through gRPC calls to the process's own server
(:class:`server.web.rpc.Rpc`), on a port of its own on loopback (:func:`loopback_port`): a call
never leaves the worker that took the request, and needs no TLS on loopback even when the
service port has it.

Workers (``--workers``): every worker serves HTTP on the same port, each from its own socket
with SO_REUSEPORT (as the gRPC port), so the kernel spreads HTTP connections over the workers
too; one worker alone would carry the whole console and JSON API. One process alone binds
without SO_REUSEPORT, so it cannot silently share the port with a stale server.

TLS: with ``--tls-cert``/``--tls-key`` the HTTP side is HTTPS with the same certificate.
Settings.check refuses API keys over plain HTTP off loopback, as for gRPC.
"""

from __future__ import annotations

import importlib
import logging
import math
import socket
import threading
import time
from typing import Any

import grpc
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from server.settings import Settings
from server.web.connect import ConnectApi
from server.web.rpc import PACKAGE, Rpc

log = logging.getLogger(__name__)

CONSOLE = "server.web.console"  # routes(rpc, settings) -> the console's routes, when it exists


def create_web_app(rpc: Rpc, settings: Settings) -> Starlette:
    """The HTTP app: ``/loyalty.v1.<Service>/<Method>`` (Connect), ``/healthz`` and the
    console's routes (``/``, ``/console/...``), when :mod:`server.web.console` exists."""

    async def healthz(request: Request) -> JSONResponse:
        status = await rpc.ahealth()
        return JSONResponse({"status": status}, status_code=200 if status == "SERVING" else 503)

    routes: list[BaseRoute] = [
        Route(f"/{PACKAGE}.{{procedure:path}}", ConnectApi(rpc, settings.max_message_bytes)),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        *console_routes(rpc, settings),
    ]
    return Starlette(routes=routes)


def console_routes(rpc: Rpc, settings: Settings) -> list[BaseRoute]:
    """The console's routes, or none while :mod:`server.web.console` (or its ``routes``) does
    not exist. A console that fails to load is an error in the log, with its traceback, and
    the JSON API is served without it: the console must not keep checkout from starting."""
    try:
        console = importlib.import_module(CONSOLE)
        routes = getattr(console, "routes", None)
        return [] if routes is None else list(routes(rpc, settings))
    except ModuleNotFoundError as exc:
        if exc.name == CONSOLE:
            return []
        log.exception("the console failed to load: serving the JSON API without it")
    except Exception:
        log.exception("the console failed to load: serving the JSON API without it")
    return []


class WebServer:
    """uvicorn serving ``app`` on ``sock`` (bound, not yet listening) in a thread of its own;
    HTTPS when the settings name a certificate."""

    def __init__(self, app: Any, sock: socket.socket, settings: Settings, rpc: Rpc | None = None):
        self.sock = sock
        self.rpc = rpc  # closed on stop
        self.scheme = "https" if settings.tls_cert else "http"
        config = uvicorn.Config(
            app,
            log_config=None,  # the process's logging (server.api.logs) as it is
            log_level="warning",  # no start-up chatter; errors and warnings still
            access_log=False,  # each API call has its gRPC access line already
            ws="none",
            lifespan="on",
            timeout_graceful_shutdown=math.ceil(settings.grace_s),
            ssl_certfile=settings.tls_cert,
            ssl_keyfile=settings.tls_key,
            server_header=False,
        )
        config.load()  # a bad certificate fails here, in the caller, not in the thread
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="loyalty-http", daemon=True)
        self.error: BaseException | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def url(self, host: str) -> str:
        host = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{host}:{self.port}/"

    def start(self, timeout_s: float = 30) -> WebServer:
        """Start serving; return once it accepts connections (OSError if it could not)."""
        self.thread.start()
        end = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                self.stop(0)
                raise OSError(f"the HTTP server did not start: {self.error!r}")
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # SystemExit from a failed lifespan start-up, too
            self.error = exc
            log.error("the HTTP server stopped: %r", exc)

    def stop(self, grace_s: float) -> None:
        """Stop taking connections, let requests in flight finish for up to ``grace_s``."""
        self.server.config.timeout_graceful_shutdown = math.ceil(grace_s)
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(grace_s + 5)
        self.sock.close()
        if self.rpc is not None:
            self.rpc.close()


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one), not yet listening.
    ``reuse_port``: SO_REUSEPORT, for workers that share the port."""
    host = host.strip("[]") or "0.0.0.0"
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def loopback_port(server: grpc.Server) -> str | None:
    """Add a plaintext port on loopback to ``server`` (before it starts) for this process's
    HTTP side; its target, or None when loopback cannot be bound."""
    for host in ("127.0.0.1", "[::1]"):
        try:
            port = server.add_insecure_port(f"{host}:0")
        except RuntimeError:  # grpcio raises when it cannot bind
            port = 0
        if port:
            return f"{host}:{port}"
    return None


def start_web(settings: Settings, target: str) -> WebServer:
    """The HTTP side on ``settings.web_host:settings.http_port``, calling the gRPC server at
    ``target`` (:func:`loopback_port`), started; OSError when the port cannot be bound."""
    if settings.http_plaintext_keys:  # allowed by --insecure-plaintext-keys (Settings.check)
        log.warning(
            "API keys over HTTP on %s travel without TLS (--insecure-plaintext-keys): "
            "terminate TLS in front of this server",
            settings.web_host,
        )
    sock = bind(settings.web_host, settings.http_port, reuse_port=settings.workers > 1)
    rpc = Rpc(target)
    try:
        return WebServer(create_web_app(rpc, settings), sock, settings, rpc).start()
    except BaseException:
        sock.close()
        rpc.close()
        raise


def start_or_fail(
    settings: Settings, target: str | None
) -> tuple[WebServer | None, OSError | None]:
    """:func:`start_web`, or the error that kept it from starting (None, None when
    ``--http-port 0``): like metrics, the HTTP side must not keep checkout from starting."""
    if not settings.http_port:
        return None, None
    if target is None:
        return None, OSError("cannot listen on loopback for the HTTP side's gRPC calls")
    try:
        return start_web(settings, target), None
    except OSError as exc:
        return None, exc


def web_url(settings: Settings) -> str:
    """Where the HTTP side is, as the announce line prints it."""
    host = settings.web_host
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.tls_cert else "http"
    return f"{scheme}://{host}:{settings.http_port}/"


def note(settings: Settings, failed: OSError | None) -> str:
    """The announce line's ``; http: URL (console, JSON API)``, or nothing when off or
    failed."""
    if not settings.http_port or failed is not None:
        return ""
    return f"; http: {web_url(settings)} (console, JSON API)"


def log_failure(settings: Settings, failed: OSError | None) -> None:
    """An HTTP side that could not start is an error in the log (after the announce line)."""
    if failed is not None:
        log.error(
            "http: cannot listen on %s:%d (%s); serving gRPC without the console and JSON API",
            settings.web_host,
            settings.http_port,
            failed,
        )


__all__ = [
    "WebServer",
    "bind",
    "console_routes",
    "create_web_app",
    "log_failure",
    "loopback_port",
    "note",
    "start_or_fail",
    "start_web",
    "web_url",
]
