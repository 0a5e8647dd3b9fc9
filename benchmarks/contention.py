"""C2: one member's contention on Redis (issue 17, item 6): N concurrent Commits, one member.

    python -m benchmarks contention                  # 50 / 200 / 400-way, 2 s deadline
    python -m benchmarks contention --quick          # 50 / 200-way
    python -m benchmarks contention --ways 200 --processes 4 --deadline 2 --workers 2

``loyalty serve --demo --store redis`` (``--workers`` processes of ``--threads`` threads, a
private redis-server) answers, per point, ``ways`` Commits of the same 20-line basket for one
demo member, each under its own transaction id, sent all at once from ``--processes`` client
processes (the calls of a process are asynchronous on one channel; every process waits at a
barrier before sending). Each call has the ``--deadline``. A point records how each call ended
(OK, ABORTED, DEADLINE_EXCEEDED, other), the latency percentiles of all calls, and the wall time
from the first send to the last answer, and checks that the member's points grew by exactly what
the OK answers earned (nothing lost, nothing doubled). Every point uses a fresh member.
Writes ``contention.json`` and ``contention.md`` under ``benchmarks/results/`` (or ``--out``).
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from benchmarks import suite
from benchmarks.payload import basket_field, commit_bytes, evaluate_request, member_id
from benchmarks.servers import loyalty_server, redis_unavailable
from loyalty.v1 import checkout_pb2, members_pb2, members_pb2_grpc

COMMIT = "/loyalty.v1.CheckoutService/Commit"


@dataclass(frozen=True)
class Config:
    mode: str
    ways: tuple[int, ...] = (50, 200, 400)
    processes: int = 4  # client processes the calls of a point are spread over
    deadline_s: float = 2.0  # of each call
    workers: int = 2  # server processes
    # per server process: with 16, up to 32 commits race in the store at once (with the
    # default 4, gRPC queues most of them before they reach it)
    threads: int = 16
    lines: int = 20  # basket lines
    members: int = 1000  # demo members loaded (each point uses its own)
    # each call for another member: the same load without contention (the machine's ceiling)
    spread: bool = False


MODES = {
    "full": Config("full"),
    "quick": Config("quick", ways=(50, 200)),
    "smoke": Config("smoke", ways=(20,), processes=2),
}


# --- one point -------------------------------------------------------------------------------


def _lane(
    target: str,
    calls: list[tuple[str, bytes]],
    deadline_s: float,
    barrier: Any,
    results: Any,
) -> None:
    """One client process: send a Commit per ``(transaction id, basket)`` at once; put
    ``(code, latency_s, points earned, sent_at, done_at)`` per call on ``results``."""
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(COMMIT)
        bodies = [commit_bytes(tx, basket) for tx, basket in calls]
        out: list[tuple[str, float, int, float, float]] = []
        lock, finished = threading.Lock(), threading.Event()

        def done(sent: float, fut: grpc.Future[bytes]) -> None:
            end = time.monotonic()
            exc = fut.exception()
            if exc is None:
                reply = checkout_pb2.CommitResponse.FromString(fut.result())
                row = ("OK", end - sent, reply.result.points_earned, sent, end)
            else:
                code = exc.code().name if isinstance(exc, grpc.Call) else type(exc).__name__
                row = (code, end - sent, 0, sent, end)
            with lock:
                out.append(row)
                if len(out) == len(bodies):
                    finished.set()

        barrier.wait()
        for body in bodies:
            call.future(body, timeout=deadline_s).add_done_callback(
                functools.partial(done, time.monotonic())
            )
        finished.wait()
    results.put(out)


def _points(target: str, member: str) -> int:
    with grpc.insecure_channel(target) as channel:
        m = members_pb2_grpc.MemberServiceStub(channel).GetMember(  # type: ignore[no-untyped-call]
            members_pb2.GetMemberRequest(member_id=member), timeout=10
        )
    return int(m.available_points + m.pending_points)


def burst(
    target: str,
    member: str,
    ways: int,
    processes: int,
    deadline_s: float,
    lines: int,
    spread: Sequence[str] = (),
) -> dict[str, Any]:
    """``ways`` concurrent Commits for ``member`` from ``processes`` client processes (or, with
    ``spread``, each for another of those members: no contention)."""
    members = list(spread) or [member]
    baskets = [
        basket_field(evaluate_request(m, lines, redeem_points=0).SerializeToString())
        for m in members
    ]
    before = sum(_points(target, m) for m in members)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    calls = [(f"c2-{member}-{ways}-{i}", baskets[i % len(baskets)]) for i in range(ways)]
    procs = [
        ctx.Process(
            target=_lane,
            args=(target, calls[p::processes], deadline_s, barrier, results),
            daemon=True,
        )
        for p in range(processes)
    ]
    for p in procs:
        p.start()
    rows = [row for _ in procs for row in results.get(timeout=120 + deadline_s)]
    for p in procs:
        p.join(timeout=30)
    after = sum(_points(target, m) for m in members)
    codes = Counter(r[0] for r in rows)
    latency = np.array([r[1] for r in rows])
    earned = sum(r[2] for r in rows)
    p50, p99 = (float(x) * 1000 for x in np.percentile(latency, [50, 99]))
    return {
        "ways": ways,
        "ok": codes.get("OK", 0),
        "aborted": codes.get("ABORTED", 0),
        "aborted_rate": codes.get("ABORTED", 0) / ways,
        "deadline_exceeded": codes.get("DEADLINE_EXCEEDED", 0),
        "other": {
            c: n for c, n in codes.items() if c not in ("OK", "ABORTED", "DEADLINE_EXCEEDED")
        },
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(float(latency.max()) * 1000, 1),
        "total_s": round(max(r[4] for r in rows) - min(r[3] for r in rows), 3),
        "points_earned_ok": earned,
        "points_added": after - before,
        # committed calls that timed out on the client may still have applied: only an exact
        # match is checked when every call answered
        "consistent": after - before == earned if len(codes) == 1 else after - before >= earned,
    }


# --- the suite -------------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    points = []
    with loyalty_server("redis", cfg.threads, cfg.workers, cfg.members) as (server, _):
        target = f"127.0.0.1:{server.port}"
        for k, ways in enumerate(cfg.ways):
            spread = [member_id(100 + i) for i in range(ways)] if cfg.spread else []
            points.append(
                burst(target, member_id(k), ways, cfg.processes, cfg.deadline_s, cfg.lines, spread)
            )
            print_point(points[-1])
    return {"machine": suite.machine_info(), "config": asdict(cfg), "points": points}


HEADER = (
    "| ways | OK | ABORTED | rate | DEADLINE_EXCEEDED | p50 ms | p99 ms | max ms | total s "
    "| points |"
)


def row(p: dict[str, Any]) -> str:
    return (
        f"| {p['ways']} | {p['ok']} | {p['aborted']} | {p['aborted_rate']:.1%} "
        f"| {p['deadline_exceeded']} | {p['p50_ms']} | {p['p99_ms']} | {p['max_ms']} "
        f"| {p['total_s']} | {'exact' if p['consistent'] else 'MISMATCH'} |"
    )


def print_point(p: dict[str, Any]) -> None:
    print(row(p) + (f" other: {p['other']}" if p["other"] else ""), flush=True)


def markdown(r: dict[str, Any]) -> str:
    c = r["config"]
    return "\n".join(
        [
            "# C2: one member's contention on Redis",
            "",
            f"{suite.machine_line(r['machine'])}; server {c['workers']} x {c['threads']} "
            f"threads; {c['processes']} client processes; deadline {c['deadline_s']} s; "
            f"{c['lines']}-line basket"
            + ("; each call for another member (no contention)." if c["spread"] else "."),
            "",
            HEADER,
            "|" + "---|" * 10,
            *(row(p) for p in r["points"]),
            "",
        ]
    )


def write(r: dict[str, Any], out: Path) -> list[Path]:
    return suite.write_outputs(r, out, "contention", lambda _r, _o: [], markdown)


def summary(r: dict[str, Any]) -> None:
    print(markdown(r))


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path]:
    p = suite.suite_parser(
        "python -m benchmarks contention",
        __doc__,
        "50 / 200-way only",
        "20-way from 2 processes (a check that it runs)",
    )
    p.add_argument("--ways", type=lambda s: tuple(int(x) for x in s.split(",")))
    p.add_argument("--processes", type=int)
    p.add_argument("--deadline", dest="deadline_s", type=float)
    p.add_argument("--workers", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--lines", type=int)
    p.add_argument(
        "--spread", action="store_true", default=None, help="each call for another member"
    )
    a = p.parse_args(argv)
    given = {k: getattr(a, k) for k in ("ways", "processes", "deadline_s", "workers", "threads")}
    given.update(lines=a.lines, spread=a.spread)
    return suite.configure(MODES, a, given), a.out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    why = redis_unavailable()
    if why:
        print(f"C2 (contention) skipped: {why}")
        return {}
    cfg, out = parse_args(argv)
    return suite.finish(run(cfg), out, summary, write)


if __name__ == "__main__":
    main()


__all__ = ["Config", "burst", "main"]
