"""The JSON API (Connect over HTTP, server.web) against a real gRPC server on port 0 and the
real HTTP server (uvicorn) on a free loopback port, with httpx as the client; and
``loyalty serve`` printing and serving its HTTP side."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from engine.errors import InvalidInput
from engine.pricing.rules import parse_rules
from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    rules_pb2,
)
from server.api.app import create_server
from server.settings import Settings
from server.web.app import WebServer, bind, create_web_app
from server.web.connect import bearer, media_type
from server.web.rpc import Rpc
from tests.served import serve_process
from tests.test_server_checkout import CATALOGUE, RULES, T0, Clock, basket, violations

KEYS = {"k-check": "checkout", "k-mkt": "marketing", "k-admin": "admin"}
EVALUATE = "/loyalty.v1.CheckoutService/Evaluate"
JSON = {"content-type": "application/json"}


@dataclass
class Served:
    http: httpx.Client
    channel: grpc.Channel
    settings: Settings

    @property
    def checkout(self) -> checkout_pb2_grpc.CheckoutServiceStub:
        return checkout_pb2_grpc.CheckoutServiceStub(self.channel)


def _serve(tmp: Path, keys: dict[str, str], publish: bool) -> Iterator[Served]:
    settings = Settings(port=0, data_dir=tmp, api_keys=keys)
    server, port, app = create_server(settings, clock=Clock(T0))
    server.start()
    rpc = Rpc(f"127.0.0.1:{port}")
    web = WebServer(create_web_app(rpc, settings), bind("127.0.0.1", 0), settings, rpc).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    md = (("x-api-key", "k-admin"),) if keys else None
    if publish:
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
        items = [rules_pb2.CatalogueItem(sku=s, category=c) for s, c in CATALOGUE]
        rows = campaigns_pb2.CatalogueRows(items=items)
        campaigns.ImportCatalogue(campaigns_pb2.ImportCatalogueRequest(rows=rows), metadata=md)
        campaigns.PublishRuleSet(
            campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES)), metadata=md
        )
        members_pb2_grpc.MemberServiceStub(channel).UpsertMember(
            members_pb2.UpsertMemberRequest(member_id="vip1", tier="vip"), metadata=md
        )
    http = httpx.Client(base_url=f"http://127.0.0.1:{web.port}", timeout=30)
    try:
        yield Served(http, channel, settings)
    finally:
        http.close()
        channel.close()
        web.stop(1)
        server.stop(None).wait()
        app.close()


@pytest.fixture(scope="module")
def open_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """No API keys (loopback), the worked example's programme published."""
    yield from _serve(tmp_path_factory.mktemp("web"), {}, publish=True)


@pytest.fixture(scope="module")
def keyed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """API keys with roles, nothing published."""
    yield from _serve(tmp_path_factory.mktemp("web-keys"), KEYS, publish=False)


def _json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _post(api: Served, path: str, body: Any, **headers: str) -> httpx.Response:
    return api.http.post(path, content=json.dumps(body).encode(), headers={**JSON, **headers})


def test_evaluate_over_json_answers_what_grpc_answers(open_api):
    expected = open_api.checkout.Evaluate(basket())
    proto_names = _post(open_api, EVALUATE, _json(basket()))
    camel = _post(open_api, EVALUATE, json_format.MessageToDict(basket()))  # lowerCamel in

    for reply in (proto_names, camel):
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "application/json"
        body = reply.json()
        # the proto3 JSON mapping: lowerCamel names, 64-bit integers as strings
        assert body["netMinor"] == "13784" and body["pointsEarned"] == "13"
        got = json_format.Parse(reply.content, checkout_pb2.EvaluateResponse())
        assert got == expected
    assert [int(line["netMinor"]) for line in proto_names.json()["lines"]] == [8936, 653, 4195]


def test_commit_then_get_member_over_json(open_api):
    commit = {"transaction_id": "web-t1", "basket": _json(basket())}
    reply = _post(open_api, "/loyalty.v1.CheckoutService/Commit", commit)
    assert reply.status_code == 200, reply.text
    committed = json_format.Parse(reply.content, checkout_pb2.CommitResponse())
    assert committed.result.points_earned == 13
    # the retry answers the stored result, as over gRPC
    again = _post(open_api, "/loyalty.v1.CheckoutService/Commit", commit)
    assert json_format.Parse(again.content, checkout_pb2.CommitResponse()) == committed

    member = _post(open_api, "/loyalty.v1.MemberService/GetMember", {"memberId": "vip1"})
    assert member.status_code == 200, member.text
    grpc_member = members_pb2_grpc.MemberServiceStub(open_api.channel).GetMember(
        members_pb2.GetMemberRequest(member_id="vip1")
    )
    assert json_format.Parse(member.content, members_pb2.Member()) == grpc_member
    assert member.json()["pendingPoints"] == str(grpc_member.pending_points) != "0"


