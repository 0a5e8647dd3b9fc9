"""Analytics benchmark: targeting over members x months of history, simulation over baskets.

    python -m benchmarks.analytics [--members 100000] [--baskets 1000000] [--store-members 5000]

Measures, on a synthetic history of the demo catalogue (engine.analytics.history.generate_history):

- *targeting*: segments, purchase cycles, ABC, lapsed, tags and the issue plan for every member
  (pure polars, read from Parquet), the figure docs/design.md §7 asks to finish in minutes for
  1,000,000 members x 6 months;
- *targeting into the store*: the same run writing tags and wallet coupons into an embedded
  store (per-member store calls), on ``--store-members`` members;
- *simulation*: the demo programme against the draft (examples/draft.yaml) over ``--baskets``
  committed baskets, both scored with the batch kernel (engine.analytics.simulate.compare).

Sizes that do not fit the run are extrapolated linearly from the measured rate (stated as
such in the output). Results go to benchmarks/results/analytics.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

import engine
from benchmarks.suite import machine_info
from engine.analytics.history import generate_history, read_history
from engine.analytics.playbook import load_playbook, plan
from engine.analytics.simulate import compare
from engine.analytics.targeting import category_profiles, member_tags, member_values
from server.cli.analytics import demo_products

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
OUT = Path(__file__).resolve().parent / "results" / "analytics.json"


def timed(fn, *args, **kw):
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def targeting(path: Path, members: int) -> dict:
    playbook = load_playbook(EXAMPLES / "playbook.yaml")
    t0 = time.perf_counter()
    history = read_history(str(path)).collect()  # read once; every step then runs in memory
    t_read = time.perf_counter()
    profiles = category_profiles(history, playbook.targeting)
    t1 = time.perf_counter()
    values = member_values(history, playbook.targeting)
    tags = member_tags(profiles, values)
    t2 = time.perf_counter()
    consent = values.select(
        "member_id", pl.lit(True).alias("marketing"), pl.lit(True).alias("automated_decisions")
    )
    planned = plan(playbook, profiles, values, consent, datetime(2026, 11, 1, tzinfo=UTC))
    t3 = time.perf_counter()
    total = t3 - t0
    return {
        "members": members,
        "lines": history.height,
        "profiles": profiles.height,
        "tagged": tags.height,
        "plan_rows": planned.height,
        "read_s": round(t_read - t0, 2),
        "segments_s": round(t1 - t_read, 2),
        "values_tags_s": round(t2 - t1, 2),
        "plan_s": round(t3 - t2, 2),
        "total_s": round(total, 2),
        "extrapolated_1m_members_s": round(total * 1_000_000 / members, 1),
    }


def targeting_into_store(frame: pl.DataFrame, members: int) -> dict:
    from server.analytics.targeting import run_targeting
    from server.cli.demo import demo_members
    from server.store import EmbeddedStore

    history = generate_history(frame, members=members, months=6)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as d:
        store = EmbeddedStore(Path(d))
        for p in demo_members(members):
            store.upsert_member(p, now)
        result, seconds = timed(
            run_targeting, store, history, load_playbook(EXAMPLES / "playbook.yaml"), "bench", now
        )
        store.close()
    issued = int((result.plan["status"] == "issued").sum())
    return {
        "members": members,
        "coupons_issued": issued,
        "tagged": result.tagged,
        "total_s": round(seconds, 2),
        "per_member_ms": round(1000 * seconds / members, 3),
        "extrapolated_1m_members_s": round(seconds * 1_000_000 / members, 1),
    }


def simulation(catalogue: engine.Catalogue, frame: pl.DataFrame, baskets: int) -> dict:
    current = engine.compile_rules(engine.load_rules(EXAMPLES / "watsons.yaml"), catalogue)
    draft = engine.compile_rules(engine.load_rules(EXAMPLES / "draft.yaml"), catalogue)
    engine.warm_up()
    # ~28 baskets per member over 6 months in the synthetic history
    history = generate_history(frame, members=max(50, baskets // 26), months=6)
    keep = history.select("seq").unique().sort("seq").head(baskets)
    history = history.join(keep, on="seq", how="semi")
    n = history["seq"].n_unique()
    result, seconds = timed(compare, current, draft, history, ["care-600"])
    return {
        "baskets": n,
        "lines": history.height,
        "total_s": round(seconds, 2),
        "baskets_per_s_both_rule_sets": round(2 * n / seconds),
        "extrapolated_10m_baskets_s": round(seconds * 10_000_000 / n, 1),
        "discount_current_minor": result.current.discount_minor,
        "discount_draft_minor": result.draft.discount_minor,
    }


def run_targeting_part(r: dict, frame: pl.DataFrame, members: int, months: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "history.parquet"
        history, seconds = timed(generate_history, frame, members=members, months=months)
        history.write_parquet(path)
        r["history"] = {
            "members": members,
            "months": months,
            "lines": history.height,
            "baskets": history["seq"].n_unique(),
            "generate_s": round(seconds, 2),
        }
        del history
        r["targeting"] = targeting(path, members)
    print(json.dumps(r["history"]), json.dumps(r["targeting"]), sep="\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--members", type=int, default=100_000, help="targeting: members")
    p.add_argument("--months", type=int, default=6)
    p.add_argument("--baskets", type=int, default=1_000_000, help="simulation: baskets")
    p.add_argument(
        "--store-members",
        type=int,
        default=5_000,
        help="targeting into the embedded store: members",
    )
    p.add_argument(
        "--parts",
        default="targeting,store,simulation",
        help="which parts to run; the others keep their earlier figures",
    )
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    parts = set(a.parts.split(","))
    catalogue, frame = demo_products()
    r: dict = json.loads(a.out.read_text()) if a.out.exists() else {}
    r.update(machine=machine_info(), date=datetime.now(UTC).isoformat(timespec="seconds"))
    if "targeting" in parts:
        run_targeting_part(r, frame, a.members, a.months)
    if "store" in parts:
        r["targeting_into_store"] = targeting_into_store(frame, a.store_members)
        print(json.dumps(r["targeting_into_store"]), flush=True)
    if "simulation" in parts:
        r["simulation"] = simulation(catalogue, frame, a.baskets)
        print(json.dumps(r["simulation"]), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
