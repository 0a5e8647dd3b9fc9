"""The console's insight pages (Simulation, Budgets, Members, Codes and settlement), the RPCs
they read (ListOfferUsage, GetSettlement, Simulate's discount distribution), their routes over
HTTP (httpx) and the pages in a real browser (Playwright driving Debian's Chromium).

One server per module (``tests.browser.serve_console``: the demo programme, catalogue and
members, the pricing clock fixed at ``DEMO_NOW``) with a day of baskets committed over gRPC;
each test commits its own baskets (its own transaction ids) and checks what they changed, so
the tests do not depend on their order. Screenshots of each page go to tests/artifacts/.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from engine.analytics.reports import settlement as settlement_report
from engine.analytics.simulate import nice_width
from engine.pricing.rules import parse_rules
from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
)
from server.analytics.ledger import export_ledger
from server.api.app import create_server
from server.settings import Settings
from server.store.records import funded_by
from server.web.console.money import money
from tests import browser as shared
from tests.browser import DEMO_NOW, KEYS, ServedConsole, shoot

# the shared fixtures (tests/browser.py), by assignment: a server per module, one browser
browser, page = shared.browser, shared.page
console_server, keyed_console_server = shared.console_server, shared.keyed_console_server

DAY = DEMO_NOW.date().isoformat()  # 10:00 in Shanghai: the same day there
# shelf prices of the demo's example skus, minor units
PRICES = {
    "CREAM-50": 8990,
    "COLA-330": 350,
    "RICE-5KG": 4990,
    "SHAMPOO-400": 3990,
    "TOOTHPASTE-120": 1590,
    "TOOTHBRUSH-SOFT": 1290,
    "PANADOL-20": 2990,
    "SUNSCREEN-50": 12900,
}
# the baskets of the day: (skus and quantities) per basket, shopped by members in turn
BASKETS = [
    {"COLA-330": 3, "PANADOL-20": 1},
    {"CREAM-50": 1, "TOOTHPASTE-120": 1, "TOOTHBRUSH-SOFT": 1},
    {"SHAMPOO-400": 2, "COLA-330": 6},
    {"SUNSCREEN-50": 1, "CREAM-50": 2},
    {"RICE-5KG": 1, "PANADOL-20": 2, "TOOTHPASTE-120": 2},
    {"COLA-330": 2},
]


@dataclass
class Shop:
    """The served console and gRPC stubs on it."""

    served: ServedConsole

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def checkout(self) -> checkout_pb2_grpc.CheckoutServiceStub:
        return checkout_pb2_grpc.CheckoutServiceStub(self.served.channel)

    @property
    def members(self) -> members_pb2_grpc.MemberServiceStub:
        return members_pb2_grpc.MemberServiceStub(self.served.channel)

    @property
    def campaigns(self) -> campaigns_pb2_grpc.CampaignServiceStub:
        return campaigns_pb2_grpc.CampaignServiceStub(self.served.channel)

    def commit(self, txn: str, skus: dict[str, int], member: str = "") -> None:
        req = checkout_pb2.EvaluateRequest(member_id=member, store_id="s1", channel="pos")
        for k, (sku, qty) in enumerate(skus.items(), 1):
            req.lines.add(line_id=f"L{k}", sku=sku, quantity=qty, unit_price_minor=PRICES[sku])
        self.checkout.Commit(checkout_pb2.CommitRequest(transaction_id=txn, basket=req))

    def usage(self, offer_id: str) -> campaigns_pb2.OfferUsage:
        reply = self.campaigns.ListOfferUsage(
            campaigns_pb2.ListOfferUsageRequest(offer_ids=[offer_id])
        )
        found: campaigns_pb2.OfferUsage = reply.offers[0]
        return found

    def funded_by_ledger(self) -> dict[str, int]:
        """Funder -> net vendor funding, straight from the store's ledger entries."""
        out: dict[str, int] = {}
        for e in self.served.app.store.ledger(0, 1_000_000):
            for f, v in funded_by(e).items():
                out[f] = out.get(f, 0) + v
        return out


