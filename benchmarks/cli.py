"""``python -m benchmarks SUITE [options]`` (from a checkout; ``make bench`` runs ``all``).

Suites: ``kernel`` (K1, K2, C1, scaling: ``benchmarks.kernel``), ``grpc`` (S1, S2: echo vs
Evaluate vs Commit, closed and open loop: ``benchmarks.grpc_load``), ``ceiling`` (S1, S2 again
with clients that are not the bottleneck, h2load and a raw HTTP/2 client:
``benchmarks.ceiling``), ``redis-memory`` (M1: ``benchmarks.redis_memory``) and ``all`` (all
four in that order, the ceiling only where h2load is installed and M1 only where the Redis store
can run; only ``--quick``, ``--smoke`` and ``--out`` are passed on), and ``contention`` (C2: one
member's concurrent Commits on Redis, ``benchmarks.contention``; not part of ``all``), and
``codes`` (1,000,000 coupon codes in one batch on each store, ``benchmarks.codes``, writing
``codes.json``; not part of ``all``), ``cluster`` (1 Redis against a 3-primary cluster,
M1 on the cluster and a sizing table, ``benchmarks.cluster``; not part of ``all``), and
``cluster-quotes`` (a quote's store read in process with and without the member cache, on
1 Redis and on a cluster, ``benchmarks.cluster_quotes``; not part of ``all``).
``python -m benchmarks kernel --help`` lists a suite's knobs. ``kernel``, ``grpc`` and
``ceiling`` print a table and write ``<suite>.json``, ``<suite>.md`` and PNG plots under
``benchmarks/results/`` (or ``--out``); ``contention`` its table as ``contention.json`` and
``contention.md``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

SUITES = (
    "kernel",
    "grpc",
    "ceiling",
    "redis-memory",
    "contention",
    "codes",
    "cluster",
    "cluster-quotes",
    "all",
)
SHARED = ("--quick", "--smoke")


def run_suite(suite: str, args: Sequence[str]) -> int:
    from benchmarks import grpc_load, kernel

    def redis_memory(argv: list[str]) -> Any:
        # by name: it needs the Redis store, which the other suites need not import
        return importlib.import_module("benchmarks.redis_memory").main(argv)

    def ceiling(argv: list[str]) -> Any:
        # by name: it needs the hpack package, which only the dev extra installs
        return importlib.import_module("benchmarks.ceiling").main(argv)

    def contention(argv: list[str]) -> Any:
        # by name, like redis-memory: it needs the Redis store
        return importlib.import_module("benchmarks.contention").main(argv)

    def codes(argv: list[str]) -> Any:
        # by name, like redis-memory: it needs the Redis store
        return importlib.import_module("benchmarks.codes").main(argv)

    def cluster(argv: list[str]) -> Any:
        # by name, like redis-memory: it needs the Redis store and redis-cli
        return importlib.import_module("benchmarks.cluster").main(argv)

    def cluster_quotes(argv: list[str]) -> Any:
        return importlib.import_module("benchmarks.cluster_quotes").main(argv)

    mains: dict[str, Callable[[list[str]], Any]] = {
        "kernel": kernel.main,
        "grpc": grpc_load.main,
        "ceiling": ceiling,
        "redis-memory": redis_memory,
        "contention": contention,
        "codes": codes,
        "cluster": cluster,
        "cluster-quotes": cluster_quotes,
    }
    if suite != "all":
        mains[suite](list(args))
        return 0
    from benchmarks.servers import redis_unavailable

    shared = [a for a in args if a in SHARED]
    if "--out" in args:
        i = list(args).index("--out")
        shared += list(args[i : i + 2])
    unknown = sorted(set(args) - set(shared))
    if unknown:
        print(
            f"`bench all` passes on only {', '.join(SHARED)} and --out; run the suites one "
            f"by one for {unknown}",
            file=sys.stderr,
        )
        return 2
    for name in ("kernel", "grpc"):
        mains[name](shared)
    from benchmarks.h2load import unavailable as h2load_unavailable

    why = h2load_unavailable()
    if why:
        print(f"ceiling skipped: {why}")
    else:
        mains["ceiling"](shared)
    why = redis_unavailable()
    if why:
        print(f"M1 (redis-memory) skipped: {why}")
    else:  # M1 writes its own file; a tiny run (10,000 members) unless this is the full run
        mains["redis-memory"](["--quick"] if set(shared) & set(SHARED) else [])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("suite", choices=SUITES)
    p.add_argument("options", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    return run_suite(a.suite, a.options)
