"""The demo's newer programme features, loaded by :func:`server.cli.demo.load_demo`.

- **Limited quantities and reservations**: the demo programme is ``examples/watsons.yaml``
  plus :data:`LIMITED_OFFER`, a Christmas gift set at 99.00 capped at 100 sets
  (``limits.total_units``); one set is reserved for each of the first 20 VIP Gold members,
  who get a wallet coupon of the offer (``IssueCoupons`` ``reserve_units``/``reserve_until``).
  Not in the example file: a unit cap costs every Redis quote a read of its counters (the
  member cache does not hold them), and the store tests price with the example.
- **Member-bound coupon codes**: a small printed-mailer batch of Panadol codes, one bound to
  each of 10 members who have no Panadol wallet coupon (``CodeBatch.member_ids``).
- **Recurring schedules**: fragrance skus in the catalogue, so the example's
  ``vip-gold-fragrance-fortnight`` (every other Tuesday and Wednesday) has something to apply
  to; demo members include VIP Gold ones (M10004 is one).
- **Shopping-list ids**: the example members' lists are drawn at load, so :func:`try_it`
  can print a ready ``Evaluate`` by ``shopping_list_id`` (others are drawn on the member's
  first ``ListOffers``).

The member choices are deterministic; code and list ids are random, as the stores draw them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from engine.errors import NotFound
from engine.pricing.rules import load_rules, parse_rules
from loyalty.v1 import rules_pb2
from server.store.base import MemberProfile, Store
from server.store.codes import DEFAULT_ALPHABET, CodeBatch
from server.store.snapshot import to_us

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# sku, category, brand, vendor, shelf price (fen): appended to the demo catalogue
FEATURE_SKUS: tuple[tuple[str, str, str, str, int], ...] = (
    ("FRAG-EDT-50", "fragrance", "jo-malone", "estee-lauder", 52000),
    ("FRAG-EDP-30", "fragrance", "chanel", "chanel", 86000),
    ("FRAG-MIST-100", "fragrance", "watsons-scent", "watsons", 8990),
    ("GIFTSET-XMAS", "gift-sets", "watsons-gifts", "watsons", 19900),
)
PRICE = {sku: price for sku, *_, price in FEATURE_SKUS} | {"PANADOL-20": 2590}
GIFT_SET = "GIFTSET-XMAS"
LIMITED_ID = "xmas-gift-set"
UNITS_CAP = 100
LIMITED_OFFER = {
    "id": LIMITED_ID,
    "name": f"Christmas gift set 99.00 (was 199.00), {UNITS_CAP} sets only",
    "scope": {"skus": [GIFT_SET]},
    "stacking": {"priority": 50},
    "limits": {"total_units": UNITS_CAP},
    "fixed_price": {"price_minor": 9900},
}
RESERVE_ISSUE = "demo-xmas-vip-gold"
RESERVED_MEMBERS = 20  # the first VIP Gold members, one set each
BOUND_BATCH = "demo-panadol-mailer"
BOUND_MEMBERS = 10
FRAGRANCE_OFFER = "vip-gold-fragrance-fortnight"
EXAMPLE_MEMBER = "M10004"  # the README's member: VIP Gold


def feature_rows() -> list[dict[str, object]]:
    """Catalogue rows of :data:`FEATURE_SKUS` (as ``demo_catalogue`` builds its rows)."""
    return [
        {
            "sku": sku,
            "category": category,
            "brand": brand,
            "vendor": vendor,
            "no_discount": False,
            "no_earn": False,
        }
        for sku, category, brand, vendor, _ in FEATURE_SKUS
    ]


def demo_rules() -> rules_pb2.RuleSet:
    """``examples/watsons.yaml`` with :data:`LIMITED_OFFER` appended."""
    rules = load_rules(EXAMPLES / "watsons.yaml")
    rules.offers.append(parse_rules({"offers": [LIMITED_OFFER]}).offers[0])
    return rules


def reserved_members(profiles: Sequence[MemberProfile]) -> list[str]:
    return [p.member_id for p in profiles if p.tier == "vip-gold"][:RESERVED_MEMBERS]


def bound_members(profiles: Sequence[MemberProfile]) -> list[str]:
    """Members without the demo's Panadol wallet coupon (see ``load_demo``)."""
    return [
        p.member_id
        for i, p in enumerate(profiles)
        if i % 3 and "switcher-pain-relief" not in p.segments
    ][:BOUND_MEMBERS]


