"""The offer editor's live preview: a sample basket priced with the draft rule set by the
engine in-process (``engine.compile_rules`` + ``engine.price(..., explain=True)``), as the
checkout service prices it, and what the page shows of the result.

The console has no catalogue (no RPC reads it), so a sample line carries its own category,
brand and vendor; the catalogue's no-discount and no-earn flags do not apply here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import engine
from engine.errors import InvalidInput
from engine.pricing.types import Basket, Line, Member, PricingResult
from loyalty.v1 import rules_pb2
from server.web.console import money
from server.web.console.offer_form import Values, zone

GUEST = "__guest__"
NO_TIER = "__none__"
LINE_FIELDS = ("sku", "quantity", "price", "category", "brand", "vendor")
MIN_LINES = 3
_LINE = re.compile(r"^basket\.lines\[(\d+)\]\.(\w+)$")
_ENGINE_LINE = re.compile(r"^lines\[(\d+)\]")


@dataclass
class Sample:
    basket: Basket
    member: Member | None
    coupons: tuple[str, ...]
    redeem_points: int
    rows: list[int] = field(default_factory=list)  # basket line k came from form row rows[k]


def default_values(offer: rules_pb2.Offer, now: datetime, timezone: str) -> Values:
    """A sample basket that the offer's scope reaches, and a member, to start from."""
    scope = offer.scope
    line: dict[str, str] = {"sku": "SAMPLE-1", "quantity": "1", "price": "100.00"}
    if scope.skus:
        line["sku"] = scope.skus[0]
    elif scope.categories:
        line["category"] = scope.categories[0]
    elif scope.brands:
        line["brand"] = scope.brands[0]
    elif scope.vendors:
        line["vendor"] = scope.vendors[0]
    kind = offer.WhichOneof("reward")
    if kind == "buy_x_get_y":
        line["quantity"] = str(max(1, offer.buy_x_get_y.buy + offer.buy_x_get_y.get))
    elif kind == "qty_tiers" and offer.qty_tiers.steps:
        line["quantity"] = str(max(1, offer.qty_tiers.steps[0].min_qty))
    values: Values = {f"basket.lines[0].{k}": v for k, v in line.items()}
    values |= {
        "basket.lines[1].sku": "OTHER-1",
        "basket.lines[1].quantity": "2",
        "basket.lines[1].price": "25.00",
        "basket.lines[1].category": "other",
        "basket.at": now.astimezone(zone(timezone)).strftime("%Y-%m-%dT%H:%M"),
        "basket.coupon": "on" if offer.activation == rules_pb2.Offer.COUPON else "",
        "member.tier": NO_TIER,
        "member.points": "0",
        "member.redeem": "0",
    }
    return values


def parse_sample(
    values: Mapping[str, Any], currency: str, timezone: str, offer_id: str
) -> tuple[Sample | None, dict[str, str]]:
    """The sample basket and member of the form, or the inputs that cannot be read."""
    errors: dict[str, str] = {}
    rows: dict[int, dict[str, str]] = {}
    for name, raw in values.items():
        m = _LINE.match(name)
        if m and m.group(2) in LINE_FIELDS:
            rows.setdefault(int(m.group(1)), {})[m.group(2)] = str(raw).strip()
    lines: list[Line] = []
    kept: list[int] = []
    for i in sorted(rows):
        row = rows[i]
        if not any(row.values()):
            continue
        at = f"basket.lines[{i}]"
        if not row.get("sku"):
            errors[f"{at}.sku"] = "needs a sku"
        try:
            quantity = int(row.get("quantity") or "1")
            if not 1 <= quantity <= 10_000:
                raise ValueError
        except ValueError:
            errors[f"{at}.quantity"] = "must be a whole number from 1 to 10,000"
            quantity = 1
        try:
            price = money.parse_money(row.get("price") or "0", currency)
            if not 0 <= price <= 100_000_000:
                raise ValueError("must be from 0 up to 1,000,000.00")
        except ValueError as exc:
            errors[f"{at}.price"] = str(exc)
            price = 0
        kept.append(i)
        lines.append(
            Line(
                str(len(lines) + 1),
                row.get("sku", "")[:128],
                quantity,
                price,
                row.get("category", "")[:128],
                row.get("brand", "")[:128],
                row.get("vendor", "")[:128],
            )
        )
    if not lines:
        errors["basket.lines[0].sku"] = "the sample basket needs at least one line"
    tz = zone(timezone)
    try:
        when = datetime.fromisoformat(str(values.get("basket.at", "")).strip())
        when = when if when.tzinfo is not None else when.replace(tzinfo=tz)
    except ValueError:
        errors["basket.at"] = "must be a date and time, e.g. 2026-12-01T09:00"
        when = datetime(2000, 1, 1, tzinfo=tz)
    member = None
    tier = str(values.get("member.tier", NO_TIER))
    numbers: dict[str, int] = {}
    for name, low in (("member.points", 0), ("member.redeem", -1), ("member.birthday_month", 0)):
        try:
            numbers[name] = int(str(values.get(name, "") or "0"))
            if numbers[name] < low or numbers[name] > 10**9:
                raise ValueError
        except ValueError:
            errors[name] = "must be a whole number" + (" (-1 = as many as allowed)" if low else "")
            numbers[name] = 0
    if tier != GUEST:
        segments = values.get("member.segments") or []
        segments = [segments] if isinstance(segments, str) else segments
        member = Member(
            member_id="console-preview",
            tier="" if tier == NO_TIER else tier,
            segments=frozenset(str(s) for s in segments),
            birthday_month=numbers["member.birthday_month"] % 13,
            available_points=numbers["member.points"],
        )
    coupon = str(values.get("basket.coupon", "")) not in ("", "off")
    basket = Basket(
        tuple(lines),
        when,
        str(values.get("basket.store", "")).strip()[:128],
        str(values.get("basket.channel", "")).strip()[:128],
    )
    if errors:
        return None, errors
    redeem = numbers["member.redeem"] if member is not None else 0
    return Sample(basket, member, (offer_id,) if coupon and offer_id else (), redeem, kept), {}


