"""Cancel and return on Redis: the reversal of a commit, applied with one Lua script.

Each function takes the shared :class:`RedisIO` and loops over :meth:`RedisIO.attempts`: read
the transaction document and the member's, compute the reversal in Python with the arithmetic
every store shares (:mod:`server.store.effects`), then run the ``cancel`` or ``return`` script,
which applies everything only if neither document moved since the read. A ``CONFLICT`` reply
means another lane won the race: read again and redo. A return already made under its id
returns its stored outcome; a cancel is idempotent on the transaction's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from engine.errors import Conflict, FailedPrecondition, NotFound
from server.store import effects, snapshot
from server.store import points as P
from server.store.base import CancelOutcome, CommitOutcome, ReturnOutcome
from server.store.policy import Policy
from server.store.redis import homes
from server.store.redis.checkout import offer_ops
from server.store.redis.docs import MemberDoc, pack, split, stored
from server.store.redis.io import RedisIO
from server.store.redis.units import give_back as give_back_units
from server.store.snapshot import from_us
from server.store.stored import (
    decode_cancel,
    decode_commit,
    decode_return,
    encode_reversal,
    ledger_entry,
)
from server.store.tiers import after_reversal
from server.store.units import give_back as give_back_ops


def _home(io: RedisIO, transaction_id: str) -> str:
    """The transaction's home slot on a cluster (:mod:`server.store.redis.homes`); "" on a
    single Redis."""
    if not io.keys.cluster:
        return ""
    home = homes.home_of(io, transaction_id)
    if home is None:
        raise NotFound(f"transaction {transaction_id!r} not found")
    return home


def _load_tx(
    io: RedisIO, transaction_id: str, home: str
) -> tuple[int, dict[str, Any], CommitOutcome]:
    version, txdoc = split(io.get(io.keys.tx(transaction_id, home)))
    if txdoc is None:
        raise NotFound(f"transaction {transaction_id!r} not found")
    return version, txdoc, decode_commit(txdoc["o"])


def _usage(io: RedisIO, tx_key: str) -> str:
    """KEYS[3] of the cancel and return scripts: the usage hash on a single Redis; on a
    cluster the transaction's key in its place (the script changes no global counter there,
    :func:`server.store.redis.homes.give_back` does after it)."""
    return tx_key if io.keys.cluster else io.keys.usage


def _reverse(
    io: RedisIO,
    txdoc: dict[str, Any],
    outcome: CommitOutcome,
    targets: dict[int, int],
    now: datetime,
    policy: Policy | None,
) -> tuple[effects.Reversal, MemberDoc | None, int, int]:
    """Apply the reversal to the transaction document and the member's (re-read) document;
    with the rules' ``policy``, re-evaluate the member's tier.

    Returns ``(reversal, member doc, points forfeited, debt added)``.
    """
    rev = effects.reverse_lines(outcome.lines, txdoc["rq"], targets)
    for idx, r in targets.items():
        txdoc["rq"][idx] = r
    if outcome.member_id is None:
        return rev, None, 0, 0
    doc = io.member_doc(outcome.member_id)
    burns = [effects.Burn(i, b[0], from_us(b[1]), b[2]) for i, b in enumerate(txdoc["b"])]
    doc.debt, forfeited, debt_added = effects.settle_reversal(
        doc.lots, doc.debt, burns, rev, txdoc["el"], outcome, now
    )
    txdoc["b"] = [[b.points, b0[1], b.restored] for b, b0 in zip(burns, txdoc["b"], strict=True)]
    doc.spend = snapshot.take_spend(doc.spend, outcome.at, rev.net_back)
    doc.lifetime -= rev.net_back
    doc.tier, doc.tier_floor = after_reversal(
        policy, doc.tier, doc.tier_floor, doc.spend, now, io.spend_months
    )
    return rev, doc, forfeited, debt_added


def _after(doc: MemberDoc | None, now: datetime) -> tuple[int | None, int | None, str | None]:
    """An outcome's ``points_available_after``, ``points_pending_after`` and ``tier_after``:
    the member's balances once the reversal is applied (its lots are settled at ``now``)."""
    if doc is None:
        return None, None, None
    available, pending = P.balances(doc.lots, doc.debt, now)
    return available, pending, doc.tier


