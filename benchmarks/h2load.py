"""h2load, nghttp2's HTTP/2 load generator in C, on one gRPC method: a client that costs a few
µs of CPU per call, so what it measures is the server.

h2load speaks HTTP, not gRPC: its data file holds the gRPC framing (the 5-byte length prefix and
the message), the ``content-type`` and ``te`` headers are given on its command line, and it
counts HTTP statuses only, so a call that fails with a grpc-status in its trailers is a success
to it. Callers check the answers another way (``benchmarks.ceiling`` makes a call with the grpc
client and drives the same method with ``benchmarks.h2client``, which reads every grpc-status).
It runs for ``warmup_s`` unmeasured, then ``seconds``; ``on_start`` / ``on_end`` are called at
those two moments (by the clock: h2load does not say), and the CPU h2load used between them is
read from /proc. Latencies come from its per-request log.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.histogram import Histogram
from benchmarks.servers import tree_cpu_s


def unavailable() -> str | None:
    """Why h2load cannot run here (None when it can)."""
    if shutil.which("h2load") is None:
        return "h2load is not installed (apt-get install nghttp2-client)"
    return None


def version() -> str:
    out = subprocess.run(["h2load", "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def _count(text: str, label: str) -> int:
    m = re.search(rf"(\d+) {label}", text)
    return int(m.group(1)) if m else 0


def run(
    port: int,
    path: str,
    message: bytes,
    *,
    seconds: float,
    warmup_s: float,
    connections: int,
    streams: int,
    threads: int,
    on_start: Callable[[], None] = lambda: None,
    on_end: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """``h2load -c connections -m streams -t threads -D seconds`` POSTing ``message`` to
    ``path`` on 127.0.0.1:``port``; its figures."""
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        data, log = Path(tmp) / "request.bin", Path(tmp) / "requests.tsv"
        data.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
        cmd = [
            "h2load",
            f"--clients={connections}",
            f"--max-concurrent-streams={streams}",
            f"--threads={min(threads, connections)}",
            f"--duration={round(seconds * 1000)}ms",
            f"--warm-up-time={round(warmup_s * 1000)}ms",
            f"--data={data}",
            "--header=content-type: application/grpc",
            "--header=te: trailers",
            f"--log-file={log}",
            f"http://127.0.0.1:{port}{path}",
        ]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(max(0.0, t0 + warmup_s - time.monotonic()))
        cpu0 = tree_cpu_s([proc.pid])
        on_start()
        time.sleep(max(0.0, t0 + warmup_s + seconds - time.monotonic()))
        cpu = tree_cpu_s([proc.pid]) - cpu0
        on_end()
        text, _ = proc.communicate(timeout=seconds + warmup_s + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"h2load failed ({proc.returncode}): {text[-2000:]}")
        rows = np.loadtxt(log, dtype=np.int64, ndmin=2) if log.stat().st_size else None
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    succeeded = _count(text, "succeeded")
    hist = Histogram()
    if rows is not None:
        hist.record(rows[rows[:, 1] == 200, 2] * 1000)  # µs -> ns, HTTP 200 only
    return {
        "ok": succeeded,
        "errors": _count(text, "failed") + _count(text, "errored") + _count(text, "timeout"),
        "http_2xx": _count(text, "2xx"),
        "wall_s": seconds,
        "rps": float(rate.group(1)) if rate else succeeded / seconds,
        "client_cpu_s": cpu,
        "client_cpu_us_per_call": cpu / succeeded * 1e6 if succeeded else 0.0,
        "latency": hist.summary(),
        "histogram": hist.to_json(),
        "command": " ".join(cmd[:-1]).replace(str(data), "REQUEST").replace(str(log), "LOG"),
    }