@pytest.fixture(scope="module")
def shop(console_server: ServedConsole) -> Shop:
    """The demo console with a day of baskets: 24 members shop in turn (M10001.. hold demo
    coupons: every third one Panadol, every other one Colgate)."""
    shop = Shop(console_server)
    for k in range(24):
        shop.commit(f"t-day-{k}", BASKETS[k % len(BASKETS)], member=f"M{10001 + k}")
    for k in range(6):  # and some guests
        shop.commit(f"t-guest-{k}", BASKETS[k % len(BASKETS)])
    return shop


@pytest.fixture
def http(shop: Shop) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shop.url, timeout=30) as client:
        yield client


def csrf_of(page_html: str) -> str:
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', page_html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def violations(exc: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.BadRequest()
    status.details[0].Unpack(detail)
    return [v.field for v in detail.field_violations]


def cny(minor: int) -> str:
    return money(minor, "CNY")


# -- the RPCs -------------------------------------------------------------------------------------


def test_offer_usage_counts_uses_and_budget_and_gives_them_back_on_cancel(shop: Shop):
    before = shop.usage("panadol-coupon")
    assert before.budget_cap_minor == 5_000_000 and before.total_uses_cap == 0
    assert before.funder_id == "gsk" and before.name.startswith("5 yuan off Panadol")
    shop.commit("t-usage-1", {"PANADOL-20": 1}, member="M10037")  # 36 % 3 == 0: has a coupon
    after = shop.usage("panadol-coupon")
    assert after.uses == before.uses + 1
    assert after.budget_spent_minor == before.budget_spent_minor + 500
    gsk = {f.funder_id: f for f in after.funders}["gsk"]
    assert gsk.funded_minor == gsk.discount_minor == after.budget_spent_minor
    shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t-usage-1"))
    back = shop.usage("panadol-coupon")
    assert (back.uses, back.budget_spent_minor) == (before.uses, before.budget_spent_minor)
    assert [(f.funder_id, f.funded_minor) for f in back.funders] == [
        (f.funder_id, f.funded_minor) for f in before.funders
    ]


def test_offer_usage_lists_every_offer_in_rule_set_order_with_uncapped_counts(shop: Shop):
    reply = shop.campaigns.ListOfferUsage(campaigns_pb2.ListOfferUsageRequest())
    rules = shop.served.app.registry.current().compiled.rules
    assert [o.offer_id for o in reply.offers] == [o.id for o in rules.offers]
    assert reply.currency == "CNY" and reply.ruleset_version >= 1 and reply.ledger_seq >= 30
    cola = next(o for o in reply.offers if o.offer_id == "cola-3for2")
    assert cola.total_uses_cap == 0 and cola.budget_cap_minor == 0
    assert cola.uses >= 10  # counted although it has no cap
    assert cola.budget_spent_minor == sum(f.discount_minor for f in cola.funders) > 0


@pytest.mark.parametrize("kind", ["embedded", "redis"])
def test_offer_usage_reads_the_counters_of_either_store(tmp_path: Path, request, kind: str):
    settings = Settings(port=0, http_port=0, data_dir=tmp_path / "data", store=kind)
    if kind == "redis":
        settings = settings.replace(redis_url=request.getfixturevalue("redis_url"))
    server, port, app = create_server(settings, clock=lambda: DEMO_NOW)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
        with pytest.raises(grpc.RpcError) as exc:
            stub.ListOfferUsage(campaigns_pb2.ListOfferUsageRequest())
        assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # nothing published
        offer = {"scope": {"skus": ["COLA-330"]}, "amount_off": {"amount_minor": 50}}
        rules = {
            "currency": "CNY",
            "offers": [
                {"id": "capped", "limits": {"total_uses": 3, "budget_minor": 120}, **offer},
                {"id": "free", "stacking": {"priority": 2}, **offer},
            ],
        }
        stub.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(rules)))
        shop = Shop(ServedConsole("", "", app, channel, {}))
        shop.commit("a", {"COLA-330": 1})
        shop.commit("b", {"COLA-330": 1})
        reply = stub.ListOfferUsage(campaigns_pb2.ListOfferUsageRequest())
        got = {o.offer_id: (o.uses, o.budget_spent_minor, o.total_uses_cap) for o in reply.offers}
        assert got == {"capped": (2, 100, 3), "free": (2, 100, 0)}
        assert reply.ledger_seq == 2
    finally:
        channel.close()
        server.stop(None).wait()
        app.close()


