"""Tier requalification runs on SQLite (embedded store), by the rules of
:mod:`server.store.tiers`.

The run's record is claimed in one write transaction; then members are taken in id order,
:data:`~server.store.tiers.BATCH` at a time, each batch in one ``BEGIN IMMEDIATE`` transaction
that writes the members (tier, floor cleared, the period end, version bumped so a commit planned
before is refused and planned again) and adds to the run's counts. A member already carrying
the period end is not read again, so a run cut short and retried goes on where it stopped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from server.store.embedded.state import load_spend
from server.store.policy import Policy
from server.store.snapshot import at_us, spend_since, to_us
from server.store.tiers import (
    BATCH,
    DOWNGRADED,
    KEPT,
    UPGRADED,
    TierRun,
    check_run,
    refuse_older,
)
from server.store.tiers import (
    requalify as requalify_member,
)

Tx = Callable[[bool], AbstractContextManager[sqlite3.Connection]]


def requalify(tx: Tx, policy: Policy, run_id: str, period_end: datetime, months: int) -> TierRun:
    """Run (or go on with, or answer again) ``run_id`` at ``period_end``; ``months``: the
    store's spend window."""
    period_us = to_us(period_end)
    with tx(True) as db:
        row = db.execute(
            "SELECT period_us, done, upgraded, downgraded, kept FROM tier_runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        check_run(run_id, period_us, None if row is None else row[0])
        if row is not None and row[1]:
            return TierRun(run_id, period_end, row[2], row[3], row[4], repeated=True)
        if row is None:
            other = db.execute(
                "SELECT run_id, period_us FROM tier_runs WHERE period_us >= ?"
                " ORDER BY period_us DESC LIMIT 1",
                (period_us,),
            ).fetchone()
            if other is not None:
                refuse_older(run_id, other[0], at_us(other[1]), period_end)
            db.execute(
                "INSERT INTO tier_runs (run_id, period_us) VALUES (?, ?)", (run_id, period_us)
            )
    since = spend_since(period_end, months)
    after = ""
    while True:
        with tx(True) as db:
            members = db.execute(
                "SELECT member_id, tier FROM members WHERE member_id > ? AND requalified_us < ?"
                " ORDER BY member_id LIMIT ?",
                (after, period_us, BATCH),
            ).fetchall()
            if not members:
                db.execute("UPDATE tier_runs SET done = 1 WHERE run_id = ?", (run_id,))
                counts = db.execute(
                    "SELECT upgraded, downgraded, kept FROM tier_runs WHERE run_id = ?", (run_id,)
                ).fetchone()
                return TierRun(run_id, period_end, *counts)
            done = {UPGRADED: 0, DOWNGRADED: 0, KEPT: 0}
            for member_id, tier in members:
                spend = load_spend(db, member_id, since)
                new, kind = requalify_member(policy, tier, spend, period_end, months)
                done[kind] += 1
                db.execute(
                    "UPDATE members SET tier = ?, tier_floor = NULL, requalified_us = ?,"
                    " version = version + 1 WHERE member_id = ?",
                    (new, period_us, member_id),
                )
            db.execute(
                "UPDATE tier_runs SET upgraded = upgraded + ?, downgraded = downgraded + ?,"
                " kept = kept + ? WHERE run_id = ?",
                (done[UPGRADED], done[DOWNGRADED], done[KEPT], run_id),
            )
            after = members[-1][0]


__all__ = ["requalify"]
