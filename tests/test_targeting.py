"""Targeting (engine.analytics.targeting) and playbooks (engine.analytics.playbook) on small
hand-built histories whose answers are known by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from engine.analytics.history import conform
from engine.analytics.playbook import PlaybookError, in_holdout, parse_playbook, plan, summary
from engine.analytics.targeting import (
    TargetingConfig,
    category_profiles,
    is_targeting_tag,
    member_tags,
    member_values,
)

START = datetime(2026, 9, 7, 10, 0, tzinfo=UTC)  # a Monday
AS_OF = datetime(2026, 11, 2, tzinfo=UTC)
# pain relief: two national brands (GSK) and the store brand (vendor "watsons")
PANADOL = ("PANADOL-20", "pain-relief", "panadol", "gsk", 2680)
FENBID = ("FENBID-10", "pain-relief", "fenbid", "gsk", 3190)
CARE = ("CARE-20", "pain-relief", "watsons-care", "watsons", 1290)
SHAMPOO = ("SHAMPOO-400", "hair-care", "pantene", "pg", 4590)


def history(*purchases: tuple[str, int, tuple, int]) -> pl.DataFrame:
    """``(member, day, product, quantity)`` -> one single-line basket per purchase."""
    rows = []
    for k, (member, day, (sku, category, brand, vendor, price), qty) in enumerate(purchases):
        rows.append(
            {
                "transaction_id": f"t{k}",
                "seq": k + 1,
                "member_id": member,
                "at": START + timedelta(days=day),
                "sku": sku,
                "category": category,
                "brand": brand,
                "vendor": vendor,
                "quantity": qty,
                "gross_minor": qty * price,
                "net_minor": qty * price,
            }
        )
    return conform(pl.DataFrame(rows)).collect()


def weekly(member: str, product: tuple, qty: int, weeks: int, first_day: int = 0) -> list:
    return [(member, first_day + 7 * w, product, qty) for w in range(weeks)]


# switcher: alternates Panadol and the store brand, 1 unit a fortnight (4 units)
# heavy store-brand buyer: 3 store-brand units every week for 8 weeks (24 units) + 1 Panadol
# light national buyer: 1 Fenbid unit twice (2 units)
# weekly buyer: 1 Panadol unit every Monday from day 0 to day 49 (8 units)
HAND_BUILT = history(
    ("switcher", 0, PANADOL, 1),
    ("switcher", 14, CARE, 1),
    ("switcher", 28, PANADOL, 1),
    ("switcher", 42, CARE, 1),
    *weekly("heavy", CARE, 3, 8),
    ("heavy", 3, PANADOL, 1),
    ("light", 5, FENBID, 1),
    ("light", 40, FENBID, 1),
    *weekly("weekly", PANADOL, 1, 8),
    ("weekly", 2, SHAMPOO, 1),
)


def profile(member: str, category: str = "pain-relief") -> dict:
    df = category_profiles(HAND_BUILT, TargetingConfig(), AS_OF)
    return df.filter((pl.col("member_id") == member) & (pl.col("category") == category)).row(
        0, named=True
    )


def test_a_clear_switcher_is_a_switcher():
    p = profile("switcher")
    assert p["store_share"] == 0.5
    assert p["behaviour"] == "switcher"
    assert p["tag"] == f"pain-relief:switcher-{p['usage']}"


def test_a_heavy_store_brand_buyer_is_store_high():
    p = profile("heavy")
    assert p["units"] == 25 and p["store_share"] == 24 / 25
    assert p["segment"] == "store-high"  # the most units of the four pain-relief buyers


def test_usage_tertiles_and_explicit_thresholds():
    # units 4 (switcher), 25 (heavy), 2 (light), 8 (weekly): ranks 2, 4, 1, 3 of 4
    by_rank = category_profiles(HAND_BUILT, TargetingConfig(), AS_OF).filter(
        pl.col("category") == "pain-relief"
    )
    assert dict(by_rank.select("member_id", "usage").iter_rows()) == {
        "heavy": "high",
        "light": "low",
        "switcher": "medium",
        "weekly": "high",
    }
    # 56 days of history: 2 units = 1.07/month, 4 = 2.14, 8 = 4.29, 25 = 13.4
    cfg = TargetingConfig(usage_thresholds={"pain-relief": (2.0, 10.0), "*": (100.0, 200.0)})
    fixed = category_profiles(HAND_BUILT, cfg, AS_OF)
    assert dict(
        fixed.filter(pl.col("category") == "pain-relief").select("member_id", "usage").iter_rows()
    ) == {"heavy": "high", "light": "low", "switcher": "medium", "weekly": "medium"}
    assert fixed.filter(pl.col("category") == "hair-care")["usage"].to_list() == ["low"]


def test_a_weekly_buyer_is_predicted_seven_days_after_the_last_purchase():
    p = profile("weekly")
    assert p["behaviour"] == "national"
    assert p["purchases"] == 8
    assert p["cycle_days"] == 7
    assert p["last_purchase"] == date(2026, 10, 26)
    assert p["next_purchase"] == date(2026, 11, 2)


def test_too_few_purchases_predict_nothing():
    p = profile("light")  # two purchases: below min_purchases = 3
    assert p["cycle_days"] is None and p["next_purchase"] is None
    assert profile("weekly", "hair-care")["next_purchase"] is None


def test_history_after_as_of_is_ignored():
    early = category_profiles(HAND_BUILT, TargetingConfig(), START + timedelta(days=22))
    weekly_row = (
        early.filter(pl.col("member_id") == "weekly")
        .filter(pl.col("category") == "pain-relief")
        .row(0, named=True)
    )
    assert weekly_row["purchases"] == 4  # days 0, 7, 14, 21
    assert weekly_row["next_purchase"] == date(2026, 10, 5)


def test_abc_classes_and_lapsed_members():
    values = member_values(HAND_BUILT, TargetingConfig(lapsed_days=30), AS_OF)
    spend = dict(values.select("member_id", "spend_minor").iter_rows())
    assert spend == {
        "heavy": 24 * 1290 + 2680,
        "weekly": 8 * 2680 + 4590,
        "switcher": 2 * 2680 + 2 * 1290,
        "light": 2 * 3190,
    }
    # total 73990: heavy 33640 is 45.5% (A); weekly starts at 45.5% < 50% (A); switcher
    # starts at 80.6% >= 80% (C); light at 91.4% < 95% (C)
    assert dict(values.select("member_id", "abc").iter_rows()) == {
        "heavy": "A",
        "weekly": "A",
        "switcher": "C",
        "light": "C",
    }
    lapsed = dict(values.select("member_id", "lapsed").iter_rows())
    # last purchases: heavy day 49, weekly 49, switcher 42, light 40; as of = day 56
    assert lapsed == {"heavy": False, "weekly": False, "switcher": False, "light": False}
    stale = member_values(HAND_BUILT, TargetingConfig(lapsed_days=15), AS_OF)
    assert dict(stale.select("member_id", "lapsed").iter_rows())["light"] is True
    assert dict(stale.select("member_id", "lapsed").iter_rows())["switcher"] is False


def test_member_tags_name_segments_value_class_and_lapsed():
    cfg = TargetingConfig(lapsed_days=15)
    tags = member_tags(
        category_profiles(HAND_BUILT, cfg, AS_OF), member_values(HAND_BUILT, cfg, AS_OF)
    )
    by_member = dict(tags.iter_rows())
    assert by_member["light"] == ["pain-relief:national-low", "value:C", "lapsed"]
    assert by_member["weekly"] == [
        "hair-care:national-high",
        "pain-relief:national-high",
        "value:A",
    ]
    assert all(is_targeting_tag(t) for ts in by_member.values() for t in ts)
    assert not is_targeting_tag("skincare-heavy") and not is_targeting_tag("vip:gold")


PLAYBOOK = {
    "holdout_bps": 0,
    "window": {"before_days": 2, "after_days": 5, "default_days": 10},
    "budgets": {"gsk": 1500},
    "campaigns": [
        {
            "id": "care-trial",
            "category": "pain-relief",
            "funder": "retailer",
            "segments": ["national-high", "national-medium", "switcher-medium"],
            "value_bps": 1000,
            "personalised": True,
            "offers": [
                {"offer_id": "care-600", "value_minor": 600},
                {"offer_id": "care-300", "value_minor": 300},
            ],
        },
        {
            "id": "panadol-keep",
            "category": "pain-relief",
            "funder": "gsk",
            "segments": ["national-high", "switcher-medium", "store-high"],
            "personalised": False,
            "offers": [{"offer_id": "panadol-coupon", "value_minor": 500}],
        },
    ],
}
EVERYONE = pl.DataFrame(
    {
        "member_id": ["heavy", "light", "switcher", "weekly"],
        "marketing": [True, True, True, True],
        "automated_decisions": [True, True, True, True],
    }
)


def run_plan(playbook: dict = PLAYBOOK, consent: pl.DataFrame = EVERYONE) -> pl.DataFrame:
    pb = parse_playbook(playbook)
    return plan(
        pb,
        category_profiles(HAND_BUILT, pb.targeting, AS_OF),
        member_values(HAND_BUILT, pb.targeting, AS_OF),
        consent,
        AS_OF,
    )


def test_plan_values_follow_member_value_and_windows_follow_the_cycle():
    p = run_plan().filter(pl.col("campaign_id") == "care-trial")
    rows = {r["member_id"]: r for r in p.iter_rows(named=True)}
    assert set(rows) == {"weekly", "switcher"}  # heavy is store-high, light national-low
    # monthly value (55.6 days of history): weekly 26030 -> 14049 -> 10% = 1404 -> the 600
    # denomination; switcher 7940 -> 4285 -> 428 -> the 300 one
    assert (rows["weekly"]["offer_id"], rows["weekly"]["value_minor"]) == ("care-600", 600)
    assert (rows["switcher"]["offer_id"], rows["switcher"]["value_minor"]) == ("care-300", 300)
    # weekly: next purchase 2026-11-02 = as-of -> from as-of until 11-02 + 5 days (exclusive +1)
    assert rows["weekly"]["valid_from"] == AS_OF
    assert rows["weekly"]["valid_until"] == datetime(2026, 11, 8, tzinfo=UTC)
    # switcher: fortnightly from day 0, last day 42 (10-19) -> next 11-02 as well
    assert rows["switcher"]["predicted_next"] == date(2026, 11, 2)


def test_plan_without_a_cycle_uses_the_default_window_and_budget_goes_to_the_best_members():
    p = run_plan().filter(pl.col("campaign_id") == "panadol-keep")
    rows = {r["member_id"]: r for r in p.iter_rows(named=True)}
    assert set(rows) == {"heavy", "weekly", "switcher"}
    # gsk budget 1500 = three 500 coupons... ordered by value: heavy, weekly, switcher
    assert [rows[m]["status"] for m in ("heavy", "weekly", "switcher")] == ["issue"] * 3
    tight = run_plan({**PLAYBOOK, "budgets": {"gsk": 1000}}).filter(
        pl.col("campaign_id") == "panadol-keep"
    )
    assert dict(tight.select("member_id", "status").iter_rows()) == {
        "heavy": "issue",
        "weekly": "issue",
        "switcher": "over_budget",
    }


def test_a_member_with_no_known_cycle_gets_the_default_window():
    pb = parse_playbook(PLAYBOOK)
    profiles = category_profiles(HAND_BUILT, pb.targeting, AS_OF).with_columns(
        pl.lit(None, dtype=pl.Date).alias("next_purchase")
    )
    p = plan(pb, profiles, member_values(HAND_BUILT, pb.targeting, AS_OF), EVERYONE, AS_OF)
    assert p.height > 0
    # from as-of for default_days (10 here), not the 3-day floor of a predicted window
    assert set(p["valid_from"].to_list()) == {AS_OF}
    assert set(p["valid_until"].to_list()) == {AS_OF + timedelta(days=10)}


def test_plan_respects_consent():
    consent = pl.DataFrame(
        {
            "member_id": ["switcher", "weekly", "heavy"],
            "marketing": [True, False, True],
            "automated_decisions": [False, True, True],
        }
    )
    p = run_plan(consent=consent)
    status = {(r["campaign_id"], r["member_id"]): r["status"] for r in p.iter_rows(named=True)}
    # switcher refused automated decisions: no personalised coupon, but the mass one
    assert status[("care-trial", "switcher")] == "no_consent"
    assert status[("panadol-keep", "switcher")] == "issue"
    # weekly refused marketing: nothing at all
    assert status[("care-trial", "weekly")] == "no_consent"
    assert status[("panadol-keep", "weekly")] == "no_consent"
    assert status[("panadol-keep", "heavy")] == "issue"
    table = summary(p)
    assert table["coupons"].sum() == 2 and table["no_consent"].sum() == 3


def test_holdout_is_stable_and_about_the_share_asked():
    members = [f"M{i}" for i in range(4000)]
    chosen = [m for m in members if in_holdout("c1", m, 1000)]
    assert 300 < len(chosen) < 500
    assert chosen == [m for m in members if in_holdout("c1", m, 1000)]
    assert chosen != [m for m in members if in_holdout("c2", m, 1000)]


def test_holdout_members_get_no_coupon():
    p = run_plan({**PLAYBOOK, "holdout_bps": 9999})
    assert set(p["status"]) == {"holdout"} and set(p["group"]) == {"holdout"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"campaigns": []}, "campaigns: at least one campaign is required"),
        (
            {
                "campaigns": [
                    {
                        "id": "x",
                        "category": "c",
                        "segments": ["loyal-high"],
                        "offers": [{"offer_id": "o", "value_minor": 1}],
                    }
                ]
            },
            "campaigns[0].segments: unknown segment 'loyal-high'",
        ),
        (
            {"campaigns": [{"id": "x", "category": "c", "offers": []}]},
            "campaigns[0].offers: is required",
        ),
        ({"holdout_bps": 10000}, "holdout_bps: must be 0..9999"),
    ],
)
def test_bad_playbooks_name_the_field(change, message):
    with pytest.raises(PlaybookError) as exc:
        parse_playbook({**PLAYBOOK, **change})
    assert str(exc.value).startswith(message)
