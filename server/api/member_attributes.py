"""Member attributes on the wire (members.proto ``MemberAttribute``): request checks with field
paths, and the response form. Bounds are those of the stores
(:mod:`server.store.member_attributes`): at most 32 per member, names unique ids, strings
1-128 characters, any int64, dates ``YYYY-MM-DD``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from engine.errors import InvalidInput
from engine.pricing.attributes import parse_date
from engine.pricing.types import AttributeValue
from loyalty.v1 import members_pb2
from server.store.member_attributes import MAX_MEMBER_ATTRIBUTES, attribute_problem


def attributes_from_request(
    bad: InvalidInput, attributes: Sequence[members_pb2.MemberAttribute]
) -> dict[str, AttributeValue]:
    """The attributes of an UpsertMember request; each problem is added to ``bad`` under its
    path (``attributes[2].string_value``)."""
    if len(attributes) > MAX_MEMBER_ATTRIBUTES:
        bad.add(
            "attributes",
            f"at most {MAX_MEMBER_ATTRIBUTES} attributes (got {len(attributes)})",
        )
    out: dict[str, AttributeValue] = {}
    first: dict[str, int] = {}
    for i, a in enumerate(attributes):
        path = f"attributes[{i}]"
        kind = a.WhichOneof("value")
        value: AttributeValue | None
        if kind is None:
            bad.add(path, "a value is required: string_value, number_value or date_value")
            value = None
        elif kind == "date_value":
            value = parse_date(a.date_value)
            if value is None:
                bad.add(
                    f"{path}.date_value", f"must be a date YYYY-MM-DD (got {a.date_value[:80]!r})"
                )
        else:
            value = getattr(a, kind)
        if value is not None and (problem := attribute_problem("x", value)) is not None:
            bad.add(f"{path}.{kind}", problem[1])
            value = None
        if not a.name:
            bad.add(f"{path}.name", "is required")
        elif (problem := attribute_problem(a.name, "x")) is not None:
            bad.add(f"{path}.name", problem[1])
        elif a.name in first:
            bad.add(f"{path}.name", f"repeats attributes[{first[a.name]}].name {a.name!r}")
        elif value is not None:
            first[a.name] = i
            out[a.name] = value
    return out


def attribute_messages(
    attributes: Mapping[str, AttributeValue],
) -> list[members_pb2.MemberAttribute]:
    """The response form, sorted by name."""
    out = []
    for name in sorted(attributes):
        value = attributes[name]
        if isinstance(value, str):
            out.append(members_pb2.MemberAttribute(name=name, string_value=value))
        elif isinstance(value, date):
            out.append(members_pb2.MemberAttribute(name=name, date_value=value.isoformat()))
        else:
            out.append(members_pb2.MemberAttribute(name=name, number_value=value))
    return out