def test_offer_usage_names_an_unknown_offer_id(shop: Shop):
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.ListOfferUsage(
            campaigns_pb2.ListOfferUsageRequest(offer_ids=["cola-3for2", "x" * 129, ""])
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == ["offer_ids[1]", "offer_ids[2]"]
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.ListOfferUsage(campaigns_pb2.ListOfferUsageRequest(offer_ids=["nope"]))
    assert violations(exc.value) == ["offer_ids[0]"]


def test_settlement_equals_the_report_over_a_ledger_export(shop: Shop):
    shop.commit("t-settle-1", {"PANADOL-20": 1, "COLA-330": 3}, member="M10040")
    shop.checkout.Return(
        checkout_pb2.ReturnRequest(
            return_id="r-settle-1",
            transaction_id="t-settle-1",
            lines=[checkout_pb2.ReturnLine(line_id="L2", quantity=3)],
        )
    )
    reply = shop.campaigns.GetSettlement(
        campaigns_pb2.GetSettlementRequest(from_day=DAY, to_day=DAY)
    )
    assert reply.timezone == "Asia/Shanghai" and reply.currency == "CNY"
    expected = settlement_report(export_ledger(shop.served.app.store), None, "Asia/Shanghai")
    got = [
        (
            r.funder_id,
            r.offer_id,
            r.store_id,
            r.day,
            r.discount_minor,
            r.funded_minor,
            r.retailer_minor,
            r.lines,
            r.transactions,
        )
        for r in reply.rows
    ]
    want = [(*row[:3], row[3].isoformat(), *row[4:]) for row in expected.iter_rows()]
    assert got == want
    assert {f.funder_id: f.funded_minor for f in reply.funders} == shop.funded_by_ledger()


def test_settlement_days_are_local_and_the_period_bounds_them(shop: Shop):
    # DEMO_NOW is 02:00 UTC: the 21st in Shanghai and in UTC, the 20th in Honolulu
    empty = shop.campaigns.GetSettlement(
        campaigns_pb2.GetSettlementRequest(from_day="2026-11-20", to_day="2026-11-20")
    )
    assert not empty.rows and not empty.funders
    honolulu = shop.campaigns.GetSettlement(
        campaigns_pb2.GetSettlementRequest(
            from_day="2026-11-20", to_day="2026-11-20", timezone="Pacific/Honolulu"
        )
    )
    assert honolulu.timezone == "Pacific/Honolulu" and honolulu.rows
    assert {r.day for r in honolulu.rows} == {"2026-11-20"}
    only = shop.campaigns.GetSettlement(
        campaigns_pb2.GetSettlementRequest(from_day=DAY, to_day=DAY, funder_ids=["gsk"])
    )
    assert {r.funder_id for r in only.rows} == {"gsk"}
    assert [f.funder_id for f in only.funders] == ["gsk"]


@pytest.mark.parametrize(
    ("fields_", "paths"),
    [
        ({"from_day": "", "to_day": ""}, ["from_day", "to_day"]),
        ({"from_day": "2026-02-30", "to_day": "20261101"}, ["from_day", "to_day"]),
        ({"from_day": "2026-11-02", "to_day": "2026-11-01"}, ["to_day"]),
        ({"from_day": "2025-01-01", "to_day": "2026-01-02"}, ["to_day"]),
        ({"from_day": DAY, "to_day": DAY, "timezone": "Mars/Olympus"}, ["timezone"]),
        (
            {"from_day": DAY, "to_day": DAY, "funder_ids": ["", "x" * 129]},
            ["funder_ids[0]", "funder_ids[1]"],
        ),
    ],
)
def test_settlement_requests_are_checked_field_by_field(shop: Shop, fields_, paths):
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.GetSettlement(campaigns_pb2.GetSettlementRequest(**fields_))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == paths


def test_simulate_answers_one_distribution_shared_by_current_and_draft(shop: Shop):
    draft = campaigns_pb2.SimulateRequest().rules
    draft.CopyFrom(shop.served.app.registry.current().compiled.rules)
    cola = next(o for o in draft.offers if o.id == "cola-3for2")
    cola.limits.per_transaction = 0  # every third can free
    spend = next(o for o in draft.offers if o.id == "spend-ladder")
    spend.spend_tiers.steps[0].amount_minor = 2000
    reply = shop.campaigns.Simulate(
        campaigns_pb2.SimulateRequest(rules=draft, distribution_buckets=7)
    )
    cur, new = reply.current, reply.draft
    edges = [(b.from_minor, b.to_minor) for b in cur.discount_distribution]
    assert edges == [(b.from_minor, b.to_minor) for b in new.discount_distribution]
    assert 0 < len(edges) <= 7 and edges[0][0] == 0
    width = edges[0][1]
    assert all(hi - lo == width for lo, hi in edges)
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:], strict=False))
    for fig in (cur, new):
        assert sum(b.baskets for b in fig.discount_distribution) == fig.baskets_affected > 0
        top = fig.max_basket_discount_minor
        assert any(
            b.baskets and b.from_minor <= top < b.to_minor for b in fig.discount_distribution
        )
    assert new.discount_minor > cur.discount_minor


