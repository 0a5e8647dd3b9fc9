"""Checks of each reward's own fields (ladders, bundles, spend steps, bonus points), for
:mod:`engine.pricing.validate`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from google.protobuf.message import Message

from engine.pricing.checker import (
    MAX_COUNT,
    MAX_EXTRA_BPS,
    MAX_MINOR,
    MAX_POINTS_PER_UNIT,
    REWARDS,
    Checker,
    check_product_set,
    is_empty_set,
)
from engine.pricing.constants import BPS
from engine.pricing.overlap import structural_overlap
from loyalty.v1 import rules_pb2

MAX_GIFT_UNITS = 1_000  # Gift.quantity: units a lane adds, not a stock figure


def check_reward(v: Checker, path: str, reward: str, r: Message) -> None:
    for name, lo, hi in _RANGES.get(reward, ()):
        v.range(f"{path}.{name}", getattr(r, name), lo, hi)
    if reward in _REWARD_CHECKS:
        _REWARD_CHECKS[reward](v, path, r)


def _increasing(
    v: Checker,
    path: str,
    steps: Sequence[rules_pb2.QtyTier] | Sequence[rules_pb2.SpendTier],
    name: str,
    j: int,
) -> None:
    if j > 0:
        prev, cur = getattr(steps[j - 1], name), getattr(steps[j], name)
        if cur <= prev:
            v.add(
                f"{path}.steps[{j}].{name}",
                f"ladder steps not increasing: must be greater "
                f"than steps[{j - 1}]'s {prev} (got {cur})",
            )


def _check_qty_tiers(v: Checker, path: str, r: rules_pb2.QtyTiers) -> None:
    if not r.steps:
        v.add(f"{path}.steps", "needs at least one step")
    for j, step in enumerate(r.steps):
        if v.count(f"{path}.steps[{j}].min_qty", step.min_qty, 1):
            _increasing(v, path, r.steps, "min_qty", j)
        v.range(f"{path}.steps[{j}].percent_bps", step.percent_bps, 1, BPS)


def _check_bundle_price(v: Checker, path: str, r: rules_pb2.BundlePrice) -> None:
    if not r.components:
        v.add(f"{path}.components", "needs at least one component")
    usable: list[int] = []  # components with a non-empty product set, checked for overlaps
    masks: dict[int, np.ndarray] = {}  # component -> catalogue rows it matches, when needed
    for j, comp in enumerate(r.components):
        cpath = f"{path}.components[{j}]"
        if not comp.HasField("scope"):
            v.add(f"{cpath}.scope", "missing product set; use `all: true` for everything")
        else:
            check_product_set(v, f"{cpath}.scope", comp.scope)
        if comp.HasField("scope") and not is_empty_set(comp.scope):
            for a in usable:
                why = structural_overlap(r.components[a].scope, comp.scope)
                if why is None and v.catalogue is not None and len(v.catalogue):
                    why = v.index().overlap(r.components, a, j, masks)
                if why is not None:
                    v.add(f"{cpath}.scope", f"components[{a}] and components[{j}] overlap: {why}")
            usable.append(j)
        v.count(f"{cpath}.qty", comp.qty, 1)
    v.money(f"{path}.price_minor", r.price_minor)


def _check_spend_tiers(v: Checker, path: str, r: rules_pb2.SpendTiers) -> None:
    if not r.steps:
        v.add(f"{path}.steps", "needs at least one step")
    percent_step = None
    for j, step in enumerate(r.steps):
        spath = f"{path}.steps[{j}]"
        if v.money(f"{spath}.threshold_minor", step.threshold_minor, 1):
            _increasing(v, path, r.steps, "threshold_minor", j)
        if step.amount_minor and step.percent_bps:
            v.add(
                spath,
                f"set exactly one of amount_minor and percent_bps (got both: "
                f"{step.amount_minor} and {step.percent_bps})",
            )
        elif not step.amount_minor and not step.percent_bps:
            v.add(spath, "set exactly one of amount_minor and percent_bps (got neither)")
        elif step.amount_minor:
            v.money(f"{spath}.amount_minor", step.amount_minor, 1)
        else:
            v.range(f"{spath}.percent_bps", step.percent_bps, 1, BPS)
            if percent_step is None:
                percent_step = j
    if r.repeat and percent_step is not None:
        v.add(
            f"{path}.repeat",
            f"repeat works with amount steps only (steps[{percent_step}] "
            f"has percent_bps {r.steps[percent_step].percent_bps})",
        )


def _check_bonus_points(v: Checker, path: str, r: rules_pb2.BonusPoints) -> None:
    # per_unit times a basket's units (at most 10^7) must stay inside int64
    ok = v.range(f"{path}.per_unit", r.per_unit, 0, MAX_POINTS_PER_UNIT)
    ok &= v.count(f"{path}.per_transaction", r.per_transaction)
    if ok and r.per_unit == 0 and r.per_transaction == 0:
        v.add(path, "per_unit and per_transaction are both 0: the offer gives no points")


def _check_target_units(v: Checker, path: str, r: rules_pb2.TargetUnits) -> None:
    # proto3 enums are open: a number no build knows would decode, so say so here
    if r.pick not in rules_pb2.TargetUnits.Pick.values():
        v.add(f"{path}.pick", f"unknown pick {r.pick} (CHEAPEST or MOST_EXPENSIVE)")
    units_ok = v.count(f"{path}.units", r.units, 1)
    if v.count(f"{path}.every", r.every) and units_ok and 0 < r.every < r.units:
        v.add(
            f"{path}.units",
            f"at most every ({r.every}) when every is set: each group of every units gives "
            f"units of them (got {r.units})",
        )
    _check_unit_value(v, path, r)


def _check_buy_get(v: Checker, path: str, r: rules_pb2.BuyGet) -> None:
    if not r.HasField("get"):
        v.add(f"{path}.get", "missing product set: the items the offer discounts")
    else:
        check_product_set(v, f"{path}.get", r.get)
    v.count(f"{path}.buy_qty", r.buy_qty, 1)
    v.count(f"{path}.get_qty", r.get_qty, 1)
    _check_unit_value(v, path, r)


def _check_unit_value(
    v: Checker, path: str, r: rules_pb2.TargetUnits | rules_pb2.BuyGet | rules_pb2.DeliveryOff
) -> None:
    form = r.WhichOneof("value")
    if form is None:
        v.add(path, "set exactly one of percent_bps, amount_minor and price_minor (got none)")
    elif form == "percent_bps":
        v.range(f"{path}.percent_bps", r.percent_bps, 1, BPS)
    elif form == "amount_minor":
        v.money(f"{path}.amount_minor", r.amount_minor, 1)
    else:
        v.money(f"{path}.price_minor", r.price_minor)


def _check_unit_rates(v: Checker, path: str, r: rules_pb2.UnitRates) -> None:
    # minor units, but bounded like counts: n·additional_minor stays inside int64
    first_ok = v.range(f"{path}.first_minor", r.first_minor, 0, MAX_COUNT)
    additional_ok = v.range(f"{path}.additional_minor", r.additional_minor, 0, MAX_COUNT)
    v.count(f"{path}.max_units", r.max_units)
    if first_ok and additional_ok and r.first_minor + r.additional_minor == 0:
        v.add(path, "first_minor and additional_minor are both 0: the offer gives nothing")


def _check_gift(v: Checker, path: str, r: rules_pb2.Gift) -> None:
    if not r.sku:
        v.add(f"{path}.sku", "missing: the sku the offer gives")
    elif not r.sku.isprintable():
        v.add(f"{path}.sku", f"control characters are not allowed ({r.sku!r})")
    else:
        v.text(f"{path}.sku", r.sku)
    v.range(f"{path}.quantity", r.quantity, 1, MAX_GIFT_UNITS)
    v.money(f"{path}.price_minor", r.price_minor)


def check_buy_get_sets(v: Checker, path: str, offer: rules_pb2.Offer) -> None:
    """A buy_get's get set must not overlap its scope (the buy set), as bundle components."""
    get = offer.buy_get.get
    if is_empty_set(offer.scope) or is_empty_set(get):
        return
    why = structural_overlap(offer.scope, get)
    if why is None and v.catalogue is not None and len(v.catalogue):
        pair = [rules_pb2.BundleComponent(scope=ps) for ps in (offer.scope, get)]
        why = v.index().overlap(pair, 0, 1, {})
    if why is not None:
        v.add(f"{path}.buy_get.get", f"the get set and the scope (the buy set) overlap: {why}")


