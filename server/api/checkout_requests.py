"""What a Commit or a Return request asks, checked: the commit's idempotency fingerprint and
the lines a return names (every bad field named)."""

from __future__ import annotations

import hashlib

from engine.errors import InvalidInput
from loyalty.v1 import checkout_pb2
from server.api.convert import require_id


def commit_fingerprint(request: checkout_pb2.CommitRequest) -> str:
    """What makes two commits under one transaction id 'the same request'."""
    basket = checkout_pb2.EvaluateRequest()
    basket.CopyFrom(request.basket)
    basket.explain = False  # asking for explanations does not change the transaction
    return hashlib.sha256(
        basket.SerializeToString(deterministic=True)
        + b"|"
        + str(request.expected_payable_minor).encode()
        + b"|"
        + str(request.fail_if_changed).encode()
    ).hexdigest()


def returned_lines(request: checkout_pb2.ReturnRequest) -> list[tuple[str, int]]:
    """(line id, quantity) of each returned line; InvalidInput naming every bad field."""
    require_id("return_id", request.return_id)
    require_id("transaction_id", request.transaction_id)
    bad = InvalidInput()
    if not request.lines:
        bad.add("lines", "at least one line is required")
    for k, ln in enumerate(request.lines):
        if not ln.line_id:
            bad.add(f"lines[{k}].line_id", "is required")
        if ln.quantity < 1:
            bad.add(f"lines[{k}].quantity", f"must be at least 1 (got {ln.quantity})")
    if bad.violations:
        raise bad
    return [(ln.line_id, ln.quantity) for ln in request.lines]
