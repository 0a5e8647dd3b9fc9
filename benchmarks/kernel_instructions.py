"""Instructions per K2 basket in the batch kernel, function by function and stage by stage,
counted by callgrind (Debian's ``valgrind``): exact and repeatable, whatever else the machine
runs, where timings on a shared VM swing by a third within the hour.

    python -m benchmarks.kernel_instructions                  # 20,000 K2 baskets
    python -m benchmarks.kernel_instructions --baskets 5000 --offers 1000

Three steps. This process compiles ``price_many`` afresh into a temporary cache, for a fixed
CPU (``CPU``: valgrind's virtual CPU reports other features than the host's, and numba keys
its cache by them, so a kernel compiled for the host would be compiled again, for minutes,
under valgrind), prices the first ``--baskets`` K2 history baskets once, keeps the inputs and
the kernel's object code. A child process loads the kernel from that cache and prices the same
baskets twice under ``valgrind --tool=callgrind``; the counters are zeroed when the child
calls ``getppid`` after the first pass and written out when it calls ``getpgrp`` after the
second, so the count is of the second pass alone, on one thread (``price_many`` as
``run_batch`` calls it; the counts include what numba's thread pool does around it). Last,
each compiled function callgrind counted (it knows them only by address) is named through the
object's symbol table: the code is loaded as one block, so the offset that lines the most
function entries up with symbols is the block's.

Prints and writes ``kernel_instructions.json`` / ``.md``. These are instructions, not time:
a cache miss costs no instruction, and a division costs one. The kernel is bound by its
instructions (K2's baskets priced from cache run only ~12-15% faster), so they follow its
time closely; a change is judged by both. No count here is asserted anywhere; the test of
this module checks the parsing and the naming.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import suite
from benchmarks.kernel_annotate import demangle
from benchmarks.kernel_profile import STAGES, stage_of

CPU = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2"}
ZERO_AT, DUMP_AT = "getppid", "getpgrp"  # the child's marks: os.getppid(), os.getpgrp()
INPUTS = (
    "packed lines line_off members ctxs coupon_off coupons limit_off limits part_off part_rows"
).split()
_FN = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")
_JIT = re.compile(r"^0x([0-9a-f]+)$")


def self_costs(lines: Iterable[str]) -> Counter[str]:
    """Instructions each function executed itself (its callees' not counted), from a callgrind
    output file (``--dump-instr=no``: cost lines are a line number, then Ir)."""
    names: dict[str, str] = {}
    costs: Counter[str] = Counter()
    fn = ""
    after_call = False
    for line in lines:
        if line.startswith(("fn=", "cfn=")):  # a name is given once, where first seen
            m = _FN.match(line.rstrip("\n"))
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            if m and line[0] == "f":
                fn = names.get(m.group(1), m.group(1))
            continue
        if line.startswith("calls="):
            after_call = True  # the next cost line is the call's, callees included
            continue
        if not line or line[0] not in "0123456789+-*":
            continue
        if after_call:
            after_call = False
            continue
        parts = line.split()
        if len(parts) >= 2 and fn:
            costs[fn] += int(parts[-1])
    return costs


def read_symbols(objdump_t: str) -> list[tuple[int, int, str]]:
    """(offset, size, module.function) of each function in ``objdump -t`` output."""
    out = []
    for line in objdump_t.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[2] == "F":
            out.append((int(parts[0], 16), int(parts[4], 16), demangle(parts[-1])))
    return sorted(out)


def name_functions(costs: Counter[str], symbols: Sequence[tuple[int, int, str]]) -> dict[str, int]:
    """``costs`` by ``module.function``: each JIT address (callgrind names compiled code by
    its entry address) that starts a symbol once the block's load address is subtracted; that
    address is the one under which the most entries start a symbol."""
    starts = {off: name for off, _, name in symbols}
    jit = {name: int(m.group(1), 16) for name in costs if (m := _JIT.match(name))}
    votes = Counter(a - off for a in jit.values() for off in starts)
    base = votes.most_common(1)[0][0] if votes else 0
    named: dict[str, int] = Counter()
    for name, ir in costs.items():
        if name in jit:
            named[starts.get(jit[name] - base, f"compiled code at {name}")] += ir
        else:
            named[name] += ir
    return dict(named)


def summarise(named: dict[str, int], baskets: int) -> dict[str, Any]:
    total = sum(named.values())
    kernel = {n: ir for n, ir in named.items() if stage_of(n) is not None}
    by_stage: Counter[str] = Counter()
    for n, ir in kernel.items():
        by_stage[stage_of(n) or ""] += ir
    return {
        "baskets": baskets,
        "instructions": total,
        "per_basket": total / baskets,
        "kernel_per_basket": sum(kernel.values()) / baskets,
        "stages": [{"name": s, "per_basket": by_stage[s] / baskets} for s in STAGES if by_stage[s]],
        "functions": [
            {"name": n, "per_basket": ir / baskets}
            for n, ir in sorted(named.items(), key=lambda x: -x[1])
            if ir / baskets >= 1
        ],
    }


def markdown(r: dict[str, Any]) -> str:
    head = (
        f"# Kernel instructions: K2 batch of {r['baskets']:,} baskets, {r['offers']:,} offers\n\n"
        f"{suite.machine_line(r['machine'])}\n\n"
        f"`price_many` on one thread under callgrind: {r['per_basket']:,.0f} instructions a "
        f"basket, {r['kernel_per_basket']:,.0f} of them in the kernel's functions.\n\n"
    )
    table = ["| stage | instructions a basket |", "|---|---:|"]
    table += [f"| {s['name']} | {s['per_basket']:,.0f} |" for s in r["stages"]]
    funcs = ["", "| function | instructions a basket |", "|---|---:|"]
    funcs += [f"| `{f['name']}` | {f['per_basket']:,.0f} |" for f in r["functions"]]
    return head + "\n".join(table + funcs) + "\n"


def child(inputs: str) -> None:
    """Under callgrind: price the saved baskets twice; the second pass is counted."""
    import numba
    import numpy as np

    from engine.pricing import layout as L
    from engine.pricing.kernel.batch import price_many

    numba.set_num_threads(1)
    d = dict(np.load(inputs))
    n_b = len(d["line_off"]) - 1
    line_out = np.empty((L.LINE_OUT_COLS, d["lines"].shape[0]), dtype=np.int64)
    slab = np.empty((d["part_rows"][-1], L.ROW_COLS), dtype=np.int64)
    counts = np.zeros((n_b, L.COUNT_COLS), dtype=np.int64)
    args = [d[k] for k in INPUTS] + [line_out, slab, counts]
    price_many(*args)
    os.getppid()  # ZERO_AT
    price_many(*args)
    os.getpgrp()  # DUMP_AT


def count(offers: int, baskets: int, work: Path) -> dict[str, Any]:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if "engine.pricing.jit" in sys.modules:  # it reads the cache directory once, on import
        raise SystemExit("run as its own process: python -m benchmarks.kernel_instructions")
    env = {**os.environ, **CPU, "LOYALTY_NUMBA_CACHE_DIR": str(work / "numba")}
    os.environ.update(env)
    import numpy as np

    from benchmarks.kernel import SEED_K2
    from benchmarks.workload import make_history_frames, make_workload
    from engine import compile_rules
    from engine.pricing.batch import PARTS_PER_THREAD, ROWS_PER_LINE, batch_parts
    from engine.pricing.frames import encode_frames
    from engine.pricing.kernel.batch import price_many

    print(f"compiling the batch kernel for {CPU['NUMBA_CPU_NAME']} into {work} ...", flush=True)
    w = make_workload(offers, 200_000)
    compiled = compile_rules(w.rules, w.catalogue, validate=False)
    enc = encode_frames(compiled, *make_history_frames(w, baskets, seed=SEED_K2))
    part_off, part_rows = batch_parts(enc.line_off, ROWS_PER_LINE, PARTS_PER_THREAD)
    arrays = {k: getattr(enc, k) for k in INPUTS if hasattr(enc, k)}
    arrays.update(packed=compiled.packed, part_off=part_off, part_rows=part_rows)
    np.savez(work / "inputs.npz", **arrays)
    child(str(work / "inputs.npz"))  # compiles into the cache the child loads
    (cres,) = price_many.overloads.values()
    obj = work / "price_many.o"
    obj.write_bytes(cres.library._get_compiled_object())
    syms = subprocess.run(["objdump", "-t", str(obj)], capture_output=True, text=True, check=True)
    out = work / "callgrind.out"
    print(f"counting {baskets:,} baskets under callgrind (a minute or two) ...", flush=True)
    subprocess.run(
        [
            valgrind,
            "--tool=callgrind",
            f"--zero-before={ZERO_AT}",
            f"--dump-before={DUMP_AT}",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.kernel_instructions",
            "--child",
            str(work / "inputs.npz"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    (dump,) = [
        p for p in work.glob("callgrind.out.*") if f"--dump-before={DUMP_AT}" in p.read_text()
    ]
    with dump.open() as fh:
        named = name_functions(self_costs(fh), read_symbols(syms.stdout))
    r = summarise(named, baskets)
    r.update(offers=offers, cpu=CPU, machine=suite.machine_info())
    return r


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser("python -m benchmarks.kernel_instructions", description=__doc__)
    p.add_argument("--offers", type=int, default=10_000)
    p.add_argument("--baskets", type=int, default=20_000)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    p.add_argument("--child", metavar="INPUTS", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(a.child)
        return None
    work = Path(tempfile.mkdtemp(prefix="loyalty-instructions-"))
    try:
        r = count(a.offers, a.baskets, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = markdown(r)
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "kernel_instructions.md").write_text(text)
    (a.out / "kernel_instructions.json").write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {a.out / 'kernel_instructions'}.md")
    return r


if __name__ == "__main__":
    main(sys.argv[1:])
