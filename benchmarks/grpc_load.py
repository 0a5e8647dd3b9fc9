"""gRPC benchmarks (docs/design.md §8: S1, S2): echo vs Evaluate vs Commit, same run, same payload.

    python -m benchmarks.grpc_load            # full run, ~10 s a point
    python -m benchmarks.grpc_load --quick    # a few seconds a point
    python -m benchmarks.grpc_load --store embedded,redis --workers 2 --threads 16

Targets, each against its own server process(es): ``echo`` (bare gRPC echo of the Evaluate
bytes: the ceiling of gRPC in Python here), ``evaluate`` and ``commit`` on the embedded store,
and on Redis (a private ``redis-server``) when the Redis store is available. For each target:
one closed-loop point (``--clients`` processes x ``--concurrency`` calls in flight) gives its
peak rate; then open-loop points at fractions of that peak (``--rates``) measure latency from
each call's intended send time. Every point records server CPU per call (from /proc, workers
included) and the load generators' own CPU. S1/S2 are judged against the echo of the same run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import demo_rules, grpc_report, suite
from benchmarks.loadgen import ClientPool, Spec, merge
from benchmarks.servers import (
    EchoServer,
    loyalty_server,
    machine_busy_s,
    redis_unavailable,
    tree_cpu_s,
)


@dataclass(frozen=True)
class Config:
    mode: str
    seconds: float = 10.0  # per point
    clients: int = 2  # load-generator processes
    concurrency: int = 8  # closed loop: calls in flight per client process
    connections: int = 2  # per client process
    rates: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1)  # open loop, x peak
    threads: int = 16  # server handler threads (per worker)
    workers: int = 1  # server processes sharing the port
    stores: tuple[str, ...] = ("embedded", "redis")
    targets: tuple[str, ...] = ("echo", "evaluate", "commit")
    members: int = 3000  # demo members the requests rotate over
    lines: int = 20  # basket lines
    offers: int = 0  # synthetic offers published on top of the demo programme's 11
    timeout_s: float = 10.0


MODES = {
    "full": Config("full"),
    "quick": Config("quick", seconds=3.0, rates=(0.5, 0.9)),
    "smoke": Config(
        "smoke",
        seconds=0.5,
        clients=1,
        concurrency=2,
        connections=1,
        rates=(0.5,),
        threads=4,
        stores=("embedded",),
        members=50,
        lines=8,
        timeout_s=5.0,
    ),
}


def _points(
    pool: ClientPool,
    name: str,
    kind: str,
    port: int,
    pids: list[int],
    cfg: Config,
    store_pids: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Closed loop once (the peak), then open loop at each fraction of that peak.
    ``store_pids``: processes besides the server's that serve each call (redis-server)."""
    base = Spec(
        port=port,
        kind=kind,
        mode="closed",
        seconds=cfg.seconds,
        concurrency=cfg.concurrency,
        connections=cfg.connections,
        members=cfg.members,
        lines=cfg.lines,
        timeout_s=cfg.timeout_s,
    )

    def point(spec: Spec) -> dict[str, Any]:
        # transaction ids: unique within the run (each run has fresh servers), and repeatable
        spec = replace(spec, run_id=f"bench-{kind}-{spec.mode}-{spec.seed}")
        cpu: list[float] = []
        parts = pool.run(
            spec,
            on_start=lambda: cpu.extend(
                (tree_cpu_s(pids), tree_cpu_s(list(store_pids)), machine_busy_s())
            ),
        )
        out = merge(parts)
        server_cpu = tree_cpu_s(pids) - cpu[0]
        store_cpu = tree_cpu_s(list(store_pids)) - cpu[1]
        # whatever else ran on the machine meanwhile: contention the figures include
        other = machine_busy_s() - cpu[2] - server_cpu - store_cpu - out["client_cpu_s"]
        out["other_cpu_cores"] = max(other, 0.0) / out["wall_s"] if out["wall_s"] else 0.0
        out.update(
            store_cpu_us_per_call=store_cpu / out["ok"] * 1e6 if out["ok"] else 0.0,
            store_cpu_cores=store_cpu / out["wall_s"] if out["wall_s"] else 0.0,
        )
        out.update(
            mode=spec.mode,
            concurrency=spec.concurrency * cfg.clients,
            offered_rps=spec.rate,
            server_cpu_s=server_cpu,
            server_cpu_cores=server_cpu / out["wall_s"] if out["wall_s"] else 0.0,
            server_cpu_us_per_call=server_cpu / out["ok"] * 1e6 if out["ok"] else 0.0,
        )
        lat = out["latency"]
        offered = (
            f"{spec.rate:,.0f}/s offered"
            if spec.mode == "open"
            else f"{out['concurrency']} in flight"
        )
        print(
            f"  {name:<18} {spec.mode:<6} {offered:>18}: {out['achieved_rps']:>8,.0f}/s  "
            f"p50 {lat['p50_us'] / 1e3:7.2f}  p99 {lat['p99_us'] / 1e3:7.2f}  "
            f"p99.9 {lat['p99.9_us'] / 1e3:7.2f} ms  server {out['server_cpu_us_per_call']:,.0f}"
            f" µs CPU/call"
            + (f" + redis {out['store_cpu_us_per_call']:,.0f}" if store_pids else "")
            + f", clients {out['client_cpu_cores']:.2f} cores, others "
            f"{out['other_cpu_cores']:.2f}"
            + (
                f", send lag p99 {out['send_lag']['p99_us'] / 1e3:.2f} ms"
                if out["send_lag"]
                else ""
            )
            + (f"  errors {out['errors']}: {out['error_details']}" if out["errors"] else ""),
            flush=True,
        )
        return out

    closed = point(replace(base, seed=len(cfg.rates)))
    peak = closed["achieved_rps"]
    open_points = [
        {**point(replace(base, mode="open", rate=f * peak, seed=k)), "fraction_of_peak": f}
        for k, f in enumerate(cfg.rates)
        if f * peak >= 1
    ]
    return {"name": name, "kind": kind, "peak_rps": peak, "closed": closed, "open": open_points}


