"""Memory under undecodable requests: what 10,000 calls of bytes that are not a request cost.

    python -m benchmarks.bad_bytes [--calls 10000] [--workers 2]

Starts ``loyalty serve --demo`` (embedded store, ``--workers`` processes on one port), sends a
warm-up batch of undecodable calls to ``grpc.health.v1.Health/Check`` (open to every caller)
and to ``CheckoutService/Evaluate``, then ``--calls`` more of each over several channels, and
reports the resident memory of the server's whole process tree (every worker) before and after
(``/proc/<pid>/status`` VmRSS). Every answer must be ``INVALID_ARGUMENT``. Writes
``benchmarks/results/bad_bytes.json``. The goal (docs/design.md §8): growth < 10 MB.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from benchmarks.servers import LoyaltyServer, _descendants

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("/grpc.health.v1.Health/Check", "/loyalty.v1.CheckoutService/Evaluate")
GARBAGE = b"\xff\xff\xff\xff\x0f not a protobuf message"
GOAL_MB = 10.0


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MB."""
    kb = 0
    for p in _descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kb += int(line.split()[1])
        except OSError:
            continue
    return kb / 1024


def send(port: int, calls: int, channels: int = 8) -> dict[str, int]:
    """``calls`` undecodable calls to each method, over ``channels`` connections; the status
    codes they got, by name."""
    codes: dict[str, int] = {}

    def one_channel(k: int) -> dict[str, int]:
        seen: dict[str, int] = {}
        options = [("grpc.use_local_subchannel_pool", 1)]  # its own connection
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            stubs = [channel.unary_unary(m) for m in METHODS]  # bytes in, bytes out
            for _ in range(k, calls, channels):
                for stub in stubs:
                    try:
                        stub(GARBAGE, timeout=10)
                        name = "OK"
                    except grpc.RpcError as exc:
                        name = exc.code().name
                    seen[name] = seen.get(name, 0) + 1
        return seen

    with ThreadPoolExecutor(channels) as pool:
        for seen in pool.map(one_channel, range(channels)):
            for name, n in seen.items():
                codes[name] = codes.get(name, 0) + n
    return codes


def run(calls: int, workers: int, warmup: int) -> dict[str, Any]:
    with LoyaltyServer("embedded", 4, workers, members=50) as server:
        root = server.pids[0]
        send(server.port, warmup)
        time.sleep(1)
        before = tree_rss_mb(root)
        start = time.monotonic()
        codes = send(server.port, calls)
        seconds = time.monotonic() - start
        time.sleep(1)
        after = tree_rss_mb(root)
    growth = after - before
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "workers": workers,
        "calls_per_method": calls,
        "methods": list(METHODS),
        "codes": codes,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "growth_mb": round(growth, 2),
        "seconds": round(seconds, 1),
        "goal_mb": GOAL_MB,
        "met": growth < GOAL_MB and set(codes) == {"INVALID_ARGUMENT"},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10_000, help="undecodable calls per method")
    ap.add_argument("--warmup", type=int, default=1_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    result = run(args.calls, args.workers, args.warmup)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bad_bytes.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.calls:,} undecodable calls to each of {len(METHODS)} methods, "
        f"{args.workers} workers: RSS {result['rss_before_mb']} -> {result['rss_after_mb']} MB "
        f"({result['growth_mb']:+} MB; goal < {GOAL_MB} MB: {'yes' if result['met'] else 'no'});"
        f" answers {result['codes']}"
    )
    return result


if __name__ == "__main__":
    main()
