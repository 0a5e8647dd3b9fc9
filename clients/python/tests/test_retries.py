"""Retries under the same id, through a real proxy that fails on cue and a real server that
stops and starts again."""

from __future__ import annotations

import random
import threading
import time

import grpc
import pytest
from harness import (
    ABORTED,
    FAST,
    LOSE_ANSWER,
    UNAVAILABLE,
    FlakyProxy,
    LoyaltyServer,
    for_member,
    member_points,
    tx,
)

from loyalty.v1 import checkout_pb2
from loyalty_client import NO_RETRY, CheckoutClient, RetriesExhausted, RetryEvent, RetryPolicy


def test_a_retryable_failure_is_retried_with_the_same_request(proxy: FlakyProxy, basket):
    proxy.cue("Commit", UNAVAILABLE, ABORTED)
    events: list[RetryEvent] = []
    t = tx()
    with CheckoutClient.connect(proxy.target, retry=FAST, on_retry=events.append) as client:
        done = client.commit(t, basket)
        assert client.commit(t, basket) == done  # the stored result
    sent = proxy.requests("Commit")
    assert len(sent) == 4  # failed, failed, applied; then the repeat
    assert len(set(sent)) == 1  # byte for byte the same request every time
    assert checkout_pb2.CommitRequest.FromString(sent[0]).transaction_id == t
    assert [(e.attempt, e.code) for e in events] == [
        (1, grpc.StatusCode.UNAVAILABLE),
        (2, grpc.StatusCode.ABORTED),
    ]
    assert all(e.key == t and e.method == "Commit" for e in events)


def test_a_lost_answer_is_retried_and_the_commit_applied_once(proxy: FlakyProxy, basket):
    basket = for_member(basket, "M10021")
    with CheckoutClient.connect(proxy.target, retry=FAST) as client:
        before = member_points(client.channel, "M10021")
        proxy.cue("Commit", LOSE_ANSWER)  # the server commits, the lane never hears of it
        t = tx()
        done = client.commit(t, basket)
        after = member_points(client.channel, "M10021")
    assert [c.action for c in proxy.calls if c.method == "Commit"] == [LOSE_ANSWER, "forward"]
    assert after - before == done.result.points_earned - done.result.points_redeemed


def test_the_attempts_are_bounded(proxy: FlakyProxy, basket):
    proxy.always("Commit", ABORTED)
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    t = tx()
    with CheckoutClient.connect(proxy.target, retry=policy) as client:
        with pytest.raises(RetriesExhausted) as caught:
            client.commit(t, basket)
    assert proxy.count("Commit") == 3
    err = caught.value
    assert (err.attempts, err.key, err.method) == (3, t, "Commit")
    assert err.code() == grpc.StatusCode.ABORTED  # it still reads as the server's error
    assert isinstance(err, grpc.RpcError)
    assert "outcome unknown" in str(err)


def test_the_overall_deadline_is_respected(proxy: FlakyProxy, basket):
    proxy.always("Evaluate", UNAVAILABLE)
    policy = RetryPolicy(max_attempts=10_000, deadline_s=0.8, initial_backoff_s=0.01)
    with CheckoutClient.connect(proxy.target, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(RetriesExhausted) as caught:
            client.evaluate(basket)
        took = time.monotonic() - started
    assert took < 0.8 + 0.5
    assert 2 <= caught.value.attempts == proxy.count("Evaluate")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # a per-call deadline overrides the policy's
    with CheckoutClient.connect(proxy.target, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(RetriesExhausted):
            client.evaluate(basket, deadline=0.3)
        assert time.monotonic() - started < 0.3 + 0.5


def test_no_retry_policy_sends_once(proxy: FlakyProxy, basket):
    proxy.cue("Cancel", UNAVAILABLE)
    with CheckoutClient.connect(proxy.target, retry=NO_RETRY) as client:
        with pytest.raises(RetriesExhausted):
            client.cancel(tx())
    assert proxy.count("Cancel") == 1


def test_backoff_grows_exponentially_with_full_jitter():
    policy = RetryPolicy(initial_backoff_s=0.1, multiplier=2.0, max_backoff_s=1.0)
    rng = random.Random(7)
    for attempt, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        pauses = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0.0 <= p <= cap for p in pauses)
        assert max(pauses) > 0.8 * cap  # the whole range is used: full jitter
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_a_commit_rides_out_a_server_restart_under_the_same_id(restartable: LoyaltyServer, basket):
    restartable.start()
    policy = RetryPolicy(
        max_attempts=200, deadline_s=90.0, initial_backoff_s=0.05, max_backoff_s=0.5
    )
    with CheckoutClient.connect(restartable.target, retry=policy) as client:
        before = client.commit("R-before", basket)
        restartable.stop()
        outcome: dict[str, object] = {}

        def lane() -> None:
            try:
                outcome["done"] = client.commit("R-during", basket)
            except BaseException as exc:  # reported below
                outcome["error"] = exc

        retries: list[RetryEvent] = []
        client.on_retry = retries.append
        thread = threading.Thread(target=lane)
        thread.start()
        time.sleep(1.0)  # the lane keeps retrying against a stopped server
        assert thread.is_alive(), outcome
        restartable.start()
        thread.join(timeout=90)
        assert not thread.is_alive()
        assert "error" not in outcome, outcome.get("error")
        assert retries and {e.code for e in retries} <= {
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        }
        # the stored results outlive the restart: the same id answers the same
        assert client.commit("R-before", basket) == before
        assert client.commit("R-during", basket) == outcome["done"]
