"""Pure arithmetic of commit, cancel and return effects, shared by every store.

A store loads rows its own way and writes the results its own way; which lines are refunded by
how much, which points come back and which lots they land in is decided here once (docs/design.md
§5: cumulative unit arithmetic, so returns in any order add up exactly).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import Conflict, FailedPrecondition, InvalidInput
from engine.pricing.types import Basket, PricingResult
from loyalty.v1.checkout_pb2 import LineDiscount
from loyalty.v1.ledger_pb2 import LedgerLine
from server.store import points as P
from server.store.base import CommitOutcome, payable
from server.store.snapshot import check_time, to_us


def check_result(result: PricingResult, basket: Basket) -> None:
    """Refuse a priced result that does not describe the basket being committed."""
    if [x.line_id for x in result.lines] != [x.line_id for x in basket.lines]:
        raise InvalidInput.at("basket", "the priced result does not match the basket's lines")
    if (
        any(
            x.net_minor < 0 or x.points_tender_minor < 0 or x.points_earned < 0
            for x in result.lines
        )
        or result.points_redeemed < 0
    ):
        raise InvalidInput.at("basket", "the priced result has negative amounts")


def line_details(basket: Basket, result: PricingResult) -> tuple[LedgerLine, ...]:
    """One ledger line per basket line; the points tender is allocated to lines in points
    (largest remainder over the tender in money) so returns can give it back per unit."""
    redeemed = P.allocate(result.points_redeemed, [x.points_tender_minor for x in result.lines])
    return tuple(
        LedgerLine(
            line_id=res.line_id,
            sku=line.sku,
            quantity=line.quantity,
            gross_minor=res.gross_minor,
            net_minor=res.net_minor,
            tender_minor=res.points_tender_minor,
            points_earned=res.points_earned,
            points_redeemed=redeemed[i],
            discounts=[
                LineDiscount(
                    offer_id=d.offer_id,
                    amount_minor=d.amount_minor,
                    funder_id=d.funder_id,
                    funded_minor=d.funded_minor,
                )
                for d in res.discounts
            ],
            delivery=line.delivery,
        )
        for i, (line, res) in enumerate(zip(basket.lines, result.lines, strict=True))
    )


def context(outcome: CommitOutcome) -> dict[str, Any]:
    """The checkout context a commit's ledger entries carry (LedgerEntry keyword arguments)."""
    return {
        "store_id": outcome.store_id,
        "channel": outcome.channel,
        "tier": outcome.tier_before,
        "segments": outcome.segments,
        "ruleset_version": outcome.ruleset_version,
    }


def burn_points(lots: list[P.Lot], points: int, now: datetime) -> list[tuple[P.Lot, int]]:
    """Burn a points tender FIFO by expiry; too few points is a Conflict (stale quote)."""
    try:
        return P.burn(lots, points, now)
    except ValueError as exc:
        raise Conflict(f"cannot redeem {points} points: {exc}") from None


@dataclass(slots=True)
class Reversal:
    """What moving some lines to a new cumulative returned quantity gives back."""

    lines: tuple[LedgerLine, ...]
    refund: int  # money
    clawed: int  # earned points taken back
    restored: int  # tender points given back
    net_back: int  # qualifying spend taken back
    budget_back: dict[str, int]  # offer id -> discount no longer given


def reverse_lines(
    lines: Sequence[LedgerLine], returned: Sequence[int], targets: Mapping[int, int]
) -> Reversal:
    """Move line ``idx`` from ``returned[idx]`` to ``targets[idx]`` units returned in total.

    Every amount is the increase of its cumulative share ``⌊total·R/q⌋`` (docs/design.md §5).
    """
    details = []
    budget_back: dict[str, int] = {}
    for idx in sorted(targets):
        line, r0, r1 = lines[idx], returned[idx], targets[idx]
        q = line.quantity

        def delta(total: int, q: int = q, r0: int = r0, r1: int = r1) -> int:
            return P.share(total, r1, q) - P.share(total, r0, q)

        refund = delta(line.net_minor - line.tender_minor)
        tender = delta(line.tender_minor)
        discs = []
        for d in line.discounts:
            amount = delta(d.amount_minor)
            budget_back[d.offer_id] = budget_back.get(d.offer_id, 0) + amount
            discs.append(
                LineDiscount(
                    offer_id=d.offer_id,
                    amount_minor=amount,
                    funder_id=d.funder_id,
                    funded_minor=delta(d.funded_minor),
                )
            )
        details.append(
            LedgerLine(
                line_id=line.line_id,
                sku=line.sku,
                quantity=r1 - r0,
                gross_minor=delta(line.gross_minor),
                net_minor=refund + tender,
                tender_minor=tender,
                points_earned=delta(line.points_earned),
                points_redeemed=delta(line.points_redeemed),
                discounts=discs,
                delivery=line.delivery,
            )
        )
    return Reversal(
        tuple(details),
        sum(payable(x) for x in details),
        sum(x.points_earned for x in details),
        sum(x.points_redeemed for x in details),
        sum(x.net_minor for x in details),
        budget_back,
    )


@dataclass(slots=True)
class Burn:
    """Points a commit burned from lots expiring at ``expires_at``, and how many came back."""

    seq: int
    points: int
    expires_at: datetime | None
    restored: int = 0
    changed: bool = False


