# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""A basket line's row as pricing reads it: its sku's category, brand, vendor and flags from
the catalogue unless the line gives its own, a delivery charge's fixed ones. One rule for both
ways lines come in: the request parser (``kernel/wire_in.py``, a line at a time) and the
frames' encoding (``engine.pricing.frames``, a column at a time, :func:`frame_rows`) and
the lines of a ``Basket`` (``engine.pricing.api``, a row at a time, :func:`complete_rows`).
"""

from __future__ import annotations

from engine.pricing.jit import helper, njit
from engine.pricing.layout import (
    FLAG_DELIVERY,
    L_BRAND,
    L_CAT,
    L_FLAGS,
    L_PRICE,
    L_QTY,
    L_SKU,
    L_VENDOR,
)

NOT_GIVEN = -2  # a category, brand or vendor the line leaves to the catalogue


@helper
def catalogue_attrs(lines, i, sku_attr, n_cat, delivery_cat):
    """Complete row ``i`` of ``lines``, whose sku index (-1: unknown), given category, brand
    and vendor (``NOT_GIVEN`` where not given) and flags (``FLAG_DELIVERY`` or 0) are set: a
    delivery charge takes ``delivery_cat`` and no brand or vendor (the catalogue is not read
    for it); any other line the catalogue's row ``sku_attr[sku]`` (category, brand, vendor,
    flags) where it gave none, and -1 / no flags for a sku the catalogue lacks. Returns
    whether the line needs a sku id of its own (an unknown sku, or a delivery charge), so
    that lines of one sku stay one kind (``kernel/merge.py``)."""
    s = lines[i, L_SKU]
    if lines[i, L_FLAGS] == FLAG_DELIVERY:
        lines[i, L_CAT] = delivery_cat
        lines[i, L_BRAND] = -1
        lines[i, L_VENDOR] = -1
        return True
    known = 0 <= s < n_cat
    for c in range(3):
        if lines[i, L_CAT + c] == NOT_GIVEN:
            lines[i, L_CAT + c] = sku_attr[s, c] if known else -1
    lines[i, L_FLAGS] = sku_attr[s, 3] if known else 0
    return s < 0


@njit
def frame_rows(sku, given, qty, price, delivery, sku_attr, n_cat, delivery_cat, out):
    """The kernel rows of a frame's lines, in one pass, into ``out`` (int64[n, LINE_COLS]):
    ``sku`` their sku indexes (-1: unknown), ``given`` int64[n, 3] the category, brand and
    vendor indexes they give (``NOT_GIVEN``: the catalogue's; no rows: none given), ``qty``
    and ``price`` their quantities and unit prices, ``delivery`` (bool) their delivery
    flags. Returns how many need a sku id of their own (:func:`catalogue_attrs`); their
    ``L_SKU`` stays -1 here."""
    own = 0
    for i in range(sku.shape[0]):
        out[i, L_SKU] = sku[i]
        for c in range(3):
            out[i, L_CAT + c] = given[i, c] if given.shape[0] > 0 else NOT_GIVEN
        out[i, L_QTY] = qty[i]
        out[i, L_PRICE] = price[i]
        out[i, L_FLAGS] = FLAG_DELIVERY if delivery[i] else 0
        if catalogue_attrs(out, i, sku_attr, n_cat, delivery_cat):
            own += 1
    return own


@njit
def complete_rows(lines, sku_attr, n_cat, delivery_cat):
    """:func:`catalogue_attrs` on every row of ``lines``; returns how many need a sku id of
    their own."""
    own = 0
    for i in range(lines.shape[0]):
        if catalogue_attrs(lines, i, sku_attr, n_cat, delivery_cat):
            own += 1
    return own
