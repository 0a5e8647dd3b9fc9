"""``loyalty tiers requalify``: a tier requalification run over gRPC
(``MemberService.RequalifyTiers``).

``--at YYYY-MM-DD`` (default: now) names the day the run is for: the server requalifies the
last period end (the rule set's TierPolicy) at or before the end of that day (23:59:59 UTC),
and refuses one that has not passed on its own clock. The run id defaults to
``requalify-<day>``, so the same command run again is the same run: idempotent, and resent
after UNAVAILABLE, ABORTED or DEADLINE_EXCEEDED (``--retries``); a run cut short is completed
by its retry.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time

import grpc

from loyalty.v1 import members_pb2, members_pb2_grpc
from server.cli.connect import add_connection_flags, emit, metadata, with_retries


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD (got {text!r})") from None


def _retries(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"must be 0..10 (got {text})")
    return value


def requalify(args: argparse.Namespace) -> int:
    day: date = args.at or datetime.now(UTC).date()
    req = members_pb2.RequalifyTiersRequest(run_id=args.run_id or f"requalify-{day}")
    if args.at is not None:
        end = datetime.combine(day, time(23, 59, 59), UTC)
        req.at.FromDatetime(end)

    def call(ch: grpc.Channel) -> members_pb2.RequalifyTiersResponse:
        stub = members_pb2_grpc.MemberServiceStub(ch)  # type: ignore[no-untyped-call]
        reply: members_pb2.RequalifyTiersResponse = stub.RequalifyTiers(
            req, metadata=metadata(args), timeout=args.timeout
        )
        return reply

    reply = with_retries(args, call, "tiers requalify")
    again = " (done before: nothing changed now)" if reply.repeated else ""
    emit(
        args,
        reply,
        [
            f"run {reply.run_id}: period ending {reply.period_end.ToDatetime():%Y-%m-%d %H:%M} "
            f"UTC: {reply.upgraded:,} upgraded, {reply.downgraded:,} downgraded, "
            f"{reply.kept:,} kept{again}"
        ],
    )
    return 0


def add_tiers_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``tiers requalify``."""
    tiers = sub.add_parser("tiers", help="membership tiers").add_subparsers(
        dest="action", required=True
    )
    p = add_connection_flags(
        tiers.add_parser("requalify", help="requalify every member's tier at the period end")
    )
    p.add_argument("--at", type=_day, default=None, help="YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--run-id", default="", help="idempotency key (default requalify-<day>)")
    p.add_argument("--retries", type=_retries, default=3, metavar="N", help="resend (default 3)")
    p.set_defaults(func=requalify, timeout=600.0)
