"""Calls from the HTTP side (JSON API, console) to the gRPC services of this very process.

Every HTTP request becomes one gRPC call over loopback to the server the process already runs,
so the API keys and roles, the checks, the errors with their field violations, the access line
and the metrics are the gRPC ones, exactly: the HTTP side only translates.

``Rpc.call("loyalty.v1.CheckoutService/Evaluate", request, key)`` answers the response
message or raises :class:`RpcFailure` carrying the gRPC status code, its message and the
``google.rpc.BadRequest`` field violations. ``await Rpc.acall(...)`` is the same from an event
loop (the Connect API): the call runs on gRPC's own threads, not on a thread of the loop's pool.
``Rpc.health()`` asks the standard health service (``/healthz``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message, message_factory
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

import loyalty.v1.campaigns_pb2
import loyalty.v1.checkout_pb2
import loyalty.v1.members_pb2  # noqa: F401  (registers the messages)

PACKAGE = "loyalty.v1"
SERVICE_NAMES = ("CheckoutService", "MemberService", "CampaignService")


@dataclass(frozen=True, slots=True)
class Method:
    """One RPC: ``path`` = ``loyalty.v1.Service/Method``; its message classes."""

    service: str
    name: str
    request: type[message.Message]
    response: type[message.Message]

    @property
    def path(self) -> str:
        return f"{PACKAGE}.{self.service}/{self.name}"


def methods() -> dict[str, Method]:
    """Every RPC of the three services, by ``loyalty.v1.Service/Method``."""
    pool = descriptor_pool.Default()
    out = {}
    for service in SERVICE_NAMES:
        desc = pool.FindServiceByName(f"{PACKAGE}.{service}")
        for m in desc.methods:
            method = Method(
                service,
                m.name,
                message_factory.GetMessageClass(m.input_type),
                message_factory.GetMessageClass(m.output_type),
            )
            out[method.path] = method
    return out


@dataclass
class RpcFailure(Exception):
    """A call that did not answer OK: its gRPC code, message and field violations."""

    code: grpc.StatusCode
    message: str
    violations: list[tuple[str, str]] = field(default_factory=list)
    details: list[bytes] = field(default_factory=list)  # the status details, packed Any bytes

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class Rpc:
    """Unary calls to ``target`` (the process's own gRPC server), one channel for all."""

    def __init__(
        self, target: str, credentials: grpc.ChannelCredentials | None = None, timeout_s: float = 60
    ):
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        self.channel = (
            grpc.secure_channel(target, credentials, options=options)
            if credentials is not None
            else grpc.insecure_channel(target, options=options)
        )
        self.methods = methods()
        self.timeout_s = timeout_s
        self._health = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        self._calls = {
            path: self.channel.unary_unary(
                f"/{path}",
                request_serializer=m.request.SerializeToString,
                response_deserializer=m.response.FromString,
            )
            for path, m in self.methods.items()
        }

    def call(
        self,
        path: str,
        request: message.Message,
        key: str | None = None,
        timeout_s: float | None = None,
    ) -> message.Message:
        """The response of RPC ``path`` (``loyalty.v1.Service/Method``) to ``request``;
        ``timeout_s`` is the call's deadline (default: the channel's ``timeout_s``)."""
        try:
            response: message.Message = self._calls[path](
                request, metadata=_metadata(key), timeout=timeout_s or self.timeout_s
            )
        except grpc.RpcError as exc:
            raise failure(exc) from None
        return response

    async def acall(
        self,
        path: str,
        request: message.Message,
        key: str | None = None,
        timeout_s: float | None = None,
    ) -> message.Message:
        """:meth:`call` from an event loop: awaits gRPC's future without holding a thread;
        cancelling the awaiting task cancels the call."""
        call = self._calls[path].future(
            request, metadata=_metadata(key), timeout=timeout_s or self.timeout_s
        )
        response: message.Message = await _settled(call)
        return response

    def health(self, timeout_s: float = 2.0) -> str:
        """The overall status of the health service (``SERVING``, ``NOT_SERVING``...), or
        ``UNREACHABLE`` when the server does not answer."""
        try:
            reply = self._health(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError:
            return "UNREACHABLE"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    async def ahealth(self, timeout_s: float = 2.0) -> str:
        """:meth:`health` from an event loop."""
        try:
            reply = await _settled(
                self._health.future(health_pb2.HealthCheckRequest(), timeout=timeout_s)
            )
        except RpcFailure:
            return "UNREACHABLE"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def close(self) -> None:
        self.channel.close()


def _metadata(key: str | None) -> tuple[tuple[str, str], ...] | None:
    """The call's metadata: the key, when it can travel as gRPC metadata (printable ASCII);
    one that cannot is no key, and the server answers as it does to a call without one."""
    if key and key.isascii() and key.isprintable():
        return (("x-api-key", key),)
    return None


async def _settled(call: Any) -> Any:
    """The result of a gRPC future (a call under way), awaited on the running loop; its
    failure as :class:`RpcFailure`."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    def settle(_: object) -> None:
        try:
            loop.call_soon_threadsafe(wake)
        except RuntimeError:  # the loop closed meanwhile (the HTTP server stopped)
            pass

    call.add_done_callback(settle)
    try:
        await done
    except asyncio.CancelledError:
        call.cancel()
        raise
    try:
        return call.result()
    except grpc.RpcError as exc:
        raise failure(exc) from None


def failure(exc: grpc.RpcError) -> RpcFailure:
    """The RpcFailure of a failed call, with the BadRequest violations it carried."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    text = exc.details() if hasattr(exc, "details") else str(exc)
    violations: list[tuple[str, str]] = []
    details: list[bytes] = []
    status = rpc_status.from_call(exc) if hasattr(exc, "trailing_metadata") else None
    if status is not None:
        for any_ in status.details:
            details.append(any_.SerializeToString())
            if any_.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                any_.Unpack(bad)
                violations += [(v.field, v.description) for v in bad.field_violations]
    return RpcFailure(code, text or "", violations, details)


__all__ = ["Method", "Rpc", "RpcFailure", "failure", "methods"]
