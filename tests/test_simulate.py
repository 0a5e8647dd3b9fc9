"""Simulation (engine.analytics.simulate): the current rule set over the ledger's committed
baskets gives exactly the discounts, nets and points those transactions received."""

from __future__ import annotations

import polars as pl
import pytest

import engine
from engine.analytics.history import conform
from engine.analytics.simulate import compare, reprice
from loyalty.v1 import rules_pb2
from server.analytics.ledger import export_ledger
from server.store import Consent, MemberProfile
from tests.store_fixtures import BASKET_1, CATALOGUE, COMPILED, DAY, PANADOL, RULES, T0, checkout
from tests.test_reports import open_test_store

SATURDAY = T0 + 3 * DAY  # weekend double points
BUNDLE = (("6", "TOOTHPASTE-120", 1, 1890), ("7", "TOOTHBRUSH-SOFT", 2, 1290))


@pytest.fixture(params=["embedded", "redis"])
def history(tmp_path, request):
    """Every kind of reward: tiers, 3-for-2, bundle, ladder, wallet coupons (vendor-funded),
    weekend points, sunscreen bonus, a points tender; one commit cancelled afterwards."""
    store = open_test_store(request, tmp_path)
    everyone = Consent(True, True, True)
    store.upsert_member(MemberProfile("vip1", tier="vip", consent=everyone), T0)
    store.upsert_member(MemberProfile("m2", tier="member", birthday_month=3), T0)
    store.issue_coupons("i1", "panadol-coupon", ["vip1", "m2"], 1, T0 - DAY, T0 + 30 * DAY, T0)
    store.issue_coupons("i2", "colgate-coupon", ["vip1"], 2, T0 - DAY, T0 + 30 * DAY, T0)
    store.adjust_points("gift", "vip1", 2000, "goodwill", T0)
    checkout(store, "t1", [*BASKET_1, PANADOL, *BUNDLE], "vip1", redeem=-1)
    checkout(
        store, "t2", [("1", "SUNSCREEN-50", 2, 12900), ("2", "COLA-330", 7, 350)], "m2", at=SATURDAY
    )
    checkout(store, "t3", [PANADOL, ("2", "CREAM-50", 1, 5990)], None, at=SATURDAY)
    checkout(
        store,
        "t4",
        [("1", "TOOTHPASTE-120", 3, 1890), ("2", "CREAM-50", 4, 5990)],
        "vip1",
        at=SATURDAY + DAY,
        redeem=300,
    )
    checkout(store, "t5", [PANADOL, ("2", "RICE-5KG", 5, 4500)], "m2", at=SATURDAY + DAY)
    store.cancel("t5", SATURDAY + 2 * DAY)
    yield export_ledger(store, CATALOGUE, now=T0)
    store.close()


def test_the_current_rules_reproduce_the_committed_discounts_exactly(history):
    commits = history.filter(pl.col("kind") == "commit")
    assert commits["transaction_id"].n_unique() == 5
    # the ledger really used coupons, vendor funding, the tender and bonus points
    offers = set(commits.explode("discounts")["discounts"].struct.field("offer_id").drop_nulls())
    assert {
        "panadol-coupon",
        "colgate-coupon",
        "vip-skincare",
        "cola-3for2",
        "sunday-bundle",
        "spend-ladder",
    } <= offers
    assert commits["tender_minor"].sum() > 0 and commits["funded_minor"].sum() > 0
    again = reprice(COMPILED, history)
    cols = [
        "transaction_id",
        "line_id",
        "net_minor",
        "tender_minor",
        "points_earned",
        "discount_minor",
        "funded_minor",
        "discounts",
    ]
    assert again.select(cols).to_dicts() == commits.select(cols).to_dicts()


def test_comparing_the_current_rules_with_themselves_matches_the_ledger(history):
    result = compare(COMPILED, COMPILED, history)
    commits = history.filter(pl.col("kind") == "commit")
    d = commits.explode("discounts").select(pl.col("discounts").struct.unnest()).drop_nulls()
    assert (
        result.current.discount_minor == commits["discount_minor"].sum() == d["amount_minor"].sum()
    )
    assert result.current.points_earned == commits["points_earned"].sum()
    assert result.current.points_liability_minor == 10 * commits["points_earned"].sum()
    assert result.current.baskets == 5 and result.current.baskets_affected == 5
    by_funder = (
        d.group_by("funder_id")
        .agg(pl.col("amount_minor").sum(), pl.col("funded_minor").sum())
        .sort("funder_id")
    )
    assert result.current.by_funder.rows() == by_funder.rows()
    assert result.table()["change"].to_list() == [0] * 8
    assert result.current.affected_bps == 10000
    biggest = (
        commits.group_by("transaction_id")
        .agg(pl.col("discount_minor").sum())
        .sort("discount_minor", descending=True)
        .row(0)
    )
    assert (
        result.current.max_basket_transaction_id,
        result.current.max_basket_discount_minor,
    ) == biggest


def test_a_draft_shows_its_cost_per_offer_and_funder(history):
    draft = rules_pb2.RuleSet()
    draft.CopyFrom(RULES)
    for offer in draft.offers:
        if offer.id == "spend-ladder":  # a richer ladder
            offer.spend_tiers.steps[0].amount_minor = 2000
        if offer.id == "panadol-coupon":  # GSK pays half only
            offer.funding.funded_share_bps = 5000
    result = compare(COMPILED, engine.compile_rules(draft, CATALOGUE), history)
    offers = {r["offer_id"]: r for r in result.offers().iter_rows(named=True)}
    ladder, panadol = offers["spend-ladder"], offers["panadol-coupon"]
    assert ladder["draft_discount_minor"] > ladder["current_discount_minor"] > 0
    assert panadol["draft_discount_minor"] == panadol["current_discount_minor"]
    assert panadol["draft_funded_minor"] == panadol["current_funded_minor"] // 2
    paid = result.draft.paid_by()
    assert paid["gsk"] == panadol["draft_funded_minor"]
    assert sum(paid.values()) == result.draft.discount_minor
    assert result.draft.discount_minor > result.current.discount_minor
    assert result.draft.max_basket_discount_minor >= result.current.max_basket_discount_minor


def test_assumed_coupons_score_a_new_wallet_offer_on_every_basket(history):
    panadol_baskets = (
        history.filter(pl.col("kind") == "commit")
        .filter(pl.col("sku") == "PANADOL-20")["transaction_id"]
        .n_unique()
    )
    plain = history.with_columns(
        pl.lit([], pl.List(conform(history).collect_schema()["discounts"].inner)).alias("discounts")
    )  # as if no coupon had been used
    without = compare(COMPILED, COMPILED, plain)
    assert "panadol-coupon" not in without.current.by_offer["offer_id"].to_list()
    assumed = compare(COMPILED, COMPILED, plain, assume_coupons=["panadol-coupon"])
    row = assumed.current.by_offer.filter(pl.col("offer_id") == "panadol-coupon").row(0, named=True)
    assert row["baskets"] == panadol_baskets == 3  # t1, t3 (a guest, too) and t5
    assert row["funder_id"] == "gsk"


def test_an_empty_history_scores_zero():
    result = compare(
        COMPILED,
        COMPILED,
        conform(
            pl.DataFrame(
                schema={
                    "transaction_id": pl.String,
                    "at": pl.Datetime("us", "UTC"),
                    "sku": pl.String,
                    "quantity": pl.Int64,
                    "gross_minor": pl.Int64,
                    "net_minor": pl.Int64,
                }
            )
        ).collect(),
    )
    assert result.current.baskets == 0 and result.current.discount_minor == 0
    assert result.offers().is_empty()
