# numba compiles these from the arrays they receive; signatures stay untyped.
# numba's code generation helpers (cgutils) carry no annotations either.
# mypy: disable-error-code="no-untyped-def,no-untyped-call"
"""Software prefetch for the kernel: ask the CPU to load a table row's cache lines while
other work runs, so that a later read of the row does not stall on memory.

Candidate discovery knows which offer rows the evaluation will read (its candidates, in
evaluation order) a few microseconds before it reads them; the offer table (several MB at
10,000 offers) does not stay in the core's caches from one basket to the next, and each
first read of a row used to wait for it. A prefetch changes no value: it only moves data
into the caches earlier.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from engine.pricing.jit import helper

LINE_WORDS = 8  # int64 words per 64-byte cache line
# LLVM's prefetch: (address, 0 = for reading, 3 = keep in every cache level, 1 = data cache)
PREFETCH = "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, ary, i, j):
    """Prefetch the cache line holding ``ary[i, j]`` (a 2-d array; of a vector, ``ary[i]``,
    ``j`` unused) for reading. Checks no bounds and reads nothing: the address is never
    dereferenced."""
    sig = types.void(ary, i, j)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        arr = context.make_array(aryty)(context, builder, args[0])
        at = [args[1], args[2]] if aryty.ndim == 2 else [args[1]]
        ptr = cgutils.get_item_pointer(context, builder, aryty, arr, at)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, PREFETCH)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


# an LLVM intrinsic: compiled code only (without the JIT the helpers below do nothing)
PREFETCH_ON = not numba.config.DISABLE_JIT  # type: ignore[attr-defined]


@helper
def prefetch_cols(table, r, lo, hi):
    """Prefetch the cache lines holding ``table[r, lo:hi]``."""
    if PREFETCH_ON:
        for c in range(lo, hi, LINE_WORDS):
            _prefetch(table, r, c)  # type: ignore[call-arg]
        # a span that does not start on a line boundary reaches one line further
        _prefetch(table, r, hi - 1)  # type: ignore[call-arg]


@helper
def prefetch_line(table, r, c):
    """Prefetch the cache line holding ``table[r, c]``."""
    if PREFETCH_ON:
        _prefetch(table, r, c)  # type: ignore[call-arg]


@helper
def prefetch_at(vec, i):
    """Prefetch the cache line holding ``vec[i]`` of an int64 vector."""
    if PREFETCH_ON:
        _prefetch(vec, i, 0)  # type: ignore[call-arg]
