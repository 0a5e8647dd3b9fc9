"""``loyalty`` analytics commands: history, targeting, ledger export, reports, simulation.

    loyalty demo history --out H.parquet [--members N] [--months M] [--rules R]
    loyalty target --history H --playbook P [--run-id ID] [--as-of DAY] [--out PLAN] [--dask C]
    loyalty ledger export --to H.parquet [--catalogue C] [--since SEQ]
    loyalty reports ...   (server/cli/reports.py)
    loyalty simulate --rules DRAFT --history H [--current R] [--catalogue C] [--chart PNG]
                     [--dask local|local:N|tcp://HOST:PORT]

Commands that read the store or the rule registry (the current rule set, the catalogue) take
``--data-dir DIR`` (embedded, default ./.loyalty) or ``--redis-url URL``. Output files are
Parquet, or CSV when the name ends in ``.csv``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from engine.analytics.history import generate_history, last_day, read_history
from engine.analytics.playbook import Playbook, load_playbook
from engine.analytics.simulate import compare
from engine.errors import InvalidInput
from engine.pricing.catalogue import Catalogue
from engine.pricing.rules import load_rules
from loyalty.v1 import rules_pb2
from server.cli.io import (
    catalogue_option,
    day_option,
    guarded,
    open_cli_store,
    open_registry,
    progress_bars,
    show_frame,
    store_options,
    write_frame,
)
from server.cli.reports import add_report_commands

# -- demo history ------------------------------------------------------------------------------


def demo_products() -> tuple[Catalogue, pl.DataFrame]:
    """The demo catalogue, and its priced skus as ``generate_history`` takes them."""
    from server.cli.demo import demo_catalogue

    catalogue, prices = demo_catalogue()
    frame = pl.DataFrame({"sku": list(prices), "unit_price_minor": list(prices.values())}).join(
        pl.DataFrame(
            {
                "sku": catalogue.sku,
                "category": catalogue.category,
                "brand": catalogue.brand,
                "vendor": catalogue.vendor,
            }
        ),
        on="sku",
    )
    return catalogue, frame


def cmd_demo_history(args: argparse.Namespace) -> int:
    catalogue, frame = demo_products()
    history = generate_history(
        frame,
        members=args.members,
        months=args.months,
        seed=args.seed,
        start=day_option(args.start) or datetime(2026, 5, 1, tzinfo=UTC),
    )
    if args.rules:
        import engine
        from engine.analytics.simulate import reprice

        history = reprice(engine.compile_rules(load_rules(args.rules), catalogue), history)
    write_frame(history, args.out)
    if args.catalogue_out:
        write_frame(
            pl.DataFrame(
                {
                    "sku": catalogue.sku,
                    "category": catalogue.category,
                    "brand": catalogue.brand,
                    "vendor": catalogue.vendor,
                    "no_discount": catalogue.no_discount,
                    "no_earn": catalogue.no_earn,
                }
            ),
            args.catalogue_out,
        )
    print(
        f"{args.out}: {history['member_id'].n_unique():,} members, "
        f"{history['transaction_id'].n_unique():,} baskets, {len(history):,} lines"
    )
    return 0


# -- target ------------------------------------------------------------------------------------


def check_offers(playbook: Playbook, rules: rules_pb2.RuleSet, name: str, rules_name: str) -> None:
    """Every playbook offer exists in the rule set, is a coupon, and its funder is the
    campaign's."""
    offers = {o.id: o for o in rules.offers}
    problems = []
    for c in playbook.campaigns:
        for d in c.offers:
            offer = offers.get(d.offer_id)
            if offer is None:
                problems.append(f"{c.id}: offer {d.offer_id!r} is not in {rules_name}")
            elif offer.activation != rules_pb2.Offer.COUPON:
                problems.append(f"{c.id}: offer {d.offer_id!r} is not a coupon offer")
            elif (offer.funding.funder_id or "retailer") != c.funder:
                problems.append(
                    f"{c.id}: offer {d.offer_id!r} is funded by "
                    f"{offer.funding.funder_id or 'retailer'!r}, not {c.funder!r}"
                )
    if problems:
        raise InvalidInput.at(name, "; ".join(problems))


