"""The console's insight pages: Simulation (here), Budgets and Codes-and-settlement
(``insight_ledger.py``) and Members (``insight_members.py``).

Simulation runs a draft rule set (YAML pasted or an earlier version) against the current one
over the server's ledger or an uploaded history Parquet (``CampaignService/Simulate``) and
draws cost by funder, cost by offer and the distribution of basket discounts as inline SVG
(``insight_charts.py``), with the figures in tables. Money is shown in the currency of the rule
set each figure is of (the current rule set's for the comparison).

``routes(rpc, settings)`` gives the pages' routes; the console wraps each in its guard
(sign-in, CSRF, error pages), so the handlers here only call RPCs and render.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import grpc
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from loyalty.v1 import campaigns_pb2, rules_pb2
from server.settings import Settings
from server.web.console import insight_ledger, insight_members
from server.web.console.common import call, is_htmx, render
from server.web.console.insight_charts import Group, bar_chart, histogram
from server.web.console.insight_common import current_rules
from server.web.console.money import money, percent
from server.web.console.programme import get_version, list_versions, parse_text
from server.web.console.yamltext import to_yaml
from server.web.rpc import Rpc, RpcFailure

SIMULATE = "loyalty.v1.CampaignService/Simulate"
# an upload is read up to this much (the gRPC server refuses a request over its message limit)
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MAX_TEXT_BYTES = 8 * 1024 * 1024  # a form field (the draft's YAML)
_SPLIT = re.compile(r"[\s,]+")


# -- simulation -----------------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _upload(form: FormData, name: str) -> bytes:
    value = form.get(name)
    if not isinstance(value, UploadFile):
        return b""
    data = await value.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    return data


def _field(path: str) -> str:
    """The form field a Simulate violation belongs to."""
    if path.startswith("assume_coupons"):
        return "assume_coupons"
    if path in ("history_parquet", "ledger_since"):
        return {"history_parquet": "history_file"}.get(path, path)
    return "draft"


async def _simulate_request(
    request: Request, form: FormData, values: dict[str, Any], errors: dict[str, str]
) -> campaigns_pb2.SimulateRequest | None:
    """The Simulate request the form asks for; None (with ``errors``) when it asks badly."""
    for name in ("source", "draft", "version", "history", "ledger_since", "assume_coupons"):
        value = form.get(name)
        values[name] = value if isinstance(value, str) else ""
    req = campaigns_pb2.SimulateRequest()
    draft: rules_pb2.RuleSet | None = None
    if values["source"] == "version":
        try:
            found = await get_version(request, int(_text(form, "version")))
        except (ValueError, RpcFailure):
            found = None
        if found is None:
            errors["version"] = "choose a published version"
        else:
            draft = found.rules
    else:
        draft, bad, _ = parse_text(str(values["draft"]))
        if draft is None:
            errors["draft"] = "; ".join(f"{f}: {d}" for f, d in bad)
    if values["history"] == "file":
        try:
            req.history_parquet = await _upload(form, "history_file")
        except ValueError as exc:
            errors["history_file"] = str(exc)
        if not req.history_parquet and "history_file" not in errors:
            errors["history_file"] = "choose a history Parquet file (loyalty ledger export)"
    else:
        try:
            req.ledger_since = int(_text(form, "ledger_since") or 0)
        except ValueError:
            errors["ledger_since"] = "a whole number, 0 or more"
    req.assume_coupons.extend(c for c in _SPLIT.split(str(values["assume_coupons"])) if c)
    if draft is None or errors:
        return None
    req.rules.CopyFrom(draft)
    return req


async def simulation(request: Request) -> Response:
    """GET: the form (the current rule set as the draft, the ledger as history). POST: run it."""
    listing = await list_versions(request)
    current = await current_rules(request)
    values: dict[str, Any] = {
        "source": "text",
        "history": "ledger",
        "ledger_since": "0",
        "version": str(current.version or ""),
        "draft": to_yaml(current.rules) if current.rules is not None else "",
    }
    errors: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    result: dict[str, Any] | None = None
    status = 200
    if request.method == "POST":
        form = await request.form(max_part_size=MAX_TEXT_BYTES)
        try:
            req = await _simulate_request(request, form, values, errors)
        finally:
            await form.close()  # the upload's spooled file
        if req is not None:
            try:
                reply: campaigns_pb2.SimulateResponse = await call(request, SIMULATE, req)
                result = figures(reply, current.currency or req.rules.currency)
            except RpcFailure as exc:
                if exc.code not in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                ):
                    raise
                problems = exc.violations or [("", exc.message)]
                for path, description in exc.violations:
                    errors.setdefault(_field(path), description)
                if exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    errors["history_file"] = "larger than the server accepts in one request"
        # htmx swaps only 2xx answers in: the form with its errors comes back as 200 to it
        status = 200 if result is not None or is_htmx(request) else 400
    return render(
        request,
        "insight_simulation.html",
        status_code=status,
        versions=list(reversed(listing.versions)),
        values=values,
        errors=errors,
        problems=problems,
        result=result,
        currency=current.currency,
    )


def _payers(f: campaigns_pb2.SimulationFigures) -> dict[str, int]:
    """Who pays the discount: each vendor what it funds, the retailer the rest."""
    out = {x.funder_id: x.funded_minor for x in f.funders if x.funder_id != "retailer"}
    out["retailer"] = f.discount_minor - sum(out.values())
    return out


def figures(reply: campaigns_pb2.SimulateResponse, currency: str) -> dict[str, Any]:
    """The charts and tables of a Simulate reply."""
    cur, new = reply.current, reply.draft

    def fmt(minor: int) -> str:
        return money(minor, currency)

    a, b = _payers(cur), _payers(new)
    payers = sorted(set(a) | set(b), key=lambda p: (p != "retailer", p))
    funders = [Group(p, (a.get(p, 0), b.get(p, 0))) for p in payers]
    offers: dict[tuple[str, str], list[int]] = {}
    for k, fig in enumerate((cur, new)):
        for o in fig.offers:
            row = offers.setdefault((o.offer_id, o.funder_id), [0] * 6)
            row[k], row[2 + k], row[4 + k] = o.baskets, o.discount_minor, o.funded_minor
    by_offer = sorted(offers.items(), key=lambda kv: (-max(kv[1][2], kv[1][3]), kv[0]))
    edges = [(d.from_minor, d.to_minor) for d in new.discount_distribution]
    counts = [[d.baskets for d in fig.discount_distribution] for fig in (cur, new)]

    def share(fig: campaigns_pb2.SimulationFigures) -> int:
        return fig.baskets_affected * 10000 // fig.baskets if fig.baskets else 0

    rows: list[tuple[str, int, int, Callable[[int], str]]] = [
        ("Baskets", cur.baskets, new.baskets, str),
        ("Baskets with a discount", cur.baskets_affected, new.baskets_affected, str),
        ("Share of baskets with a discount", share(cur), share(new), percent),
        ("Discount given", cur.discount_minor, new.discount_minor, fmt),
        ("Funded by vendors", cur.funded_minor, new.funded_minor, fmt),
        ("Points earned", cur.points_earned, new.points_earned, str),
        ("Points liability", cur.points_liability_minor, new.points_liability_minor, fmt),
        (
            "Biggest basket discount",
            cur.max_basket_discount_minor,
            new.max_basket_discount_minor,
            fmt,
        ),
    ]
    return {
        "current_version": reply.current_version,
        "table": [
            (name, show(x), show(y), ("+" if y > x else "") + show(y - x) if y != x else "—")
            for name, x, y, show in rows
        ],
        "max_tx": (cur.max_basket_transaction_id, new.max_basket_transaction_id),
        "funders": [(g.label, fmt(g.values[0]), fmt(g.values[1])) for g in funders],
        "offers": [
            (oid, fid, v[0], v[1], fmt(v[2]), fmt(v[3]), fmt(v[4]), fmt(v[5]))
            for (oid, fid), v in by_offer
        ],
        "buckets": [
            (fmt(lo), fmt(hi), counts[0][i] if i < len(counts[0]) else 0, counts[1][i])
            for i, (lo, hi) in enumerate(edges)
        ],
        "chart_funders": bar_chart("chart-funders", "Cost by funder", funders, fmt),
        "chart_offers": bar_chart(
            "chart-offers",
            "Discount by offer",
            [Group(oid, (v[2], v[3])) for (oid, _), v in by_offer],
            fmt,
        ),
        "chart_distribution": histogram(
            "chart-distribution",
            "Baskets by discount",
            edges,
            [c if len(c) == len(edges) else [0] * len(edges) for c in counts],
            fmt,
        ),
    }


def routes(rpc: Rpc | None = None, settings: Settings | None = None) -> list[BaseRoute]:
    """The insight pages' routes (the console wraps each in its guard)."""
    return [
        Route("/simulation", simulation, methods=["GET", "POST"], name="simulation"),
        *insight_ledger.routes(),
        *insight_members.routes(),
    ]


__all__ = ["figures", "routes"]
