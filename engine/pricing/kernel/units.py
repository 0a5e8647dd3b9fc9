# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Unit caps in the kernel: the walk of ``engine/pricing/units.py`` (its docstring is the
rule), over the kernel's arrays."""

from __future__ import annotations

from engine.pricing.jit import helper
from engine.pricing.kernel.util import find_limits
from engine.pricing.layout import L_QTY, LIM_UNITS


@helper
def units_left(limits, o):
    """Units offer ``o`` may still discount; -1 = not tracked."""
    if limits.shape[0] > 0:
        k = find_limits(limits, o)
        if k >= 0:
            return limits[k, LIM_UNITS]
    return -1


@helper
def limit_units(lines, elig, ne, prop, left):
    """Scale the proposal ``prop[elig[j]]`` to the ``left`` units (-1 = no cap)."""
    if left < 0:
        return
    for j in range(ne):
        i = elig[j]
        d = prop[i]
        if d <= 0:
            continue
        q = lines[i, L_QTY]
        take = min(q, left)
        if take < q:
            prop[i] = d * take // q
        left -= take


@helper
def applied_units(lines, best_elig, best, ne, left):
    """Units the applied offer counts: ``best[k]`` = final discount of line ``best_elig[k]``."""
    units = 0
    for k in range(ne):
        if best[k] > 0:
            q = lines[best_elig[k], L_QTY]
            units += q if left < 0 else min(q, left - units)
    return units
