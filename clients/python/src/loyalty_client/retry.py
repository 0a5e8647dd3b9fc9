"""Bounded retries of idempotent calls: exponential backoff with full jitter, only on the
codes the service documents as safe to retry, all inside one overall deadline."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

log = logging.getLogger("loyalty_client")

R = TypeVar("R")

#: Failures after which the *same* request (same transaction_id / return_id) may be sent
#: again: nothing was applied (UNAVAILABLE, ABORTED), or the outcome is unknown and the server
#: answers a repeat with the stored result (DEADLINE_EXCEEDED).
RETRYABLE_CODES: frozenset[grpc.StatusCode] = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one call may be tried.

    ``deadline_s`` bounds the whole call, attempts and pauses together; each attempt gets
    ``attempt_timeout_s`` (or what is left of the deadline, if less). After failed attempt
    ``n`` the pause is uniform in ``[0, min(max_backoff_s, initial_backoff_s * multiplier**(n-1))]``
    ("full jitter", so lanes that failed together do not come back together). No attempt is
    started with less than ``min_attempt_s`` left: the call gives up instead.
    """

    max_attempts: int = 5
    deadline_s: float = 10.0
    attempt_timeout_s: float | None = 3.0
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    min_attempt_s: float = 0.05
    retryable_codes: frozenset[grpc.StatusCode] = field(default=RETRYABLE_CODES)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1 (got {self.max_attempts})")
        if not self.deadline_s > 0:
            raise ValueError(f"deadline_s must be greater than 0 (got {self.deadline_s})")
        if self.attempt_timeout_s is not None and not self.attempt_timeout_s > 0:
            raise ValueError("attempt_timeout_s must be greater than 0 or None")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be at least 0 and the multiplier at least 1")

    def backoff(self, failed_attempt: int, rng: random.Random | None = None) -> float:
        """The pause after the ``failed_attempt``-th attempt (1-based) failed, in seconds."""
        cap = min(
            self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (failed_attempt - 1)
        )
        return (rng or _rng).uniform(0.0, cap)


NO_RETRY = RetryPolicy(max_attempts=1)
_rng = random.Random()


@dataclass(frozen=True)
class RetryEvent:
    """Passed to ``on_retry`` before each pause: which call failed how, and what comes next."""

    method: str
    key: str
    attempt: int
    code: grpc.StatusCode
    details: str
    delay_s: float


class RetriesExhausted(grpc.RpcError):
    """A retryable failure that outlasted the policy (attempts or deadline).

    For a commit, cancel or return **the outcome is unknown**: the server may or may not have
    applied it. Send the same request again later, under the same id: the server answers with
    the stored result, or applies it then. Behaves like the last ``grpc.RpcError`` (``code()``,
    ``details()``, ``trailing_metadata()``), so ``except grpc.RpcError`` still catches it.
    """

    def __init__(self, method: str, key: str, attempts: int, last: grpc.RpcError) -> None:
        self.method = method
        self.key = key
        self.attempts = attempts
        self.last_error = last
        code = _code(last)
        name = code.name if code else "UNKNOWN"
        super().__init__(
            f"{method} {key!r}: gave up after {attempts} attempt(s), last {name}: "
            f"{_details(last)}; outcome unknown, retry later under the same id"
        )

    def code(self) -> grpc.StatusCode:
        return _code(self.last_error) or grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return _details(self.last_error)

    def trailing_metadata(self) -> Any:  # the last error's (BadRequest details and the like)
        if isinstance(self.last_error, grpc.Call | RetriesExhausted):
            return self.last_error.trailing_metadata()
        return ()


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    # a grpc.RpcError raised by a call is also a grpc.Call (code(), details(), ...)
    return exc.code() if isinstance(exc, grpc.Call | RetriesExhausted) else None


def _details(exc: grpc.RpcError) -> str:
    if isinstance(exc, grpc.Call | RetriesExhausted):
        return str(exc.details() or "")
    return str(exc)


def call_with_retries(
    attempt: Callable[[float | None], R],
    policy: RetryPolicy,
    *,
    method: str,
    key: str = "",
    deadline_s: float | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> R:
    """``attempt(timeout)`` until it returns, a non-retryable error, or the policy runs out.

    ``attempt`` must send the same idempotent request each time; ``timeout`` is that attempt's
    gRPC deadline in seconds. Non-retryable errors propagate unchanged; a retryable one that
    outlasts the policy is raised as ``RetriesExhausted``.
    """
    budget = policy.deadline_s if deadline_s is None else deadline_s
    if not budget > 0:
        raise ValueError(f"deadline must be greater than 0 (got {budget})")
    end = clock() + budget
    n = 0
    while True:
        n += 1
        remaining = end - clock()
        timeout = remaining
        if policy.attempt_timeout_s is not None:
            timeout = min(remaining, policy.attempt_timeout_s)
        try:
            return attempt(timeout)
        except grpc.RpcError as exc:
            code = _code(exc)
            if code not in policy.retryable_codes:
                raise
            if n >= policy.max_attempts:
                raise RetriesExhausted(method, key, n, exc) from exc
            delay = policy.backoff(n, rng)
            if end - clock() - delay < policy.min_attempt_s:
                raise RetriesExhausted(method, key, n, exc) from exc
            assert code is not None
            event = RetryEvent(method, key, n, code, _details(exc), delay)
            log.info(
                "%s %r: %s (%s); attempt %d of %d in %.3f s",
                method,
                key,
                code.name,
                event.details,
                n + 1,
                policy.max_attempts,
                delay,
            )
            if on_retry is not None:
                on_retry(event)
            sleep(delay)
