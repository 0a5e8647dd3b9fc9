"""Points lots merged by expiry bucket, spend kept per bucket, and old members migrated
(docs/design.md §5, Points), on every store.

A member's state must stay small however often they shop (goal H1): earns of one bucket share
one lot, reversals claw back from and restore into shared lots exactly, and members stored
before buckets existed (one lot and one spend record per commit) are merged at their next
commit. Times are fixed; the rule set's zone is Asia/Shanghai (UTC+8, no DST).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

import engine
from engine.pricing.validate import validate
from loyalty.v1 import rules_pb2
from server.store import EmbeddedStore, Store
from server.store.embedded.schema import SCHEMA_VERSION
from server.store.embedded.store import DB_FILE
from server.store.points import add_months
from server.store.records import sign
from server.store.redis.store import RedisStore
from server.store.snapshot import to_us
from tests.store_fixtures import BASKET_1, COMPILED, RULES, T0, basket, checkout, enrol, net

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
RICE = [("1", "RICE-5KG", 1, 4500)]  # a small basket: 4 points, 4500 of qualifying spend


def _compiled(**points: int) -> engine.CompiledRules:
    rules = rules_pb2.RuleSet()
    rules.CopyFrom(RULES)
    for name, value in points.items():
        setattr(rules.points, name, value)
    return engine.compile_rules(rules, COMPILED.catalogue)


MONTHLY = _compiled(lot_bucket=rules_pb2.PointsProgram.MONTH)
NEVER = _compiled(pending_days=0, expiry_months=0)

# Earned at T0 (Wednesday 2025-03-12 12:00 in Shanghai), pending 14 days, expiring after 24
# months: by day, available at the end of 2025-03-26; by month, at the end of March.
DAY_AVAILABLE = datetime(2025, 3, 26, 16, tzinfo=UTC)  # 2025-03-27 00:00 in Shanghai
MONTH_AVAILABLE = datetime(2025, 3, 31, 16, tzinfo=UTC)  # 2025-04-01 00:00 in Shanghai
MONTH_EXPIRES = datetime(2027, 3, 31, 16, tzinfo=UTC)  # 2027-04-01 00:00 in Shanghai


@pytest.fixture(params=["embedded", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "redis":
        s = RedisStore(request.getfixturevalue("redis_url"))
    else:
        s = EmbeddedStore(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture(scope="module", autouse=True)
def _warm_engine() -> None:
    engine.price(COMPILED, basket(BASKET_1))


def _lots(store: Store, at: datetime) -> list[tuple[int, datetime, datetime | None]]:
    return [(x.points, x.available_at, x.expires_at) for x in store.get_member("m1", at).lots]


def _state_size(store: Store) -> int:
    """Redis: bytes of the member key; SQLite: the member's lot and spend rows."""
    if isinstance(store, RedisStore):
        return int(store.client.strlen(store.keys.member("m1")))
    assert isinstance(store, EmbeddedStore)
    with sqlite3.connect(store.path) as db:
        (lots,) = db.execute("SELECT COUNT(*) FROM point_lots WHERE member_id = 'm1'").fetchone()
        (spend,) = db.execute("SELECT COUNT(*) FROM member_spend WHERE member_id = 'm1'").fetchone()
    return int(lots + spend)


# ---------------------------------------------------------------------------------------------
# Merging


def test_earns_of_one_day_share_a_lot_and_expire_together(store: Store) -> None:
    enrol(store, "m1")
    outs = [checkout(store, f"tx-{i}", BASKET_1, "m1", at=T0 + i * 5 * HOUR) for i in range(3)]
    # 12:00, 17:00 and 22:00 in Shanghai: one day, one lot
    assert {(o.points_available_at, o.points_expire_at) for o in outs} == {
        (DAY_AVAILABLE, add_months(DAY_AVAILABLE, 24))
    }
    earned = sum(o.points_earned for o in outs)
    assert earned == 48
    assert _lots(store, T0 + DAY) == [(48, DAY_AVAILABLE, add_months(DAY_AVAILABLE, 24))]
    # 03:00 the next day in Shanghai: a lot of its own
    nxt = checkout(store, "tx-next", BASKET_1, "m1", at=T0 + 15 * HOUR)
    assert nxt.points_available_at == DAY_AVAILABLE + DAY
    assert [p for p, _, _ in _lots(store, T0 + DAY)] == [48, 16]
    # pending until the bucket ends, then available; the whole lot expires at once
    before = store.get_member("m1", DAY_AVAILABLE - timedelta(microseconds=1))
    assert (before.points_available, before.points_pending) == (0, 64)
    at = store.get_member("m1", DAY_AVAILABLE)
    assert (at.points_available, at.points_pending) == (48, 16)
    expires = add_months(DAY_AVAILABLE, 24)
    assert store.get_member("m1", expires - timedelta(microseconds=1)).points_available == 64
    assert store.get_member("m1", expires).points_available == 16


