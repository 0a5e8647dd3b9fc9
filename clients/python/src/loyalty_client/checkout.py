"""The checkout protocol (docs/design.md §5) with safe retries.

- ``evaluate``: a pure quote; safe to repeat.
- ``commit``: idempotent per ``transaction_id``: every attempt sends the same request under the
  same id, so a retry after a lost answer gets the stored result and nothing twice.
- ``cancel``: idempotent per ``transaction_id``.
- ``return_lines``: idempotent per ``return_id``.

Each call is retried only on UNAVAILABLE, ABORTED and DEADLINE_EXCEEDED (``RetryPolicy``), with
exponential backoff and jitter, inside one overall deadline. Other failures (INVALID_ARGUMENT,
ALREADY_EXISTS: another basket used this id, FAILED_PRECONDITION, NOT_FOUND, UNAUTHENTICATED,
PERMISSION_DENIED, ...) are raised at once as the ``grpc.RpcError`` the server sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from loyalty.v1 import checkout_pb2, checkout_pb2_grpc
from loyalty_client.channel import API_KEY_HEADER, open_channel
from loyalty_client.retry import RetryEvent, RetryPolicy, call_with_retries

ReturnLines = Mapping[str, int] | Iterable[checkout_pb2.ReturnLine | tuple[str, int]]


class CheckoutClient:
    """``CheckoutService`` for a lane, a self-checkout or a web shop.

    Build it with ``CheckoutClient.connect(target, ...)`` (it then owns, and closes, its
    channel) or around a channel of your own. Thread-safe: share one per process.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        on_retry: Callable[[RetryEvent], None] | None = None,
        owns_channel: bool = False,
    ) -> None:
        self.channel = channel
        self.stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self._metadata = tuple(metadata) + (((API_KEY_HEADER, api_key),) if api_key else ())
        self._owns_channel = owns_channel

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        api_key: str | None = None,
        tls: bool = False,
        root_certificates: bytes | str | os.PathLike[str] | None = None,
        server_name: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> CheckoutClient:
        """A client on a new channel to ``target`` (see ``open_channel`` for the options)."""
        channel = open_channel(
            target,
            api_key=api_key,
            tls=tls,
            root_certificates=root_certificates,
            server_name=server_name,
            credentials=credentials,
            options=options,
        )
        return cls(channel, retry=retry, on_retry=on_retry, owns_channel=True)

    def close(self) -> None:
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> CheckoutClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the four calls ------------------------------------------------------------------------

    def evaluate(
        self, basket: checkout_pb2.EvaluateRequest, *, deadline: float | None = None
    ) -> checkout_pb2.EvaluateResponse:
        """Price ``basket`` now, with no side effects."""
        return call_with_retries(
            lambda timeout: self.stub.Evaluate(basket, timeout=timeout, metadata=self._metadata),
            self.retry,
            method="Evaluate",
            key=basket.member_id,
            deadline_s=deadline,
            on_retry=self.on_retry,
        )

    def commit(
        self,
        transaction_id: str,
        basket: checkout_pb2.EvaluateRequest,
        *,
        expected_payable_minor: int = 0,
        fail_if_changed: bool = False,
        deadline: float | None = None,
    ) -> checkout_pb2.CommitResponse:
        """Apply ``basket`` exactly once under ``transaction_id``.

        ``expected_payable_minor``: the quote the customer saw (0 = not checked); the answer's
        ``changed_from_quote`` says whether the committed price differs, and with
        ``fail_if_changed`` the call fails with FAILED_PRECONDITION instead, applying nothing.

        On ``RetriesExhausted`` the outcome is unknown: keep the id and commit the *same*
        basket again later. ALREADY_EXISTS means another basket already used this id.
        """
        request = checkout_pb2.CommitRequest(
            transaction_id=_id("transaction_id", transaction_id),
            basket=basket,
            expected_payable_minor=expected_payable_minor,
            fail_if_changed=fail_if_changed,
        )
        return call_with_retries(
            lambda timeout: self.stub.Commit(request, timeout=timeout, metadata=self._metadata),
            self.retry,
            method="Commit",
            key=transaction_id,
            deadline_s=deadline,
            on_retry=self.on_retry,
        )

    def cancel(
        self, transaction_id: str, *, deadline: float | None = None
    ) -> checkout_pb2.CancelResponse:
        """Reverse the committed ``transaction_id`` (what has not been returned yet)."""
        request = checkout_pb2.CancelRequest(transaction_id=_id("transaction_id", transaction_id))
        return call_with_retries(
            lambda timeout: self.stub.Cancel(request, timeout=timeout, metadata=self._metadata),
            self.retry,
            method="Cancel",
            key=transaction_id,
            deadline_s=deadline,
            on_retry=self.on_retry,
        )

    def return_lines(
        self,
        return_id: str,
        transaction_id: str,
        lines: ReturnLines,
        *,
        deadline: float | None = None,
    ) -> checkout_pb2.ReturnResponse:
        """Refund returned units of ``transaction_id``, once per ``return_id``.

        ``lines``: ``{line_id: quantity}``, ``(line_id, quantity)`` pairs or ``ReturnLine``s.
        """
        request = checkout_pb2.ReturnRequest(
            return_id=_id("return_id", return_id),
            transaction_id=_id("transaction_id", transaction_id),
            lines=_return_lines(lines),
        )
        return call_with_retries(
            lambda timeout: self.stub.Return(request, timeout=timeout, metadata=self._metadata),
            self.retry,
            method="Return",
            key=return_id,
            deadline_s=deadline,
            on_retry=self.on_retry,
        )


def _id(name: str, value: str) -> str:
    # an empty idempotency key would make every retry a new operation, or collide
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string (got {value!r})")
    return value


def _return_lines(lines: ReturnLines) -> list[checkout_pb2.ReturnLine]:
    if isinstance(lines, Mapping):
        return [checkout_pb2.ReturnLine(line_id=k, quantity=q) for k, q in lines.items()]
    out = []
    for line in lines:
        if isinstance(line, checkout_pb2.ReturnLine):
            out.append(line)
        else:
            line_id, quantity = line
            out.append(checkout_pb2.ReturnLine(line_id=line_id, quantity=quantity))
    return out
