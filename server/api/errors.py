"""One place that maps domain errors to gRPC status codes (DESIGN.md §6).

The errors themselves are defined where they arise (``server.store.base``, engine
validation, request conversion); this module only decides their status.

Bad input becomes INVALID_ARGUMENT with a ``google.rpc.BadRequest`` detail listing every field
violation, so clients can point at the field; nothing a client sent ever becomes UNKNOWN or
INTERNAL.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from engine.pricing.api import BasketError
from engine.pricing.catalogue import CatalogueError
from engine.pricing.rules import RuleFileError
from engine.pricing.validate import RuleSetInvalid
from server.api.convert import BadInput
from server.store.base import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

log = logging.getLogger(__name__)


class DeadlineExceeded(Exception):
    """The caller's deadline passed before the work started; nothing was done."""


_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Conflict, grpc.StatusCode.ABORTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
)


def field_violations(exc: BaseException) -> list[tuple[str, str]] | None:
    """The (field, description) pairs of a bad-input error, or None if it is not one."""
    if isinstance(exc, BadInput):
        return list(exc.violations)
    if isinstance(exc, RuleSetInvalid):
        return [(v.field, v.description) for v in exc.violations]
    if isinstance(exc, BasketError):
        return [(exc.field, str(exc).split(": ", 1)[-1])]
    if isinstance(exc, InvalidArgument):
        return [(exc.field, exc.message)]
    if isinstance(exc, RuleFileError | CatalogueError):
        return [("rules" if isinstance(exc, RuleFileError) else "catalogue", str(exc))]
    return None


def to_status(exc: BaseException) -> grpc.Status | None:
    """The gRPC status for a domain error; None for an unexpected exception (a bug)."""
    violations = field_violations(exc)
    if violations is not None:
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(detail)
        message = "; ".join(f"{f}: {d}" for f, d in violations)
        return rpc_status.to_status(
            status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT, message=message[:2000], details=[packed]
            )
        )
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=str(exc)))
    return None


def check_deadline(context: grpc.ServicerContext) -> None:
    """Refuse to start work for a caller that has already given up."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("deadline passed before the call was served")


def abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """Abort the call with the status of ``exc``.

    An unexpected exception is a bug of ours: it is logged with its traceback and answered
    INTERNAL, never UNKNOWN.
    """
    status = to_status(exc)
    if status is None:
        log.error("unexpected error", exc_info=exc)
        context.abort(grpc.StatusCode.INTERNAL, "internal error")
    else:
        context.abort_with_status(status)
    raise AssertionError("context.abort returned")  # grpc raises; keeps type checkers honest
