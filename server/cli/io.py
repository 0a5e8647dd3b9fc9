"""The CLI's plumbing shared by its commands: opening the store and the rule registry the
options name, reading catalogue and day options, writing and showing frames, progress bars."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Never

import polars as pl

from engine.errors import InvalidInput, LoyaltyError
from engine.pricing.catalogue import Catalogue, load_catalogue
from server.store.base import Store

if TYPE_CHECKING:
    from server.rules.registry import RuleRegistry


def open_cli_store(args: argparse.Namespace) -> Store:
    """The store the options name: Redis with ``--redis-url``, else the embedded one."""
    from server.store import open_store

    if getattr(args, "redis_url", None):
        try:
            return open_store("redis", url=args.redis_url)
        except (ValueError, ImportError, LoyaltyError) as exc:  # no Redis store, or no server
            raise InvalidInput.at("--redis-url", str(exc)) from None
    return open_store("embedded", data_dir=args.data_dir)


def store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=".loyalty", help="embedded store (default ./.loyalty)")
    p.add_argument("--redis-url", default=None, help="use the Redis store at this URL instead")


def write_frame(df: pl.DataFrame, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if path.endswith(".csv"):  # CSV is flat: string lists joined by ";", others as JSON
        flat = df.select(
            [
                pl.col(c).list.join(";")
                if df.schema[c] == pl.List(pl.String)
                else pl.struct(c).struct.json_encode().alias(c)
                if df.schema[c].is_nested()
                else pl.col(c)
                for c in df.columns
            ]
        )
        flat.write_csv(path)
    else:
        df.write_parquet(path)


def show_frame(df: pl.DataFrame) -> None:
    with pl.Config(
        tbl_rows=60,
        tbl_cols=20,
        tbl_width_chars=160,
        fmt_str_lengths=40,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
    ):
        print(df)


def progress_bars() -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """A tqdm bar per step for ``progress(step, done, total)`` callbacks, and a closer."""
    from tqdm import tqdm

    bars: dict[str, tqdm[Never]] = {}

    def update(step: str, done: int, total: int) -> None:
        bar = bars.get(step) or bars.setdefault(
            step, tqdm(total=total, desc=step, unit=" rows", file=sys.stderr)
        )
        bar.update(done - bar.n)

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


def open_registry(args: argparse.Namespace) -> RuleRegistry | None:
    """The rule registry beside the store the options name (None: no embedded data dir)."""
    from server.rules.registry import RuleRegistry

    if getattr(args, "redis_url", None):
        from server.rules.versions import RedisVersions

        return RuleRegistry(versions=RedisVersions(args.redis_url))
    data_dir = getattr(args, "data_dir", None)
    return RuleRegistry(data_dir) if data_dir and Path(data_dir).is_dir() else None


def catalogue_option(args: argparse.Namespace) -> Catalogue | None:
    """``--catalogue``, else the registry's if there is one."""
    if getattr(args, "catalogue", None):
        return load_catalogue(args.catalogue)
    registry = open_registry(args)
    if registry is None:
        return None
    try:
        return registry.catalogue
    finally:
        registry.close()


def day_option(text: str | None) -> datetime | None:
    if not text:
        return None
    day = datetime.fromisoformat(text)
    return day if day.tzinfo else day.replace(tzinfo=UTC)


def guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Bad input (a file, an option) is one line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (InvalidInput, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run
