"""``loyalty`` analytics commands: history, targeting, ledger export, reports, simulation.

    loyalty demo history --out H.parquet [--members N] [--months M] [--rules R]
    loyalty target --history H --playbook P [--run-id ID] [--as-of DAY] [--out PLAN]
    loyalty ledger export --to H.parquet [--catalogue C] [--since SEQ]
    loyalty reports settlement|extract|campaign --history H --out FILE ...
    loyalty reports statement --vendor V --from D --to D [--out FILE] [--summary FILE]
    loyalty reports audit --from D --to D [--out FILE]   (exit status 1 on differences)
    loyalty simulate --rules DRAFT --history H [--current R] [--catalogue C] [--chart PNG]

Commands that read the store or the rule registry (the current rule set, the catalogue) take
``--data-dir DIR`` (embedded, default ./.loyalty) or ``--redis-url URL``. Output files are
Parquet, or CSV when the name ends in ``.csv``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import polars as pl

from engine.analytics.history import generate_history, last_day, read_history
from engine.analytics.playbook import Playbook, load_playbook
from engine.analytics.reports import (
    anonymised_extract,
    campaign_performance,
    settlement,
    settlement_lines,
    statement_summary,
    vendor_statement,
)
from engine.analytics.simulate import compare
from engine.errors import InvalidInput
from engine.pricing.catalogue import Catalogue
from engine.pricing.rules import load_rules
from loyalty.v1 import rules_pb2
from server.cli.io import (
    catalogue_option,
    day_option,
    open_cli_store,
    open_registry,
    progress_bars,
    show_frame,
    store_options,
    write_frame,
)

if TYPE_CHECKING:
    pass


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


def cmd_target(args: argparse.Namespace) -> int:
    from server.analytics.targeting import run_targeting

    playbook = load_playbook(args.playbook)
    if args.rules:
        check_offers(playbook, load_rules(args.rules), f"{args.playbook}", args.rules)
    history = read_history(args.history).collect()  # once: every step then runs in memory
    as_of = day_option(args.as_of) or last_day(history.lazy())
    run_id = args.run_id or f"target-{as_of:%Y%m%d}"
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


# -- reports -----------------------------------------------------------------------------------


def cmd_settlement(args: argparse.Namespace) -> int:
    history = read_history(args.history).collect()
    report = settlement(history, args.funder or None, args.timezone)
    write_frame(report, args.out)
    if args.lines:
        lines = settlement_lines(history, args.timezone)
        write_frame(
            lines.filter(pl.col("funder_id").is_in(args.funder)) if args.funder else lines,
            args.lines,
        )
    show_frame(
        report.group_by("funder_id")
        .agg(pl.col("discount_minor", "funded_minor", "retailer_minor", "lines").sum())
        .sort("funder_id")
    )
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    secret = args.secret or os.environ.get("LOYALTY_ANON_SECRET", "")
    if not secret:
        raise InvalidInput.at("--secret", "a secret is required: --secret or $LOYALTY_ANON_SECRET")
    history = read_history(args.history)
    shared = None
    if not args.all_consented:
        members = history.select(pl.col("member_id").drop_nulls().unique()).collect()
        store = open_cli_store(args)
        try:
            from server.analytics.targeting import read_consent

            consent, _ = read_consent(store, members["member_id"].to_list(), datetime.now(UTC))
        finally:
            store.close()
        shared = consent.filter("third_party")["member_id"].to_list()
    out = anonymised_extract(history, args.vendor, secret.encode(), shared)
    write_frame(out, args.out)
    keyed = out["customer_key"].is_not_null().sum()
    print(
        f"{args.out}: {len(out):,} lines of {args.vendor} products, {keyed:,} with a "
        f"customer key, {out['customer_key'].n_unique() - (keyed < len(out)):,} customers"
    )
    return 0


def cmd_campaign(args: argparse.Namespace) -> int:
    plan = pl.read_parquet(args.plan)
    budgets = load_playbook(args.playbook).budgets if args.playbook else None
    as_of = day_option(args.as_of)
    if as_of is None:
        raise InvalidInput.at("--as-of", "the day of the targeting run is required")
    report = campaign_performance(read_history(args.history), plan, as_of, args.days, budgets)
    write_frame(report, args.out)
    show_frame(report)
    return 0


def _period(args: argparse.Namespace) -> tuple[date, date]:
    """``--from``/``--to``: local days, both included."""
    try:
        first, last = date.fromisoformat(args.from_day), date.fromisoformat(args.to_day)
    except ValueError as exc:
        raise InvalidInput.at("--from/--to", f"a day YYYY-MM-DD: {exc}") from None
    if last < first:
        raise InvalidInput.at("--to", f"{last} is before --from {first}")
    return first, last


def _ledger_history(args: argparse.Namespace) -> pl.DataFrame:
    """``--history FILE``, else the store's ledger (``--data-dir``/``--redis-url``)."""
    if getattr(args, "history", None):
        return read_history(args.history).collect()
    from server.analytics.ledger import export_ledger

    catalogue = catalogue_option(args)
    store = open_cli_store(args)
    try:
        return export_ledger(store, catalogue)
    finally:
        store.close()


