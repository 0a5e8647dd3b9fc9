"""Reading and writing member state inside an open SQLite transaction (embedded store).

Functions here take a connection that is already inside ``BEGIN``/``BEGIN IMMEDIATE``; they
never commit. Lot arithmetic is delegated to :mod:`server.store.points`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from engine.errors import NotFound
from server.store import points as P
from server.store import snapshot
from server.store.base import (
    CodeRow,
    CodeStatus,
    Consent,
    CouponStatus,
    LedgerEntry,
    MemberRecord,
    PricingState,
    Spend,
    WalletCoupon,
)
from server.store.embedded.units import read_units
from server.store.member_attributes import load_attributes
from server.store.policy import Policy
from server.store.snapshot import (
    at_us,
    from_us,
    spend_since,
    to_us,
)
from server.store.stored import read_entry
from server.store.unit_usage import UnitUsage

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
    """Write the member's debt and bump its version. Every operation that changes a member's
    points, spend, coupons or uses ends here (the others bump the version themselves), so a
    commit planned on an older version is refused (server.store.embedded.checkout.apply)."""
    db.execute(
        "UPDATE members SET points_debt = ?, version = version + 1 WHERE member_id = ?",
        (debt, member_id),
    )


def load_spend(db: sqlite3.Connection, member_id: str, since: int) -> list[Spend]:
    """The member's spend buckets that end inside the window (after ``since``)."""
    rows = db.execute(
        "SELECT start_us, end_us, amount_minor FROM member_spend"
        " WHERE member_id = ? AND end_us > ? ORDER BY start_us",
        (member_id, since),
    )
    return [(r[0], r[1], r[2]) for r in rows]


def load_wallet(db: sqlite3.Connection, member_id: str) -> list[WalletCoupon]:
    """The member's coupons with uses left, and the revoked ones (never usable)."""
    return [
        WalletCoupon(
            r[0],
            r[1],
            r[2],
            at_us(r[3]),
            at_us(r[4]),
            bool(r[5]),
            CouponStatus(r[6]),
            r[7],
            None if r[8] is None else at_us(r[8]),
        )
        for r in db.execute(
            "SELECT coupon_id, offer_id, uses_left, valid_from_us, valid_until_us,"
            " personalised, status, revoked_reason, revoked_us FROM wallet_coupons"
            " WHERE member_id = ? AND (uses_left > 0 OR status = 'REVOKED')",
            (member_id,),
        )
    ]


def revoke_personalised(
    db: sqlite3.Connection, member_id: str, consent: Consent, now_us: int
) -> int:
    """Revoke the member's active personalised coupons with uses left when ``consent`` no
    longer allows them (:func:`server.store.snapshot.revoke_reason`); returns how many. The
    caller's write bumps the member's version."""
    reason = snapshot.revoke_reason(consent)
    if not reason:
        return 0
    active = "member_id = ? AND personalised = 1 AND status = 'ACTIVE' AND uses_left > 0"
    # a revoked coupon's reserved units go back to the pool (its reservation has its id)
    db.execute(
        "UPDATE unit_reservations SET units = 0 WHERE reservation_id IN"
        f" (SELECT coupon_id FROM wallet_coupons WHERE {active})",
        (member_id,),
    )
    return db.execute(
        "UPDATE wallet_coupons SET status = 'REVOKED', revoked_reason = ?, revoked_us = ?"
        f" WHERE {active}",
        (reason, now_us, member_id),
    ).rowcount


def member_record(
    db: sqlite3.Connection,
    member_id: str,
    now: datetime,
    spend_months: int,
    *,
    row: sqlite3.Row | None = None,
    lots: list[P.Lot] | None = None,
    wallet: list[WalletCoupon] | None = None,
    rolling: int | None = None,
) -> MemberRecord:
    """The member as of ``now``, computed without writing (see points.settle); what the
    caller has read already (a commit's snapshot) is passed in and not read again (``lots``
    are settled in place: pass copies to keep them). Without ``rolling`` (a read of the
    member, not a pricing path) the record also lists the spend buckets of the window."""
    row = member_row(db, member_id) if row is None else row
    spend: list[Spend] = []
    if rolling is None:
        spend = load_spend(db, member_id, spend_since(now, spend_months))
        rolling = snapshot.rolling_sum(spend, now, spend_months)
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
        lots=load_lots(db, member_id) if lots is None else lots,
        debt=row["points_debt"],
        wallet=load_wallet(db, member_id) if wallet is None else wallet,
        lifetime_spend_minor=row["lifetime_spend_minor"],
        rolling_spend_minor=rolling,
        now=now,
        attributes=load_attributes(json.loads(row["attributes"])),
        spend=spend,
    )


