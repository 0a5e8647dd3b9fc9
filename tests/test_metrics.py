"""Prometheus metrics after real calls, scraped from the ``/metrics`` endpoint over HTTP.

A server on port 0 with its metrics on a free port (one process), and ``loyalty serve
--workers 2`` whose supervisor sums what both workers recorded (multiprocess mode).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from engine.pricing.rules import parse_rules
from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2, rules_pb2
from server.api.app import App, create_server
from server.api.metrics import Metrics
from server.settings import Settings
from server.store.redis.process import free_port
from tests.served import serve_process
from tests.test_server_checkout import (
    CATALOGUE,
    RULES,
    T0,
    Clock,
    Stubs,
    basket,
    commit,
    issue_rice_coupon,
)

COMMIT = "loyalty.v1.CheckoutService/Commit"
EVALUATE = "loyalty.v1.CheckoutService/Evaluate"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def publish(stubs: Stubs) -> None:
    stubs.campaigns.ImportCatalogue(
        campaigns_pb2.ImportCatalogueRequest(
            rows=campaigns_pb2.CatalogueRows(
                items=[rules_pb2.CatalogueItem(sku=s, category=c) for s, c in CATALOGUE]
            )
        )
    )
    stubs.campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(RULES)))
    stubs.members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="vip1", tier="vip"))


@pytest.fixture(params=["embedded", "redis"])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Stubs, str, App]]:
    """A published server and the URL of its metrics, on each store."""
    settings = Settings(port=0, data_dir=tmp_path / "data", store=request.param)
    if request.param == "redis":
        settings = settings.replace(redis_url=request.getfixturevalue("redis_url"))
    server, port, app = create_server(settings, clock=Clock(T0))
    server.start()
    endpoint = app.serve_metrics("127.0.0.1", 0)
    assert endpoint is not None
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stubs = Stubs(channel)
    publish(stubs)
    yield stubs, endpoint.url, app
    channel.close()
    server.stop(None).wait()
    app.close()


def test_calls_commits_money_points_and_limits_after_real_calls(served):
    stubs, url, _ = served
    stubs.members.AdjustPoints(
        members_pb2.AdjustPointsRequest(
            adjustment_id="a1", member_id="vip1", points=500, reason="goodwill"
        )
    )
    issue_rice_coupon(stubs)
    req = basket(lines=[("L1", "RICE", 1, 4500), ("L2", "TEA", 3, 500)], redeem=50)
    stubs.checkout.Evaluate(req)
    done = commit(stubs, "t1", req)
    again = commit(stubs, "t1", req)  # the same commit again: answered, not applied again
    with pytest.raises(grpc.RpcError) as exc:
        stubs.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="nope"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND

    m = scrape(url)

    assert value(m, "loyalty_rpc_requests_total", method=EVALUATE, code="OK") == 1
    assert value(m, "loyalty_rpc_requests_total", method=COMMIT, code="OK") == 2
    cancel = "loyalty.v1.CheckoutService/Cancel"
    assert value(m, "loyalty_rpc_requests_total", method=cancel, code="NOT_FOUND") == 1
    assert value(m, "loyalty_rpc_duration_seconds_count", method=COMMIT) == 2
    assert value(m, "loyalty_rpc_duration_seconds_bucket", method=COMMIT, le="+Inf") == 2
    # one Evaluate and one fresh Commit priced; the replay did not
    assert value(m, "loyalty_kernel_duration_seconds_count") == 2
    assert value(m, "loyalty_commits_total", result="committed") == 1
    assert value(m, "loyalty_commits_total", result="replayed") == 1
    assert value(m, "loyalty_commits_total", result="aborted") == 0
    assert value(m, "loyalty_commit_retries_total") == 0
    offers = {o.offer_id: o for o in done.result.offers}
    assert set(offers) == {"rice-coupon", "tea-budget"} and again.result == done.result
    # rice-coupon is wholly funded by cofco; tea-budget by the retailer
    assert value(m, "loyalty_discount_minor_total", funder="cofco") == 500
    assert value(m, "loyalty_vendor_funding_minor_total", funder="cofco") == 500
    retailer = done.result.discount_minor - 500
    assert retailer > 0
    assert value(m, "loyalty_discount_minor_total", funder="retailer") == retailer
    assert ("loyalty_vendor_funding_minor_total", frozenset({("funder", "retailer")})) not in m
    assert value(m, "loyalty_points_issued_total") == done.result.points_earned > 0
    assert value(m, "loyalty_points_redeemed_total") == done.result.points_redeemed == 50
    assert value(m, "loyalty_ruleset_version") == 1
    tea = offers["tea-budget"].discount_minor
    assert value(m, "loyalty_offer_budget_limit_minor", offer="tea-budget") == 1000
    assert value(m, "loyalty_offer_budget_remaining_minor", offer="tea-budget") == 1000 - tea
    # the standard process series are served in one-process mode only (serve), not here
    assert not any(name.startswith("process_") for name, _ in m)


def test_retries_and_aborts_are_counted_from_what_the_store_did(served, monkeypatch):
    """The store refused a commit's apply once (it lost one race), then three times out of
    three attempts (the commit gave up)."""
    stubs, url, app = served
    store = app.store
    real = store.apply_commit
    refusals = [1]

    def lose_one_race(snapshot, plan):
        if refusals[0]:
            refusals[0] -= 1
            return False
        return real(snapshot, plan)

    def lose_every_race(snapshot, plan):
        return False

    monkeypatch.setattr(store, "apply_commit", lose_one_race)
    commit(stubs, "t1")
    monkeypatch.setattr(store, "apply_commit", lose_every_race)
    monkeypatch.setattr(store, "max_attempts", 3)
    with pytest.raises(grpc.RpcError) as exc:
        commit(stubs, "t2")
    assert exc.value.code() == grpc.StatusCode.ABORTED

    m = scrape(url)

    assert value(m, "loyalty_commits_total", result="committed") == 1
    assert value(m, "loyalty_commits_total", result="aborted") == 1
    assert value(m, "loyalty_commit_retries_total") == 1 + 2
    assert value(m, "loyalty_rpc_requests_total", method=COMMIT, code="ABORTED") == 1


def test_metrics_port_zero_records_nothing(tmp_path):
    server, _, app = create_server(Settings(port=0, data_dir=tmp_path, metrics_port=0))
    try:
        assert app.metrics is None and app.serve_metrics() is None
    finally:
        server.stop(None).wait()
        app.close()


def test_workers_share_one_endpoint_that_sums_them(tmp_path):
    port, metrics_port = free_port(), free_port()
    shared = tmp_path / "prom"
    shared.mkdir()
    (shared / "counter_1.db").write_bytes(b"left by an earlier run")  # must be cleaned away
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    env.pop("OTEL_TRACES_EXPORTER", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli.main",
            "serve",
            "--workers",
            "2",
            "--port",
            str(port),
            "--metrics-port",
            str(metrics_port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    channels: list[grpc.Channel] = []
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert f"metrics: http://127.0.0.1:{metrics_port}/metrics" in line, line
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        deadline = time.monotonic() + 120
        seen: dict[str, Stubs] = {}  # worker pid -> stubs on a connection it serves
        while len(seen) < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            channel = grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            channels.append(channel)
            stubs = Stubs(channel)
            try:
                _, call = stubs.members.UpsertMember.with_call(
                    members_pb2.UpsertMemberRequest(member_id="vip1", tier="vip"), timeout=5
                )
            except grpc.RpcError:  # a worker still warming up
                time.sleep(0.2)
                continue
            seen.setdefault(dict(call.trailing_metadata())["loyalty-worker"], stubs)
        first = next(iter(seen.values()))
        publish(first)
        for stubs in seen.values():
            while True:  # each worker follows the publish (it polls the version store)
                try:
                    stubs.checkout.Evaluate(basket(at=None), timeout=5)
                    break
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
        for i, stubs in enumerate(seen.values()):
            commit(stubs, f"t{i}", basket(at=None))

        m = scrape(url)

        assert value(m, "loyalty_commits_total", result="committed") == 2
        assert value(m, "loyalty_rpc_requests_total", method=COMMIT, code="OK") == 2
        assert value(m, "loyalty_rpc_duration_seconds_count", method=COMMIT) == 2
        versions = {
            dict(labels)["pid"]: v
            for (name, labels), v in m.items()
            if name == "loyalty_ruleset_version"
        }
        assert versions == {pid: 1 for pid in seen}  # each live worker, by pid
        assert value(m, "loyalty_offer_budget_limit_minor", offer="tea-budget") == 1000
    finally:
        for channel in channels:
            channel.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    assert proc.returncode == 0
    assert not list(shared.glob("gauge_liveall_*.db"))  # the workers were marked gone


def test_the_sample_dashboard_uses_only_metrics_the_server_has():
    from prometheus_client import generate_latest

    from server.api.metrics import _limit_families

    dashboard = (
        Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"
    ).read_text()
    used = set(re.findall(r"\b(loyalty_[a-z_]+)", dashboard))
    exposed = set(re.findall(r"^# TYPE (\S+)", generate_latest(Metrics().registry).decode(), re.M))
    exposed |= {f.name for f in _limit_families(None)}
    series = {
        name + suffix for name in exposed for suffix in ("", "_total", "_bucket", "_count", "_sum")
    }
    assert used and used <= series, sorted(used - series)
    assert len(json.loads(dashboard)["panels"]) > 10


def test_a_metrics_port_in_use_is_logged_and_checkout_still_serves(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        with serve_process(tmp_path, "--metrics-port", str(metrics_port)) as server:
            assert server.port and "metrics:" not in server.line, server.line
            with grpc.insecure_channel(server.target) as channel:
                health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
    err = server.stderr
    assert f"metrics: cannot listen on 127.0.0.1:{metrics_port}" in err.read_text()
