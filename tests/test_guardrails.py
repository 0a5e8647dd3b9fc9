"""Guardrails before publishing (engine/pricing/guardrails.py, engine/analytics/guardrail_gate.py,
server/api/publish_gate.py): probed breaches at validation, the simulation gate on both stores."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import polars as pl
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from engine.analytics.guardrail_gate import simulated_breaches
from engine.pricing.catalogue import Catalogue, CatalogueError, load_catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.rules import parse_rules
from engine.pricing.validate import RuleSetInvalid, Violation, validate
from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    rules_pb2,
)
from server.api.app import create_server
from server.rules.registry import _catalogue_frame
from server.settings import OPTIONS, Settings
from server.web.app import WebServer, bind, create_web_app
from server.web.console.yamltext import to_yaml
from server.web.rpc import Rpc
from tests.test_server_checkout import Clock

T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai
DAY = timedelta(days=1)
PROGRAMME = {"point_value_minor": 10, "earn_per_amount_minor": 1000, "redeem_step_points": 1}


def rules(*offers: dict, **guardrails: int) -> rules_pb2.RuleSet:
    return parse_rules(
        {
            "currency": "CNY",
            "timezone": "Asia/Shanghai",
            "points": PROGRAMME,
            "guardrails": guardrails,
            "offers": list(offers),
        }
    )


def fifteen_off(**fields) -> dict:
    """The accident: 15 yuan off each unit of anything, no minimum."""
    return {"id": "fifteen", "scope": {"all": True}, "amount_off": {"amount_minor": 1500}, **fields}


# --- probing at validation --------------------------------------------------------------------


def test_fifteen_yuan_off_without_a_minimum_is_refused_on_its_amount():
    rule_set = rules(fifteen_off(), max_discount_bps=5000)

    assert validate(rule_set) == [
        Violation(
            "offers[0].amount_off.amount_minor",
            "a basket of 15.00 in scope gets 15.00 off (100%), "
            "above guardrails.max_discount_bps 5000",
        )
    ]
    with pytest.raises(RuleSetInvalid):
        compile_rules(rule_set)


def test_a_minimum_basket_with_a_cap_fixes_it():
    # a per-unit amount with a minimum basket still frees many 15.00 items: the cap is needed
    only_min = rules(fifteen_off(conditions={"min_basket_minor": 3000}), max_discount_bps=5000)
    [problem] = validate(only_min)
    assert problem.field == "offers[0].amount_off.amount_minor"
    assert "(100%), above guardrails.max_discount_bps 5000" in problem.description

    fixed = fifteen_off(conditions={"min_basket_minor": 3000}, limits={"max_discount_minor": 1500})
    assert validate(rules(fixed, max_discount_bps=5000)) == []
    # 15 off the basket (order phase) needs the minimum only
    order = {
        "id": "fifteen-order",
        "scope": {"all": True},
        "conditions": {"min_basket_minor": 3000},
        "order_amount_off": {"amount_minor": 1500},
    }
    assert validate(rules(order, max_discount_bps=5000)) == []
    del order["conditions"]
    [problem] = validate(rules(order, max_discount_bps=5000))
    assert problem.field == "offers[0].order_amount_off.amount_minor"


def test_share_and_absolute_caps_are_separate_guardrails():
    thirty = {"id": "thirty", "scope": {"all": True}, "percent_off": {"percent_bps": 3000}}
    assert validate(rules(thirty, max_discount_bps=5000)) == []  # 30% of any basket
    # probes take their sizes from the offer: a percentage alone breaches no absolute cap
    # (real baskets can: the simulation gate)
    assert validate(rules(thirty, max_discount_minor=10000)) == []
    ladder = {
        "id": "ladder",
        "scope": {"all": True},
        "spend_tiers": {"steps": [{"threshold_minor": 50000, "amount_minor": 15000}]},
    }
    assert validate(rules(ladder, max_discount_bps=5000)) == []  # 30% at most
    assert validate(rules(ladder, max_discount_minor=10000)) == [
        Violation(
            "offers[0].spend_tiers",
            "a basket of 500.00 in scope gets 150.00 off (30%), "
            "above guardrails.max_discount_minor 100.00",
        )
    ]
    capped = {**ladder, "limits": {"max_discount_minor": 10000}}
    assert validate(rules(capped, max_discount_minor=10000, max_discount_bps=5000)) == []

    # both breached: one problem per guardrail, each with its worst basket
    both = validate(rules(fifteen_off(), max_discount_minor=1000, max_discount_bps=5000))
    assert [(p.field, p.description) for p in both] == [
        (
            "offers[0].amount_off.amount_minor",
            "a basket of 14.99 in scope gets 14.99 off (100%), "
            "above guardrails.max_discount_minor 10.00",
        ),
        (
            "offers[0].amount_off.amount_minor",
            "a basket of 15.00 in scope gets 15.00 off (100%), "
            "above guardrails.max_discount_bps 5000",
        ),
    ]


def test_max_points_per_basket_counts_the_offers_points():
    tenfold = {
        "id": "x10",
        "scope": {"all": True},
        "conditions": {"min_amount_minor": 10000},
        "points_multiplier": {"extra_bps": 90000},
    }
    assert validate(rules(tenfold, max_points=50)) == [
        Violation(
            "offers[0].points_multiplier.extra_bps",
            "a basket of 100.00 in scope earns 90 points from offers, "
            "above guardrails.max_points 50",
        )
    ]
    assert validate(rules(tenfold, max_points=10000)) == []

    bonus = {"id": "bonus", "scope": {"all": True}, "bonus_points": {"per_transaction": 600}}
    assert validate(rules(bonus, max_points=500)) == [
        Violation(
            "offers[0].bonus_points",
            "a basket of 0.01 in scope earns 600 points from offers, "
            "above guardrails.max_points 500",
        )
    ]
    bonus["bonus_points"] = {"per_transaction": 500}
    assert validate(rules(bonus, max_points=500)) == []
    # the programme's base points are not the offers': a big basket earns them freely
    pct = {"id": "pct", "scope": {"all": True}, "percent_off": {"percent_bps": 1000}}
    assert validate(rules(pct, max_points=1)) == []


def test_margin_floor_uses_the_cost_column_where_there_is_one():
    catalogue = Catalogue.from_rows(
        [
            {"sku": "CREAM", "category": "skincare", "unit_cost_minor": 1000},
            {"sku": "SOAP", "category": "skincare", "unit_cost_minor": None},
        ]
    )
    below_cost = {"id": "cream", "scope": {"skus": ["CREAM"]}, "fixed_price": {"price_minor": 800}}
    assert validate(rules(below_cost, min_margin_bps=2000), catalogue) == [
        Violation(
            "offers[0].fixed_price.price_minor",
            "a basket of 25.00 in scope keeps a margin of -25.00% over cost on its costed lines "
            "(net 8.00, cost 10.00), below guardrails.min_margin_bps 2000",
        )
    ]
    member_price = {**below_cost, "fixed_price": {"price_minor": 1300}}  # 23% over cost
    assert validate(rules(member_price, min_margin_bps=2000), catalogue) == []
    # no cost known: nothing to check
    soap = {**below_cost, "scope": {"skus": ["SOAP"]}}
    assert validate(rules(soap, min_margin_bps=2000), catalogue) == []
    # a category scope finds the costed skus in it
    category = {**below_cost, "scope": {"categories": ["skincare"]}}
    [problem] = validate(rules(category, min_margin_bps=2000), catalogue)
    assert "below guardrails.min_margin_bps 2000" in problem.description


def test_the_cost_column_reads_from_csv_and_parquet_and_survives_the_registry(tmp_path):
    csv = tmp_path / "catalogue.csv"
    csv.write_text("sku,category,unit_cost_minor\nCREAM,skincare,1000\nSOAP,skincare,\n")
    catalogue = load_catalogue(csv)
    assert (catalogue.unit_cost("CREAM"), catalogue.unit_cost("SOAP")) == (1000, None)
    again = Catalogue.from_frame(_catalogue_frame(catalogue))  # what the registry stores
    assert again.unit_cost_minor.tolist() == catalogue.unit_cost_minor.tolist()
    buf = io.BytesIO()
    pl.DataFrame({"sku": ["A"], "unit_cost_minor": [5]}).write_parquet(buf)
    buf.seek(0)
    assert Catalogue.from_frame(pl.read_parquet(buf)).unit_cost("A") == 5
    with pytest.raises(CatalogueError, match="row 2: unit_cost_minor must be a whole number"):
        Catalogue.from_frame(pl.DataFrame({"sku": ["A", "B"], "unit_cost_minor": ["1", "-3"]}))


def test_guardrail_bounds_and_no_guardrails_no_probing():
    bad = rules(fifteen_off(), max_discount_bps=10001, min_margin_bps=10000)
    assert validate(bad) == [
        Violation("guardrails.max_discount_bps", "must be at most 10000 (got 10001)"),
        Violation("guardrails.min_margin_bps", "must be at most 9999 (got 10000)"),
    ]
    assert validate(rules(fifteen_off())) == []  # all 0 = off


def test_probes_respect_the_offers_conditions():
    # a tier, a segment, a store, a weekday and hours, a coupon: the member and time fit them
    gated = fifteen_off(
        activation="COUPON",
        conditions={
            "tiers": ["gold"],
            "segments": ["young"],
            "stores": ["s9"],
            "weekdays": [6],
            "from_hour": 22,
            "to_hour": 2,
            "birthday_month": True,
        },
    )
    rule_set = rules(gated, max_discount_bps=5000)
    rule_set.tiers.add(id="gold", earn_multiplier_bps=10000)
    rule_set.segments.add(id="young")
    [problem] = validate(rule_set)
    assert problem.field == "offers[0].amount_off.amount_minor"


# --- over gRPC ----------------------------------------------------------------------------------


@pytest.fixture(params=["embedded", "redis"])
def store_kind(request):
    return request.param


@pytest.fixture
def serve(tmp_path, request, store_kind):
    """Start a server on ``store_kind`` with settings changes; returns its stubs."""
    started: list = []

    def start(**kw):
        settings = Settings(port=0, data_dir=tmp_path / f"data{len(started)}", store=store_kind)
        if store_kind == "redis":
            url = request.getfixturevalue("redis_url")
            settings = settings.replace(redis_url=url, redis_prefix=f"g{len(started)}:")
        clock = Clock(T0)
        server, port, app = create_server(settings.replace(**kw), clock=clock)
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, channel, app))
        return (
            campaigns_pb2_grpc.CampaignServiceStub(channel),
            checkout_pb2_grpc.CheckoutServiceStub(channel),
            clock,
        )

    yield start
    for server, channel, app in started:
        channel.close()
        server.stop(None).wait()
        app.close()


def _violations(exc: grpc.RpcError) -> list[tuple[str, str]]:
    detail = error_details_pb2.BadRequest()
    rpc_status.from_call(exc).details[0].Unpack(detail)
    return [(v.field, v.description) for v in detail.field_violations]


@pytest.mark.parametrize("store_kind", ["embedded"])  # validation reads no store
def test_validate_lists_and_publish_refuses_probed_breaches(serve):
    campaigns, _, _ = serve()
    rule_set = rules(fifteen_off(), max_discount_bps=5000)

    reply = campaigns.ValidateRuleSet(campaigns_pb2.ValidateRuleSetRequest(rules=rule_set))
    assert not reply.valid
    assert [(p.field, p.description) for p in reply.problems] == [
        (
            "offers[0].amount_off.amount_minor",
            "a basket of 15.00 in scope gets 15.00 off (100%), "
            "above guardrails.max_discount_bps 5000",
        )
    ]
    with pytest.raises(grpc.RpcError) as exc:
        campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=rule_set))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(exc.value) == [(p.field, p.description) for p in reply.problems]
    # an override reason does not lift what validation finds
    with pytest.raises(grpc.RpcError) as exc:
        campaigns.PublishRuleSet(
            campaigns_pb2.PublishRuleSetRequest(rules=rule_set, guardrail_override_reason="ok")
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("store_kind", ["embedded"])  # the catalogue is the registry's
def test_imported_costs_feed_the_margin_floor(serve):
    campaigns, _, _ = serve()
    items = [
        rules_pb2.CatalogueItem(sku="CREAM", category="skincare", unit_cost_minor=1000),
        rules_pb2.CatalogueItem(sku="SOAP", category="skincare"),
    ]
    campaigns.ImportCatalogue(
        campaigns_pb2.ImportCatalogueRequest(rows=campaigns_pb2.CatalogueRows(items=items))
    )
    below_cost = {
        "id": "c",
        "scope": {"categories": ["skincare"]},
        "fixed_price": {"price_minor": 800},
    }
    reply = campaigns.ValidateRuleSet(
        campaigns_pb2.ValidateRuleSetRequest(rules=rules(below_cost, min_margin_bps=2000))
    )
    assert [p.field for p in reply.problems] == ["offers[0].fixed_price.price_minor"]
    assert "(net 8.00, cost 10.00)" in reply.problems[0].description
    csv = b"sku,unit_cost_minor\nCREAM,abc\n"
    with pytest.raises(grpc.RpcError) as exc:
        campaigns.ImportCatalogue(campaigns_pb2.ImportCatalogueRequest(csv=csv))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# Two offers of 30% that each pass the 50% guardrail alone but stack to 51% on a real basket.
STACKED = [
    {"id": "thirty-a", "scope": {"all": True}, "percent_off": {"percent_bps": 3000}},
    {"id": "thirty-b", "scope": {"all": True}, "percent_off": {"percent_bps": 3000}},
]


def _commit_baskets(campaigns, checkout) -> None:
    campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=rules(), note="empty"))
    for k, price in enumerate((1290, 4500)):
        req = checkout_pb2.EvaluateRequest(store_id="s1", channel="pos")
        req.occurred_at.FromDatetime(T0)
        req.lines.add(line_id="1", sku="COLA", quantity=1, unit_price_minor=price)
        checkout.Commit(checkout_pb2.CommitRequest(transaction_id=f"t{k}", basket=req))


def test_the_simulation_gate_refuses_stacked_breaches_unless_overridden(serve):
    campaigns, checkout, _ = serve(publish_simulate_days=7)
    _commit_baskets(campaigns, checkout)
    candidate = rules(*STACKED, max_discount_bps=5000)
    assert validate(candidate) == []  # each offer alone passes

    with pytest.raises(grpc.RpcError) as exc:
        campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=candidate))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    message = exc.value.details()
    assert "2 guardrail breach(es) in 2 basket(s) of the last 7 day(s)" in message
    assert (
        "transaction t0: a basket of 12.90 gets 6.58 off (51%), above guardrails.max_discount_bps"
        " 5000 (offers thirty-a, thirty-b)"
    ) in message
    assert "transaction t1: a basket of 45.00" in message
    assert campaigns.GetRuleSet(campaigns_pb2.GetRuleSetRequest()).version == 1

    reply = campaigns.PublishRuleSet(
        campaigns_pb2.PublishRuleSetRequest(
            rules=candidate, note="weekend", guardrail_override_reason="approved by J. Wu"
        )
    )
    note = campaigns.GetRuleSet(campaigns_pb2.GetRuleSetRequest(version=reply.version)).note
    assert note.startswith("weekend\nguardrail override: approved by J. Wu\nbreached: 2 ")
    assert "transaction t0: a basket of 12.90 gets 6.58 off (51%)" in note

    # a candidate within its guardrails goes through without a reason, and records none
    fine = rules(*STACKED, max_discount_bps=6000)
    reply = campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=fine, note="n"))
    assert campaigns.GetRuleSet(campaigns_pb2.GetRuleSetRequest(version=reply.version)).note == "n"


def test_the_gate_is_off_by_default_and_sees_only_the_last_days(serve):
    candidate = rules(*STACKED, max_discount_bps=5000)
    campaigns, checkout, _ = serve()  # publish_simulate_days 0
    _commit_baskets(campaigns, checkout)
    reply = campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=candidate))
    assert reply.version == 2
    assert campaigns.GetRuleSet(campaigns_pb2.GetRuleSetRequest()).note == ""

    campaigns, checkout, clock = serve(publish_simulate_days=7)
    _commit_baskets(campaigns, checkout)
    clock.now = T0 + timedelta(days=7, seconds=1)  # the baskets are older than 7 days now
    reply = campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=candidate))
    assert reply.version == 2


@pytest.mark.parametrize("store_kind", ["embedded"])  # checked before any store is read
def test_the_override_reason_is_bounded(serve):
    campaigns, _, _ = serve(publish_simulate_days=7)
    with pytest.raises(grpc.RpcError) as exc:
        campaigns.PublishRuleSet(
            campaigns_pb2.PublishRuleSetRequest(rules=rules(), guardrail_override_reason="x" * 1025)
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in _violations(exc.value)] == ["guardrail_override_reason"]


# --- the setting --------------------------------------------------------------------------------


def test_the_publish_simulate_days_setting():
    assert "LOYALTY_PUBLISH_SIMULATE_DAYS" in {o.env for o in OPTIONS}
    assert Settings().publish_simulate_days == 0
    s = Settings.from_env({"LOYALTY_PUBLISH_SIMULATE_DAYS": "14"})
    assert s.publish_simulate_days == 14
    assert Settings.from_env({"LOYALTY_PUBLISH_SIMULATE_DAYS": "14"}, publish_simulate_days=3) == (
        s.replace(publish_simulate_days=3)
    )
    with pytest.raises(Exception, match="must be 0 \\(off\\) .. 366 days"):
        Settings.from_env({}, publish_simulate_days=367)


def test_the_console_shows_the_gates_refusal(tmp_path):
    settings = Settings(port=0, data_dir=tmp_path / "data", metrics_port=0)
    server, port, app = create_server(settings.replace(publish_simulate_days=7), clock=Clock(T0))
    server.start()
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target)
    rpc = Rpc(target)
    web = WebServer(create_web_app(rpc, settings), bind("127.0.0.1", 0), settings, rpc)
    try:
        web.start()
        _commit_baskets(
            campaigns_pb2_grpc.CampaignServiceStub(channel),
            checkout_pb2_grpc.CheckoutServiceStub(channel),
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{web.port}", timeout=20) as c:
            page = c.get("/programme")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert found is not None
            text = to_yaml(rules(*STACKED, max_discount_bps=5000))
            reply = c.post(
                "/programme/publish",
                data={"rules_yaml": text, "note": "n", "csrf_token": found.group(1)},
            )
        assert reply.status_code == 422
        assert "breaches its guardrails" in reply.text and "transaction t0" in reply.text
        assert app.registry.current().version == 1
    finally:
        web.stop(0)
        channel.close()
        server.stop(None).wait()
        app.close()


def test_simulated_breaches_count_offer_points_and_costed_margins():
    catalogue = Catalogue.from_rows([{"sku": "CREAM", "unit_cost_minor": 30000}])
    half = {"id": "half", "scope": {"skus": ["CREAM"]}, "percent_off": {"percent_bps": 5000}}
    x10 = {"id": "x10", "scope": {"all": True}, "points_multiplier": {"extra_bps": 90000}}
    candidate = rules(half, x10, max_points=100, min_margin_bps=2000)
    history = pl.DataFrame(
        {
            "kind": ["commit", "commit", "commit", "cancel"],
            "transaction_id": ["t1", "t2", "t3", "t3"],
            "member_id": ["m1", "", "m1", "m1"],
            "at": [T0, T0, T0, T0],
            "sku": ["CREAM", "SOAP", "CREAM", "CREAM"],
            "quantity": [1, 1, 1, 1],
            "gross_minor": [50000, 1000, 50000, 50000],
            "net_minor": [50000, 1000, 50000, 50000],
        }
    )
    found = simulated_breaches(compile_rules(candidate, catalogue, validate=False), history)
    assert [b.describe() for b in found] == [
        "transaction t1: a basket of 500.00 earns 225 points from offers, above "
        "guardrails.max_points 100",
        "transaction t1: a basket of 500.00 keeps a margin of -20.00% over cost on its costed "
        "lines (net 250.00, cost 300.00), below guardrails.min_margin_bps 2000 (offers half)",
    ]
    # before the window: nothing
    compiled = compile_rules(candidate, catalogue, validate=False)
    assert simulated_breaches(compiled, history, T0 + DAY) == []
