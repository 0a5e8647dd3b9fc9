"""Commit on Redis: read a snapshot, compute, apply with one Lua script.

Cancel and return, the reversal of a commit, are in :mod:`server.store.redis.reversals`.

:func:`commit` takes the shared :class:`RedisIO` and loops over :meth:`RedisIO.attempts`: read
(one round trip, :func:`server.store.redis.state.pricing_state`), price with ``price_fn`` and
compute the new documents in Python with the same arithmetic as every store
(:mod:`server.store.effects`, :mod:`server.store.points`), then run the ``commit`` script, which
applies everything only if nothing it depends on moved since the read. A ``CONFLICT`` reply
means another lane won the race: read again and re-price on the fresh state. An ``EXISTS``
reply means the same id was applied meanwhile: the next read returns the stored outcome.

A result that overspends the snapshot it was priced on (a wrong or stale ``price_fn``) is a
:class:`Conflict` at once, as in the embedded store: re-reading would not change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engine.errors import Conflict
from engine.pricing.types import Basket
from server.store import codec, effects, snapshot
from server.store import points as P
from server.store.base import CommitOutcome, LedgerEntry, OfferUse, PriceFn
from server.store.policy import Policy
from server.store.redis.docs import MemberDoc, dumps, pack, stored
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


def commit(
    io: RedisIO,
    policy: Policy,
    tx: str,
    fingerprint: str,
    price_fn: PriceFn,
    now: datetime,
    basket: Basket,
    member_id: str | None,
    codes: Sequence[str],
) -> CommitOutcome:
    k, months = io.keys, io.spend_months
    for _ in io.attempts():
        state, snap = pricing_state(io, policy, member_id, None, codes, now, tx)
        if snap.tx is not None:
            return stored(
                CommitOutcome,
                snap.tx,
                fingerprint,
                f"transaction {tx!r} was committed with another request",
            )
        result = price_fn(state)
        effects.check_result(result, basket)
        doc = snap.member
        txdoc: dict[str, Any] = {
            "f": fingerprint,
            "m": member_id,
            "s": "c",
            "el": None,
            "b": [],
            "pk": {},
        }
        available_at = expires_at = None
        tier_before = tier_after = doc.tier if doc else ""
        if doc is None:
            if result.points_redeemed or result.points_earned:
                raise Conflict("a guest transaction cannot earn or redeem points")
        else:
            if doc.legacy:
                P.rebucket(doc.lots, policy.bucket_end)
                doc.legacy = False
            debt, _ = P.settle(doc.lots, doc.debt, now)
            if result.points_redeemed:
                taken = effects.burn_points(doc.lots, result.points_redeemed, now)
                txdoc["b"] = [
                    [n, None if lot.expires_at is None else to_us(lot.expires_at), 0]
                    for lot, n in taken
                ]
            if result.points_earned:
                available_at, expires_at = policy.earned_lot_times(now)
                earned = P.Lot(None, result.points_earned, now, available_at, expires_at)
                lot = P.add_lot(doc.lots, earned, now)
                if lot.lot_id is None:
                    lot.lot_id = doc.next_lot
                    doc.next_lot += 1
                txdoc["el"] = lot.lot_id
            doc.debt, _ = P.settle(doc.lots, debt, now)
            doc.spend = snapshot.add_spend(doc.spend, now, result.net_minor, policy)
            rolling = snapshot.rolling_sum(doc.spend, now, months)
            tier_after = doc.tier = policy.upgraded_tier(tier_before, rolling)
            doc.lifetime += result.net_minor

        uses, code_keys, ops = [], [], {}
        now_us = to_us(now)
        for applied in result.offers:
            o = applied.offer_id
            p = policy.offers.get(o)
            coupon_id = code = ""
            if p is not None and p.coupon:
                wallet = sorted(
                    (
                        w
                        for w in (doc.wallet if doc else ())
                        if w[1] == o and w[2] > 0 and w[3] <= now_us < w[4]
                    ),
                    key=lambda w: (w[4], w[0]),
                )
                if wallet:
                    coupon_id = wallet[0][0]
                    wallet[0][2] -= 1
                else:
                    code = next(
                        (c for c in codes if state.code_offers.get(c) == o and c not in code_keys),
                        "",
                    )
                    row = snap.codes.get(code)
                    if not code or row is None or row[1] <= 0:
                        raise Conflict(f"offer {o!r} applied without a coupon left to use")
                    code_keys.append(code)
                    if doc is not None and row[2]:
                        doc.codes[code] = tx
            if p is not None and p.per_member and doc is not None:
                period = policy.period_key(p.period, now)
                if doc.usage_of(o, period) >= p.per_member:
                    raise Conflict(f"offer {o!r}: the member's uses are used up")
                doc.count_use(o, period, 1)
                txdoc["pk"][o] = period
            used, spent = snap.usage.get(o, (0, 0))
            if p is not None and p.total_uses and used >= p.total_uses:
                raise Conflict(f"offer {o!r}: total uses are used up")
            if p is not None and p.budget_minor and spent + applied.discount_minor > p.budget_minor:
                raise Conflict(f"offer {o!r}: the budget would be overspent")
            ops[o] = [
                1,
                applied.discount_minor,
                p.total_uses if p else 0,
                p.budget_minor if p else 0,
            ]
            uses.append(
                OfferUse(
                    o,
                    applied.funder_id,
                    applied.discount_minor,
                    applied.funded_minor,
                    applied.points,
                    coupon_id,
                    code,
                )
            )

        outcome = CommitOutcome(
            transaction_id=tx,
            member_id=member_id,
            at=now,
            pricing=result,
            lines=effects.line_details(basket, result),
            offers=tuple(uses),
            points_earned=result.points_earned,
            points_redeemed=result.points_redeemed,
            points_available_at=available_at,
            points_expire_at=expires_at,
            qualifying_spend_minor=result.net_minor if member_id else 0,
            tier_before=tier_before,
            tier_after=tier_after,
            store_id=basket.store_id,
            channel=basket.channel,
            segments=tuple(doc.segments) if doc else (),
            **_balances(doc, now),
        )
        plain = codec.to_plain(outcome)
        txdoc["o"] = pack(plain)
        txdoc["rq"] = [0] * len(outcome.lines)
        entry = LedgerEntry(
            0,
            "commit",
            tx,
            tx,
            member_id,
            now,
            outcome.lines,
            result.payable_minor,
            result.points_earned,
            result.points_redeemed,
            **effects.context(outcome),
        )
        member_key = k.member(doc.member_id) if doc is not None else k.tx(tx)
        reply = io.run(
            "commit",
            [
                k.tx(tx),
                member_key,
                k.usage,
                k.ledger,
                k.ledger_seq,
                *(k.code(c) for c in code_keys),
            ],
            [
                doc.version if doc else -1,
                doc.dump(now, months, frozenset(policy.current_keys(now))) if doc else b"",
                dumps(txdoc),
                io.ttl_ms,
                *offer_ops(ops),
                *io.ledger_args(entry, plain["lines"]),
            ],
        )
        if reply[0] == "OK":
            return outcome  # equal to what a retry decodes (tests compare them)
    raise Conflict(
        f"transaction {tx!r}: the member or an offer's limits kept changing; "
        "retry with the same transaction id"
    )


def _balances(doc: MemberDoc | None, now: datetime) -> dict[str, int]:
    if doc is None:
        return {}
    available, pending = P.balances(doc.lots, doc.debt, now)
    return {"points_available_after": available, "points_pending_after": pending}


__all__ = ["commit", "offer_ops"]
