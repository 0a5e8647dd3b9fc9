"""Pay JIT compile time before serving: price a tiny basket through every kernel.

With ``cache=True`` a warm machine only loads the compiled kernels from disk; a fresh one
compiles them here (tens of seconds), never on a customer's first request.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from engine.pricing.api import price
from engine.pricing.batch import price_batch
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member

_RULES = {
    "points": {
        "point_value_minor": 10,
        "earn_per_amount_minor": 100,
        "redeem_step_points": 1,
        "max_redeem_share_bps": 5000,
    },
    "tiers": [{"id": "t", "earn_multiplier_bps": 10000}],
    "offers": [
        {
            "id": "a",
            "scope": {"skus": ["X"]},
            "percent_off": {"percent_bps": 1000},
            "limits": {"max_discount_minor": 50},
        },
        {
            "id": "b",
            "scope": {"all": True},
            "buy_x_get_y": {"buy": 1, "get": 1, "percent_bps": 5000},
        },
        {
            "id": "c",
            "scope": {"all": True},
            "spend_tiers": {"steps": [{"threshold_minor": 100, "amount_minor": 10}]},
        },
        {"id": "d", "scope": {"all": True}, "bonus_points": {"per_unit": 1}},
    ],
}


def warm_up() -> float:
    """Compile (or load) every kernel; returns the seconds it took."""
    start = time.perf_counter()
    compiled = compile_rules(parse_rules(_RULES), Catalogue.empty())
    basket = Basket(
        (Line("1", "X", 2, 500), Line("2", "Y", 1, 300)), datetime(2026, 1, 1, tzinfo=UTC)
    )
    member = Member("m", tier="t", available_points=100)
    price(compiled, basket, member, redeem_points=-1, explain=True)
    price(compiled, basket, member)
    price_batch(compiled, [basket, basket], [member, None])
    return time.perf_counter() - start
