"""Budgets and Codes-and-settlement: the console pages that read the ledger.

- ``/budgets``: per offer of the current rule set, its uses and budget spent against its caps
  and what each funder paid of its discounts (``CampaignService/ListOfferUsage``). The table
  reloads itself every :data:`REFRESH_S` seconds (htmx polling ``/budgets/table``; without
  scripts the page refreshes itself).
- ``/settlement``: what each funder owes for a period of days, per offer, store and day
  (``CampaignService/GetSettlement``), with the totals per funder; ``/settlement.csv`` the
  same rows as a CSV download, and the coupon code batches (``CampaignService/
  ListCouponCodeBatches``).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from loyalty.v1 import campaigns_pb2
from server.web.console.common import call, render
from server.web.console.insight_common import current_rules
from server.web.console.money import money
from server.web.rpc import RpcFailure

SERVICE = "loyalty.v1.CampaignService"
REFRESH_S = 2
CSV_COLUMNS = (
    "funder_id",
    "offer_id",
    "store_id",
    "day",
    "discount_minor",
    "funded_minor",
    "retailer_minor",
    "lines",
    "transactions",
    "currency",
)


# -- budgets --------------------------------------------------------------------------------------


def _share(part: int, whole: int) -> int:
    """``part`` of ``whole`` in basis points, 0..10000 (0 without a cap)."""
    return max(0, min(10000, part * 10000 // whole)) if whole > 0 else 0


async def _usage(request: Request) -> dict[str, Any]:
    try:
        reply: campaigns_pb2.ListOfferUsageResponse = await call(
            request, f"{SERVICE}/ListOfferUsage", campaigns_pb2.ListOfferUsageRequest()
        )
    except RpcFailure as exc:
        if exc.code != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        return {"empty": exc.message, "offers": [], "vendors": []}
    cur = reply.currency
    vendors: dict[str, list[int]] = {}
    offers = []
    for o in reply.offers:
        for f in o.funders:
            total = vendors.setdefault(f.funder_id, [0, 0])
            total[0] += f.discount_minor
            total[1] += f.funded_minor
        offers.append(
            {
                "id": o.offer_id,
                "name": o.name,
                "funder": o.funder_id,
                "uses": o.uses,
                "uses_cap": o.total_uses_cap,
                "uses_bps": _share(o.uses, o.total_uses_cap),
                "spent": money(o.budget_spent_minor, cur),
                "spent_minor": o.budget_spent_minor,
                "budget": money(o.budget_cap_minor, cur) if o.budget_cap_minor else "",
                "budget_cap_minor": o.budget_cap_minor,
                "left": money(max(0, o.budget_cap_minor - o.budget_spent_minor), cur),
                "budget_bps": _share(o.budget_spent_minor, o.budget_cap_minor),
                "funders": [
                    (f.funder_id, money(f.discount_minor, cur), money(f.funded_minor, cur))
                    for f in o.funders
                ],
            }
        )
    return {
        "empty": "",
        "version": reply.ruleset_version,
        "currency": cur,
        "ledger_seq": reply.ledger_seq,
        "offers": offers,
        "vendors": [
            (f, money(d, cur), money(p, cur), money(d - p, cur))
            for f, (d, p) in sorted(vendors.items())
        ],
        "updated": datetime.now(UTC).strftime("%H:%M:%S UTC"),
        "refresh_s": REFRESH_S,
    }


async def budgets(request: Request) -> Response:
    return render(request, "insight_budgets.html", **await _usage(request))


async def budgets_table(request: Request) -> Response:
    """The table alone, for the page's polling."""
    return render(request, "insight_budgets_table.html", **await _usage(request))


# -- settlement -----------------------------------------------------------------------------------


def _period(request: Request, zone: str) -> tuple[str, str]:
    """The asked period, by default this month to today in the rule set's zone."""
    try:
        today = datetime.now(ZoneInfo(zone or "UTC")).date()
    except (KeyError, ValueError):
        today = datetime.now(UTC).date()
    q = request.query_params
    first = q.get("from_day") or date(today.year, today.month, 1).isoformat()
    return first.strip(), (q.get("to_day") or today.isoformat()).strip()


