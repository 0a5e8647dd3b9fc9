"""What ``benchmarks.grpc_load`` writes: the S1/S2 verdicts, a printed table, ``grpc.json``,
``grpc.md`` and two plots (latency against offered rate; latency percentiles at half peak)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.histogram import Histogram
from benchmarks.suite import machine_line, plain_y, plt, write_outputs

HALF = 0.5  # S1/S2 read latency at half the target's own peak rate


def _target(r: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((t for t in r["targets"] if t["name"] == name), None)


def at_fraction(t: dict[str, Any], f: float) -> dict[str, Any] | None:
    return next((p for p in t["open"] if abs(p.get("fraction_of_peak", -1) - f) < 1e-9), None)


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """S1 and S2 (docs/design.md §8) against this run's echo; ``met`` is None when not measured.
    Commit on the embedded store is shown against S2's bar for comparison (S2 is Redis)."""
    echo = _target(r, "echo")
    comparable = r["config"]["mode"] != "smoke"
    out = []
    for gid, name, share, p99_ms in (
        ("S1", "evaluate (embedded)", 0.8, 3.0),
        ("S2", "commit (redis)", 0.5, 5.0),
        ("(S2)", "commit (embedded)", 0.5, 5.0),
    ):
        t = _target(r, name)
        why = (
            ""
            if t and echo
            else r["skipped"].get(name.split("(")[1].rstrip(")")) or "not in this run"
        )
        if t and echo and echo["peak_rps"] > 0:
            ratio = t["peak_rps"] / echo["peak_rps"]
            out.append(
                {
                    "id": gid,
                    "what": f"{name}: peak throughput vs echo, same run",
                    "goal": f">= {share:.0%} of echo",
                    "value": ratio,
                    "measured": f"{ratio:.0%} ({t['peak_rps']:,.0f} vs "
                    f"{echo['peak_rps']:,.0f} req/s)",
                    "met": ratio >= share,
                    "comparable": comparable,
                }
            )
        else:
            out.append(
                {
                    "id": gid,
                    "what": f"{name}: peak throughput vs echo",
                    "goal": f">= {share:.0%} of echo",
                    "value": None,
                    "measured": f"not measured: {why}",
                    "met": None,
                    "comparable": comparable,
                }
            )
        half = at_fraction(t, HALF) if t else None
        if half:
            p99 = half["latency"]["p99_us"] / 1e3
            out.append(
                {
                    "id": gid,
                    "what": f"{name}: open-loop p99 at half its peak",
                    "goal": f"<= {p99_ms:g} ms",
                    "value": p99,
                    "measured": f"{p99:.2f} ms at {half['achieved_rps']:,.0f} req/s",
                    "met": p99 <= p99_ms,
                    "comparable": comparable,
                }
            )
        else:
            out.append(
                {
                    "id": gid,
                    "what": f"{name}: open-loop p99 at half its peak",
                    "goal": f"<= {p99_ms:g} ms",
                    "value": None,
                    "measured": f"not measured: {why or 'no 0.5 rate in --rates'}",
                    "met": None,
                    "comparable": comparable,
                }
            )
    return out


def other_cores(r: dict[str, Any]) -> float:
    """Mean CPU (in cores) that processes outside the benchmark used during its points."""
    pts = [p for t in r["targets"] for p in [t["closed"], *t["open"]]]
    return sum(p.get("other_cpu_cores", 0.0) for p in pts) / len(pts) if pts else 0.0


def _verdict(g: dict[str, Any]) -> str:
    v = {True: "met", False: "NOT met", None: "-"}[g["met"]]
    return v if g["comparable"] or g["met"] is None else f"{v} (smoke sizes)"


