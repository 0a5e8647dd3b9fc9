"""What the console's budget and settlement views read: offer counters and ledger funding.

- :func:`offer_counters`: each offer's uses and budget spent, as the store counts them for its
  caps (over all rule-set versions, cancels and returns taken back).
- :class:`LedgerFunding`: discount given and funded per offer and funder over the whole ledger,
  kept up to date incrementally (each call reads only the entries after the last one it saw),
  so a page that refreshes every few seconds does not read the ledger again each time.
- :func:`settlement_between`: ``engine.analytics.reports.settlement`` over the ledger entries
  of a period of local days.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from engine.analytics.reports import settlement
from server.analytics.ledger import history_rows, ledger_entries
from server.store.base import LedgerEntry, Store, sign
from server.store.policy import Policy
from server.store.snapshot import to_us

# A cap no counter reaches: read through the store's limits, ``cap - remaining`` is the count.
_PROBE_CAP = 2**62


def offer_counters(
    store: Store, policy: Policy, offer_ids: Sequence[str], now: datetime | None = None
) -> dict[str, tuple[int, int]]:
    """Offer id -> ``(uses, budget spent minor)``, the counters the store checks the offers'
    ``total_uses`` and ``budget_minor`` against (kept for every offer, capped or not).

    The store answers what is *left* of an offer's caps; asked with a policy that gives every
    offer a cap no counter reaches, the counts are that cap less what is left.
    """
    offers = {
        o: dataclasses.replace(
            policy.offers[o], per_member=0, total_uses=_PROBE_CAP, budget_minor=_PROBE_CAP
        )
        for o in offer_ids
        if o in policy.offers
    }
    probe = dataclasses.replace(policy, offers=offers, limited=tuple(offers))
    limits = store.pricing_state(probe, None, None, (), now or datetime.now(UTC)).limits
    out = {}
    for o in offers:
        left = limits.get(o)
        uses_left = left.total_uses if left is not None else None
        budget_left = left.budget_minor if left is not None else None
        out[o] = (
            _PROBE_CAP - (uses_left if uses_left is not None else _PROBE_CAP),
            _PROBE_CAP - (budget_left if budget_left is not None else _PROBE_CAP),
        )
    return out


Amounts = dict[str, dict[str, list[int]]]  # offer -> funder -> [discount, funded]


class LedgerFunding:
    """Signed discount and funding per (offer, funder) over the ledger (cancels and returns
    negative), read incrementally; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._amounts: Amounts = {}

    def read(self, store: Store) -> tuple[int, Amounts]:
        """``(last seq, offer -> funder -> [discount_minor, funded_minor])`` up to now."""
        with self._lock:
            for e in ledger_entries(store, self._seq):
                for line in e.lines:
                    for d in line.discounts:
                        cell = self._amounts.setdefault(d.offer_id, {}).setdefault(
                            d.funder_id, [0, 0]
                        )
                        cell[0] += sign(e) * d.amount_minor
                        cell[1] += sign(e) * d.funded_minor
                self._seq = e.seq
            return self._seq, {
                o: {f: list(v) for f, v in m.items()} for o, m in self._amounts.items()
            }


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of ``day`` on the wall clock of ``zone``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _between(
    entries: Iterable[LedgerEntry], start: datetime, end: datetime
) -> Iterator[LedgerEntry]:
    start_us, end_us = to_us(start), to_us(end)
    return (e for e in entries if start_us <= e.at_us < end_us)


def settlement_between(
    store: Store,
    first: date,
    last: date,
    timezone: str,
    funders: Sequence[str] = (),
) -> pl.DataFrame:
    """Settlement rows (``engine.analytics.reports.settlement`` columns, ``day`` a date) of the
    ledger entries whose local day in ``timezone`` lies in ``first..last``; ``funders`` keeps
    only those (empty = all)."""
    zone = ZoneInfo(timezone)
    start, end = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
    history = history_rows(_between(ledger_entries(store), start, end))
    return settlement(history, list(funders) or None, timezone)


__all__ = ["LedgerFunding", "local_midnight", "offer_counters", "settlement_between"]
