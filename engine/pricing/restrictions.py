"""Member-only items: which basket lines a member may not buy (``RuleSet.restricted_items``).

A restriction names a product set and the tiers and segments whose members may buy it. A
member meets it when their tier is one of its tiers or one of their segments is one of its
segments; a guest never does. A line is restricted when its item is in the scope of a
restriction the member does not meet (the first such restriction, in rule-set order, is the
one reported). Pricing ignores restrictions: a restricted line is priced as usual, and the
checkout decides (Commit refuses the basket unless the lane overrides).

The compiler adds each restriction's scope to the compiled product sets
(:func:`compile_restrictions`), so a line is matched by the kernels' own
``engine.pricing.kernel.util.in_set`` on the line arrays both the checked path
(``engine.price``) and the byte path (``engine.pricing.wire``) build: one reading of "a line
is in a product set" everywhere. The reference evaluator's twin is
``engine.pricing.reference.restrictions``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.errors import FailedPrecondition, Violation
from engine.pricing import layout as L
from engine.pricing.jit import njit
from engine.pricing.kernel.util import in_set
from engine.pricing.layout import (
    M_IS_MEMBER,
    M_SEGMENTS,
    M_TIER,
    R_SEGMENT_MASK,
    R_SET,
    R_TIER_MASK,
)
from engine.pricing.types import RestrictedLine
from loyalty.v1 import rules_pb2


class _Compiled(Protocol):
    """What :func:`restricted_lines` reads of a compiled rule set (``CompiledRules``)."""

    @property
    def restrictions(self) -> Restrictions: ...

    @property
    def arrays(self) -> Any: ...


# the Explanation.reason of a restricted line (docs/pricing.md, member-only items)
ITEM_RESTRICTED = "ITEM_RESTRICTED"


@dataclass(frozen=True, eq=False)
class Restrictions:
    """A rule set's restrictions, compiled: one row per restriction, in rule-set order."""

    table: np.ndarray  # int64[n, RESTRICT_COLS]
    ids: tuple[str, ...]
    messages: tuple[str, ...]  # what the lane shows for each

    def __len__(self) -> int:
        return len(self.ids)


NO_RESTRICTIONS = Restrictions(np.zeros((0, L.RESTRICT_COLS), dtype=np.int64), (), ())


def restriction_message(r: rules_pb2.ItemRestriction) -> str:
    """The restriction's own message, or a sentence naming who may buy the item."""
    if r.message:
        return r.message
    who = [f"tier {', '.join(r.tiers)}" if r.tiers else "", _segments(r.segments)]
    return "for members of " + " or ".join(w for w in who if w) + " only"


def _segments(segments: Sequence[str]) -> str:
    return f"segment {', '.join(segments)}" if segments else ""


Mask = Callable[[Sequence[str]], int]


def compile_restrictions(
    rules: rules_pb2.RuleSet,
    add_set: Callable[[rules_pb2.ProductSet], int],
    tier_mask: Mask,
    segment_mask: Mask,
) -> Restrictions:
    """``rules.restricted_items`` as rows. The compiler passes its own helpers: ``add_set``
    adds a scope to the compiled product sets (and its skus, categories, brands and vendors
    to the dictionaries); the masks turn tier and segment ids into the bitmasks offer
    conditions use (ids the rule set does not know are dropped)."""
    items = list(rules.restricted_items)
    if not items:
        return NO_RESTRICTIONS
    table = np.zeros((len(items), L.RESTRICT_COLS), dtype=np.int64)
    for k, r in enumerate(items):
        table[k, L.R_SET] = add_set(r.scope)
        table[k, L.R_TIER_MASK] = tier_mask(r.tiers)
        table[k, L.R_SEGMENT_MASK] = segment_mask(r.segments)
    return Restrictions(
        table, tuple(r.id for r in items), tuple(restriction_message(r) for r in items)
    )


@njit
def find_restricted(sets, set_vals, restrict, lines, member, out):  # type: ignore[no-untyped-def]
    """``out[i]`` = the first restriction line ``i`` falls under that the member does not meet,
    else -1; returns how many lines are restricted."""
    n_r = restrict.shape[0]
    is_member = member[M_IS_MEMBER] != 0
    tier = member[M_TIER]
    segments = member[M_SEGMENTS]
    count = 0
    for i in range(lines.shape[0]):
        out[i] = -1
        for r in range(n_r):
            if is_member and (
                (tier >= 0 and (restrict[r, R_TIER_MASK] >> tier) & 1 != 0)
                or (segments & restrict[r, R_SEGMENT_MASK]) != 0
            ):
                continue  # the member meets it
            if in_set(sets, set_vals, restrict[r, R_SET], lines, i):
                out[i] = r
                count += 1
                break
    return count


def restricted_lines(
    compiled: _Compiled, lines: np.ndarray, member: np.ndarray
) -> tuple[RestrictedLine, ...]:
    """The restricted lines of a basket, from the kernel's line array (``LINE_COLS``) and
    member array (``MEMBER_COLS``); empty at once when the rule set restricts nothing."""
    rs = compiled.restrictions
    if not len(rs) or not lines.shape[0]:
        return ()
    out = np.empty(lines.shape[0], dtype=np.int64)
    arrays = compiled.arrays
    if not find_restricted(arrays.sets, arrays.set_vals, rs.table, lines, member, out):
        return ()
    return tuple(
        RestrictedLine(i, rs.ids[r], rs.messages[r]) for i, r in enumerate(out.tolist()) if r >= 0
    )


class ItemRestricted(FailedPrecondition):
    """A commit of a basket with lines this member may not buy (and no override): one
    violation per restricted line, on ``<basket>.lines[i]``."""

    def __init__(self, restricted: Sequence[RestrictedLine], basket_field: str = "basket"):
        self._violations = tuple(
            Violation(
                f"{basket_field}.lines[{r.line}]",
                f"restricted item (restriction {r.restriction_id!r}: {r.message}); remove "
                "the line, or commit with allow_restricted_items (supervisor override)",
            )
            for r in restricted
        )
        super().__init__("; ".join(str(v) for v in self._violations))

    @property
    def violations(self) -> tuple[Violation, ...]:
        return self._violations


def refuse_restricted(
    restricted: Sequence[RestrictedLine], allow: bool, basket_field: str = "basket"
) -> None:
    """Raise :class:`ItemRestricted` when lines are restricted and ``allow`` is not given."""
    if restricted and not allow:
        raise ItemRestricted(restricted, basket_field)


__all__ = [
    "ITEM_RESTRICTED",
    "NO_RESTRICTIONS",
    "ItemRestricted",
    "Restrictions",
    "compile_restrictions",
    "find_restricted",
    "refuse_restricted",
    "restricted_lines",
    "restriction_message",
]
