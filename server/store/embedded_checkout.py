"""Commit, cancel and return inside one SQLite write transaction (embedded store).

The caller (:class:`server.store.embedded.EmbeddedStore`) opens ``BEGIN IMMEDIATE`` first, so
the database write lock is held from the idempotency check through load, pricing and apply:
nobody can change a balance, a coupon, a limit or a budget between the read that priced the
basket and the write that spends it. Every effect is still re-checked before it is written
(a price function given stale or wrong inputs raises :class:`Conflict` and nothing is written).
The Redis store will do the same re-checks inside its Lua script.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.types import AppliedOffer, Basket, PricingResult
from server.store import codec
from server.store import points as P
from server.store.base import (
    AlreadyExists,
    CancelOutcome,
    CommitOutcome,
    Conflict,
    DiscountDetail,
    FailedPrecondition,
    InvalidArgument,
    LedgerEntry,
    LineDetail,
    NotFound,
    OfferUse,
    PriceFn,
    ReturnOutcome,
)
from server.store.embedded_state import (
    append_ledger,
    from_us,
    load_lots,
    pricing_state,
    rolling_spend,
    save_lots,
    set_debt,
    to_us,
)
from server.store.policy import Policy


def commit(db: sqlite3.Connection, policy: Policy, spend_months: int, transaction_id: str,
           fingerprint: str, price_fn: PriceFn, now: datetime, basket: Basket,
           member_id: str | None, codes: Sequence[str]) -> CommitOutcome:
    row = db.execute("SELECT fingerprint, outcome FROM transactions WHERE transaction_id = ?",
                     (transaction_id,)).fetchone()
    if row is not None:
        if row[0] != fingerprint:
            raise AlreadyExists(f"transaction {transaction_id!r} was committed with another "
                                "request")
        return codec.loads(CommitOutcome, row[1])
    state = pricing_state(db, policy, member_id, None, codes, now, spend_months)
    result = price_fn(state)
    _check_result(result, basket)
    tx = transaction_id
    redeemed = P.allocate(result.points_redeemed, [x.points_tender_minor for x in result.lines])

    earned_lot_id = None
    available_at = expires_at = None
    tier_before = tier_after = state.record.tier if state.record else ""
    if member_id is None:
        if result.points_redeemed or result.points_earned:
            raise Conflict("a guest transaction cannot earn or redeem points")
    else:
        lots = load_lots(db, member_id)
        debt, _ = P.settle(lots, state.record.points_debt if state.record else 0, now)
        if result.points_redeemed:
            try:
                taken = P.burn(lots, result.points_redeemed, now)
            except ValueError as exc:
                raise Conflict(f"cannot redeem {result.points_redeemed} points: {exc}") from None
            save_lots(db, member_id, lots, tx)
            db.executemany("INSERT INTO tx_burns VALUES (?, ?, ?, ?, ?, 0)",
                           [(tx, k, lot.lot_id, n, _us(lot.expires_at))
                            for k, (lot, n) in enumerate(taken)])
        if result.points_earned:
            available_at, expires_at = P.earned_lot_times(now, policy.pending_days,
                                                          policy.expiry_months)
            lot = P.Lot(None, result.points_earned, now, available_at, expires_at)
            lots.append(lot)
            save_lots(db, member_id, [lot], tx)
            earned_lot_id = lot.lot_id
        debt, _ = P.settle(lots, debt, now)
        save_lots(db, member_id, lots, tx)
        set_debt(db, member_id, debt)
        spend = result.net_minor
        db.execute("INSERT INTO member_spend VALUES (?, ?, ?, ?)", (member_id, tx, to_us(now),
                                                                   spend))
        rolling = rolling_spend(db, member_id, now, spend_months)
        tier_after = policy.upgraded_tier(tier_before, rolling)
        db.execute("UPDATE members SET lifetime_spend_minor = lifetime_spend_minor + ?, tier = ?"
                   " WHERE member_id = ?", (spend, tier_after, member_id))

    used_codes: set[str] = set()
    uses = []
    for applied in result.offers:
        uses.append(_use_offer(db, policy, tx, applied, member_id, state.code_offers, codes,
                               used_codes, now))

    details = []
    for i, (line, res) in enumerate(zip(basket.lines, result.lines, strict=True)):
        db.execute("INSERT INTO tx_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                   (tx, i, res.line_id, line.sku, line.quantity, res.gross_minor, res.net_minor,
                    res.points_tender_minor, res.points_earned, redeemed[i]))
        db.executemany("INSERT INTO tx_discounts VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(tx, i, k, d.offer_id, d.funder_id, d.amount_minor, d.funded_minor)
                        for k, d in enumerate(res.discounts)])
        details.append(LineDetail(
            res.line_id, line.sku, line.quantity, res.gross_minor, res.net_minor,
            res.points_tender_minor, res.points_earned, redeemed[i],
            tuple(DiscountDetail(d.offer_id, d.funder_id, d.amount_minor, d.funded_minor)
                  for d in res.discounts)))
    outcome = CommitOutcome(
        transaction_id=tx, member_id=member_id, at=now, pricing=result, lines=tuple(details),
        offers=tuple(uses), points_earned=result.points_earned,
        points_redeemed=result.points_redeemed, points_available_at=available_at,
        points_expire_at=expires_at, qualifying_spend_minor=result.net_minor if member_id else 0,
        tier_before=tier_before, tier_after=tier_after)
    text = codec.dumps(outcome)
    db.execute("INSERT INTO transactions VALUES (?, ?, ?, 'committed', ?, ?, ?, NULL)",
               (tx, fingerprint, member_id, to_us(now), text, earned_lot_id))
    append_ledger(db, LedgerEntry(0, "commit", tx, tx, member_id, now, outcome.lines,
                                  result.payable_minor, result.points_earned,
                                  result.points_redeemed))
    return codec.loads(CommitOutcome, text)


def _us(at: datetime | None) -> int | None:
    return None if at is None else to_us(at)


def _check_result(result: PricingResult, basket: Basket) -> None:
    if [x.line_id for x in result.lines] != [x.line_id for x in basket.lines]:
        raise InvalidArgument("basket", "the priced result does not match the basket's lines")
    if any(x.net_minor < 0 or x.points_tender_minor < 0 or x.points_earned < 0
           for x in result.lines) or result.points_redeemed < 0:
        raise InvalidArgument("basket", "the priced result has negative amounts")


def _use_offer(db: sqlite3.Connection, policy: Policy, tx: str, applied: AppliedOffer,
               member_id: str | None, code_offers: Mapping[str, str], codes: Sequence[str],
               used_codes: set[str], now: datetime) -> OfferUse:
    """Count one use of an applied offer: its coupon, member and global limits, its budget."""
    o = applied.offer_id
    p = policy.offers.get(o)
    coupon_id = code = ""
    now_us = to_us(now)
    if p is not None and p.coupon:
        row = None
        if member_id is not None:
            row = db.execute("SELECT coupon_id FROM wallet_coupons WHERE member_id = ? AND"
                             " offer_id = ? AND uses_left > 0 AND valid_from_us <= ? AND"
                             " valid_until_us > ? ORDER BY valid_until_us, coupon_id LIMIT 1",
                             (member_id, o, now_us, now_us)).fetchone()
        if row is not None:
            coupon_id = row[0]
            db.execute("UPDATE wallet_coupons SET uses_left = uses_left - 1 WHERE coupon_id = ?",
                       (coupon_id,))
        else:
            code = next((c for c in codes if code_offers.get(c) == o and c not in used_codes), "")
            if not code or db.execute("UPDATE codes SET uses_left = uses_left - 1 WHERE code = ?"
                                      " AND uses_left > 0", (code,)).rowcount != 1:
                raise Conflict(f"offer {o!r} applied without a coupon left to use")
            used_codes.add(code)
            if member_id is not None and db.execute(
                    "SELECT per_member FROM codes WHERE code = ?", (code,)).fetchone()[0]:
                db.execute("INSERT INTO code_redemptions VALUES (?, ?, ?)", (code, member_id, tx))
    period_key = None
    if p is not None and p.per_member and member_id is not None:
        period_key = policy.period_key(p.period, now)
        r = db.execute("SELECT uses FROM member_offer_usage WHERE member_id = ? AND offer_id = ?"
                       " AND period_key = ?", (member_id, o, period_key)).fetchone()
        if r is not None and r[0] >= p.per_member:
            raise Conflict(f"offer {o!r}: the member's uses are used up")
        db.execute("INSERT INTO member_offer_usage VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE"
                   " SET uses = uses + 1", (member_id, o, period_key))
    r = db.execute("SELECT uses, budget_spent_minor FROM offer_usage WHERE offer_id = ?",
                   (o,)).fetchone()
    used, spent = r if r is not None else (0, 0)
    if p is not None and p.total_uses and used >= p.total_uses:
        raise Conflict(f"offer {o!r}: total uses are used up")
    if p is not None and p.budget_minor and spent + applied.discount_minor > p.budget_minor:
        raise Conflict(f"offer {o!r}: the budget would be overspent")
    db.execute("INSERT INTO offer_usage VALUES (?, 1, ?) ON CONFLICT DO UPDATE SET"
               " uses = uses + 1, budget_spent_minor = budget_spent_minor + excluded."
               "budget_spent_minor", (o, applied.discount_minor))
    db.execute("INSERT INTO tx_offers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (tx, o, applied.funder_id, applied.discount_minor, applied.funded_minor,
                applied.points, period_key, coupon_id, code))
    return OfferUse(o, applied.funder_id, applied.discount_minor, applied.funded_minor,
                    applied.points, coupon_id, code)


# ---------------------------------------------------------------------------------------------
# Reversals


@dataclass(slots=True)
class _Reversal:
    lines: tuple[LineDetail, ...]
    refund: int
    clawed: int
    restored: int
    forfeited: int
    debt_added: int


def _transaction(db: sqlite3.Connection, transaction_id: str) -> sqlite3.Row:
    tx = db.execute("SELECT * FROM transactions WHERE transaction_id = ?",
                    (transaction_id,)).fetchone()
    if tx is None:
        raise NotFound(f"transaction {transaction_id!r} not found")
    return tx


def _reverse(db: sqlite3.Connection, tx: sqlite3.Row, targets: dict[int, int], now: datetime,
             source: str) -> _Reversal:
    """Move each line ``idx`` to ``targets[idx]`` units returned in total (DESIGN §5)."""
    t = tx["transaction_id"]
    rows = {r["idx"]: r for r in db.execute("SELECT * FROM tx_lines WHERE transaction_id = ?",
                                            (t,))}
    discounts: dict[int, list] = {}
    for d in db.execute("SELECT * FROM tx_discounts WHERE transaction_id = ? ORDER BY idx, seq",
                        (t,)):
        discounts.setdefault(d["idx"], []).append(d)
    details = []
    clawed = restored = net_back = 0
    budget_back: dict[str, int] = {}
    for idx in sorted(targets):
        r = rows[idx]
        q, r0, r1 = r["quantity"], r["returned_qty"], targets[idx]

        def delta(total: int, q: int = q, r0: int = r0, r1: int = r1) -> int:
            return P.share(total, r1, q) - P.share(total, r0, q)

        refund = delta(r["net_minor"] - r["tender_minor"])
        tender = delta(r["tender_minor"])
        discs = []
        for d in discounts.get(idx, ()):
            amount = delta(d["amount_minor"])
            budget_back[d["offer_id"]] = budget_back.get(d["offer_id"], 0) + amount
            discs.append(DiscountDetail(d["offer_id"], d["funder_id"], amount,
                                        delta(d["funded_minor"])))
        detail = LineDetail(r["line_id"], r["sku"], r1 - r0, delta(r["gross_minor"]),
                            refund + tender, tender, delta(r["points"]), delta(r["redeemed"]),
                            tuple(discs))
        details.append(detail)
        clawed += detail.points_earned
        restored += detail.points_redeemed
        net_back += detail.net_minor
        db.execute("UPDATE tx_lines SET returned_qty = ? WHERE transaction_id = ? AND idx = ?",
                   (r1, t, idx))
    for offer_id, amount in budget_back.items():
        db.execute("UPDATE offer_usage SET budget_spent_minor = budget_spent_minor - ?"
                   " WHERE offer_id = ?", (amount, offer_id))
    forfeited = debt_added = 0
    member_id = tx["member_id"]
    if member_id is not None:
        member = db.execute("SELECT points_debt FROM members WHERE member_id = ?",
                            (member_id,)).fetchone()
        lots = load_lots(db, member_id)
        debt, _ = P.settle(lots, member[0], now)
        forfeited = _restore_burns(db, t, restored, lots, now)
        debt, _ = P.settle(lots, debt, now)
        own = next((x for x in lots if x.lot_id == tx["earned_lot_id"]), None)
        debt_added = P.claw_back(lots, clawed, now, own)
        debt, _ = P.settle(lots, debt + debt_added, now)
        save_lots(db, member_id, lots, source)
        set_debt(db, member_id, debt)
        db.execute("UPDATE member_spend SET amount_minor = amount_minor - ? WHERE member_id = ?"
                   " AND transaction_id = ?", (net_back, member_id, t))
        db.execute("UPDATE members SET lifetime_spend_minor = lifetime_spend_minor - ?"
                   " WHERE member_id = ?", (net_back, member_id))
    return _Reversal(tuple(details), sum(x.payable_minor for x in details), clawed, restored,
                     forfeited, debt_added)


def _restore_burns(db: sqlite3.Connection, tx: str, points: int, lots: list[P.Lot],
                   now: datetime) -> int:
    """Give back ``points`` of the tender as new lots keeping the burned lots' expiry, latest
    expiry first; points whose lot has expired meanwhile are forfeited (returned count)."""
    forfeited = 0
    burns = db.execute("SELECT seq, points, restored, expires_us FROM tx_burns WHERE"
                       " transaction_id = ? ORDER BY expires_us IS NULL DESC, expires_us DESC,"
                       " seq DESC", (tx,)).fetchall()
    for seq, burned, done, expires_us in burns:
        if points == 0:
            break
        n = min(points, burned - done)
        if n <= 0:
            continue
        points -= n
        db.execute("UPDATE tx_burns SET restored = restored + ? WHERE transaction_id = ? AND"
                   " seq = ?", (n, tx, seq))
        expires = from_us(expires_us)
        if expires is not None and expires <= now:
            forfeited += n
        else:
            lots.append(P.Lot(None, n, now, now, expires))
    return forfeited


def cancel(db: sqlite3.Connection, transaction_id: str, now: datetime) -> CancelOutcome:
    tx = _transaction(db, transaction_id)
    if tx["status"] == "cancelled":
        return codec.loads(CancelOutcome, tx["cancel_outcome"])
    targets = {r[0]: r[1] for r in db.execute(
        "SELECT idx, quantity FROM tx_lines WHERE transaction_id = ? AND returned_qty < quantity",
        (transaction_id,))}
    rev = _reverse(db, tx, targets, now, f"cancel:{transaction_id}")
    member_id = tx["member_id"]
    released = []
    for o in db.execute("SELECT * FROM tx_offers WHERE transaction_id = ?",
                        (transaction_id,)).fetchall():
        released.append(o["offer_id"])
        if o["coupon_id"]:
            db.execute("UPDATE wallet_coupons SET uses_left = uses_left + 1 WHERE coupon_id = ?",
                       (o["coupon_id"],))
        if o["code"]:
            db.execute("UPDATE codes SET uses_left = uses_left + 1 WHERE code = ?", (o["code"],))
            db.execute("DELETE FROM code_redemptions WHERE code = ? AND transaction_id = ?",
                       (o["code"], transaction_id))
        if o["period_key"] is not None:
            db.execute("UPDATE member_offer_usage SET uses = uses - 1 WHERE member_id = ? AND"
                       " offer_id = ? AND period_key = ?",
                       (member_id, o["offer_id"], o["period_key"]))
        db.execute("UPDATE offer_usage SET uses = uses - 1 WHERE offer_id = ?", (o["offer_id"],))
    outcome = CancelOutcome(transaction_id, member_id, now, rev.lines, rev.refund, rev.clawed,
                            rev.restored, rev.forfeited, rev.debt_added, tuple(released))
    text = codec.dumps(outcome)
    db.execute("UPDATE transactions SET status = 'cancelled', cancel_outcome = ? WHERE"
               " transaction_id = ?", (text, transaction_id))
    append_ledger(db, LedgerEntry(0, "cancel", transaction_id, transaction_id, member_id, now,
                                  rev.lines, rev.refund, rev.clawed, rev.restored))
    return codec.loads(CancelOutcome, text)


def return_lines(db: sqlite3.Connection, return_id: str, transaction_id: str,
                 lines: Sequence[tuple[str, int]], now: datetime) -> ReturnOutcome:
    wanted: dict[str, int] = {}
    if not lines:
        raise InvalidArgument("lines", "at least one line is required")
    for k, item in enumerate(lines):
        line_id, qty = item
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            raise InvalidArgument(f"lines[{k}].quantity", f"must be at least 1 (got {qty!r})")
        wanted[line_id] = wanted.get(line_id, 0) + qty
    fingerprint = json.dumps([transaction_id, sorted(wanted.items())])
    row = db.execute("SELECT fingerprint, outcome FROM returns WHERE return_id = ?",
                     (return_id,)).fetchone()
    if row is not None:
        if row[0] != fingerprint:
            raise AlreadyExists(f"return {return_id!r} was made with another request")
        return codec.loads(ReturnOutcome, row[1])
    tx = _transaction(db, transaction_id)
    if tx["status"] == "cancelled":
        raise FailedPrecondition(f"transaction {transaction_id!r} is cancelled")
    by_id = {r[0]: (r[1], r[2], r[3]) for r in db.execute(
        "SELECT line_id, idx, quantity, returned_qty FROM tx_lines WHERE transaction_id = ?",
        (transaction_id,))}
    targets = {}
    for k, (line_id, _) in enumerate(lines):
        if line_id not in by_id:
            raise InvalidArgument(f"lines[{k}].line_id",
                                  f"no line {line_id!r} in transaction {transaction_id!r}")
    for line_id, qty in wanted.items():
        idx, bought, returned = by_id[line_id]
        if returned + qty > bought:
            raise FailedPrecondition(f"line {line_id!r}: {qty} unit(s) asked, only "
                                     f"{bought - returned} of {bought} left to return")
        targets[idx] = returned + qty
    rev = _reverse(db, tx, targets, now, f"return:{return_id}")
    outcome = ReturnOutcome(return_id, transaction_id, tx["member_id"], now, rev.lines,
                            rev.refund, rev.clawed, rev.restored, rev.forfeited, rev.debt_added)
    text = codec.dumps(outcome)
    db.execute("INSERT INTO returns VALUES (?, ?, ?, ?)",
               (return_id, transaction_id, fingerprint, text))
    append_ledger(db, LedgerEntry(0, "return", return_id, transaction_id, tx["member_id"], now,
                                  rev.lines, rev.refund, rev.clawed, rev.restored))
    return codec.loads(ReturnOutcome, text)