def test_binary_proto_in_and_out(open_api):
    reply = open_api.http.post(
        EVALUATE,
        content=basket().SerializeToString(),
        headers={"content-type": "application/proto"},
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/proto"
    got = checkout_pb2.EvaluateResponse.FromString(reply.content)
    assert got == open_api.checkout.Evaluate(basket())


def test_an_invalid_request_is_400_with_the_grpc_field_paths(open_api):
    bad = basket()
    bad.lines[1].quantity = 0
    bad.lines[2].sku = ""
    with pytest.raises(grpc.RpcError) as exc:
        open_api.checkout.Evaluate(bad)
    expected = violations(exc.value)

    reply = _post(open_api, EVALUATE, _json(bad))

    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == "invalid_argument"
    assert body["message"] == exc.value.details()
    [detail] = body["details"]
    assert detail["type"] == "google.rpc.BadRequest"
    packed = base64.b64decode(detail["value"] + "==")  # Connect: base64 without padding
    assert [v.field for v in error_details_pb2.BadRequest.FromString(packed).field_violations] == (
        expected
    )
    assert [v["field"] for v in detail["debug"]["fieldViolations"]] == expected
    assert "lines[1].quantity" in expected


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "Failed to load JSON"),
        (b'{"lines": [], "linez": []}', "linez"),  # unknown fields are refused, not dropped
        (b'{"redeemPoints": "many"}', "redeemPoints"),
        (b"\xff\xfe", "request"),
    ],
)
def test_a_body_that_does_not_decode_is_invalid_argument_on_request(open_api, body, says):
    reply = open_api.http.post(EVALUATE, content=body, headers=JSON)
    assert reply.status_code == 400, reply.text
    answer = reply.json()
    assert answer["code"] == "invalid_argument" and says in answer["message"]
    [violation] = answer["details"][0]["debug"]["fieldViolations"]
    assert violation["field"] == "request"
    garbage = open_api.http.post(
        EVALUATE, content=b"\xff\xff\xff\xff garbage", headers={"content-type": "application/proto"}
    )
    assert (garbage.status_code, garbage.json()["code"]) == (400, "invalid_argument")


def test_unknown_procedures_wrong_methods_and_content_types(open_api):
    for path in ("/loyalty.v1.CheckoutService/Nope", "/loyalty.v1.NoService/Evaluate"):
        reply = _post(open_api, path, {})
        assert reply.status_code == 404
        assert reply.json()["code"] == "unimplemented"
    got = open_api.http.get(EVALUATE)
    assert got.status_code == 405 and got.headers["allow"] == "POST"
    text = open_api.http.post(EVALUATE, content=b"{}", headers={"content-type": "text/plain"})
    assert text.status_code == 415 and "application/json" in text.headers["accept-post"]
    grpc_ct = open_api.http.post(
        EVALUATE, content=b"", headers={"content-type": "application/grpc"}
    )
    assert grpc_ct.status_code == 415
    assert open_api.http.get("/nothing-here").status_code == 404


def test_content_types_are_read_as_connect_names_them():
    assert media_type("Application/JSON; Charset=UTF-8") == "application/json"
    assert media_type("application/proto") == "application/proto"
    assert media_type("application/json; charset=latin-1") is None
    assert media_type("application/grpc-web+proto") is None
    assert bearer("Bearer k1") == "k1" and bearer("bearer  k1 ") == "k1"
    assert bearer("Basic abc") is None and bearer(None) is None


def test_a_body_over_the_message_limit_is_refused(open_api):
    limit = open_api.settings.max_message_bytes
    big = b'{"storeId": "' + b"x" * limit + b'"}'
    said = open_api.http.post(EVALUATE, content=big, headers=JSON)
    assert (said.status_code, said.json()["code"]) == (429, "resource_exhausted")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    chunked = open_api.http.post(EVALUATE, content=chunks(), headers=JSON)
    assert (chunked.status_code, chunked.json()["code"]) == (429, "resource_exhausted")
    # a small gzip body that would inflate past the limit
    bomb = gzip.compress(b'{"storeId": "' + b"x" * (limit * 2) + b'"}')
    assert len(bomb) < limit // 100
    inflated = open_api.http.post(
        EVALUATE, content=bomb, headers={**JSON, "content-encoding": "gzip"}
    )
    assert (inflated.status_code, inflated.json()["code"]) == (429, "resource_exhausted")
    # a gzip body within the limit is read as it should
    small = gzip.compress(json.dumps(_json(basket())).encode())
    ok = open_api.http.post(EVALUATE, content=small, headers={**JSON, "content-encoding": "gzip"})
    assert ok.status_code == 200 and ok.json()["netMinor"] == "13784"


def test_connect_timeout_is_the_deadline(open_api):
    late = _post(open_api, EVALUATE, _json(basket()), **{"connect-timeout-ms": "0"})
    assert (late.status_code, late.json()["code"]) == (504, "deadline_exceeded")
    ample = _post(open_api, EVALUATE, _json(basket()), **{"connect-timeout-ms": "30000"})
    assert ample.status_code == 200


def test_healthz_follows_the_grpc_health_check(open_api, keyed_api):
    assert open_api.http.get("/healthz").json() == {"status": "SERVING"}
    assert open_api.http.get("/healthz").status_code == 200
    # nothing published: up, not serving checkout (and open without a key)
    reply = keyed_api.http.get("/healthz")
    assert (reply.status_code, reply.json()) == (503, {"status": "NOT_SERVING"})


