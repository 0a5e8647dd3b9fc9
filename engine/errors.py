"""One error family for the whole product.

Every error raised on purpose is a :class:`LoyaltyError`. Each class carries the
``google.rpc`` status code a client sees (``code``), and bad input carries the list of
:class:`Violation` s, one per offending field, with the field's path in the request or file
(``lines[2].quantity``, ``offers[0].percent_off.percent_bps``). The engine raises them without
knowing about gRPC; the server's interceptor (:mod:`server.api.errors`) turns any of them into
its status, with a ``google.rpc.BadRequest`` detail for violations, and anything else into
``INTERNAL`` (a bug, logged with a request id).

========================  ====================  ==========================================
class                     status                raised when
========================  ====================  ==========================================
``InvalidInput``          INVALID_ARGUMENT      a field of a request or a file is malformed
``NotFound``              NOT_FOUND             a member, transaction, version is unknown
``AlreadyExists``         ALREADY_EXISTS        an id was used before with another request
``FailedPrecondition``    FAILED_PRECONDITION   well formed, but the state forbids it
``Conflict``              ABORTED               optimistic retries ran out under contention
``Unavailable``           UNAVAILABLE           the store cannot be reached; nothing applied
``DeadlineExceeded``      DEADLINE_EXCEEDED     the caller gave up before the work started
========================  ====================  ==========================================

The subclasses of :class:`InvalidInput` (:class:`~engine.pricing.api.BasketError`,
:class:`~engine.pricing.validate.RuleSetInvalid`, :class:`~engine.pricing.rules.RuleFileError`,
:class:`~engine.pricing.catalogue.CatalogueError`, ...) are defined where they arise, so a
library user can catch exactly the one they expect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from google.rpc import code_pb2


@dataclass(frozen=True, slots=True)
class Violation:
    """One bad field: its path and what is wrong with it, naming the bad value."""

    field: str  # e.g. "lines[2].quantity" or "offers[0].percent_off.percent_bps"
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


class LoyaltyError(Exception):
    """Root of every error the product raises on purpose; ``code`` is its status."""

    code: ClassVar[int] = code_pb2.INTERNAL

    def __init__(self, message: str = "") -> None:
        super().__init__(message)

    @property
    def violations(self) -> tuple[Violation, ...]:
        """The field violations; empty for errors that are not about bad input."""
        return ()


class InvalidInput(LoyaltyError, ValueError):
    """Bad input: every offending field with its path.

    ``InvalidInput.at("lines[0].quantity", "must be at least 1")`` for one field; collect
    several with :meth:`add` and raise once (``if bad.violations: raise bad``).
    """

    code = code_pb2.INVALID_ARGUMENT

    def __init__(
        self, violations: Iterable[Violation | tuple[str, str]] = (), message: str | None = None
    ) -> None:
        self._violations = [v if isinstance(v, Violation) else Violation(*v) for v in violations]
        self._message = message
        super().__init__(message or "")

    @classmethod
    def at(cls, field: str, description: str) -> InvalidInput:
        """One bad field."""
        return cls([Violation(field, description)])

    def add(self, field: str, description: str) -> None:
        self._violations.append(Violation(field, description))

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(self._violations)

    @property
    def field(self) -> str:
        """The first offending field's path."""
        return self._violations[0].field if self._violations else ""

    def __str__(self) -> str:
        if self._message is not None:
            return self._message
        return "; ".join(str(v) for v in self._violations)


class InvalidFile(InvalidInput):
    """A file (rule set, catalogue, history, playbook) is unusable; the message names the
    field, column or row. ``subject`` (the kind of file) is the violation's field."""

    subject: ClassVar[str] = "file"

    def __init__(self, message: str) -> None:
        super().__init__([Violation(self.subject, message)], message=message)


class NotFound(LoyaltyError):
    """The member, transaction, coupon or rule-set version does not exist."""

    code = code_pb2.NOT_FOUND


class AlreadyExists(LoyaltyError):
    """An id was used before with a different request."""

    code = code_pb2.ALREADY_EXISTS


class FailedPrecondition(LoyaltyError):
    """The request is well formed but the state forbids it (over-return, cancelled, balance)."""

    code = code_pb2.FAILED_PRECONDITION


class Conflict(LoyaltyError):
    """Concurrent changes kept invalidating this one; retrying later may succeed."""

    code = code_pb2.ABORTED


class Unavailable(LoyaltyError):
    """The store cannot be reached now; nothing was applied, so a retry is safe."""

    code = code_pb2.UNAVAILABLE


class DeadlineExceeded(LoyaltyError):
    """The caller's deadline passed before the work started; nothing was done."""

    code = code_pb2.DEADLINE_EXCEEDED


__all__ = [
    "AlreadyExists",
    "Conflict",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidFile",
    "InvalidInput",
    "LoyaltyError",
    "NotFound",
    "Unavailable",
    "Violation",
]
