"""Wallet coupons, code coupons and points adjustments inside one SQLite write transaction.

The caller (:class:`server.store.embedded.store.EmbeddedStore`) has checked the request and
opened ``BEGIN IMMEDIATE``. Every change to a member's coupons or points bumps the member's
version, so a commit planned before it is refused and planned again
(:mod:`server.store.embedded.checkout`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from engine.errors import AlreadyExists
from server.store import effects, snapshot
from server.store.base import AdjustOutcome, Consent
from server.store.embedded.state import append_ledger, load_lots, member_row, save_lots, set_debt
from server.store.stored import decode_adjust, encode_adjust, ledger_entry


def issue_coupons(
    db: sqlite3.Connection,
    issue_id: str,
    offer_id: str,
    member_ids: Sequence[str],
    uses: int,
    from_us: int,
    until_us: int,
    personalised: bool = False,
) -> tuple[list[str], list[str]]:
    """One wallet coupon per member (``<issue>:<member>``), idempotent per issue and member;
    returns the coupon ids in the order given and the members skipped (a personalised issue
    to a member without the consent it needs, :func:`server.store.snapshot.may_personalise`;
    a coupon issued before is returned as it is, revoked or not)."""
    ids, skipped = [], []
    wanted = (offer_id, uses, from_us, until_us, int(personalised))
    for m in dict.fromkeys(member_ids):
        member = member_row(db, m)
        coupon_id = f"{issue_id}:{m}"
        row = db.execute(
            "SELECT offer_id, uses_issued, valid_from_us, valid_until_us, personalised"
            " FROM wallet_coupons WHERE coupon_id = ?",
            (coupon_id,),
        ).fetchone()
        if row is None:
            consent = Consent(
                bool(member["consent_marketing"]),
                bool(member["consent_automated"]),
                bool(member["consent_third_party"]),
            )
            if personalised and not snapshot.may_personalise(consent):
                skipped.append(m)
                continue
            db.execute(
                "INSERT INTO wallet_coupons (coupon_id, member_id, offer_id, uses_left,"
                " valid_from_us, valid_until_us, issue_id, uses_issued, personalised)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (coupon_id, m, offer_id, uses, from_us, until_us, issue_id, uses, *wanted[4:]),
            )
            db.execute("UPDATE members SET version = version + 1 WHERE member_id = ?", (m,))
        elif tuple(row) != wanted:
            raise AlreadyExists(f"issue {issue_id!r} gave member {m!r} another coupon")
        ids.append(coupon_id)
    return ids, skipped


def create_codes(
    db: sqlite3.Connection, codes: Sequence[str], wanted: tuple[str, int, int, int, int]
) -> int:
    """Create the code coupons ``wanted = (offer, uses per code, per member 0/1, from_us,
    until_us)``; an identical one is left as it is; returns how many were new."""
    created = 0
    for code in codes:
        row = db.execute(
            "SELECT offer_id, uses_per_code, per_member, valid_from_us,"
            " valid_until_us FROM codes WHERE code = ?",
            (code,),
        ).fetchone()
        if row is None:
            offer_id, uses = wanted[0], wanted[1]  # a new code has every use left
            db.execute(
                "INSERT INTO codes (code, offer_id, uses_left, uses_per_code, per_member,"
                " valid_from_us, valid_until_us) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (code, offer_id, uses, *wanted[1:]),
            )
            created += 1
        elif tuple(row) != wanted:
            raise AlreadyExists(f"code {code!r} exists with another definition")
    return created


def adjust_points(
    db: sqlite3.Connection,
    adjustment_id: str,
    member_id: str,
    points: int,
    reason: str,
    now: datetime,
    fingerprint: str,
    expires_at: datetime | None,
    allow_negative: bool,
) -> AdjustOutcome:
    """Add a lot or burn FIFO (:func:`server.store.effects.adjust`); idempotent per id."""
    row = db.execute(
        "SELECT fingerprint, outcome FROM adjustments WHERE adjustment_id = ?",
        (adjustment_id,),
    ).fetchone()
    if row is not None:
        if row[0] != fingerprint:
            raise AlreadyExists(f"adjustment {adjustment_id!r} was made with another request")
        return decode_adjust(row[1])
    lots = load_lots(db, member_id)
    debt, added, available = effects.adjust(
        lots,
        member_row(db, member_id)["points_debt"],
        member_id,
        points,
        now,
        expires_at,
        allow_negative,
    )
    save_lots(db, member_id, lots, f"adjust:{adjustment_id}")
    set_debt(db, member_id, debt)
    outcome = AdjustOutcome(adjustment_id, member_id, points, reason, now, added, available)
    db.execute(
        "INSERT INTO adjustments VALUES (?, ?, ?)",
        (adjustment_id, fingerprint, encode_adjust(outcome)),
    )
    append_ledger(
        db, ledger_entry("adjust", adjustment_id, "", member_id, now, (), 0, points, 0, reason)
    )
    return outcome
