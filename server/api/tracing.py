"""OpenTelemetry traces of the gRPC calls, off by default.

``--tracing auto`` (the default, ``LOYALTY_TRACING``) turns them on when the standard variables
ask for an exporter: ``OTEL_TRACES_EXPORTER`` other than ``none``, or an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), unless
``OTEL_SDK_DISABLED=true``; ``--tracing on`` exports with OTLP/gRPC to the endpoint those
variables name (by default ``localhost:4317``), ``--tracing off`` never. Everything else is read
by the SDK from its own variables: ``OTEL_SERVICE_NAME`` (default ``loyalty-engine``),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_EXPORTER_OTLP_*``
(headers, TLS, timeout), ``OTEL_BSP_*`` (batching).

Spans: one server span per call (``opentelemetry-instrumentation-grpc``, which also continues
a trace the caller propagated in the metadata); inside Evaluate ``loyalty.store.read`` and
``loyalty.kernel``; inside Commit ``loyalty.commit`` (the store's atomic step) with
``loyalty.store.read`` (snapshot, and the lock wait on SQLite), ``loyalty.kernel`` and
``loyalty.store.write`` (apply, check, persist) for each attempt, every one carrying
``loyalty.transaction_id`` (as does the server span); Cancel and Return get a
``loyalty.store.write``. The store does the read, the pricing and the write as one step without
knowing of tracing: the read and write spans are timed from the moments the store calls and
leaves the pricing function (after a lost race, the next read span also covers the failed
write).

Nothing here imports ``opentelemetry`` at module level: with tracing off the package need not
be installed and the request path does not change.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from server.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer, TracerProvider

log = logging.getLogger(__name__)

T = TypeVar("T")
Attributes = Mapping[str, str | int | bool]
TX = "loyalty.transaction_id"
SERVICE_NAME = "loyalty-engine"


def wanted(settings: Settings, env: Mapping[str, str] | None = None) -> bool:
    """Whether the settings and the standard ``OTEL_*`` variables ask for traces."""
    env = os.environ if env is None else env
    if settings.tracing != "auto":
        return settings.tracing == "on"
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")}
    if exporters - {"", "none"}:
        return True
    if "none" in exporters:
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def from_settings(settings: Settings) -> Tracing | None:
    """A tracer provider exporting as the variables say; None when traces are not wanted."""
    if not wanted(settings):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes: dict[str, str | int] = {"process.pid": os.getpid()}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = SERVICE_NAME
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    log.info("tracing on (OpenTelemetry)")
    return Tracing(provider, owned=True)


def _exporters() -> Iterator[SpanExporter]:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "") or "otlp"
    for name in (n.strip().lower() for n in names.split(",")):
        if name == "otlp":
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            )
            if protocol and protocol != "grpc":
                log.warning("tracing: OTLP protocol %r is not installed; using grpc", protocol)
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            yield OTLPSpanExporter()
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            yield ConsoleSpanExporter()
        elif name not in ("", "none"):
            log.warning("tracing: unknown exporter %r in OTEL_TRACES_EXPORTER ignored", name)


class Tracing:
    """The server's tracer. ``owned``: made from the settings, so shut down (flushed) with the
    server; a provider handed in (tests) is left to its owner."""

    def __init__(self, provider: TracerProvider, *, owned: bool = False):
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("loyalty.server")
        self._owned = owned

    def interceptor(self) -> grpc.ServerInterceptor:
        """The server span of every call; it goes first among the interceptors."""
        from opentelemetry.instrumentation.grpc import server_interceptor

        # the instrumentation package carries no annotations
        interceptor: grpc.ServerInterceptor = server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider
        )
        return interceptor

    def call(self, name: str, fn: Callable[[], T], attributes: Attributes | None = None) -> T:
        """``fn()`` inside a span ``name`` (a child of the current one)."""
        with self.tracer.start_as_current_span(name, attributes=attributes):
            return fn()

    def commit(self, transaction_id: str) -> CommitSpans:
        return CommitSpans(self.tracer, transaction_id)

    def shutdown(self) -> None:
        if self._owned:
            self.provider.shutdown()  # type: ignore[attr-defined]  # the SDK's provider has it


class CommitSpans:
    """The spans of one Commit: :meth:`run` wraps the commit loop
    (:func:`server.store.checkout.commit`); the pricing function
    calls :meth:`pricing` when it starts and :meth:`priced` when it returns."""

    __slots__ = ("_attributes", "_mark", "_tracer", "attempts")

    def __init__(self, tracer: Tracer, transaction_id: str):
        from opentelemetry import trace

        self._tracer = tracer
        self._attributes: dict[str, Any] = {TX: transaction_id}
        self._mark = 0
        self.attempts = 0
        trace.get_current_span().set_attribute(TX, transaction_id)

    def run(self, fn: Callable[[], T]) -> T:
        with self._tracer.start_as_current_span("loyalty.commit", attributes=self._attributes):
            self._mark = time.time_ns()
            out = fn()
            if self.attempts:
                self._span("loyalty.store.write", self._mark, time.time_ns())
            else:  # a commit already applied: its stored outcome was read back
                self._span("loyalty.store.read", self._mark, time.time_ns(), replayed=True)
            return out

    def pricing(self) -> None:
        now = time.time_ns()
        self.attempts += 1
        self._span("loyalty.store.read", self._mark, now, attempt=self.attempts)

    def priced(self) -> None:
        self._mark = time.time_ns()

    def _span(self, name: str, start: int, end: int, **extra: Any) -> None:
        attributes = self._attributes
        if extra:
            attributes = {**attributes, **{f"loyalty.{k}": v for k, v in extra.items()}}
        self._tracer.start_span(name, attributes=attributes, start_time=start).end(end_time=end)

    @property
    def attributes(self) -> Attributes:
        return self._attributes
