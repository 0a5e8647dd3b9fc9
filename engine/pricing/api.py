"""Price baskets with the compiled kernels: ``price`` for one basket, ``price_batch`` for many.

These wrappers turn plain Python inputs into the kernels' arrays (columns in
``engine.pricing.layout``) and decode the kernels' row tables back into :class:`PricingResult`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from engine.errors import InvalidInput, Violation
from engine.pricing import layout as L
from engine.pricing.attributes import member_mask
from engine.pricing.basket import local_time
from engine.pricing.compiler import CompiledRules
from engine.pricing.constants import (
    MAX_BASKET_GROSS_MINOR,
    MAX_BASKET_UNITS,
    Kind,
    Reason,
    Tender,
)
from engine.pricing.entry import run_kernel
from engine.pricing.kernel.line_rows import NOT_GIVEN, complete_rows
from engine.pricing.recurrence import next_start
from engine.pricing.restrictions import restricted_lines
from engine.pricing.types import (
    AppliedOffer,
    Basket,
    Explanation,
    GiftResult,
    LineDiscount,
    LineResult,
    Member,
    PointsComponent,
    PricingResult,
    RemainingLimits,
    RestrictedLine,
)

_NO_MEMBER = np.zeros(L.MEMBER_COLS, dtype=np.int64)


class BasketError(InvalidInput):
    """The basket cannot be priced; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__([Violation(field, message)])


def check_basket(basket: Basket) -> None:
    """Reject what the pricing contract does not define (docs/design.md §4: q ≥ 1, p ≥ 0)."""
    if basket.occurred_at.tzinfo is None:
        raise BasketError("occurred_at", "must carry a time zone")
    seen: set[str] = set()
    gross = 0
    for k, line in enumerate(basket.lines):
        if line.quantity < 1:
            raise BasketError(f"lines[{k}].quantity", f"must be at least 1 (got {line.quantity})")
        if line.unit_price_minor < 0:
            raise BasketError(
                f"lines[{k}].unit_price_minor",
                f"must not be negative (got {line.unit_price_minor})",
            )
        if line.line_id in seen:
            raise BasketError(f"lines[{k}].line_id", f"duplicate line id {line.line_id!r}")
        seen.add(line.line_id)
        gross += line.quantity * line.unit_price_minor
    if gross > MAX_BASKET_GROSS_MINOR:
        raise BasketError("lines", f"basket total {gross} exceeds {MAX_BASKET_GROSS_MINOR}")
    units = sum(line.quantity for line in basket.lines)
    if units > MAX_BASKET_UNITS:
        raise BasketError("lines", f"{units} units exceed {MAX_BASKET_UNITS}")


def encode_lines(compiled: CompiledRules, basket: Basket) -> np.ndarray:
    """int64[n, LINE_COLS]: the catalogue fills category/brand/vendor a line leaves empty
    (``kernel/line_rows.py``, the rule of every way lines come in)."""
    ci, bi, vi = compiled.category_index, compiled.brand_index, compiled.vendor_index
    out = np.array(  # layout.L_SKU ... L_FLAGS
        [
            (
                compiled.sku_index.get(x.sku, -1),
                ci.get(x.category, -1) if x.category else NOT_GIVEN,
                bi.get(x.brand, -1) if x.brand else NOT_GIVEN,
                vi.get(x.vendor, -1) if x.vendor else NOT_GIVEN,
                x.quantity,
                x.unit_price_minor,
                L.FLAG_DELIVERY if x.delivery else 0,
            )
            for x in basket.lines
        ],
        dtype=np.int64,
    ).reshape(-1, L.LINE_COLS)
    args = (compiled.sku_attr, len(compiled.catalogue), compiled.delivery_category)
    if complete_rows(out, *args):
        # one id below -1 per sku the index lacks, and per delivery charge's sku: lines of one
        # sku stay one kind (kernel/merge.py)
        unknown: dict[str, int] = {}
        for k, x in enumerate(basket.lines):
            if out[k, L.L_SKU] < 0 or x.delivery:
                out[k, L.L_SKU] = unknown.setdefault(x.sku, -2 - len(unknown))
    return out


