"""Contract suite of the state store (docs/design.md §5), run against every implementation.

Adding a backend is one entry in ``_FACTORIES``. Baskets are priced by the real engine on the
snapshot each store reads for the shared commit loop (``server.store.checkout``); times are
fixed; concurrency uses bounded threads started together from a barrier and asserts only on end
states.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import engine
from engine.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidInput, NotFound
from server.settings import RedisSettings
from server.store import CodeStatus, EmbeddedStore, MemberProfile, Store
from server.store.checkout import commit
from server.store.points import add_months
from server.store.records import funded_by, payable, sign
from server.store.redis.store import RedisStore
from tests.store_fixtures import (
    BASKET_1,
    COMPILED,
    COMPILED_BUDGET,
    DAY,
    PANADOL,
    POLICY,
    POLICY_BUDGET,
    RULES,
    T0,
    basket,
    checkout,
    discounted,
    enrol,
    net,
    paid,
)

_FACTORIES: dict[str, Callable[[Path, str], Store]] = {
    "embedded": lambda tmp, _url: EmbeddedStore(tmp / "data"),
    "redis": lambda _tmp, url: RedisStore(url),
    # a Redis Cluster (3 primaries, 3 replicas), each test under its own key prefix
    "cluster": lambda tmp, url: RedisStore(
        settings=RedisSettings(
            url=url, cluster=True, prefix=f"{uuid.uuid5(uuid.NAMESPACE_URL, str(tmp))}:"
        )
    ),
}


def _url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    if request.param == "cluster":
        return str(request.getfixturevalue("redis_cluster").url)
    return ""


@pytest.fixture(params=list(_FACTORIES), ids=list(_FACTORIES))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens stores on the same data; every store opened is closed at teardown."""
    opened: list[Store] = []
    url = _url(request)

    def open_one() -> Store:
        s = _FACTORIES[request.param](tmp_path, url)
        opened.append(s)
        return s

    yield open_one
    for s in opened:
        s.close()


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Store:
    return store_factory()


@pytest.fixture(scope="module", autouse=True)
def _warm_engine() -> None:
    # Compile the kernels before any test holds a write lock around engine.price.
    engine.price(COMPILED, basket(BASKET_1))


def _run_threads(n: int, work: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n, timeout=30)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


# ---------------------------------------------------------------------------------------------
# Commit


# Points earned at T0 (lots by day, the default): available at the end of the Shanghai day in
# which the 14 pending days end, expiring 24 months later at the end of that day
AVAILABLE = datetime(2025, 3, 26, 16, tzinfo=UTC)  # 2025-03-27 00:00 in Asia/Shanghai
EXPIRES = add_months(AVAILABLE, 24)  # 2027-03-27 00:00 in Asia/Shanghai


def test_commit_then_member_balance(store: Store) -> None:
    enrol(store, "m1")
    out = checkout(store, "tx-1", BASKET_1, "m1")
    assert net(out) == 16180
    assert out.points_earned == 16
    assert out.points_available_at == AVAILABLE
    assert out.points_expire_at == EXPIRES
    m = store.get_member("m1", T0)
    assert (m.points_available, m.points_pending) == (0, 16)
    assert (out.points_available_after, out.points_pending_after) == (0, 16)
    assert m.lifetime_spend_minor == m.rolling_spend_minor == 16180
    assert store.get_member("m1", AVAILABLE - timedelta(microseconds=1)).points_pending == 16
    later = store.get_member("m1", AVAILABLE)
    assert (later.points_available, later.points_pending) == (16, 0)


def test_same_commit_fifty_times_has_one_effect(store: Store) -> None:
    enrol(store, "m1")
    outcomes = [checkout(store, "tx-1", BASKET_1, "m1") for _ in range(50)]
    assert all(o == outcomes[0] for o in outcomes)
    m = store.get_member("m1", T0 + 30 * DAY)
    assert m.points_available == 16
    assert m.lifetime_spend_minor == 16180
    assert [e.kind for e in store.ledger()] == ["commit"]


def test_same_id_with_another_basket_already_exists(store: Store) -> None:
    enrol(store, "m1")
    checkout(store, "tx-1", BASKET_1, "m1")
    with pytest.raises(AlreadyExists):
        checkout(store, "tx-1", BASKET_1[:2], "m1")


