"""Offer limits across transactions, replayed in ledger order for simulation.

What the store counts at checkout (``per_member`` per period, ``total_uses``, ``budget_minor``),
kept while baskets are priced in ``seq`` order; cancels and returns give back what they give
back at their place (see :mod:`engine.analytics.simulate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.analytics.probes import Override, Probe, splice, touching
from engine.pricing import layout as L
from engine.pricing.batch import BatchOutput, EncodedBatch, csr
from engine.pricing.compiler import CompiledRules
from engine.pricing.kernel.walk import limited_applied, walk_limits
from engine.pricing.periods import period_buckets


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


@dataclass
class _Held:
    """What a simulated commit holds of the limits until a cancel or return gives it back."""

    uses: list[tuple[int, int]]  # limited-offer slot, member-period counter (-1: none)
    lines: dict[str, list[int]]  # line id -> [quantity, returned, slot, discount, slot, ...]


Event = tuple[int, bool, str, dict[str, int]]  # seq, is_cancel, transaction id, line -> units

# a member-period counter's code: (member number x slots + slot) << _BUCKET_BITS | bucket
_BUCKET_BITS = 22  # period_buckets stay below 2**22 up to the year 9999


@dataclass(frozen=True, slots=True)
class _Probes:
    """The baskets of a batch whose results priced without limits applied a limited offer,
    in ledger order: their basket numbers in the batch, ``seq``, member and, for those a
    later cancel or return reaches, transaction id and line ids."""

    basket: npt.NDArray[np.int64]
    seq: npt.NDArray[np.int64]
    members: list[str]
    reversed: dict[int, tuple[str, list[str]]]  # probe -> transaction id, line ids


class Limiter:
    """The limits' state while baskets are priced in ledger order (the store's counters),
    walked by the compiled :func:`walk_limits`; cancels and returns are applied between."""

    def __init__(self, compiled: CompiledRules, limits: dict[int, OfferLimit], events: list[Event]):
        self.compiled = compiled
        self.mask = limited_mask(compiled, limits)
        self.offer_of = np.array(sorted(limits), dtype=np.int64)  # slot -> offer
        self.slot_of = np.full(len(self.mask), -1, dtype=np.int64)
        self.slot_of[self.offer_of] = np.arange(len(self.offer_of))
        caps = [limits[o] for o in self.offer_of.tolist()]
        self.caps = np.array(
            [(c.per_member, c.total_uses, c.budget_minor) for c in caps], dtype=np.int64
        ).reshape(-1, 3)
        self.period_of = np.array([c.period for c in caps], dtype=np.int64)
        self.uses = np.zeros(len(caps), dtype=np.int64)
        self.spent = np.zeros(len(caps), dtype=np.int64)
        self.mine = np.zeros(1024, dtype=np.int64)  # by counter number
        self.codes = np.zeros(0, dtype=np.int64)  # the counters' codes, sorted
        self.numbers = np.zeros(0, dtype=np.int64)  # their numbers
        self.member_no: dict[str, int] = {}
        self.held: dict[str, _Held] = {}  # the commits a later cancel or return reaches
        self.events = events
        self.next = 0
        self.reversed = {tid for _, _, tid, _ in events}  # the commits worth holding
        self.ov_rows = np.empty((1024, L.ROW_COLS), dtype=np.int64)

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
                    j, amount = line[k], line[k + 1]
                    self.spent[j] -= amount * r1 // q - amount * r0 // q
                line[1] = r1
            if cancel:
                for j, key in held.uses:
                    self.uses[j] -= 1
                    if key >= 0:
                        self.mine[key] -= 1
                del self.held[tid]

    def keys(self, members: list[str], buckets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``int64[P, J]``: each probe's member-period counter of each slot (-1 where the
        slot has no member limit or the basket no member), numbering new counters."""
        n_slots = len(self.offer_of)
        no = np.array(
            [self.member_no.setdefault(m, len(self.member_no)) if m else -1 for m in members],
            dtype=np.int64,
        )
        out = np.full((len(members), n_slots), -1, dtype=np.int64)
        valid = (no[:, None] >= 0) & (self.caps[:, 0] > 0)[None, :]
        if not valid.any():
            return out
        codes = ((no[:, None] * n_slots + np.arange(n_slots)) << _BUCKET_BITS) | buckets[
            :, self.period_of
        ]
        out[valid] = self.numbered(codes[valid])
        return out

    def numbered(self, codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The counter number of each code, new codes numbered after the known ones."""
        u, inv = np.unique(codes, return_inverse=True)
        pos = np.searchsorted(self.codes, u)
        known = pos < len(self.codes)
        known[known] = self.codes[pos[known]] == u[known]
        nos = np.empty(len(u), dtype=np.int64)
        nos[known] = self.numbers[pos[known]]
        fresh = np.flatnonzero(~known)
        if len(fresh):
            n = len(self.codes)
            nos[fresh] = np.arange(n, n + len(fresh))
            codes_all = np.concatenate([self.codes, u[fresh]])
            order = np.argsort(codes_all, kind="stable")
            self.codes = codes_all[order]
            self.numbers = np.concatenate([self.numbers, nos[fresh]])[order]
            if len(self.mine) < len(self.codes):
                self.mine = np.concatenate(
                    [self.mine, np.zeros(len(self.codes) + len(self.mine), dtype=np.int64)]
                )
        return nos[inv.reshape(-1)]

    def walk(
        self, enc: EncodedBatch, out: BatchOutput, baskets: pl.DataFrame, line_ids: pl.Series
    ) -> BatchOutput:
        """Apply the limits to a chunk priced without them, in ledger order: the baskets that
        applied a limited offer are checked against what is left, and priced again alone with
        the limits when that changes their result (``out`` is updated in place)."""
        basket = touching(self.mask, enc, out)
        if not len(basket):
            return out
        idx = pl.Series(basket)
        tids = baskets["transaction_id"].gather(idx)
        held: dict[int, tuple[str, list[str]]] = {}  # the probes a cancel or return reaches
        for p in np.flatnonzero(tids.is_in(list(self.reversed)).to_numpy()).tolist():
            lo, hi = int(enc.line_off[basket[p]]), int(enc.line_off[basket[p] + 1])
            held[p] = (tids[p], line_ids.slice(lo, hi - lo).to_list())
        found = _Probes(
            basket,
            baskets["seq"].gather(idx).to_numpy().astype(np.int64),
            baskets["member_id"].gather(idx).fill_null("").to_list(),
            held,
        )
        ov_at, ov_rows = self.walk_probes(
            enc, out.rows, out.row_off, out.line_out, out.counts, found
        )
        again = ov_at >= 0
        b = basket[again]
        return splice(out, b, ov_at[again], out.counts[b, L.N_ROWS], ov_rows)

    def walk_probes(
        self,
        enc: EncodedBatch,
        rows: npt.NDArray[np.int64],
        row_off: npt.NDArray[np.int64],
        line_out: npt.NDArray[np.int64],
        counts: npt.NDArray[np.int64],
        found: _Probes,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Walk the probes of a batch (:func:`walk_limits`), applying the cancels and returns
        between them at their places: the line outputs and counts of the baskets priced again
        are written over theirs in ``line_out`` and ``counts``. Returns where each probe's new
        rows start in the other array returned (-1: its result stands)."""
        keys = self.keys(found.members, period_buckets(enc.ctxs[found.basket, L.C_LOCAL_DAY]))
        n = len(found.basket)
        ov_at = np.full(n, -1, dtype=np.int64)
        state = np.zeros(1, dtype=np.int64)
        p = 0
        while p < n:
            self.advance(int(found.seq[p]))
            end = n
            if self.next < len(self.events):
                end = max(p + 1, int(np.searchsorted(found.seq, self.events[self.next][0])))
            start = p
            while p < end:
                p = walk_limits(
                    self.compiled.packed,
                    rows,
                    row_off,
                    enc.lines,
                    enc.line_off,
                    enc.members,
                    enc.ctxs,
                    enc.coupon_off,
                    enc.coupons,
                    found.basket,
                    keys,
                    self.slot_of,
                    self.offer_of,
                    self.caps,
                    self.uses,
                    self.spent,
                    self.mine,
                    p,
                    end,
                    line_out,
                    counts,
                    self.ov_rows,
                    ov_at,
                    state,
                )
                if p < end:  # its rows did not fit
                    grown = np.empty((2 * len(self.ov_rows), L.ROW_COLS), dtype=np.int64)
                    grown[: state[0]] = self.ov_rows[: state[0]]
                    self.ov_rows = grown
            for q in range(start, end):
                if q in found.reversed:
                    b = found.basket[q]
                    at = ov_at[q]
                    final = (
                        rows[row_off[b] : row_off[b + 1]]
                        if at < 0
                        else self.ov_rows[at : at + counts[b, L.N_ROWS]]
                    )
                    tid, ids = found.reversed[q]
                    lo, hi = enc.line_off[b], enc.line_off[b + 1]
                    self.hold(tid, final, keys[q], ids, enc.lines[lo:hi, L.L_QTY].tolist())
        return ov_at, self.ov_rows[: state[0]]

    def hold(
        self,
        tid: str,
        rows: npt.NDArray[np.int64],
        keys: npt.NDArray[np.int64],
        line_ids: list[str],
        quantities: list[int],
    ) -> None:
        """Keep what commit ``tid`` (its final ``rows``) holds of the limits, for a later
        cancel or return to give back."""
        hit = np.zeros(len(self.offer_of), dtype=np.int64)
        disc = np.zeros(len(self.offer_of), dtype=np.int64)
        limited_applied(rows, self.slot_of, hit, disc)
        uses = [(j, int(keys[j])) for j in np.flatnonzero(hit).tolist()]
        per_line: dict[int, list[int]] = {}
        for line, o, amount in rows[rows[:, L.ROW_TYPE] == L.ROW_DISCOUNT, 1:4].tolist():
            j = int(self.slot_of[o])
            if j >= 0 and hit[j]:
                per_line.setdefault(line, []).extend((j, amount))
        lines = {line_ids[i]: [quantities[i], 0, *d] for i, d in per_line.items()}
        self.held[tid] = _Held(uses, lines)

    def walk_each(self, probes: list[Probe]) -> list[Override | None]:
        """Apply the limits to baskets priced without them elsewhere (a partition each), in
        ledger order (``probes`` sorted by ``seq``): each one's result priced again alone
        when the limits change it, ``None`` when it stands."""
        if not probes:
            return []
        line_off, lines = csr([p.lines for p in probes], L.LINE_COLS)
        coupon_off, coupons = csr([p.coupons for p in probes], 2)
        enc = EncodedBatch(
            lines,
            line_off,
            np.stack([p.member_row for p in probes]),
            np.stack([p.ctx for p in probes]),
            coupon_off,
            coupons,
            np.zeros(len(probes) + 1, dtype=np.int64),
            np.zeros((0, L.LIM_COLS), dtype=np.int64),
        )
        row_off, rows = csr([p.rows for p in probes], L.ROW_COLS)
        line_out = np.zeros((L.LINE_OUT_COLS, len(enc.lines)), dtype=np.int64)
        counts = np.zeros((len(probes), L.COUNT_COLS), dtype=np.int64)
        found = _Probes(
            np.arange(len(probes), dtype=np.int64),
            np.array([p.seq for p in probes], dtype=np.int64),
            [p.member for p in probes],
            {
                k: (p.transaction_id, p.line_ids)
                for k, p in enumerate(probes)
                if p.transaction_id in self.reversed
            },
        )
        ov_at, ov_rows = self.walk_probes(enc, rows, row_off, line_out, counts, found)
        out: list[Override | None] = []
        for k, at in enumerate(ov_at.tolist()):
            if at < 0:
                out.append(None)
                continue
            lo, hi = enc.line_off[k], enc.line_off[k + 1]
            n_rows = counts[k, L.N_ROWS]
            out.append(
                (line_out[:, lo:hi].copy(), ov_rows[at : at + n_rows].copy(), counts[k].copy())
            )
        return out


def limited_mask(compiled: CompiledRules, limits: dict[int, OfferLimit]) -> npt.NDArray[np.bool_]:
    """``bool[n_offers]``: whether each compiled offer has limits across transactions."""
    mask = np.zeros(max(1, len(compiled.offer_ids)), dtype=np.bool_)
    mask[list(limits)] = True
    return mask


__all__ = [
    "Event",
    "Limiter",
    "OfferLimit",
    "limited_mask",
    "offer_limits",
]