def price_sample(
    rules: rules_pb2.RuleSet, sample: Sample
) -> tuple[PricingResult | None, dict[str, str]]:
    """The engine's result for the sample (the rules are validated already), or the basket
    inputs the engine refused."""
    compiled = engine.compile_rules(rules, validate=False)
    try:
        result = engine.price(
            compiled,
            sample.basket,
            sample.member,
            coupons=sample.coupons,
            redeem_points=sample.redeem_points,
            explain=True,
        )
    except InvalidInput as exc:
        errors = {}
        for v in exc.violations:
            m = _ENGINE_LINE.match(v.field)
            if m and int(m.group(1)) < len(sample.rows):
                name = f"basket.lines[{sample.rows[int(m.group(1))]}]{v.field[m.end() :]}"
                errors[name.replace("unit_price_minor", "price")] = v.description
            else:
                errors[v.field] = v.description
        return None, errors
    return result, {}


def describe(
    result: PricingResult,
    sample: Sample,
    rules: rules_pb2.RuleSet,
    draft: rules_pb2.Offer,
) -> dict[str, Any]:
    """What the preview panel shows: the lines, the totals, the points, and per offer why it
    applied or not (the draft offer first)."""
    names = {o.id: o.name or o.id for o in rules.offers}
    cur = rules.currency
    lines = []
    for line, out in zip(sample.basket.lines, result.lines, strict=True):
        lines.append(
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit": money.money(line.unit_price_minor, cur),
                "gross": money.money(out.gross_minor, cur),
                "net": money.money(out.net_minor, cur),
                "points": out.points_earned,
                "tender": money.money(out.points_tender_minor, cur)
                if out.points_tender_minor
                else "",
                "discounts": [
                    {
                        "offer": d.offer_id,
                        "name": names.get(d.offer_id, d.offer_id),
                        "amount": money.money(d.amount_minor, cur),
                        "funder": d.funder_id or "retailer",
                        "funded": money.money(d.funded_minor, cur) if d.funded_minor else "",
                        "draft": d.offer_id == draft.id,
                    }
                    for d in out.discounts
                ],
            }
        )
    applied = {a.offer_id: a for a in result.offers}
    explained = {e.offer_id: e.message for e in result.explanations}
    if draft.id in applied:
        a = applied[draft.id]
        parts = [f"saves {money.money(a.discount_minor, cur)}"] if a.discount_minor else []
        parts += [f"gives {a.points} points"] if a.points else []
        status = "applies: " + (" and ".join(parts) or "applied")
        draft_applies = True
    else:
        draft_applies = False
        if draft.id in explained:
            status = "does not apply: " + explained[draft.id]
        elif draft.activation == rules_pb2.Offer.COUPON and draft.id not in sample.coupons:
            status = "does not apply: it needs a coupon (tick “present a coupon”)"
        else:
            status = "does not apply: no line of the basket is in its scope"
    return {
        "lines": lines,
        "gross": money.money(result.gross_minor, cur),
        "discount": money.money(result.discount_minor, cur),
        "net": money.money(result.net_minor, cur),
        "tender": money.money(result.points_tender_minor, cur),
        "redeemed": result.points_redeemed,
        "payable": money.money(result.payable_minor, cur),
        "points": result.points_earned,
        "components": [
            {"kind": c.kind, "offer": c.offer_id or "programme", "points": c.points}
            for c in result.points
        ],
        "applied": [
            {
                "offer": a.offer_id,
                "name": names.get(a.offer_id, a.offer_id),
                "discount": money.money(a.discount_minor, cur),
                "points": a.points,
                "draft": a.offer_id == draft.id,
            }
            for a in result.offers
        ],
        "not_applied": [
            {"offer": k, "name": names.get(k, k), "why": why, "draft": k == draft.id}
            for k, why in explained.items()
        ],
        "draft_status": status,
        "draft_applies": draft_applies,
        "member": sample.member is not None,
    }
