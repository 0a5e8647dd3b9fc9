"""H1: a member after 1,000 commits (docs/design.md §8: a commit ≤ 1.3× the first; state ≤ 2 KB).

    python -m benchmarks.member_growth [--commits 1000] [--gap-hours 9] [--quick]

On both stores (SQLite in a temporary directory; Redis on a private redis-server started on a
free port) and with both lot buckets (DAY, MONTH), enrols one member of the demo programme
(examples/watsons.yaml) and commits ``--commits`` small baskets for it through the store API,
priced by the engine on the state the store hands over, one every ``--gap-hours`` of store time
(every tenth pays with all the points it can). Reports the first commits' and the last commits'
time (median of 5 each) and, interleaved so that machine load hits both alike, the grown
member's commit against a fresh member's first commit (median of 21 pairs), the member's
state (Redis: STRLEN of the member key; SQLite: its lot and spend rows) and ``get_member``
time (median of 50) after the first and the last commit.
Also times decoding and encoding one typical member document, msgpack against the JSON form
it replaced. Writes benchmarks/results/member_growth.{json,md} (not with --quick).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import engine
from engine.pricing.types import Basket, Line
from loyalty.v1 import rules_pb2
from server.store import EmbeddedStore, MemberProfile, PricingState, Store
from server.store.checkout import commit
from server.store.policy import Policy
from server.store.redis.docs import MemberDoc
from server.store.redis.process import RedisProcess
from server.store.redis.store import RedisStore
from server.store.snapshot import to_us

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
T0 = datetime(2025, 3, 12, 4, 0, tzinfo=UTC)  # a Wednesday, noon in Shanghai
LINES = (Line("1", "RICE-5KG", 1, 4500),)  # a small basket: 4500, 4 base points
RUNS = 5  # commits in each median
READS = 50  # get_member calls in each median
PAIRS = 21  # interleaved commits (grown member, fresh member) after the run
GOAL_RATIO, GOAL_BYTES = 1.3, 2048


def _programme(bucket: int) -> tuple[engine.CompiledRules, Policy]:
    rules = engine.load_rules(ROOT / "examples" / "watsons.yaml")
    rules.points.lot_bucket = bucket  # type: ignore[assignment]
    compiled = engine.compile_rules(rules, engine.load_catalogue(ROOT / "examples/catalogue.csv"))
    return compiled, Policy.from_rules(rules)


def _commit(
    store: Store, compiled: engine.CompiledRules, policy: Policy, tx: str, member: str, at: datetime
) -> float:
    """One commit priced on the store's fresh state; its wall time in milliseconds."""
    basket = Basket(LINES, at, "SH-001", "pos")
    redeem = -1 if tx.endswith("9") else 0

    def price_fn(state: PricingState) -> engine.PricingResult:
        return engine.price(
            compiled, basket, state.member, coupons=state.coupons, limits=state.limits,
            redeem_points=redeem,
        )  # fmt: skip

    t0 = time.perf_counter()
    commit(store, tx, tx, price_fn, at, policy=policy, basket=basket, member_id=member)
    return (time.perf_counter() - t0) * 1000


def _state(store: Store) -> dict[str, int]:
    if isinstance(store, RedisStore):
        return {"member_key_bytes": int(store.client.strlen(store.keys.member("m1")))}
    assert isinstance(store, EmbeddedStore)
    with sqlite3.connect(store.path) as db:
        (lots,) = db.execute("SELECT COUNT(*) FROM point_lots WHERE member_id = 'm1'").fetchone()
        (spend,) = db.execute("SELECT COUNT(*) FROM member_spend WHERE member_id = 'm1'").fetchone()
    return {"lot_rows": int(lots), "spend_rows": int(spend)}


