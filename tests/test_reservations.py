"""Limited quantities and reservations (``Limits.total_units``, ``units_per_store``,
``IssueCouponsRequest.reserve_units``), over gRPC on both stores, plus the kernel/reference
twin property and the store-level race (the acceptance figure).

An offer with a unit cap discounts at most the units left (2 of 3 bottles at the special
price when 2 are left); units reserved for members are held back from everyone else until they
lapse or are released; the holder's commits use them first.
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.pricing.api import price
from engine.pricing.compiler import compile_rules
from engine.pricing.reference.core import price_reference
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, RemainingLimits
from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2, rules_pb2
from server.store import MemberProfile, PricingState, Store, lists
from server.store.checkout import commit as store_commit
from server.store.policy import Policy
from tests.strategies import pricing_cases
from tests.test_server_checkout import (
    CATALOGUE,
    RULES,
    T0,
    basket,
    commit,
    published,
    violations,
)
from tests.test_twin import check_invariants

_RULES: dict[str, Any] = copy.deepcopy(RULES)
_RULES["offers"] += [
    {
        "id": "wine-special",
        "scope": {"skus": ["WINE"]},
        "stacking": {"priority": 50},
        "limits": {"total_units": 5},
        "amount_off": {"amount_minor": 500},
    },
    {
        "id": "gin-store",
        "scope": {"skus": ["GIN"]},
        "stacking": {"priority": 60},
        "limits": {"units_per_store": 2},
        "amount_off": {"amount_minor": 100},
    },
]
_CATALOGUE = [*CATALOGUE, ("WINE", "drinks"), ("GIN", "drinks")]
WINE3 = [("W", "WINE", 3, 2000)]


@pytest.fixture(params=["embedded", "redis", "cluster"])
def shop(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    members = [(m, "member") for m in ("vip1", "h1", "h2", "h3")]
    with published(tmp_path, request, _RULES, _CATALOGUE, members) as stubs:
        stubs.kind = request.param
        yield stubs


def wine(shop: Any, member: str = "vip1", qty: int = 3, store: str = "s1") -> int:
    """The wine special's discount on ``qty`` bottles at Evaluate."""
    req = basket(member, [("W", "WINE", qty, 2000)], at=None)
    req.store_id = store
    r = shop.checkout.Evaluate(req)
    return sum(o.discount_minor for o in r.offers if o.offer_id == "wine-special")


def reserve(
    shop: Any, issue_id: str, members: list[str], units: int = 2, hours: int = 24
) -> members_pb2.IssueCouponsResponse:
    req = members_pb2.IssueCouponsRequest(
        issue_id=issue_id, offer_id="wine-special", member_ids=members, uses=5
    )
    req.valid_from.FromDatetime(T0 - timedelta(days=1))
    req.valid_until.FromDatetime(T0 + timedelta(days=30))
    req.reserve_units = units
    req.reserve_until.FromDatetime(T0 + timedelta(hours=hours))
    return shop.members.IssueCoupons(req)


def test_a_unit_cap_discounts_only_the_units_left_at_evaluate_and_commit(shop: Any) -> None:
    # given the wine special capped at 5 bottles, 3 of them sold
    first = commit(shop, "t1", basket("vip1", WINE3, at=None))
    assert [(o.offer_id, o.discount_minor) for o in first.result.offers] == [("wine-special", 1500)]
    # when a basket of 3 more is priced: only 2 bottles are left
    assert wine(shop) == 1000
    done = commit(shop, "t2", basket("vip1", WINE3, at=None))
    # then the commit takes the 2 and the offer is used up, with the reason explained
    assert [d.amount_minor for d in done.result.lines[0].discounts] == [1000]
    req = basket("vip1", WINE3, at=None)
    req.explain = True
    r = shop.checkout.Evaluate(req)
    assert not r.offers
    why = [(e.reason, e.detail) for e in r.explanations if e.offer_id == "wine-special"]
    assert why == [("LIMIT_REACHED", 4)]


