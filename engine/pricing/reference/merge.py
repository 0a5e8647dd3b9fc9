"""Lines of one kind priced as one (docs/pricing.md §1.1), read from the ``RuleSet``: the
reference twin of ``engine.pricing.kernel.merge``.

Two basket lines are of one kind when they hold the same sku at the same unit price and no
rule can tell them apart: the same flags, and the same category, brand and vendor as far as
the rule set and the catalogue name them (a value neither names reads as "unknown", like an
empty one). They are priced as one line at the place of the first, and the merged line's
results are then shared back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from google.protobuf.message import Message

from engine.pricing.basket import ResolvedLine
from engine.pricing.catalogue import Catalogue
from engine.pricing.reference.rewards import allocate
from engine.pricing.types import LineDiscount, LineResult, PricingResult
from loyalty.v1 import rules_pb2


@dataclass(frozen=True)
class Vocabulary:
    """The categories, brands and vendors a rule set and its catalogue name."""

    categories: frozenset[str]
    brands: frozenset[str]
    vendors: frozenset[str]


def _product_sets(message: Message) -> list[rules_pb2.ProductSet]:
    """Every ProductSet anywhere inside ``message``."""
    if isinstance(message, rules_pb2.ProductSet):
        return [message]
    found: list[rules_pb2.ProductSet] = []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = [v for v in value.values() if isinstance(v, Message)]
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            found.extend(_product_sets(item))
    return found


def vocabulary(rules: rules_pb2.RuleSet, catalogue: Catalogue) -> Vocabulary:
    cats, brands, vendors = (
        set(catalogue.category),
        set(catalogue.brand),
        set(catalogue.vendor),
    )
    for ps in _product_sets(rules):
        cats.update(ps.categories)
        brands.update(ps.brands)
        vendors.update(ps.vendors)
    return Vocabulary(
        frozenset(cats - {""}),
        frozenset(brands - {""}),
        frozenset(vendors - {""}),
    )


def line_kind(line: ResolvedLine, v: Vocabulary) -> tuple[object, ...]:
    return (
        line.sku,
        line.category if line.category in v.categories else None,
        line.brand if line.brand in v.brands else None,
        line.vendor if line.vendor in v.vendors else None,
        line.unit_price_minor,
        line.no_discount,
        line.no_earn,
        line.delivery,
    )


def merge(
    lines: Sequence[ResolvedLine], v: Vocabulary
) -> tuple[list[ResolvedLine], list[list[int]]]:
    """The merged lines in order of their first line, and each one's basket lines."""
    groups: dict[tuple[object, ...], int] = {}
    merged: list[ResolvedLine] = []
    members: list[list[int]] = []
    for i, line in enumerate(lines):
        g = groups.setdefault(line_kind(line, v), len(merged))
        if g == len(merged):
            merged.append(line)
            members.append([i])
        else:
            merged[g] = replace(merged[g], quantity=merged[g].quantity + line.quantity)
            members[g].append(i)
    return merged, members


def _split(amount: int, weights: list[int], fallback: list[int] | None = None) -> list[int]:
    if len(weights) == 1:
        return [amount]
    if sum(weights) == 0:
        if fallback is None:
            return [0] * len(weights)
        weights = fallback
    return allocate(amount, weights)


def share_back(
    result: PricingResult,
    lines: Sequence[ResolvedLine],
    members: list[list[int]],
) -> PricingResult:
    """Results of the merged lines shared over the basket's ``lines``: each discount row in
    application order by the lines' current nets (its funded part by the shares), the tender
    by the final nets, each points component by what the lines pay (or by quantity)."""
    n = len(lines)
    nets = [ln.quantity * ln.unit_price_minor for ln in lines]
    rows: list[list[LineDiscount]] = [[] for _ in range(n)]
    tender = [0] * n
    for g, idx in enumerate(members):
        for row in result.lines[g].discounts:
            shares = _split(row.amount_minor, [nets[i] for i in idx])
            funded = _split(row.funded_minor, shares) if len(idx) > 1 else [row.funded_minor]
            for i, s, f in zip(idx, shares, funded, strict=True):
                if s > 0:
                    rows[i].append(replace(row, amount_minor=s, funded_minor=f))
                    nets[i] -= s
        if result.lines[g].points_tender_minor > 0:
            for i, s in zip(
                idx,
                _split(result.lines[g].points_tender_minor, [nets[i] for i in idx]),
                strict=True,
            ):
                tender[i] = s
    paid = [nets[i] - tender[i] for i in range(n)]
    components = []
    for c in result.points:
        line_points = [0] * n
        for g, idx in enumerate(members):
            if c.line_points[g] > 0:
                qty = [lines[i].quantity for i in idx]
                for i, s in zip(
                    idx, _split(c.line_points[g], [paid[i] for i in idx], qty), strict=True
                ):
                    line_points[i] = s
        components.append(replace(c, line_points=tuple(line_points)))
    out = tuple(
        LineResult(
            line.line_id,
            line.quantity * line.unit_price_minor,
            nets[i],
            tuple(rows[i]),
            tender[i],
            sum(c.line_points[i] for c in components),
        )
        for i, line in enumerate(lines)
    )
    return replace(result, lines=out, points=tuple(components))
