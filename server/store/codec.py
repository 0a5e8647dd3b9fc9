"""Stored forms of the store's frozen dataclasses (outcomes, ledger entries, pricing results).

Stored outcomes are returned unchanged on a retry, so encoding then decoding must give an equal
object. Two forms:

- msgpack (:func:`encode`, :func:`decode`), what the stores write: msgspec encodes the
  dataclasses, datetimes and enums natively and decodes them typed, in C, about 10x faster
  than the JSON below (a 20-line commit's outcome: ~60 µs to encode, not ~600 µs);
- JSON (:func:`dumps`, :func:`loads`, :func:`to_plain`, :func:`from_plain`), the form stored
  before, still read (:func:`decode` takes either) and still written inside a few documents
  that are not on a commit's path. Datetimes are ISO 8601 in UTC; each type's encoder and
  decoder is built once from its hints (a closure per field).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")
_PLAIN = (str, int, float, bool, type(None))


@cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return None


def to_plain(obj: Any) -> Any:
    if isinstance(obj, _PLAIN):
        return obj
    if _field_names(type(obj)) is not None:  # type: ignore[arg-type]
        return _encoder(type(obj))(obj)  # type: ignore[arg-type]
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.astimezone(UTC).isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, frozenset | set):
        return sorted(to_plain(x) for x in obj)
    if isinstance(obj, tuple | list):
        return [to_plain(x) for x in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj


def _identity(data: Any) -> Any:
    return data


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


@cache
def _encoder(tp: Any) -> Callable[[Any], Any]:
    """A function turning a ``tp`` into its plain form (the inverse of :func:`_decoder`)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        enc = _encoder(inner)
        return _identity if enc is _identity else (lambda v: None if v is None else enc(v))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _encoder(args[0])
            if item is _identity:
                return list
            return lambda v: [item(x) for x in v]
        return to_plain
    if isinstance(tp, type):
        if tp in _PLAIN:
            return _identity
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            fields = [(f.name, _encoder(hints[f.name])) for f in dataclasses.fields(tp)]
            plain = [name for name, enc in fields if enc is _identity]
            other = [(name, enc) for name, enc in fields if enc is not _identity]

            def encode(obj: Any) -> dict[str, Any]:
                out = {name: getattr(obj, name) for name in plain}
                for name, enc in other:
                    out[name] = enc(getattr(obj, name))
                return out

            return encode
        if tp is datetime:
            return _iso
    return to_plain  # enums, dates, sets, mappings, Any: looked at value by value


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
            return datetime.fromisoformat
        if tp is date:
            return date.fromisoformat
    return _identity


def from_plain(tp: Any, data: Any) -> Any:
    return _decoder(tp)(data)


def dumps(obj: Any) -> str:
    return json.dumps(to_plain(obj), separators=(",", ":"), sort_keys=True)


def loads(cls: type[T], text: str | bytes) -> T:
    value: T = from_plain(cls, json.loads(text))
    return value


_MSGPACK = msgspec.msgpack.Encoder()


_DECODERS: dict[type, msgspec.msgpack.Decoder[Any]] = {}


def encode(obj: Any) -> bytes:
    """The msgpack form of a stored dataclass (a map per dataclass, by field name, so fields
    added later with defaults still decode)."""
    return _MSGPACK.encode(obj)


def decode(cls: type[T], data: str | bytes) -> T:
    """A stored ``cls`` from its msgpack form, or from the JSON stored before (text, or bytes
    that start with ``{``: a msgpack map never does)."""
    if isinstance(data, str) or data[:1] == b"{":
        return loads(cls, data)
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = msgspec.msgpack.Decoder(cls)
    value: T = decoder.decode(data)
    return value
