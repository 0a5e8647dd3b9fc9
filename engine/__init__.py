"""Pure pricing computation: rule sets compiled to arrays, priced by numba kernels.

No I/O, no network, no clock: every input comes in as an argument (docs/design.md §2).

>>> compiled = compile_rules(load_rules("rules.yaml"), load_catalogue("catalogue.csv"))
>>> result = price(compiled, basket, member, redeem_points=-1)
"""

from engine.pricing.api import BasketError, price
from engine.pricing.batch import price_batch
from engine.pricing.catalogue import Catalogue, CatalogueError, load_catalogue
from engine.pricing.compiler import CompiledRules, compile_rules
from engine.pricing.frames import price_frames
from engine.pricing.reference.core import price_reference
from engine.pricing.rules import RuleFileError, load_rules, parse_rules
from engine.pricing.types import (
    AppliedOffer,
    Basket,
    Explanation,
    Line,
    LineDiscount,
    LineResult,
    Member,
    PointsComponent,
    PricingResult,
    RemainingLimits,
    RestrictedLine,
)
from engine.pricing.validate import RuleSetInvalid, Violation, check, validate
from engine.pricing.warmup import warm_up

__all__ = [
    "AppliedOffer",
    "Basket",
    "BasketError",
    "Catalogue",
    "CatalogueError",
    "CompiledRules",
    "Explanation",
    "Line",
    "LineDiscount",
    "LineResult",
    "Member",
    "PointsComponent",
    "PricingResult",
    "RemainingLimits",
    "RestrictedLine",
    "RuleFileError",
    "RuleSetInvalid",
    "Violation",
    "check",
    "compile_rules",
    "load_catalogue",
    "load_rules",
    "parse_rules",
    "price",
    "price_batch",
    "price_frames",
    "price_reference",
    "validate",
    "warm_up",
]
