# numba compiles these from the arrays they receive; signatures stay untyped.
# mypy: disable-error-code="no-untyped-def"
"""Unit caps in the kernel: the walks of ``engine/pricing/units.py`` (its docstring is the
rule), over the kernel's arrays: ``Limits.max_units_per_line``, then ``Limits.max_units``
and ``Limits.units_in_groups_of`` (one per-offer room), then the units left of
``Limits.total_units`` / ``units_per_store``."""

from __future__ import annotations

from engine.pricing.jit import helper, inline_helper
from engine.pricing.kernel.util import find_limits
from engine.pricing.layout import L_QTY, LIM_UNITS, O_MAX_UNITS, O_MAX_UNITS_LINE, O_UNITS_GROUPS


@helper
def units_left(limits, o):
    """Units offer ``o`` may still discount; -1 = not tracked."""
    if limits.shape[0] > 0:
        k = find_limits(limits, o)
        if k >= 0:
            return limits[k, LIM_UNITS]
    return -1


@inline_helper
def offer_room(offer, o, lines, elig, ne):
    """Units offer ``o`` may discount in this basket (-1 = no cap): ``max_units``, and the
    ``floor(U/N)·N`` units of complete groups of ``units_in_groups_of = N`` of its ``U``
    eligible units ``elig[:ne]``; the smaller when both are set."""
    room = offer[o, O_MAX_UNITS] if offer[o, O_MAX_UNITS] > 0 else -1
    group = offer[o, O_UNITS_GROUPS]
    if group > 0:
        units = 0
        for j in range(ne):
            units += lines[elig[j], L_QTY]
        grouped = units // group * group
        room = grouped if room < 0 else min(room, grouped)
    return room


@inline_helper
def limit_units(offer, o, lines, elig, ne, prop, left):
    """Scale the proposal ``prop[elig[j]]`` to offer ``o``'s per-line and per-transaction unit
    limits (:func:`offer_room`), then to the ``left`` units (-1 = not tracked)."""
    per_line = offer[o, O_MAX_UNITS_LINE]
    room = offer_room(offer, o, lines, elig, ne)
    if per_line <= 0 and room < 0 and left < 0:
        return
    for j in range(ne):
        i = elig[j]
        d = prop[i]
        if d <= 0:
            continue
        u = lines[i, L_QTY]
        if 0 < per_line < u:
            d = d * per_line // u
            u = per_line
        if d > 0 and room >= 0:
            take = min(u, room)
            if take < u:
                d = d * take // u
            room -= take
            u = take
        if d > 0 and left >= 0:
            take = min(u, left)
            if take < u:
                d = d * take // u
            left -= take
        prop[i] = d


@inline_helper
def applied_units(offer, o, lines, best_elig, best, ne, left):
    """Units the applied offer counts: ``best[k]`` = final discount of line ``best_elig[k]``
    (``best_elig[:ne]``: all its eligible lines)."""
    per_line = offer[o, O_MAX_UNITS_LINE]
    room = offer_room(offer, o, lines, best_elig, ne)
    units = 0
    for k in range(ne):
        if best[k] > 0:
            u = lines[best_elig[k], L_QTY]
            if 0 < per_line < u:
                u = per_line
            if room >= 0:
                u = min(u, room)
                room -= u
            if left >= 0:
                u = min(u, left - units)
            units += u
    return units
