"""The plots of ``benchmarks.kernel`` (:func:`benchmarks.kernel_report.write_all` writes them):
K1's latency percentiles, K2's batch cost and throughput, and the scaling curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter

from benchmarks.suite import machine_line, plain_y, plt


def plots(r: dict[str, Any], out: Path) -> list[Path]:
    paths = [_percentile_plot(r, out / "k1_latency.png")]
    if r.get("k2"):
        paths.append(_k2_plot(r, out / "k2_batch.png"))
    sc = r.get("scaling")
    if sc:
        where = machine_line(r["machine"])
        paths.append(
            _scaling_plot(
                sc["by_offers"],
                "offers",
                "active offers",
                f"Kernel latency vs active offers ({sc['by_offers'][0]['lines']}-line basket, "
                f"{sc['skus']:,} skus)\n{where}",
                out / "scaling_offers.png",
            )
        )
        paths.append(
            _scaling_plot(
                sc["by_lines"],
                "lines",
                "basket lines",
                f"Kernel latency vs basket lines ({sc['by_lines'][0]['offers']:,} offers)\n{where}",
                out / "scaling_lines.png",
            )
        )
    return paths


def _scaling_plot(points: list[dict], key: str, xlabel: str, title: str, path: Path) -> Path:
    x = [p[key] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(x, [p["median_us"] for p in points], "o-", label="median")
    ax.plot(x, [p["p99_us"] for p in points], "s--", label="p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{v:,}" for v in x])
    ax.xaxis.set_minor_formatter(NullFormatter())
    plain_y(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("kernel latency per basket (µs)")
    ax.grid(True, which="both", alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(
        x,
        [p["candidates_mean"] for p in points],
        "^:",
        color="tab:green",
        label="candidate offers (mean)",
    )
    ax2.set_ylabel("candidate offers per basket")
    cands = [p["candidates_mean"] for p in points]
    if min(cands) > 0 and max(cands) > 20 * min(cands):
        ax2.set_yscale("log")
        plain_y(ax2)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [str(h.get_label()) for h in handles], loc="upper left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _percentile_plot(r: dict[str, Any], path: Path) -> Path:
    k1 = r["k1"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, label in (("kernel", "kernel alone (pre-encoded)"), ("api", "engine.price()")):
        pct = k1[name]["percentiles_us"]
        ax.plot([float(p) for p in pct], list(pct.values()), "o-", label=label)
    ax.axhline(20, color="tab:red", ls=":", label="K1 goal (median 20 µs)")
    ax.set_yscale("log")
    plain_y(ax)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency per basket (µs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(
        f"K1 latency percentiles: {k1['lines']}-line basket, {k1['offers']:,} offers, "
        f"{k1['skus']:,} skus\n{machine_line(r['machine'])}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _k2_plot(r: dict[str, Any], path: Path) -> Path:
    """K2 in two panels: per-basket cost by batch size against one call per basket, and the
    batch's throughput at each step (kernel alone, with retries and rows, frames to frames)
    against the goal."""
    k2 = r["k2"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    sizes = k2["by_batch_size"]
    x = [str(p["batch_size"]) for p in sizes]
    at = np.arange(len(x))
    left.bar(at - 0.2, [p["batch_us_per_basket"] for p in sizes], 0.4, label="run_batch")
    left.bar(at + 0.2, [p["single_us_per_basket"] for p in sizes], 0.4, label="one call each")
    left.set_xticks(at, x)
    left.set_xlabel("baskets per batch")
    left.set_ylabel("µs per basket")
    left.grid(True, axis="y", alpha=0.3)
    left.legend()
    left.set_title("per basket, batch against single calls", fontsize=10)
    steps = (
        ("price_many\nalone", k2["parallel_kernel_baskets_per_s"]),
        ("run_batch", k2["kernel_baskets_per_s"]),
        ("frames to\nframes", k2["end_to_end_baskets_per_s"]),
    )
    bars = right.bar([s for s, _ in steps], [v for _, v in steps], color="tab:green")
    right.bar_label(bars, [f"{v:,.0f}" for _, v in steps], fontsize=9)
    right.axhline(1_000_000, color="tab:red", ls=":", label="K2 goal (1,000,000 /s)")
    right.set_ylim(0, 1_100_000)
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    right.set_ylabel("baskets per second")
    right.grid(True, axis="y", alpha=0.3)
    right.legend(loc="upper right")
    right.set_title(f"{k2['baskets']:,} baskets, {k2['offers']:,} offers", fontsize=10)
    fig.suptitle(f"K2 batch scoring\n{machine_line(r['machine'])}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
