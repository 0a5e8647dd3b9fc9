"""History replay on Dask (server.analytics.dask_replay): simulation and targeting on a real
local cluster of 2 worker processes give exactly what the single-process run gives."""

from __future__ import annotations

import ast
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import engine
from engine.analytics import targeting
from engine.analytics.history import conform, generate_history
from engine.analytics.playbook import load_playbook
from engine.analytics.simulate import Scored, compare, reprice
from engine.errors import InvalidInput
from engine.pricing.rules import load_rules
from loyalty.v1 import rules_pb2
from server.analytics.dask_replay import (
    DaskTarget,
    compare_on,
    dask_client,
    parse_dask,
    partition,
    profile_on,
)
from server.cli.analytics import demo_products
from server.cli.main import main

distributed = pytest.importorskip("distributed")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ASSUMED = ["panadol-coupon", "olay-skincare-coupon"]


def with_reversals(history: pl.DataFrame) -> pl.DataFrame:
    """Every 11th basket a guest's; every 17th cancelled and every 13th partly returned an
    hour later, at their own place in the ledger (seq)."""
    h = history.with_columns(pl.col("seq") * 10)
    n = pl.col("seq") // 10
    h = h.with_columns(
        pl.when(n % 11 == 0).then(None).otherwise(pl.col("member_id")).alias("member_id")
    )
    cancels = h.filter(n % 17 == 0).with_columns(
        pl.lit("cancel").alias("kind"),
        pl.col("seq") + 5,
        pl.col("at") + timedelta(hours=1),
    )
    returns = h.filter((n % 13 == 0) & (pl.col("line_no") == 0)).with_columns(
        pl.lit("return").alias("kind"),
        pl.col("seq") + 3,
        pl.format("{}-r", "transaction_id").alias("entry_id"),
        pl.col("at") + timedelta(hours=1),
        pl.lit(1, pl.Int64).alias("quantity"),
        (pl.col("gross_minor") // pl.col("quantity")).alias("gross_minor"),
        (pl.col("net_minor") // pl.col("quantity")).alias("net_minor"),
    )
    return conform(pl.concat([h, cancels, returns]).sort("seq", "line_no")).collect()


def compiled(path: str, limits: dict[str, rules_pb2.Limits] | None = None) -> engine.CompiledRules:
    """The rule set with the offers' cross-transaction limits replaced by ``limits`` (none
    when not named)."""
    rules = load_rules(str(EXAMPLES / path))
    for offer in rules.offers:
        offer.limits.per_member = offer.limits.total_uses = offer.limits.budget_minor = 0
        if limits and offer.id in limits:
            offer.limits.MergeFrom(limits[offer.id])
    return engine.compile_rules(rules, CATALOGUE)


CATALOGUE, FRAME = demo_products()
TIGHT = {
    "spend-ladder": rules_pb2.Limits(total_uses=40),
    "oral-care-10": rules_pb2.Limits(budget_minor=3000),
    "member-price-shampoo": rules_pb2.Limits(
        per_member=1, per_member_period=rules_pb2.Limits.MONTH
    ),
    "panadol-coupon": rules_pb2.Limits(per_member=1, budget_minor=20000),
    "olay-skincare-coupon": rules_pb2.Limits(total_uses=25, budget_minor=50000),
}


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    raw = generate_history(FRAME, members=400, months=3, seed=11)
    return with_reversals(reprice(compiled("watsons.yaml", TIGHT), raw))


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # its HTTP server (health, metrics) on a free loopback port
    ) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster, timeout=60) as c:
        yield c


