"""Offer limits across transactions, replayed in ledger order for simulation.

What the store counts at checkout (``per_member`` per period, ``total_uses``, ``budget_minor``),
kept while baskets are priced in ``seq`` order; cancels and returns give back what they give
back at their place (see :mod:`engine.analytics.simulate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.pricing import layout as L
from engine.pricing.batch import BatchOutput, EncodedBatch
from engine.pricing.compiler import CompiledRules
from engine.pricing.entry import run_kernel
from engine.pricing.periods import period_key


@dataclass(frozen=True, slots=True)
class OfferLimit:
    """An offer's limits across transactions (``rules.proto`` Limits; 0 = no cap)."""

    per_member: int
    period: int
    total_uses: int
    budget_minor: int


def offer_limits(compiled: CompiledRules) -> dict[int, OfferLimit]:
    """The offers of ``compiled`` with limits across transactions, by compiled offer index."""
    out = {}
    for o in compiled.rules.offers:
        lim = o.limits
        if (lim.per_member or lim.total_uses or lim.budget_minor) and o.id in compiled.offer_index:
            out[compiled.offer_index[o.id]] = OfferLimit(
                lim.per_member, int(lim.per_member_period), lim.total_uses, lim.budget_minor
            )
    return out


MemberKey = tuple[str, int, str]  # member, offer index, period key


@dataclass
class _Held:
    """What a simulated commit holds of the limits until a cancel or return gives it back."""

    uses: list[tuple[int, MemberKey | None]]  # offer index, member-limit key
    lines: dict[str, list[int]]  # line id -> [quantity, returned, offer, discount, offer, ...]


Event = tuple[int, bool, str, dict[str, int]]  # seq, is_cancel, transaction id, line -> units


