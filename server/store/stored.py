"""The stored forms of outcomes and ledger entries: the messages of ``loyalty/v1/ledger.proto``.

Both stores keep a commit's outcome as a ``CommitRecord`` (with the ``CommitResponse`` bytes
the commit answered, answered again on a retry), a cancel's or a return's as a
``ReversalRecord``, an adjustment's as an ``AdjustRecord``, and each ledger entry as a
``LedgerEntry``. Lines, discounts and offer uses are the same messages in memory and stored,
so only the records' scalars are copied here; decoding what was encoded gives an equal
outcome. Times are microseconds since the epoch, an absent time an unset optional field, a
guest's member id the empty string. Forms kept before these (JSON, msgpack) are still read
(:mod:`server.store.legacy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from loyalty.v1.ledger_pb2 import (
    AdjustRecord,
    CommitRecord,
    LedgerEntry,
    LedgerLine,
    ReversalRecord,
)
from server.store import legacy
from server.store.records import AdjustOutcome, CancelOutcome, CommitOutcome, ReturnOutcome
from server.store.snapshot import at_us, from_us, to_us

T = TypeVar("T")


def _us(at: datetime | None) -> int | None:
    return None if at is None else to_us(at)


def _opt(message: Any, name: str) -> Any:
    """An optional field's value, None when unset."""
    return getattr(message, name) if message.HasField(name) else None


def ledger_entry(
    kind: str,
    entry_id: str,
    transaction_id: str,
    member_id: str | None,
    at: datetime,
    lines: Sequence[LedgerLine],
    amount_minor: int,
    points_earned: int,
    points_redeemed: int,
    reason: str = "",
    *,
    store_id: str = "",
    channel: str = "",
    tier: str = "",
    segments: Sequence[str] = (),
    recorded_at: datetime | None = None,
    lane_at: datetime | None = None,
    ruleset_version: int = 0,
) -> LedgerEntry:
    """A ledger entry (``seq`` 0: the store numbers it). ``at`` is the business time: a
    commit's pricing time, the server's clock for the rest; ``recorded_at`` when the server
    wrote it (None = ``at``); ``lane_at`` the lane's clock on a commit (None = not sent);
    the checkout context (store, channel, tier, segments, rule-set version) is the commit's,
    repeated on its cancel and returns."""
    return LedgerEntry(
        kind=kind,
        entry_id=entry_id,
        transaction_id=transaction_id,
        member_id=member_id or "",
        at_us=to_us(at),
        lines=lines,
        amount_minor=amount_minor,
        points_earned=points_earned,
        points_redeemed=points_redeemed,
        reason=reason,
        store_id=store_id,
        channel=channel,
        tier=tier,
        segments=segments,
        recorded_at_us=_us(recorded_at),
        lane_at_us=_us(lane_at),
        ruleset_version=ruleset_version,
    )


def entry_at(entry: LedgerEntry) -> datetime:
    """The entry's business time."""
    return at_us(entry.at_us)


def entry_recorded_at(entry: LedgerEntry) -> datetime:
    """When the server wrote the entry."""
    return at_us(entry.recorded_at_us if entry.HasField("recorded_at_us") else entry.at_us)


def entry_lane_at(entry: LedgerEntry) -> datetime | None:
    """The lane's clock on a commit (None: not sent)."""
    return from_us(_opt(entry, "lane_at_us"))


def read_entry(data: bytes | str, seq: int) -> LedgerEntry:
    """A stored ledger entry, numbered ``seq``."""
    if isinstance(data, str) or legacy.is_legacy(data):
        entry = _legacy_entry(legacy.plain(data))
    else:
        entry = LedgerEntry.FromString(data)
    entry.seq = seq
    return entry


def _legacy_entry(p: dict[str, Any]) -> LedgerEntry:
    """A ledger entry as the LedgerEntry dataclass of versions before 0.3 kept it."""
    time = legacy.from_plain(datetime | None, p.get("at"))
    return ledger_entry(
        p["kind"],
        p["entry_id"],
        p["transaction_id"],
        p.get("member_id"),
        time,
        legacy.from_plain(tuple[LedgerLine, ...], p.get("lines", ())),
        p["amount_minor"],
        p["points_earned"],
        p["points_redeemed"],
        p.get("reason", ""),
        store_id=p.get("store_id", ""),
        channel=p.get("channel", ""),
        tier=p.get("tier", ""),
        segments=p.get("segments", ()),
        recorded_at=legacy.from_plain(datetime | None, p.get("recorded_at")),
        lane_at=legacy.from_plain(datetime | None, p.get("lane_at")),
        ruleset_version=p.get("ruleset_version", 0),
    )


# ---------------------------------------------------------------------------------------------
# Outcomes


def _legacy_outcome(cls: type[T], data: bytes | str | dict[str, Any]) -> T:
    """An outcome in a form stored before the records (a plain dict: what a legacy document
    held)."""
    values = data if isinstance(data, dict) else legacy.plain(data)
    decoded: T = legacy.from_plain(cls, values)
    return decoded


