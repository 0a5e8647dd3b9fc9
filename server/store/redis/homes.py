"""The Redis store on a Redis Cluster: home slots, and a commit's global counters across slots.

Every member lives in a home slot (tag ``{s<k>}``, :meth:`Keys.home`, a stable hash of the
member id); a guest transaction in its transaction id's. A home slot holds its members'
documents, their transactions (``tx:{s<k>}:<tx>``), returns and adjustments, and its own ledger
shard (``ledger:{s<k>}``), so everything a commit, cancel, return or adjustment writes about
one member is one atomic script in one slot. Which home a transaction id belongs to is claimed
once, before its first attempt (``txid:{<tx>}`` -> home, ``SET NX``): a retry under the same
id, or a cancel or return of it, finds its documents there.

The global counters (an offer's uses and budget ``ctr:{o:<offer>}``, a code's uses left
``ctr:{c:<code>}``) are each their own slot. A commit that counts on them goes in three steps
(:mod:`server.store.redis.reservations`, docs/design.md §5): reserve the deltas under the
attempt's own id (``<tx>#<nonce>``; pending deltas count against the caps), run the
``commit_home`` script in the home slot (it checks the member's version and the transaction id
as on a single Redis, and settles the attempt's fate ``applied`` unless the sweep aborted it),
then confirm. An attempt that lost (the member moved, the id was committed meanwhile) is
abandoned at once: its fate ``aborted``, its reservations released; one that crashed in
between is settled by :meth:`Reservations.sweep` once its deadline passes. Each attempt has its
own reservations and fate, so an aborted attempt never blocks the transaction id: the next
attempt reserves afresh, and the transaction document keeps it applied exactly once.

Cancel and return (:mod:`server.store.redis.reversals`) apply in the home slot first, with the
deltas to give back stored in the transaction's (or the return's) document, then give them
back once per reversal id (:func:`give_back`); a retry of the reversal gives back again, which
is a no-op the second time.

Unit-capped offers go the same way: each offer's units hash is its own counter slot
(``ctr:{u:<offer>}``); a commit holds its units there (:data:`server.store.redis.unit_scripts.
HOLD`: the total and per-store caps checked with units held by others counted, the member's
own reservations used first) and a cancel gives them back once.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import redis

from engine.errors import AlreadyExists, Unavailable
from server.store.base import CommitPlan
from server.store.redis.docs import pack
from server.store.redis.io import RedisIO
from server.store.redis.reservations import RECORD_TTL_MS, Hold, Refused, Released, Reservations
from server.store.redis.units import op_args
from server.store.units import UnitOp

log = logging.getLogger(__name__)

RESERVE_S = 10.0  # an attempt's reservations are swept (aborted) this long after it reserved
SWEEP_S = 2.0  # how often a store on a cluster sweeps (RedisStore's background thread)
WAKE_TTL_MS = 1000  # as server.store.redis.checkout's

GiveBack = list[tuple[str, str, int]]  # (counter, field, delta) a reversal gives back


def claim(io: RedisIO, transaction_id: str, member_id: str | None) -> str:
    """The home of ``transaction_id``'s documents, claimed for ``member_id`` (or the guest)
    unless it was claimed before. AlreadyExists when it was claimed for another member and no
    transaction is stored there (one is being committed or was refused)."""
    k = io.keys
    home = k.home(member_id if member_id is not None else transaction_id)
    ttl = io.ttl_ms if io.ttl_ms > 0 else None
    key = k.tx_home(transaction_id)
    old = cast(bytes | None, io.client.set(key, home, nx=True, get=True, px=ttl))
    if old is None or old.decode() == home:
        return home
    if io.get(k.tx(transaction_id, old.decode())) is None:
        raise AlreadyExists(f"transaction {transaction_id!r} is in use by another request")
    return old.decode()


def home_of(io: RedisIO, transaction_id: str) -> str | None:
    """The home claimed for ``transaction_id``; None when none was."""
    raw = io.get(io.keys.tx_home(transaction_id))
    return None if raw is None else raw.decode()


def holds(plan: CommitPlan) -> list[Hold]:
    """What a commit reserves: per offer its uses and budget (capped), per code one use."""
    out = [
        Hold(f"o:{c.offer_id}", (("u", 1, c.uses_cap), ("b", c.discount_minor, c.budget_cap)))
        for c in {c.offer_id: c for c in plan.offers}.values()
    ]
    out += [Hold(f"c:{code}", (("left", -1, 0),)) for code in dict.fromkeys(plan.codes)]
    units: dict[str, list[str | int]] = {}
    for op in plan.units:  # each offer's units hash: the caps checked by unit_scripts.HOLD
        units.setdefault(op.offer_id, []).extend(op_args(op))
    out += [Hold(f"u:{offer}", (), tuple(args)) for offer, args in units.items()]
    return out


def apply(io: RedisIO, plan: CommitPlan, body: bytes, txdoc: dict[str, Any], turn: str) -> bool:
    """One attempt of a commit on a cluster (see the module docstring): False when it lost a
    race (a cap, the member's version or turn, the id committed meanwhile)."""
    res = reservations(io)
    k, tx, m = io.keys, plan.transaction_id, plan.member
    home = k.home(m.member_id if m is not None else tx)
    attempt = f"{tx}#{secrets.token_hex(6)}"
    wanted = holds(plan)
    counters = [h.counter for h in wanted]
    deadline_us = int((time.time() + RESERVE_S) * 1_000_000)
    res.register(counters)  # before reserving: the sweep finds whatever is held
    try:
        res.reserve(attempt, home, wanted, deadline_us)
    except (Refused, Released):
        return False
    except Unavailable:  # a reservation not acknowledged by a replica: never apply this one
        _settle_quietly(res, attempt, home, counters)
        raise
    ledger, seq = k.ledger_of(home)
    member_key = k.member(m.member_id) if m is not None else k.tx(tx, home)
    reply = io.run(
        "commit_home",
        [
            k.tx(tx, home),
            member_key,
            ledger,
            seq,
            k.lease(m.member_id) if m is not None else member_key,
            k.wake(m.member_id) if m is not None else member_key,
            k.fate(home, attempt),
        ],
        [
            m.version if m is not None else -1,
            body,
            pack(txdoc),
            io.ttl_ms,
            *io.ledger_args(plan.entry),
            turn,
            WAKE_TTL_MS,
            RECORD_TTL_MS,
        ],
    )
    if reply[0] != "OK":
        res.abandon(attempt, home, counters)
        return False
    try:
        res.confirm(attempt, counters)
    except redis.RedisError:  # applied: the sweep confirms what is left
        log.warning("could not confirm the reservations of %s (the sweep will)", attempt)
    return True


def _settle_quietly(res: Reservations, attempt: str, home: str, counters: list[str]) -> None:
    """Abandon ``attempt`` now if Redis lets us; otherwise the sweep does at its deadline."""
    try:
        res.abandon(attempt, home, counters)
    except (redis.RedisError, Unavailable):
        log.warning("could not abandon %s now (the sweep will)", attempt)


def give_back(io: RedisIO, reversal_id: str, ops: GiveBack) -> None:
    """Give a reversal's deltas back to the global counters, once per reversal id."""
    res = reservations(io)
    by_counter: dict[str, list[tuple[str, int]]] = {}
    for counter, field, delta in ops:
        if delta:
            by_counter.setdefault(counter, []).append((field, delta))
    for counter, fields in by_counter.items():
        res.give_back(reversal_id, counter, fields)


def reversal_ops(
    budget: dict[str, int],
    uses: Sequence[str],
    codes: Sequence[str],
    units: Sequence[UnitOp] = (),
) -> GiveBack:
    """What a reversal gives back: ``budget`` per offer, one use per entry of ``uses`` (an
    offer id per use) and of ``codes``, and the ``units`` of a cancel (negative ops:
    :func:`server.store.units.give_back`) to their offers' units hashes."""
    ops: GiveBack = [(f"o:{o}", "b", -amount) for o, amount in budget.items()]
    ops += [(f"o:{o}", "u", -1) for o in uses]
    ops += [(f"c:{c}", "left", 1) for c in codes]
    for op in units:
        ops.append((f"u:{op.offer_id}", "sold", op.units))
        if op.store_id is not None:
            ops.append((f"u:{op.offer_id}", f"s:{op.store_id}", op.units))
    return ops


def reservations(io: RedisIO) -> Reservations:
    """The reservations of ``io``'s cluster."""
    if io.reservations is None:
        raise TypeError("reservations of global counters are for a Redis Cluster")
    return io.reservations


def sweep(io: RedisIO, now_us: int | None = None) -> dict[str, str]:
    """Settle every reservation past its deadline (:meth:`Reservations.sweep`)."""
    when = now_us if now_us is not None else int(time.time() * 1_000_000)
    res = reservations(io)
    return res.sweep(res.registered(), when)


class Sweeper:
    """A background thread that runs :func:`sweep` every ``every_s`` until :meth:`close`."""

    def __init__(self, io: RedisIO, every_s: float) -> None:
        self.io, self.every_s = io, every_s
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-sweep", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closing.wait(self.every_s):
            try:
                sweep(self.io)
            except Exception:  # the next round tries again
                log.warning("the sweep of reservations failed", exc_info=True)

    def close(self) -> None:
        self._closing.set()
        self._thread.join()


__all__ = [
    "GiveBack",
    "Sweeper",
    "apply",
    "claim",
    "give_back",
    "holds",
    "home_of",
    "reversal_ops",
    "sweep",
]
