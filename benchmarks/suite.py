"""What every benchmark suite shares: machine info, a garbage-collector-free block, the command
line (``--quick``, ``--smoke``, ``--out``), writing ``<name>.json`` / ``<name>.md`` with plots,
and matplotlib set up to write files only (``plt``, ``plain_y``)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402

__all__ = [
    "configure",
    "cpu_model",
    "finish",
    "gc_off",
    "git_commit",
    "load_average",
    "machine_info",
    "machine_line",
    "package_version",
    "plain_y",
    "plt",
    "suite_parser",
    "threading_layer",
    "write_outputs",
]

# --- garbage collector -----------------------------------------------------------------------


@contextmanager
def gc_off() -> Iterator[None]:
    """No cyclic garbage collection inside: its pauses would land in the figures."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# --- machine ---------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def threading_layer() -> str:
    """The layer numba's parallel kernels ran on (known only after one ran)."""
    import numba

    try:
        return numba.threading_layer()
    except ValueError:
        return "none started"


def package_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def git_commit() -> str:
    try:  # read-only; a dirty tree shows in kernel_source_hash instead
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info() -> dict[str, Any]:
    import numba

    from engine.pricing.jit import kernel_source_hash

    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": package_version("numpy"),
        "numba": package_version("numba"),
        "polars": package_version("polars"),
        "matplotlib": package_version("matplotlib"),
        "git_commit": git_commit(),
        "kernel_source_hash": kernel_source_hash(),
        "load_average_start": load_average(),
    }


def machine_line(m: dict[str, Any]) -> str:
    return f"{m['cpu_model']}, {m['usable_cores']} cores"


# --- command line ----------------------------------------------------------------------------


def suite_parser(
    prog: str, doc: str | None, quick_help: str, smoke_help: str
) -> argparse.ArgumentParser:
    """A suite's parser with the options every suite has: --quick, --smoke, --out."""
    p = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=quick_help)
    size.add_argument("--smoke", action="store_true", help=smoke_help)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return p


def configure(modes: dict[str, Any], a: argparse.Namespace, given: dict[str, Any]) -> Any:
    """The mode's config (full unless --quick or --smoke) with the options given."""
    cfg = modes["quick" if a.quick else "smoke" if a.smoke else "full"]
    return replace(cfg, **{k: v for k, v in given.items() if v is not None})


# --- files -----------------------------------------------------------------------------------


def write_outputs(
    r: dict[str, Any],
    out: Path,
    name: str,
    plot_fn: Callable[[dict[str, Any], Path], list[Path]],
    markdown_fn: Callable[[dict[str, Any]], str],
) -> list[Path]:
    """Plots, then ``<name>.json`` (every figure, plot names included) and ``<name>.md``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = plot_fn(r, out)
    r["plots"] = [p.name for p in paths]
    js = out / f"{name}.json"
    js.write_text(json.dumps(r, indent=2, default=float) + "\n")
    md = out / f"{name}.md"
    md.write_text(markdown_fn(r))
    return [js, md, *paths]


def finish(
    r: dict[str, Any],
    out: Path,
    print_fn: Callable[[dict[str, Any]], None],
    write_fn: Callable[[dict[str, Any], Path], list[Path]],
) -> dict[str, Any]:
    """A suite's ending: the printed summary, then its files."""
    print_fn(r)
    for path in write_fn(r, out):
        print(f"wrote {path}")
    return r


# --- plots -----------------------------------------------------------------------------------


def plain_y(ax) -> None:
    """Log axis labelled 20, 50, 100 rather than 2x10^1 (minor labels only where few fit)."""
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.6)))