def test_monthly_lots_take_every_earn_whose_pending_days_end_in_the_month(store: Store) -> None:
    enrol(store, "m1")
    # pending ends on 03-26, 03-29, 03-31 23:00 and exactly at 04-01 00:00 (Shanghai): a
    # boundary is not rounded up, so all four are March's lot
    march = (T0, T0 + 3 * DAY, T0 + 5 * DAY + 11 * HOUR, T0 + 5 * DAY + 12 * HOUR)
    earned = 0
    for i, at in enumerate(march):
        out = checkout(store, f"tx-{i}", RICE, "m1", at=at, compiled=MONTHLY)
        assert (out.points_available_at, out.points_expire_at) == (MONTH_AVAILABLE, MONTH_EXPIRES)
        earned += out.points_earned
    # pending ends on 04-01 at noon: April's lot
    april = checkout(store, "tx-apr", RICE, "m1", at=T0 + 6 * DAY, compiled=MONTHLY)
    assert april.points_available_at == datetime(2025, 4, 30, 16, tzinfo=UTC)
    assert april.points_expire_at == datetime(2027, 4, 30, 16, tzinfo=UTC)
    assert _lots(store, T0 + 6 * DAY) == [
        (earned, MONTH_AVAILABLE, MONTH_EXPIRES),
        (april.points_earned, april.points_available_at, april.points_expire_at),
    ]
    edge = store.get_member("m1", MONTH_AVAILABLE - timedelta(microseconds=1))
    assert (edge.points_available, edge.points_pending) == (0, earned + april.points_earned)
    assert store.get_member("m1", MONTH_AVAILABLE).points_available == earned


def test_never_expiring_points_without_a_return_window_are_one_lot(store: Store) -> None:
    enrol(store, "m1")
    earned = 0
    for i in range(3):
        out = checkout(store, f"tx-{i}", RICE, "m1", at=T0 + i * 40 * DAY, compiled=NEVER)
        assert out.points_available_at == T0 + i * 40 * DAY  # spendable at once
        earned += out.points_earned
    assert earned >= 12
    assert [(p, e) for p, _, e in _lots(store, T0 + 80 * DAY)] == [(earned, None)]


@pytest.mark.parametrize(
    ("compiled", "gap"),
    [(MONTHLY, 9 * HOUR), (COMPILED, timedelta(minutes=7))],
    ids=["month-buckets-over-a-year", "day-buckets-over-five-days"],
)
def test_a_thousand_commits_keep_the_member_small(
    store: Store, compiled: engine.CompiledRules, gap: timedelta
) -> None:
    enrol(store, "m1")
    first = 0
    for i in range(1000):
        redeem = -1 if i % 10 == 9 else 0  # every tenth basket pays with every point it can
        checkout(store, f"tx-{i}", RICE, "m1", at=T0 + i * gap, compiled=compiled, redeem=redeem)
        if i == 0:
            first = _state_size(store)
    m = store.get_member("m1", T0 + 999 * gap)
    assert m.lifetime_spend_minor > 4500 * 900  # redemptions lower some nets
    if isinstance(store, RedisStore):
        assert _state_size(store) <= 2048
    else:  # one row per live lot and per spend bucket in the window
        assert first == 2
        assert _state_size(store) <= 30
    # one lot per bucket, whatever the number of commits
    keys = [(x.available_at, x.expires_at) for x in m.lots]
    assert len(keys) == len(set(keys)) <= 15


# ---------------------------------------------------------------------------------------------
# Reversals


