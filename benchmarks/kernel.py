"""Kernel benchmarks (docs/design.md §8: K1, K2, C1) and scaling curves.

    python -m benchmarks.kernel            # full run, figures in benchmarks/results/
    python -m benchmarks.kernel --quick    # CI-sized run, one to two minutes after compile

Every workload comes from ``benchmarks.workload`` with fixed seeds, so two runs price the same
baskets under the same rules. Latencies are per call (``perf_counter_ns`` around each call,
garbage collector off during timed loops) after ``engine.warm_up()`` and untimed calls. The
reference evaluator is timed on the same baskets within a time budget (it is slow by
design), and its results are compared with the kernel's, so a ratio is never quoted for work
that differs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl

from benchmarks import kernel_report, suite
from benchmarks.timing import latency, seconds, time_budgeted, time_calls
from benchmarks.workload import (
    frames_to_objects,
    make_baskets,
    make_history_frames,
    make_member,
    make_workload,
)
from engine import compile_rules, load_catalogue, price, price_reference, warm_up
from engine.pricing import layout as L
from engine.pricing.api import (
    encode_context,
    encode_coupons,
    encode_limits,
    encode_lines,
    encode_member,
)
from engine.pricing.batch import (
    PARTS_PER_THREAD,
    ROWS_PER_LINE,
    EncodedBatch,
    batch_parts,
    run_batch,
    sub_batch,
)
from engine.pricing.compiler import CompiledRules
from engine.pricing.entry import run_kernel
from engine.pricing.frames import decode_frames, encode_frames, price_frames
from engine.pricing.kernel.batch import price_many
from engine.pricing.kernel.discovery import candidates

SEED_K1, SEED_K2, SEED_SCALING, SEED_MEMBER = 101, 202, 303, 5
WALLET_SIZE = 20
BATCH_SIZES = (1, 16, 256)


@dataclass(frozen=True)
class Config:
    mode: str
    offers: int = 10_000
    skus: int = 200_000
    lines: int = 20
    k1_baskets: int = 200  # distinct baskets; each timed k1_rounds times
    k1_rounds: int = 10
    ref_seconds: float = 60.0  # budget for each reference measurement
    ref_min_calls: int = 5
    k2_baskets: int = 1_000_000
    k2_repeats: int = 3
    k2_ref_baskets: int = 2_000  # reference sample (first baskets of the batch), within budget
    c1_repeats: int = 3
    scale_offers: tuple[int, ...] = (100, 1_000, 10_000, 100_000)
    scale_lines: tuple[int, ...] = (1, 5, 20, 100, 500)
    scale_baskets: int = 100
    scale_rounds: int = 5
    skip_scaling: bool = False


MODES = {
    "full": Config("full"),
    "quick": Config(
        "quick",
        k1_baskets=100,
        k1_rounds=5,
        ref_seconds=10.0,
        k2_baskets=20_000,
        k2_repeats=2,
        c1_repeats=1,
        scale_offers=(100, 1_000, 10_000),
        scale_lines=(1, 20, 100),
        scale_baskets=50,
        scale_rounds=4,
    ),
    "smoke": Config(
        "smoke",
        offers=50,
        skus=1_000,
        k1_baskets=10,
        k1_rounds=2,
        ref_seconds=0.5,
        ref_min_calls=2,
        k2_baskets=200,
        k2_repeats=1,
        k2_ref_baskets=20,
        c1_repeats=1,
        scale_offers=(20, 50),
        scale_lines=(1, 20),
        scale_baskets=5,
        scale_rounds=2,
    ),
}


# --- kernel latency --------------------------------------------------------------------------


def n_candidates(compiled: CompiledRules, lines: np.ndarray, coupons: np.ndarray) -> int:
    """Offers the inverted indexes hand the kernel for this basket (informative)."""
    found = candidates(compiled.arrays, lines, coupons)
    return len(found)


def kernel_calls(compiled: CompiledRules, baskets, member) -> list[tuple]:
    """Pre-encoded ``run_kernel`` arguments, one tuple per basket."""
    return [
        (
            compiled,
            encode_lines(compiled, b),
            encode_member(compiled, member, 0),
            encode_context(compiled, b),
            encode_coupons(compiled, member, ()),
            encode_limits(compiled, None),
            False,
        )
        for b in baskets
    ]


def kernel_latency(compiled: CompiledRules, baskets, member, rounds: int) -> dict[str, Any]:
    calls = kernel_calls(compiled, baskets, member)
    for args in calls[:20]:
        run_kernel(*args)
    out = latency(time_calls(run_kernel, calls, rounds), rounds)
    out["candidates_mean"] = float(np.mean([n_candidates(compiled, a[1], a[4]) for a in calls]))
    return out


# --- measurements ----------------------------------------------------------------------------


def measure_c1(cfg: Config, w) -> tuple[dict[str, Any], CompiledRules]:
    validated, compiled = seconds(lambda: compile_rules(w.rules, w.catalogue), cfg.c1_repeats)
    unvalidated, _ = seconds(
        lambda: compile_rules(w.rules, w.catalogue, validate=False), cfg.c1_repeats
    )
    cat = w.catalogue
    frame = pl.DataFrame(
        {
            "sku": cat.sku,
            "category": cat.category,
            "brand": cat.brand,
            "vendor": cat.vendor,
            "no_discount": cat.no_discount,
            "no_earn": cat.no_earn,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        csv, parquet = Path(tmp, "catalogue.csv"), Path(tmp, "catalogue.parquet")
        frame.write_csv(csv)
        frame.write_parquet(parquet)
        load_csv, _ = seconds(lambda: load_catalogue(csv), cfg.c1_repeats)
        load_parquet, _ = seconds(lambda: load_catalogue(parquet), cfg.c1_repeats)

    def stat(xs: list[float]) -> dict[str, Any]:
        return {"median_s": float(np.median(xs)), "min_s": min(xs), "runs_s": xs}

    return {
        "offers": len(w.rules.offers),
        "skus": len(cat),
        "compile_validated": stat(validated),
        "compile_unvalidated": stat(unvalidated),
        "load_catalogue_csv": stat(load_csv),
        "load_catalogue_parquet": stat(load_parquet),
    }, compiled


def measure_k1(cfg: Config, w, compiled: CompiledRules) -> dict[str, Any]:
    baskets = make_baskets(w, cfg.k1_baskets, cfg.lines, seed=SEED_K1)
    member = make_member(w, WALLET_SIZE, seed=SEED_MEMBER)
    kernel = kernel_latency(compiled, baskets, member, cfg.k1_rounds)

    api_calls = [(compiled, b, member) for b in baskets]
    for args in api_calls[:20]:
        price(*args)
    api = latency(time_calls(price, api_calls, cfg.k1_rounds), cfg.k1_rounds)

    ref_calls = [(w.rules, w.catalogue, b, member) for b in baskets]
    ref_ns, ref_results = time_budgeted(
        price_reference, ref_calls, cfg.ref_seconds, cfg.ref_min_calls
    )
    agree = sum(r == price(compiled, b, member) for r, b in zip(ref_results, baskets, strict=False))
    ref = latency(ref_ns)
    return {
        "offers": len(w.rules.offers),
        "skus": len(w.catalogue),
        "lines": cfg.lines,
        "wallet_coupons": len(member.wallet),
        "distinct_baskets": len(baskets),
        "kernel": kernel,
        "api": api,
        "reference": ref,
        "reference_agrees": f"{agree}/{len(ref_results)}",
        "candidates_mean": kernel["candidates_mean"],
        "ratio_reference_to_kernel": ref["median_us"] / kernel["median_us"],
        "ratio_reference_to_api": ref["median_us"] / api["median_us"],
    }


def reference_with_coupons(rules, catalogue, basket, member, coupons):
    return price_reference(rules, catalogue, basket, member, coupons=coupons)


def parallel_kernel(
    compiled: CompiledRules, enc: EncodedBatch, rows_per_line: int = ROWS_PER_LINE
) -> Callable[[], int]:
    """``price_many`` as ``run_batch`` calls it, on buffers allocated here: the call returned
    times the parallel kernel alone (no retries of overflowed baskets, no row compaction) and
    returns how many baskets overflowed their part's rows."""
    line_out = np.empty((L.LINE_OUT_COLS, enc.lines.shape[0]), dtype=np.int64)
    part_off, part_rows = batch_parts(
        enc.line_off, rows_per_line, PARTS_PER_THREAD * numba.get_num_threads()
    )
    slab = np.empty((part_rows[-1], L.ROW_COLS), dtype=np.int64)
    counts = np.zeros((enc.n_baskets, L.COUNT_COLS), dtype=np.int64)

    def call() -> int:
        price_many(
            compiled.packed,
            enc.lines,
            enc.line_off,
            enc.members,
            enc.ctxs,
            enc.coupon_off,
            enc.coupons,
            enc.limit_off,
            enc.limits,
            part_off,
            part_rows,
            line_out,
            slab,
            counts,
        )
        return int(counts[:, L.N_OVERFLOW].sum())

    return call