def test_a_cancel_gives_its_units_back(shop: Any) -> None:
    commit(shop, "t1", basket("vip1", WINE3, at=None))
    commit(shop, "t2", basket("vip1", [("W", "WINE", 2, 2000)], at=None))
    assert wine(shop) == 0
    shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t1"))
    assert wine(shop) == 1500
    shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t1"))  # idempotent
    assert wine(shop, qty=5) == 1500


def test_a_per_store_cap_counts_each_store_apart(shop: Any) -> None:
    def gin(store: str) -> int:
        req = basket("vip1", [("G", "GIN", 3, 800)], at=None)
        req.store_id = store
        done = shop.checkout.Commit(
            checkout_pb2.CommitRequest(transaction_id=f"g-{store}-{shop.n}", basket=req)
        )
        shop.n += 1
        return sum(o.discount_minor for o in done.result.offers if o.offer_id == "gin-store")

    shop.n = 0
    assert gin("s1") == 200  # 2 of 3 units at 100 off
    assert gin("s1") == 0
    assert gin("s2") == 200  # another store has its own 2


def test_reserved_units_are_held_from_others_and_the_holder_is_served(shop: Any) -> None:
    # given 2 bottles each reserved for h1 and h2 out of 5
    out = reserve(shop, "r1", ["h1", "h2"])
    assert (out.issued, list(out.unreserved_member_ids)) == (2, [])
    # then others may buy only the 1 unreserved bottle, a holder its 2 and that 1
    assert wine(shop, "vip1") == 500
    assert wine(shop, "h1") == 1500
    # and a third reservation of 2 is refused: h3 gets no coupon
    third = reserve(shop, "r2", ["h3"])
    assert (third.issued, list(third.unreserved_member_ids)) == (0, ["h3"])
    assert not shop.member("h3").wallet
    # when h1 buys 2 bottles, they come out of its reservation
    done = commit(shop, "t1", basket("h1", [("W", "WINE", 2, 2000)], at=None))
    assert done.result.offers[0].discount_minor == 1000
    coupon = shop.member("h1").wallet[0]
    assert coupon.reserved_units == 0
    assert shop.member("h2").wallet[0].reserved_units == 2
    # so the others' share is unchanged, and h2 keeps its 2
    assert wine(shop, "vip1") == 500
    assert wine(shop, "h2") == 1500
    usage = shop.campaigns.ListOfferUsage(
        campaigns_pb2.ListOfferUsageRequest(offer_ids=["wine-special"])
    ).offers[0]
    assert (usage.units_sold, usage.units_reserved, usage.total_units_cap) == (2, 2, 5)


def test_the_shopping_list_shows_the_units_held_for_the_member(shop: Any) -> None:
    reserve(shop, "r1", ["h1"], units=2, hours=24)
    answer = shop.members.ListOffers(members_pb2.ListOffersRequest(member_id="h1"))
    assert lists.well_formed(answer.list_id)  # on every store, a cluster too
    listed = answer.offers
    (wine_offer,) = [o for o in listed if o.offer_id == "wine-special" and o.source == "wallet"]
    assert wine_offer.reserved_units == 2
    assert wine_offer.reserved_until.ToDatetime(tzinfo=UTC) == T0 + timedelta(hours=24)
    # once released, the list shows none held
    shop.members.ReleaseReservation(
        members_pb2.ReleaseReservationRequest(member_id="h1", offer_id="wine-special")
    )
    listed = shop.members.ListOffers(members_pb2.ListOffersRequest(member_id="h1")).offers
    (wine_offer,) = [o for o in listed if o.offer_id == "wine-special" and o.source == "wallet"]
    assert wine_offer.reserved_units == 0 and not wine_offer.HasField("reserved_until")


def test_a_reservation_lapses_at_its_deadline(shop: Any) -> None:
    reserve(shop, "r1", ["h1", "h2"], hours=2)
    assert wine(shop, "vip1") == 500
    h1 = shop.member("h1").wallet[0]
    assert (h1.reserved_units, h1.reserved_until.ToDatetime(tzinfo=UTC)) == (
        2,
        T0 + timedelta(hours=2),
    )
    shop.clock.now = T0 + timedelta(hours=2)
    assert wine(shop, "vip1", qty=5) == 2500
    assert shop.member("h1").wallet[0].reserved_units == 0


