"""Load-generator processes: closed loop (fixed concurrency) and open loop (fixed arrival rate).

A :class:`ClientPool` keeps ``clients`` spawned processes alive for a whole run; each point
hands every process a :class:`Spec`, waits until all have connected and warmed up, then starts
them together, so the parent can read the server's CPU time around the measured window.

*Closed loop*: ``concurrency`` threads per process each send the next call when the last one
answers; it finds the peak rate but hides queueing (a slow server just gets fewer calls).
*Open loop*: calls are sent on a fixed schedule (Poisson arrivals at ``rate`` per process,
seeded) whether or not earlier ones have answered, and each latency is measured from the
call's **intended** send time, so time spent queued anywhere (client included) is counted
rather than omitted. Each process reports a mergeable :class:`~benchmarks.histogram.Histogram`
and its own CPU time, so a reader can check the load generator was not the bottleneck.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import threading
import time
from collections import Counter
from concurrent import futures
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
import numpy as np

from benchmarks import payload
from benchmarks.histogram import Histogram
from benchmarks.suite import gc_off

METHODS = {
    "echo": "/bench.Echo/Echo",
    "evaluate": "/loyalty.v1.CheckoutService/Evaluate",
    "commit": "/loyalty.v1.CheckoutService/Commit",
}
WARMUP_CALLS = 20


@dataclass(frozen=True)
class Spec:
    """One measured point, as one client process runs it."""

    port: int
    kind: str  # a METHODS key
    mode: str  # "closed" or "open"
    seconds: float
    concurrency: int = 8  # closed loop: calls in flight per process
    rate: float = 0.0  # open loop: calls per second from this process
    connections: int = 2  # HTTP/2 connections per process (spread over SO_REUSEPORT workers)
    members: int = 3000
    lines: int = 20
    timeout_s: float = 10.0
    run_id: str = "bench"  # prefix of commit transaction ids: unique per run and point
    client: int = 0
    clients: int = 1
    seed: int = 0


class _Requests:
    """Request bytes for call ``k`` of this process: members in rotation, unique commit ids."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.evaluate = payload.evaluate_bytes(spec.members, spec.lines)
        self.baskets = (
            [payload.basket_field(b) for b in self.evaluate] if spec.kind == "commit" else []
        )

    def __call__(self, k: int) -> bytes:
        s = self.spec
        m = (s.client + k * s.clients) % len(self.evaluate)
        if s.kind != "commit":
            return self.evaluate[m]
        return payload.commit_bytes(f"{s.run_id}-{s.client}-{k}", self.baskets[m])


def _channels(spec: Spec) -> list[grpc.Channel]:
    # a local subchannel pool gives each channel its own TCP connection
    opts = [("grpc.use_local_subchannel_pool", 1)]
    return [
        grpc.insecure_channel(f"127.0.0.1:{spec.port}", options=opts)
        for _ in range(spec.connections)
    ]


@dataclass
class _Outcome:
    """What one process measured: latencies and send lags (ns), errors by status code."""

    lat: list[int] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    wall_s: float = 0.0
    lag: list[int] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)  # first message of each status

    def error(self, exc: Exception) -> None:
        code = exc.code() if isinstance(exc, grpc.RpcError) else None
        name = code.name if code else type(exc).__name__
        self.errors[name] += 1
        self.details.setdefault(
            name, (exc.details() if isinstance(exc, grpc.RpcError) else str(exc))[:200] or ""
        )


def _closed(spec: Spec, calls: list, requests: _Requests) -> _Outcome:
    end = time.perf_counter() + spec.seconds
    res = _Outcome()
    lat: list[list[int]] = [[] for _ in range(spec.concurrency)]
    clock = time.perf_counter_ns
    t0 = time.perf_counter()

    def loop(t: int) -> None:
        call, k, out = calls[t % len(calls)], t, lat[t]
        while time.perf_counter() < end:
            data = requests(k)
            start = clock()
            try:
                call(data, timeout=spec.timeout_s)
                out.append(clock() - start)
            except grpc.RpcError as exc:
                res.error(exc)
            k += spec.concurrency

    with futures.ThreadPoolExecutor(spec.concurrency) as pool:
        list(pool.map(loop, range(spec.concurrency)))
    res.lat, res.wall_s = [x for xs in lat for x in xs], time.perf_counter() - t0
    return res


