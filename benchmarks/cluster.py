"""Redis Cluster sizing: 1 Redis against a 3-primary cluster, in one run.

    python -m benchmarks.cluster [--quick | --smoke] [--seconds N] [--targets T,...] [--out DIR]

For each target — ``single`` (one redis-server), ``cluster`` (3 primaries, no replicas: the
like-for-like comparison, ``--redis-wait-replicas 0``) and ``cluster-replicas`` (3 primaries
with a replica each, commits waiting for one: the production shape) — it loads the demo
programme and members, starts the same ``loyalty serve --workers N`` processes and drives
distinct Commits closed loop with ``benchmarks.h2fleet`` (the ceiling suite's h2client), then
reads commits/s, the servers' CPU and Redis's CPU (every node's process) per commit, and
Redis memory per stored commit. The demo is loaded the same way on every target, by the
benchmark (its loading is not measured). M1 on the cluster: ``INFO memory`` used_memory summed
over the primaries before and after importing N members (``benchmarks.redis_memory``'s
members), divided by N; keys and memory per primary show how evenly the 256 home slots spread.
From the per-shard figures it derives a sizing table for 50 million members and 20,000 lanes
(assumptions in :data:`SIZING`). Results: ``benchmarks/results/cluster.{json,md}``. Figures are
compared within one run (the machine is shared: load averages are recorded); nothing asserts
timings.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import redis

from benchmarks import ceiling, suite
from benchmarks.redis_memory import profiles
from benchmarks.servers import LoyaltyServer
from server.settings import Settings
from server.store.redis.cluster_process import ClusterProcess
from server.store.redis.process import RedisProcess
from server.store.redis.store import RedisStore

TARGETS = ("single", "cluster", "cluster-replicas")
# the sizing table's assumptions: what each lane does at peak, what a primary may hold and how
# busy it and a server core may run at peak
SIZING = {
    "members": 50_000_000,
    "lanes": 20_000,
    "commits_per_lane_per_s_at_peak": 0.1,  # a commit every 10 s per lane at the peak hour
    "commits_per_lane_per_day": 300,
    "retention_days": 60,  # LOYALTY_TX_RETENTION_S's default
    "data_bytes_per_primary": 16 * 2**30,  # leaves room for fork/AOF rewrite on a 32 GiB node
    "redis_busy_at_peak": 0.5,  # a primary's main thread at most half busy at the peak
    "server_core_busy_at_peak": 0.6,
    "replicas_per_primary": 1,
}


@dataclass(frozen=True)
class Config:
    mode: str
    seconds: float = 10.0  # measured commits per target
    warmup_s: float = 2.0
    members: int = 3000  # demo members the commits rotate over
    memory_members: int = 100_000  # M1 on the cluster
    lines: int = 20
    connections: int = max(4, 2 * ceiling.CORES)
    streams: int = 8
    workers: int = ceiling.CORES
    threads: int = Settings().threads
    targets: tuple[str, ...] = TARGETS
    timeout_s: float = 10.0


MODES = {
    "full": Config("full"),
    "quick": Config("quick", seconds=3.0, warmup_s=1.0, members=1000, memory_members=20_000),
    # memory, balance and sizing only: no servers (tests/test_benchmarks_smoke.py)
    "smoke": Config("smoke", seconds=0.0, members=50, memory_members=300, targets=()),
}


@contextlib.contextmanager
def redis_target(target: str) -> Iterator[tuple[str, bool, list[redis.Redis], list[int]]]:
    """The Redis of ``target``: its URL, whether it is a cluster, a client per primary and
    the pids of every node (replicas too: their CPU is the cluster's cost)."""
    if target == "single":
        with RedisProcess() as r:
            client = redis.Redis.from_url(r.url)
            try:
                yield r.url, False, [client], [r.proc.pid] if r.proc else []
            finally:
                client.close()
        return
    with ClusterProcess(replicas=1 if target == "cluster-replicas" else 0) as c:
        clients = [redis.Redis(port=n.port) for n in c.nodes]
        primaries = [x for x in clients if x.info("replication")["role"] == "master"]
        try:
            yield c.url, True, primaries, [n.proc.pid for n in c.nodes if n.proc]
        finally:
            for x in clients:
                x.close()


def settings(url: str, cluster: bool, prefix: str = "loyalty:") -> Settings:
    """The store's settings; loads wait for no replica (only commits are measured)."""
    return Settings(store="redis").replace(
        redis_url=url, redis_cluster=cluster, redis_prefix=prefix, redis_wait_replicas=0
    )


def load(url: str, cluster: bool, members: int) -> None:
    """The demo programme and ``members`` members, the same way on every target."""
    from server.api.app import open_state
    from server.cli.demo import load_demo

    registry, store = open_state(settings(url, cluster), watch=False)
    try:
        load_demo(registry, store, members=members)
    finally:
        registry.close()
        store.close()


def used_memory(primaries: Sequence[redis.Redis]) -> list[int]:
    return [int(p.info("memory")["used_memory"]) for p in primaries]


def throughput(cfg: Config, target: str) -> dict[str, Any]:
    """Closed-loop commits on ``target``: rate, latency, CPU and memory per commit."""
    with redis_target(target) as (url, cluster, primaries, pids):
        load(url, cluster, cfg.members)
        extra = ("--redis-wait-replicas", "0") if target == "cluster" else ()
        with LoyaltyServer(
            "redis",
            cfg.threads,
            cfg.workers,
            cfg.members,
            redis_url=url,
            cluster=cluster,
            demo=False,
            extra_args=extra,
        ) as s:
            meter = ceiling.Meter(s.pids, ceiling._workers(s.pids[0]) or s.pids, pids)
            shape = ceiling.Config(
                target,
                seconds=cfg.seconds,
                warmup_s=cfg.warmup_s,
                connections=cfg.connections,
                streams=cfg.streams,
                timeout_s=cfg.timeout_s,
            )
            procs = min(ceiling.CORES, cfg.connections)
            commits = partial(
                ceiling.commit_messages, run_id=target, members=cfg.members, lines=cfg.lines
            )
            before = used_memory(primaries)
            row = ceiling._h2client(
                shape,
                s.port,
                ceiling.COMMIT,
                commits,
                meter,
                count=int(2000 * (cfg.seconds + cfg.warmup_s) / procs) + 1000,
                cycle=False,
            )
            after = used_memory(primaries)
    stored = row["ok"] + row["errors"]
    return {
        "target": target,
        "primaries": len(primaries),
        "nodes": len(pids),
        "commits_per_s": row["rps"],
        "errors": row["errors"],
        "p50_ms": row["latency"]["p50_us"] / 1e3,
        "p99_ms": row["latency"]["p99_us"] / 1e3,
        "server_cpu_us_per_commit": row["server_cpu_us_per_call"],
        "redis_cpu_us_per_commit": row["store_cpu_us_per_call"],
        "redis_bytes_per_commit": (sum(after) - sum(before)) / stored if stored else 0.0,
        "worker_cpu_shares": row["worker_cpu_shares"],
    }


def memory(cfg: Config) -> dict[str, Any]:
    """M1 on a 3-primary cluster, and how evenly members spread over the primaries."""
    with redis_target("cluster") as (url, _, primaries, _pids):
        before = used_memory(primaries)
        store = RedisStore(settings=settings(url, True).redis)
        start = time.perf_counter()
        store.import_members(profiles(cfg.memory_members), datetime.now(UTC))
        seconds = time.perf_counter() - start
        after = used_memory(primaries)
        cluster = store.client
        assert isinstance(cluster, redis.RedisCluster)
        ports = [p.connection_pool.connection_kwargs["port"] for p in primaries]
        homes = [0] * len(primaries)
        for k in range(store.keys.shards):
            port = cluster.get_node_from_key(f"x{{s{k}}}").port
            homes[ports.index(port)] += 1
        keys = [int(p.dbsize()) for p in primaries]
        store.close()
    grown = [b - a for a, b in zip(before, after, strict=True)]
    n = cfg.memory_members
    return {
        "members": n,
        "load_seconds": round(seconds, 2),
        "bytes_per_member": round(sum(grown) / n, 1),
        "per_primary": [
            {"home_slots": h, "keys": k, "used_memory_grown": g}
            for h, k, g in zip(homes, keys, grown, strict=True)
        ],
        "keys_max_over_mean": round(max(keys) / (sum(keys) / len(keys)), 3) if sum(keys) else 0,
    }


def sizing(mem: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Shards, memory and server processes for :data:`SIZING`'s programme, from the
    measured per-member, per-commit and per-shard figures (the production shape's commit
    row, or the like-for-like cluster's when the replicas were not measured)."""
    a = SIZING
    by = {r["target"]: r for r in rows}
    row = by.get("cluster-replicas") or by.get("cluster")  # CPU: the production shape's
    # bytes: the like-for-like cluster's (a primary with replicas adds its backlog buffer)
    stored = by.get("cluster") or row
    peak = a["lanes"] * a["commits_per_lane_per_s_at_peak"]
    kept = a["lanes"] * a["commits_per_lane_per_day"] * a["retention_days"]
    member_bytes = mem["bytes_per_member"] * a["members"]
    commit_bytes = (stored["redis_bytes_per_commit"] if stored else 0.0) * kept
    data = member_bytes + commit_bytes
    for_memory = math.ceil(data / a["data_bytes_per_primary"])
    out: dict[str, Any] = {
        "assumptions": a,
        "peak_commits_per_s": peak,
        "commits_kept": kept,
        "member_data_gib": round(member_bytes / 2**30, 1),
        "commit_data_gib": round(commit_bytes / 2**30, 1),
        "primaries_for_members_only": math.ceil(member_bytes / a["data_bytes_per_primary"]),
        "primaries_for_memory": for_memory,
        "from": row["target"] if row else None,
    }
    if row:
        # every node's Redis CPU counted as the primaries' (replicas' share included: safe)
        redis_s = peak * row["redis_cpu_us_per_commit"] / 1e6
        for_cpu = math.ceil(redis_s / a["redis_busy_at_peak"])
        server_s = peak * row["server_cpu_us_per_commit"] / 1e6
        server_cores = math.ceil(server_s / a["server_core_busy_at_peak"])
        out.update(
            redis_cpu_cores_at_peak=round(redis_s, 1),
            primaries_for_cpu=for_cpu,
            server_cores=server_cores,
        )
    primaries = max(3, for_memory, out.get("primaries_for_cpu", 0))
    out["primaries"] = primaries
    out["nodes"] = primaries * (1 + a["replicas_per_primary"])
    out["memory_per_primary_gib"] = round(data / primaries / 2**30, 1)
    return out


def run(cfg: Config) -> dict[str, Any]:
    results: dict[str, Any] = {"config": asdict(cfg), "machine": suite.machine_info(), "rows": []}
    print(f"benchmarks.cluster ({cfg.mode}): targets {', '.join(cfg.targets) or 'none'}")
    for target in cfg.targets:
        row = throughput(cfg, target)
        row["load_average"] = suite.load_average()
        results["rows"].append(row)
        print(
            f"  {target:<17} {row['commits_per_s']:>7,.0f} commits/s  p50 {row['p50_ms']:.1f} "
            f"p99 {row['p99_ms']:.1f} ms  CPU/commit: servers "
            f"{row['server_cpu_us_per_commit']:,.0f} µs, Redis "
            f"{row['redis_cpu_us_per_commit']:,.0f} µs; "
            f"{row['redis_bytes_per_commit']:,.0f} B/commit; errors {row['errors']}; "
            f"load {row['load_average']}",
            flush=True,
        )
    results["memory"] = memory(cfg)
    results["sizing"] = sizing(results["memory"], results["rows"])
    results["machine"]["load_average_end"] = suite.load_average()
    return results


def markdown(r: dict[str, Any]) -> str:
    m, mem, size = r["machine"], r["memory"], r["sizing"]
    out = [
        "# Redis Cluster: commits, Redis CPU, memory and sizing",
        "",
        f"{suite.machine_line(m)}; {m['date_utc']}; mode {r['config']['mode']}; load average "
        f"{m['load_average_start']} at the start, {m.get('load_average_end')} at the end "
        "(a shared machine: compare within this run).",
        "",
    ]
    if r["rows"]:
        out += [
            f"Closed-loop Commits (h2client, {r['config']['connections']} connections x "
            f"{r['config']['streams']} streams), `loyalty serve --workers "
            f"{r['config']['workers']}`, {r['config']['seconds']:g} s per target:",
            "",
            "| target | primaries / nodes | commits/s | p50 / p99 ms | server CPU µs/commit "
            "| Redis CPU µs/commit | Redis bytes/commit | errors | load average |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {x['target']} | {x['primaries']} / {x['nodes']} | {x['commits_per_s']:,.0f} | "
            f"{x['p50_ms']:.1f} / {x['p99_ms']:.1f} | {x['server_cpu_us_per_commit']:,.0f} | "
            f"{x['redis_cpu_us_per_commit']:,.0f} | {x['redis_bytes_per_commit']:,.0f} | "
            f"{x['errors']} | {x['load_average']} |"
            for x in r["rows"]
        ]
        out.append("")
    out += [
        f"M1 on the cluster: **{mem['bytes_per_member']} bytes per member** "
        f"({mem['members']:,} members, used_memory summed over 3 primaries).",
        "",
        "| primary | home slots (of 256) | keys | used_memory grown |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {i + 1} | {p['home_slots']} | {p['keys']:,} | {p['used_memory_grown']:,} |"
        for i, p in enumerate(mem["per_primary"])
    ]
    a = size["assumptions"]
    out += [
        "",
        f"Keys, largest primary over the mean: {mem['keys_max_over_mean']}.",
        "",
        f"Sizing for {a['members']:,} members and {a['lanes']:,} lanes (a commit every "
        f"{1 / a['commits_per_lane_per_s_at_peak']:g} s per lane at the peak: "
        f"{size['peak_commits_per_s']:,.0f} commits/s; {a['commits_per_lane_per_day']} commits "
        f"per lane a day kept {a['retention_days']} days; at most "
        f"{a['data_bytes_per_primary'] / 2**30:g} GiB of data per primary, Redis "
        f"{a['redis_busy_at_peak']:.0%} and server cores {a['server_core_busy_at_peak']:.0%} busy "
        f"at the peak; from the `{size['from']}` row):",
        "",
        "| figure | value |",
        "|---|---|",
        f"| member data | {size['member_data_gib']} GiB |",
        f"| transactions kept ({size['commits_kept']:,}) | {size['commit_data_gib']} GiB |",
        f"| primaries for the members alone | {size['primaries_for_members_only']} |",
        f"| primaries for memory | {size['primaries_for_memory']} |",
    ]
    if "primaries_for_cpu" in size:
        out += [
            f"| Redis CPU at the peak | {size['redis_cpu_cores_at_peak']} cores |",
            f"| primaries for CPU | {size['primaries_for_cpu']} |",
            f"| server cores (`loyalty serve` workers) | {size['server_cores']} |",
        ]
    out += [
        f"| **primaries** (nodes with replicas) | **{size['primaries']}** ({size['nodes']}) |",
        f"| data per primary | {size['memory_per_primary_gib']} GiB |",
        "",
    ]
    return "\n".join(out)


def print_summary(r: dict[str, Any]) -> None:
    mem, size = r["memory"], r["sizing"]
    print(
        f"M1 on the cluster: {mem['bytes_per_member']} bytes per member; keys max/mean "
        f"{mem['keys_max_over_mean']}; sizing: {size['primaries']} primaries "
        f"({size['nodes']} nodes), {size.get('server_cores', '?')} server cores"
    )


def write_all(r: dict[str, Any], out: Path) -> list[Path]:
    return suite.write_outputs(r, out, "cluster", lambda _r, _o: [], markdown)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = suite.suite_parser(
        "python -m benchmarks.cluster", __doc__, "3 s per target, 20,000 members", "memory only"
    )
    p.add_argument("--seconds", type=float, help="measured seconds per target (default 10)")
    p.add_argument("--targets", help=f"of {','.join(TARGETS)} (default all)")
    a = p.parse_args(argv)
    given = {
        "seconds": a.seconds,
        "targets": tuple(x for x in a.targets.split(",") if x) if a.targets else None,
    }
    return suite.finish(run(suite.configure(MODES, a, given)), a.out, print_summary, write_all)


if __name__ == "__main__":
    main()
