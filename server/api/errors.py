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


def to_status(exc: LoyaltyError) -> grpc.Status:
    """The gRPC status of a domain error, with a BadRequest detail for field violations."""
    details = []
    if exc.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in exc.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
        message = "; ".join(str(v) for v in exc.violations)
    else:
        message = str(exc)
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=exc.code, message=message[:MAX_MESSAGE_CHARS], details=details)
    )
    return status