def test_returns_and_cancel_claw_back_and_restore_exactly_with_shared_lots(store: Store) -> None:
    enrol(store, "m1")
    soon = T0 + 40 * DAY
    store.adjust_points("welcome", "m1", 1000, "welcome", T0 - DAY, expires_at=soon)
    t1 = checkout(store, "tx-1", BASKET_1, "m1")
    t2 = checkout(store, "tx-2", BASKET_1, "m1", at=T0 + HOUR)
    t3 = checkout(store, "tx-3", BASKET_1, "m1", at=T0 + 2 * HOUR, redeem=100)
    assert (t1.points_earned, t2.points_earned, t3.points_earned) == (16, 16, 15)
    assert t3.points_redeemed == 100
    expires = add_months(DAY_AVAILABLE, 24)
    at = T0 + 3 * HOUR
    assert _lots(store, at) == [(900, T0 - DAY, soon), (47, DAY_AVAILABLE, expires)]

    # a full return of tx-1 takes its 16 points from the shared pending lot
    r1 = store.return_lines("r-1", "tx-1", [("1", 2), ("2", 3), ("3", 1)], at)
    assert (r1.points_clawed_back, r1.debt_added) == (16, 0)
    assert _lots(store, at) == [(900, T0 - DAY, soon), (31, DAY_AVAILABLE, expires)]
    # cancelling tx-3 gives its 100 points back into the lot they were burned from (same
    # expiry: one lot again) and takes its 15 from the shared lot
    c3 = store.cancel("tx-3", at)
    assert (c3.points_restored, c3.points_clawed_back, c3.points_forfeited) == (100, 15, 0)
    lots = _lots(store, at)
    assert [(p, e) for p, _, e in lots] == [(1000, soon), (16, expires)]
    m = store.get_member("m1", at)
    assert (m.points_available, m.points_pending, m.points_debt) == (1000, 16, 0)
    # spend was taken back from the day's bucket: only tx-2 is left in it
    assert m.rolling_spend_minor == m.lifetime_spend_minor == net(t2)
    entries = store.ledger()
    assert [e.kind for e in entries] == ["adjust", "commit", "commit", "commit", "return", "cancel"]
    earned = sum(sign(e) * e.points_earned for e in entries if e.kind != "adjust")
    assert earned == 16 and m.points_pending == earned


def test_a_clawback_takes_the_rest_of_the_shared_lot_then_fifo(store: Store) -> None:
    enrol(store, "m1")
    store.adjust_points("welcome", "m1", 10, "welcome", T0 - DAY)  # never expires
    checkout(store, "tx-1", BASKET_1, "m1")
    checkout(store, "tx-2", BASKET_1, "m1", at=T0 + HOUR)
    at = DAY_AVAILABLE + DAY
    store.adjust_points("spend", "m1", -20, "partner", at)  # soonest expiry first: the shared lot
    assert [p for p, _, _ in _lots(store, at)] == [12, 10]
    ret = store.return_lines("r-1", "tx-1", [("1", 2), ("2", 3), ("3", 1)], at)
    # 16 back: the 12 left of the shared lot, then 4 from the never-expiring lot, no debt
    assert (ret.points_clawed_back, ret.debt_added) == (16, 0)
    m = store.get_member("m1", at)
    assert (m.points_available, m.points_debt) == (6, 0)
    assert [(p, e) for p, _, e in _lots(store, at)] == [(6, None)]


# ---------------------------------------------------------------------------------------------
# Old members


def _legacy_lots(at: datetime) -> list[tuple[int, datetime, datetime, datetime]]:
    """Three per-commit lots of February, as stored before buckets: (points, earned,
    available, expires) with exact times."""
    out = []
    for k in range(3):
        earned = at + k * (DAY + HOUR)
        available = earned + 14 * DAY
        out.append((16, earned, available, add_months(available, 24)))
    return out


FEB = datetime(2025, 2, 3, 3, tzinfo=UTC)  # 11:00 in Shanghai
LEGACY = _legacy_lots(FEB)


def _write_legacy_redis(store: RedisStore) -> None:
    doc = {
        "t": "member",
        "b": [7, 0],
        "n": 4,
        "l": [[i + 1, p, to_us(e), to_us(a), to_us(x)] for i, (p, e, a, x) in enumerate(LEGACY)],
        "sp": [[f"old-{i}", to_us(e), 16180] for i, (_, e, _, _) in enumerate(LEGACY)],
    }
    body = json.dumps(doc, separators=(",", ":"))
    store.client.set(store.keys.member("m1"), f"1|{body}")


_V1_SPEND = (
    "CREATE TABLE member_spend (member_id TEXT NOT NULL, transaction_id TEXT NOT NULL,"
    " at_us INTEGER NOT NULL, amount_minor INTEGER NOT NULL,"
    " PRIMARY KEY (member_id, transaction_id))"
)


