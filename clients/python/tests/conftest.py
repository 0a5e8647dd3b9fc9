"""Fixtures: a demo server (shared), a secured one (TLS + API key), the sample basket, and a
failing proxy in front of the shared server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format
from harness import (
    API_KEY,
    FAST,
    REPO,
    Certs,
    FlakyProxy,
    LoyaltyServer,
    make_certs,
    server_python,
)

from loyalty.v1 import checkout_pb2
from loyalty_client import CheckoutClient

SERVERS = {"server", "secure_server", "restartable"}  # fixtures that start a real server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if server_python() is None:
        where = os.environ.get("LOYALTY_SERVER_PYTHON") or REPO / ".venv" / "bin" / "python"
        skip = pytest.mark.skip(
            reason=f"no loyalty server to test against: no Python at {where} (run `make env`, "
            "or set LOYALTY_SERVER_PYTHON to a Python that has the server installed)"
        )
        for item in items:
            if SERVERS & set(getattr(item, "fixturenames", ())):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoyaltyServer]:
    srv = LoyaltyServer(tmp_path_factory.mktemp("shared") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    made = make_certs(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("openssl not found: cannot make a test CA")
    return made


@pytest.fixture(scope="session")
def secure_server(
    tmp_path_factory: pytest.TempPathFactory, certs: Certs
) -> Iterator[LoyaltyServer]:
    args = ["--api-key", f"{API_KEY}:checkout", "--tls-cert", str(certs.cert)]
    args += ["--tls-key", str(certs.key)]
    srv = LoyaltyServer(tmp_path_factory.mktemp("secure") / "data", args=args).start()
    yield srv
    srv.stop()


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[LoyaltyServer]:
    """A server of its own (not started) that a test may stop and start on the same port."""
    srv = LoyaltyServer(tmp_path / "data")
    yield srv
    srv.stop()


@pytest.fixture
def client(server: LoyaltyServer) -> Iterator[CheckoutClient]:
    with CheckoutClient.connect(server.target, retry=FAST) as c:
        yield c


@pytest.fixture
def proxy(server: LoyaltyServer) -> Iterator[FlakyProxy]:
    p = FlakyProxy(server.target)
    yield p
    p.close()


@pytest.fixture
def basket() -> checkout_pb2.EvaluateRequest:
    """examples/evaluate.json: member M10004, four lines, redeem as many points as allowed."""
    raw = json.loads((REPO / "examples" / "evaluate.json").read_text())
    return json_format.ParseDict(raw, checkout_pb2.EvaluateRequest())
