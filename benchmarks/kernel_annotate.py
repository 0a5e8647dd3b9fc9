"""Kernel function names (numba's symbols), and samples by instruction for one of them: where
inside it the time goes.

    python -m benchmarks.kernel_profile --batch 100000 --annotate discovery.find_candidates

``benchmarks.kernel_profile`` names each sample's function; this module, given the same
``perf record`` data, counts the samples at each instruction address of one function and
lines them up with its machine code, disassembled (``objdump``, Debian's ``binutils``) from
the object numba compiled it into. The JIT loads that object as it is, so an address minus
the function's start is the instruction's offset in the object. A sample lands on the
instruction after the one that stalls as often as on the stalled one (the sampling interrupt
is taken when an instruction retires), so read a hot load as the cost of the line just above
it. Inlined helpers have no symbols of their own: their instructions count toward the
function they were inlined into.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S.*)$")
_HEAD = re.compile(r"^([0-9a-f]+) <(.+)>:$")
_TARGET = re.compile(r"<[^<>]*?(\+0x[0-9a-f]+)?>")  # a jump's target, named by its offset


def demangle(name: str) -> str:
    """``module.function`` of a numba symbol (``_ZN6engine7pricing6kernel4util8in_set...``)."""
    i = name.find("_ZN")
    if i < 0:
        return name
    i += 3
    parts: list[str] = []
    while i < len(name) and name[i].isdigit():
        j = i
        while name[j].isdigit():
            j += 1
        size = int(name[i:j])
        parts.append(name[j : j + size])
        i = j + size
    return ".".join(parts[-2:]) if parts else name


@dataclass(frozen=True)
class Code:
    """One compiled function: where it runs, and the object holding its machine code."""

    name: str  # module.function
    mangled: str
    start: int  # its address in this process
    obj: bytes


def compiled_functions(modules: Sequence[Any]) -> Iterator[Any]:
    """Every compiled overload (numba's compile result) of the dispatchers each of
    ``modules`` defines (not those it imports)."""
    for module in modules:
        for value in vars(module).values():
            overloads = getattr(value, "overloads", None)
            if overloads and getattr(value, "__module__", None) == module.__name__:
                yield from overloads.values()


def find_code(modules: Sequence[Any], name: str) -> list[Code]:
    """Every compiled ``name`` (``module.function``) among ``modules``' numba dispatchers: one
    per overload (a helper called with a slice and with a whole array is compiled twice)."""
    found = []
    for cres in compiled_functions(modules):
        mangled = cres.fndesc.mangled_name
        if demangle(mangled) == name:
            lib = cres.library
            start = lib.get_pointer_to_function(mangled)
            found.append(Code(name, mangled, start, lib._get_compiled_object()))
    if not found:
        raise SystemExit(f"no compiled function {name!r} (module.function, e.g. core.price_core)")
    return found


def parse_disassembly(text: str, mangled: str) -> list[tuple[int, str]]:
    """(offset from the function's first byte, instruction) for each instruction of
    ``mangled`` in ``objdump -d`` output."""
    out: list[tuple[int, str]] = []
    base = -1
    for line in text.splitlines():
        head = _HEAD.match(line)
        if head:
            base = int(head.group(1), 16) if head.group(2) == mangled else -1
            continue
        m = _INSN.match(line)
        if m and base >= 0:
            insn = _TARGET.sub(lambda t: f"<{t.group(1) or '+0x0'}>", m.group(2))
            out.append((int(m.group(1), 16) - base, " ".join(insn.split())))
    return out


def disassemble(code: Code) -> list[tuple[int, str]]:
    with tempfile.TemporaryDirectory(prefix="loyalty-annotate-") as tmp:
        path = Path(tmp) / "kernel.o"
        path.write_bytes(code.obj)
        text = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", "-M", "intel", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return parse_disassembly(text, code.mangled)


def sample_ips(perf: str, data: Path) -> Counter[int]:
    """Samples per instruction address in ``perf record``'s ``data``."""
    text = subprocess.run(
        [perf, "script", "-i", str(data), "-F", "ip"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Counter(int(tok, 16) for tok in text.split())


def annotate(
    ips: Counter[int], start: int, insns: Sequence[tuple[int, str]], top: int = 30
) -> dict[str, Any]:
    """The function's samples by instruction: its total, and its ``top`` instructions by
    samples (offset, instruction, samples, share of the function's), hottest first."""
    at = {off: text for off, text in insns}
    end = insns[-1][0] + 16 if insns else 0
    counts = Counter({ip - start: n for ip, n in ips.items() if 0 <= ip - start < end})
    total = sum(counts.values())
    rows = [
        {"offset": off, "insn": at.get(off, "?"), "samples": n, "share": n / total}
        for off, n in counts.most_common(top)
    ]
    return {"samples": total, "instructions": len(insns), "top": rows}


def annotation_markdown(a: dict[str, Any]) -> str:
    lines = [
        f"## Instructions of `{a['name']}`: {a['samples']:,} samples over {a['instructions']:,} "
        "instructions"
        + (f" (the busiest of {a['overloads']} overloads)" if a.get("overloads", 1) > 1 else ""),
        "",
        "| offset | samples | share | instruction |",
        "|---:|---:|---:|---|",
    ]
    for r in a["top"]:
        lines.append(f"| {r['offset']:#x} | {r['samples']:,} | {r['share']:.1%} | `{r['insn']}` |")
    return "\n".join(lines) + "\n"


def busiest(
    ips: Counter[int], overloads: Sequence[tuple[Code, Sequence[tuple[int, str]]]]
) -> dict[str, Any]:
    """:func:`annotate` of the one of ``overloads`` (each a function's code and its
    instructions) that has the most samples, named, with how many overloads there were."""
    best: dict[str, Any] = {}
    for code, insns in overloads:
        a = annotate(ips, code.start, insns)
        if not best or a["samples"] > best["samples"]:
            best = a
            best["name"] = code.name
    best["overloads"] = len(overloads)
    return best


def function_samples(perf: str, data: Path, codes: Sequence[Code]) -> dict[str, Any]:
    """The samples by instruction in ``data`` of the busiest of ``codes``, the overloads of
    one function (see the module docstring)."""
    return busiest(sample_ips(perf, data), [(code, disassemble(code)) for code in codes])
