import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from loyalty.v1 import rules_pb2 as _rules_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CouponCodeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUPON_CODE_STATUS_UNSPECIFIED: _ClassVar[CouponCodeStatus]
    COUPON_CODE_STATUS_UNUSED: _ClassVar[CouponCodeStatus]
    COUPON_CODE_STATUS_USED: _ClassVar[CouponCodeStatus]
    COUPON_CODE_STATUS_USED_UP: _ClassVar[CouponCodeStatus]
    COUPON_CODE_STATUS_EXPIRED: _ClassVar[CouponCodeStatus]
COUPON_CODE_STATUS_UNSPECIFIED: CouponCodeStatus
COUPON_CODE_STATUS_UNUSED: CouponCodeStatus
COUPON_CODE_STATUS_USED: CouponCodeStatus
COUPON_CODE_STATUS_USED_UP: CouponCodeStatus
COUPON_CODE_STATUS_EXPIRED: CouponCodeStatus

class FieldProblem(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ValidateRuleSetRequest(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _rules_pb2.RuleSet
    def __init__(self, rules: _Optional[_Union[_rules_pb2.RuleSet, _Mapping]] = ...) -> None: ...

class ValidateRuleSetResponse(_message.Message):
    __slots__ = ("valid", "problems")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    problems: _containers.RepeatedCompositeFieldContainer[FieldProblem]
    def __init__(self, valid: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[FieldProblem, _Mapping]]] = ...) -> None: ...

class PublishRuleSetRequest(_message.Message):
    __slots__ = ("rules", "note", "guardrail_override_reason")
    RULES_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    GUARDRAIL_OVERRIDE_REASON_FIELD_NUMBER: _ClassVar[int]
    rules: _rules_pb2.RuleSet
    note: str
    guardrail_override_reason: str
    def __init__(self, rules: _Optional[_Union[_rules_pb2.RuleSet, _Mapping]] = ..., note: _Optional[str] = ..., guardrail_override_reason: _Optional[str] = ...) -> None: ...

class PublishRuleSetResponse(_message.Message):
    __slots__ = ("version", "compile_ms")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COMPILE_MS_FIELD_NUMBER: _ClassVar[int]
    version: int
    compile_ms: int
    def __init__(self, version: _Optional[int] = ..., compile_ms: _Optional[int] = ...) -> None: ...

class GetRuleSetRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class RuleSetVersion(_message.Message):
    __slots__ = ("version", "rules", "published_at", "note", "current")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    version: int
    rules: _rules_pb2.RuleSet
    published_at: _timestamp_pb2.Timestamp
    note: str
    current: bool
    def __init__(self, version: _Optional[int] = ..., rules: _Optional[_Union[_rules_pb2.RuleSet, _Mapping]] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ..., current: _Optional[bool] = ...) -> None: ...

class ListRuleSetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ActivateRuleSetRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class RuleSetSummary(_message.Message):
    __slots__ = ("version", "published_at", "note", "offers", "current")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    version: int
    published_at: _timestamp_pb2.Timestamp
    note: str
    offers: int
    current: bool
    def __init__(self, version: _Optional[int] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ..., offers: _Optional[int] = ..., current: _Optional[bool] = ...) -> None: ...

class ListRuleSetsResponse(_message.Message):
    __slots__ = ("versions", "current_version")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[RuleSetSummary]
    current_version: int
    def __init__(self, versions: _Optional[_Iterable[_Union[RuleSetSummary, _Mapping]]] = ..., current_version: _Optional[int] = ...) -> None: ...

class ImportCatalogueRequest(_message.Message):
    __slots__ = ("rows", "csv", "parquet")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CSV_FIELD_NUMBER: _ClassVar[int]
    PARQUET_FIELD_NUMBER: _ClassVar[int]
    rows: CatalogueRows
    csv: bytes
    parquet: bytes
    def __init__(self, rows: _Optional[_Union[CatalogueRows, _Mapping]] = ..., csv: _Optional[bytes] = ..., parquet: _Optional[bytes] = ...) -> None: ...

class CatalogueRows(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_rules_pb2.CatalogueItem]
    def __init__(self, items: _Optional[_Iterable[_Union[_rules_pb2.CatalogueItem, _Mapping]]] = ...) -> None: ...

class ImportCatalogueResponse(_message.Message):
    __slots__ = ("skus", "ruleset_version")
    SKUS_FIELD_NUMBER: _ClassVar[int]
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    skus: int
    ruleset_version: int
    def __init__(self, skus: _Optional[int] = ..., ruleset_version: _Optional[int] = ...) -> None: ...

