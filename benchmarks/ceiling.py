"""The gRPC ceiling, measured with clients that are not the bottleneck (docs/design.md §8: S1, S2).

    python -m benchmarks ceiling [--seconds N] [--quick]

``benchmarks.grpc_load`` drives the servers with the Python grpc client, which spends about as
much CPU per call as the Python server it drives; on a small machine it shares the cores with
the server, so it holds the echo back and makes the service look closer to gRPC's ceiling than it
is. Here the clients are h2load (C) and ``benchmarks.h2client`` (raw HTTP/2 frames), in one run:

- *echo*: the bare gRPC echo of the 20-line Evaluate bytes (``benchmarks.echo``'s sync server),
  one process per core, 2 handler threads each, sharing the port (SO_REUSEPORT): h2load and
  h2client closed loop with the same connections and streams (their ratio shows h2client is not
  the bottleneck), then h2client open loop at half the echo's peak;
- *Evaluate*, per store (embedded, and Redis on a private redis-server when it can run):
  ``loyalty serve --demo`` with one worker per core; h2load closed loop (h2load counts HTTP
  statuses only: one grpc-client call first checks the answer is OK), h2client closed loop,
  and h2client open loop at half of h2load's peak, each call's grpc-status checked;
- *Commit*, per store: h2client only (each call needs its own transaction id), closed loop then
  open loop at half its peak; every Commit is a distinct, real commit.

Every point records the server's CPU per call (user + system over its process tree, from /proc)
and the client's. Results: ``benchmarks/results/ceiling.{md,json,png}`` (``--out``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc

from benchmarks import ceiling_report, echo, h2fleet, h2load, payload, suite
from benchmarks.servers import EchoServer, loyalty_server, redis_unavailable, tree_cpu_s
from server.settings import Settings

EVALUATE = "/loyalty.v1.CheckoutService/Evaluate"
COMMIT = "/loyalty.v1.CheckoutService/Commit"
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Config:
    mode: str
    seconds: float = 10.0  # measured, per point
    warmup_s: float = 2.0  # before each point, same load, not measured
    connections: int = max(4, 2 * CORES)  # in all, over the client processes (h2load -c)
    streams: int = 16  # closed loop: in flight per connection (h2load -m)
    workers: int = CORES  # server processes sharing the port, echo and loyalty serve alike
    echo_threads: int = 2  # handler threads per echo process
    threads: int = Settings().threads  # handler threads per loyalty worker: serve's default
    fraction: float = 0.5  # open loop: this share of the point's closed-loop peak
    stores: tuple[str, ...] = ("embedded", "redis")
    members: int = 3000  # demo members the commits rotate over
    lines: int = 20  # basket lines
    timeout_s: float = 10.0


MODES = {
    "full": Config("full"),
    "quick": Config("quick", seconds=3.0, warmup_s=1.0, members=1000),
    "smoke": Config(
        "smoke", seconds=0.5, warmup_s=0.2, streams=4, stores=("embedded",), members=50, lines=8
    ),
}


class Meter:
    """CPU seconds between :meth:`start` and :meth:`end` of the server (``roots`` and every
    process under them), of each of its ``workers``, and of the store (e.g. redis-server)."""

    def __init__(self, roots: Sequence[int], workers: Sequence[int], store: Sequence[int] = ()):
        self.roots, self.workers, self.store = list(roots), list(workers), list(store)

    def _read(self) -> list[float]:
        return [tree_cpu_s(self.roots), tree_cpu_s(self.store)] + [
            tree_cpu_s([p]) for p in self.workers
        ]

    def start(self) -> None:
        self._t0 = self._read()

    def end(self) -> None:
        self.delta = [b - a for a, b in zip(self._t0, self._read(), strict=True)]

    def figures(self, calls: int) -> dict[str, Any]:
        server, store, workers = self.delta[0], self.delta[1], self.delta[2:]
        per_call = 1e6 / calls if calls else 0.0
        busy = sum(workers)
        return {
            "server_cpu_s": server,
            "server_cpu_us_per_call": server * per_call,
            "store_cpu_us_per_call": store * per_call,
            # how evenly SO_REUSEPORT spread the connections: each worker's share of the CPU
            "worker_cpu_shares": [round(w / busy, 3) if busy else 0.0 for w in workers],
        }


def _workers(pid: int) -> list[int]:
    """The processes ``pid`` spawned, less multiprocessing's resource tracker."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in task.read_text().split()]
    return [p for p in out if b"resource_tracker" not in _cmdline(p)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def same_message(index: int, count: int, message: bytes) -> list[bytes]:
    """Every call sends these bytes (h2load's one data file, for h2client)."""
    return [message]


def commit_messages(index: int, count: int, run_id: str, members: int, lines: int) -> list[bytes]:
    """``count`` CommitRequests with ids unique to this process and point, over the members."""
    baskets = [payload.basket_field(b) for b in payload.evaluate_bytes(members, lines)]
    return [
        payload.commit_bytes(f"{run_id}-{index}-{k}", baskets[(index * count + k) % members])
        for k in range(count)
    ]


def _h2client(
    cfg: Config,
    port: int,
    path: str,
    make: Callable[[int, int], list[bytes]],
    meter: Meter,
    *,
    rate: float = 0.0,
    count: int = 1,
    cycle: bool = True,
) -> dict[str, Any]:
    procs = min(CORES, cfg.connections)
    job = h2fleet.Job(
        host="127.0.0.1",
        port=port,
        path=path,
        make=make,
        count=count,
        seconds=cfg.seconds,
        connections=max(1, cfg.connections // procs),
        streams=cfg.streams,
        rate=rate / procs,
        cycle=cycle,
        warmup_s=cfg.warmup_s,
        timeout_s=cfg.timeout_s,
    )
    out = h2fleet.run([job] * procs, on_start=meter.start)
    meter.end()
    return {
        "client": "h2client",
        "mode": "open" if rate else "closed",
        "offered_rps": rate,
        "client_processes": procs,
        **out,
        **meter.figures(out["ok"] + out["errors"]),
    }


def _h2load(cfg: Config, port: int, path: str, message: bytes, meter: Meter) -> dict[str, Any]:
    out = h2load.run(
        port,
        path,
        message,
        seconds=cfg.seconds,
        warmup_s=cfg.warmup_s,
        connections=cfg.connections,
        streams=cfg.streams,
        threads=CORES,
        on_start=meter.start,
        on_end=meter.end,
    )
    return {
        "client": "h2load",
        "mode": "closed",
        "offered_rps": 0.0,
        **out,
        **meter.figures(out["ok"]),
    }


def _check_answers(port: int, evaluate: bytes, commit: bytes) -> None:
    """One Evaluate and one Commit with the grpc client: h2load would count an error as OK."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        for path, message in ((EVALUATE, evaluate), (COMMIT, commit)):
            ch.unary_unary(path)(message, timeout=30)  # raises unless the status is OK


def _point(rows: list[dict[str, Any]], target: str, store: str, row: dict[str, Any]) -> dict:
    row = {"target": target, "store": store, **row}
    rows.append(row)
    ceiling_report.print_row(row)
    return row


def run(cfg: Config) -> dict[str, Any]:
    message = echo.payload()  # the 20-line Evaluate request, for echo and Evaluate alike
    results: dict[str, Any] = {
        "config": asdict(cfg),
        "machine": suite.machine_info(),
        "h2load": h2load.version(),
        "rows": [],
        "skipped": {},
    }
    rows = results["rows"]
    print(
        f"benchmarks.ceiling ({cfg.mode}): {cfg.seconds:g} s a point after {cfg.warmup_s:g} s "
        f"warm-up; {cfg.connections} connections x {cfg.streams} streams; servers: "
        f"{cfg.workers} worker(s) per target",
        flush=True,
    )
    with EchoServer(cfg.echo_threads, cfg.workers) as e:
        meter = Meter(e.pids, e.pids)
        same = partial(same_message, message=message)
        peak = _point(rows, "echo", "", _h2load(cfg, e.port, echo.METHOD, message, meter))
        _point(rows, "echo", "", _h2client(cfg, e.port, echo.METHOD, same, meter))
        rate = cfg.fraction * peak["rps"]
        _point(rows, "echo", "", _h2client(cfg, e.port, echo.METHOD, same, meter, rate=rate))
    for store in cfg.stores:
        why = redis_unavailable() if store == "redis" else None
        if why:
            print(f"  skipping the {store} store: {why}", flush=True)
            results["skipped"][store] = why
            continue
        t0 = time.perf_counter()
        with loyalty_server(store, cfg.threads, cfg.workers, cfg.members) as (s, store_pids):
            print(f"  {store} server ready in {time.perf_counter() - t0:.1f} s", flush=True)
            check = commit_messages(0, 1, f"ceiling-check-{store}", cfg.members, cfg.lines)[0]
            _check_answers(s.port, message, check)
            meter = Meter(s.pids, _workers(s.pids[0]) or s.pids, store_pids)
            same = partial(same_message, message=message)
            peak = _point(rows, "evaluate", store, _h2load(cfg, s.port, EVALUATE, message, meter))
            closed = _point(rows, "evaluate", store, _h2client(cfg, s.port, EVALUATE, same, meter))
            rate = cfg.fraction * peak["rps"]
            _point(
                rows, "evaluate", store, _h2client(cfg, s.port, EVALUATE, same, meter, rate=rate)
            )
            # enough single-use commits for warm-up and run at the Evaluate peak, with room
            budget = max(peak["rps"], closed["rps"]) * (cfg.seconds + cfg.warmup_s) * 1.5
            procs = min(CORES, cfg.connections)
            commits = partial(commit_messages, members=cfg.members, lines=cfg.lines)
            closed = _point(
                rows,
                "commit",
                store,
                _h2client(
                    cfg,
                    s.port,
                    COMMIT,
                    partial(commits, run_id="closed"),
                    meter,
                    count=int(budget / procs) + 1000,
                    cycle=False,
                ),
            )
            rate = cfg.fraction * closed["rps"]
            _point(
                rows,
                "commit",
                store,
                _h2client(
                    cfg,
                    s.port,
                    COMMIT,
                    partial(commits, run_id="open"),
                    meter,
                    rate=rate,
                    count=int(rate * (cfg.seconds + cfg.warmup_s) * 1.3 / procs) + 100,
                    cycle=False,
                ),
            )
    results["machine"]["load_average_end"] = suite.load_average()
    results["goals"] = ceiling_report.goals(results)
    return results


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path]:
    p = suite.suite_parser(
        "python -m benchmarks ceiling", __doc__, "3 s a point (a few minutes)", "tiny run"
    )
    p.add_argument("--seconds", type=float, help="measured seconds per point (default 10)")
    p.add_argument(
        "--connections", type=int, help=f"connections in all (default {max(4, 2 * CORES)})"
    )
    p.add_argument("--streams", type=int, help="closed loop: streams per connection (16)")
    p.add_argument("--workers", type=int, help=f"server processes per target (cores: {CORES})")
    p.add_argument("--store", help="stores: embedded,redis (default both; redis when available)")
    a = p.parse_args(argv)
    given = {
        "seconds": a.seconds,
        "connections": a.connections,
        "streams": a.streams,
        "workers": a.workers,
        "stores": tuple(x for x in a.store.split(",") if x) if a.store else None,
    }
    return suite.configure(MODES, a, given), a.out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    cfg, out = parse_args(argv)
    why = h2load.unavailable()
    if why:
        raise SystemExit(f"benchmarks.ceiling: {why}")
    return suite.finish(run(cfg), out, ceiling_report.print_summary, ceiling_report.write_all)


if __name__ == "__main__":
    main()
