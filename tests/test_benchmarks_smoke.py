"""The kernel benchmark runs end to end in its tiny mode and writes every output.

Figures are never asserted against goals here (DESIGN.md §8: goals are measured by
``benchmarks/``, not by timed tests); only that each section exists and holds positive numbers.
"""

from __future__ import annotations

import json
import math

from benchmarks import kernel

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
    for key in ("encode_s", "decode_s", "parallel_kernel_baskets_per_s", "kernel_baskets_per_s",
                "end_to_end_baskets_per_s", "ratio_kernel_to_reference",
                "ratio_end_to_end_to_reference"):
        assert _positive(k2[key]), key
    assert _positive(k2["reference"]["baskets_per_s"])
    assert 0 <= k2["overflowed"] <= k2["baskets"]
    agree, tried = map(int, k2["reference_agrees"].split("/"))
    assert 0 <= agree <= tried and tried > 0

    c1 = data["c1"]
    for key in ("compile_validated", "compile_unvalidated", "load_catalogue_csv",
                "load_catalogue_parquet"):
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
    for png in ("k1_latency.png", "scaling_offers.png", "scaling_lines.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert sorted(data["plots"]) == sorted(p.name for p in out.glob("*.png"))


def test_skip_scaling_leaves_out_the_curves(tmp_path):
    kernel.main(["--smoke", "--skip-scaling", "--out", str(tmp_path)])

    data = json.loads((tmp_path / "kernel.json").read_text())
    assert "scaling" not in data
    assert not (tmp_path / "scaling_offers.png").exists()
    assert (tmp_path / "kernel.md").exists()
