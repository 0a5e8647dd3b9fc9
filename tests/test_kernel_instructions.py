"""The instruction count's reading of callgrind's output and of the kernel's symbol table
(benchmarks/kernel_instructions.py): each function's own instructions, compiled code named
by its entry address, stages and the report. Counting itself needs valgrind and is a
benchmark, not a test."""

from __future__ import annotations

from collections import Counter

from benchmarks.kernel_instructions import (
    markdown,
    name_functions,
    read_symbols,
    self_costs,
    summarise,
)

# callgrind's format: a name is given once, with its number, where first seen (in fn= or in
# cfn=); a cost line is a line number then the instructions; after calls= comes the call's
# cost, the callee's instructions included, which is not the caller's own
CALLGRIND = """\
version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 1000

fl=(1) ???
fn=(1) 0x0000000010001000
0 300
+2 200
cfn=(2) 0x0000000010003000
calls=4 0
0 250
* 10

fn=(2)
0 250

fn=(3) PyObject_Call
0 40
cfn=(1)
calls=1 0
0 760
"""

OBJDUMP = """\
price_many.o:     file format elf64-x86-64

SYMBOL TABLE:
0000000000000000 l    df *ABS*  0000000000000000 price_many
0000000000000000 g     F .ltext 0000000000001000 _ZN6engine7pricing6kernel4core10price_coreB3v36E
0000000000002000 g F .ltext 0000000000000400 _ZN6engine7pricing6kernel9discovery14sort_positionsE
0000000000002400 g     F .ltext 0000000000000100 NRT_decref
"""


def test_each_function_counts_its_own_instructions():
    costs = self_costs(CALLGRIND.splitlines(keepends=True))
    # price_core's own lines (300 + 200 + 10), not what its call to sort_positions spent
    assert costs == Counter(
        {"0x0000000010001000": 510, "0x0000000010003000": 250, "PyObject_Call": 40}
    )


def test_compiled_code_is_named_through_the_symbol_table():
    symbols = read_symbols(OBJDUMP)
    assert symbols == [
        (0x0, 0x1000, "core.price_core"),
        (0x2000, 0x400, "discovery.sort_positions"),
        (0x2400, 0x100, "NRT_decref"),
    ]
    costs = Counter({"0x0000000010001000": 510, "0x0000000010003000": 250, "PyObject_Call": 40})
    # the block was loaded at 0x10001000: both entries start a symbol there, and no other
    # load address lines up more than one
    named = name_functions(costs, symbols)
    assert named == {
        "core.price_core": 510,
        "discovery.sort_positions": 250,
        "PyObject_Call": 40,
    }


def test_the_report_counts_per_basket_by_stage_and_function():
    named = {"core.price_core": 5100, "discovery.sort_positions": 2500, "PyObject_Call": 400}
    r = summarise(named, 10)
    assert r["per_basket"] == 800 and r["kernel_per_basket"] == 760
    stages = {s["name"]: s["per_basket"] for s in r["stages"]}
    assert stages == {
        "candidate discovery (§2-3)": 250,
        "evaluation loop, groups, applying, output rows": 510,
    }
    assert [f["name"] for f in r["functions"]] == [
        "core.price_core",
        "discovery.sort_positions",
        "PyObject_Call",
    ]
    r.update(offers=1000, machine={"cpu_model": "AMD EPYC", "usable_cores": 2})
    text = markdown(r)
    assert "800 instructions a basket, 760 of them" in text
    assert "| `discovery.sort_positions` | 250 |" in text
