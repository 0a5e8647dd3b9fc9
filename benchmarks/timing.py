"""Timing helpers for the kernel suite: per-call nanoseconds (round-robin or within a time
budget), wall seconds of whole runs, and a latency summary with percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.suite import gc_off

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)


def time_calls(fn: Callable[..., Any], calls: Sequence[tuple], rounds: int) -> np.ndarray:
    """Nanoseconds per call: every argument tuple ``rounds`` times, round-robin."""
    out = np.empty(len(calls) * rounds, dtype=np.int64)
    clock, k = time.perf_counter_ns, 0
    with gc_off():
        for _ in range(rounds):
            for args in calls:
                t0 = clock()
                fn(*args)
                out[k] = clock() - t0
                k += 1
    return out


def time_budgeted(
    fn: Callable[..., Any], calls: Sequence[tuple], budget_s: float, min_calls: int
) -> tuple[np.ndarray, list]:
    """Call ``fn`` on ``calls`` in order until the budget is spent (at least ``min_calls``)."""
    ns: list[int] = []
    results: list = []
    clock, deadline = time.perf_counter_ns, time.perf_counter_ns() + int(budget_s * 1e9)
    with gc_off():
        for args in calls:
            if len(ns) >= min_calls and clock() > deadline:
                break
            t0 = clock()
            results.append(fn(*args))
            ns.append(clock() - t0)
    return np.array(ns, dtype=np.int64), results


def seconds(
    fn: Callable[[], Any], repeats: int, budget_s: float = 120.0
) -> tuple[list[float], Any]:
    """Wall seconds of each of up to ``repeats`` calls (fewer once ``budget_s`` is spent; at
    least one), and the last result."""
    out: list[float] = []
    result = None
    for _ in range(repeats):
        if out and sum(out) > budget_s:
            break
        with gc_off():
            t0 = time.perf_counter()
            result = fn()
            out.append(time.perf_counter() - t0)
    return out, result


def latency(ns: np.ndarray, rounds: int = 1) -> dict[str, Any]:
    """Summary of per-call times; ``best_round_median_us`` (the lowest median of one pass over
    the baskets) shows what the figures are without a neighbour's load on a shared machine."""
    us = ns / 1e3
    by_round = np.median(us.reshape(rounds, -1), axis=1) if len(us) % rounds == 0 else [0.0]
    return {
        "calls": int(len(us)),
        "median_us": float(np.median(us)),
        "best_round_median_us": float(np.min(by_round)),
        "p90_us": float(np.percentile(us, 90)),
        "p99_us": float(np.percentile(us, 99)),
        "mean_us": float(us.mean()),
        "min_us": float(us.min()),
        "percentiles_us": {str(q): float(np.percentile(us, q)) for q in PERCENTILES},
    }
