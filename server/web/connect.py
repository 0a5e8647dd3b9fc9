"""The JSON API: every RPC of the three services over the Connect protocol, unary
(https://connectrpc.com/docs/protocol), served by connect-python's ASGI application.

``POST /loyalty.v1.CheckoutService/Evaluate`` with ``Content-Type: application/json`` (the
proto3 JSON mapping: lowerCamel or proto field names in, lowerCamel out, 64-bit integers as
strings, fields at their default left out) or ``application/proto`` (binary) answers 200 with
the response in the same encoding; an error is the Connect error JSON
``{"code": "invalid_argument", "message": ..., "details": [{"type": "google.rpc.BadRequest",
"value": ..., "debug": {...}}]}`` with the Connect HTTP status (invalid_argument,
failed_precondition, out_of_range 400; unauthenticated 401; permission_denied 403; not_found
404; already_exists, aborted 409; resource_exhausted 429; canceled 499; unimplemented 501;
unavailable 503; deadline_exceeded 504; others 500). The key comes from ``x-api-key`` or
``Authorization: Bearer KEY``; ``Connect-Timeout-Ms`` is the gRPC deadline.

Each request becomes one gRPC call to this process's own server (:class:`server.web.rpc.Rpc`),
so the keys and roles, the checks, the errors and their field violations (the same paths as
over gRPC: ``lines[0].quantity``), the access line and the metrics are the gRPC ones.

Why connect-python (0.9) and not an adapter of our own: it is the Connect project's Python
implementation, checked against the Connect conformance suite, and serves our services without
its code generator, from the descriptors (:func:`endpoints`), as an ASGI app on uvicorn. Around
it, this module adds what 0.9 lacks for a server facing the network:

- a request that does not decode (malformed JSON, an unknown JSON field, bytes that are not the
  message, a broken gzip body) is ``invalid_argument`` with a violation on ``request``, as over
  gRPC (:mod:`server.api.edge`); connect-python answers ``unknown`` (HTTP 500). Unknown JSON
  fields are refused, as the protobuf JSON mapping says parsers should by default (connect-go
  discards them): a misspelt field in a hand-written request would otherwise be priced
  silently without it;
- the body limit (``Settings.max_message_bytes``) is enforced while reading and before
  gunzipping (connect-python reads the whole body, and inflates it, before it checks);
- an unknown procedure is 404 with a Connect ``unimplemented`` body, not an empty 404;
- only the unary Connect content types are served (gRPC has its own port; gRPC-Web and the
  streaming types are 415), so every answer here is one this module has tested.

The override of ``_read_post_request``/``_read_get_request`` reaches into connect-python's
internals: pyproject pins ``connect-python<0.10`` and tests/test_web_api.py checks the result.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2

from server.web.rpc import PACKAGE, Rpc, RpcFailure

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

FIELD = "request"  # the field violation of a request that does not decode (as over gRPC)
# what may be POSTed: the unary Connect types (JSON may say charset=utf-8, nothing else)
CONTENT_TYPES = ("application/json", "application/proto")
ACCEPT_POST = ", ".join(CONTENT_TYPES)
_IDEMPOTENCY = {
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS: IdempotencyLevel.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT: IdempotencyLevel.IDEMPOTENT,
}


class ConnectApi:
    """The ASGI app of every ``/loyalty.v1.<Service>/<Method>``: the checks above, then
    connect-python. ``max_bytes``: the largest request body, as sent and once decompressed."""

    def __init__(self, rpc: Rpc, max_bytes: int):
        self.max_bytes = max_bytes
        self.procedures = frozenset(f"/{path}" for path in rpc.methods)
        self.app = _Application(
            service=rpc,
            endpoints=endpoints,
            read_max_bytes=max_bytes,
            compressions=[BoundedGzip(max_bytes)],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] not in self.procedures:
            await _send_error(send, 404, Code.UNIMPLEMENTED, f"no procedure {scope['path']}")
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        # as connect-python reads them: values in UTF-8 (one that is not is left out: a key
        # that is not text is no key), the content type by its canonical name
        kept = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type" and _utf8(v)]
        if scope["method"] == "POST":
            content_type = media_type(headers.get("content-type", ""))
            if content_type is None:
                await _send(send, 415, b"", [(b"accept-post", ACCEPT_POST.encode())])
                return
            kept.append((b"content-type", content_type.encode()))
        scope = {**scope, "headers": kept}
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_bytes:
            message = f"request body larger than the limit of {self.max_bytes} bytes"
            await _send_error(send, 429, Code.RESOURCE_EXHAUSTED, message)
            return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that refuses a body (chunked, or longer than it said) past the limit
        once that many bytes came, before connect-python has read it all."""
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise ConnectError(
                    Code.RESOURCE_EXHAUSTED,
                    f"request body larger than the limit of {self.max_bytes} bytes",
                )
            return message

        return limited


