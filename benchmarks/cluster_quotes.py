"""Quote latency in process with and without the member cache, on one Redis and on a cluster.

``python -m benchmarks cluster-quotes [--quotes N] [--out DIR]``: starts a private Redis and a
private 3-primary cluster (3 replicas) on loopback, enrols one member with a purchase and a
coupon code, and times N quotes of that member (``RedisStore.pricing_state``: what a quote
reads from the store and the pricing state built from it, the member's code presented) on
each target with the cache on and off. Prints the median and the 99th percentile in
microseconds and writes ``cluster-quotes.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import engine
from server.settings import RedisSettings
from server.store import MemberProfile
from server.store.checkout import commit
from server.store.policy import Policy
from server.store.redis.cluster_process import ClusterProcess
from server.store.redis.process import RedisProcess
from server.store.redis.store import RedisStore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
T0 = datetime(2025, 3, 12, 4, 0, tzinfo=UTC)
LINES = (("1", "CREAM-50", 2, 5990), ("2", "COLA-330", 3, 350), ("4", "PANADOL-20", 3, 2680))


def prepare(store: RedisStore, compiled: engine.CompiledRules, policy: Policy) -> None:
    """One member with a purchase behind it, and a coupon code with uses left."""
    store.upsert_member(MemberProfile("bench-1", tier="member", birthday_month=7), T0)
    store.create_codes(
        "panadol-coupon", ["BENCH-1"], 1000, False, T0 - timedelta(1), T0 + timedelta(1)
    )
    basket = engine.Basket(tuple(engine.Line(*x) for x in LINES), T0, "SH-001", "pos")

    def price(state: Any) -> engine.PricingResult:
        return engine.price(
            compiled, basket, state.member, coupons=state.coupons, limits=state.limits
        )

    commit(
        store,
        "bench-tx-1",
        "bench",
        price,
        T0,
        policy=policy,
        basket=basket,
        member_id="bench-1",
        coupon_codes=["BENCH-1"],
    )


def time_quotes(store: RedisStore, policy: Policy, n: int) -> dict[str, float]:
    quote = (policy, "bench-1", None, ["BENCH-1"], T0)
    for _ in range(50):  # warm: connections, the tracking connections, the cache
        store.pricing_state(*quote)
    if store.io.cache is not None:
        assert store.io.cache.wait_ready(10.0)
        store.pricing_state(*quote)
    took = []
    for _ in range(n):
        start = time.perf_counter_ns()
        store.pricing_state(*quote)
        took.append((time.perf_counter_ns() - start) / 1000)
    took.sort()
    return {
        "median_us": round(statistics.median(took), 1),
        "p99_us": round(took[int(0.99 * (n - 1))], 1),
    }


def measure(url: str, cluster: bool, n: int) -> dict[str, Any]:
    rules = engine.load_rules(EXAMPLES / "watsons.yaml")
    compiled = engine.compile_rules(rules, engine.load_catalogue(EXAMPLES / "catalogue.csv"))
    policy = Policy.from_rules(rules)
    out: dict[str, Any] = {}
    for cached in (True, False):
        settings = RedisSettings(url=url, cluster=cluster, prefix="bq:", member_cache=cached)
        with RedisStore(settings=settings, sweep_s=0) as store:
            if cached:
                prepare(store, compiled, policy)
            out["cache" if cached else "no cache"] = time_quotes(store, policy, n)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks cluster-quotes")
    parser.add_argument("--quotes", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"quotes": args.quotes, "at": datetime.now(UTC).isoformat()}
    with RedisProcess() as single:
        result["single"] = measure(single.url, False, args.quotes)
    with ClusterProcess() as cluster:
        result["cluster"] = measure(cluster.url, True, args.quotes)
    for target in ("single", "cluster"):
        for mode, row in result[target].items():
            median, p99 = row["median_us"], row["p99_us"]
            print(f"{target:8} {mode:9} median {median:8.1f} µs  p99 {p99:8.1f} µs")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cluster-quotes.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