def encode_member(compiled: CompiledRules, member: Member | None, redeem_points: int) -> np.ndarray:
    if member is None:
        m = _NO_MEMBER.copy()
        m[L.M_REDEEM] = redeem_points
        return m
    seg = 0
    for s in member.segments:
        bit = compiled.segment_bit.get(s)
        if bit is not None:
            seg |= 1 << bit
    if seg >= 1 << 63:
        seg -= 1 << 64
    return np.array(
        [
            1,
            compiled.tier_index.get(member.tier, -1),
            seg,
            member.birthday_month,
            member.available_points,
            redeem_points,
            member_mask(compiled.attr_predicates, member.attributes),
        ],
        dtype=np.int64,
    )


def encode_context(compiled: CompiledRules, basket: Basket) -> np.ndarray:
    t = local_time(basket.occurred_at, compiled.timezone)
    return np.array(
        [
            compiled.store_index.get(basket.store_id, -1),
            compiled.channel_index.get(basket.channel, -1),
            t.epoch_s,
            t.weekday,
            t.hour,
            t.month,
            t.day,
            t.monthday,
        ],
        dtype=np.int64,
    )


def encode_coupons(
    compiled: CompiledRules, member: Member | None, coupons: Sequence[str]
) -> np.ndarray:
    """int64[k, 2] (offer, remaining uses): wallet coupons, then one use per presented code."""
    rows = []
    index = compiled.offer_index
    if member is not None:
        rows += [(index[o], uses) for o, uses in member.wallet.items() if o in index]
    rows += [(index[o], 1) for o in coupons if o in index]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def encode_limits(
    compiled: CompiledRules, limits: Mapping[str, RemainingLimits] | None
) -> np.ndarray:
    rows = []
    for o, lim in (limits or {}).items():
        if o in compiled.offer_index:
            rows.append(
                (
                    compiled.offer_index[o],
                    _tracked(lim.member_uses),
                    _tracked(lim.total_uses),
                    _tracked(lim.budget_minor),
                    _tracked(lim.units),
                )
            )
    return np.array(rows, dtype=np.int64).reshape(-1, L.LIM_COLS)


def _tracked(v: int | None) -> int:
    return -1 if v is None else max(0, v)


def price(
    compiled: CompiledRules,
    basket: Basket,
    member: Member | None = None,
    *,
    coupons: Sequence[str] = (),
    redeem_points: int = 0,
    limits: Mapping[str, RemainingLimits] | None = None,
    explain: bool = False,
) -> PricingResult:
    """Price one basket with the compiled kernel.

    Parameters
    ----------
    compiled : CompiledRules
        From :func:`engine.compile_rules`.
    basket : Basket
        Lines, time, store and channel.
    member : Member, optional
        The identified member; ``None`` prices a guest basket.
    coupons : sequence of str
        Offer ids activated by presented coupon codes.
    redeem_points : int
        Points to pay with; ``-1`` = as many as allowed.
    limits : mapping of offer id to RemainingLimits, optional
        What is left of per-member and global limits now.
    explain : bool
        Also say why each considered offer did not apply.
    """
    check_basket(basket)
    lines = encode_lines(compiled, basket)
    member_row = encode_member(compiled, member, redeem_points)
    line_out, rows, counts = run_kernel(
        compiled,
        lines,
        member_row,
        encode_context(compiled, basket),
        encode_coupons(compiled, member, coupons),
        encode_limits(compiled, limits),
        explain,
    )
    restricted = restricted_lines(compiled, lines, member_row)
    return decode(compiled, basket, line_out, rows, counts, restricted)


