"""``benchmarks.ceiling``'s figures: a printed line per point, the goals (S1, S2 and the check
that h2client keeps up with h2load), ``ceiling.md``, ``ceiling.json`` and ``ceiling.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import suite
from benchmarks.histogram import Histogram
from benchmarks.suite import plt

CLIENT_GOAL = 0.95  # h2client's closed-loop rate on the echo, as a share of h2load's


def _ms(us: float) -> str:
    return f"{us / 1e3:.2f}"


def _name(row: dict[str, Any]) -> str:
    return row["target"] + (f" ({row['store']})" if row["store"] else "")


def print_row(row: dict[str, Any]) -> None:
    lat = row["latency"]
    offered = f"{row['offered_rps']:,.0f}/s offered" if row["mode"] == "open" else "closed loop"
    store = f" + store {row['store_cpu_us_per_call']:,.0f}" if row["store_cpu_us_per_call"] else ""
    errors = (
        f"  ERRORS {row.get('statuses', {})} {row.get('error_messages', '')}"
        if row["errors"]
        else ""
    )
    print(
        f"  {_name(row):<20} {row['client']:<8} {offered:>18}: {row['rps']:>8,.0f}/s  "
        f"p50 {_ms(lat['p50_us'])} p99 {_ms(lat['p99_us'])} ms  CPU/call: server "
        f"{row['server_cpu_us_per_call']:,.0f}{store}, client {row['client_cpu_us_per_call']:,.0f}"
        f" µs; worker shares {row['worker_cpu_shares']}{errors}",
        flush=True,
    )


def find(r: dict[str, Any], target: str, store: str, client: str, mode: str) -> dict | None:
    for row in r["rows"]:
        if (row["target"], row["store"], row["client"], row["mode"]) == (
            target,
            store,
            client,
            mode,
        ):
            return row
    return None


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Goal / measured / met per line; ``met`` is None where the point was not measured."""
    echo = find(r, "echo", "", "h2load", "closed")
    echo_rps = echo["rps"] if echo else 0.0

    def share(row: dict | None, goal: float) -> tuple[str, bool | None]:
        if row is None or not echo_rps:
            return "not measured", None
        s = row["rps"] / echo_rps
        return f"{s:.0%} ({row['rps']:,.0f} vs {echo_rps:,.0f} req/s)", s >= goal

    def p99(row: dict | None, goal_ms: float) -> tuple[str, bool | None]:
        if row is None:
            return "not measured", None
        lat = row["latency"]
        ok = lat["p99_us"] <= goal_ms * 1e3 and not row["errors"]
        return (
            f"{_ms(lat['p99_us'])} ms at {row['offered_rps']:,.0f} req/s "
            f"(p50 {_ms(lat['p50_us'])} ms)",
            ok,
        )

    lines = [
        ("client", "h2client vs h2load, closed loop on the echo", f"≥ {CLIENT_GOAL:.0%}")
        + share(find(r, "echo", "", "h2client", "closed"), CLIENT_GOAL),
        ("S1", "`Evaluate` (embedded) peak vs the echo, h2load", "≥ 80%")
        + share(find(r, "evaluate", "embedded", "h2load", "closed"), 0.8),
        ("S1", "`Evaluate` (embedded) p99, open loop at half its peak", "≤ 3 ms")
        + p99(find(r, "evaluate", "embedded", "h2client", "open"), 3),
        ("S2", "`Commit` on Redis peak vs the echo, h2client", "≥ 50%")
        + share(find(r, "commit", "redis", "h2client", "closed"), 0.5),
        ("S2", "`Commit` on Redis p99, open loop at half its peak", "≤ 5 ms")
        + p99(find(r, "commit", "redis", "h2client", "open"), 5),
    ]
    return [dict(zip(("id", "what", "goal", "measured", "met"), g, strict=True)) for g in lines]


def _met(met: bool | None) -> str:
    return "—" if met is None else "yes" if met else "no"


def print_summary(r: dict[str, Any]) -> None:
    print(f"\nceiling ({r['config']['mode']}), {suite.machine_line(r['machine'])}:")
    for g in r["goals"]:
        print(f"  {g['id']:<6} {g['what']:<55} {g['goal']:>6}: {g['measured']}  {_met(g['met'])}")


