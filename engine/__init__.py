"""Pure pricing computation: rule sets compiled to arrays, priced by numba kernels.

No I/O, no network, no clock: every input comes in as an argument (DESIGN.md §2).

>>> compiled = compile_rules(load_rules("rules.yaml"), load_catalogue("catalogue.csv"))
>>> result = price(compiled, basket, member, redeem_points=-1)
"""

from engine.api import BasketError, price
from engine.batch import price_batch
from engine.catalogue import Catalogue, CatalogueError, load_catalogue
from engine.compiler import CompiledRules, compile_rules
from engine.frames import price_frames
from engine.reference import price_reference
from engine.rules import RuleFileError, load_rules, parse_rules
from engine.types import (
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
)
from engine.validate import RuleSetInvalid, Violation, check, validate
from engine.warmup import warm_up

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
