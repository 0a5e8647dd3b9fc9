"""State stores (DESIGN.md §5): one interface, one contract test suite, several backends.

>>> store = open_store("embedded", data_dir="./.loyalty")
"""

from server.store.base import (
    AdjustOutcome,
    AlreadyExists,
    CancelOutcome,
    CodeStatus,
    CommitOutcome,
    Conflict,
    Consent,
    DiscountDetail,
    FailedPrecondition,
    InvalidArgument,
    IssueOutcome,
    LedgerEntry,
    LineDetail,
    MemberProfile,
    MemberRecord,
    NotFound,
    OfferUse,
    PointLot,
    PriceFn,
    PricingState,
    ReturnOutcome,
    Store,
    StoreError,
    Unavailable,
    WalletCoupon,
)
from server.store.embedded import EmbeddedSettings, EmbeddedStore


def open_store(kind: str = "embedded", **kwargs: object) -> Store:
    """A store by name; ``embedded`` takes ``data_dir`` and ``settings``."""
    if kind == "embedded":
        return EmbeddedStore(**kwargs)  # type: ignore[arg-type]
    raise ValueError(f"unknown store kind {kind!r}")


__all__ = [
    "AdjustOutcome", "AlreadyExists", "CancelOutcome", "CodeStatus", "CommitOutcome", "Conflict",
    "Consent", "DiscountDetail", "EmbeddedSettings", "EmbeddedStore", "FailedPrecondition",
    "InvalidArgument", "IssueOutcome", "LedgerEntry", "LineDetail", "MemberProfile",
    "MemberRecord", "NotFound", "OfferUse", "PointLot", "PriceFn", "PricingState",
    "ReturnOutcome", "Store", "StoreError", "Unavailable", "WalletCoupon", "open_store",
]
