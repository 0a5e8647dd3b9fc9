"""Server logs: their format (``--log-format text|json``) and the access line of each call.

:func:`configure` sends INFO and above to stderr, in every mode: one process or ``--workers``
(each spawned worker configures itself the same way). :class:`AccessLog` writes the one line per
call of :class:`server.api.interceptors.CallInterceptor` on the ``loyalty.access`` logger:
method, status code, milliseconds, the transaction id when the request has one, and the member
(a short hash of the id unless ``--log-member-ids``); the worker pid comes with every line.

Text::

    2026-11-18 10:00:00,123 INFO loyalty.access pid=4242 method=/loyalty.v1.CheckoutService/Commit
    code=OK ms=1.234 tx=t-1 member=3f1c9a0b7d2e          (one line)

JSON (one object per line)::

    {"ts":"2026-11-18T02:00:00.123+00:00","level":"INFO","logger":"loyalty.access","pid":4242,
     "msg":"method=...","method":"/loyalty.v1.CheckoutService/Commit","code":"OK","ms":1.234,
     "transaction_id":"t-1","member":"3f1c9a0b7d2e"}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from logging.handlers import MemoryHandler
from typing import Any

access = logging.getLogger("loyalty.access")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s pid=%(process)d %(message)s"
MEMBER_HASH_CHARS = 12  # 48 bits of SHA-256: tells members apart in a day's logs
MAX_ID_CHARS = 128  # longer ids are refused by the request checks; logs keep this much

# request class -> (transaction id, member id) of a request of that class
_FIELDS: dict[type, Callable[[Any], tuple[str, str]]] = {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, pid, msg, the access fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "access", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, with the date and time of the current second formatted once: an
    access line per call would otherwise pay ``localtime`` and ``strftime`` every time."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second = -1
        self._text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        second = int(record.created)
        if second != self._second:  # one formatter per handler; a race only recomputes
            self._text, self._second = super().formatTime(record, datefmt)[:-4], second
        return f"{self._text},{int(record.msecs):03d}"


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


_installed: list[logging.Handler] = []  # what configure() put on the root logger


def configure(fmt: str = "text", *, hold: bool = False) -> Callable[[], None]:
    """Log INFO and above to stderr as ``fmt`` (``text`` or ``json``); replaces what an earlier
    call installed. Returns ``release``: with ``hold``, lines wait until it is called (the
    server prints its ``listening on`` line first), except a warning or an error, which lets
    them all out at once."""
    root = logging.getLogger()
    # neither format names the thread or the process by name: a record need not look them up
    logging.logThreads = logging.logMultiprocessing = False
    for old in _installed:
        root.removeHandler(old)
    _installed.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root.setLevel(logging.INFO)
    if not hold:
        root.addHandler(handler)
        _installed.append(handler)
        return lambda: None
    held = MemoryHandler(10_000, flushLevel=logging.WARNING, target=handler)
    root.addHandler(held)
    _installed.append(held)

    def release() -> None:
        if held not in _installed:
            return
        held.flush()
        root.addHandler(handler)
        root.removeHandler(held)
        _installed[_installed.index(held)] = handler
        held.close()  # flushes what came in between

    return release


class AccessLog:
    """The access line of a call. ``member_ids``: log member ids as they are; otherwise the
    first 12 hex digits of their SHA-256, keyed (HMAC) with ``key`` when one is given, so the
    same member has the same hash in every worker and across restarts."""

    __slots__ = ("_key", "member_ids")

    def __init__(self, *, member_ids: bool = False, key: str = ""):
        self.member_ids = member_ids
        self._key = key.encode()

    def member(self, member_id: str) -> str:
        """How the access line names a member."""
        if self.member_ids:
            return member_id[:MAX_ID_CHARS]
        data = member_id.encode()
        if self._key:
            digest = hmac.new(self._key, data, hashlib.sha256).hexdigest()
        else:
            digest = hashlib.sha256(data).hexdigest()
        return digest[:MEMBER_HASH_CHARS]

    def write(self, method: str, code: str, seconds: float, request: Any) -> None:
        get = _FIELDS.get(type(request))
        if get is None:
            get = _FIELDS[type(request)] = _extractor(type(request))
        tx, member_id = get(request)
        ms = round(seconds * 1000, 3)
        fields: dict[str, Any] = {"method": method, "code": code, "ms": ms}
        text, args = "method=%s code=%s ms=%.3f", [method, code, ms]
        if tx:
            fields["transaction_id"] = tx = tx[:MAX_ID_CHARS]
            text += " tx=%s"
            args.append(_token(tx))
        if member_id:
            fields["member"] = member = self.member(member_id)
            text += " member=%s"
            args.append(_token(member))
        if access.isEnabledFor(logging.INFO):  # the record without a caller lookup
            access.handle(
                access.makeRecord(
                    access.name,
                    logging.INFO,
                    "",
                    0,
                    text,
                    tuple(args),
                    None,
                    extra={"access": fields},
                )
            )


def _extractor(cls: type) -> Callable[[Any], tuple[str, str]]:
    """Read the transaction and member ids of a request class, found once from its fields:
    ``transaction_id``, ``member_id``, or the member of a nested ``basket``."""
    fields = getattr(getattr(cls, "DESCRIPTOR", None), "fields_by_name", None) or {}
    has_tx, has_member = "transaction_id" in fields, "member_id" in fields
    basket = fields.get("basket")
    in_basket = (
        basket is not None
        and basket.message_type is not None
        and "member_id" in basket.message_type.fields_by_name
    )

    def get(request: Any) -> tuple[str, str]:
        tx = request.transaction_id if has_tx else ""
        if has_member:
            return tx, request.member_id
        return tx, request.basket.member_id if in_basket else ""

    return get


def _token(value: str) -> str:
    """An id as one token of a text line: as it is when printable without spaces or quotes,
    else quoted (a client's id cannot start a line of its own)."""
    if value.isprintable() and " " not in value and '"' not in value:
        return value
    return json.dumps(value)
