"""Shopping-list ids (ListOffers.list_id and its QR code; Evaluate and Commit by
shopping_list_id) over gRPC on every store, the weekly-spend gate of playbooks, and personalised
bundles from each member's own co-purchases, priced at the lane through a wallet coupon."""

# ruff: noqa: F811 (``console_server`` is the fixture of tests/browser.py, imported)

from __future__ import annotations

import base64
import itertools
import re
import sqlite3
import struct
import xml.etree.ElementTree as ET
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import polars as pl
import pytest
import segno
import yaml

from engine.analytics import bundles as bd
from engine.analytics.history import conform
from engine.analytics.playbook import PlaybookError, parse_playbook, plan
from engine.analytics.spend_gate import SpendGate, members_above, weekly_spend
from engine.analytics.targeting import TargetingConfig, category_profiles, member_values
from engine.errors import NotFound
from engine.pricing import wire
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.rules import load_rules, parse_rules
from engine.pricing.validate import validate
from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2
from server.analytics.targeting import run_targeting
from server.api.shopping_list import render
from server.cli import connect
from server.cli.main import main
from server.store import EmbeddedStore, MemberProfile, lists
from server.store.embedded import schema
from server.store.embedded.schema import SCHEMA_VERSION
from tests.browser import console_server  # noqa: F401  (a fixture)
from tests.test_reports import open_test_store
from tests.test_server_checkout import (
    CATALOGUE,
    RULES,
    T0,
    basket,
    commit,
    running_shop,
    violations,
)

Barcode = members_pb2.ListOffersRequest


@pytest.fixture(params=["embedded", "redis", "cluster"])
def shop(tmp_path: Any, request: pytest.FixtureRequest) -> Any:
    """The server of tests/test_server_checkout.py, on a Redis Cluster too."""
    yield from running_shop(tmp_path, request)


TEN = {"percent_off": {"percent_bps": 1000}}


def list_offers(shop: Any, member_id: str = "vip1", barcode: int = 0) -> Any:
    return shop.members.ListOffers(
        members_pb2.ListOffersRequest(member_id=member_id, barcode=barcode)
    )


def by_list(list_id: str, **kw: Any) -> checkout_pb2.EvaluateRequest:
    req = basket(member_id="", **kw)
    req.shopping_list_id = list_id
    return req


def bad_fields(call: Any) -> list[str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return violations(err.value)


# -- the list id and its rendering -------------------------------------------------------------


def test_list_id_is_stable_per_member_unique_and_scanner_friendly(shop):
    shop.members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="m2", tier="member"))
    first = list_offers(shop)
    again = list_offers(shop)
    other = list_offers(shop, "m2")
    assert first.list_id == again.list_id != other.list_id
    for lid in (first.list_id, other.list_id):
        assert lists.well_formed(lid) and len(lid) == 29 <= 32
        assert set(lid[3:]) <= set(lists.ALPHABET) and "vip1" not in lid and "m2" not in lid
    assert (first.barcode, first.barcode_media_type) == (b"", "")
    assert shop.app.store.list_member(first.list_id) == "vip1"
    assert shop.app.store.list_member(lists.PREFIX + "0" * 26) is None


@pytest.fixture(params=["embedded", "redis", "cluster"])
def store(tmp_path, request):
    s = open_test_store(request, tmp_path)
    for m in ("m1", "m2"):
        s.upsert_member(MemberProfile(m, tier="member"), T0)
    yield s
    s.close()


def test_a_drawn_id_some_list_has_is_drawn_again_and_unknown_members_get_none(store, monkeypatch):
    a, b, c = (lists.PREFIX + x * 26 for x in "ABC")
    drawn = itertools.chain([a, a, b], itertools.repeat(c))
    monkeypatch.setattr(lists, "draw", lambda: next(drawn))
    assert store.shopping_list_id("m1", T0) == a
    assert store.shopping_list_id("m2", T0) == b  # a collided: drawn again
    assert store.shopping_list_id("m1", T0) == a  # kept: nothing drawn
    assert (store.list_member(a), store.list_member(b)) == ("m1", "m2")
    with pytest.raises(NotFound):
        store.shopping_list_id("nobody", T0)
    assert store.list_member(c) is None


