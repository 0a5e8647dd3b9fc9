"""Logs of `loyalty serve` with one worker (the default): one access line per call, in text or
JSON, with the transaction id, the worker pid, and member ids hashed unless asked otherwise."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import urllib.request
from pathlib import Path

import grpc
import pytest

from engine.errors import InvalidInput
from loyalty.v1 import checkout_pb2, members_pb2
from server.api.logs import AccessLog, JsonFormatter
from server.settings import Settings
from server.store.redis.process import free_port
from tests.served import serve_process
from tests.test_metrics import publish
from tests.test_server_checkout import Stubs, basket

# what each test calls: ImportCatalogue, PublishRuleSet, UpsertMember, Commit, GetMember
CALLS = 5


def _sha(member_id: str) -> str:
    return hashlib.sha256(member_id.encode()).hexdigest()[:12]


def _serve(tmp_path: Path, *flags: str, env: dict[str, str] | None = None) -> tuple[str, str, int]:
    """Run `loyalty serve`, make the calls, stop it; its announce line, stderr and pid."""
    with serve_process(tmp_path, *flags, env=env, clean_env=True) as server:
        assert server.port, (server.line, server.stderr.read_text())
        with grpc.insecure_channel(server.target) as channel:
            stubs = Stubs(channel)
            publish(stubs)  # three calls
            sale = basket()
            sale.ClearField("occurred_at")  # the server's clock prices (a real one here)
            stubs.checkout.Commit(
                checkout_pb2.CommitRequest(transaction_id="t-log-1", basket=sale), timeout=30
            )
            stubs.members.GetMember(members_pb2.GetMemberRequest(member_id="vip1"))
    return server.line, server.stderr.read_text(), server.proc.pid


def test_one_text_access_line_per_call_with_hashed_members(tmp_path):
    metrics_port = free_port()

    line, err, pid = _serve(tmp_path, "--metrics-port", str(metrics_port))

    assert f"metrics: http://127.0.0.1:{metrics_port}/metrics" in line
    access = [x for x in err.splitlines() if " loyalty.access " in x]
    assert len(access) == CALLS, err
    assert all(f" pid={pid} " in x for x in access)
    commit = next(x for x in access if "CheckoutService/Commit" in x)
    assert re.search(
        rf"INFO loyalty\.access pid=\d+ method=/loyalty\.v1\.CheckoutService/Commit code=OK "
        rf"ms=\d+\.\d{{3}} tx=t-log-1 member={_sha('vip1')}$",
        commit,
    ), commit
    get = next(x for x in access if "MemberService/GetMember" in x)
    assert get.endswith(f"code=OK ms={get.split('ms=')[1].split()[0]} member={_sha('vip1')}")
    assert "vip1" not in err  # not in an access line, nor anywhere else
    # the start-up lines come after the listening line, on stderr
    assert "kernels ready" in err


def test_json_lines_with_member_ids_as_they_are(tmp_path):
    _, err, pid = _serve(
        tmp_path,
        "--log-format",
        "json",
        "--metrics-port",
        "0",
        env={"LOYALTY_LOG_MEMBER_IDS": "true"},
    )

    records = [json.loads(x) for x in err.splitlines()]  # every line is one JSON object
    access = [r for r in records if r["logger"] == "loyalty.access"]
    assert len(access) == CALLS
    assert {r["pid"] for r in records} == {pid}
    commit = next(r for r in access if r["method"].endswith("/Commit"))
    assert commit["code"] == "OK" and isinstance(commit["ms"], float)
    assert (commit["transaction_id"], commit["member"]) == ("t-log-1", "vip1")
    assert {"ts", "level", "msg"} <= set(commit)
    publish_call = next(r for r in access if r["method"].endswith("/PublishRuleSet"))
    assert "transaction_id" not in publish_call and "member" not in publish_call


def _record(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    records = [r for r in caplog.records if r.name == "loyalty.access"]
    assert len(records) == 1
    return records[0]


def test_a_keyed_hash_and_ids_that_cannot_break_a_line(caplog):
    log = AccessLog(key="secret")
    request = checkout_pb2.CommitRequest(transaction_id="t 1\nforged line", basket=basket("m-7"))

    with caplog.at_level(logging.INFO, logger="loyalty.access"):
        log.write("/loyalty.v1.CheckoutService/Commit", "OK", 0.0012, request)

    record = _record(caplog)
    keyed = hmac.new(b"secret", b"m-7", hashlib.sha256).hexdigest()[:12]
    assert record.getMessage() == (
        "method=/loyalty.v1.CheckoutService/Commit code=OK ms=1.200 "
        f'tx="t 1\\nforged line" member={keyed}'
    )
    as_json = json.loads(JsonFormatter().format(record))
    assert (as_json["transaction_id"], as_json["member"], as_json["ms"]) == (
        "t 1\nforged line",
        keyed,
        1.2,
    )


def test_a_request_without_ids_logs_none(caplog):
    with caplog.at_level(logging.INFO, logger="loyalty.access"):
        AccessLog().write("/test.Raise/Raise", "INTERNAL", 0.5, b"")

    assert _record(caplog).getMessage() == "method=/test.Raise/Raise code=INTERNAL ms=500.000"


def test_metrics_endpoint_of_a_single_worker_serves_process_series(tmp_path):
    """`loyalty serve` (one process) adds the standard process series to its endpoint."""
    metrics_port = free_port()
    with serve_process(tmp_path, "--metrics-port", str(metrics_port)) as server:
        assert "listening on" in server.line
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
    assert "process_cpu_seconds_total" in text
    assert "loyalty_ruleset_version 0.0" in text  # nothing published yet


def test_the_serve_flags_and_variables_of_logs_metrics_and_traces():
    from server.cli.main import _settings, build_parser

    args = build_parser().parse_args(
        ["serve", "--metrics-port", "0", "--log-format", "json", "--log-member-ids"]
        + ["--tracing", "off", "--metrics-host", "10.0.0.7"]
    )
    s = _settings(args)
    assert (s.metrics_port, s.metrics_host, s.log_format, s.log_member_ids, s.tracing) == (
        0,
        "10.0.0.7",
        "json",
        True,
        "off",
    )
    env = {
        "LOYALTY_METRICS_PORT": "9500",
        "LOYALTY_LOG_FORMAT": "JSON",
        "LOYALTY_LOG_MEMBER_IDS": "yes",
        "LOYALTY_LOG_MEMBER_KEY": "k",
        "LOYALTY_TRACING": "on",
    }
    s = Settings.from_env(env)
    assert (s.metrics_port, s.log_format, s.log_member_ids, s.tracing) == (9500, "json", True, "on")
    assert "'k'" not in repr(s)  # the hash key stays out of reprs
    assert Settings().metrics_port == 9464 and Settings().log_format == "text"


@pytest.mark.parametrize(
    ("env", "field", "message"),
    [
        ({"LOYALTY_METRICS_PORT": "x"}, "LOYALTY_METRICS_PORT", "must be a whole number (got 'x')"),
        ({"LOYALTY_LOG_MEMBER_IDS": "maybe"}, "LOYALTY_LOG_MEMBER_IDS", "must be true or false"),
        ({"LOYALTY_LOG_FORMAT": "xml"}, "--log-format", "unknown log format 'xml'"),
        ({"LOYALTY_TRACING": "sometimes"}, "--tracing", "must be auto, on or off"),
        ({"LOYALTY_METRICS_PORT": "70000"}, "--metrics-port", "must be 0..65535, 0 = off"),
        ({"LOYALTY_METRICS_PORT": "50051"}, "--metrics-port", "must differ from --port"),
    ],
)
def test_a_bad_setting_of_logs_metrics_or_traces_is_named(env, field, message):
    with pytest.raises(InvalidInput) as exc:
        Settings.from_env(env)

    [violation] = exc.value.violations
    assert violation.field == field and message in violation.description
