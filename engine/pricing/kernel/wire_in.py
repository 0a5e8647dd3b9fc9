# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Request bytes to the kernel's arrays in one pass: a parser of the protobuf wire format of
``loyalty.v1.EvaluateRequest`` over the raw bytes, with string keys resolved through a hash
index compiled at publish time (``engine.pricing.wire``).

The parser takes only the common, well-formed case. Anything else — an unknown field, a wire
type protobuf would keep as an unknown field, a repeated ``occurred_at``, a value the request
checks refuse, text that is not UTF-8 — is answered ``FALLBACK``: the caller then parses with
protobuf and checks with ``server.api.convert``, which name the field. So the fast path needs
no error messages of its own, and both paths agree on every input by construction.

Every read is bounds-checked against the buffer: hostile bytes end in ``FALLBACK``, never in a
read past the end.
"""

from __future__ import annotations

import numpy as np

from engine.pricing.constants import (
    EARLIEST_S,
    LATEST_S,
    MAX_BASKET_GROSS_MINOR,
    MAX_COUPON_CODES,
    MAX_ID_CHARS,
    MAX_LINES,
    MAX_QUANTITY,
    MAX_UNIT_PRICE_MINOR,
)
from engine.pricing.jit import helper, njit
from engine.pricing.kernel.line_rows import NOT_GIVEN, catalogue_attrs
from engine.pricing.layout import (
    FLAG_DELIVERY,
    L_BRAND,
    L_CAT,
    L_FLAGS,
    L_PRICE,
    L_QTY,
    L_SKU,
    L_VENDOR,
    LINE_COLS,
)

OK = 0
FALLBACK = 1

# string key kinds of the index (engine.pricing.wire.KEY_KINDS, same order)
K_SKU, K_CATEGORY, K_BRAND, K_VENDOR, K_STORE, K_CHANNEL = 0, 1, 2, 3, 4, 5

# scalars of a parsed request: int64[SCALARS]
S_STATUS = 0
S_LINES = 1
S_CODES = 2
S_MEMBER_AT = 3  # member_id: [at, end) in the request bytes
S_MEMBER_END = 4
S_STORE = 5  # store index or -1
S_CHANNEL = 6  # channel index or -1
S_HAS_TIME = 7
S_SECONDS = 8
S_NANOS = 9
S_REDEEM = 10
S_EXPLAIN = 11
S_GROSS = 12
SCALARS = 13


FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


@helper
def fnv1a(buf, at, end, kind):
    """64-bit FNV-1a of the key kind then the bytes ``buf[at:end]``."""
    h = FNV_OFFSET
    h = (h ^ np.uint64(kind)) * FNV_PRIME
    for i in range(at, end):
        h = (h ^ np.uint64(buf[i])) * FNV_PRIME
    return h


@helper
def lookup(buf, at, end, kind, blob, key_off, key_kind, key_val, table):
    """The value of key ``(kind, buf[at:end])`` in the index, or -1."""
    mask = np.uint64(table.shape[0] - 1)
    slot = fnv1a(buf, at, end, kind) & mask
    n = end - at
    while True:
        k = table[slot]
        if k < 0:
            return -1
        if key_kind[k] == kind and key_off[k + 1] - key_off[k] == n:
            start = key_off[k]
            same = True
            for i in range(n):
                if blob[start + i] != buf[at + i]:
                    same = False
                    break
            if same:
                return key_val[k]
        slot = (slot + np.uint64(1)) & mask


@njit
def build_table(blob, key_off, key_kind):
    """Open-addressing table (power of two, at most half full) of key numbers by hash."""
    n = key_kind.shape[0]
    cap = 16
    while cap < 2 * n:
        cap *= 2
    table = np.full(cap, -1, dtype=np.int64)
    mask = np.uint64(cap - 1)
    for k in range(n):
        slot = fnv1a(blob, key_off[k], key_off[k + 1], key_kind[k]) & mask
        while table[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = k
    return table


@helper
def varint(buf, pos, end):
    """``(value as int64, next position)``; position -1 when truncated or over 10 bytes."""
    result = np.uint64(0)
    shift = np.uint64(0)
    while pos < end and shift < np.uint64(64):
        b = buf[pos]
        pos += 1
        result |= np.uint64(b & 0x7F) << shift
        if b < 0x80:
            return np.int64(result), pos
        shift += np.uint64(7)
    return np.int64(0), -1


@helper
def utf8_chars(buf, at, end):
    """Code points in ``buf[at:end]``, or -1 when it is not strict UTF-8 (as protobuf checks:
    no overlong forms, no surrogates, nothing above U+10FFFF)."""
    chars = 0
    i = at
    while i < end:
        b = buf[i]
        if b < 0x80:
            i += 1
        elif 0xC2 <= b <= 0xDF:
            if i + 1 >= end or buf[i + 1] & 0xC0 != 0x80:
                return -1
            i += 2
        elif 0xE0 <= b <= 0xEF:
            if i + 2 >= end or buf[i + 1] & 0xC0 != 0x80 or buf[i + 2] & 0xC0 != 0x80:
                return -1
            c1 = buf[i + 1]
            if (b == 0xE0 and c1 < 0xA0) or (b == 0xED and c1 >= 0xA0):
                return -1
            i += 3
        elif 0xF0 <= b <= 0xF4:
            if (
                i + 3 >= end
                or buf[i + 1] & 0xC0 != 0x80
                or buf[i + 2] & 0xC0 != 0x80
                or buf[i + 3] & 0xC0 != 0x80
            ):
                return -1
            c1 = buf[i + 1]
            if (b == 0xF0 and c1 < 0x90) or (b == 0xF4 and c1 >= 0x90):
                return -1
            i += 4
        else:
            return -1
        chars += 1
    return chars


@helper
def field_end(buf, pos, end):
    """For a length-delimited field whose length starts at ``pos``: ``(start, stop)`` of its
    bytes, or ``(-1, -1)`` when the length is bad or runs past ``end``."""
    n, pos = varint(buf, pos, end)
    if pos < 0 or n < 0 or n > end - pos:
        return -1, -1
    return pos, pos + n


@helper
def same_bytes(buf, a0, a1, b0, b1):
    if a1 - a0 != b1 - b0:
        return False
    for i in range(a1 - a0):
        if buf[a0 + i] != buf[b0 + i]:
            return False
    return True


@njit
def parse_evaluate(buf, blob, key_off, key_kind, key_val, table, sku_attr, n_cat, delivery_cat):
    """Parse an EvaluateRequest. Returns ``(scalars, lines, line_ids, codes)``: scalars
    int64[SCALARS] (``S_STATUS`` OK or FALLBACK), lines int64[n, LINE_COLS] as the kernel
    takes them, line_ids int64[n, 2] and codes int64[k, 2] as ``[at, end)`` spans of ``buf``."""
    end = buf.shape[0]
    sc = np.zeros(SCALARS, dtype=np.int64)
    sc[S_STATUS] = FALLBACK
    sc[S_STORE] = -1
    sc[S_CHANNEL] = -1
    empty = np.zeros((0, LINE_COLS), dtype=np.int64)
    no_spans = np.zeros((0, 2), dtype=np.int64)
    # pass 1: top-level fields, counts, scalars
    n_lines = 0
    n_codes = 0
    store0 = store1 = chan0 = chan1 = 0
    pos = 0
    while pos < end:
        key, pos = varint(buf, pos, end)
        if pos < 0:
            return sc, empty, no_spans, no_spans
        field = key >> 3
        wire = key & 7
        if wire == 2 and 1 <= field <= 6:
            a, b = field_end(buf, pos, end)
            if a < 0:
                return sc, empty, no_spans, no_spans
            pos = b
            if field == 5:
                n_lines += 1
                continue
            chars = utf8_chars(buf, a, b) if field != 4 else 0
            if chars < 0 or chars > MAX_ID_CHARS:  # every string of a request is an id
                return sc, empty, no_spans, no_spans
            if field == 1:
                sc[S_MEMBER_AT] = a
                sc[S_MEMBER_END] = b
            elif field == 2:
                store0, store1 = a, b
            elif field == 3:
                chan0, chan1 = a, b
            elif field == 4:
                if sc[S_HAS_TIME] or not _timestamp(buf, a, b, sc):
                    return sc, empty, no_spans, no_spans
            else:
                n_codes += 1
        elif wire == 0 and (field == 7 or field == 8):
            v, pos = varint(buf, pos, end)
            if pos < 0:
                return sc, empty, no_spans, no_spans
            if field == 7:
                sc[S_REDEEM] = v
            else:
                sc[S_EXPLAIN] = 1 if v != 0 else 0
        else:
            return sc, empty, no_spans, no_spans
    if n_lines < 1 or n_lines > MAX_LINES or n_codes > MAX_COUPON_CODES or sc[S_REDEEM] < -1:
        return sc, empty, no_spans, no_spans
    sc[S_STORE] = lookup(buf, store0, store1, K_STORE, blob, key_off, key_kind, key_val, table)
    sc[S_CHANNEL] = lookup(buf, chan0, chan1, K_CHANNEL, blob, key_off, key_kind, key_val, table)
    # pass 2: the lines and the codes
    lines = np.empty((n_lines, LINE_COLS), dtype=np.int64)
    ids = np.empty((n_lines, 4), dtype=np.int64)  # line id span, sku span
    codes = np.empty((n_codes, 2), dtype=np.int64)
    cap = 16
    while cap < 2 * n_lines:
        cap *= 2
    seen = np.full(cap, -1, dtype=np.int64)  # line ids by hash: duplicates fall back
    unknown = np.full(cap, -1, dtype=np.int64)  # skus the index lacks, by hash
    n_unknown = 0
    li = ci = 0
    gross = 0
    pos = 0
    while pos < end:
        key, pos = varint(buf, pos, end)
        field = key >> 3
        if field == 7 or field == 8:
            _, pos = varint(buf, pos, end)
            continue
        a, b = field_end(buf, pos, end)
        pos = b
        if field == 6:
            codes[ci, 0] = a
            codes[ci, 1] = b
            ci += 1
        elif field == 5:
            if not _line(buf, a, b, li, lines, ids, blob, key_off, key_kind, key_val, table):
                return sc, empty, no_spans, no_spans
            # one id per sku the index lacks (and per delivery charge): one sku, one kind
            if catalogue_attrs(lines, li, sku_attr, n_cat, delivery_cat):
                slot = fnv1a(buf, ids[li, 2], ids[li, 3], 0) & np.uint64(cap - 1)
                while unknown[slot] >= 0:
                    j = unknown[slot]
                    if same_bytes(buf, ids[j, 2], ids[j, 3], ids[li, 2], ids[li, 3]):
                        break
                    slot = (slot + np.uint64(1)) & np.uint64(cap - 1)
                if unknown[slot] >= 0:
                    lines[li, L_SKU] = lines[unknown[slot], L_SKU]
                else:
                    unknown[slot] = li
                    lines[li, L_SKU] = -2 - n_unknown
                    n_unknown += 1
            gross += lines[li, L_QTY] * lines[li, L_PRICE]
            slot = fnv1a(buf, ids[li, 0], ids[li, 1], 0) & np.uint64(cap - 1)
            while seen[slot] >= 0:
                j = seen[slot]
                if same_bytes(buf, ids[j, 0], ids[j, 1], ids[li, 0], ids[li, 1]):
                    return sc, empty, no_spans, no_spans
                slot = (slot + np.uint64(1)) & np.uint64(cap - 1)
            seen[slot] = li
            li += 1
    if gross > MAX_BASKET_GROSS_MINOR:
        return sc, empty, no_spans, no_spans
    sc[S_LINES] = n_lines
    sc[S_CODES] = n_codes
    sc[S_GROSS] = gross
    sc[S_STATUS] = OK
    return sc, lines, ids, codes


@helper
def _timestamp(buf, at, end, sc):
    """A google.protobuf.Timestamp inside the range datetime can hold; False otherwise."""
    seconds = np.int64(0)
    nanos = np.int64(0)
    pos = at
    while pos < end:
        key, pos = varint(buf, pos, end)
        if pos < 0 or key & 7 != 0 or not (key >> 3 == 1 or key >> 3 == 2):
            return False
        v, pos = varint(buf, pos, end)
        if pos < 0:
            return False
        if key >> 3 == 1:
            seconds = v
        else:
            nanos = v
    if seconds < EARLIEST_S or seconds > LATEST_S or nanos < 0 or nanos > 999_999_999:
        return False
    sc[S_HAS_TIME] = 1
    sc[S_SECONDS] = seconds
    sc[S_NANOS] = nanos
    return True


@helper
def _line(buf, at, end, li, lines, ids, blob, key_off, key_kind, key_val, table):
    """One Line into ``lines[li]`` (category/brand/vendor -2 = not given: the catalogue's) and
    its id span into ``ids[li]``; False when the line needs the checked path."""
    id0 = id1 = sku0 = sku1 = 0
    cat0 = cat1 = brand0 = brand1 = vendor0 = vendor1 = 0
    qty = np.int64(0)
    price = np.int64(0)
    delivery = 0
    pos = at
    while pos < end:
        key, pos = varint(buf, pos, end)
        if pos < 0:
            return False
        field = key >> 3
        wire = key & 7
        if wire == 0 and (field == 3 or field == 4 or field == 8):
            v, pos = varint(buf, pos, end)
            if pos < 0:
                return False
            if field == 3:
                qty = v
            elif field == 4:
                price = v
            else:
                delivery = FLAG_DELIVERY if v != 0 else 0
        elif wire == 2 and (field == 1 or field == 2 or 5 <= field <= 7):
            a, b = field_end(buf, pos, end)
            if a < 0:
                return False
            pos = b
            chars = utf8_chars(buf, a, b)
            if chars < 0 or chars > MAX_ID_CHARS:
                return False
            if field == 1:
                id0, id1 = a, b
            elif field == 2:
                sku0, sku1 = a, b
            elif field == 5:
                cat0, cat1 = a, b
            elif field == 6:
                brand0, brand1 = a, b
            else:
                vendor0, vendor1 = a, b
        else:
            return False
    if id1 == id0 or sku1 == sku0:
        return False
    if qty < 1 or qty > MAX_QUANTITY or price < 0 or price > MAX_UNIT_PRICE_MINOR:
        return False
    lines[li, L_SKU] = lookup(buf, sku0, sku1, K_SKU, blob, key_off, key_kind, key_val, table)
    lines[li, L_CAT] = _given(buf, cat0, cat1, K_CATEGORY, blob, key_off, key_kind, key_val, table)
    lines[li, L_BRAND] = _given(
        buf, brand0, brand1, K_BRAND, blob, key_off, key_kind, key_val, table
    )
    lines[li, L_VENDOR] = _given(
        buf, vendor0, vendor1, K_VENDOR, blob, key_off, key_kind, key_val, table
    )
    lines[li, L_QTY] = qty
    lines[li, L_PRICE] = price
    lines[li, L_FLAGS] = delivery
    ids[li, 0] = id0
    ids[li, 1] = id1
    ids[li, 2] = sku0
    ids[li, 3] = sku1
    return True


@helper
def _given(buf, at, end, kind, blob, key_off, key_kind, key_val, table):
    """An optional attribute of a line: NOT_GIVEN when empty (the catalogue's applies)."""
    if end == at:
        return NOT_GIVEN
    return lookup(buf, at, end, kind, blob, key_off, key_kind, key_val, table)
