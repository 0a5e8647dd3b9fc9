"""The commit loop every store runs the same way: read, price, plan, apply; retry on conflict.

Optimistic concurrency (docs/design.md §5): a store reads a snapshot without holding anything,
the caller prices on it, :func:`server.store.plan.plan_commit` decides every effect, and the
store applies the plan in one atomic step that refuses it when the member's version, an offer's
counters or a code's uses moved since the read. A refused plan was made on stale state: read
again, price again, plan again, up to the store's ``max_attempts``, then :class:`Conflict`
(``ABORTED``: the caller retries with the same transaction id). A transaction id committed
before answers its stored outcome, or :class:`AlreadyExists` for a different request.

The answer is part of what a commit stores: with ``respond`` the loop encodes the
``CommitResponse`` once the plan is made and the store keeps those bytes with the outcome in
the same atomic step, so every retry answers the first answer's bytes (and the priced result
itself is not kept).

Lanes racing on one member take turns (``Store.contended``): before each attempt the loop asks
the store for the member's turn. The first attempt goes at once (no round trip); a lane that
lost a race waits for its turn (Redis: a short per-member lease, first come first served)
instead of pricing again against everyone else, and waiting is not an attempt. A turn only
serialises the contenders: the apply's checks still refuse a plan made on state that moved.
Waiting ends at ``deadline`` (the caller's, e.g. the gRPC deadline) or at the store's own bound.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime

from engine.errors import AlreadyExists, Conflict
from engine.pricing.restrictions import refuse_restricted
from engine.pricing.types import Basket, PricingResult
from server.store.base import (
    CommitOutcome,
    PriceFn,
    PricingState,
    Provenance,
    RespondFn,
    Store,
)
from server.store.plan import plan_commit
from server.store.policy import Policy
from server.store.records import NO_PROVENANCE
from server.store.snapshot import check_id, check_time


@dataclass(frozen=True, slots=True)
class Committed:
    """What a commit call did: ``applied`` = this call applied ``outcome`` (else it was
    committed before and its stored outcome is answered again); ``state`` = the state the
    applied outcome was priced on (None for a stored one); ``priced`` = how many times it
    priced (every attempt but the applied one lost a race); ``result`` = the priced result
    applied (None for a stored one)."""

    outcome: CommitOutcome
    applied: bool
    state: PricingState | None
    priced: int
    result: PricingResult | None = None


def attempts(max_attempts: int) -> Iterator[int]:
    """Attempt numbers, with a short random pause between them (lanes racing on one member or
    on an offer's last uses spread out instead of colliding again)."""
    for attempt in range(max_attempts):
        if attempt:
            time.sleep(random.uniform(0, 0.0005 * min(attempt, 8)))
        yield attempt


def commit(
    store: Store,
    transaction_id: str,
    fingerprint: str,
    price: PriceFn,
    now: datetime,
    *,
    policy: Policy,
    basket: Basket,
    member_id: str | None = None,
    coupon_codes: Sequence[str] = (),
    provenance: Provenance = NO_PROVENANCE,
    deadline: float | None = None,
    allow_restricted: bool = False,
    basket_field: str = "basket",
    respond: RespondFn | None = None,
) -> Committed:
    """Commit ``basket`` exactly once under ``transaction_id``, priced by ``price`` on fresh
    state (it may be called once per attempt, and may raise to refuse the commit). ``now`` is
    the pricing time: the server's clock, or the lane's for an offline sync. ``deadline``
    (``time.monotonic()``): how long a lane may wait for its member's turn (None: the
    store's own bound). A result with member-only lines this member may not buy is refused
    (FAILED_PRECONDITION on ``<basket_field>.lines[i]``, nothing applied) unless
    ``allow_restricted`` (the lane's override; an offline sync). With ``respond`` the outcome
    keeps the answer's bytes (``CommitOutcome.response``); the priced result is
    ``Committed.result`` of the call that applied it."""
    now = check_time("now", now)
    check_id("transaction_id", transaction_id)
    codes = list(coupon_codes)
    priced = 0
    turns = nullcontext(_any_turn) if member_id is None else store.contended(member_id, deadline)
    with turns as turn:
        for attempt in attempts(store.max_attempts):
            if not turn(attempt):
                raise Conflict(
                    f"transaction {transaction_id!r}: member {member_id!r} is busy with other "
                    "lanes' commits; retry with the same transaction id"
                )
            snap = store.commit_snapshot(policy, transaction_id, member_id, codes, now)
            if snap.stored is not None:
                if snap.stored[0] != fingerprint:
                    raise AlreadyExists(
                        f"transaction {transaction_id!r} was committed with another request"
                    )
                return Committed(snap.stored[1], False, None, priced)
            result = price(snap.state)
            priced += 1
            refuse_restricted(result.restricted, allow_restricted, basket_field)
            plan = plan_commit(
                snap, result, policy, now, basket, codes, transaction_id, fingerprint, provenance
            )
            if respond is not None:
                body = respond(result, snap.state, plan.outcome)
                plan = replace(plan, outcome=replace(plan.outcome, response=body))
            if store.apply_commit(snap, plan):
                return Committed(plan.outcome, True, snap.state, priced, result)
    raise Conflict(
        f"transaction {transaction_id!r}: the member or an offer's limits kept changing; "
        "retry with the same transaction id"
    )


def _any_turn(attempt: int) -> bool:
    return True


__all__ = ["Committed", "attempts", "commit"]
