"""Frames look their strings (skus, tiers, stores, coupons) up in a rule set's dictionaries by
a join on the strings' hashes, each match then checked against the key's own string."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.pricing import dictionaries

INDEX = {f"SKU-{i:05d}": i for i in range(5_000)} | {"": 5_000, "é-ü": 5_001}
VALUES = pl.Series(
    [*(f"SKU-{i:05d}" for i in range(0, 10_000, 3)), None, "", "é-ü", "nope", "SKU-1"],
    dtype=pl.String,
)


def by_dict(values: pl.Series, index: dict[str, int]) -> list[int]:
    return [-1 if v is None else index.get(v, -1) for v in values.to_list()]


def test_strings_get_their_dictionary_index_unknown_and_null_minus_one():
    # when a column of known, unknown, empty and null strings is looked up
    got = dictionaries.lookup(VALUES, INDEX)
    # then each gets what the dictionary holds for it, -1 where it holds nothing
    assert got.dtype == np.int64 and got.tolist() == by_dict(VALUES, INDEX)
    assert dictionaries.lookup(VALUES, {}).tolist() == [-1] * len(VALUES)


def test_a_string_sharing_a_keys_hash_is_not_that_key(monkeypatch):
    # given a dictionary frame in which "nope" has the hash of SKU-00042 (a 64-bit collision)
    keys, distinct = dictionaries.key_frame(INDEX)
    assert distinct
    clash = pl.Series(["nope"]).hash(dictionaries._SEED)[0]
    forged = keys.with_columns(
        pl.when(pl.col("k") == "SKU-00042").then(pl.lit(clash)).otherwise("h").alias("h")
    )
    monkeypatch.setattr(dictionaries, "key_frame", lambda index: (forged, True))
    # when the strings are looked up, then "nope" is still unknown and SKU-00042 is not found
    # through its (replaced) hash: a match counts only where the strings are equal
    got = dictionaries.lookup(pl.Series(["nope", "SKU-00042", "SKU-00043"]), INDEX)
    assert got.tolist() == [-1, -1, 43]


@pytest.mark.parametrize("distinct", [True, False])
def test_a_dictionary_whose_keys_share_a_hash_is_joined_on_the_strings(monkeypatch, distinct):
    # given a dictionary frame reported with or without distinct hashes
    keys, _ = dictionaries.key_frame(INDEX)
    monkeypatch.setattr(dictionaries, "key_frame", lambda index: (keys, distinct))
    # then either join gives every string its index
    assert dictionaries.lookup(VALUES, INDEX).tolist() == by_dict(VALUES, INDEX)