def rows(r: dict[str, Any]) -> list[list[str]]:
    """One row per point: target, loop, offered, achieved, p50/p99/p99.9, CPU, ratio to echo."""
    echo = _target(r, "echo")
    echo_cpu = echo["closed"]["server_cpu_us_per_call"] if echo else 0.0
    out = []
    for t in r["targets"]:
        for p in [t["closed"], *t["open"]]:
            lat = p["latency"]
            offered = (
                f"{p['concurrency']} in flight"
                if p["mode"] == "closed"
                else f"{p['offered_rps']:,.0f}/s ({p['fraction_of_peak']:g}x)"
            )
            ratio = (
                f"{p['achieved_rps'] / echo['peak_rps']:.0%}"
                if echo and p["mode"] == "closed" and echo["peak_rps"]
                else ""
            )
            cpu_ratio = (
                f"{p['server_cpu_us_per_call'] / echo_cpu:.1f}x"
                if echo_cpu and p["mode"] == "closed"
                else ""
            )
            errors = sum(p["errors"].values())
            lag = f"{p['send_lag']['p99_us'] / 1e3:.2f}" if p.get("send_lag") else ""
            store = p.get("store_cpu_us_per_call")
            out.append(
                [
                    t["name"],
                    p["mode"],
                    offered,
                    f"{p['achieved_rps']:,.0f}",
                    f"{lat['p50_us'] / 1e3:.2f}",
                    f"{lat['p99_us'] / 1e3:.2f}",
                    f"{lat['p99.9_us'] / 1e3:.2f}",
                    f"{p['server_cpu_us_per_call']:,.0f}",
                    f"{store:,.0f}" if store else "",
                    f"{p['server_cpu_cores']:.2f}",
                    f"{p['client_cpu_cores']:.2f}",
                    f"{p.get('other_cpu_cores', 0.0):.2f}",
                    lag,
                    ratio,
                    cpu_ratio,
                    str(errors),
                ]
            )
    return out


HEADER = [
    "target",
    "loop",
    "offered",
    "achieved/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "server µs CPU/call",
    "redis µs CPU/call",
    "server cores",
    "client cores",
    "other cores",
    "send lag p99 ms",
    "peak vs echo",
    "CPU/call vs echo",
    "errors",
]


def summary_rows(r: dict[str, Any]) -> list[str]:
    """One Markdown row per target: peak, ratio to echo, CPU per call, latency at half peak."""
    echo = _target(r, "echo")
    out = [
        "| target | peak req/s (closed loop) | vs echo | server CPU per call | "
        "at half peak (open loop): req/s, p50 / p99 / p99.9 ms | clients; other processes; "
        "send lag p99 |",
        "|---|---|---|---|---|---|",
    ]
    for t in r["targets"]:
        c, h = t["closed"], at_fraction(t, HALF)
        cpu = f"{c['server_cpu_us_per_call']:,.0f} µs"
        if c.get("store_cpu_us_per_call"):
            cpu += f" + redis {c['store_cpu_us_per_call']:,.0f} µs"
        ratio = f"{t['peak_rps'] / echo['peak_rps']:.0%}" if echo and echo["peak_rps"] else ""
        half = lag = ""
        if h:
            lat = h["latency"]
            half = (
                f"{h['achieved_rps']:,.0f}: {lat['p50_us'] / 1e3:.1f} / "
                f"{lat['p99_us'] / 1e3:.1f} / {lat['p99.9_us'] / 1e3:.1f}"
            )
            lag = (
                f"{h['client_cpu_cores']:.2f} cores; {h.get('other_cpu_cores', 0.0):.2f} "
                f"cores; {(h.get('send_lag') or {}).get('p99_us', 0) / 1e3:.1f} ms"
            )
        out.append(f"| {t['name']} | {t['peak_rps']:,.0f} | {ratio} | {cpu} | {half} | {lag} |")
    return out