def test_unknown_member_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        checkout(store, "tx-1", BASKET_1, "nobody")
    with pytest.raises(NotFound):
        store.get_member("nobody", T0)


def test_guest_commit_records_usage_and_ledger(store: Store) -> None:
    store.create_codes("panadol-coupon", ["PAN-G"], 5, False, T0 - DAY, T0 + DAY)
    out = checkout(store, "tx-g", [PANADOL], codes=["PAN-G"])
    assert [u.code for u in out.offers if u.offer_id == "panadol-coupon"] == ["PAN-G"]
    assert out.points_earned == 0
    limits = store.pricing_state(POLICY, None, ["panadol-coupon"], [], T0).limits
    assert limits["panadol-coupon"].budget_minor == 5_000_000 - 1500
    assert store.ledger()[0].member_id == ""  # a guest


# ---------------------------------------------------------------------------------------------
# Cancel


def test_cancel_restores_points_coupons_limits_budget_and_spend(store: Store) -> None:
    enrol(store, "m1")
    store.adjust_points("adj-1", "m1", 1000, "welcome", T0 - DAY)
    store.issue_coupons("iss-1", "panadol-coupon", ["m1"], 1, T0 - DAY, T0 + 30 * DAY, T0)
    before = store.get_member("m1", T0)
    out = checkout(store, "tx-1", [*BASKET_1, PANADOL], "m1", redeem=500)
    assert out.points_redeemed == 500
    assert [(u.offer_id, u.coupon_id) for u in out.offers if u.coupon_id] == [
        ("panadol-coupon", "iss-1:m1")
    ]
    state = store.pricing_state(POLICY, "m1", None, [], T0)
    assert state.member is not None and state.member.wallet == {}
    assert state.limits["panadol-coupon"].member_uses == 0
    assert state.limits["panadol-coupon"].budget_minor == 5_000_000 - 1500
    assert store.get_member("m1", T0).points_available == 500

    cancelled = store.cancel("tx-1", T0 + DAY)
    assert store.cancel("tx-1", T0 + 2 * DAY) == cancelled
    assert cancelled.points_restored == 500
    assert cancelled.points_clawed_back == out.points_earned
    assert cancelled.refund_minor == paid(out)
    after = store.get_member("m1", T0 + DAY)
    assert after.points_available == before.points_available == 1000
    assert after.points_pending == 0 and after.points_debt == 0
    assert after.lifetime_spend_minor == after.rolling_spend_minor == 0
    assert [(c.coupon_id, c.uses_left) for c in after.wallet] == [("iss-1:m1", 1)]
    state = store.pricing_state(POLICY, "m1", None, [], T0 + DAY)
    assert state.limits["panadol-coupon"].member_uses == 1
    assert state.limits["panadol-coupon"].budget_minor == 5_000_000
    with pytest.raises(FailedPrecondition):
        store.return_lines("r-1", "tx-1", [("1", 1)], T0 + 2 * DAY)


def test_member_limit_counts_per_period_in_the_rule_set_time_zone(store: Store) -> None:
    enrol(store, "m1")
    store.issue_coupons("iss-1", "panadol-coupon", ["m1"], 5, T0 - DAY, T0 + 60 * DAY, T0)
    first = checkout(store, "tx-1", [PANADOL], "m1")
    assert [u.coupon_id for u in first.offers] == ["iss-1:m1"]
    again = checkout(store, "tx-2", [PANADOL], "m1", at=T0 + DAY)
    assert again.offers == () and discounted(again) == 0
    # 2025-03-31 16:00 UTC is already April 1st in Asia/Shanghai: a new month
    april = T0.replace(day=31, hour=16)
    limits = store.pricing_state(POLICY, "m1", ["panadol-coupon"], [], april).limits
    assert limits["panadol-coupon"].member_uses == 1
    assert store.get_member("m1", april).wallet[0].uses_left == 4


def test_cancel_of_unknown_transaction_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.cancel("nope", T0)


# ---------------------------------------------------------------------------------------------
# Returns


