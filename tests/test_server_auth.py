"""API-key roles per method, and TLS from certificate files, over real gRPC."""

from __future__ import annotations

import shutil
import subprocess

import grpc
import pytest

from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
)
from server.api.app import create_server
from server.api.auth import allowed
from server.settings import Settings

KEYS = {
    "k-check": "checkout",
    "k-sync": "offline-sync",
    "k-mkt": "marketing",
    "k-admin": "admin",
}
CALLS = {
    "Evaluate": lambda ch, md: checkout_pb2_grpc.CheckoutServiceStub(ch).Evaluate(
        checkout_pb2.EvaluateRequest(), metadata=md
    ),
    "Commit": lambda ch, md: checkout_pb2_grpc.CheckoutServiceStub(ch).Commit(
        checkout_pb2.CommitRequest(), metadata=md
    ),
    "SyncOffline": lambda ch, md: checkout_pb2_grpc.CheckoutServiceStub(ch).SyncOffline(
        checkout_pb2.SyncOfflineRequest(), metadata=md
    ),
    "GetMember": lambda ch, md: members_pb2_grpc.MemberServiceStub(ch).GetMember(
        members_pb2.GetMemberRequest(), metadata=md
    ),
    "AdjustPoints": lambda ch, md: members_pb2_grpc.MemberServiceStub(ch).AdjustPoints(
        members_pb2.AdjustPointsRequest(), metadata=md
    ),
    "IssueCoupons": lambda ch, md: members_pb2_grpc.MemberServiceStub(ch).IssueCoupons(
        members_pb2.IssueCouponsRequest(), metadata=md
    ),
    "PublishRuleSet": lambda ch, md: campaigns_pb2_grpc.CampaignServiceStub(ch).PublishRuleSet(
        campaigns_pb2.PublishRuleSetRequest(), metadata=md
    ),
}
# who may call what (the calls carry empty requests: allowed ones fail on their content)
MATRIX = {
    "checkout": {"Evaluate", "Commit", "GetMember"},
    "offline-sync": {"Evaluate", "Commit", "SyncOffline", "GetMember"},
    "marketing": {"IssueCoupons", "PublishRuleSet", "GetMember"},
    "admin": set(CALLS),
}


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    settings = Settings(port=0, data_dir=tmp_path_factory.mktemp("auth"), api_keys=KEYS)
    server, port, app = create_server(settings)
    server.start()
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield ch
    ch.close()
    server.stop(None).wait()
    app.close()


def _code(call, ch, key):
    try:
        call(ch, (("x-api-key", key),))
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        return exc.code()


@pytest.mark.parametrize("role", list(MATRIX))
@pytest.mark.parametrize("method", list(CALLS))
def test_each_role_reaches_exactly_its_methods(channel, role, method):
    key = next(k for k, r in KEYS.items() if r == role)
    code = _code(CALLS[method], channel, key)
    if method in MATRIX[role]:
        assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED


def test_unknown_methods_are_closed_to_every_role_but_admin():
    assert not allowed("checkout", "/loyalty.v1.CampaignService/PublishRuleSet")
    assert not allowed("marketing", "/other.Service/Method")
    assert allowed("admin", "/loyalty.v1.MemberService/AdjustPoints")
    assert allowed("checkout", "/grpc.health.v1.Health/Check")
    # grants name whole methods: Commit does not open CommitSomethingElse
    assert not allowed("checkout", "/loyalty.v1.CheckoutService/CommitOffline")
    assert not allowed("checkout", "/loyalty.v1.CheckoutService/SyncOffline")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_from_certificate_files(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    settings = Settings(
        host="localhost", port=0, data_dir=tmp_path / "d", tls_cert=cert, tls_key=key
    )
    server, port, app = create_server(settings)
    server.start()
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"localhost:{port}", creds) as ch:
            reply = campaigns_pb2_grpc.CampaignServiceStub(ch).ListRuleSets(
                campaigns_pb2.ListRuleSetsRequest(), timeout=10
            )
        assert reply.current_version == 0
        with grpc.insecure_channel(f"localhost:{port}") as plain, pytest.raises(grpc.RpcError):
            campaigns_pb2_grpc.CampaignServiceStub(plain).ListRuleSets(
                campaigns_pb2.ListRuleSetsRequest(), timeout=5
            )
    finally:
        server.stop(None).wait()
        app.close()
