"""Coupon code generation: 1,000,000 codes in one batch on each store (under a minute each),
and a batch of codes bound to 100,000 members (one code each, kept in member order). Prints the
figures and writes benchmarks/results/codes.json.

    python -m benchmarks.codes [--count 1000000] [--bound 100000] [--stores embedded,redis]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.store.codes import DEFAULT_ALPHABET, CodeBatch, needed_length

RESULTS = Path(__file__).parent / "results" / "codes.json"


def _batch(batch_id: str, count: int, members: tuple[str, ...] = ()) -> CodeBatch:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return CodeBatch(
        batch_id, "COUPON-1", count, "B-", "", needed_length(count, len(DEFAULT_ALPHABET)),
        DEFAULT_ALPHABET, 1, False, int(now.timestamp() * 1e6),
        int((now + timedelta(days=30)).timestamp() * 1e6), members,
    )  # fmt: skip


def run(count: int, stores: list[str], bound: int = 0) -> dict[str, object]:
    from server.store import Store, open_store
    from server.store.redis.process import RedisProcess

    now = datetime(2026, 1, 1, tzinfo=UTC)
    figures: dict[str, object] = {"count": count}
    for name in stores:
        with tempfile.TemporaryDirectory() as tmp:
            proc = RedisProcess().start() if name == "redis" else None
            store: Store = (
                open_store("redis", url=proc.url) if proc else open_store("embedded", data_dir=tmp)
            )
            try:
                t = time.perf_counter()
                first = store.create_code_batch(_batch("bench-1", count), now)
                took = time.perf_counter() - t
                t = time.perf_counter()
                again = store.create_code_batch(_batch("bench-1", count), now)
                retry = time.perf_counter() - t
                t = time.perf_counter()
                page, _ = store.list_codes("bench-1", "UNUSED", "", 1000, now)
                page_s = time.perf_counter() - t
                assert first.generated == again.generated == count and len(page) == 1000
                figures[name] = {
                    "seconds": round(took, 2),
                    "codes_per_s": round(count / took),
                    "collisions": first.collisions,
                    "idempotent_retry_s": round(retry, 3),
                    "first_page_1000_s": round(page_s, 3),
                }
                print(f"{name}: {count:,} codes in {took:.2f} s ({count / took:,.0f}/s)")
                if bound:
                    members = tuple(f"M{i:07d}" for i in range(bound))
                    t = time.perf_counter()
                    tied = store.create_code_batch(_batch("bench-bound", bound, members), now)
                    took = time.perf_counter() - t
                    codes, _ = store.list_codes("bench-bound", "", "", 1000, now)
                    assert tied.generated == bound
                    assert [c.member_id for c in codes] == list(members[:1000])
                    figures[f"{name}_bound"] = {
                        "codes": bound,
                        "seconds": round(took, 2),
                        "codes_per_s": round(bound / took),
                    }
                    print(f"{name}: {bound:,} member-bound codes in {took:.2f} s")
            finally:
                store.close()
                if proc is not None:
                    proc.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--bound", type=int, default=100_000, help="member-bound codes (0 = none)")
    ap.add_argument("--stores", default="embedded,redis")
    args = ap.parse_args(argv)
    figures = run(args.count, args.stores.split(","), args.bound)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
