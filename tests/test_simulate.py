"""Simulation (engine.analytics.simulate): the current rule set over the ledger's committed
baskets gives exactly the discounts, nets and points those transactions received."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl
import pytest

import engine
from engine.analytics.history import conform, sign
from engine.analytics.replay import basket_frames
from engine.analytics.simulate import Scored, compare, reprice
from loyalty.v1 import rules_pb2
from server.analytics.ledger import export_ledger
from server.store import CommitOutcome, Consent, MemberProfile, PricingState, Store
from server.store.checkout import commit
from server.store.policy import Policy
from server.store.records import Provenance
from tests.store_fixtures import (
    BASKET_1,
    CATALOGUE,
    COMPILED,
    DAY,
    PANADOL,
    RULES,
    T0,
    basket,
    checkout,
)
from tests.test_reports import open_test_store

SATURDAY = T0 + 3 * DAY  # weekend double points
H = timedelta(hours=1)
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


def net_ledger(history: pl.DataFrame) -> dict[str, object]:
    """The ledger's figures net of cancels and returns (reversal rows subtract)."""
    signed = history.with_columns(sign().alias("s"))
    d = (
        signed.explode("discounts")
        .filter(pl.col("discounts").is_not_null())
        .select("transaction_id", "s", pl.col("discounts").struct.unnest())
        .with_columns(pl.col("amount_minor") * pl.col("s"), pl.col("funded_minor") * pl.col("s"))
    )
    by_funder = (
        d.group_by("funder_id")
        .agg(pl.col("amount_minor").sum(), pl.col("funded_minor").sum())
        .filter(pl.col("amount_minor") != 0)
        .sort("funder_id")
    )
    by_offer = (
        d.group_by("offer_id")
        .agg(pl.col("amount_minor").sum())
        .filter(pl.col("amount_minor") != 0)
        .sort("offer_id")
    )
    per_basket = (
        signed.group_by("transaction_id")
        .agg((pl.col("discount_minor") * pl.col("s")).sum())
        .filter(pl.col("discount_minor") > 0)
        .sort("discount_minor", descending=True)
    )
    cancelled = set(history.filter(pl.col("kind") == "cancel")["transaction_id"])
    units = signed.group_by("transaction_id").agg((pl.col("quantity") * pl.col("s")).sum())
    return {
        "discount": int(d["amount_minor"].sum()),
        "funded": int(d["funded_minor"].sum()),
        "gross": int((signed["gross_minor"] * signed["s"]).sum()),
        "earned": int((signed["points_earned"] * signed["s"]).sum()),
        "redeemed": int((signed["points_redeemed"] * signed["s"]).sum()),
        "by_funder": by_funder.rows(),
        "by_offer": dict(by_offer.rows()),
        "biggest": per_basket.row(0) if len(per_basket) else ("", 0),
        "baskets": units.filter(
            ~pl.col("transaction_id").is_in(list(cancelled)) & (pl.col("quantity") > 0)
        ).height,
    }


def assert_matches_ledger(scored: Scored, history: pl.DataFrame) -> None:
    """The simulated figures are the ledger's net figures to the minor unit."""
    net = net_ledger(history)
    assert scored.discount_minor == net["discount"]
    assert scored.funded_minor == net["funded"]
    assert scored.gross_minor == net["gross"]
    assert scored.points_earned == net["earned"]
    assert scored.points_redeemed == net["redeemed"]
    assert scored.baskets == net["baskets"]
    assert scored.by_funder.filter(pl.col("discount_minor") != 0).rows() == net["by_funder"]
    offers = scored.by_offer.group_by("offer_id").agg(pl.col("discount_minor").sum())
    assert dict(offers.rows()) == net["by_offer"]
    biggest = (scored.max_basket_transaction_id, scored.max_basket_discount_minor)
    assert biggest == net["biggest"]


