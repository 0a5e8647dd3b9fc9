"""Typed member attributes in offer conditions (issue 11, item 11).

Members carry typed attributes (string, number, date; ``UpsertMember`` replaces them whole), a
rule set declares the ones its offers may test (``member_attributes``), and an offer's
``conditions.attributes`` must all hold: a member without the attribute, or with a value of
another type, fails them, and a guest basket is ``MEMBER_REQUIRED``. The compiler turns the
distinct tests into at most 64 bits (``O_ATTR_MASK``), the member's are computed when its array
is built (``M_ATTRS``), and the kernel, the reference, the byte path and both stores agree.
"""

from __future__ import annotations

import copy
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import given, settings

from engine.errors import InvalidInput
from engine.pricing import layout as L
from engine.pricing.api import encode_member, price
from engine.pricing.attributes import MAX_PREDICATES, member_mask
from engine.pricing.compiler import compile_rules
from engine.pricing.constants import Reason
from engine.pricing.reference.core import price_reference
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member
from engine.pricing.validate import validate
from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2
from server.store import EmbeddedStore, MemberProfile, Store
from tests.strategies import attribute_cases
from tests.test_server_checkout import (
    RULES,
    T0,
    basket,
    published,
    violations,
)
from tests.test_wire import both, request_of

A = members_pb2.MemberAttribute
DECLARED = [
    {"name": "household_size", "type": "NUMBER"},
    {"name": "home_store", "type": "STRING"},
    {"name": "member_since", "type": "DATE"},
]
FAMILY = {
    "id": "family-rice",
    "scope": {"skus": ["RICE"]},
    "conditions": {
        "attributes": [
            {"name": "household_size", "number": {"min": 3}},
            {"name": "home_store", "any_of": ["S1"]},
        ]
    },
    "stacking": {"priority": 5},
    "amount_off": {"amount_minor": 200},
}


def rules_with(*offers: dict[str, Any], declared: list[dict[str, Any]] = DECLARED) -> Any:
    return parse_rules({"member_attributes": declared, "offers": list(offers)})


def offer(conditions: dict[str, Any], offer_id: str = "o1") -> dict[str, Any]:
    return {
        "id": offer_id,
        "scope": {"all": True},
        "conditions": conditions,
        "percent_off": {"percent_bps": 1000},
    }


# --- validation: every problem named by its path ------------------------------------------


@pytest.mark.parametrize(
    ("declared", "attributes", "field", "words"),
    [
        (DECLARED, [{"name": "pets", "any_of": ["dog"]}], "attributes[0].name", "not a declared"),
        (DECLARED, [{"name": "home_store", "any_of": []}], "attributes[0].any_of", "at least one"),
        (DECLARED, [{"name": "home_store", "any_of": [""]}], "attributes[0].any_of[0]", "empty"),
        (
            DECLARED,
            [
                {"name": "home_store", "any_of": ["S1"]},
                {"name": "home_store", "number": {"min": 1}},
            ],
            "attributes[1].number",
            "type mismatch",
        ),
        (
            DECLARED,
            [{"name": "household_size", "any_of": ["3"]}],
            "attributes[0].any_of",
            "type mismatch",
        ),
        (
            DECLARED,
            [{"name": "member_since", "number": {"min": 1}}],
            "attributes[0].number",
            "type mismatch",
        ),
        (
            DECLARED,
            [{"name": "household_size", "number": {"min": 5, "max": 3}}],
            "attributes[0].number.max",
            "inverted range",
        ),
        (
            DECLARED,
            [{"name": "household_size", "number": {"min": 3, "max": 3}}],
            "attributes[0].number.max",
            "inverted range",
        ),
        (
            DECLARED,
            [{"name": "household_size", "number": {}}],
            "attributes[0].number",
            "range is required",
        ),
        (DECLARED, [{"name": "household_size"}], "attributes[0].number", "range is required"),
        (
            DECLARED,
            [{"name": "member_since", "date": {"min": "2024-01-01", "max": "2023-01-01"}}],
            "attributes[0].date.max",
            "inverted range",
        ),
        (
            DECLARED,
            [{"name": "member_since", "date": {"min": "2023-02-30"}}],
            "attributes[0].date.min",
            "YYYY-MM-DD",
        ),
        (
            DECLARED,
            [{"name": "member_since", "date": {"max": "20230201"}}],
            "attributes[0].date.max",
            "YYYY-MM-DD",
        ),
    ],
)
def test_a_bad_attribute_condition_is_named_by_its_path(declared, attributes, field, words):
    rules = rules_with(
        offer({"tiers": []}), offer({"attributes": attributes}, "o2"), declared=declared
    )
    problems = {v.field: v.description for v in validate(rules)}
    assert words in problems[f"offers[1].conditions.{field}"], problems


