import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Consent(_message.Message):
    __slots__ = ("marketing", "automated_decisions", "third_party")
    MARKETING_FIELD_NUMBER: _ClassVar[int]
    AUTOMATED_DECISIONS_FIELD_NUMBER: _ClassVar[int]
    THIRD_PARTY_FIELD_NUMBER: _ClassVar[int]
    marketing: bool
    automated_decisions: bool
    third_party: bool
    def __init__(self, marketing: _Optional[bool] = ..., automated_decisions: _Optional[bool] = ..., third_party: _Optional[bool] = ...) -> None: ...

class PointsLot(_message.Message):
    __slots__ = ("points", "earned_at", "available_at", "expires_at")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EARNED_AT_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    points: int
    earned_at: _timestamp_pb2.Timestamp
    available_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, points: _Optional[int] = ..., earned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., available_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WalletCoupon(_message.Message):
    __slots__ = ("coupon_id", "offer_id", "uses_left", "valid_from", "valid_until", "personalised", "status", "revoked_reason", "revoked_at", "reserved_units", "reserved_until")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[WalletCoupon.Status]
        STATUS_ACTIVE: _ClassVar[WalletCoupon.Status]
        STATUS_REVOKED: _ClassVar[WalletCoupon.Status]
    STATUS_UNSPECIFIED: WalletCoupon.Status
    STATUS_ACTIVE: WalletCoupon.Status
    STATUS_REVOKED: WalletCoupon.Status
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    USES_LEFT_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PERSONALISED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_REASON_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    RESERVED_UNITS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    coupon_id: str
    offer_id: str
    uses_left: int
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    personalised: bool
    status: WalletCoupon.Status
    revoked_reason: str
    revoked_at: _timestamp_pb2.Timestamp
    reserved_units: int
    reserved_until: _timestamp_pb2.Timestamp
    def __init__(self, coupon_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., uses_left: _Optional[int] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., personalised: _Optional[bool] = ..., status: _Optional[_Union[WalletCoupon.Status, str]] = ..., revoked_reason: _Optional[str] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reserved_units: _Optional[int] = ..., reserved_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MemberAttribute(_message.Message):
    __slots__ = ("name", "string_value", "number_value", "date_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_VALUE_FIELD_NUMBER: _ClassVar[int]
    DATE_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    string_value: str
    number_value: int
    date_value: str
    def __init__(self, name: _Optional[str] = ..., string_value: _Optional[str] = ..., number_value: _Optional[int] = ..., date_value: _Optional[str] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("member_id", "tier", "segments", "birthday_month", "birthday_day", "enrolled_at", "consent", "available_points", "pending_points", "lots", "wallet", "lifetime_spend_minor", "rolling_spend_minor", "qualifying_spend_minor", "next_requalification_at", "attributes")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    BIRTHDAY_MONTH_FIELD_NUMBER: _ClassVar[int]
    BIRTHDAY_DAY_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    LOTS_FIELD_NUMBER: _ClassVar[int]
    WALLET_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    ROLLING_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    QUALIFYING_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    NEXT_REQUALIFICATION_AT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    tier: str
    segments: _containers.RepeatedScalarFieldContainer[str]
    birthday_month: int
    birthday_day: int
    enrolled_at: _timestamp_pb2.Timestamp
    consent: Consent
    available_points: int
    pending_points: int
    lots: _containers.RepeatedCompositeFieldContainer[PointsLot]
    wallet: _containers.RepeatedCompositeFieldContainer[WalletCoupon]
    lifetime_spend_minor: int
    rolling_spend_minor: int
    qualifying_spend_minor: int
    next_requalification_at: _timestamp_pb2.Timestamp
    attributes: _containers.RepeatedCompositeFieldContainer[MemberAttribute]
    def __init__(self, member_id: _Optional[str] = ..., tier: _Optional[str] = ..., segments: _Optional[_Iterable[str]] = ..., birthday_month: _Optional[int] = ..., birthday_day: _Optional[int] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consent: _Optional[_Union[Consent, _Mapping]] = ..., available_points: _Optional[int] = ..., pending_points: _Optional[int] = ..., lots: _Optional[_Iterable[_Union[PointsLot, _Mapping]]] = ..., wallet: _Optional[_Iterable[_Union[WalletCoupon, _Mapping]]] = ..., lifetime_spend_minor: _Optional[int] = ..., rolling_spend_minor: _Optional[int] = ..., qualifying_spend_minor: _Optional[int] = ..., next_requalification_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attributes: _Optional[_Iterable[_Union[MemberAttribute, _Mapping]]] = ...) -> None: ...

class MemberSummary(_message.Message):
    __slots__ = ("member_id", "tier", "available_points", "pending_points")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    tier: str
    available_points: int
    pending_points: int
    def __init__(self, member_id: _Optional[str] = ..., tier: _Optional[str] = ..., available_points: _Optional[int] = ..., pending_points: _Optional[int] = ...) -> None: ...

class UpsertMemberRequest(_message.Message):
    __slots__ = ("member_id", "tier", "segments", "birthday_month", "birthday_day", "enrolled_at", "consent", "attributes")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    BIRTHDAY_MONTH_FIELD_NUMBER: _ClassVar[int]
    BIRTHDAY_DAY_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    tier: str
    segments: _containers.RepeatedScalarFieldContainer[str]
    birthday_month: int
    birthday_day: int
    enrolled_at: _timestamp_pb2.Timestamp
    consent: Consent
    attributes: _containers.RepeatedCompositeFieldContainer[MemberAttribute]
    def __init__(self, member_id: _Optional[str] = ..., tier: _Optional[str] = ..., segments: _Optional[_Iterable[str]] = ..., birthday_month: _Optional[int] = ..., birthday_day: _Optional[int] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consent: _Optional[_Union[Consent, _Mapping]] = ..., attributes: _Optional[_Iterable[_Union[MemberAttribute, _Mapping]]] = ...) -> None: ...

class GetMemberRequest(_message.Message):
    __slots__ = ("member_id",)
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    def __init__(self, member_id: _Optional[str] = ...) -> None: ...

class ListOffersRequest(_message.Message):
    __slots__ = ("member_id", "at", "store_id", "channel", "barcode")
    class Barcode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        BARCODE_UNSPECIFIED: _ClassVar[ListOffersRequest.Barcode]
        BARCODE_QR_SVG: _ClassVar[ListOffersRequest.Barcode]
        BARCODE_QR_PNG: _ClassVar[ListOffersRequest.Barcode]
    BARCODE_UNSPECIFIED: ListOffersRequest.Barcode
    BARCODE_QR_SVG: ListOffersRequest.Barcode
    BARCODE_QR_PNG: ListOffersRequest.Barcode
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    BARCODE_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    at: _timestamp_pb2.Timestamp
    store_id: str
    channel: str
    barcode: ListOffersRequest.Barcode
    def __init__(self, member_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., store_id: _Optional[str] = ..., channel: _Optional[str] = ..., barcode: _Optional[_Union[ListOffersRequest.Barcode, str]] = ...) -> None: ...

class PersonalOffer(_message.Message):
    __slots__ = ("offer_id", "name", "description", "source", "expected_saving_minor", "valid_until", "uses_left", "valid_from", "reserved_units", "reserved_until")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SAVING_MINOR_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    USES_LEFT_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    RESERVED_UNITS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    name: str
    description: str
    source: str
    expected_saving_minor: int
    valid_until: _timestamp_pb2.Timestamp
    uses_left: int
    valid_from: _timestamp_pb2.Timestamp
    reserved_units: int
    reserved_until: _timestamp_pb2.Timestamp
    def __init__(self, offer_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., source: _Optional[str] = ..., expected_saving_minor: _Optional[int] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uses_left: _Optional[int] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reserved_units: _Optional[int] = ..., reserved_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListOffersResponse(_message.Message):
    __slots__ = ("offers", "list_id", "barcode", "barcode_media_type")
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    BARCODE_FIELD_NUMBER: _ClassVar[int]
    BARCODE_MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[PersonalOffer]
    list_id: str
    barcode: bytes
    barcode_media_type: str
    def __init__(self, offers: _Optional[_Iterable[_Union[PersonalOffer, _Mapping]]] = ..., list_id: _Optional[str] = ..., barcode: _Optional[bytes] = ..., barcode_media_type: _Optional[str] = ...) -> None: ...

class IssueCouponsRequest(_message.Message):
    __slots__ = ("issue_id", "offer_id", "member_ids", "uses", "valid_from", "valid_until", "personalised", "reserve_units", "reserve_until")
    ISSUE_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PERSONALISED_FIELD_NUMBER: _ClassVar[int]
    RESERVE_UNITS_FIELD_NUMBER: _ClassVar[int]
    RESERVE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    issue_id: str
    offer_id: str
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    uses: int
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    personalised: bool
    reserve_units: int
    reserve_until: _timestamp_pb2.Timestamp
    def __init__(self, issue_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., member_ids: _Optional[_Iterable[str]] = ..., uses: _Optional[int] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., personalised: _Optional[bool] = ..., reserve_units: _Optional[int] = ..., reserve_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IssueCouponsResponse(_message.Message):
    __slots__ = ("issued", "skipped_member_ids", "unreserved_member_ids")
    ISSUED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    UNRESERVED_MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    issued: int
    skipped_member_ids: _containers.RepeatedScalarFieldContainer[str]
    unreserved_member_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, issued: _Optional[int] = ..., skipped_member_ids: _Optional[_Iterable[str]] = ..., unreserved_member_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReleaseReservationRequest(_message.Message):
    __slots__ = ("member_id", "offer_id")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    offer_id: str
    def __init__(self, member_id: _Optional[str] = ..., offer_id: _Optional[str] = ...) -> None: ...

class ReleaseReservationResponse(_message.Message):
    __slots__ = ("units_released",)
    UNITS_RELEASED_FIELD_NUMBER: _ClassVar[int]
    units_released: int
    def __init__(self, units_released: _Optional[int] = ...) -> None: ...

class AdjustPointsRequest(_message.Message):
    __slots__ = ("adjustment_id", "member_id", "points", "reason")
    ADJUSTMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    adjustment_id: str
    member_id: str
    points: int
    reason: str
    def __init__(self, adjustment_id: _Optional[str] = ..., member_id: _Optional[str] = ..., points: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class RequalifyTiersRequest(_message.Message):
    __slots__ = ("run_id", "at")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RequalifyTiersResponse(_message.Message):
    __slots__ = ("run_id", "period_end", "upgraded", "downgraded", "kept", "repeated")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    UPGRADED_FIELD_NUMBER: _ClassVar[int]
    DOWNGRADED_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    REPEATED_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    period_end: _timestamp_pb2.Timestamp
    upgraded: int
    downgraded: int
    kept: int
    repeated: bool
    def __init__(self, run_id: _Optional[str] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., upgraded: _Optional[int] = ..., downgraded: _Optional[int] = ..., kept: _Optional[int] = ..., repeated: _Optional[bool] = ...) -> None: ...
