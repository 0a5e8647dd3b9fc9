"""What checkout calls answer from a stored outcome: the same message on every retry.

A commit, cancel or return stores the member's balances right after it with its outcome, so a
retry is answered with exactly those (:func:`member_after`); an outcome stored before they
were kept falls back to the member's current balances (the caller's ``current``).
"""

from __future__ import annotations

from collections.abc import Callable

from loyalty.v1 import checkout_pb2, members_pb2
from server.store.base import CancelOutcome, CommitOutcome, ReturnOutcome, payable

Current = Callable[[str], members_pb2.MemberSummary | None]


def member_after(
    outcome: CommitOutcome | CancelOutcome | ReturnOutcome, current: Current
) -> members_pb2.MemberSummary | None:
    """The member's balances the operation left, as stored with its outcome; ``current``
    (member id -> summary now) for an outcome stored without them; None for a guest."""
    if not outcome.member_id:
        return None
    if outcome.points_available_after is None:
        return current(outcome.member_id)
    return members_pb2.MemberSummary(
        member_id=outcome.member_id,
        tier=outcome.tier_after or "",
        available_points=outcome.points_available_after,
        pending_points=outcome.points_pending_after or 0,
    )


def returned_lines(outcome: CancelOutcome | ReturnOutcome) -> list[checkout_pb2.ReturnedLine]:
    """What a cancel or return reversed, per line."""
    return [
        checkout_pb2.ReturnedLine(
            line_id=d.line_id,
            quantity=d.quantity,
            refund_minor=payable(d),
            points_clawed_back=d.points_earned,
            points_tender_returned=d.points_redeemed,
            funding_reversed_minor=sum(x.funded_minor for x in d.discounts),
        )
        for d in outcome.lines
    ]


def cancel_response(outcome: CancelOutcome, current: Current) -> checkout_pb2.CancelResponse:
    """A cancel done before is answered with its stored outcome, which the store marks as
    repeated: the same reversal and balances, only the status says it is a retry."""
    return checkout_pb2.CancelResponse(
        transaction_id=outcome.transaction_id,
        status=(
            checkout_pb2.CancelResponse.ALREADY_CANCELLED
            if outcome.repeated
            else checkout_pb2.CancelResponse.CANCELLED
        ),
        member=member_after(outcome, current),
        refund_minor=outcome.refund_minor,
        points_clawed_back=outcome.points_clawed_back,
        points_tender_returned=outcome.points_restored,
        lines=returned_lines(outcome),
    )


def return_response(outcome: ReturnOutcome, current: Current) -> checkout_pb2.ReturnResponse:
    return checkout_pb2.ReturnResponse(
        refund_minor=outcome.refund_minor,
        points_clawed_back=outcome.points_clawed_back,
        points_tender_returned=outcome.points_restored,
        lines=returned_lines(outcome),
        member=member_after(outcome, current),
    )


__all__ = ["cancel_response", "member_after", "return_response", "returned_lines"]
