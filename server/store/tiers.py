"""Tier requalification runs: what every store shares (docs/design.md §3, Tiers).

A run requalifies every member at one period end (:meth:`server.store.policy.Policy.period_end`)
under a ``run_id``. Each member is re-evaluated by :func:`requalify` (the tier rules themselves
are in :mod:`server.store.policy`) and written atomically with the run's counts, on the version
it was read at, so a concurrent commit of the member is never lost: one of the two is refused
and redone on the other's result. A member records the period end it was last requalified at,
so a run cut short and retried under its id does no member twice, and a run's record keeps its
counts: a retry after it completed changes nothing and answers them again.

Runs go forward: a run for a period that another run (another id) has requalified, or that
precedes one requalified already, is refused, so no member is stepped down twice for one period.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NoReturn

from engine.errors import AlreadyExists, FailedPrecondition
from server.store.policy import Policy
from server.store.records import TierRun
from server.store.snapshot import rolling_sum, to_us

Spend = tuple[int, int, int]  # server.store.base.Spend

BATCH = 500  # members read and written per atomic step of a run
UPGRADED, DOWNGRADED, KEPT = "upgraded", "downgraded", "kept"


def tier_spend(
    policy: Policy,
    spend: Iterable[Spend],
    at: datetime,
    store_months: int,
    *,
    period_end: bool = False,
) -> int:
    """Qualifying spend of the rules' qualification window ending ``at``
    (:func:`server.store.snapshot.rolling_sum` over ``policy.tier_window_months``, at most the
    store's ``store_months``, which is all it keeps). ``period_end``: ``at`` ends a
    requalification period, and buckets from ``at`` on belong to the next one."""
    months = policy.tier_window_months
    if not months or months > store_months:
        months = store_months
    until = to_us(at)
    return rolling_sum((s for s in spend if not period_end or s[0] < until), at, months)


def requalify(
    policy: Policy,
    tier: str,
    spend: Iterable[Spend],
    period_end: datetime,
    store_months: int,
) -> tuple[str, str]:
    """``(tier after, what happened)`` for one member: :data:`UPGRADED`, :data:`DOWNGRADED`
    or :data:`KEPT`, on the spend of the qualification window ending at ``period_end``."""
    spent = tier_spend(policy, spend, period_end, store_months, period_end=True)
    after = policy.requalified_tier(tier, spent)
    if after == tier:
        return tier, KEPT
    return after, UPGRADED if policy.tier_rank(after) > policy.tier_rank(tier) else DOWNGRADED


def check_run(run_id: str, period_us: int, stored_period_us: int | None) -> None:
    """A run id names one period: the same id for another period is AlreadyExists."""
    if stored_period_us is not None and stored_period_us != period_us:
        raise AlreadyExists(f"tier run {run_id!r} requalified another period")


def refuse_older(
    run_id: str, other_run: str, other_period: datetime, period_end: datetime
) -> NoReturn:
    """Another run has requalified ``other_period``, this period end or a later one."""
    raise FailedPrecondition(
        f"tier run {run_id!r} is for the period ending {period_end:%Y-%m-%d %H:%M} UTC, but run "
        f"{other_run!r} has requalified the period ending {other_period:%Y-%m-%d %H:%M} UTC: "
        "tiers are requalified once per period, in order"
    )


def after_reversal(
    policy: Policy | None,
    tier: str,
    floor: str | None,
    spend: Iterable[Spend],
    now: datetime,
    store_months: int,
) -> tuple[str, str | None]:
    """``(tier, floor)`` of a member once a cancel or return has taken its spend back
    (:meth:`Policy.reversed_tier` on the spend left); unchanged without a ``policy``."""
    if policy is None:
        return tier, floor
    return policy.reversed_tier(tier, floor, tier_spend(policy, spend, now, store_months))


__all__ = [
    "BATCH",
    "DOWNGRADED",
    "KEPT",
    "UPGRADED",
    "TierRun",
    "after_reversal",
    "check_run",
    "refuse_older",
    "requalify",
    "tier_spend",
]
