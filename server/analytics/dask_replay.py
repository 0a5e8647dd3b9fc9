"""History replay on Dask: simulation and targeting partitioned by member over a cluster.

``--dask local`` starts a :class:`distributed.LocalCluster` of worker processes on loopback
(``local:N``: N workers, one thread each), ``--dask tcp://HOST:PORT`` uses a running
scheduler (its workers need this package installed). The results are those of the
single-process run (:func:`engine.analytics.simulate.compare`,
:func:`engine.analytics.targeting.category_profiles` / ``member_values``) to the cent.

Partitioning (docs/design.md §7): every row of a transaction (its commit, cancel and returns)
goes to partition ``crc32(member_id) mod P``, or ``crc32(transaction_id) mod P`` for a guest,
so a member's whole history is in one partition and the split is the same in every process
and version. On the workers:

- *simulation*: each partition's baskets are priced by the batch kernel as if no limit were
  used (:func:`engine.analytics.replay.price_chunk`), and the baskets that applied a limited
  offer come back as :class:`~engine.analytics.probes.Probe` rows. The driver walks the probes
  of all partitions in ledger (``seq``) order with one :class:`~engine.analytics.limits.Limiter`
  (total uses and budgets are global; the cancels and returns of the whole history give back
  at their place) and sends each partition the baskets the limits re-priced; the workers patch
  their results and score them (:func:`engine.analytics.scoring.score_part`), and the driver
  adds the parts up (:func:`~engine.analytics.scoring.merge`, by ``seq``).
- *targeting*: each partition computes its members' totals
  (:func:`~engine.analytics.targeting.category_totals`, ``member_totals``); the driver finishes
  what ranks members against each other (usage tertiles, ABC classes) over them all.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from engine.analytics import replay, targeting
from engine.analytics.history import conform
from engine.analytics.limits import Limiter, limited_mask, offer_limits
from engine.analytics.probes import Override, Probe, patch
from engine.analytics.probes import probes as find_probes
from engine.analytics.replay import (
    Attributes,
    basket_frames,
    coupon_offers,
    price_chunk,
    reversal_events,
)
from engine.analytics.scoring import Partial, merge, score_part
from engine.analytics.simulate import Comparison
from engine.errors import InvalidInput
from engine.pricing.batch import BatchOutput, EncodedBatch
from engine.pricing.compiler import CompiledRules
from engine.pricing.frames import CHUNK_BASKETS, chunks

# a distributed.Client (untyped: distributed ships no type information for most of its API)
Client = Any

EXTRA = "pip install 'loyalty-engine[dask]'"
OPTION = "--dask"
_LOCAL = re.compile(r"local(?::(\d+))?")
_TCP = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")
MAX_LOCAL_WORKERS = 256
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class DaskTarget:
    """Where to run: a local cluster of ``workers`` processes, or the scheduler ``address``."""

    workers: int = 0  # local cluster size (0 = one per core)
    address: str = ""  # tcp://HOST:PORT of a running scheduler


def parse_dask(value: str) -> DaskTarget:
    """``local``, ``local:N`` or ``tcp://HOST:PORT``; anything else is :class:`InvalidInput`."""
    local = _LOCAL.fullmatch(value)
    if local:
        n = int(local.group(1)) if local.group(1) else 0
        if local.group(1) and not 1 <= n <= MAX_LOCAL_WORKERS:
            raise InvalidInput.at(OPTION, f"local:N needs 1..{MAX_LOCAL_WORKERS} workers (got {n})")
        return DaskTarget(workers=n)
    tcp = _TCP.fullmatch(value)
    if tcp and 1 <= int(tcp.group(2)) <= 65535:
        return DaskTarget(address=value)
    raise InvalidInput.at(OPTION, f"must be local, local:N or tcp://HOST:PORT (got {value!r})")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:  # the optional extra
        raise InvalidInput.at(
            OPTION, f"needs dask and distributed, which are not installed: {EXTRA}"
        ) from exc
    return distributed