def _get_member_ms(store: Store, at: datetime) -> float:
    times = []
    for _ in range(READS):
        t0 = time.perf_counter()
        store.get_member("m1", at)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def run_one(store: Store, bucket: int, commits: int, gap: timedelta) -> dict[str, Any]:
    compiled, policy = _programme(bucket)
    for m in ("warm", "m1"):
        store.upsert_member(MemberProfile(m, tier="member"), T0)
    for k in range(RUNS):  # scripts loaded, kernels compiled, caches warm
        _commit(store, compiled, policy, f"warm-{k}", "warm", T0)
    times, first_state, first_read = [], {}, 0.0
    for i in range(commits):
        at = T0 + i * gap
        times.append(_commit(store, compiled, policy, f"tx-{i}", "m1", at))
        if i == 0:
            first_state, first_read = _state(store), _get_member_ms(store, at)
    last = T0 + (commits - 1) * gap
    member = store.get_member("m1", last)
    first_ms = statistics.median(times[:RUNS])
    last_ms = statistics.median(times[-RUNS:])
    state = _state(store)
    # The same comparison, interleaved so that machine load hits both alike: a commit of the
    # grown member, then the first commit of a fresh member, at the same store time.
    grown, fresh = [], []
    for k in range(PAIRS):
        at = last + (k + 1) * gap
        grown.append(_commit(store, compiled, policy, f"more-{k}", "m1", at))
        store.upsert_member(MemberProfile(f"fresh-{k}", tier="member"), at)
        fresh.append(_commit(store, compiled, policy, f"fresh-{k}", f"fresh-{k}", at))
    paired = statistics.median(grown) / statistics.median(fresh)
    return {
        "bucket": rules_pb2.PointsProgram.LotBucket.Name(bucket),
        "commits": commits,
        "first_commit_ms": round(first_ms, 3),
        "last_commit_ms": round(last_ms, 3),
        "ratio": round(last_ms / first_ms, 2),
        "grown_commit_ms": round(statistics.median(grown), 3),
        "fresh_commit_ms": round(statistics.median(fresh), 3),
        "paired_ratio": round(paired, 2),
        "state_after_first": first_state,
        "state_after_last": state,
        "lots_after_last": len(member.lots),
        "get_member_ms_after_first": first_read,
        "get_member_ms_after_last": _get_member_ms(store, last),
        "ratio_met": paired <= GOAL_RATIO,
        "bytes_met": state.get("member_key_bytes", 0) <= GOAL_BYTES,
    }


@contextmanager
def _stores(kind: str) -> Iterator[Callable[[], Store]]:
    """Fresh empty stores of one kind, each on its own data."""
    if kind == "redis":
        with RedisProcess() as server:
            opened: list[Store] = []

            def redis_store() -> Store:
                s = RedisStore(server.url)
                s.client.flushall()
                opened.append(s)
                return s

            yield redis_store
            for s in opened:
                s.close()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            count = iter(range(1_000_000))
            opened_e: list[Store] = []

            def embedded_store() -> Store:
                s = EmbeddedStore(Path(tmp) / str(next(count)))
                opened_e.append(s)
                return s

            yield embedded_store
            for s in opened_e:
                s.close()


def codec_timing(doc_raw: bytes, rounds: int = 2000) -> dict[str, Any]:
    """Decode + encode of one member document: msgpack (now) against its JSON form (before).

    The JSON form is what the store wrote before msgpack: the same fields and rows, through
    ``json.dumps``; it is still read (MemberDoc.load) for documents stored before."""
    now = T0 + timedelta(days=400)
    doc = MemberDoc.load("m1", doc_raw)
    assert doc is not None
    packed = b"1|" + doc.dump(now, 12)
    legacy = b"1|" + _json_body(doc).encode()

    def cycle_msgpack() -> None:
        d = MemberDoc.load("m1", packed)
        assert d is not None
        d.dump(now, 12)

    def cycle_json() -> None:
        d = MemberDoc.load("m1", legacy)
        assert d is not None
        _json_body(d)

    out: dict[str, Any] = {"msgpack_bytes": len(packed) - 2, "json_bytes": len(legacy) - 2}
    for name, fn in (("msgpack", cycle_msgpack), ("json", cycle_json)):
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            fn()
            times.append(time.perf_counter_ns() - t0)
        out[f"{name}_decode_encode_us"] = round(statistics.median(times) / 1000, 2)
    return out