def assert_same(a: Scored, b: Scored) -> None:
    for name in (
        "baskets",
        "baskets_affected",
        "gross_minor",
        "discount_minor",
        "points_earned",
        "points_redeemed",
        "points_liability_minor",
        "max_basket_discount_minor",
        "max_basket_transaction_id",
    ):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("by_funder", "by_offer", "by_version"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert np.array_equal(a.basket_discounts, b.basket_discounts)


def test_the_partitions_keep_members_and_transactions_together_and_are_stable(history):
    parts = partition(history, 3)
    assert sum(len(p) for p in parts) == len(history) and all(len(p) for p in parts)
    owners = pl.concat(
        [
            p.select("member_id", "transaction_id").with_columns(pl.lit(i).alias("p"))
            for i, p in enumerate(parts)
        ]
    )
    assert (
        owners.drop_nulls("member_id").group_by("member_id").agg(pl.col("p").n_unique())["p"] == 1
    ).all()
    assert (owners.group_by("transaction_id").agg(pl.col("p").n_unique())["p"] == 1).all()
    # crc32 of the member id: the same split in every process and version
    again = partition(history.sample(fraction=1.0, shuffle=True, seed=3).sort("seq", "line_no"), 3)
    assert all(a.equals(b) for a, b in zip(parts, again, strict=True))


def test_a_simulation_without_limited_offers_on_dask_is_the_single_process_one(history, client):
    current, draft = compiled("watsons.yaml"), compiled("draft.yaml")
    one = compare(current, draft, history)
    on = compare_on(client, current, draft, history)
    assert one.current.discount_minor > 0 and one.draft.baskets_affected > 0
    assert_same(one.current, on.current)
    assert_same(one.draft, on.draft)


def test_limits_total_uses_budget_and_per_member_on_dask_are_the_single_process_ones(
    history, client
):
    current, draft = compiled("watsons.yaml", TIGHT), compiled("draft.yaml", TIGHT)
    one = compare(current, draft, history, ASSUMED, chunk=700)
    # the limits bind: without them the draft would give more
    free = compare(compiled("watsons.yaml"), compiled("draft.yaml"), history, ASSUMED)
    assert free.draft.discount_minor > one.draft.discount_minor
    for parts in (2, 5):  # more partitions than workers, and chunks within them
        on = compare_on(client, current, draft, history, ASSUMED, chunk=300, parts=parts)
        assert_same(one.current, on.current)
        assert_same(one.draft, on.draft)
        assert on.offers().equals(one.offers())


def test_targeting_on_dask_is_the_single_process_one(history, client):
    config = load_playbook(EXAMPLES / "playbook.yaml").targeting
    profiles = targeting.category_profiles(history, config)
    values = targeting.member_values(history, config)
    on_profiles, on_values = profile_on(client, history, config, parts=3)
    assert len(values) > 300 and set(values["abc"]) == {"A", "B", "C", "D"}
    assert on_profiles.equals(profiles)
    assert on_values.equals(values)


def test_simulate_cli_with_a_local_cluster_of_2_prints_the_same_figures(history, tmp_path, capsys):
    path = tmp_path / "h.parquet"
    history.write_parquet(path)
    args = [
        "simulate",
        "--rules",
        str(EXAMPLES / "draft.yaml"),
        "--current",
        str(EXAMPLES / "watsons.yaml"),
        "--history",
        str(path),
    ]
    assert main([*args, "--out", str(tmp_path / "one.parquet")]) == 0
    one = capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "dask.parquet"), "--dask", "local:2"]) == 0
    assert capsys.readouterr().out == one
    a, b = pl.read_parquet(tmp_path / "one.parquet"), pl.read_parquet(tmp_path / "dask.parquet")
    assert a.equals(b)


def test_target_cli_on_a_running_scheduler_plans_the_same(history, cluster, tmp_path, capsys):
    path = tmp_path / "h.parquet"
    history.write_parquet(path)
    args = [
        "target",
        "--history",
        str(path),
        "--playbook",
        str(EXAMPLES / "playbook.yaml"),
        "--data-dir",
        str(tmp_path / "data"),
        "--dry-run",
    ]
    assert main([*args, "--out", str(tmp_path / "one.parquet")]) == 0
    address = cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    assert main([*args, "--out", str(tmp_path / "dask.parquet"), "--dask", address]) == 0
    capsys.readouterr()
    a, b = pl.read_parquet(tmp_path / "one.parquet"), pl.read_parquet(tmp_path / "dask.parquet")
    assert len(a) and a.equals(b)


def test_a_tcp_address_reaches_the_same_cluster(cluster, history):
    with dask_client(cluster.scheduler_address) as c:
        assert len(c.scheduler_info()["workers"]) == 2


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("local", DaskTarget()),
        ("local:2", DaskTarget(workers=2)),
        ("tcp://127.0.0.1:8786", DaskTarget(address="tcp://127.0.0.1:8786")),
        ("tcp://sched.internal:8786", DaskTarget(address="tcp://sched.internal:8786")),
    ],
)
def test_dask_values(value, target):
    assert parse_dask(value) == target


@pytest.mark.parametrize(
    "value", ["", "lokal", "local:0", "local:x", "tcp://host", "127.0.0.1:8786", "tcp://h:99999"]
)
def test_a_bad_dask_value_is_a_clear_cli_error(value, capsys):
    with pytest.raises(InvalidInput, match="--dask"):
        parse_dask(value)
    args = ["simulate", "--rules", "r.yaml", "--history", "h.parquet", "--dask", value]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--dask" in err and ("local, local:N or tcp://HOST:PORT" in err or "1..256" in err)


def test_without_the_extra_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InvalidInput, match=r"loyalty-engine\[dask\]"), dask_client("local:1"):
        pass


def test_the_engine_never_imports_dask():
    root = Path(__file__).resolve().parent.parent / "engine"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] in ("dask", "distributed") for n in names), path