# ---------------------------------------------------------------------------------------------
# Codes and limits


def code_statuses(
    db: sqlite3.Connection,
    policy: Policy,
    member_id: str | None,
    codes: Sequence[str],
    now: datetime,
) -> tuple[dict[str, CodeStatus], dict[str, str], dict[str, CodeRow | None]]:
    """Status of each presented code, the offer of the valid ones, and each code's row."""
    status: dict[str, CodeStatus] = {}
    offers: dict[str, str] = {}
    rows: dict[str, CodeRow | None] = {}
    for code in codes:
        if code in status:
            continue
        r = db.execute(
            "SELECT offer_id, uses_left, per_member, valid_from_us, valid_until_us,"
            " COALESCE(member_id, '') FROM codes WHERE code = ?",
            (code,),
        ).fetchone()
        rows[code] = row = None if r is None else (r[0], r[1], bool(r[2]), r[3], r[4], r[5])

        def redeemed(code: str = code) -> bool:
            return (
                db.execute(
                    "SELECT 1 FROM code_redemptions WHERE code = ? AND member_id = ?",
                    (code, member_id),
                ).fetchone()
                is not None
            )

        status[code] = snapshot.code_status(row, policy, member_id, redeemed, to_us(now))
        if row is not None and status[code] == CodeStatus.VALID:
            offers[code] = row[0]
    return status, offers, rows


def offer_usage(db: sqlite3.Connection, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Offer id -> ``(uses, budget spent)`` of the offers ``ids`` that were ever used."""
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
    return {r[0]: (r[1], r[2]) for r in rows}


def member_usage(
    db: sqlite3.Connection, policy: Policy, member_id: str, now: datetime
) -> dict[tuple[str, str], int]:
    """(offer id, period key) -> the member's uses in the periods current at ``now``."""
    keys = policy.current_keys(now)
    return {
        (r[0], r[1]): r[2]
        for r in db.execute(
            "SELECT offer_id, period_key, uses FROM member_offer_usage WHERE member_id = ?"
            f" AND period_key IN ({','.join('?' * len(keys))})",
            (member_id, *keys),
        )
    }


def pricing_state(
    db: sqlite3.Connection,
    policy: Policy,
    member_id: str | None,
    offer_ids: Iterable[str] | None,
    codes: Sequence[str],
    now: datetime,
    spend_months: int,
    read_member: Callable[[sqlite3.Connection, str, datetime, int], MemberRecord] | None = None,
) -> PricingState:
    """A quote's engine inputs; ``read_member`` reads the member (default: from its rows; a
    store passes its quote cache, :class:`server.store.embedded.quotes.QuoteCache`)."""
    read = member_record if read_member is None else read_member
    record = read(db, member_id, now, spend_months) if member_id is not None else None
    ids = snapshot.limited_ids(policy, offer_ids)
    usage = offer_usage(db, ids)
    mine = member_usage(db, policy, member_id, now) if member_id is not None and ids else {}
    return engine_inputs(
        policy,
        record,
        codes,
        code_statuses(db, policy, member_id, codes, now),
        ids,
        usage,
        mine,
        now,
        read_units(db, policy, ids),
    )


def engine_inputs(
    policy: Policy,
    record: MemberRecord | None,
    codes: Sequence[str],
    statuses: tuple[dict[str, CodeStatus], dict[str, str], dict[str, CodeRow | None]],
    ids: Sequence[str],
    usage: dict[str, tuple[int, int]],
    mine: dict[tuple[str, str], int],
    now: datetime,
    units: dict[str, UnitUsage] | None = None,
) -> PricingState:
    """The engine's inputs from what a quote or a commit read."""
    status, offers, _ = statuses
    units = units or {}
    return PricingState(
        member=record.engine_member(now) if record else None,
        record=record,
        coupons=tuple(offers[c] for c in dict.fromkeys(codes) if c in offers),
        code_status=status,
        code_offers=offers,
        limits=snapshot.remaining_limits(
            policy, ids, usage, mine, record.member_id if record else None, now, units
        ),
        units=units,
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
            entry.member_id or None,
            entry.at_us,
            entry.SerializeToString(),
        ),
    )


def read_ledger(db: sqlite3.Connection, since: int | None, limit: int | None) -> list[LedgerEntry]:
    rows = db.execute(
        "SELECT seq, body FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?",
        (since or 0, -1 if limit is None else limit),
    )
    return [read_entry(body, seq) for seq, body in rows]
