"""Plain-Python reference evaluator: docs/pricing.md read line by line.

This is the independent twin of the numba kernels (docs/design.md §2, §4): it works directly on
the ``RuleSet`` protobuf and string ids, with no compiled arrays, so that tests can compare
the two for exact equality of the whole :class:`~engine.pricing.types.PricingResult`.

The flow is the spec's: decide which offers are *considered* (§2), run them in evaluation
order (§3), item and order phases first, then the points tender and the points phase (§6).
Each considered offer goes through the checks of §4 in their order and either applies or
gets exactly one explanation. The reward kinds themselves live in
:mod:`engine.pricing.reference.rewards`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from engine.pricing.basket import ResolvedLine, local_time, resolve_lines
from engine.pricing.catalogue import Catalogue
from engine.pricing.constants import (
    BPS,
    Kind,
    Mode,
    Phase,
    Reason,
    Tender,
    phase_of,
)
from engine.pricing.reference import rewards as rw
from engine.pricing.reference.checks import (
    Context,
    Proposal,
    Refusal,
    State,
    check_conditions,
    check_minimums,
    discount_eligible,
    kind_of,
    points_eligible,
    scope_lines,
)
from engine.pricing.reference.merge import merge, share_back, vocabulary
from engine.pricing.reference.restrictions import restricted_lines
from engine.pricing.types import (
    AppliedOffer,
    Basket,
    GiftResult,
    LineDiscount,
    LineResult,
    Member,
    PointsComponent,
    PricingResult,
    RemainingLimits,
)
from engine.pricing.units import applied_units, limit_units, offer_unit_room
from loyalty.v1 import rules_pb2

RETAILER = "retailer"

# reward kinds of the item and order phases: what each offer *would* give on its scope now
_DISCOUNTS: dict[Kind, Callable[..., rw.ItemDiscount | rw.OrderDiscount | rw.Shortfall]] = {
    Kind.PERCENT_OFF: rw.percent_off,
    Kind.AMOUNT_OFF: rw.amount_off,
    Kind.FIXED_PRICE: rw.fixed_price,
    Kind.QTY_TIERS: rw.qty_tiers,
    Kind.BUY_X_GET_Y: rw.buy_x_get_y,
    Kind.BUNDLE_PRICE: rw.bundle_price,
    Kind.TARGET_UNITS: rw.target_units,
    Kind.BUY_GET: rw.buy_get,
    Kind.UNIT_RATES: rw.unit_rates,
    Kind.DELIVERY_OFF: rw.delivery_off,
    Kind.GIFT: rw.gift,
    Kind.SPEND_TIERS: rw.spend_tiers,
    Kind.ORDER_PERCENT_OFF: rw.order_percent_off,
    Kind.ORDER_AMOUNT_OFF: rw.order_amount_off,
}


def price_reference(
    rules: rules_pb2.RuleSet,
    catalogue: Catalogue,
    basket: Basket,
    member: Member | None = None,
    *,
    coupons: Sequence[str] = (),
    redeem_points: int = 0,
    limits: Mapping[str, RemainingLimits] | None = None,
    explain: bool = False,
) -> PricingResult:
    """Price ``basket`` under ``rules`` exactly as docs/pricing.md says.

    ``coupons`` are the offer ids of presented codes; ``member.wallet`` holds the personalised
    coupons; ``limits`` the remaining per-offer limits (``None`` fields are not tracked);
    ``redeem_points`` the points the member wants to pay with (``-1`` = as many as allowed).
    """
    basket_lines = resolve_lines(basket, catalogue)
    lines, members = merge(basket_lines, vocabulary(rules, catalogue))
    ctx = Context(
        rules,
        member,
        local_time(basket.occurred_at, rules.timezone),
        basket.store_id,
        basket.channel,
        tuple(coupons),
        limits or {},
    )
    state = State.start(tuple(lines))
    units = [
        (phase, [o for o in offers if _is_considered(o, lines, ctx)])
        for phase, offers in _evaluation_units(rules)
    ]

    # item and order phases
    for phase, offers in units:
        if phase != Phase.POINTS and offers:
            _run_discount_unit(offers, ctx, state)

    redeemed, tender, tender_lines = _points_tender(ctx, redeem_points, state)

    # points phase: base points first, then every points offer adds up
    components = _base_points(ctx, state, tender_lines)
    points_offers = [o for phase, offers in units if phase == Phase.POINTS for o in offers]
    for offer in points_offers:
        component = _run_points_offer(offer, ctx, state, tender_lines)
        if component is not None:
            components.append(component)

    result = _result(state, redeemed, tender, tender_lines, components, explain)
    result = share_back(result, basket_lines, members)
    return replace(result, restricted=restricted_lines(rules, basket_lines, member))


# --- §2 considered offers and §3 evaluation order ------------------------------------------


def _is_considered(offer: rules_pb2.Offer, lines: Sequence[ResolvedLine], ctx: Context) -> bool:
    """Its scope matches a basket line, and it is automatic or one of its coupons is here."""
    # an offer without a product set matches nothing (delivery_off's lines are the delivery)
    if not scope_lines(offer, lines):
        return False
    return offer.activation == rules_pb2.Offer.AUTOMATIC or ctx.has_coupon(offer.id)


def _evaluation_units(rules: rules_pb2.RuleSet) -> list[tuple[Phase, list[rules_pb2.Offer]]]:
    """Offers by ``(phase, priority, id)``; a group sits where its first member does.

    Group positions are taken over the whole rule set, before anything is filtered, so the
    order does not depend on the basket. Points offers never form groups.
    """
    offers = sorted(
        (o for o in rules.offers if o.WhichOneof("reward")),
        key=lambda o: (phase_of(kind_of(o)), o.stacking.priority, o.id),
    )
    units: list[tuple[Phase, list[rules_pb2.Offer]]] = []
    groups: dict[tuple[Phase, str], list[rules_pb2.Offer]] = {}
    for offer in offers:
        phase = phase_of(kind_of(offer))
        name = offer.stacking.group
        if not name or phase == Phase.POINTS:
            units.append((phase, [offer]))
        elif (phase, name) in groups:
            groups[(phase, name)].append(offer)
        else:
            groups[(phase, name)] = [offer]
            units.append((phase, groups[(phase, name)]))
    return units


# --- item and order phases: checks 14–16, caps, applying -----------------------------------


def _cap(offer: rules_pb2.Offer, ctx: Context) -> int | None:
    """``min(max_discount if > 0, remaining budget if tracked)``; ``None`` = no cap."""
    caps = []
    if offer.limits.max_discount_minor > 0:
        caps.append(offer.limits.max_discount_minor)
    remaining = ctx.limits.get(offer.id)
    if remaining is not None and remaining.budget_minor is not None:
        caps.append(remaining.budget_minor)
    return min(caps) if caps else None


def _capped_item_discount(amounts: dict[int, int], cap: int | None) -> dict[int, int]:
    """Over the cap, the cap is re-allocated over the touched lines, weights = uncapped d_i."""
    touched = sorted(i for i, d in amounts.items() if d > 0)
    if cap is None or sum(amounts[i] for i in touched) <= cap:
        return {i: amounts[i] for i in touched}
    shares = rw.allocate(cap, [amounts[i] for i in touched])
    return dict(zip(touched, shares, strict=True))


def _allocated_order_discount(d: int, cap: int | None, scope: rw.Scope) -> dict[int, int]:
    """``D`` (after the cap) allocated over the eligible lines with weights ``net_i``."""
    if cap is not None:
        d = min(d, cap)
    shares = rw.allocate(d, [scope.nets[i] for i in scope.eligible])
    return dict(zip(scope.eligible, shares, strict=True))


def _propose_discount(offer: rules_pb2.Offer, ctx: Context, state: State) -> Proposal | Refusal:
    """Checks 1–15 for a discount offer on the current state, without changing it."""
    refusal = check_conditions(offer, ctx)
    if refusal is not None:
        return refusal
    eligible = discount_eligible(offer, state)
    if isinstance(eligible, Refusal):
        return eligible
    scope = rw.Scope(state.lines, state.nets, eligible, offer.limits.per_transaction)
    kind = kind_of(offer)
    threshold_scope = _threshold_scope(offer, kind, scope)
    if not threshold_scope.eligible:  # a gift offer whose lines are all its gift's
        return Refusal(Reason.NO_ELIGIBLE_LINES)
    refusal = check_minimums(offer.conditions, threshold_scope, offer.limits.units_in_groups_of)
    if refusal is not None:
        return refusal
    reward = _DISCOUNTS[kind](getattr(offer, offer.WhichOneof("reward")), scope)
    if isinstance(reward, rw.Shortfall):
        return Refusal(reward.reason, reward.detail)
    remaining = ctx.limits.get(offer.id)
    left = remaining.units if remaining is not None else None
    qty = [ln.quantity for ln in state.lines]
    lim = offer.limits
    room = offer_unit_room(lim, qty, scope.eligible)  # max_units and units_in_groups_of
    if isinstance(reward, rw.ItemDiscount):
        limited = dict(reward.amounts)
        limit_units(qty, limited, scope.eligible, left, lim.max_units_per_line, room)
        amounts = _capped_item_discount(limited, _cap(offer, ctx))
    else:
        amounts = _allocated_order_discount(reward.amount, _cap(offer, ctx), scope)
    positive = {i: d for i, d in sorted(amounts.items()) if d > 0}
    if not positive:
        return Refusal(Reason.NO_BENEFIT)
    units = applied_units(qty, positive, left, lim.max_units_per_line, room)
    found = reward.found if isinstance(reward, rw.ItemDiscount) else 0
    return Proposal(positive, reward.applications, units, found)


def _threshold_scope(offer: rules_pb2.Offer, kind: Kind, scope: rw.Scope) -> rw.Scope:
    """What checks 11-13 read: the offer's scope, but for a gift without the gift's own lines
    (the basket net less theirs, and only the other eligible lines)."""
    if kind != Kind.GIFT:
        return scope
    gifts = rw.gift_set(offer.gift)
    own = [rw.in_product_set(gifts, line) for line in scope.lines]
    nets = [0 if g else n for n, g in zip(scope.nets, own, strict=True)]
    qualifying = [i for i in scope.eligible if not own[i]]
    return replace(scope, nets=nets, eligible=qualifying)


def _run_discount_unit(offers: list[rules_pb2.Offer], ctx: Context, state: State) -> None:
    """One offer, or a group whose members compete on the same state (check 16)."""
    outcomes = [(offer, _propose_discount(offer, ctx, state)) for offer in offers]
    winner: tuple[rules_pb2.Offer, Proposal] | None = None
    for offer, outcome in outcomes:
        # strictly larger: ties stay with the earlier (priority, id)
        if isinstance(outcome, Proposal) and (winner is None or outcome.total > winner[1].total):
            winner = (offer, outcome)
    for offer, outcome in outcomes:
        if isinstance(outcome, Refusal):
            state.explain(offer.id, outcome)
        elif winner is not None and offer is winner[0]:
            _apply_discount(offer, outcome, state)
        else:
            assert winner is not None
            state.explain(offer.id, Refusal(Reason.LOST_TO_GROUP, related=winner[0].id))
    for offer, outcome in outcomes:  # the gifts the basket qualifies for
        if kind_of(offer) != Kind.GIFT:
            continue
        if winner is not None and offer is winner[0]:
            found = winner[1].found
        elif isinstance(outcome, Refusal) and outcome.reason == Reason.GIFT_NOT_IN_BASKET:
            found = 0
        else:
            continue
        g = offer.gift
        state.gifts.append(GiftResult(offer.id, g.sku, g.quantity, found, g.price_minor))


def _apply_discount(offer: rules_pb2.Offer, proposal: Proposal, state: State) -> None:
    """Record one row per discounted line, lower the nets, and lock what the mode locks."""
    funder = offer.funding.funder_id or RETAILER
    share = offer.funding.funded_share_bps
    mode: int = offer.stacking.mode  # a Stacking.Mode number, compared with constants.Mode
    funded_total = 0
    for i, amount in proposal.amounts.items():
        funded = rw.rhu(amount, share, BPS)
        funded_total += funded
        state.rows[i].append(LineDiscount(offer.id, amount, funder, funded))
        state.nets[i] -= amount
        if mode == Mode.EXCLUSIVE:
            state.locked_by[i] = offer.id
    if mode == Mode.EXCLUSIVE_ORDER:
        state.order_locked_by = offer.id
    state.applied.append(
        AppliedOffer(
            offer.id, proposal.total, funder, funded_total, 0, proposal.applications, proposal.units
        )
    )


# --- §6 points: tender, base points, points offers ------------------------------------------


def _programme(ctx: Context) -> rules_pb2.PointsProgram | None:
    return ctx.rules.points if ctx.rules.HasField("points") else None


def _points_tender(ctx: Context, requested: int, state: State) -> tuple[int, Tender, list[int]]:
    """Points redeemed, the tender outcome, and the tender value allocated per line."""
    none = [0] * len(state.lines)
    programme = _programme(ctx)
    if requested == 0:
        return 0, Tender.NONE, none
    if ctx.member is None:
        return 0, Tender.NOT_MEMBER, none
    if programme is None or programme.max_redeem_share_bps == 0 or programme.point_value_minor <= 0:
        return 0, Tender.DISABLED, none
    value = programme.point_value_minor
    # points pay for goods, never for the delivery charge
    goods = [0 if line.delivery else n for n, line in zip(state.nets, state.lines, strict=True)]
    net_total = sum(goods)
    allowed = min(
        max(0, ctx.member.available_points),
        net_total * programme.max_redeem_share_bps // (BPS * value),
    )
    if requested >= 0:
        allowed = min(allowed, requested)
    allowed -= allowed % max(1, programme.redeem_step_points)
    if allowed == 0 or allowed < programme.min_redeem_points:
        return 0, Tender.BELOW_MINIMUM, none
    tender = Tender.LIMITED if 0 <= requested and allowed < requested else Tender.OK
    return allowed, tender, rw.allocate(allowed * value, goods)


def _earning_amounts(
    indexes: Sequence[int], state: State, tender_lines: Sequence[int], delivery: bool = False
) -> dict[int, int]:
    """``amount_i = net_i − tender_i`` for the earning lines among ``indexes`` (delivery
    lines only when ``delivery``: PointsProgram.earn_on_delivery)."""
    return {
        i: state.nets[i] - tender_lines[i]
        for i in indexes
        if not state.lines[i].no_earn and (delivery or not state.lines[i].delivery)
    }


def _component(offer_id: str, kind: str, points: rw.Points, n: int) -> PointsComponent:
    """A floored points amount attributed to the basket's lines by §7."""
    indexes = sorted(points.weights)
    shares = rw.allocate(points.points, [points.weights[i] for i in indexes])
    line_points = [0] * n
    for i, share in zip(indexes, shares, strict=True):
        line_points[i] = share
    return PointsComponent(offer_id, kind, points.points, tuple(line_points))