def test_simulate_checks_the_bucket_count(shop: Shop):
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.Simulate(campaigns_pb2.SimulateRequest(distribution_buckets=101))
    assert violations(exc.value) == ["distribution_buckets"]


@pytest.mark.parametrize(
    ("largest", "buckets", "width"),
    [(0, 20, 1), (19, 20, 1), (20, 20, 2), (300, 20, 20), (2396, 20, 200), (999, 1, 1000)],
)
def test_bucket_widths_are_one_two_or_five_times_a_power_of_ten(largest, buckets, width):
    assert nice_width(largest, buckets) == width
    assert largest // width + 1 <= buckets


# -- routes over HTTP -----------------------------------------------------------------------------


def test_budgets_table_is_a_fragment_that_keeps_polling(http: httpx.Client):
    full = http.get("/budgets")
    assert full.status_code == 200 and "<h1>Budgets</h1>" in full.text
    assert 'hx-trigger="every 2s"' in full.text and 'http-equiv="refresh"' in full.text
    table = http.get("/budgets/table", headers={"HX-Request": "true"})
    assert table.status_code == 200
    assert table.text.lstrip().startswith('<div id="budgets" hx-get="/budgets/table"')
    assert "<html" not in table.text and 'data-offer="panadol-coupon"' in table.text
    assert "CNY 50,000.00" in table.text  # the Panadol budget cap, in yuan


def test_settlement_csv_has_the_rows_and_a_filename(http: httpx.Client):
    r = http.get("/settlement.csv", params={"from_day": DAY, "to_day": DAY})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="settlement-{DAY}-{DAY}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and {row["currency"] for row in rows} == {"CNY"}
    assert {row["day"] for row in rows} == {DAY}
    assert list(rows[0]) == [
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
    ]


def test_settlement_with_a_bad_period_shows_the_field(http: httpx.Client):
    r = http.get("/settlement", params={"from_day": "2026-11-30", "to_day": "2026-11-01"})
    assert r.status_code == 400
    assert re.search(r'id="f-to_day"[^>]*aria-invalid="true"', r.text)
    assert "must not be before from_day" in r.text
    assert "demo-colgate-print" in r.text  # the demo's code batch, listed
    bad = http.get("/settlement.csv", params={"from_day": "x", "to_day": DAY})
    assert bad.status_code == 400 and "from_day" in bad.text


def test_members_unknown_and_bad_ids_are_shown_at_the_field(http: httpx.Client):
    r = http.get("/members", params={"member_id": "nobody"})
    assert r.status_code == 404 and "No member &#39;nobody&#39;." in r.text
    r = http.get("/members", params={"member_id": "x" * 129})
    assert r.status_code == 400 and 'aria-invalid="true"' in r.text


