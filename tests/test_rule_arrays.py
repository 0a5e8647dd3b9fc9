"""The rule arrays in one block: packed once per compile, unpacked as views by the kernels."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from numba import njit

from benchmarks.kernel import kernel_calls
from benchmarks.workload import make_baskets, make_member, make_workload
from engine import compile_rules
from engine.pricing import layout as L
from engine.pricing.compiler import key_bits
from engine.pricing.entry import run_kernel
from engine.pricing.kernel.views import as_table
from engine.pricing.rule_arrays import (
    TABLES,
    CheckArrays,
    RewardArrays,
    RuleArrays,
    check_arrays,
    pack_rules,
    realigned,
    reward_arrays,
    unpack_rules,
    unpack_views,
)


@njit
def _kernel_views(block):
    return unpack_rules(block)


@njit
def _kernel_table(vec, start, rows, cols):
    return as_table(vec, start, rows, cols)


@pytest.fixture(scope="module")
def workload():
    w = make_workload(300, 2_000, seed=17)
    return w, compile_rules(w.rules, w.catalogue)


def _arrays(seed: int, empty: frozenset[str] = frozenset()) -> RuleArrays:
    rng = np.random.default_rng(seed)
    out = []
    for name in RuleArrays._fields:
        rows = 0 if name in empty else int(rng.integers(1, 40))
        shape = (rows, int(rng.integers(1, 9))) if name in TABLES else (rows,)
        out.append(rng.integers(-(2**62), 2**62, size=shape, dtype=np.int64))
    return RuleArrays(*out)


@pytest.mark.parametrize(
    "empty", [frozenset(), frozenset({"ladder", "bundle", "tier_bps", "all_pos"})]
)
def test_a_packed_block_gives_back_every_array_in_python_and_in_the_kernel(empty) -> None:
    arrays = _arrays(5, empty)
    block = pack_rules(arrays)
    assert not block.flags.writeable and block.ctypes.data % 64 == 0
    for views in (unpack_views(block), _kernel_views(block)):
        for name, view, original in zip(RuleArrays._fields, views, arrays, strict=True):
            assert view.shape == original.shape, name
            assert np.array_equal(view, original), name
            assert view.ctypes.data % 64 == 0 or view.size == 0, name  # each on a cache line
            assert np.shares_memory(view, block) or view.size == 0, name


def test_only_int64_arrays_of_the_kernels_dimensions_are_packed() -> None:
    arrays = _arrays(6)
    with pytest.raises(TypeError, match="ladder"):
        pack_rules(arrays._replace(ladder=arrays.ladder.ravel()))
    with pytest.raises(TypeError, match="stores"):
        pack_rules(arrays._replace(stores=arrays.stores.astype(np.int32)))


def test_compiled_rules_read_their_arrays_from_the_block(workload) -> None:
    _, compiled = workload
    for name, view in zip(RuleArrays._fields, compiled.arrays, strict=True):
        assert view.size == 0 or np.shares_memory(view, compiled.packed), name
        assert not view.flags.writeable, name
    with pytest.raises(ValueError):
        compiled.arrays.offer[0, 0] = 1


def test_a_pickled_rule_set_keeps_one_aligned_block_and_prices_the_same(workload) -> None:
    w, compiled = workload
    back = pickle.loads(pickle.dumps(compiled))
    assert back.packed.ctypes.data % 64 == 0 and not back.packed.flags.writeable
    assert np.array_equal(back.packed, compiled.packed)
    for view in back.arrays:
        assert view.size == 0 or np.shares_memory(view, back.packed)
    baskets = make_baskets(w, 30, 8, seed=3)
    member = make_member(w, 5, seed=4)
    for before, after in zip(
        kernel_calls(compiled, baskets, member), kernel_calls(back, baskets, member), strict=True
    ):
        want = [x.copy() for x in run_kernel(*before)]
        got = run_kernel(*after)
        for a, b in zip(want, got, strict=True):
            assert np.array_equal(a, b)


def test_realigning_copies_only_a_block_off_the_cache_line() -> None:
    block = pack_rules(_arrays(7))
    assert realigned(block) is block
    writable = block.copy()  # numpy's copy keeps the alignment it gets, not always 64 bytes
    assert not realigned(writable).flags.writeable
    shifted = np.zeros(block.shape[0] + 1, dtype=np.int64)[1:]  # numpy aligns to 16 bytes
    assert shifted.ctypes.data % 64 != 0
    shifted[:] = block
    again = realigned(shifted)
    assert again.ctypes.data % 64 == 0 and not again.flags.writeable
    assert np.array_equal(again, block)


@njit
def _narrow(block):
    rules = unpack_rules(block)
    return reward_arrays(rules), check_arrays(rules)


def test_the_helpers_tuples_are_views_of_the_same_block(workload) -> None:
    """The reward helpers and checks 1-9 take narrower tuples than the fourteen rule arrays
    (numba passes each array to a helper as seven to nine words on the stack): each field is
    the block's own array, in compiled code and in Python."""
    _, compiled = workload
    views = unpack_views(compiled.packed)
    in_python = tuple(  # the Python functions (themselves without the JIT)
        getattr(f, "py_func", f)(views) for f in (reward_arrays, check_arrays)
    )
    for reward, check in (_narrow(compiled.packed), in_python):
        assert isinstance(reward, RewardArrays) and isinstance(check, CheckArrays)
        for narrow in (reward, check):
            for name, view in zip(narrow._fields, narrow, strict=True):
                full = getattr(compiled.arrays, name)
                assert view.shape == full.shape and np.array_equal(view, full), name
                assert view.size == 0 or np.shares_memory(view, compiled.packed), name


