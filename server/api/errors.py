"""The status a client sees for each error of the family (:mod:`engine.errors`).

Every error raised on purpose carries its ``google.rpc`` code; bad input carries its field
violations, which become a ``google.rpc.BadRequest`` detail so clients can point at the field.
:class:`~server.api.interceptors.CallInterceptor` applies this to every call, so servicers
never catch to map; anything that is not of the family is a bug, answered ``INTERNAL``.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from engine.errors import LoyaltyError

MAX_MESSAGE_CHARS = 2000
# The status travels in the trailers, which a gRPC client takes up to 8 KiB of by default (beyond,
# it reports RESOURCE_EXHAUSTED and the status is lost): the details (sent base64, 4/3 of these
# bytes) and the message (sent percent-encoded, up to 3 characters per byte) are cut to fit.
MAX_DETAIL_BYTES = 2_400
MAX_MESSAGE_BYTES = 900


def _fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary)."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "..."


def to_status(exc: LoyaltyError) -> grpc.Status:
    """The gRPC status of a domain error, with a BadRequest detail for field violations.

    A request with very many bad fields (a list of 100,000 empty ids) gets the first ones that
    fit in the trailers, and a last violation on the next field saying how many more there are.
    """
    details = []
    if exc.violations:
        bad_request = error_details_pb2.BadRequest()
        size, shown = 0, 0
        for v in exc.violations:
            row = error_details_pb2.BadRequest.FieldViolation(
                field=_fit(v.field, 200), description=_fit(v.description, 500)
            )
            size += row.ByteSize() + 4
            if size > MAX_DETAIL_BYTES:
                left = len(exc.violations) - shown
                row.description = f"and {left:,} more violation(s) not shown"
                bad_request.field_violations.append(row)
                break
            bad_request.field_violations.append(row)
            shown += 1
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
        message = "; ".join(str(v) for v in exc.violations[:shown])
        if shown < len(exc.violations):
            message += f" (and {len(exc.violations) - shown:,} more)"
    else:
        message = str(exc)
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(
            code=exc.code,
            message=_fit(message[:MAX_MESSAGE_CHARS], MAX_MESSAGE_BYTES),
            details=details,
        )
    )
    return status
