"""Memory under a long mix of valid and invalid calls: the server's RSS must stay flat.

    python -m benchmarks.soak [--calls 100000] [--workers 2] [--store embedded]

Starts ``loyalty serve --demo`` (``--workers`` processes on one port), warms it up with a tenth
of the calls, then sends ``--calls`` more from several client threads, each on its own
connection, cycling through: quotes for demo members, commits (a distinct transaction id each),
member reads, a basket with a bad quantity, a member that does not exist, bytes that are not a
request, health checks. It reports the resident memory of the server's process tree (every
worker) after the warm-up and at the end, and the status codes answered; nothing may answer
``INTERNAL`` or ``UNKNOWN``. Writes ``benchmarks/results/soak.json``. Goal: within 50 MB of the
level after warm-up for 100,000 calls (``tests/test_soak.py``: 10,000 calls, 20 MB).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from benchmarks.bad_bytes import tree_rss_mb
from benchmarks.payload import basket_field, commit_bytes, evaluate_bytes
from benchmarks.servers import loyalty_server
from loyalty.v1 import checkout_pb2, members_pb2

RESULTS = Path(__file__).resolve().parent / "results"
MEMBERS = 200
CHECKOUT = "/loyalty.v1.CheckoutService/"
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def _calls(run: str) -> list[tuple[str, bytes]]:
    """One round of the mix: (method, request bytes); commits get their ids when sent."""
    quotes = evaluate_bytes(MEMBERS, 20)
    bad = checkout_pb2.EvaluateRequest.FromString(quotes[0])
    bad.lines[0].quantity = 0
    ghost = members_pb2.GetMemberRequest(member_id=f"nobody-{run}").SerializeToString()
    known = members_pb2.GetMemberRequest(member_id="M10001").SerializeToString()
    return [
        (CHECKOUT + "Evaluate", quotes[1]),
        (CHECKOUT + "Commit", basket_field(quotes[2])),
        (CHECKOUT + "Evaluate", quotes[3]),
        ("/loyalty.v1.MemberService/GetMember", known),
        (CHECKOUT + "Evaluate", bad.SerializeToString()),
        ("/loyalty.v1.MemberService/GetMember", ghost),
        (CHECKOUT + "Evaluate", b"\x0a\x05ab"),
        ("/grpc.health.v1.Health/Check", b""),
    ]


def send(port: int, calls: int, run: str, threads: int = 4) -> Counter[str]:
    """``calls`` calls of the mix over ``threads`` connections; status code names counted."""
    mix = _calls(run)

    def worker(k: int) -> Counter[str]:
        seen: Counter[str] = Counter()
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=OWN_CONNECTION) as channel:
            stubs = {m: channel.unary_unary(m) for m, _ in mix}
            for i in range(k, calls, threads):
                method, data = mix[i % len(mix)]
                if method.endswith("/Commit"):  # a basket field: put a fresh id before it
                    data = commit_bytes(f"soak-{run}-{i}", data)
                try:
                    stubs[method](data, timeout=30)
                    seen["OK"] += 1
                except grpc.RpcError as exc:
                    seen[exc.code().name] += 1
        return seen

    total: Counter[str] = Counter()
    with ThreadPoolExecutor(threads) as pool:
        for seen in pool.map(worker, range(threads)):
            total.update(seen)
    return total


def run(calls: int, workers: int, store: str = "embedded") -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    with loyalty_server(store, 4, workers, MEMBERS) as (server, _):
        root = server.pids[0]
        warm = send(server.port, max(1_000, calls // 10), run_id + "w")
        time.sleep(1)
        before = tree_rss_mb(root)
        start = time.monotonic()
        codes = send(server.port, calls, run_id)
        seconds = time.monotonic() - start
        time.sleep(1)
        after = tree_rss_mb(root)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "store": store,
        "workers": workers,
        "calls": calls,
        "codes": dict(codes),
        "warmup_codes": dict(warm),
        "rss_after_warmup_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "growth_mb": round(after - before, 2),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--store", default="embedded", choices=["embedded", "redis"])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    result = run(args.calls, args.workers, args.store)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.calls:,} mixed calls, {args.workers} workers, {args.store}: RSS "
        f"{result['rss_after_warmup_mb']} -> {result['rss_after_mb']} MB "
        f"({result['growth_mb']:+} MB) in {result['seconds']} s; answers {result['codes']}"
    )
    return result


if __name__ == "__main__":
    main()