def restore_burns(burns: Sequence[Burn], points: int, lots: list[P.Lot], now: datetime) -> int:
    """Give back ``points`` of a tender, available now and keeping the burned lots' expiry
    (so they join the member's available lot of that expiry, if any), latest expiry (never
    first) first; returns the points forfeited because that expiry has passed."""
    forfeited = 0
    order = sorted(
        burns,
        key=lambda b: (
            b.expires_at is not None,
            -(b.expires_at.timestamp() if b.expires_at else 0),
            -b.seq,
        ),
    )
    for burn in order:
        if points == 0:
            break
        n = min(points, burn.points - burn.restored)
        if n <= 0:
            continue
        points -= n
        burn.restored += n
        burn.changed = True
        if burn.expires_at is not None and burn.expires_at <= now:
            forfeited += n
        else:
            P.add_lot(lots, P.Lot(None, n, now, now, burn.expires_at), now)
    return forfeited


def settle_reversal(
    lots: list[P.Lot],
    debt: int,
    burns: Sequence[Burn],
    rev: Reversal,
    own_lot_id: int | None,
    earned: CommitOutcome,
    now: datetime,
) -> tuple[int, int, int]:
    """Apply a reversal to a member's lots (in place): tender points back, earned points
    clawed back from the lot they went to first (``own_lot_id``, or the lot of their key
    ``earned.points_available_at/points_expire_at`` once it merged into another), which other
    commits of the same bucket share, then FIFO by expiry. Returns ``(debt, forfeited, debt
    added)``."""
    debt, _ = P.settle(lots, debt, now)
    forfeited = restore_burns(burns, rev.restored, lots, now)
    debt, _ = P.settle(lots, debt, now)
    own = P.find_lot(lots, own_lot_id, earned.points_available_at, earned.points_expire_at, now)
    debt_added = P.claw_back(lots, rev.clawed, now, own)
    debt, _ = P.settle(lots, debt + debt_added, now)
    return debt, forfeited, debt_added


def return_request(
    transaction_id: str, lines: Sequence[tuple[str, int]]
) -> tuple[dict[str, int], str]:
    """Units asked back per line id, and the fingerprint a retry must match."""
    wanted: dict[str, int] = {}
    if not lines:
        raise InvalidInput.at("lines", "at least one line is required")
    for k, item in enumerate(lines):
        line_id, qty = item
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            raise InvalidInput.at(f"lines[{k}].quantity", f"must be at least 1 (got {qty!r})")
        wanted[line_id] = wanted.get(line_id, 0) + qty
    return wanted, json.dumps([transaction_id, sorted(wanted.items())])


def return_targets(
    transaction_id: str,
    lines: Sequence[tuple[str, int]],
    wanted: Mapping[str, int],
    by_id: Mapping[str, tuple[int, int, int]],
) -> dict[int, int]:
    """Line index -> units returned in total after this return; ``by_id`` maps each line id
    of the transaction to ``(idx, bought, returned so far)``. Over-returns are refused."""
    for k, (line_id, _) in enumerate(lines):
        if line_id not in by_id:
            raise InvalidInput.at(
                f"lines[{k}].line_id", f"no line {line_id!r} in transaction {transaction_id!r}"
            )
    targets = {}
    for line_id, qty in wanted.items():
        idx, bought, returned = by_id[line_id]
        if returned + qty > bought:
            raise FailedPrecondition(
                f"line {line_id!r}: {qty} unit(s) asked, only "
                f"{bought - returned} of {bought} left to return"
            )
        targets[idx] = returned + qty
    return targets


def adjust_fingerprint(
    member_id: str,
    points: int,
    reason: str,
    allow_negative: bool,
    expires_at: datetime | None,
    now: datetime,
) -> str:
    """Check a points adjustment and give the fingerprint a retry must match."""
    if points == 0:
        raise InvalidInput.at("points", "must not be 0")
    if expires_at is not None and check_time("expires_at", expires_at) <= now:
        raise InvalidInput.at("expires_at", "must be after now")
    return json.dumps(
        [
            member_id,
            points,
            reason,
            allow_negative,
            None if expires_at is None else to_us(expires_at),
        ]
    )


def adjust(
    lots: list[P.Lot],
    debt: int,
    member_id: str,
    points: int,
    now: datetime,
    expires_at: datetime | None,
    allow_negative: bool,
) -> tuple[int, int, int]:
    """Add points (``points`` > 0) or burn FIFO (< 0), in place. Burning more than is
    available is refused unless ``allow_negative``, when the rest becomes debt.

    Added points are available at once and keep ``expires_at`` exactly as asked (an operator's
    date is not rounded: the store has no rule set here); they join the member's available
    lot of that very expiry, if any.

    Returns ``(debt, debt added, points available after)``.
    """
    debt, _ = P.settle(lots, debt, now)
    added = 0
    if points > 0:
        P.add_lot(lots, P.Lot(None, points, now, now, expires_at), now)
    else:
        have = P.available_points(lots, now)
        if have < -points and not allow_negative:
            raise FailedPrecondition(
                f"member {member_id!r} has {have} points available, {-points} asked"
            )
        take = min(have, -points)
        if take:
            P.burn(lots, take, now)
        added = -points - take
    debt, _ = P.settle(lots, debt + added, now)
    P.check_held(lots, debt, member_id)
    available, _ = P.balances(lots, debt, now)
    return debt, added, available