def test_partial_returns_add_up_to_the_line_to_the_cent(store: Store) -> None:
    enrol(store, "m1")
    store.adjust_points("adj-1", "m1", 1000, "welcome", T0 - DAY)
    store.issue_coupons("iss-1", "panadol-coupon", ["m1"], 1, T0 - DAY, T0 + 30 * DAY, T0)
    out = checkout(store, "tx-1", [*BASKET_1, PANADOL], "m1", redeem=500)
    line = next(x for x in out.lines if x.line_id == "4")
    assert line.quantity == 3 and line.discounts and line.tender_minor > 0

    r1 = store.return_lines("r-1", "tx-1", [("4", 1)], T0 + DAY)
    r2 = store.return_lines("r-2", "tx-1", [("4", 2)], T0 + 2 * DAY)
    assert store.return_lines("r-1", "tx-1", [("4", 1)], T0 + 3 * DAY) == r1
    parts = [r1.lines[0], r2.lines[0]]
    assert sum(p.quantity for p in parts) == 3
    for attr in (
        "gross_minor",
        "net_minor",
        "tender_minor",
        "points_earned",
        "points_redeemed",
    ):
        assert sum(getattr(p, attr) for p in parts) == getattr(line, attr), attr
    assert sum(payable(p) for p in parts) == payable(line)
    assert r1.refund_minor == (line.net_minor - line.tender_minor) * 1 // 3
    for k, d in enumerate(line.discounts):
        assert sum(p.discounts[k].amount_minor for p in parts) == d.amount_minor
        assert sum(p.discounts[k].funded_minor for p in parts) == d.funded_minor
    assert r1.refund_minor + r2.refund_minor == payable(line)
    assert r1.points_restored + r2.points_restored == line.points_redeemed


def test_return_everything_then_cancel_reverses_nothing_twice(store: Store) -> None:
    enrol(store, "m1")
    out = checkout(store, "tx-1", BASKET_1, "m1")
    store.return_lines("r-1", "tx-1", [("1", 1), ("2", 2)], T0 + DAY)
    cancelled = store.cancel("tx-1", T0 + DAY)
    total_refund = sum(sign(e) * e.amount_minor for e in store.ledger())
    assert total_refund == 0 and cancelled.refund_minor < paid(out)
    m = store.get_member("m1", T0 + 30 * DAY)
    assert (m.points_available, m.points_pending, m.points_debt) == (0, 0, 0)
    assert m.lifetime_spend_minor == 0


def test_over_return_unknown_line_and_reused_return_id_are_refused(store: Store) -> None:
    enrol(store, "m1")
    checkout(store, "tx-1", BASKET_1, "m1")
    store.return_lines("r-1", "tx-1", [("2", 2)], T0 + DAY)
    with pytest.raises(FailedPrecondition, match="'2'"):
        store.return_lines("r-2", "tx-1", [("2", 2)], T0 + DAY)
    with pytest.raises(InvalidInput) as exc:
        store.return_lines("r-3", "tx-1", [("9", 1)], T0 + DAY)
    assert exc.value.field == "lines[0].line_id"
    with pytest.raises(InvalidInput):
        store.return_lines("r-4", "tx-1", [("1", 0)], T0 + DAY)
    with pytest.raises(AlreadyExists):
        store.return_lines("r-1", "tx-1", [("2", 1)], T0 + DAY)
    with pytest.raises(NotFound):
        store.return_lines("r-5", "nope", [("1", 1)], T0 + DAY)


def test_return_after_points_were_spent_records_debt(store: Store) -> None:
    enrol(store, "m1")
    out = checkout(store, "tx-1", BASKET_1, "m1")
    at = T0 + 15 * DAY
    store.adjust_points("spend", "m1", -16, "redeemed at partner", at)
    ret = store.return_lines("r-1", "tx-1", [("1", 2), ("2", 3), ("3", 1)], at)
    assert ret.points_clawed_back == out.points_earned == ret.debt_added
    m = store.get_member("m1", at)
    assert (m.points_available, m.points_debt) == (-16, 16)
    store.adjust_points("goodwill", "m1", 40, "goodwill", at + DAY)
    m = store.get_member("m1", at + DAY)
    assert (m.points_available, m.points_debt) == (24, 0)


# ---------------------------------------------------------------------------------------------
# Concurrency