def decode(
    compiled: CompiledRules,
    basket: Basket,
    line_out: np.ndarray,
    rows: np.ndarray,
    counts: np.ndarray,
    restricted: tuple[RestrictedLine, ...] = (),
) -> PricingResult:
    """Kernel outputs -> PricingResult (docs/pricing.md §8 order); ``restricted`` = the
    basket's member-only lines (:func:`engine.pricing.restrictions.restricted_lines`).

    One pass over the rows as Python lists: checkout baskets are small, and numpy calls on
    arrays of a few rows cost more than the loop.
    """
    ids, funders, kinds = compiled.offer_ids, compiled.offer_funder, compiled.offer_kind
    n = len(basket.lines)
    per_line: list[list[LineDiscount]] = [[] for _ in range(n)]
    by_offer: dict[int, list[int]] = {}
    offers = []
    components: list[tuple[int, int, list[int]]] = []  # offer, points, per-line attribution
    explanations = []
    gifts = []
    for kind, a, b, c, d, e in rows.tolist():
        if kind == L.ROW_DISCOUNT:
            per_line[a].append(LineDiscount(ids[b], c, funders[b], d))
            acc = by_offer.setdefault(b, [0, 0])
            acc[0] += c
            acc[1] += d
        elif kind == L.ROW_APPLIED:
            total, funded = by_offer.get(a, (0, 0))
            offers.append(AppliedOffer(ids[a], total, funders[a], funded, c, b, d))
        elif kind == L.ROW_POINTS:
            components.append((a, b, [0] * n))
        elif kind == L.ROW_ATTRIBUTION:
            components[a][2][b] = c
        elif kind == L.ROW_GIFT:
            g = compiled.rules.offers[a].gift
            gifts.append(GiftResult(ids[a], g.sku, g.quantity, b, g.price_minor))
        else:
            related = ids[e] if e >= 0 else ""
            upcoming = _next_start(compiled, b, basket) if c == Reason.NOT_IN_TIME_WINDOW else None
            explanations.append(
                (a, Explanation(ids[b], Reason(c), d, related, next_start=upcoming))
            )
    points = tuple(
        PointsComponent(ids[o] if o >= 0 else "", _component_kind(kinds, o), pts, tuple(att))
        for o, pts, att in components
    )
    explanations.sort(key=lambda pe: pe[0])  # evaluation order; the sort is stable
    net_l, tender_l, pts_l = line_out.tolist()
    lines = tuple(
        LineResult(
            line.line_id,
            line.quantity * line.unit_price_minor,
            net_l[i],
            tuple(per_line[i]),
            tender_l[i],
            pts_l[i],
        )
        for i, line in enumerate(basket.lines)
    )
    gross = sum(x.gross_minor for x in lines)
    net_total = sum(net_l)
    tender_minor = sum(tender_l)
    return PricingResult(
        lines=lines,
        gross_minor=gross,
        discount_minor=gross - net_total,
        net_minor=net_total,
        points_redeemed=int(counts[L.N_TENDER_POINTS]),
        points_tender_minor=tender_minor,
        payable_minor=net_total - tender_minor,
        points_earned=sum(pts_l),
        tender=Tender(int(counts[L.N_TENDER_CODE])),
        points=points,
        offers=tuple(offers),
        explanations=tuple(e for _, e in explanations),
        restricted=restricted,
        gifts=tuple(gifts),
    )


def _next_start(compiled: CompiledRules, o: int, basket: Basket) -> datetime | None:
    if compiled.arrays.offer[o, L.O_REC_FREQ] == 0:
        return None
    epoch_s = local_time(basket.occurred_at, compiled.timezone).epoch_s
    return next_start(compiled.rules.offers[o].conditions, compiled.timezone, epoch_s)


def _component_kind(kinds: tuple[int, ...], o: int) -> str:
    if o < 0:
        return "base"
    return "multiplier" if kinds[o] == Kind.POINTS_MULTIPLIER else "bonus"