class _Application(ConnectASGIApplication[Rpc]):
    """connect-python's app, a request that does not decode answered ``invalid_argument``."""

    @property
    def path(self) -> str:
        return f"/{PACKAGE}."

    async def _read_post_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._read_post_request(*args, **kwargs)
        except (json_format.ParseError, DecodeError, UnicodeDecodeError, zlib.error) as exc:
            raise undecodable(exc) from None

    async def _read_get_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._read_get_request(*args, **kwargs)
        except (json_format.ParseError, DecodeError, UnicodeDecodeError, zlib.error) as exc:
            raise undecodable(exc) from None


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def media_type(content_type: str) -> str | None:
    """``application/json`` or ``application/proto`` for a Content-Type this API serves (any
    case and spacing, JSON with at most ``charset=utf-8``), else None."""
    media, *params = [p.strip().lower() for p in content_type.split(";")]
    if media not in CONTENT_TYPES:
        return None
    allowed = ([], ["charset=utf-8"]) if media == "application/json" else ([],)
    return media if [p.replace(" ", "") for p in params if p] in allowed else None


def undecodable(exc: Exception) -> ConnectError:
    """``invalid_argument`` with a BadRequest violation on ``request``, as over gRPC."""
    text = str(exc) or type(exc).__name__
    bad = error_details_pb2.BadRequest()
    bad.field_violations.add(field=FIELD, description=text)
    return ConnectError(Code.INVALID_ARGUMENT, f"{FIELD}: {text}", [bad])


def endpoints(rpc: Rpc) -> dict[str, Any]:
    """An endpoint per RPC, ``/loyalty.v1.<Service>/<Method>`` -> one call through ``rpc``,
    built from the descriptors (no generated code). GET is allowed for a method whose
    ``.proto`` says ``option idempotency_level = NO_SIDE_EFFECTS``."""
    pool = descriptor_pool.Default()
    out: dict[str, Any] = {}
    for path, m in rpc.methods.items():
        options = pool.FindMethodByName(f"{PACKAGE}.{m.service}.{m.name}").GetOptions()
        info = MethodInfo(
            name=m.name,
            service_name=f"{PACKAGE}.{m.service}",
            input=m.request,
            output=m.response,
            idempotency_level=_IDEMPOTENCY.get(options.idempotency_level, IdempotencyLevel.UNKNOWN),
        )
        out[f"/{path}"] = Endpoint.unary(method=info, function=_handler(rpc, path))
    return out


def _handler(
    rpc: Rpc, path: str
) -> Callable[[Message, RequestContext[Any, Any]], Awaitable[Message]]:
    async def handle(request: Message, ctx: RequestContext[Any, Any]) -> Message:
        headers = ctx.request_headers()
        key = headers.get("x-api-key") or bearer(headers.get("authorization"))
        left_ms = ctx.timeout_ms()
        if left_ms is not None and left_ms <= 0:
            raise ConnectError(Code.DEADLINE_EXCEEDED, "deadline passed before the call")
        timeout_s = None if left_ms is None else left_ms / 1000
        try:
            return await rpc.acall(path, request, key, timeout_s)
        except RpcFailure as exc:
            raise connect_error(exc) from None

    return handle


def bearer(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer TOKEN``, else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def connect_error(exc: RpcFailure) -> ConnectError:
    """The Connect error of a failed gRPC call: its code, message and details as they were."""
    name = exc.code.name.lower()
    try:
        code = Code.CANCELED if name == "cancelled" else Code(name)
    except ValueError:  # OK is no error; nothing else is left over
        code = Code.UNKNOWN
    details = [any_pb2.Any.FromString(packed) for packed in exc.details]
    return ConnectError(code, exc.message, details)


class BoundedGzip:
    """gzip for connect-python (request and response bodies) that refuses to inflate a
    request past ``limit`` bytes: a 4 MiB body could otherwise become gigabytes."""

    def __init__(self, limit: int, level: int = 6):
        self.limit = limit
        self.level = level

    def name(self) -> str:
        return "gzip"

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        packer = zlib.compressobj(self.level, zlib.DEFLATED, 31)  # 31: with a gzip header
        return packer.compress(data) + packer.flush()

    def decompress(self, data: bytes | bytearray | memoryview) -> bytes:
        inflater = zlib.decompressobj(31)
        out = inflater.decompress(data, self.limit + 1)
        if len(out) > self.limit or inflater.unconsumed_tail:
            raise ConnectError(
                Code.RESOURCE_EXHAUSTED,
                f"request larger than the limit of {self.limit} bytes once decompressed",
            )
        if not inflater.eof:
            raise zlib.error("gzip body ends before its end")
        return out


async def _send_error(send: Send, status: int, code: Code, message: str) -> None:
    body = json.dumps({"code": code.value, "message": message}).encode()
    await _send(send, status, body, [(b"content-type", b"application/json")])


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["ConnectApi", "bearer", "connect_error", "endpoints", "media_type", "undecodable"]