def test_release_gives_the_units_back_once(shop: Any) -> None:
    reserve(shop, "r1", ["h1", "h2"])
    req = members_pb2.ReleaseReservationRequest(member_id="h2", offer_id="wine-special")
    assert shop.members.ReleaseReservation(req).units_released == 2
    assert wine(shop, "vip1") == 1500
    assert shop.members.ReleaseReservation(req).units_released == 0
    assert shop.member("h2").wallet[0].reserved_units == 0
    assert shop.member("h2").wallet[0].offer_id == "wine-special"  # the coupon stays


def test_withdrawn_consent_gives_a_personalised_coupons_units_back(shop: Any) -> None:
    # given h1 consents and holds a personalised coupon with 2 bottles reserved
    yes = members_pb2.Consent(marketing=True, automated_decisions=True)
    shop.members.UpsertMember(
        members_pb2.UpsertMemberRequest(member_id="h1", tier="member", consent=yes)
    )
    req = members_pb2.IssueCouponsRequest(
        issue_id="p1", offer_id="wine-special", member_ids=["h1"], uses=5, personalised=True
    )
    req.valid_until.FromDatetime(T0 + timedelta(days=30))
    req.reserve_units = 2
    req.reserve_until.FromDatetime(T0 + timedelta(days=1))
    assert shop.members.IssueCoupons(req).issued == 1
    assert wine(shop, "vip1", qty=5) == 1500  # 3 of 5 left to others
    # when h1 withdraws automated-decision consent, the coupon is revoked
    no = members_pb2.Consent(marketing=True, automated_decisions=False)
    shop.members.UpsertMember(
        members_pb2.UpsertMemberRequest(member_id="h1", tier="member", consent=no)
    )
    coupon = shop.member("h1").wallet[0]
    assert (coupon.status, coupon.reserved_units) == (members_pb2.WalletCoupon.STATUS_REVOKED, 0)
    # then its 2 bottles are everybody's again
    assert wine(shop, "vip1", qty=5) == 2500
    usage = shop.campaigns.ListOfferUsage(
        campaigns_pb2.ListOfferUsageRequest(offer_ids=["wine-special"])
    ).offers[0]
    assert usage.units_reserved == 0


def test_a_retried_issue_reserves_nothing_more(shop: Any) -> None:
    assert reserve(shop, "r1", ["h1", "h2"]).issued == 2
    again = reserve(shop, "r1", ["h1", "h2"])
    assert (again.issued, list(again.unreserved_member_ids)) == (2, [])
    assert wine(shop, "vip1") == 500  # still 4 held, not 8 (which would leave none)


def test_bad_unit_caps_and_reservations_name_their_fields(shop: Any) -> None:
    bad = copy.deepcopy(_RULES)
    bad["offers"][-2]["limits"]["total_units"] = -1
    bad["offers"][-1]["limits"] = {"total_units": 3}
    bad["offers"][-1].pop("amount_off")
    bad["offers"][-1]["spend_tiers"] = {"steps": [{"threshold_minor": 100, "amount_minor": 10}]}
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(bad)))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    n = len(bad["offers"])
    assert set(violations(exc.value)) >= {
        f"rules.offers[{n - 2}].limits.total_units",
        f"rules.offers[{n - 1}].limits.total_units",
    } or set(violations(exc.value)) >= {
        f"offers[{n - 2}].limits.total_units",
        f"offers[{n - 1}].limits.total_units",
    }
    req = members_pb2.IssueCouponsRequest(
        issue_id="x", offer_id="cola-3for2", member_ids=["h1"], uses=1, reserve_units=2
    )
    req.valid_until.FromDatetime(T0 + timedelta(days=1))
    with pytest.raises(grpc.RpcError) as exc:
        shop.members.IssueCoupons(req)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(exc.value)) == {"reserve_units", "reserve_until"}
    req.offer_id = "wine-special"
    req.reserve_until.FromDatetime(T0 - timedelta(hours=1))
    with pytest.raises(grpc.RpcError) as exc:
        shop.members.IssueCoupons(req)
    assert violations(exc.value) == ["reserve_until"]
    with pytest.raises(grpc.RpcError) as exc:
        shop.members.ReleaseReservation(members_pb2.ReleaseReservationRequest(member_id="h1"))
    assert violations(exc.value) == ["offer_id"]


