"""Reports reconciled with the ledger of a real store (embedded and Redis): settlement to the
cent after commits, cancels and returns; the anonymised extract carries no member identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from engine.analytics.history import conform
from engine.analytics.reports import (
    anonymised_extract,
    campaign_performance,
    keyed_hash,
    owed_by_funder,
    settlement,
    settlement_lines,
)
from server.analytics.ledger import export_ledger, history_rows
from server.store import Consent, MemberProfile, Store, open_store
from server.store.records import funded_by, sign
from tests.store_fixtures import BASKET_1, CATALOGUE, DAY, PANADOL, T0, checkout, on_cluster

ALICE, BOB = "MEMBER-ALICE", "MEMBER-BOB"
COLGATE = ("5", "TOOTHPASTE-120", 2, 1890)
SECRET = b"retailer-only-secret"


def open_test_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """The store ``request.param`` names: embedded in ``tmp_path``, the test Redis, or the
    test cluster under a key prefix of its own."""
    if request.param == "redis":
        return open_store("redis", url=request.getfixturevalue("redis_url"))
    if request.param == "cluster":
        url = request.getfixturevalue("redis_cluster").url
        return open_store("redis", settings=on_cluster(url))
    return open_store("embedded", data_dir=tmp_path / "data")


@pytest.fixture(params=["embedded", "redis"])
def ledger_store(tmp_path, request):
    """Commits with GSK- and Colgate-funded wallet coupons, then a cancel and two returns."""
    store = open_test_store(request, tmp_path)
    store.upsert_member(MemberProfile(ALICE, tier="vip", consent=Consent(True, True, True)), T0)
    store.upsert_member(MemberProfile(BOB, tier="member", consent=Consent(True, True, False)), T0)
    for offer in ("panadol-coupon", "colgate-coupon"):
        store.issue_coupons(f"i-{offer}", offer, [ALICE, BOB], 1, T0 - DAY, T0 + 30 * DAY, T0)
    checkout(store, "t1", [*BASKET_1, PANADOL, COLGATE], ALICE)
    checkout(store, "t2", [PANADOL, COLGATE], BOB, at=T0 + DAY)
    checkout(store, "t3", [PANADOL, ("2", "COLA-330", 3, 350)], None, at=T0 + DAY)
    store.cancel("t2", T0 + 2 * DAY)
    store.return_lines("r1", "t1", [("4", 1), ("5", 1)], T0 + 3 * DAY)
    store.return_lines("r2", "t1", [("4", 2)], T0 + 4 * DAY)
    yield store
    store.close()


def test_settlement_totals_equal_the_ledger_to_the_cent(ledger_store):
    entries = ledger_store.ledger()
    assert [e.kind for e in entries] == ["commit", "commit", "commit", "cancel", "return", "return"]
    expected: dict[str, int] = {}
    for e in entries:
        for funder, amount in funded_by(e).items():
            expected[funder] = expected.get(funder, 0) + amount
    history = export_ledger(ledger_store, CATALOGUE, now=T0)
    owed = owed_by_funder(history)
    assert owed == expected
    # t1: Panadol 3 x 500 (GSK pays all), returned in full; t2 cancelled; t3 guest has no
    # wallet: GSK owes nothing net. Colgate (t1): oral care 10% first (3780 -> 3402), then
    # 15% = 510, half funded = 255; one of two units returned: floor(255 * 1/2) = 127 back
    assert owed["gsk"] == 0
    assert owed["colgate"] == 255 - 127
    report = settlement(history)
    by_funder = report.group_by("funder_id").agg(pl.col("funded_minor").sum())
    assert dict(by_funder.iter_rows()) == expected
    # discounts too: the report's discount equals the ledger's signed line discounts
    signed = sum(sign(e) * d.amount_minor for e in entries for ln in e.lines for d in ln.discounts)
    assert report["discount_minor"].sum() == signed
    assert (report["discount_minor"] - report["funded_minor"] == report["retailer_minor"]).all()


def test_settlement_lines_carry_the_detail_and_the_sign(ledger_store):
    history = export_ledger(ledger_store, CATALOGUE, now=T0)
    lines = settlement_lines(history).filter(pl.col("offer_id") == "panadol-coupon")
    got = lines.select("kind", "entry_id", "quantity", "amount_minor", "funded_minor").rows()
    assert got == [
        ("commit", "t1", 3, 1500, 1500),
        ("commit", "t2", 3, 1500, 1500),
        ("cancel", "t2", -3, -1500, -1500),
        ("return", "r1", -1, -500, -500),
        ("return", "r2", -2, -1000, -1000),
    ]
    assert set(lines["vendor"]) == {"gsk"} and set(lines["brand"]) == {"panadol"}
    per_day = settlement(history, funders=["gsk"])  # t1, t2 (+t3), cancel, r1, r2: 5 days
    assert per_day["day"].n_unique() == 5 and set(per_day["funder_id"]) == {"gsk"}


def test_the_ledger_export_has_the_history_schema_and_line_detail(ledger_store):
    entries = ledger_store.ledger()
    history = history_rows(entries, CATALOGUE)
    commits = history.filter(pl.col("kind") == "commit")
    assert commits["entry_id"].unique(maintain_order=True).to_list() == ["t1", "t2", "t3"]
    t1 = commits.filter(pl.col("entry_id") == "t1")
    assert t1["line_no"].to_list() == [0, 1, 2, 3, 4]
    assert t1["net_minor"].sum() == entries[0].amount_minor + t1["tender_minor"].sum()
    assert t1["category"].to_list() == ["skincare", "drinks", "grocery", "pain-relief", "oral-care"]
    # the checkout context is the commit's, on its reversals too: settlement per store works
    assert set(history["store_id"]) == {"SH-001"} and set(history["channel"]) == {"pos"}
    tiers = dict(history.select("entry_id", "tier").unique().iter_rows())
    assert tiers == {"t1": "vip", "r1": "vip", "r2": "vip", "t2": "member", "t3": ""}
    assert "store_id" in settlement(history).columns


def test_the_anonymised_extract_contains_no_member_id(ledger_store):
    history = export_ledger(ledger_store, CATALOGUE, now=T0)
    extract = anonymised_extract(history, "gsk", SECRET, shared_members=[ALICE])
    assert len(extract) == 6  # Panadol lines: t1, t2, t3 commits, t2 cancel, two returns
    cells = extract.select(pl.all().cast(pl.String)).to_numpy().ravel().tolist()
    for member_id in (ALICE, BOB):
        assert not any(member_id in str(c) for c in cells)
    assert "member_id" not in extract.columns and "transaction_id" not in extract.columns
    # Alice (consented) has one stable key; Bob (no third-party consent) and the guest none
    keys = extract["customer_key"].drop_nulls().unique().to_list()
    assert keys == [keyed_hash(ALICE, SECRET, "member")]
    assert extract["customer_key"].null_count() == 3
    # another secret gives unrelated keys: without the secret they cannot be recomputed
    other = anonymised_extract(history, "gsk", b"another", shared_members=[ALICE])
    assert set(other["customer_key"].drop_nulls()).isdisjoint(keys)
    # the vendor's figures still add up: what GSK funded nets to what it owes
    assert extract["funded_minor"].sum() == owed_by_funder(history)["gsk"]
    with pytest.raises(ValueError):
        anonymised_extract(history, "gsk", b"")


def test_campaign_performance_counts_redemptions_cost_budget_and_uplift():
    as_of = datetime(2026, 11, 2, tzinfo=UTC)

    def line(tx, member, day, net, kind="commit", offer=None, amount=0, funded=0, points=0):
        discounts = (
            [
                {
                    "offer_id": offer,
                    "funder_id": "gsk",
                    "amount_minor": amount,
                    "funded_minor": funded,
                }
            ]
            if offer
            else []
        )
        return {
            "transaction_id": tx,
            "entry_id": tx + kind,
            "kind": kind,
            "member_id": member,
            "at": as_of + timedelta(days=day),
            "sku": "PANADOL-20",
            "category": "pain-relief",
            "quantity": 1,
            "gross_minor": net + amount,
            "net_minor": net,
            "points_earned": points,
            "discounts": discounts,
        }

    history = conform(
        pl.DataFrame(
            [
                line("t1", "a", 1, 2180, offer="panadol-coupon", amount=500, funded=500, points=2),
                line("t2", "b", 2, 2680, points=2),
                line("t2", "b", 3, 2680, kind="return", points=2),  # b returned it: spend 0
                line("t3", "a", 3, 2180, offer="panadol-coupon", amount=500, funded=500, points=2),
                line("t4", "h", 4, 1340),
                line(
                    "t5", "a", 40, 9999, offer="panadol-coupon", amount=500, funded=500
                ),  # too late
                line(
                    "t6", "x", 1, 2180, offer="panadol-coupon", amount=500, funded=500
                ),  # not planned
            ],
            infer_schema_length=None,
        )
    ).collect()
    plan = pl.DataFrame(
        {
            "campaign_id": ["keep"] * 4,
            "member_id": ["a", "b", "h", "n"],
            "category": ["pain-relief"] * 4,
            "offer_id": ["panadol-coupon"] * 4,
            "funder_id": ["gsk"] * 4,
            "group": ["treatment", "treatment", "holdout", "treatment"],
            "status": ["issued", "issued", "holdout", "no_consent"],
        }
    )
    report = campaign_performance(history, plan, as_of, days=28, budgets={"gsk": 4000})
    row = report.row(0, named=True)
    assert (row["treated"], row["holdout"], row["redemptions"]) == (2, 1, 2)
    assert (row["discount_minor"], row["funded_minor"], row["retailer_minor"]) == (1000, 1000, 0)
    assert row["budget_burn_bps"] == 2500  # 1000 of 4000
    assert (row["points_earned"], row["points_redeemed"]) == (4, 0)  # b's 2 points clawed back
    # treated spend: a 4360, b 0 -> 2180 on average; holdout h 1340 -> uplift 840
    assert (row["spend_treated"], row["spend_holdout"], row["uplift_minor"]) == (2180, 1340, 840)
