"""Shopping-list ids on SQLite (:mod:`server.store.lists`): the ``shopping_lists`` table
(``list_id`` PK, ``member_id`` UNIQUE, ``created_us``; schema v7)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from server.store import lists
from server.store.embedded.state import member_row

Tx = Callable[[bool], AbstractContextManager[sqlite3.Connection]]


def _stored(db: sqlite3.Connection, member_id: str) -> str | None:
    row = db.execute(
        "SELECT list_id FROM shopping_lists WHERE member_id = ?", (member_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def list_id(tx: Tx, member_id: str, now_us: int) -> str:
    """The member's list id, drawn and stored in one write transaction the first time (a read
    only after that); NotFound for an unknown member. A drawn id some list has already (never
    seen: 130 random bits) is drawn again."""
    with tx(False) as db:
        found = _stored(db, member_id)
    if found is not None:
        return found
    with tx(True) as db:
        member_row(db, member_id)
        found = _stored(db, member_id)  # another writer may have been first
        while found is None:
            token = lists.draw()
            cur = db.execute(
                "INSERT OR IGNORE INTO shopping_lists (list_id, member_id, created_us)"
                " VALUES (?, ?, ?)",
                (token, member_id, now_us),
            )
            found = token if cur.rowcount == 1 else None
        return found


def list_member(tx: Tx, list_id: str) -> str | None:
    """The member whose list ``list_id`` is; None when it is no list."""
    with tx(False) as db:
        row = db.execute(
            "SELECT member_id FROM shopping_lists WHERE list_id = ?", (list_id,)
        ).fetchone()
    return None if row is None else str(row[0])