class SimulateRequest(_message.Message):
    __slots__ = ("rules", "history_parquet", "ledger_since", "assume_coupons", "distribution_buckets")
    RULES_FIELD_NUMBER: _ClassVar[int]
    HISTORY_PARQUET_FIELD_NUMBER: _ClassVar[int]
    LEDGER_SINCE_FIELD_NUMBER: _ClassVar[int]
    ASSUME_COUPONS_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    rules: _rules_pb2.RuleSet
    history_parquet: bytes
    ledger_since: int
    assume_coupons: _containers.RepeatedScalarFieldContainer[str]
    distribution_buckets: int
    def __init__(self, rules: _Optional[_Union[_rules_pb2.RuleSet, _Mapping]] = ..., history_parquet: _Optional[bytes] = ..., ledger_since: _Optional[int] = ..., assume_coupons: _Optional[_Iterable[str]] = ..., distribution_buckets: _Optional[int] = ...) -> None: ...

class FunderCost(_message.Message):
    __slots__ = ("funder_id", "discount_minor", "funded_minor")
    FUNDER_ID_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    funder_id: str
    discount_minor: int
    funded_minor: int
    def __init__(self, funder_id: _Optional[str] = ..., discount_minor: _Optional[int] = ..., funded_minor: _Optional[int] = ...) -> None: ...

class OfferCost(_message.Message):
    __slots__ = ("offer_id", "funder_id", "baskets", "discount_minor", "funded_minor")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    FUNDER_ID_FIELD_NUMBER: _ClassVar[int]
    BASKETS_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    funder_id: str
    baskets: int
    discount_minor: int
    funded_minor: int
    def __init__(self, offer_id: _Optional[str] = ..., funder_id: _Optional[str] = ..., baskets: _Optional[int] = ..., discount_minor: _Optional[int] = ..., funded_minor: _Optional[int] = ...) -> None: ...

class SimulationFigures(_message.Message):
    __slots__ = ("baskets", "baskets_affected", "discount_minor", "funded_minor", "points_earned", "points_liability_minor", "max_basket_discount_minor", "max_basket_transaction_id", "funders", "offers", "discount_distribution")
    BASKETS_FIELD_NUMBER: _ClassVar[int]
    BASKETS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    POINTS_LIABILITY_MINOR_FIELD_NUMBER: _ClassVar[int]
    MAX_BASKET_DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    MAX_BASKET_TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    FUNDERS_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    baskets: int
    baskets_affected: int
    discount_minor: int
    funded_minor: int
    points_earned: int
    points_liability_minor: int
    max_basket_discount_minor: int
    max_basket_transaction_id: str
    funders: _containers.RepeatedCompositeFieldContainer[FunderCost]
    offers: _containers.RepeatedCompositeFieldContainer[OfferCost]
    discount_distribution: _containers.RepeatedCompositeFieldContainer[DiscountBucket]
    def __init__(self, baskets: _Optional[int] = ..., baskets_affected: _Optional[int] = ..., discount_minor: _Optional[int] = ..., funded_minor: _Optional[int] = ..., points_earned: _Optional[int] = ..., points_liability_minor: _Optional[int] = ..., max_basket_discount_minor: _Optional[int] = ..., max_basket_transaction_id: _Optional[str] = ..., funders: _Optional[_Iterable[_Union[FunderCost, _Mapping]]] = ..., offers: _Optional[_Iterable[_Union[OfferCost, _Mapping]]] = ..., discount_distribution: _Optional[_Iterable[_Union[DiscountBucket, _Mapping]]] = ...) -> None: ...

class DiscountBucket(_message.Message):
    __slots__ = ("from_minor", "to_minor", "baskets")
    FROM_MINOR_FIELD_NUMBER: _ClassVar[int]
    TO_MINOR_FIELD_NUMBER: _ClassVar[int]
    BASKETS_FIELD_NUMBER: _ClassVar[int]
    from_minor: int
    to_minor: int
    baskets: int
    def __init__(self, from_minor: _Optional[int] = ..., to_minor: _Optional[int] = ..., baskets: _Optional[int] = ...) -> None: ...

class SimulateResponse(_message.Message):
    __slots__ = ("current_version", "current", "draft", "baskets_by_version")
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    BASKETS_BY_VERSION_FIELD_NUMBER: _ClassVar[int]
    current_version: int
    current: SimulationFigures
    draft: SimulationFigures
    baskets_by_version: _containers.RepeatedCompositeFieldContainer[VersionBaskets]
    def __init__(self, current_version: _Optional[int] = ..., current: _Optional[_Union[SimulationFigures, _Mapping]] = ..., draft: _Optional[_Union[SimulationFigures, _Mapping]] = ..., baskets_by_version: _Optional[_Iterable[_Union[VersionBaskets, _Mapping]]] = ...) -> None: ...

