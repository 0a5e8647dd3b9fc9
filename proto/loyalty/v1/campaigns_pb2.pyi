import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from loyalty.v1 import rules_pb2 as _rules_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("rules", "note")
    RULES_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    rules: _rules_pb2.RuleSet
    note: str
    def __init__(self, rules: _Optional[_Union[_rules_pb2.RuleSet, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

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
