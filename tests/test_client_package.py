"""The slim client package (clients/python, distribution ``loyalty-client``).

- Its ``loyalty.v1`` modules are the main package's, byte for byte, plus typed service stubs
  that clients/python/generate.py makes with mypy-protobuf (a drift check, like
  test_proto_drift.py).
- Its wheel holds ``loyalty`` and ``loyalty_client`` only, and ``loyalty_client`` passes
  ``mypy --strict``; callers are type-checked against the stubs.
- In one interpreter with the main package it works whichever ``loyalty.v1`` copy wins.
- Its own suite (clients/python/tests) passes in a virtualenv holding nothing but grpcio,
  protobuf and pytest, against a real server started from this environment.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "clients" / "python"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_loyalty_client_{name}", CLIENT / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load("generate")
slim_env = _load("slim_env")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return slim_env.build_wheel(tmp_path_factory.mktemp("client-dist"))


def test_the_clients_stubs_are_the_main_packages_byte_for_byte():
    copied = generate.copied_files()
    assert Path("loyalty/v1/checkout_pb2.py") in copied
    for rel in copied:
        ours, theirs = generate.TARGET / rel, generate.PROTO_ROOT / rel
        assert ours.read_bytes() == theirs.read_bytes(), (
            f"clients/python/src/{rel} differs from proto/{rel}: "
            "run .venv/bin/python clients/python/generate.py"
        )


def test_the_clients_generated_files_are_up_to_date():
    # also regenerates the typed service stubs (*_pb2_grpc.pyi) with the pinned mypy-protobuf
    problems = generate.differences()
    assert not problems, "run .venv/bin/python clients/python/generate.py: " + "; ".join(problems)


def test_the_wheel_ships_loyalty_and_loyalty_client_only_and_shares_identical_files(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if ".dist-info" not in n.split("/")[0]}
    assert tops == {"loyalty", "loyalty_client"}
    for needed in ("loyalty/py.typed", "loyalty_client/py.typed", "loyalty_client/checkout.py"):
        assert needed in names
    with zipfile.ZipFile(wheel) as z:
        for name in names:
            if not name.startswith("loyalty/"):
                continue
            main = generate.PROTO_ROOT / name
            if main.exists():  # shipped by both distributions: must be the same bytes
                assert z.read(name) == main.read_bytes(), name
            else:  # only the client's: typing files, no code that could differ at run time
                assert name.endswith((".pyi", "py.typed")), name
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = sorted(
        line.split(":", 1)[1].strip()
        for line in meta.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    )
    assert requires == ["grpcio>=1.85.1", "protobuf>=7.35.1"]
    version = wheel.name.split("-")[1]
    assert f'__version__ = "{version}"' in (CLIENT / "src/loyalty_client/__init__.py").read_text()


def test_the_client_passes_mypy_strict_and_its_stubs_type_callers(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(
        textwrap.dedent(
            """
            from loyalty.v1 import checkout_pb2, members_pb2, members_pb2_grpc
            from loyalty_client import CheckoutClient, RetryPolicy


            def lane(client: CheckoutClient, basket: checkout_pb2.EvaluateRequest) -> int:
                done = client.commit("T-1", basket, expected_payable_minor=1)
                client.return_lines("R-1", "T-1", {"1": 1})
                members = members_pb2_grpc.MemberServiceStub(client.channel)
                member = members.GetMember(members_pb2.GetMemberRequest(member_id="M1"))
                points: int = member.available_points
                return done.result.payable_minor + points


            client = CheckoutClient.connect("x:1", api_key="k", retry=RetryPolicy(max_attempts=2))
            """
        )
    )
    bad = tmp_path / "bad.py"
    bad.write_text(
        textwrap.dedent(
            """
            from loyalty.v1 import checkout_pb2, members_pb2_grpc
            from loyalty_client import CheckoutClient


            def lane(client: CheckoutClient) -> str:
                members = members_pb2_grpc.MemberServiceStub(client.channel)
                members.GetMember(checkout_pb2.EvaluateRequest())
                return client.commit(7, checkout_pb2.EvaluateRequest()).result
            """
        )
    )

    def mypy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", *args],
            cwd=CLIENT,
            capture_output=True,
            text=True,
            timeout=600,
        )

    own = mypy()  # files = src/loyalty_client, strict
    assert own.returncode == 0, own.stdout + own.stderr
    ok = mypy(str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    errors = mypy(str(bad))
    assert errors.returncode == 1, errors.stdout + errors.stderr
    assert 'Argument 1 to "__call__" of "UnaryUnaryMultiCallable"' in errors.stdout
    assert 'Argument 1 to "commit" of "CheckoutClient" has incompatible type "int"' in errors.stdout
    assert 'Incompatible return value type (got "EvaluateResponse", expected "str")' in (
        errors.stdout
    )


INTEROP = """
import sys
from pathlib import Path

