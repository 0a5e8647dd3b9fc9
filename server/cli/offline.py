"""The commands that need no server: ``loyalty rules validate`` and ``loyalty price`` (a
basket file priced with the compiled kernel, printed as a receipt or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import engine
from engine.errors import InvalidInput
from engine.pricing.catalogue import Catalogue, load_catalogue
from engine.pricing.rules import load_rules
from engine.pricing.types import Basket, Line, Member, PricingResult


def _catalogue(path: str | None) -> Catalogue:
    return load_catalogue(path) if path else Catalogue.empty()


def read_basket(path: str) -> tuple[Basket, Member | None, list[str], int]:
    """A basket file: the JSON form of an Evaluate request plus an optional ``member``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput.at(str(path), str(exc)) from None
    try:
        lines = tuple(
            Line(
                str(x["line_id"]),
                str(x["sku"]),
                int(x["quantity"]),
                int(x["unit_price_minor"]),
                x.get("category", ""),
                x.get("brand", ""),
                x.get("vendor", ""),
                bool(x.get("delivery", False)),
            )
            for x in data["lines"]
        )
        at = datetime.fromisoformat(data["occurred_at"])
    except KeyError as exc:
        raise InvalidInput.at(str(path), f"missing field {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput.at(str(path), str(exc)) from None
    basket = Basket(lines, at, data.get("store_id", ""), data.get("channel", ""))
    member = None
    if m := data.get("member"):
        member = Member(
            m["member_id"],
            m.get("tier", ""),
            frozenset(m.get("segments", ())),
            int(m.get("birthday_month", 0)),
            int(m.get("available_points", 0)),
            {k: int(v) for k, v in m.get("wallet", {}).items()},
        )
    return basket, member, list(data.get("coupons", ())), int(data.get("redeem_points", 0))


def _money(minor: int) -> str:
    return f"{minor / 100:,.2f}"


def receipt(result: PricingResult, names: dict[str, str]) -> str:
    """A receipt a cashier could read, with every discount, its funder and the points."""
    out = [f"{'line':<6}{'gross':>10}{'net':>10}{'points':>8}  discounts"]
    for line in result.lines:
        discounts = ", ".join(
            f"{d.offer_id} -{_money(d.amount_minor)}"
            + (f" ({d.funder_id} pays {_money(d.funded_minor)})" if d.funded_minor else "")
            for d in line.discounts
        )
        out.append(
            f"{line.line_id:<6}{_money(line.gross_minor):>10}"
            f"{_money(line.net_minor):>10}{line.points_earned:>8}  {discounts}"
        )
    out += [
        "",
        f"gross {_money(result.gross_minor)}  discount -{_money(result.discount_minor)}  "
        f"net {_money(result.net_minor)}",
        f"points tender {result.points_redeemed} pts = -{_money(result.points_tender_minor)} "
        f"({result.tender.name})  payable {_money(result.payable_minor)}",
        f"points earned {result.points_earned}",
        "",
        "applied offers:",
    ]
    for o in result.offers:
        what = f"-{_money(o.discount_minor)}" if o.discount_minor else f"+{o.points} pts"
        out.append(f"  {o.offer_id:<24} {what:>12}  x{o.applications}  {names.get(o.offer_id, '')}")
    if result.gifts:
        out.append("gifts (units in the basket / units given):")
        out += [
            f"  {g.offer_id:<24} {g.sku} {g.in_basket}/{g.quantity}"
            + (f" at {_money(g.price_minor)}" if g.price_minor else " free")
            for g in result.gifts
        ]
    if result.explanations:
        out.append("not applied:")
        out += [f"  {e.offer_id:<24} {e.reason.name}: {e.message}" for e in result.explanations]
    return "\n".join(out)


def _jsonable(result: PricingResult) -> dict[str, Any]:
    def convert(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: convert(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [convert(v) for v in x]
        return x.name if hasattr(x, "name") else x

    out: dict[str, Any] = convert(asdict(result))
    return out


def cmd_rules_validate(args: argparse.Namespace) -> int:
    rules = load_rules(args.file)
    violations = engine.validate(rules, _catalogue(args.catalogue))
    if violations:
        for v in violations:
            print(f"{v.field}: {v.description}")
        print(f"{len(violations)} problem(s) in {args.file}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid ({len(rules.offers)} offers, {len(rules.tiers)} tiers)")
    return 0


def cmd_price(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules)
    compiled = engine.compile_rules(rules, _catalogue(args.catalogue))
    basket, member, coupons, redeem = read_basket(args.basket)
    result = engine.price(
        compiled, basket, member, coupons=coupons, redeem_points=redeem, explain=args.explain
    )
    if args.json:
        print(json.dumps(_jsonable(result), indent=2))
    else:
        print(receipt(result, {o.id: o.name for o in rules.offers}))
    return 0


def add_offline_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """``rules validate`` and ``price``; returns the ``rules`` group (the client adds to it)."""
    rules = sub.add_parser("rules", help="rule files").add_subparsers(dest="action", required=True)
    v = rules.add_parser("validate", help="report every problem of a rule file")
    v.add_argument("file")
    v.add_argument("--catalogue", help="CSV or Parquet; also checks bundle overlaps against it")
    v.set_defaults(func=cmd_rules_validate)
    pr = sub.add_parser("price", help="price a basket file offline with the compiled kernel")
    pr.add_argument("basket")
    pr.add_argument("--rules", required=True)
    pr.add_argument("--catalogue")
    pr.add_argument("--explain", action="store_true", help="say why offers did not apply")
    pr.add_argument("--json", action="store_true", help="print the full result as JSON")
    pr.set_defaults(func=cmd_price)
    return rules
