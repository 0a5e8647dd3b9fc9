"""CRV (issue 11, item 10), through a real store (embedded and Redis) and rule registry:
vendor deduction statements equal the ledger's vendor funding to the cent, reversals
included; the advertised-equals-charged audit re-derives every committed line under the
rule-set version that priced it, and reports exactly the lines that differ."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

import engine
from engine.analytics.audit import audit
from engine.analytics.reports import statement_summary, vendor_statement
from loyalty.v1 import rules_pb2
from server.analytics.audit import audit_ledger, compiled_versions
from server.analytics.ledger import export_ledger
from server.cli.main import main
from server.rules.registry import RuleRegistry
from server.store import Consent, MemberProfile, PricingState, Store, open_store
from server.store.checkout import commit
from server.store.policy import Policy
from server.store.records import Provenance, funded_by, sign
from server.store.stored import entry_at
from tests.store_fixtures import BASKET_1, CATALOGUE, DAY, PANADOL, RULES, T0

# version 2: VIP skincare 30% instead of 20%, and oral care 10% once per member a month
RULES_V2 = rules_pb2.RuleSet()
RULES_V2.CopyFrom(RULES)
for _offer in RULES_V2.offers:
    if _offer.id == "vip-skincare":
        _offer.percent_off.percent_bps = 3000
    if _offer.id == "oral-care-10":
        _offer.limits.per_member = 1
        _offer.limits.per_member_period = rules_pb2.Limits.MONTH

TOOTHPASTE = ("5", "TOOTHPASTE-120", 2, 1890)


def checkout(
    store: Store,
    tx: str,
    lines: Sequence[tuple[str, str, int, int]],
    member_id: str | None,
    version: int,
    compiled: engine.CompiledRules,
    at: datetime,
) -> None:
    """Commit as the Commit servicer does, recording the rule-set version that priced it."""
    b = engine.Basket(tuple(engine.Line(*x) for x in lines), at, "SH-001", "pos")

    def price_fn(state: PricingState) -> engine.PricingResult:
        return engine.price(compiled, b, state.member, coupons=state.coupons, limits=state.limits)

    commit(
        store,
        tx,
        json.dumps([member_id, [list(x) for x in lines], at.isoformat()]),
        price_fn,
        at,
        policy=Policy.from_rules(compiled.rules),
        basket=b,
        member_id=member_id,
        provenance=Provenance(ruleset_version=version),
    )


@dataclass
class Programme:
    store: Store
    registry: RuleRegistry
    v1: int
    v2: int


def build(store: Store, registry: RuleRegistry) -> Programme:
    """Two commits under version 1, version 2 published, three more commits; a cancel and
    two returns (one of each version)."""
    registry.import_catalogue(CATALOGUE)
    v1, _ = registry.publish(RULES, "v1", T0 - 2 * DAY)
    c1 = registry.current().compiled
    everyone = Consent(True, True, True)
    store.upsert_member(MemberProfile("vip1", tier="vip", consent=everyone), T0 - DAY)
    store.upsert_member(MemberProfile("m2", tier="member", birthday_month=3), T0 - DAY)
    store.issue_coupons("i1", "panadol-coupon", ["vip1", "m2"], 1, T0 - DAY, T0 + 30 * DAY, T0)
    store.issue_coupons("i2", "colgate-coupon", ["vip1"], 2, T0 - DAY, T0 + 30 * DAY, T0)
    checkout(store, "t1", [*BASKET_1, PANADOL, TOOTHPASTE], "vip1", v1, c1, T0)
    checkout(store, "t2", [PANADOL, ("2", "COLA-330", 7, 350)], "m2", v1, c1, T0 + DAY)
    v2, _ = registry.publish(RULES_V2, "v2", T0 + DAY)
    c2 = registry.current().compiled
    at = T0 + 2 * DAY
    checkout(store, "t3", [("1", "CREAM-50", 2, 5990), TOOTHPASTE], "vip1", v2, c2, at)
    checkout(store, "t4", [TOOTHPASTE, ("6", "CREAM-50", 1, 5990)], "vip1", v2, c2, at)
    checkout(store, "t5", [PANADOL, ("2", "COLA-330", 3, 350)], None, v2, c2, at)
    store.cancel("t2", T0 + 3 * DAY)
    store.return_lines("r1", "t1", [("4", 1), ("5", 1)], T0 + 3 * DAY)
    store.return_lines("r2", "t3", [("1", 1)], T0 + 4 * DAY)
    return Programme(store, registry, v1, v2)


def open_both(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Programme:
    if kind == "redis":
        from server.rules.versions import RedisVersions

        url = request.getfixturevalue("redis_url")
        return build(open_store("redis", url=url), RuleRegistry(versions=RedisVersions(url)))
    data = tmp_path / "data"
    return build(open_store("embedded", data_dir=data), RuleRegistry(data))


@pytest.fixture(params=["embedded", "redis"])
def programme(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Programme]:
    p = open_both(request.param, tmp_path, request)
    yield p
    p.store.close()
    p.registry.close()


def ledger_funding(store: Store, vendor: str, first: date, last: date) -> tuple[int, int]:
    """(deducted by commits, reversed) of ``vendor`` over the days, from the entries."""
    deducted = reversed_ = 0
    for e in store.ledger():
        if first <= entry_at(e).date() <= last:
            amount = funded_by(e).get(vendor, 0)
            if sign(e) > 0:
                deducted += amount
            else:
                reversed_ += amount
    return deducted, reversed_


@pytest.mark.parametrize("vendor", ["gsk", "colgate"])
def test_statements_equal_the_ledgers_vendor_funding_with_reversals(programme, vendor):
    history = export_ledger(programme.store, CATALOGUE, now=T0)
    first, last = T0.date(), (T0 + 4 * DAY).date()
    lines = vendor_statement(history, vendor, first, last)
    summary = statement_summary(lines)
    total = summary.filter(pl.col("offer_id") == "TOTAL").row(0, named=True)
    deducted, reversed_ = ledger_funding(programme.store, vendor, first, last)
    assert (total["deducted_minor"], total["reversed_minor"]) == (deducted, reversed_)
    assert total["net_minor"] == lines["funded_minor"].sum() == deducted + reversed_
    assert reversed_ < 0 < deducted
    assert set(lines.filter(pl.col("kind") != "commit")["kind"]) <= {"cancel", "return"}
    assert (lines.filter(pl.col("kind") != "commit")["funded_minor"] <= 0).all()
    assert (lines.filter(pl.col("kind") == "commit")["funded_minor"] >= 0).all()
    if vendor == "gsk":  # Panadol: t1, t2, t5 (guest: no coupon), t2 cancelled, 1 of t1 back
        got = lines.select("kind", "entry_id", "sku", "quantity", "funded_minor").rows()
        assert got == [
            ("commit", "t1", "PANADOL-20", 3, 1500),
            ("commit", "t2", "PANADOL-20", 3, 1500),
            ("cancel", "t2", "PANADOL-20", -3, -1500),
            ("return", "r1", "PANADOL-20", -1, -500),
        ]
        assert total["net_minor"] == 1000
    # a period is its days only: the day of the commits alone has no reversals
    day_one = statement_summary(vendor_statement(history, vendor, first, first))
    assert day_one["reversed_minor"][-1] == 0
    assert day_one["deducted_minor"][-1] == ledger_funding(programme.store, vendor, first, first)[0]


def test_the_audit_passes_with_each_basket_under_its_own_version(programme):
    result = audit_ledger(programme.store, programme.registry, now=T0)
    assert result.passed, result.differences
    assert result.by_version == {programme.v1: 2, programme.v2: 3}
    assert result.baskets == 5 and result.discounts > 0
    # t4: oral care 10% was used up by t3 (once a month under v2); without the limit the rules
    # would give it, so it is listed as limit-dependent, not as a difference
    dep = result.limit_dependent.select("transaction_id", "offer_id", "assumed").rows()
    assert ("t4", "oral-care-10", "exhausted") in dep
    assert {t for t, _, _ in dep} <= {"t4"}
    # a period: only the commits of version 1's days
    early = audit_ledger(programme.store, programme.registry, T0 - DAY, T0 + 2 * DAY, now=T0)
    assert early.passed and early.by_version == {programme.v1: 2}


def test_the_audit_reports_exactly_a_tampered_line(programme):
    history = export_ledger(programme.store, CATALOGUE, now=T0)
    versions = compiled_versions(programme.registry, [programme.v1, programme.v2])
    assert audit(history, versions).passed
    # the receipt of t3 says 30% off its cream (v2); tamper: 20% (what v1 advertised)
    row = (pl.col("transaction_id") == "t3") & (pl.col("kind") == "commit")
    row = row & (pl.col("line_id") == "1")
    tampered = history.with_columns(
        pl.when(row)
        .then(
            pl.col("discounts").list.eval(
                pl.struct(
                    pl.element().struct.field("offer_id"),
                    pl.element().struct.field("funder_id"),
                    pl.when(pl.element().struct.field("offer_id") == "vip-skincare")
                    .then(2396)
                    .otherwise(pl.element().struct.field("amount_minor"))
                    .alias("amount_minor"),
                    pl.element().struct.field("funded_minor"),
                )
            )
        )
        .otherwise(pl.col("discounts"))
        .alias("discounts")
    )
    found = audit(tampered, versions)
    assert not found.passed
    got = found.differences.select(
        "transaction_id", "line_id", "offer_id", "recorded_minor", "rederived_minor", "reason"
    ).rows()
    assert got == [("t3", "1", "vip-skincare", 2396, 3594, "amount")]  # 30% of 11980


def test_pricing_under_the_wrong_version_is_reported(programme):
    history = export_ledger(programme.store, CATALOGUE, now=T0)
    versions = compiled_versions(programme.registry, [programme.v1, programme.v2])
    wrong = {programme.v1: versions[programme.v2], programme.v2: versions[programme.v2]}
    found = audit(history, wrong)
    # t1's cream (v1: 20% of 11980 = 2396) re-derived under v2 (30%) is the difference
    # (with the spend ladder after it unchanged: both give the same step)
    cream = found.differences.filter(pl.col("offer_id") == "vip-skincare")
    assert cream.select(
        "transaction_id", "line_id", "recorded_minor", "rederived_minor"
    ).rows() == [("t1", "1", 2396, 3594)]
    assert set(found.differences["transaction_id"]) == {"t1"}
    # a version the registry does not know cannot be checked: reported, never passed
    missing = audit(history, {programme.v2: versions[programme.v2]})
    assert set(missing.differences.filter(pl.col("reason") == "no_version")["transaction_id"]) == {
        "t1",
        "t2",
    }


def tamper_stored(data: Path, tx: str, line_id: str, offer_id: str, amount: int) -> None:
    """Rewrite one discount of a commit in the embedded store's ledger table."""
    import sqlite3

    from server.store.embedded.store import DB_FILE
    from server.store.records import LedgerEntry

    db = sqlite3.connect(data / DB_FILE)
    seq, body = db.execute(
        "SELECT seq, body FROM ledger WHERE kind = 'commit' AND transaction_id = ?", (tx,)
    ).fetchone()
    entry = LedgerEntry.FromString(body)
    for ln in entry.lines:
        if ln.line_id == line_id:
            for d in ln.discounts:
                if d.offer_id == offer_id:
                    d.amount_minor = amount
    db.execute("UPDATE ledger SET body = ? WHERE seq = ?", (entry.SerializeToString(), seq))
    db.commit()
    db.close()


