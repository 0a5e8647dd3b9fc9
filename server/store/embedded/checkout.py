"""Commit on SQLite: read a snapshot, then apply a plan in one ``BEGIN IMMEDIATE`` transaction.

The loop and the rules are shared by every store (:mod:`server.store.checkout`,
:mod:`server.store.plan`); this module only reads what a plan is made from and writes what it
decides. :func:`snapshot` runs in a read transaction (WAL: one consistent view, no lock held
while the basket is priced). :func:`apply` runs under the write lock and first re-checks what
the plan depends on: the transaction is not committed yet, the member's ``version`` is the one
read (every change to a member's state bumps it, see :func:`state.set_debt`), the offers' uses
and budgets stay within their caps and the codes have the uses left. If anything moved it
writes nothing and answers False, and the loop reads again. Cancel and return are in
:mod:`server.store.embedded.reversals`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from server.store import snapshot
from server.store.base import (
    CommitPlan,
    CommitSnapshot,
    MemberEffects,
    MemberState,
    replay,
)
from server.store.embedded.state import (
    append_ledger,
    code_statuses,
    engine_inputs,
    load_lots,
    load_spend,
    load_wallet,
    member_record,
    member_row,
    member_usage,
    offer_usage,
    save_lots,
    set_debt,
)
from server.store.embedded.units import apply_ops as apply_units
from server.store.embedded.units import read_units
from server.store.embedded.units import still_valid as unit_ops_fit
from server.store.policy import Policy
from server.store.snapshot import rolling_sum, spend_since, to_us
from server.store.stored import decode_commit, encode_commit


def read_snapshot(
    db: sqlite3.Connection,
    policy: Policy,
    tx: str,
    member_id: str | None,
    codes: Sequence[str],
    now: datetime,
    months: int,
) -> CommitSnapshot:
    """What a commit prices and plans on, read in the caller's read transaction."""
    row = db.execute(
        "SELECT fingerprint, outcome FROM transactions WHERE transaction_id = ?", (tx,)
    ).fetchone()
    if row is not None:
        return replay(row[0], decode_commit(row[1]), months)
    ids = snapshot.limited_ids(policy, None)
    member = record = None
    mine: dict[tuple[str, str], int] = {}
    if member_id is not None:
        m = member_row(db, member_id)
        lots = load_lots(db, member_id)
        wallet = load_wallet(db, member_id)
        spend = load_spend(db, member_id, spend_since(now, months))
        record = member_record(
            db,
            member_id,
            now,
            months,
            row=m,
            lots=[replace(x) for x in lots],
            wallet=wallet,
            rolling=rolling_sum(spend, now, months),
        )
        mine = member_usage(db, policy, member_id, now)
        member = MemberState(
            member_id,
            m["version"],
            m["tier"],
            tuple(sorted(json.loads(m["segments"]))),
            lots,
            m["points_debt"],
            bool(m["legacy_lots"]),
            spend,
            record.wallet,
            mine,
            tier_floor=m["tier_floor"],
        )
    usage = offer_usage(db, ids)
    statuses = code_statuses(db, policy, member_id, codes, now)
    units = read_units(db, policy, ids)
    state = engine_inputs(policy, record, codes, statuses, ids, usage, mine, now, units)
    return CommitSnapshot(state, member, usage, statuses[2], months)


def apply(db: sqlite3.Connection, snap: CommitSnapshot, plan: CommitPlan, now: datetime) -> bool:
    """Write ``plan`` if nothing it depends on moved since ``snap`` was read (else False,
    nothing written); the caller holds the write lock."""
    if not _still_valid(db, plan):
        return False
    tx, m = plan.transaction_id, plan.member
    earned_lot_id = None
    if m is not None:
        earned_lot_id = _apply_member(db, snap, m, tx, now)
    outcome = plan.outcome
    for count in plan.offers:
        db.execute(
            "INSERT INTO offer_usage VALUES (?, 1, ?) ON CONFLICT DO UPDATE SET"
            " uses = uses + 1, budget_spent_minor = budget_spent_minor + excluded."
            "budget_spent_minor",
            (count.offer_id, count.discount_minor),
        )
    apply_units(db, plan.units)
    db.executemany(
        "UPDATE codes SET uses_left = uses_left - 1, last_tx = ?, last_us = ? WHERE code = ?",
        [(tx, to_us(outcome.at), c) for c in plan.codes],
    )
    periods = m.periods if m is not None else {}
    db.executemany(
        "INSERT INTO tx_offers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                tx,
                u.offer_id,
                u.funder_id,
                u.discount_minor,
                u.funded_minor,
                u.points,
                periods.get(u.offer_id),
                u.coupon_id,
                u.code,
            )
            for u in outcome.offers
        ],
    )
    db.executemany(
        "INSERT INTO tx_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
        [
            (
                tx,
                i,
                d.line_id,
                d.sku,
                d.quantity,
                d.gross_minor,
                d.net_minor,
                d.tender_minor,
                d.points_earned,
                d.points_redeemed,
                int(d.delivery),
            )
            for i, d in enumerate(outcome.lines)
        ],
    )
    db.executemany(
        "INSERT INTO tx_discounts VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (tx, i, k, x.offer_id, x.funder_id, x.amount_minor, x.funded_minor)
            for i, d in enumerate(outcome.lines)
            for k, x in enumerate(d.discounts)
        ],
    )
    db.execute(
        "INSERT INTO transactions VALUES (?, ?, ?, 'committed', ?, ?, ?, NULL)",
        (
            tx,
            plan.fingerprint,
            outcome.member_id,
            to_us(now),
            encode_commit(outcome),
            earned_lot_id,
        ),
    )
    append_ledger(db, plan.entry)
    return True