def test_simulation_refuses_a_post_without_the_csrf_token(http: httpx.Client):
    http.get("/simulation")  # the session cookie
    r = http.post("/simulation", data={"source": "text", "draft": "{}", "history": "ledger"})
    assert r.status_code == 403


def test_simulation_shows_a_yaml_error_at_the_draft(http: httpx.Client):
    token = csrf_of(http.get("/simulation").text)
    r = http.post(
        "/simulation",
        data={"csrf_token": token, "source": "text", "draft": "offers: [", "history": "ledger"},
    )
    assert r.status_code == 400
    assert re.search(r'<textarea id="f-draft"[^>]*aria-invalid="true"', r.text)
    assert 'class="bar"' not in r.text


def test_simulation_shows_the_servers_problems_with_the_draft(http: httpx.Client):
    token = csrf_of(http.get("/simulation").text)
    offer = {"id": "x", "scope": {"all": True}, "percent_off": {"percent_bps": 20000}}
    r = http.post(
        "/simulation",
        data={
            "csrf_token": token,
            "source": "text",
            "draft": yaml.safe_dump({"offers": [offer]}),
            "history": "ledger",
        },
    )
    assert r.status_code == 400 and "offers[0].percent_off.percent_bps" in r.text


def test_simulation_of_an_uploaded_history_equals_the_ledger_run(shop: Shop, http: httpx.Client):
    app = shop.served.app
    buf = io.BytesIO()
    export_ledger(app.store, app.registry.catalogue).write_parquet(buf)
    token = csrf_of(http.get("/simulation").text)
    form = {"csrf_token": token, "source": "version", "version": "1", "ledger_since": "0"}
    by_file = http.post(
        "/simulation",
        data={**form, "history": "file"},
        files={"history_file": ("h.parquet", buf.getvalue(), "application/octet-stream")},
    )
    by_ledger = http.post("/simulation", data={**form, "history": "ledger"})
    assert by_file.status_code == by_ledger.status_code == 200

    def figures(text: str) -> str:
        start = text.index('<table id="figures">')
        return text[start : text.index("</table>", start)]

    assert figures(by_file.text) == figures(by_ledger.text)
    assert by_file.text.count('class="bar"') > 0


def test_simulation_without_a_file_asks_for_one(http: httpx.Client):
    token = csrf_of(http.get("/simulation").text)
    r = http.post(
        "/simulation",
        data={"csrf_token": token, "source": "version", "version": "1", "history": "file"},
    )
    assert r.status_code == 400
    assert re.search(r'id="f-history_file"[^>]*aria-invalid="true"', r.text)


