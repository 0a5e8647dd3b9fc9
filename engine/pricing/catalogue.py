"""Product catalogue: sku -> category, brand, vendor and flags.

Loaded with polars from CSV or Parquet (columns ``sku, category, brand, vendor, no_discount,
no_earn, unit_cost_minor``; only ``sku`` is required; an empty ``unit_cost_minor`` = no cost
known). 200,000 rows load in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from engine.errors import InvalidFile

COLUMNS = ("sku", "category", "brand", "vendor", "no_discount", "no_earn", "unit_cost_minor")
MAX_UNIT_COST_MINOR = 10**12
NO_COST = -1  # unit_cost_minor of a row without one


class CatalogueRow(NamedTuple):
    category: str
    brand: str
    vendor: str
    no_discount: bool
    no_earn: bool


class CatalogueError(InvalidFile):
    """The catalogue file is unusable; the message names the column or row."""

    subject = "catalogue"


@dataclass(frozen=True, eq=False)
class Catalogue:
    """Columns of the catalogue plus a sku -> row index."""

    sku: tuple[str, ...]
    category: tuple[str, ...]
    brand: tuple[str, ...]
    vendor: tuple[str, ...]
    no_discount: np.ndarray  # bool, (n,)
    no_earn: np.ndarray  # bool, (n,)
    index: dict[str, int]
    unit_cost_minor: np.ndarray  # int64, (n,): what a unit costs; NO_COST = unknown

    def __len__(self) -> int:
        return len(self.sku)

    def get(self, sku: str) -> CatalogueRow | None:
        i = self.index.get(sku)
        if i is None:
            return None
        return CatalogueRow(
            self.category[i],
            self.brand[i],
            self.vendor[i],
            bool(self.no_discount[i]),
            bool(self.no_earn[i]),
        )

    @classmethod
    def empty(cls) -> Catalogue:
        return cls.from_frame(pl.DataFrame({"sku": pl.Series([], dtype=pl.String)}))

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Catalogue:
        return cls.from_frame(
            pl.DataFrame(rows) if rows else pl.DataFrame({"sku": pl.Series([], dtype=pl.String)})
        )

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> Catalogue:
        if "sku" not in df.columns:
            raise CatalogueError("catalogue: column 'sku' is required")
        unknown = [c for c in df.columns if c not in COLUMNS]
        if unknown:
            raise CatalogueError(f"catalogue: unknown column(s) {unknown}; expected {COLUMNS}")
        exprs = []
        for col in ("sku", "category", "brand", "vendor"):
            e = pl.col(col).cast(pl.String) if col in df.columns else pl.lit("")
            exprs.append(e.fill_null("").str.strip_chars().alias(col))
        for col in ("no_discount", "no_earn"):
            if col not in df.columns:
                exprs.append(pl.lit(False).alias(col))
            elif df.schema[col] == pl.Boolean:
                exprs.append(pl.col(col).fill_null(False))
            else:
                s = pl.col(col).cast(pl.String).str.to_lowercase().fill_null("")
                exprs.append(s.is_in(["1", "true", "yes", "y", "t"]).alias(col))
        exprs.append(_unit_costs(df))
        df = df.select(exprs)
        empty = df.filter(pl.col("sku") == "")
        if len(empty):
            raise CatalogueError(f"catalogue: 'sku' must not be empty ({len(empty)} row(s))")
        dup = df.group_by("sku").len().filter(pl.col("len") > 1)
        if len(dup):
            raise CatalogueError(f"catalogue: duplicate sku {dup['sku'][0]!r}")
        skus = tuple(df["sku"].to_list())
        return cls(
            sku=skus,
            category=tuple(df["category"].to_list()),
            brand=tuple(df["brand"].to_list()),
            vendor=tuple(df["vendor"].to_list()),
            no_discount=df["no_discount"].to_numpy().astype(bool),
            no_earn=df["no_earn"].to_numpy().astype(bool),
            index={s: i for i, s in enumerate(skus)},
            unit_cost_minor=df["unit_cost_minor"].fill_null(NO_COST).to_numpy().astype(np.int64),
        )

    def unit_cost(self, sku: str) -> int | None:
        """What a unit of ``sku`` costs, minor units; None when unknown."""
        i = self.index.get(sku)
        if i is None or self.unit_cost_minor[i] == NO_COST:
            return None
        return int(self.unit_cost_minor[i])


def _unit_costs(df: pl.DataFrame) -> pl.Expr:
    """``unit_cost_minor`` as Int64 (null = unknown); a value that is not a whole number in
    0..10^12 is refused, naming its row."""
    if "unit_cost_minor" not in df.columns:
        return pl.lit(None, dtype=pl.Int64).alias("unit_cost_minor")
    text = df["unit_cost_minor"].cast(pl.String).str.strip_chars()
    text = pl.select(pl.when(pl.lit(text) != "").then(pl.lit(text))).to_series()
    costs = text.cast(pl.Int64, strict=False)
    bad = (costs.is_null() & text.is_not_null()) | (costs < 0) | (costs > MAX_UNIT_COST_MINOR)
    if bad.any():
        k = int(bad.arg_true()[0])
        raise CatalogueError(
            f"catalogue: row {k + 1}: unit_cost_minor must be a whole number of minor units "
            f"0..{MAX_UNIT_COST_MINOR} or empty (got {text[k]!r})"
        )
    return pl.lit(costs).alias("unit_cost_minor")


def load_catalogue(path: str | Path) -> Catalogue:
    """Read a catalogue from ``.csv`` or ``.parquet``."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        df = pl.read_parquet(p)
    elif p.suffix.lower() == ".csv":
        df = pl.read_csv(p, infer_schema=False)
    else:
        raise CatalogueError(f"catalogue: {p.name}: expected a .csv or .parquet file")
    return Catalogue.from_frame(df)
