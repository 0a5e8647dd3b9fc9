"""CampaignService: publish, inspect and roll back rule sets; import catalogues; simulate.

Thin: translate protobuf <-> registry calls; errors propagate to the interceptor
(``server.api.errors``), which gives each its status.
"""

from __future__ import annotations

import grpc
import polars as pl

from engine.analytics.simulate import Scored, compare
from engine.errors import FailedPrecondition, InvalidInput
from engine.pricing.compiler import compile_rules
from loyalty.v1 import campaigns_pb2, campaigns_pb2_grpc
from server.analytics.ledger import export_ledger
from server.api.convert import (
    catalogue_from_request,
    check_text,
    history_from_request,
    timestamp,
)
from server.rules.registry import RuleRegistry, VersionInfo
from server.store.base import Store


def _version(info: VersionInfo) -> campaigns_pb2.RuleSetVersion:
    return campaigns_pb2.RuleSetVersion(
        version=info.version,
        rules=info.rules,
        published_at=timestamp(info.published_at),
        note=info.note,
        current=info.current,
    )


def simulation_figures(s: Scored) -> campaigns_pb2.SimulationFigures:
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
    )


class CampaignServicer(campaigns_pb2_grpc.CampaignServiceServicer):
    def __init__(self, registry: RuleRegistry, store: Store | None = None):
        self.registry, self.store = registry, store

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
        if bad.violations:
            raise bad
        version, seconds = self.registry.publish(request.rules, request.note)
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
        if request.ledger_since < 0:
            raise InvalidInput.at("ledger_since", f"must be 0 or more (got {request.ledger_since})")
        active = self.registry.current()
        draft = compile_rules(request.rules, self.registry.catalogue)
        history: pl.DataFrame | pl.LazyFrame
        if request.history_parquet:
            history = history_from_request(request.history_parquet)
        elif self.store is not None:
            history = export_ledger(self.store, self.registry.catalogue, since=request.ledger_since)
        else:
            raise FailedPrecondition("no history_parquet given and no ledger to read")
        result = compare(active.compiled, draft, history, list(request.assume_coupons))
        return campaigns_pb2.SimulateResponse(
            current_version=active.version,
            current=simulation_figures(result.current),
            draft=simulation_figures(result.draft),
        )
