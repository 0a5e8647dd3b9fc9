# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""The kernel's outputs to ``loyalty.v1.EvaluateResponse`` bytes, without building a message.

Writes the protobuf wire format directly: the lines with their discounts, the totals, the
points components and the applied offers, in the order ``engine.pricing.api.decode`` reads the
row table (docs/pricing.md §8), so the bytes parse to the message the dataclass path builds.
Default values are left out, as protobuf leaves them out. Coupon results and explanations
are not written here (the caller appends them: repeated fields may follow in any order).

Strings come from tables compiled at publish time (``engine.pricing.wire.WireTables``):
offer ids, funders and names per offer, a few fixed words; line ids are copied from the
request bytes.
"""

from __future__ import annotations

import numpy as np

from engine.pricing.constants import Kind
from engine.pricing.jit import helper, njit
from engine.pricing.layout import (
    L_PRICE,
    L_QTY,
    LO_NET,
    LO_POINTS,
    LO_TENDER,
    N_TENDER_CODE,
    N_TENDER_POINTS,
    ROW_APPLIED,
    ROW_ATTRIBUTION,
    ROW_DISCOUNT,
    ROW_POINTS,
)

# fixed words (engine.pricing.wire.WORDS, same order): tender status names, then kinds
W_BASE, W_MULTIPLIER, W_BONUS = 6, 7, 8


@helper
def vsize(v):
    """Bytes of ``v`` as a varint (negative int64: ten)."""
    if v < 0:
        return 10
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


@helper
def isize(v):
    """Bytes of an int64 field (tag below 16) holding ``v``; 0 for the default."""
    return 0 if v == 0 else 1 + vsize(v)


@helper
def ssize(n):
    """Bytes of a string or message field (tag below 16) of ``n`` bytes; 0 when empty."""
    return 0 if n == 0 else 1 + vsize(n) + n


@helper
def msize(n):
    """Bytes of an element of a repeated message field: written even when empty."""
    return 1 + vsize(n) + n


@helper
def put_varint(out, pos, v):
    u = np.uint64(v)
    while u >= np.uint64(0x80):
        out[pos] = np.uint8((u & np.uint64(0x7F)) | np.uint64(0x80))
        u >>= np.uint64(7)
        pos += 1
    out[pos] = np.uint8(u)
    return pos + 1


@helper
def put_int(out, pos, field, v):
    if v == 0:
        return pos
    out[pos] = field << 3
    return put_varint(out, pos + 1, v)


@helper
def put_head(out, pos, field, n):
    """The tag and length of a length-delimited field of ``n`` bytes."""
    out[pos] = (field << 3) | 2
    return put_varint(out, pos + 1, n)


@helper
def put_bytes(out, pos, field, src, at, end):
    """A string field copied from ``src[at:end]``; nothing when empty."""
    if end == at:
        return pos
    pos = put_head(out, pos, field, end - at)
    for i in range(at, end):
        out[pos] = src[i]
        pos += 1
    return pos


@helper
def text_len(off, k):
    return off[k + 1] - off[k]


@njit
def write_evaluate(
    req,
    line_ids,
    lines,
    line_out,
    rows,
    counts,
    id_blob,
    id_off,
    funder_blob,
    funder_off,
    name_blob,
    name_off,
    offer_kind,
    word_blob,
    word_off,
    version,
    pending,
    out,
):
    """Write the response into ``out``; returns the length, or minus the length needed when
    ``out`` is too small (nothing useful written: grow it and call again)."""
    n = lines.shape[0]
    n_rows = rows.shape[0]
    # discount rows of each line, in row order (a counting sort of the row numbers)
    first = np.zeros(n + 1, dtype=np.int64)
    for r in range(n_rows):
        if rows[r, 0] == ROW_DISCOUNT:
            first[rows[r, 1] + 1] += 1
    for i in range(n):
        first[i + 1] += first[i]
    order = np.empty(first[n], dtype=np.int64)
    fill = first[:n].copy()
    for r in range(n_rows):
        if rows[r, 0] == ROW_DISCOUNT:
            order[fill[rows[r, 1]]] = r
            fill[rows[r, 1]] += 1
    # sizes: each line, each points component, each applied offer
    line_size = np.empty(n, dtype=np.int64)
    gross_total = net_total = tender_total = points_total = 0
    for i in range(n):
        gross = lines[i, L_QTY] * lines[i, L_PRICE]
        size = ssize(line_ids[i, 1] - line_ids[i, 0]) + isize(gross)
        size += isize(line_out[LO_NET, i]) + isize(line_out[LO_TENDER, i])
        size += isize(line_out[LO_POINTS, i])
        for j in range(first[i], first[i + 1]):
            size += msize(_discount_size(rows[order[j]], id_off, funder_off))
        line_size[i] = size
        gross_total += gross
        net_total += line_out[LO_NET, i]
        tender_total += line_out[LO_TENDER, i]
        points_total += line_out[LO_POINTS, i]
    # points components: (offer, points) rows, then attribution rows (component, line, points)
    n_comp = 0
    for r in range(n_rows):
        if rows[r, 0] == ROW_POINTS:
            n_comp += 1
    comp_row = np.empty(n_comp, dtype=np.int64)
    line_points = np.zeros((n_comp, n), dtype=np.int64)
    c = 0
    for r in range(n_rows):
        if rows[r, 0] == ROW_POINTS:
            comp_row[c] = r
            c += 1
        elif rows[r, 0] == ROW_ATTRIBUTION:
            line_points[rows[r, 1], rows[r, 2]] = rows[r, 3]
    comp_size = np.empty(n_comp, dtype=np.int64)
    for c in range(n_comp):
        o = rows[comp_row[c], 1]
        packed = 0
        for i in range(n):
            packed += vsize(line_points[c, i])
        word = _kind_word(o, offer_kind)
        size = isize(rows[comp_row[c], 2]) + ssize(text_len(word_off, word))
        if o >= 0:
            size += ssize(text_len(id_off, o))
        comp_size[c] = size + (1 + vsize(packed) + packed if n > 0 else 0)
    # applied offers: totals of the discount rows seen before each (decode's order)
    n_applied = 0
    for r in range(n_rows):
        if rows[r, 0] == ROW_APPLIED:
            n_applied += 1
    applied = np.empty((n_applied, 5), dtype=np.int64)  # row, total, funded, size, packed
    a = 0
    for r in range(n_rows):
        if rows[r, 0] == ROW_APPLIED:
            o = rows[r, 1]
            total = funded = 0
            for q in range(r):
                if rows[q, 0] == ROW_DISCOUNT and rows[q, 2] == o:
                    total += rows[q, 3]
                    funded += rows[q, 4]
            size = ssize(text_len(id_off, o)) + ssize(text_len(name_off, o))
            size += isize(total) + ssize(text_len(funder_off, o)) + isize(funded)
            size += isize(rows[r, 3]) + isize(rows[r, 2])
            applied[a, 0] = r
            applied[a, 1] = total
            applied[a, 2] = funded
            applied[a, 3] = size
            a += 1
    tender_code = counts[N_TENDER_CODE]
    redeemed = counts[N_TENDER_POINTS]
    payable = net_total - tender_total
    discount_total = gross_total - net_total
    is_pending = 1 if pending and points_total > 0 else 0
    total_size = isize(version)
    for i in range(n):
        total_size += msize(line_size[i])
    total_size += isize(gross_total) + isize(discount_total) + isize(net_total)
    total_size += isize(redeemed) + isize(tender_total) + isize(payable) + isize(points_total)
    total_size += 2 * is_pending
    for c in range(n_comp):
        total_size += msize(comp_size[c])
    for a in range(n_applied):
        total_size += msize(applied[a, 3])
    total_size += ssize(text_len(word_off, tender_code))
    if total_size > out.shape[0]:
        return -total_size
    # write, in field order
    pos = put_int(out, 0, 1, version)
    for i in range(n):
        pos = put_head(out, pos, 2, line_size[i])
        pos = put_bytes(out, pos, 1, req, line_ids[i, 0], line_ids[i, 1])
        pos = put_int(out, pos, 2, lines[i, L_QTY] * lines[i, L_PRICE])
        pos = put_int(out, pos, 3, line_out[LO_NET, i])
        for j in range(first[i], first[i + 1]):
            row = rows[order[j]]
            o = row[2]
            pos = put_head(out, pos, 4, _discount_size(row, id_off, funder_off))
            pos = put_bytes(out, pos, 1, id_blob, id_off[o], id_off[o + 1])
            pos = put_int(out, pos, 2, row[3])
            pos = put_bytes(out, pos, 3, funder_blob, funder_off[o], funder_off[o + 1])
            pos = put_int(out, pos, 4, row[4])
        pos = put_int(out, pos, 5, line_out[LO_TENDER, i])
        pos = put_int(out, pos, 6, line_out[LO_POINTS, i])
    pos = put_int(out, pos, 3, gross_total)
    pos = put_int(out, pos, 4, discount_total)
    pos = put_int(out, pos, 5, net_total)
    pos = put_int(out, pos, 6, redeemed)
    pos = put_int(out, pos, 7, tender_total)
    pos = put_int(out, pos, 8, payable)
    pos = put_int(out, pos, 9, points_total)
    pos = put_int(out, pos, 10, is_pending)
    for c in range(n_comp):
        o = rows[comp_row[c], 1]
        pos = put_head(out, pos, 11, comp_size[c])
        if o >= 0:
            pos = put_bytes(out, pos, 1, id_blob, id_off[o], id_off[o + 1])
        word = _kind_word(o, offer_kind)
        pos = put_bytes(out, pos, 2, word_blob, word_off[word], word_off[word + 1])
        pos = put_int(out, pos, 3, rows[comp_row[c], 2])
        if n > 0:
            packed = 0
            for i in range(n):
                packed += vsize(line_points[c, i])
            pos = put_head(out, pos, 4, packed)
            for i in range(n):
                pos = put_varint(out, pos, line_points[c, i])
    for a in range(n_applied):
        r = applied[a, 0]
        o = rows[r, 1]
        pos = put_head(out, pos, 12, applied[a, 3])
        pos = put_bytes(out, pos, 1, id_blob, id_off[o], id_off[o + 1])
        pos = put_bytes(out, pos, 2, name_blob, name_off[o], name_off[o + 1])
        pos = put_int(out, pos, 3, applied[a, 1])
        pos = put_bytes(out, pos, 4, funder_blob, funder_off[o], funder_off[o + 1])
        pos = put_int(out, pos, 5, applied[a, 2])
        pos = put_int(out, pos, 6, rows[r, 3])
        pos = put_int(out, pos, 7, rows[r, 2])
    pos = put_bytes(out, pos, 15, word_blob, word_off[tender_code], word_off[tender_code + 1])
    return pos


@helper
def _discount_size(row, id_off, funder_off):
    """A LineDiscount of discount row ``(kind, line, offer, amount, funded)``."""
    o = row[2]
    return (
        ssize(text_len(id_off, o)) + isize(row[3]) + ssize(text_len(funder_off, o)) + isize(row[4])
    )


@helper
def _kind_word(o, offer_kind):
    if o < 0:
        return W_BASE
    return W_MULTIPLIER if offer_kind[o] == Kind.POINTS_MULTIPLIER else W_BONUS
