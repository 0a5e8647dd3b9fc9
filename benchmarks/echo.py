"""Bare gRPC echo: the ceiling of gRPC in Python on this machine, sync server vs grpc.aio.

    python -m benchmarks.echo [--seconds 5] [--clients 2] [--concurrency 8]

Each server runs in its own process; client processes each keep ``--concurrency`` calls in
flight on their own channel (closed loop) for ``--seconds`` and report completed calls. The
payload is the 20-line EvaluateRequest of ``benchmarks.payload``; ``benchmarks.grpc_load``
measures the echo beside the real service, open loop too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import time
from concurrent import futures
from multiprocessing.synchronize import Event

import grpc

from benchmarks.payload import evaluate_request

METHOD = "/bench.Echo/Echo"


def payload() -> bytes:
    """The 20-line demo basket the gRPC benchmarks send (``benchmarks.payload``)."""
    return evaluate_request("M10004", 20).SerializeToString()


def _identity(request: bytes, context) -> bytes:
    return request


def _sync_server(
    port_q: mp.Queue, stop: Event, threads: int, port: int = 0, reuseport: bool = False
) -> None:
    """The echo as the loyalty server runs: sync server, ``threads`` handler threads; several
    of these may share ``port`` with ``reuseport`` (as ``loyalty serve --workers`` does)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads),
        options=[("grpc.so_reuseport", int(reuseport))],
    )
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_identity)}
    )
    server.add_generic_rpc_handlers((handler,))
    port_q.put(server.add_insecure_port(f"127.0.0.1:{port}"))
    server.start()
    stop.wait()
    server.stop(None)


def _aio_server(port_q: mp.Queue, stop: Event, threads: int) -> None:
    async def run() -> None:
        server = grpc.aio.server()

        async def echo(request: bytes, context) -> bytes:
            return request

        handler = grpc.method_handlers_generic_handler(
            "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
        )
        server.add_generic_rpc_handlers((handler,))
        port_q.put(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await server.stop(None)

    asyncio.run(run())


def _client(port: int, seconds: float, concurrency: int, out: mp.Queue) -> None:
    data = payload()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(METHOD)
    call(data)  # connect
    done = 0
    end = time.perf_counter() + seconds
    start_cpu = time.process_time()
    with futures.ThreadPoolExecutor(concurrency) as pool:

        def loop() -> int:
            n = 0
            while time.perf_counter() < end:
                call(data, timeout=5)
                n += 1
            return n

        done = sum(pool.map(lambda _: loop(), range(concurrency)))
    out.put((done, time.process_time() - start_cpu))
    channel.close()


def measure(kind: str, seconds: float, clients: int, concurrency: int, threads: int = 16) -> dict:
    ctx = mp.get_context("spawn")
    port_q, out, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    target = _sync_server if kind == "sync" else _aio_server
    server = ctx.Process(target=target, args=(port_q, stop, threads))
    server.start()
    port = port_q.get(timeout=30)
    procs = [
        ctx.Process(target=_client, args=(port, seconds, concurrency, out)) for _ in range(clients)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    stop.set()
    server.join(timeout=10)
    calls = sum(r[0] for r in results)
    return {
        "server": kind,
        "calls": calls,
        "rps": round(calls / seconds),
        "client_cpu_s": round(sum(r[1] for r in results), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    rows = [measure(kind, args.seconds, args.clients, args.concurrency) for kind in ("sync", "aio")]
    for r in rows:
        print(
            f"{r['server']:>5}: {r['rps']:>7,} req/s  ({r['calls']} calls, "
            f"client CPU {r['client_cpu_s']} s)"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