class Limiter:
    """The limits' state while baskets are priced in ledger order (the store's counters)."""

    def __init__(self, compiled: CompiledRules, limits: dict[int, OfferLimit], events: list[Event]):
        self.compiled = compiled
        self.limits = limits
        self.tz = ZoneInfo(compiled.timezone)
        self.mask = limited_mask(compiled, limits)
        self.uses: dict[int, int] = {}
        self.spent: dict[int, int] = {}
        self.mine: dict[MemberKey, int] = {}
        self.held: dict[str, _Held] = {}  # the commits a later cancel or return reaches
        self.events = events
        self.next = 0
        self.reversed = {tid for _, _, tid, _ in events}  # the commits worth holding
        self.local: datetime | None = None  # the time of the period keys in ``periods``
        self.periods: dict[int, str] = {}

    def advance(self, seq: int) -> None:
        """Apply the cancels and returns before ledger position ``seq``."""
        while self.next < len(self.events) and self.events[self.next][0] < seq:
            _, cancel, tid, units = self.events[self.next]
            self.next += 1
            held = self.held.get(tid)
            if held is None:
                continue
            for line_id, line in held.lines.items():
                q, r0 = line[0], line[1]
                r1 = q if cancel else min(q, r0 + units.get(line_id, 0))
                for k in range(2, len(line), 2):
                    o, amount = line[k], line[k + 1]
                    self.spent[o] -= amount * r1 // q - amount * r0 // q
                line[1] = r1
            if cancel:
                for o, key in held.uses:
                    self.uses[o] -= 1
                    if key is not None:
                        self.mine[key] -= 1
                del self.held[tid]

    def key(self, o: int, member: str, local: datetime) -> MemberKey | None:
        lim = self.limits[o]
        if not (lim.per_member and member):
            return None
        return (member, o, self.bucket(lim.period, local))

    def bucket(self, period: int, local: datetime) -> str:
        """``period_key``, worked out once per basket (it asks for several offers at once)."""
        if local is not self.local:
            self.local, self.periods = local, {}
        bucket = self.periods.get(period)
        if bucket is None:
            bucket = self.periods[period] = period_key(period, local)
        return bucket

    def remaining(self, o: int, member: str, local: datetime) -> tuple[int, int, int]:
        """What is left of offer ``o``'s limits: member uses, total uses, budget (-1 = none)."""
        lim = self.limits[o]
        mu = -1
        if lim.per_member and member:
            mine = self.mine.get((member, o, self.bucket(lim.period, local)), 0)
            mu = max(0, lim.per_member - mine)
        return (
            mu,
            max(0, lim.total_uses - self.uses.get(o, 0)) if lim.total_uses else -1,
            max(0, lim.budget_minor - self.spent.get(o, 0)) if lim.budget_minor else -1,
        )

    def fits(self, applied: dict[int, int], member: str, local: datetime) -> bool:
        """Whether a result priced without limits stands: every limited offer it applied has
        uses left and at least its discount of budget (limits only refuse or cap the offers
        they name, so then the limits change nothing)."""
        for o, discount in applied.items():
            mu, tu, budget = self.remaining(o, member, local)
            if mu == 0 or tu == 0 or budget == 0 or 0 < budget < discount:
                return False
        return True

    def encoded(self, member: str, local: datetime) -> npt.NDArray[np.int64]:
        """Kernel limit rows (offer, member uses, total uses, budget) for every limited offer."""
        return np.array(
            [(o, *self.remaining(o, member, local), -1) for o in self.limits], dtype=np.int64
        ).reshape(-1, L.LIM_COLS)

    def used(self, rows: npt.NDArray[np.int64]) -> tuple[dict[int, int], dict[int, dict[int, int]]]:
        """The limited offers a basket's kernel rows applied (offer -> discount) and their
        discount per line (line -> offer -> amount)."""
        kind = rows[:, L.ROW_TYPE]
        applied: dict[int, int] = {}
        for o in rows[kind == L.ROW_APPLIED, 1].tolist():
            if o in self.limits:
                applied[o] = 0
        per_line: dict[int, dict[int, int]] = {}
        for line, o, amount in rows[kind == L.ROW_DISCOUNT, 1:4].tolist():
            if o in applied:
                applied[o] += amount
                d = per_line.setdefault(line, {})
                d[o] = d.get(o, 0) + amount
        return applied, per_line

    def record(
        self,
        tid: str,
        member: str,
        local: datetime,
        applied: dict[int, int],
        per_line: dict[int, dict[int, int]],
        line_ids: list[str],
        quantities: list[int],
    ) -> None:
        uses: list[tuple[int, MemberKey | None]] = []
        for o, discount in applied.items():
            self.uses[o] = self.uses.get(o, 0) + 1
            self.spent[o] = self.spent.get(o, 0) + discount
            key = self.key(o, member, local)
            if key is not None:
                self.mine[key] = self.mine.get(key, 0) + 1
            uses.append((o, key))
        if tid not in self.reversed:  # nothing will give it back
            return
        lines = {
            line_ids[i]: [quantities[i], 0, *(x for od in d.items() for x in od)]
            for i, d in per_line.items()
        }
        self.held[tid] = _Held(uses, lines)

    def step(self, probe: Probe) -> Override | None:
        """Apply the limits to one basket priced without them, at its turn in ledger order:
        record what it holds, and return its result priced again alone with what is left when
        the limits change it (``None`` when the result priced without them stands)."""
        self.advance(probe.seq)
        applied, per_line = self.used(probe.rows)
        override: Override | None = None
        if not self.fits(applied, probe.member, probe.local):
            lv, rb, cb = run_kernel(
                self.compiled,
                probe.lines,
                probe.member_row,
                probe.ctx,
                probe.coupons,
                self.encoded(probe.member, probe.local),
                False,
            )
            override = (lv.copy(), rb.copy(), cb.copy())
            applied, per_line = self.used(override[1])
        self.record(
            probe.transaction_id,
            probe.member,
            probe.local,
            applied,
            per_line,
            probe.line_ids,
            probe.lines[:, L.L_QTY].tolist(),
        )
        return override

    def walk(
        self, enc: EncodedBatch, out: BatchOutput, baskets: pl.DataFrame, line_ids: list[str]
    ) -> BatchOutput:
        """Apply the limits to a chunk priced without them, in ledger order: the baskets that
        applied a limited offer are checked against what is left, and priced again alone with
        the limits when that changes their result."""
        overrides: dict[int, Override] = {}
        for b, probe in probes(self.mask, self.compiled.timezone, enc, out, baskets, line_ids):
            override = self.step(probe)
            if override is not None:
                overrides[b] = override
        return patch(enc, out, overrides)


