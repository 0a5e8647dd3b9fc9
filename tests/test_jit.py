"""How the kernels are compiled (engine/pricing/jit.py): their indexes never wrap around, and
the cache tells bounds-checked code apart."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from engine.pricing import jit

pytestmark = pytest.mark.skipif(
    numba.config.DISABLE_JIT,  # type: ignore[attr-defined]
    reason="compiled code only: without the JIT, numpy's own indexing runs",
)


def _item(a, i):  # type: ignore[no-untyped-def]
    return a[i]


def test_a_kernels_negative_index_is_out_of_bounds_not_counted_from_the_end():
    a = np.arange(5, dtype=np.int64)
    # given the same function compiled by numba's pipeline and by the kernels', bounds checked
    plain = numba.njit(boundscheck=True)(_item)
    kernel = jit.njit(_item, boundscheck=True, cache=False)
    # then both read a position
    assert plain(a, 3) == kernel(a, 3) == 3
    # and numba's counts -1 from the end, where the kernels' index is below the array
    assert plain(a, -1) == 4
    with pytest.raises(IndexError):
        kernel(a, -1)
    # and numba's own pipeline keeps its wrap-around after a kernel was compiled
    assert numba.njit(_item)(a, -2) == 3


def test_the_kernel_cache_is_keyed_by_bounds_checking(monkeypatch):
    unchecked = jit.kernel_source_hash()
    monkeypatch.setattr(numba.config, "BOUNDSCHECK", 1)
    assert jit.kernel_source_hash() != unchecked