def write_bundle_draft(
    path: str, rules: rules_pb2.RuleSet, history: pl.DataFrame, playbook: Playbook, as_of: datetime
) -> None:
    """The rule set with the playbook's bundle offers as of ``as_of``, as a YAML rule file."""
    from engine.analytics.bundles import draft_rules
    from server.web.console.yamltext import to_yaml

    draft = draft_rules(rules, history, playbook.bundles, as_of)
    Path(path).write_text(to_yaml(draft), encoding="utf-8")
    print(f"{path}: {len(draft.offers) - len(rules.offers)} new bundle offers; publish it")


def cmd_target(args: argparse.Namespace) -> int:
    from server.analytics.targeting import run_targeting

    playbook = load_playbook(args.playbook)
    if args.rules:
        check_offers(playbook, load_rules(args.rules), f"{args.playbook}", args.rules)
    elif args.bundle_draft:
        raise InvalidInput.at("--bundle-draft", "needs --rules (the rule set to add bundles to)")
    history = read_history(args.history).collect()  # once: every step then runs in memory
    as_of = day_option(args.as_of) or last_day(history.lazy())
    if args.bundle_draft:
        write_bundle_draft(args.bundle_draft, load_rules(args.rules), history, playbook, as_of)
    run_id = args.run_id or f"target-{as_of:%Y%m%d}"
    profiled = None
    if args.dask:
        from server.analytics.dask_replay import dask_client, profile_on

        with dask_client(args.dask) as client:
            profiled = profile_on(client, history, playbook.targeting, as_of)
    store = open_cli_store(args)
    update, close = progress_bars()
    try:
        result = run_targeting(
            store,
            history,
            playbook,
            run_id,
            datetime.now(UTC),
            as_of=as_of,
            progress=update,
            dry_run=args.dry_run,
            profiled=profiled,
        )
    finally:
        close()
        store.close()
    if args.out:
        write_frame(result.plan, args.out)
    print(
        f"run {run_id} as of {as_of:%Y-%m-%d}: {result.values.height:,} members profiled, "
        f"{result.tagged:,} tagged, {result.conflicts} conflicts"
        + (" (dry run: nothing written)" if args.dry_run else "")
    )
    show_frame(result.summary.with_columns((pl.col("value_minor") / 100).alias("value")))
    return 0


# -- ledger export -----------------------------------------------------------------------------


def cmd_ledger_export(args: argparse.Namespace) -> int:
    from server.analytics.ledger import export_ledger

    catalogue = catalogue_option(args)
    store = open_cli_store(args)
    try:
        history = export_ledger(store, catalogue, since=args.since)
    finally:
        store.close()
    write_frame(history, args.to)
    print(f"{args.to}: {history['seq'].n_unique():,} ledger entries, {len(history):,} lines")
    return 0


# -- simulate ----------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    import engine

    catalogue = catalogue_option(args) or Catalogue.empty()
    draft = engine.compile_rules(load_rules(args.rules), catalogue)
    if args.current:
        current = engine.compile_rules(load_rules(args.current), catalogue)
    else:
        registry = open_registry(args)
        if registry is None or not registry.ready:
            raise InvalidInput.at(
                "--current", "no published rule set to compare with; give --current RULES"
            )
        try:
            current = registry.current().compiled
        finally:
            registry.close()
    if args.dask:
        from server.analytics.dask_replay import compare_on, dask_client

        with dask_client(args.dask) as client:
            result = compare_on(
                client, current, draft, read_history(args.history), args.assume_coupon or ()
            )
    else:
        result = compare(current, draft, read_history(args.history), args.assume_coupon or ())
    show_frame(result.table())
    cur, new = result.current.paid_by(), result.draft.paid_by()
    show_frame(
        pl.DataFrame({"paid_by": sorted(set(cur) | set(new))}).with_columns(
            pl.col("paid_by")
            .replace_strict(cur, default=0, return_dtype=pl.Int64)
            .alias("current"),
            pl.col("paid_by").replace_strict(new, default=0, return_dtype=pl.Int64).alias("draft"),
        )
    )
    show_frame(result.offers())
    versions = ", ".join(f"v{v}: {n:,}" for v, n in result.current.versions().items())
    print(f"baskets by the rule-set version that priced them (0 = unknown): {versions or '-'}")
    if args.out:
        write_frame(result.offers(), args.out)
    if args.chart:
        from server.analytics.chart import chart

        chart(result, args.chart)
        print(f"chart: {args.chart}")
    return 0


