"""``loyalty``: the command line.

Offline (no server needed):

    loyalty rules validate RULES.yaml [--catalogue CATALOGUE.csv]
    loyalty price --rules RULES.yaml [--catalogue CATALOGUE.csv] BASKET.json [--explain] [--json]
    loyalty warmup

Against a running server (``--target HOST:PORT``, ``--api-key KEY``):

    loyalty rules publish|list|activate ...   loyalty catalogue import FILE
    loyalty members upsert|show|offers ID     loyalty coupons issue OFFER --issue-id ID ...
    loyalty checkout evaluate|commit BASKET.json   loyalty checkout cancel|return TX ...
    (--tls-ca PEM or --tls, --json; $LOYALTY_TARGET, $LOYALTY_API_KEY, $LOYALTY_TLS_CA)

Service:

    loyalty serve [--demo] [--host H] [--port P] [--data-dir DIR] [--api-key KEY:ROLE ...]
    loyalty demo [--data-dir DIR] [--members N]

Personalisation and analytics (server/cli/analytics.py):

    loyalty demo history --out H.parquet     loyalty target --history H --playbook P
    loyalty ledger export --to H.parquet     loyalty reports settlement|extract|campaign ...
    loyalty simulate --rules DRAFT --history H [--chart PNG]

Benchmarks run from a checkout, not from the installed command: ``python -m benchmarks
kernel|grpc|redis-memory|all`` (README "Benchmarks").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

import engine
from engine.errors import InvalidInput
from engine.pricing.catalogue import Catalogue, load_catalogue
from engine.pricing.rules import load_rules
from engine.pricing.types import Basket, Line, Member, PricingResult
from server.cli.analytics import add_analytics_commands
from server.cli.client import add_client_commands
from server.cli.io import progress_bars

if TYPE_CHECKING:
    from server.settings import Settings


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
        out.append(f"  {o.offer_id:<24}{what:>12}  x{o.applications}  {names.get(o.offer_id, '')}")
    if result.explanations:
        out.append("not applied:")
        out += [f"  {e.offer_id:<24}{e.reason.name}: {e.message}" for e in result.explanations]
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


def _settings(args: argparse.Namespace) -> Settings:
    from server.settings import Settings, parse_api_keys

    keys = parse_api_keys(",".join(args.api_key)) if args.api_key else None
    return Settings.from_env(
        host=args.host,
        port=args.port,
        data_dir=_path(args.data_dir),
        store=args.store,
        redis_url=args.redis_url,
        threads=args.threads,
        workers=getattr(args, "workers", None),
        cpu_pin=getattr(args, "cpu_pin", None),
        api_keys=keys,
        tls_cert=_path(args.tls_cert),
        tls_key=_path(args.tls_key),
        insecure_plaintext_keys=getattr(args, "insecure_plaintext_keys", None),
        metrics_port=getattr(args, "metrics_port", None),
        metrics_host=getattr(args, "metrics_host", None),
        http_port=getattr(args, "http_port", None),
        http_host=getattr(args, "http_host", None),
        tracing=getattr(args, "tracing", None),
        log_format=getattr(args, "log_format", None),
        log_member_ids=getattr(args, "log_member_ids", None),
        max_skew_s=getattr(args, "max_skew", None),
        offline_max_age_s=getattr(args, "offline_max_age", None),
    )


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _load_demo(settings: Settings, members: int, force: bool) -> None:
    from server.api.app import open_state
    from server.cli.demo import load_demo

    registry, store = open_state(settings, watch=False)
    where = settings.redis.url if settings.store == "redis" else settings.data_dir
    try:
        if registry.ready and not force:
            print(f"{where}: demo data already loaded (version {registry.current().version})")
            return
        progress, close = progress_bars()
        summary = load_demo(registry, store, members=members, progress=progress)
        close()
        print(
            f"demo loaded into {where}: rule set version {summary['version']}, "
            f"{summary['skus']} skus, {summary['members']} members, "
            f"{summary['coupons']} wallet coupons, {summary['codes']} coupon codes"
            " (batch demo-colgate-print)"
        )
    finally:
        registry.close()
        store.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from server.settings import Settings

    settings = Settings.from_env(
        data_dir=_path(args.data_dir),
        store=args.store,
        redis_url=args.redis_url,
    )
    _load_demo(settings, args.members, args.force)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from server.api.app import serve

    settings = _settings(args)
    if args.demo:
        _load_demo(settings, args.members, False)
    serve(settings)
    return 0


def cmd_warmup(args: argparse.Namespace) -> int:
    print(f"kernels ready in {engine.warm_up():.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="loyalty", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
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
    w = sub.add_parser("warmup", help="compile the kernels now (cached on disk afterwards)")
    w.set_defaults(func=cmd_warmup)
    add_client_commands(sub, rules)

    sv = sub.add_parser(
        "serve", help="run the gRPC service, and the console and JSON API over HTTP"
    )
    sv.add_argument("--host", default=None, help="default 127.0.0.1 ($LOYALTY_HOST)")
    sv.add_argument("--port", type=int, default=None, help="default 50051 ($LOYALTY_PORT)")
    sv.add_argument("--data-dir", default=None, help="default ./.loyalty ($LOYALTY_DATA_DIR)")
    sv.add_argument(
        "--store",
        choices=["embedded", "redis"],
        default=None,
        help="default embedded ($LOYALTY_STORE)",
    )
    sv.add_argument(
        "--redis-url",
        default=None,
        help="redis://HOST:PORT/DB or unix:///PATH ($LOYALTY_REDIS_URL)",
    )
    sv.add_argument(
        "--threads", type=int, default=None, help="per worker, default 4 ($LOYALTY_THREADS)"
    )
    sv.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes sharing the port (SO_REUSEPORT); default 0 = one per core "
        "(one on --port 0) ($LOYALTY_WORKERS)",
    )
    sv.add_argument(
        "--cpu-pin",
        action="store_true",
        default=None,
        help="run worker i on core i only ($LOYALTY_CPU_PIN)",
    )
    sv.add_argument(
        "--api-key",
        action="append",
        metavar="KEY:ROLE",
        help="roles: checkout, offline-sync, marketing, admin (required off loopback)",
    )
    sv.add_argument(
        "--max-skew",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how far a lane's occurred_at may be from the server's clock, default 300 "
        "($LOYALTY_MAX_SKEW_S)",
    )
    sv.add_argument(
        "--offline-max-age",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how old a basket SyncOffline still takes, default 259200 = 72 h "
        "($LOYALTY_OFFLINE_MAX_AGE_S)",
    )
    sv.add_argument("--tls-cert", type=Path, default=None, help="PEM ($LOYALTY_TLS_CERT)")
    sv.add_argument("--tls-key", type=Path, default=None, help="PEM ($LOYALTY_TLS_KEY)")
    sv.add_argument(
        "--insecure-plaintext-keys",
        action="store_true",
        default=None,
        help="accept API keys off loopback without TLS, e.g. behind a proxy that terminates "
        "it (warned at every start; $LOYALTY_INSECURE_PLAINTEXT_KEYS)",
    )
    sv.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus /metrics over HTTP, default 9464, 0 = off ($LOYALTY_METRICS_PORT)",
    )
    sv.add_argument(
        "--metrics-host",
        default=None,
        help="address of /metrics, default the --host ($LOYALTY_METRICS_HOST)",
    )
    sv.add_argument(
        "--http-port",
        type=int,
        default=None,
        help="the console and the JSON API (Connect) over HTTP, default 8080, 0 = off; HTTPS "
        "with --tls-cert ($LOYALTY_HTTP_PORT)",
    )
    sv.add_argument(
        "--http-host",
        default=None,
        help="address of the HTTP side, default the --host ($LOYALTY_HTTP_HOST)",
    )
    sv.add_argument(
        "--tracing",
        choices=["auto", "on", "off"],
        default=None,
        help="OpenTelemetry traces; auto (default): on when OTEL_TRACES_EXPORTER or "
        "OTEL_EXPORTER_OTLP_ENDPOINT is set ($LOYALTY_TRACING)",
    )
    sv.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=None,
        help="stderr log lines, default text ($LOYALTY_LOG_FORMAT)",
    )
    sv.add_argument(
        "--log-member-ids",
        action="store_true",
        default=None,
        help="log member ids as they are, not hashed ($LOYALTY_LOG_MEMBER_IDS)",
    )
    sv.add_argument("--demo", action="store_true", help="load the demo data first if empty")
    sv.add_argument("--members", type=int, default=3000, help="demo members")
    sv.set_defaults(func=cmd_serve)
    d = sub.add_parser("demo", help="load the demo programme, catalogue and members")
    d.add_argument("--data-dir", default=None, help="default ./.loyalty")
    d.add_argument("--store", choices=["embedded", "redis"], default=None)
    d.add_argument("--redis-url", default=None)
    d.add_argument("--members", type=int, default=3000)
    d.add_argument("--force", action="store_true", help="load again into a non-empty store")
    d.set_defaults(func=cmd_demo)
    add_analytics_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
