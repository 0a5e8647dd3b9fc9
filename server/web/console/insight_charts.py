"""Charts of the console's insight pages as inline SVG, drawn on the server (no script).

Each chart is an ``<svg role="img">`` named by its ``<title>`` and summarised by its ``<desc>``;
every bar is a ``<rect class="bar">`` with a ``<title>`` (its value, read out on hover and by
screen readers), and the page shows the same figures in a table beside it. Colours come from
presentation attributes (the Content-Security-Policy refuses inline styles) and keep at least
4.5:1 contrast against white.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# (series name, fill): the current rule set grey, the draft blue
SERIES = (("Current", "#4b5563"), ("Draft", "#1d4ed8"))
INK = "#111827"
GRID = "#d1d5db"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Group:
    """One category of a chart: its label and one value per series (minor units, counts)."""

    label: str
    values: tuple[int, ...]


def _attr(text: str) -> str:
    return escape(text, quote=True)


def _legend(x: float, y: float, names: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for k, (name, fill) in enumerate(names):
        dx = x + k * 110
        out.append(f'<rect x="{dx:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{fill}"/>')
        out.append(f'<text x="{dx + 18:.1f}" y="{y:.1f}" fill="{INK}" {FONT}>{escape(name)}</text>')
    return out


def bar_chart(
    chart_id: str,
    title: str,
    groups: Sequence[Group],
    fmt: Callable[[int], str],
    series: Sequence[tuple[str, str]] = SERIES,
    label_width: int = 180,
    width: int = 720,
) -> Markup:
    """Horizontal grouped bars: one row per group, one bar per series, values printed."""
    bar_h, gap = 16, 12
    row_h = bar_h * len(series) + gap
    top = 28
    height = top + max(1, len(groups)) * row_h + 8
    plot = width - label_width - 130  # room for the printed value
    largest = max((abs(v) for g in groups for v in g.values), default=0) or 1
    desc = "; ".join(
        f"{name}: " + ", ".join(f"{g.label} {fmt(g.values[k])}" for g in groups)
        for k, (name, _) in enumerate(series)
    )
    parts = [
        f'<svg id="{_attr(chart_id)}" class="chart" role="img" viewBox="0 0 {width} {height}"'
        f' width="100%" preserveAspectRatio="xMinYMin meet"'
        f' aria-labelledby="{_attr(chart_id)}-title {_attr(chart_id)}-desc"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{_attr(chart_id)}-desc">{escape(desc or "No data")}</desc>',
        *_legend(label_width, 16, series),
    ]
    if not groups:
        parts.append(
            f'<text x="{label_width}" y="{top + 16}" fill="{INK}" {FONT}>Nothing to show</text>'
        )
    x0 = label_width
    parts.append(f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{height - 6}" stroke="{GRID}"/>')
    for i, g in enumerate(groups):
        y = top + i * row_h
        parts.append(
            f'<text x="{label_width - 8}" y="{y + row_h / 2:.1f}" text-anchor="end"'
            f' dominant-baseline="middle" fill="{INK}" {FONT}>{escape(_short(g.label))}</text>'
        )
        for k, (name, fill) in enumerate(series):
            v = g.values[k]
            w = plot * abs(v) / largest
            by = y + k * bar_h
            parts.append(
                f'<rect class="bar" x="{x0}" y="{by}" width="{w:.1f}" height="{bar_h - 2}"'
                f' fill="{fill}"><title>{escape(f"{g.label}, {name}: {fmt(v)}")}</title></rect>'
            )
            parts.append(
                f'<text x="{x0 + w + 6:.1f}" y="{by + bar_h / 2:.1f}" dominant-baseline="middle"'
                f' fill="{INK}" {FONT}>{escape(fmt(v))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram(
    chart_id: str,
    title: str,
    edges: Sequence[tuple[int, int]],
    counts: Sequence[Sequence[int]],
    fmt: Callable[[int], str],
    series: Sequence[tuple[str, str]] = SERIES,
    width: int = 720,
    height: int = 260,
) -> Markup:
    """Vertical bars per bucket ``[lo, hi)`` of ``edges``, one bar per series side by side;
    ``counts[k][i]`` = baskets of series ``k`` in bucket ``i``."""
    left, right, top, bottom = 56, 12, 28, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(edges)
    largest = max((c for row in counts for c in row), default=0) or 1
    slot = plot_w / max(1, n)
    bar_w = max(1.0, (slot - 2) / len(series))
    desc = (
        "; ".join(
            f"{fmt(lo)} to {fmt(hi)}: "
            + ", ".join(f"{name} {counts[k][i]:,}" for k, (name, _) in enumerate(series))
            for i, (lo, hi) in enumerate(edges)
        )
        or "No basket has a discount"
    )
    parts = [
        f'<svg id="{_attr(chart_id)}" class="chart" role="img" viewBox="0 0 {width} {height}"'
        f' width="100%" preserveAspectRatio="xMinYMin meet"'
        f' aria-labelledby="{_attr(chart_id)}-title {_attr(chart_id)}-desc"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{_attr(chart_id)}-desc">{escape(desc)}</desc>',
        *_legend(left, 16, series),
    ]
    base = top + plot_h
    for frac in (0.0, 0.5, 1.0):  # the baskets axis: 0, half, the tallest bar
        y = base - plot_h * frac
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y:.1f}" text-anchor="end" dominant-baseline="middle"'
            f' fill="{INK}" {FONT}>{round(largest * frac):,}</text>'
        )
    if not n:
        parts.append(
            f'<text x="{left + 8}" y="{top + plot_h / 2:.1f}" fill="{INK}" {FONT}>'
            "No basket has a discount</text>"
        )
    every = max(1, -(-n // 8))  # at most 8 bucket labels under the axis
    for i, (lo, hi) in enumerate(edges):
        x = left + i * slot + 1
        for k, (name, fill) in enumerate(series):
            c = counts[k][i]
            h = plot_h * c / largest
            parts.append(
                f'<rect class="bar" x="{x + k * bar_w:.1f}" y="{base - h:.1f}"'
                f' width="{bar_w:.1f}" height="{h:.1f}" fill="{fill}"><title>'
                + escape(f"{name}: {c:,} baskets with {fmt(lo)} to {fmt(hi)}")
                + "</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{base + 16}" fill="{INK}" {FONT}>{escape(fmt(lo))}</text>'
            )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle" fill="{INK}"'
        f" {FONT}>Discount per basket (from)</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(label: str, limit: int = 26) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


__all__ = ["SERIES", "Group", "bar_chart", "histogram"]