def _base_points(ctx: Context, state: State, tender_lines: Sequence[int]) -> list[PointsComponent]:
    """Base points at the tier multiplier; listed only when positive."""
    programme = _programme(ctx)
    if ctx.member is None or programme is None or programme.earn_per_amount_minor <= 0:
        return []
    tier = ctx.member_tier()
    tier_bps = next((t.earn_multiplier_bps for t in ctx.rules.tiers if t.id == tier), BPS)
    amounts = _earning_amounts(
        range(len(state.lines)), state, tender_lines, programme.earn_on_delivery
    )
    points = rw.base_points(amounts, tier_bps, programme.earn_per_amount_minor)
    if points.points <= 0:
        return []
    return [_component("", "base", points, len(state.lines))]


def _run_points_offer(
    offer: rules_pb2.Offer, ctx: Context, state: State, tender_lines: Sequence[int]
) -> PointsComponent | None:
    """Checks 1–15 for a points offer; applies it (returning its component) when positive."""
    refusal = check_conditions(offer, ctx)
    eligible = points_eligible(offer, state) if refusal is None else refusal
    if isinstance(eligible, Refusal):
        state.explain(offer.id, eligible)
        return None
    scope = rw.Scope(state.lines, state.nets, eligible, offer.limits.per_transaction)
    refusal = check_minimums(offer.conditions, scope)
    if refusal is not None:
        state.explain(offer.id, refusal)
        return None
    programme = _programme(ctx)
    points = rw.Points(0, {})
    # without a programme (or a usable earn rate) nothing is earned: NO_BENEFIT below
    if programme is not None and programme.earn_per_amount_minor > 0:
        if kind_of(offer) == Kind.POINTS_MULTIPLIER:
            points = rw.points_multiplier(
                offer.points_multiplier,
                _earning_amounts(eligible, state, tender_lines),
                programme.earn_per_amount_minor,
            )
        else:
            points = rw.bonus_points(offer.bonus_points, scope)
    if points.points <= 0:
        state.explain(offer.id, Refusal(Reason.NO_BENEFIT))
        return None
    state.applied.append(
        AppliedOffer(offer.id, 0, offer.funding.funder_id or RETAILER, 0, points.points, 1)
    )
    kind = "multiplier" if kind_of(offer) == Kind.POINTS_MULTIPLIER else "bonus"
    return _component(offer.id, kind, points, len(state.lines))


# --- §8 output ------------------------------------------------------------------------------


def _result(
    state: State,
    redeemed: int,
    tender: Tender,
    tender_lines: Sequence[int],
    components: list[PointsComponent],
    explain: bool,
) -> PricingResult:
    lines = tuple(
        LineResult(
            line.line_id,
            line.quantity * line.unit_price_minor,
            state.nets[i],
            tuple(state.rows[i]),
            tender_lines[i],
            sum(c.line_points[i] for c in components),
        )
        for i, line in enumerate(state.lines)
    )
    gross = sum(ln.gross_minor for ln in lines)
    net = sum(state.nets)
    tender_minor = sum(tender_lines)
    return PricingResult(
        lines=lines,
        gross_minor=gross,
        discount_minor=gross - net,
        net_minor=net,
        points_redeemed=redeemed,
        points_tender_minor=tender_minor,
        payable_minor=net - tender_minor,
        points_earned=sum(c.points for c in components),
        tender=tender,
        points=tuple(components),
        offers=tuple(state.applied),
        explanations=tuple(state.explanations) if explain else (),
        gifts=tuple(state.gifts),
    )
