"""History replay on Dask: simulation and targeting in one process, then on 1 and 2 workers.

    python -m benchmarks.dask_replay [--members 20000] [--months 6] [--baskets 300000]
                                     [--workers 1,2]

On a synthetic history of the demo catalogue (engine.analytics.history.generate_history):

- *simulation*: the demo programme against the draft (examples/draft.yaml) with one assumed
  wallet coupon, over ``--baskets`` committed baskets (engine.analytics.simulate.compare, then
  server.analytics.dask_replay.compare_on);
- *targeting*: segments, cycles, value and ABC of ``--members`` members over ``--months``
  (category_profiles and member_values, then dask_replay.profile_on).

Each cluster is a distributed.LocalCluster of worker processes (one thread each; the batch
kernel inside a worker still uses numba's threads) on loopback, started and warmed up (a
small run, so the workers have imported and loaded the compiled kernels) before the clock
starts; its start-up is reported apart. Every Dask result is checked equal to the
single-process one. Results go to benchmarks/results/dask_replay.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

import engine
from benchmarks.suite import machine_info
from engine.analytics.history import generate_history
from engine.analytics.playbook import load_playbook
from engine.analytics.simulate import compare
from engine.analytics.targeting import category_profiles, member_values
from server.analytics.dask_replay import compare_on, dask_client, profile_on
from server.cli.analytics import demo_products

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
OUT = Path(__file__).resolve().parent / "results" / "dask_replay.json"
ASSUMED = ["care-600"]


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def same_scores(a: Any, b: Any) -> bool:
    return bool(
        a.current.discount_minor == b.current.discount_minor
        and a.draft.discount_minor == b.draft.discount_minor
        and a.table().equals(b.table())
        and a.offers().equals(b.offers())
        and (a.current.basket_discounts == b.current.basket_discounts).all()
        and (a.draft.basket_discounts == b.draft.basket_discounts).all()
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--members", type=int, default=20_000, help="targeting: members")
    p.add_argument("--months", type=int, default=6)
    p.add_argument("--baskets", type=int, default=300_000, help="simulation: baskets")
    p.add_argument("--workers", default="1,2", help="cluster sizes to measure")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    catalogue, frame = demo_products()
    current = engine.compile_rules(engine.load_rules(EXAMPLES / "watsons.yaml"), catalogue)
    draft = engine.compile_rules(engine.load_rules(EXAMPLES / "draft.yaml"), catalogue)
    engine.warm_up()
    r: dict[str, Any] = {"machine": machine_info()}
    r["date"] = datetime.now(UTC).isoformat(timespec="seconds")

    # ~28 baskets per member over 6 months in the synthetic history
    sim_history = generate_history(frame, members=max(50, a.baskets // 26), months=6)
    keep = sim_history.select("seq").unique().sort("seq").head(a.baskets)
    sim_history = sim_history.join(keep, on="seq", how="semi")
    tgt_history = generate_history(frame, members=a.members, months=a.months)
    config = load_playbook(EXAMPLES / "playbook.yaml").targeting
    small = sim_history.filter(pl.col("seq") <= 2000)

    one, sim_s = timed(compare, current, draft, sim_history, ASSUMED)
    (profiles, values), tgt_s = timed(
        lambda: (category_profiles(tgt_history, config), member_values(tgt_history, config))
    )
    n_b = sim_history["seq"].n_unique()
    r["simulation"] = {
        "baskets": n_b,
        "lines": sim_history.height,
        "single_process_s": round(sim_s, 2),
    }
    r["targeting"] = {
        "members": a.members,
        "months": a.months,
        "lines": tgt_history.height,
        "single_process_s": round(tgt_s, 2),
    }
    print(json.dumps(r["simulation"]), json.dumps(r["targeting"]), sep="\n", flush=True)
    for n in (int(x) for x in a.workers.split(",")):
        start = time.perf_counter()
        with dask_client(f"local:{n}") as client:
            compare_on(client, current, draft, small, ASSUMED)  # warm-up: imports, kernels
            profile_on(client, small, config)
            started = time.perf_counter() - start
            on, s = timed(compare_on, client, current, draft, sim_history, ASSUMED)
            (p2, v2), t = timed(profile_on, client, tgt_history, config)
        assert same_scores(one, on), f"simulation on {n} workers differs"
        assert p2.equals(profiles) and v2.equals(values), f"targeting on {n} workers differs"
        r["simulation"][f"workers_{n}_s"] = round(s, 2)
        r["targeting"][f"workers_{n}_s"] = round(t, 2)
        r[f"cluster_{n}_start_and_warm_up_s"] = round(started, 2)
        print(json.dumps({"workers": n, "simulation_s": s, "targeting_s": t}), flush=True)
    r["load_average_end"] = list(os.getloadavg())
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
