"""Member-attribute conditions (rules.proto ``AttributeCondition``): the one place that decides
whether a member's typed attributes meet a test.

The compiler turns the distinct tests of a rule set into at most :data:`MAX_PREDICATES`
:class:`Predicate` objects, numbered in order of first use over the offers; an offer's
``O_ATTR_MASK`` holds the bits of the tests it names, and a member's ``M_ATTRS`` (built when the
member array is encoded, :func:`member_mask`) the bits of the tests the member meets, so the
kernel's check is one AND. The reference evaluator reads the rule set directly and asks
:func:`conditions_hold`. Both go through :meth:`Predicate.holds`.

Tests (docs/pricing.md §4, check 7): STRING — the value is one of ``any_of``; NUMBER and DATE —
``min <= value < max``, a bound left out is open. A member without the attribute, or whose
value has another type than the declaration, fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from engine.pricing.types import AttributeValue
from loyalty.v1 import rules_pb2

MAX_PREDICATES = 64  # distinct tests per rule set: one bit each of an int64
MAX_DECLARATIONS = 64  # RuleSet.member_attributes

STRING = rules_pb2.AttributeDeclaration.STRING
NUMBER = rules_pb2.AttributeDeclaration.NUMBER
DATE = rules_pb2.AttributeDeclaration.DATE
TYPE_NAMES: dict[int, str] = {STRING: "STRING", NUMBER: "NUMBER", DATE: "DATE"}

_DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Bound = int | date | None


def parse_date(text: str) -> date | None:
    """A strict ``YYYY-MM-DD`` calendar date, or None when ``text`` is not one."""
    if not _DATE_PATTERN.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def value_type(value: AttributeValue) -> int:
    """The declaration type a value has (``bool`` is no number, ``datetime`` no date)."""
    if isinstance(value, str):
        return STRING
    if isinstance(value, datetime) or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return NUMBER
    return DATE if isinstance(value, date) else 0


@dataclass(frozen=True, slots=True)
class Predicate:
    """One distinct attribute test; equal tests compare (and hash) equal."""

    name: str
    type: int  # AttributeDeclaration.Type; 0 (undeclared) never holds
    any_of: frozenset[str] = frozenset()
    low: Bound = None  # inclusive
    high: Bound = None  # exclusive

    def holds(self, attributes: Mapping[str, AttributeValue]) -> bool:
        value = attributes.get(self.name)
        if value is None or self.type == 0 or value_type(value) != self.type:
            return False
        if self.type == STRING:
            return value in self.any_of
        # same type as the bounds (checked above): int with int, date with date
        if self.low is not None and value < self.low:  # type: ignore[operator]
            return False
        return self.high is None or value < self.high  # type: ignore[operator]


def declared_types(rules: rules_pb2.RuleSet) -> dict[str, int]:
    """Declared name -> type (the first declaration of a repeated name)."""
    out: dict[str, int] = {}
    for d in rules.member_attributes:
        out.setdefault(d.name, d.type)
    return out


def predicate_of(cond: rules_pb2.AttributeCondition, types: Mapping[str, int]) -> Predicate:
    """The test ``cond`` makes (of a validated rule set; else one that may never hold)."""
    kind = types.get(cond.name, 0)
    if kind == STRING:
        return Predicate(cond.name, kind, any_of=frozenset(cond.any_of))
    if kind == NUMBER:
        r = cond.number
        return Predicate(
            cond.name,
            kind,
            low=r.min if r.HasField("min") else None,
            high=r.max if r.HasField("max") else None,
        )
    if kind == DATE:
        low, high = parse_date(cond.date.min), parse_date(cond.date.max)
        if (cond.date.min and low is None) or (cond.date.max and high is None):
            kind = 0  # a date validation refuses: never holds
        return Predicate(cond.name, kind, low=low, high=high)
    return Predicate(cond.name, 0)


def conditions_hold(
    rules: rules_pb2.RuleSet,
    conditions: Iterable[rules_pb2.AttributeCondition],
    attributes: Mapping[str, AttributeValue],
) -> bool:
    """Every test of ``conditions`` holds for ``attributes`` (the reference's check 7)."""
    types = declared_types(rules)
    return all(predicate_of(c, types).holds(attributes) for c in conditions)


def compile_predicates(rules: rules_pb2.RuleSet) -> tuple[tuple[Predicate, ...], list[int]]:
    """The rule set's distinct tests in order of first use, and each offer's mask of them
    (signed int64). Tests past :data:`MAX_PREDICATES` are left out (validation refuses such
    a rule set)."""
    types = declared_types(rules)
    bits: dict[Predicate, int] = {}
    masks: list[int] = []
    for offer in rules.offers:
        m = 0
        for cond in offer.conditions.attributes:
            p = predicate_of(cond, types)
            bit = bits.setdefault(p, len(bits))
            if bit < MAX_PREDICATES:
                m |= 1 << bit
        masks.append(_signed(m))
    return tuple(p for p, b in bits.items() if b < MAX_PREDICATES), masks


def member_mask(predicates: Sequence[Predicate], attributes: Mapping[str, AttributeValue]) -> int:
    """``M_ATTRS``: the bits of ``predicates`` that ``attributes`` meet (signed int64)."""
    if not predicates or not attributes:
        return 0
    m = 0
    for bit, p in enumerate(predicates):
        if p.holds(attributes):
            m |= 1 << bit
    return _signed(m)


def _signed(m: int) -> int:
    return m - (1 << 64) if m >= 1 << 63 else m
