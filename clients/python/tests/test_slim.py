"""The installed client is slim: it runs on grpcio and protobuf alone, from site-packages."""

from __future__ import annotations

import importlib.util
import sysconfig
from importlib import metadata
from pathlib import Path

import loyalty_client
from loyalty.v1 import campaigns_pb2_grpc, checkout_pb2, checkout_pb2_grpc, members_pb2_grpc

# what pytest itself brings (and the venv's own installers)
TEST_TOOLS = {"pytest", "iniconfig", "packaging", "pluggy", "pygments", "pip", "setuptools"}


def _name(dist: metadata.Distribution) -> str:
    return str(dist.metadata["Name"]).lower().replace("_", "-")


def test_the_client_is_installed_not_imported_from_the_source_tree():
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    for module in (loyalty_client, checkout_pb2, checkout_pb2_grpc):
        assert Path(module.__file__).resolve().is_relative_to(site), module.__file__


def test_it_requires_grpcio_and_protobuf_only():
    requires = metadata.requires("loyalty-client") or []
    runtime = sorted(r.split(";")[0].strip() for r in requires if "extra ==" not in r)
    assert runtime == ["grpcio>=1.85.1", "protobuf>=7.35.1"]


def test_the_environment_has_nothing_of_the_server():
    installed = {_name(d) for d in metadata.distributions()}
    # grpcio's and protobuf's own dependencies are allowed, nothing of the engine's
    assert not installed & {"loyalty-engine", "numba", "numpy", "polars", "redis", "pyyaml"}
    extra = installed - TEST_TOOLS - {"loyalty-client", "grpcio", "protobuf", "typing-extensions"}
    assert not extra, f"unexpected distributions: {sorted(extra)}"
    for module in ("engine", "server", "numba", "polars", "grpc_tools"):
        assert importlib.util.find_spec(module) is None, module


def test_every_service_stub_is_there_with_its_typed_stub_file():
    assert checkout_pb2_grpc.CheckoutServiceStub
    assert members_pb2_grpc.MemberServiceStub
    assert campaigns_pb2_grpc.CampaignServiceStub
    here = Path(checkout_pb2.__file__).parent
    for name in ("checkout", "members", "campaigns", "rules"):
        assert (here / f"{name}_pb2.pyi").is_file()
        assert (here / f"{name}_pb2_grpc.pyi").is_file()
    assert (here.parent / "py.typed").is_file()
    assert (Path(loyalty_client.__file__).parent / "py.typed").is_file()
