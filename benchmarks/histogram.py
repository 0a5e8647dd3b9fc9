"""A small HDR-style latency histogram: log-spaced buckets of fixed relative width.

Every bucket is ``1 + 1/RESOLUTION`` wider than the one below (about 1% with the default), so
percentiles read from it are within 1% of the exact value from 1 µs to over a minute, counts
from several client processes merge by adding arrays, and the JSON form keeps only the
buckets that hold something. Values are recorded in bulk from a numpy array of nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

RESOLUTION = 100  # buckets per e-fold: relative width ~1%
LOWEST_NS = 1_000  # values below 1 µs land in the first bucket
BUCKETS = 2_000  # 1 µs * e**(2000/100) ≈ 485 s: more than any timeout here


def bucket_of(ns: np.ndarray) -> np.ndarray:
    """Bucket index of each value (nanoseconds, any integer or float dtype)."""
    x = np.maximum(np.asarray(ns, dtype=np.float64), LOWEST_NS) / LOWEST_NS
    return np.minimum((np.log(x) * RESOLUTION).astype(np.int64), BUCKETS - 1)


def bucket_value_ns(index: np.ndarray | int) -> np.ndarray:
    """A value that stands for its bucket: the geometric middle of its bounds."""
    return LOWEST_NS * np.exp((np.asarray(index, dtype=np.float64) + 0.5) / RESOLUTION)


@dataclass
class Histogram:
    """Counts per log bucket; ``record`` takes nanoseconds, percentiles come back in µs."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(BUCKETS, dtype=np.int64))
    max_ns: int = 0

    def record(self, ns: np.ndarray) -> Histogram:
        ns = np.asarray(ns)
        if ns.size:
            self.counts += np.bincount(bucket_of(ns), minlength=BUCKETS)
            self.max_ns = max(self.max_ns, int(ns.max()))
        return self

    def merge(self, other: Histogram) -> Histogram:
        self.counts += other.counts
        self.max_ns = max(self.max_ns, other.max_ns)
        return self

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile_us(self, q: float) -> float:
        """The ``q``-th percentile (0-100) in µs; 0.0 when empty. p100 is the exact maximum."""
        n = self.total
        if n == 0:
            return 0.0
        if q >= 100:
            return self.max_ns / 1e3
        rank = max(1, int(np.ceil(q / 100 * n)))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        return min(float(bucket_value_ns(index)), float(self.max_ns)) / 1e3

    def mean_us(self) -> float:
        n = self.total
        return (
            float((self.counts * bucket_value_ns(np.arange(BUCKETS))).sum() / n / 1e3) if n else 0.0
        )

    def summary(self, percentiles: tuple[float, ...] = (50, 90, 99, 99.9)) -> dict[str, Any]:
        out: dict[str, Any] = {
            "count": self.total,
            "mean_us": self.mean_us(),
            "max_us": self.max_ns / 1e3,
        }
        for q in percentiles:
            out[f"p{q:g}_us"] = self.percentile_us(q)
        return out

    def to_json(self) -> dict[str, Any]:
        """Sparse form: ``{"resolution", "lowest_ns", "max_ns", "buckets": "index:count ..."}``
        (one string, so indented JSON stays short)."""
        nz = np.flatnonzero(self.counts)
        return {
            "resolution": RESOLUTION,
            "lowest_ns": LOWEST_NS,
            "max_ns": self.max_ns,
            "buckets": " ".join(f"{i}:{self.counts[i]}" for i in nz),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Histogram:
        h = cls(max_ns=int(data["max_ns"]))
        for item in data["buckets"].split():
            i, c = item.split(":")
            h.counts[int(i)] = int(c)
        return h

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(percentile, latency µs) points of the non-empty buckets, for percentile plots."""
        nz = np.flatnonzero(self.counts)
        cum = np.cumsum(self.counts[nz]) / max(self.total, 1) * 100
        return cum, bucket_value_ns(nz) / 1e3
