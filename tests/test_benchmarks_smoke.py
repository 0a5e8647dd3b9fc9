"""The benchmarks run end to end in their tiny modes and write every output.

Figures are never asserted against goals here (docs/design.md §8: goals are measured by
``benchmarks/``, not by timed tests); only that each section exists and holds positive numbers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from concurrent import futures

import grpc
import numpy as np
import pytest

from benchmarks import grpc_load, kernel, payload
from benchmarks.cli import main as bench_main
from benchmarks.histogram import Histogram
from benchmarks.loadgen import ClientPool, Spec, merge
from benchmarks.servers import redis_unavailable
from loyalty.v1 import checkout_pb2
from server.store.redis.cluster_process import cluster_support

SECTIONS = ("config", "machine", "warm_up_s", "c1", "k1", "k2", "scaling", "goals")


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_smoke_run_writes_json_markdown_and_plots(tmp_path):
    # given a tiny run into a temporary directory
    out = tmp_path / "results"

    # when the benchmark runs in-process
    kernel.main(["--smoke", "--out", str(out)])

    # then the JSON has every section with positive figures
    data = json.loads((out / "kernel.json").read_text())
    assert all(s in data for s in SECTIONS)
    assert data["config"]["mode"] == "smoke"
    m = data["machine"]
    assert m["cpu_model"] and m["cores"] >= 1
    assert all(m[k] for k in ("python", "numpy", "numba", "polars", "date_utc"))

    k1 = data["k1"]
    for part in ("kernel", "api", "reference"):
        assert k1[part]["calls"] > 0
        assert all(_positive(k1[part][k]) for k in ("median_us", "p99_us", "mean_us"))
    assert _positive(k1["ratio_reference_to_kernel"]) and _positive(k1["ratio_reference_to_api"])
    assert k1["candidates_mean"] >= 0
    agree, tried = map(int, k1["reference_agrees"].split("/"))  # twin tests judge agreement
    assert 0 <= agree <= tried and tried > 0

    k2 = data["k2"]
    assert k2["baskets"] > 0 and 1 <= k2["mean_lines"] <= 10
    for key in (
        "encode_s",
        "decode_s",
        "parallel_kernel_baskets_per_s",
        "kernel_baskets_per_s",
        "end_to_end_baskets_per_s",
        "ratio_kernel_to_reference",
        "ratio_end_to_end_to_reference",
    ):
        assert _positive(k2[key]), key
    assert _positive(k2["reference"]["baskets_per_s"])
    assert 0 <= k2["overflowed"] <= k2["baskets"]
    agree, tried = map(int, k2["reference_agrees"].split("/"))
    assert 0 <= agree <= tried and tried > 0

    c1 = data["c1"]
    for key in (
        "compile_validated",
        "compile_unvalidated",
        "load_catalogue_csv",
        "load_catalogue_parquet",
    ):
        assert _positive(c1[key]["median_s"]), key

    scaling = data["scaling"]
    for curve, key in (("by_offers", "offers"), ("by_lines", "lines")):
        points = scaling[curve]
        assert len(points) >= 2
        assert [p[key] for p in points] == sorted(p[key] for p in points)
        assert all(_positive(p["median_us"]) and _positive(p["p99_us"]) for p in points)

    assert {g["id"] for g in data["goals"]} == {"K1", "K2", "C1"}
    assert all(isinstance(g["met"], bool) for g in data["goals"])

    # and the Markdown summary and the plots exist
    md = (out / "kernel.md").read_text()
    assert "| id | what | goal | measured | met? |" in md
    for png in ("k1_latency.png", "k2_batch.png", "scaling_offers.png", "scaling_lines.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert sorted(data["plots"]) == sorted(p.name for p in out.glob("*.png"))


def test_skip_scaling_leaves_out_the_curves(tmp_path):
    kernel.main(["--smoke", "--skip-scaling", "--out", str(tmp_path)])

    data = json.loads((tmp_path / "kernel.json").read_text())
    assert "scaling" not in data
    assert not (tmp_path / "scaling_offers.png").exists()
    assert (tmp_path / "kernel.md").exists()


def test_grpc_smoke_run_measures_echo_evaluate_and_commit(tmp_path):
    # given a tiny run: one client process, half a second a point, embedded store only
    out = tmp_path / "results"

    # when it runs (servers in their own processes, the load generator in another)
    grpc_load.main(["--smoke", "--out", str(out)])

    # then every target has a closed-loop peak and an open-loop point at half of it
    data = json.loads((out / "grpc.json").read_text())
    names = [t["name"] for t in data["targets"]]
    assert names == ["echo", "evaluate (embedded)", "commit (embedded)"]
    for t in data["targets"]:
        assert _positive(t["peak_rps"])
        points = [t["closed"], *t["open"]]
        assert [p["mode"] for p in points] == ["closed", "open"]
        assert t["open"][0]["fraction_of_peak"] == 0.5
        for p in points:
            assert p["ok"] > 0 and p["errors"] == {}, (t["name"], p["errors"])
            lat = p["latency"]
            assert 0 < lat["p50_us"] <= lat["p99_us"] <= lat["p99.9_us"] <= lat["max_us"]
            assert p["client_cpu_s"] >= 0 and p["server_cpu_s"] >= 0
            assert p["other_cpu_cores"] >= 0
            assert (p["send_lag"] is None) == (p["mode"] == "closed")
            assert Histogram.from_json(p["histogram"]).total == p["ok"]
    # S1 and S2 are stated whether or not they could be measured (Redis is not in smoke runs)
    goals = {(g["id"], g["what"].split(":")[0]): g for g in data["goals"]}
    assert goals[("S1", "evaluate (embedded)")]["met"] in (True, False)
    assert goals[("S2", "commit (redis)")]["met"] is None
    md = (out / "grpc.md").read_text()
    assert "| id | what | goal | measured | met? |" in md
    for png in ("grpc_latency_vs_rate.png", "grpc_percentiles.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


@pytest.mark.skipif(redis_unavailable() is not None, reason=str(redis_unavailable()))
def test_grpc_smoke_run_measures_commit_on_redis(tmp_path):
    # given a private redis-server behind the service (the benchmark starts both)
    grpc_load.main(["--smoke", "--store", "redis", "--targets", "commit", "--out", str(tmp_path)])

    # then Commit on Redis has its points, the redis-server's CPU apart, and S2 is judged
    data = json.loads((tmp_path / "grpc.json").read_text())
    (t,) = data["targets"]
    assert t["name"] == "commit (redis)"
    for p in [t["closed"], *t["open"]]:
        assert p["ok"] > 0 and p["errors"] == {}, p["errors"]
        assert p["store_cpu_us_per_call"] >= 0
    s2 = [g for g in data["goals"] if g["id"] == "S2"]
    assert [g["met"] is None for g in s2] == [True, False]  # no echo in this run: no ratio


@pytest.mark.skipif(cluster_support() is not None, reason=str(cluster_support()))
def test_cluster_smoke_run_measures_memory_balance_and_sizing(tmp_path):
    # given a private 3-primary cluster (the benchmark starts it) and no servers (smoke)
    from benchmarks import cluster

    cluster.main(["--smoke", "--out", str(tmp_path)])

    # then M1, the spread over the primaries and a sizing table are written
    data = json.loads((tmp_path / "cluster.json").read_text())
    mem = data["memory"]
    assert mem["members"] == 300 and _positive(mem["bytes_per_member"])
    assert sum(p["home_slots"] for p in mem["per_primary"]) == 256
    assert all(p["keys"] > 0 for p in mem["per_primary"])
    assert data["sizing"]["primaries"] >= 3 and data["rows"] == []
    assert "| **primaries** (nodes with replicas) |" in (tmp_path / "cluster.md").read_text()


@pytest.fixture
def slow_echo():
    """A one-thread echo server that takes at least 20 ms a call: 50 calls/s at the most."""

    def handle(request: bytes, context) -> bytes:
        time.sleep(0.02)
        return request

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(handle)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def test_open_loop_counts_queueing_from_the_intended_send_time(slow_echo):
    # given 100 calls offered over about a second: twice what the server can answer
    spec = Spec(
        port=slow_echo,
        kind="echo",
        mode="open",
        rate=100,
        seconds=1.0,
        connections=1,
        members=10,
        lines=4,
    )

    # when the open-loop generator sends them on schedule
    with ClientPool(1) as pool:
        point = merge(pool.run(spec))

    # then later calls waited behind earlier ones and that wait is in their latency: call k
    # cannot finish before (k + 1 + warm-up) x 20 ms, yet was meant to leave at ~k x 10 ms, so
    # half of them took at least ~0.5 s (a closed loop would have shown ~20 ms for every call)
    assert point["ok"] == 100 and point["errors"] == {}
    assert point["latency"]["p50_us"] >= 250_000
    assert point["latency"]["max_us"] >= 700_000


def test_histogram_percentiles_are_within_one_percent_and_merge():
    # given two halves of a long-tailed sample of latencies in nanoseconds
    rng = np.random.default_rng(1)
    ns = (rng.lognormal(13, 0.8, 20_000)).astype(np.int64)
    a, b = Histogram().record(ns[:10_000]), Histogram().record(ns[10_000:])

    # when they are merged, also through their JSON form
    merged = Histogram.from_json(a.to_json()).merge(b)

    # then percentiles agree with the exact ones to ~1% and the maximum is exact
    assert merged.total == len(ns)
    for q in (50, 90, 99, 99.9):
        exact = np.percentile(ns, q, method="inverted_cdf") / 1e3
        assert abs(merged.percentile_us(q) - exact) <= 0.011 * exact, q
    assert merged.percentile_us(100) == ns.max() / 1e3


def test_commit_bytes_are_a_commit_request_with_the_evaluate_basket():
    evaluate = payload.evaluate_request("M10004", 20)
    raw = payload.commit_bytes("tx-1", payload.basket_field(evaluate.SerializeToString()))

    parsed = checkout_pb2.CommitRequest.FromString(raw)

    assert parsed.transaction_id == "tx-1"
    assert parsed.basket == evaluate
    assert len(evaluate.lines) == 20 and evaluate.lines[0].sku == "CREAM-50"


def test_bench_command_passes_a_suite_its_own_options(monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr(grpc_load, "main", lambda argv: seen.append(argv))

    assert bench_main(["grpc", "--smoke", "--workers", "2"]) == 0
    assert seen == [["--smoke", "--workers", "2"]]


def test_the_product_does_not_import_its_benchmarks():
    code = (
        "import sys, engine, server.api.app, server.cli.main, server.store.redis.store; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'benchmarks'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