# reward -> (field, lowest, highest) of its plain numeric fields
_RANGES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "percent_off": (("percent_bps", 1, BPS),),
    "amount_off": (("amount_minor", 1, MAX_MINOR),),
    "fixed_price": (("price_minor", 0, MAX_MINOR),),
    "buy_x_get_y": (("buy", 1, MAX_COUNT), ("get", 1, MAX_COUNT), ("percent_bps", 1, BPS)),
    "order_percent_off": (("percent_bps", 1, BPS),),
    "order_amount_off": (("amount_minor", 1, MAX_MINOR),),
    "points_multiplier": (("extra_bps", 1, MAX_EXTRA_BPS),),
}
# reward -> its own checks; each takes that reward's message, looked up by field name
_REWARD_CHECKS: dict[str, Callable[[Checker, str, Any], None]] = {
    "qty_tiers": _check_qty_tiers,
    "bundle_price": _check_bundle_price,
    "spend_tiers": _check_spend_tiers,
    "bonus_points": _check_bonus_points,
    "target_units": _check_target_units,
    "buy_get": _check_buy_get,
    "unit_rates": _check_unit_rates,
    "delivery_off": _check_unit_value,
    "gift": _check_gift,
}
assert set(_RANGES) | set(_REWARD_CHECKS) == set(REWARDS)
