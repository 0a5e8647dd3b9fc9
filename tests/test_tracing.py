"""OpenTelemetry spans of real calls (in-memory exporter, server on port 0), when traces are
wanted, and that a server with tracing off needs no opentelemetry at all."""

# ruff: noqa: E402 - the imports below need the tracing extra, checked first

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

pytest.importorskip("opentelemetry.sdk", reason="the tracing extra is not installed")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from loyalty.v1 import checkout_pb2
from server.api.app import create_server
from server.api.tracing import TX, Tracing, from_settings, wanted
from server.settings import Settings
from tests.test_metrics import publish
from tests.test_server_checkout import T0, Clock, Stubs, basket, commit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[Stubs, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(port=0, data_dir=tmp_path / "data", metrics_port=0)
    server, port, app = create_server(settings, clock=Clock(T0), tracing=Tracing(provider))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stubs = Stubs(channel)
    publish(stubs)
    exporter.clear()
    yield stubs, exporter
    channel.close()
    server.stop(None).wait()
    app.close()
    provider.shutdown()


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_a_commit_has_read_kernel_and_write_spans_with_its_transaction_id(traced):
    stubs, exporter = traced

    commit(stubs, "t-42")

    spans = list(exporter.get_finished_spans())
    server = _one(spans, "/loyalty.v1.CheckoutService/Commit")
    step = _one(spans, "loyalty.commit")
    read = _one(spans, "loyalty.store.read")
    kernel = _one(spans, "loyalty.kernel")
    write = _one(spans, "loyalty.store.write")
    assert server.attributes is not None and server.attributes[TX] == "t-42"
    assert _parent(step) == server.context.span_id
    for span in (read, kernel, write):
        assert _parent(span) == step.context.span_id
        assert span.context.trace_id == server.context.trace_id
    for span in (step, read, kernel, write):
        assert span.attributes is not None and span.attributes[TX] == "t-42"
    assert read.attributes is not None and read.attributes["loyalty.attempt"] == 1
    assert kernel.attributes is not None and kernel.attributes["loyalty.ruleset_version"] == 1
    # in this order, one after the other
    assert read.end_time <= kernel.start_time  # type: ignore[operator]
    assert kernel.end_time <= write.start_time  # type: ignore[operator]


def test_a_replayed_commit_only_reads(traced):
    stubs, exporter = traced
    commit(stubs, "t-1")
    exporter.clear()

    commit(stubs, "t-1")

    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == sorted(
        ["/loyalty.v1.CheckoutService/Commit", "loyalty.commit", "loyalty.store.read"]
    )
    read = _one(list(exporter.get_finished_spans()), "loyalty.store.read")
    assert read.attributes is not None and read.attributes["loyalty.replayed"] is True


def test_evaluate_has_a_read_and_a_kernel_span(traced):
    stubs, exporter = traced

    stubs.checkout.Evaluate(basket())

    spans = list(exporter.get_finished_spans())
    server = _one(spans, "/loyalty.v1.CheckoutService/Evaluate")
    for name in ("loyalty.store.read", "loyalty.kernel"):
        assert _parent(_one(spans, name)) == server.context.span_id


def test_an_error_of_the_family_gives_the_server_span_its_code(traced):
    stubs, exporter = traced

    with pytest.raises(grpc.RpcError) as exc:
        commit(stubs, "t-bad", basket(codes=["NOPE"]))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    server = _one(list(exporter.get_finished_spans()), "/loyalty.v1.CheckoutService/Commit")
    # the caller's mistake: a status code on the span, not a server error (OTel conventions)
    assert server.status.status_code == StatusCode.UNSET
    assert server.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_cancel_has_a_write_span(traced):
    stubs, exporter = traced
    commit(stubs, "t-9")
    exporter.clear()

    stubs.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t-9"))

    write = _one(list(exporter.get_finished_spans()), "loyalty.store.write")
    assert write.attributes is not None and write.attributes[TX] == "t-9"


@pytest.mark.parametrize(
    ("flag", "env", "on"),
    [
        ("auto", {}, False),
        ("auto", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ("auto", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ("auto", {"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ("auto", {"OTEL_TRACES_EXPORTER": "none"}, False),
        ("auto", {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}, False),
        ("auto", {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
        ("on", {}, True),
        ("off", {"OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_traces_are_wanted_when_the_standard_variables_ask(flag, env, on):
    assert wanted(Settings(tracing=flag), env) is on


def test_the_variables_build_an_otlp_exporter_and_name_the_service(monkeypatch):
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # never called

    tracing = from_settings(Settings())

    assert tracing is not None
    try:
        resource = tracing.provider.resource  # type: ignore[attr-defined]
        assert resource.attributes["service.name"] == "loyalty-engine"
        assert resource.attributes["process.pid"] == os.getpid()
    finally:
        tracing.shutdown()  # nothing was recorded: nothing to send


def test_tracing_off_needs_no_opentelemetry(tmp_path):
    """As if the package were not installed: the server starts and answers."""
    script = f"""
import importlib.abc, os, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
for name in [n for n in os.environ if n.startswith("OTEL_")]:
    del os.environ[name]
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from server.api.app import create_server
from server.settings import Settings
server, port, app = create_server(Settings(port=0, data_dir={str(tmp_path)!r}), warm=False)
server.start()
with grpc.insecure_channel(f"127.0.0.1:{{port}}") as channel:
    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
server.stop(None).wait()
app.close()
assert app.tracing is None
assert not [m for m in sys.modules if m.startswith("opentelemetry")]
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
