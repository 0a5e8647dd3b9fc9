"""Member-only items (``RuleSet.restricted_items``), over gRPC on both stores.

A restriction names the items only members of some tiers or segments may buy. Evaluate prices
a restricted line as usual, marks it (``LineResult.restricted``, ``restriction_id``) and
explains it (reason ``ITEM_RESTRICTED``, detail = the line's index); Commit refuses the basket
(FAILED_PRECONDITION naming ``basket.lines[i]``) unless the lane overrides with
``allow_restricted_items``; SyncOffline records what the offline lane sold. The byte path of
Evaluate answers what the checked path answers, and the twins agree.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

import engine
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.reference.core import price_reference
from engine.pricing.restrictions import ITEM_RESTRICTED
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Line, Member
from engine.pricing.validate import validate
from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2, rules_pb2
from server.api.checkout import CheckoutServicer
from tests.test_server_checkout import (
    CATALOGUE,
    RULES,
    T0,
    basket,
    published,
    violations,
)

_RULES: dict[str, Any] = copy.deepcopy(RULES)
_RULES["segments"] = [{"id": "staff"}, {"id": "wine-club"}]
_RULES["restricted_items"] = [
    {
        "id": "vip-wine",
        "scope": {"skus": ["WINE"]},
        "tiers": ["vip"],
        "segments": ["wine-club"],
        "message": "Grand cru: VIP and wine-club members only",
    },
    {"id": "staff-tools", "scope": {"categories": ["tools"]}, "segments": ["staff"]},
]
_CATALOGUE = [*CATALOGUE, ("WINE", "liquor"), ("KNIFE", "tools")]
WINE = ("L9", "WINE", 1, 30000)
KNIFE = ("L8", "KNIFE", 2, 1500)
RICE = ("L1", "RICE", 1, 4500)


@pytest.fixture(params=["embedded", "redis"])
def shop(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    with published(tmp_path, request, _RULES, _CATALOGUE) as stubs:
        for member_id, tier, segments in (
            ("vip1", "vip", []),
            ("base1", "member", []),
            ("club1", "member", ["wine-club"]),
            ("staff1", "member", ["staff"]),
        ):
            stubs.members.UpsertMember(
                members_pb2.UpsertMemberRequest(member_id=member_id, tier=tier, segments=segments)
            )
        yield stubs


def flagged(reply: checkout_pb2.EvaluateResponse) -> list[tuple[str, str]]:
    return [(ln.line_id, ln.restriction_id) for ln in reply.lines if ln.restricted]


def restriction_reasons(reply: checkout_pb2.EvaluateResponse) -> list[tuple[int, str, str]]:
    return [
        (e.detail, e.restriction_id, e.message)
        for e in reply.explanations
        if e.reason == ITEM_RESTRICTED
    ]


def commit_req(txn: str, req: checkout_pb2.EvaluateRequest, **kw: Any) -> Any:
    return checkout_pb2.CommitRequest(transaction_id=txn, basket=req, **kw)


# --- Evaluate ------------------------------------------------------------------------------


def test_a_vip_buys_the_vip_only_item_without_a_flag(shop: Any) -> None:
    reply = shop.checkout.Evaluate(basket("vip1", [RICE, WINE]))
    assert flagged(reply) == []
    assert restriction_reasons(reply) == []
    done = shop.checkout.Commit(commit_req("t-vip", basket("vip1", [RICE, WINE])))
    assert flagged(done.result) == []
    assert done.result.payable_minor == reply.payable_minor


def test_a_base_member_sees_the_line_flagged_and_explained_but_priced(shop: Any) -> None:
    vip = shop.checkout.Evaluate(basket("vip1", [RICE, WINE]))
    reply = shop.checkout.Evaluate(basket("base1", [RICE, WINE]))
    assert flagged(reply) == [("L9", "vip-wine")]
    assert restriction_reasons(reply) == [
        (1, "vip-wine", "Grand cru: VIP and wine-club members only")
    ]
    (why,) = [e for e in reply.explanations if e.reason == ITEM_RESTRICTED]
    assert why.offer_id == ""
    # the restricted line is priced as usual (the spend ladder counts it)
    assert reply.lines[1].gross_minor == 30000
    assert reply.gross_minor == vip.gross_minor
    assert reply.lines[1].net_minor < 30000
    # asking for explanations lists the offers' and the restriction's
    explained = shop.checkout.Evaluate(
        checkout_pb2.EvaluateRequest(**{**_fields(basket("base1", [RICE, WINE])), "explain": True})
    )
    assert restriction_reasons(explained) == restriction_reasons(reply)
    assert flagged(explained) == flagged(reply)


def _fields(req: checkout_pb2.EvaluateRequest) -> dict[str, Any]:
    return {f.name: v for f, v in req.ListFields()}


def test_a_guest_is_flagged_for_every_restricted_item(shop: Any) -> None:
    reply = shop.checkout.Evaluate(basket("", [WINE, RICE, KNIFE]))
    assert flagged(reply) == [("L9", "vip-wine"), ("L8", "staff-tools")]
    assert [(d, r) for d, r, _ in restriction_reasons(reply)] == [
        (0, "vip-wine"),
        (2, "staff-tools"),
    ]
    # without a message the explanation names who may buy the item
    assert restriction_reasons(reply)[1][2] == "for members of segment staff only"


def test_a_segment_restriction_admits_its_segment_only(shop: Any) -> None:
    # the staff segment may buy tools; the wine-club segment may buy the wine without VIP
    assert flagged(shop.checkout.Evaluate(basket("staff1", [KNIFE, WINE]))) == [("L9", "vip-wine")]
    assert flagged(shop.checkout.Evaluate(basket("club1", [KNIFE, WINE]))) == [
        ("L8", "staff-tools")
    ]
    assert flagged(shop.checkout.Evaluate(basket("vip1", [KNIFE]))) == [("L8", "staff-tools")]


def test_the_byte_path_answers_what_the_checked_path_answers(
    shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an unknown field sends a request the checked way (protobuf, engine.price); without it
    # the byte path answers: both must give the same message, marks and explanations included
    checked_calls = []
    checked_way = CheckoutServicer._evaluate_checked

    def counted(self: CheckoutServicer, *args: Any) -> checkout_pb2.EvaluateResponse:
        checked_calls.append(1)
        return checked_way(self, *args)

    monkeypatch.setattr(CheckoutServicer, "_evaluate_checked", counted)
    raw = shop.channel.unary_unary(
        "/loyalty.v1.CheckoutService/Evaluate",
        request_serializer=lambda b: b,
        response_deserializer=checkout_pb2.EvaluateResponse.FromString,
    )
    for member_id in ("", "base1", "vip1", "staff1", "club1"):
        for codes in ((), ("NOPE",)):
            data = basket(member_id, [WINE, RICE, KNIFE], codes=codes).SerializeToString()
            fast = raw(data)
            checked = raw(data + b"\xa0\x06\x05")  # field 100, varint: unknown
            assert fast == checked, member_id
            assert fast == shop.checkout.Evaluate(
                basket(member_id, [WINE, RICE, KNIFE], codes=codes)
            )
    assert len(checked_calls) == 10  # the unknown-field requests only


# --- Commit, SyncOffline -------------------------------------------------------------------


def test_commit_refuses_a_restricted_line_naming_it_and_applies_nothing(shop: Any) -> None:
    before = shop.member("base1")
    with pytest.raises(grpc.RpcError) as err:
        shop.checkout.Commit(commit_req("t-base", basket("base1", [RICE, WINE, KNIFE])))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert violations(err.value) == ["basket.lines[1]", "basket.lines[2]"]
    assert "allow_restricted_items" in err.value.details()
    assert shop.member("base1") == before
    assert shop.app.store.ledger() == []


def test_commit_with_the_override_succeeds_marks_the_line_and_is_stored(shop: Any) -> None:
    req = basket("base1", [RICE, WINE])
    quote = shop.checkout.Evaluate(req)
    done = shop.checkout.Commit(commit_req("t-ok", req, allow_restricted_items=True))
    assert flagged(done.result) == [("L9", "vip-wine")]
    assert restriction_reasons(done.result) == restriction_reasons(quote)
    assert done.result.payable_minor == quote.payable_minor
    assert done.member.available_points + done.member.pending_points > 0
    (entry,) = shop.app.store.ledger()
    assert entry.transaction_id == "t-ok"
    # the stored outcome records the restricted line: a retry answers it, with or without the
    # override, even after the member became a VIP
    shop.members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="base1", tier="vip"))
    again = shop.checkout.Commit(commit_req("t-ok", req, allow_restricted_items=True))
    assert again == done
    assert shop.checkout.Commit(commit_req("t-ok", req)) == done
    assert len(shop.app.store.ledger()) == 1


def test_a_refused_commit_can_be_sent_again_with_the_override(shop: Any) -> None:
    req = basket("", [WINE])
    with pytest.raises(grpc.RpcError) as err:
        shop.checkout.Commit(commit_req("t-guest", req))
    assert violations(err.value) == ["basket.lines[0]"]
    done = shop.checkout.Commit(commit_req("t-guest", req, allow_restricted_items=True))
    assert flagged(done.result) == [("L9", "vip-wine")]


def test_an_offline_sync_records_what_the_lane_sold(shop: Any) -> None:
    req = basket("base1", [RICE, WINE], at=T0 - timedelta(hours=2))
    done = shop.checkout.SyncOffline(
        checkout_pb2.SyncOfflineRequest(commit=commit_req("t-off", req))
    ).commit
    assert flagged(done.result) == [("L9", "vip-wine")]
    assert [e.transaction_id for e in shop.app.store.ledger()] == ["t-off"]


# --- validation ----------------------------------------------------------------------------


BAD = [
    {"id": "ok", "scope": {"skus": ["WINE"]}, "tiers": ["vip"]},
    {"id": "ok", "scope": {"skus": ["X"]}, "tiers": ["gold"], "segments": ["nobody"]},
    {"id": "no-who", "scope": {"skus": ["X"]}},
    {"id": "bad id!", "tiers": ["vip"], "message": "x" * 1025},
    {"id": "empty-set", "scope": {"exclude_skus": [""]}, "segments": ["staff"]},
]
BAD_FIELDS = [
    "restricted_items[1].id",
    "restricted_items[1].tiers[0]",
    "restricted_items[1].segments[0]",
    "restricted_items[2]",
    "restricted_items[3].id",
    "restricted_items[3].scope",
    "restricted_items[3].message",
    "restricted_items[4].scope",
    "restricted_items[4].scope.exclude_skus[0]",
]


def _bad_rules() -> rules_pb2.RuleSet:
    rules = copy.deepcopy(_RULES)
    rules["restricted_items"] = BAD
    return parse_rules(rules)


def test_validation_names_every_bad_field(shop: Any) -> None:
    problems = shop.campaigns.ValidateRuleSet(
        campaigns_pb2.ValidateRuleSetRequest(rules=_bad_rules())
    ).problems
    assert [p.field for p in problems] == BAD_FIELDS
    with pytest.raises(grpc.RpcError) as err:
        shop.campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=_bad_rules()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(err.value) == BAD_FIELDS


def test_at_most_256_restrictions() -> None:
    rules = copy.deepcopy(_RULES)
    rules["restricted_items"] = [
        {"id": f"r{i}", "scope": {"skus": ["WINE"]}, "tiers": ["vip"]} for i in range(257)
    ]
    assert [v.field for v in validate(parse_rules(rules))] == ["restricted_items"]


# --- the engine: twins ---------------------------------------------------------------------


def test_the_kernel_and_the_reference_report_the_same_restricted_lines() -> None:
    rules = parse_rules(_RULES)
    catalogue = Catalogue.from_rows([{"sku": s, "category": c} for s, c in _CATALOGUE])
    compiled = compile_rules(rules, catalogue)
    lines = tuple(Line(*x) for x in (WINE, RICE, KNIFE, ("L7", "OTHER", 1, 10, "tools")))
    b = Basket(lines, T0, "s1", "pos")
    members = [
        None,
        Member("m", tier="member"),
        Member("m", tier="vip"),
        Member("m", tier="unknown", segments=frozenset({"staff", "nobody"})),
        Member("m", tier="vip", segments=frozenset({"staff"})),
    ]
    seen = set()
    batch = engine.price_batch(compiled, [b] * len(members), members)
    for member, batched in zip(members, batch, strict=True):
        kernel = engine.price(compiled, b, member)
        assert kernel == price_reference(rules, catalogue, b, member)
        assert kernel == batched
        seen.add(tuple((r.line, r.restriction_id) for r in kernel.restricted))
    assert ((0, "vip-wine"), (2, "staff-tools"), (3, "staff-tools")) in seen
    assert () in seen


def test_the_cli_commits_restricted_items_only_with_the_override(
    shop: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.protobuf import json_format

    from server.cli.main import main

    path = tmp_path / "basket.json"
    path.write_text(json_format.MessageToJson(basket("base1", [RICE, WINE])))
    argv = ["checkout", "commit", str(path), "--transaction-id", "t-cli", "--target", shop.target]
    assert main(argv) != 0
    assert "basket.lines[1]" in capsys.readouterr().err
    assert shop.app.store.ledger() == []
    assert main([*argv, "--allow-restricted", "--json"]) == 0
    assert '"restricted": true' in capsys.readouterr().out
    assert [e.transaction_id for e in shop.app.store.ledger()] == ["t-cli"]
