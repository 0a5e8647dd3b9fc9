# numba compiles ``unpack_rules`` from the array it receives; its signature stays untyped.
# mypy: disable-error-code="no-untyped-def"
"""The compiled rule arrays, and the one int64 block they live in.

The kernels index fifteen arrays (:class:`RuleArrays`). Handing them to a compiled kernel one
by one costs ~50 ns each per call (numba unboxes every array), 0.7 µs of a single basket's
~20 µs; so :func:`pack_rules` copies them once per published version into one block that
starts with a directory of (offset, rows, columns), each array on a 64-byte boundary, and
the kernels rebuild the arrays as views of it (:func:`unpack_rules`, a few nanoseconds).
Python reads the same views (``CompiledRules.arrays``): each value is stored once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.pricing.jit import inline_helper
from engine.pricing.kernel.views import as_table

ALIGN = 8  # each array starts on a multiple of 8 words (64 bytes) from the block's start


class RuleArrays(NamedTuple):
    """What the kernels see: arrays only (numba takes a named tuple of arrays)."""

    offer: np.ndarray  # int64[n_offers, OFFER_COLS]
    eval_order: np.ndarray  # int64[n_offers]: offer index at each evaluation position
    sets: np.ndarray  # int64[n_sets, SET_COLS]
    set_vals: np.ndarray  # int64[]: sorted slices of sku/category/brand/vendor indexes
    inv_base: np.ndarray  # int64[4]: first key of skus, categories, brands, vendors
    inv_off: np.ndarray  # int64[n_keys + 1]: CSR offsets key -> offers
    # int64[]: evaluation positions of those offers (ascending per key); a coupon offer's as
    # ~position, read only for a basket that presented that coupon (kernel/discovery.py)
    inv_pos: np.ndarray
    all_pos: np.ndarray  # int64[]: the same of offers whose scope is `all`
    ladder: np.ndarray  # int64[n_steps, 3]
    bundle: np.ndarray  # int64[n_components, 2]
    stores: np.ndarray  # int64[]: sorted store indexes per offer slice
    tier_bps: np.ndarray  # int64[n_tiers]: earn multiplier per tier
    programme: np.ndarray  # int64[PROGRAMME_COLS]
    hot: np.ndarray  # int64[n_offers, HOT_COLS]: see hot_table
    # int64[n_keys // 64 + 1]: bit ``key`` set where inv_off gives that key a list. A sku's
    # offsets are a random read from megabytes (a miss on most lines), and most skus have no
    # offer of their own; the bits of 200,000 skus are 25 KB, which stays in the core's cache
    inv_bits: np.ndarray


# The fields that are tables (two dimensions); the rest are vectors. ``unpack_rules`` spells
# the same split out field by field (numba needs each view's dimensions when it compiles).
TABLES = frozenset({"offer", "sets", "ladder", "bundle", "hot"})
N_ARRAYS = len(RuleArrays._fields)
HEADER = 3 * N_ARRAYS  # (offset, rows, columns) per field; one column for a vector


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def aligned_block(words: int) -> np.ndarray:
    """int64 zeros starting on a 64-byte boundary (numpy aligns to 16 bytes): a hot table row
    then sits on one cache line."""
    buf = np.zeros(words + ALIGN, dtype=np.int64)
    start = (-buf.ctypes.data % 64) // 8
    return buf[start : start + words]


def pack_rules(arrays: RuleArrays) -> np.ndarray:
    """One read-only int64 block holding every array of ``arrays``; :func:`unpack_views`
    gives them back as views of it."""
    at = _aligned(HEADER)
    spans = []
    for name, a in zip(RuleArrays._fields, arrays, strict=True):
        if a.dtype != np.int64 or a.ndim != (2 if name in TABLES else 1):
            raise TypeError(f"rule array {name}: {a.dtype}[{a.ndim}d] is not the kernel's")
        spans.append((at, a.shape[0], a.shape[1] if a.ndim == 2 else 1))
        at = _aligned(at + a.size)
    block = aligned_block(at)
    for i, ((start, rows, cols), a) in enumerate(zip(spans, arrays, strict=True)):
        block[3 * i : 3 * i + 3] = (start, rows, cols)
        block[start : start + a.size] = a.ravel()
    block.flags.writeable = False
    return block


def realigned(block: np.ndarray) -> np.ndarray:
    """``block`` read-only on a 64-byte boundary: itself when it starts on one, else an aligned
    copy. An unpickled block starts wherever numpy put it, and is writable (the kernels are
    compiled for a read-only block; a writable one would compile them again)."""
    if block.ctypes.data % 64:
        copy = aligned_block(block.shape[0])
        copy[:] = block
        block = copy
    block.flags.writeable = False
    return block


def unpack_views(block: np.ndarray) -> RuleArrays:
    """:func:`unpack_rules` in Python: the arrays as views of ``block``."""
    views = []
    for i, name in enumerate(RuleArrays._fields):
        start, rows, cols = (int(x) for x in block[3 * i : 3 * i + 3])
        flat = block[start : start + rows * cols]
        views.append(flat.reshape(rows, cols) if name in TABLES else flat)
    return RuleArrays(*views)


@inline_helper
def _table(block, i):
    start, rows, cols = block[3 * i], block[3 * i + 1], block[3 * i + 2]
    return as_table(block, start, rows, cols)


@inline_helper
def _vector(block, i):
    start = block[3 * i]
    return block[start : start + block[3 * i + 1]]


@inline_helper
def unpack_rules(block):
    """The :class:`RuleArrays` of a block from :func:`pack_rules`, as views of it."""
    return RuleArrays(
        _table(block, 0),
        _vector(block, 1),
        _table(block, 2),
        _vector(block, 3),
        _vector(block, 4),
        _vector(block, 5),
        _vector(block, 6),
        _vector(block, 7),
        _table(block, 8),
        _table(block, 9),
        _vector(block, 10),
        _vector(block, 11),
        _vector(block, 12),
        _table(block, 13),
        _vector(block, 14),
    )


class RewardArrays(NamedTuple):
    """The rule arrays the reward helpers read (``kernel/rewards.py``).

    Numba passes every array to a helper it does not inline as seven to nine words on the
    stack; the fourteen arrays of :class:`RuleArrays` come to 108 words, pushed again on
    every call. Proposing a reward made about three such calls per candidate, and those
    pushes were about half of ``price_core``'s samples; these five arrays are 43 words.
    """

    offer: np.ndarray
    sets: np.ndarray
    set_vals: np.ndarray
    ladder: np.ndarray
    bundle: np.ndarray


class CheckArrays(NamedTuple):
    """The rule arrays checks 1-9 read (``kernel/checks.py`` ``static_reason``): 25 words
    on the stack instead of :class:`RuleArrays`' 108."""

    offer: np.ndarray
    hot: np.ndarray
    stores: np.ndarray


@inline_helper
def reward_arrays(rules):
    """The :class:`RewardArrays` of ``rules`` (views already made: no work)."""
    return RewardArrays(rules.offer, rules.sets, rules.set_vals, rules.ladder, rules.bundle)


@inline_helper
def check_arrays(rules):
    """The :class:`CheckArrays` of ``rules``."""
    return CheckArrays(rules.offer, rules.hot, rules.stores)
