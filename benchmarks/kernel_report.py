"""Goal checks and the outputs of ``benchmarks.kernel``: a printed table, ``kernel.json`` (every
figure), ``kernel.md`` (goal / measured / met?) and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.kernel_plots import plots
from benchmarks.suite import machine_line, write_outputs

GOAL_SIZES = {"offers": 10_000, "skus": 200_000, "lines": 20}  # docs/design.md §8


# --- goals -----------------------------------------------------------------------------------


def _goal(
    gid: str, what: str, goal: str, measured: str, met: bool, value: float, comparable: bool
) -> dict[str, Any]:
    return {
        "id": gid,
        "what": what,
        "goal": goal,
        "measured": measured,
        "value": value,
        "met": bool(met),
        "goal_sizes": comparable,
    }


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """docs/design.md §8 goals this benchmark measures; ``goal_sizes`` False = other sizes than the
    goal's, so ``met`` is indicative only."""
    cfg = r["config"]
    full_size = all(cfg[k] == v for k, v in GOAL_SIZES.items())
    k1, k2, c1 = r["k1"], r["k2"], r["c1"]
    k2_size = full_size and k2["baskets"] >= 1_000_000
    med, p99 = k1["kernel"]["median_us"], k1["kernel"]["p99_us"]
    compile_s = c1["compile_validated"]["median_s"]
    out = [
        _goal(
            "K1",
            "one 20-line basket, kernel alone (median)",
            "<= 20 us",
            f"{med:.1f} us",
            med <= 20,
            med,
            full_size,
        ),
        _goal(
            "K1",
            "one 20-line basket, kernel alone (p99)",
            "<= 40 us",
            f"{p99:.1f} us",
            p99 <= 40,
            p99,
            full_size,
        ),
        _goal(
            "K2",
            "batch kernel throughput (run_batch)",
            ">= 1,000,000 baskets/s",
            f"{k2['kernel_baskets_per_s']:,.0f} baskets/s",
            k2["kernel_baskets_per_s"] >= 1e6,
            k2["kernel_baskets_per_s"],
            k2_size,
        ),
        _goal(
            "K2",
            "batch end to end (frames in, frames out)",
            ">= 500,000 baskets/s",
            f"{k2['end_to_end_baskets_per_s']:,.0f} baskets/s",
            k2["end_to_end_baskets_per_s"] >= 5e5,
            k2["end_to_end_baskets_per_s"],
            k2_size,
        ),
        _goal(
            "K2",
            "batch kernel vs reference evaluator",
            ">= 100x",
            f"{k2['ratio_kernel_to_reference']:,.0f}x",
            k2["ratio_kernel_to_reference"] >= 100,
            k2["ratio_kernel_to_reference"],
            k2_size,
        ),
        _goal(
            "K2",
            "batch end to end vs reference evaluator",
            ">= 100x",
            f"{k2['ratio_end_to_end_to_reference']:,.0f}x",
            k2["ratio_end_to_end_to_reference"] >= 100,
            k2["ratio_end_to_end_to_reference"],
            k2_size,
        ),
        _goal(
            "C1",
            "compile 10,000 offers + 200,000 skus, validated (median)",
            "<= 2 s",
            f"{compile_s:.2f} s",
            compile_s <= 2,
            compile_s,
            full_size,
        ),
    ]
    return out


