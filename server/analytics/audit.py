"""The advertised-equals-charged audit over the store's ledger and the rule registry's versions
(:mod:`engine.analytics.audit`): each committed basket re-derived under the version it
recorded, compiled with the registry's catalogue."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from engine.analytics.audit import Audit, audit
from engine.errors import NotFound
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import CompiledRules, compile_rules
from engine.pricing.validate import RuleSetInvalid
from server.analytics.ledger import export_ledger, member_attributes
from server.rules.registry import RuleRegistry
from server.store.base import Store


def compiled_versions(
    registry: RuleRegistry, versions: list[int], catalogue: Catalogue | None = None
) -> dict[int, CompiledRules]:
    """Each of ``versions`` the registry knows, compiled (unknown ones, 0, and ones that no
    longer compile with the catalogue are left out: the audit reports their baskets as
    ``no_version``)."""
    out: dict[int, CompiledRules] = {}
    for v in versions:
        if v <= 0:
            continue
        try:
            rules = registry.get(v).rules
        except NotFound:
            continue
        try:
            out[v] = compile_rules(rules, catalogue or registry.catalogue)
        except RuleSetInvalid:
            continue
    return out


def audit_ledger(
    store: Store,
    registry: RuleRegistry,
    since: datetime | None = None,
    until: datetime | None = None,
    catalogue: Catalogue | None = None,
    now: datetime | None = None,
) -> Audit:
    """Audit the commits of the store's ledger with ``since <= at < until``."""
    cat = catalogue or registry.catalogue
    history = export_ledger(store, cat, now=now)
    commits = history.filter(pl.col("kind") == "commit")
    if since is not None:
        commits = commits.filter(pl.col("at") >= since)
    if until is not None:
        commits = commits.filter(pl.col("at") < until)
    versions = sorted({int(v) for v in commits["ruleset_version"].unique()})
    compiled = compiled_versions(registry, versions, cat)
    # attribute conditions: the members' attributes now (the ledger records none), so a member
    # whose attributes changed since a commit can show that commit as a difference
    attributes = None
    if any(c.attr_predicates for c in compiled.values()):
        attributes = member_attributes(store, commits, now or datetime.now(UTC))
    return audit(commits, compiled, since, until, attributes)
