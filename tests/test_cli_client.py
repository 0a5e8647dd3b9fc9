"""The ``loyalty`` client commands against real servers on loopback port 0: TLS with
``--tls-ca``, the ``LOYALTY_*`` defaults, ``checkout commit|cancel|return`` and their effects,
retries of a commit whose reply was lost, and ``--json`` on every command."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from engine.pricing.rules import parse_rules
from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    rules_pb2,
)
from server.api.app import create_server
from server.cli import connect
from server.cli.main import main
from server.settings import Settings

T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai
RULES = {
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "points": {
        "point_value_minor": 10,
        "earn_per_amount_minor": 1000,
        "pending_days": 7,
        "expiry_months": 12,
        "redeem_step_points": 1,
        "max_redeem_share_bps": 5000,
    },
    "tiers": [{"id": "member", "earn_multiplier_bps": 10000}],
    "offers": [
        {
            "id": "cola-3for2",
            "scope": {"skus": ["COLA"]},
            "stacking": {"priority": 20},
            "buy_x_get_y": {"buy": 2, "get": 1, "percent_bps": 10000},
        },
        {
            "id": "spend-ladder",
            "scope": {"all": True},
            "stacking": {"priority": 100},
            "spend_tiers": {"steps": [{"threshold_minor": 10000, "amount_minor": 1000}]},
        },
        {
            "id": "rice-coupon",
            "activation": "COUPON",
            "scope": {"skus": ["RICE"]},
            "amount_off": {"amount_minor": 500},
        },
    ],
}
CATALOGUE = [("CREAM", "skincare"), ("COLA", "drinks"), ("RICE", "grocery")]
LINES = [("L1", "CREAM", 3, 5990), ("L2", "COLA", 3, 350)]
OPENING_POINTS = 500
TIMEOUT = "10"


@pytest.fixture(autouse=True)
def _no_client_environment(monkeypatch):
    """The runner's own LOYALTY_TARGET/API_KEY/TLS_CA must not steer these tests."""
    for name in (connect.TARGET_ENV, connect.API_KEY_ENV, connect.TLS_CA_ENV):
        monkeypatch.delenv(name, raising=False)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys, *argv: str) -> dict:
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@contextmanager
def running(settings: Settings, **kw) -> Iterator[int]:
    server, port, app = create_server(settings, **kw)
    server.start()
    try:
        yield port
    finally:
        server.stop(None).wait()
        app.close()


@pytest.fixture
def dead_target() -> Iterator[str]:
    """A loopback port that is bound but never listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


# --- TLS and the environment -------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory) -> Iterator[tuple[int, str]]:
    """A TLS server whose self-signed certificate names only ``localhost``."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    settings = Settings(host="localhost", port=0, data_dir=d / "data", tls_cert=cert, tls_key=key)
    with running(settings, warm=False) as port:
        yield port, str(cert)


def test_the_cli_calls_a_tls_server_with_its_root_ca(tls_server, capsys):
    port, ca = tls_server
    reply = cli_json(
        capsys, "rules", "list", "--target", f"localhost:{port}", "--tls-ca", ca, "--timeout", "10"
    )
    assert reply == {"versions": [], "current_version": "0"}
    # an address the certificate does not name, with the name it does carry
    reply = cli_json(
        capsys,
        "rules",
        "list",
        "--target",
        f"127.0.0.1:{port}",
        "--tls-ca",
        ca,
        "--tls-server-name",
        "localhost",
    )
    assert reply["current_version"] == "0"


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param([], id="plaintext"),
        pytest.param(["--tls"], id="system-roots"),
        pytest.param(["--tls-ca", "CA", "--target", "127.0.0.1:PORT"], id="wrong-name"),
    ],
)
def test_the_cli_fails_against_a_tls_server_without_its_ca(tls_server, capsys, flags):
    port, ca = tls_server
    flags = [f.replace("CA", ca).replace("PORT", str(port)) for f in flags]
    target = [] if "--target" in flags else ["--target", f"localhost:{port}"]
    code, out, err = cli(capsys, "rules", "list", *target, *flags, "--timeout", "5")
    assert (code, out) == (1, "")
    assert err.startswith("error: UNAVAILABLE: ")


