# numba's compiler pipeline and lowering helpers carry no annotations.
# mypy: disable-error-code="no-untyped-call"
"""Numba flags and the kernel cache, in one place.

``cache=True`` keeps compiled kernels on disk between processes; ``fastmath`` stays off
because every value is an integer amount of money; ``nogil`` lets server threads run
kernels side by side.

Numba's cache notices when a function's own file changes, not when a function it calls
(in another file) does, so a stale kernel could survive an upgrade. The cache directory is
therefore keyed by a hash of every kernel source file: new sources, new directory.

Kernel code never indexes an array with a negative number: every index is a position, a line,
a row or a column. Numba compiles each index by a signed integer with Python's wrap-around
(``a[-1]`` is the last item): a compare and an add, or a shift, an and and an add, at every
access, about a fifth of the batch kernel's instructions (K2: 27,891 → 21,639 a basket
without them, counted by ``benchmarks/kernel_instructions.py``). The kernels are therefore
compiled by ``KernelCompiler``: numba's own pipeline whose lowering skips the wrap-around
(``no_wraparound``). Where an index could go below 0, the bounds-checked test run
(``NUMBA_BOUNDSCHECK=1``, ``make test``) fails instead of wrapping: with bounds checks on,
numba checks the index as used, and a negative one is out of bounds.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numba
from numba.core import types
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import register_pass
from numba.core.typed_passes import NativeLowering, NativeParforLowering
from numba.np import arrayobj

if TYPE_CHECKING:
    from numba.core.dispatcher import Dispatcher

_F = TypeVar("_F", bound=Callable[..., object])

# ---- indexes without wrap-around (see the module's docstring) ------------------------------
_lowering = threading.local()
_wrapping_index = arrayobj.fix_integer_index  # numba's: a negative index counts from the end


def _kernel_index(context: Any, builder: Any, idxty: Any, idx: Any, size: Any) -> Any:
    """``arrayobj.fix_integer_index`` as the kernels' lowering asks for it: the index as it
    is, where numba's own would add the axis' length to a negative one."""
    if getattr(_lowering, "kernel", False) and idxty.signed:
        return context.cast(builder, idx, idxty, types.intp)
    return _wrapping_index(context, builder, idxty, idx, size)


arrayobj.fix_integer_index = _kernel_index  # basic indexing calls it by its module's name


@contextmanager
def no_wraparound() -> Iterator[None]:
    """While code is lowered in here, on this thread, its indexes do not wrap around."""
    before = getattr(_lowering, "kernel", False)
    _lowering.kernel = True
    try:
        yield
    finally:
        _lowering.kernel = before


@register_pass(mutates_CFG=True, analysis_only=False)
class _KernelLowering(NativeLowering):
    _name = "loyalty_kernel_lowering"

    def run_pass(self, state: Any) -> Any:
        with no_wraparound():
            return super().run_pass(state)


@register_pass(mutates_CFG=True, analysis_only=False)
class _KernelParforLowering(NativeParforLowering):
    _name = "loyalty_kernel_parfor_lowering"

    def run_pass(self, state: Any) -> Any:
        with no_wraparound():  # the parallel loop's body is lowered inside
            return super().run_pass(state)


class KernelCompiler(CompilerBase):
    """Numba's nopython pipeline, lowered without index wrap-around."""

    def define_pipelines(self) -> list[Any]:
        pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
        lowering = {NativeLowering: _KernelLowering, NativeParforLowering: _KernelParforLowering}
        pm.passes = [(lowering.get(cls, cls), desc) for cls, desc in pm.passes]
        pm.finalize()
        return [pm]


NJIT_FLAGS: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "fastmath": False,
    "error_model": "numpy",
    "pipeline_class": KernelCompiler,
}

