import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from loyalty.v1 import members_pb2 as _members_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Line(_message.Message):
    __slots__ = ("line_id", "sku", "quantity", "unit_price_minor", "category", "brand", "vendor", "delivery")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    sku: str
    quantity: int
    unit_price_minor: int
    category: str
    brand: str
    vendor: str
    delivery: bool
    def __init__(self, line_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price_minor: _Optional[int] = ..., category: _Optional[str] = ..., brand: _Optional[str] = ..., vendor: _Optional[str] = ..., delivery: _Optional[bool] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("member_id", "store_id", "channel", "occurred_at", "lines", "coupon_codes", "redeem_points", "explain", "shopping_list_id")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODES_FIELD_NUMBER: _ClassVar[int]
    REDEEM_POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    SHOPPING_LIST_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    store_id: str
    channel: str
    occurred_at: _timestamp_pb2.Timestamp
    lines: _containers.RepeatedCompositeFieldContainer[Line]
    coupon_codes: _containers.RepeatedScalarFieldContainer[str]
    redeem_points: int
    explain: bool
    shopping_list_id: str
    def __init__(self, member_id: _Optional[str] = ..., store_id: _Optional[str] = ..., channel: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lines: _Optional[_Iterable[_Union[Line, _Mapping]]] = ..., coupon_codes: _Optional[_Iterable[str]] = ..., redeem_points: _Optional[int] = ..., explain: _Optional[bool] = ..., shopping_list_id: _Optional[str] = ...) -> None: ...

class LineDiscount(_message.Message):
    __slots__ = ("offer_id", "amount_minor", "funder_id", "funded_minor")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDER_ID_FIELD_NUMBER: _ClassVar[int]
    FUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    amount_minor: int
    funder_id: str
    funded_minor: int
    def __init__(self, offer_id: _Optional[str] = ..., amount_minor: _Optional[int] = ..., funder_id: _Optional[str] = ..., funded_minor: _Optional[int] = ...) -> None: ...

class LineResult(_message.Message):
    __slots__ = ("line_id", "gross_minor", "net_minor", "discounts", "points_tender_minor", "points_earned", "restricted", "restriction_id")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    GROSS_MINOR_FIELD_NUMBER: _ClassVar[int]
    NET_MINOR_FIELD_NUMBER: _ClassVar[int]
    DISCOUNTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_TENDER_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    RESTRICTION_ID_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    gross_minor: int
    net_minor: int
    discounts: _containers.RepeatedCompositeFieldContainer[LineDiscount]
    points_tender_minor: int
    points_earned: int
    restricted: bool
    restriction_id: str
    def __init__(self, line_id: _Optional[str] = ..., gross_minor: _Optional[int] = ..., net_minor: _Optional[int] = ..., discounts: _Optional[_Iterable[_Union[LineDiscount, _Mapping]]] = ..., points_tender_minor: _Optional[int] = ..., points_earned: _Optional[int] = ..., restricted: _Optional[bool] = ..., restriction_id: _Optional[str] = ...) -> None: ...

class PointsComponent(_message.Message):
    __slots__ = ("offer_id", "kind", "points", "line_points")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    LINE_POINTS_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    kind: str
    points: int
    line_points: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, offer_id: _Optional[str] = ..., kind: _Optional[str] = ..., points: _Optional[int] = ..., line_points: _Optional[_Iterable[int]] = ...) -> None: ...

class AppliedOffer(_message.Message):
    __slots__ = ("offer_id", "name", "discount_minor", "funder_id", "funded_minor", "points", "applications")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDER_ID_FIELD_NUMBER: _ClassVar[int]
    FUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    name: str
    discount_minor: int
    funder_id: str
    funded_minor: int
    points: int
    applications: int
    def __init__(self, offer_id: _Optional[str] = ..., name: _Optional[str] = ..., discount_minor: _Optional[int] = ..., funder_id: _Optional[str] = ..., funded_minor: _Optional[int] = ..., points: _Optional[int] = ..., applications: _Optional[int] = ...) -> None: ...

