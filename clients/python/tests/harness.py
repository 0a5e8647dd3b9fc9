"""What the client tests run against: a real loyalty server (a subprocess of the main
environment's Python), a real gRPC proxy that fails calls on cue, and a throwaway TLS CA.

Nothing here imports the server: this environment has only grpcio, protobuf and pytest.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from loyalty.v1 import checkout_pb2, members_pb2, members_pb2_grpc
from loyalty_client import RetryPolicy

REPO = Path(__file__).resolve().parents[3]
API_KEY = "lane-7f3a"  # the secured server gives it the checkout role
# quick pauses: the tests retry many times and never wait for nothing
FAST = RetryPolicy(max_attempts=5, deadline_s=20.0, initial_backoff_s=0.02, max_backoff_s=0.2)
BANNER = re.compile(r"listening on (\S+):(\d+)")
START_TIMEOUT_S = 180.0  # an empty data dir loads the demo first


def server_python() -> Path | None:
    """The main environment's interpreter (it has the server), or None if there is none."""
    named = os.environ.get("LOYALTY_SERVER_PYTHON")
    path = Path(named) if named else REPO / ".venv" / "bin" / "python"
    return path if path.exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoyaltyServer:
    """``loyalty serve --demo`` on 127.0.0.1:``port`` over ``data_dir``; start, stop, start."""

    def __init__(self, data_dir: Path, *, port: int | None = None, args: Iterable[str] = ()):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.args = list(args)
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir.parent / f"{data_dir.name}.log"
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LoyaltyServer:
        python = server_python()
        assert python is not None, "no server environment (set LOYALTY_SERVER_PYTHON)"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("OTEL_")
        }
        # no Prometheus listener on a fixed port (servers run side by side); a quick stop
        env.update(LOYALTY_METRICS_PORT="0", LOYALTY_GRACE_S="1", PYTHONUNBUFFERED="1")
        cmd = [str(python), "-m", "server.cli.main", "serve", "--demo", "--members", "50"]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir), *self.args]
        self._lines = queue.Queue()
        with open(self.log, "a") as err:
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        seen: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"no banner in {START_TIMEOUT_S:.0f} s: {seen}") from None
            if line is None:
                code = self.proc.wait()
                tail = self.log.read_text()[-3000:]
                raise RuntimeError(f"server exited with {code}: {seen}\n{tail}")
            seen.append(line.rstrip())
            match = BANNER.search(line)
            if match:
                assert int(match.group(2)) == self.port, line
                return self

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                self._lines.put(line)
        self._lines.put(None)

    def stop(self) -> None:
        """SIGTERM (graceful: calls in flight finish), SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- baskets, ids, balances -------------------------------------------------------------------


def tx(prefix: str = "T") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def member_points(channel: grpc.Channel, member_id: str) -> int:
    m = members_pb2_grpc.MemberServiceStub(channel).GetMember(
        members_pb2.GetMemberRequest(member_id=member_id), timeout=10
    )
    return m.available_points + m.pending_points


def for_member(
    basket: checkout_pb2.EvaluateRequest, member_id: str
) -> checkout_pb2.EvaluateRequest:
    copy = checkout_pb2.EvaluateRequest()
    copy.CopyFrom(basket)
    copy.member_id = member_id
    return copy


# -- a proxy that fails on cue ----------------------------------------------------------------

#: fail before forwarding (nothing reaches the server)
UNAVAILABLE = "unavailable"
ABORTED = "aborted"
#: forward, let the server apply it, then lose the answer (the caller sees UNAVAILABLE)
LOSE_ANSWER = "lose-answer"
_FAIL = {UNAVAILABLE: grpc.StatusCode.UNAVAILABLE, ABORTED: grpc.StatusCode.ABORTED}
_HOP = ("user-agent", "te", "content-type", "grpc-accept-encoding", "grpc-timeout")


@dataclass
class Call:
    method: str  # short name: "Commit"
    request: bytes
    action: str  # what the proxy did: "forward" or one of the cues


class FlakyProxy:
    """A real gRPC server on 127.0.0.1 forwarding every unary call, as raw bytes, to
    ``upstream``; ``cue(method, *actions)`` makes that method's next calls fail instead, and
    ``always(method, action)`` makes every one fail. Records each call it saw."""

    def __init__(self, upstream: str) -> None:
        self.calls: list[Call] = []
        self._cues: dict[str, list[str]] = {}
        self._always: dict[str, str] = {}
        self._lock = threading.Lock()
        self._upstream = grpc.insecure_channel(upstream)
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers((_Handler(self),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cue(self, method: str, *actions: str) -> None:
        with self._lock:
            self._cues.setdefault(method, []).extend(actions)

    def always(self, method: str, action: str) -> None:
        with self._lock:
            self._always[method] = action

    def count(self, method: str) -> int:
        return Counter(c.method for c in self.calls)[method]

    def requests(self, method: str) -> list[bytes]:
        return [c.request for c in self.calls if c.method == method]

    def close(self) -> None:
        self._server.stop(0).wait()
        self._upstream.close()

    def handle(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        short = method.rsplit("/", 1)[-1]
        with self._lock:
            cued = self._cues.get(short)
            action = cued.pop(0) if cued else self._always.get(short, "forward")
            self.calls.append(Call(short, request, action))
        if action in _FAIL:
            context.abort(_FAIL[action], f"injected by the test proxy ({action})")
        metadata = [
            (k, v)
            for k, v in context.invocation_metadata()
            if not k.startswith((":", "grpc-")) and k not in _HOP
        ]
        forward = self._upstream.unary_unary(method)
        try:
            answer: bytes = forward(
                request, timeout=context.time_remaining(), metadata=metadata or None
            )
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            context.set_trailing_metadata(exc.trailing_metadata() or ())
            context.abort(exc.code(), exc.details() or "")
        if action == LOSE_ANSWER:
            context.abort(grpc.StatusCode.UNAVAILABLE, "answer lost by the test proxy")
        return answer


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, proxy: FlakyProxy) -> None:
        self._proxy = proxy

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method

        def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            return self._proxy.handle(method, request, context)

        return grpc.unary_unary_rpc_method_handler(unary)  # no (de)serializers: raw bytes


# -- a throwaway CA ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def make_certs(where: Path) -> Certs | None:
    """A root CA and a server certificate for localhost and 127.0.0.1 (None without openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    where.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ext = where / "server.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )

    def run(*args: str) -> None:
        subprocess.run(
            [openssl, *args], cwd=where, stdin=subprocess.DEVNULL, capture_output=True,
            check=True, timeout=60,
        )  # fmt: skip

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=test-ca")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    return Certs(ca=where / "ca.pem", cert=where / "server.pem", key=where / "server.key")