# -- parser ------------------------------------------------------------------------------------


def _dask_value(value: str) -> str:
    from server.analytics.dask_replay import parse_dask

    try:
        parse_dask(value)
    except InvalidInput as exc:  # at parse time: before any history is read
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def dask_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dask",
        metavar="CLUSTER",
        type=_dask_value,
        help="run partitioned by member on Dask: local (a local cluster, one worker per core), "
        "local:N (N workers) or tcp://HOST:PORT (a running scheduler); needs the dask extra",
    )


def add_analytics_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo history``, ``target``, ``ledger``, ``reports`` and ``simulate``."""
    demo = sub.choices["demo"]
    dh = demo.add_subparsers(dest="demo_action").add_parser(
        "history", help="write a synthetic purchase history (Parquet)"
    )
    dh.add_argument("--out", required=True)
    dh.add_argument("--members", type=int, default=2_000)
    dh.add_argument("--months", type=int, default=6)
    dh.add_argument("--seed", type=int, default=7)
    dh.add_argument("--start", default=None, help="first day, default 2026-05-01")
    dh.add_argument("--rules", help="price the baskets under this rule set (demo catalogue)")
    dh.add_argument("--catalogue-out", help="also write the catalogue the history uses")
    dh.set_defaults(func=guarded(cmd_demo_history))

    t = sub.add_parser("target", help="segments, tags and personalised coupons from history")
    t.add_argument("--history", required=True)
    t.add_argument("--playbook", required=True)
    t.add_argument("--run-id", help="idempotency key of the run (default target-<as-of>)")
    t.add_argument("--as-of", help="day the run is for (default: the day after the history)")
    t.add_argument("--rules", help="check that the playbook's offers exist in this rule set")
    t.add_argument("--out", help="the plan: every (campaign, member) with status and window")
    t.add_argument("--dry-run", action="store_true", help="compute and print, write nothing")
    t.add_argument(
        "--bundle-draft",
        metavar="OUT",
        help="write --rules plus the bundle campaigns' offers to OUT (YAML) for publishing",
    )
    dask_option(t)
    store_options(t)
    t.set_defaults(func=guarded(cmd_target))

    led = sub.add_parser("ledger", help="the store's ledger").add_subparsers(
        dest="action", required=True
    )
    ex = led.add_parser("export", help="the ledger as a history file (line detail, funding)")
    ex.add_argument("--to", required=True)
    ex.add_argument("--catalogue", help="fills category/brand/vendor (default: the registry's)")
    ex.add_argument("--since", type=int, default=0, help="only entries after this seq")
    store_options(ex)
    ex.set_defaults(func=guarded(cmd_ledger_export))

    add_report_commands(sub)

    sm = sub.add_parser("simulate", help="score a draft rule set over history vs the current")
    sm.add_argument("--rules", required=True, help="the draft rule set")
    sm.add_argument("--history", required=True)
    sm.add_argument("--current", help="current rule set file (default: the registry's)")
    sm.add_argument("--catalogue")
    sm.add_argument(
        "--assume-coupon",
        action="append",
        metavar="OFFER",
        help="as if every basket presented a coupon of this offer",
    )
    sm.add_argument("--out", help="per-offer comparison (Parquet or CSV)")
    sm.add_argument("--chart", help="PNG chart of the comparison")
    dask_option(sm)
    store_options(sm)
    sm.set_defaults(func=guarded(cmd_simulate))