def _write_legacy_sqlite(path: Path) -> None:
    """Turn a fresh file back into schema v1 and store an old member in it."""
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE members DROP COLUMN legacy_lots")
        db.execute("ALTER TABLE members DROP COLUMN version")
        for column in ("personalised", "status", "revoked_reason", "revoked_us"):  # v4
            db.execute(f"ALTER TABLE wallet_coupons DROP COLUMN {column}")
        db.execute("DROP INDEX codes_batch")  # v5: code batches
        db.execute("DROP TABLE code_batches")
        for column in ("batch_id", "last_tx", "last_us"):
            db.execute(f"ALTER TABLE codes DROP COLUMN {column}")
        db.execute("DROP TABLE member_spend")
        db.execute(_V1_SPEND)
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version VALUES (1, 0)")
        db.execute("INSERT INTO members (member_id, tier, updated_us) VALUES ('m1', 'member', 0)")
        for i, (p, e, a, x) in enumerate(LEGACY):
            db.execute(
                "INSERT INTO point_lots (member_id, points, earned_us, available_us, expires_us,"
                " source) VALUES ('m1', ?, ?, ?, ?, ?)",
                (p, to_us(e), to_us(a), to_us(x), f"old-{i}"),
            )
            db.execute(
                "INSERT INTO member_spend VALUES ('m1', ?, ?, 16180)", (f"old-{i}", to_us(e))
            )
        db.execute(  # a drained lot: v1 kept them
            "INSERT INTO point_lots (member_id, points, earned_us, available_us, expires_us,"
            " source) VALUES ('m1', 0, 0, 0, NULL, 'old-drained')"
        )


@pytest.mark.parametrize("kind", ["embedded", "redis"])
def test_an_old_member_is_read_and_merged_at_its_next_commit(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store: Store
    if kind == "redis":
        store = RedisStore(request.getfixturevalue("redis_url"))
        _write_legacy_redis(store)
    else:
        EmbeddedStore(tmp_path / "data").close()
        _write_legacy_sqlite(tmp_path / "data" / DB_FILE)
        store = EmbeddedStore(tmp_path / "data")  # migrates v1 -> SCHEMA_VERSION on open
    try:
        _check_migration(store, kind)
    finally:
        store.close()


def _check_migration(store: Store, kind: str) -> None:
    before = store.get_member("m1", T0)
    assert (before.points_available, before.points_pending) == (48, 0)
    assert [x.expires_at for x in before.lots] == [x for _, _, _, x in LEGACY]
    assert before.rolling_spend_minor == 3 * 16180
    if isinstance(store, EmbeddedStore):
        assert _state_size(store) == 6  # 3 lots (the drained one dropped) + 3 spend rows

    out = checkout(store, "tx-new", RICE, "m1", compiled=MONTHLY)
    after = store.get_member("m1", T0)
    # the three February lots expire at the end of February 2027 (rounded up, never earlier)
    # and, all available, are one lot; the new earn has March's lot
    feb_end = datetime(2027, 2, 28, 16, tzinfo=UTC)  # 2027-03-01 00:00 in Shanghai
    assert [(x.points, x.expires_at) for x in after.lots] == [(48, feb_end), (4, MONTH_EXPIRES)]
    assert (after.points_available, after.points_pending) == (48, out.points_earned)
    assert after.rolling_spend_minor == 3 * 16180 + 4500
    if isinstance(store, RedisStore):
        raw = store.client.get(store.keys.member("m1"))
        version, _, body = raw.partition(b"|")
        assert version == b"2" and body[:1] != b"{"
        stored = msgspec.msgpack.decode(body)
        assert len(stored["l"]) == 2 and "lg" not in stored
        assert [s[2] for s in stored["sp"]] == [3 * 16180, 4500]  # February, March
    else:
        assert _state_size(store) == 4  # 2 lots + 2 spend buckets
        with sqlite3.connect(store.path) as db:
            assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (
                SCHEMA_VERSION,
            )
            assert db.execute("SELECT legacy_lots FROM members").fetchone() == (0,)
    # and later writes keep the merged form
    store.adjust_points("a-1", "m1", -8, "partner", T0 + DAY)
    assert [x.points for x in store.get_member("m1", T0 + DAY).lots] == [40, 4]


# ---------------------------------------------------------------------------------------------
# The setting


def test_an_unknown_lot_bucket_is_a_violation() -> None:
    rules = rules_pb2.RuleSet()
    rules.CopyFrom(RULES)
    rules.points.lot_bucket = 7  # type: ignore[assignment]  # an open enum takes any number
    assert [(v.field, v.description) for v in validate(rules)] == [
        ("points.lot_bucket", "unknown lot bucket 7 (DAY or MONTH)")
    ]


def test_the_default_is_day_and_month_reads_from_rule_files() -> None:
    rules = engine.pricing.rules.parse_rules(
        {"points": {"point_value_minor": 10, "earn_per_amount_minor": 100, "lot_bucket": "MONTH"}}
    )
    assert rules.points.lot_bucket == rules_pb2.PointsProgram.MONTH
    assert RULES.points.lot_bucket == rules_pb2.PointsProgram.DAY  # watsons.yaml says nothing
