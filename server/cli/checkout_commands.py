"""``loyalty checkout commit|cancel|return``: the calls that change state.

All three are idempotent on the server (Commit per transaction id, Cancel per transaction,
Return per return id), so each is retried under the same id after ``UNAVAILABLE``,
``ABORTED`` or ``DEADLINE_EXCEEDED``, at most ``--retries`` times: a retry whose first try
did reach the server gets the stored result, and nothing is applied twice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from google.protobuf import json_format

from engine.errors import InvalidInput
from loyalty.v1 import checkout_pb2, checkout_pb2_grpc, members_pb2
from server.cli.connect import add_connection_flags, emit, metadata, money, with_retries


def read_basket_request(path: str) -> checkout_pb2.EvaluateRequest:
    """A basket file: an EvaluateRequest in JSON; the offline ``member`` and ``coupons`` keys
    of ``loyalty price`` files are ignored (the server has the member and the wallet)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput.at(path, str(exc.strerror)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput.at(path, str(exc)) from None
    if not isinstance(data, dict):
        raise InvalidInput.at(path, "must be a JSON object (an EvaluateRequest)")
    data.pop("member", None)
    data.pop("coupons", None)
    try:
        return json_format.ParseDict(data, checkout_pb2.EvaluateRequest())
    except json_format.ParseError as exc:
        raise InvalidInput.at(path, str(exc)) from None


def _member(m: members_pb2.MemberSummary) -> str:
    tier = f" ({m.tier})" if m.tier else ""
    return (
        f"member {m.member_id}{tier}: {m.available_points} points available, "
        f"{m.pending_points} pending"
    )


def checkout_commit(args: argparse.Namespace) -> int:
    if args.fail_if_changed and not args.expected_payable:
        raise InvalidInput.at("--fail-if-changed", "needs --expected-payable")
    req = checkout_pb2.CommitRequest(
        transaction_id=args.transaction_id,
        basket=read_basket_request(args.basket),
        expected_payable_minor=args.expected_payable,
        fail_if_changed=args.fail_if_changed,
        allow_restricted_items=args.allow_restricted,
    )
    if args.offline:  # priced at the basket's occurred_at (the offline-sync role)
        if not req.basket.HasField("occurred_at"):
            raise InvalidInput.at("basket", "--offline needs occurred_at: when the lane sold it")
        synced = with_retries(
            args,
            lambda ch: checkout_pb2_grpc.CheckoutServiceStub(ch).SyncOffline(  # type: ignore[no-untyped-call]
                checkout_pb2.SyncOfflineRequest(commit=req),
                metadata=metadata(args),
                timeout=args.timeout,
            ),
            f"sync {args.transaction_id}",
        )
        reply = synced.commit
    else:
        reply = with_retries(
            args,
            lambda ch: checkout_pb2_grpc.CheckoutServiceStub(ch).Commit(  # type: ignore[no-untyped-call]
                req, metadata=metadata(args), timeout=args.timeout
            ),
            f"commit {args.transaction_id}",
        )
    r = reply.result
    lines = [
        f"committed {args.transaction_id} (rule set version {r.ruleset_version}): "
        f"payable {money(r.payable_minor)}",
        f"  gross {money(r.gross_minor)}  discount -{money(r.discount_minor)}  "
        f"points tender {r.points_redeemed} pts = -{money(r.points_tender_minor)}",
        f"  points earned {r.points_earned}" + (" (pending)" if r.points_pending else ""),
    ]
    lines += [
        f"  {o.offer_id:<24} "
        + (f"-{money(o.discount_minor)}" if o.discount_minor else f"+{o.points} pts")
        for o in r.offers
    ]
    if reply.changed_from_quote:
        lines.append(f"changed from the quote: expected payable {money(args.expected_payable)}")
    if reply.HasField("member"):
        lines.append(_member(reply.member))
    emit(args, synced if args.offline else reply, lines)
    return 0


def checkout_cancel(args: argparse.Namespace) -> int:
    reply = with_retries(
        args,
        lambda ch: checkout_pb2_grpc.CheckoutServiceStub(ch).Cancel(  # type: ignore[no-untyped-call]
            checkout_pb2.CancelRequest(transaction_id=args.transaction_id),
            metadata=metadata(args),
            timeout=args.timeout,
        ),
        f"cancel {args.transaction_id}",
    )
    status = checkout_pb2.CancelResponse.Status.Name(reply.status)
    lines = _reversal(f"{reply.transaction_id or args.transaction_id}: {status}", reply)
    if reply.HasField("member"):
        lines.append(_member(reply.member))
    emit(args, reply, lines)
    return 0


def _reversal(
    head: str, reply: checkout_pb2.CancelResponse | checkout_pb2.ReturnResponse
) -> list[str]:
    """What a cancel or return gave back, in total and per line."""
    lines = [
        f"{head}: refund {money(reply.refund_minor)}, "
        f"{reply.points_clawed_back} points clawed back, "
        f"{reply.points_tender_returned} points of tender returned"
    ]
    lines += [
        f"  {ln.line_id:<8} x{ln.quantity:<4} refund {money(ln.refund_minor):>10}  "
        f"-{ln.points_clawed_back} pts  +{ln.points_tender_returned} pts tender"
        + (
            f"  funding reversed {money(ln.funding_reversed_minor)}"
            if ln.funding_reversed_minor
            else ""
        )
        for ln in reply.lines
    ]
    return lines


def checkout_return(args: argparse.Namespace) -> int:
    req = checkout_pb2.ReturnRequest(
        return_id=args.return_id, transaction_id=args.transaction_id, lines=args.line
    )
    reply = with_retries(
        args,
        lambda ch: checkout_pb2_grpc.CheckoutServiceStub(ch).Return(  # type: ignore[no-untyped-call]
            req, metadata=metadata(args), timeout=args.timeout
        ),
        f"return {args.return_id}",
    )
    lines = _reversal(f"return {args.return_id} of {args.transaction_id}", reply)
    if reply.HasField("member"):
        lines.append(_member(reply.member))
    emit(args, reply, lines)
    return 0


def _minor(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0 (got {text})")
    return value


def _retries(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"must be 0..10 (got {text})")
    return value


def _return_line(text: str) -> checkout_pb2.ReturnLine:
    line_id, sep, qty = text.rpartition(":")
    if not sep or not line_id or not qty.strip().isdigit() or int(qty) < 1:
        raise argparse.ArgumentTypeError(f"expected LINE_ID:QTY with QTY >= 1 (got {text!r})")
    return checkout_pb2.ReturnLine(line_id=line_id, quantity=int(qty))


def add_checkout_commands(co: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``checkout commit|cancel|return`` on the ``checkout`` sub-commands."""

    def retried(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        add_connection_flags(parser)
        parser.add_argument(
            "--retries",
            type=_retries,
            default=3,
            metavar="N",
            help="resend after UNAVAILABLE/ABORTED/DEADLINE_EXCEEDED, same id (default 3)",
        )
        return parser

    p = retried(co.add_parser("commit", help="apply a basket file once per transaction id"))
    p.add_argument("basket", help="EvaluateRequest JSON, as for evaluate")
    p.add_argument("--transaction-id", required=True, help="idempotency key of the sale")
    p.add_argument(
        "--expected-payable",
        type=_minor,
        default=0,
        metavar="MINOR",
        help="payable_minor of the quote the customer saw",
    )
    p.add_argument(
        "--fail-if-changed",
        action="store_true",
        help="fail (FAILED_PRECONDITION) instead of committing a changed payable",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="a sale the lane made offline: SyncOffline, priced at the basket's occurred_at "
        "(needs the offline-sync role)",
    )
    p.add_argument(
        "--allow-restricted",
        action="store_true",
        help="commit member-only items the member may not buy (a supervisor's override)",
    )
    p.set_defaults(func=checkout_commit)
    p = retried(co.add_parser("cancel", help="reverse a committed transaction"))
    p.add_argument("transaction_id")
    p.set_defaults(func=checkout_cancel)
    p = retried(co.add_parser("return", help="refund returned units of a transaction"))
    p.add_argument("transaction_id")
    p.add_argument("--return-id", required=True, help="idempotency key of this return")
    p.add_argument(
        "--line",
        type=_return_line,
        action="append",
        required=True,
        metavar="LINE_ID:QTY",
        help="units returned (repeatable)",
    )
    p.set_defaults(func=checkout_return)
