"""Reading and writing member state inside an open SQLite transaction (embedded store).

Functions here take a connection that is already inside ``BEGIN``/``BEGIN IMMEDIATE``; they
never commit. Lot arithmetic is delegated to :mod:`server.store.points`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from engine.types import RemainingLimits
from server.store import codec
from server.store import points as P
from server.store.base import (
    CodeStatus,
    Consent,
    InvalidArgument,
    LedgerEntry,
    MemberRecord,
    NotFound,
    PointLot,
    PricingState,
    WalletCoupon,
)
from server.store.policy import Policy

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def at_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def check_time(name: str, at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidArgument(name, "must be a timezone-aware datetime")
    return at.astimezone(UTC)


def check_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidArgument(name, "must be a non-empty string of at most 200 characters")
    return value


# ---------------------------------------------------------------------------------------------
# Members and lots


def member_row(db: sqlite3.Connection, member_id: str) -> sqlite3.Row:
    row = db.execute("SELECT * FROM members WHERE member_id = ?", (member_id,)).fetchone()
    if row is None:
        raise NotFound(f"member {member_id!r} not found")
    return row


def load_lots(db: sqlite3.Connection, member_id: str) -> list[P.Lot]:
    rows = db.execute("SELECT lot_id, points, earned_us, available_us, expires_us FROM point_lots"
                      " WHERE member_id = ? AND points > 0 ORDER BY lot_id", (member_id,))
    return [P.Lot(r[0], r[1], at_us(r[2]), at_us(r[3]), from_us(r[4])) for r in rows]


def load_lot(db: sqlite3.Connection, lot_id: int | None) -> P.Lot | None:
    if lot_id is None:
        return None
    r = db.execute("SELECT lot_id, points, earned_us, available_us, expires_us FROM point_lots"
                   " WHERE lot_id = ?", (lot_id,)).fetchone()
    return P.Lot(r[0], r[1], at_us(r[2]), at_us(r[3]), from_us(r[4])) if r else None


def save_lots(db: sqlite3.Connection, member_id: str, lots: Iterable[P.Lot],
              source: str) -> None:
    """Write changed lots back and insert new ones (their ``lot_id`` is filled in)."""
    for lot in lots:
        if lot.lot_id is None:
            cur = db.execute(
                "INSERT INTO point_lots (member_id, points, earned_us, available_us, expires_us,"
                " source) VALUES (?, ?, ?, ?, ?, ?)",
                (member_id, lot.points, to_us(lot.earned_at), to_us(lot.available_at),
                 None if lot.expires_at is None else to_us(lot.expires_at), source))
            lot.lot_id = cur.lastrowid
        elif lot.changed:
            db.execute("UPDATE point_lots SET points = ? WHERE lot_id = ?",
                       (lot.points, lot.lot_id))
        lot.changed = False


def set_debt(db: sqlite3.Connection, member_id: str, debt: int) -> None:
    db.execute("UPDATE members SET points_debt = ? WHERE member_id = ?", (debt, member_id))


def rolling_spend(db: sqlite3.Connection, member_id: str, now: datetime, months: int) -> int:
    since = P.add_months(now, -months)
    row = db.execute("SELECT COALESCE(SUM(amount_minor), 0) FROM member_spend"
                     " WHERE member_id = ? AND at_us > ?", (member_id, to_us(since))).fetchone()
    return int(row[0])


def member_record(db: sqlite3.Connection, member_id: str, now: datetime,
                  spend_months: int) -> MemberRecord:
    """The member as of ``now``, computed without writing (see points.settle)."""
    row = member_row(db, member_id)
    lots = load_lots(db, member_id)
    debt, _ = P.settle(lots, row["points_debt"], now)
    available, pending = P.balances(lots, debt, now)
    live = sorted((x for x in lots if x.points > 0 and not x.is_expired(now)),
                  key=lambda x: (x.expires_at is None, x.expires_at or now, x.lot_id))
    wallet = tuple(
        WalletCoupon(r[0], r[1], r[2], at_us(r[3]), at_us(r[4]))
        for r in db.execute("SELECT coupon_id, offer_id, uses_left, valid_from_us, valid_until_us"
                            " FROM wallet_coupons WHERE member_id = ? AND uses_left > 0"
                            " ORDER BY valid_until_us, coupon_id", (member_id,)))
    enrolled = row["enrolled_on"]
    return MemberRecord(
        member_id=member_id, tier=row["tier"], segments=frozenset(json.loads(row["segments"])),
        birthday_month=row["birthday_month"], birthday_day=row["birthday_day"],
        enrolled_on=date.fromisoformat(enrolled) if enrolled else None,
        consent=Consent(bool(row["consent_marketing"]), bool(row["consent_automated"]),
                        bool(row["consent_third_party"])),
        points_available=available, points_pending=pending, points_debt=debt,
        lots=tuple(PointLot(x.points, x.earned_at, x.available_at, x.expires_at) for x in live),
        wallet=wallet, lifetime_spend_minor=row["lifetime_spend_minor"],
        rolling_spend_minor=rolling_spend(db, member_id, now, spend_months))


# ---------------------------------------------------------------------------------------------
# Codes and limits


def code_statuses(db: sqlite3.Connection, policy: Policy, member_id: str | None,
                  codes: Sequence[str], now: datetime) -> tuple[dict[str, CodeStatus],
                                                                dict[str, str]]:
    """Status of each presented code and, for the valid ones, their offer."""
    status: dict[str, CodeStatus] = {}
    offers: dict[str, str] = {}
    now_us = to_us(now)
    for code in codes:
        if code in status:
            continue
        r = db.execute("SELECT offer_id, uses_left, per_member, valid_from_us, valid_until_us"
                       " FROM codes WHERE code = ?", (code,)).fetchone()
        if r is None or r[0] not in policy.offers:
            status[code] = CodeStatus.INVALID
        elif now_us < r[3]:
            status[code] = CodeStatus.NOT_YET_VALID
        elif now_us >= r[4]:
            status[code] = CodeStatus.EXPIRED
        elif r[1] <= 0:
            status[code] = CodeStatus.USED_UP
        elif r[2] and member_id is None:
            status[code] = CodeStatus.MEMBER_REQUIRED
        elif r[2] and db.execute("SELECT 1 FROM code_redemptions WHERE code = ? AND member_id = ?",
                                 (code, member_id)).fetchone():
            status[code] = CodeStatus.USED_UP
        else:
            status[code] = CodeStatus.VALID
            offers[code] = r[0]
    return status, offers


def remaining_limits(db: sqlite3.Connection, policy: Policy, member_id: str | None,
                     offer_ids: Iterable[str] | None,
                     now: datetime) -> dict[str, RemainingLimits]:
    ids = policy.limited if offer_ids is None else [
        o for o in dict.fromkeys(offer_ids) if o in policy.offers and policy.offers[o].limited]
    if not ids:
        return {}
    if len(ids) <= 500:
        rows = db.execute("SELECT offer_id, uses, budget_spent_minor FROM offer_usage"
                          f" WHERE offer_id IN ({','.join('?' * len(ids))})", tuple(ids))
    else:
        rows = db.execute("SELECT offer_id, uses, budget_spent_minor FROM offer_usage")
    usage = {r[0]: (r[1], r[2]) for r in rows}
    mine: dict[tuple[str, str], int] = {}
    if member_id is not None:
        keys = policy.current_keys(now)
        mine = {(r[0], r[1]): r[2] for r in db.execute(
            "SELECT offer_id, period_key, uses FROM member_offer_usage WHERE member_id = ?"
            f" AND period_key IN ({','.join('?' * len(keys))})", (member_id, *keys))}
    out = {}
    for o in ids:
        p = policy.offers[o]
        uses, spent = usage.get(o, (0, 0))
        member_uses = None
        if p.per_member and member_id is not None:
            used = mine.get((o, policy.period_key(p.period, now)), 0)
            member_uses = max(0, p.per_member - used)
        out[o] = RemainingLimits(
            member_uses=member_uses,
            total_uses=max(0, p.total_uses - uses) if p.total_uses else None,
            budget_minor=max(0, p.budget_minor - spent) if p.budget_minor else None)
    return out


def pricing_state(db: sqlite3.Connection, policy: Policy, member_id: str | None,
                  offer_ids: Iterable[str] | None, codes: Sequence[str], now: datetime,
                  spend_months: int) -> PricingState:
    record = member_record(db, member_id, now, spend_months) if member_id is not None else None
    status, offers = code_statuses(db, policy, member_id, codes, now)
    coupons = tuple(offers[c] for c in dict.fromkeys(codes) if c in offers)
    return PricingState(
        member=record.engine_member(now) if record else None, record=record, coupons=coupons,
        code_status=status, code_offers=offers,
        limits=remaining_limits(db, policy, member_id, offer_ids, now))


# ---------------------------------------------------------------------------------------------
# Ledger


def append_ledger(db: sqlite3.Connection, entry: LedgerEntry) -> None:
    db.execute("INSERT INTO ledger (kind, entry_id, transaction_id, member_id, at_us, body)"
               " VALUES (?, ?, ?, ?, ?, ?)",
               (entry.kind, entry.entry_id, entry.transaction_id, entry.member_id,
                to_us(entry.at), codec.dumps(entry)))


def read_ledger(db: sqlite3.Connection, since: int | None, limit: int | None) -> list[LedgerEntry]:
    rows = db.execute("SELECT seq, body FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?",
                      (since or 0, -1 if limit is None else limit))
    out = []
    for seq, body in rows:
        data = json.loads(body)
        data["seq"] = seq
        out.append(codec.from_plain(LedgerEntry, data))
    return out
