"""Unit caps (``Limits.total_units``, ``Limits.units_per_store``): pure pieces of the engine.

An offer with a unit cap may discount at most the units left to the member now (the store
computes them: cap − units sold − units reserved for other members, and the same for the
basket's store; ``RemainingLimits.units``). When the lines an item offer would discount hold
more units than are left, the offer discounts only the units left (a "limited quantity"
special: 2 of 3 bottles at the special price), docs/pricing.md "Unit caps":

- walk the eligible lines in basket order; a line whose proposed discount ``d`` is positive
  takes ``t = min(q, left)`` units and ``left -= t``; a line that takes fewer than its ``q``
  units keeps ``floor(d·t/q)`` of its discount (0 once nothing is left);
- the units an applied offer counts are walked the same way over the lines it finally
  discounted (after the caps): ``min(q, left)`` each, so they never exceed what was left.

The numba kernel (``engine/pricing/kernel/units.py``) and the reference (here) implement the
same walk; the validation of the two fields is here too, to keep ``validate.py`` short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from engine.pricing.constants import Phase
from loyalty.v1 import rules_pb2

if TYPE_CHECKING:
    from engine.pricing.checker import Checker

UNIT_FIELDS = ("total_units", "units_per_store")


def check_unit_limits(v: Checker, path: str, lim: rules_pb2.Limits, phase: Phase | None) -> None:
    """``Limits.total_units`` and ``units_per_store``: counts, on item rewards only."""
    for name in UNIT_FIELDS:
        value = getattr(lim, name)
        if v.count(f"{path}.{name}", value) and value and phase not in (Phase.ITEM, None):
            v.add(
                f"{path}.{name}",
                f"only on item rewards, it caps discounted units (got {value})",
            )


def limit_units(
    qty: Sequence[int], proposal: dict[int, int], order: Sequence[int], left: int | None
) -> None:
    """Scale ``proposal`` (line -> discount) in place to the ``left`` units (None = no cap);
    ``order`` = the eligible lines in basket order, ``qty`` = each line's quantity."""
    if left is None:
        return
    for i in order:
        d = proposal.get(i, 0)
        if d <= 0:
            continue
        take = min(qty[i], left)
        if take < qty[i]:
            proposal[i] = d * take // qty[i]
        left -= take


def applied_units(qty: Sequence[int], amounts: Mapping[int, int], left: int | None) -> int:
    """Units an applied offer counts: ``amounts`` = line -> final discount, in basket order."""
    units = 0
    for i, amount in amounts.items():
        if amount > 0:
            take = qty[i] if left is None else min(qty[i], left - units)
            units += take
    return units


__all__ = ["UNIT_FIELDS", "applied_units", "check_unit_limits", "limit_units"]