def batch_sizes(
    compiled: CompiledRules, enc: EncodedBatch, rounds: int, n: int = 1024
) -> list[dict[str, Any]]:
    """Per basket, ``run_batch`` on batches of each of ``BATCH_SIZES`` against ``run_kernel``
    one basket at a time, on the same first ``n`` baskets, the two alternated round by round
    (medians of the rounds)."""
    n = min(n, enc.n_baskets)
    single = [
        (compiled, e.lines, e.members[0], e.ctxs[0], e.coupons, e.limits, False)
        for e in (sub_batch(enc, b, b + 1) for b in range(n))
    ]
    out = []
    for size in (s for s in BATCH_SIZES if s <= n):
        batches = [(compiled, sub_batch(enc, b, b + size)) for b in range(0, n - size + 1, size)]
        done = len(batches) * size
        ns = np.array(
            [
                (
                    time_calls(run_batch, batches, 1).sum(),
                    time_calls(run_kernel, single[:done], 1).sum(),
                )
                for _ in range(rounds)
            ]
        )
        batch_us, single_us = np.median(ns, axis=0) / done / 1e3
        out.append(
            {
                "batch_size": size,
                "batch_us_per_basket": float(batch_us),
                "single_us_per_basket": float(single_us),
            }
        )
    return out