def test_bad_declarations_are_named_by_their_path():
    declared = [
        {"name": "household_size", "type": "NUMBER"},
        {"name": "household_size", "type": "STRING"},
        {"name": "bad name", "type": "DATE"},
        {"name": "untyped"},
    ]
    problems = {v.field: v.description for v in validate(rules_with(declared=declared))}
    assert "duplicate" in problems["member_attributes[1].name"]
    assert "A-Z a-z" in problems["member_attributes[2].name"]
    assert "is required" in problems["member_attributes[3].type"]
    too_many = [{"name": f"a{i}", "type": "NUMBER"} for i in range(65)]
    assert (
        "at most 64"
        in {v.field: v.description for v in validate(rules_with(declared=too_many))}[
            "member_attributes"
        ]
    )


def test_more_than_64_distinct_tests_is_a_problem_but_repeated_tests_count_once():
    # given 64 offers each with its own test, and one more that repeats the first
    offers = [
        offer({"attributes": [{"name": "household_size", "number": {"min": i}}]}, f"o{i}")
        for i in range(64)
    ]
    offers.append(
        offer({"attributes": [{"name": "household_size", "number": {"min": 0}}]}, "again")
    )
    assert validate(rules_with(*offers)) == []
    compiled = compile_rules(rules_with(*offers))
    assert len(compiled.attr_predicates) == MAX_PREDICATES
    assert compiled.arrays.offer[0, L.O_ATTR_MASK] == compiled.arrays.offer[64, L.O_ATTR_MASK] == 1
    assert compiled.arrays.offer[63, L.O_ATTR_MASK] == -(2**63)  # bit 63 as a signed int64
    # when a 65th distinct test is added, then the offer that adds it is named
    offers.append(offer({"attributes": [{"name": "household_size", "number": {"max": 1}}]}, "more"))
    problems = {v.field: v.description for v in validate(rules_with(*offers))}
    assert "more than 64 distinct" in problems["offers[65].conditions.attributes[0]"]


# --- the engine: masks, the kernel and the reference ----------------------------------------


def test_the_member_mask_has_the_bits_of_the_tests_it_meets():
    rules = rules_with(
        offer(FAMILY["conditions"], "family"),
        offer({"attributes": [{"name": "member_since", "date": {"max": "2020-01-01"}}]}, "old"),
        offer({"attributes": [{"name": "home_store", "any_of": ["S1"]}]}, "home"),
    )
    compiled = compile_rules(rules)
    assert [p.name for p in compiled.attr_predicates] == [
        "household_size",
        "home_store",
        "member_since",
    ]
    assert compiled.arrays.offer[:, L.O_ATTR_MASK].tolist() == [0b011, 0b100, 0b010]
    assert compiled.arrays.offer[:, L.O_NEEDS_MEMBER].tolist() == [1, 1, 1]
    preds = compiled.attr_predicates
    assert member_mask(preds, {"household_size": 3, "home_store": "S1"}) == 0b011
    assert member_mask(preds, {"household_size": 2, "member_since": date(2019, 12, 31)}) == 0b100
    assert member_mask(preds, {"member_since": date(2020, 1, 1)}) == 0  # max is exclusive
    # a value of another type than declared meets nothing
    assert member_mask(preds, {"household_size": "4", "home_store": 1}) == 0
    m = Member("m", attributes={"household_size": 4, "home_store": "S1"})
    assert encode_member(compiled, m, 0)[L.M_ATTRS] == 0b011
    assert encode_member(compiled, None, 0)[L.M_ATTRS] == 0


