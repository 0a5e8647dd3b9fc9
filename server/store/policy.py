"""What a store needs from a rule set, extracted once per published version.

The store never prices; it needs only each offer's activation and limits, the points programme
(pending days, expiry, lot bucket and time zone) and the tier ladder. The rule registry builds it
once per published version (:meth:`Policy.from_rules`) and hands it to the store with the
compiled rules, so a commit never walks 10,000 offers.
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


@dataclass(frozen=True, slots=True)
class OfferPolicy:
    offer_id: str
    coupon: bool  # activation COUPON
    per_member: int  # 0 = no cap
    period: int
    total_uses: int  # 0 = no cap
    budget_minor: int  # 0 = no cap

    @property
    def limited(self) -> bool:
        return bool(self.per_member or self.total_uses or self.budget_minor)


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

    def upgraded_tier(self, current: str, rolling_spend_minor: int) -> str:
        """The highest tier whose threshold the rolling spend reaches, if above ``current``.

        Never downgrades; a tier id the rule set does not know ranks below every tier.
        """
        rank = {t: i for i, (t, _) in enumerate(self.tiers)}
        best, best_rank = current, rank.get(current, -1)
        for i, (tier, threshold) in enumerate(self.tiers):
            if rolling_spend_minor >= threshold and i > best_rank:
                best, best_rank = tier, i
        return best