class CouponResult(_message.Message):
    __slots__ = ("code", "status", "reason")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[CouponResult.Status]
        APPLIED: _ClassVar[CouponResult.Status]
        NOT_APPLICABLE: _ClassVar[CouponResult.Status]
        INVALID: _ClassVar[CouponResult.Status]
        EXPIRED: _ClassVar[CouponResult.Status]
        USED_UP: _ClassVar[CouponResult.Status]
        NOT_YET_VALID: _ClassVar[CouponResult.Status]
        MEMBER_REQUIRED: _ClassVar[CouponResult.Status]
        NOT_NEEDED: _ClassVar[CouponResult.Status]
        WRONG_MEMBER: _ClassVar[CouponResult.Status]
    STATUS_UNSPECIFIED: CouponResult.Status
    APPLIED: CouponResult.Status
    NOT_APPLICABLE: CouponResult.Status
    INVALID: CouponResult.Status
    EXPIRED: CouponResult.Status
    USED_UP: CouponResult.Status
    NOT_YET_VALID: CouponResult.Status
    MEMBER_REQUIRED: CouponResult.Status
    NOT_NEEDED: CouponResult.Status
    WRONG_MEMBER: CouponResult.Status
    CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: str
    status: CouponResult.Status
    reason: str
    def __init__(self, code: _Optional[str] = ..., status: _Optional[_Union[CouponResult.Status, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("offer_id", "reason", "detail", "related_offer_id", "message", "next_start", "restriction_id")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RELATED_OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NEXT_START_FIELD_NUMBER: _ClassVar[int]
    RESTRICTION_ID_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    reason: str
    detail: int
    related_offer_id: str
    message: str
    next_start: _timestamp_pb2.Timestamp
    restriction_id: str
    def __init__(self, offer_id: _Optional[str] = ..., reason: _Optional[str] = ..., detail: _Optional[int] = ..., related_offer_id: _Optional[str] = ..., message: _Optional[str] = ..., next_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., restriction_id: _Optional[str] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("ruleset_version", "lines", "gross_minor", "discount_minor", "net_minor", "points_redeemed", "points_tender_minor", "payable_minor", "points_earned", "points_pending", "points", "offers", "coupons", "explanations", "points_tender_status", "gifts")
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    GROSS_MINOR_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    NET_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_FIELD_NUMBER: _ClassVar[int]
    POINTS_TENDER_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    POINTS_PENDING_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    COUPONS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATIONS_FIELD_NUMBER: _ClassVar[int]
    POINTS_TENDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    GIFTS_FIELD_NUMBER: _ClassVar[int]
    ruleset_version: int
    lines: _containers.RepeatedCompositeFieldContainer[LineResult]
    gross_minor: int
    discount_minor: int
    net_minor: int
    points_redeemed: int
    points_tender_minor: int
    payable_minor: int
    points_earned: int
    points_pending: bool
    points: _containers.RepeatedCompositeFieldContainer[PointsComponent]
    offers: _containers.RepeatedCompositeFieldContainer[AppliedOffer]
    coupons: _containers.RepeatedCompositeFieldContainer[CouponResult]
    explanations: _containers.RepeatedCompositeFieldContainer[Explanation]
    points_tender_status: str
    gifts: _containers.RepeatedCompositeFieldContainer[GiftResult]
    def __init__(self, ruleset_version: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[LineResult, _Mapping]]] = ..., gross_minor: _Optional[int] = ..., discount_minor: _Optional[int] = ..., net_minor: _Optional[int] = ..., points_redeemed: _Optional[int] = ..., points_tender_minor: _Optional[int] = ..., payable_minor: _Optional[int] = ..., points_earned: _Optional[int] = ..., points_pending: _Optional[bool] = ..., points: _Optional[_Iterable[_Union[PointsComponent, _Mapping]]] = ..., offers: _Optional[_Iterable[_Union[AppliedOffer, _Mapping]]] = ..., coupons: _Optional[_Iterable[_Union[CouponResult, _Mapping]]] = ..., explanations: _Optional[_Iterable[_Union[Explanation, _Mapping]]] = ..., points_tender_status: _Optional[str] = ..., gifts: _Optional[_Iterable[_Union[GiftResult, _Mapping]]] = ...) -> None: ...

class GiftResult(_message.Message):
    __slots__ = ("offer_id", "sku", "quantity", "in_basket", "price_minor")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    IN_BASKET_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    sku: str
    quantity: int
    in_basket: int
    price_minor: int
    def __init__(self, offer_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., in_basket: _Optional[int] = ..., price_minor: _Optional[int] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("transaction_id", "basket", "expected_payable_minor", "fail_if_changed", "allow_restricted_items")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    BASKET_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PAYABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    FAIL_IF_CHANGED_FIELD_NUMBER: _ClassVar[int]
    ALLOW_RESTRICTED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    basket: EvaluateRequest
    expected_payable_minor: int
    fail_if_changed: bool
    allow_restricted_items: bool
    def __init__(self, transaction_id: _Optional[str] = ..., basket: _Optional[_Union[EvaluateRequest, _Mapping]] = ..., expected_payable_minor: _Optional[int] = ..., fail_if_changed: _Optional[bool] = ..., allow_restricted_items: _Optional[bool] = ...) -> None: ...

class SyncOfflineRequest(_message.Message):
    __slots__ = ("commit",)
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    commit: CommitRequest
    def __init__(self, commit: _Optional[_Union[CommitRequest, _Mapping]] = ...) -> None: ...

class SyncOfflineResponse(_message.Message):
    __slots__ = ("commit",)
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    commit: CommitResponse
    def __init__(self, commit: _Optional[_Union[CommitResponse, _Mapping]] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("result", "changed_from_quote", "member")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FROM_QUOTE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    result: EvaluateResponse
    changed_from_quote: bool
    member: _members_pb2.MemberSummary
    def __init__(self, result: _Optional[_Union[EvaluateResponse, _Mapping]] = ..., changed_from_quote: _Optional[bool] = ..., member: _Optional[_Union[_members_pb2.MemberSummary, _Mapping]] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("transaction_id",)
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    def __init__(self, transaction_id: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("transaction_id", "status", "member", "refund_minor", "points_clawed_back", "points_tender_returned", "lines")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[CancelResponse.Status]
        CANCELLED: _ClassVar[CancelResponse.Status]
        ALREADY_CANCELLED: _ClassVar[CancelResponse.Status]
    STATUS_UNSPECIFIED: CancelResponse.Status
    CANCELLED: CancelResponse.Status
    ALREADY_CANCELLED: CancelResponse.Status
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    REFUND_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_CLAWED_BACK_FIELD_NUMBER: _ClassVar[int]
    POINTS_TENDER_RETURNED_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    status: CancelResponse.Status
    member: _members_pb2.MemberSummary
    refund_minor: int
    points_clawed_back: int
    points_tender_returned: int
    lines: _containers.RepeatedCompositeFieldContainer[ReturnedLine]
    def __init__(self, transaction_id: _Optional[str] = ..., status: _Optional[_Union[CancelResponse.Status, str]] = ..., member: _Optional[_Union[_members_pb2.MemberSummary, _Mapping]] = ..., refund_minor: _Optional[int] = ..., points_clawed_back: _Optional[int] = ..., points_tender_returned: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[ReturnedLine, _Mapping]]] = ...) -> None: ...

class ReturnLine(_message.Message):
    __slots__ = ("line_id", "quantity")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    quantity: int
    def __init__(self, line_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class ReturnedLine(_message.Message):
    __slots__ = ("line_id", "quantity", "refund_minor", "points_clawed_back", "points_tender_returned", "funding_reversed_minor")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REFUND_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_CLAWED_BACK_FIELD_NUMBER: _ClassVar[int]
    POINTS_TENDER_RETURNED_FIELD_NUMBER: _ClassVar[int]
    FUNDING_REVERSED_MINOR_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    quantity: int
    refund_minor: int
    points_clawed_back: int
    points_tender_returned: int
    funding_reversed_minor: int
    def __init__(self, line_id: _Optional[str] = ..., quantity: _Optional[int] = ..., refund_minor: _Optional[int] = ..., points_clawed_back: _Optional[int] = ..., points_tender_returned: _Optional[int] = ..., funding_reversed_minor: _Optional[int] = ...) -> None: ...

class ReturnRequest(_message.Message):
    __slots__ = ("return_id", "transaction_id", "lines")
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    return_id: str
    transaction_id: str
    lines: _containers.RepeatedCompositeFieldContainer[ReturnLine]
    def __init__(self, return_id: _Optional[str] = ..., transaction_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[ReturnLine, _Mapping]]] = ...) -> None: ...

class ReturnResponse(_message.Message):
    __slots__ = ("refund_minor", "points_clawed_back", "points_tender_returned", "lines", "member")
    REFUND_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_CLAWED_BACK_FIELD_NUMBER: _ClassVar[int]
    POINTS_TENDER_RETURNED_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    refund_minor: int
    points_clawed_back: int
    points_tender_returned: int
    lines: _containers.RepeatedCompositeFieldContainer[ReturnedLine]
    member: _members_pb2.MemberSummary
    def __init__(self, refund_minor: _Optional[int] = ..., points_clawed_back: _Optional[int] = ..., points_tender_returned: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[ReturnedLine, _Mapping]]] = ..., member: _Optional[_Union[_members_pb2.MemberSummary, _Mapping]] = ...) -> None: ...
