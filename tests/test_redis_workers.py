"""`loyalty serve --workers 2 --store redis`: two processes share the port, and a rule set
published while a load runs is served by both within a second, with no failed request."""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.pricing.rules import parse_rules
from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    rules_pb2,
)
from server.store.redis.process import free_port
from tests.test_server_checkout import CATALOGUE, RULES, basket

# each channel its own TCP connection, so the kernel can hand them to different workers
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def _worker_of(channel: grpc.Channel) -> str | None:
    try:
        _, call = health_pb2_grpc.HealthStub(channel).Check.with_call(
            health_pb2.HealthCheckRequest(), timeout=2
        )
    except grpc.RpcError:
        return None
    return dict(call.trailing_metadata()).get("loyalty-worker")


def _channels_on_both_workers(port: int, per_worker: int = 2) -> dict[str, list[grpc.Channel]]:
    by_worker: dict[str, list[grpc.Channel]] = {}
    for _ in range(64):
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=OWN_CONNECTION)
        pid = _worker_of(channel)
        if pid is None or len(by_worker.get(pid, [])) >= per_worker:
            channel.close()
            continue
        by_worker.setdefault(pid, []).append(channel)
        if len(by_worker) == 2 and all(len(v) >= per_worker for v in by_worker.values()):
            break
    return by_worker


def _rules(vip_percent_bps: int) -> rules_pb2.RuleSet:
    rules = copy.deepcopy(RULES)
    rules["offers"][0]["percent_off"]["percent_bps"] = vip_percent_bps
    return parse_rules(rules)


def test_a_publish_under_load_reaches_both_workers_within_a_second(redis_url, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli.main",
            "serve",
            "--workers",
            "2",
            "--store",
            "redis",
            "--redis-url",
            redis_url,
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    admin = grpc.insecure_channel(f"127.0.0.1:{port}", options=OWN_CONNECTION)
    opened: list[grpc.Channel] = [admin]
    try:
        deadline = time.monotonic() + 120
        while _worker_of(admin) is None:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(admin)
        campaigns.ImportCatalogue(
            campaigns_pb2.ImportCatalogueRequest(
                rows=campaigns_pb2.CatalogueRows(
                    items=[rules_pb2.CatalogueItem(sku=s, category=c) for s, c in CATALOGUE]
                )
            )
        )
        v1 = campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=_rules(2000)))
        members_pb2_grpc.MemberServiceStub(admin).UpsertMember(
            members_pb2.UpsertMemberRequest(member_id="vip1", tier="vip")
        )
        by_worker: dict[str, list[grpc.Channel]] = {}
        while len(by_worker) < 2:  # both workers started, on separate connections
            assert proc.poll() is None and time.monotonic() < deadline
            by_worker = _channels_on_both_workers(port)
            opened += [c for cs in by_worker.values() for c in cs]
        calls: list[tuple[float, int, str]] = []  # (started, version, worker)
        errors: list[BaseException] = []
        stop = threading.Event()

        def load(channel: grpc.Channel) -> None:
            stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
            while not stop.is_set():
                started = time.monotonic()
                try:
                    resp, call = stub.Evaluate.with_call(basket(at=None), timeout=5)
                except grpc.RpcError as exc:
                    errors.append(exc)
                    continue
                calls.append(
                    (
                        started,
                        resp.ruleset_version,
                        dict(call.trailing_metadata())["loyalty-worker"],
                    )
                )

        threads = [
            threading.Thread(target=load, args=(c,)) for cs in by_worker.values() for c in cs
        ]
        for t in threads:
            t.start()
        time.sleep(1.0)
        v2 = campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=_rules(3000)))
        published = time.monotonic()
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(10)
        assert not errors
        before = {w for s, v, w in calls if s < published and v == v1.version}
        after = [(v, w) for s, v, w in calls if s >= published + 1.0]
        assert before == set(by_worker)  # both served v1 under load
        assert after and {v for v, _ in after} == {v2.version}
        assert {w for _, w in after} == set(by_worker)  # and both serve v2 a second later
    finally:
        for channel in opened:
            channel.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