def _still_valid(db: sqlite3.Connection, plan: CommitPlan) -> bool:
    """The apply's checks, all before the first write."""
    if db.execute(
        "SELECT 1 FROM transactions WHERE transaction_id = ?", (plan.transaction_id,)
    ).fetchone():
        return False  # committed meanwhile: the next read answers its stored outcome
    if plan.member is not None:
        row = db.execute(
            "SELECT version FROM members WHERE member_id = ?", (plan.member.member_id,)
        ).fetchone()
        if row is None or row[0] != plan.member.version:
            return False
    for c in plan.offers:
        used, spent = db.execute(
            "SELECT COALESCE(MAX(uses), 0), COALESCE(MAX(budget_spent_minor), 0)"
            " FROM offer_usage WHERE offer_id = ?",
            (c.offer_id,),
        ).fetchone()
        if (c.uses_cap and used + 1 > c.uses_cap) or (
            c.budget_cap and spent + c.discount_minor > c.budget_cap
        ):
            return False
    for code in plan.codes:
        row = db.execute("SELECT uses_left FROM codes WHERE code = ?", (code,)).fetchone()
        if row is None or row[0] < 1:
            return False
    return unit_ops_fit(db, plan.units)


def _apply_member(
    db: sqlite3.Connection, snap: CommitSnapshot, m: MemberEffects, tx: str, now: datetime
) -> int | None:
    """The member's rows: lots, burns, debt (and version), spend buckets, tier, coupons and
    member-limit uses; returns the id of the lot the earned points joined."""
    save_lots(db, m.member_id, m.lots, tx)
    db.executemany(
        "INSERT INTO tx_burns VALUES (?, ?, ?, ?, ?, 0)",
        [
            (tx, k, b.lot_id, b.points, None if b.expires_at is None else to_us(b.expires_at))
            for k, b in enumerate(m.burned)
        ],
    )
    set_debt(db, m.member_id, m.debt)
    db.execute(
        "UPDATE members SET lifetime_spend_minor = lifetime_spend_minor + ?, tier = ?,"
        " tier_floor = ?, legacy_lots = 0 WHERE member_id = ?",
        (m.spend_minor, m.tier, m.tier_floor, m.member_id),
    )
    _write_spend(db, m.member_id, snap, m, now)
    db.executemany(
        "UPDATE wallet_coupons SET uses_left = uses_left - 1 WHERE coupon_id = ?",
        [(c,) for c in m.coupons],
    )
    db.executemany(
        "INSERT INTO code_redemptions VALUES (?, ?, ?)",
        [(code, m.member_id, tx) for code in m.redeemed],
    )
    db.executemany(
        "INSERT INTO member_offer_usage VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE"
        " SET uses = uses + 1",
        [(m.member_id, o, period) for o, period in m.periods.items()],
    )
    return m.earned.lot_id if m.earned is not None else None


def _write_spend(
    db: sqlite3.Connection, member_id: str, snap: CommitSnapshot, m: MemberEffects, now: datetime
) -> None:
    """Write only the spend rows that changed; drop the buckets that left the window."""
    since = spend_since(now, snap.spend_months)
    db.execute("DELETE FROM member_spend WHERE member_id = ? AND end_us <= ?", (member_id, since))
    old = {(s, e): a for s, e, a in (snap.member.spend if snap.member else ())}
    spans = {(s, e) for s, e, _ in m.spend}
    db.executemany(
        "DELETE FROM member_spend WHERE member_id = ? AND start_us = ?",
        [(member_id, s) for s, e in old if (s, e) not in spans],
    )
    db.executemany(
        "INSERT INTO member_spend VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
        " end_us = excluded.end_us, amount_minor = excluded.amount_minor",
        [(member_id, s, e, a) for s, e, a in m.spend if old.get((s, e)) != a],
    )
