"""Validation of ``RuleSet.restricted_items`` (member-only items), for
:func:`engine.pricing.validate.validate`: every problem with its path in the rule file
(``restricted_items[0].tiers[1]``), collected, never raised."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from engine.pricing.constants import MAX_TEXT_CHARS
from engine.pricing.overlap import quoted
from loyalty.v1 import rules_pb2

if TYPE_CHECKING:
    from engine.pricing.checker import Checker

# the byte path checks every line against every restriction: keep the product small
MAX_RESTRICTIONS = 256

CheckSet = Callable[["Checker", str, rules_pb2.ProductSet], None]


def check_restricted_items(
    v: Checker, items: Sequence[rules_pb2.ItemRestriction], check_set: CheckSet
) -> None:
    """Ids unique, a valid scope, known tiers and segments (at least one of the two), and a
    message of at most 1,024 characters. ``v`` already knows the rule set's tiers and
    segments; ``check_set`` is the product-set check offers use."""
    if len(items) > MAX_RESTRICTIONS:
        v.add("restricted_items", f"at most {MAX_RESTRICTIONS} restrictions (got {len(items):,})")
    seen: dict[str, str] = {}
    for i, r in enumerate(items):
        path = f"restricted_items[{i}]"
        v.ident(f"{path}.id", r.id, seen, path)
        if not r.HasField("scope"):
            v.add(f"{path}.scope", "missing product set; use `all: true` for everything")
        else:
            check_set(v, f"{path}.scope", r.scope)
        if not r.tiers and not r.segments:
            v.add(path, "list the tiers or segments whose members may buy these items")
        for j, tier in enumerate(r.tiers):
            if tier not in v.tiers:
                v.add(f"{path}.tiers[{j}]", f"unknown tier {quoted(tier)}")
        for j, seg in enumerate(r.segments):
            if seg not in v.segments:
                v.add(f"{path}.segments[{j}]", f"unknown segment {quoted(seg)}")
        v.text(f"{path}.message", r.message, MAX_TEXT_CHARS)


__all__ = ["MAX_RESTRICTIONS", "check_restricted_items"]
