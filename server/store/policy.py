"""What a store needs from a rule set, extracted once per published version.

The store never prices; it needs only each offer's activation and limits, the points programme
(pending days, expiry) and the tier ladder. The rule registry builds it once per published
version (:meth:`Policy.from_rules`) and hands it to the store with the compiled rules, so a
commit never walks 10,000 offers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from loyalty.v1 import rules_pb2

PERIOD_EVER, PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH = 0, 1, 2, 3


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
        )

    def period_key(self, period: int, now: datetime) -> str:
        """The member-limit bucket ``now`` falls in, read in the rule set's time zone."""
        local = now.astimezone(self.timezone)
        if period == PERIOD_DAY:
            return f"D{local.date().isoformat()}"
        if period == PERIOD_WEEK:
            y, w, _ = local.isocalendar()
            return f"W{y}-{w:02d}"
        if period == PERIOD_MONTH:
            return f"M{local.year}-{local.month:02d}"
        return "E"

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
