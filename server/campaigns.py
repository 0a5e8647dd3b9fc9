"""CampaignService: publish, inspect and roll back rule sets; import catalogues.

Thin: translate protobuf <-> registry calls, map errors in ``server.errors``.
"""

from __future__ import annotations

import io

import grpc
import polars as pl

from engine.catalogue import Catalogue
from loyalty.v1 import campaigns_pb2, campaigns_pb2_grpc
from server.convert import timestamp
from server.errors import abort
from server.registry import RuleRegistry, VersionInfo


def _version(info: VersionInfo) -> campaigns_pb2.RuleSetVersion:
    return campaigns_pb2.RuleSetVersion(version=info.version, rules=info.rules,
                                        published_at=timestamp(info.published_at),
                                        note=info.note, current=info.current)


def catalogue_from_request(req: campaigns_pb2.ImportCatalogueRequest) -> Catalogue:
    source = req.WhichOneof("source")
    if source == "rows":
        return Catalogue.from_rows([
            {"sku": i.sku, "category": i.category, "brand": i.brand, "vendor": i.vendor,
             "no_discount": i.no_discount, "no_earn": i.no_earn} for i in req.rows.items])
    if source == "csv":
        return Catalogue.from_frame(pl.read_csv(io.BytesIO(req.csv), infer_schema=False))
    if source == "parquet":
        return Catalogue.from_frame(pl.read_parquet(io.BytesIO(req.parquet)))
    return Catalogue.empty()


class CampaignServicer(campaigns_pb2_grpc.CampaignServiceServicer):
    def __init__(self, registry: RuleRegistry):
        self.registry = registry

    def ValidateRuleSet(self, request, context):
        problems = self.registry.check(request.rules)
        return campaigns_pb2.ValidateRuleSetResponse(
            valid=not problems,
            problems=[campaigns_pb2.FieldProblem(field=p.field, description=p.description)
                      for p in problems])

    def PublishRuleSet(self, request, context):
        try:
            version, seconds = self.registry.publish(request.rules, request.note)
        except Exception as exc:  # noqa: BLE001 - mapped (or re-raised) in one place
            abort(context, exc)
        return campaigns_pb2.PublishRuleSetResponse(version=version,
                                                    compile_ms=round(seconds * 1000))

    def GetRuleSet(self, request, context):
        try:
            return _version(self.registry.get(request.version))
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ListRuleSets(self, request, context):
        versions = self.registry.versions()
        current = next((v.version for v in versions if v.current), 0)
        return campaigns_pb2.ListRuleSetsResponse(
            current_version=current,
            versions=[campaigns_pb2.RuleSetSummary(
                version=v.version, published_at=timestamp(v.published_at), note=v.note,
                offers=len(v.rules.offers), current=v.current) for v in versions])

    def ActivateRuleSet(self, request, context):
        try:
            self.registry.activate(request.version)
            return _version(self.registry.get(request.version))
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ImportCatalogue(self, request, context):
        try:
            catalogue = catalogue_from_request(request)
            version = self.registry.import_catalogue(catalogue)
        except pl.exceptions.PolarsError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"catalogue: {exc}")
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)
        return campaigns_pb2.ImportCatalogueResponse(skus=len(catalogue),
                                                     ruleset_version=version)
