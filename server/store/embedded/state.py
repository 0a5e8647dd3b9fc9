"""Reading and writing member state inside an open SQLite transaction (embedded store).

Functions here take a connection that is already inside ``BEGIN``/``BEGIN IMMEDIATE``; they
never commit. Lot arithmetic is delegated to :mod:`server.store.points`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

from engine.errors import NotFound
from engine.pricing.types import RemainingLimits
from server.store import codec, snapshot
from server.store import points as P
from server.store.base import (
    CodeStatus,
    Consent,
    LedgerEntry,
    MemberRecord,
    PricingState,
    WalletCoupon,
)
from server.store.policy import Policy
from server.store.snapshot import (
    Spend,
    add_spend,
    at_us,
    from_us,
    rolling_sum,
    spend_since,
    to_us,
)

# ---------------------------------------------------------------------------------------------
# Members and lots


def member_row(db: sqlite3.Connection, member_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM members WHERE member_id = ?", (member_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"member {member_id!r} not found")
    return row


def load_lots(db: sqlite3.Connection, member_id: str) -> list[P.Lot]:
    rows = db.execute(
        "SELECT lot_id, points, earned_us, available_us, expires_us FROM point_lots"
        " WHERE member_id = ? AND points > 0 ORDER BY lot_id",
        (member_id,),
    )
    return [P.Lot(r[0], r[1], at_us(r[2]), at_us(r[3]), from_us(r[4])) for r in rows]


def save_lots(db: sqlite3.Connection, member_id: str, lots: Iterable[P.Lot], source: str) -> None:
    """Write changed lots back, insert new ones (their ``lot_id`` is filled in) and delete
    drained ones (their ``lot_id`` is cleared), so the rows are the live lots."""
    for lot in lots:
        if lot.lot_id is None:
            if lot.points > 0:
                cur = db.execute(
                    "INSERT INTO point_lots (member_id, points, earned_us, available_us,"
                    " expires_us, source) VALUES (?, ?, ?, ?, ?, ?)",
                    (member_id, lot.points, *_times(lot), source),
                )
                lot.lot_id = cur.lastrowid
        elif lot.changed and lot.points <= 0:
            db.execute("DELETE FROM point_lots WHERE lot_id = ?", (lot.lot_id,))
            lot.lot_id = None
        elif lot.changed:
            db.execute(
                "UPDATE point_lots SET points = ?, earned_us = ?, available_us = ?,"
                " expires_us = ? WHERE lot_id = ?",
                (lot.points, *_times(lot), lot.lot_id),
            )
        lot.changed = False


def _times(lot: P.Lot) -> tuple[int, int, int | None]:
    expires = None if lot.expires_at is None else to_us(lot.expires_at)
    return to_us(lot.earned_at), to_us(lot.available_at), expires


def set_debt(db: sqlite3.Connection, member_id: str, debt: int) -> None:
    db.execute("UPDATE members SET points_debt = ? WHERE member_id = ?", (debt, member_id))


def load_spend(db: sqlite3.Connection, member_id: str, since: int) -> list[Spend]:
    """The member's spend buckets that end inside the window (after ``since``)."""
    rows = db.execute(
        "SELECT start_us, end_us, amount_minor FROM member_spend"
        " WHERE member_id = ? AND end_us > ? ORDER BY start_us",
        (member_id, since),
    )
    return [(r[0], r[1], r[2]) for r in rows]


def rolling_spend(db: sqlite3.Connection, member_id: str, now: datetime, months: int) -> int:
    """snapshot.rolling_sum in SQL: the buckets that end inside the window."""
    row = db.execute(
        "SELECT COALESCE(SUM(amount_minor), 0) FROM member_spend WHERE member_id = ?"
        " AND end_us > ?",
        (member_id, spend_since(now, months)),
    ).fetchone()
    return int(row[0])


def add_member_spend(
    db: sqlite3.Connection, member_id: str, now: datetime, amount: int, months: int, policy: Policy
) -> int:
    """Add a commit's qualifying spend to its bucket (snapshot.add_spend), writing only the
    rows that change and deleting the buckets that left the window; returns the rolling
    spend after it."""
    since = spend_since(now, months)
    db.execute("DELETE FROM member_spend WHERE member_id = ? AND end_us <= ?", (member_id, since))
    old = {(s, e): a for s, e, a in load_spend(db, member_id, since)}
    new = add_spend(((s, e, a) for (s, e), a in old.items()), now, amount, policy)
    spans = {(s, e) for s, e, _ in new}
    db.executemany(
        "DELETE FROM member_spend WHERE member_id = ? AND start_us = ?",
        [(member_id, s) for s, e in old if (s, e) not in spans],
    )
    db.executemany(
        "INSERT INTO member_spend VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
        " end_us = excluded.end_us, amount_minor = excluded.amount_minor",
        [(member_id, s, e, a) for s, e, a in new if old.get((s, e)) != a],
    )
    return rolling_sum(new, now, months)