def cancel(
    io: RedisIO, transaction_id: str, now: datetime, policy: Policy | None = None
) -> CancelOutcome:
    k, months = io.keys, io.spend_months
    home = _home(io, transaction_id)
    for _ in io.attempts():
        tv, txdoc, outcome = _load_tx(io, transaction_id, home)
        if txdoc["s"] == "x":
            if home:  # what the first cancel gave back, again (once per reversal id)
                homes.give_back(io, f"x:{transaction_id}", txdoc.get("gx", []))
            return replace(decode_cancel(txdoc["co"]), repeated=True)
        targets = {
            i: x.quantity for i, x in enumerate(outcome.lines) if txdoc["rq"][i] < x.quantity
        }
        rev, doc, forfeited, debt_added = _reverse(io, txdoc, outcome, targets, now, policy)
        ops = {o: [0, -amount, 0, 0] for o, amount in rev.budget_back.items()}
        code_keys = []
        for use in outcome.offers:
            ops.setdefault(use.offer_id, [0, 0, 0, 0])[0] -= 1
            if use.coupon_id and doc is not None:
                for w in doc.wallet:
                    if w[0] == use.coupon_id:
                        w[2] += 1
            if use.code:
                code_keys.append(k.code(use.code))
                if doc is not None and doc.codes.get(use.code) == transaction_id:
                    del doc.codes[use.code]
            period = txdoc["pk"].get(use.offer_id)
            if period is not None and doc is not None:
                doc.count_use(use.offer_id, period, -1)
        result = CancelOutcome(
            transaction_id,
            outcome.member_id,
            now,
            rev.lines,
            rev.refund,
            rev.clawed,
            rev.restored,
            forfeited,
            debt_added,
            tuple(u.offer_id for u in outcome.offers),
            *_after(doc, now),
        )
        txdoc["s"], txdoc["co"] = "x", encode_reversal(result)
        if home:
            codes = [u.code for u in outcome.offers if u.code]
            uses = [u.offer_id for u in outcome.offers]
            units = give_back_ops(outcome.offers, outcome.store_id)
            txdoc["gx"] = homes.reversal_ops(rev.budget_back, uses, codes, units)
        entry = ledger_entry(
            "cancel",
            transaction_id,
            transaction_id,
            outcome.member_id,
            now,
            rev.lines,
            rev.refund,
            rev.clawed,
            rev.restored,
            **effects.context(outcome),
        )
        # on a cluster the units go back with the other counters (txdoc["gx"])
        unit_keys, unit_args = (
            ([], [0]) if home else give_back_units(io, outcome.offers, outcome.store_id)
        )
        tx_key = k.tx(transaction_id, home)
        reply = io.run(
            "cancel",
            [
                tx_key,
                k.member(doc.member_id) if doc else tx_key,
                _usage(io, tx_key),
                *k.ledger_of(home),
                *([] if home else [*code_keys, *unit_keys]),
            ],
            [
                tv,
                doc.version if doc else -1,
                pack(txdoc),
                doc.dump(now, months) if doc else b"",
                *offer_ops({} if home else ops),
                *io.ledger_args(entry),
                *unit_args,
            ],
        )
        if reply[0] == "OK":
            if home:
                homes.give_back(io, f"x:{transaction_id}", txdoc["gx"])
            return result
    raise Conflict(f"transaction {transaction_id!r} kept changing; retry the cancel")


def return_lines(
    io: RedisIO,
    return_id: str,
    transaction_id: str,
    lines: Sequence[tuple[str, int]],
    now: datetime,
    policy: Policy | None = None,
) -> ReturnOutcome:
    k, months = io.keys, io.spend_months
    wanted, fingerprint = effects.return_request(transaction_id, lines)
    home = _home(io, transaction_id)
    for _ in io.attempts():
        raw = io.get(k.ret(return_id, home))
        if raw is not None:
            first = stored(
                decode_return,
                raw,
                fingerprint,
                f"return {return_id!r} was made with another request",
            )
            if home:  # what the first return gave back, again (once per reversal id)
                homes.give_back(io, f"r:{return_id}", split(raw)[1].get("g", []))
            return replace(first, repeated=True)
        tv, txdoc, outcome = _load_tx(io, transaction_id, home)
        if txdoc["s"] == "x":
            raise FailedPrecondition(f"transaction {transaction_id!r} is cancelled")
        by_id = {x.line_id: (i, x.quantity, txdoc["rq"][i]) for i, x in enumerate(outcome.lines)}
        targets = effects.return_targets(transaction_id, lines, wanted, by_id)
        rev, doc, forfeited, debt_added = _reverse(io, txdoc, outcome, targets, now, policy)
        result = ReturnOutcome(
            return_id,
            transaction_id,
            outcome.member_id,
            now,
            rev.lines,
            rev.refund,
            rev.clawed,
            rev.restored,
            forfeited,
            debt_added,
            *_after(doc, now),
        )
        entry = ledger_entry(
            "return",
            return_id,
            transaction_id,
            outcome.member_id,
            now,
            rev.lines,
            rev.refund,
            rev.clawed,
            rev.restored,
            **effects.context(outcome),
        )
        ops = {o: [0, -amount, 0, 0] for o, amount in rev.budget_back.items()}
        retdoc: dict[str, Any] = {"f": fingerprint, "o": encode_reversal(result)}
        if home:
            retdoc["g"] = homes.reversal_ops(rev.budget_back, [], [])
        tx_key = k.tx(transaction_id, home)
        reply = io.run(
            "return",
            [
                tx_key,
                k.member(doc.member_id) if doc else tx_key,
                _usage(io, tx_key),
                *k.ledger_of(home),
                k.ret(return_id, home),
            ],
            [
                tv,
                doc.version if doc else -1,
                pack(txdoc),
                doc.dump(now, months) if doc else b"",
                pack(retdoc),
                io.ttl_ms,
                *offer_ops({} if home else ops),
                *io.ledger_args(entry),
            ],
        )
        if reply[0] == "OK":
            if home:
                homes.give_back(io, f"r:{return_id}", retdoc["g"])
            return result
    raise Conflict(f"transaction {transaction_id!r} kept changing; retry the return")


__all__ = ["cancel", "return_lines"]
