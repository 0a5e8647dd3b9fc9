"""The server over real gRPC on port 0: health, reflection, CampaignService, API keys."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from engine.pricing.rules import load_rules, parse_rules
from loyalty.v1 import campaigns_pb2, campaigns_pb2_grpc, rules_pb2
from server.api.app import create_server
from server.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEYS = {"k-check": "checkout", "k-mkt": "marketing", "k-admin": "admin"}


@pytest.fixture
def served(tmp_path):
    def start(**kw):
        settings = Settings(port=0, data_dir=tmp_path / "data", **kw)
        server, port, app = create_server(settings)
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, channel, app))
        return channel, app

    started: list = []
    yield start
    for server, channel, app in started:
        channel.close()
        server.stop(None).wait()
        app.close()


def _health(channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service="loyalty.v1.CheckoutService")).status


def test_health_is_not_serving_until_a_rule_set_is_published(served):
    channel, _ = served()
    assert _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
    reply = stub.PublishRuleSet(
        campaigns_pb2.PublishRuleSetRequest(
            rules=load_rules(EXAMPLES / "watsons.yaml"), note="watsons"
        )
    )
    assert reply.version == 1
    assert _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_every_service(served):
    channel, _ = served()
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert {
        "loyalty.v1.CheckoutService",
        "loyalty.v1.MemberService",
        "loyalty.v1.CampaignService",
        "grpc.health.v1.Health",
    } <= names


def test_publish_list_get_and_roll_back_over_grpc(served):
    channel, _ = served()
    stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
    for bps in (1000, 2000):
        stub.PublishRuleSet(
            campaigns_pb2.PublishRuleSetRequest(
                rules=parse_rules(
                    {
                        "offers": [
                            {"id": "p", "scope": {"all": True}, "percent_off": {"percent_bps": bps}}
                        ]
                    }
                )
            )
        )
    listing = stub.ListRuleSets(campaigns_pb2.ListRuleSetsRequest())
    assert listing.current_version == 2 and [v.version for v in listing.versions] == [1, 2]
    back = stub.ActivateRuleSet(campaigns_pb2.ActivateRuleSetRequest(version=1))
    assert back.current and back.rules.offers[0].percent_off.percent_bps == 1000
    assert stub.GetRuleSet(campaigns_pb2.GetRuleSetRequest()).version == 1
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetRuleSet(campaigns_pb2.GetRuleSetRequest(version=9))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_bad_rule_set_is_invalid_argument_with_field_violations(served):
    channel, _ = served()
    stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
    bad = parse_rules(
        {
            "offers": [
                {"id": "a", "scope": {"all": True}, "percent_off": {"percent_bps": 12000}},
                {"id": "a", "scope": {"all": True}},
            ]
        }
    )
    check = stub.ValidateRuleSet(campaigns_pb2.ValidateRuleSetRequest(rules=bad))
    assert not check.valid and len(check.problems) == 3
    with pytest.raises(grpc.RpcError) as exc:
        stub.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=bad))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = error_details_pb2.BadRequest()
    rpc_status.from_call(exc.value).details[0].Unpack(detail)
    fields = [v.field for v in detail.field_violations]
    assert fields == ["offers[0].percent_off.percent_bps", "offers[1].id", "offers[1].reward"]
    # and the server keeps serving
    assert stub.ListRuleSets(campaigns_pb2.ListRuleSetsRequest()).current_version == 0


def test_import_catalogue_from_csv_bytes(served):
    channel, app = served()
    stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
    reply = stub.ImportCatalogue(
        campaigns_pb2.ImportCatalogueRequest(csv=(EXAMPLES / "catalogue.csv").read_bytes())
    )
    assert reply.skus == 9 and app.registry.catalogue.get("COLA-330").category == "drinks"
    rows = campaigns_pb2.CatalogueRows(items=[rules_pb2.CatalogueItem(sku="A", category="x")])
    assert stub.ImportCatalogue(campaigns_pb2.ImportCatalogueRequest(rows=rows)).skus == 1
    with pytest.raises(grpc.RpcError) as exc:
        stub.ImportCatalogue(campaigns_pb2.ImportCatalogueRequest(csv=b"name\nx\n"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED),
        ("wrong", grpc.StatusCode.UNAUTHENTICATED),
        ("k-check", grpc.StatusCode.PERMISSION_DENIED),
        ("k-mkt", grpc.StatusCode.OK),
        ("k-admin", grpc.StatusCode.OK),
    ],
)
def test_roles_decide_who_may_publish(served, key, code):
    channel, _ = served(api_keys=KEYS)
    stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
    metadata = (("x-api-key", key),) if key else ()
    try:
        stub.ListRuleSets(campaigns_pb2.ListRuleSetsRequest(), metadata=metadata)
        got = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        got = exc.code()
    assert got == code
    # health stays open to probes without a key
    assert _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_keys_are_required_off_loopback():
    with pytest.raises(ValueError, match="needs API keys"):
        Settings(host="0.0.0.0").check()
