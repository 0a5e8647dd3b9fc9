"""The edge (server/api/edge.py): bytes that are not a request are INVALID_ARGUMENT naming the
field ``request`` on every service (loyalty.v1, health, reflection) and cost no memory; a
method marked ``@raw`` gets and answers bytes unchanged, and still has its access line. The
worker's pid comes in the trailing metadata; `loyalty serve` runs one worker per core."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status

from loyalty.v1 import members_pb2, members_pb2_grpc
from server.api import edge
from server.api.app import HEALTH, LOYALTY, MEMBERS, REFLECTION, create_server
from server.api.interceptors import CallInterceptor
from server.api.workers import cores, processes
from server.cli.main import _settings, build_parser
from server.settings import Settings
from server.store.redis.process import free_port
from tests.served import serve_process

# field 1, length-delimited, claims 5 bytes and has 2: corrupt for every message type
BAD = b"\x0a\x05ab"
CALL_TIMEOUT_S = 10
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]  # a new connection: maybe another worker


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    data = tmp_path_factory.mktemp("edge")
    server, port, app = create_server(Settings(port=0, data_dir=data, metrics_port=0), warm=False)
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
    server.stop(None)
    app.close()


def _violations(exc: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]  # the error is also the call
    assert status is not None, "no google.rpc.Status details"
    out = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        out += [(v.field, v.description) for v in bad.field_violations]
    return out


def _assert_refused(exc: grpc.RpcError, type_name: str) -> None:
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
    [(field, description)] = _violations(exc)
    assert field == "request"
    assert f"Error parsing message with type '{type_name}'" in description


LOYALTY_METHODS = [(s, m) for s in LOYALTY for m in s.methods]


@pytest.mark.parametrize(
    ("service", "method"), LOYALTY_METHODS, ids=[f"{s.name}.{m.name}" for s, m in LOYALTY_METHODS]
)
def test_undecodable_bytes_to_a_loyalty_method_are_invalid_argument(channel, service, method):
    assert not method.client_streaming and not method.server_streaming  # all unary today
    call = channel.unary_unary(f"/{service.full_name}/{method.name}")

    with pytest.raises(grpc.RpcError) as info:
        call(BAD, timeout=CALL_TIMEOUT_S)

    _assert_refused(info.value, method.input_type.full_name)
    assert re.fullmatch(r"\d+", dict(info.value.trailing_metadata())["loyalty-worker"])


def test_every_loyalty_method_is_served_through_the_edge(channel):
    """The table comes from the descriptors: no method is left UNIMPLEMENTED."""
    assert len(LOYALTY_METHODS) >= 16
    names = {f"{s.full_name}/{m.name}" for s, m in LOYALTY_METHODS}
    assert "loyalty.v1.CheckoutService/Evaluate" in names


def test_undecodable_bytes_to_health_check_are_invalid_argument(channel):
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(f"/{HEALTH.full_name}/Check")(BAD, timeout=CALL_TIMEOUT_S)

    _assert_refused(info.value, "grpc.health.v1.HealthCheckRequest")


def test_health_check_still_answers_a_request(channel):
    check = channel.unary_unary(
        f"/{HEALTH.full_name}/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    reply, call = check.with_call(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S)

    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING  # nothing published
    assert dict(call.trailing_metadata())["loyalty-worker"].isdigit()
    assert "loyalty-worker" not in dict(call.initial_metadata())


def test_undecodable_bytes_to_health_watch_are_invalid_argument(channel):
    stream = channel.unary_stream(f"/{HEALTH.full_name}/Watch")(BAD, timeout=CALL_TIMEOUT_S)

    with pytest.raises(grpc.RpcError) as info:
        next(stream)

    _assert_refused(info.value, "grpc.health.v1.HealthCheckRequest")


def test_undecodable_bytes_to_reflection_are_invalid_argument(channel):
    info_ = channel.stream_stream(
        f"/{REFLECTION.full_name}/ServerReflectionInfo",
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    good = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
    replies = info_(iter([good, BAD]), timeout=CALL_TIMEOUT_S)

    first = next(replies)  # the good request is answered before the bad one ends the stream
    names = {s.name for s in first.list_services_response.service}
    assert {"loyalty.v1.CheckoutService", HEALTH.full_name, REFLECTION.full_name} <= names
    with pytest.raises(grpc.RpcError) as info:
        next(replies)
    _assert_refused(info.value, "grpc.reflection.v1alpha.ServerReflectionRequest")


class RawMembers(members_pb2_grpc.MemberServiceServicer):
    """GetMember takes and gives bytes; UpsertMember is raw and answers a message."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    @edge.raw
    def GetMember(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.seen.append(request)
        member_id = members_pb2.GetMemberRequest.FromString(request).member_id
        # an unknown field (99) a message would keep too, but in its own encoding
        return members_pb2.Member(member_id=member_id).SerializeToString() + b"\x98\x06\x01"

    @edge.raw
    def UpsertMember(self, request: bytes, context: grpc.ServicerContext) -> Message:
        self.seen.append(request)
        return members_pb2.Member(member_id=f"{len(request)} bytes")


@pytest.fixture
def raw_server() -> Iterator[tuple[grpc.Channel, RawMembers]]:
    servicer = RawMembers()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2), interceptors=[CallInterceptor()]
    )
    edge.register(server, MEMBERS, servicer)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch, servicer
    server.stop(None)