@contextmanager
def dask_client(value: str) -> Iterator[Client]:
    """A client for ``--dask value`` (:func:`parse_dask`); a local cluster it starts is closed
    on exit."""
    target = parse_dask(value)
    distributed = _distributed()
    if target.address:
        try:
            client = distributed.Client(target.address, timeout=START_TIMEOUT_S)
        except OSError as exc:
            raise InvalidInput.at(OPTION, f"no scheduler at {target.address}: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
        return
    cluster = distributed.LocalCluster(
        n_workers=target.workers or None,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # its HTTP server (health, metrics) on a free loopback port
    )
    try:
        with distributed.Client(cluster, timeout=START_TIMEOUT_S) as client:
            yield client
    finally:
        cluster.close()


def worker_threads(client: Client) -> int:
    """Threads across the cluster's workers (at least 1)."""
    info = client.scheduler_info()["workers"]
    return max(1, sum(int(w.get("nthreads", 1)) for w in info.values()))


# -- partitioning ------------------------------------------------------------------------------


def partition(
    history: pl.DataFrame | pl.LazyFrame, parts: int, columns: Iterable[str] | None = None
) -> list[pl.DataFrame]:
    """``history`` (its ``columns``, default all) split into ``parts`` frames by a stable
    hash: every row of a transaction goes with its member (``crc32(member_id) mod parts``), a
    guest's with its transaction (``crc32(transaction_id) mod parts``); rows keep their
    order."""
    df = conform(history).collect()
    member = pl.col("member_id").filter(
        pl.col("member_id").is_not_null() & (pl.col("member_id") != "")
    )
    key = df.select(pl.coalesce(member.first().over("transaction_id"), "transaction_id").alias("k"))
    keys = key["k"].unique()
    hashed = pl.DataFrame(
        {"k": keys, "_p": [zlib.crc32(k.encode()) % parts for k in keys.to_list()]},
        schema={"k": pl.String, "_p": pl.Int64},
    )
    part = key.join(hashed, on="k", how="left", maintain_order="left")["_p"]
    if columns is not None:
        df = df.select(columns)
    split = {
        p[0]: f.drop("_p")
        for p, f in df.with_columns(part).partition_by("_p", as_dict=True).items()
    }
    return [split.get(k, df.clear()) for k in range(parts)]


def _pack(frame: pl.DataFrame) -> bytes:
    """A frame as Arrow IPC bytes: Dask moves bytes several times faster than a pickled
    polars frame."""
    out = io.BytesIO()
    frame.write_ipc(out)
    return out.getvalue()


def _unpack(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(data))


def _scatter(client: Client, frames: list[pl.DataFrame]) -> list[Any]:
    return list(client.scatter([_pack(f) for f in frames], hash=False))


# -- simulation --------------------------------------------------------------------------------


@dataclass
class _Priced:
    """A partition priced without limits, kept on its worker between the two passes."""

    # per rule set, per chunk: lines, baskets, encoded batch, output
    chunks: list[list[tuple[pl.DataFrame, pl.DataFrame, EncodedBatch, BatchOutput]]]
    # per rule set: (chunk, basket, probe) of every basket that applied a limited offer
    probes: list[list[tuple[int, int, Probe]]]


def _price_partition(
    rule_sets: list[CompiledRules],
    history: bytes,
    coupons: list[str],
    assume_coupons: list[str],
    chunk: int,
    attributes: Attributes | None,
) -> _Priced:
    lines, baskets = basket_frames(_unpack(history), coupons, assume_coupons)
    out = _Priced([], [])
    for compiled in rule_sets:
        limits = offer_limits(compiled)
        mask = limited_mask(compiled, limits)
        done, found = [], []
        for k, (_, part_l, part_b) in enumerate(chunks(lines, baskets, chunk)):
            # the first rule set's encoding of the chunk, shared where the dictionaries agree
            like = (rule_sets[0], out.chunks[0][k][2]) if out.chunks else None
            enc, res = price_chunk(compiled, part_l, part_b, attributes, like)
            done.append((part_l, part_b, enc, res))
            if limits:
                ids = part_l["line_id"].to_list()
                found += [(k, b, p) for b, p in find_probes(mask, enc, res, part_b, ids)]
        out.chunks.append(done)
        out.probes.append(found)
    return out


def _probes_of(priced: _Priced) -> list[list[tuple[int, int, Probe]]]:
    return priced.probes


def _score_partition(
    rule_sets: list[CompiledRules],
    priced: _Priced,
    overrides: list[dict[tuple[int, int], Override]],
) -> list[list[Partial]]:
    scored = []
    for compiled, done, fixed in zip(rule_sets, priced.chunks, overrides, strict=True):
        parts = []
        for k, (part_l, part_b, enc, res) in enumerate(done):
            mine = {b: o for (kk, b), o in fixed.items() if kk == k}
            res = patch(enc, res, mine)
            parts.append(score_part(compiled, enc, res, part_b, part_l))
        scored.append(parts)
    return scored


def compare_on(
    client: Client,
    current: CompiledRules,
    draft: CompiledRules,
    history: pl.DataFrame | pl.LazyFrame,
    assume_coupons: Iterable[str] = (),
    chunk: int = CHUNK_BASKETS,
    attributes: Attributes | None = None,
    parts: int | None = None,
) -> Comparison:
    """:func:`engine.analytics.simulate.compare` on the cluster of ``client``, the history in
    ``parts`` partitions (default: one per worker thread); the same result."""
    hist = conform(history).collect()
    frames = partition(hist, parts or worker_threads(client), replay.COLUMNS)
    rule_sets = [current, draft]
    coupons = sorted(set(coupon_offers(current.rules)) | set(coupon_offers(draft.rules)))
    extra = list(assume_coupons)
    [rules_f] = client.scatter([rule_sets], broadcast=True, hash=False)
    frames_f = _scatter(client, frames)
    priced = [
        client.submit(
            _price_partition,
            rules_f,
            frame_f,
            coupons,
            extra,
            chunk,
            _attributes_of(attributes, frame),
            pure=False,
        )
        for frame, frame_f in zip(frames, frames_f, strict=True)
    ]
    found = client.gather([client.submit(_probes_of, p, pure=False) for p in priced])
    events = reversal_events(hist)
    overrides: list[list[dict[tuple[int, int], Override]]] = [
        [{} for _ in rule_sets] for _ in frames
    ]
    for r, compiled in enumerate(rule_sets):
        limits = offer_limits(compiled)
        if not limits:
            continue
        limiter = Limiter(compiled, limits, events)
        walk = sorted(
            ((probe.seq, i, k, b, probe) for i, f in enumerate(found) for k, b, probe in f[r]),
            key=lambda x: x[0],
        )
        # one pass in ledger order: the store's counters
        done = limiter.walk_each([probe for *_, probe in walk])
        for (_, i, k, b, _), override in zip(walk, done, strict=True):
            if override is not None:
                overrides[i][r][(k, b)] = override
    overrides_f = client.scatter(overrides, hash=False)
    scored = client.gather(
        [
            client.submit(_score_partition, rules_f, p, o, pure=False)
            for p, o in zip(priced, overrides_f, strict=True)
        ]
    )
    current_s, draft_s = (
        merge((part for s in scored for part in s[r]), c.rules.points.point_value_minor)
        for r, c in enumerate(rule_sets)
    )
    return Comparison(current_s, draft_s)


def _attributes_of(attributes: Attributes | None, frame: pl.DataFrame) -> Attributes | None:
    if not attributes:
        return attributes
    members = frame["member_id"].drop_nulls().unique().to_list()
    return {m: attributes[m] for m in members if m in attributes}


# -- targeting ---------------------------------------------------------------------------------


def _target_partition(
    history: bytes, config: targeting.TargetingConfig, as_of: datetime
) -> tuple[bytes, bytes]:
    frame = _unpack(history)
    return (
        _pack(targeting.category_totals(frame, config, as_of)),
        _pack(targeting.member_totals(frame, as_of)),
    )


def profile_on(
    client: Client,
    history: pl.DataFrame | pl.LazyFrame,
    config: targeting.TargetingConfig | None = None,
    as_of: datetime | None = None,
    parts: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(category_profiles, member_values)`` of :mod:`engine.analytics.targeting` on the
    cluster of ``client``; the same frames."""
    config = config or targeting.TargetingConfig()
    hist = conform(history).collect()
    as_of, span_days = targeting.window(hist, as_of)
    frames = _scatter(client, partition(hist, parts or worker_threads(client), targeting.COLUMNS))
    totals = client.gather(
        [client.submit(_target_partition, f, config, as_of, pure=False) for f in frames]
    )
    cats = pl.concat([_unpack(c) for c, _ in totals])
    members = pl.concat([_unpack(m) for _, m in totals])
    return (
        targeting.finish_profiles(cats, config, span_days),
        targeting.finish_values(members, config, as_of, span_days),
    )


__all__ = [
    "DaskTarget",
    "compare_on",
    "dask_client",
    "parse_dask",
    "partition",
    "profile_on",
    "worker_threads",
]
