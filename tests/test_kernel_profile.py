"""The kernel profile's reading of perf's report (benchmarks/kernel_profile.py): symbol names,
sample counts, stages and per-call costs. Sampling itself needs perf and is a benchmark, not a
test."""

from __future__ import annotations

import pytest

from benchmarks.kernel_profile import (
    STAGES,
    demangle,
    markdown,
    parse_report,
    stage_of,
    summarise,
)

REPORT = """\
# Samples: 10K of event 'cpu-clock:ppp'
#
# Overhead       Samples  Symbol
# ........  ............  ..........................
#
    40.00%          4000  [.] _PyEval_EvalFrameDefault
    30.00%          3000  [.] rewards.propose_item
    20.00%          2000  [.] discovery.find_candidates
     5.00%           500  [.] merge.share
     4.00%           400  [.] core.price_one
     1.00%           100  [k] exc_page_fault
"""


def test_numba_symbols_read_as_module_and_function():
    mangled = "_ZN6engine7pricing6kernel6checks17evaluate_discountB4v100B52c8tJTIeFIjx"
    assert demangle(mangled) == "checks.evaluate_discount"
    assert demangle("NRT_decref") == "NRT_decref"


def test_a_report_gives_samples_per_symbol_and_in_all():
    total, by_symbol = parse_report(REPORT)
    assert total == 10_000
    assert by_symbol["rewards.propose_item"] == 3000
    assert by_symbol["exc_page_fault"] == 100


@pytest.mark.parametrize(
    ("symbol", "stage"),
    [
        ("discovery.find_candidates", "candidate discovery (§2-3)"),
        ("rewards.buy_get", "checks 11-13 and proposals"),
        ("checks.thresholds", "checks 11-13 and proposals"),
        ("checks.static_reason", "static checks 1-9"),
        ("checks.emit", "evaluation loop, groups, applying, output rows"),
        ("core.price_core", "evaluation loop, groups, applying, output rows"),
        ("merge.share_discount", "merge and share (§1.1)"),
        ("batch.price_range", "entry: arrays, workspace"),
        ("_PyEval_EvalFrameDefault", None),
    ],
)
def test_kernel_functions_fall_into_their_stage(symbol, stage):
    assert stage_of(symbol) == stage


def test_each_stage_costs_its_share_of_the_time_per_call():
    r = summarise(*parse_report(REPORT), us_per_call=50.0)
    stages = {s["name"]: s for s in r["stages"]}
    assert [s["name"] for s in r["stages"]] == list(STAGES)
    assert stages["checks 11-13 and proposals"]["us"] == pytest.approx(15.0)
    assert stages["candidate discovery (§2-3)"]["us"] == pytest.approx(10.0)
    assert stages["merge and share (§1.1)"]["us"] == pytest.approx(2.5)
    assert stages["entry: arrays, workspace"]["us"] == pytest.approx(2.0)
    # the interpreter and the kernel (page faults included) are what is left
    assert r["outside_kernel"]["samples"] == 4100
    assert [f["name"] for f in r["functions"]][:2] == [
        "rewards.propose_item",
        "discovery.find_candidates",
    ]


@pytest.mark.parametrize(
    ("batch", "lines", "unit", "title"),
    [
        (0, 20, "µs per call", "20 lines, 10,000 offers"),
        (100_000, 5.0, "µs per basket", "K2 batch of 100,000 baskets (5.0 lines each"),
    ],
)
def test_the_report_says_per_what_its_costs_are(batch, lines, unit, title):
    r = summarise(*parse_report(REPORT), us_per_call=5.0)
    machine = {"cpu_model": "test CPU", "usable_cores": 2}
    r.update(offers=10_000, lines=lines, calls=1_000, seconds=1.0, batch=batch, machine=machine)
    text = markdown(r)
    assert title in text.splitlines()[0]
    assert f"5.00 {unit}" in text.splitlines()[4]
