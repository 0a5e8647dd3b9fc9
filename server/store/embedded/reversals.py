"""Cancel and return inside one SQLite write transaction (embedded store): the reversal of a
commit.

The caller (:class:`server.store.embedded.store.EmbeddedStore`) opens ``BEGIN IMMEDIATE`` first, so
the database write lock is held from the idempotency check through load and write. What a
reversal gives back is decided by the arithmetic every store shares (:mod:`server.store.effects`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from engine.errors import AlreadyExists, FailedPrecondition, NotFound
from loyalty.v1.checkout_pb2 import LineDiscount
from loyalty.v1.ledger_pb2 import LedgerLine
from server.store import effects
from server.store import points as P
from server.store.base import CancelOutcome, CommitOutcome, ReturnOutcome
from server.store.embedded.state import (
    append_ledger,
    load_lots,
    load_spend,
    save_lots,
    set_debt,
)
from server.store.embedded.units import give_back as give_back_units
from server.store.policy import Policy
from server.store.snapshot import from_us, spend_since
from server.store.stored import (
    decode_cancel,
    decode_commit,
    decode_return,
    encode_reversal,
    ledger_entry,
)
from server.store.tiers import after_reversal

# the rules' policy and the store's spend window, when a reversal re-evaluates the tier
Tiers = tuple[Policy, int] | None


def _transaction(db: sqlite3.Connection, transaction_id: str) -> sqlite3.Row:
    tx: sqlite3.Row | None = db.execute(
        "SELECT * FROM transactions WHERE transaction_id = ?", (transaction_id,)
    ).fetchone()
    if tx is None:
        raise NotFound(f"transaction {transaction_id!r} not found")
    return tx


@dataclass(slots=True)
class _Reversal:
    rev: effects.Reversal
    forfeited: int
    debt_added: int
    commit: CommitOutcome  # the outcome of the commit reversed
    # the member's (available, pending) points and tier right after (None: a guest's basket)
    after: tuple[int, int] | None = None
    tier: str | None = None


def _reverse(
    db: sqlite3.Connection,
    tx: sqlite3.Row,
    targets: dict[int, int],
    now: datetime,
    source: str,
    tiers: Tiers = None,
) -> _Reversal:
    """Move each line ``idx`` to ``targets[idx]`` units returned in total (DESIGN §5); with
    ``tiers`` (the rules' policy, the store's spend window) re-evaluate the member's tier."""
    t = tx["transaction_id"]
    committed = decode_commit(tx["outcome"])
    rows = db.execute(
        "SELECT * FROM tx_lines WHERE transaction_id = ? ORDER BY idx", (t,)
    ).fetchall()
    discounts: dict[int, list[LineDiscount]] = {}
    for d in db.execute(
        "SELECT * FROM tx_discounts WHERE transaction_id = ? ORDER BY idx, seq", (t,)
    ):
        discounts.setdefault(d["idx"], []).append(
            LineDiscount(
                offer_id=d["offer_id"],
                amount_minor=d["amount_minor"],
                funder_id=d["funder_id"],
                funded_minor=d["funded_minor"],
            )
        )
    lines = [
        LedgerLine(
            line_id=r["line_id"],
            sku=r["sku"],
            quantity=r["quantity"],
            gross_minor=r["gross_minor"],
            net_minor=r["net_minor"],
            tender_minor=r["tender_minor"],
            points_earned=r["points"],
            points_redeemed=r["redeemed"],
            discounts=discounts.get(r["idx"], ()),
            delivery=bool(r["delivery"]),
        )
        for r in rows
    ]
    rev = effects.reverse_lines(lines, [r["returned_qty"] for r in rows], targets)
    for idx, r1 in targets.items():
        db.execute(
            "UPDATE tx_lines SET returned_qty = ? WHERE transaction_id = ? AND idx = ?",
            (r1, t, idx),
        )
    for offer_id, amount in rev.budget_back.items():
        db.execute(
            "UPDATE offer_usage SET budget_spent_minor = budget_spent_minor - ? WHERE offer_id = ?",
            (amount, offer_id),
        )
    forfeited = debt_added = 0
    after: tuple[int, int] | None = None
    tier: str | None = None
    member_id = tx["member_id"]
    if member_id is not None:
        member = db.execute(
            "SELECT points_debt, tier, tier_floor FROM members WHERE member_id = ?", (member_id,)
        ).fetchone()
        tier = member[1]
        lots = load_lots(db, member_id)
        burns = [
            effects.Burn(r[0], r[1], from_us(r[3]), r[2])
            for r in db.execute(
                "SELECT seq, points, restored, expires_us FROM tx_burns WHERE transaction_id = ?",
                (t,),
            )
        ]
        debt, forfeited, debt_added = effects.settle_reversal(
            lots,
            member[0],
            burns,
            rev,
            tx["earned_lot_id"],
            committed,
            now,
        )
        db.executemany(
            "UPDATE tx_burns SET restored = ? WHERE transaction_id = ? AND seq = ?",
            [(b.restored, t, b.seq) for b in burns if b.changed],
        )
        after = P.balances(lots, debt, now)  # the lots are settled at ``now``
        save_lots(db, member_id, lots, source)
        set_debt(db, member_id, debt)
        db.execute(  # the bucket the commit's spend went to (nothing if it left the window)
            "UPDATE member_spend SET amount_minor = amount_minor - ? WHERE member_id = ?"
            " AND start_us <= ? AND end_us > ?",
            (rev.net_back, member_id, tx["committed_us"], tx["committed_us"]),
        )
        db.execute(
            "UPDATE members SET lifetime_spend_minor = lifetime_spend_minor - ?"
            " WHERE member_id = ?",
            (rev.net_back, member_id),
        )
        if tiers is not None:
            policy, months = tiers
            spend = load_spend(db, member_id, spend_since(now, months))
            tier, floor = after_reversal(policy, tier, member[2], spend, now, months)
            db.execute(
                "UPDATE members SET tier = ?, tier_floor = ? WHERE member_id = ?",
                (tier, floor, member_id),
            )
    return _Reversal(rev, forfeited, debt_added, committed, after, tier)


