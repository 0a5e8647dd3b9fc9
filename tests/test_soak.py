"""A bounded soak (benchmarks/soak.py): 10,000 mixed valid and invalid calls to a server of two
workers leave its memory flat (within 20 MB of its level after a warm-up) and are each answered
with the status their content calls for, never INTERNAL."""

from __future__ import annotations

from benchmarks.soak import run


def test_ten_thousand_mixed_calls_keep_memory_flat_and_every_answer_expected():
    result = run(10_000, workers=2)
    # the mix: 3 quotes and commits and 1 member read answer OK, a bad basket and bytes that
    # are not a request INVALID_ARGUMENT, an unknown member NOT_FOUND, a health check OK (of 8)
    assert result["codes"] == {"OK": 6_250, "INVALID_ARGUMENT": 2_500, "NOT_FOUND": 1_250}
    assert result["growth_mb"] < 20, result
