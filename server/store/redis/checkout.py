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

Turns (:class:`Turns`, ``Store.contended``): lanes racing on one member take turns rather than
re-read and re-price against each other until some give up. A lane that lost a race takes the
member's turn before its next attempt: a lease ``lease:{member}`` holding a random token,
``SET NX`` with a short TTL by the ``turn_take`` script; when the turn is taken it waits with
``BLPOP`` on ``wake:{member}`` (Redis serves blocked clients first come first served; no
polling). The turn is given up by the ``commit`` script that applies the lane's commit (so the
next lane wakes at once), or by ``turn_give`` when the lane leaves otherwise; either leaves one
wake-up on the list when no lane holds the turn. While a turn is held the ``commit`` script
refuses every other lane's commit for the member, so the lane whose turn it is goes through at
its next attempt. Nothing relies on a turn for correctness: the script checks the member's
version as always (a turn that expired while its lane was slow protects nothing, and another
lane may go ahead; the slow lane reads again). A lost wake-up (a lane gone between its
``BLPOP`` and its take) costs the others one ``BLPOP`` timeout, a turn whose lane died its TTL.
For a while after a race on a member (``hot_s``), this process's lanes take the member's turn
before their first attempt too, instead of pricing once in vain.

Cancel and return, the reversal of a commit, are in :mod:`server.store.redis.reversals`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis

from server.store.base import CommitPlan, CommitSnapshot, MemberState, replay
from server.store.policy import Policy
from server.store.redis import homes
from server.store.redis.docs import MemberDoc, pack, split
from server.store.redis.io import RedisIO, ScriptArg, unavailable
from server.store.redis.state import pricing_state
from server.store.redis.units import script_ops
from server.store.snapshot import to_us
from server.store.stored import decode_commit, encode_commit

log = logging.getLogger(__name__)

TURN_TTL_MS = 500  # a turn not given back (its lane died) blocks the member this long at most
TURN_WAIT_S = 5.0  # how long a lane waits for its turn when the caller gave no deadline
TURN_POLL_S = 0.2  # a BLPOP's timeout: what a lost wake-up costs the lanes waiting
WAKE_TTL_MS = 1000  # an unused wake-up is gone after this
HOT_S = 1.0  # after a race on a member, how long this process's lanes queue for it at once
HOT_MAX = 10_000  # members remembered as contended before the expired ones are dropped


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
        if io.wait_replicas > 0:  # a retry: OK only once the replicas hold what it answers
            home = homes.home_of(io, tx) if io.keys.cluster else None
            io.acknowledged(home or io.keys.home(member_id or tx))
        _, txdoc = split(snap.tx)
        return replay(txdoc["f"], decode_commit(txdoc["o"]), io.spend_months)
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
            doc.tier_floor,
        )
    return CommitSnapshot(state, member, snap.usage, snap.codes, io.spend_months)


def documents(io: RedisIO, snap: CommitSnapshot, plan: CommitPlan) -> tuple[bytes, dict[str, Any]]:
    """What the commit writes in the member's slot: the member document's new body (b"" for
    a guest) and the transaction document."""
    tx, done, now = plan.transaction_id, plan.outcome, plan.outcome.at
    txdoc: dict[str, Any] = {"f": plan.fingerprint, "m": done.member_id, "s": "c"}
    m = plan.member
    doc = snap.member.source if snap.member is not None else None
    body = b""
    if m is not None:
        if not isinstance(doc, MemberDoc):
            raise TypeError("a Redis commit snapshot holds the member's document")
        doc.lots, doc.debt, doc.legacy, doc.spend = m.lots, m.debt, False, m.spend
        doc.tier, doc.tier_floor = m.tier, m.tier_floor
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
    txdoc["o"] = encode_commit(done)
    txdoc["rq"] = [0] * len(done.lines)
    return body, txdoc


def apply(io: RedisIO, snap: CommitSnapshot, plan: CommitPlan, turn: str = "") -> bool:
    """Run the ``commit`` script for ``plan``; False when it found the state moved or another
    lane holding the member's turn. ``turn``: this lane's token when the turn is its own (an
    applied commit gives it up). On a cluster: :func:`server.store.redis.homes.apply`."""
    if io.keys.cluster:
        if not homes.apply(io, plan, *documents(io, snap, plan), turn):
            return False
        note_codes(io, plan)
        return True
    k, tx, m = io.keys, plan.transaction_id, plan.member
    body, txdoc = documents(io, snap, plan)
    ops = {c.offer_id: [1, c.discount_minor, c.uses_cap, c.budget_cap] for c in plan.offers}
    unit_keys, unit_args = script_ops(io, plan.units)
    reply = io.run(
        "commit",
        [
            k.tx(tx),
            k.member(m.member_id) if m is not None else k.tx(tx),
            k.usage,
            k.ledger,
            k.ledger_seq,
            k.lease(m.member_id) if m is not None else k.tx(tx),
            k.wake(m.member_id) if m is not None else k.tx(tx),
            *(k.code(c) for c in plan.codes),
            *unit_keys,
        ],
        [
            m.version if m is not None else -1,
            body,
            pack(txdoc),
            io.ttl_ms,
            *offer_ops(ops),
            *io.ledger_args(plan.entry),
            *unit_args,
            turn,
            WAKE_TTL_MS,
        ],
    )
    applied = reply[0] == "OK"
    if applied:
        note_codes(io, plan)
    return applied