def test_a_marketing_key_reads_members_and_budgets(keyed_console_server: ServedConsole):
    """The Members page reads MemberService, which the marketing role may call."""
    mkt = next(k for k, role in KEYS.items() if role == "marketing")
    with httpx.Client(base_url=keyed_console_server.url, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        client.post("/login", data={"csrf_token": token, "api_key": mkt, "next": "/members"})
        members = client.get("/members", params={"member_id": "M10001"})
        budgets = client.get("/budgets")
    assert members.status_code == 200 and "may not read members" not in members.text
    assert "M10001" in members.text
    assert budgets.status_code == 200 and 'data-offer="panadol-coupon"' in budgets.text


# -- in a real browser ----------------------------------------------------------------------------


@pytest.fixture
def watched(page: Any) -> Iterator[Any]:
    """``page``, failing the test on a script error or anything the CSP refused."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    assert not errors, errors


def test_browser_runs_a_simulation_and_sees_its_charts(watched: Any, shop: Shop):
    tab = watched
    tab.goto("/simulation")
    draft = tab.get_by_label("Draft rule set (YAML)")
    text = draft.input_value()
    assert "spend-ladder" in text and "threshold_minor: 10000" in text
    # the spend ladder's first step: 10.00 -> 20.00 off from 100.00
    changed, n = re.subn(r"(threshold_minor: 10000\n\s+amount_minor: )1000\n", r"\g<1>2000\n", text)
    assert n == 1
    draft.fill(changed)
    tab.get_by_role("button", name="Run simulation").click()
    tab.locator("#chart-distribution rect.bar").first.wait_for()
    for chart in ("chart-funders", "chart-offers", "chart-distribution"):
        svg = tab.locator(f"svg#{chart}")
        assert svg.get_attribute("role") == "img"
        assert svg.locator("rect.bar").count() > 0
    heights = tab.locator("#chart-distribution rect.bar").evaluate_all(
        "bars => bars.map(b => Number(b.getAttribute('height')))"
    )
    assert any(h > 0 for h in heights)
    row = tab.locator("#figures tr", has_text="Discount given").inner_text()
    assert "CNY" in row and "+CNY" in row  # the draft gives more
    assert tab.url.endswith("/simulation")  # htmx swapped the result in
    shoot(tab, "simulation")


def test_browser_shows_a_bad_draft_at_its_field(watched: Any):
    tab = watched
    tab.goto("/simulation")
    tab.get_by_label("Draft rule set (YAML)").fill("offers: [")
    tab.get_by_role("button", name="Run simulation").click()
    draft = tab.locator("#f-draft[aria-invalid=true]")
    draft.wait_for()
    assert "not valid YAML" in tab.locator("#f-draft-error").inner_text()
    assert tab.locator("svg.chart").count() == 0


def test_browser_watches_a_budget_move_after_commits(watched: Any, shop: Shop):
    tab = watched
    tab.goto("/budgets")
    row = tab.locator('tr[data-offer="panadol-coupon"]')
    before = int(row.locator('[data-field="uses"]').inner_text().replace(",", ""))
    shoot(tab, "budgets")
    started = time.monotonic()
    shop.commit("t-browser-budget-1", {"PANADOL-20": 1}, member="M10031")  # 30 % 3 == 0
    shop.commit("t-browser-budget-2", {"PANADOL-20": 1}, member="M10034")  # 33 % 3 == 0
    tab.wait_for_function(
        "want => document.querySelector("
        '\'tr[data-offer="panadol-coupon"] [data-field="uses"]\').textContent.trim() === want',
        arg=str(before + 2),
        timeout=8_000,
    )
    assert time.monotonic() - started < 8
    used = shop.usage("panadol-coupon")
    assert row.locator('[data-field="spent"]').inner_text() == cny(used.budget_spent_minor)
    gsk = tab.locator('#vendor-table tr[data-funder="gsk"] [data-field="funded"]')
    assert gsk.inner_text() == cny(shop.funded_by_ledger()["gsk"])


def test_browser_looks_up_a_member(watched: Any, shop: Shop):
    tab = watched
    tab.goto("/members")
    tab.get_by_label("Member id").fill("M10001")
    tab.get_by_role("button", name="Look up").click()
    tab.locator("#member-h").wait_for()
    member = shop.members.GetMember(members_pb2.GetMemberRequest(member_id="M10001"))
    assert tab.locator('[data-field="tier"]').inner_text() == (member.tier or "—")
    assert member.lots and tab.locator("#lots tbody tr").count() == len(member.lots)
    lots = tab.locator("#lots").inner_text()
    assert all(f"{lot.points:,}" in lots for lot in member.lots)
    wallet = tab.locator("#wallet").inner_text()
    assert member.wallet and all(w.coupon_id in wallet for w in member.wallet)
    assert tab.locator("#shopping-list tbody tr").count() >= 1
    shoot(tab, "members")


def test_browser_downloads_settlement_csv_equal_to_the_ledger(watched: Any, shop: Shop):
    tab = watched
    tab.goto(f"/settlement?from_day={DAY}&to_day={DAY}")
    assert "demo-colgate-print" in tab.locator("#code-batches").inner_text()
    shoot(tab, "settlement")
    with tab.expect_download() as info:
        tab.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == f"settlement-{DAY}-{DAY}.csv"
    text = Path(download.path()).read_text(encoding="utf-8")
    owed: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(text)):
        owed[row["funder_id"]] = owed.get(row["funder_id"], 0) + int(row["funded_minor"])
    assert owed == shop.funded_by_ledger()
    assert owed["gsk"] > 0 and owed["colgate"] > 0