def test_concurrent_commits_never_overspend_points_or_a_single_use_code(store: Store) -> None:
    enrol(store, "m1")
    store.adjust_points("adj-1", "m1", 300, "welcome", T0 - DAY)
    store.create_codes("panadol-coupon", ["PAN-1"], 1, False, T0 - DAY, T0 + DAY)
    lines = [("1", "PANADOL-20", 1, 2680), ("2", "RICE-5KG", 1, 4500)]

    results = _run_threads(
        16,
        lambda i: checkout(
            store, f"tx-{i}", lines, "m1", codes=["PAN-1"], redeem=-1, compiled=COMPILED_BUDGET
        ),
    )
    assert all(not isinstance(r, Exception) for r in results), results
    coupon_uses = sum(1 for r in results for u in r.offers if u.code == "PAN-1")
    redeemed = sum(r.points_redeemed for r in results)
    assert coupon_uses == 1
    assert redeemed == 300
    m = store.get_member("m1", T0)
    assert m.points_available == 0 and m.points_debt == 0
    state = store.pricing_state(POLICY_BUDGET, "m1", None, ["PAN-1"], T0)
    assert state.code_status == {"PAN-1": CodeStatus.USED_UP}


def test_total_budget_is_never_exceeded_under_concurrent_commits(store: Store) -> None:
    store.create_codes("panadol-coupon", ["PAN-M"], 100, False, T0 - DAY, T0 + DAY)
    lines = [("1", "PANADOL-20", 1, 2680)]
    results = _run_threads(
        12, lambda i: checkout(store, f"tx-{i}", lines, codes=["PAN-M"], compiled=COMPILED_BUDGET)
    )
    assert all(not isinstance(r, Exception) for r in results), results
    given = sum(
        u.discount_minor for r in results for u in r.offers if u.offer_id == "panadol-coupon"
    )
    assert given == 2000
    limits = store.pricing_state(POLICY_BUDGET, None, None, [], T0).limits
    assert limits["panadol-coupon"].budget_minor == 0
    funded = sum(funded_by(e).get("gsk", 0) for e in store.ledger())
    assert funded == 2000


def test_a_price_fn_that_overspends_is_refused_and_changes_nothing(store: Store) -> None:
    enrol(store, "m1")
    store.adjust_points("adj-1", "m1", 100, "welcome", T0 - DAY)
    b = basket(BASKET_1)
    stale = engine.price(
        COMPILED, b, engine.Member("m1", "member", available_points=5000), redeem_points=500
    )
    with pytest.raises(Conflict):
        commit(
            store, "tx-1", "fp", lambda state: stale, T0, policy=POLICY, basket=b, member_id="m1"
        )
    assert store.get_member("m1", T0).points_available == 100
    assert store.ledger()[-1].kind == "adjust"


# ---------------------------------------------------------------------------------------------
# Points lots


def test_pending_points_become_available_and_lots_expire_fifo(store: Store) -> None:
    enrol(store, "m1")
    store.adjust_points("late", "m1", 200, "lot A", T0, expires_at=T0 + 60 * DAY)
    store.adjust_points("soon", "m1", 200, "lot B", T0, expires_at=T0 + 30 * DAY)
    out = checkout(store, "tx-1", BASKET_1, "m1", redeem=100)
    # tender 1000 leaves 15180 earning: 15 points
    assert (out.points_redeemed, out.points_earned) == (100, 15)
    m = store.get_member("m1", T0)
    assert (m.points_available, m.points_pending) == (300, 15)
    assert [(lot.points, lot.expires_at) for lot in m.lots] == [
        (100, T0 + 30 * DAY),
        (200, T0 + 60 * DAY),
        (15, EXPIRES),
    ]
    assert store.get_member("m1", AVAILABLE - timedelta(seconds=1)).points_pending == 15
    assert store.get_member("m1", AVAILABLE).points_available == 315
    # lot B (burned first because it expires first) loses its last 100 points; adjusted
    # lots keep the exact expiry they were given
    assert store.get_member("m1", T0 + 30 * DAY).points_available == 215
    assert store.get_member("m1", T0 + 60 * DAY).points_available == 15
    assert store.get_member("m1", EXPIRES).points_available == 0


def test_adjust_points_is_idempotent_and_refuses_overdraw(store: Store) -> None:
    enrol(store, "m1")
    a = store.adjust_points("adj-1", "m1", 50, "welcome", T0)
    assert store.adjust_points("adj-1", "m1", 50, "welcome", T0 + DAY) == a
    assert store.get_member("m1", T0).points_available == 50
    with pytest.raises(AlreadyExists):
        store.adjust_points("adj-1", "m1", 60, "welcome", T0)
    with pytest.raises(FailedPrecondition):
        store.adjust_points("adj-2", "m1", -51, "too much", T0)
    store.adjust_points("adj-3", "m1", -51, "write-off", T0, allow_negative=True)
    m = store.get_member("m1", T0)
    assert (m.points_available, m.points_debt) == (-1, 1)


