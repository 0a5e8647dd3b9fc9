"""The collector every rule-set check writes its problems to, the bounds of rule fields, and the
product-set check that offers, bundle components and restricted items share
(:mod:`engine.pricing.validate` runs the checks)."""

from __future__ import annotations

import re

from engine.errors import Violation
from engine.pricing.catalogue import Catalogue
from engine.pricing.constants import KIND_BY_FIELD, MAX_ID_CHARS, MAX_TEXT_CHARS, Phase
from engine.pricing.overlap import CatalogueIndex, quoted
from loyalty.v1 import rules_pb2

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
MAX_TIERS = 64
MAX_SEGMENTS = 64
MAX_CHANNELS = 64
MAX_EXTRA_BPS = 1_000_000
MAX_MULTIPLIER_BPS = 1_000_000  # tier earn multiplier: x100 at most (int64 headroom)
MAX_MINOR = 10**12  # any money amount in a rule, minor units (int64 headroom in the kernels)
MAX_COUNT = 10**9  # any quantity, use count or points figure in a rule
MAX_POINTS_PER_UNIT = 10**6
# Points' pending days and expiry months: the dates they give must stay inside what a datetime
# holds (a commit computes them; beyond, every commit that earns points would fail).
MAX_PENDING_DAYS = 3_650  # ten years
MAX_EXPIRY_MONTHS = 1_200  # a hundred years
MAX_TIER_WINDOW_MONTHS = 120  # a tier's qualification window: ten years at most
TIER_PERIOD_MONTHS = (0, 1, 2, 3, 4, 6, 12)  # requalification period lengths (0 = 12)
MAX_NAME_CHARS = MAX_ID_CHARS  # names, product-set entries, stores, channels, groups
MAX_DESCRIPTION_CHARS = MAX_TEXT_CHARS
REWARDS = tuple(KIND_BY_FIELD)
MODES = {0, 1, 2}
ACTIVATIONS = {0, 1}
PERIODS = {0, 1, 2, 3}
MIN_TS, MAX_TS = -62_135_596_800, 253_402_300_799  # 0001-01-01 .. 9999-12-31 UTC


class Checker:
    """Problems found so far (``out``) and what the checks share across offers."""

    def __init__(self, catalogue: Catalogue | None) -> None:
        self.out: list[Violation] = []
        self.catalogue = catalogue
        self._index: CatalogueIndex | None = None
        # shared across offers:
        self.tiers: set[str] = set()
        self.segments: set[str] = set()
        self.ids: dict[str, str] = {}  # offer id -> path of its first use
        self.channels: set[str] = set()
        self.channels_reported = False
        self.groups: dict[str, tuple[Phase, str]] = {}  # group -> (phase, first member's id)
        self.has_points = False

    def add(self, field: str, description: str) -> None:
        self.out.append(Violation(field, description))

    def range(self, field: str, value: int, lo: int, hi: int | None = None) -> bool:
        """Check ``lo <= value <= hi``; report and return False when outside."""
        if value < lo:
            if lo == 0:
                self.add(field, f"must not be negative (got {value})")
            elif lo == 1:
                self.add(field, f"must be greater than 0 (got {value})")
            else:
                self.add(field, f"must be at least {lo} (got {value})")
            return False
        if hi is not None and value > hi:
            self.add(field, f"must be at most {hi} (got {value})")
            return False
        return True

    def text(self, field: str, value: str, limit: int = MAX_NAME_CHARS) -> None:
        """A name or free text of at most ``limit`` characters."""
        if len(value) > limit:
            self.add(field, f"longer than {limit:,} characters (got {len(value):,})")

    def money(self, field: str, value: int, lo: int = 0) -> bool:
        return self.range(field, value, lo, MAX_MINOR)

    def count(self, field: str, value: int, lo: int = 0) -> bool:
        return self.range(field, value, lo, MAX_COUNT)

    def ident(self, field: str, value: str, seen: dict[str, str], owner: str) -> None:
        """A non-empty id of the allowed characters, unique among ``seen`` (id -> owner path)."""
        if not value:
            self.add(field, "must not be empty")
        elif not ID_PATTERN.fullmatch(value):
            self.add(field, f"must be 1-64 of A-Z a-z 0-9 . _ : - (got {quoted(value)})")
        elif value in seen:
            self.add(field, f"duplicate id {quoted(value)} (also {seen[value]})")
        else:
            seen[value] = owner

    def index(self) -> CatalogueIndex:
        if self._index is None:
            assert self.catalogue is not None
            self._index = CatalogueIndex(self.catalogue)
        return self._index


def is_empty_set(ps: rules_pb2.ProductSet) -> bool:
    return not (ps.all or ps.skus or ps.categories or ps.brands or ps.vendors)


def check_product_set(v: Checker, path: str, ps: rules_pb2.ProductSet) -> None:
    if is_empty_set(ps):
        v.add(
            path,
            "empty product set: list skus, categories, brands or vendors, "
            "or use `all: true` for everything",
        )
    for name in ("skus", "categories", "brands", "vendors", "exclude_skus"):
        for j, value in enumerate(getattr(ps, name)):
            if not value:
                v.add(f"{path}.{name}[{j}]", "must not be empty")
            elif not value.isprintable():
                v.add(f"{path}.{name}[{j}]", f"control characters are not allowed ({value!r})")
            else:
                v.text(f"{path}.{name}[{j}]", value)