def note_codes(io: RedisIO, plan: CommitPlan) -> None:
    """The codes' last redemption, for ListCouponCodes: informative, so written after the
    commit (a failure here loses the note, never the commit)."""
    if not plan.codes:
        return
    tx, at_us = plan.transaction_id, to_us(plan.outcome.at)
    try:
        pipe = io.client.pipeline(transaction=False)
        for c in plan.codes:
            pipe.hset(io.keys.code(c), mapping={"last_tx": tx, "last_us": at_us})
        pipe.execute()
    except redis.RedisError:
        log.warning("could not note the last redemption of codes of %s", tx, exc_info=True)


class Turns:
    """One store's turns (see the module docstring): :meth:`contended` for the commit loop,
    :meth:`token` for the apply. ``ttl_ms``, ``wait_s``, ``poll_s``, ``hot_s``: see
    :data:`TURN_TTL_MS`, :data:`TURN_WAIT_S`, :data:`TURN_POLL_S`, :data:`HOT_S` (``poll_s``
    must stay under the client's socket timeout; ``hot_s`` 0: always try once first)."""

    def __init__(
        self,
        io: RedisIO,
        *,
        ttl_ms: int = TURN_TTL_MS,
        wait_s: float = TURN_WAIT_S,
        poll_s: float = TURN_POLL_S,
        hot_s: float = HOT_S,
    ) -> None:
        self.io = io
        self.ttl_ms, self.wait_s, self.poll_s, self.hot_s = ttl_ms, wait_s, poll_s, hot_s
        self._held = threading.local()  # .tokens: member id -> this thread's turn token
        self._hot: dict[str, float] = {}  # member id -> monotonic time it stops being hot

    def token(self, member_id: str) -> str:
        """The calling thread's turn token for ``member_id``; "" when it holds none."""
        tokens: dict[str, str] = getattr(self._held, "tokens", {})
        return tokens.get(member_id, "")

    def given(self, member_id: str) -> None:
        """The calling thread's commit applied in its turn, which the script gave up."""
        tokens: dict[str, str] = getattr(self._held, "tokens", {})
        if tokens.pop(member_id, None) is not None:
            self.heat(member_id)

    @contextmanager
    def contended(self, member_id: str, deadline: float | None) -> Iterator[Callable[[int], bool]]:
        """``turn(attempt)`` for the loop of :func:`server.store.checkout.commit`: True at
        once for a first attempt on a member that is not hot; otherwise the member's turn is
        taken (kept, when it is already this lane's), waiting until ``deadline`` (or
        ``wait_s`` from now) at the most: False when it did not come. Leaving gives it up."""
        until = deadline if deadline is not None else time.monotonic() + self.wait_s
        token = secrets.token_hex(8)
        if not hasattr(self._held, "tokens"):
            self._held.tokens = {}
        tokens: dict[str, str] = self._held.tokens

        @unavailable
        def turn(attempt: int) -> bool:
            if attempt == 0 and self._hot.get(member_id, 0.0) <= time.monotonic():
                return True
            self.heat(member_id)
            if not self._take(member_id, token, until):
                return False
            tokens[member_id] = token
            return True

        try:
            yield turn
        finally:
            if tokens.pop(member_id, None) is not None:
                self._give(member_id, token)

    def heat(self, member_id: str) -> None:
        """Mark ``member_id`` contended in this process for ``hot_s``: its lanes take the
        member's turn before their first attempt."""
        now = time.monotonic()
        if len(self._hot) >= HOT_MAX:
            for m, until in list(self._hot.items()):
                if until <= now:
                    self._hot.pop(m, None)
        self._hot[member_id] = now + self.hot_s

    def _take(self, member_id: str, token: str, until: float) -> bool:
        k = self.io.keys
        lease, wake = k.lease(member_id), k.wake(member_id)
        while True:
            if self.io.run("turn_take", [lease], [token, self.ttl_ms])[0] == 1:
                return True
            left = until - time.monotonic()
            if left <= 0:
                return False
            # at least 1 ms: a BLPOP timeout of 0 would block for ever
            self.io.client.blpop([wake], timeout=max(0.001, min(left, self.poll_s)))

    def _give(self, member_id: str, token: str) -> None:
        """Give the turn up and wake the next lane; on a Redis error the turn expires."""
        self.heat(member_id)
        k = self.io.keys
        try:
            self.io.run("turn_give", [k.lease(member_id), k.wake(member_id)], [token, WAKE_TTL_MS])
        except redis.RedisError as exc:
            log.warning("could not give up the turn of a member (it expires): %s", exc)


__all__ = ["Turns", "apply", "documents", "note_codes", "offer_ops", "read_snapshot"]