def member_record(
    db: sqlite3.Connection, member_id: str, now: datetime, spend_months: int
) -> MemberRecord:
    """The member as of ``now``, computed without writing (see points.settle)."""
    row = member_row(db, member_id)
    wallet = [
        WalletCoupon(r[0], r[1], r[2], at_us(r[3]), at_us(r[4]))
        for r in db.execute(
            "SELECT coupon_id, offer_id, uses_left, valid_from_us,"
            " valid_until_us FROM wallet_coupons WHERE member_id = ? AND"
            " uses_left > 0",
            (member_id,),
        )
    ]
    return snapshot.member_record(
        member_id,
        tier=row["tier"],
        segments=json.loads(row["segments"]),
        birthday_month=row["birthday_month"],
        birthday_day=row["birthday_day"],
        enrolled_on=row["enrolled_on"],
        consent=Consent(
            bool(row["consent_marketing"]),
            bool(row["consent_automated"]),
            bool(row["consent_third_party"]),
        ),
        lots=load_lots(db, member_id),
        debt=row["points_debt"],
        wallet=wallet,
        lifetime_spend_minor=row["lifetime_spend_minor"],
        rolling_spend_minor=rolling_spend(db, member_id, now, spend_months),
        now=now,
    )


# ---------------------------------------------------------------------------------------------
# Codes and limits


def code_statuses(
    db: sqlite3.Connection,
    policy: Policy,
    member_id: str | None,
    codes: Sequence[str],
    now: datetime,
) -> tuple[dict[str, CodeStatus], dict[str, str]]:
    """Status of each presented code and, for the valid ones, their offer."""
    status: dict[str, CodeStatus] = {}
    offers: dict[str, str] = {}
    for code in codes:
        if code in status:
            continue
        r = db.execute(
            "SELECT offer_id, uses_left, per_member, valid_from_us, valid_until_us"
            " FROM codes WHERE code = ?",
            (code,),
        ).fetchone()

        def redeemed(code: str = code) -> bool:
            return (
                db.execute(
                    "SELECT 1 FROM code_redemptions WHERE code = ? AND member_id = ?",
                    (code, member_id),
                ).fetchone()
                is not None
            )

        status[code] = snapshot.code_status(
            None if r is None else (r[0], r[1], bool(r[2]), r[3], r[4]),
            policy,
            member_id,
            redeemed,
            to_us(now),
        )
        if status[code] == CodeStatus.VALID:
            offers[code] = r[0]
    return status, offers


def remaining_limits(
    db: sqlite3.Connection,
    policy: Policy,
    member_id: str | None,
    offer_ids: Iterable[str] | None,
    now: datetime,
) -> dict[str, RemainingLimits]:
    ids = snapshot.limited_ids(policy, offer_ids)
    if not ids:
        return {}
    if len(ids) <= 500:
        rows = db.execute(
            "SELECT offer_id, uses, budget_spent_minor FROM offer_usage"
            f" WHERE offer_id IN ({','.join('?' * len(ids))})",
            tuple(ids),
        )
    else:
        rows = db.execute("SELECT offer_id, uses, budget_spent_minor FROM offer_usage")
    usage = {r[0]: (r[1], r[2]) for r in rows}
    mine: dict[tuple[str, str], int] = {}
    if member_id is not None:
        keys = policy.current_keys(now)
        mine = {
            (r[0], r[1]): r[2]
            for r in db.execute(
                "SELECT offer_id, period_key, uses FROM member_offer_usage WHERE member_id = ?"
                f" AND period_key IN ({','.join('?' * len(keys))})",
                (member_id, *keys),
            )
        }
    return snapshot.remaining_limits(policy, ids, usage, mine, member_id, now)


def pricing_state(
    db: sqlite3.Connection,
    policy: Policy,
    member_id: str | None,
    offer_ids: Iterable[str] | None,
    codes: Sequence[str],
    now: datetime,
    spend_months: int,
) -> PricingState:
    record = member_record(db, member_id, now, spend_months) if member_id is not None else None
    status, offers = code_statuses(db, policy, member_id, codes, now)
    coupons = tuple(offers[c] for c in dict.fromkeys(codes) if c in offers)
    return PricingState(
        member=record.engine_member(now) if record else None,
        record=record,
        coupons=coupons,
        code_status=status,
        code_offers=offers,
        limits=remaining_limits(db, policy, member_id, offer_ids, now),
    )


# ---------------------------------------------------------------------------------------------
# Ledger


def append_ledger(db: sqlite3.Connection, entry: LedgerEntry) -> None:
    db.execute(
        "INSERT INTO ledger (kind, entry_id, transaction_id, member_id, at_us, body)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            entry.kind,
            entry.entry_id,
            entry.transaction_id,
            entry.member_id,
            to_us(entry.at),
            codec.dumps(entry),
        ),
    )


def read_ledger(db: sqlite3.Connection, since: int | None, limit: int | None) -> list[LedgerEntry]:
    rows = db.execute(
        "SELECT seq, body FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?",
        (since or 0, -1 if limit is None else limit),
    )
    out = []
    for seq, body in rows:
        data = json.loads(body)
        data["seq"] = seq
        out.append(codec.from_plain(LedgerEntry, data))
    return out
