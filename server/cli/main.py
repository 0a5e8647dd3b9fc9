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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

import engine
from engine.errors import InvalidInput
from server.cli.analytics import add_analytics_commands
from server.cli.client import add_client_commands
from server.cli.io import progress_bars
from server.cli.offline import add_offline_commands

if TYPE_CHECKING:
    from server.settings import Settings

CLUSTER_HELP = "--redis-url names any node of a Redis Cluster ($LOYALTY_REDIS_CLUSTER=1)"


def _settings(args: argparse.Namespace) -> Settings:
    from server.settings import Settings, parse_api_keys

    keys = parse_api_keys(",".join(args.api_key)) if args.api_key else None
    return Settings.from_env(
        host=args.host,
        port=args.port,
        data_dir=_path(args.data_dir),
        store=args.store,
        redis_url=args.redis_url,
        redis_cluster=args.redis_cluster or None,
        redis_wait_replicas=getattr(args, "redis_wait_replicas", None),
        redis_wait_timeout_ms=getattr(args, "redis_wait_timeout_ms", None),
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
        publish_simulate_days=getattr(args, "publish_simulate_days", None),
    )


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _load_demo(settings: Settings, members: int, force: bool) -> None:
    from server.api.app import open_state
    from server.cli.demo import DEMO_NOW, load_demo
    from server.cli.demo_features import try_it

    registry, store = open_state(settings, watch=False)
    where = settings.redis.url if settings.store == "redis" else settings.data_dir

    def hints() -> None:  # on stderr: stdout says where the demo and then the server are
        http = f"http://{settings.web_host}:{settings.http_port}" if settings.http_port else ""
        for line in try_it(store, settings.host, settings.port, DEMO_NOW, http):
            print(line, file=sys.stderr)

    try:
        if registry.ready and not force:
            print(f"{where}: demo data already loaded (version {registry.current().version})")
            hints()
            return
        progress, close = progress_bars()
        summary = load_demo(registry, store, members=members, progress=progress)
        close()
        print(
            f"demo loaded into {where}: rule set version {summary['version']}, "
            f"{summary['skus']} skus, {summary['members']} members, "
            f"{summary['coupons']} wallet coupons, {summary['codes']} coupon codes"
            f" (batch demo-colgate-print; {summary['bound_codes']} bound to members in"
            " demo-panadol-mailer)"
        )
        hints()
    finally:
        registry.close()
        store.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from server.settings import Settings

    settings = Settings.from_env(
        data_dir=_path(args.data_dir),
        store=args.store,
        redis_url=args.redis_url,
        redis_cluster=args.redis_cluster or None,
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
    rules = add_offline_commands(sub)
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
    sv.add_argument("--redis-cluster", action="store_true", help=CLUSTER_HELP)
    sv.add_argument(
        "--redis-wait-replicas",
        type=int,
        default=None,
        help="replicas that acknowledge a commit before OK; default 1 on a cluster, 0 on a "
        "single Redis ($LOYALTY_REDIS_WAIT_REPLICAS)",
    )
    sv.add_argument(
        "--redis-wait-timeout-ms",
        type=int,
        default=None,
        help="how long a commit waits for them, then UNAVAILABLE; default 1000 "
        "($LOYALTY_REDIS_WAIT_TIMEOUT_MS)",
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
    sv.add_argument(
        "--publish-simulate-days",
        type=int,
        default=None,
        metavar="DAYS",
        help="PublishRuleSet first simulates a rule set with guardrails over this many days of "
        "the ledger and refuses it when a basket breaches them; default 0 = off "
        "($LOYALTY_PUBLISH_SIMULATE_DAYS)",
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
    d.add_argument("--redis-cluster", action="store_true", help=CLUSTER_HELP)
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
