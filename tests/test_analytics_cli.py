"""The analytics commands end to end on a small demo: history, simulate, target, ledger
export, reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

from server.cli.main import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("analytics")
    assert main(["demo", "--data-dir", str(d / "data"), "--members", "300"]) == 0
    assert (
        main(
            [
                "demo",
                "history",
                "--out",
                str(d / "h.parquet"),
                "--members",
                "300",
                "--months",
                "3",
                "--rules",
                str(EXAMPLES / "watsons.yaml"),
                "--catalogue-out",
                str(d / "cat.parquet"),
            ]
        )
        == 0
    )
    return d


def test_demo_history_is_priced_under_the_programme(demo):
    h = pl.read_parquet(demo / "h.parquet")
    assert h["member_id"].n_unique() > 250 and h["at"].dt.month().n_unique() >= 3
    assert h["discount_minor"].sum() > 0
    assert (h["gross_minor"] - h["discount_minor"] == h["net_minor"]).all()
    assert set(h["tier"]) == {"member", "vip", "vip-gold"}


def test_simulate_prints_the_comparison_and_draws_the_chart(demo, capsys):
    assert (
        main(
            [
                "simulate",
                "--rules",
                str(EXAMPLES / "draft.yaml"),
                "--history",
                str(demo / "h.parquet"),
                "--data-dir",
                str(demo / "data"),
                "--catalogue",
                str(demo / "cat.parquet"),
                "--assume-coupon",
                "care-600",
                "--chart",
                str(demo / "sim.png"),
                "--out",
                str(demo / "sim.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "max_basket_discount_minor" in out and "care-600" in out
    baskets = pl.read_parquet(demo / "h.parquet")["seq"].n_unique()
    assert f"baskets by the rule-set version that priced them (0 = unknown): v0: {baskets:,}" in out
    assert (demo / "sim.png").read_bytes()[:4] == b"\x89PNG"
    offers = pl.read_csv(demo / "sim.csv")
    care = offers.filter(pl.col("offer_id") == "care-600").row(0, named=True)
    assert care["current_discount_minor"] == 0 < care["draft_discount_minor"]


def test_a_chart_without_matplotlib_says_which_extra_to_install(demo, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    args = ["simulate", "--rules", str(EXAMPLES / "draft.yaml")]
    args += ["--history", str(demo / "h.parquet"), "--data-dir", str(demo / "data")]
    args += ["--catalogue", str(demo / "cat.parquet"), "--chart", str(demo / "none.png")]

    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--chart: drawing charts needs matplotlib" in err and "loyalty-engine[plots]" in err
    assert not (demo / "none.png").exists()


def test_target_then_reports(demo, capsys, monkeypatch):
    args = [
        "target",
        "--history",
        str(demo / "h.parquet"),
        "--playbook",
        str(EXAMPLES / "playbook.yaml"),
        "--data-dir",
        str(demo / "data"),
        "--run-id",
        "r1",
        "--out",
        str(demo / "plan.parquet"),
        "--rules",
        str(EXAMPLES / "draft.yaml"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "run r1" in out and "care-trial" in out
    plan = pl.read_parquet(demo / "plan.parquet")
    issued = (plan["status"] == "issued").sum()
    assert issued > 0 and {"holdout", "no_consent"} <= set(plan["status"])
    assert main(args) == 0  # again: same coupons, nothing new
    assert (pl.read_parquet(demo / "plan.parquet")["status"] == "issued").sum() == issued

    assert (
        main(
            [
                "ledger",
                "export",
                "--to",
                str(demo / "ledger.parquet"),
                "--data-dir",
                str(demo / "data"),
            ]
        )
        == 0
    )
    assert "0 ledger entries" in capsys.readouterr().out  # the demo has no checkouts yet
    assert (
        main(
            [
                "reports",
                "settlement",
                "--history",
                str(demo / "h.parquet"),
                "--out",
                str(demo / "s.csv"),
                "--lines",
                str(demo / "sl.parquet"),
            ]
        )
        == 0
    )
    settled = pl.read_csv(demo / "s.csv")
    assert (
        settled["discount_minor"].sum()
        == pl.read_parquet(demo / "h.parquet")["discount_minor"].sum()
    )
    monkeypatch.setenv("LOYALTY_ANON_SECRET", "s3cret")
    assert (
        main(
            [
                "reports",
                "extract",
                "--history",
                str(demo / "h.parquet"),
                "--vendor",
                "gsk",
                "--out",
                str(demo / "x.csv"),
                "--data-dir",
                str(demo / "data"),
            ]
        )
        == 0
    )
    extract = pl.read_csv(demo / "x.csv")
    assert len(extract) > 0 and "member_id" not in extract.columns
    assert not extract["customer_key"].cast(pl.String).str.starts_with("M1").any()
    assert (
        main(
            [
                "reports",
                "campaign",
                "--history",
                str(demo / "h.parquet"),
                "--plan",
                str(demo / "plan.parquet"),
                "--as-of",
                "2026-06-01",
                "--playbook",
                str(EXAMPLES / "playbook.yaml"),
                "--out",
                str(demo / "c.parquet"),
            ]
        )
        == 0
    )
    perf = pl.read_parquet(demo / "c.parquet")
    assert set(perf["campaign_id"]) <= {"care-trial", "panadol-keep", "olay-heavy"}
    assert (perf["treated"] > 0).all()


def test_bad_input_is_one_line_and_status_2(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOYALTY_ANON_SECRET", raising=False)
    assert (
        main(
            [
                "reports",
                "extract",
                "--history",
                str(demo / "h.parquet"),
                "--vendor",
                "gsk",
                "--out",
                str(tmp_path / "x.csv"),
                "--all-consented",
            ]
        )
        == 2
    )
    assert "a secret is required" in capsys.readouterr().err
    bad = tmp_path / "p.yaml"
    bad.write_text("campaigns:\n  - {id: x, category: c, offers: [{offer_id: o}]}\n")
    assert (
        main(
            [
                "target",
                "--history",
                str(demo / "h.parquet"),
                "--playbook",
                str(bad),
                "--data-dir",
                str(tmp_path / "d"),
            ]
        )
        == 2
    )
    assert "campaigns[0].offers[0].value_minor: is required" in capsys.readouterr().err
    assert (
        main(
            [
                "target",
                "--history",
                str(demo / "h.parquet"),
                "--playbook",
                str(EXAMPLES / "playbook.yaml"),
                "--rules",
                str(EXAMPLES / "watsons.yaml"),
                "--data-dir",
                str(tmp_path / "d"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "care-trial: offer 'care-300' is not in" in err


def test_the_analytics_benchmark_runs_small(tmp_path):
    from benchmarks.analytics import main as bench

    out = tmp_path / "analytics.json"
    assert (
        bench(
            ["--members", "300", "--baskets", "3000", "--store-members", "100", "--out", str(out)]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert r["targeting"]["members"] == 300 and r["simulation"]["baskets"] == 3000
    assert r["targeting_into_store"]["coupons_issued"] > 0


def test_target_and_ledger_export_on_the_redis_store(demo, redis_url, capsys):
    from server.store import Consent, MemberProfile, open_store
    from tests.store_fixtures import T0, checkout

    store = open_store("redis", url=redis_url)
    try:
        h = pl.read_parquet(demo / "h.parquet")
        for m in h["member_id"].unique().to_list():
            store.upsert_member(MemberProfile(m, tier="member", consent=Consent(True, True)), T0)
        checkout(store, "t1", [("1", "PANADOL-20", 2, 2680)], None)
        assert (
            main(
                [
                    "target",
                    "--history",
                    str(demo / "h.parquet"),
                    "--playbook",
                    str(EXAMPLES / "playbook.yaml"),
                    "--redis-url",
                    redis_url,
                    "--run-id",
                    "r1",
                    "--out",
                    str(demo / "plan-redis.parquet"),
                ]
            )
            == 0
        )
        plan = pl.read_parquet(demo / "plan-redis.parquet")
        chosen = plan.filter(pl.col("status") == "issued").row(0, named=True)
        ids = [c.coupon_id for c in store.get_member(chosen["member_id"], T0).wallet]
        assert f"r1:{chosen['campaign_id']}:{chosen['member_id']}" in ids
        assert (
            len(ids)
            == (plan.filter(pl.col("member_id") == chosen["member_id"])["status"] == "issued").sum()
        )
        assert (
            main(
                [
                    "ledger",
                    "export",
                    "--to",
                    str(demo / "redis-ledger.parquet"),
                    "--redis-url",
                    redis_url,
                    "--catalogue",
                    str(EXAMPLES / "catalogue.csv"),
                ]
            )
            == 0
        )
        ledger = pl.read_parquet(demo / "redis-ledger.parquet")
        assert ledger.select("entry_id", "sku", "brand").rows() == [("t1", "PANADOL-20", "panadol")]
    finally:
        store.close()
