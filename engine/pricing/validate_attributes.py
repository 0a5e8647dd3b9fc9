"""Validation of member attributes in a RuleSet: the declarations (``member_attributes``) and
every offer's ``conditions.attributes``, as :class:`Violation` rows named by their path in the
rule file. Called by :func:`engine.pricing.validate.validate`; never raises on content.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from engine.errors import Violation
from engine.pricing.attributes import (
    DATE,
    MAX_DECLARATIONS,
    MAX_PREDICATES,
    NUMBER,
    STRING,
    TYPE_NAMES,
    Bound,
    parse_date,
    predicate_of,
)
from engine.pricing.checker import ID_PATTERN
from engine.pricing.constants import MAX_ID_CHARS
from engine.pricing.overlap import quoted
from loyalty.v1 import rules_pb2

_FIELD_OF: dict[int, str] = {STRING: "any_of", NUMBER: "number", DATE: "date"}


def attribute_violations(rules: rules_pb2.RuleSet) -> list[Violation]:
    """Every problem of the declarations, then of the offers' attribute conditions."""
    out: list[Violation] = []
    types = _check_declarations(out, rules.member_attributes)
    seen: set[object] = set()
    reported = False
    for i, offer in enumerate(rules.offers):
        for j, cond in enumerate(offer.conditions.attributes):
            path = f"offers[{i}].conditions.attributes[{j}]"
            if not _check_condition(out, path, cond, types):
                continue
            seen.add(predicate_of(cond, types))
            if len(seen) > MAX_PREDICATES and not reported:
                reported = True
                out.append(
                    Violation(
                        path,
                        f"more than {MAX_PREDICATES} distinct member-attribute conditions in "
                        "the rule set (equal conditions in several offers count once)",
                    )
                )
    return out


def _check_declarations(
    out: list[Violation], decls: Sequence[rules_pb2.AttributeDeclaration]
) -> dict[str, int]:
    if len(decls) > MAX_DECLARATIONS:
        out.append(
            Violation(
                "member_attributes",
                f"at most {MAX_DECLARATIONS} member attributes (got {len(decls)})",
            )
        )
    types: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, d in enumerate(decls):
        path = f"member_attributes[{i}]"
        if not d.name:
            out.append(Violation(f"{path}.name", "must not be empty"))
        elif not ID_PATTERN.fullmatch(d.name):
            out.append(
                Violation(
                    f"{path}.name", f"must be 1-64 of A-Z a-z 0-9 . _ : - (got {quoted(d.name)})"
                )
            )
        elif d.name in first:
            out.append(
                Violation(
                    f"{path}.name",
                    f"duplicate name {quoted(d.name)} (also member_attributes[{first[d.name]}])",
                )
            )
        else:
            first[d.name] = i
        if d.type not in TYPE_NAMES:
            why = "is required" if d.type == 0 else f"unknown type {d.type}"
            out.append(Violation(f"{path}.type", f"{why}: STRING, NUMBER or DATE"))
        elif d.name in first and first[d.name] == i:
            types[d.name] = d.type
    return types


def _check_condition(
    out: list[Violation], path: str, c: rules_pb2.AttributeCondition, types: Mapping[str, int]
) -> bool:
    """Report the problems of one condition; True when it is valid."""
    n = len(out)
    kind = types.get(c.name)
    if kind is None:
        out.append(
            Violation(f"{path}.name", f"{quoted(c.name)} is not a declared member attribute")
        )
        return False
    type_name = TYPE_NAMES[kind]
    given = {
        STRING: bool(c.any_of),
        NUMBER: c.HasField("number"),
        DATE: c.HasField("date"),
    }
    for other, present in given.items():
        if present and other != kind:
            out.append(
                Violation(
                    f"{path}.{_FIELD_OF[other]}",
                    f"type mismatch: {quoted(c.name)} is a {type_name} attribute "
                    f"(use {_FIELD_OF[kind]})",
                )
            )
    if kind == STRING:
        if not c.any_of:
            out.append(Violation(f"{path}.any_of", "at least one value is required"))
        for k, value in enumerate(c.any_of):
            if not value:
                out.append(Violation(f"{path}.any_of[{k}]", "must not be empty"))
            elif len(value) > MAX_ID_CHARS:
                out.append(
                    Violation(
                        f"{path}.any_of[{k}]",
                        f"longer than {MAX_ID_CHARS} characters (got {len(value):,})",
                    )
                )
    elif kind == NUMBER:
        r = c.number
        low = r.min if r.HasField("min") else None
        high = r.max if r.HasField("max") else None
        _check_range(out, f"{path}.number", c.HasField("number"), low, high)
    else:
        start = _date(out, f"{path}.date.min", c.date.min)
        end = _date(out, f"{path}.date.max", c.date.max)
        if start is not False and end is not False:
            _check_range(out, f"{path}.date", c.HasField("date"), start, end)
    return len(out) == n


def _date(out: list[Violation], path: str, text: str) -> date | None | bool:
    """The date ``text`` holds, None when empty, False (reported) when it is no date."""
    if not text:
        return None
    value = parse_date(text)
    if value is None:
        out.append(Violation(path, f"must be a date YYYY-MM-DD (got {quoted(text)})"))
        return False
    return value


def _check_range(out: list[Violation], path: str, given: bool, low: Bound, high: Bound) -> None:
    if not given or (low is None and high is None):
        out.append(Violation(path, "a range is required: min (inclusive), max (exclusive) or both"))
    elif low is not None and high is not None and not low < high:  # type: ignore[operator]
        out.append(Violation(f"{path}.max", f"inverted range: max {high} must be above min {low}"))
