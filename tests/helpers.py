"""Small builders for pricing tests: baskets, catalogues, rule sets, members.

Plain functions, importable as ``from tests.helpers import ...``. Rule sets are built as
dicts in the rule-file shape (``engine.pricing.rules.parse_rules`` reads them), so a test shows the
offer exactly as marketing would write it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from engine.pricing.catalogue import Catalogue
from engine.pricing.types import Basket, Line, Member

TIMEZONE = "Asia/Shanghai"
# Wednesday 2025-03-12 12:00 in Asia/Shanghai (UTC+8): inside any all-day window.
DEFAULT_AT = datetime(2025, 3, 12, 4, 0, tzinfo=UTC)
STORE = "s1"
CHANNEL = "pos"
EVERYTHING: dict[str, Any] = {"all": True}


def line(
    line_id: str,
    sku: str,
    quantity: int,
    unit_price_minor: int,
    category: str = "",
    brand: str = "",
    vendor: str = "",
) -> Line:
    return Line(line_id, sku, quantity, unit_price_minor, category, brand, vendor)


def make_basket(
    *lines: Line | tuple, at: datetime = DEFAULT_AT, store: str = STORE, channel: str = CHANNEL
) -> Basket:
    """A basket of ``Line``s or ``(line_id, sku, qty, price[, category, brand, vendor])``."""
    return Basket(
        tuple(ln if isinstance(ln, Line) else Line(*ln) for ln in lines), at, store, channel
    )


def make_catalogue(*rows: Mapping[str, Any]) -> Catalogue:
    """A catalogue from row dicts (``sku`` plus any of the other columns)."""
    if not rows:
        return Catalogue.empty()
    columns = ("sku", "category", "brand", "vendor", "no_discount", "no_earn")
    defaults = {"category": "", "brand": "", "vendor": "", "no_discount": False, "no_earn": False}
    return Catalogue.from_rows([{c: r.get(c, defaults.get(c)) for c in columns} for r in rows])


def member(
    member_id: str = "m1",
    tier: str = "",
    segments: tuple[str, ...] = (),
    birthday_month: int = 0,
    available_points: int = 0,
    wallet: Mapping[str, int] | None = None,
) -> Member:
    return Member(
        member_id, tier, frozenset(segments), birthday_month, available_points, dict(wallet or {})
    )


def offer(
    offer_id: str,
    reward: Mapping[str, Any],
    *,
    scope: Mapping[str, Any] = EVERYTHING,
    priority: int = 0,
    mode: str = "STACKABLE",
    group: str = "",
    **fields: Any,
) -> dict[str, Any]:
    """One offer in rule-file form; ``reward`` is ``{"percent_off": {...}}`` and the like."""
    out: dict[str, Any] = {
        "id": offer_id,
        "scope": dict(scope),
        "stacking": {"priority": priority, "mode": mode, "group": group},
    }
    out.update(reward)
    out.update(fields)
    return out


def ruleset(
    *offers: Mapping[str, Any],
    points: Mapping[str, Any] | None = None,
    tiers: tuple[Mapping[str, Any], ...] = (),
    timezone: str = TIMEZONE,
) -> dict[str, Any]:
    """A rule set; the segments its offers' conditions name are declared for them."""
    segments = sorted({s for o in offers for s in o.get("conditions", {}).get("segments", ())})
    out: dict[str, Any] = {
        "currency": "CNY",
        "timezone": timezone,
        "offers": list(offers),
        "tiers": list(tiers),
        "segments": [{"id": s} for s in segments],
    }
    if points is not None:
        out["points"] = dict(points)
    return out


def programme(
    point_value_minor: int = 10,
    earn_per_amount_minor: int = 1000,
    min_redeem_points: int = 0,
    redeem_step_points: int = 1,
    max_redeem_share_bps: int = 0,
) -> dict[str, Any]:
    """A points programme in rule-file form (defaults: 1 point per 1000, no redemption)."""
    return {
        "point_value_minor": point_value_minor,
        "earn_per_amount_minor": earn_per_amount_minor,
        "min_redeem_points": min_redeem_points,
        "redeem_step_points": redeem_step_points,
        "max_redeem_share_bps": max_redeem_share_bps,
    }


def utc(text: str) -> datetime:
    """An aware datetime from ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
