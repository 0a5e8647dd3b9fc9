import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RuleSet(_message.Message):
    __slots__ = ("currency", "timezone", "points", "tiers", "offers", "segments", "member_attributes", "guardrails", "restricted_items", "tier_policy")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    TIER_POLICY_FIELD_NUMBER: _ClassVar[int]
    currency: str
    timezone: str
    points: PointsProgram
    tiers: _containers.RepeatedCompositeFieldContainer[Tier]
    offers: _containers.RepeatedCompositeFieldContainer[Offer]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    member_attributes: _containers.RepeatedCompositeFieldContainer[AttributeDeclaration]
    guardrails: Guardrails
    restricted_items: _containers.RepeatedCompositeFieldContainer[ItemRestriction]
    tier_policy: TierPolicy
    def __init__(self, currency: _Optional[str] = ..., timezone: _Optional[str] = ..., points: _Optional[_Union[PointsProgram, _Mapping]] = ..., tiers: _Optional[_Iterable[_Union[Tier, _Mapping]]] = ..., offers: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., member_attributes: _Optional[_Iterable[_Union[AttributeDeclaration, _Mapping]]] = ..., guardrails: _Optional[_Union[Guardrails, _Mapping]] = ..., restricted_items: _Optional[_Iterable[_Union[ItemRestriction, _Mapping]]] = ..., tier_policy: _Optional[_Union[TierPolicy, _Mapping]] = ...) -> None: ...

