"""MemberService.RequalifyTiers and the tier fields of GetMember's Member (docs/design.md §3,
Tiers): request checks and messages; the run itself is the store's
(:meth:`server.store.base.Store.requalify_tiers`), the rules are the policy's
(:mod:`server.store.policy`)."""

from __future__ import annotations

from datetime import datetime

from engine.errors import InvalidInput
from loyalty.v1 import members_pb2
from server.api.convert import check_ids, timestamp, when
from server.rules.registry import ActiveRules, RuleRegistry
from server.store.base import MemberRecord, Store
from server.store.tiers import tier_spend


def requalify_tiers(
    registry: RuleRegistry, store: Store, request: members_pb2.RequalifyTiersRequest, now: datetime
) -> members_pb2.RequalifyTiersResponse:
    """Requalify every member at the last period end at or before ``request.at`` (unset =
    ``now``, the server's time); a period that has not ended by ``now`` is refused."""
    bad = InvalidInput()
    check_ids(bad, request, ("run_id",))
    at = when(bad, request, "at")
    if bad.violations:
        raise bad
    policy = registry.current().policy  # FailedPrecondition before any rule set
    try:
        period_end = policy.period_end(at or now)
    except (OverflowError, ValueError):  # a period starting before year 1
        raise InvalidInput.at("at", "no requalification period ends at or before it") from None
    if period_end > now:
        raise InvalidInput.at(
            "at", f"the period ending {period_end:%Y-%m-%d %H:%M} UTC has not ended yet"
        )
    run = store.requalify_tiers(policy, request.run_id, period_end, now)
    return members_pb2.RequalifyTiersResponse(
        run_id=run.run_id,
        period_end=timestamp(run.period_end),
        upgraded=run.upgraded,
        downgraded=run.downgraded,
        kept=run.kept,
        repeated=run.repeated,
    )


def show_tier(
    member: members_pb2.Member, record: MemberRecord, active: ActiveRules | None, now: datetime
) -> None:
    """Fill the member's qualifying spend and next requalification date from the current
    rules (without rules: the rolling spend, no date)."""
    member.qualifying_spend_minor = record.rolling_spend_minor
    if active is None:
        return
    policy = active.policy
    window = policy.tier_window_months
    if window:  # record.spend holds the store's window only, which caps the rules'
        member.qualifying_spend_minor = tier_spend(policy, record.spend, now, window)
    try:
        member.next_requalification_at.FromDatetime(policy.next_period_end(now))
    except (OverflowError, ValueError):  # past year 9999: no next period to show
        member.ClearField("next_requalification_at")


__all__ = ["requalify_tiers", "show_tier"]
