from loyalty.v1 import checkout_pb2 as _checkout_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LedgerLine(_message.Message):
    __slots__ = ("line_id", "sku", "quantity", "gross_minor", "net_minor", "tender_minor", "points_earned", "points_redeemed", "discounts", "delivery")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    GROSS_MINOR_FIELD_NUMBER: _ClassVar[int]
    NET_MINOR_FIELD_NUMBER: _ClassVar[int]
    TENDER_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_FIELD_NUMBER: _ClassVar[int]
    DISCOUNTS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    sku: str
    quantity: int
    gross_minor: int
    net_minor: int
    tender_minor: int
    points_earned: int
    points_redeemed: int
    discounts: _containers.RepeatedCompositeFieldContainer[_checkout_pb2.LineDiscount]
    delivery: bool
    def __init__(self, line_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., gross_minor: _Optional[int] = ..., net_minor: _Optional[int] = ..., tender_minor: _Optional[int] = ..., points_earned: _Optional[int] = ..., points_redeemed: _Optional[int] = ..., discounts: _Optional[_Iterable[_Union[_checkout_pb2.LineDiscount, _Mapping]]] = ..., delivery: _Optional[bool] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("seq", "kind", "entry_id", "transaction_id", "member_id", "at_us", "lines", "amount_minor", "points_earned", "points_redeemed", "reason", "store_id", "channel", "tier", "segments", "recorded_at_us", "lane_at_us", "ruleset_version")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    AT_US_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_US_FIELD_NUMBER: _ClassVar[int]
    LANE_AT_US_FIELD_NUMBER: _ClassVar[int]
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: str
    entry_id: str
    transaction_id: str
    member_id: str
    at_us: int
    lines: _containers.RepeatedCompositeFieldContainer[LedgerLine]
    amount_minor: int
    points_earned: int
    points_redeemed: int
    reason: str
    store_id: str
    channel: str
    tier: str
    segments: _containers.RepeatedScalarFieldContainer[str]
    recorded_at_us: int
    lane_at_us: int
    ruleset_version: int
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[str] = ..., entry_id: _Optional[str] = ..., transaction_id: _Optional[str] = ..., member_id: _Optional[str] = ..., at_us: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[LedgerLine, _Mapping]]] = ..., amount_minor: _Optional[int] = ..., points_earned: _Optional[int] = ..., points_redeemed: _Optional[int] = ..., reason: _Optional[str] = ..., store_id: _Optional[str] = ..., channel: _Optional[str] = ..., tier: _Optional[str] = ..., segments: _Optional[_Iterable[str]] = ..., recorded_at_us: _Optional[int] = ..., lane_at_us: _Optional[int] = ..., ruleset_version: _Optional[int] = ...) -> None: ...

class OfferUse(_message.Message):
    __slots__ = ("offer_id", "funder_id", "discount_minor", "funded_minor", "points", "coupon_id", "code", "units", "store_units")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    FUNDER_ID_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    STORE_UNITS_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    funder_id: str
    discount_minor: int
    funded_minor: int
    points: int
    coupon_id: str
    code: str
    units: int
    store_units: bool
    def __init__(self, offer_id: _Optional[str] = ..., funder_id: _Optional[str] = ..., discount_minor: _Optional[int] = ..., funded_minor: _Optional[int] = ..., points: _Optional[int] = ..., coupon_id: _Optional[str] = ..., code: _Optional[str] = ..., units: _Optional[int] = ..., store_units: _Optional[bool] = ...) -> None: ...