def print_summary(r: dict[str, Any]) -> None:
    table = [HEADER, *rows(r)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    m = r["machine"]
    print(
        f"\n{machine_line(m)}; mode {r['config']['mode']}; load average "
        f"{m['load_average_start']} -> {m.get('load_average_end')}"
    )
    for row in table:
        print(
            "  ".join(
                c.rjust(w) if i > 1 else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    for store, why in r["skipped"].items():
        print(f"skipped {store}: {why}")
    if other_cores(r) > 0.1:
        print(
            f"note: other processes used {other_cores(r):.2f} cores on average during the "
            "points: contention is in these figures"
        )
    print()
    for g in r["goals"]:
        print(
            f"{g['id']:<5} {g['what']:<58} goal {g['goal']:<16} "
            f"measured {g['measured']:<40} {_verdict(g)}"
        )
    print()


def plots(r: dict[str, Any], out: Path) -> list[Path]:
    return [
        _rate_plot(r, out / "grpc_latency_vs_rate.png"),
        _percentile_plot(r, out / "grpc_percentiles.png"),
    ]


def write_all(r: dict[str, Any], out: Path) -> list[Path]:
    return write_outputs(r, out, "grpc", plots, markdown)


def markdown(r: dict[str, Any]) -> str:
    m, cfg = r["machine"], r["config"]
    lines = [
        "# gRPC benchmarks",
        "",
        f"`python -m benchmarks.grpc_load` ({cfg['mode']} run), {m['date_utc']}, "
        f"{machine_line(m)}, load average {m['load_average_start']} at start, "
        f"{m.get('load_average_end')} at the end. {cfg['seconds']:g} s a point; "
        f"{cfg['clients']} client processes x {cfg['connections']} connections; server "
        f"{cfg['workers']} worker(s) x {cfg['threads']} threads; {cfg['lines']}-line basket, "
        f"{cfg['members']} demo members.",
        "",
        "## Goals (docs/design.md §8)",
        "",
        "| id | what | goal | measured | met? |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {g['id']} | {g['what']} | {g['goal']} | {g['measured']} | {_verdict(g)} |"
        for g in r["goals"]
    ]
    lines += ["", "## Summary", "", *summary_rows(r)]
    lines += ["", "## Points", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(r)]
    lines += [""] + [f"Skipped {s}: {why}" for s, why in r["skipped"].items()]
    lines += [
        "",
        "- *closed*: each client keeps its calls in flight back to back; its rate is the "
        "target's peak. *open*: Poisson arrivals at a fraction of that peak; latency counts "
        "from each call's intended send time, so queueing (in the server or the client) shows.",
        "- *server µs CPU/call*: user+system CPU of the server process tree over the point, "
        "per successful call; *redis µs CPU/call*: the private redis-server's, apart. "
        "*client cores*: CPU the load generators used; on a 2-core "
        "machine they share the cores with the server, so read throughput with it. "
        "*other cores*: CPU used meanwhile by processes outside the benchmark (contention). "
        "*send lag p99*: how late the open-loop generator itself sent its calls (already "
        "inside the latency); when it nears the latency, the client, not the server, queued.",
        "- *(S2)*: Commit on the embedded store held to S2's bar, for comparison only (S2 is "
        "about Redis). S1/S2 read p99 at the open-loop point at 0.5x the target's own peak.",
        "- Histograms (log buckets, ~1% wide) for every point are in `grpc.json`.",
    ]
    if other_cores(r) > 0.1:
        lines += [
            "",
            f"**The machine was shared**: processes outside the benchmark used "
            f"{other_cores(r):.2f} of its {m['usable_cores']} cores on average during "
            "the points (*other cores*), so rates are lower and tails longer than on "
            "a quiet machine.",
        ]
    for name in r.get("plots", []):
        lines += ["", f"![{name}]({name})"]
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in m.items()]
    return "\n".join(lines) + "\n"


def _rate_plot(r: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    for k, t in enumerate(r["targets"]):
        pts = sorted(t["open"], key=lambda p: p["offered_rps"])
        if not pts:
            continue
        color = f"C{k}"
        x = [p["offered_rps"] for p in pts]
        ax.plot(
            x,
            [p["latency"]["p50_us"] / 1e3 for p in pts],
            "o-",
            color=color,
            label=f"{t['name']} p50",
        )
        ax.plot(
            x,
            [p["latency"]["p99_us"] / 1e3 for p in pts],
            "s--",
            color=color,
            label=f"{t['name']} p99",
        )
        ax.axvline(t["peak_rps"], color=color, ls=":", lw=0.8)
    for ms, label in ((3, "S1 p99 goal"), (5, "S2 p99 goal")):
        ax.axhline(ms, color="grey", ls="-.", lw=0.8)
        ax.annotate(
            label,
            (0, ms),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            color="grey",
            xytext=(3, 2),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    return _save(
        fig,
        ax,
        path,
        "offered rate, open loop (req/s); dotted: closed-loop peak",
        "latency from intended send (ms)",
        f"gRPC latency vs rate ({r['config']['lines']}-line basket)\n"
        f"{machine_line(r['machine'])}, load avg {r['machine']['load_average_start']}",
    )


def _percentile_plot(r: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    for t in r["targets"]:
        p = at_fraction(t, HALF) or (t["open"][0] if t["open"] else t["closed"])
        q, us = Histogram.from_json(p["histogram"]).curve()
        if len(q):
            # HDR-style axis: 90, 99, 99.9 evenly spaced, so the tail is readable
            nines = -np.log10(np.maximum(1 - q / 100, 1e-4))
            ax.plot(nines, us / 1e3, "-", label=f"{t['name']} at {p['achieved_rps']:,.0f}/s")
    ax.set_xticks(range(5), ["0", "90", "99", "99.9", "99.99"])
    return _save(
        fig,
        ax,
        path,
        "percentile",
        "latency (ms)",
        f"Latency distribution at half of each target's peak (open loop)\n"
        f"{machine_line(r['machine'])}",
    )


def _save(fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    ax.set_yscale("log")
    plain_y(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