class TierPolicy(_message.Message):
    __slots__ = ("qualification_window_months", "period_months", "anchor_month", "downgrade")
    class Downgrade(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NEVER: _ClassVar[TierPolicy.Downgrade]
        ONE_STEP: _ClassVar[TierPolicy.Downgrade]
        TO_QUALIFYING: _ClassVar[TierPolicy.Downgrade]
    NEVER: TierPolicy.Downgrade
    ONE_STEP: TierPolicy.Downgrade
    TO_QUALIFYING: TierPolicy.Downgrade
    QUALIFICATION_WINDOW_MONTHS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_MONTHS_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_MONTH_FIELD_NUMBER: _ClassVar[int]
    DOWNGRADE_FIELD_NUMBER: _ClassVar[int]
    qualification_window_months: int
    period_months: int
    anchor_month: int
    downgrade: TierPolicy.Downgrade
    def __init__(self, qualification_window_months: _Optional[int] = ..., period_months: _Optional[int] = ..., anchor_month: _Optional[int] = ..., downgrade: _Optional[_Union[TierPolicy.Downgrade, str]] = ...) -> None: ...

class ItemRestriction(_message.Message):
    __slots__ = ("id", "scope", "tiers", "segments", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    scope: ProductSet
    tiers: _containers.RepeatedScalarFieldContainer[str]
    segments: _containers.RepeatedScalarFieldContainer[str]
    message: str
    def __init__(self, id: _Optional[str] = ..., scope: _Optional[_Union[ProductSet, _Mapping]] = ..., tiers: _Optional[_Iterable[str]] = ..., segments: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ...) -> None: ...

class Guardrails(_message.Message):
    __slots__ = ("max_discount_minor", "max_discount_bps", "max_points", "min_margin_bps")
    MAX_DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    MAX_DISCOUNT_BPS_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    MIN_MARGIN_BPS_FIELD_NUMBER: _ClassVar[int]
    max_discount_minor: int
    max_discount_bps: int
    max_points: int
    min_margin_bps: int
    def __init__(self, max_discount_minor: _Optional[int] = ..., max_discount_bps: _Optional[int] = ..., max_points: _Optional[int] = ..., min_margin_bps: _Optional[int] = ...) -> None: ...

class PointsProgram(_message.Message):
    __slots__ = ("point_value_minor", "earn_per_amount_minor", "pending_days", "expiry_months", "min_redeem_points", "redeem_step_points", "max_redeem_share_bps", "lot_bucket", "earn_on_delivery")
    class LotBucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DAY: _ClassVar[PointsProgram.LotBucket]
        MONTH: _ClassVar[PointsProgram.LotBucket]
    DAY: PointsProgram.LotBucket
    MONTH: PointsProgram.LotBucket
    POINT_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    EARN_PER_AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    PENDING_DAYS_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_MONTHS_FIELD_NUMBER: _ClassVar[int]
    MIN_REDEEM_POINTS_FIELD_NUMBER: _ClassVar[int]
    REDEEM_STEP_POINTS_FIELD_NUMBER: _ClassVar[int]
    MAX_REDEEM_SHARE_BPS_FIELD_NUMBER: _ClassVar[int]
    LOT_BUCKET_FIELD_NUMBER: _ClassVar[int]
    EARN_ON_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    point_value_minor: int
    earn_per_amount_minor: int
    pending_days: int
    expiry_months: int
    min_redeem_points: int
    redeem_step_points: int
    max_redeem_share_bps: int
    lot_bucket: PointsProgram.LotBucket
    earn_on_delivery: bool
    def __init__(self, point_value_minor: _Optional[int] = ..., earn_per_amount_minor: _Optional[int] = ..., pending_days: _Optional[int] = ..., expiry_months: _Optional[int] = ..., min_redeem_points: _Optional[int] = ..., redeem_step_points: _Optional[int] = ..., max_redeem_share_bps: _Optional[int] = ..., lot_bucket: _Optional[_Union[PointsProgram.LotBucket, str]] = ..., earn_on_delivery: _Optional[bool] = ...) -> None: ...

class Tier(_message.Message):
    __slots__ = ("id", "name", "qualify_spend_minor", "earn_multiplier_bps")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUALIFY_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    EARN_MULTIPLIER_BPS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    qualify_spend_minor: int
    earn_multiplier_bps: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., qualify_spend_minor: _Optional[int] = ..., earn_multiplier_bps: _Optional[int] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("id", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class AttributeDeclaration(_message.Message):
    __slots__ = ("name", "type")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[AttributeDeclaration.Type]
        STRING: _ClassVar[AttributeDeclaration.Type]
        NUMBER: _ClassVar[AttributeDeclaration.Type]
        DATE: _ClassVar[AttributeDeclaration.Type]
    TYPE_UNSPECIFIED: AttributeDeclaration.Type
    STRING: AttributeDeclaration.Type
    NUMBER: AttributeDeclaration.Type
    DATE: AttributeDeclaration.Type
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: AttributeDeclaration.Type
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[AttributeDeclaration.Type, str]] = ...) -> None: ...

class NumberRange(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: int
    max: int
    def __init__(self, min: _Optional[int] = ..., max: _Optional[int] = ...) -> None: ...

class DateRange(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: str
    max: str
    def __init__(self, min: _Optional[str] = ..., max: _Optional[str] = ...) -> None: ...

class AttributeCondition(_message.Message):
    __slots__ = ("name", "any_of", "number", "date")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ANY_OF_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    any_of: _containers.RepeatedScalarFieldContainer[str]
    number: NumberRange
    date: DateRange
    def __init__(self, name: _Optional[str] = ..., any_of: _Optional[_Iterable[str]] = ..., number: _Optional[_Union[NumberRange, _Mapping]] = ..., date: _Optional[_Union[DateRange, _Mapping]] = ...) -> None: ...

class ProductSet(_message.Message):
    __slots__ = ("all", "skus", "categories", "brands", "vendors", "exclude_skus")
    ALL_FIELD_NUMBER: _ClassVar[int]
    SKUS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    BRANDS_FIELD_NUMBER: _ClassVar[int]
    VENDORS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SKUS_FIELD_NUMBER: _ClassVar[int]
    all: bool
    skus: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[str]
    brands: _containers.RepeatedScalarFieldContainer[str]
    vendors: _containers.RepeatedScalarFieldContainer[str]
    exclude_skus: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, all: _Optional[bool] = ..., skus: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[str]] = ..., brands: _Optional[_Iterable[str]] = ..., vendors: _Optional[_Iterable[str]] = ..., exclude_skus: _Optional[_Iterable[str]] = ...) -> None: ...

class Conditions(_message.Message):
    __slots__ = ("tiers", "segments", "stores", "channels", "starts_at", "ends_at", "weekdays", "from_hour", "to_hour", "birthday_month", "member_required", "min_basket_minor", "min_qty", "min_amount_minor", "recurrence", "attributes", "max_basket_minor", "max_amount_minor")
    TIERS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    STORES_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    WEEKDAYS_FIELD_NUMBER: _ClassVar[int]
    FROM_HOUR_FIELD_NUMBER: _ClassVar[int]
    TO_HOUR_FIELD_NUMBER: _ClassVar[int]
    BIRTHDAY_MONTH_FIELD_NUMBER: _ClassVar[int]
    MEMBER_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MIN_BASKET_MINOR_FIELD_NUMBER: _ClassVar[int]
    MIN_QTY_FIELD_NUMBER: _ClassVar[int]
    MIN_AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    RECURRENCE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BASKET_MINOR_FIELD_NUMBER: _ClassVar[int]
    MAX_AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    tiers: _containers.RepeatedScalarFieldContainer[str]
    segments: _containers.RepeatedScalarFieldContainer[str]
    stores: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[str]
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    weekdays: _containers.RepeatedScalarFieldContainer[int]
    from_hour: int
    to_hour: int
    birthday_month: bool
    member_required: bool
    min_basket_minor: int
    min_qty: int
    min_amount_minor: int
    recurrence: str
    attributes: _containers.RepeatedCompositeFieldContainer[AttributeCondition]
    max_basket_minor: int
    max_amount_minor: int
    def __init__(self, tiers: _Optional[_Iterable[str]] = ..., segments: _Optional[_Iterable[str]] = ..., stores: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[str]] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., weekdays: _Optional[_Iterable[int]] = ..., from_hour: _Optional[int] = ..., to_hour: _Optional[int] = ..., birthday_month: _Optional[bool] = ..., member_required: _Optional[bool] = ..., min_basket_minor: _Optional[int] = ..., min_qty: _Optional[int] = ..., min_amount_minor: _Optional[int] = ..., recurrence: _Optional[str] = ..., attributes: _Optional[_Iterable[_Union[AttributeCondition, _Mapping]]] = ..., max_basket_minor: _Optional[int] = ..., max_amount_minor: _Optional[int] = ...) -> None: ...