# ---------------------------------------------------------------------------------------------
# Tiers, coupons, durability, ledger


def test_tier_upgrades_when_rolling_spend_crosses_a_threshold_and_never_downgrades(
    store: Store,
) -> None:
    enrol(store, "m1")
    small = checkout(store, "tx-1", BASKET_1, "m1")
    assert (small.tier_before, small.tier_after) == ("member", "member")
    big = checkout(store, "tx-2", [("1", "RICE-5KG", 45, 4500)], "m1", at=T0 + DAY)
    assert net(big) < 200_000 <= net(big) + net(small)
    assert (big.tier_before, big.tier_after) == ("member", "vip")
    store.cancel("tx-2", T0 + 2 * DAY)
    assert store.get_member("m1", T0 + 2 * DAY).tier == "vip"
    year_later = store.get_member("m1", T0 + 400 * DAY)
    assert year_later.rolling_spend_minor == 0 and year_later.tier == "vip"


def test_coupon_issue_is_idempotent_per_issue_and_member(store: Store) -> None:
    enrol(store, "m1")
    enrol(store, "m2")
    args = ("panadol-coupon", ["m1", "m2"], 2, T0, T0 + 30 * DAY, T0)
    first = store.issue_coupons("iss-1", *args)
    assert store.issue_coupons("iss-1", *args) == first
    assert [c.uses_left for c in store.get_member("m1", T0).wallet] == [2]
    with pytest.raises(AlreadyExists):
        store.issue_coupons("iss-1", "panadol-coupon", ["m1"], 3, T0, T0 + 30 * DAY, T0)
    with pytest.raises(NotFound):
        store.issue_coupons("iss-2", "panadol-coupon", ["ghost"], 1, T0, T0 + DAY, T0)
    member = store.pricing_state(POLICY, "m1", [], [], T0).member
    assert member is not None and member.wallet == {"panadol-coupon": 2}
    expired = store.pricing_state(POLICY, "m1", [], [], T0 + 30 * DAY).member
    assert expired is not None and expired.wallet == {}


def test_code_statuses_single_multi_and_per_member(store: Store) -> None:
    enrol(store, "m1")
    enrol(store, "m2")
    store.create_codes("panadol-coupon", ["ONCE-EACH"], 10, True, T0 - DAY, T0 + DAY)
    store.create_codes("panadol-coupon", ["LATER"], 1, False, T0 + DAY, T0 + 2 * DAY)
    assert store.create_codes("panadol-coupon", ["LATER"], 1, False, T0 + DAY, T0 + 2 * DAY) == 0
    store.create_codes("nonexistent-offer", ["ORPHAN"], 1, False, T0 - DAY, T0 + DAY)
    checkout(store, "tx-1", [PANADOL], "m1", codes=["ONCE-EACH"], compiled=COMPILED_BUDGET)
    s1 = store.pricing_state(POLICY, "m1", [], ["ONCE-EACH", "LATER", "NOPE", "ORPHAN"], T0)
    assert s1.code_status == {
        "ONCE-EACH": CodeStatus.USED_UP,
        "LATER": CodeStatus.NOT_YET_VALID,
        "NOPE": CodeStatus.INVALID,
        "ORPHAN": CodeStatus.INVALID,
    }
    assert s1.coupons == ()
    s2 = store.pricing_state(POLICY, "m2", [], ["ONCE-EACH"], T0)
    assert s2.code_status["ONCE-EACH"] == CodeStatus.VALID
    assert s2.coupons == ("panadol-coupon",)
    guest = store.pricing_state(POLICY, None, [], ["ONCE-EACH", "LATER"], T0 + 3 * DAY)
    assert guest.code_status == {"ONCE-EACH": CodeStatus.EXPIRED, "LATER": CodeStatus.EXPIRED}
    with pytest.raises(AlreadyExists):
        store.create_codes("panadol-coupon", ["LATER"], 5, False, T0, T0 + DAY)