class CommitRecord(_message.Message):
    __slots__ = ("transaction_id", "member_id", "at_us", "lines", "offers", "points_earned", "points_redeemed", "points_available_at_us", "points_expire_at_us", "qualifying_spend_minor", "tier_before", "tier_after", "store_id", "channel", "segments", "points_available_after", "points_pending_after", "recorded_at_us", "lane_at_us", "ruleset_version", "response")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    AT_US_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_FIELD_NUMBER: _ClassVar[int]
    POINTS_AVAILABLE_AT_US_FIELD_NUMBER: _ClassVar[int]
    POINTS_EXPIRE_AT_US_FIELD_NUMBER: _ClassVar[int]
    QUALIFYING_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    TIER_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TIER_AFTER_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    POINTS_PENDING_AFTER_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_US_FIELD_NUMBER: _ClassVar[int]
    LANE_AT_US_FIELD_NUMBER: _ClassVar[int]
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    member_id: str
    at_us: int
    lines: _containers.RepeatedCompositeFieldContainer[LedgerLine]
    offers: _containers.RepeatedCompositeFieldContainer[OfferUse]
    points_earned: int
    points_redeemed: int
    points_available_at_us: int
    points_expire_at_us: int
    qualifying_spend_minor: int
    tier_before: str
    tier_after: str
    store_id: str
    channel: str
    segments: _containers.RepeatedScalarFieldContainer[str]
    points_available_after: int
    points_pending_after: int
    recorded_at_us: int
    lane_at_us: int
    ruleset_version: int
    response: bytes
    def __init__(self, transaction_id: _Optional[str] = ..., member_id: _Optional[str] = ..., at_us: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[LedgerLine, _Mapping]]] = ..., offers: _Optional[_Iterable[_Union[OfferUse, _Mapping]]] = ..., points_earned: _Optional[int] = ..., points_redeemed: _Optional[int] = ..., points_available_at_us: _Optional[int] = ..., points_expire_at_us: _Optional[int] = ..., qualifying_spend_minor: _Optional[int] = ..., tier_before: _Optional[str] = ..., tier_after: _Optional[str] = ..., store_id: _Optional[str] = ..., channel: _Optional[str] = ..., segments: _Optional[_Iterable[str]] = ..., points_available_after: _Optional[int] = ..., points_pending_after: _Optional[int] = ..., recorded_at_us: _Optional[int] = ..., lane_at_us: _Optional[int] = ..., ruleset_version: _Optional[int] = ..., response: _Optional[bytes] = ...) -> None: ...

class ReversalRecord(_message.Message):
    __slots__ = ("return_id", "transaction_id", "member_id", "at_us", "lines", "refund_minor", "points_clawed_back", "points_restored", "points_forfeited", "debt_added", "offers_released", "points_available_after", "points_pending_after", "tier_after")
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    AT_US_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    REFUND_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_CLAWED_BACK_FIELD_NUMBER: _ClassVar[int]
    POINTS_RESTORED_FIELD_NUMBER: _ClassVar[int]
    POINTS_FORFEITED_FIELD_NUMBER: _ClassVar[int]
    DEBT_ADDED_FIELD_NUMBER: _ClassVar[int]
    OFFERS_RELEASED_FIELD_NUMBER: _ClassVar[int]
    POINTS_AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    POINTS_PENDING_AFTER_FIELD_NUMBER: _ClassVar[int]
    TIER_AFTER_FIELD_NUMBER: _ClassVar[int]
    return_id: str
    transaction_id: str
    member_id: str
    at_us: int
    lines: _containers.RepeatedCompositeFieldContainer[LedgerLine]
    refund_minor: int
    points_clawed_back: int
    points_restored: int
    points_forfeited: int
    debt_added: int
    offers_released: _containers.RepeatedScalarFieldContainer[str]
    points_available_after: int
    points_pending_after: int
    tier_after: str
    def __init__(self, return_id: _Optional[str] = ..., transaction_id: _Optional[str] = ..., member_id: _Optional[str] = ..., at_us: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[LedgerLine, _Mapping]]] = ..., refund_minor: _Optional[int] = ..., points_clawed_back: _Optional[int] = ..., points_restored: _Optional[int] = ..., points_forfeited: _Optional[int] = ..., debt_added: _Optional[int] = ..., offers_released: _Optional[_Iterable[str]] = ..., points_available_after: _Optional[int] = ..., points_pending_after: _Optional[int] = ..., tier_after: _Optional[str] = ...) -> None: ...

class AdjustRecord(_message.Message):
    __slots__ = ("adjustment_id", "member_id", "points", "reason", "at_us", "debt_added", "points_available_after")
    ADJUSTMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AT_US_FIELD_NUMBER: _ClassVar[int]
    DEBT_ADDED_FIELD_NUMBER: _ClassVar[int]
    POINTS_AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    adjustment_id: str
    member_id: str
    points: int
    reason: str
    at_us: int
    debt_added: int
    points_available_after: int
    def __init__(self, adjustment_id: _Optional[str] = ..., member_id: _Optional[str] = ..., points: _Optional[int] = ..., reason: _Optional[str] = ..., at_us: _Optional[int] = ..., debt_added: _Optional[int] = ..., points_available_after: _Optional[int] = ...) -> None: ...