def test_the_ca_can_come_from_the_environment_and_a_flag_overrides_it(
    tls_server, capsys, monkeypatch
):
    port, ca = tls_server
    monkeypatch.setenv("LOYALTY_TARGET", f"localhost:{port}")
    monkeypatch.setenv("LOYALTY_TLS_CA", ca)
    assert cli_json(capsys, "rules", "list")["current_version"] == "0"
    code, _, err = cli(capsys, "rules", "list", "--tls-ca", "", "--timeout", "5")
    assert code == 1 and err.startswith("error: UNAVAILABLE: ")


def test_an_unreadable_ca_is_bad_input(tmp_path, capsys, monkeypatch):
    code, _, err = cli(capsys, "rules", "list", "--tls-ca", str(tmp_path / "none.pem"))
    assert code == 2 and err.startswith("error: --tls-ca: ")
    (tmp_path / "junk.pem").write_text("not a certificate")
    monkeypatch.setenv("LOYALTY_TLS_CA", str(tmp_path / "junk.pem"))
    code, _, err = cli(capsys, "rules", "list")
    assert (
        code == 2
        and err == f"error: LOYALTY_TLS_CA: {tmp_path / 'junk.pem'}: not a PEM certificate\n"
    )
    code, _, err = cli(capsys, "rules", "list", "--tls-ca", "", "--tls-server-name", "x")
    assert code == 2 and err == "error: --tls-server-name: needs --tls or --tls-ca\n"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory) -> Iterator[str]:
    settings = Settings(
        port=0, data_dir=tmp_path_factory.mktemp("keys"), api_keys={"k-admin": "admin"}
    )
    with running(settings, warm=False) as port:
        yield f"127.0.0.1:{port}"


def test_target_and_api_key_default_from_the_environment(keyed_server, capsys, monkeypatch):
    monkeypatch.setenv("LOYALTY_TARGET", keyed_server)
    monkeypatch.setenv("LOYALTY_API_KEY", "k-admin")
    assert cli_json(capsys, "rules", "list")["current_version"] == "0"
    monkeypatch.delenv("LOYALTY_API_KEY")
    code, _, err = cli(capsys, "rules", "list")
    assert code == 1 and err.startswith("error: UNAUTHENTICATED: ")


def test_flags_win_over_the_environment(keyed_server, dead_target, capsys, monkeypatch):
    monkeypatch.setenv("LOYALTY_TARGET", dead_target)
    monkeypatch.setenv("LOYALTY_API_KEY", "wrong")
    reply = cli_json(capsys, "rules", "list", "--target", keyed_server, "--api-key", "k-admin")
    assert reply["current_version"] == "0"
    # the other way round: a flag pointing elsewhere, or an empty key, wins too
    monkeypatch.setenv("LOYALTY_TARGET", keyed_server)
    monkeypatch.setenv("LOYALTY_API_KEY", "k-admin")
    code, _, err = cli(capsys, "rules", "list", "--target", dead_target, "--timeout", "5")
    assert code == 1 and err.startswith("error: UNAVAILABLE: ")
    code, _, err = cli(capsys, "rules", "list", "--api-key", "")
    assert code == 1 and err.startswith("error: UNAUTHENTICATED: ")


