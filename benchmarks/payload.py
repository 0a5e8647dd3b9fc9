"""Request bytes for the gRPC benchmarks: one realistic basket, demo members, unique commits.

The basket starts with the lines of ``examples/evaluate.json`` (a Watsons-style till: cream,
cola, Panadol, a gift card) and continues with demo-catalogue skus at their shelf prices, so
``Evaluate`` and ``Commit`` meet the demo programme's offers and wallet coupons. Requests go
over the wire as pre-serialised bytes (no client-side protobuf work per call); the echo
baseline sends exactly the ``Evaluate`` bytes. A ``Commit`` is the same basket behind a
transaction id that is unique per call: its bytes are built by concatenating the two
length-delimited fields, which is what protobuf would write.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from loyalty.v1 import checkout_pb2
from server.cli.demo import EXAMPLES, N_MEMBERS, demo_catalogue

FIRST_MEMBER = 10001  # server.cli.demo numbers members M10001, M10002, ...
SEED = 17


@lru_cache(maxsize=8)
def basket_lines(n_lines: int = 20, seed: int = SEED) -> tuple[tuple[str, int, int], ...]:
    """(sku, quantity, unit price) of a deterministic ``n_lines``-line basket."""
    example = json.loads((EXAMPLES / "evaluate.json").read_text(encoding="utf-8"))["lines"]
    lines = [(x["sku"], int(x["quantity"]), int(x["unit_price_minor"])) for x in example]
    _, prices = demo_catalogue()
    skus = sorted(prices)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(skus), size=max(0, n_lines - len(lines)), replace=False)
    lines += [(skus[i], 1 + int(rng.integers(3)), prices[skus[i]]) for i in picks]
    return tuple(lines[:n_lines])


def member_id(k: int) -> str:
    return f"M{FIRST_MEMBER + k}"


def evaluate_request(
    member: str, n_lines: int = 20, redeem_points: int = -1
) -> checkout_pb2.EvaluateRequest:
    req = checkout_pb2.EvaluateRequest(
        member_id=member, store_id="SH-001", channel="pos", redeem_points=redeem_points
    )
    for k, (sku, qty, price) in enumerate(basket_lines(n_lines), 1):
        req.lines.add(line_id=str(k), sku=sku, quantity=qty, unit_price_minor=price)
    return req


def evaluate_bytes(members: int = N_MEMBERS, n_lines: int = 20) -> list[bytes]:
    """One serialised EvaluateRequest per demo member, same basket."""
    return [evaluate_request(member_id(k), n_lines).SerializeToString() for k in range(members)]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def basket_field(evaluate: bytes) -> bytes:
    """``CommitRequest.basket`` (field 2, length-delimited) holding these EvaluateRequest bytes."""
    return b"\x12" + _varint(len(evaluate)) + evaluate


def commit_bytes(transaction_id: str, basket: bytes) -> bytes:
    """A CommitRequest: ``transaction_id`` (field 1) then a :func:`basket_field`."""
    tx = transaction_id.encode()
    return b"\x0a" + _varint(len(tx)) + tx + basket
