"""The store's ledger as a history frame (``engine.analytics.history.HISTORY_SCHEMA``).

``loyalty ledger export`` writes it to Parquet, so reports, targeting and simulation read the
real ledger exactly as they read a synthetic history.

Each entry carries its commit's checkout context (store, channel, and the member's tier and
segments when the basket was priced), repeated on the commit's cancel and returns. Category,
brand and vendor come from the catalogue given (empty without one); the birthday month is the
member's current profile. Points adjustments are not basket lines and are left out. ``at`` is
the pricing time (the lane's for an offline sync); ``recorded_at``, ``lane_at`` and
``ruleset_version`` say when the server wrote the entry, what the lane's clock said and which
rule-set version priced the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import polars as pl

from engine.analytics.history import HISTORY_SCHEMA, conform
from engine.errors import NotFound
from engine.pricing.catalogue import Catalogue
from engine.pricing.types import AttributeValue
from server.store.base import LedgerEntry, MemberRecord, Store
from server.store.stored import entry_at, entry_lane_at, entry_recorded_at

PAGE = 10_000


def ledger_entries(store: Store, since: int = 0, page: int = PAGE) -> Iterator[LedgerEntry]:
    """Every ledger entry after ``since``, page by page, oldest first."""
    while True:
        batch = store.ledger(since, page)
        yield from batch
        if len(batch) < page:
            return
        since = batch[-1].seq


def history_rows(
    entries: Iterable[LedgerEntry],
    catalogue: Catalogue | None = None,
    member: Callable[[str], MemberRecord | None] | None = None,
) -> pl.DataFrame:
    """Ledger entries (commit, cancel, return) as history rows, one per line."""
    cols: dict[str, list[Any]] = {c: [] for c in HISTORY_SCHEMA}
    cache: dict[str, MemberRecord | None] = {}
    for e in entries:
        if e.kind not in ("commit", "cancel", "return"):
            continue
        rec = None
        if e.member_id and member is not None:
            if e.member_id not in cache:
                cache[e.member_id] = member(e.member_id)
            rec = cache[e.member_id]
        for no, line in enumerate(e.lines):
            row = catalogue.get(line.sku) if catalogue is not None else None
            values = {
                "seq": e.seq,
                "kind": e.kind,
                "entry_id": e.entry_id,
                "transaction_id": e.transaction_id,
                "member_id": e.member_id,
                "at": entry_at(e),
                "store_id": e.store_id,
                "channel": e.channel,
                "tier": e.tier,
                "segments": list(e.segments),
                "birthday_month": rec.birthday_month if rec else 0,
                "line_no": no,
                "line_id": line.line_id,
                "sku": line.sku,
                "category": row.category if row else "",
                "brand": row.brand if row else "",
                "vendor": row.vendor if row else "",
                "quantity": line.quantity,
                "gross_minor": line.gross_minor,
                "net_minor": line.net_minor,
                "tender_minor": line.tender_minor,
                "discount_minor": sum(d.amount_minor for d in line.discounts),
                "funded_minor": sum(d.funded_minor for d in line.discounts),
                "points_earned": line.points_earned,
                "points_redeemed": line.points_redeemed,
                "discounts": [
                    {
                        "offer_id": d.offer_id,
                        "funder_id": d.funder_id,
                        "amount_minor": d.amount_minor,
                        "funded_minor": d.funded_minor,
                    }
                    for d in line.discounts
                ],
                "recorded_at": entry_recorded_at(e),
                "lane_at": entry_lane_at(e),
                "ruleset_version": e.ruleset_version,
                "delivery": line.delivery,
            }
            for c, v in values.items():
                cols[c].append(v)
    return conform(pl.DataFrame(cols, schema=HISTORY_SCHEMA)).collect()


def export_ledger(
    store: Store, catalogue: Catalogue | None = None, since: int = 0, now: datetime | None = None
) -> pl.DataFrame:
    """The whole ledger after ``since`` as a history frame."""
    at = now or datetime.now(UTC)

    def member(member_id: str) -> MemberRecord | None:
        try:
            return store.get_member(member_id, at)
        except NotFound:
            return None

    return history_rows(ledger_entries(store, since), catalogue, member)


def member_attributes(
    store: Store, history: pl.DataFrame | pl.LazyFrame, now: datetime
) -> dict[str, Mapping[str, AttributeValue]]:
    """The current typed attributes of the members of ``history`` that have any (a ledger
    records none), for the attribute conditions of a simulation
    (:func:`engine.analytics.simulate.priced`)."""
    ids = (
        history.lazy()
        .select(pl.col("member_id").drop_nulls().unique())
        .collect()["member_id"]
        .to_list()
    )
    out: dict[str, Mapping[str, AttributeValue]] = {}
    for at in range(0, len(ids), PAGE):
        for member_id, record in store.get_members(ids[at : at + PAGE], now).items():
            if record.attributes:
                out[member_id] = record.attributes
    return out