# --- checkout commit / cancel / return ----------------------------------------------------


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Shop:
    """A published programme on a real server; ``vip1`` holds OPENING_POINTS points."""

    def __init__(self, port: int, tmp_path):
        self.target = f"127.0.0.1:{port}"
        self.tmp_path = tmp_path
        self.channel = grpc.insecure_channel(self.target)
        self.checkout = checkout_pb2_grpc.CheckoutServiceStub(self.channel)
        self.members = members_pb2_grpc.MemberServiceStub(self.channel)
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(self.channel)
        rows = [rules_pb2.CatalogueItem(sku=s, category=c) for s, c in CATALOGUE]
        campaigns.ImportCatalogue(
            campaigns_pb2.ImportCatalogueRequest(rows=campaigns_pb2.CatalogueRows(items=rows))
        )
        campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES)))
        self.members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="vip1", tier="member"))
        self.members.AdjustPoints(
            members_pb2.AdjustPointsRequest(
                adjustment_id="a1", member_id="vip1", points=OPENING_POINTS, reason="opening"
            )
        )

    def basket(self, name: str = "basket.json", lines=LINES, redeem: int = 0) -> str:
        """A basket file in the form ``checkout evaluate`` reads (an EvaluateRequest)."""
        path = self.tmp_path / name
        body = {
            "member_id": "vip1",
            "store_id": "s1",
            "channel": "pos",
            "occurred_at": T0.isoformat().replace("+00:00", "Z"),
            "redeem_points": redeem,
            "lines": [
                {"line_id": i, "sku": s, "quantity": q, "unit_price_minor": p}
                for i, s, q, p in lines
            ],
        }
        path.write_text(json.dumps(body))
        return str(path)

    def points(self) -> tuple[int, int]:
        m = self.members.GetMember(members_pb2.GetMemberRequest(member_id="vip1"), timeout=10)
        return m.available_points, m.pending_points


@pytest.fixture
def shop(tmp_path) -> Iterator[Shop]:
    with running(Settings(port=0, data_dir=tmp_path / "data"), clock=Clock(T0)) as port:
        shop = Shop(port, tmp_path)
        yield shop
        shop.channel.close()


def test_commit_then_cancel_through_the_cli(shop, capsys):
    basket = shop.basket(redeem=-1)
    quote = cli_json(capsys, "checkout", "evaluate", basket, "--target", shop.target)
    payable = quote["payable_minor"]
    done = cli_json(
        capsys,
        "checkout",
        "commit",
        basket,
        "--transaction-id",
        "t1",
        "--expected-payable",
        payable,
        "--fail-if-changed",
        "--target",
        shop.target,
    )
    result = done["result"]
    assert result["payable_minor"] == payable and done["changed_from_quote"] is False
    redeemed, earned = int(result["points_redeemed"]), int(result["points_earned"])
    assert redeemed > 0 and earned > 0
    # the effects, read back with GetMember: points spent, earned ones pending
    assert shop.points() == (OPENING_POINTS - redeemed, earned)
    assert done["member"]["available_points"] == str(OPENING_POINTS - redeemed)

    code, out, err = cli(capsys, "checkout", "cancel", "t1", "--target", shop.target)
    assert code == 0, err
    shown = out.splitlines()
    assert shown[0] == (
        f"t1: CANCELLED: refund {int(payable) / 100:.2f}, {earned} points clawed back, "
        f"{redeemed} points of tender returned"
    )
    assert len(shown) == 2 + len(result["lines"])
    assert shown[-1] == f"member vip1 (member): {OPENING_POINTS} points available, 0 pending"
    assert shop.points() == (OPENING_POINTS, 0)
    # cancelling again is idempotent, and says so with the same reversal
    again = cli_json(capsys, "checkout", "cancel", "t1", "--target", shop.target)
    assert again["status"] == "ALREADY_CANCELLED" and shop.points() == (OPENING_POINTS, 0)
    assert int(again["refund_minor"]) == int(payable)
    assert int(again["points_clawed_back"]) == earned