def measure_k2(cfg: Config, w, compiled: CompiledRules) -> dict[str, Any]:
    t0 = time.perf_counter()
    lines, baskets = make_history_frames(w, cfg.k2_baskets, seed=SEED_K2)
    build_s = time.perf_counter() - t0
    n = len(baskets)
    small = min(n, 1_000)  # untimed warm-up on a slice
    price_frames(compiled, lines.filter(pl.col("basket") < small), baskets.head(small))

    encode_s, enc = seconds(partial(encode_frames, compiled, lines, baskets), 1)
    parallel_s, overflowed = seconds(parallel_kernel(compiled, enc), cfg.k2_repeats)
    kernel_s, out = seconds(partial(run_batch, compiled, enc), cfg.k2_repeats)
    decode_s, _ = seconds(partial(decode_frames, compiled, enc, out, baskets, lines), 1)
    by_size = batch_sizes(compiled, enc, cfg.k1_rounds)
    del enc, out  # before the end-to-end run allocates its own
    e2e_s, result = seconds(partial(price_frames, compiled, lines, baskets), cfg.k2_repeats)

    sample = frames_to_objects(lines, baskets, min(n, cfg.k2_ref_baskets))
    ref_calls = [(w.rules, w.catalogue, b, m, c) for b, m, c in sample]
    ref_ns, ref_results = time_budgeted(
        reference_with_coupons, ref_calls, cfg.ref_seconds, cfg.ref_min_calls
    )
    net = result.baskets["net_minor"].to_numpy()
    pts = result.baskets["points_earned"].to_numpy()
    agree = sum(
        r.net_minor == net[b] and r.points_earned == pts[b] for b, r in enumerate(ref_results)
    )
    n_ref = len(ref_ns)
    ref_bps = n_ref / (ref_ns.sum() / 1e9)
    kernel_bps, e2e_bps = n / float(np.median(kernel_s)), n / float(np.median(e2e_s))
    return {
        "offers": len(w.rules.offers),
        "skus": len(w.catalogue),
        "baskets": n,
        "lines": len(lines),
        "mean_lines": len(lines) / n,
        "build_frames_s": build_s,
        "encode_s": encode_s[0],
        "parallel_kernel_s": parallel_s,
        "parallel_kernel_baskets_per_s": n / float(np.median(parallel_s)),
        "overflowed": overflowed,
        "kernel_s": kernel_s,
        "decode_s": decode_s[0],
        "end_to_end_s": e2e_s,
        "kernel_baskets_per_s": kernel_bps,
        "end_to_end_baskets_per_s": e2e_bps,
        "by_batch_size": by_size,
        "reference": {
            "baskets": n_ref,
            "seconds": float(ref_ns.sum() / 1e9),
            "baskets_per_s": ref_bps,
            "median_us": float(np.median(ref_ns) / 1e3),
        },
        "reference_agrees": f"{agree}/{n_ref}",
        "ratio_kernel_to_reference": kernel_bps / ref_bps,
        "ratio_end_to_end_to_reference": e2e_bps / ref_bps,
    }