def test_a_raw_method_gets_and_gives_bytes_unchanged_and_is_logged(raw_server, caplog):
    channel, servicer = raw_server
    request = members_pb2.GetMemberRequest(member_id="m-raw").SerializeToString()
    request += b"\xa0\x06\x07"  # an unknown field: passed through, not re-encoded

    with caplog.at_level(logging.INFO, logger="loyalty.access"):
        reply = channel.unary_unary(f"/{MEMBERS.full_name}/GetMember")(
            request, timeout=CALL_TIMEOUT_S
        )

    assert servicer.seen == [request]
    expected = members_pb2.Member(member_id="m-raw").SerializeToString() + b"\x98\x06\x01"
    assert reply == expected
    [record] = [r for r in caplog.records if r.name == "loyalty.access"]
    fields: dict[str, Any] = record.access  # type: ignore[attr-defined]
    assert fields["code"] == "OK"
    assert fields["member"] == hashlib.sha256(b"m-raw").hexdigest()[:12]  # parsed for the log


def test_a_raw_method_may_answer_a_message_and_sees_bytes_that_do_not_decode(raw_server):
    channel, servicer = raw_server
    upsert = channel.unary_unary(
        f"/{MEMBERS.full_name}/UpsertMember", response_deserializer=members_pb2.Member.FromString
    )

    reply = upsert(BAD, timeout=CALL_TIMEOUT_S)

    assert servicer.seen == [BAD]  # a raw method decides what its bytes mean
    assert reply.member_id == f"{len(BAD)} bytes"


def test_a_parsed_method_beside_raw_ones_still_refuses_bad_bytes(raw_server):
    channel, servicer = raw_server

    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(f"/{MEMBERS.full_name}/ListOffers")(BAD, timeout=CALL_TIMEOUT_S)

    _assert_refused(info.value, "loyalty.v1.ListOffersRequest")
    assert servicer.seen == []


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _bad_checks(channel: grpc.Channel, n: int) -> None:
    """``n`` undecodable Health/Check calls, 50 in flight; each must be INVALID_ARGUMENT."""
    check = channel.unary_unary(f"/{HEALTH.full_name}/Check")
    for start in range(0, n, 50):
        calls = [check.future(BAD, timeout=CALL_TIMEOUT_S) for _ in range(min(50, n - start))]
        for call in calls:
            assert call.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_undecodable_calls_do_not_grow_the_server(tmp_path: Path):
    """A memory bound, not a timing: grpcio's own failing deserializer kept ~17 KB a call
    (50 MB over these 3,000 calls before the edge; -1.3 MB with it)."""
    with serve_process(tmp_path, "--metrics-port", "0") as server:
        assert server.port, (server.line, server.stderr.read_text())
        with grpc.insecure_channel(server.target) as channel:
            _bad_checks(channel, 1000)  # warm-up: pools, caches, the allocator's arenas
            before = _rss_kb(server.proc.pid)
            _bad_checks(channel, 3000)
            after = _rss_kb(server.proc.pid)
    err = server.stderr
    assert after - before < 5 * 1024, f"grew {after - before} KB over 3,000 calls"
    assert err.read_text().count("code=INVALID_ARGUMENT") == 4000  # each one logged