BASKET = Basket((Line("1", "RICE", 1, 4500),), datetime(2026, 3, 2, 4, tzinfo=UTC))


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (Member("m", attributes={"household_size": 4, "home_store": "S1"}), None),
        (Member("m", attributes={"household_size": 2, "home_store": "S1"}), "mismatch"),
        (Member("m", attributes={"household_size": 4}), "mismatch"),
        (Member("m"), "mismatch"),
        (None, "guest"),
    ],
)
def test_all_tests_must_hold_and_a_guest_is_member_required(pricer, member, reason):
    rules = rules_with(FAMILY)
    r = pricer(rules, None, BASKET, member, explain=True)
    if reason is None:
        assert [o.offer_id for o in r.offers] == ["family-rice"]
    else:
        expected = Reason.MEMBER_REQUIRED if reason == "guest" else Reason.MEMBER_ATTRIBUTE_MISMATCH
        assert [(e.offer_id, e.reason) for e in r.explanations] == [("family-rice", expected)]
        assert r.explanations[0].message


@settings(max_examples=300)
@given(attribute_cases())
def test_kernel_equals_reference_with_attribute_conditions(case):
    # given a random rule set whose offers test member attributes, and a member carrying some
    rules, catalogue, basket_, member, kw = case
    # when the kernel and the reference price it, then they agree exactly
    assert price(compile_rules(rules, catalogue), basket_, member, **kw) == price_reference(
        rules, catalogue, basket_, member, **kw
    )


@settings(max_examples=150)
@given(attribute_cases())
def test_the_byte_path_agrees_with_attribute_conditions(case):
    rules, catalogue, basket_, member, kw = case
    compiled = compile_rules(rules, catalogue)
    names = {o.id: o.name or f"name of {o.id}" for o in rules.offers}
    data = request_of(basket_, member.member_id if member else "", kw["redeem_points"])
    checked, fast = both(
        compiled, names, data.SerializeToString(), member, kw["coupons"], kw["limits"]
    )
    assert isinstance(checked, checkout_pb2.EvaluateResponse) and fast == checked


# --- the stores ------------------------------------------------------------------------------


@pytest.fixture
def store(each_store: Store) -> Store:
    return each_store


def test_both_stores_keep_attributes_and_replace_them_whole(store):
    attrs = {"household_size": 4, "home_store": "S1", "member_since": date(2019, 5, 1)}
    rec = store.upsert_member(MemberProfile("m1", attributes=attrs), T0)
    assert rec.attributes == attrs
    assert store.get_member("m1", T0).attributes == attrs
    assert store.get_member("m1", T0).engine_member(T0).attributes == attrs
    store.upsert_member(MemberProfile("m1", attributes={"household_size": 2}), T0)
    assert store.get_member("m1", T0).attributes == {"household_size": 2}
    store.upsert_member(MemberProfile("m1"), T0)
    assert store.get_member("m1", T0).attributes == {}
    with pytest.raises(InvalidInput):
        store.upsert_member(MemberProfile("m1", attributes={"bad name": 1}), T0)
    with pytest.raises(InvalidInput):
        store.upsert_member(MemberProfile("m1", attributes={"s": "x" * 129}), T0)


def test_an_embedded_file_of_schema_7_gains_empty_attributes(tmp_path):
    # given a file written before attributes (schema 7: no members.attributes column)
    with EmbeddedStore(tmp_path / "data") as s:
        s.upsert_member(MemberProfile("m1", tier="vip"), T0)
    db_file = tmp_path / "data" / "loyalty.sqlite3"
    with sqlite3.connect(db_file) as db:
        db.execute("ALTER TABLE members DROP COLUMN attributes")
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version VALUES (7, 0)")
    # when it is opened, then it is migrated and the member has no attributes
    with EmbeddedStore(tmp_path / "data") as s:
        assert s.get_member("m1", T0).attributes == {}
        s.upsert_member(MemberProfile("m1", attributes={"home_store": "S1"}), T0)
        assert s.get_member("m1", T0).attributes == {"home_store": "S1"}


# --- end to end over gRPC, on both stores ---------------------------------------------------