def markdown(r: dict[str, Any]) -> str:
    cfg, m = r["config"], r["machine"]
    echo = find(r, "echo", "", "h2load", "closed")
    echo_rps = echo["rps"] if echo else 0.0
    echo_cpu = echo["server_cpu_us_per_call"] if echo else 0.0
    out = [
        "# gRPC ceiling: clients that are not the bottleneck",
        "",
        f"{m['date_utc']}, {suite.machine_line(m)}, load average {m['load_average_start']} → "
        f"{m.get('load_average_end', [])}; git {m['git_commit']}; {r['h2load']}.",
        f"Mode `{cfg['mode']}`: {cfg['seconds']:g} s a point after {cfg['warmup_s']:g} s of "
        f"warm-up; {cfg['connections']} connections x {cfg['streams']} streams in flight; "
        f"{cfg['workers']} server processes per target (echo: {cfg['echo_threads']} threads "
        f"each; `loyalty serve --demo`: {cfg['threads']}); open loop at "
        f"{cfg['fraction']:.0%} of the point's closed-loop peak. Skipped: "
        f"{r['skipped'] or 'nothing'}.",
        "",
        "| id | what | goal | measured | met? |",
        "|---|---|---|---|---|",
        *(
            f"| {g['id']} | {g['what']} | {g['goal']} | {g['measured']} | {_met(g['met'])} |"
            for g in r["goals"]
        ),
        "",
        "| target | client | loop | req/s | % of echo | client CPU µs/call | server CPU µs/call "
        "| × echo's | store CPU µs/call | p50 ms | p99 ms | errors | worker CPU shares |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in r["rows"]:
        loop = f"open {row['offered_rps']:,.0f}/s" if row["mode"] == "open" else "closed"
        pct = f"{row['rps'] / echo_rps:.0%}" if echo_rps else "—"
        times = f"{row['server_cpu_us_per_call'] / echo_cpu:.1f}" if echo_cpu else "—"
        errors = f"{row['errors']} {row.get('statuses', {})}" if row["errors"] else "0"
        errors += " (ran out of single-use requests early)" if row.get("exhausted") else ""
        out.append(
            f"| {_name(row)} | {row['client']} | {loop} | {row['rps']:,.0f} | {pct} "
            f"| {row['client_cpu_us_per_call']:,.0f} | {row['server_cpu_us_per_call']:,.0f} "
            f"| {times} | {row['store_cpu_us_per_call']:,.0f} | {_ms(row['latency']['p50_us'])} "
            f"| {_ms(row['latency']['p99_us'])} | {errors} | {row['worker_cpu_shares']} |"
        )
    out += [
        "",
        "How to read it: *% of echo* is against h2load on the bare echo in the same run. h2load "
        "counts HTTP statuses only; one grpc-client call checked each server's answers first, "
        "and h2client reads the grpc-status of every call (*errors*). CPU per call is user + "
        "system time over the server's process tree (from /proc) and the client's own, divided "
        "by the calls answered; *store* is the private redis-server. *Worker CPU shares* show "
        "how SO_REUSEPORT spread the connections over the server's processes. Latency: h2load's "
        "per-request log, and h2client's own (open loop: from each call's intended send time). "
        "The clients share the machine's cores with the servers; on a small, shared VM the "
        "figures move by tens of percent between runs.",
        "",
        "![ceiling](ceiling.png)",
        "",
    ]
    return "\n".join(out)


def plot(r: dict[str, Any], out: Path) -> list[Path]:
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    closed = [row for row in r["rows"] if row["mode"] == "closed"]
    labels = [f"{row['target']}\n{row['store']}\n{row['client']}" for row in closed]
    bars = left.bar(range(len(closed)), [row["rps"] for row in closed], color="tab:blue")
    echo = find(r, "echo", "", "h2load", "closed")
    if echo and echo["rps"]:
        left.bar_label(bars, [f"{row['rps'] / echo['rps']:.0%}" for row in closed])
    left.set_xticks(range(len(closed)), labels, fontsize=7)
    left.set_ylabel("req/s, closed loop")
    left.set_title("Peak rate (label: % of the echo under h2load)")
    for row in r["rows"]:
        if row["mode"] == "open":
            x, y = Histogram.from_json(row["histogram"]).curve()
            right.plot(x, y / 1e3, label=f"{_name(row)} at {row['offered_rps']:,.0f}/s")
    for ms, name in ((3, "S1 p99 goal"), (5, "S2 p99 goal")):
        right.axhline(ms, linestyle="--", linewidth=0.8, color="grey")
        right.annotate(name, (1, ms), fontsize=7, color="grey")
    right.set_yscale("log")
    suite.plain_y(right)
    right.set_xlabel("percentile")
    right.set_ylabel("latency, ms (from the intended send time)")
    right.set_title(f"Open loop at {r['config']['fraction']:.0%} of each peak (h2client)")
    right.legend(fontsize=7)
    fig.suptitle(f"gRPC ceiling, {suite.machine_line(r['machine'])}", fontsize=10)
    fig.tight_layout()
    path = out / "ceiling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def write_all(r: dict[str, Any], out: Path) -> list[Path]:
    return suite.write_outputs(r, out, "ceiling", plot, markdown)
