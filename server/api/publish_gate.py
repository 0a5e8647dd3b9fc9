"""The simulation gate of PublishRuleSet (the server's ``--publish-simulate-days``).

Before a rule set with guardrails is stored, its recent baskets are priced with it: the
ledger's last ``days`` days (by pricing time, on the server's clock), read from the store as
``loyalty ledger export`` reads it (:func:`server.analytics.ledger.export_ledger`, the history
CampaignService.Simulate reads) and scored by
:func:`engine.analytics.guardrail_gate.simulated_breaches`. A basket that breaches a guardrail
refuses the publish (FAILED_PRECONDITION naming the breaches), unless the request gives a
``guardrail_override_reason``: then it is published and its note records the reason and what
was breached. Validation (probing each offer alone) runs first, in compiling.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.analytics.guardrail_gate import BasketBreach, simulated_breaches
from engine.errors import FailedPrecondition
from engine.pricing.compiler import CompiledRules, compile_rules
from engine.pricing.guardrails import enabled
from loyalty.v1 import rules_pb2
from server.analytics.ledger import export_ledger, member_attributes
from server.rules.registry import RuleRegistry
from server.store.base import Store

log = logging.getLogger(__name__)

MAX_LISTED = 10  # breaches named in a refusal or a note; the rest are counted


@dataclass(frozen=True)
class Gated:
    """A candidate that passed the gate: compiled, with the note to store."""

    compiled: CompiledRules
    seconds: float  # spent validating and compiling
    note: str


def summary(found: list[BasketBreach]) -> str:
    """The first breaches, one per line, and how many more there are."""
    listed = [f"- {b.describe()}" for b in found[:MAX_LISTED]]
    if len(found) > MAX_LISTED:
        listed.append(f"- and {len(found) - MAX_LISTED} more")
    return "\n".join(listed)


def gate(
    registry: RuleRegistry,
    store: Store | None,
    rules: rules_pb2.RuleSet,
    note: str,
    override_reason: str,
    days: int,
    now: datetime,
) -> Gated:
    """Compile ``rules`` (RuleSetInvalid when invalid) and, when ``days`` > 0, a store is kept
    and the rules have guardrails, refuse it if a basket of the last ``days`` days breaches
    them and no ``override_reason`` is given (FailedPrecondition)."""
    start = time.perf_counter()
    compiled = compile_rules(rules, registry.catalogue)
    seconds = time.perf_counter() - start
    if days <= 0 or store is None or not enabled(rules.guardrails):
        return Gated(compiled, seconds, note)
    history = export_ledger(store, registry.catalogue, now=now)
    attributes = member_attributes(store, history, now) if compiled.attr_predicates else None
    found = simulated_breaches(compiled, history, now - timedelta(days=days), attributes)
    if not found:
        return Gated(compiled, seconds, note)
    baskets = len({b.transaction_id for b in found})
    what = f"{len(found)} guardrail breach(es) in {baskets} basket(s) of the last {days} day(s)"
    if not override_reason:
        raise FailedPrecondition(
            f"the rule set's simulation over the ledger's last {days} day(s) breaches "
            f"its guardrails ({what}); fix the offers or publish with "
            f"guardrail_override_reason:\n{summary(found)}"
        )
    log.warning("publishing over guardrail breaches (%s): %s", what, override_reason)
    record = f"guardrail override: {override_reason}\nbreached: {what}\n{summary(found)}"
    return Gated(compiled, seconds, f"{note}\n{record}" if note else record)
