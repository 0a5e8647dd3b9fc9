"""The gRPC edge: every service is registered with handlers that take the request's bytes and
parse them here, so bytes that are not a request are answered ``INVALID_ARGUMENT`` with a
field violation on ``request`` (the decode error as its description), never ``INTERNAL``.

Why not grpcio's own deserializer: when it fails, grpcio answers ``INTERNAL`` and keeps
~14-19 KB of the call for good; 5,000 undecodable calls to Health/Check (open to all, no API
key) grew a server by 68 MB. With the identity deserializer grpcio never fails to deserialize.

:func:`register` builds a service's handlers from its descriptor (every method, its streaming
kind, its request and response classes), so a method added to a ``.proto`` is served without
a table to keep in step. Unary calls are :class:`Unary`: the
:class:`~server.api.interceptors.CallInterceptor` unpacks it and parses inside its own error
mapping, so the access line and the metrics see the refused call like any other; streams
(Health/Watch, reflection) abort themselves.

A servicer method marked :func:`raw` gets the bytes unparsed, for a method that decodes faster
than a message would. Any method may answer a message or bytes, sent as they are (a stored
answer, or one encoded faster than a message would be).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeAlias, TypeVar

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from engine.errors import InvalidInput
from server.api.errors import to_status

F = TypeVar("F", bound=Callable[..., Any])
Parse: TypeAlias = Callable[[bytes], Message]
Metadata: TypeAlias = Sequence[tuple[str, str | bytes]]

FIELD = "request"  # the field violation of undecodable bytes
_RAW = "__loyalty_raw__"


def raw(method: F) -> F:
    """Mark a servicer method as taking the request's bytes (``request: bytes``) unparsed."""
    setattr(method, _RAW, True)
    return method


def is_raw(method: Callable[..., Any]) -> bool:
    """Whether ``method`` (a function or a bound method) was marked :func:`raw`."""
    return getattr(method, _RAW, False) is True


def parser(request_class: type[Message]) -> Parse:
    """``request_class.FromString`` that raises :class:`InvalidInput` on ``request``."""
    from_string = request_class.FromString

    def parse(data: bytes) -> Message:
        try:
            return from_string(data)
        except DecodeError as exc:
            raise InvalidInput.at(FIELD, str(exc)) from None

    return parse


def read_quietly(data: bytes, request_class: type[Message] | None) -> Message | None:
    """The request of ``data``, or None when there is no class or the bytes do not decode: for
    the access line of a raw method, which must not fail a call that already answered."""
    if request_class is None:
        return None
    try:
        return request_class.FromString(data)
    except DecodeError:
        return None


def refuse(context: grpc.ServicerContext, status: grpc.Status, metadata: Metadata = ()) -> NoReturn:
    """End the call with ``status`` (its code, message and details), plus ``metadata``.

    ``abort`` rather than ``abort_with_status``: the latter replaces the trailing metadata
    (``metadata`` would be lost) and bypasses a tracing context's ``abort``, so the server
    span would not get the code."""
    context.set_trailing_metadata((*status.trailing_metadata, *metadata))
    context.abort(status.code, status.details)


def _serialize_either(response: Message | bytes) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


class Unary:
    """The behaviour of a unary method: bytes in, ``parse`` (None for a raw method), then
    ``method``. Called by grpcio when nothing unpacks it; the call interceptor calls
    ``parse`` and ``method`` itself, and uses ``request_class`` for a raw method's log."""

    __slots__ = ("method", "parse", "request_class")

    def __init__(
        self, method: Callable[..., Any], request_class: type[Message], parse: Parse | None
    ):
        self.method = method
        self.request_class = request_class
        self.parse = parse

    def __call__(self, data: bytes, context: grpc.ServicerContext) -> Any:
        request: Message | bytes = data
        if self.parse is not None:
            try:
                request = self.parse(data)
            except InvalidInput as exc:
                refuse(context, to_status(exc))
        return self.method(request, context)


def _parse_or_refuse(parse: Parse | None, data: bytes, context: grpc.ServicerContext) -> Any:
    if parse is None:
        return data
    try:
        return parse(data)
    except InvalidInput as exc:
        refuse(context, to_status(exc))


def method_handler(
    method: MethodDescriptor, behaviour: Callable[..., Any]
) -> grpc.RpcMethodHandler[Any, Any]:
    """The handler of one method of a descriptor, calling ``behaviour`` (the servicer's)."""
    request_class = GetMessageClass(method.input_type)
    serialize = _serialize_either
    parse = None if is_raw(behaviour) else parser(request_class)
    if not method.client_streaming:
        if not method.server_streaming:
            return grpc.unary_unary_rpc_method_handler(
                Unary(behaviour, request_class, parse), response_serializer=serialize
            )

        def unary_stream(data: bytes, context: grpc.ServicerContext) -> Any:
            return behaviour(_parse_or_refuse(parse, data, context), context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, response_serializer=serialize)

    def requests(stream: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
        for data in stream:
            yield _parse_or_refuse(parse, data, context)

    def streaming(stream: Iterator[bytes], context: grpc.ServicerContext) -> Any:
        return behaviour(requests(stream, context), context)

    factory = (
        grpc.stream_stream_rpc_method_handler
        if method.server_streaming
        else grpc.stream_unary_rpc_method_handler
    )
    return factory(streaming, response_serializer=serialize)


def handlers(
    service: ServiceDescriptor, servicer: object
) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """Method name -> handler for every method of ``service``, served by ``servicer``."""
    return {m.name: method_handler(m, getattr(servicer, m.name)) for m in service.methods}


def register(server: grpc.Server, service: ServiceDescriptor, servicer: object) -> None:
    """Serve ``service`` with ``servicer`` on ``server`` (as the generated
    ``add_*_to_server`` does: a generic handler and registered methods, the faster path)."""
    table = handlers(service, servicer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, table),)
    )
    server.add_registered_method_handlers(service.full_name, table)