async def _settlement(
    request: Request,
) -> tuple[campaigns_pb2.GetSettlementResponse | None, dict[str, str], dict[str, str], str]:
    """``(reply or None, form values, field errors, message)`` for the query's period."""
    rules = await current_rules(request)
    first, last = _period(request, rules.timezone)
    funder = request.query_params.get("funder_id", "").strip()
    values = {"from_day": first, "to_day": last, "funder_id": funder}
    req = campaigns_pb2.GetSettlementRequest(from_day=first, to_day=last)
    if funder:
        req.funder_ids.append(funder)
    try:
        reply: campaigns_pb2.GetSettlementResponse = await call(
            request, f"{SERVICE}/GetSettlement", req
        )
    except RpcFailure as exc:
        if exc.code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            raise
        errors = {("funder_id" if p.startswith("funder_ids") else p): d for p, d in exc.violations}
        return None, values, errors, exc.message
    return reply, values, {}, ""


async def settlement(request: Request) -> Response:
    reply, values, errors, message = await _settlement(request)
    context: dict[str, Any] = {"values": values, "errors": errors, "message": message}
    if reply is not None:
        cur = reply.currency
        context.update(
            timezone=reply.timezone,
            currency=cur,
            rows=[
                (
                    r.day,
                    r.funder_id,
                    r.offer_id,
                    r.store_id or "—",
                    r.lines,
                    r.transactions,
                    money(r.discount_minor, cur),
                    money(r.funded_minor, cur),
                    money(r.retailer_minor, cur),
                )
                for r in reply.rows
            ],
            funders=[
                (
                    f.funder_id,
                    money(f.discount_minor, cur),
                    money(f.funded_minor, cur),
                    money(f.discount_minor - f.funded_minor, cur),
                )
                for f in reply.funders
            ],
            csv_query=request.url.query
            or f"from_day={values['from_day']}&to_day={values['to_day']}",
        )
    context["batches"] = await _batches(request)
    return render(request, "insight_settlement.html", status_code=200 if reply else 400, **context)


async def _batches(request: Request) -> list[tuple[str, ...]]:
    """The code batches as table rows, oldest first (none when the server keeps no store)."""
    try:
        reply: campaigns_pb2.ListCouponCodeBatchesResponse = await call(
            request,
            f"{SERVICE}/ListCouponCodeBatches",
            campaigns_pb2.ListCouponCodeBatchesRequest(),
        )
    except RpcFailure as exc:
        if exc.code != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        return []
    return [
        (
            b.batch_id,
            b.offer_id,
            f"{b.count:,}",
            b.prefix + (b.pattern or "#" * b.length),
            str(b.uses_per_code) + (" per member" if b.per_member else ""),
            f"{b.valid_from.ToDatetime():%Y-%m-%d %H:%M} – "
            f"{b.valid_until.ToDatetime():%Y-%m-%d %H:%M}",
            f"{b.created_at.ToDatetime():%Y-%m-%d %H:%M}",
        )
        for b in reply.batches
    ]


def _cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def settlement_csv_text(reply: campaigns_pb2.GetSettlementResponse) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in reply.rows:
        writer.writerow(
            (
                _cell(r.funder_id),
                _cell(r.offer_id),
                _cell(r.store_id),
                r.day,
                r.discount_minor,
                r.funded_minor,
                r.retailer_minor,
                r.lines,
                r.transactions,
                reply.currency,
            )
        )
    return out.getvalue()


async def settlement_csv(request: Request) -> Response:
    reply, values, errors, message = await _settlement(request)
    if reply is None:
        text = message + "".join(f"\n{f}: {d}" for f, d in errors.items())
        return Response(text + "\n", status_code=400, media_type="text/plain; charset=utf-8")
    name = f"settlement-{values['from_day']}-{values['to_day']}.csv"
    return Response(
        settlement_csv_text(reply),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/budgets", budgets, methods=["GET"], name="budgets"),
        Route("/budgets/table", budgets_table, methods=["GET"], name="budgets-table"),
        Route("/settlement", settlement, methods=["GET"], name="settlement"),
        Route("/settlement.csv", settlement_csv, methods=["GET"], name="settlement-csv"),
    ]


__all__ = ["REFRESH_S", "routes", "settlement_csv_text"]
