"""Commit on Redis: read a snapshot (one round trip), apply a plan with one Lua script.

The loop and the rules are shared by every store (:mod:`server.store.checkout`,
:mod:`server.store.plan`); this module only reads what a plan is made from and writes what it
decides. :func:`read_snapshot` is one ``MULTI``/``EXEC`` (:func:`server.store.redis.state.
pricing_state`): the transaction document, the member document, the counters of the offers
with limits and the presented codes. :func:`apply` rewrites the member document with the plan's
effects and runs the ``commit`` script, which applies everything only if nothing it depends on
moved since the read (the member's version, the offers' caps and budgets, the codes' uses). A
``CONFLICT`` reply means another lane won the race; an ``EXISTS`` reply means the same id was
applied meanwhile: either way the loop reads again.

Cancel and return, the reversal of a commit, are in :mod:`server.store.redis.reversals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from server.store import codec
from server.store.base import CommitOutcome, CommitPlan, CommitSnapshot, MemberState, replay
from server.store.policy import Policy
from server.store.redis.docs import MemberDoc, load_outcome, pack_outcome, split
from server.store.redis.io import RedisIO, ScriptArg
from server.store.redis.state import pricing_state
from server.store.snapshot import to_us


def offer_ops(ops: dict[str, list[int]]) -> list[ScriptArg]:
    """The offer counter changes as the scripts take them in ARGV: how many offers, then per
    offer ``id, uses delta, budget delta, uses cap, budget cap`` (a cap 0 = none)."""
    out: list[ScriptArg] = [len(ops)]
    for offer_id, (du, db, cu, cb) in ops.items():
        out += [offer_id, du, db, cu, cb]
    return out


def read_snapshot(
    io: RedisIO,
    policy: Policy,
    tx: str,
    member_id: str | None,
    codes: Sequence[str],
    now: datetime,
) -> CommitSnapshot:
    """What a commit prices and plans on, always from Redis (never the quote cache)."""
    state, snap = pricing_state(io, policy, member_id, None, codes, now, tx)
    if snap.tx is not None:
        _, txdoc = split(snap.tx)
        return replay(txdoc["f"], load_outcome(CommitOutcome, txdoc["o"]), io.spend_months)
    doc, member = snap.member, None
    if doc is not None and state.record is not None:
        member = MemberState(
            doc.member_id,
            doc.version,
            doc.tier,
            tuple(doc.segments),
            doc.lots,
            doc.debt,
            doc.legacy,
            doc.spend,
            state.record.wallet,
            doc.mine(),
            doc,
        )
    return CommitSnapshot(state, member, snap.usage, snap.codes, io.spend_months)


def apply(io: RedisIO, snap: CommitSnapshot, plan: CommitPlan) -> bool:
    """Run the ``commit`` script for ``plan``; False when it found the state moved."""
    k, tx, done, now = io.keys, plan.transaction_id, plan.outcome, plan.outcome.at
    txdoc: dict[str, Any] = {"f": plan.fingerprint, "m": done.member_id, "s": "c"}
    m = plan.member
    doc = snap.member.source if snap.member is not None else None
    body = b""
    if m is not None:
        if not isinstance(doc, MemberDoc):
            raise TypeError("a Redis commit snapshot holds the member's document")
        doc.lots, doc.debt, doc.legacy, doc.spend = m.lots, m.debt, False, m.spend
        doc.tier = m.tier
        doc.lifetime += m.spend_minor
        for w in doc.wallet:
            if w[0] in m.coupons:
                w[2] -= 1
        for o, period in m.periods.items():
            doc.count_use(o, period, 1)
        for code in m.redeemed:
            doc.codes[code] = tx
        body = doc.dump(now, io.spend_months, frozenset(m.current_periods))
        txdoc["el"] = m.earned.lot_id if m.earned is not None else None  # numbered by dump
        txdoc["b"] = [
            [b.points, None if b.expires_at is None else to_us(b.expires_at), 0] for b in m.burned
        ]
        txdoc["pk"] = m.periods
    else:
        txdoc.update(el=None, b=[], pk={})
    txdoc["o"] = pack_outcome(done)
    txdoc["rq"] = [0] * len(done.lines)
    ops = {c.offer_id: [1, c.discount_minor, c.uses_cap, c.budget_cap] for c in plan.offers}
    reply = io.run(
        "commit",
        [
            k.tx(tx),
            k.member(m.member_id) if m is not None else k.tx(tx),
            k.usage,
            k.ledger,
            k.ledger_seq,
            *(k.code(c) for c in plan.codes),
        ],
        [
            m.version if m is not None else -1,
            body,
            codec.encode(txdoc),
            io.ttl_ms,
            *offer_ops(ops),
            *io.ledger_args(plan.entry),
        ],
    )
    return reply[0] == "OK"


__all__ = ["apply", "offer_ops", "read_snapshot"]