def test_the_cli_statement_and_audit(tmp_path, capsys):
    data = tmp_path / "data"
    p = build(open_store("embedded", data_dir=data), RuleRegistry(data))
    p.store.close()
    p.registry.close()
    period = ["--from", T0.date().isoformat(), "--to", (T0 + 4 * DAY).date().isoformat()]
    out = tmp_path / "gsk.csv"
    summary = tmp_path / "gsk-summary.parquet"
    args = ["reports", "statement", "--vendor", "gsk", *period, "--data-dir", str(data)]
    assert main([*args, "--out", str(out), "--summary", str(summary)]) == 0
    assert "net deduction 1,000 minor units" in capsys.readouterr().out
    assert pl.read_csv(out)["funded_minor"].sum() == 1000
    assert pl.read_parquet(summary)["net_minor"][-1] == 1000
    diffs = tmp_path / "diffs.parquet"
    args = ["reports", "audit", *period, "--data-dir", str(data), "--out", str(diffs)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "passed" in text and "5 baskets" in text and "limit-dependent" in text
    assert pl.read_parquet(diffs).is_empty()
    # tamper the stored ledger entry of t3: its cream line says 20% off (v1's advert)
    tamper_stored(data, "t3", "1", "vip-skincare", 2396)
    assert main(args) == 1
    assert "FAILED: 1 differences" in capsys.readouterr().out
    got = pl.read_parquet(diffs).select(
        "transaction_id", "line_id", "offer_id", "recorded_minor", "rederived_minor"
    )
    assert got.rows() == [("t3", "1", "vip-skincare", 2396, 3594)]
    assert main(["reports", "audit", "--from", "2025-03-12", "--to", "2025-03-01"]) == 2


def test_attribute_conditions_are_audited_with_the_members_attributes(programme):
    # given version 3 adds an offer for households of 3 or more, and a household of 4 uses it
    rules = rules_pb2.RuleSet()
    rules.CopyFrom(RULES_V2)
    rules.member_attributes.add(name="household_size", type=rules_pb2.AttributeDeclaration.NUMBER)
    family = rules.offers.add(id="family-cola", name="Families: 5% off cola")
    family.scope.skus.append("COLA-330")
    family.percent_off.percent_bps = 500
    family.conditions.attributes.add(name="household_size").number.min = 3
    store, registry = programme.store, programme.registry
    v3, _ = registry.publish(rules, "v3", T0 + 4 * DAY)
    store.upsert_member(
        MemberProfile("fam", tier="member", attributes={"household_size": 4}), T0 + 4 * DAY
    )
    at = T0 + 5 * DAY
    checkout(store, "t6", [("2", "COLA-330", 4, 350)], "fam", v3, registry.current().compiled, at)
    # then the audit re-derives the family discount from the member's attributes: no difference
    result = audit_ledger(store, registry, since=at, now=at)
    assert result.baskets == 1 and result.differences.is_empty()
    # (and a member whose attributes changed since shows the commit as a difference)
    store.upsert_member(MemberProfile("fam", tier="member", attributes={"household_size": 1}), at)
    changed = audit_ledger(store, registry, since=at, now=at)
    assert set(changed.differences["offer_id"].to_list()) == {"family-cola"}