# one worker per core (server.api.workers): `loyalty serve` without --workers


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000", None), ("150000 100000", 2), ("50000 100000", 1), ("garbage", None)],
)
def test_a_container_cpu_quota_caps_the_cores_counted(tmp_path, cpu_max, expected):
    # a cgroup v2 cpu.max: "quota period" (a container's --cpus), "max" = no quota
    allowed = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    got = cores(tmp_path / "cpu.max")
    assert got == (allowed if expected is None else min(allowed, expected))
    assert cores(tmp_path / "missing") == allowed


def test_the_default_is_one_worker_per_core_and_one_on_port_0():
    per_core = cores()

    assert processes(Settings(port=50051)) == per_core
    assert processes(Settings(port=0)) == 1  # workers could not share a free port
    assert processes(Settings(port=50051, workers=3)) == 3
    assert Settings.from_env({"LOYALTY_CPU_PIN": "yes"}).cpu_pin is True
    args = build_parser().parse_args(["serve", "--cpu-pin", "--workers", "0"])
    assert (_settings(args).cpu_pin, _settings(args).workers) == (True, 0)


def test_pin_puts_every_thread_of_the_process_on_one_core():
    """In a child process: pinning the test runner would pin the rest of the suite."""
    script = (
        "import os, threading\n"
        "from server.api.workers import pin\n"
        "stop = threading.Event()\n"
        "t = threading.Thread(target=stop.wait); t.start()  # started before the pin\n"
        "pin(1)\n"
        "later = threading.Thread(target=stop.wait); later.start()\n"
        "print(sorted({frozenset(os.sched_getaffinity(int(task))) for task in "
        "os.listdir('/proc/self/task')}, key=sorted))\n"
        "stop.set()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    cores = sorted(os.sched_getaffinity(0))
    assert out.stdout.strip() == repr([frozenset({cores[1 % len(cores)]})])


def _serving_workers(port: int, want: int, deadline: float) -> set[str]:
    """The pids (trailing metadata) of workers answering SERVING, on new connections."""
    pids: set[str] = set()
    while len(pids) < want and time.monotonic() < deadline:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=OWN_CONNECTION) as ch:
            check = ch.unary_unary(
                f"/{HEALTH.full_name}/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            try:
                reply, call = check.with_call(health_pb2.HealthCheckRequest(), timeout=2)
            except grpc.RpcError:  # a worker still starting
                time.sleep(0.2)
                continue
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                pids.add(dict(call.trailing_metadata())["loyalty-worker"])
    return pids


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: one worker")
def test_serve_demo_runs_a_worker_per_core_each_serving_the_demo(tmp_path: Path):
    """`make run` (`loyalty serve --demo`): the demo is loaded once, then every worker serves."""
    cores, port = len(os.sched_getaffinity(0)), free_port()
    err = tmp_path / "stderr.log"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli.main", "serve", "--demo", "--members", "20"]
            + ["--port", str(port), "--metrics-port", "0", "--data-dir", str(tmp_path / "d")],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            lines = [proc.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
            assert lines[0].startswith("demo loaded into"), (lines, err.read_text())
            assert f"{cores} workers listening on 127.0.0.1:{port}" in lines[1], lines
            pids = _serving_workers(port, cores, time.monotonic() + 120)
            assert len(pids) == cores, (pids, err.read_text()[-2000:])
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