def test_comparing_the_current_rules_with_themselves_matches_the_ledger(history):
    result = compare(COMPILED, COMPILED, history)
    commits = history.filter(pl.col("kind") == "commit")
    assert_matches_ledger(result.current, history)
    # t5 was cancelled: it counts nowhere
    assert result.current.baskets == 4 and result.current.baskets_affected == 4
    assert result.current.discount_minor < commits["discount_minor"].sum()
    assert result.current.points_liability_minor == 10 * result.current.points_earned
    assert result.table()["change"].to_list() == [0] * 8
    assert result.current.affected_bps == 10000
    assert result.current.versions() == {0: 4}
    biggest = (
        commits.filter(pl.col("transaction_id") != "t5")
        .group_by("transaction_id")
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
    assert panadol_baskets == 3  # t1, t3 (a guest, too) and t5, which was cancelled
    assert row["baskets"] == 2
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


# The Panadol coupon (500 off a pack, GSK-funded) once a month per member and 2,500 in all.
RULES_LIMITED = rules_pb2.RuleSet()
RULES_LIMITED.CopyFrom(RULES)
for _offer in RULES_LIMITED.offers:
    if _offer.id == "panadol-coupon":
        _offer.limits.Clear()
        _offer.limits.per_member = 1
        _offer.limits.per_member_period = rules_pb2.Limits.MONTH
        _offer.limits.budget_minor = 2500
COMPILED_LIMITED = engine.compile_rules(RULES_LIMITED, CATALOGUE)


def commit_as(
    store: Store,
    transaction_id: str,
    lines: Sequence[tuple[str, str, int, int]],
    member_id: str | None,
    at: datetime,
    *,
    version: int,
    recorded_at: datetime | None = None,
    redeem: int = 0,
) -> CommitOutcome:
    """``checkout`` under RULES_LIMITED, recording the version that priced it (and, for a lane
    that was offline, the later time the server recorded it)."""
    b = basket(lines, at)

    def price_fn(state: PricingState) -> engine.PricingResult:
        return engine.price(
            COMPILED_LIMITED,
            b,
            state.member,
            coupons=state.coupons,
            redeem_points=redeem,
            limits=state.limits,
        )

    return commit(
        store,
        transaction_id,
        transaction_id,
        price_fn,
        at,
        policy=Policy.from_rules(RULES_LIMITED),
        basket=b,
        member_id=member_id,
        provenance=Provenance(recorded_at, at if recorded_at else None, version),
    ).outcome


def panadol(qty: int) -> tuple[str, str, int, int]:
    return ("4", "PANADOL-20", qty, 2680)


@pytest.fixture(params=["embedded", "redis"])
def limited(tmp_path, request):
    """A budgeted, once-a-month coupon used up, given back by a cancel and a partial return,
    and used again, in that order; a points tender partly returned; an offline lane's basket
    synced a day late; two rule-set versions."""
    store = open_test_store(request, tmp_path)
    for m in ("a", "b", "c", "d"):
        store.upsert_member(MemberProfile(m, tier="member", consent=Consent(True, True, True)), T0)
    store.issue_coupons(
        "i1", "panadol-coupon", ["a", "b", "c", "d"], 3, T0 - 5 * DAY, T0 + 9 * DAY, T0
    )
    store.adjust_points("gift", "d", 5000, "goodwill", T0)
    commit_as(store, "t1", [panadol(3)], "a", T0, version=3)  # 1500
    commit_as(store, "t2", [panadol(2)], "a", T0 + H, version=3)  # a: once a month, 0
    commit_as(store, "t3", [panadol(3), BASKET_1[2]], "b", T0 + 2 * H, version=3)  # 1000 left
    commit_as(store, "t4", [panadol(1)], "c", T0 + 3 * H, version=3)  # budget spent, 0
    store.cancel("t1", T0 + 4 * H)  # gives back 1500 and a's use
    store.return_lines("r1", "t3", [("4", 2)], T0 + 5 * H)  # gives back 2/3 of 1000: 666
    # an offline lane's basket of last Saturday (double points), synced now
    commit_as(store, "t5", [panadol(3)], "c", T0 - 4 * DAY, version=4, recorded_at=T0 + 6 * H)
    commit_as(store, "t6", [panadol(2)], "a", T0 + 7 * H, version=4)  # a again: 666 left
    cream = ("2", "CREAM-50", 2, 5990)
    commit_as(store, "t7", [panadol(3), cream], "d", T0 + 8 * H, version=4, redeem=300)
    store.return_lines("r2", "t7", [("2", 1)], T0 + 9 * H)
    store.return_lines("r3", "t6", [("4", 1)], T0 + 10 * H)
    yield export_ledger(store, CATALOGUE, now=T0)
    store.close()


def panadol_given(history: pl.DataFrame) -> dict[str, int]:
    d = history.filter(pl.col("kind") == "commit").explode("discounts").drop_nulls("discounts")
    d = d.filter(pl.col("discounts").struct.field("offer_id") == "panadol-coupon")
    return {
        t: int(v)
        for t, v in d.group_by("transaction_id")
        .agg(pl.col("discounts").struct.field("amount_minor").sum())
        .sort("transaction_id")
        .iter_rows()
    }


def test_limits_apply_in_ledger_order_and_reproduce_every_line(limited):
    given = panadol_given(limited)
    # what the store granted: the budget capped t3, refused a's second use and c once spent,
    # and the cancel and return gave back what t5, t6 and t7 then used
    assert given == {"t1": 1500, "t3": 1000, "t5": 1500, "t6": 666}
    commits = limited.filter(pl.col("kind") == "commit")
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
    again = reprice(COMPILED_LIMITED, limited)
    assert again.select(cols).to_dicts() == commits.select(cols).to_dicts()
    # without the limits in ledger order, the coupon would have given more than it had
    free = panadol_given(reprice(COMPILED_LIMITED, limited, limits=False))
    assert sum(free.values()) > sum(given.values())


def test_the_simulation_nets_cancels_and_returns_and_honours_budgets(limited):
    result = compare(COMPILED_LIMITED, COMPILED_LIMITED, limited)
    assert_matches_ledger(result.current, limited)
    panadol_row = result.current.by_offer.filter(pl.col("offer_id") == "panadol-coupon").row(
        0, named=True
    )
    # t1 cancelled; t3 kept 1 of 3 packs (334 of 1000); t5 1500; t6 kept 1 of 2 (333 of 666)
    assert panadol_row["discount_minor"] == 334 + 1500 + 333
    assert panadol_row["baskets"] == 3
    assert result.current.points_redeemed > 0  # t7's tender, less what its return gave back
    assert result.current.baskets == 6  # t1 cancelled
    assert result.current.versions() == {3: 3, 4: 3}  # t2, t3, t4 by 3; t5, t6, t7 by 4
    assert result.table()["change"].to_list() == [0] * 8
    # the offline basket was replayed at its lane time (a Saturday: double points), not when
    # the server recorded it (a Wednesday): its points are what the ledger says
    t5 = limited.filter(pl.col("transaction_id") == "t5").row(0, named=True)
    assert t5["recorded_at"] == T0 + 6 * H and t5["at"] == t5["lane_at"] == T0 - 4 * DAY
    again = reprice(COMPILED_LIMITED, limited).filter(pl.col("transaction_id") == "t5")
    assert again["points_earned"].to_list() == [t5["points_earned"]]
    late = limited.with_columns(
        pl.when(pl.col("transaction_id") == "t5")
        .then(pl.col("recorded_at"))
        .otherwise(pl.col("at"))
        .alias("at")
    )  # as if replayed when recorded
    assert reprice(COMPILED_LIMITED, late).filter(pl.col("transaction_id") == "t5")[
        "points_earned"
    ].to_list() == [t5["points_earned"] // 2]


def test_a_draft_without_the_budget_shows_what_the_budget_saved(limited):
    draft = rules_pb2.RuleSet()
    draft.CopyFrom(RULES_LIMITED)
    for offer in draft.offers:
        if offer.id == "panadol-coupon":
            offer.limits.budget_minor = 0
    compiled = engine.compile_rules(draft, CATALOGUE)
    result = compare(COMPILED_LIMITED, compiled, limited)
    row = result.offers().filter(pl.col("offer_id") == "panadol-coupon").row(0, named=True)
    # the history knows a coupon was presented only where it gave a discount (t1, t3, t5, t6):
    # once a month each still, t3 keeps 1 of 3 packs (500), t5 1500, t6 1 of 2 (500)
    assert row["draft_discount_minor"] == 500 + 1500 + 500
    assert row["current_discount_minor"] == 334 + 1500 + 333
    # with the coupon presented everywhere, c uses it on t4 (500) so not on t5, and d on t7
    everyone = compare(COMPILED_LIMITED, compiled, limited, assume_coupons=["panadol-coupon"])
    row = everyone.offers().filter(pl.col("offer_id") == "panadol-coupon").row(0, named=True)
    assert row["draft_discount_minor"] == 500 + 500 + 500 + 1500
    assert row["current_discount_minor"] == 334 + 1500 + 333  # the budget was spent by t7


def test_limits_carry_across_chunks(limited):
    """Pricing a basket at a time gives what pricing them all at once gives."""
    whole = compare(COMPILED_LIMITED, COMPILED_LIMITED, limited).current
    for chunk in (1, 2, 3):
        part = compare(COMPILED_LIMITED, COMPILED_LIMITED, limited, chunk=chunk).current
        assert part.by_offer.rows() == whole.by_offer.rows()
        assert part.versions() == whole.versions()
        assert (part.discount_minor, part.points_earned, part.points_redeemed, part.baskets) == (
            whole.discount_minor,
            whole.points_earned,
            whole.points_redeemed,
            whole.baskets,
        )


def test_basket_frames_read_a_history_in_any_row_order_as_in_ledger_order(limited):
    """Rows out of ledger order are put in it; the units cancels and returns took back land
    on their own lines."""
    lines, baskets = basket_frames(limited, ["panadol-coupon"])
    shuffled = limited.sample(fraction=1.0, shuffle=True, seed=7)
    assert shuffled["seq"].to_list() != limited["seq"].to_list()
    again_lines, again_baskets = basket_frames(shuffled, ["panadol-coupon"])
    assert again_lines.to_dicts() == lines.to_dicts()
    assert again_baskets.to_dicts() == baskets.to_dicts()
    assert baskets["seq"].is_sorted() and baskets["basket"].to_list() == list(range(len(baskets)))
    back = {
        (t, line): units
        for t, line, units in baskets.join(lines, on="basket")
        .filter(pl.col("returned") > 0)
        .select("transaction_id", "line_id", "returned")
        .iter_rows()
    }
    # t1 cancelled (3 units), r1 took 2 of t3's line 4, r2 1 of t7's line 2, r3 1 of t6's line 4
    assert back == {("t1", "4"): 3, ("t3", "4"): 2, ("t7", "2"): 1, ("t6", "4"): 1}
    assert baskets.filter(pl.col("cancelled"))["transaction_id"].to_list() == ["t1"]