class Stacking(_message.Message):
    __slots__ = ("priority", "mode", "group")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STACKABLE: _ClassVar[Stacking.Mode]
        EXCLUSIVE: _ClassVar[Stacking.Mode]
        EXCLUSIVE_ORDER: _ClassVar[Stacking.Mode]
    STACKABLE: Stacking.Mode
    EXCLUSIVE: Stacking.Mode
    EXCLUSIVE_ORDER: Stacking.Mode
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    priority: int
    mode: Stacking.Mode
    group: str
    def __init__(self, priority: _Optional[int] = ..., mode: _Optional[_Union[Stacking.Mode, str]] = ..., group: _Optional[str] = ...) -> None: ...

class Funding(_message.Message):
    __slots__ = ("funder_id", "funded_share_bps")
    FUNDER_ID_FIELD_NUMBER: _ClassVar[int]
    FUNDED_SHARE_BPS_FIELD_NUMBER: _ClassVar[int]
    funder_id: str
    funded_share_bps: int
    def __init__(self, funder_id: _Optional[str] = ..., funded_share_bps: _Optional[int] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("per_transaction", "per_member", "per_member_period", "total_uses", "budget_minor", "max_discount_minor", "total_units", "units_per_store", "max_units_per_line", "max_units", "units_in_groups_of")
    class Period(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        EVER: _ClassVar[Limits.Period]
        DAY: _ClassVar[Limits.Period]
        WEEK: _ClassVar[Limits.Period]
        MONTH: _ClassVar[Limits.Period]
    EVER: Limits.Period
    DAY: Limits.Period
    WEEK: Limits.Period
    MONTH: Limits.Period
    PER_TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    PER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    PER_MEMBER_PERIOD_FIELD_NUMBER: _ClassVar[int]
    TOTAL_USES_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MINOR_FIELD_NUMBER: _ClassVar[int]
    MAX_DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_UNITS_FIELD_NUMBER: _ClassVar[int]
    UNITS_PER_STORE_FIELD_NUMBER: _ClassVar[int]
    MAX_UNITS_PER_LINE_FIELD_NUMBER: _ClassVar[int]
    MAX_UNITS_FIELD_NUMBER: _ClassVar[int]
    UNITS_IN_GROUPS_OF_FIELD_NUMBER: _ClassVar[int]
    per_transaction: int
    per_member: int
    per_member_period: Limits.Period
    total_uses: int
    budget_minor: int
    max_discount_minor: int
    total_units: int
    units_per_store: int
    max_units_per_line: int
    max_units: int
    units_in_groups_of: int
    def __init__(self, per_transaction: _Optional[int] = ..., per_member: _Optional[int] = ..., per_member_period: _Optional[_Union[Limits.Period, str]] = ..., total_uses: _Optional[int] = ..., budget_minor: _Optional[int] = ..., max_discount_minor: _Optional[int] = ..., total_units: _Optional[int] = ..., units_per_store: _Optional[int] = ..., max_units_per_line: _Optional[int] = ..., max_units: _Optional[int] = ..., units_in_groups_of: _Optional[int] = ...) -> None: ...

class PercentOff(_message.Message):
    __slots__ = ("percent_bps",)
    PERCENT_BPS_FIELD_NUMBER: _ClassVar[int]
    percent_bps: int
    def __init__(self, percent_bps: _Optional[int] = ...) -> None: ...

class AmountOff(_message.Message):
    __slots__ = ("amount_minor",)
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    amount_minor: int
    def __init__(self, amount_minor: _Optional[int] = ...) -> None: ...

class FixedPrice(_message.Message):
    __slots__ = ("price_minor",)
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    price_minor: int
    def __init__(self, price_minor: _Optional[int] = ...) -> None: ...

class QtyTier(_message.Message):
    __slots__ = ("min_qty", "percent_bps")
    MIN_QTY_FIELD_NUMBER: _ClassVar[int]
    PERCENT_BPS_FIELD_NUMBER: _ClassVar[int]
    min_qty: int
    percent_bps: int
    def __init__(self, min_qty: _Optional[int] = ..., percent_bps: _Optional[int] = ...) -> None: ...

class QtyTiers(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[QtyTier]
    def __init__(self, steps: _Optional[_Iterable[_Union[QtyTier, _Mapping]]] = ...) -> None: ...

class BuyXGetY(_message.Message):
    __slots__ = ("buy", "get", "percent_bps")
    BUY_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    PERCENT_BPS_FIELD_NUMBER: _ClassVar[int]
    buy: int
    get: int
    percent_bps: int
    def __init__(self, buy: _Optional[int] = ..., get: _Optional[int] = ..., percent_bps: _Optional[int] = ...) -> None: ...

class BundleComponent(_message.Message):
    __slots__ = ("scope", "qty")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    QTY_FIELD_NUMBER: _ClassVar[int]
    scope: ProductSet
    qty: int
    def __init__(self, scope: _Optional[_Union[ProductSet, _Mapping]] = ..., qty: _Optional[int] = ...) -> None: ...

class BundlePrice(_message.Message):
    __slots__ = ("components", "price_minor")
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedCompositeFieldContainer[BundleComponent]
    price_minor: int
    def __init__(self, components: _Optional[_Iterable[_Union[BundleComponent, _Mapping]]] = ..., price_minor: _Optional[int] = ...) -> None: ...

class SpendTier(_message.Message):
    __slots__ = ("threshold_minor", "amount_minor", "percent_bps")
    THRESHOLD_MINOR_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    PERCENT_BPS_FIELD_NUMBER: _ClassVar[int]
    threshold_minor: int
    amount_minor: int
    percent_bps: int
    def __init__(self, threshold_minor: _Optional[int] = ..., amount_minor: _Optional[int] = ..., percent_bps: _Optional[int] = ...) -> None: ...

class SpendTiers(_message.Message):
    __slots__ = ("steps", "repeat")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REPEAT_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[SpendTier]
    repeat: bool
    def __init__(self, steps: _Optional[_Iterable[_Union[SpendTier, _Mapping]]] = ..., repeat: _Optional[bool] = ...) -> None: ...

class OrderPercentOff(_message.Message):
    __slots__ = ("percent_bps",)
    PERCENT_BPS_FIELD_NUMBER: _ClassVar[int]
    percent_bps: int
    def __init__(self, percent_bps: _Optional[int] = ...) -> None: ...

class OrderAmountOff(_message.Message):
    __slots__ = ("amount_minor",)
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    amount_minor: int
    def __init__(self, amount_minor: _Optional[int] = ...) -> None: ...

class PointsMultiplier(_message.Message):
    __slots__ = ("extra_bps",)
    EXTRA_BPS_FIELD_NUMBER: _ClassVar[int]
    extra_bps: int
    def __init__(self, extra_bps: _Optional[int] = ...) -> None: ...

class BonusPoints(_message.Message):
    __slots__ = ("per_unit", "per_transaction")
    PER_UNIT_FIELD_NUMBER: _ClassVar[int]
    PER_TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    per_unit: int
    per_transaction: int
    def __init__(self, per_unit: _Optional[int] = ..., per_transaction: _Optional[int] = ...) -> None: ...

class TargetUnits(_message.Message):
    __slots__ = ("pick", "units", "every", "percent_bps", "amount_minor", "price_minor")
    class Pick(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CHEAPEST: _ClassVar[TargetUnits.Pick]
        MOST_EXPENSIVE: _ClassVar[TargetUnits.Pick]
    CHEAPEST: TargetUnits.Pick
    MOST_EXPENSIVE: TargetUnits.Pick
    PICK_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    EVERY_FIELD_NUMBER: _ClassVar[int]
    PERCENT_BPS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    pick: TargetUnits.Pick
    units: int
    every: int
    percent_bps: int
    amount_minor: int
    price_minor: int
    def __init__(self, pick: _Optional[_Union[TargetUnits.Pick, str]] = ..., units: _Optional[int] = ..., every: _Optional[int] = ..., percent_bps: _Optional[int] = ..., amount_minor: _Optional[int] = ..., price_minor: _Optional[int] = ...) -> None: ...

class BuyGet(_message.Message):
    __slots__ = ("get", "buy_qty", "get_qty", "percent_bps", "amount_minor", "price_minor")
    GET_FIELD_NUMBER: _ClassVar[int]
    BUY_QTY_FIELD_NUMBER: _ClassVar[int]
    GET_QTY_FIELD_NUMBER: _ClassVar[int]
    PERCENT_BPS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    get: ProductSet
    buy_qty: int
    get_qty: int
    percent_bps: int
    amount_minor: int
    price_minor: int
    def __init__(self, get: _Optional[_Union[ProductSet, _Mapping]] = ..., buy_qty: _Optional[int] = ..., get_qty: _Optional[int] = ..., percent_bps: _Optional[int] = ..., amount_minor: _Optional[int] = ..., price_minor: _Optional[int] = ...) -> None: ...

class UnitRates(_message.Message):
    __slots__ = ("first_minor", "additional_minor", "max_units")
    FIRST_MINOR_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    MAX_UNITS_FIELD_NUMBER: _ClassVar[int]
    first_minor: int
    additional_minor: int
    max_units: int
    def __init__(self, first_minor: _Optional[int] = ..., additional_minor: _Optional[int] = ..., max_units: _Optional[int] = ...) -> None: ...

class DeliveryOff(_message.Message):
    __slots__ = ("percent_bps", "amount_minor", "price_minor")
    PERCENT_BPS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    percent_bps: int
    amount_minor: int
    price_minor: int
    def __init__(self, percent_bps: _Optional[int] = ..., amount_minor: _Optional[int] = ..., price_minor: _Optional[int] = ...) -> None: ...

class Gift(_message.Message):
    __slots__ = ("sku", "quantity", "price_minor")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: int
    price_minor: int
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ..., price_minor: _Optional[int] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("id", "name", "description", "activation", "scope", "conditions", "stacking", "funding", "limits", "percent_off", "amount_off", "fixed_price", "qty_tiers", "buy_x_get_y", "bundle_price", "spend_tiers", "order_percent_off", "order_amount_off", "points_multiplier", "bonus_points", "target_units", "buy_get", "unit_rates", "delivery_off", "gift")
    class Activation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        AUTOMATIC: _ClassVar[Offer.Activation]
        COUPON: _ClassVar[Offer.Activation]
    AUTOMATIC: Offer.Activation
    COUPON: Offer.Activation
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    STACKING_FIELD_NUMBER: _ClassVar[int]
    FUNDING_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_OFF_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_OFF_FIELD_NUMBER: _ClassVar[int]
    FIXED_PRICE_FIELD_NUMBER: _ClassVar[int]
    QTY_TIERS_FIELD_NUMBER: _ClassVar[int]
    BUY_X_GET_Y_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_PRICE_FIELD_NUMBER: _ClassVar[int]
    SPEND_TIERS_FIELD_NUMBER: _ClassVar[int]
    ORDER_PERCENT_OFF_FIELD_NUMBER: _ClassVar[int]
    ORDER_AMOUNT_OFF_FIELD_NUMBER: _ClassVar[int]
    POINTS_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    BONUS_POINTS_FIELD_NUMBER: _ClassVar[int]
    TARGET_UNITS_FIELD_NUMBER: _ClassVar[int]
    BUY_GET_FIELD_NUMBER: _ClassVar[int]
    UNIT_RATES_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_OFF_FIELD_NUMBER: _ClassVar[int]
    GIFT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    activation: Offer.Activation
    scope: ProductSet
    conditions: Conditions
    stacking: Stacking
    funding: Funding
    limits: Limits
    percent_off: PercentOff
    amount_off: AmountOff
    fixed_price: FixedPrice
    qty_tiers: QtyTiers
    buy_x_get_y: BuyXGetY
    bundle_price: BundlePrice
    spend_tiers: SpendTiers
    order_percent_off: OrderPercentOff
    order_amount_off: OrderAmountOff
    points_multiplier: PointsMultiplier
    bonus_points: BonusPoints
    target_units: TargetUnits
    buy_get: BuyGet
    unit_rates: UnitRates
    delivery_off: DeliveryOff
    gift: Gift
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., activation: _Optional[_Union[Offer.Activation, str]] = ..., scope: _Optional[_Union[ProductSet, _Mapping]] = ..., conditions: _Optional[_Union[Conditions, _Mapping]] = ..., stacking: _Optional[_Union[Stacking, _Mapping]] = ..., funding: _Optional[_Union[Funding, _Mapping]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., percent_off: _Optional[_Union[PercentOff, _Mapping]] = ..., amount_off: _Optional[_Union[AmountOff, _Mapping]] = ..., fixed_price: _Optional[_Union[FixedPrice, _Mapping]] = ..., qty_tiers: _Optional[_Union[QtyTiers, _Mapping]] = ..., buy_x_get_y: _Optional[_Union[BuyXGetY, _Mapping]] = ..., bundle_price: _Optional[_Union[BundlePrice, _Mapping]] = ..., spend_tiers: _Optional[_Union[SpendTiers, _Mapping]] = ..., order_percent_off: _Optional[_Union[OrderPercentOff, _Mapping]] = ..., order_amount_off: _Optional[_Union[OrderAmountOff, _Mapping]] = ..., points_multiplier: _Optional[_Union[PointsMultiplier, _Mapping]] = ..., bonus_points: _Optional[_Union[BonusPoints, _Mapping]] = ..., target_units: _Optional[_Union[TargetUnits, _Mapping]] = ..., buy_get: _Optional[_Union[BuyGet, _Mapping]] = ..., unit_rates: _Optional[_Union[UnitRates, _Mapping]] = ..., delivery_off: _Optional[_Union[DeliveryOff, _Mapping]] = ..., gift: _Optional[_Union[Gift, _Mapping]] = ...) -> None: ...

class CatalogueItem(_message.Message):
    __slots__ = ("sku", "category", "brand", "vendor", "no_discount", "no_earn", "unit_cost_minor")
    SKU_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    NO_DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    NO_EARN_FIELD_NUMBER: _ClassVar[int]
    UNIT_COST_MINOR_FIELD_NUMBER: _ClassVar[int]
    sku: str
    category: str
    brand: str
    vendor: str
    no_discount: bool
    no_earn: bool
    unit_cost_minor: int
    def __init__(self, sku: _Optional[str] = ..., category: _Optional[str] = ..., brand: _Optional[str] = ..., vendor: _Optional[str] = ..., no_discount: _Optional[bool] = ..., no_earn: _Optional[bool] = ..., unit_cost_minor: _Optional[int] = ...) -> None: ...