def load_features(store: Store, profiles: Sequence[MemberProfile], now: datetime) -> int:
    """Reserve gift sets, bind a code batch, draw example shopping lists (idempotent ids);
    returns how many codes are bound."""
    valid_from, valid_until = now - timedelta(days=1), now + timedelta(days=30)
    holders = reserved_members(profiles)
    if holders:
        store.issue_coupons(
            RESERVE_ISSUE, LIMITED_ID, holders, 1, valid_from, valid_until, now,
            reserve_units=1, reserve_until=valid_until, units_cap=UNITS_CAP,
        )  # fmt: skip
    bound = bound_members(profiles)
    if bound:
        mailer = CodeBatch(
            BOUND_BATCH, "panadol-coupon", len(bound), "PAN-", "####-####", 8,
            DEFAULT_ALPHABET, 1, False, to_us(valid_from), to_us(valid_until), tuple(bound),
        )  # fmt: skip
        store.create_code_batch(mailer, now)
    for member_id in dict.fromkeys([EXAMPLE_MEMBER, *bound[:1]]):
        if any(p.member_id == member_id for p in profiles):
            store.shopping_list_id(member_id, now)
    return len(bound)


def _grpcurl(target: str, method: str, body: dict[str, object]) -> str:
    return f"  grpcurl -plaintext -d '{json.dumps(body)}' {target} loyalty.v1.{method}"


def _lines(sku: str) -> list[dict[str, object]]:
    return [{"line_id": "1", "sku": sku, "quantity": 1, "unit_price_minor": PRICE[sku]}]


def try_it(store: Store, host: str, port: int, now: datetime, http: str = "") -> list[str]:
    """Ready ``grpcurl`` lines for the features above, with this store's list id and codes;
    ``http``: where the JSON API listens ("" = off)."""
    target = f"{host}:{port or 50051}"
    json_api = f"; as JSON: POST the body to {http}/loyalty.v1.<method>" if http else ""
    out = [f"try the demo's newer features (grpcurl{json_api}):"]
    try:
        list_id = store.shopping_list_id(EXAMPLE_MEMBER, now)
    except NotFound:
        return []  # a demo without M10004 (fewer members)
    out += [
        f"- shopping list: {EXAMPLE_MEMBER}'s list id is {list_id} (ListOffers gives it);"
        " price a basket by it:",
        _grpcurl(
            target,
            "CheckoutService/Evaluate",
            {"shopping_list_id": list_id, "lines": _lines("FRAG-EDT-50"), "explain": True},
        ),
        f"- recurrence: that answer shows {FRAGRANCE_OFFER} applied (VIP Gold, every other"
        " Tue/Wed 10-22 Shanghai) or NOT_IN_TIME_WINDOW with its next_start",
        f"- limited quantities: {LIMITED_ID} sells {UNITS_CAP} sets at 99.00, 1 held for each of"
        f" {RESERVED_MEMBERS} VIP Gold members (GetMember shows reserved_units):",
        _grpcurl(target, "CampaignService/ListOfferUsage", {"offer_ids": [LIMITED_ID]}),
    ]
    codes, _ = store.list_codes(BOUND_BATCH, "", "", 2, now)
    if len(codes) == 2:
        code, owner, other = codes[0].code, codes[0].member_id, codes[1].member_id
        out += [
            f"- member-bound codes: {code} is {owner}'s only; for {other} it is WRONG_MEMBER:",
            _grpcurl(
                target,
                "CheckoutService/Evaluate",
                {"member_id": other, "lines": _lines("PANADOL-20"), "coupon_codes": [code]},
            ),
        ]
    return out


__all__ = [
    "BOUND_BATCH",
    "FEATURE_SKUS",
    "LIMITED_ID",
    "LIMITED_OFFER",
    "demo_rules",
    "feature_rows",
    "load_features",
    "try_it",
]
