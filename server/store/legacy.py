"""Reading what the stores kept before the protobuf forms (:mod:`server.store.stored`).

Version 0.2 kept outcomes and ledger bodies as JSON (Redis: an outcome deflated and
base64-encoded), and versions after it as msgpack (Redis: an outcome deflated): stores written
then are read as they are, never rewritten. Nothing is written in these forms any more.

:func:`is_legacy` tells the forms apart from a protobuf record by their first byte (a JSON
object ``{``, a zlib stream ``0x78``, a msgpack map ``0x80``-``0x8f``, ``0xde``, ``0xdf``;
every record of ``ledger.proto`` starts with the tag of one of its first two fields).
:func:`plain` turns the bytes into plain values and :func:`from_plain` into a record type,
each type's decoder built once from its hints (a closure per field); line and offer-use maps
become the ``ledger.proto`` messages, whose fields kept the old names.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import types
import typing
import zlib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any

import msgspec
from google.protobuf.message import Message

_MSGPACK_MAP = frozenset((*range(0x80, 0x90), 0xDE, 0xDF))


def is_legacy(data: bytes | str) -> bool:
    """Whether ``data`` is in a form kept before the protobuf records."""
    if isinstance(data, str):
        return True
    first = data[:1]
    return first in (b"{", b"\x78") or (bool(first) and first[0] in _MSGPACK_MAP)


def plain(data: bytes | str) -> Any:
    """The plain values of a legacy form: JSON text, deflated JSON in base64 (0.2's Redis
    outcomes), msgpack, or deflated msgpack."""
    if isinstance(data, str):
        return json.loads(data) if data[:1] == "{" else unpack(data)
    if data[:1] == b"\x78":
        data = zlib.decompress(data)
    return json.loads(data) if data[:1] == b"{" else msgspec.msgpack.decode(data)


def unpack(text: str) -> Any:
    """The JSON, deflated and base64-encoded, that 0.2's Redis documents kept outcomes in."""
    return json.loads(zlib.decompress(base64.b64decode(text)))


def _identity(data: Any) -> Any:
    return data


def _datetime(data: Any) -> datetime:
    # JSON kept ISO 8601 text; msgpack its own timestamps, decoded as datetimes
    return data if isinstance(data, datetime) else datetime.fromisoformat(data)


def _message(cls: type[Message]) -> Callable[[Any], Message]:
    names = frozenset(cls.DESCRIPTOR.fields_by_name)
    return lambda data: cls(**{k: v for k, v in data.items() if k in names})


@cache
def _decoder(tp: Any) -> Callable[[Any], Any]:
    """A function turning the plain form of ``tp`` back into a ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        dec = _decoder(inner)
        return lambda data: None if data is None else dec(data)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            if item is _identity:
                return tuple
            return lambda data: tuple(item(x) for x in data)
        decs = [_decoder(a) for a in args]
        return lambda data: tuple(d(x) for d, x in zip(decs, data, strict=True))
    if origin is frozenset:
        item = _decoder(typing.get_args(tp)[0])
        return lambda data: frozenset(item(x) for x in data)
    if origin in (dict, Mapping, typing.Mapping) or tp is dict:
        args = typing.get_args(tp) or (str, Any)
        kd, vd = _decoder(args[0]), _decoder(args[1])
        return lambda data: {kd(k): vd(v) for k, v in data.items()}
    if isinstance(tp, type):
        if issubclass(tp, Message):
            return _message(tp)
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(tp)]
            cls: Any = tp

            def decode(data: Any) -> Any:
                return cls(**{name: dec(data[name]) for name, dec in fields if name in data})

            return decode
        if issubclass(tp, Enum):
            return tp
        if tp is datetime:
            return _datetime
        if tp is date:
            return date.fromisoformat
    return _identity


def from_plain(tp: Any, data: Any) -> Any:
    """A ``tp`` (a record dataclass, a ``ledger.proto`` message, ...) from its plain values."""
    return _decoder(tp)(data)


__all__ = ["from_plain", "is_legacy", "plain", "unpack"]
