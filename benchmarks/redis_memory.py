"""M1: Redis memory per member with 1,000,000 members loaded (docs/design.md §8: ≤ 200 bytes).

    python -m benchmarks.redis_memory [--members 1000000] [--quick]

Starts a private redis-server, reads ``INFO memory`` (``used_memory``), bulk-enrols members
shaped like the demo's (tier, birthday, enrol date, consent flags, one segment for a third of
them) through ``RedisStore.import_members`` — the same member document every request reads
and writes — reads ``used_memory`` again and divides. Writes benchmarks/results/redis_memory.json.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path

import redis

from server.store.base import Consent, MemberProfile
from server.store.redis.process import RedisProcess
from server.store.redis.store import RedisStore

RESULTS = Path(__file__).resolve().parent / "results"
TIERS = ("member", "member", "member", "vip", "vip-gold")


def profiles(n: int):
    for i in range(n):
        yield MemberProfile(
            f"M{10_000_000 + i}",
            tier=TIERS[i % len(TIERS)],
            segments=frozenset({"skincare-heavy"}) if i % 3 == 0 else frozenset(),
            birthday_month=1 + i % 12,
            birthday_day=1 + i % 28,
            enrolled_on=date(2020 + i % 6, 1 + i % 12, 1 + i % 28),
            consent=Consent(marketing=i % 2 == 0, automated_decisions=i % 4 != 0),
        )


def measure(members: int) -> dict:
    with RedisProcess() as server:
        client = redis.Redis.from_url(server.url)
        before = int(client.info("memory")["used_memory"])
        store = RedisStore(server.url)
        start = time.perf_counter()
        created = store.import_members(profiles(members), datetime.now(UTC))
        seconds = time.perf_counter() - start
        after = int(client.info("memory")["used_memory"])
        sample = client.get(store.keys.member(f"M{10_000_000}"))
        keys = client.dbsize()
        store.close()
        client.close()
    per_member = (after - before) / members
    return {
        "members": members,
        "created": created,
        "keys": keys,
        "used_memory_before": before,
        "used_memory_after": after,
        "bytes_per_member": round(per_member, 1),
        "goal_bytes": 200,
        "met": per_member <= 200,
        "load_seconds": round(seconds, 2),
        "sample_document": sample.decode() if sample else None,
        "redis_version": "see redis-server --version",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.redis_memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--members", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="10,000 members (a smoke run)")
    args = p.parse_args(argv)
    result = measure(10_000 if args.quick else args.members)
    print(
        f"M1: {result['bytes_per_member']} bytes per member with {result['members']:,} "
        f"members (goal <= 200: {'met' if result['met'] else 'NOT met'}); loaded in "
        f"{result['load_seconds']} s; e.g. {result['sample_document']}"
    )
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "redis_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