# ---------------------------------------------------------------------------------------------
# The twins agree with units left


@settings(max_examples=150)
@given(pricing_cases(), st.data())
def test_kernel_equals_reference_with_units_left(case: Any, data: st.DataObject) -> None:
    rules, catalogue, basket_, member, kw = case
    ids = [o.id for o in rules.offers]
    if ids:
        chosen = data.draw(st.lists(st.sampled_from(ids), max_size=3, unique=True))
        kw["limits"] = {
            o: RemainingLimits(units=data.draw(st.sampled_from([None, 0, 1, 2, 3, 5, 40])))
            for o in chosen
        }
    expected = price_reference(rules, catalogue, basket_, member, **kw)
    got = price(compile_rules(rules, catalogue), basket_, member, **kw)
    assert got == expected
    check_invariants(got)
    for offer in got.offers:
        left = kw["limits"].get(offer.offer_id) if ids else None
        if left is not None and left.units is not None:
            assert offer.units <= left.units


# ---------------------------------------------------------------------------------------------
# The race (acceptance): 1,000 concurrent commits, 100 units, 30 reserved for 30 holders

RACE_RULES = rules_pb2.RuleSet(currency="CNY", timezone="UTC")
_offer = RACE_RULES.offers.add(id="limited")
_offer.scope.skus.append("WINE")
_offer.amount_off.amount_minor = 500
_offer.limits.total_units = 100
RACE_COMPILED = engine.compile_rules(RACE_RULES, engine.Catalogue.empty())
RACE_POLICY = Policy.from_rules(RACE_RULES)
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def race_store(each_store: Store) -> Store:
    return each_store


def _buy(store: Store, tx: str, member_id: str | None) -> int:
    """Commit 1 bottle; the units the limited offer counted."""
    b = Basket((Line("1", "WINE", 1, 2000),), NOW, "s1", "pos")

    def price_fn(state: PricingState) -> engine.PricingResult:
        return engine.price(
            RACE_COMPILED, b, state.member, coupons=state.coupons, limits=state.limits
        )

    done = store_commit(
        store, tx, tx, price_fn, NOW, policy=RACE_POLICY, basket=b, member_id=member_id
    )
    return sum(u.units for u in done.outcome.offers if u.offer_id == "limited")


def test_a_thousand_racing_commits_sell_exactly_the_cap(race_store: Store) -> None:
    holders = [f"h{i:02d}" for i in range(30)]
    for m in holders:
        race_store.upsert_member(MemberProfile(m, tier=""), NOW)
    out = race_store.issue_coupons(
        "race",
        "limited",
        holders,
        1,
        NOW - timedelta(days=1),
        NOW + timedelta(days=1),
        NOW,
        reserve_units=1,
        reserve_until=NOW + timedelta(hours=1),
        units_cap=100,
    )
    assert (len(out.coupon_ids), out.unreserved) == (30, ())
    # 970 guests and the 30 holders, interleaved, on 16 threads
    buyers: list[str | None] = [None] * 970
    for k, m in enumerate(holders):
        buyers.insert(k * 33, m)
    start = threading.Barrier(16)

    def run(k: int) -> tuple[str | None, int]:
        if k < 16:
            start.wait()
        return buyers[k], _buy(race_store, f"tx{k}", buyers[k])

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(run, range(len(buyers))))
    to_holders = sum(n for m, n in results if m is not None)
    to_others = sum(n for m, n in results if m is None)
    served = {m for m, n in results if m is not None and n == 1}
    print(f"race: {to_others} units to non-holders, {to_holders} to holders")
    assert (to_others, to_holders, len(served)) == (70, 30, 30)
    state = race_store.pricing_state(RACE_POLICY, None, None, (), NOW)
    assert state.units["limited"].sold == 100
    assert state.limits["limited"].units == 0