def measure_scaling(cfg: Config, w, compiled: CompiledRules) -> dict[str, Any]:
    by_offers = []
    for n_offers in cfg.scale_offers:
        ws = w if n_offers == cfg.offers else make_workload(n_offers, cfg.skus)
        cs = compiled if ws is w else compile_rules(ws.rules, ws.catalogue, validate=False)
        baskets = make_baskets(ws, cfg.scale_baskets, cfg.lines, seed=SEED_SCALING)
        member = make_member(ws, WALLET_SIZE, seed=SEED_MEMBER)
        point = kernel_latency(cs, baskets, member, cfg.scale_rounds)
        by_offers.append({"offers": n_offers, "lines": cfg.lines, **point})
        print(f"  scaling offers={n_offers:>7,}: median {point['median_us']:.1f} us", flush=True)
        del ws, cs
    by_lines = []
    member = make_member(w, WALLET_SIZE, seed=SEED_MEMBER)
    for n_lines in cfg.scale_lines:
        baskets = make_baskets(
            w, cfg.scale_baskets, min(n_lines, len(w.catalogue)), seed=SEED_SCALING
        )
        point = kernel_latency(compiled, baskets, member, cfg.scale_rounds)
        by_lines.append({"offers": cfg.offers, "lines": n_lines, **point})
        print(f"  scaling lines={n_lines:>4}: median {point['median_us']:.1f} us", flush=True)
    return {"skus": cfg.skus, "by_offers": by_offers, "by_lines": by_lines}


# --- driver ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path]:
    p = suite.suite_parser(
        "python -m benchmarks.kernel",
        __doc__,
        "CI-sized run (1-2 min)",
        "tiny run for tests (seconds)",
    )
    p.add_argument("--offers", type=int, help="active offers (default 10,000)")
    p.add_argument("--skus", type=int, help="catalogue size (default 200,000)")
    p.add_argument("--lines", type=int, help="lines per K1 basket (default 20)")
    p.add_argument("--baskets", type=int, help="K2 batch size (default 1,000,000)")
    p.add_argument("--ref-seconds", type=float, help="time budget per reference measurement")
    p.add_argument("--skip-scaling", action="store_true")
    a = p.parse_args(argv)
    given = {
        "offers": a.offers,
        "skus": a.skus,
        "lines": a.lines,
        "k2_baskets": a.baskets,
        "ref_seconds": a.ref_seconds,
        "skip_scaling": a.skip_scaling,
    }
    return suite.configure(MODES, a, given), a.out


def run(cfg: Config) -> dict[str, Any]:
    results: dict[str, Any] = {"config": asdict(cfg), "machine": suite.machine_info()}
    print(f"benchmarks.kernel ({cfg.mode}): {cfg.offers:,} offers, {cfg.skus:,} skus", flush=True)
    results["warm_up_s"] = warm_up()
    print(f"warm-up (compile or load kernels): {results['warm_up_s']:.1f} s", flush=True)
    t0 = time.perf_counter()
    w = make_workload(cfg.offers, cfg.skus)
    results["workload_s"] = time.perf_counter() - t0
    print("C1 compile ...", flush=True)
    results["c1"], compiled = measure_c1(cfg, w)
    print("K1 single basket ...", flush=True)
    results["k1"] = measure_k1(cfg, w, compiled)
    print(f"K2 batch of {cfg.k2_baskets:,} ...", flush=True)
    results["k2"] = measure_k2(cfg, w, compiled)
    if not cfg.skip_scaling:
        print("scaling ...", flush=True)
        results["scaling"] = measure_scaling(cfg, w, compiled)
    results["machine"]["load_average_end"] = suite.load_average()
    results["machine"]["numba_threading_layer"] = suite.threading_layer()
    for name in ("k1", "k2"):
        agree, tried = results[name]["reference_agrees"].split("/")
        if agree != tried:
            print(
                f"WARNING: {name}: kernel and reference disagree on "
                f"{int(tried) - int(agree)} of {tried} baskets",
                flush=True,
            )
    results["goals"] = kernel_report.goals(results)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    cfg, out = parse_args(argv)
    return suite.finish(run(cfg), out, kernel_report.print_summary, kernel_report.write_all)


if __name__ == "__main__":
    main()
