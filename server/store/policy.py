"""What a store needs from a rule set, extracted once per published version.

The store never prices; it needs only each offer's activation and limits, the points programme
(pending days, expiry, lot bucket and time zone) and the tier ladder with its requalification
policy. The rule registry builds it once per published version (:meth:`Policy.from_rules`) and
hands it to the store with the compiled rules, so a commit never walks 10,000 offers.

The tier rules live here only, for every store (docs/design.md §3, Tiers):

- *spend tiers* have a ``qualify_spend_minor`` > 0; the first tier of the list, when its
  threshold is 0, is the *entry tier* (the floor members fall back to); every other tier with
  threshold 0 is *assigned by hand*: spend never moves a member into it, and requalification and
  reversals never move a member out of it (spend reaching a higher tier still does);
- a commit moves the member up to the tier its qualifying spend reaches
  (:meth:`Policy.upgraded_tier`) and remembers the tier it came from as the member's *floor*;
- a cancel or return takes back the part of those upgrades the remaining spend no longer
  earns, never below the floor (:meth:`Policy.reversed_tier`), whatever the downgrade mode;
- a requalification run at a period end re-evaluates the member on the spend of the window
  ending there (:meth:`Policy.requalified_tier`) and clears the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from engine.pricing.periods import (
    PERIOD_DAY,
    PERIOD_EVER,
    PERIOD_MONTH,
    PERIOD_WEEK,
    period_key,
)
from loyalty.v1 import rules_pb2
from server.store.points import add_months

BUCKET_DAY, BUCKET_MONTH = rules_pb2.PointsProgram.DAY, rules_pb2.PointsProgram.MONTH
NEVER, ONE_STEP, TO_QUALIFYING = (
    rules_pb2.TierPolicy.NEVER,
    rules_pb2.TierPolicy.ONE_STEP,
    rules_pb2.TierPolicy.TO_QUALIFYING,
)


@dataclass(frozen=True, slots=True)
class OfferPolicy:
    offer_id: str
    coupon: bool  # activation COUPON
    per_member: int  # 0 = no cap
    period: int
    total_uses: int  # 0 = no cap
    budget_minor: int  # 0 = no cap
    total_units: int = 0  # 0 = no cap (server/store/units.py)
    units_per_store: int = 0  # 0 = no cap

    @property
    def limited(self) -> bool:
        return bool(
            self.per_member
            or self.total_uses
            or self.budget_minor
            or self.total_units
            or self.units_per_store
        )


@dataclass(frozen=True, slots=True)
class Policy:
    offers: dict[str, OfferPolicy]
    limited: tuple[str, ...]  # offer ids with any limit
    timezone: ZoneInfo
    has_points: bool
    pending_days: int
    expiry_months: int
    tiers: tuple[tuple[str, int], ...]  # (tier id, qualify_spend_minor), lowest first
    lot_bucket: int = BUCKET_DAY  # points lots and spend records: one per local day or month
    units_capped: tuple[str, ...] = ()  # offer ids with total_units or units_per_store
    store_capped: tuple[str, ...] = ()  # offer ids with units_per_store
    # tier requalification (rules_pb2.TierPolicy): window 0 = the store's rolling window
    tier_window_months: int = 0
    tier_period_months: int = 12
    tier_anchor_month: int = 1
    downgrade: int = NEVER

    @classmethod
    def from_rules(cls, rules: rules_pb2.RuleSet) -> Policy:
        offers = {}
        for o in rules.offers:
            lim = o.limits
            offers[o.id] = OfferPolicy(
                o.id,
                o.activation == rules_pb2.Offer.COUPON,
                lim.per_member,
                int(lim.per_member_period),
                lim.total_uses,
                lim.budget_minor,
                lim.total_units,
                lim.units_per_store,
            )
        has_points = rules.HasField("points")
        return cls(
            offers=offers,
            limited=tuple(k for k, v in offers.items() if v.limited),
            timezone=ZoneInfo(rules.timezone or "UTC"),
            has_points=has_points,
            pending_days=rules.points.pending_days if has_points else 0,
            expiry_months=rules.points.expiry_months if has_points else 0,
            tiers=tuple((t.id, t.qualify_spend_minor) for t in rules.tiers),
            lot_bucket=int(rules.points.lot_bucket),
            units_capped=tuple(k for k, v in offers.items() if v.total_units or v.units_per_store),
            store_capped=tuple(k for k, v in offers.items() if v.units_per_store),
            tier_window_months=rules.tier_policy.qualification_window_months,
            tier_period_months=rules.tier_policy.period_months or 12,
            tier_anchor_month=rules.tier_policy.anchor_month or 1,
            downgrade=int(rules.tier_policy.downgrade),
        )

    def bucket(self, at: datetime) -> tuple[datetime, datetime]:
        """``[start, end)`` of the lot bucket (local day or month) that ``at`` falls in.

        Read on the wall clock of the rule set's zone, so a bucket ends at local midnight even
        across a DST change (that day is 23 or 25 hours long).
        """
        local = at.astimezone(self.timezone)
        if self.lot_bucket == BUCKET_MONTH:
            start = datetime(local.year, local.month, 1, tzinfo=self.timezone)
            y, m = divmod(local.year * 12 + local.month, 12)  # the month after, 0-based
            end = datetime(y, m + 1, 1, tzinfo=self.timezone)
        else:
            start = datetime(local.year, local.month, local.day, tzinfo=self.timezone)
            nxt = local.date() + timedelta(days=1)
            end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.timezone)
        return start, end

    @property
    def shortest_bucket(self) -> timedelta:
        """No bucket of this setting is shorter (a DST day is 23 hours, February 28 days, less
        an hour at most): a span at least this long is never merged into one."""
        return timedelta(days=27) if self.lot_bucket == BUCKET_MONTH else timedelta(hours=22)

    def bucket_end(self, at: datetime) -> datetime:
        """``at`` rounded up to the end of its bucket (a bucket boundary stays where it is)."""
        start, end = self.bucket(at)
        return (at if at == start else end).astimezone(UTC)

    def earned_lot_times(self, now: datetime) -> tuple[datetime, datetime | None]:
        """``(available_at, expires_at)`` of points earned at ``now`` (docs/design.md §5).

        With a return window the points become available at the end of the bucket in which
        ``pending_days`` end; without one they are available at once (a programme that promises
        instant points keeps that promise). The expiry is ``expiry_months`` after availability
        on the local calendar, rounded up to the end of its bucket; 0 = never. Every earn of one
        bucket therefore gets the same pair and lands in the same lot.
        """
        available_at = now
        if self.pending_days > 0:
            available_at = self.bucket_end(now + timedelta(days=self.pending_days))
        if self.expiry_months <= 0:
            return available_at, None
        local = add_months(available_at.astimezone(self.timezone), self.expiry_months)
        return available_at, self.bucket_end(local)

    def period_key(self, period: int, now: datetime) -> str:
        """The member-limit bucket ``now`` falls in, read in the rule set's time zone."""
        return period_key(period, now.astimezone(self.timezone))

    def current_keys(self, now: datetime) -> tuple[str, ...]:
        return tuple(
            self.period_key(p, now) for p in (PERIOD_EVER, PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH)
        )

    # -- tiers (see the module docstring) -------------------------------------------------------

    def tier_rank(self, tier: str) -> int:
        """The tier's place in the ladder, lowest 0; -1 for "" and tiers the rules do not know."""
        return next((i for i, (t, _) in enumerate(self.tiers) if t == tier), -1)

    def by_hand(self, tier: str) -> bool:
        """A tier assigned by hand: threshold 0 and not the entry tier (the first)."""
        rank = self.tier_rank(tier)
        return rank > 0 and self.tiers[rank][1] == 0

    def qualified_tier(self, spend_minor: int) -> str:
        """The highest spend tier ``spend_minor`` reaches; else the entry tier, else ""."""
        best = self.tiers[0][0] if self.tiers and self.tiers[0][1] == 0 else ""
        for tier, threshold in self.tiers:
            if 0 < threshold <= spend_minor:
                best = tier
        return best

    def upgraded_tier(self, current: str, spend_minor: int) -> str:
        """The tier a commit leaves: the qualified tier if it ranks above ``current``.

        Never downgrades; a tier id the rule set does not know ranks below every tier.
        """
        best = self.qualified_tier(spend_minor)
        return best if self.tier_rank(best) > self.tier_rank(current) else current

    def reversed_tier(
        self, current: str, floor: str | None, spend_minor: int
    ) -> tuple[str, str | None]:
        """``(tier, floor)`` after a cancel or return leaves ``spend_minor``: the tier the
        remaining spend reaches, but never below ``floor`` (the tier held before commits raised
        it; None = nothing was raised since) nor above ``current``."""
        if floor is None or self.by_hand(current):
            return current, floor
        best = self.qualified_tier(spend_minor)
        target = best if self.tier_rank(best) > self.tier_rank(floor) else floor
        if self.tier_rank(target) >= self.tier_rank(current):
            return current, floor
        return target, (None if target == floor else floor)

    def requalified_tier(self, current: str, spend_minor: int) -> str:
        """The tier a requalification run leaves, on the spend of the window ending at the
        period end: up to the qualified tier; down by the downgrade mode, never for NEVER, a
        tier assigned by hand or one the rules do not know; ONE_STEP goes to the next lower
        spend tier (or the entry tier, or "")."""
        best = self.qualified_tier(spend_minor)
        rank, best_rank = self.tier_rank(current), self.tier_rank(best)
        if best_rank > rank:
            return best
        if best_rank == rank or rank < 0 or self.by_hand(current) or self.downgrade == NEVER:
            return current
        if self.downgrade == TO_QUALIFYING:
            return best
        below = [t for i, (t, threshold) in enumerate(self.tiers[:rank]) if threshold or i == 0]
        return below[-1] if below else ""

    def period_end(self, at: datetime) -> datetime:
        """The last requalification period end at or before ``at``: local midnight on the 1st
        of a month ``tier_anchor_month + k·tier_period_months``, in UTC."""
        local = at.astimezone(self.timezone)
        month = local.year * 12 + local.month - 1
        month -= (month - (self.tier_anchor_month - 1)) % self.tier_period_months
        return self._month_start(month)

    def next_period_end(self, at: datetime) -> datetime:
        """The first requalification period end after ``at``."""
        local = self.period_end(at).astimezone(self.timezone)
        return self._month_start(local.year * 12 + local.month - 1 + self.tier_period_months)

    def _month_start(self, month: int) -> datetime:
        year, m = divmod(month, 12)
        return datetime(year, m + 1, 1, tzinfo=self.timezone).astimezone(UTC)