class VersionBaskets(_message.Message):
    __slots__ = ("ruleset_version", "baskets")
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    BASKETS_FIELD_NUMBER: _ClassVar[int]
    ruleset_version: int
    baskets: int
    def __init__(self, ruleset_version: _Optional[int] = ..., baskets: _Optional[int] = ...) -> None: ...

class ListOfferUsageRequest(_message.Message):
    __slots__ = ("offer_ids",)
    OFFER_IDS_FIELD_NUMBER: _ClassVar[int]
    offer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, offer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FunderAmount(_message.Message):
    __slots__ = ("funder_id", "discount_minor", "funded_minor")
    FUNDER_ID_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    funder_id: str
    discount_minor: int
    funded_minor: int
    def __init__(self, funder_id: _Optional[str] = ..., discount_minor: _Optional[int] = ..., funded_minor: _Optional[int] = ...) -> None: ...

class OfferUsage(_message.Message):
    __slots__ = ("offer_id", "name", "funder_id", "uses", "total_uses_cap", "budget_spent_minor", "budget_cap_minor", "funders", "units_sold", "units_reserved", "total_units_cap", "units_per_store_cap")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FUNDER_ID_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_USES_CAP_FIELD_NUMBER: _ClassVar[int]
    BUDGET_SPENT_MINOR_FIELD_NUMBER: _ClassVar[int]
    BUDGET_CAP_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDERS_FIELD_NUMBER: _ClassVar[int]
    UNITS_SOLD_FIELD_NUMBER: _ClassVar[int]
    UNITS_RESERVED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_UNITS_CAP_FIELD_NUMBER: _ClassVar[int]
    UNITS_PER_STORE_CAP_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    name: str
    funder_id: str
    uses: int
    total_uses_cap: int
    budget_spent_minor: int
    budget_cap_minor: int
    funders: _containers.RepeatedCompositeFieldContainer[FunderAmount]
    units_sold: int
    units_reserved: int
    total_units_cap: int
    units_per_store_cap: int
    def __init__(self, offer_id: _Optional[str] = ..., name: _Optional[str] = ..., funder_id: _Optional[str] = ..., uses: _Optional[int] = ..., total_uses_cap: _Optional[int] = ..., budget_spent_minor: _Optional[int] = ..., budget_cap_minor: _Optional[int] = ..., funders: _Optional[_Iterable[_Union[FunderAmount, _Mapping]]] = ..., units_sold: _Optional[int] = ..., units_reserved: _Optional[int] = ..., total_units_cap: _Optional[int] = ..., units_per_store_cap: _Optional[int] = ...) -> None: ...

class ListOfferUsageResponse(_message.Message):
    __slots__ = ("ruleset_version", "currency", "offers", "ledger_seq")
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_SEQ_FIELD_NUMBER: _ClassVar[int]
    ruleset_version: int
    currency: str
    offers: _containers.RepeatedCompositeFieldContainer[OfferUsage]
    ledger_seq: int
    def __init__(self, ruleset_version: _Optional[int] = ..., currency: _Optional[str] = ..., offers: _Optional[_Iterable[_Union[OfferUsage, _Mapping]]] = ..., ledger_seq: _Optional[int] = ...) -> None: ...

class GetSettlementRequest(_message.Message):
    __slots__ = ("from_day", "to_day", "timezone", "funder_ids")
    FROM_DAY_FIELD_NUMBER: _ClassVar[int]
    TO_DAY_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    FUNDER_IDS_FIELD_NUMBER: _ClassVar[int]
    from_day: str
    to_day: str
    timezone: str
    funder_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, from_day: _Optional[str] = ..., to_day: _Optional[str] = ..., timezone: _Optional[str] = ..., funder_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SettlementRow(_message.Message):
    __slots__ = ("funder_id", "offer_id", "store_id", "day", "discount_minor", "funded_minor", "retailer_minor", "lines", "transactions")
    FUNDER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    RETAILER_MINOR_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    funder_id: str
    offer_id: str
    store_id: str
    day: str
    discount_minor: int
    funded_minor: int
    retailer_minor: int
    lines: int
    transactions: int
    def __init__(self, funder_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., store_id: _Optional[str] = ..., day: _Optional[str] = ..., discount_minor: _Optional[int] = ..., funded_minor: _Optional[int] = ..., retailer_minor: _Optional[int] = ..., lines: _Optional[int] = ..., transactions: _Optional[int] = ...) -> None: ...