def test_data_survives_closing_and_reopening(store_factory: Callable[[], Store]) -> None:
    first = store_factory()
    enrol(first, "m1")
    out = checkout(first, "tx-1", BASKET_1, "m1")
    first.close()
    again = store_factory()
    assert checkout(again, "tx-1", BASKET_1, "m1") == out
    assert again.get_member("m1", T0).points_pending == 16
    assert len(again.ledger()) == 1


def test_ledger_carries_line_detail_and_funding_that_reconciles(store: Store) -> None:
    enrol(store, "m1")
    store.issue_coupons("iss-1", "panadol-coupon", ["m1"], 1, T0 - DAY, T0 + 30 * DAY, T0)
    out = checkout(store, "tx-1", [*BASKET_1, PANADOL], "m1")
    store.return_lines("r-1", "tx-1", [("4", 1)], T0 + DAY)
    store.cancel("tx-1", T0 + 2 * DAY)
    entries = store.ledger()
    assert [e.kind for e in entries] == ["commit", "return", "cancel"]
    assert [e.seq for e in store.ledger(since=entries[0].seq)] == [e.seq for e in entries[1:]]
    commit = entries[0]
    assert list(commit.lines) == list(out.lines)
    funded_offers = {o.funder_id: o.funded_minor for o in out.offers if o.funded_minor}
    assert _nonzero(funded_by(commit)) == funded_offers == {"gsk": 1500}
    assert _nonzero(funded_by(entries[1])) == {"gsk": -500}
    assert _nonzero(funded_by(entries[2])) == {"gsk": -1000}
    net: dict[str, int] = {}
    for e in entries:
        for f, v in funded_by(e).items():
            net[f] = net.get(f, 0) + v
    assert all(v == 0 for v in net.values())
    assert sum(sign(e) * e.amount_minor for e in entries) == 0
    assert sum(sign(e) * e.points_earned for e in entries) == 0
    # every entry of the transaction carries the checkout context of its commit
    assert {(e.store_id, e.channel, e.tier, tuple(e.segments)) for e in entries} == {
        ("SH-001", "pos", "member", ())
    }
    line4 = next(x for x in commit.lines if x.line_id == "4")
    assert line4.sku == "PANADOL-20" and line4.quantity == 3
    assert [(d.offer_id, d.funder_id) for d in line4.discounts][0] == ("panadol-coupon", "gsk")


def _nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


def test_time_must_be_timezone_aware(store: Store) -> None:
    with pytest.raises(InvalidInput):
        store.upsert_member(MemberProfile("m1"), T0.replace(tzinfo=None))
    assert timedelta(0) == T0.utcoffset()


def test_no_return_window_and_no_expiry(store: Store) -> None:
    # given the programme with pending_days 0 and expiry_months 0
    rules = engine.pricing.rules.parse_rules(engine.pricing.rules.rules_to_dict(RULES))
    rules.points.pending_days = 0
    rules.points.expiry_months = 0
    compiled = engine.compile_rules(rules, COMPILED.catalogue)
    enrol(store, "m1")
    # when the member buys the plain basket (16 points, see store_fixtures)
    out = checkout(store, "tx-1", BASKET_1, "m1", compiled=compiled)
    # then the points are spendable at once and never expire
    assert out.points_earned == 16
    now = store.get_member("m1", T0)
    assert (now.points_available, now.points_pending) == (16, 0)
    assert [lot.expires_at for lot in now.lots] == [None]
    assert store.get_member("m1", T0 + 3650 * DAY).points_available == 16


def test_batch_reads_and_segment_updates_keep_everything_else(store: Store) -> None:
    store.upsert_member(
        MemberProfile("m1", tier="vip", segments=frozenset({"keep", "old"}), birthday_month=7), T0
    )
    enrol(store, "m2")
    store.adjust_points("adj-1", "m1", 40, "welcome", T0)
    got = store.get_members(["m1", "ghost", "m2", "m1"], T0)
    assert sorted(got) == ["m1", "m2"] and got["m1"].points_available == 40
    changed = store.update_segments(
        {"m1": (["new"], ["old"]), "m2": ([], ["absent"]), "ghost": (["x"], [])}, T0
    )
    assert changed == 1
    m1 = store.get_member("m1", T0)
    assert m1.segments == {"keep", "new"}
    assert (m1.tier, m1.birthday_month, m1.points_available) == ("vip", 7, 40)
    assert store.get_member("m2", T0).segments == frozenset()
