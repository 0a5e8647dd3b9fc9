"""CampaignService: publish, inspect and roll back rule sets; import catalogues; simulate;
offer usage against caps and vendor settlement from the ledger; coupon code batches
(CreateCouponCodes, ListCouponCodes, GetCouponCode, ListCouponCodeBatches: the store does the
generating, :mod:`server.store.codes`).

Thin: translate protobuf <-> registry calls; errors propagate to the interceptor
(``server.api.errors``), which gives each its status.
"""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc
import polars as pl

from engine.analytics.simulate import Scored, compare, discount_distribution
from engine.errors import FailedPrecondition, InvalidInput
from engine.pricing.compiler import compile_rules
from loyalty.v1 import campaigns_pb2, campaigns_pb2_grpc
from server.analytics.ledger import export_ledger, member_attributes
from server.analytics.usage import LedgerFunding, offer_counters, settlement_between
from server.api import codes
from server.api.checkout import Clock, utc_now
from server.api.convert import (
    MAX_ASSUME_COUPONS,
    catalogue_from_request,
    check_list,
    check_text,
    history_from_request,
    timestamp,
)
from server.api.publish_gate import gate
from server.api.reservations import unit_counts
from server.rules.registry import RuleRegistry, VersionInfo
from server.store.base import Store

DEFAULT_BUCKETS = 20  # SimulateRequest.distribution_buckets 0
MAX_BUCKETS = 100
MAX_FILTER_IDS = 1_000  # ListOfferUsage offer_ids, GetSettlement funder_ids
MAX_SETTLEMENT_DAYS = 366
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _version(info: VersionInfo) -> campaigns_pb2.RuleSetVersion:
    return campaigns_pb2.RuleSetVersion(
        version=info.version,
        rules=info.rules,
        published_at=timestamp(info.published_at),
        note=info.note,
        current=info.current,
    )


def simulation_figures(
    s: Scored, width: int = 1, counts: list[int] | None = None
) -> campaigns_pb2.SimulationFigures:
    """The figures of ``s``; ``counts`` per bucket of ``width`` minor units, from 0."""
    return campaigns_pb2.SimulationFigures(
        baskets=s.baskets,
        baskets_affected=s.baskets_affected,
        discount_minor=s.discount_minor,
        funded_minor=s.funded_minor,
        points_earned=s.points_earned,
        points_liability_minor=s.points_liability_minor,
        max_basket_discount_minor=s.max_basket_discount_minor,
        max_basket_transaction_id=s.max_basket_transaction_id,
        funders=[
            campaigns_pb2.FunderCost(funder_id=f, discount_minor=d, funded_minor=p)
            for f, d, p in s.by_funder.select(
                "funder_id", "discount_minor", "funded_minor"
            ).iter_rows()
        ],
        offers=[
            campaigns_pb2.OfferCost(
                offer_id=o, funder_id=f, baskets=b, discount_minor=d, funded_minor=p
            )
            for o, f, b, d, p in s.by_offer.select(
                "offer_id", "funder_id", "baskets", "discount_minor", "funded_minor"
            ).iter_rows()
        ],
        discount_distribution=[
            campaigns_pb2.DiscountBucket(from_minor=k * width, to_minor=(k + 1) * width, baskets=n)
            for k, n in enumerate(counts or ())
        ],
    )


def _day(bad: InvalidInput, path: str, text: str) -> date | None:
    if not text:
        bad.add(path, "is required")
        return None
    try:
        if DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    bad.add(path, f"must be a date YYYY-MM-DD (got {text[:40]!r})")
    return None


def _zone(bad: InvalidInput, path: str, name: str) -> None:
    try:
        if len(name) <= 128:
            ZoneInfo(name)
            return
    except (ZoneInfoNotFoundError, ValueError):
        pass
    bad.add(path, f"not a time zone the server knows (got {name[:40]!r})")


