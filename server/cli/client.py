"""``loyalty`` commands that call a running server over gRPC.

Connection flags (``--target``, ``--api-key``, ``--tls-ca``, ``--tls``, their ``LOYALTY_*``
defaults) and ``--json`` are in ``server.cli.connect``; ``checkout commit|cancel|return`` in
``server.cli.checkout_commands``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf.message import Message

from engine.pricing.rules import load_rules
from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
)
from server.cli.checkout_commands import add_checkout_commands, read_basket_request
from server.cli.codes import add_codes_commands
from server.cli.connect import add_connection_flags, channel, emit, metadata, to_json
from server.cli.tiers import add_tiers_commands


def _print(args: argparse.Namespace, message: Message) -> None:
    """Commands whose only output is the message: JSON either way; ``--json`` adds the fields
    left at their defaults."""
    print(to_json(message, every_field=args.json))


def rules_publish(args: argparse.Namespace) -> int:
    rules = load_rules(args.file)
    with channel(args) as ch:
        reply = campaigns_pb2_grpc.CampaignServiceStub(ch).PublishRuleSet(  # type: ignore[no-untyped-call]
            campaigns_pb2.PublishRuleSetRequest(rules=rules, note=args.note),
            metadata=metadata(args),
            timeout=args.timeout,
        )
    emit(args, reply, [f"published version {reply.version} (compiled in {reply.compile_ms} ms)"])
    return 0


def rules_list(args: argparse.Namespace) -> int:
    with channel(args) as ch:
        reply = campaigns_pb2_grpc.CampaignServiceStub(ch).ListRuleSets(  # type: ignore[no-untyped-call]
            campaigns_pb2.ListRuleSetsRequest(), metadata=metadata(args), timeout=args.timeout
        )
    emit(
        args,
        reply,
        (
            f"{'*' if v.current else ' '} {v.version:>4}  "
            f"{v.published_at.ToDatetime():%Y-%m-%d %H:%M}  {v.offers:>6} offers  {v.note}"
            for v in reply.versions
        ),
    )
    return 0


def rules_activate(args: argparse.Namespace) -> int:
    with channel(args) as ch:
        reply = campaigns_pb2_grpc.CampaignServiceStub(ch).ActivateRuleSet(  # type: ignore[no-untyped-call]
            campaigns_pb2.ActivateRuleSetRequest(version=args.version),
            metadata=metadata(args),
            timeout=args.timeout,
        )
    emit(args, reply, [f"version {reply.version} is current"])
    return 0


def catalogue_import(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    req = (
        campaigns_pb2.ImportCatalogueRequest(parquet=data)
        if args.file.endswith((".parquet", ".pq"))
        else campaigns_pb2.ImportCatalogueRequest(csv=data)
    )
    with channel(args) as ch:
        reply = campaigns_pb2_grpc.CampaignServiceStub(ch).ImportCatalogue(  # type: ignore[no-untyped-call]
            req,
            metadata=metadata(args),
            timeout=args.timeout,
        )
    emit(
        args,
        reply,
        [f"imported {reply.skus} skus; rule set version {reply.ruleset_version} recompiled"],
    )
    return 0


def members_upsert(args: argparse.Namespace) -> int:
    req = members_pb2.UpsertMemberRequest(
        member_id=args.member_id,
        tier=args.tier,
        segments=args.segment or [],
        birthday_month=args.birthday_month,
        consent=members_pb2.Consent(
            marketing=args.marketing,
            automated_decisions=args.automated_decisions,
            third_party=args.third_party,
        ),
    )
    with channel(args) as ch:
        reply = members_pb2_grpc.MemberServiceStub(ch).UpsertMember(  # type: ignore[no-untyped-call]
            req, metadata=metadata(args), timeout=args.timeout
        )
    _print(args, reply)
    return 0


def members_show(args: argparse.Namespace) -> int:
    with channel(args) as ch:
        reply = members_pb2_grpc.MemberServiceStub(ch).GetMember(  # type: ignore[no-untyped-call]
            members_pb2.GetMemberRequest(member_id=args.member_id),
            metadata=metadata(args),
            timeout=args.timeout,
        )
    _print(args, reply)
    return 0


def members_offers(args: argparse.Namespace) -> int:
    qr = Path(args.qr) if args.qr else None
    kinds = members_pb2.ListOffersRequest
    barcode = kinds.BARCODE_UNSPECIFIED
    if qr is not None:
        barcode = kinds.BARCODE_QR_PNG if qr.suffix.lower() == ".png" else kinds.BARCODE_QR_SVG
    with channel(args) as ch:
        reply = members_pb2_grpc.MemberServiceStub(ch).ListOffers(  # type: ignore[no-untyped-call]
            members_pb2.ListOffersRequest(member_id=args.member_id, barcode=barcode),
            metadata=metadata(args),
            timeout=args.timeout,
        )
    if qr is not None:
        qr.write_bytes(reply.barcode)
    lines = [f"Shopping list for {args.member_id}  (list id {reply.list_id})"]
    for o in reply.offers:
        saving = f"save {o.expected_saving_minor / 100:.2f}" if o.expected_saving_minor else ""
        until = f"until {o.valid_until.ToDatetime():%Y-%m-%d}" if o.HasField("valid_until") else ""
        if o.HasField("valid_from"):
            until = f"from {o.valid_from.ToDatetime():%Y-%m-%d} {until}"
        lines.append(f"  [{o.source:<6}] {o.name or o.offer_id:<40} {saving:>12} {until}")
    emit(args, reply, lines)
    return 0


def coupons_issue(args: argparse.Namespace) -> int:
    members = args.member or [
        m.strip() for m in Path(args.members_file).read_text().split() if m.strip()
    ]
    start = datetime.now(UTC)
    req = members_pb2.IssueCouponsRequest(
        issue_id=args.issue_id,
        offer_id=args.offer_id,
        member_ids=members,
        uses=args.uses,
        personalised=args.personalised,
    )
    req.valid_from.FromDatetime(start)
    req.valid_until.FromDatetime(start + timedelta(days=args.days))
    with channel(args) as ch:
        reply = members_pb2_grpc.MemberServiceStub(ch).IssueCoupons(  # type: ignore[no-untyped-call]
            req, metadata=metadata(args), timeout=args.timeout
        )
    emit(
        args,
        reply,
        [f"{reply.issued} coupons of {args.offer_id} in wallets (issue {args.issue_id})"]
        + (
            [f"skipped (no consent): {', '.join(reply.skipped_member_ids)}"]
            if reply.skipped_member_ids
            else []
        ),
    )
    return 0


def checkout_evaluate(args: argparse.Namespace) -> int:
    req = read_basket_request(args.basket)
    req.explain = req.explain or args.explain
    with channel(args) as ch:
        reply = checkout_pb2_grpc.CheckoutServiceStub(ch).Evaluate(  # type: ignore[no-untyped-call]
            req, metadata=metadata(args), timeout=args.timeout
        )
    _print(args, reply)
    return 0


def add_client_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    rules: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register every client command on the parser's sub-commands."""
    client = add_connection_flags

    p = client(rules.add_parser("publish", help="publish a rule file as a new version"))
    p.add_argument("file")
    p.add_argument("--note", default="")
    p.set_defaults(func=rules_publish)
    client(rules.add_parser("list", help="published versions")).set_defaults(func=rules_list)
    p = client(rules.add_parser("activate", help="make an earlier version current"))
    p.add_argument("version", type=int)
    p.set_defaults(func=rules_activate)

    cat = sub.add_parser("catalogue", help="product catalogue").add_subparsers(
        dest="action", required=True
    )
    p = client(cat.add_parser("import", help="replace the catalogue from CSV or Parquet"))
    p.add_argument("file")
    p.set_defaults(func=catalogue_import)

    mem = sub.add_parser("members", help="member records").add_subparsers(
        dest="action", required=True
    )
    p = client(mem.add_parser("upsert", help="create or update a member"))
    p.add_argument("member_id")
    p.add_argument("--tier", default="")
    p.add_argument("--segment", action="append")
    p.add_argument("--birthday-month", type=int, default=0)
    for flag in ("marketing", "automated-decisions", "third-party"):
        p.add_argument(f"--{flag}", action="store_true", help=f"consent: {flag}")
    p.set_defaults(func=members_upsert)
    p = client(mem.add_parser("show", help="balances, lots, wallet"))
    p.add_argument("member_id")
    p.set_defaults(func=members_show)
    p = client(mem.add_parser("offers", help="the member's shopping list"))
    p.add_argument("member_id")
    p.add_argument(
        "--qr",
        metavar="FILE",
        help="save the list id's QR code to FILE (.png: PNG, anything else: SVG)",
    )
    p.set_defaults(func=members_offers)

    cp = sub.add_parser("coupons", help="coupons").add_subparsers(dest="action", required=True)
    p = client(cp.add_parser("issue", help="put coupons of an offer into wallets"))
    p.add_argument("offer_id")
    p.add_argument("--issue-id", required=True, help="idempotency key of this issue")
    p.add_argument("--member", action="append", help="member id (repeatable)")
    p.add_argument("--members-file", help="file of member ids, one per line")
    p.add_argument("--uses", type=int, default=1)
    p.add_argument("--days", type=int, default=30, help="validity from now")
    p.add_argument(
        "--personalised",
        action="store_true",
        help="chosen from the members' data: skips members without marketing and"
        " automated-decisions consent; withdrawing either revokes the coupon",
    )
    p.set_defaults(func=coupons_issue)

    co = sub.add_parser("checkout", help="checkout calls").add_subparsers(
        dest="action", required=True
    )
    p = client(co.add_parser("evaluate", help="quote a basket file (EvaluateRequest JSON)"))
    p.add_argument("basket")
    p.add_argument("--explain", action="store_true")
    p.set_defaults(func=checkout_evaluate)
    add_checkout_commands(co)
    add_codes_commands(sub)
    add_tiers_commands(sub)