def _open(spec: Spec, calls: list, requests: _Requests) -> _Outcome:
    rng = np.random.default_rng(spec.seed * 1000 + spec.client)
    n = int(spec.rate * spec.seconds)
    offsets = np.cumsum(rng.exponential(1e9 / max(spec.rate, 1e-9), n)).astype(np.int64)
    res = _Outcome()
    lat, lag = res.lat, res.lag  # lag: how late each call left: the generator's own delay
    clock = time.perf_counter_ns
    pending = threading.Semaphore(0)
    last_done = [0]
    in_flight: set[grpc.Future] = set()  # a future nobody holds is cancelled when collected

    def done(intended: int, fut: grpc.Future) -> None:
        now = clock()
        try:
            in_flight.discard(fut)
            exc = fut.exception()
            if exc is None:
                lat.append(now - intended)
            else:
                res.error(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. cancelled: count it, never lose a call
            res.error(exc)
        finally:
            last_done[0] = now
            pending.release()

    t0 = clock()
    for k in range(n):
        intended = t0 + int(offsets[k])
        wait = intended - clock()
        if wait > 0:
            time.sleep(wait / 1e9)
        lag.append(clock() - intended)
        fut = calls[k % len(calls)].future(requests(k), timeout=spec.timeout_s)
        in_flight.add(fut)
        fut.add_done_callback(lambda f, at=intended: done(at, f))
    for _ in range(n):
        pending.acquire(timeout=spec.timeout_s + 5)
    res.wall_s = ((last_done[0] or clock()) - t0) / 1e9
    return res


def _client(commands: mp.Queue, results: mp.Queue) -> None:
    """A client process: run each Spec it is given until it gets None."""
    # the open-loop sender must get the GIL back from gRPC's callback threads promptly, or
    # its own lateness (up to the 5 ms default switch interval) would count as latency
    sys.setswitchinterval(0.0002)
    while (spec := commands.get()) is not None:
        requests = _Requests(spec)
        channels = _channels(spec)
        calls = [ch.unary_unary(METHODS[spec.kind]) for ch in channels]
        try:
            for k in range(WARMUP_CALLS):  # connect every channel, warm both ends
                calls[k % len(calls)](requests(-1 - k), timeout=30)
            results.put(("ready", spec.client))
            if commands.get() != "go":
                continue
            cpu0 = time.process_time()
            run = _closed if spec.mode == "closed" else _open
            with gc_off():
                res = run(spec, calls, requests)
            hist = Histogram().record(np.asarray(res.lat, dtype=np.int64))
            lags = Histogram().record(np.asarray(res.lag, dtype=np.int64))
            results.put(
                (
                    "done",
                    {
                        "client": spec.client,
                        "ok": len(res.lat),
                        "errors": dict(res.errors),
                        "error_details": res.details,
                        "wall_s": res.wall_s,
                        "cpu_s": time.process_time() - cpu0,
                        "histogram": hist.to_json(),
                        "send_lag": lags.to_json(),
                    },
                )
            )
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            results.put(("error", f"client {spec.client}: {type(exc).__name__}: {exc}"))
        finally:
            for ch in channels:
                ch.close()


class ClientPool:
    """``clients`` load-generator processes, reused for every point of a run."""

    def __init__(self, clients: int):
        ctx = mp.get_context("spawn")
        self.results: mp.Queue = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(clients)]
        self.procs = [
            ctx.Process(target=_client, args=(q, self.results), daemon=True) for q in self.commands
        ]
        for p in self.procs:
            p.start()

    def _get(self, timeout_s: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                kind, value = self.results.get(timeout=1.0)
                break
            except queue.Empty:
                dead = [p.exitcode for p in self.procs if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"load generator stopped (exit codes {dead}) or "
                        f"timed out after {timeout_s:.0f} s"
                    ) from None
        if kind == "error":
            raise RuntimeError(value)
        return kind, value

    def run(self, spec: Spec, on_start=None) -> list[dict[str, Any]]:
        """Run ``spec`` on every process at once (``rate`` is split between them); returns
        one result per process. ``on_start`` is called just before they are let go."""
        n = len(self.procs)
        for k, q in enumerate(self.commands):
            q.put(replace(spec, client=k, clients=n, rate=spec.rate / n))
        for _ in range(n):
            self._get(120)
        if on_start is not None:
            on_start()
        for q in self.commands:
            q.put("go")
        return [self._get(spec.seconds + 3 * spec.timeout_s + 60)[1] for _ in range(n)]

    def close(self) -> None:
        for q in self.commands:
            q.put(None)
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One point from the processes' results: merged histogram, totals, rate, client CPU."""
    hist, lag = Histogram(), Histogram()
    errors: Counter = Counter()
    details: dict[str, str] = {}
    for p in parts:
        hist.merge(Histogram.from_json(p["histogram"]))
        lag.merge(Histogram.from_json(p["send_lag"]))
        errors.update(p["errors"])
        details.update(p["error_details"])
    wall = max(p["wall_s"] for p in parts)
    cpu = sum(p["cpu_s"] for p in parts)
    return {
        "ok": hist.total,
        "errors": dict(errors),
        "error_details": details,
        "wall_s": wall,
        "achieved_rps": hist.total / wall if wall > 0 else 0.0,
        "client_cpu_s": cpu,
        "client_cpu_cores": cpu / wall if wall > 0 else 0.0,
        "client_cpu_max_process_cores": max(
            p["cpu_s"] / p["wall_s"] if p["wall_s"] else 0 for p in parts
        ),
        "latency": hist.summary(),
        "histogram": hist.to_json(),
        "send_lag": lag.summary() if lag.total else None,
    }
