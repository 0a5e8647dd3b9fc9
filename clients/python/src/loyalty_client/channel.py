"""A channel to the loyalty engine: plaintext or TLS (a private root CA or the system's roots),
with the API key sent as ``x-api-key`` metadata on every call made through it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

API_KEY_HEADER = "x-api-key"

#: Reconnect quickly after the server went away (a restart, a deploy): gRPC's own default
#: waits up to 120 s between reconnection attempts, longer than a checkout retries.
DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def open_channel(
    target: str,
    *,
    api_key: str | None = None,
    tls: bool = False,
    root_certificates: bytes | str | os.PathLike[str] | None = None,
    server_name: str | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel to ``target`` (``host:port``).

    - ``root_certificates``: TLS trusting this root CA: PEM bytes, or the path of a PEM file.
    - ``tls=True`` without it: TLS trusting the system's roots.
    - ``credentials``: your own ``grpc.ChannelCredentials`` (e.g. mutual TLS) instead.
    - ``server_name``: the name the server certificate must carry when the target's host is
      not it (an IP address, a tunnel).
    - ``api_key``: sent as ``x-api-key`` on every call through this channel, whatever the stub.

    Without any of the TLS options the channel is plaintext: loopback and tests only.
    ``options`` are gRPC channel arguments, added after (so overriding) ``DEFAULT_OPTIONS``.
    """
    opts = list(DEFAULT_OPTIONS) + list(options)
    if root_certificates is not None:
        if credentials is not None:
            raise ValueError("give root_certificates or credentials, not both")
        credentials = grpc.ssl_channel_credentials(root_certificates=_pem(root_certificates))
    elif tls and credentials is None:
        credentials = grpc.ssl_channel_credentials()
    if credentials is None:
        if server_name:
            raise ValueError("server_name needs TLS (tls=True or root_certificates)")
        channel = grpc.insecure_channel(target, options=opts)
    else:
        if server_name:
            opts.append(("grpc.ssl_target_name_override", server_name))
        channel = grpc.secure_channel(target, credentials, options=opts)
    if api_key:
        channel = grpc.intercept_channel(channel, ApiKeyInterceptor(api_key))
    return channel


def _pem(value: bytes | str | os.PathLike[str]) -> bytes:
    data = value if isinstance(value, bytes) else Path(os.fspath(value)).read_bytes()
    if b"-----BEGIN CERTIFICATE-----" not in data:
        where = "root_certificates" if isinstance(value, bytes) else os.fspath(value)
        raise ValueError(f"{where}: not a PEM certificate")
    return data


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class ApiKeyInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``x-api-key: <key>`` to every call's metadata (keeping what the call had)."""

    def __init__(self, api_key: str) -> None:
        self._pair = (API_KEY_HEADER, api_key)

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        metadata = [m for m in (details.metadata or ()) if m[0] != API_KEY_HEADER]
        return _CallDetails(
            details.method,
            details.timeout,
            (*metadata, self._pair),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return continuation(self._details(client_call_details), request_iterator)
