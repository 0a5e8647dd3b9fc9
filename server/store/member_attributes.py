"""How both stores keep a member's typed attributes (members.proto ``MemberAttribute``).

One stored form for both: a map of name to ``[tag, value]``, where the tag ``"s"`` holds a
string, ``"n"`` a whole number and ``"d"`` a date as ``"YYYY-MM-DD"``. SQLite keeps it as JSON
in ``members.attributes``, Redis in the member document's ``a`` (msgpack). Names are sorted, so
equal attributes store equal bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from engine.errors import InvalidInput
from engine.pricing.attributes import value_type
from engine.pricing.checker import ID_PATTERN
from engine.pricing.constants import MAX_ID_CHARS
from engine.pricing.types import AttributeValue

StoredAttributes = dict[str, list[Any]]  # name -> [tag, value]
MAX_MEMBER_ATTRIBUTES = 32
INT64 = (-(2**63), 2**63 - 1)


def attribute_problem(name: str, value: AttributeValue) -> tuple[str, str] | None:
    """The first problem of one attribute as ``(part, message)`` (part ``name`` or ``value``),
    or None: names are ids, strings 1-128 characters, numbers int64, dates dates."""
    if not ID_PATTERN.fullmatch(name):
        return "name", f"must be 1-64 of A-Z a-z 0-9 . _ : - (got {name[:80]!r})"
    kind = value_type(value)
    if kind == 0:
        return "value", f"must be a string, a whole number or a date (got {type(value).__name__})"
    if isinstance(value, str) and not 1 <= len(value) <= MAX_ID_CHARS:
        return "value", f"must be 1-{MAX_ID_CHARS} characters (got {len(value):,})"
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        return "value", "must fit in int64"
    return None


def check_attributes(attributes: Mapping[str, AttributeValue]) -> None:
    """What every store checks before it writes a profile's attributes (the API names the
    request's fields first, server.api.member_attributes)."""
    if len(attributes) > MAX_MEMBER_ATTRIBUTES:
        raise InvalidInput.at(
            "attributes", f"at most {MAX_MEMBER_ATTRIBUTES} (got {len(attributes)})"
        )
    for name, value in attributes.items():
        problem = attribute_problem(name, value)
        if problem is not None:
            raise InvalidInput.at(f"attributes[{name[:80]!r}].{problem[0]}", problem[1])


def dump_attributes(attributes: Mapping[str, AttributeValue]) -> StoredAttributes:
    """The stored form of ``attributes`` (strings, ints and dates only)."""
    out: StoredAttributes = {}
    for name in sorted(attributes):
        value = attributes[name]
        if isinstance(value, str):
            out[name] = ["s", value]
        elif isinstance(value, date):
            out[name] = ["d", value.isoformat()]
        else:
            out[name] = ["n", int(value)]
    return out


def load_attributes(stored: Mapping[str, Sequence[Any]] | None) -> dict[str, AttributeValue]:
    """The attributes of their stored form (None or empty = none)."""
    out: dict[str, AttributeValue] = {}
    for name, (tag, value) in sorted((stored or {}).items()):
        if tag == "d":
            out[name] = date.fromisoformat(value)
        elif tag == "n":
            out[name] = int(value)
        else:
            out[name] = str(value)
    return out