def test_racing_first_calls_agree_on_one_id_and_leave_no_other_list(store):
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: store.shopping_list_id("m1", T0), range(8)))
    assert len(ids) == 1 and store.list_member(ids.pop()) == "m1"
    if hasattr(store, "keys"):  # on Redis: the ids drawn by the losing calls were unclaimed
        pattern = store.keys.shopping_list("*").replace("{*}", "*")
        assert len(list(store.client.scan_iter(match=pattern))) == 1


def test_the_v6_to_v7_migration_makes_the_lists_table(tmp_path):
    with EmbeddedStore(tmp_path) as s:
        s.upsert_member(MemberProfile("m1", tier="member"), T0)
        db = sqlite3.connect(s.path)
        db.execute("DROP TABLE shopping_lists")  # as a file of schema 6 has it
        schema._run(db, schema._V6_TO_V7)
        db.commit()
        db.close()
        lid = s.shopping_list_id("m1", T0)
        assert s.list_member(lid) == "m1"
    assert SCHEMA_VERSION >= 7


def test_the_qr_svg_is_an_svg_of_the_list_id(shop):
    reply = list_offers(shop, barcode=Barcode.BARCODE_QR_SVG)
    assert reply.barcode_media_type == "image/svg+xml"
    root = ET.fromstring(reply.barcode)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height")) == ("132", "132")  # (25 + 8) modules × 4
    assert reply.barcode == render(reply.list_id, Barcode.BARCODE_QR_SVG)[0]