def _after(rev: _Reversal) -> tuple[int | None, int | None, str | None]:
    """An outcome's ``points_available_after``, ``points_pending_after`` and ``tier_after``."""
    if rev.after is None:
        return None, None, None
    return rev.after[0], rev.after[1], rev.tier


def cancel(
    db: sqlite3.Connection, transaction_id: str, now: datetime, tiers: Tiers = None
) -> CancelOutcome:
    tx = _transaction(db, transaction_id)
    if tx["status"] == "cancelled":
        return replace(decode_cancel(tx["cancel_outcome"]), repeated=True)
    targets = {
        r[0]: r[1]
        for r in db.execute(
            "SELECT idx, quantity FROM tx_lines"
            " WHERE transaction_id = ? AND returned_qty < quantity",
            (transaction_id,),
        )
    }
    rev = _reverse(db, tx, targets, now, f"cancel:{transaction_id}", tiers)
    member_id = tx["member_id"]
    released = []
    for o in db.execute(
        "SELECT * FROM tx_offers WHERE transaction_id = ?", (transaction_id,)
    ).fetchall():
        released.append(o["offer_id"])
        if o["coupon_id"]:
            db.execute(
                "UPDATE wallet_coupons SET uses_left = uses_left + 1 WHERE coupon_id = ?",
                (o["coupon_id"],),
            )
        if o["code"]:
            db.execute("UPDATE codes SET uses_left = uses_left + 1 WHERE code = ?", (o["code"],))
            db.execute(
                "DELETE FROM code_redemptions WHERE code = ? AND transaction_id = ?",
                (o["code"], transaction_id),
            )
        if o["period_key"] is not None:
            db.execute(
                "UPDATE member_offer_usage SET uses = uses - 1 WHERE member_id = ? AND"
                " offer_id = ? AND period_key = ?",
                (member_id, o["offer_id"], o["period_key"]),
            )
        db.execute("UPDATE offer_usage SET uses = uses - 1 WHERE offer_id = ?", (o["offer_id"],))
    give_back_units(db, rev.commit.offers, rev.commit.store_id)
    r = rev.rev
    outcome = CancelOutcome(
        transaction_id,
        member_id,
        now,
        r.lines,
        r.refund,
        r.clawed,
        r.restored,
        rev.forfeited,
        rev.debt_added,
        tuple(released),
        *_after(rev),
    )
    db.execute(
        "UPDATE transactions SET status = 'cancelled', cancel_outcome = ? WHERE transaction_id = ?",
        (encode_reversal(outcome), transaction_id),
    )
    append_ledger(
        db,
        ledger_entry(
            "cancel",
            transaction_id,
            transaction_id,
            member_id,
            now,
            r.lines,
            r.refund,
            r.clawed,
            r.restored,
            **effects.context(rev.commit),
        ),
    )
    return outcome


def return_lines(
    db: sqlite3.Connection,
    return_id: str,
    transaction_id: str,
    lines: Sequence[tuple[str, int]],
    now: datetime,
    tiers: Tiers = None,
) -> ReturnOutcome:
    wanted, fingerprint = effects.return_request(transaction_id, lines)
    row = db.execute(
        "SELECT fingerprint, outcome FROM returns WHERE return_id = ?", (return_id,)
    ).fetchone()
    if row is not None:
        if row[0] != fingerprint:
            raise AlreadyExists(f"return {return_id!r} was made with another request")
        return replace(decode_return(row[1]), repeated=True)
    tx = _transaction(db, transaction_id)
    if tx["status"] == "cancelled":
        raise FailedPrecondition(f"transaction {transaction_id!r} is cancelled")
    by_id = {
        r[0]: (r[1], r[2], r[3])
        for r in db.execute(
            "SELECT line_id, idx, quantity, returned_qty FROM tx_lines WHERE transaction_id = ?",
            (transaction_id,),
        )
    }
    targets = effects.return_targets(transaction_id, lines, wanted, by_id)
    rev = _reverse(db, tx, targets, now, f"return:{return_id}", tiers)
    r = rev.rev
    outcome = ReturnOutcome(
        return_id,
        transaction_id,
        tx["member_id"],
        now,
        r.lines,
        r.refund,
        r.clawed,
        r.restored,
        rev.forfeited,
        rev.debt_added,
        *_after(rev),
    )
    db.execute(
        "INSERT INTO returns VALUES (?, ?, ?, ?)",
        (return_id, transaction_id, fingerprint, encode_reversal(outcome)),
    )
    append_ledger(
        db,
        ledger_entry(
            "return",
            return_id,
            transaction_id,
            tx["member_id"],
            now,
            r.lines,
            r.refund,
            r.clawed,
            r.restored,
            **effects.context(rev.commit),
        ),
    )
    return outcome
