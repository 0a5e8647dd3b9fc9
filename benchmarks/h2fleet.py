"""Loads on ``benchmarks.h2client`` connections: one process's loop, and one process per core.

:func:`drive` runs one process's share of a load on open connections, closed loop (``streams``
calls in flight per connection) or open loop (Poisson arrivals at ``rate``, each latency counted
from the call's intended send time); :func:`call_each` sends every message once and says which
failed. :func:`run` starts one process per :class:`Job`: each builds its request bytes,
connects, and warms up with the same load for ``warmup_s`` before a barrier; the parent passes
the barrier with them and reads the server's CPU time (``on_start``), so the measured window
starts with every client connected and warm. Each process then runs :func:`drive` and sends
back its counts, its latencies as a :class:`~benchmarks.histogram.Histogram`, and its own CPU
time, which :func:`run` merges: rate is the answered-OK calls over the longest process's wall
time.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import select
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks import h2client
from benchmarks.histogram import Histogram
from benchmarks.suite import gc_off

STARTUP_S = 180.0  # spawning, importing and building requests, warm-up included


@dataclass
class Outcome:
    """What one :func:`drive` did: answered calls by status, latencies of the OK ones (ns),
    its CPU time, and the wall time from its start to its last answer."""

    ok: int = 0
    statuses: Counter = field(default_factory=Counter)
    failed: dict[int, h2client.Status] = field(default_factory=dict)  # request index -> status
    messages: dict[h2client.Status, str] = field(default_factory=dict)
    latency_ns: array = field(default_factory=lambda: array("q"))
    sent: int = 0
    unanswered: int = 0
    exhausted: bool = False  # a closed loop ran out of single-use requests before its time
    cpu_s: float = 0.0
    wall_s: float = 0.0


def drive(
    conns: Sequence[h2client.Connection],
    requests: Sequence[tuple[bytes, bytes]],
    *,
    streams: int = 16,
    seconds: float = float("inf"),
    rate: float = 0.0,
    cycle: bool = True,
    timeout_s: float = 10.0,
    seed: int = 0,
) -> Outcome:
    """Calls on ``conns`` until ``seconds`` pass (or, with ``cycle`` False, every request was
    sent once), then waits up to ``timeout_s`` for the answers still due.

    Closed loop (``rate`` 0): each connection keeps ``streams`` calls in flight, and a latency
    runs from the call's send. Open loop: calls are due at Poisson arrivals of ``rate`` per
    second (seeded) whatever is in flight, and a latency runs from the time it was due, so a
    call kept waiting here for the socket or the window is counted as late, not omitted.
    """
    out = Outcome()
    poller = select.epoll()
    by_fd = {c.sock.fileno(): c for c in conns}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    t0 = last = time.perf_counter_ns()
    cpu0 = time.process_time()
    stop = t0 + seconds * 1e9
    n = len(requests)
    limit = n if not cycle else 2**62
    due: list[int] = []
    if rate:
        gaps = np.random.default_rng(seed).exponential(1e9 / rate, int(rate * seconds * 1.2) + 64)
        due = [t0 + int(x) for x in np.cumsum(gaps) if x < seconds * 1e9]
        limit = min(limit, len(due))
    cap = 2**31 - 1 if rate else streams
    latency, failed = out.latency_ns, out.failed
    k = rr = in_flight = answered = 0
    draining_since: int | None = None
    touched: set[h2client.Connection] = set(conns)  # may have room for calls, or bytes to write
    writing: set[h2client.Connection] = set()
    while True:
        now = time.perf_counter_ns()
        if draining_since is None and (now >= stop or k >= limit):
            draining_since = now
            out.exhausted = k >= n and not cycle and now < stop and seconds != float("inf")
        if draining_since is not None:
            if in_flight == 0 or now - draining_since > timeout_s * 1e9:
                break
        elif rate:  # every call now due, on the next connection that can take it
            tried = 0
            while k < limit and due[k] <= now and tried < len(conns):
                c, req = conns[rr], requests[k % n]
                rr = (rr + 1) % len(conns)
                if c.can_start(len(req[1]), cap):
                    c.start(req, due[k], k)
                    touched.add(c)
                    k, in_flight, tried = k + 1, in_flight + 1, 0
                else:
                    tried += 1
        else:
            for c in touched:
                was, k = k, c.fill(requests, k, limit, cap)
                in_flight += k - was
        for c in touched:
            pending = c.flush()
            if pending != (c in writing):
                (writing.add if pending else writing.discard)(c)
                poller.modify(c.sock, select.EPOLLIN | (select.EPOLLOUT if pending else 0))
        touched = set(writing)
        wait = 0.05
        if draining_since is None and k < limit:
            wait = min(wait, ((due[k] if rate else stop) - time.perf_counter_ns()) / 1e9)
        for fd, mask in poller.poll(max(wait, 0.0)):
            c = by_fd[fd]
            touched.add(c)
            if not mask & select.EPOLLIN:
                continue  # writable: the flush above sends more
            finished = c.receive()
            last = time.perf_counter_ns()
            for start_ns, tag, status in finished:
                if status == 0:
                    latency.append(last - start_ns)
                else:
                    failed[tag] = status
                    out.statuses[status] += 1
            in_flight -= len(finished)
            answered += len(finished)
    out.ok = answered - len(failed)
    if out.ok:
        out.statuses[0] = out.ok
    out.sent, out.unanswered = k, in_flight
    out.cpu_s = time.process_time() - cpu0
    out.wall_s = (last - t0) / 1e9
    poller.close()
    for c in conns:
        for status, message in c.messages.items():
            out.messages.setdefault(status, message)
    return out


def call_each(
    host: str,
    port: int,
    path: str,
    messages: Sequence[bytes],
    connections: int = 2,
    streams: int = 8,
    timeout_s: float = 10.0,
) -> Outcome:
    """Every message once, as its own call; ``Outcome.failed`` maps the index of each call
    that did not answer OK to its status. No call starts after ``timeout_s``, and none is
    waited for longer than that again."""
    conns = h2client.connect(host, port, path, connections)
    try:
        return drive(
            conns,
            [h2client.grpc_frame(m) for m in messages],
            streams=streams,
            seconds=timeout_s,
            cycle=False,
            timeout_s=timeout_s,
        )
    finally:
        for c in conns:
            c.close()


@dataclass(frozen=True)
class Job:
    """One client process's share of a load."""

    host: str
    port: int
    path: str
    make: Callable[[int, int], list[bytes]]  # (process index, count) -> messages
    count: int  # messages each process builds (single-use ones: enough for warm-up and run)
    seconds: float
    connections: int = 2
    streams: int = 16  # closed loop: in flight per connection
    rate: float = 0.0  # open loop: calls per second from this process (0: closed loop)
    cycle: bool = True  # reuse the messages; False: each is sent once (commits)
    warmup_s: float = 1.0
    timeout_s: float = 10.0