_HERE = Path(__file__).resolve().parent
KERNEL_SOURCES = (
    "jit.py",
    "constants.py",
    "layout.py",
    "compiler.py",
    "rule_arrays.py",  # RuleArrays and the block the kernels unpack
    "restrictions.py",  # find_restricted (member-only items)
    "recurrence.py",  # Freq, read by kernel/checks.py
    "kernel/core.py",
    "kernel/batch.py",  # price_many, price_serial, price_range
    "kernel/walk.py",  # walk_limits (the limits of a replay)
    "kernel/tally.py",  # tally_chunk (a simulation chunk's figures)
    "kernel/checks.py",
    "kernel/points.py",
    "kernel/util.py",
    "kernel/discovery.py",
    "kernel/rewards.py",
    "kernel/wire_in.py",
    "kernel/line_rows.py",  # a line's row (request parser, frames' encoding)
    "kernel/wire_out.py",
    "kernel/units.py",
    "kernel/merge.py",
    "kernel/prefetch.py",
    "kernel/views.py",  # as_table
)


def kernel_source_hash() -> str:
    # numba's cache does not tell code compiled with bounds checks (NUMBA_BOUNDSCHECK) apart
    h = hashlib.sha256(f"{numba.__version__} {numba.config.BOUNDSCHECK}".encode())  # type: ignore[attr-defined]
    for name in KERNEL_SOURCES:
        h.update((_HERE / name).read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """``$LOYALTY_NUMBA_CACHE_DIR`` or ``$NUMBA_CACHE_DIR`` or ``~/.cache/loyalty-engine``,
    then one sub-directory per version of the kernel sources."""
    root = (
        os.environ.get("LOYALTY_NUMBA_CACHE_DIR")
        or os.environ.get("NUMBA_CACHE_DIR")
        or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "loyalty-engine"
        )
    )
    return Path(root) / f"numba-{kernel_source_hash()}"


# numba reads CACHE_DIR when a cached function is decorated: set it before any kernel is.
numba.config.CACHE_DIR = str(cache_dir())  # type: ignore[attr-defined]


@overload
def njit(fn: _F, **extra: Any) -> Dispatcher[_F]: ...
@overload
def njit(fn: None = None, **extra: Any) -> Callable[[_F], Dispatcher[_F]]: ...
def njit(fn: _F | None = None, **extra: Any) -> Dispatcher[_F] | Callable[[_F], Dispatcher[_F]]:
    """``numba.njit`` with the project's flags."""
    flags: dict[str, Any] = {**NJIT_FLAGS, **extra}
    if fn is None:
        return lambda f: numba.njit(**flags)(f)
    # ``**flags`` fits both of numba's ``njit`` overloads, so mypy types the call as Any
    compiled: Dispatcher[_F] = numba.njit(**flags)(fn)
    return compiled


def helper(fn: _F) -> Dispatcher[_F]:
    """``njit`` for kernel helpers that allocate nothing: compiled without reference counting.

    Numba does not inline one ``@njit`` function into another, and a call that passes arrays
    to a function compiled with its runtime (NRT) pays an atomic incref and decref per array
    (~100-500 ns a call here with the rule arrays); the same call without NRT costs ~3 ns.
    Such a helper must not create arrays; the once-per-basket functions that do keep NRT.
    """
    # ``_nrt`` is a private numba option, absent from the ``njit`` overloads in numba's stubs
    flags: dict[str, Any] = {**NJIT_FLAGS, "_nrt": False}
    compiled: Dispatcher[_F] = numba.njit(**flags)(fn)
    return compiled


def inline_helper(fn: _F) -> Dispatcher[_F]:
    """:func:`helper` whose body numba inlines into each caller (``inline="always"``): for a
    function called once per candidate with the rule arrays, whose call would cost more
    than its work (every array passes as several words on the stack)."""
    flags: dict[str, Any] = {**NJIT_FLAGS, "_nrt": False, "inline": "always"}
    compiled: Dispatcher[_F] = numba.njit(**flags)(fn)
    return compiled
