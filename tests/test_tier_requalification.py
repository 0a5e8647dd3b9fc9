"""Tier requalification through gRPC on port 0, on each store: tiers go up at a commit, a
cancel or return takes back the upgrade its sale gave, a requalification run at the period end
steps members down by the rule set's TierPolicy (ONE_STEP, TO_QUALIFYING, NEVER), runs are
idempotent per run id, bad policies are refused with field paths, and ``loyalty tiers
requalify`` runs it against a served store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from engine.pricing.rules import parse_rules
from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2
from tests.test_reports import open_test_store
from tests.test_server_checkout import T0, basket, commit, running_shop, violations


@pytest.fixture(params=["embedded", "redis", "cluster"])
def shop(tmp_path, request):
    """The server of tests/test_server_checkout.py, on a Redis Cluster too."""
    yield from running_shop(tmp_path, request)


RICE = 10_000  # a unit's price: 5 units reach silver, 10 gold


def rules(downgrade: str = "NEVER", **policy: object) -> dict[str, object]:
    return {
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "tiers": [
            {"id": "member", "earn_multiplier_bps": 10000},  # the entry tier
            {"id": "silver", "qualify_spend_minor": 50_000, "earn_multiplier_bps": 10000},
            {"id": "gold", "qualify_spend_minor": 100_000, "earn_multiplier_bps": 12500},
            {"id": "staff", "earn_multiplier_bps": 10000},  # assigned by hand
        ],
        "tier_policy": {"downgrade": downgrade, "period_months": 12, "anchor_month": 1, **policy},
    }


def publish(shop, downgrade: str = "NEVER", **policy: object) -> None:
    shop.campaigns.PublishRuleSet(
        campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(rules(downgrade, **policy)))
    )


def enrol(shop, member_id: str, tier: str = "member") -> None:
    shop.members.UpsertMember(members_pb2.UpsertMemberRequest(member_id=member_id, tier=tier))


def buy(shop, tx: str, member_id: str, units: int) -> checkout_pb2.CommitResponse:
    lines = [("L1", "RICE", units, RICE)]
    return commit(shop, tx, basket(member_id, lines, at=None))


def give_back(shop, return_id: str, tx: str, units: int) -> None:
    req = checkout_pb2.ReturnRequest(return_id=return_id, transaction_id=tx)
    req.lines.add(line_id="L1", quantity=units)
    shop.checkout.Return(req)


def tier(shop, member_id: str) -> str:
    return shop.member(member_id).tier


def requalify(shop, run_id: str, at: datetime | None = None):
    req = members_pb2.RequalifyTiersRequest(run_id=run_id)
    if at is not None:
        req.at.FromDatetime(at)
    return shop.members.RequalifyTiers(req)


# 1 January 2027 00:00 in Shanghai: the period end after T0 (2026-11-18)
PERIOD_END = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
AFTER_IT = PERIOD_END + timedelta(days=1, hours=2)


def test_a_commit_upgrades_and_a_return_takes_the_upgrade_back_even_with_never(shop):
    publish(shop)  # NEVER: a return still undoes the upgrade its own sale gave
    enrol(shop, "m1")
    done = buy(shop, "t1", "m1", 8)
    assert done.member.tier == "silver"
    m = shop.member("m1")
    assert (m.tier, m.qualifying_spend_minor, m.rolling_spend_minor) == ("silver", 80_000, 80_000)
    assert m.next_requalification_at.ToDatetime(tzinfo=UTC) == PERIOD_END
    give_back(shop, "r1", "t1", 3)  # 50,000 left: silver still earned
    assert tier(shop, "m1") == "silver"
    give_back(shop, "r2", "t1", 1)  # 40,000: back down at once
    m = shop.member("m1")
    assert (m.tier, m.qualifying_spend_minor) == ("member", 40_000)


def test_a_cancel_takes_back_only_what_the_remaining_spend_no_longer_earns(shop):
    publish(shop, "ONE_STEP")
    enrol(shop, "m1")
    buy(shop, "t1", "m1", 6)  # 60,000: silver
    assert buy(shop, "t2", "m1", 5).member.tier == "gold"  # 110,000
    reply = shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t1"))
    assert reply.member.tier == "silver"  # 50,000 left still earns silver
    shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t2"))
    assert tier(shop, "m1") == "member"  # nothing left: the tier held before the sales


def test_a_return_never_goes_below_the_tier_held_before_the_sale(shop):
    publish(shop, "TO_QUALIFYING")
    enrol(shop, "m1", "gold")  # given by hand: held until the period end
    buy(shop, "t1", "m1", 6)
    give_back(shop, "r1", "t1", 6)
    assert tier(shop, "m1") == "gold"


def setup_members(shop) -> None:
    """g1: gold by hand, no spend; s1: silver by spend, set back to member by hand; k1: gold
    by spend; st1: staff by hand; vip1 (the fixture's): a tier these rules do not know, which
    ranks below every tier (the run moves it up to the entry tier, as a commit would)."""
    enrol(shop, "g1", "gold")
    enrol(shop, "s1")
    buy(shop, "t-s1", "s1", 6)
    enrol(shop, "s1", "member")
    enrol(shop, "k1")
    buy(shop, "t-k1", "k1", 11)
    enrol(shop, "st1", "staff")


@pytest.mark.parametrize(
    ("mode", "g1_after"), [("ONE_STEP", "silver"), ("TO_QUALIFYING", "member")]
)
def test_a_run_at_the_period_end_requalifies_every_member(shop, mode, g1_after):
    publish(shop, mode)
    setup_members(shop)
    shop.clock.now = AFTER_IT
    run = requalify(shop, "r-2027")
    assert run.period_end.ToDatetime(tzinfo=UTC) == PERIOD_END
    assert (run.upgraded, run.downgraded, run.kept, run.repeated) == (2, 1, 2, False)
    after = {m: tier(shop, m) for m in ("g1", "s1", "k1", "st1", "vip1")}
    assert after == {"g1": g1_after, "s1": "silver", "k1": "gold", "st1": "staff", "vip1": "member"}
    # the same run again: the same counts, nothing changed
    again = requalify(shop, "r-2027")
    assert (again.upgraded, again.downgraded, again.kept, again.repeated) == (2, 1, 2, True)
    assert {m: tier(shop, m) for m in after} == after
    # another run for the same period is refused: nobody steps down twice
    with pytest.raises(grpc.RpcError) as exc:
        requalify(shop, "r-other")
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # a year later, nobody has spent: everyone by spend goes down once more
    shop.clock.now = AFTER_IT + timedelta(days=365)
    with pytest.raises(grpc.RpcError) as exc:
        requalify(shop, "r-2027")  # the id names the 2027 run
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    second = requalify(shop, "r-2028")
    after = {m: tier(shop, m) for m in ("g1", "s1", "k1", "st1")}
    if mode == "ONE_STEP":
        assert after == {"g1": "member", "s1": "member", "k1": "silver", "st1": "staff"}
        assert (second.upgraded, second.downgraded, second.kept) == (0, 3, 2)
    else:
        assert after == {"g1": "member", "s1": "member", "k1": "member", "st1": "staff"}
        assert (second.upgraded, second.downgraded, second.kept) == (0, 2, 3)


def test_never_keeps_every_tier_but_still_upgrades(shop):
    publish(shop, "NEVER")
    setup_members(shop)
    shop.clock.now = AFTER_IT
    run = requalify(shop, "r1", at=AFTER_IT - timedelta(hours=1))
    assert (run.upgraded, run.downgraded, run.kept) == (2, 0, 3)
    assert [tier(shop, m) for m in ("g1", "s1", "k1")] == ["gold", "silver", "gold"]


def test_a_run_after_the_period_ends_and_only_then(shop):
    publish(shop, "TO_QUALIFYING", period_months=3, anchor_month=2)  # Feb, May, Aug, Nov
    enrol(shop, "g1", "gold")
    # T0 is 18 November: the last period end was 1 November (Shanghai)
    run = requalify(shop, "r1")
    assert run.period_end.ToDatetime(tzinfo=UTC) == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert tier(shop, "g1") == "member"
    assert shop.member("g1").next_requalification_at.ToDatetime(tzinfo=UTC) == datetime(
        2027, 1, 31, 16, 0, tzinfo=UTC
    )
    with pytest.raises(grpc.RpcError) as exc:  # 1 February 2027 has not come yet
        requalify(shop, "r2", at=datetime(2027, 2, 2, tzinfo=UTC))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == ["at"]


def test_a_shorter_qualification_window_counts_only_its_months(shop):
    publish(shop, "TO_QUALIFYING", qualification_window_months=1)
    enrol(shop, "m1")
    buy(shop, "t1", "m1", 6)
    assert shop.member("m1").qualifying_spend_minor == 60_000
    shop.clock.now = T0 + timedelta(days=40)  # the sale is out of the 1-month window
    m = shop.member("m1")
    assert (m.qualifying_spend_minor, m.rolling_spend_minor) == (0, 60_000)
    shop.clock.now = AFTER_IT
    run = requalify(shop, "r1")
    assert (run.downgraded, tier(shop, "m1")) == (1, "member")


@pytest.mark.parametrize(
    ("policy", "fields"),
    [
        ({"period_months": 5}, ["tier_policy.period_months"]),
        ({"anchor_month": 13}, ["tier_policy.anchor_month"]),
        ({"qualification_window_months": 121}, ["tier_policy.qualification_window_months"]),
        (
            {"qualification_window_months": -1, "period_months": -3, "anchor_month": -1},
            [
                "tier_policy.qualification_window_months",
                "tier_policy.period_months",
                "tier_policy.anchor_month",
            ],
        ),
        ({"downgrade": 7}, ["tier_policy.downgrade"]),
    ],
)
def test_a_bad_tier_policy_is_refused_with_its_fields(shop, policy, fields):
    bad = parse_rules(rules())
    bad.tier_policy.Clear()
    for name, value in policy.items():
        setattr(bad.tier_policy, name, value)
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=bad))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == fields
    problems = shop.campaigns.ValidateRuleSet(campaigns_pb2.ValidateRuleSetRequest(rules=bad))
    assert [p.field for p in problems.problems] == fields


def test_a_bad_run_request_names_its_fields(shop):
    publish(shop)
    with pytest.raises(grpc.RpcError) as exc:
        requalify(shop, "")
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == ["run_id"]


def test_the_cli_runs_a_requalification_against_a_served_store(shop, capsys, monkeypatch):
    from server.cli import connect
    from server.cli.main import main

    for name in (connect.TARGET_ENV, connect.API_KEY_ENV, connect.TLS_CA_ENV):
        monkeypatch.delenv(name, raising=False)
    publish(shop, "ONE_STEP")
    enrol(shop, "g1", "gold")
    shop.clock.now = AFTER_IT
    target = ["--target", shop.channel._channel.target().decode()]
    argv = ["tiers", "requalify", "--at", "2027-01-02", *target]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "run requalify-2027-01-02: period ending 2026-12-31 16:00 UTC" in out
    assert "1 upgraded, 1 downgraded, 0 kept" in out  # vip1 up to member, g1 down to silver
    assert tier(shop, "g1") == "silver"
    assert main(argv) == 0  # the same command again: the same run, nothing changed
    assert "done before: nothing changed now" in capsys.readouterr().out
    assert tier(shop, "g1") == "silver"
    assert main([*argv[:3], "2027-01-03", "--run-id", "other", *target]) == 1  # same period
    assert "FAILED_PRECONDITION" in capsys.readouterr().err


def test_an_embedded_file_of_schema_9_is_migrated_with_tiers_held(tmp_path):
    import sqlite3

    from server.store.base import MemberProfile
    from server.store.embedded.store import DB_FILE, EmbeddedStore

    with EmbeddedStore(tmp_path) as store:
        store.upsert_member(MemberProfile("m1", tier="gold"), T0)
    with sqlite3.connect(tmp_path / DB_FILE) as db:  # back to what schema 9 wrote
        db.execute("ALTER TABLE members DROP COLUMN tier_floor")
        db.execute("ALTER TABLE members DROP COLUMN requalified_us")
        db.execute("DROP TABLE tier_runs")
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version VALUES (9, 0)")
    with EmbeddedStore(tmp_path) as store:
        assert store.get_member("m1", T0).tier == "gold"
        with sqlite3.connect(tmp_path / DB_FILE) as db:
            row = db.execute("SELECT tier_floor, requalified_us FROM members").fetchone()
            assert row == (None, 0)
            assert db.execute("SELECT COUNT(*) FROM tier_runs").fetchone() == (0,)


@pytest.fixture(params=["embedded", "redis", "cluster"])
def store(request, tmp_path):
    s = open_test_store(request, tmp_path)
    yield s
    s.close()


def test_a_run_between_a_commits_read_and_its_apply_makes_the_commit_plan_again(store):
    """A commit planned on the member before a run is refused (the run moved the member's
    version) and planned again on the requalified tier: neither change is lost."""
    import engine
    from engine.pricing.catalogue import Catalogue
    from engine.pricing.types import Basket, Line
    from server.store.base import MemberProfile
    from server.store.checkout import commit as commit_loop
    from server.store.policy import Policy

    ruleset = parse_rules(rules("TO_QUALIFYING"))
    compiled = engine.compile_rules(ruleset, Catalogue.from_rows([{"sku": "RICE"}]))
    policy = Policy.from_rules(ruleset)
    now = AFTER_IT
    store.upsert_member(MemberProfile("g1", tier="gold"), now)
    real = store.apply_commit
    replies: list[bool] = []
    runs = []

    def racing(snapshot, plan):
        if not replies:
            runs.append(store.requalify_tiers(policy, "r1", PERIOD_END, now))
        replies.append(real(snapshot, plan))
        return replies[-1]

    store.apply_commit = racing
    sale = Basket((Line("L1", "RICE", 6, RICE),), now, "s1", "pos")

    def price(state):
        return engine.price(compiled, sale, state.member)

    done = commit_loop(store, "t1", "fp", price, now, policy=policy, basket=sale, member_id="g1")
    assert replies == [False, True]
    assert (runs[0].downgraded, runs[0].kept) == (1, 0)
    # the run took gold (no spend in the period); the sale then earned silver
    assert (done.outcome.tier_before, done.outcome.tier_after) == ("member", "silver")
    assert store.get_member("g1", now).tier == "silver"


@pytest.fixture(params=["redis", "cluster"])
def redis_store(request, tmp_path):
    s = open_test_store(request, tmp_path)
    yield s
    s.close()


def test_a_run_cut_short_and_run_again_counts_every_member_once(redis_store, monkeypatch):
    """Members are written a batch at a time (per home slot on a cluster), each batch counted
    with its members: a run that dies after some batches, run again under its id, finishes the
    rest and answers the counts of the whole run."""
    from server.store.base import MemberProfile
    from server.store.policy import Policy
    from server.store.redis import tiers as redis_tiers
    from server.store.redis.io import RedisIO

    policy = Policy.from_rules(parse_rules(rules("TO_QUALIFYING")))
    for i in range(40):  # no spend in the period: gold steps down to member, member stays
        redis_store.upsert_member(MemberProfile(f"m{i}", tier="gold" if i % 2 else "member"), T0)
    monkeypatch.setattr(redis_tiers, "BATCH", 7)
    real, applied = RedisIO.run, []

    def dying(io, name, keys, args):
        if name == "tier_apply":
            if len(applied) == 2:
                raise ConnectionError("the process died here")
            applied.append(keys)
        return real(io, name, keys, args)

    monkeypatch.setattr(RedisIO, "run", dying)
    with pytest.raises(ConnectionError):
        redis_store.requalify_tiers(policy, "r1", PERIOD_END, AFTER_IT)
    written = {k for keys in applied for k in keys[1:]}
    assert 0 < len(written) < 40
    monkeypatch.setattr(RedisIO, "run", real)
    run = redis_store.requalify_tiers(policy, "r1", PERIOD_END, AFTER_IT)
    assert (run.upgraded, run.downgraded, run.kept, run.repeated) == (0, 20, 20, False)
    again = redis_store.requalify_tiers(policy, "r1", PERIOD_END, AFTER_IT)
    assert (again.upgraded, again.downgraded, again.kept, again.repeated) == (0, 20, 20, True)
    assert {redis_store.get_member(f"m{i}", AFTER_IT).tier for i in range(40)} == {"member"}


# ---------------------------------------------------------------------------------------------
# The tier rules themselves (server/store/policy.py), table-driven


def _policy(downgrade: str = "NEVER", **policy: object):
    from server.store.policy import Policy

    return Policy.from_rules(parse_rules(rules(downgrade, **policy)))


@pytest.mark.parametrize(
    ("mode", "current", "spend", "after"),
    [
        ("NEVER", "gold", 0, "gold"),
        ("NEVER", "member", 60_000, "silver"),  # upgrades in every mode
        ("ONE_STEP", "gold", 0, "silver"),
        ("ONE_STEP", "silver", 0, "member"),
        ("ONE_STEP", "member", 0, "member"),  # the entry tier is the floor
        ("ONE_STEP", "gold", 99_999, "silver"),
        ("TO_QUALIFYING", "gold", 0, "member"),
        ("TO_QUALIFYING", "gold", 50_000, "silver"),
        ("TO_QUALIFYING", "gold", 100_000, "gold"),
        ("TO_QUALIFYING", "staff", 0, "staff"),  # assigned by hand: kept
        ("TO_QUALIFYING", "staff", 100_000, "staff"),  # ranked above gold: no upgrade either
        ("TO_QUALIFYING", "platinum", 0, "member"),  # unknown: below every tier
        ("TO_QUALIFYING", "", 60_000, "silver"),
    ],
)
def test_the_requalified_tier_by_mode(mode, current, spend, after):
    assert _policy(mode).requalified_tier(current, spend) == after


@pytest.mark.parametrize(
    ("current", "floor", "spend", "after"),
    [
        ("gold", None, 0, ("gold", None)),  # nothing raised since it was held
        ("gold", "member", 0, ("member", None)),
        ("gold", "member", 60_000, ("silver", "member")),
        ("gold", "member", 100_000, ("gold", "member")),
        ("gold", "silver", 0, ("silver", None)),
        ("silver", "member", 200_000, ("silver", "member")),  # never up on a reversal
    ],
)
def test_the_tier_after_a_reversal(current, floor, spend, after):
    assert _policy("ONE_STEP").reversed_tier(current, floor, spend) == after


def test_a_hand_tier_listed_after_spend_tiers_is_never_reached_by_spend():
    policy = _policy()
    assert policy.upgraded_tier("gold", 10**9) == "gold"  # not "staff"
    assert policy.upgraded_tier("", 0) == "member"  # the entry tier, as before


@pytest.mark.parametrize(
    ("period", "anchor", "at", "end", "next_end"),
    [
        (12, 1, "2026-11-18", "2026-01-01", "2027-01-01"),
        (12, 4, "2026-03-31", "2025-04-01", "2026-04-01"),
        (6, 4, "2026-11-18", "2026-10-01", "2027-04-01"),
        (3, 2, "2026-02-01", "2026-02-01", "2026-05-01"),
        (1, 1, "2026-12-31", "2026-12-01", "2027-01-01"),
    ],
)
def test_period_ends_are_local_midnights_from_the_anchor_month(period, anchor, at, end, next_end):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    policy = _policy(period_months=period, anchor_month=anchor)
    when = datetime.fromisoformat(at).replace(hour=12, tzinfo=zone)

    def local(day: str) -> datetime:
        return datetime.fromisoformat(day).replace(tzinfo=zone).astimezone(UTC)

    assert policy.period_end(when) == local(end)
    assert policy.next_period_end(when) == local(next_end)