def _child(job: Job, index: int, barrier: Any, results: mp.Queue) -> None:
    try:
        requests = [h2client.grpc_frame(m) for m in job.make(index, job.count)]
        conns = h2client.connect(job.host, job.port, job.path, job.connections)
        common = {"streams": job.streams, "rate": job.rate, "cycle": job.cycle}
        warm = drive(conns, requests, seconds=job.warmup_s, seed=1000 + index, **common)
        if warm.failed or warm.unanswered:
            raise RuntimeError(f"warm-up failed: {dict(warm.statuses)} {warm.messages}")
        if not job.cycle:
            requests = requests[warm.sent :]
        with gc_off():
            barrier.wait(timeout=STARTUP_S)
            out = drive(
                conns, requests, seconds=job.seconds, timeout_s=job.timeout_s, seed=index, **common
            )
        for c in conns:
            c.close()
        results.put((index, _summary(out)))
    except BaseException as exc:  # the parent reports it; the barrier must not wait for us
        barrier.abort()
        results.put((index, {"error": f"{type(exc).__name__}: {exc}"}))


def _summary(out: Outcome) -> dict[str, Any]:
    return {
        "ok": out.ok,
        "statuses": {str(k): v for k, v in out.statuses.items()},
        "messages": {str(k): v for k, v in out.messages.items()},
        "histogram": Histogram().record(np.frombuffer(out.latency_ns, dtype=np.int64)),
        "sent": out.sent,
        "unanswered": out.unanswered,
        "exhausted": out.exhausted,
        "cpu_s": out.cpu_s,
        "wall_s": out.wall_s,
    }


def run(jobs: list[Job], on_start: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Every job in its own process, measured together; the merged figures."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(jobs) + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(job, i, barrier, results), daemon=True)
        for i, job in enumerate(jobs)
    ]
    for p in procs:
        p.start()
    parts: dict[int, dict[str, Any]] = {}
    try:
        barrier.wait(timeout=STARTUP_S)
        on_start()
    except threading.BrokenBarrierError:
        pass  # a child failed: its error is on the queue
    limit = max(j.seconds + j.timeout_s for j in jobs) + 60
    try:
        while len(parts) < len(jobs):
            i, part = results.get(timeout=limit)
            parts[i] = part
    except queue.Empty:
        pass
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.terminate()
    errors = [p["error"] for p in parts.values() if "error" in p]
    if errors or len(parts) < len(jobs):
        raise RuntimeError(f"h2client processes failed: {errors or 'no answer'}")
    return merge(list(parts.values()))


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    hist = Histogram()
    statuses: Counter = Counter()
    messages: dict[str, str] = {}
    for p in parts:
        hist.merge(p["histogram"])
        statuses.update(p["statuses"])
        messages.update(p["messages"])
    ok = sum(p["ok"] for p in parts)
    answered = sum(statuses.values())
    wall = max(p["wall_s"] for p in parts)
    cpu = sum(p["cpu_s"] for p in parts)
    return {
        "ok": ok,
        "errors": answered - ok,
        "statuses": dict(statuses),
        "error_messages": {k: v for k, v in messages.items() if k != "0"},
        "unanswered": sum(p["unanswered"] for p in parts),
        "exhausted": any(p["exhausted"] for p in parts),
        "wall_s": wall,
        "rps": ok / wall if wall else 0.0,
        "client_cpu_s": cpu,
        "client_cpu_us_per_call": cpu / answered * 1e6 if answered else 0.0,
        "latency": hist.summary(),
        "histogram": hist.to_json(),
    }
