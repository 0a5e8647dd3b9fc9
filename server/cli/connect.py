"""What every client command shares: the channel (plaintext or TLS), the API key, the output
(a human summary, or ``--json``) and bounded retries of idempotent calls.

Each connection setting is a flag, else an environment variable, else a default; a flag given
on the command line always wins, even an empty one (``--api-key ''`` sends no key,
``--tls-ca ''`` ignores ``LOYALTY_TLS_CA``):

    --target HOST:PORT   $LOYALTY_TARGET    127.0.0.1:50051
    --api-key KEY        $LOYALTY_API_KEY   none (sent as x-api-key metadata)
    --tls-ca PEM         $LOYALTY_TLS_CA    plaintext; with a CA: TLS trusting that root
    --tls                                   TLS trusting the system's roots
    --tls-server-name NAME                  the name the certificate must carry, if the
                                            target's host is not it (e.g. an IP address)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from engine.errors import InvalidInput

DEFAULT_TARGET = "127.0.0.1:50051"
TARGET_ENV, API_KEY_ENV, TLS_CA_ENV = "LOYALTY_TARGET", "LOYALTY_API_KEY", "LOYALTY_TLS_CA"
# failures after which the same idempotent request may be sent again
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)
BACKOFF_S, BACKOFF_CAP_S = 0.25, 2.0

T = TypeVar("T")
_sleep: Callable[[float], None] = time.sleep  # tests replace it


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0 (got {text})")
    return value


def add_connection_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags of every command that calls a server."""
    parser.add_argument(
        "--target", default=None, help=f"server host:port (${TARGET_ENV}, default {DEFAULT_TARGET})"
    )
    parser.add_argument(
        "--api-key", default=None, help=f"x-api-key (${API_KEY_ENV}; required off loopback)"
    )
    parser.add_argument(
        "--timeout", type=_positive, default=30.0, help="deadline of each call (and retry), seconds"
    )
    parser.add_argument(
        "--tls-ca", default=None, metavar="PEM", help=f"TLS trusting this root CA (${TLS_CA_ENV})"
    )
    parser.add_argument("--tls", action="store_true", help="TLS trusting the system's root CAs")
    parser.add_argument(
        "--tls-server-name",
        "--tls-name",
        default=None,
        metavar="NAME",
        help="host name the server certificate must carry, if not the target's",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the response message as JSON (proto names)"
    )
    return parser


def _setting(flag: str | None, env: str) -> str:
    return flag if flag is not None else os.environ.get(env, "")


def target(args: argparse.Namespace) -> str:
    return str(args.target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET)


def channel(args: argparse.Namespace) -> grpc.Channel:
    """Plaintext, or TLS with ``--tls-ca`` (that root) or ``--tls`` (the system's roots)."""
    options: list[tuple[str, str]] = []
    if args.tls_server_name:
        options.append(("grpc.ssl_target_name_override", args.tls_server_name))
    ca = _setting(args.tls_ca, TLS_CA_ENV)
    if ca:
        where = "--tls-ca" if args.tls_ca else TLS_CA_ENV
        try:
            roots = Path(ca).read_bytes()
        except OSError as exc:
            raise InvalidInput.at(where, f"{ca}: {exc.strerror}") from None
        if b"-----BEGIN CERTIFICATE-----" not in roots:
            raise InvalidInput.at(where, f"{ca}: not a PEM certificate")
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    elif args.tls:
        credentials = grpc.ssl_channel_credentials()
    else:
        if args.tls_server_name:
            raise InvalidInput.at("--tls-server-name", "needs --tls or --tls-ca")
        return grpc.insecure_channel(target(args))
    return grpc.secure_channel(target(args), credentials, options=options)


def metadata(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    key = _setting(args.api_key, API_KEY_ENV)
    return (("x-api-key", key),) if key else ()


def to_json(message: Message, *, every_field: bool = True) -> str:
    """The message in the proto3 JSON mapping with proto field names; ``every_field`` also
    prints zeros, false and empty lists, so a script never has to guess a default."""
    return json.dumps(
        json_format.MessageToDict(
            message,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=every_field,
        ),
        indent=2,
        ensure_ascii=False,
    )


def emit(args: argparse.Namespace, message: Message, summary: Iterable[str]) -> None:
    """``--json``: the whole response; else the human summary lines."""
    if args.json:
        print(to_json(message))
    else:
        for line in summary:
            print(line)


def with_retries(args: argparse.Namespace, call: Callable[[grpc.Channel], T], what: str) -> T:
    """``call(channel)``, sent again up to ``args.retries`` times after a retryable failure,
    on a fresh channel each time (a broken one would fail fast until it reconnects), with
    exponential backoff and each attempt under its own ``--timeout``. For idempotent calls
    only: the server must answer a repeat with the stored result."""
    retries = max(0, int(getattr(args, "retries", 0)))
    for attempt in range(retries + 1):
        try:
            with channel(args) as ch:
                return call(ch)
        except grpc.RpcError as exc:
            code = exc.code()
            if code not in RETRYABLE or attempt == retries:
                raise
            delay = min(BACKOFF_CAP_S, BACKOFF_S * 2**attempt)
            print(
                f"{what}: {code.name}, retry {attempt + 1} of {retries} in {delay:.2f} s",
                file=sys.stderr,
            )
            _sleep(delay)
    raise AssertionError("unreachable")


def money(minor: int) -> str:
    return f"{minor / 100:,.2f}"
