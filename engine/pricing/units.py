"""Unit caps (``Limits.total_units``, ``Limits.units_per_store``) and unit limits
(``Limits.max_units_per_line``, ``Limits.max_units``): pure pieces of the engine.

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

Unit limits (``percent_off``, ``amount_off``, ``fixed_price`` and ``qty_tiers`` only) come
first, in the same walk: a line of ``q`` units over ``max_units_per_line = N`` keeps
``floor(d·N/q)`` and counts ``N`` units ``u``; then ``max_units`` is a per-basket ``left`` (a
line taking ``t < u`` keeps ``floor(d·t/u)``), then the units left as above, read over ``u``.
With neither set this is the walk above (``u = q``). The full text: docs/pricing.md §5, "Unit
limits".

``Limits.units_in_groups_of = N`` (the same four rewards) discounts only the units that form
complete groups of ``N`` of the offer's ``U`` eligible units: ``floor(U/N)·N`` units, a
per-basket room walked exactly as ``max_units`` (the smaller of the two when both are set,
:func:`offer_unit_room`); ``U < N`` is a quantity shortfall of ``N − U``, checked with
``Conditions.min_qty``.

The numba kernel (``engine/pricing/kernel/units.py``) and the reference (here) implement the
same walks; the validation of the five fields is here too, to keep ``validate.py`` short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from engine.pricing.constants import Phase
from loyalty.v1 import rules_pb2

if TYPE_CHECKING:
    from engine.pricing.checker import Checker

UNIT_FIELDS = ("total_units", "units_per_store")
# Limits.max_units_per_line / max_units / units_in_groups_of: rewards that discount each line
# from its own units
BASKET_UNIT_FIELDS = ("max_units_per_line", "max_units", "units_in_groups_of")
BASKET_UNIT_REWARDS = ("percent_off", "amount_off", "fixed_price", "qty_tiers")


def check_unit_limits(
    v: Checker, path: str, lim: rules_pb2.Limits, phase: Phase | None, reward: str | None = None
) -> None:
    """``Limits.total_units`` and ``units_per_store``: counts, on item rewards only;
    ``max_units_per_line``, ``max_units`` and ``units_in_groups_of``: counts, on
    ``BASKET_UNIT_REWARDS`` only."""
    for name in UNIT_FIELDS:
        value = getattr(lim, name)
        if v.count(f"{path}.{name}", value) and value and phase not in (Phase.ITEM, None):
            v.add(
                f"{path}.{name}",
                f"only on item rewards, it caps discounted units (got {value})",
            )
    for name in BASKET_UNIT_FIELDS:
        value = getattr(lim, name)
        if (
            v.count(f"{path}.{name}", value)
            and value
            and reward not in BASKET_UNIT_REWARDS + (None,)
        ):
            v.add(
                f"{path}.{name}",
                f"only on {', '.join(BASKET_UNIT_REWARDS)} rewards, not {reward} (got {value}): "
                "it caps the units each line discounts",
            )


def offer_unit_room(lim: rules_pb2.Limits, qty: Sequence[int], eligible: Sequence[int]) -> int:
    """The per-basket unit room of an offer with limits ``lim`` (0 = no cap): ``max_units``,
    and ``floor(U/N)·N`` for ``units_in_groups_of = N``, ``U`` the units of the ``eligible``
    lines; the smaller when both are set. (An offer with ``U < N`` never gets here: it is a
    quantity shortfall, :func:`engine.pricing.reference.checks.check_minimums`.)"""
    rooms = [lim.max_units] if lim.max_units > 0 else []
    if lim.units_in_groups_of > 0:
        units = sum(qty[i] for i in eligible)
        rooms.append(units // lim.units_in_groups_of * lim.units_in_groups_of)
    return min(rooms, default=0)


def limit_units(
    qty: Sequence[int],
    proposal: dict[int, int],
    order: Sequence[int],
    left: int | None,
    per_line: int = 0,
    per_offer: int = 0,
) -> None:
    """Scale ``proposal`` (line -> discount) in place: each line to ``per_line`` units, the
    offer to ``per_offer`` units, then to the ``left`` units (0 / 0 / None = no cap);
    ``order`` = the eligible lines in basket order, ``qty`` = each line's quantity."""
    if left is None and per_line <= 0 and per_offer <= 0:
        return
    room = per_offer if per_offer > 0 else None
    for i in order:
        d = proposal.get(i, 0)
        if d <= 0:
            continue
        units = qty[i]
        if 0 < per_line < units:  # 1. per line
            d, units = d * per_line // units, per_line
        if d > 0 and room is not None:  # 2. per offer (this basket)
            d, units, room = _take(d, units, room)
        if d > 0 and left is not None:  # 3. units left (Limits.total_units, units_per_store)
            d, units, left = _take(d, units, left)
        proposal[i] = d


def _take(d: int, units: int, bound: int) -> tuple[int, int, int]:
    """A line of ``units`` units discounted ``d`` takes what ``bound`` still holds: (its
    discount, its units, what the bound holds after it)."""
    take = min(units, bound)
    if take < units:
        d = d * take // units
    return d, take, bound - take


def applied_units(
    qty: Sequence[int],
    amounts: Mapping[int, int],
    left: int | None,
    per_line: int = 0,
    per_offer: int = 0,
) -> int:
    """Units an applied offer counts: ``amounts`` = line -> final discount, in basket order;
    each line counts at most ``per_line``, then what ``per_offer`` and ``left`` still hold."""
    total = 0
    room = per_offer if per_offer > 0 else None
    for i, amount in amounts.items():
        if amount > 0:
            units = min(qty[i], per_line) if per_line > 0 else qty[i]
            if room is not None:
                units = min(units, room)
                room -= units
            if left is not None:
                units = min(units, left - total)
            total += units
    return total


__all__ = [
    "BASKET_UNIT_FIELDS",
    "BASKET_UNIT_REWARDS",
    "UNIT_FIELDS",
    "applied_units",
    "check_unit_limits",
    "limit_units",
    "offer_unit_room",
]