# a basket's result priced again with the limits: line values, kernel rows, counts
Override = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


@dataclass(frozen=True, slots=True)
class Probe:
    """A basket whose result priced without limits applied a limited offer: what
    :meth:`Limiter.step` needs to check it and, when the limits change it, to price it again
    alone (picklable, so that a partition priced elsewhere can be walked in one place)."""

    seq: int
    transaction_id: str
    member: str
    local: datetime  # its pricing time in the rule set's time zone
    rows: npt.NDArray[np.int64]  # its kernel rows priced without limits
    lines: npt.NDArray[np.int64]  # its encoded lines (EncodedBatch.lines rows)
    member_row: npt.NDArray[np.int64]
    ctx: npt.NDArray[np.int64]
    coupons: npt.NDArray[np.int64]
    line_ids: list[str]


def limited_mask(compiled: CompiledRules, limits: dict[int, OfferLimit]) -> npt.NDArray[np.bool_]:
    """``bool[n_offers]``: whether each compiled offer has limits across transactions."""
    mask = np.zeros(max(1, len(compiled.offer_ids)), dtype=np.bool_)
    mask[list(limits)] = True
    return mask


def probes(
    mask: npt.NDArray[np.bool_],
    timezone: str,
    enc: EncodedBatch,
    out: BatchOutput,
    baskets: pl.DataFrame,
    line_ids: list[str],
) -> list[tuple[int, Probe]]:
    """The baskets of a chunk priced without limits that applied an offer of ``mask``, in
    chunk order: ``(basket, probe)``."""
    rows = out.rows
    row_basket = np.repeat(np.arange(enc.n_baskets), np.diff(out.row_off))
    app = np.flatnonzero(rows[:, L.ROW_TYPE] == L.ROW_APPLIED)
    app = app[mask[rows[app, 1]]]
    touching = np.unique(row_basket[app])
    if not len(touching):
        return []
    idx = pl.Series(touching)
    seqs = baskets["seq"].gather(idx).to_list()
    tids = baskets["transaction_id"].gather(idx).to_list()
    members = baskets["member_id"].gather(idx).fill_null("").to_list()
    ats = baskets["occurred_at"].gather(idx).dt.convert_time_zone(timezone).to_list()
    found = []
    for b, seq, tid, member, local in zip(touching.tolist(), seqs, tids, members, ats, strict=True):
        lo, hi = int(enc.line_off[b]), int(enc.line_off[b + 1])
        probe = Probe(
            seq,
            tid,
            member,
            local,
            rows[out.row_off[b] : out.row_off[b + 1]],
            enc.lines[lo:hi],
            enc.members[b],
            enc.ctxs[b],
            enc.coupons[enc.coupon_off[b] : enc.coupon_off[b + 1]],
            line_ids[lo:hi],
        )
        found.append((b, probe))
    return found


def patch(enc: EncodedBatch, out: BatchOutput, overrides: Mapping[int, Override]) -> BatchOutput:
    """``out`` with the results of the baskets in ``overrides`` replaced."""
    if not overrides:
        return out
    rows = out.rows
    line_out, counts = out.line_out.copy(), out.counts.copy()
    pieces, pos = [], 0
    for b in sorted(overrides):
        lv, rb, cb = overrides[b]
        line_out[:, enc.line_off[b] : enc.line_off[b + 1]] = lv
        counts[b] = cb
        pieces += [rows[pos : out.row_off[b]], rb]
        pos = int(out.row_off[b + 1])
    pieces.append(rows[pos:])
    row_off = np.zeros(enc.n_baskets + 1, dtype=np.int64)
    np.cumsum(counts[:, L.N_ROWS], out=row_off[1:])
    return BatchOutput(line_out, np.concatenate(pieces), row_off, counts, out.line_off, out.retried)


__all__ = [
    "Event",
    "Limiter",
    "OfferLimit",
    "Override",
    "Probe",
    "limited_mask",
    "offer_limits",
    "patch",
    "probes",
]