class CampaignServicer(campaigns_pb2_grpc.CampaignServiceServicer):
    def __init__(
        self,
        registry: RuleRegistry,
        store: Store | None = None,
        clock: Clock = utc_now,
        publish_simulate_days: int = 0,
    ):
        self.registry, self.store, self.clock = registry, store, clock
        self.publish_simulate_days = publish_simulate_days  # the publish gate; 0 = off
        self.funding = LedgerFunding()  # per offer and funder, read incrementally

    def ValidateRuleSet(
        self, request: campaigns_pb2.ValidateRuleSetRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.ValidateRuleSetResponse:
        problems = self.registry.check(request.rules)
        return campaigns_pb2.ValidateRuleSetResponse(
            valid=not problems,
            problems=[
                campaigns_pb2.FieldProblem(field=p.field, description=p.description)
                for p in problems
            ],
        )

    def PublishRuleSet(
        self, request: campaigns_pb2.PublishRuleSetRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.PublishRuleSetResponse:
        bad = InvalidInput()
        if not request.HasField("rules"):
            bad.add("rules", "is required")
        check_text(bad, "note", request.note, required=False)
        reason = request.guardrail_override_reason
        check_text(bad, "guardrail_override_reason", reason, required=False)
        if bad.violations:
            raise bad
        days = self.publish_simulate_days
        if not days:
            version, seconds = self.registry.publish(request.rules, request.note)
        else:
            now = self.clock()  # the gate's "last days" end now
            passed = gate(self.registry, self.store, request.rules, request.note, reason, days, now)
            version, _ = self.registry.publish(request.rules, passed.note, compiled=passed.compiled)
            seconds = passed.seconds
        return campaigns_pb2.PublishRuleSetResponse(
            version=version, compile_ms=round(seconds * 1000)
        )

    def GetRuleSet(
        self, request: campaigns_pb2.GetRuleSetRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.RuleSetVersion:
        return _version(self.registry.get(request.version))

    def ListRuleSets(
        self, request: campaigns_pb2.ListRuleSetsRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.ListRuleSetsResponse:
        versions = self.registry.versions()
        current = next((v.version for v in versions if v.current), 0)
        return campaigns_pb2.ListRuleSetsResponse(
            current_version=current,
            versions=[
                campaigns_pb2.RuleSetSummary(
                    version=v.version,
                    published_at=timestamp(v.published_at),
                    note=v.note,
                    offers=len(v.rules.offers),
                    current=v.current,
                )
                for v in versions
            ],
        )

    def ActivateRuleSet(
        self, request: campaigns_pb2.ActivateRuleSetRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.RuleSetVersion:
        self.registry.activate(request.version)
        return _version(self.registry.get(request.version))

    def ImportCatalogue(
        self, request: campaigns_pb2.ImportCatalogueRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.ImportCatalogueResponse:
        catalogue = catalogue_from_request(request)
        version = self.registry.import_catalogue(catalogue)
        return campaigns_pb2.ImportCatalogueResponse(skus=len(catalogue), ruleset_version=version)

    def Simulate(
        self, request: campaigns_pb2.SimulateRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.SimulateResponse:
        bad = InvalidInput()
        if request.ledger_since < 0:
            bad.add("ledger_since", f"must be 0 or more (got {request.ledger_since})")
        check_list(bad, "assume_coupons", request.assume_coupons, MAX_ASSUME_COUPONS)
        if not 0 <= request.distribution_buckets <= MAX_BUCKETS:
            bad.add(
                "distribution_buckets",
                f"must be 0..{MAX_BUCKETS} (got {request.distribution_buckets})",
            )
        if bad.violations:
            raise bad
        active = self.registry.current()
        draft = compile_rules(request.rules, self.registry.catalogue)
        history: pl.DataFrame | pl.LazyFrame
        if request.history_parquet:
            history = history_from_request(request.history_parquet)
        elif self.store is not None:
            history = export_ledger(self.store, self.registry.catalogue, since=request.ledger_since)
        else:
            raise FailedPrecondition("no history_parquet given and no ledger to read")
        attributes = None  # attribute conditions read the members' current attributes
        if self.store is not None and (active.compiled.attr_predicates or draft.attr_predicates):
            attributes = member_attributes(self.store, history, self.clock())
        result = compare(
            active.compiled, draft, history, list(request.assume_coupons), attributes=attributes
        )
        width, (cur, new) = discount_distribution(
            (result.current, result.draft), request.distribution_buckets or DEFAULT_BUCKETS
        )
        return campaigns_pb2.SimulateResponse(
            current_version=active.version,
            current=simulation_figures(result.current, width, cur),
            draft=simulation_figures(result.draft, width, new),
            baskets_by_version=[
                campaigns_pb2.VersionBaskets(ruleset_version=v, baskets=n)
                for v, n in result.current.versions().items()
            ],
        )

    def _ledger(self) -> Store:
        if self.store is None:
            raise FailedPrecondition("this server has no ledger to read")
        return self.store

    def ListOfferUsage(
        self, request: campaigns_pb2.ListOfferUsageRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.ListOfferUsageResponse:
        bad = InvalidInput()
        check_list(bad, "offer_ids", request.offer_ids, MAX_FILTER_IDS)
        if bad.violations:
            raise bad
        active = self.registry.current()
        rules = active.compiled.rules
        wanted = set(request.offer_ids)
        for k, offer_id in enumerate(request.offer_ids):
            if offer_id not in active.policy.offers:
                bad.add(f"offer_ids[{k}]", f"no offer {offer_id!r} in the current rule set")
        if bad.violations:
            raise bad
        offers = [o for o in rules.offers if not wanted or o.id in wanted]
        store = self._ledger()
        counters = offer_counters(store, active.policy, [o.id for o in offers])
        units = unit_counts(store, active.policy, [o.id for o in offers], self.clock())
        seq, amounts = self.funding.read(store)
        return campaigns_pb2.ListOfferUsageResponse(
            ruleset_version=active.version,
            currency=rules.currency,
            ledger_seq=seq,
            offers=[
                campaigns_pb2.OfferUsage(
                    offer_id=o.id,
                    name=o.name,
                    funder_id=o.funding.funder_id or "retailer",
                    uses=counters[o.id][0],
                    total_uses_cap=o.limits.total_uses,
                    budget_spent_minor=counters[o.id][1],
                    budget_cap_minor=o.limits.budget_minor,
                    units_sold=units.get(o.id, (0, 0))[0],
                    units_reserved=units.get(o.id, (0, 0))[1],
                    total_units_cap=o.limits.total_units,
                    units_per_store_cap=o.limits.units_per_store,
                    funders=[
                        campaigns_pb2.FunderAmount(funder_id=f, discount_minor=d, funded_minor=p)
                        for f, (d, p) in sorted(amounts.get(o.id, {}).items())
                    ],
                )
                for o in offers
            ],
        )

    def GetSettlement(
        self, request: campaigns_pb2.GetSettlementRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.GetSettlementResponse:
        bad = InvalidInput()
        first = _day(bad, "from_day", request.from_day)
        last = _day(bad, "to_day", request.to_day)
        if first is not None and last is not None:
            if last < first:
                bad.add("to_day", f"must not be before from_day ({first.isoformat()})")
            elif (last - first).days + 1 > MAX_SETTLEMENT_DAYS:
                bad.add("to_day", f"the period is at most {MAX_SETTLEMENT_DAYS} days")
        if request.timezone:
            _zone(bad, "timezone", request.timezone)
        check_list(bad, "funder_ids", request.funder_ids, MAX_FILTER_IDS)
        if bad.violations or first is None or last is None:
            raise bad
        active = self.registry.current_or_none()
        rules = active.compiled.rules if active is not None else None
        zone = request.timezone or (rules.timezone if rules is not None else "") or "UTC"
        report = settlement_between(self._ledger(), first, last, zone, request.funder_ids)
        totals = (
            report.group_by("funder_id")
            .agg(pl.col("discount_minor").sum(), pl.col("funded_minor").sum())
            .sort("funder_id")
        )
        return campaigns_pb2.GetSettlementResponse(
            timezone=zone,
            currency=rules.currency if rules is not None else "",
            rows=[
                campaigns_pb2.SettlementRow(
                    funder_id=r["funder_id"],
                    offer_id=r["offer_id"],
                    store_id=r["store_id"],
                    day=r["day"].isoformat(),
                    discount_minor=r["discount_minor"],
                    funded_minor=r["funded_minor"],
                    retailer_minor=r["retailer_minor"],
                    lines=r["lines"],
                    transactions=r["transactions"],
                )
                for r in report.iter_rows(named=True)
            ],
            funders=[
                campaigns_pb2.FunderAmount(funder_id=f, discount_minor=d, funded_minor=p)
                for f, d, p in totals.iter_rows()
            ],
        )

    # -- coupon codes (CreateCouponCodes, ListCouponCodes, GetCouponCode) ----------------------

    def CreateCouponCodes(
        self, request: campaigns_pb2.CreateCouponCodesRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.CouponCodeBatch:
        batch = codes.code_batch(request, self.registry.current().compiled.rules.offers)
        return codes.batch_message(self._ledger().create_code_batch(batch, self.clock()))

    def ListCouponCodes(
        self, request: campaigns_pb2.ListCouponCodesRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.ListCouponCodesResponse:
        batch_id, status, cursor, size = codes.listing(request)
        now = self.clock()
        found, after = self._ledger().list_codes(batch_id, status, cursor, size, now)
        return campaigns_pb2.ListCouponCodesResponse(
            codes=[codes.code_message(c, now) for c in found],
            next_page_token=codes.page_token(batch_id, status, after) if after else "",
        )

    def GetCouponCode(
        self, request: campaigns_pb2.GetCouponCodeRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.CouponCode:
        bad = InvalidInput()
        if not request.code:
            bad.add("code", "is required")
        elif len(request.code) > 128:
            bad.add("code", "at most 128 characters")
        if bad.violations:
            raise bad
        return codes.code_message(self._ledger().coupon_code(request.code), self.clock())

    def ListCouponCodeBatches(
        self, request: campaigns_pb2.ListCouponCodeBatchesRequest, context: grpc.ServicerContext
    ) -> campaigns_pb2.ListCouponCodeBatchesResponse:
        return campaigns_pb2.ListCouponCodeBatchesResponse(
            batches=[codes.batch_message(r) for r in self._ledger().code_batches()]
        )