def run(cfg: Config) -> dict[str, Any]:
    results: dict[str, Any] = {
        "config": asdict(cfg),
        "machine": suite.machine_info(),
        "targets": [],
        "skipped": {},
    }
    print(
        f"benchmarks.grpc_load ({cfg.mode}): {cfg.seconds:g} s a point, {cfg.clients} client "
        f"processes, server {cfg.workers} worker(s) x {cfg.threads} threads",
        flush=True,
    )
    with ClientPool(cfg.clients) as pool:
        if "echo" in cfg.targets:
            with EchoServer(cfg.threads, cfg.workers) as e:
                results["targets"].append(_points(pool, "echo", "echo", e.port, e.pids, cfg))
        for store in cfg.stores:
            kinds = [k for k in ("evaluate", "commit") if k in cfg.targets]
            why = redis_unavailable() if store == "redis" else None
            if why:
                print(f"  skipping the {store} store: {why}", flush=True)
                results["skipped"][store] = why
                continue
            if not kinds:
                continue
            t0 = time.perf_counter()
            with loyalty_server(store, cfg.threads, cfg.workers, cfg.members) as (s, store_pids):
                print(
                    f"  {store} server ready in {time.perf_counter() - t0:.1f} s "
                    f"(demo: {cfg.members} members)",
                    flush=True,
                )
                rules = demo_rules.publish(s.port, cfg.offers) if cfg.offers else None
                if rules:
                    print(
                        f"  published demo + {cfg.offers:,} offers: version "
                        f"{rules['version']}, compiled in {rules['compile_ms']} ms",
                        flush=True,
                    )
                results.setdefault("rules", {})[store] = rules
                for kind in kinds:
                    results["targets"].append(
                        _points(pool, f"{kind} ({store})", kind, s.port, s.pids, cfg, store_pids)
                    )
    results["machine"]["load_average_end"] = suite.load_average()
    results["goals"] = grpc_report.goals(results)
    return results


def _csv(kind: type, text: str) -> tuple:
    return tuple(kind(x) for x in text.split(",") if x)


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path]:
    p = suite.suite_parser(
        "python -m benchmarks.grpc_load", __doc__, "a few seconds a point", "tiny run for tests"
    )
    p.add_argument("--seconds", type=float, help="duration of each point (default 10)")
    p.add_argument("--clients", type=int, help="load-generator processes (default 2)")
    p.add_argument("--concurrency", type=int, help="closed loop: in flight per client (8)")
    p.add_argument("--connections", type=int, help="connections per client process (2)")
    p.add_argument(
        "--rates",
        help="open-loop rates as fractions of the closed-loop peak, "
        "comma-separated (default 0.25,0.5,0.75,0.9,1.0,1.1)",
    )
    p.add_argument("--threads", type=int, help="server handler threads per worker (16)")
    p.add_argument("--workers", type=int, help="server processes sharing the port (1)")
    p.add_argument("--store", help="stores: embedded,redis (default both; redis when available)")
    p.add_argument("--targets", help="echo,evaluate,commit (default all)")
    p.add_argument("--members", type=int, help="demo members requests rotate over (3000)")
    p.add_argument("--lines", type=int, help="basket lines (default 20)")
    p.add_argument(
        "--offers",
        type=int,
        help="rule-set size: synthetic offers published on top of the demo programme (default 0)",
    )
    a = p.parse_args(argv)
    given = {
        "seconds": a.seconds,
        "clients": a.clients,
        "concurrency": a.concurrency,
        "connections": a.connections,
        "threads": a.threads,
        "workers": a.workers,
        "members": a.members,
        "lines": a.lines,
        "offers": a.offers,
        "rates": _csv(float, a.rates) if a.rates else None,
        "stores": _csv(str, a.store) if a.store else None,
        "targets": _csv(str, a.targets) if a.targets else None,
    }
    return suite.configure(MODES, a, given), a.out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    cfg, out = parse_args(argv)
    return suite.finish(run(cfg), out, grpc_report.print_summary, grpc_report.write_all)


if __name__ == "__main__":
    main()