def _png_pixels(data: bytes) -> list[list[int]]:
    """A 1-bit greyscale PNG's pixels (0 = black), every row filter undone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + n
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert (depth, colour) == (1, 0)
    raw, stride = zlib.decompress(idat), (width + 7) // 8
    rows, prev = [], bytes(stride)
    for y in range(height):
        f, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a, b, c = line[i - 1] if i else 0, prev[i], prev[i - 1] if i else 0
            p = a + b - c
            pred = [
                0,
                a,
                b,
                (a + b) // 2,
                min((a, b, c), key=lambda v: (abs(p - v), [a, b, c].index(v))),
            ]
            line[i] = (line[i] + pred[f]) & 0xFF
        prev = bytes(line)
        rows.append([(line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
    return rows


def test_the_qr_png_holds_exactly_the_symbol_of_the_list_id(shop):
    reply = list_offers(shop, barcode=Barcode.BARCODE_QR_PNG)
    assert reply.barcode_media_type == "image/png"
    pixels = _png_pixels(reply.barcode)
    symbol = segno.make_qr(reply.list_id, error="m")
    assert symbol.mode == "alphanumeric"  # the id is all QR alphanumeric characters
    # each module sampled at its centre (border 4, 4 px per module): dark = black
    got = [[1 - pixels[(4 + r) * 4 + 2][(4 + c) * 4 + 2] for c in range(25)] for r in range(25)]
    assert got == [[int(bool(v)) for v in row] for row in symbol.matrix]
    assert reply.barcode == render(reply.list_id, Barcode.BARCODE_QR_PNG)[0]


def test_an_unknown_barcode_is_invalid_on_its_field(shop):
    assert bad_fields(lambda: list_offers(shop, barcode=7)) == ["barcode"]


def test_the_cli_saves_the_qr_code(shop, tmp_path, capsys, monkeypatch):
    for name in (connect.TARGET_ENV, connect.API_KEY_ENV, connect.TLS_CA_ENV):
        monkeypatch.delenv(name, raising=False)
    port = shop.channel._channel.target().decode().rsplit(":", 1)[1]
    out = tmp_path / "list.svg"
    assert (
        main(["members", "offers", "vip1", "--qr", str(out), "--target", f"127.0.0.1:{port}"]) == 0
    )
    lid = list_offers(shop).list_id
    assert lid in capsys.readouterr().out
    assert out.read_bytes() == render(lid, Barcode.BARCODE_QR_SVG)[0]


def test_the_console_members_page_shows_the_list_id_and_its_qr(console_server):
    with httpx.Client(base_url=console_server.url, timeout=30) as client:
        page = client.get("/members", params={"member_id": "M10001"}).text
    found = re.search(r"<code>(SL-[0-9A-Z]{26})</code>", page)
    image = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert found and image
    assert base64.b64decode(image.group(1)) == render(found.group(1), Barcode.BARCODE_QR_SVG)[0]


def test_the_json_api_returns_the_list_id_and_qr_and_evaluates_by_it(console_server):
    json_ = {"content-type": "application/json"}
    with httpx.Client(base_url=console_server.url, timeout=30) as client:
        listed = client.post(
            "/loyalty.v1.MemberService/ListOffers",
            json={"memberId": "M10001", "barcode": "BARCODE_QR_PNG"},
            headers=json_,
        ).json()
        lines = [{"lineId": "1", "sku": "PANADOL-20", "quantity": "1", "unitPriceMinor": "2680"}]
        quotes = [
            client.post(
                "/loyalty.v1.CheckoutService/Evaluate", json={**who, "lines": lines}, headers=json_
            ).json()
            for who in ({"memberId": "M10001"}, {"shoppingListId": listed["listId"]})
        ]
    assert listed["barcodeMediaType"] == "image/png"
    png = base64.b64decode(listed["barcode"])
    assert png == render(listed["listId"], Barcode.BARCODE_QR_PNG)[0]
    assert quotes[0] == quotes[1] and "lines" in quotes[0]


# -- Evaluate and Commit by list id --------------------------------------------------------------


def test_evaluate_by_list_id_prices_exactly_as_by_member_id(shop):
    lid = list_offers(shop).list_id
    by_member = shop.checkout.Evaluate(basket())
    assert shop.checkout.Evaluate(by_list(lid)) == by_member
    assert shop.checkout.Evaluate(basket(member_id="")) != by_member  # vip prices differ


def test_the_byte_path_leaves_a_list_id_to_the_checked_path():
    rules = parse_rules(RULES)
    compiled = compile_rules(
        rules, Catalogue.from_rows([{"sku": s, "category": c} for s, c in CATALOGUE])
    )
    tables = wire.WireTables.build(compiled, {o.id: o.name for o in rules.offers})
    plain = basket(at=None)
    assert wire.parse(tables, compiled, plain.SerializeToString()) is not None
    listed = by_list(lists.PREFIX + "0" * 26, at=None)
    assert wire.parse(tables, compiled, listed.SerializeToString()) is None


def test_commit_by_list_id_records_the_member_and_returns_work(shop):
    lid = list_offers(shop).list_id
    by_member = commit(shop, "t-member")
    by_id = commit(shop, "t-list", by_list(lid))
    assert by_id.result == by_member.result
    assert by_id.member.member_id == "vip1"
    assert commit(shop, "t-list", by_list(lid)) == by_id  # a retry: the stored answer
    (entry,) = [e for e in shop.app.store.ledger() if e.transaction_id == "t-list"]
    assert entry.member_id == "vip1"
    points = shop.member().pending_points
    returned = shop.checkout.Return(
        checkout_pb2.ReturnRequest(
            return_id="r1",
            transaction_id="t-list",
            lines=[checkout_pb2.ReturnLine(line_id="L3", quantity=1)],
        )
    )
    assert returned.member.member_id == "vip1" and returned.refund_minor > 0
    assert shop.member().pending_points == points - returned.points_clawed_back
    cancelled = shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t-list"))
    assert cancelled.member.member_id == "vip1"


def test_a_list_id_that_is_no_list_is_invalid_on_its_field(shop):
    unknown = lists.PREFIX + "0" * 26
    assert bad_fields(lambda: shop.checkout.Evaluate(by_list(unknown))) == ["shopping_list_id"]
    assert bad_fields(lambda: commit(shop, "t1", by_list(unknown))) == ["basket.shopping_list_id"]
    assert bad_fields(lambda: shop.checkout.Evaluate(by_list("hello"))) == ["shopping_list_id"]
    both = basket()
    both.shopping_list_id = list_offers(shop).list_id
    assert bad_fields(lambda: shop.checkout.Evaluate(both)) == ["shopping_list_id"]
    assert shop.app.store.ledger() == []  # nothing was committed


# -- the weekly-spend gate -------------------------------------------------------------------------

AS_OF = datetime(2026, 11, 2, tzinfo=UTC)


def lines(*rows: tuple[str, str, str, int, str, int, int]) -> pl.DataFrame:
    """``(kind, transaction, member, days before as-of, sku, quantity, net_minor)`` rows."""
    return conform(
        pl.DataFrame(
            [
                {
                    "seq": k + 1,
                    "kind": kind,
                    "transaction_id": tx,
                    "member_id": member,
                    "at": AS_OF - timedelta(days=days, hours=1),
                    "sku": sku,
                    "category": "gear",
                    "quantity": qty,
                    "gross_minor": net,
                    "net_minor": net,
                }
                for k, (kind, tx, member, days, sku, qty, net) in enumerate(rows)
            ]
        )
    ).collect()


# gate: 4 weeks, above 1,000 a week (spend over the 28 days > 4,000)
SPEND = lines(
    ("commit", "a1", "above", 3, "BALL", 1, 2500),
    ("commit", "a2", "above", 20, "BAT", 1, 1501),  # 4,001: above
    ("commit", "e1", "equal", 10, "BALL", 1, 4000),  # 4,000: not above
    ("commit", "r1", "returned", 5, "BAT", 2, 5000),
    ("return", "r1", "returned", 2, "BAT", 1, 2500),  # 5,000 - 2,500 = 2,500
    ("commit", "o1", "old", 29, "BAT", 1, 90000),  # 29 days ago: outside the window
    ("commit", "o2", "old", 1, "BALL", 1, 100),
    ("commit", "c1", "cancel", 9, "BALL", 1, 9000),
    ("cancel", "c1", "cancel", 8, "BALL", 1, 9000),  # nets to 0
    ("commit", "b1", "big", 27, "BOAT", 1, 12000),  # 12,000 / 4 = 3,000 a week
)


def test_weekly_spend_and_the_gate_by_hand():
    spend = weekly_spend(SPEND, 4, AS_OF)
    assert spend.rows() == [
        ("above", 4001, 1000),
        ("big", 12000, 3000),
        ("cancel", 0, 0),
        ("equal", 4000, 1000),
        ("old", 100, 25),
        ("returned", 2500, 625),
    ]
    assert members_above(SPEND, SpendGate(4, 1000), AS_OF) == ["above", "big"]
    assert members_above(SPEND, SpendGate(4, 2999), AS_OF) == ["big"]
    # the last week only: above 2,500; old 100; returned 5,000 - 2,500 (the rest is older)
    assert members_above(SPEND, SpendGate(1, 0), AS_OF) == ["above", "old", "returned"]


def _plan(playbook: dict[str, Any], history: pl.DataFrame) -> pl.DataFrame:
    pb = parse_playbook(playbook)
    profiles = category_profiles(history, TargetingConfig(), AS_OF)
    values = member_values(history, TargetingConfig(), AS_OF)
    consent = pl.DataFrame(
        {"member_id": values["member_id"], "marketing": True, "automated_decisions": True}
    )
    return plan(pb, profiles, values, consent, AS_OF, history=history)


def test_a_gated_campaign_selects_exactly_the_members_above_the_gate():
    campaign = {"id": "gear", "category": "gear", "offers": [{"offer_id": "c", "value_minor": 1}]}
    gated = {**campaign, "spend_gate": {"weeks": 4, "min_weekly_minor": 1000}}
    assert _plan({"campaigns": [gated]}, SPEND)["member_id"].to_list() == ["above", "big"]
    everyone = _plan({"campaigns": [campaign]}, SPEND)["member_id"].to_list()
    assert everyone == ["above", "big", "cancel", "equal", "old", "returned"]
    # the playbook's gate holds for every campaign without its own
    top = {"spend_gate": {"weeks": 4, "min_weekly_minor": 2999}, "campaigns": [campaign]}
    assert _plan(top, SPEND)["member_id"].to_list() == ["big"]


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"weeks": 0, "min_weekly_minor": 1}, "campaigns[0].spend_gate.weeks: must be 1..520"),
        ({"weeks": 4}, "campaigns[0].spend_gate.min_weekly_minor: is required"),
        ({"weeks": 4, "min_weekly_minor": -1}, "campaigns[0].spend_gate.min_weekly_minor"),
        ({"weeks": "x", "min_weekly_minor": 1}, "campaigns[0].spend_gate.weeks: must be a whole"),
        ({"weeks": 4, "min_weekly_minor": 1, "days": 3}, "campaigns[0].spend_gate.days: unknown"),
    ],
)
def test_a_bad_gate_is_named_by_its_field_path(gate, message):
    campaign = {"id": "g", "category": "gear", "offers": [{"offer_id": "c", "value_minor": 1}]}
    with pytest.raises(PlaybookError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_playbook({"campaigns": [{**campaign, "spend_gate": gate}]})


# -- personalised bundles -----------------------------------------------------------------------


def baskets(member: str, *contents: tuple[int, tuple[tuple[str, int], ...]]) -> list[tuple]:
    """``(days before as-of, ((sku, unit price), ...))`` baskets of one unit per sku."""
    return [
        ("commit", f"{member}-{k}", member, days, sku, 1, price)
        for k, (days, skus) in enumerate(contents)
        for sku, price in skus
    ]


A, B, C, D = ("A", 1000), ("B", 2000), ("C", 500), ("D", 1500)
BUNDLE_HISTORY = lines(
    # p: AB in 3 baskets, BC in 2, AC in 1
    *baskets("p", (30, (A, B, C)), (20, (A, B)), (15, (B, C)), (10, (A, B))),
    # q: AD and CD twice each (a tie: AD sorts first); A's latest price is 1,200
    *baskets("q", (12, (C, D)), (9, (("A", 1200), D)), (8, (C, D)), (2, (("A", 1200), D))),
    # r: AB once only
    *baskets("r", (5, (A, B))),
)


def test_each_member_gets_their_most_frequent_pair_with_exact_figures():
    campaign = bd.BundleCampaign("pair", discount_bps=2000)
    picked = bd.picks(BUNDLE_HISTORY, campaign, AS_OF)
    # reference prices: A 1,200 (latest), B 2,000, C 500, D 1,500; 20% off rounded half up
    assert picked.rows() == [
        ("pair", "p", bd.offer_id("pair", ["A", "B"]), ["A", "B"], 3, 3200, 2560, 640),
        ("pair", "q", bd.offer_id("pair", ["A", "D"]), ["A", "D"], 2, 2700, 2160, 540),
    ]
    assert bd.co_purchases(BUNDLE_HISTORY, 2, AS_OF).filter(pl.col("member_id") == "p").rows() == [
        ("p", "A", "B", 3),
        ("p", "B", "C", 2),
        ("p", "A", "C", 1),
    ]
    trio = bd.picks(BUNDLE_HISTORY, bd.BundleCampaign("trio", size=3, min_baskets=1), AS_OF)
    assert trio.select("member_id", "skus", "reference_minor", "price_minor").rows() == [
        ("p", ["A", "B", "C"], 3700, 3330)
    ]
    recent = bd.picks(BUNDLE_HISTORY, bd.BundleCampaign("recent", weeks=2), AS_OF)
    assert recent.select("member_id", "skus", "baskets").rows() == [("q", ["A", "D"], 2)]


def test_bundle_offers_are_coupon_bundles_of_the_picked_skus():
    campaign = bd.BundleCampaign("pair", discount_bps=2000, funder="acme", priority=5)
    (offer, _) = bd.bundle_offers(bd.picks(BUNDLE_HISTORY, campaign, AS_OF), [campaign])
    assert offer.id == bd.offer_id("pair", ["A", "B"]) and len(offer.id) == len("pair:") + 12
    assert offer.activation == offer.COUPON and list(offer.scope.skus) == ["A", "B"]
    assert [list(c.scope.skus) for c in offer.bundle_price.components] == [["A"], ["B"]]
    assert [c.qty for c in offer.bundle_price.components] == [1, 1]
    assert offer.bundle_price.price_minor == 2560 and offer.limits.per_transaction == 1
    assert (offer.funding.funder_id, offer.funding.funded_share_bps) == ("acme", 10000)
    assert offer.stacking.priority == 5


def test_bundle_campaigns_are_validated_by_field_path():
    def fails(bundle: dict[str, Any], message: str) -> None:
        with pytest.raises(PlaybookError, match=message):
            parse_playbook({"bundles": [{"id": "b", **bundle}]})

    fails({"size": 4}, r"bundles\[0\]\.size: must be 2\.\.3")
    fails({"discount_bps": 0}, r"bundles\[0\]\.discount_bps: must be 1\.\.9999")
    fails({"id": "no spaces"}, r"bundles\[0\]\.id: 1-40 characters")
    fails({"colour": "red"}, r"bundles\[0\]\.colour: unknown field")
    fails({"spend_gate": {"weeks": 600, "min_weekly_minor": 0}}, r"bundles\[0\]\.spend_gate\.weeks")
    with pytest.raises(PlaybookError, match=r"bundles\[0\]\.id: duplicate id 'g'"):
        parse_playbook(
            {
                "campaigns": [
                    {"id": "g", "category": "x", "offers": [{"offer_id": "o", "value_minor": 1}]}
                ],
                "bundles": [{"id": "g"}],
            }
        )


def test_the_cli_writes_the_bundle_draft(tmp_path, capsys):
    BUNDLE_HISTORY.write_parquet(tmp_path / "h.parquet")
    (tmp_path / "pb.yaml").write_text("bundles: [{id: pair, discount_bps: 2000}]\n")
    rules = {"currency": "USD", "offers": [{"id": "x", "scope": {"all": True}, **TEN}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    args = ["target", "--history", str(tmp_path / "h.parquet"), "--playbook"]
    args += [str(tmp_path / "pb.yaml"), "--as-of", "2026-11-02", "--dry-run"]
    args += ["--data-dir", str(tmp_path / "data"), "--rules", str(tmp_path / "rules.yaml")]
    assert main([*args, "--bundle-draft", str(tmp_path / "draft.yaml")]) == 0
    assert "2 new bundle offers" in capsys.readouterr().out
    draft = load_rules(tmp_path / "draft.yaml")
    assert [(o.id, o.bundle_price.price_minor) for o in draft.offers] == [
        ("x", 0),
        (bd.offer_id("pair", ["A", "B"]), 2560),
        (bd.offer_id("pair", ["A", "D"]), 2160),
    ]
    assert validate(draft) == []


# the shop's programme: a member (not vip) who buys cola and cream together
OWN = datetime(2026, 11, 17, tzinfo=UTC)  # the targeting run's as-of: the day before T0
COLA, CREAM, RICE = ("COLA", 350), ("CREAM", 5990), ("RICE", 4500)
SHOP_HISTORY = lines(
    *baskets(
        "b1", (20, (COLA, CREAM)), (13, (COLA, CREAM, RICE)), (6, (COLA, CREAM)), (3, (CREAM, RICE))
    ),
    *baskets("b2", (10, (COLA, RICE)), (4, (RICE, COLA))),
).with_columns(pl.col("at") - (AS_OF - OWN))


def test_the_issued_bundle_coupon_prices_the_members_pair_at_the_bundle_price(shop):
    for m in ("b1", "b2"):
        shop.members.UpsertMember(
            members_pb2.UpsertMemberRequest(
                member_id=m,
                tier="member",
                consent=members_pb2.Consent(marketing=True, automated_decisions=True),
            )
        )
    playbook = parse_playbook({"bundles": [{"id": "own-pair", "discount_bps": 1500}]})
    current = shop.campaigns.GetRuleSet(campaigns_pb2.GetRuleSetRequest()).rules
    draft = bd.draft_rules(current, SHOP_HISTORY, playbook.bundles, OWN)
    shop.campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=draft))
    result = run_targeting(shop.app.store, SHOP_HISTORY, playbook, "run1", T0, as_of=OWN)
    offer, other = (bd.offer_id("own-pair", ["COLA", x]) for x in ("CREAM", "RICE"))
    assert result.plan.select("member_id", "offer_id", "value_minor", "status").rows() == [
        ("b1", offer, 951, "issued"),  # (350 + 5,990) × 15% = 951; the bundle costs 5,389
        ("b2", other, 728, "issued"),  # (350 + 4,500) × 15% = 727.5 -> 728; costs 4,122
    ]
    pair = [("L1", "CREAM", 1, 5990), ("L2", "COLA", 1, 350)]
    quote = shop.checkout.Evaluate(basket(member_id="b1", lines=pair))
    assert [(o.offer_id, o.discount_minor) for o in quote.offers] == [(offer, 951)]
    assert (quote.gross_minor, quote.net_minor) == (6340, 5389)
    assert shop.checkout.Evaluate(basket(member_id="", lines=pair)).discount_minor == 0
    lid = list_offers(shop, "b1").list_id
    assert shop.checkout.Evaluate(by_list(lid, lines=pair)) == quote
    assert offer in [o.offer_id for o in list_offers(shop, "b1").offers]
    # b2's pair is b2's: b1 pays full price for it
    theirs = [("L1", "RICE", 1, 4500), ("L2", "COLA", 1, 350)]
    assert shop.checkout.Evaluate(basket(member_id="b2", lines=theirs)).net_minor == 4122
    assert shop.checkout.Evaluate(basket(member_id="b1", lines=theirs)).discount_minor == 0


@pytest.mark.parametrize(
    ("reward", "saving"),
    [
        ({"unit_rates": {"first_minor": 500, "additional_minor": 200, "max_units": 4}}, 1100),
        ({"unit_rates": {"first_minor": 500, "additional_minor": 200}}, 500),
        ({"target_units": {"pick": "CHEAPEST", "units": 2, "amount_minor": 300}}, 600),
        ({"target_units": {"pick": "CHEAPEST", "units": 1, "percent_bps": 5000}}, 0),
        ({"delivery_off": {"amount_minor": 399}}, 399),
        ({"gift": {"sku": "BAG", "quantity": 1}}, 0),
    ],
)
def test_the_shopping_list_estimates_what_one_use_of_each_reward_saves(reward, saving):
    from server.api.members import expected_saving

    [o] = parse_rules({"offers": [{"id": "x", "scope": {"all": True}, **reward}]}).offers
    assert expected_saving(o) == saving
