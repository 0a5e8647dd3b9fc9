"""State stores (docs/design.md §5): one interface, one contract test suite, several backends.

>>> store = open_store("embedded", data_dir="./.loyalty")
>>> store = open_store("redis", url="redis://127.0.0.1:6379/0")
"""

from server.store.base import (
    AdjustOutcome,
    CancelOutcome,
    CodeStatus,
    CommitOutcome,
    Consent,
    CouponStatus,
    IssueOutcome,
    LedgerEntry,
    LedgerLine,
    MemberProfile,
    MemberRecord,
    OfferUse,
    PointLot,
    PriceFn,
    PricingState,
    RespondFn,
    ReturnOutcome,
    Store,
    WalletCoupon,
)
from server.store.embedded.store import EmbeddedStore


def open_store(kind: str = "embedded", **kwargs: object) -> Store:
    """A store by name: ``embedded`` takes ``data_dir`` and ``settings``; ``redis`` takes
    ``url`` and ``settings`` (:class:`server.settings.RedisSettings`)."""
    if kind == "embedded":
        return EmbeddedStore(**kwargs)  # type: ignore[arg-type]
    if kind == "redis":
        from server.store.redis.store import RedisStore

        return RedisStore(**kwargs)  # type: ignore[arg-type]
    raise ValueError(f"unknown store kind {kind!r}")


__all__ = [
    "AdjustOutcome",
    "CancelOutcome",
    "CodeStatus",
    "CouponStatus",
    "CommitOutcome",
    "Consent",
    "EmbeddedStore",
    "IssueOutcome",
    "LedgerEntry",
    "LedgerLine",
    "MemberProfile",
    "MemberRecord",
    "OfferUse",
    "PointLot",
    "PriceFn",
    "RespondFn",
    "PricingState",
    "ReturnOutcome",
    "Store",
    "WalletCoupon",
    "open_store",
]
