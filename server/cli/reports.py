"""``loyalty reports``: settlement, anonymised extract, campaign performance, a vendor's
deduction statement, and the advertised-equals-charged audit.

    loyalty reports settlement|extract|campaign --history H --out FILE ...
    loyalty reports statement --vendor V --from D --to D [--out FILE] [--summary FILE]
    loyalty reports audit --from D --to D [--out FILE]   (exit status 1 on differences)

Output files are Parquet, or CSV when the name ends in ``.csv``.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from engine.analytics.history import read_history
from engine.analytics.playbook import load_playbook
from engine.analytics.reports import (
    anonymised_extract,
    campaign_performance,
    settlement,
    settlement_lines,
    statement_summary,
    vendor_statement,
)
from engine.errors import InvalidInput
from server.cli.io import (
    catalogue_option,
    day_option,
    guarded,
    open_cli_store,
    open_registry,
    show_frame,
    store_options,
    write_frame,
)


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


def add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``reports settlement|extract|campaign|statement|audit``."""
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
    st.set_defaults(func=guarded(cmd_settlement))
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
    an.set_defaults(func=guarded(cmd_extract))
    cp = rep.add_parser("campaign", help="redemptions, cost, budget burn, uplift vs holdout")
    cp.add_argument("--history", required=True)
    cp.add_argument("--plan", required=True, help="the plan `loyalty target --out` wrote")
    cp.add_argument("--as-of", required=True)
    cp.add_argument("--days", type=int, default=28)
    cp.add_argument("--playbook", help="for the funders' budgets")
    cp.add_argument("--out", required=True)
    cp.set_defaults(func=guarded(cmd_campaign))
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
    vs.set_defaults(func=guarded(cmd_statement))
    au = rep.add_parser(
        "audit", help="re-derive every committed discount under its rule-set version"
    )
    au.add_argument("--from", dest="from_day", required=True, help="first day YYYY-MM-DD")
    au.add_argument("--to", dest="to_day", required=True, help="last day YYYY-MM-DD (included)")
    au.add_argument("--catalogue", help="default: the registry's")
    au.add_argument("--timezone", default="UTC", help="whose days (e.g. Asia/Shanghai)")
    au.add_argument("--out", help="the differences (Parquet or CSV)")
    store_options(au)
    au.set_defaults(func=guarded(cmd_audit))


__all__ = ["add_report_commands"]
