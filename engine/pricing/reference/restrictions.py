"""Member-only items, read from the ``RuleSet`` as docs/pricing.md says: the reference twin of
:mod:`engine.pricing.restrictions` (compiled sets, numba), matching lines with the reference's
own product-set reading (:func:`engine.pricing.reference.rewards.in_product_set`)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.pricing.basket import ResolvedLine
from engine.pricing.reference.rewards import in_product_set
from engine.pricing.restrictions import restriction_message
from engine.pricing.types import Member, RestrictedLine
from loyalty.v1 import rules_pb2


def meets(r: rules_pb2.ItemRestriction, member: Member | None) -> bool:
    """A member meets a restriction with their tier or any of their segments; a guest never."""
    if member is None:
        return False
    return member.tier in r.tiers or any(s in member.segments for s in r.segments)


def restricted_lines(
    rules: rules_pb2.RuleSet, lines: Sequence[ResolvedLine], member: Member | None
) -> tuple[RestrictedLine, ...]:
    """Each line in the scope of a restriction the member does not meet, with the first such
    restriction in rule-set order."""
    unmet = [r for r in rules.restricted_items if not meets(r, member)]
    out = []
    for i, line in enumerate(lines):
        for r in unmet:
            if in_product_set(r.scope, line):
                out.append(RestrictedLine(i, r.id, restriction_message(r)))
                break
    return tuple(out)
