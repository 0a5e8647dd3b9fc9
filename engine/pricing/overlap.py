"""Do two product sets overlap? Structurally (whatever the catalogue) or on a catalogue.

Bundle components must be disjoint (docs/design.md §4); validation asks these questions once per
publish, against catalogues of 200,000+ rows, so catalogue matches are numpy masks built from
one polars group-by per column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from engine.pricing.catalogue import Catalogue
from loyalty.v1 import rules_pb2


def quoted(text: str) -> str:
    """A quoted string value for a message, shortened when very long."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def structural_overlap(a: rules_pb2.ProductSet, b: rules_pb2.ProductSet) -> str | None:
    """Why two non-empty product sets overlap whatever the catalogue, or None."""
    if a.all and b.all:
        return "both match everything (`all: true`)"
    if a.all or b.all:
        whole, other = (a, b) if a.all else (b, a)
        if other.categories or other.brands or other.vendors:
            return "one matches everything (`all: true`)"
        excluded = set(whole.exclude_skus) | set(other.exclude_skus)
        left = [s for s in other.skus if s not in excluded]
        return f"one matches everything (`all: true`), e.g. sku {quoted(left[0])}" if left else None
    excluded = set(a.exclude_skus) | set(b.exclude_skus)
    shared = [s for s in a.skus if s in set(b.skus) and s not in excluded]
    if shared:
        return f"both list sku {quoted(shared[0])}"
    for name, word in (("categories", "category"), ("brands", "brand"), ("vendors", "vendor")):
        listed: set[str] = set(getattr(b, name))
        for value in getattr(a, name):
            if value and value in listed:
                return f"both list {word} {quoted(value)}"
    return None


class CatalogueIndex:
    """Catalogue rows by sku, category, brand and vendor (built once per ``validate``)."""

    def __init__(self, cat: Catalogue) -> None:
        self.cat = cat
        self.by: dict[str, dict[str, np.ndarray]] = {}
        for name, column in (
            ("categories", cat.category),
            ("brands", cat.brand),
            ("vendors", cat.vendor),
        ):
            grouped = (
                pl.DataFrame({"value": pl.Series(column, dtype=pl.String)})
                .with_row_index("row")
                .group_by("value")
                .agg(pl.col("row"))
            )
            rows = [np.asarray(r, dtype=np.int64) for r in grouped["row"].to_list()]
            self.by[name] = dict(zip(grouped["value"].to_list(), rows, strict=True))

    def mask(self, ps: rules_pb2.ProductSet) -> np.ndarray:
        """Which catalogue rows the product set matches."""
        index, mask = self.cat.index, np.full(len(self.cat), ps.all, dtype=bool)
        mask[[index[s] for s in ps.skus if s in index]] = True
        for name in ("categories", "brands", "vendors"):
            for value in getattr(ps, name):
                if value and value in self.by[name]:
                    mask[self.by[name][value]] = True
        mask[[index[s] for s in ps.exclude_skus if s in index]] = False
        return mask

    def overlap(
        self,
        components: Sequence[rules_pb2.BundleComponent],
        a: int,
        b: int,
        masks: dict[int, np.ndarray],
    ) -> str | None:
        for j in (a, b):
            if j not in masks:
                masks[j] = self.mask(components[j].scope)
        both = masks[a] & masks[b]
        row = int(both.argmax())
        return f"catalogue sku {quoted(self.cat.sku[row])} matches both" if both[row] else None
