"""Issuing coupons with reservations on SQLite (rules: :mod:`server.store.units`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from server.store.embedded import members as embedded_members
from server.store.embedded.units import reserve_units, unreserve
from server.store.records import IssueOutcome


def issue(
    db: sqlite3.Connection,
    issue_id: str,
    offer_id: str,
    member_ids: Sequence[str],
    uses: int,
    window: tuple[int, int],
    personalised: bool,
    reserve: tuple[int, int | None, int],
    now_us: int,
) -> IssueOutcome:
    """``Store.issue_coupons`` in the caller's transaction: with ``reserve = (units,
    until_us, cap)`` (units 0 = none) the reservations first, then the coupons of the members
    who got one; a member a personalised issue skips keeps no reservation."""
    members = list(dict.fromkeys(member_ids))
    units, until_us, cap = reserve
    refused: list[str] = []
    if units and until_us is not None:
        refused = reserve_units(db, issue_id, offer_id, members, units, until_us, cap, now_us)
    ids, skipped = embedded_members.issue_coupons(
        db,
        issue_id,
        offer_id,
        [m for m in members if m not in refused],
        uses,
        *window,
        personalised,
    )
    if units and skipped:
        unreserve(db, issue_id, skipped)
    return IssueOutcome(issue_id, offer_id, tuple(ids), tuple(skipped), tuple(refused))
