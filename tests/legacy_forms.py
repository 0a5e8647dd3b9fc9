"""Outcomes and ledger entries in the forms versions before the protobuf records kept them:
msgpack of the record dataclasses (0.3 before the records) and JSON (0.2), for the tests that
read stores written then (:mod:`server.store.legacy`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import msgspec
from google.protobuf.message import Message

from loyalty.v1.ledger_pb2 import LedgerEntry
from server.store.snapshot import from_us
from server.store.stored import entry_at, entry_lane_at


def plain(obj: Any, *, iso: bool) -> Any:
    """``obj`` as the old forms held it: dataclasses and messages as maps by field name (every
    field), times as ISO 8601 text (``iso``, JSON) or as datetimes (msgpack timestamps)."""
    if isinstance(obj, Message):
        out = {}
        for f in obj.DESCRIPTOR.fields:
            v = getattr(obj, f.name)
            if f.is_repeated:
                out[f.name] = [plain(x, iso=iso) for x in v]
            else:
                out[f.name] = plain(v, iso=iso)
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: plain(getattr(obj, f.name), iso=iso)
            for f in dataclasses.fields(obj)
            if f.name not in ("response", "repeated")  # neither was ever stored
        }
    if isinstance(obj, datetime):
        return obj.astimezone(UTC).isoformat() if iso else obj
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, frozenset | set):
        return sorted(plain(x, iso=iso) for x in obj)
    if isinstance(obj, tuple | list):
        return [plain(x, iso=iso) for x in obj]
    if isinstance(obj, Mapping):
        return {str(k): plain(v, iso=iso) for k, v in obj.items()}
    return obj


def old_entry(entry: LedgerEntry, *, iso: bool) -> dict[str, Any]:
    """A ledger entry as the LedgerEntry dataclass of those versions (seq 0)."""
    p = plain(entry, iso=iso)
    for name in ("at_us", "recorded_at_us", "lane_at_us"):
        del p[name]
    recorded = from_us(entry.recorded_at_us) if entry.HasField("recorded_at_us") else None
    times = {"at": entry_at(entry), "recorded_at": recorded, "lane_at": entry_lane_at(entry)}
    p.update({k: plain(v, iso=iso) for k, v in times.items()})
    p["seq"], p["member_id"] = 0, entry.member_id or None
    return p


def as_msgpack(obj: Any) -> bytes:
    """The msgpack form (a record dataclass, or an old entry map from :func:`old_entry`)."""
    return msgspec.msgpack.encode(obj if isinstance(obj, dict) else plain(obj, iso=False))


def as_json(obj: Any) -> str:
    """The JSON form of 0.2."""
    value = obj if isinstance(obj, dict) else plain(obj, iso=True)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
