"""A compiled rule set's dictionaries (sku, category, tier, store, coupon ... -> index) as
polars frames, and the lookup of a column of strings in them (``engine.pricing.frames``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

# The dictionaries of compiled rule sets as polars frames (string, its hash -> index), by the
# dictionary's id, holding the dictionary itself so that the id stays its own: building the
# frame of a catalogue's 200,000 skus costs more than looking a million lines up in it.
_FRAMES: dict[int, tuple[object, pl.DataFrame, bool]] = {}
_FRAMES_KEPT = 16
_SEED = 0x10CA1  # of polars' string hash: the same in every frame of this process


def key_frame(index: Mapping[str, int]) -> tuple[pl.DataFrame, bool]:
    """The dictionary's frame (``k`` string, ``h`` its hash, ``v`` index) and whether its
    hashes are distinct."""
    hit = _FRAMES.get(id(index))
    if hit is not None and hit[0] is index:
        return hit[1], hit[2]
    keys = pl.DataFrame(
        {"k": list(index), "v": list(index.values())}, schema={"k": pl.String, "v": pl.Int64}
    ).with_columns(pl.col("k").hash(_SEED).alias("h"))
    distinct = keys["h"].n_unique() == len(keys)
    if len(_FRAMES) >= _FRAMES_KEPT:
        _FRAMES.pop(next(iter(_FRAMES)))
    _FRAMES[id(index)] = (index, keys, distinct)
    return keys, distinct


def lookup(values: pl.Series, index: Mapping[str, int]) -> np.ndarray:
    """Map strings to their dictionary index; unknown, empty and null -> -1.

    Joined on the strings' 64-bit hashes, then each match's string compared with the key's:
    a join on integers costs a third of one on strings (a million lines against 200,000
    skus). A dictionary two of whose keys share a hash is joined on the strings."""
    if not index:
        return np.full(len(values), -1, dtype=np.int64)
    keys, distinct = key_frame(index)
    given = pl.DataFrame({"k": values.cast(pl.String)})
    if not distinct:
        df = given.join(keys.select("k", "v"), on="k", how="left", maintain_order="left")
        return df["v"].fill_null(-1).to_numpy().astype(np.int64)
    df = given.with_columns(pl.col("k").hash(_SEED).alias("h")).join(
        keys.rename({"k": "key"}), on="h", how="left", maintain_order="left"
    )
    same = pl.col("k") == pl.col("key")  # null where either is: no match
    return df.select(pl.when(same).then("v").otherwise(-1))["v"].to_numpy().astype(np.int64)
