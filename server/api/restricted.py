"""Member-only items in checkout responses: a restricted line is marked and explained.

The engine says which lines the member may not buy (``PricingResult.restricted``;
:mod:`engine.pricing.restrictions`); here that becomes ``LineResult.restricted`` and
``restriction_id`` on the line and one ``Explanation`` per restricted line (reason
``ITEM_RESTRICTED``, detail = the line's index, listed after the offers' explanations and
whether or not explanations were asked). The checked path marks the message it builds; the byte
path (Evaluate's ``engine.pricing.wire``) marks its response bytes the same way, only when a
line is restricted, so both answer the same message.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.pricing.restrictions import ITEM_RESTRICTED
from engine.pricing.types import RestrictedLine
from loyalty.v1 import checkout_pb2


def mark_restricted(
    resp: checkout_pb2.EvaluateResponse, restricted: Sequence[RestrictedLine]
) -> checkout_pb2.EvaluateResponse:
    """``resp`` (its lines in basket order) with the restricted lines marked and explained."""
    for r in restricted:
        line = resp.lines[r.line]
        line.restricted = True
        line.restriction_id = r.restriction_id
        resp.explanations.add(
            reason=ITEM_RESTRICTED,
            detail=r.line,
            message=r.message,
            restriction_id=r.restriction_id,
        )
    return resp


def mark_restricted_bytes(body: bytes, restricted: Sequence[RestrictedLine]) -> bytes:
    """EvaluateResponse bytes with the restricted lines marked (``body`` as it is when none
    is: the common case costs nothing)."""
    if not restricted:
        return body
    resp = checkout_pb2.EvaluateResponse.FromString(body)
    return mark_restricted(resp, restricted).SerializeToString()


__all__ = ["mark_restricted", "mark_restricted_bytes"]
