"""Where the kernel's time goes on the K1 workload (or K2's), function by function and stage
by stage.

    python -m benchmarks.kernel_profile              # 20 s of sampling, 10,000 offers
    python -m benchmarks.kernel_profile --seconds 60 --offers 1000 --lines 5
    python -m benchmarks.kernel_profile --batch 100000   # K2: the batch kernel, one thread
    python -m benchmarks.kernel_profile --batch 100000 --annotate discovery.find_candidates

It prices the K1 baskets (``benchmarks.kernel``'s workload, kernel alone: ``run_kernel`` on
pre-encoded arrays) over and over while ``perf record`` (Debian's ``linux-perf``) samples the
process, and names the samples through a perf map (``/tmp/perf-PID.map``) written from
numba's own symbol table. Cached kernels carry no symbol table, so the kernels are compiled
afresh into a temporary cache directory first (a minute or two). Prints and writes
``kernel_profile.json`` / ``.md``: each kernel function's samples, its share and its cost per
call (its samples over all the process's samples, times the wall time per call measured in
the same window), then the same per stage (``STAGES``). What is left is the Python wrapper,
the interpreter and the kernel's own entry (``price_one``: unboxing the arrays, the
workspace). With ``--batch N`` it samples ``price_many`` as ``run_batch`` calls it, on one
thread, over the first ``N`` K2 history baskets, and writes ``kernel_profile_k2.*``: costs
per basket. With ``--annotate module.function`` it adds that function's samples by
instruction (``benchmarks/kernel_annotate.py``). No timing here is asserted anywhere; the test
of this module checks the parsing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import suite
from benchmarks.kernel_annotate import (
    annotation_markdown,
    compiled_functions,
    demangle,
    find_code,
    function_samples,
)

# Stages of a call (docs/pricing.md §2-§6), by kernel function: module.function
STAGES: dict[str, tuple[str, ...]] = {
    "candidate discovery (§2-3)": (
        "discovery.",
        "prefetch.",
        "util.sort_ints",
        "util.coupon_uses",
        "util.in_window",
    ),
    "static checks 1-9": ("checks.static_reason", "checks.recurs", "checks.civil"),
    "checks 11-13 and proposals": (
        "checks.thresholds",
        "checks.gift_thresholds",
        "checks.discount_cap",
        "util.in_set",
        "units.",
        "rewards.",
        "util.sort_by_price",
        "util.allocate",
    ),
    # inlined into price_core, so counted here: evaluate_discount (checks 10-15), checks
    # 1-9 (static_reason), the proposals (propose_item/order, every reward kind, caps, unit
    # limits, in_set, ladders), points (earn, redeem, add), the discount's share and a share
    # over one line or one weight; the other stages keep what is called
    "evaluation loop, groups, applying, output rows": ("core.price_core", "checks."),
    "merge and share (§1.1)": ("merge.",),
    "points (§6)": ("points.",),
    "entry: arrays, workspace": (
        "core.price_one",
        "core.scratch_size",
        "core.workspace",
        "core.line_workspace",
        "NRT_",
        "_3cdynamic_3e.__numba_parfor_gufunc",  # price_many's parallel loop, over its parts
        "batch.",  # the batch's loop over baskets and its parts' workspaces
    ),
}
_ROW = re.compile(r"^\s*([\d.]+)%\s+(\d+)\s+\[(.)\]\s+(.+?)\s*$")


def write_perf_map(modules: Sequence[Any], pid: int) -> int:
    """``/tmp/perf-PID.map`` for every compiled function of ``modules``: each overload of each
    numba dispatcher is its own library, loaded at its own address, whose code section bounds
    the function (with the callees numba linked into it); returns how many."""
    from llvmlite import binding as ll

    found: dict[int, tuple[int, str]] = {}
    for cres in compiled_functions(modules):
        lib = cres.library
        start = lib.get_pointer_to_function(cres.fndesc.mangled_name)
        code = ll.ObjectFileRef.from_data(lib._get_compiled_object())
        size = sum(sec.size() for sec in code.sections() if sec.is_text())
        found[start] = (size, demangle(cres.fndesc.mangled_name))
    with open(f"/tmp/perf-{pid}.map", "w", encoding="ascii") as fh:
        for start in sorted(found):
            size, name = found[start]
            fh.write(f"{start:x} {size:x} {name}\n")
    return len(found)


def parse_report(text: str) -> tuple[int, dict[str, int]]:
    """(all samples, samples per symbol) from ``perf report --stdio -n --sort sym``."""
    total = 0
    by_symbol: dict[str, int] = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            samples = int(m.group(2))
            total += samples
            by_symbol[m.group(4)] = by_symbol.get(m.group(4), 0) + samples
    return total, by_symbol


def stage_of(symbol: str) -> str | None:
    for stage, prefixes in STAGES.items():
        if any(symbol.startswith(p) for p in prefixes):
            return stage
    return None


def summarise(total: int, by_symbol: dict[str, int], us_per_call: float) -> dict[str, Any]:
    """Kernel functions and stages: samples, share of all samples, microseconds per call."""

    def row(name: str, samples: int) -> dict[str, Any]:
        share = samples / total if total else 0.0
        return {"name": name, "samples": samples, "share": share, "us": share * us_per_call}

    functions = [
        row(s, n) for s, n in sorted(by_symbol.items(), key=lambda kv: -kv[1]) if stage_of(s)
    ]
    stages: dict[str, int] = {}
    for f in functions:
        stage = stage_of(f["name"])
        assert stage is not None
        stages[stage] = stages.get(stage, 0) + f["samples"]
    kernel = sum(stages.values())
    return {
        "samples": total,
        "us_per_call": us_per_call,
        "functions": functions,
        "stages": [row(s, stages.get(s, 0)) for s in STAGES],
        "outside_kernel": row("Python wrapper, interpreter, other", total - kernel),
    }


def profile(
    offers: int, lines: int, seconds: float, cache: str, batch: int = 0, annotate: str = ""
) -> dict[str, Any]:
    """Compile the kernels into ``cache`` (a fresh directory), then sample ``seconds`` of K1
    (``batch`` 0) or of ``price_serial`` on the first ``batch`` baskets of K2 (one thread);
    ``annotate``: a function (``module.function``) whose samples to count by instruction."""
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf is not installed (Debian: apt-get install linux-perf)")
    if "engine.pricing.jit" in sys.modules:  # it reads the cache directory once, on import
        raise SystemExit("run as its own process: python -m benchmarks.kernel_profile")
    os.environ["LOYALTY_NUMBA_CACHE_DIR"] = cache
    import numba

    from benchmarks.kernel import (
        SEED_K1,
        SEED_K2,
        SEED_MEMBER,
        WALLET_SIZE,
        kernel_calls,
        parallel_kernel,
    )
    from benchmarks.workload import make_baskets, make_history_frames, make_member, make_workload
    from engine import compile_rules, warm_up
    from engine.pricing.entry import run_kernel
    from engine.pricing.frames import encode_frames
    from engine.pricing.kernel import (
        batch as batch_kernel,
    )
    from engine.pricing.kernel import (
        checks,
        core,
        discovery,
        merge,
        points,
        prefetch,
        rewards,
        units,
        util,
    )

    print(f"compiling the kernels with symbols into {cache} ...", flush=True)
    warm_up()
    w = make_workload(offers, 200_000)
    compiled = compile_rules(w.rules, w.catalogue, validate=False)
    shape: float = lines
    if batch:  # price_many as run_batch calls it, on one thread: its parts one after another
        numba.set_num_threads(1)
        frames = make_history_frames(w, batch, seed=SEED_K2)
        shape = round(len(frames[0]) / batch, 2)  # lines per basket, on average
        call = parallel_kernel(compiled, encode_frames(compiled, *frames))

        def work() -> int:
            call()
            return batch

    else:
        baskets = make_baskets(w, 200, lines, seed=SEED_K1)
        calls = kernel_calls(compiled, baskets, make_member(w, WALLET_SIZE, seed=SEED_MEMBER))

        def work() -> int:
            for args in calls:
                run_kernel(*args)
            return len(calls)

    work()
    modules = [core, checks, discovery, merge, points, prefetch, rewards, units, util, batch_kernel]
    mapped = write_perf_map(modules, os.getpid())
    codes = find_code(modules, annotate) if annotate else []
    data = Path(tempfile.mkdtemp(prefix="loyalty-profile-")) / "perf.data"
    rec = subprocess.Popen(
        [perf, "record", "-F", "1999", "-p", str(os.getpid()), "-o", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # perf attaches
    done = 0
    with suite.gc_off():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            done += work()
        elapsed = time.perf_counter() - t0
    rec.send_signal(signal.SIGINT)
    _, err = rec.communicate(timeout=120)
    if rec.returncode not in (0, -signal.SIGINT) or not data.exists():
        raise SystemExit(f"perf record failed: {err.decode(errors='replace')[-500:]}")
    report = subprocess.run(
        [perf, "report", "-i", str(data), "--stdio", "-n", "--no-children", "--sort", "sym"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(f"/tmp/perf-{os.getpid()}.map").unlink(missing_ok=True)
    annotation = function_samples(perf, data, codes) if codes else None
    shutil.rmtree(data.parent, ignore_errors=True)
    total, by_symbol = parse_report(report)
    r = summarise(total, by_symbol, elapsed * 1e6 / done)
    r.update(
        offers=offers,
        lines=shape,
        calls=done,
        seconds=elapsed,
        functions_mapped=mapped,
        batch=batch,
        annotation=annotation,
        candidates_note=(
            "K2: price_many on one thread, history baskets"
            if batch
            else "K1: about 112 candidate offers per 20-line basket at 10,000 offers"
        ),
        machine=suite.machine_info(),
    )
    return r


def markdown(r: dict[str, Any]) -> str:
    if r.get("batch"):
        title = f"K2 batch of {r['batch']:,} baskets ({r['lines']} lines each on average)"
        what = "baskets, one thread", "basket", "batch kernel alone"
    else:
        title = f"{r['lines']} lines"
        what = "calls", "call", "kernel alone, with its Python wrapper"
    head = (
        f"# Kernel profile: {title}, {r['offers']:,} offers\n\n"
        f"{suite.machine_line(r['machine'])}\n\n"
        f"{r['calls']:,} {what[0]} in {r['seconds']:.1f} s: {r['us_per_call']:.2f} µs per "
        f"{what[1]} ({what[2]}); {r['samples']:,} samples.\n\n"
    )
    table = [f"| stage | share | µs per {what[1]} |", "|---|---:|---:|"]
    for s in [*r["stages"], r["outside_kernel"]]:
        table.append(f"| {s['name']} | {s['share']:.1%} | {s['us']:.2f} |")
    funcs = ["", f"| function | share | µs per {what[1]} |", "|---|---:|---:|"]
    for f in r["functions"]:
        funcs.append(f"| `{f['name']}` | {f['share']:.1%} | {f['us']:.2f} |")
    text = head + "\n".join(table + funcs) + "\n"
    if r.get("annotation"):
        text += "\n" + annotation_markdown(r["annotation"])
    return text


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser("python -m benchmarks.kernel_profile", description=__doc__)
    p.add_argument("--offers", type=int, default=10_000)
    p.add_argument("--lines", type=int, default=20)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument(
        "--batch",
        type=int,
        default=0,
        help="profile the batch kernel on this many K2 baskets (one thread) instead of K1",
    )
    p.add_argument(
        "--annotate",
        default="",
        metavar="MODULE.FUNCTION",
        help="also count one function's samples by instruction (benchmarks/kernel_annotate.py)",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = p.parse_args(argv)
    cache = tempfile.mkdtemp(prefix="loyalty-profile-numba-")
    try:
        r = profile(a.offers, a.lines, a.seconds, cache, a.batch, a.annotate)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    text = markdown(r)
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    name = "kernel_profile_k2" if a.batch else "kernel_profile"
    (a.out / f"{name}.md").write_text(text)
    (a.out / f"{name}.json").write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {a.out / name}.md")
    return r


if __name__ == "__main__":
    main(sys.argv[1:])
