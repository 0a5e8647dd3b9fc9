"""``benchmarks.h2client``, the raw HTTP/2 gRPC client of the ceiling benchmark (driven by
``benchmarks.h2fleet.call_each``), against a real server on port 0: every distinct Commit it
sends is answered OK and committed exactly once, and a call that fails is reported with its
grpc-status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks import h2client, h2fleet, payload
from loyalty.v1 import checkout_pb2
from server.api.app import App, create_server
from server.cli.demo import load_demo
from server.settings import Settings

COMMIT = "/loyalty.v1.CheckoutService/Commit"
INVALID_ARGUMENT = 3


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[int, App]]:
    """A server on the embedded store with the demo programme published and 20 members."""
    grpc_server, port, app = create_server(Settings(port=0, data_dir=tmp_path / "data"))
    load_demo(app.registry, app.store, members=20)
    grpc_server.start()
    try:
        yield port, app
    finally:
        grpc_server.stop(None).wait()
        app.close()


def _basket(member: str = "M10004", quantity: int | None = None) -> bytes:
    req = payload.evaluate_request(member, 20)
    if quantity is not None:
        req.lines[3].quantity = quantity
    return payload.basket_field(req.SerializeToString())


def _commits(app: App) -> list[str]:
    return [e.entry_id for e in app.store.ledger() if e.kind == "commit"]


def test_two_hundred_distinct_commits_are_each_answered_ok_and_committed_once(server):
    port, app = server
    ids = [f"h2-{k:03d}" for k in range(200)]
    messages = [
        payload.commit_bytes(t, _basket(payload.member_id(k % 20))) for k, t in enumerate(ids)
    ]
    # more than the 65,535-byte windows each way on one connection: the calls only all get
    # through if the client honours the server's WINDOW_UPDATEs and sends its own
    assert sum(len(m) for m in messages) > h2client.DEFAULT_WINDOW

    out = h2fleet.call_each("127.0.0.1", port, COMMIT, messages, connections=1, streams=8)

    assert (out.ok, out.failed, out.unanswered, out.sent) == (200, {}, 0, 200)
    assert out.statuses == {0: 200}
    assert sorted(_commits(app)) == ids


def test_a_failed_call_is_reported_with_its_grpc_status_and_commits_nothing(server):
    port, app = server
    messages = [
        payload.commit_bytes("good-1", _basket()),
        payload.commit_bytes("bad-1", _basket(quantity=0)),  # quantity must be 1..10,000
        payload.commit_bytes("good-2", _basket("M10005")),
    ]

    out = h2fleet.call_each("127.0.0.1", port, COMMIT, messages, connections=2, streams=2)

    assert out.ok == 2 and out.failed == {1: INVALID_ARGUMENT}
    assert out.statuses == {0: 2, INVALID_ARGUMENT: 1}
    assert "quantity" in out.messages[INVALID_ARGUMENT]
    assert sorted(_commits(app)) == ["good-1", "good-2"]


def test_a_request_too_big_for_one_frame_is_refused_before_anything_is_sent():
    big = checkout_pb2.CommitRequest(transaction_id="x" * h2client.MAX_DATA)
    with pytest.raises(ValueError, match="does not fit"):
        h2client.grpc_frame(big.SerializeToString())