def _json_body(doc: MemberDoc) -> str:
    """The document's JSON form as the store wrote it before msgpack (per-commit fields kept
    as they are: this times the encoding, not the bucketing)."""
    d: dict[str, Any] = {"t": doc.tier, "s": doc.segments, "e": doc.enrolled_on}
    d["c"], d["d"], d["ls"], d["n"] = doc.consent, doc.debt, doc.lifetime, doc.next_lot
    d["b"] = [doc.birthday_month, doc.birthday_day]
    d["l"] = [
        [x.lot_id, x.points, to_us(x.earned_at), to_us(x.available_at)]
        + [None if x.expires_at is None else to_us(x.expires_at)]
        for x in doc.lots
    ]
    d["sp"] = [[f"tx-{s}", s, a] for s, _, a in doc.spend]
    d["w"], d["u"], d["cr"] = doc.wallet, doc.usage, doc.codes
    return json.dumps({k: v for k, v in d.items() if v}, separators=(",", ":"))


def measure(commits: int, gap: timedelta) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    sample = b""
    for kind in ("embedded", "redis"):
        with _stores(kind) as open_store:
            for bucket in (rules_pb2.PointsProgram.DAY, rules_pb2.PointsProgram.MONTH):
                store = open_store()
                row = {"store": kind, **run_one(store, bucket, commits, gap)}
                runs.append(row)
                print(_line(row), flush=True)
                if isinstance(store, RedisStore) and bucket == rules_pb2.PointsProgram.MONTH:
                    store.issue_coupons(
                        "iss", "panadol-coupon", ["m1"], 2, T0, T0 + timedelta(days=999), T0
                    )
                    raw = store.client.get(store.keys.member("m1"))
                    sample = raw if isinstance(raw, bytes) else b""
    return {
        "goal": "H1: after 1,000 commits a commit <= 1.3x the first, state <= 2 KB (monthly)",
        "commits": commits,
        "gap_hours": gap / timedelta(hours=1),
        "runs": runs,
        "member_document": codec_timing(sample),
    }


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['store']:8} {r['bucket']:5} commit {r['first_commit_ms']:.2f} -> "
        f"{r['last_commit_ms']:.2f} ms (x{r['ratio']}), grown vs fresh {r['grown_commit_ms']:.2f}"
        f" vs {r['fresh_commit_ms']:.2f} ms (x{r['paired_ratio']}), state {r['state_after_last']}, "
        f"{r['lots_after_last']} lots, get_member {r['get_member_ms_after_first']:.3f} -> "
        f"{r['get_member_ms_after_last']:.3f} ms"
    )


def report(result: dict[str, Any]) -> str:
    lines = [
        "# H1: a member after many commits",
        "",
        f"{result['commits']:,} small commits by one member, one every "
        f"{result['gap_hours']:g} h of store time; medians of {RUNS} commits and of {READS} "
        "reads. Goal: a commit ≤ 1.3× the first; the member's state ≤ 2 KB (MONTH buckets).",
        "",
        "| store | bucket | first commit ms | last commit ms | ratio | grown vs fresh ms "
        "(paired ratio) | state after first | state after last | lots | get_member ms "
        "(first → last) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['store']} | {r['bucket']} | {r['first_commit_ms']} | {r['last_commit_ms']} | "
            f"{r['ratio']} | {r['grown_commit_ms']} vs {r['fresh_commit_ms']} "
            f"({r['paired_ratio']}) | {_state_text(r['state_after_first'])} | "
            f"{_state_text(r['state_after_last'])} | {r['lots_after_last']} | "
            f"{r['get_member_ms_after_first']} → {r['get_member_ms_after_last']} |"
        )
    d = result["member_document"]
    lines += [
        "",
        "A member document (Redis, MONTH, after the run, with a wallet coupon): "
        f"{d['msgpack_bytes']} bytes as msgpack, {d['json_bytes']} as JSON; decode + encode "
        f"{d['msgpack_decode_encode_us']} µs as msgpack, {d['json_decode_encode_us']} µs as JSON.",
        "",
    ]
    return "\n".join(lines)


def _state_text(state: dict[str, int]) -> str:
    if "member_key_bytes" in state:
        return f"{state['member_key_bytes']} B"
    return f"{state['lot_rows']} lot + {state['spend_rows']} spend rows"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.member_growth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--commits", type=int, default=1000)
    p.add_argument("--gap-hours", type=float, default=9.0)
    p.add_argument("--quick", action="store_true", help="100 commits, nothing written")
    args = p.parse_args(argv)
    commits = 100 if args.quick else args.commits
    result = measure(commits, timedelta(hours=args.gap_hours))
    text = report(result)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "member_growth.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "member_growth.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