def test_an_offline_sale_syncs_with_commit_offline(shop, capsys):
    # given a basket the lane sold a day ago, while it could not reach the server
    path = Path(shop.basket("offline.json"))
    body = json.loads(path.read_text())
    body["occurred_at"] = "2026-11-17T02:00:00Z"  # T0 minus a day
    path.write_text(json.dumps(body))
    # then a plain commit is refused: the lane's clock is off the server's by a day
    code, _, err = cli(
        capsys, "checkout", "commit", str(path), "--transaction-id", "o1", "--target", shop.target
    )
    assert code == 1 and "INVALID_ARGUMENT" in err and "SyncOffline" in err
    # and --offline syncs it, priced at the lane's time, its points pending from that day
    done = cli_json(
        capsys,
        "checkout",
        "commit",
        str(path),
        "--transaction-id",
        "o1",
        "--offline",
        "--target",
        shop.target,
    )
    assert int(done["commit"]["result"]["points_earned"]) > 0
    assert shop.points() == (OPENING_POINTS, int(done["commit"]["result"]["points_earned"]))
    code, out, err = cli(
        capsys,
        "checkout",
        "commit",
        str(path),
        "--transaction-id",
        "o1",
        "--offline",
        "--target",
        shop.target,
    )
    assert code == 0 and out.startswith("committed o1"), err
    # a basket without occurred_at cannot be synced
    del body["occurred_at"]
    path.write_text(json.dumps(body))
    code, _, err = cli(
        capsys,
        "checkout",
        "commit",
        str(path),
        "--transaction-id",
        "o2",
        "--offline",
        "--target",
        shop.target,
    )
    assert code == 2 and "occurred_at" in err


def test_commit_prints_a_summary(shop, capsys):
    code, out, err = cli(
        capsys,
        "checkout",
        "commit",
        shop.basket(),
        "--transaction-id",
        "t1",
        "--target",
        shop.target,
    )
    assert code == 0, err
    # 3 x 59.90 + 3 x 3.50 with one cola free = 18670 >= 10000: 1000 off; 17670 earns 17
    assert out.splitlines() == [
        "committed t1 (rule set version 1): payable 176.70",
        "  gross 190.20  discount -13.50  points tender 0 pts = -0.00",
        "  points earned 17 (pending)",
        "  cola-3for2               -3.50",
        "  spend-ladder             -10.00",
        f"member vip1 (member): {OPENING_POINTS} points available, 17 pending",
    ]
    assert shop.points() == (OPENING_POINTS, 17)


def test_the_same_commit_twice_has_one_effect_and_the_same_answer(shop, capsys):
    argv = ("checkout", "commit", shop.basket(), "--transaction-id", "t1", "--target", shop.target)
    first, second = cli_json(capsys, *argv), cli_json(capsys, *argv)
    assert first == second
    assert shop.points() == (OPENING_POINTS, int(first["result"]["points_earned"]))
    # another basket under the same id is refused at once, not retried
    other = shop.basket("other.json", lines=[("L1", "RICE", 1, 4500)])
    code, out, err = cli(
        capsys, "checkout", "commit", other, "--transaction-id", "t1", "--target", shop.target
    )
    assert (code, out) == (1, "") and err.startswith("error: ALREADY_EXISTS: ")
    assert "retry" not in err


def test_a_changed_quote(shop, capsys):
    argv = ("checkout", "commit", shop.basket(), "--target", shop.target)
    code, _, err = cli(
        capsys, *argv, "--transaction-id", "t1", "--expected-payable", "100", "--fail-if-changed"
    )
    assert code == 1 and err.startswith("error: FAILED_PRECONDITION: payable changed from 100")
    assert shop.points() == (OPENING_POINTS, 0)
    done = cli_json(capsys, *argv, "--transaction-id", "t2", "--expected-payable", "100")
    assert done["changed_from_quote"] is True
    code, _, err = cli(capsys, *argv, "--transaction-id", "t3", "--fail-if-changed")
    assert code == 2 and err == "error: --fail-if-changed: needs --expected-payable\n"