class GetSettlementResponse(_message.Message):
    __slots__ = ("timezone", "currency", "rows", "funders")
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    FUNDERS_FIELD_NUMBER: _ClassVar[int]
    timezone: str
    currency: str
    rows: _containers.RepeatedCompositeFieldContainer[SettlementRow]
    funders: _containers.RepeatedCompositeFieldContainer[FunderAmount]
    def __init__(self, timezone: _Optional[str] = ..., currency: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[SettlementRow, _Mapping]]] = ..., funders: _Optional[_Iterable[_Union[FunderAmount, _Mapping]]] = ...) -> None: ...

class CreateCouponCodesRequest(_message.Message):
    __slots__ = ("batch_id", "offer_id", "count", "prefix", "pattern", "length", "alphabet", "uses_per_code", "valid_from", "valid_until", "per_member", "member_ids")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    ALPHABET_FIELD_NUMBER: _ClassVar[int]
    USES_PER_CODE_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    offer_id: str
    count: int
    prefix: str
    pattern: str
    length: int
    alphabet: str
    uses_per_code: int
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    per_member: bool
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., count: _Optional[int] = ..., prefix: _Optional[str] = ..., pattern: _Optional[str] = ..., length: _Optional[int] = ..., alphabet: _Optional[str] = ..., uses_per_code: _Optional[int] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., per_member: _Optional[bool] = ..., member_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CouponCodeBatch(_message.Message):
    __slots__ = ("batch_id", "offer_id", "count", "prefix", "pattern", "length", "alphabet", "uses_per_code", "valid_from", "valid_until", "per_member", "created_at", "collisions", "bound_codes")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    ALPHABET_FIELD_NUMBER: _ClassVar[int]
    USES_PER_CODE_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    COLLISIONS_FIELD_NUMBER: _ClassVar[int]
    BOUND_CODES_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    offer_id: str
    count: int
    prefix: str
    pattern: str
    length: int
    alphabet: str
    uses_per_code: int
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    per_member: bool
    created_at: _timestamp_pb2.Timestamp
    collisions: int
    bound_codes: int
    def __init__(self, batch_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., count: _Optional[int] = ..., prefix: _Optional[str] = ..., pattern: _Optional[str] = ..., length: _Optional[int] = ..., alphabet: _Optional[str] = ..., uses_per_code: _Optional[int] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., per_member: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., collisions: _Optional[int] = ..., bound_codes: _Optional[int] = ...) -> None: ...

class CouponCode(_message.Message):
    __slots__ = ("code", "batch_id", "offer_id", "status", "uses_per_code", "uses_left", "valid_from", "valid_until", "per_member", "last_redeemed_at", "last_transaction_id", "member_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    USES_PER_CODE_FIELD_NUMBER: _ClassVar[int]
    USES_LEFT_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    LAST_REDEEMED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    batch_id: str
    offer_id: str
    status: CouponCodeStatus
    uses_per_code: int
    uses_left: int
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    per_member: bool
    last_redeemed_at: _timestamp_pb2.Timestamp
    last_transaction_id: str
    member_id: str
    def __init__(self, code: _Optional[str] = ..., batch_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., status: _Optional[_Union[CouponCodeStatus, str]] = ..., uses_per_code: _Optional[int] = ..., uses_left: _Optional[int] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., per_member: _Optional[bool] = ..., last_redeemed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_transaction_id: _Optional[str] = ..., member_id: _Optional[str] = ...) -> None: ...

class ListCouponCodesRequest(_message.Message):
    __slots__ = ("batch_id", "status", "page_size", "page_token")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    status: CouponCodeStatus
    page_size: int
    page_token: str
    def __init__(self, batch_id: _Optional[str] = ..., status: _Optional[_Union[CouponCodeStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCouponCodesResponse(_message.Message):
    __slots__ = ("codes", "next_page_token")
    CODES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    codes: _containers.RepeatedCompositeFieldContainer[CouponCode]
    next_page_token: str
    def __init__(self, codes: _Optional[_Iterable[_Union[CouponCode, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCouponCodeRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class ListCouponCodeBatchesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCouponCodeBatchesResponse(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[CouponCodeBatch]
    def __init__(self, batches: _Optional[_Iterable[_Union[CouponCodeBatch, _Mapping]]] = ...) -> None: ...
