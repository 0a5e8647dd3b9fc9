"""Compile a validated RuleSet and a catalogue into arrays the kernels index.

Everything that can be decided once per published version is decided here: string ids become
integers, conditions become bitmasks and sorted slices, offers are put in evaluation order, and
inverted indexes map every sku, category, brand and vendor to the offers whose scope names it.
The request path then touches only the offers a basket's lines point at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from engine.pricing import layout as L
from engine.pricing import recurrence
from engine.pricing.attributes import Predicate, compile_predicates
from engine.pricing.catalogue import Catalogue
from engine.pricing.constants import KIND_BY_FIELD, Kind, Phase, phase_of
from engine.pricing.restrictions import NO_RESTRICTIONS, Restrictions, compile_restrictions
from engine.pricing.rule_arrays import RuleArrays, pack_rules, realigned, unpack_views
from engine.pricing.validate import check
from loyalty.v1 import rules_pb2

RETAILER = "retailer"


@dataclass(frozen=True, eq=False)
class CompiledRules:
    """A published rule set ready for pricing: the arrays plus the id dictionaries."""

    packed: np.ndarray  # int64[]: every rule array in one block (engine.pricing.rule_arrays)
    rules: rules_pb2.RuleSet
    catalogue: Catalogue
    timezone: str
    offer_ids: tuple[str, ...]
    offer_index: dict[str, int]
    funder_ids: tuple[str, ...]
    sku_index: dict[str, int]
    category_index: dict[str, int]
    brand_index: dict[str, int]
    vendor_index: dict[str, int]
    tier_index: dict[str, int]
    segment_bit: dict[str, int]
    channel_index: dict[str, int]
    store_index: dict[str, int]
    sku_attr: np.ndarray  # int64[n_catalogue, 4]: category, brand, vendor, flags per catalogue row
    offer_funder: tuple[str, ...]  # funder id per offer, for decoding results
    offer_kind: tuple[int, ...]  # Kind per offer
    # the distinct member-attribute tests; bit k of O_ATTR_MASK / M_ATTRS = attr_predicates[k]
    attr_predicates: tuple[Predicate, ...] = ()
    # member-only items (RuleSet.restricted_items; engine.pricing.restrictions)
    restrictions: Restrictions = NO_RESTRICTIONS
    # the category id the encoders give a delivery line (Line.delivery); no line's own category
    # can reach it (it is not in category_index)
    delivery_category: int = -1

    @cached_property
    def arrays(self) -> RuleArrays:
        """The rule arrays, as read-only views of ``packed``."""
        return unpack_views(self.packed)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("arrays", None)  # views: rebuilt from the block, not pickled as copies
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, packed=realigned(state["packed"]))

    @property
    def n_offers(self) -> int:
        return len(self.offer_ids)


# The category a delivery line carries and a delivery_off offer's scope names: not a string a
# line or a rule can give (ids are printable), and left out of the exported category index.
DELIVERY_KEY = "\x00delivery"
DELIVERY_SET = rules_pb2.ProductSet(categories=[DELIVERY_KEY])


class _Interner(dict[str, int]):
    def add(self, key: str) -> int:
        i = self.get(key)
        if i is None:
            i = self[key] = len(self)
        return i


def _mask(bits: list[int]) -> int:
    m = 0
    for b in bits:
        m |= 1 << b
    return m - (1 << 64) if m >= 1 << 63 else m  # as a signed int64


def compile_rules(
    rules: rules_pb2.RuleSet, catalogue: Catalogue | None = None, *, validate: bool = True
) -> CompiledRules:
    """Compile ``rules`` against ``catalogue``.

    Parameters
    ----------
    rules : RuleSet
        The programme; validated first unless ``validate=False`` (already checked).
    catalogue : Catalogue, optional
        Product attributes and flags; skus named only by rules are added to the dictionaries.

    Raises
    ------
    engine.pricing.validate.RuleSetInvalid
        With every violation found.
    """
    catalogue = catalogue if catalogue is not None else Catalogue.empty()
    if validate:
        check(rules, catalogue)

    skus = _Interner((s, i) for i, s in enumerate(catalogue.sku))
    cats, brands, vendors = _Interner(), _Interner(), _Interner()
    n_cat = len(catalogue)
    sku_attr = np.zeros((n_cat, 4), dtype=np.int64)
    if n_cat:
        sku_attr[:, 0] = [cats.add(c) if c else -1 for c in catalogue.category]
        sku_attr[:, 1] = [brands.add(b) if b else -1 for b in catalogue.brand]
        sku_attr[:, 2] = [vendors.add(v) if v else -1 for v in catalogue.vendor]
        sku_attr[:, 3] = (
            catalogue.no_discount.astype(np.int64) * L.FLAG_NO_DISCOUNT
            + catalogue.no_earn.astype(np.int64) * L.FLAG_NO_EARN
        )

    delivery_category = cats.add(DELIVERY_KEY)
    tiers = {t.id: i for i, t in enumerate(rules.tiers)}
    segment_bit = {s.id: i for i, s in enumerate(rules.segments)}
    channels, stores, groups = _Interner(), _Interner(), _Interner()
    funders = _Interner({RETAILER: 0})

    offers = list(rules.offers)
    n = len(offers)
    table = np.zeros((n, L.OFFER_COLS), dtype=np.int64)
    attr_predicates, attr_masks = compile_predicates(rules)
    sets: list[list[int]] = []
    set_vals: list[int] = []
    ladder: list[tuple[int, int, int]] = []
    bundle: list[tuple[int, int]] = []
    store_vals: list[int] = []

    def add_set(ps: rules_pb2.ProductSet) -> int:
        row = [int(ps.all)]
        for names, interner in (
            (ps.skus, skus),
            (ps.categories, cats),
            (ps.brands, brands),
            (ps.vendors, vendors),
            (ps.exclude_skus, skus),
        ):
            vals = sorted({interner.add(x) for x in names})
            row += [len(set_vals), len(vals)]
            set_vals.extend(vals)
        sets.append(row)
        return len(sets) - 1

    for o, offer in enumerate(offers):
        kind = KIND_BY_FIELD[offer.WhichOneof("reward")]
        c, t = offer.conditions, table[o]
        t[L.O_KIND] = kind
        t[L.O_PHASE] = phase_of(kind)
        t[L.O_MODE] = offer.stacking.mode
        t[L.O_GROUP] = groups.add(offer.stacking.group) if offer.stacking.group else L.NO_GROUP
        t[L.O_ACTIVATION] = offer.activation
        t[L.O_FUNDER] = funders.add(offer.funding.funder_id or RETAILER)
        t[L.O_FUNDED_BPS] = offer.funding.funded_share_bps
        t[L.O_PER_TX] = offer.limits.per_transaction
        t[L.O_MAX_DISCOUNT] = offer.limits.max_discount_minor
        t[L.O_SCOPE] = add_set(DELIVERY_SET if kind == Kind.DELIVERY_OFF else offer.scope)
        t[L.O_NEEDS_MEMBER] = int(
            c.member_required
            or bool(c.tiers)
            or bool(c.segments)
            or c.birthday_month
            or bool(c.attributes)
            or phase_of(kind) == Phase.POINTS
        )
        t[L.O_ATTR_MASK] = attr_masks[o]
        t[L.O_BIRTHDAY] = int(c.birthday_month)
        t[L.O_MIN_BASKET] = c.min_basket_minor
        t[L.O_MIN_QTY] = c.min_qty
        t[L.O_MIN_AMOUNT] = c.min_amount_minor
        t[L.O_MAX_BASKET] = c.max_basket_minor
        t[L.O_MAX_AMOUNT] = c.max_amount_minor
        t[L.O_MAX_UNITS_LINE] = offer.limits.max_units_per_line
        t[L.O_MAX_UNITS] = offer.limits.max_units
        t[L.O_UNITS_GROUPS] = offer.limits.units_in_groups_of
        t[L.O_STARTS] = c.starts_at.seconds if c.HasField("starts_at") else L.OPEN_START
        t[L.O_ENDS] = c.ends_at.seconds if c.HasField("ends_at") else L.OPEN_END
        t[L.O_WEEKDAYS] = _mask(list(c.weekdays))
        t[L.O_FROM_HOUR] = c.from_hour
        t[L.O_TO_HOUR] = c.to_hour
        recurrence.compile_into(t, c, rules.timezone)
        t[L.O_TIER_MASK] = _mask([tiers[x] for x in c.tiers if x in tiers])
        t[L.O_SEGMENT_MASK] = _mask([segment_bit[x] for x in c.segments if x in segment_bit])
        t[L.O_CHANNEL_MASK] = _mask([channels.add(x) for x in c.channels])
        own_stores = sorted({stores.add(x) for x in c.stores})
        t[L.O_STORE_OFF], t[L.O_STORE_LEN] = len(store_vals), len(own_stores)
        store_vals.extend(own_stores)
        _reward_params(offer, kind, t, ladder, bundle, add_set)
    restrictions = compile_restrictions(
        rules,
        add_set,
        lambda ids: _mask([tiers[x] for x in ids if x in tiers]),
        lambda ids: _mask([segment_bit[x] for x in ids if x in segment_bit]),
    )

    eval_order = _evaluation_order(offers, table)
    table[eval_order, L.O_ORDER_POS] = np.arange(n, dtype=np.int64)

    set_arr = np.array(sets, dtype=np.int64).reshape(-1, L.SET_COLS)
    vals = np.array(set_vals, dtype=np.int64)
    inv_base = np.cumsum([0, len(skus), len(cats), len(brands)], dtype=np.int64)
    inv_off, inv_pos, all_pos = _inverted_index(
        table, set_arr, vals, inv_base, int(inv_base[-1]) + len(vendors)
    )

    prog = np.zeros(L.PROGRAMME_COLS, dtype=np.int64)
    if rules.HasField("points"):
        p = rules.points
        prog[: L.P_MAX_BUNDLE_LEN] = (
            1,
            p.point_value_minor,
            p.earn_per_amount_minor,
            p.min_redeem_points,
            p.redeem_step_points,
            p.max_redeem_share_bps,
        )
        prog[L.P_EARN_DELIVERY] = int(p.earn_on_delivery)
    prog[L.P_MAX_BUNDLE_LEN] = table[:, L.O_BUNDLE_LEN].max(initial=0)  # kernel scratch width
    lists = np.split(np.diff(inv_off), inv_base[1:])  # the lengths of each kind's lists
    prog[L.P_LINE_PAIRS] = sum(k.max(initial=0) for k in lists) + len(all_pos)

    packed = pack_rules(
        RuleArrays(
            offer=table,
            eval_order=eval_order,
            sets=set_arr,
            set_vals=vals,
            inv_base=inv_base,
            inv_off=inv_off,
            inv_pos=inv_pos,
            all_pos=all_pos,
            ladder=np.array(ladder, dtype=np.int64).reshape(-1, 3),
            bundle=np.array(bundle, dtype=np.int64).reshape(-1, 2),
            stores=np.array(store_vals, dtype=np.int64),
            tier_bps=np.array([t.earn_multiplier_bps for t in rules.tiers], dtype=np.int64),
            programme=prog,
            hot=hot_table(table),
            inv_bits=key_bits(inv_off),
        )
    )
    return CompiledRules(
        packed=packed,
        rules=rules,
        catalogue=catalogue,
        timezone=rules.timezone or "UTC",
        offer_ids=tuple(x.id for x in offers),
        offer_index={x.id: i for i, x in enumerate(offers)},
        funder_ids=tuple(funders),
        sku_index=dict(skus),
        category_index={k: v for k, v in cats.items() if k != DELIVERY_KEY},
        brand_index=dict(brands),
        vendor_index=dict(vendors),
        tier_index=tiers,
        segment_bit=segment_bit,
        channel_index=dict(channels),
        store_index=dict(stores),
        sku_attr=sku_attr,
        offer_funder=tuple(tuple(funders)[f] for f in table[:, L.O_FUNDER].tolist()),
        offer_kind=tuple(table[:, L.O_KIND].tolist()),
        attr_predicates=attr_predicates,
        restrictions=restrictions,
        delivery_category=delivery_category,
    )


# Checks 1-9 that the hot table leaves to the offer row: H_STATIC is 1 where one applies.
_STATIC_COLS = [L.O_REC_FREQ, L.O_FROM_HOUR, L.O_TO_HOUR, L.O_STORE_LEN, L.O_CHANNEL_MASK]
_STATIC_COLS += [L.O_NEEDS_MEMBER, L.O_TIER_MASK, L.O_SEGMENT_MASK, L.O_ATTR_MASK, L.O_BIRTHDAY]
# the offer table columns that H_ACTIVATION .. H_WEEKDAYS copy, in that order
_HOT_COLS = [L.O_ACTIVATION, L.O_SCOPE, L.O_KIND, L.O_GET_SET, L.O_STARTS, L.O_ENDS, L.O_WEEKDAYS]


def hot_table(table: np.ndarray) -> np.ndarray:
    """The hot offer table (layout H_*) of an offer table: a row is 64 bytes, and each sits
    on its own cache line once packed (``engine.pricing.rule_arrays``)."""
    hot = np.zeros((table.shape[0], L.HOT_COLS), dtype=np.int64)
    hot[:, : L.H_STATIC] = table[:, _HOT_COLS]
    hot[:, L.H_STATIC] = (table[:, _STATIC_COLS] != 0).any(axis=1)
    return hot


def _reward_params(
    offer: rules_pb2.Offer,
    kind: Kind,
    t: np.ndarray,
    ladder: list[tuple[int, int, int]],
    bundle: list[tuple[int, int]],
    add_set: Callable[[rules_pb2.ProductSet], int],
) -> None:
    r = getattr(offer, offer.WhichOneof("reward"))
    if kind in (Kind.PERCENT_OFF, Kind.ORDER_PERCENT_OFF):
        t[L.O_P1] = r.percent_bps
    elif kind in (Kind.AMOUNT_OFF, Kind.ORDER_AMOUNT_OFF):
        t[L.O_P1] = r.amount_minor
    elif kind == Kind.FIXED_PRICE:
        t[L.O_P1] = r.price_minor
    elif kind == Kind.BUY_X_GET_Y:
        t[L.O_P1], t[L.O_P2], t[L.O_P3] = r.buy, r.get, r.percent_bps
    elif kind == Kind.POINTS_MULTIPLIER:
        t[L.O_P1] = r.extra_bps
    elif kind == Kind.BONUS_POINTS:
        t[L.O_P1], t[L.O_P2] = r.per_unit, r.per_transaction
    elif kind == Kind.QTY_TIERS:
        t[L.O_LADDER_OFF], t[L.O_LADDER_LEN] = len(ladder), len(r.steps)
        ladder.extend((s.min_qty, 0, s.percent_bps) for s in r.steps)
    elif kind == Kind.SPEND_TIERS:
        t[L.O_P1] = int(r.repeat)
        t[L.O_LADDER_OFF], t[L.O_LADDER_LEN] = len(ladder), len(r.steps)
        ladder.extend((s.threshold_minor, s.amount_minor, s.percent_bps) for s in r.steps)
    elif kind == Kind.TARGET_UNITS:
        form = r.WhichOneof("value") or "percent_bps"
        t[L.O_P1], t[L.O_P2], t[L.O_P3] = r.units, r.every, getattr(r, form)
        t[L.O_TU_PICK] = r.pick
        t[L.O_TU_FORM] = _TU_FORMS[form]
    elif kind == Kind.BUY_GET:
        form = r.WhichOneof("value") or "percent_bps"
        t[L.O_P1], t[L.O_P2], t[L.O_P3] = r.buy_qty, r.get_qty, getattr(r, form)
        t[L.O_TU_FORM] = _TU_FORMS[form]
        t[L.O_GET_SET] = add_set(r.get)
    elif kind == Kind.GIFT:
        t[L.O_P1], t[L.O_P3] = r.quantity, r.price_minor
        t[L.O_GET_SET] = add_set(rules_pb2.ProductSet(skus=[r.sku]))
    elif kind == Kind.DELIVERY_OFF:
        form = r.WhichOneof("value") or "percent_bps"
        t[L.O_P3] = getattr(r, form)
        t[L.O_TU_FORM] = _TU_FORMS[form]
    elif kind == Kind.UNIT_RATES:
        t[L.O_P1], t[L.O_P2], t[L.O_P3] = r.first_minor, r.additional_minor, r.max_units
    elif kind == Kind.BUNDLE_PRICE:
        t[L.O_P1] = r.price_minor
        t[L.O_BUNDLE_OFF], t[L.O_BUNDLE_LEN] = len(bundle), len(r.components)
        bundle.extend((add_set(c.scope), c.qty) for c in r.components)


_TU_FORMS = {"percent_bps": L.TU_PERCENT, "amount_minor": L.TU_AMOUNT, "price_minor": L.TU_PRICE}


def _evaluation_order(offers: list[rules_pb2.Offer], table: np.ndarray) -> np.ndarray:
    """Offer indexes by (phase, group position, priority, id) — docs/pricing.md §3.

    A group sits where its first member by (priority, id) sits, over the whole rule set.
    """
    first: dict[int, tuple[int, str]] = {}
    for o, offer in enumerate(offers):
        g = int(table[o, L.O_GROUP])
        if g != L.NO_GROUP:
            key = (offer.stacking.priority, offer.id)
            first[g] = min(first.get(g, key), key)

    def sort_key(o: int) -> tuple[int, tuple[int, str], tuple[int, str]]:
        offer = offers[o]
        own = (offer.stacking.priority, offer.id)
        g = int(table[o, L.O_GROUP])
        return (int(table[o, L.O_PHASE]), first.get(g, own) if g != L.NO_GROUP else own, own)

    return np.array(sorted(range(len(offers)), key=sort_key), dtype=np.int64)


def key_bits(inv_off: np.ndarray) -> np.ndarray:
    """``RuleArrays.inv_bits``: bit ``key`` (of word ``key >> 6``, bit ``key & 63``) set
    where ``inv_off`` gives ``key`` a list that is not empty."""
    n_keys = inv_off.shape[0] - 1
    bits = np.zeros((n_keys >> 6) + 1, dtype=np.uint64)
    keys = np.nonzero(np.diff(inv_off) > 0)[0].astype(np.uint64)
    np.bitwise_or.at(bits, keys >> np.uint64(6), np.uint64(1) << (keys & np.uint64(63)))
    return bits.view(np.int64)


def _inverted_index(
    table: np.ndarray, sets: np.ndarray, vals: np.ndarray, inv_base: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR map from every sku/category/brand/vendor key to the offers whose scope (or, for
    buy_get, whose get set; for a gift, its gift sku) lists it.

    Offers are stored as their evaluation positions, so finding a basket's candidates in
    order never touches the offer table; a coupon offer's as ``~position`` (below 0), so that
    discovery passes over it without a read unless the basket presented that coupon (a coupon
    offer is a candidate only then, and on history baskets a fifth of what the lists hold are
    coupons nobody presented).
    """
    keys: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    get = np.nonzero(np.isin(table[:, L.O_KIND], (Kind.BUY_GET, Kind.GIFT)))[0]
    scope = np.concatenate([table[:, L.O_SCOPE], table[get, L.O_GET_SET]])
    pos = np.concatenate([table[:, L.O_ORDER_POS], table[get, L.O_ORDER_POS]])
    for kind, (off_col, len_col) in enumerate(
        (
            (L.S_SKU_OFF, L.S_SKU_LEN),
            (L.S_CAT_OFF, L.S_CAT_LEN),
            (L.S_BRAND_OFF, L.S_BRAND_LEN),
            (L.S_VENDOR_OFF, L.S_VENDOR_LEN),
        )
    ):
        offs, lens = sets[scope, off_col], sets[scope, len_col]
        for o in np.nonzero(lens)[0]:
            keys.append(vals[offs[o] : offs[o] + lens[o]] + inv_base[kind])
            owners.append(np.full(lens[o], pos[o], dtype=np.int64))
    if keys:
        k = np.concatenate(keys)
        v = np.concatenate(owners)
        order = np.lexsort((v, k))
        k, v = k[order], v[order]
    else:
        k = v = np.zeros(0, dtype=np.int64)
    inv_off = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(k, minlength=n_keys), out=inv_off[1:])
    everything = np.nonzero(sets[scope, L.S_ALL])[0] if len(scope) else np.zeros(0, np.int64)
    coupon = np.zeros(len(table), dtype=bool)  # by evaluation position
    coupon[table[:, L.O_ORDER_POS]] = table[:, L.O_ACTIVATION] == 1
    v = v.astype(np.int64)
    every = np.unique(pos[everything]).astype(np.int64)
    return inv_off, np.where(coupon[v], ~v, v), np.where(coupon[every], ~every, every)