def test_the_key_bits_mark_exactly_the_keys_with_a_list(workload) -> None:
    """Discovery reads a key's offsets only where its bit is set: a bit missing would lose
    that key's offers, so every key is checked against the index itself."""
    _, compiled = workload
    arrays = unpack_views(compiled.packed)
    n_keys = arrays.inv_off.shape[0] - 1
    keys = np.arange(n_keys)
    bits = (arrays.inv_bits[keys >> 6] >> (keys & 63)) & 1
    has_list = np.diff(arrays.inv_off) > 0
    assert has_list.any() and not has_list.all()
    assert np.array_equal(bits == 1, has_list)
    assert arrays.inv_bits.shape[0] == (n_keys >> 6) + 1


def test_key_bits_set_bit_63_and_the_last_word() -> None:
    inv_off = np.zeros(131, dtype=np.int64)  # 130 keys: lists for keys 0, 63, 64 and 129
    for key in (0, 63, 64, 129):
        inv_off[key + 1 :] += 1
    bits = key_bits(inv_off)
    assert bits.dtype == np.int64 and bits.shape == (3,)
    assert [k for k in range(130) if (bits[k >> 6] >> (k & 63)) & 1] == [0, 63, 64, 129]


def test_coupon_offers_are_marked_in_the_index(workload) -> None:
    """Discovery passes over an entry below 0 unless the basket presented that coupon: every
    coupon offer's entries must be marked (~position) and no automatic offer's, and marking
    must lose no entry."""
    _, compiled = workload
    arrays = unpack_views(compiled.packed)
    for entries in (arrays.inv_pos, arrays.all_pos):
        marked = entries < 0
        pos = np.where(marked, ~entries, entries)
        assert ((pos >= 0) & (pos < arrays.eval_order.shape[0])).all()
        coupon = arrays.offer[arrays.eval_order[pos], L.O_ACTIVATION] == 1
        assert np.array_equal(marked, coupon)
    assert (arrays.inv_pos < 0).any() and (arrays.inv_pos >= 0).any()


def test_a_kernel_table_is_a_view_of_its_vector_in_c_order() -> None:
    vec = np.arange(40, dtype=np.int64)
    table = _kernel_table(vec, 3, 4, 5)
    assert np.array_equal(table, vec[3:23].reshape(4, 5))
    assert table.flags.c_contiguous and table.strides == (40, 8)
    table[2, 1] = -1  # a write lands in the vector, row by row
    assert vec[3 + 2 * 5 + 1] == -1
    assert _kernel_table(vec, 40, 0, 5).shape == (0, 5)  # an empty table at the very end
    assert np.array_equal(_kernel_table(vec, 20, 4, 5), vec[20:].reshape(4, 5))


@pytest.mark.parametrize("start,rows,cols", [(21, 4, 5), (0, 9, 5), (-1, 1, 1), (0, -1, 1)])
def test_a_kernel_table_past_its_vector_is_refused(start: int, rows: int, cols: int) -> None:
    with pytest.raises(IndexError):
        _kernel_table(np.zeros(40, dtype=np.int64), start, rows, cols)


def test_a_kernel_table_of_a_read_only_vector_is_read_only() -> None:
    vec = np.arange(12, dtype=np.int64)
    vec.flags.writeable = False
    table = _kernel_table(vec, 2, 2, 5)
    assert not table.flags.writeable
    assert np.array_equal(table, vec[2:12].reshape(2, 5))
