"""Price straight from request bytes to response bytes: the service's Evaluate path.

``WireTables.build`` compiles, once per published rule set, a hash index of every string key a
request can name (skus, categories, brands, vendors, stores, channels) and the byte strings a
response needs (offer ids, funders, names). Per request, :func:`parse` turns the
``EvaluateRequest`` bytes into the kernel's arrays in one numba pass
(``engine.pricing.kernel.wire_in``), the kernel prices, and :func:`respond` writes the
``EvaluateResponse`` bytes from the kernel's outputs (``engine.pricing.kernel.wire_out``). No
protobuf message and no dataclass is built on the way.

:func:`parse` answers ``None`` for any request outside the common well-formed case; the caller
then takes the checked path (protobuf parsing, ``engine.price``), which names bad fields. So
does every request to a rule set with gift offers (the response's ``gifts`` are written by the
checked path alone). Both paths give the same response for every request (tests/test_wire.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from engine.pricing.basket import local_time
from engine.pricing.compiler import CompiledRules
from engine.pricing.constants import Kind, Tender
from engine.pricing.kernel import wire_in as W
from engine.pricing.kernel.wire_out import write_evaluate

# key kinds of the index, in the order of wire_in.K_*
KEY_KINDS = (
    "sku_index",
    "category_index",
    "brand_index",
    "vendor_index",
    "store_index",
    "channel_index",
)
# fixed words of responses, in the order wire_out reads them: tender status names, then kinds
WORDS = (*(t.name for t in sorted(Tender)), "base", "multiplier", "bonus")


def _strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of ``values`` back to back, and their offsets (n + 1)."""
    encoded = [v.encode() for v in values]
    off = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=off[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), off


@dataclass(frozen=True, eq=False)
class WireTables:
    """What the byte-level path needs of one compiled rule set."""

    key_blob: np.ndarray  # uint8: every key's bytes
    key_off: np.ndarray  # int64[n_keys + 1]
    key_kind: np.ndarray  # int64[n_keys]: wire_in.K_*
    key_val: np.ndarray  # int64[n_keys]: the index the compiled rules give the key
    table: np.ndarray  # int64[power of two]: key numbers by hash, -1 = empty
    id_blob: np.ndarray
    id_off: np.ndarray
    funder_blob: np.ndarray
    funder_off: np.ndarray
    name_blob: np.ndarray
    name_off: np.ndarray
    offer_kind: np.ndarray  # int64[n_offers]
    word_blob: np.ndarray
    word_off: np.ndarray
    # a rule set with gift offers answers on the checked path (the byte path writes no gifts)
    has_gifts: bool = False

    @classmethod
    def build(cls, compiled: CompiledRules, names: dict[str, str]) -> WireTables:
        keys: list[str] = []
        kinds: list[int] = []
        vals: list[int] = []
        for kind, name in enumerate(KEY_KINDS):
            index: dict[str, int] = getattr(compiled, name)
            keys += index.keys()
            kinds += [kind] * len(index)
            vals += index.values()
        blob, off = _strings(keys)
        key_kind = np.array(kinds, dtype=np.int64)
        ids = list(compiled.offer_ids)
        id_blob, id_off = _strings(ids)
        funder_blob, funder_off = _strings(list(compiled.offer_funder))
        name_blob, name_off = _strings([names.get(o, "") for o in ids])
        word_blob, word_off = _strings(list(WORDS))
        return cls(
            blob,
            off,
            key_kind,
            np.array(vals, dtype=np.int64),
            W.build_table(blob, off, key_kind),
            id_blob,
            id_off,
            funder_blob,
            funder_off,
            name_blob,
            name_off,
            np.array(compiled.offer_kind, dtype=np.int64),
            word_blob,
            word_off,
            Kind.GIFT in compiled.offer_kind,
        )


@dataclass(frozen=True, slots=True)
class Parsed:
    """An EvaluateRequest read by :func:`parse`; arrays as the kernel takes them."""

    buf: np.ndarray  # the request bytes (uint8 view)
    scalars: np.ndarray  # int64[wire_in.SCALARS]
    lines: np.ndarray  # int64[n, LINE_COLS]
    line_ids: np.ndarray  # int64[n, 2]: spans of buf
    member_id: str  # "" = guest
    coupon_codes: tuple[str, ...]

    @property
    def redeem_points(self) -> int:
        return int(self.scalars[W.S_REDEEM])

    @property
    def explain(self) -> bool:
        return bool(self.scalars[W.S_EXPLAIN])

    @property
    def lane_seconds(self) -> int | None:
        """The request's ``occurred_at`` in whole UTC seconds (None when unset)."""
        return int(self.scalars[W.S_SECONDS]) if self.scalars[W.S_HAS_TIME] else None

    def context(self, timezone: str, at: datetime) -> np.ndarray:
        """int64[CTX_COLS]: store, channel and the local time of ``at``, the pricing time
        (the caller decides it; the request's own ``occurred_at`` is :attr:`lane_seconds`)."""
        s = self.scalars
        t = local_time(at, timezone)
        return np.array(
            [s[W.S_STORE], s[W.S_CHANNEL], t.epoch_s, t.weekday, t.hour, t.month]
            + [t.day, t.monthday],
            dtype=np.int64,
        )


def parse(tables: WireTables, compiled: CompiledRules, data: bytes) -> Parsed | None:
    """The request's arrays, or None when it needs the checked path (see the module doc)."""
    if tables.has_gifts:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    scalars, lines, line_ids, codes = W.parse_evaluate(
        buf,
        tables.key_blob,
        tables.key_off,
        tables.key_kind,
        tables.key_val,
        tables.table,
        compiled.sku_attr,
        len(compiled.catalogue),
        compiled.delivery_category,
    )
    if scalars[W.S_STATUS] != W.OK:
        return None
    member = data[scalars[W.S_MEMBER_AT] : scalars[W.S_MEMBER_END]].decode()
    coupon_codes = tuple(data[a:b].decode() for a, b in codes.tolist())
    return Parsed(buf, scalars, lines, line_ids, member, coupon_codes)


_out = threading.local()


def respond(
    tables: WireTables,
    parsed: Parsed,
    line_out: np.ndarray,
    rows: np.ndarray,
    counts: np.ndarray,
    version: int,
    points_pending: bool,
) -> bytes:
    """``EvaluateResponse`` bytes of the kernel's outputs (coupon results and explanations
    are the caller's to append)."""
    out = getattr(_out, "buf", None)
    if out is None:
        out = _out.buf = np.empty(1 << 16, dtype=np.uint8)
    while True:
        n = write_evaluate(
            parsed.buf,
            parsed.line_ids,
            parsed.lines,
            line_out,
            rows,
            counts,
            tables.id_blob,
            tables.id_off,
            tables.funder_blob,
            tables.funder_off,
            tables.name_blob,
            tables.name_off,
            tables.offer_kind,
            tables.word_blob,
            tables.word_off,
            version,
            points_pending,
            out,
        )
        if n >= 0:
            return out[:n].tobytes()
        out = _out.buf = np.empty(max(-n, 2 * out.shape[0]), dtype=np.uint8)


__all__ = ["KEY_KINDS", "WORDS", "Parsed", "WireTables", "parse", "respond"]
