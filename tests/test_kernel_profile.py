"""The kernel profile's reading of perf's report (benchmarks/kernel_profile.py) and of one
function's disassembly (benchmarks/kernel_annotate.py): symbol names, instructions, sample
counts, stages and per-call costs. Sampling itself needs perf and is a benchmark, not a
test."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.kernel_annotate import (
    Code,
    annotate,
    annotation_markdown,
    busiest,
    demangle,
    parse_disassembly,
)
from benchmarks.kernel_profile import (
    STAGES,
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


OBJDUMP = """\
kernel.o:     file format elf64-x86-64

Disassembly of section .text:

0000000000000000 <_ZN6engine7pricing6kernel4util6helperB2v1>:
   0:\tpush   rbp
   1:\tret

0000000000000010 <_ZN6engine7pricing6kernel9discovery15find_candidatesB3v55>:
  10:\tpush   rbp
  11:\tmov    rax,QWORD PTR [rsi+0x8]
  15:\tjle    1d <_ZN6engine7pricing6kernel9discovery15find_candidatesB3v55+0xd>
  17:\tcall   0 <_ZN6engine7pricing6kernel4util6helperB2v1>
  1c:\tret
"""
FIND = "_ZN6engine7pricing6kernel9discovery15find_candidatesB3v55"


def test_the_disassembly_of_one_function_reads_as_offsets_from_its_start():
    insns = parse_disassembly(OBJDUMP, FIND)
    assert [off for off, _ in insns] == [0x0, 0x1, 0x5, 0x7, 0xC]
    assert insns[1] == (0x1, "mov rax,QWORD PTR [rsi+0x8]")
    assert insns[2] == (0x5, "jle 1d <+0xd>")  # targets named by offset, not by symbol
    assert insns[3] == (0x7, "call 0 <+0x0>")


def test_samples_count_at_their_instruction_and_outside_ones_are_left_out():
    insns = parse_disassembly(OBJDUMP, FIND)
    start = 0x7F0000001000
    ips = Counter({start + 0x1: 30, start + 0x5: 10, start + 0xC: 60, start - 4: 99, 5: 7})
    a = annotate(ips, start, insns, top=2)
    assert a["samples"] == 100 and a["instructions"] == 5
    assert [(r["offset"], r["samples"]) for r in a["top"]] == [(0xC, 60), (0x1, 30)]
    assert a["top"][0]["insn"] == "ret" and a["top"][0]["share"] == 0.6
    text = annotation_markdown({**a, "name": "discovery.find_candidates"})
    assert "| 0xc | 60 | 60.0% | `ret` |" in text


def test_the_overload_with_the_most_samples_is_the_one_annotated():
    """A helper called with a slice and with a whole array is compiled twice; the annotation
    must read the copy the samples fell in, not the first one found."""
    insns = parse_disassembly(OBJDUMP, FIND)
    idle = Code("discovery.find_candidates", FIND, 0x7F0000001000, b"")
    busy = Code("discovery.find_candidates", FIND, 0x7F0000009000, b"")
    ips = Counter({idle.start + 0x1: 3, busy.start + 0x5: 40, busy.start + 0xC: 2})
    a = busiest(ips, [(idle, insns), (busy, insns)])
    assert a["samples"] == 42 and a["overloads"] == 2 and a["name"] == idle.name
    assert a["top"][0]["offset"] == 0x5
    assert "the busiest of 2 overloads" in annotation_markdown(a)
