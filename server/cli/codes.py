"""``loyalty codes generate|list|export|show``: coupon code batches over gRPC
(``CampaignService.CreateCouponCodes``, ``ListCouponCodes``, ``GetCouponCode``).

``generate`` is idempotent per ``--batch-id`` and resent after UNAVAILABLE, ABORTED or
DEADLINE_EXCEEDED (``--retries``); its window defaults to today 00:00 UTC plus ``--days``, so
running the same command again the same day asks the same batch. ``export`` pages through
``ListCouponCodes`` and writes CSV or Parquet (by the file's suffix, or ``--format``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import polars as pl

from loyalty.v1 import campaigns_pb2, campaigns_pb2_grpc
from server.cli.connect import add_connection_flags, emit, metadata, to_json, with_retries

STATUSES = {
    "unused": campaigns_pb2.COUPON_CODE_STATUS_UNUSED,
    "used": campaigns_pb2.COUPON_CODE_STATUS_USED,
    "used-up": campaigns_pb2.COUPON_CODE_STATUS_USED_UP,
    "expired": campaigns_pb2.COUPON_CODE_STATUS_EXPIRED,
}
NAMES = {v: k for k, v in STATUSES.items()}
PAGE = 10_000


def _stub(ch: grpc.Channel) -> campaigns_pb2_grpc.CampaignServiceStub:
    return campaigns_pb2_grpc.CampaignServiceStub(ch)  # type: ignore[no-untyped-call]


def _when(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def generate(args: argparse.Namespace) -> int:
    start = (
        _when(args.valid_from)
        if args.valid_from
        else datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    until = _when(args.valid_until) if args.valid_until else start + timedelta(days=args.days)
    members: list[str] = []
    if args.members:
        with open(args.members, encoding="utf-8") as f:
            members = [line.strip() for line in f if line.strip()]
    req = campaigns_pb2.CreateCouponCodesRequest(
        batch_id=args.batch_id,
        offer_id=args.offer_id,
        count=args.count,
        prefix=args.prefix,
        pattern=args.pattern,
        length=args.length,
        alphabet=args.alphabet,
        uses_per_code=args.uses,
        per_member=args.per_member,
        member_ids=members,
    )
    req.valid_from.FromDatetime(start)
    req.valid_until.FromDatetime(until)
    reply = with_retries(
        args,
        lambda ch: _stub(ch).CreateCouponCodes(req, metadata=metadata(args), timeout=args.timeout),
        "codes generate",
    )
    emit(
        args,
        reply,
        [
            f"batch {reply.batch_id}: {reply.count:,} codes of {reply.offer_id}, "
            f"{reply.length} random characters, {reply.uses_per_code} use(s) each, valid "
            f"{reply.valid_from.ToDatetime():%Y-%m-%d %H:%M} to "
            f"{reply.valid_until.ToDatetime():%Y-%m-%d %H:%M} UTC"
            + (f", each bound to one of {reply.bound_codes:,} members" if reply.bound_codes else "")
        ],
    )
    return 0


def pages(
    args: argparse.Namespace, batch_id: str, status: str, page_size: int
) -> Iterator[campaigns_pb2.ListCouponCodesResponse]:
    token = ""
    while True:
        req = campaigns_pb2.ListCouponCodesRequest(
            batch_id=batch_id, page_size=page_size, page_token=token
        )
        if status:
            req.status = STATUSES[status]

        def call(
            ch: grpc.Channel, req: campaigns_pb2.ListCouponCodesRequest = req
        ) -> campaigns_pb2.ListCouponCodesResponse:
            page: campaigns_pb2.ListCouponCodesResponse = _stub(ch).ListCouponCodes(
                req, metadata=metadata(args), timeout=args.timeout
            )
            return page

        page = with_retries(args, call, "codes list")
        yield page
        token = page.next_page_token
        if not token:
            return


def _line(c: campaigns_pb2.CouponCode) -> str:
    last = (
        f"  last {c.last_redeemed_at.ToDatetime():%Y-%m-%d %H:%M} {c.last_transaction_id}"
        if c.last_transaction_id
        else ""
    )
    bound = f"  for {c.member_id}" if c.member_id else ""
    return (
        f"{c.code}  {NAMES[c.status]:<8} {c.uses_left}/{c.uses_per_code}  {c.batch_id}{bound}{last}"
    )


def list_codes(args: argparse.Namespace) -> int:
    shown = 0
    for page in pages(args, args.batch, args.status, min(PAGE, args.limit)):
        for c in page.codes[: args.limit - shown]:
            print(to_json(c).replace("\n", "") if args.json else _line(c))
            shown += 1
        if shown >= args.limit:
            break
    return 0


def rows(codes: list[campaigns_pb2.CouponCode]) -> pl.DataFrame:
    def ts(c: campaigns_pb2.CouponCode, field: str) -> datetime | None:
        if not c.HasField(field):
            return None
        return getattr(c, field).ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]

    return pl.DataFrame(
        {
            "code": [c.code for c in codes],
            "batch_id": [c.batch_id for c in codes],
            "offer_id": [c.offer_id for c in codes],
            "status": [NAMES[c.status] for c in codes],
            "uses_per_code": [c.uses_per_code for c in codes],
            "uses_left": [c.uses_left for c in codes],
            "per_member": [c.per_member for c in codes],
            "member_id": [c.member_id for c in codes],
            "valid_from": [ts(c, "valid_from") for c in codes],
            "valid_until": [ts(c, "valid_until") for c in codes],
            "last_redeemed_at": [ts(c, "last_redeemed_at") for c in codes],
            "last_transaction_id": [c.last_transaction_id for c in codes],
        },
        schema={
            "code": pl.String,
            "batch_id": pl.String,
            "offer_id": pl.String,
            "status": pl.String,
            "uses_per_code": pl.Int32,
            "uses_left": pl.Int32,
            "per_member": pl.Boolean,
            "member_id": pl.String,
            "valid_from": pl.Datetime("us", "UTC"),
            "valid_until": pl.Datetime("us", "UTC"),
            "last_redeemed_at": pl.Datetime("us", "UTC"),
            "last_transaction_id": pl.String,
        },
    )


def export(args: argparse.Namespace) -> int:
    fmt = args.format or ("parquet" if args.out.endswith(".parquet") else "csv")
    frames = [rows(list(p.codes)) for p in pages(args, args.batch_id, args.status, PAGE)]
    frame = pl.concat(frames) if frames else rows([])
    if fmt == "parquet":
        frame.write_parquet(args.out)
    else:
        frame.write_csv(args.out)
    print(f"{frame.height:,} codes of batch {args.batch_id} written to {args.out} ({fmt})")
    return 0


def show(args: argparse.Namespace) -> int:
    req = campaigns_pb2.GetCouponCodeRequest(code=args.code)
    reply = with_retries(
        args,
        lambda ch: _stub(ch).GetCouponCode(req, metadata=metadata(args), timeout=args.timeout),
        "codes show",
    )
    emit(args, reply, [_line(reply)])
    return 0


def _retries(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"must be 0..10 (got {text})")
    return value


def add_codes_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``codes generate|list|export|show``."""
    codes = sub.add_parser("codes", help="coupon code batches").add_subparsers(
        dest="action", required=True
    )

    def client(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        add_connection_flags(parser)
        parser.add_argument(
            "--retries", type=_retries, default=3, metavar="N", help="resend (default 3)"
        )
        return parser

    p = client(codes.add_parser("generate", help="generate a batch of unique random codes"))
    p.add_argument("offer_id", help="a COUPON-activation offer of the current rule set")
    p.add_argument("--batch-id", required=True, help="idempotency key of the batch")
    p.add_argument("--count", type=int, default=0, help="1..1,000,000 (0 with --members)")
    p.add_argument(
        "--members", default="", help="file of member ids, one per line: one code bound to each"
    )
    p.add_argument("--prefix", default="", help="literal text before each code (A-Z, 0-9, -)")
    p.add_argument("--pattern", default="", help='"#" = a random character, e.g. ####-####')
    p.add_argument("--length", type=int, default=0, help="random characters (0 = enough)")
    p.add_argument("--alphabet", default="", help="default: no look-alikes (0 O 1 I L)")
    p.add_argument("--uses", type=int, default=1, help="uses per code")
    p.add_argument("--per-member", action="store_true", help="each member once per code")
    p.add_argument("--valid-from", default="", help="ISO time (default: today 00:00 UTC)")
    p.add_argument("--valid-until", default="", help="ISO time (default: from + --days)")
    p.add_argument("--days", type=int, default=30)
    p.set_defaults(func=generate, timeout=300.0)

    p = client(codes.add_parser("list", help="codes of a batch or of every batch"))
    p.add_argument("--batch", default="", help="only this batch")
    p.add_argument("--status", choices=sorted(STATUSES), default="")
    p.add_argument("--limit", type=int, default=100, help="codes shown at most (default 100)")
    p.set_defaults(func=list_codes)

    p = client(codes.add_parser("export", help="a batch's codes to CSV or Parquet"))
    p.add_argument("batch_id")
    p.add_argument("--out", required=True, help="file.csv or file.parquet")
    p.add_argument("--format", choices=("csv", "parquet"), default="")
    p.add_argument("--status", choices=sorted(STATUSES), default="")
    p.set_defaults(func=export)

    p = client(codes.add_parser("show", help="one code: uses left, last redemption"))
    p.add_argument("code")
    p.set_defaults(func=show)
