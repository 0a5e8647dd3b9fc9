"""Servers under test for the gRPC benchmarks, each in its own processes so CPU is measurable.

- :class:`EchoServer`: ``benchmarks.echo``'s bare echo (sync server, same thread count), one
  process per worker sharing the port with SO_REUSEPORT when there are several;
- :class:`LoyaltyServer`: ``loyalty serve --demo`` as a subprocess, embedded or Redis store;
  :func:`loyalty_server` starts one with a private redis-server behind it when the store is Redis;
- :func:`redis_unavailable`: why the Redis path cannot run here, or None.

:func:`tree_cpu_s` sums user+system CPU of processes and all their descendants from /proc, so
``--workers`` children are counted.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks import echo
from server.store.redis.process import free_port

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return out


def tree_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by ``pids`` and their live descendants; 0.0
    where /proc is missing."""
    total = 0
    for root in pids:
        for p in _descendants(root):
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICKS


def machine_busy_s() -> float:
    """CPU seconds all processes on this machine have used since boot (every core; /proc/stat:
    user, nice, system, irq, softirq, steal); 0.0 without /proc."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


class EchoServer:
    """``workers`` echo processes on one port, each with ``threads`` handler threads."""

    def __init__(self, threads: int, workers: int = 1):
        self.threads, self.workers = threads, workers
        self.port = 0
        self.pids: list[int] = []

    def __enter__(self) -> EchoServer:
        ctx = mp.get_context("spawn")
        self._stop, port_q = ctx.Event(), ctx.Queue()
        port = free_port() if self.workers > 1 else 0
        self._procs = [
            ctx.Process(
                target=echo._sync_server,
                daemon=True,
                args=(port_q, self._stop, self.threads, port, self.workers > 1),
            )
            for _ in range(self.workers)
        ]
        for p in self._procs:
            p.start()
        ports = {port_q.get(timeout=60) for _ in self._procs}
        if len(ports) != 1 or 0 in ports:
            raise RuntimeError(f"echo workers could not share one port: {ports}")
        self.port = ports.pop()
        self.pids = [p.pid for p in self._procs if p.pid is not None]
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()


def redis_unavailable() -> str | None:
    """Why the Redis store cannot be benchmarked here (None when it can)."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    return None


class LoyaltyServer:
    """``loyalty serve --demo`` on a free port until exit; ``ready`` once health is SERVING.

    ``store="redis"`` needs ``redis_url``; ``workers`` > 1 share the port (SO_REUSEPORT).
    ``cluster``: ``redis_url`` names a node of a Redis Cluster (``--redis-cluster``; the
    demo's code batches and shopping lists do not load there: load the data first and pass
    ``demo=False``, which serves what is loaded). ``extra_args``: more ``loyalty serve``
    flags.
    """

    def __init__(
        self,
        store: str,
        threads: int,
        workers: int = 1,
        members: int = 3000,
        redis_url: str | None = None,
        start_timeout_s: float = 180.0,
        *,
        cluster: bool = False,
        demo: bool = True,
        extra_args: tuple[str, ...] = (),
    ):
        self.store, self.threads, self.workers = store, threads, workers
        self.members, self.redis_url = members, redis_url
        self.cluster, self.demo, self.extra_args = cluster, demo, extra_args
        self.start_timeout_s = start_timeout_s
        self.port = free_port()
        self.pids: list[int] = []

    def command(self, data_dir: Path) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "server.cli.main",
            "serve",
            *(("--demo", "--members", str(self.members)) if self.demo else ()),
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--threads",
            str(self.threads),
            "--workers",
            str(self.workers),
            "--store",
            self.store,
        ]
        cmd += ["--redis-url", self.redis_url] if self.redis_url else []
        return cmd + (["--redis-cluster"] if self.cluster else []) + list(self.extra_args)

    def __enter__(self) -> LoyaltyServer:
        self._tmp = tempfile.TemporaryDirectory(prefix="loyalty-bench-")
        tmp = Path(self._tmp.name)
        self.log_path = tmp / "serve.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            self.command(tmp / "data"), stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pids = [self.proc.pid]
        try:
            self._wait_serving()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _serving(self, connections: int) -> bool:
        """SERVING on each of ``connections`` new connections (each may reach another
        worker: the kernel spreads connections over processes sharing the port)."""
        for _ in range(connections):
            with grpc.insecure_channel(
                f"127.0.0.1:{self.port}", options=[("grpc.use_local_subchannel_pool", 1)]
            ) as ch:
                try:
                    reply = health_pb2_grpc.HealthStub(ch).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                except grpc.RpcError:
                    return False
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    return False
        return True

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not self._serving(1 if self.workers == 1 else 4 * self.workers):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"loyalty serve exited ({self.proc.returncode}): "
                    f"{self.log_path.read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"loyalty serve not SERVING after {self.start_timeout_s:.0f} s")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self._tmp.cleanup()


@contextlib.contextmanager
def loyalty_server(
    store: str, threads: int, workers: int = 1, members: int = 3000
) -> Iterator[tuple[LoyaltyServer, tuple[int, ...]]]:
    """``loyalty serve --demo`` on ``store``, and the pids of the private redis-server behind
    it (none for the embedded store)."""
    if store == "redis":
        from server.store.redis.process import RedisProcess

        with (
            RedisProcess() as r,
            LoyaltyServer(store, threads, workers, members, redis_url=r.url) as s,
        ):
            yield s, ((r.proc.pid,) if r.proc else ())
    else:
        with LoyaltyServer(store, threads, workers, members) as s:
            yield s, ()
