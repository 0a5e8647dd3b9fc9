"""Commit, cancel and return on Redis: read a snapshot, compute, apply with one Lua script.

Each function loops over :meth:`RedisStore.attempts`: read (one round trip), compute the new
documents in Python with the same arithmetic as every store (:mod:`server.store.effects`,
:mod:`server.store.points`), then run the script, which applies everything only if nothing it
depends on moved since the read. A ``CONFLICT`` reply means another lane won the race: read
again and redo (a commit re-prices on the fresh state). An ``EXISTS`` reply means the same id
was applied meanwhile: the next read returns the stored outcome.

A result that overspends the snapshot it was priced on (a wrong or stale ``price_fn``) is a
:class:`Conflict` at once, as in the embedded store: re-reading would not change it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.pricing.types import Basket
from server.store import codec, effects, snapshot
from server.store import points as P
from server.store.base import (
    CancelOutcome,
    CodeStatus,
    CommitOutcome,
    Conflict,
    FailedPrecondition,
    LedgerEntry,
    NotFound,
    OfferUse,
    PriceFn,
    PricingState,
    ReturnOutcome,
)
from server.store.policy import Policy
from server.store.redis.docs import MemberDoc, dumps, pack, split, stored, unpack
from server.store.snapshot import from_us, to_us

if TYPE_CHECKING:
    from server.store.redis.store import RedisStore, Snapshot


def pricing_state(
    store: RedisStore,
    policy: Policy,
    member_id: str | None,
    offer_ids: Iterable[str] | None,
    codes: Sequence[str],
    now: datetime,
    tx: str | None = None,
) -> tuple[PricingState, Snapshot]:
    """Engine inputs from one snapshot: the member, the presented codes, the limits of the
    offers that have any (``offer_ids`` None) and, for a commit, the transaction."""
    ids = snapshot.limited_ids(policy, offer_ids)
    snap = store.snapshot(tx=tx, member_id=member_id, offer_ids=ids, codes=codes)
    if tx is not None and snap.tx is not None:
        return PricingState(None, None, (), {}, {}, {}), snap
    doc = snap.member
    if member_id is not None and doc is None:
        raise NotFound(f"member {member_id!r} not found")
    record = doc.record(now, store.settings.rolling_spend_months) if doc else None
    status: dict[str, CodeStatus] = {}
    offers: dict[str, str] = {}
    now_us = to_us(now)
    for code, row in snap.codes.items():

        def redeemed(code: str = code) -> bool:
            return doc is not None and code in doc.codes

        status[code] = snapshot.code_status(row, policy, member_id, redeemed, now_us)
        if row is not None and status[code] == CodeStatus.VALID:
            offers[code] = row[0]
    state = PricingState(
        member=record.engine_member(now) if record else None,
        record=record,
        coupons=tuple(offers[c] for c in dict.fromkeys(codes) if c in offers),
        code_status=status,
        code_offers=offers,
        limits=snapshot.remaining_limits(
            policy, ids, snap.usage, doc.mine() if doc else {}, member_id, now
        ),
    )
    return state, snap


def _offer_ops(ops: dict[str, list[int]]) -> list[Any]:
    out: list[Any] = [len(ops)]
    for offer_id, (du, db, cu, cb) in ops.items():
        out += [offer_id, du, db, cu, cb]
    return out


def commit(
    store: RedisStore,
    policy: Policy,
    tx: str,
    fingerprint: str,
    price_fn: PriceFn,
    now: datetime,
    basket: Basket,
    member_id: str | None,
    codes: Sequence[str],
) -> CommitOutcome:
    k, months = store.keys, store.settings.rolling_spend_months
    for _ in store.attempts():
        state, snap = pricing_state(store, policy, member_id, None, codes, now, tx)
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
            debt, _ = P.settle(doc.lots, doc.debt, now)
            if result.points_redeemed:
                taken = effects.burn_points(doc.lots, result.points_redeemed, now)
                txdoc["b"] = [
                    [n, None if lot.expires_at is None else to_us(lot.expires_at), 0]
                    for lot, n in taken
                ]
            if result.points_earned:
                available_at, expires_at = P.earned_lot_times(
                    now, policy.pending_days, policy.expiry_months
                )
                lot = P.Lot(doc.next_lot, result.points_earned, now, available_at, expires_at)
                doc.next_lot += 1
                doc.lots.append(lot)
                txdoc["el"] = lot.lot_id
            doc.debt, _ = P.settle(doc.lots, debt, now)
            doc.spend.append([tx, to_us(now), result.net_minor])
            rolling = snapshot.rolling_sum(((s[1], s[2]) for s in doc.spend), now, months)
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
        reply = store.run(
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
                doc.dump(now, months, frozenset(policy.current_keys(now))) if doc else "",
                dumps(txdoc),
                store.ttl_ms,
                *_offer_ops(ops),
                *store.ledger_args(entry, plain["lines"]),
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


def _load_tx(store: RedisStore, transaction_id: str) -> tuple[int, dict, CommitOutcome]:
    version, txdoc = split(store.client.get(store.keys.tx(transaction_id)))
    if txdoc is None:
        raise NotFound(f"transaction {transaction_id!r} not found")
    return version, txdoc, codec.from_plain(CommitOutcome, unpack(txdoc["o"]))


def _reverse(
    store: RedisStore, txdoc: dict, outcome: CommitOutcome, targets: dict[int, int], now: datetime
) -> tuple[effects.Reversal, MemberDoc | None, int, int]:
    """Apply the reversal to the transaction document and the member's (re-read) document.

    Returns ``(reversal, member doc, points forfeited, debt added)``.
    """
    rev = effects.reverse_lines(outcome.lines, txdoc["rq"], targets)
    for idx, r in targets.items():
        txdoc["rq"][idx] = r
    if outcome.member_id is None:
        return rev, None, 0, 0
    doc = store.member_doc(outcome.member_id)
    burns = [effects.Burn(i, b[0], from_us(b[1]), b[2]) for i, b in enumerate(txdoc["b"])]
    doc.debt, forfeited, debt_added = effects.settle_reversal(
        doc.lots, doc.debt, burns, rev, txdoc["el"], now
    )
    txdoc["b"] = [[b.points, b0[1], b.restored] for b, b0 in zip(burns, txdoc["b"], strict=True)]
    for s in doc.spend:
        if s[0] == outcome.transaction_id:
            s[2] -= rev.net_back
    doc.lifetime -= rev.net_back
    return rev, doc, forfeited, debt_added


def cancel(store: RedisStore, transaction_id: str, now: datetime) -> CancelOutcome:
    k, months = store.keys, store.settings.rolling_spend_months
    for _ in store.attempts():
        tv, txdoc, outcome = _load_tx(store, transaction_id)
        if txdoc["s"] == "x":
            return codec.from_plain(CancelOutcome, txdoc["co"])
        targets = {
            i: x.quantity for i, x in enumerate(outcome.lines) if txdoc["rq"][i] < x.quantity
        }
        rev, doc, forfeited, debt_added = _reverse(store, txdoc, outcome, targets, now)
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
        )
        plain = codec.to_plain(result)
        txdoc["s"], txdoc["co"] = "x", plain
        entry = LedgerEntry(
            0,
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
        reply = store.run(
            "cancel",
            [
                k.tx(transaction_id),
                k.member(doc.member_id) if doc else k.tx(transaction_id),
                k.usage,
                k.ledger,
                k.ledger_seq,
                *code_keys,
            ],
            [
                tv,
                doc.version if doc else -1,
                dumps(txdoc),
                doc.dump(now, months) if doc else "",
                *_offer_ops(ops),
                *store.ledger_args(entry),
            ],
        )
        if reply[0] == "OK":
            return codec.from_plain(CancelOutcome, plain)
    raise Conflict(f"transaction {transaction_id!r} kept changing; retry the cancel")


def return_lines(
    store: RedisStore,
    return_id: str,
    transaction_id: str,
    lines: Sequence[tuple[str, int]],
    now: datetime,
) -> ReturnOutcome:
    k, months = store.keys, store.settings.rolling_spend_months
    wanted, fingerprint = effects.return_request(transaction_id, lines)
    for _ in store.attempts():
        raw = store.client.get(k.ret(return_id))
        if raw is not None:
            return stored(
                ReturnOutcome,
                raw,
                fingerprint,
                f"return {return_id!r} was made with another request",
            )
        tv, txdoc, outcome = _load_tx(store, transaction_id)
        if txdoc["s"] == "x":
            raise FailedPrecondition(f"transaction {transaction_id!r} is cancelled")
        by_id = {x.line_id: (i, x.quantity, txdoc["rq"][i]) for i, x in enumerate(outcome.lines)}
        targets = effects.return_targets(transaction_id, lines, wanted, by_id)
        rev, doc, forfeited, debt_added = _reverse(store, txdoc, outcome, targets, now)
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
        )
        plain = codec.to_plain(result)
        entry = LedgerEntry(
            0,
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
        reply = store.run(
            "return",
            [
                k.tx(transaction_id),
                k.member(doc.member_id) if doc else k.tx(transaction_id),
                k.usage,
                k.ledger,
                k.ledger_seq,
                k.ret(return_id),
            ],
            [
                tv,
                doc.version if doc else -1,
                dumps(txdoc),
                doc.dump(now, months) if doc else "",
                dumps({"f": fingerprint, "o": pack(plain)}),
                store.ttl_ms,
                *_offer_ops(ops),
                *store.ledger_args(entry),
            ],
        )
        if reply[0] == "OK":
            return codec.from_plain(ReturnOutcome, plain)
    raise Conflict(f"transaction {transaction_id!r} kept changing; retry the return")


__all__ = ["cancel", "commit", "pricing_state", "return_lines"]
