"""CheckoutService: Evaluate (a pure quote), Commit, Cancel, Return.

Each call takes the current rule-set version once and keeps it to the end. Translation only:
the store applies effects atomically, the engine prices, ``server.api.errors`` maps failures.

Observability, when on: the kernel time and what commits did go to
:class:`server.api.metrics.Metrics`; the store read, the kernel and the store write get spans
(:class:`server.api.tracing.Tracing`). With both off the request path is as it was.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar, cast

import grpc
import numpy as np

import engine
from engine.errors import Conflict, FailedPrecondition, InvalidInput
from engine.pricing import layout as L
from engine.pricing import wire
from engine.pricing.api import encode_coupons, encode_limits, encode_member
from engine.pricing.entry import run_kernel
from engine.pricing.restrictions import restricted_lines
from engine.pricing.types import Basket, PricingResult
from loyalty.v1 import checkout_pb2, checkout_pb2_grpc, members_pb2
from server.api.checkout_requests import commit_fingerprint, returned_lines
from server.api.clock import PricingClock
from server.api.convert import (
    basket_from_request,
    coupon_results,
    require_id,
    response_from_result,
    summary,
)
from server.api.edge import parser, raw
from server.api.metrics import Metrics
from server.api.replies import cancel_response, member_after, return_response
from server.api.restricted import mark_restricted_bytes
from server.api.shopping_list import checkout_member
from server.api.tracing import TX, CommitSpans, Tracing
from server.rules.registry import ActiveRules, RuleRegistry
from server.store.base import (
    CodeStatus,
    CommitOutcome,
    PricingState,
    Provenance,
    Store,
)
from server.store.checkout import Committed, commit
from server.store.policy import Policy
from server.store.units import at_store

Clock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


_parse_evaluate = parser(checkout_pb2.EvaluateRequest)


def parse_evaluate(data: bytes) -> checkout_pb2.EvaluateRequest:
    """The request of ``data``; InvalidInput on ``request`` when the bytes do not decode."""
    return cast(checkout_pb2.EvaluateRequest, _parse_evaluate(data))


class CommitWatch:
    """What one Commit reports: how often it priced (each attempt but the applied one lost a
    race), and its spans; counted in the pricing function the commit loop calls."""

    __slots__ = ("priced", "spans")

    def __init__(self, spans: CommitSpans | None):
        self.priced = 0
        self.spans = spans


class CheckoutServicer(checkout_pb2_grpc.CheckoutServiceServicer):
    def __init__(
        self,
        registry: RuleRegistry,
        store: Store,
        clock: Clock = utc_now,
        *,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        times: PricingClock | None = None,
    ):
        self.registry, self.store, self.clock = registry, store, clock
        self.metrics, self.tracing = metrics, tracing
        self.times = times or PricingClock()

    def _price(
        self,
        active: ActiveRules,
        basket: Basket,
        req: checkout_pb2.EvaluateRequest,
        state: PricingState,
        explain: bool,
        transaction_id: str = "",
    ) -> PricingResult:
        """The kernel's answer as a PricingResult (the checked path and Commit)."""

        def price() -> PricingResult:
            return engine.price(
                active.compiled,
                basket,
                state.member,
                coupons=state.coupons,
                redeem_points=req.redeem_points,
                limits=at_store(active.policy, state.limits, state.units, basket.store_id),
                explain=explain,
            )

        return self._timed(active, len(basket.lines), price, transaction_id)

    def _timed(
        self, active: ActiveRules, n_lines: int, price: Callable[[], T], transaction_id: str = ""
    ) -> T:
        """``price()``, timed when metrics are on and in a span when tracing is."""
        metrics = self.metrics

        def timed() -> T:
            if metrics is None:
                return price()
            start = time.perf_counter()
            result = price()
            metrics.kernel.observe(time.perf_counter() - start)
            return result

        if self.tracing is None:
            return timed()
        attributes: dict[str, str | int] = {
            "loyalty.ruleset_version": active.version,
            "loyalty.lines": n_lines,
        }
        if transaction_id:
            attributes[TX] = transaction_id
        return self.tracing.call("loyalty.kernel", timed, attributes)

    def _commit(self, watch: CommitWatch | None, run: Callable[[], Committed]) -> Committed:
        """``run()`` (the commit loop), counted and traced when those are on."""
        if watch is None:
            return run()
        metrics = self.metrics
        try:
            done = run() if watch.spans is None else watch.spans.run(run)
        except Conflict:
            if metrics is not None:
                metrics.aborted(watch.priced)
            raise
        if metrics is not None:
            metrics.committed(done.outcome, fresh=done.applied, priced=watch.priced)
        return done

    def _summary(self, member_id: str | None, now: datetime) -> members_pb2.MemberSummary | None:
        return summary(self.store.get_member(member_id, now)) if member_id else None

    def _respond(
        self,
        active: ActiveRules,
        req: checkout_pb2.EvaluateRequest,
        state: PricingState,
        result: PricingResult,
        version: int = 0,
    ) -> checkout_pb2.EvaluateResponse:
        """The response of ``result``, priced by rule-set ``version`` (0 = the active one)."""
        resp = response_from_result(
            result, version or active.version, active.names, active.points_pending
        )
        applied = {o.offer_id for o in result.offers}
        why = {e.offer_id: e.message for e in result.explanations}
        resp.coupons.extend(coupon_results(req.coupon_codes, state, applied, why))
        return resp

    @raw
    def Evaluate(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """Bytes to bytes (``engine.pricing.wire``): the request is read into the kernel's
        arrays in one pass and the response written from its outputs. A request the byte
        path does not take (explanations asked, anything unusual or invalid) goes the checked
        way, which parses with protobuf and names every bad field; both answer the same.
        The server's clock prices (:mod:`server.api.clock`)."""
        now = self.clock()
        active = self.registry.current_or_none()
        parsed = None if active is None else wire.parse(active.wire, active.compiled, request)
        if (
            active is None
            or parsed is None
            or parsed.explain
            or active.policy.store_capped  # per-store unit caps need the store id
            or (lane := parsed.lane_seconds) is not None
            and not self.times.in_skew_s(lane, now)
        ):
            return self._evaluate_checked(parse_evaluate(request), now).SerializeToString()
        codes = parsed.coupon_codes
        state = self._read(active, parsed.member_id or None, codes, now)
        compiled = active.compiled
        member = encode_member(compiled, state.member, parsed.redeem_points)

        def price() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return run_kernel(
                compiled,
                parsed.lines,
                member,
                parsed.context(compiled.timezone, now),
                encode_coupons(compiled, state.member, state.coupons),
                encode_limits(compiled, state.limits),
                False,
            )

        line_out, rows, counts = self._timed(active, len(parsed.lines), price)
        body = wire.respond(
            active.wire, parsed, line_out, rows, counts, active.version, active.points_pending
        )
        body = mark_restricted_bytes(body, restricted_lines(compiled, parsed.lines, member))
        if not codes:
            return body
        ids = compiled.offer_ids
        applied = {ids[o] for o in rows[rows[:, L.ROW_TYPE] == L.ROW_APPLIED, 1].tolist()}
        extra = checkout_pb2.EvaluateResponse(coupons=coupon_results(codes, state, applied, {}))
        return body + extra.SerializeToString()

    def _evaluate_checked(
        self, request: checkout_pb2.EvaluateRequest, now: datetime
    ) -> checkout_pb2.EvaluateResponse:
        basket = basket_from_request(request, now=now)
        lane_at = basket.occurred_at if request.HasField("occurred_at") else None
        self.times.online(lane_at, now, "occurred_at")
        basket = dataclasses.replace(basket, occurred_at=now)
        active = self.registry.current()
        member = checkout_member(self.store, request)
        state = self._read(active, member, list(request.coupon_codes), now)
        result = self._price(active, basket, request, state, request.explain)
        return self._respond(active, request, state, result)

    def _read(
        self, active: ActiveRules, member_id: str | None, codes: Sequence[str], now: datetime
    ) -> PricingState:
        """A quote's store read, in a span when tracing is on."""

        def read() -> PricingState:
            return self.store.pricing_state(active.policy, member_id, None, list(codes), now)

        return read() if self.tracing is None else self.tracing.call("loyalty.store.read", read)

    def Commit(self, request: checkout_pb2.CommitRequest, context: grpc.ServicerContext) -> bytes:
        """The ``CommitResponse`` bytes: the store keeps them with the outcome, and a retry
        is answered with the same bytes."""
        return self._commit_request(request, "", context, offline=False)

    def SyncOffline(
        self, request: checkout_pb2.SyncOfflineRequest, context: grpc.ServicerContext
    ) -> checkout_pb2.SyncOfflineResponse:
        if not request.HasField("commit"):
            raise InvalidInput.at("commit", "is required")
        done = self._commit_request(request.commit, "commit.", context, offline=True)
        return checkout_pb2.SyncOfflineResponse(commit=checkout_pb2.CommitResponse.FromString(done))

    def _commit_request(
        self,
        request: checkout_pb2.CommitRequest,
        prefix: str,
        context: grpc.ServicerContext,
        *,
        offline: bool,
    ) -> bytes:
        """Commit (``offline`` False: priced at the server's clock) or SyncOffline (priced at
        the lane's); ``prefix`` = where the CommitRequest sits in the request, for field names.
        Answers the CommitResponse's bytes."""
        now = self.clock()
        require_id(f"{prefix}transaction_id", request.transaction_id)
        if not request.HasField("basket"):
            raise InvalidInput([(f"{prefix}basket", "is required")])
        req = request.basket
        basket = basket_from_request(req, prefix=f"{prefix}basket.", now=now)
        member_id = checkout_member(self.store, req, f"{prefix}basket.")
        lane_at = basket.occurred_at if req.HasField("occurred_at") else None
        time_field = f"{prefix}basket.occurred_at"
        at = lane_at if offline and lane_at is not None else now
        basket = dataclasses.replace(basket, occurred_at=at)
        active = self.registry.current()
        tx = request.transaction_id
        watch = None
        if self.metrics is not None or self.tracing is not None:
            watch = CommitWatch(self.tracing.commit(tx) if self.tracing is not None else None)

        def price(state: PricingState) -> PricingResult:
            # the clock's bounds hold for a commit priced now, not for a retry of a stored one
            if offline:
                self.times.offline(lane_at, now, time_field)
            else:
                self.times.online(lane_at, now, time_field)
            if watch is not None:
                watch.priced += 1
                if watch.spans is not None:
                    watch.spans.pricing()
            bad = [
                (f"{prefix}basket.coupon_codes[{i}]", f"unknown coupon code {code!r}")
                for i, code in enumerate(req.coupon_codes)
                if state.code_status.get(code) == CodeStatus.INVALID
            ]
            if bad:
                raise InvalidInput(bad)
            result = self._price(active, basket, req, state, False, tx)
            if watch is not None and watch.spans is not None:
                watch.spans.priced()
            if (
                request.fail_if_changed
                and request.expected_payable_minor
                and result.payable_minor != request.expected_payable_minor
            ):
                raise FailedPrecondition(
                    f"payable changed from {request.expected_payable_minor} to "
                    f"{result.payable_minor}; quote again"
                )
            return result

        # a lane waiting for its member's turn (Redis, under contention) waits no longer than
        # its caller does
        remaining = context.time_remaining() if context is not None else None
        deadline = None if remaining is None else time.monotonic() + remaining

        def run() -> Committed:
            return commit(
                self.store,
                tx,
                commit_fingerprint(request),
                price,
                at,
                policy=active.policy,
                basket=basket,
                member_id=member_id,
                coupon_codes=list(req.coupon_codes),
                provenance=Provenance(now if at != now else None, lane_at, active.version),
                deadline=deadline,
                # member-only items: the lane's override; offline lanes have sold them already
                allow_restricted=offline or request.allow_restricted_items,
                basket_field=f"{prefix}basket",
                respond=lambda result, state, outcome: self._commit_response(
                    active, request, state, outcome, now, result
                ).SerializeToString(),
            )

        done = self._commit(watch, run)
        if done.outcome.response:
            return done.outcome.response
        # an outcome stored before answers were kept: answered from its priced result
        outcome = done.outcome
        state = self.store.pricing_state(active.policy, member_id, None, list(req.coupon_codes), at)
        return self._commit_response(active, request, state, outcome, now).SerializeToString()

    def _commit_response(
        self,
        active: ActiveRules,
        request: checkout_pb2.CommitRequest,
        state: PricingState,
        outcome: CommitOutcome,
        now: datetime,
        result: PricingResult | None = None,
    ) -> checkout_pb2.CommitResponse:
        """The answer to a commit of ``result`` (default: the outcome's stored result)."""
        result = result or outcome.pricing
        assert result is not None, "a commit outcome keeps its response or its result"
        req = request.basket
        resp = self._respond(active, req, state, result, outcome.ruleset_version)
        changed = bool(request.expected_payable_minor) and (
            result.payable_minor != request.expected_payable_minor
        )
        member = member_after(outcome, lambda m: self._summary(m, now))
        return checkout_pb2.CommitResponse(result=resp, changed_from_quote=changed, member=member)

    def Cancel(
        self, request: checkout_pb2.CancelRequest, context: grpc.ServicerContext
    ) -> checkout_pb2.CancelResponse:
        require_id("transaction_id", request.transaction_id)
        now, policy = self.clock(), self._policy()
        outcome = self._write(
            request.transaction_id,
            lambda: self.store.cancel(request.transaction_id, now, policy=policy),
        )
        return cancel_response(outcome, lambda m: self._summary(m, now))

    def Return(
        self, request: checkout_pb2.ReturnRequest, context: grpc.ServicerContext
    ) -> checkout_pb2.ReturnResponse:
        wanted = returned_lines(request)
        now, policy = self.clock(), self._policy()
        outcome = self._write(
            request.transaction_id,
            lambda: self.store.return_lines(
                request.return_id, request.transaction_id, wanted, now, policy=policy
            ),
        )
        return return_response(outcome, lambda m: self._summary(m, now))

    def _policy(self) -> Policy | None:
        """The current rules' store policy, for a reversal to re-evaluate the member's tier
        (None before any rule set is published: the tier is left as it is)."""
        active = self.registry.current_or_none()
        return None if active is None else active.policy

    def _write(self, transaction_id: str, write: Callable[[], T]) -> T:
        """A store write of a transaction, in a span when tracing is on."""
        if self.tracing is None:
            return write()
        return self.tracing.call("loyalty.store.write", write, {TX: transaction_id})
