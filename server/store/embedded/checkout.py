"""Commit, cancel and return inside one SQLite write transaction (embedded store).

The caller (:class:`server.store.embedded.store.EmbeddedStore`) opens ``BEGIN IMMEDIATE`` first, so
the database write lock is held from the idempotency check through load, pricing and apply:
nobody can change a balance, a coupon, a limit or a budget between the read that priced the
basket and the write that spends it. Every effect is still re-checked before it is written
(a price function given stale or wrong inputs raises :class:`Conflict` and nothing is written).
The Redis store will do the same re-checks inside its Lua script.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.errors import AlreadyExists, Conflict, FailedPrecondition, NotFound
from engine.pricing.types import AppliedOffer, Basket
from server.store import codec, effects
from server.store import points as P
from server.store.base import (
    CancelOutcome,
    CommitOutcome,
    DiscountDetail,
    LedgerEntry,
    LineDetail,
    OfferUse,
    PriceFn,
    ReturnOutcome,
)
from server.store.embedded.state import (
    add_member_spend,
    append_ledger,
    load_lots,
    pricing_state,
    save_lots,
    set_debt,
)
from server.store.policy import Policy
from server.store.snapshot import from_us, to_us


def commit(
    db: sqlite3.Connection,
    policy: Policy,
    spend_months: int,
    transaction_id: str,
    fingerprint: str,
    price_fn: PriceFn,
    now: datetime,
    basket: Basket,
    member_id: str | None,
    codes: Sequence[str],
) -> CommitOutcome:
    row = db.execute(
        "SELECT fingerprint, outcome FROM transactions WHERE transaction_id = ?", (transaction_id,)
    ).fetchone()
    if row is not None:
        if row[0] != fingerprint:
            raise AlreadyExists(
                f"transaction {transaction_id!r} was committed with another request"
            )
        return codec.loads(CommitOutcome, row[1])
    state = pricing_state(db, policy, member_id, None, codes, now, spend_months)
    result = price_fn(state)
    effects.check_result(result, basket)
    tx = transaction_id

    earned_lot_id = None
    balances: tuple[int, int] | None = None
    available_at = expires_at = None
    tier_before = tier_after = state.record.tier if state.record else ""
    if member_id is None:
        if result.points_redeemed or result.points_earned:
            raise Conflict("a guest transaction cannot earn or redeem points")
    else:
        lots = load_lots(db, member_id)
        member = db.execute(
            "SELECT points_debt, legacy_lots FROM members WHERE member_id = ?", (member_id,)
        ).fetchone()
        if member["legacy_lots"]:
            P.rebucket(lots, policy.bucket_end)
        debt, _ = P.settle(lots, member["points_debt"], now)
        burns = []
        if result.points_redeemed:
            taken = effects.burn_points(lots, result.points_redeemed, now)
            burns = [
                (tx, k, lot.lot_id, n, _us(lot.expires_at)) for k, (lot, n) in enumerate(taken)
            ]
        earned = None
        if result.points_earned:
            available_at, expires_at = policy.earned_lot_times(now)
            earned = P.add_lot(
                lots, P.Lot(None, result.points_earned, now, available_at, expires_at), now
            )
        debt, _ = P.settle(lots, debt, now)
        balances = P.balances(lots, debt, now)
        save_lots(db, member_id, lots, tx)
        earned_lot_id = earned.lot_id if earned else None
        db.executemany("INSERT INTO tx_burns VALUES (?, ?, ?, ?, ?, 0)", burns)
        set_debt(db, member_id, debt)
        spend = result.net_minor
        rolling = add_member_spend(db, member_id, now, spend, spend_months, policy)
        tier_after = policy.upgraded_tier(tier_before, rolling)
        db.execute(
            "UPDATE members SET lifetime_spend_minor = lifetime_spend_minor + ?, tier = ?,"
            " legacy_lots = 0 WHERE member_id = ?",
            (spend, tier_after, member_id),
        )

    used_codes: set[str] = set()
    uses = []
    for applied in result.offers:
        uses.append(
            _use_offer(
                db, policy, tx, applied, member_id, state.code_offers, codes, used_codes, now
            )
        )

    details = effects.line_details(basket, result)
    for i, (line, res, d) in enumerate(zip(basket.lines, result.lines, details, strict=True)):
        db.execute(
            "INSERT INTO tx_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                tx,
                i,
                res.line_id,
                line.sku,
                line.quantity,
                res.gross_minor,
                res.net_minor,
                res.points_tender_minor,
                res.points_earned,
                d.points_redeemed,
            ),
        )
        db.executemany(
            "INSERT INTO tx_discounts VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (tx, i, k, x.offer_id, x.funder_id, x.amount_minor, x.funded_minor)
                for k, x in enumerate(d.discounts)
            ],
        )
    outcome = CommitOutcome(
        transaction_id=tx,
        member_id=member_id,
        at=now,
        pricing=result,
        lines=details,
        offers=tuple(uses),
        points_earned=result.points_earned,
        points_redeemed=result.points_redeemed,
        points_available_at=available_at,
        points_expire_at=expires_at,
        qualifying_spend_minor=result.net_minor if member_id else 0,
        tier_before=tier_before,
        tier_after=tier_after,
        store_id=basket.store_id,
        channel=basket.channel,
        segments=tuple(sorted(state.record.segments)) if state.record else (),
        points_available_after=balances[0] if balances else None,
        points_pending_after=balances[1] if balances else None,
    )
    text = codec.dumps(outcome)
    db.execute(
        "INSERT INTO transactions VALUES (?, ?, ?, 'committed', ?, ?, ?, NULL)",
        (tx, fingerprint, member_id, to_us(now), text, earned_lot_id),
    )
    append_ledger(
        db,
        LedgerEntry(
            0,
            "commit",
            tx,
            tx,
            member_id,
            now,
            outcome.lines,
            result.payable_minor,
            result.points_earned,
            result.points_redeemed,
            **effects.context(outcome),
        ),
    )
    return codec.loads(CommitOutcome, text)


def _us(at: datetime | None) -> int | None:
    return None if at is None else to_us(at)


def _use_offer(
    db: sqlite3.Connection,
    policy: Policy,
    tx: str,
    applied: AppliedOffer,
    member_id: str | None,
    code_offers: Mapping[str, str],
    codes: Sequence[str],
    used_codes: set[str],
    now: datetime,
) -> OfferUse:
    """Count one use of an applied offer: its coupon, member and global limits, its budget."""
    o = applied.offer_id
    p = policy.offers.get(o)
    coupon_id = code = ""
    now_us = to_us(now)
    if p is not None and p.coupon:
        row = None
        if member_id is not None:
            row = db.execute(
                "SELECT coupon_id FROM wallet_coupons WHERE member_id = ? AND"
                " offer_id = ? AND uses_left > 0 AND valid_from_us <= ? AND"
                " valid_until_us > ? ORDER BY valid_until_us, coupon_id LIMIT 1",
                (member_id, o, now_us, now_us),
            ).fetchone()
        if row is not None:
            coupon_id = row[0]
            db.execute(
                "UPDATE wallet_coupons SET uses_left = uses_left - 1 WHERE coupon_id = ?",
                (coupon_id,),
            )
        else:
            code = next((c for c in codes if code_offers.get(c) == o and c not in used_codes), "")
            if (
                not code
                or db.execute(
                    "UPDATE codes SET uses_left = uses_left - 1 WHERE code = ? AND uses_left > 0",
                    (code,),
                ).rowcount
                != 1
            ):
                raise Conflict(f"offer {o!r} applied without a coupon left to use")
            used_codes.add(code)
            if (
                member_id is not None
                and db.execute("SELECT per_member FROM codes WHERE code = ?", (code,)).fetchone()[0]
            ):
                db.execute("INSERT INTO code_redemptions VALUES (?, ?, ?)", (code, member_id, tx))
    period_key = None
    if p is not None and p.per_member and member_id is not None:
        period_key = policy.period_key(p.period, now)
        r = db.execute(
            "SELECT uses FROM member_offer_usage WHERE member_id = ? AND offer_id = ?"
            " AND period_key = ?",
            (member_id, o, period_key),
        ).fetchone()
        if r is not None and r[0] >= p.per_member:
            raise Conflict(f"offer {o!r}: the member's uses are used up")
        db.execute(
            "INSERT INTO member_offer_usage VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE"
            " SET uses = uses + 1",
            (member_id, o, period_key),
        )
    r = db.execute(
        "SELECT uses, budget_spent_minor FROM offer_usage WHERE offer_id = ?", (o,)
    ).fetchone()
    used, spent = r if r is not None else (0, 0)
    if p is not None and p.total_uses and used >= p.total_uses:
        raise Conflict(f"offer {o!r}: total uses are used up")
    if p is not None and p.budget_minor and spent + applied.discount_minor > p.budget_minor:
        raise Conflict(f"offer {o!r}: the budget would be overspent")
    db.execute(
        "INSERT INTO offer_usage VALUES (?, 1, ?) ON CONFLICT DO UPDATE SET"
        " uses = uses + 1, budget_spent_minor = budget_spent_minor + excluded."
        "budget_spent_minor",
        (o, applied.discount_minor),
    )
    db.execute(
        "INSERT INTO tx_offers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            tx,
            o,
            applied.funder_id,
            applied.discount_minor,
            applied.funded_minor,
            applied.points,
            period_key,
            coupon_id,
            code,
        ),
    )
    return OfferUse(
        o,
        applied.funder_id,
        applied.discount_minor,
        applied.funded_minor,
        applied.points,
        coupon_id,
        code,
    )


# ---------------------------------------------------------------------------------------------
# Reversals


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


def _reverse(
    db: sqlite3.Connection, tx: sqlite3.Row, targets: dict[int, int], now: datetime, source: str
) -> _Reversal:
    """Move each line ``idx`` to ``targets[idx]`` units returned in total (DESIGN §5)."""
    t = tx["transaction_id"]
    rows = db.execute(
        "SELECT * FROM tx_lines WHERE transaction_id = ? ORDER BY idx", (t,)
    ).fetchall()
    discounts: dict[int, list[DiscountDetail]] = {}
    for d in db.execute(
        "SELECT * FROM tx_discounts WHERE transaction_id = ? ORDER BY idx, seq", (t,)
    ):
        discounts.setdefault(d["idx"], []).append(
            DiscountDetail(d["offer_id"], d["funder_id"], d["amount_minor"], d["funded_minor"])
        )
    lines = [
        LineDetail(
            r["line_id"],
            r["sku"],
            r["quantity"],
            r["gross_minor"],
            r["net_minor"],
            r["tender_minor"],
            r["points"],
            r["redeemed"],
            tuple(discounts.get(r["idx"], ())),
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
    member_id = tx["member_id"]
    if member_id is not None:
        member = db.execute(
            "SELECT points_debt FROM members WHERE member_id = ?", (member_id,)
        ).fetchone()
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
            codec.loads(CommitOutcome, tx["outcome"]),
            now,
        )
        db.executemany(
            "UPDATE tx_burns SET restored = ? WHERE transaction_id = ? AND seq = ?",
            [(b.restored, t, b.seq) for b in burns if b.changed],
        )
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
    return _Reversal(rev, forfeited, debt_added)


def cancel(db: sqlite3.Connection, transaction_id: str, now: datetime) -> CancelOutcome:
    tx = _transaction(db, transaction_id)
    if tx["status"] == "cancelled":
        return codec.loads(CancelOutcome, tx["cancel_outcome"])
    targets = {
        r[0]: r[1]
        for r in db.execute(
            "SELECT idx, quantity FROM tx_lines"
            " WHERE transaction_id = ? AND returned_qty < quantity",
            (transaction_id,),
        )
    }
    rev = _reverse(db, tx, targets, now, f"cancel:{transaction_id}")
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
    )
    text = codec.dumps(outcome)
    db.execute(
        "UPDATE transactions SET status = 'cancelled', cancel_outcome = ? WHERE transaction_id = ?",
        (text, transaction_id),
    )
    append_ledger(
        db,
        LedgerEntry(
            0,
            "cancel",
            transaction_id,
            transaction_id,
            member_id,
            now,
            r.lines,
            r.refund,
            r.clawed,
            r.restored,
            **effects.context(codec.loads(CommitOutcome, tx["outcome"])),
        ),
    )
    return codec.loads(CancelOutcome, text)


def return_lines(
    db: sqlite3.Connection,
    return_id: str,
    transaction_id: str,
    lines: Sequence[tuple[str, int]],
    now: datetime,
) -> ReturnOutcome:
    wanted, fingerprint = effects.return_request(transaction_id, lines)
    row = db.execute(
        "SELECT fingerprint, outcome FROM returns WHERE return_id = ?", (return_id,)
    ).fetchone()
    if row is not None:
        if row[0] != fingerprint:
            raise AlreadyExists(f"return {return_id!r} was made with another request")
        return codec.loads(ReturnOutcome, row[1])
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
    rev = _reverse(db, tx, targets, now, f"return:{return_id}")
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
    )
    text = codec.dumps(outcome)
    db.execute(
        "INSERT INTO returns VALUES (?, ?, ?, ?)", (return_id, transaction_id, fingerprint, text)
    )
    append_ledger(
        db,
        LedgerEntry(
            0,
            "return",
            return_id,
            transaction_id,
            tx["member_id"],
            now,
            r.lines,
            r.refund,
            r.clawed,
            r.restored,
            **effects.context(codec.loads(CommitOutcome, tx["outcome"])),
        ),
    )
    return codec.loads(ReturnOutcome, text)