_RULES: dict[str, Any] = copy.deepcopy(RULES)
_RULES["member_attributes"] = DECLARED
_RULES["offers"].append(FAMILY)
RICE = [("L1", "RICE", 1, 4500)]


@pytest.fixture(params=["embedded", "redis"])
def shop(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    with published(tmp_path, request, _RULES) as stubs:
        yield stubs


def upsert(shop: Any, member_id: str, *attributes: members_pb2.MemberAttribute) -> Any:
    return shop.members.UpsertMember(
        members_pb2.UpsertMemberRequest(member_id=member_id, tier="member", attributes=attributes)
    )


def family_applies(shop: Any, member_id: str) -> bool:
    """Whether family-rice applies, asked of the byte path and of the checked path (explain),
    which must agree."""
    fast = shop.checkout.Evaluate(basket(member_id, RICE, at=None))
    req = basket(member_id, RICE, at=None)
    req.explain = True
    checked = shop.checkout.Evaluate(req)
    applied = {o.offer_id for o in fast.offers}
    assert applied == {o.offer_id for o in checked.offers}
    assert fast.net_minor == checked.net_minor
    if "family-rice" not in applied:
        why = {e.offer_id: e.reason for e in checked.explanations}
        assert why["family-rice"] in ("MEMBER_ATTRIBUTE_MISMATCH", "MEMBER_REQUIRED"), why
    return "family-rice" in applied


def test_an_offer_for_large_households_of_a_home_store(shop):
    # given a member of a household of 4 whose home store is S1
    upsert(
        shop,
        "fam",
        A(name="household_size", number_value=4),
        A(name="home_store", string_value="S1"),
    )
    # then the offer for household_size >= 3 at home store S1 applies, and a commit takes it
    assert family_applies(shop, "fam")
    done = shop.checkout.Commit(
        checkout_pb2.CommitRequest(transaction_id="t1", basket=basket("fam", RICE, at=None))
    )
    assert "family-rice" in {o.offer_id for o in done.result.offers}
    # when the household shrinks to 2, then it no longer applies (the quote caches see it)
    upsert(
        shop,
        "fam",
        A(name="household_size", number_value=2),
        A(name="home_store", string_value="S1"),
    )
    assert not family_applies(shop, "fam")
    # and when it grows again but the home store moves, still not
    upsert(
        shop,
        "fam",
        A(name="household_size", number_value=5),
        A(name="home_store", string_value="S2"),
    )
    assert not family_applies(shop, "fam")
    upsert(
        shop,
        "fam",
        A(name="household_size", number_value=3),
        A(name="home_store", string_value="S1"),
    )
    assert family_applies(shop, "fam")
    # a member without attributes and a guest never get it
    upsert(shop, "plain")
    assert not family_applies(shop, "plain")
    assert not family_applies(shop, "")


def test_get_member_returns_the_attributes_sorted_and_typed(shop):
    sent = [
        A(name="member_since", date_value="2019-05-01"),
        A(name="household_size", number_value=-(2**63)),
        A(name="home_store", string_value="上海-S1"),
    ]
    reply = upsert(shop, "m1", *sent)
    got = shop.member("m1")
    assert list(got.attributes) == list(reply.attributes) == sorted(sent, key=lambda a: a.name)
    # an upsert without attributes clears them, like the other profile fields
    upsert(shop, "m1")
    assert list(shop.member("m1").attributes) == []


def test_the_shopping_list_shows_the_offer_to_members_who_meet_its_tests(shop):
    upsert(
        shop,
        "fam",
        A(name="household_size", number_value=4),
        A(name="home_store", string_value="S1"),
    )
    upsert(
        shop,
        "small",
        A(name="household_size", number_value=1),
        A(name="home_store", string_value="S1"),
    )

    def member_offers(member_id: str) -> list[str]:
        req = members_pb2.ListOffersRequest(member_id=member_id)
        return [o.offer_id for o in shop.members.ListOffers(req).offers if o.source == "member"]

    assert "family-rice" in member_offers("fam")
    assert "family-rice" not in member_offers("small")


def test_bad_attribute_values_are_invalid_argument_with_their_paths(shop):
    upsert(shop, "m1", A(name="home_store", string_value="S1"))
    with pytest.raises(grpc.RpcError) as exc:
        upsert(
            shop,
            "m1",
            A(name="household_size", number_value=4),
            A(name="home_store", string_value="S1"),
            A(name="note", string_value="x" * 129),
            A(name="bad name", number_value=1),
            A(name="member_since", date_value="2020-02-30"),
            A(name="home_store", string_value="S2"),
            A(name="nothing"),
            A(name="since", date_value="1 May 2019"),
            A(string_value="no name"),
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == [
        "attributes[2].string_value",
        "attributes[3].name",
        "attributes[4].date_value",
        "attributes[5].name",
        "attributes[6]",
        "attributes[7].date_value",
        "attributes[8].name",
    ]
    with pytest.raises(grpc.RpcError) as exc:
        upsert(shop, "m1", *[A(name=f"a{i}", number_value=i) for i in range(33)])
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == ["attributes"]
    # nothing changed
    assert [a.name for a in shop.member("m1").attributes] == ["home_store"]


def test_publishing_a_condition_on_an_undeclared_attribute_is_invalid_argument(shop):
    bad = copy.deepcopy(_RULES)
    bad["offers"][-1]["conditions"]["attributes"][1]["name"] = "favourite_store"
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(bad)))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == ["offers[5].conditions.attributes[1].name"]