def test_api_keys_and_roles_are_the_grpc_ones(keyed_api):
    rulesets = "/loyalty.v1.CampaignService/ListRuleSets"
    assert _post(keyed_api, rulesets, {}).status_code == 401
    assert _post(keyed_api, rulesets, {}).json()["code"] == "unauthenticated"
    assert _post(keyed_api, rulesets, {}, **{"x-api-key": "wrong"}).status_code == 401
    assert _post(keyed_api, rulesets, {}, **{"x-api-key": "k-mkt"}).status_code == 200
    assert _post(keyed_api, rulesets, {}, authorization="Bearer k-mkt").status_code == 200
    denied = _post(keyed_api, rulesets, {}, authorization="Bearer k-check")
    assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
    # a key that cannot be gRPC metadata, or is not even text, is no key
    for odd in ("k\u00e9".encode(), b"k\xff"):
        headers = {**JSON, "x-api-key": odd}
        refused = keyed_api.http.post(rulesets, content=b"{}", headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (401, "unauthenticated")
    # checkout may evaluate: past the key check, refused on its content (nothing published)
    evaluate = _post(keyed_api, EVALUATE, _json(basket()), **{"x-api-key": "k-check"})
    assert evaluate.status_code not in (401, 403)


def test_http_settings_follow_the_grpc_rules():
    keys = {"LOYALTY_API_KEYS": "k1:checkout"}
    # HTTP off loopback needs keys, and then TLS, as gRPC does
    with pytest.raises(InvalidInput) as exc:
        Settings.from_env({}, http_host="0.0.0.0")
    assert [v.field for v in exc.value.violations] == ["--http-host"]
    with pytest.raises(InvalidInput) as exc:
        Settings.from_env(keys, http_host="0.0.0.0")
    assert [v.field for v in exc.value.violations] == ["--tls-cert"]
    assert "over HTTP" in exc.value.violations[0].description
    assert Settings.from_env(keys, http_host="0.0.0.0", insecure_plaintext_keys=True)
    assert not Settings.from_env({}, http_host="0.0.0.0", http_port=0).http_plaintext_keys
    # variables, flags, defaults
    env = Settings.from_env({"LOYALTY_HTTP_PORT": "8181", "LOYALTY_HTTP_HOST": "localhost"})
    assert (env.http_port, env.web_host) == (8181, "localhost")
    assert Settings.from_env({}, host="::1").web_host == "::1"
    assert Settings.from_env({}).http_port == 8080
    with pytest.raises(InvalidInput) as exc:
        Settings.from_env({"LOYALTY_HTTP_PORT": "50051"})
    assert [v.field for v in exc.value.violations] == ["--http-port"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_loyalty_serve_prints_and_serves_its_http_side(tmp_path):
    port = _free_port()
    flags = ("--http-port", str(port), "--metrics-port", "0")
    with serve_process(tmp_path, *flags, clean_env=True) as served:
        assert f"; http: http://127.0.0.1:{port}/ (console, JSON API)" in served.line
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.get("/healthz").status_code == 503  # nothing published yet
            reply = http.post(
                "/loyalty.v1.CampaignService/ListRuleSets", content=b"{}", headers=JSON
            )
            assert reply.status_code == 200 and reply.json() == {}


def test_loyalty_serve_without_http(tmp_path):
    with serve_process(tmp_path, "--http-port", "0", "--metrics-port", "0") as served:
        assert served.port and "http:" not in served.line


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_with_the_service_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    flags = ["--host", "localhost", "--http-port", str(port), "--metrics-port", "0"]
    flags += ["--tls-cert", str(cert), "--tls-key", str(key), "--api-key", "k1:marketing"]
    with serve_process(tmp_path, *flags, clean_env=True) as served:
        assert f"; http: https://localhost:{port}/ (console, JSON API)" in served.line
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://localhost:{port}", verify=trust) as http:
            reply = http.post(
                "/loyalty.v1.CampaignService/ListRuleSets",
                content=b"{}",
                headers={**JSON, "x-api-key": "k1"},
            )
            assert reply.status_code == 200, reply.text
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the port
            httpx.get(f"http://localhost:{port}/healthz", timeout=5)


def test_every_worker_serves_http_on_the_shared_port(tmp_path):
    grpc_port, http_port = _free_port(), _free_port()
    flags = ["--workers", "2", "--port", str(grpc_port), "--http-port", str(http_port)]
    with serve_process(tmp_path, *flags, "--metrics-port", "0", clean_env=True) as served:
        assert f"; http: http://127.0.0.1:{http_port}/ (console, JSON API)" in served.line
        for _ in range(8):  # new connections, spread by the kernel over the workers
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as http:
                reply = http.post(
                    "/loyalty.v1.CampaignService/ListRuleSets", content=b"{}", headers=JSON
                )
                assert reply.status_code == 200
    # each worker bound the port (SO_REUSEPORT): none logged that it could not
    assert "cannot listen" not in served.stderr.read_text()