def cmd_statement(args: argparse.Namespace) -> int:
    first, last = _period(args)
    lines = vendor_statement(_ledger_history(args), args.vendor, first, last, args.timezone)
    summary = statement_summary(lines)
    if args.out:
        write_frame(lines, args.out)
    if args.summary:
        write_frame(summary, args.summary)
    print(
        f"deduction statement of {args.vendor} for {first} to {last}: {len(lines):,} lines, "
        f"net deduction {summary['net_minor'][-1]:,} minor units"
    )
    show_frame(summary)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from server.analytics.audit import audit_ledger

    first, last = _period(args)
    tz = ZoneInfo(args.timezone)
    since = datetime.combine(first, time(), tz)
    until = datetime.combine(last + timedelta(days=1), time(), tz)
    registry = open_registry(args)
    if registry is None:
        raise InvalidInput.at("--data-dir", "no rule registry here: nothing was published")
    catalogue = catalogue_option(args)
    store = open_cli_store(args)
    try:
        result = audit_ledger(store, registry, since, until, catalogue)
    finally:
        store.close()
        registry.close()
    versions = ", ".join(f"v{v}: {n}" for v, n in result.by_version.items()) or "none"
    print(
        f"audit {first} to {last}: {result.baskets:,} baskets, {result.lines:,} lines, "
        f"{result.discounts:,} discounts re-derived (baskets per rule-set version: {versions})"
    )
    if len(result.limit_dependent):
        print(f"{len(result.limit_dependent)} limit-dependent offers (explained by limits):")
        show_frame(result.limit_dependent)
    if args.out:
        write_frame(result.differences, args.out)
    if result.passed:
        print("passed: every discount is what its rule-set version gives")
        return 0
    print(f"FAILED: {len(result.differences)} differences")
    show_frame(result.differences)
    return 1


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


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Bad input (a file, an option) is one line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (InvalidInput, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


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
    dh.set_defaults(func=_guard(cmd_demo_history))

    t = sub.add_parser("target", help="segments, tags and personalised coupons from history")
    t.add_argument("--history", required=True)
    t.add_argument("--playbook", required=True)
    t.add_argument("--run-id", help="idempotency key of the run (default target-<as-of>)")
    t.add_argument("--as-of", help="day the run is for (default: the day after the history)")
    t.add_argument("--rules", help="check that the playbook's offers exist in this rule set")
    t.add_argument("--out", help="the plan: every (campaign, member) with status and window")
    t.add_argument("--dry-run", action="store_true", help="compute and print, write nothing")
    store_options(t)
    t.set_defaults(func=_guard(cmd_target))

    led = sub.add_parser("ledger", help="the store's ledger").add_subparsers(
        dest="action", required=True
    )
    ex = led.add_parser("export", help="the ledger as a history file (line detail, funding)")
    ex.add_argument("--to", required=True)
    ex.add_argument("--catalogue", help="fills category/brand/vendor (default: the registry's)")
    ex.add_argument("--since", type=int, default=0, help="only entries after this seq")
    store_options(ex)
    ex.set_defaults(func=_guard(cmd_ledger_export))

    rep = sub.add_parser(
        "reports",
        help="settlement, anonymised extract, campaign performance, vendor statement, audit",
    ).add_subparsers(dest="action", required=True)
    st = rep.add_parser("settlement", help="what each funder owes per offer, store and day")
    st.add_argument("--history", required=True)
    st.add_argument("--out", required=True)
    st.add_argument("--lines", help="also write the line detail here")
    st.add_argument("--funder", action="append", help="only this funder (repeatable)")
    st.add_argument("--timezone", default="UTC", help="whose days (e.g. Asia/Shanghai)")
    st.set_defaults(func=_guard(cmd_settlement))
    an = rep.add_parser("extract", help="a vendor's sales with member identity removed")
    an.add_argument("--history", required=True)
    an.add_argument("--vendor", required=True)
    an.add_argument("--out", required=True)
    an.add_argument("--secret", help="HMAC key (default $LOYALTY_ANON_SECRET)")
    an.add_argument(
        "--all-consented",
        action="store_true",
        help="do not read third-party consent from the store (synthetic data)",
    )
    store_options(an)
    an.set_defaults(func=_guard(cmd_extract))
    cp = rep.add_parser("campaign", help="redemptions, cost, budget burn, uplift vs holdout")
    cp.add_argument("--history", required=True)
    cp.add_argument("--plan", required=True, help="the plan `loyalty target --out` wrote")
    cp.add_argument("--as-of", required=True)
    cp.add_argument("--days", type=int, default=28)
    cp.add_argument("--playbook", help="for the funders' budgets")
    cp.add_argument("--out", required=True)
    cp.set_defaults(func=_guard(cmd_campaign))
    vs = rep.add_parser("statement", help="a vendor's deduction statement for a period")
    vs.add_argument("--vendor", required=True, help="the funder id (e.g. gsk)")
    vs.add_argument("--from", dest="from_day", required=True, help="first day YYYY-MM-DD")
    vs.add_argument("--to", dest="to_day", required=True, help="last day YYYY-MM-DD (included)")
    vs.add_argument("--history", help="a ledger export (default: read the store's ledger)")
    vs.add_argument("--catalogue", help="fills sku brand/vendor (default: the registry's)")
    vs.add_argument("--timezone", default="UTC", help="whose days (e.g. Asia/Shanghai)")
    vs.add_argument("--out", help="the line detail (Parquet, or CSV when it ends in .csv)")
    vs.add_argument("--summary", help="the per-offer summary and total")
    store_options(vs)
    vs.set_defaults(func=_guard(cmd_statement))
    au = rep.add_parser(
        "audit", help="re-derive every committed discount under its rule-set version"
    )
    au.add_argument("--from", dest="from_day", required=True, help="first day YYYY-MM-DD")
    au.add_argument("--to", dest="to_day", required=True, help="last day YYYY-MM-DD (included)")
    au.add_argument("--catalogue", help="default: the registry's")
    au.add_argument("--timezone", default="UTC", help="whose days (e.g. Asia/Shanghai)")
    au.add_argument("--out", help="the differences (Parquet or CSV)")
    store_options(au)
    au.set_defaults(func=_guard(cmd_audit))

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
    store_options(sm)
    sm.set_defaults(func=_guard(cmd_simulate))