def test_partial_returns_through_the_cli(shop, capsys):
    done = cli_json(
        capsys,
        "checkout",
        "commit",
        shop.basket(lines=[("L1", "CREAM", 3, 5990)]),
        "--transaction-id",
        "t1",
        "--target",
        shop.target,
    )
    line = done["result"]["lines"][0]
    earned = int(done["result"]["points_earned"])
    ret = ("checkout", "return", "t1", "--target", shop.target)
    code, out, err = cli(capsys, *ret, "--return-id", "r1", "--line", "L1:1")
    assert code == 0, err
    assert out.startswith("return r1 of t1: refund ")
    r1 = cli_json(capsys, *ret, "--return-id", "r1", "--line", "L1:1")  # idempotent per id
    r2 = cli_json(capsys, *ret, "--return-id", "r2", "--line", "L1:2")
    assert int(r1["refund_minor"]) + int(r2["refund_minor"]) == int(line["net_minor"])
    assert int(r1["points_clawed_back"]) + int(r2["points_clawed_back"]) == earned
    assert r2["lines"] == [
        {
            "line_id": "L1",
            "quantity": "2",
            "refund_minor": r2["refund_minor"],
            "points_clawed_back": r2["points_clawed_back"],
            "points_tender_returned": "0",
            "funding_reversed_minor": "0",
        }
    ]
    assert shop.points() == (OPENING_POINTS, 0)
    code, _, err = cli(capsys, *ret, "--return-id", "r3", "--line", "L1:1")
    assert code == 1 and err.startswith("error: FAILED_PRECONDITION: ")


@pytest.mark.parametrize("bad", ["L1", "L1:0", "L1:x", ":2"])
def test_a_bad_return_line_is_a_usage_error(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["checkout", "return", "t1", "--return-id", "r1", "--line", bad])
    assert exc.value.code == 2
    assert "LINE_ID:QTY" in capsys.readouterr().err


def test_a_missing_basket_file_is_bad_input(tmp_path, capsys):
    code, _, err = cli(
        capsys, "checkout", "commit", str(tmp_path / "none.json"), "--transaction-id", "t1"
    )
    assert code == 2 and err.startswith("error: ") and "none.json" in err


class FlakyProxy:
    """A loopback gRPC proxy in front of ``upstream`` that answers the first ``fail`` Commit
    calls with UNAVAILABLE: after forwarding them (``lose_replies``: the sale was applied, its
    reply lost on the way back) or without."""

    def __init__(
        self,
        upstream: str,
        fail: int,
        lose_replies: bool,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
    ):
        self.commits = 0
        self.lock = threading.Lock()
        self.upstream = grpc.insecure_channel(upstream)
        proxy = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                forward = proxy.upstream.unary_unary(details.method)

                def call(request: bytes, context: grpc.ServicerContext) -> bytes:
                    if details.method.endswith("/Commit"):
                        with proxy.lock:
                            proxy.commits += 1
                            failing = proxy.commits <= fail
                        if failing:
                            if lose_replies:
                                forward(request, timeout=10)
                            context.abort(code, "connection reset (test)")
                    return forward(request, timeout=10)

                return grpc.unary_unary_rpc_method_handler(call)

        from concurrent.futures import ThreadPoolExecutor

        self.server = grpc.server(ThreadPoolExecutor(4), handlers=[Handler()])
        self.target = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def close(self) -> None:
        self.server.stop(None).wait()
        self.upstream.close()


@pytest.fixture
def flaky(shop):
    proxies = []

    def make(fail: int, lose_replies: bool = True, **kw) -> FlakyProxy:
        proxies.append(FlakyProxy(shop.target, fail, lose_replies, **kw))
        return proxies[-1]

    yield make
    for p in proxies:
        p.close()


def test_a_commit_whose_replies_were_lost_is_retried_under_the_same_id(
    shop, flaky, capsys, monkeypatch
):
    slept: list[float] = []
    monkeypatch.setattr(connect, "_sleep", slept.append)
    proxy = flaky(fail=2)
    argv = ("checkout", "commit", shop.basket(), "--transaction-id", "t1")
    code, out, err = cli(capsys, *argv, "--target", proxy.target, "--json")
    assert code == 0, err
    assert proxy.commits == 3 and slept == [0.25, 0.5]
    assert err.splitlines() == [
        "commit t1: UNAVAILABLE, retry 1 of 3 in 0.25 s",
        "commit t1: UNAVAILABLE, retry 2 of 3 in 0.50 s",
    ]
    # applied once (the first try), and the retry answered with the stored result
    retried = json.loads(out)
    assert shop.points() == (OPENING_POINTS, int(retried["result"]["points_earned"]))
    assert cli_json(capsys, *argv, "--target", shop.target) == retried