# --- printed table ---------------------------------------------------------------------------


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, measure, value) for the printed table and the Markdown details."""
    k1, k2, c1 = r["k1"], r["k2"], r["c1"]
    kern, api, ref = k1["kernel"], k1["api"], k1["reference"]
    out = [
        (
            "K1",
            "workload",
            f"{k1['lines']} lines, {k1['offers']:,} offers, {k1['skus']:,} skus, "
            f"{k1['wallet_coupons']} wallet coupons",
        ),
        (
            "K1",
            "kernel alone median / p99",
            f"{kern['median_us']:.1f} / {kern['p99_us']:.1f} us ({kern['calls']:,} calls)",
        ),
        ("K1", "kernel alone, best round's median", f"{kern['best_round_median_us']:.1f} us"),
        (
            "K1",
            "price() API median / p99",
            f"{api['median_us']:.1f} / {api['p99_us']:.1f} us ({api['calls']:,} calls)",
        ),
        ("K1", "price() API, best round's median", f"{api['best_round_median_us']:.1f} us"),
        (
            "K1",
            "reference median / p99",
            f"{ref['median_us']:,.0f} / {ref['p99_us']:,.0f} us ({ref['calls']:,} calls)",
        ),
        (
            "K1",
            "reference / kernel, reference / API",
            f"{k1['ratio_reference_to_kernel']:,.0f}x, {k1['ratio_reference_to_api']:,.0f}x",
        ),
        ("K1", "reference agrees with kernel", k1["reference_agrees"]),
        ("K1", "candidate offers per basket (mean)", f"{k1['candidates_mean']:.1f}"),
        (
            "K2",
            "workload",
            f"{k2['baskets']:,} baskets, {k2['lines']:,} lines "
            f"(mean {k2['mean_lines']:.2f}), {k2['offers']:,} offers",
        ),
        (
            "K2",
            "encode / run_batch / decode",
            f"{k2['encode_s']:.3f} / {_median(k2['kernel_s']):.3f} / {k2['decode_s']:.3f} s",
        ),
        (
            "K2",
            "price_many alone (no retries) baskets/s",
            f"{k2['parallel_kernel_baskets_per_s']:,.0f} "
            f"({_median(k2['parallel_kernel_s']):.3f} s)",
        ),
        ("K2", "baskets overflowing their row slab (retried)", f"{k2['overflowed']:,}"),
        *(
            (
                "K2",
                f"batch of {x['batch_size']}: run_batch / one run_kernel per basket",
                f"{x['batch_us_per_basket']:.1f} / {x['single_us_per_basket']:.1f} us per basket",
            )
            for x in k2.get("by_batch_size", ())
        ),
        ("K2", "kernel (run_batch) baskets/s", f"{k2['kernel_baskets_per_s']:,.0f}"),
        ("K2", "end-to-end baskets/s (price_frames)", f"{k2['end_to_end_baskets_per_s']:,.0f}"),
        (
            "K2",
            "reference baskets/s",
            f"{k2['reference']['baskets_per_s']:,.2f} ({k2['reference']['baskets']:,} baskets)",
        ),
        (
            "K2",
            "kernel / reference, end-to-end / reference",
            f"{k2['ratio_kernel_to_reference']:,.0f}x, {k2['ratio_end_to_end_to_reference']:,.0f}x",
        ),
        ("K2", "reference agrees with kernel", k2["reference_agrees"]),
        ("C1", "compile, validated (median)", f"{c1['compile_validated']['median_s']:.3f} s"),
        (
            "C1",
            "compile, validate=False (median)",
            f"{c1['compile_unvalidated']['median_s']:.3f} s",
        ),
        (
            "C1",
            f"load {c1['skus']:,}-row catalogue CSV / Parquet",
            f"{c1['load_catalogue_csv']['median_s']:.3f} / "
            f"{c1['load_catalogue_parquet']['median_s']:.3f} s",
        ),
    ]
    sc = r.get("scaling")
    if sc:
        for p in sc["by_offers"]:
            out.append(
                (
                    "scaling",
                    f"{p['offers']:,} offers, {p['lines']} lines",
                    f"{p['median_us']:.1f} us median, {p['p99_us']:.1f} p99, "
                    f"{p['candidates_mean']:.1f} candidates",
                )
            )
        for p in sc["by_lines"]:
            out.append(
                (
                    "scaling",
                    f"{p['lines']} lines, {p['offers']:,} offers",
                    f"{p['median_us']:.1f} us median, {p['p99_us']:.1f} p99, "
                    f"{p['candidates_mean']:.1f} candidates",
                )
            )
    return out


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def print_summary(r: dict[str, Any]) -> None:
    table = rows(r)
    w0, w1 = max(len(a) for a, _, _ in table), max(len(b) for _, b, _ in table)
    print(
        f"\n{machine_line(r['machine'])}; mode {r['config']['mode']}; "
        f"load average {r['machine']['load_average_start']}"
    )
    for a, b, c in table:
        print(f"{a:<{w0}}  {b:<{w1}}  {c}")
    print()
    for g in r["goals"]:
        note = "" if g["goal_sizes"] else "  (not the goal's sizes)"
        print(
            f"{g['id']:<3} {g['what']:<{w1 + 20}} goal {g['goal']:<24} "
            f"measured {g['measured']:<24} {'met' if g['met'] else 'NOT met'}{note}"
        )
    print()


# --- files -----------------------------------------------------------------------------------


def write_all(r: dict[str, Any], out: Path) -> list[Path]:
    return write_outputs(r, out, "kernel", plots, markdown)


def markdown(r: dict[str, Any]) -> str:
    m, cfg = r["machine"], r["config"]
    lines = [
        "# Kernel benchmarks",
        "",
        f"`python -m benchmarks.kernel` ({cfg['mode']} run), {m['date_utc']}, "
        f"{machine_line(m)}, load average at start {m['load_average_start']}.",
        "",
        "## Goals (docs/design.md §8)",
        "",
        "| id | what | goal | measured | met? |",
        "|---|---|---|---|---|",
    ]
    for g in r["goals"]:
        met = "yes" if g["met"] else "**no**"
        if not g["goal_sizes"]:
            met += " (other sizes than the goal's)"
        lines.append(f"| {g['id']} | {g['what']} | {g['goal']} | {g['measured']} | {met} |")
    lines += ["", "## Figures", "", "| | measure | value |", "|---|---|---|"]
    notes = [
        "K1 *kernel alone*: `engine.pricing.entry.run_kernel` on arrays from the `encode_*` "
        "functions; *API*: `engine.price` (encode, kernel, decode to dataclasses); per-call "
        "times after warm-up, garbage collector off. *Best round*: the lowest median of one "
        "pass over the baskets, i.e. the figure with the least interference on a shared "
        "machine.",
        "K2 *price_many alone*: the parallel kernel on pre-encoded frames; *run_batch*: that "
        "plus pricing overflowed baskets again one by one and compacting the rows (the batch "
        "API's kernel step); *end to end*: `engine.pricing.frames.price_frames` (frames in, "
        "frames out).",
        "The reference evaluator runs on the first baskets of the same workload within a time "
        "budget; *agrees* counts baskets where it gives the kernel's result (K1: the whole "
        "PricingResult; K2: net and points per basket).",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows(r)]
    lines += ["", *(f"- {n}" for n in notes)]
    for name in r.get("plots", []):
        lines += ["", f"![{name}]({name})"]
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in m.items()]
    lines += [
        "",
        f"Warm-up (kernel compile or cache load): {r['warm_up_s']:.1f} s; "
        f"workload build: {r['workload_s']:.1f} s. Full figures: `kernel.json`.",
        "",
    ]
    return "\n".join(lines)