# --- the console's offer editor keeps and edits attribute tests -----------------------------


def test_the_offer_editor_round_trips_attribute_tests():
    from server.web.console import offer_form as F
    from server.web.console.offers import input_names, row_counts

    # given an offer with a test of each type
    o = rules_with(
        {
            **FAMILY,
            "conditions": {
                "attributes": [
                    *FAMILY["conditions"]["attributes"],
                    {"name": "household_size", "number": {"min": 0, "max": 9}},
                    {"name": "member_since", "date": {"max": "2020-01-01"}},
                ]
            },
        }
    ).offers[0]
    # when the editor shows it and reads its form back, then nothing is lost
    values = F.values_from_offer(o, "CNY", "Asia/Shanghai")
    assert values["conditions.attributes[1].any_of"] == "S1"
    assert F.offer_from_values(values, "CNY", "Asia/Shanghai").offer == o
    rows = row_counts(values, "amount_off")
    assert rows[F.ATTRIBUTES] == 4
    assert "conditions.attributes[3].date.max" in input_names("amount_off", rows)
    # and an empty row is left out, a bad number is named at its input
    values["conditions.attributes[4].name"] = ""
    values["conditions.attributes[0].number.min"] = "three"
    parsed = F.offer_from_values(values, "CNY", "Asia/Shanghai")
    assert "conditions.attributes[0].number.min" in parsed.errors
    assert len(parsed.offer.conditions.attributes) == 4


def test_a_simulation_over_the_ledger_reads_the_members_current_attributes(shop):
    # given a household of 4 at home store S1 bought rice with the family offer
    upsert(
        shop,
        "fam",
        A(name="household_size", number_value=4),
        A(name="home_store", string_value="S1"),
    )
    done = shop.checkout.Commit(
        checkout_pb2.CommitRequest(transaction_id="t1", basket=basket("fam", RICE, at=None))
    )
    given = {o.offer_id: o.discount_minor for o in done.result.offers}["family-rice"]

    def simulated() -> int:
        reply = shop.campaigns.Simulate(campaigns_pb2.SimulateRequest(rules=parse_rules(_RULES)))
        offers = {o.offer_id: o.discount_minor for o in reply.draft.offers}
        assert offers.get("family-rice", 0) == {
            o.offer_id: o.discount_minor for o in reply.current.offers
        }.get("family-rice", 0)
        return offers.get("family-rice", 0)

    # then replaying the ledger under the same rules gives the family offer its discount
    assert simulated() == given > 0
    # and once the household shrinks, a replay prices it with the attributes the member has now
    upsert(
        shop,
        "fam",
        A(name="household_size", number_value=2),
        A(name="home_store", string_value="S1"),
    )
    assert simulated() == 0