import loyalty.v1.checkout_pb2 as checkout_pb2
from engine.pricing.rules import parse_rules
from loyalty.v1 import campaigns_pb2, campaigns_pb2_grpc, rules_pb2
from loyalty_client import NO_RETRY, CheckoutClient
from server.api.app import create_server
from server.settings import Settings

print(checkout_pb2.__file__)
server, port, app = create_server(Settings(port=0, data_dir=Path(sys.argv[1])))
server.start()
try:
    with CheckoutClient.connect(f"127.0.0.1:{port}", retry=NO_RETRY) as client:
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(client.channel)
        campaigns.ImportCatalogue(
            campaigns_pb2.ImportCatalogueRequest(
                rows=campaigns_pb2.CatalogueRows(
                    items=[rules_pb2.CatalogueItem(sku="COLA", category="drinks")]
                )
            ),
            timeout=60,
        )
        rules = {
            "currency": "CNY",
            "timezone": "UTC",
            "offers": [{"id": "cola", "scope": {"skus": ["COLA"]},
                        "percent_off": {"percent_bps": 1000}}],
        }
        campaigns.PublishRuleSet(
            campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(rules)), timeout=120
        )
        basket = checkout_pb2.EvaluateRequest(
            lines=[checkout_pb2.Line(line_id="1", sku="COLA", quantity=2, unit_price_minor=500)]
        )
        quote = client.evaluate(basket, deadline=60)
        done = client.commit("interop-1", basket, deadline=60)
        assert client.commit("interop-1", basket, deadline=60) == done
        print(quote.discount_minor, done.result.payable_minor)
finally:
    server.stop(0).wait()
    app.close()
"""


@pytest.mark.parametrize("winner", ["client", "main"])
def test_the_client_and_the_main_package_share_one_interpreter(wheel, tmp_path, winner):
    # both in one environment: the loyalty.v1 files are the same either way, so neither side
    # can tell which distribution wrote them. "client": the wheel's loyalty/ comes first on
    # the path (as if installed last); "main": only loyalty_client is added.
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if winner == "client" or name.startswith("loyalty_client/"):
                z.extract(name, site)
    env = {**os.environ, "PYTHONPATH": str(site), "LOYALTY_METRICS_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-c", INTEROP, str(tmp_path / "data")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stub_file, amounts = done.stdout.splitlines()[-2:]
    expected_home = site if winner == "client" else generate.PROTO_ROOT
    assert Path(stub_file).resolve().is_relative_to(expected_home.resolve()), stub_file
    assert amounts.split() == ["100", "900"]  # 10% off 2 x 5.00


def test_the_client_suite_passes_in_a_slim_virtualenv_against_a_real_server():
    try:
        slim_env.ensure_venv()
    except slim_env.NoVenv as exc:
        pytest.skip(f"cannot make a virtualenv for the client: {exc}")
    done = slim_env.run_tests(["-q"])
    report = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert " passed" in done.stdout, report
