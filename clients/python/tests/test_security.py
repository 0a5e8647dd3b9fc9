"""TLS with a private root CA, and the API key, against a server that requires both."""

from __future__ import annotations

import grpc
import pytest
from harness import API_KEY, Certs, LoyaltyServer

from loyalty.v1 import members_pb2, members_pb2_grpc
from loyalty_client import NO_RETRY, CheckoutClient, RetriesExhausted, open_channel


def test_tls_with_the_root_ca_and_the_api_key(secure_server: LoyaltyServer, certs: Certs, basket):
    with CheckoutClient.connect(
        secure_server.target, api_key=API_KEY, root_certificates=certs.ca
    ) as client:
        quote = client.evaluate(basket)
        assert quote.payable_minor > 0
        # the key rides on the channel: other stubs over it carry it too
        member = members_pb2_grpc.MemberServiceStub(client.channel).GetMember(
            members_pb2.GetMemberRequest(member_id="M10004"), timeout=10
        )
        assert member.member_id == "M10004"


def test_the_root_ca_as_pem_bytes_and_a_server_name(
    secure_server: LoyaltyServer, certs: Certs, basket
):
    with CheckoutClient.connect(
        secure_server.target,
        api_key=API_KEY,
        root_certificates=certs.ca.read_bytes(),
        server_name="localhost",
    ) as client:
        assert client.evaluate(basket).ruleset_version >= 1


def test_without_the_key_the_call_fails_at_once(secure_server: LoyaltyServer, certs, basket):
    with CheckoutClient.connect(secure_server.target, root_certificates=certs.ca) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.evaluate(basket)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not isinstance(caught.value, RetriesExhausted)


def test_a_key_given_per_client_over_a_channel_of_ones_own(secure_server, certs, basket):
    channel = open_channel(secure_server.target, root_certificates=str(certs.ca))
    with channel:
        client = CheckoutClient(channel, api_key=API_KEY)
        assert client.evaluate(basket).lines


def test_an_untrusted_or_plaintext_connection_does_not_get_through(secure_server, basket):
    with CheckoutClient.connect(
        secure_server.target, api_key=API_KEY, tls=True, retry=NO_RETRY
    ) as client:  # the system's roots do not know the test CA
        with pytest.raises(grpc.RpcError) as untrusted:
            client.evaluate(basket, deadline=5)
    with CheckoutClient.connect(secure_server.target, api_key=API_KEY, retry=NO_RETRY) as client:
        with pytest.raises(grpc.RpcError) as plaintext:
            client.evaluate(basket, deadline=5)
    assert untrusted.value.code() == plaintext.value.code() == grpc.StatusCode.UNAVAILABLE


def test_bad_tls_settings_are_refused_before_connecting(tmp_path):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match="not a PEM certificate"):
        open_channel("127.0.0.1:1", root_certificates=not_pem)
    with pytest.raises(ValueError, match="needs TLS"):
        open_channel("127.0.0.1:1", server_name="localhost")
