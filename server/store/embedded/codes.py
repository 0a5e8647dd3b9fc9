"""Coupon code batches on SQLite (:mod:`server.store.codes`): batch records in
``code_batches``, codes in ``codes`` with their ``batch_id``, inserted in chunks of
:data:`WRITE_CODES` with one ``executemany`` per write transaction, so a lane's commit waits
for at most one chunk (tens of milliseconds)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict

from engine.errors import AlreadyExists, InvalidInput, NotFound
from server.store.codes import BatchRecord, CodeBatch, CodeInfo, draw

WRITE_CODES = 10_000  # codes per write transaction

Tx = Callable[[bool], AbstractContextManager[sqlite3.Connection]]

_COLUMNS = (
    "code, COALESCE(batch_id, ''), offer_id, uses_per_code, uses_left, per_member,"
    " valid_from_us, valid_until_us, COALESCE(last_tx, ''), COALESCE(last_us, 0),"
    " COALESCE(member_id, '')"
)

# status -> SQL condition (parameter: now_us where named)
_STATUS_SQL = {
    "USED_UP": "uses_left <= 0",
    "EXPIRED": "uses_left > 0 AND valid_until_us <= :now",
    "USED": "uses_left > 0 AND valid_until_us > :now AND uses_left < uses_per_code",
    "UNUSED": "uses_left >= uses_per_code AND valid_until_us > :now",
}


def _info(row: sqlite3.Row | tuple[object, ...]) -> CodeInfo:
    c, b, o, per, left, pm, f, u, lt, lu, mb = tuple(row)
    return CodeInfo(
        str(c),
        str(b),
        str(o),
        int(per),
        int(left),
        bool(pm),
        int(f),
        int(u),
        str(lt),
        int(lu),
        str(mb),
    )


def _record(row: sqlite3.Row | tuple[object, ...]) -> BatchRecord:
    body, created, generated, collisions = tuple(row)
    batch = CodeBatch(**json.loads(str(body)))
    return BatchRecord(batch, int(created), int(generated), int(collisions))


def _batch_row(db: sqlite3.Connection, batch_id: str) -> tuple[str, BatchRecord] | None:
    row = db.execute(
        "SELECT fingerprint, body, created_us, generated, collisions FROM code_batches"
        " WHERE batch_id = ?",
        (batch_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), _record(tuple(row)[1:]))


def create_batch(tx: Tx, batch: CodeBatch, now_us: int) -> BatchRecord:
    """Record the batch (or find it), then draw and insert codes until it holds ``count``."""
    fingerprint = batch.fingerprint()
    with tx(True) as db:
        found = _batch_row(db, batch.batch_id)
        if found is None:
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM code_batches").fetchone()
            db.execute(
                "INSERT INTO code_batches (batch_id, seq, fingerprint, body, created_us)"
                " VALUES (?, ?, ?, ?, ?)",
                (batch.batch_id, seq, fingerprint, json.dumps(asdict(batch)), now_us),
            )
            record = BatchRecord(batch, now_us, 0, 0)
        elif found[0] != fingerprint:
            raise AlreadyExists(f"batch {batch.batch_id!r} was created with another request")
        else:
            record = found[1]
    generated = record.generated
    while generated < batch.count:
        codes = sorted(draw(batch, min(WRITE_CODES, batch.count - generated)))  # B-tree locality
        with tx(True) as db:
            (generated,) = db.execute(
                "SELECT generated FROM code_batches WHERE batch_id = ?", (batch.batch_id,)
            ).fetchone()
            drawn = len(codes)
            if batch.member_ids:  # code k of the batch goes to member k: insert only new codes
                codes = _new_codes(db, codes)
            codes = codes[: batch.count - generated]  # another process may have added some
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO codes (code, offer_id, uses_left, uses_per_code,"
                " per_member, valid_from_us, valid_until_us, batch_id, member_id) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c,
                        batch.offer_id,
                        batch.uses_per_code,
                        batch.uses_per_code,
                        int(batch.per_member),
                        batch.valid_from_us,
                        batch.valid_until_us,
                        batch.batch_id,
                        member or None,
                    )
                    for c, member in zip(codes, batch.member_of(generated, len(codes)), strict=True)
                ],
            )
            added = db.total_changes - before
            db.execute(
                "UPDATE code_batches SET generated = generated + ?, collisions = collisions + ?"
                " WHERE batch_id = ?",
                (added, min(drawn, batch.count - generated) - added, batch.batch_id),
            )
            generated += added
    with tx(False) as db:
        found = _batch_row(db, batch.batch_id)
    assert found is not None
    return found[1]


def _new_codes(db: sqlite3.Connection, codes: list[str]) -> list[str]:
    """``codes`` without the ones stored already and without repeats, in order."""
    fresh = list(dict.fromkeys(codes))
    taken: set[str] = set()
    for at in range(0, len(fresh), 900):  # under SQLite's bound-parameter limit
        part = fresh[at : at + 900]
        marks = ",".join("?" * len(part))
        taken.update(
            str(r[0]) for r in db.execute(f"SELECT code FROM codes WHERE code IN ({marks})", part)
        )
    return [c for c in fresh if c not in taken]


def get_batch(tx: Tx, batch_id: str) -> BatchRecord | None:
    with tx(False) as db:
        found = _batch_row(db, batch_id)
    return None if found is None else found[1]


def list_batches(tx: Tx) -> list[BatchRecord]:
    with tx(False) as db:
        rows = db.execute(
            "SELECT body, created_us, generated, collisions FROM code_batches ORDER BY seq"
        ).fetchall()
    return [_record(tuple(r)) for r in rows]


def get_code(tx: Tx, code: str) -> CodeInfo:
    with tx(False) as db:
        row = db.execute(f"SELECT {_COLUMNS} FROM codes WHERE code = ?", (code,)).fetchone()
    if row is None:
        raise NotFound(f"code {code!r} not found")
    return _info(row)


def list_codes(
    tx: Tx, batch_id: str, status: str, cursor: str, limit: int, now_us: int
) -> tuple[list[CodeInfo], str]:
    """A page of codes in generation order (rowid); the cursor is the last rowid returned."""
    try:
        after = int(cursor) if cursor else 0
    except ValueError:
        raise InvalidInput.at("page_token", "is not a token of this listing") from None
    where = ["rowid > :after", "batch_id = :batch" if batch_id else "batch_id IS NOT NULL"]
    if status:
        where.append(_STATUS_SQL[status])
    params = {"after": after, "batch": batch_id, "now": now_us, "limit": limit + 1}
    with tx(False) as db:
        if batch_id and _batch_row(db, batch_id) is None:
            raise NotFound(f"batch {batch_id!r} not found")
        rows = db.execute(
            f"SELECT rowid, {_COLUMNS} FROM codes WHERE {' AND '.join(where)}"
            " ORDER BY rowid LIMIT :limit",
            params,
        ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return [_info(tuple(r)[1:]) for r in rows], str(rows[-1][0]) if more else ""


__all__ = ["create_batch", "get_batch", "get_code", "list_batches", "list_codes"]