@pytest.mark.parametrize(
    ("code", "attempts"),
    [
        (grpc.StatusCode.UNAVAILABLE, 3),
        (grpc.StatusCode.ABORTED, 3),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 3),
        (grpc.StatusCode.INTERNAL, 1),  # not known to be safe to resend: never retried
    ],
)
def test_a_commit_gives_up_after_its_retries(shop, flaky, capsys, monkeypatch, code, attempts):
    monkeypatch.setattr(connect, "_sleep", lambda s: None)
    proxy = flaky(fail=100, lose_replies=False, code=code)
    status, out, err = cli(
        capsys,
        "checkout",
        "commit",
        shop.basket(),
        "--transaction-id",
        "t1",
        "--retries",
        "2",
        "--target",
        proxy.target,
    )
    assert (status, out, proxy.commits) == (1, "", attempts)
    assert err.splitlines()[-1] == f"error: {code.name}: connection reset (test)"
    assert len(err.splitlines()) == attempts
    assert shop.points() == (OPENING_POINTS, 0)


def test_a_commit_to_a_server_that_is_down_is_retried_and_fails(dead_target, tmp_path, capsys):
    basket = tmp_path / "b.json"
    basket.write_text('{"lines": []}')
    code, _, err = cli(
        capsys,
        "checkout",
        "commit",
        str(basket),
        "--transaction-id",
        "t1",
        "--retries",
        "1",
        "--target",
        dead_target,
        "--timeout",
        "5",
    )
    assert code == 1
    assert err.splitlines()[0] == "commit t1: UNAVAILABLE, retry 1 of 1 in 0.25 s"
    assert err.splitlines()[-1].startswith("error: UNAVAILABLE: ")


# --- --json on every command ---------------------------------------------------------------


def test_every_client_command_prints_json(shop, capsys):
    t = ("--target", shop.target, "--timeout", TIMEOUT)
    rules = shop.tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    catalogue = shop.tmp_path / "catalogue.csv"
    catalogue.write_text("sku,category\n" + "".join(f"{s},{c}\n" for s, c in CATALOGUE))
    assert cli_json(capsys, "rules", "publish", str(rules), "--note", "n", *t)["version"] == "2"
    listed = cli_json(capsys, "rules", "list", *t)
    assert [(v["version"], v["current"]) for v in listed["versions"]] == [
        ("1", False),
        ("2", True),
    ]
    assert cli_json(capsys, "rules", "activate", "1", *t)["version"] == "1"
    assert cli_json(capsys, "catalogue", "import", str(catalogue), *t)["skus"] == "3"
    upserted = cli_json(capsys, "members", "upsert", "m2", "--marketing", *t)
    assert upserted["member_id"] == "m2"
    shown = cli_json(capsys, "members", "show", "vip1", *t)
    assert shown["available_points"] == str(OPENING_POINTS) and shown["wallet"] == []
    issued = cli_json(
        capsys, "coupons", "issue", "rice-coupon", "--issue-id", "i1", "--member", "vip1", *t
    )
    assert issued == {"issued": "1", "skipped_member_ids": [], "unreserved_member_ids": []}
    # the shopping list (empty here: the coupon's validity starts at the real "now", the
    # server's clock is T0); the key is there all the same
    assert isinstance(cli_json(capsys, "members", "offers", "vip1", *t)["offers"], list)
    quote = cli_json(capsys, "checkout", "evaluate", shop.basket(), *t)
    assert quote["payable_minor"] == "17670" and quote["points_redeemed"] == "0"
    # without --json the summaries are as before
    code, out, _ = cli(capsys, "rules", "list", *t)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("*    1  ") and lines[1].startswith("     2  ")
    assert lines[1].endswith("3 offers  n")