def encode_commit(o: CommitOutcome) -> bytes:
    return CommitRecord(
        transaction_id=o.transaction_id,
        member_id=o.member_id or "",
        at_us=to_us(o.at),
        lines=o.lines,
        offers=o.offers,
        points_earned=o.points_earned,
        points_redeemed=o.points_redeemed,
        points_available_at_us=_us(o.points_available_at),
        points_expire_at_us=_us(o.points_expire_at),
        qualifying_spend_minor=o.qualifying_spend_minor,
        tier_before=o.tier_before,
        tier_after=o.tier_after,
        store_id=o.store_id,
        channel=o.channel,
        segments=o.segments,
        points_available_after=o.points_available_after,
        points_pending_after=o.points_pending_after,
        recorded_at_us=_us(o.recorded_at),
        lane_at_us=_us(o.lane_at),
        ruleset_version=o.ruleset_version,
        response=o.response,
    ).SerializeToString()


def decode_commit(data: bytes | str | dict[str, Any]) -> CommitOutcome:
    """A stored commit outcome (a plain dict: what a legacy document held)."""
    if isinstance(data, dict | str) or legacy.is_legacy(data):
        return _legacy_outcome(CommitOutcome, data)
    r = CommitRecord.FromString(data)
    return CommitOutcome(
        transaction_id=r.transaction_id,
        member_id=r.member_id or None,
        at=at_us(r.at_us),
        pricing=None,
        lines=tuple(r.lines),
        offers=tuple(r.offers),
        points_earned=r.points_earned,
        points_redeemed=r.points_redeemed,
        points_available_at=from_us(_opt(r, "points_available_at_us")),
        points_expire_at=from_us(_opt(r, "points_expire_at_us")),
        qualifying_spend_minor=r.qualifying_spend_minor,
        tier_before=r.tier_before,
        tier_after=r.tier_after,
        store_id=r.store_id,
        channel=r.channel,
        segments=tuple(r.segments),
        points_available_after=_opt(r, "points_available_after"),
        points_pending_after=_opt(r, "points_pending_after"),
        recorded_at=from_us(_opt(r, "recorded_at_us")),
        lane_at=from_us(_opt(r, "lane_at_us")),
        ruleset_version=r.ruleset_version,
        response=r.response,
    )


def encode_reversal(o: CancelOutcome | ReturnOutcome) -> bytes:
    return ReversalRecord(
        return_id=o.return_id if isinstance(o, ReturnOutcome) else "",
        transaction_id=o.transaction_id,
        member_id=o.member_id or "",
        at_us=to_us(o.at),
        lines=o.lines,
        refund_minor=o.refund_minor,
        points_clawed_back=o.points_clawed_back,
        points_restored=o.points_restored,
        points_forfeited=o.points_forfeited,
        debt_added=o.debt_added,
        offers_released=o.offers_released if isinstance(o, CancelOutcome) else (),
        points_available_after=o.points_available_after,
        points_pending_after=o.points_pending_after,
        tier_after=o.tier_after,
    ).SerializeToString()


def _reversal(cls: type[T], data: bytes | str | dict[str, Any]) -> T:
    if isinstance(data, dict | str) or legacy.is_legacy(data):
        return _legacy_outcome(cls, data)
    r = ReversalRecord.FromString(data)
    common: dict[str, Any] = {
        "transaction_id": r.transaction_id,
        "member_id": r.member_id or None,
        "at": at_us(r.at_us),
        "lines": tuple(r.lines),
        "refund_minor": r.refund_minor,
        "points_clawed_back": r.points_clawed_back,
        "points_restored": r.points_restored,
        "points_forfeited": r.points_forfeited,
        "debt_added": r.debt_added,
        "points_available_after": _opt(r, "points_available_after"),
        "points_pending_after": _opt(r, "points_pending_after"),
        "tier_after": _opt(r, "tier_after"),
    }
    if cls is CancelOutcome:
        common["offers_released"] = tuple(r.offers_released)
    else:
        common["return_id"] = r.return_id
    return cls(**common)


def decode_cancel(data: bytes | str | dict[str, Any]) -> CancelOutcome:
    """A stored cancel outcome (a plain dict: what a legacy document held)."""
    return _reversal(CancelOutcome, data)


def decode_return(data: bytes | str | dict[str, Any]) -> ReturnOutcome:
    """A stored return outcome (a plain dict: what a legacy document held)."""
    return _reversal(ReturnOutcome, data)


def encode_adjust(o: AdjustOutcome) -> bytes:
    return AdjustRecord(
        adjustment_id=o.adjustment_id,
        member_id=o.member_id,
        points=o.points,
        reason=o.reason,
        at_us=to_us(o.at),
        debt_added=o.debt_added,
        points_available_after=o.points_available_after,
    ).SerializeToString()


def decode_adjust(data: bytes | str | dict[str, Any]) -> AdjustOutcome:
    """A stored adjustment outcome (a plain dict: what a legacy document held)."""
    if isinstance(data, dict | str) or legacy.is_legacy(data):
        return _legacy_outcome(AdjustOutcome, data)
    r = AdjustRecord.FromString(data)
    return AdjustOutcome(
        adjustment_id=r.adjustment_id,
        member_id=r.member_id,
        points=r.points,
        reason=r.reason,
        at=at_us(r.at_us),
        debt_added=r.debt_added,
        points_available_after=r.points_available_after,
    )


__all__ = [
    "decode_adjust",
    "decode_cancel",
    "decode_commit",
    "decode_return",
    "encode_adjust",
    "encode_commit",
    "encode_reversal",
    "entry_at",
    "entry_lane_at",
    "entry_recorded_at",
    "ledger_entry",
    "read_entry",
]
