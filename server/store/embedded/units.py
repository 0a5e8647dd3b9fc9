"""Unit caps and reservations on SQLite (rules: :mod:`server.store.units`).

Tables ``offer_units`` (units sold per offer, ``scope`` "" = all stores, "s:<store>" = one
store) and ``unit_reservations`` (server/store/embedded/schema.py). Every function runs inside
the caller's transaction: the commit's apply (write lock held), a cancel, an issue.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from loyalty.v1.ledger_pb2 import OfferUse
from server.store import units as U
from server.store.policy import Policy
from server.store.unit_usage import Reservation, UnitUsage

_TOTAL = ""


def _scope(store_id: str) -> str:
    return "s:" + store_id


def read_units(db: sqlite3.Connection, policy: Policy, ids: Iterable[str]) -> dict[str, UnitUsage]:
    """The unit counters of the offers of ``ids`` that have unit caps."""
    wanted = [o for o in ids if o in policy.offers and U.capped(policy.offers[o])]
    out = {}
    for o in wanted:
        sold, by_store = 0, {}
        for scope, n in db.execute(
            "SELECT scope, units FROM offer_units WHERE offer_id = ?", (o,)
        ).fetchall():
            if scope == _TOTAL:
                sold = n
            else:
                by_store[scope[2:]] = n
        reservations = tuple(
            Reservation(*row)
            for row in db.execute(
                "SELECT reservation_id, member_id, units, until_us FROM unit_reservations"
                " WHERE offer_id = ? AND units > 0 ORDER BY reservation_id",
                (o,),
            )
        )
        out[o] = UnitUsage(sold, by_store, reservations)
    return out


def _usage(db: sqlite3.Connection, offer_id: str, store_id: str | None) -> UnitUsage:
    rows = dict(
        db.execute(
            "SELECT scope, units FROM offer_units WHERE offer_id = ? AND scope IN (?, ?)",
            (offer_id, _TOTAL, _scope(store_id or "")),
        ).fetchall()
    )
    reservations = tuple(
        Reservation(*row)
        for row in db.execute(
            "SELECT reservation_id, member_id, units, until_us FROM unit_reservations"
            " WHERE offer_id = ? AND units > 0",
            (offer_id,),
        )
    )
    by_store = {} if store_id is None else {store_id: rows.get(_scope(store_id), 0)}
    return UnitUsage(rows.get(_TOTAL, 0), by_store, reservations)


def still_valid(db: sqlite3.Connection, ops: Sequence[U.UnitOp]) -> bool:
    """A commit's unit ops fit the counters as they are now (under the write lock)."""
    for op in ops:
        u = _usage(db, op.offer_id, op.store_id)
        others, _ = u.held(op.now_us, op.holder or None)
        if op.total_cap and u.sold + op.units + others > op.total_cap:
            return False
        if op.store_cap and op.store_id is not None:
            if u.by_store.get(op.store_id, 0) + op.units > op.store_cap:
                return False
    return True


def apply_ops(db: sqlite3.Connection, ops: Iterable[U.UnitOp]) -> None:
    """Count the units (negative: give back); a commit uses the holder's reservations first."""
    for op in ops:
        scopes = [_TOTAL] if op.store_id is None else [_TOTAL, _scope(op.store_id)]
        db.executemany(
            "INSERT INTO offer_units VALUES (?, ?, ?) ON CONFLICT DO UPDATE"
            " SET units = units + excluded.units",
            [(op.offer_id, s, op.units) for s in scopes],
        )
        if op.units > 0 and op.holder:
            u = _usage(db, op.offer_id, None)
            db.executemany(
                "UPDATE unit_reservations SET units = units - ? WHERE reservation_id = ?",
                [(n, rid) for rid, n in U.consume(u.reservations, op.holder, op.units, op.now_us)],
            )


def give_back(db: sqlite3.Connection, uses: Sequence[OfferUse], store_id: str) -> None:
    apply_ops(db, U.give_back(uses, store_id))


def reserve_units(
    db: sqlite3.Connection,
    issue_id: str,
    offer_id: str,
    member_ids: Sequence[str],
    units: int,
    until_us: int,
    cap: int,
    now_us: int,
) -> list[str]:
    """Reserve ``units`` for each member (an existing reservation of the issue stands, a
    retry); returns the members refused for lack of unreserved units."""
    have = {
        r[0]
        for r in db.execute(
            "SELECT member_id FROM unit_reservations WHERE reservation_id IN"
            f" ({','.join('?' * len(member_ids))})",
            [f"{issue_id}:{m}" for m in member_ids],
        )
    }
    new = [m for m in member_ids if m not in have]
    got, refused = U.admit(cap, _usage(db, offer_id, None), new, units, now_us)
    db.executemany(
        "INSERT INTO unit_reservations VALUES (?, ?, ?, ?, ?, ?)",
        [(f"{issue_id}:{m}", offer_id, m, units, units, until_us) for m in got],
    )
    return refused


def unreserve(db: sqlite3.Connection, issue_id: str, member_ids: Iterable[str]) -> None:
    """Drop the reservations of members the issue gave no coupon after all."""
    db.executemany(
        "DELETE FROM unit_reservations WHERE reservation_id = ?",
        [(f"{issue_id}:{m}",) for m in member_ids],
    )


def release(db: sqlite3.Connection, member_id: str, offer_id: str, now_us: int) -> int:
    """Give the member's live reservations on the offer back; returns the units released."""
    (n,) = db.execute(
        "SELECT COALESCE(SUM(units), 0) FROM unit_reservations WHERE member_id = ?"
        " AND offer_id = ? AND units > 0 AND until_us > ?",
        (member_id, offer_id, now_us),
    ).fetchone()
    db.execute(
        "UPDATE unit_reservations SET units = 0 WHERE member_id = ? AND offer_id = ?",
        (member_id, offer_id),
    )
    return int(n)


def held(db: sqlite3.Connection, member_id: str, now_us: int) -> dict[str, tuple[int, int]]:
    """Coupon id -> (units still held, until_us) of the member's live reservations."""
    return {
        rid: (n, until)
        for rid, n, until in db.execute(
            "SELECT reservation_id, units, until_us FROM unit_reservations WHERE member_id = ?"
            " AND units > 0 AND until_us > ?",
            (member_id, now_us),
        )
    }
