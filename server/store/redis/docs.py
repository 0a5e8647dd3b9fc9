"""The Redis store's documents: a member, a transaction, a return, an adjustment, as msgpack.

A document is stored as ``b"<version>|<body>"`` (see :mod:`server.store.redis.keys`); the Lua
scripts compare and bump the version, only Python reads the body. Field names are short because
a member document is most of the store's memory (docs/design.md §8 M1: ≤ 200 bytes per member);
empty fields are left out.

A member body is msgpack (:class:`_Member`, through msgspec): about half the bytes of the JSON it
replaced, and decoded straight into typed fields. A body that starts with ``{`` is the JSON of
a document stored before; it is still read (:meth:`MemberDoc.load`), and written back as msgpack
by the next change to the member. Its lots were one per commit with exact expiries: they are
marked ``lg`` until the member's next commit rounds their expiries up to the rule set's buckets
and merges them (:func:`server.store.points.rebucket`); its spend records were one per
transaction, ``[transaction, at_us, amount]``, read as 1 µs spans that the next commit merges
into buckets (:func:`server.store.snapshot.add_spend`).

Member document fields: ``t`` tier, ``s`` segments, ``b`` [birthday month, day], ``e`` enrol
date, ``c`` consent bits (1 marketing, 2 automated decisions, 4 third party), ``d`` points
debt, ``ls`` lifetime spend, ``n`` next lot id, ``l`` lots [id, points, earned_us,
available_us, expires_us|nil] (one per bucket, see :mod:`server.store.points`), ``lg`` lots
not yet bucketed, ``sp`` spend buckets [start_us, end_us, amount] reaching into the rolling
window, ``w`` wallet [coupon, offer, uses left, from_us, until_us, issue, uses issued] and, for
a personalised coupon, [..., 1, revoked reason, revoked_us] (reason "" and revoked_us nil while
active; a row of 7 is an active coupon that is not personalised), ``u`` member-limit uses
{"offer\\tperiod": uses}, ``cr`` per-member codes redeemed {code: tx}, ``a`` typed attributes
{name: [tag, value]} (:mod:`server.store.member_attributes`), ``tf`` the tier held before
commits raised it (absent = not raised since, :mod:`server.store.policy`), ``rq`` the last
requalification period end applied, µs (:mod:`server.store.tiers`).

Transaction document fields (a msgpack map): ``f`` request fingerprint, ``m`` member, ``s``
status (``c`` committed, ``x`` cancelled), ``o`` the outcome (a ``CommitRecord`` of
loyalty/v1/ledger.proto, with the CommitResponse bytes a retry answers;
:mod:`server.store.stored`), ``rq`` units returned per line, ``pk`` the member-limit period
counted per offer, ``b`` burns [points, expires_us, restored], ``el`` the lot the earned points
went to, ``co`` the cancel's outcome (a ``ReversalRecord``). Return and adjustment documents:
``f``, ``o`` (a ``ReversalRecord``, an ``AdjustRecord``). Documents stored before kept the
outcomes as msgpack deflated (0.3 before the records), or were JSON with ``o`` deflated and
base64-encoded and ``co`` a plain map (0.2): they are still read (:func:`split`,
:mod:`server.store.legacy`), and a cancel or a return rewrites a transaction document as
msgpack (its ``o`` kept as it was).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import msgspec

from engine.errors import AlreadyExists
from server.store import points as P
from server.store import snapshot
from server.store.base import (
    Consent,
    CouponStatus,
    MemberProfile,
    MemberRecord,
    Spend,
    WalletCoupon,
)
from server.store.member_attributes import StoredAttributes, dump_attributes, load_attributes
from server.store.snapshot import at_us, from_us, to_us

T = TypeVar("T")
_PACK = msgspec.msgpack.Encoder().encode

# Wallet coupons are kept this long after they stop being valid, so re-running an issue
# within that time still finds them and issues nothing twice.
WALLET_KEEP = timedelta(days=400)


def split(raw: bytes | str | None) -> tuple[int, Any]:
    """``(version, body)`` of a stored transaction, return or adjustment document, the body
    decoded untyped (a dict); ``(0, None)`` when absent. Bodies are msgpack; one that starts
    with ``{`` is the JSON stored before."""
    if raw is None:
        return 0, None
    data = raw.encode() if isinstance(raw, str) else raw
    version, _, body = data.partition(b"|")
    return int(version), json.loads(body) if body[:1] == b"{" else msgspec.msgpack.decode(body)


def pack(doc: dict[str, Any]) -> bytes:
    """A transaction, return or adjustment document's body: msgpack."""
    return _PACK(doc)


def stored(decode: Callable[[Any], T], raw: bytes | str, fingerprint: str, conflict: str) -> T:
    """The outcome kept under an id (its document's ``o``, read by ``decode``, one of
    :mod:`server.store.stored`'s), if the request is the same one (``f``); otherwise
    AlreadyExists with the ``conflict`` message."""
    _, doc = split(raw)
    if doc["f"] != fingerprint:
        raise AlreadyExists(conflict)
    return decode(doc["o"])


def _us(at: datetime | None) -> int | None:
    return None if at is None else to_us(at)


# [id, points, earned_us, available_us, expires_us | None]
StoredLot = tuple[int, int, int, int, int | None]


class _Member(msgspec.Struct, omit_defaults=True):
    """The msgpack body of a member document (field names as in the module docstring)."""

    tier: str = msgspec.field(default="", name="t")
    segments: list[str] = msgspec.field(default_factory=list, name="s")
    birthday: tuple[int, int] = msgspec.field(default=(0, 0), name="b")
    enrolled_on: str = msgspec.field(default="", name="e")
    consent: int = msgspec.field(default=0, name="c")
    debt: int = msgspec.field(default=0, name="d")
    lifetime: int = msgspec.field(default=0, name="ls")
    next_lot: int = msgspec.field(default=1, name="n")
    lots: list[StoredLot] = msgspec.field(default_factory=list, name="l")
    legacy: bool = msgspec.field(default=False, name="lg")
    spend: list[Spend] = msgspec.field(default_factory=list, name="sp")
    wallet: list[list[Any]] = msgspec.field(default_factory=list, name="w")
    usage: dict[str, int] = msgspec.field(default_factory=dict, name="u")
    codes: dict[str, str] = msgspec.field(default_factory=dict, name="cr")
    attributes: StoredAttributes = msgspec.field(default_factory=dict, name="a")
    tier_floor: str | None = msgspec.field(default=None, name="tf")
    requalified: int = msgspec.field(default=0, name="rq")


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Member)


def _legacy_member(d: dict[str, Any]) -> _Member:
    """A member body stored as JSON, before lots and spend were bucketed."""
    lots = [tuple(x) for x in d.get("l", ())]
    return _Member(
        d.get("t", ""),
        d.get("s", []),
        tuple(d.get("b", (0, 0))),
        d.get("e", ""),
        d.get("c", 0),
        d.get("d", 0),
        d.get("ls", 0),
        d.get("n", 1),
        lots,  # rows of 5, as the JSON form wrote them
        bool(lots),
        [(at, at + 1, amount) for _, at, amount in d.get("sp", ())],
        d.get("w", []),
        d.get("u", {}),
        d.get("cr", {}),
    )


@dataclass(slots=True)
class MemberDoc:
    member_id: str
    version: int = 0  # 0 = not stored yet
    tier: str = ""
    segments: list[str] = field(default_factory=list)
    birthday_month: int = 0
    birthday_day: int = 0
    enrolled_on: str = ""
    consent: int = 0
    debt: int = 0
    lifetime: int = 0
    next_lot: int = 1
    lots: list[P.Lot] = field(default_factory=list)
    legacy: bool = False  # lots stored before they were bucketed (see the module docstring)
    spend: list[Spend] = field(default_factory=list)
    # rows kept as lists so they round-trip unchanged (see the module docstring)
    wallet: list[list[Any]] = field(default_factory=list)  # [coupon, offer, left, from_us, ...]
    usage: dict[str, int] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    attributes: StoredAttributes = field(default_factory=dict)  # see member_attributes
    tier_floor: str | None = None  # the tier held before commits raised it (Policy)
    requalified: int = 0  # the last requalification period end applied, us (0 = none)

    @classmethod
    def load(cls, member_id: str, raw: bytes | str | None) -> MemberDoc | None:
        """The document from the raw value of its key (None when absent), msgpack or JSON."""
        if raw is None:
            return None
        data = raw.encode() if isinstance(raw, str) else raw
        head, _, body = data.partition(b"|")
        m = _legacy_member(json.loads(body)) if body[:1] == b"{" else _DECODER.decode(body)
        doc = cls(
            member_id,
            int(head),
            m.tier,
            m.segments,
            m.birthday[0],
            m.birthday[1],
            m.enrolled_on,
            m.consent,
            m.debt,
            m.lifetime,
            m.next_lot,
            [P.Lot(x[0], x[1], at_us(x[2]), at_us(x[3]), from_us(x[4])) for x in m.lots],
            m.legacy,
            m.spend,
            m.wallet,
            m.usage,
            m.codes,
            m.attributes,
        )
        doc.tier_floor, doc.requalified = m.tier_floor, m.requalified
        return doc

    def set_profile(self, profile: MemberProfile) -> None:
        c = profile.consent
        self.tier = profile.tier
        self.segments = sorted(profile.segments)
        self.birthday_month, self.birthday_day = profile.birthday_month, profile.birthday_day
        self.enrolled_on = profile.enrolled_on.isoformat() if profile.enrolled_on else ""
        self.consent = int(c.marketing) | 2 * int(c.automated_decisions) | 4 * int(c.third_party)
        self.attributes = dump_attributes(profile.attributes)
        self.tier_floor = None  # a tier given by hand is held as it is

    def dump(
        self, now: datetime, spend_months: int, keep_periods: frozenset[str] = frozenset()
    ) -> bytes:
        """The msgpack body to store as of ``now``: new lots get ids, drained lots, spend
        buckets out of the rolling window, long-expired coupons and member-limit counters of
        past periods (all but ``keep_periods``) are dropped."""
        for lot in self.lots:
            if lot.lot_id is None:
                lot.lot_id = self.next_lot
                self.next_lot += 1
        since = snapshot.spend_since(now, spend_months)
        self.spend = [s for s in self.spend if s[1] > since]
        keep_until = to_us(now - WALLET_KEEP)
        self.wallet = [w for w in self.wallet if w[4] > keep_until]
        if keep_periods:
            self.usage = {
                k: v
                for k, v in self.usage.items()
                if v > 0 and k.rpartition("\t")[2] in keep_periods
            }
        lots: list[StoredLot] = [
            (x.lot_id, x.points, to_us(x.earned_at), to_us(x.available_at), _us(x.expires_at))
            for x in self.lots
            if x.points > 0 and x.lot_id is not None
        ]
        body = _Member(
            self.tier,
            self.segments,
            (self.birthday_month, self.birthday_day),
            self.enrolled_on,
            self.consent,
            self.debt,
            self.lifetime,
            self.next_lot,
            lots,
            self.legacy and bool(lots),
            self.spend,
            self.wallet,
            self.usage,
            self.codes,
            self.attributes,
        )
        body.tier_floor, body.requalified = self.tier_floor, self.requalified
        return _ENCODER.encode(body)

    def coupons(self) -> list[WalletCoupon]:
        out = []
        for w in self.wallet:
            personalised, reason, revoked = (w[7], w[8], w[9]) if len(w) > 7 else (0, "", None)
            out.append(
                WalletCoupon(
                    w[0],
                    w[1],
                    w[2],
                    at_us(w[3]),
                    at_us(w[4]),
                    bool(personalised),
                    CouponStatus.ACTIVE if revoked is None else CouponStatus.REVOKED,
                    reason,
                    None if revoked is None else at_us(revoked),
                )
            )
        return out

    def may_personalise(self) -> bool:
        return snapshot.may_personalise(self.consent_flags())

    def consent_flags(self) -> Consent:
        c = self.consent
        return Consent(bool(c & 1), bool(c & 2), bool(c & 4))

    def revoke_personalised(self, now: datetime) -> list[tuple[str, str]]:
        """Revoke the active personalised coupons with uses left when the member's consent no
        longer allows them (:func:`server.store.snapshot.revoke_reason`); returns their
        (coupon id, offer id)."""
        reason = snapshot.revoke_reason(self.consent_flags())
        revoked = []
        if reason:
            for w in self.wallet:
                if len(w) > 7 and w[7] and w[9] is None and w[2] > 0:
                    w[8], w[9] = reason, to_us(now)
                    revoked.append((str(w[0]), str(w[1])))
        return revoked

    def record(self, now: datetime, spend_months: int, *, with_spend: bool = False) -> MemberRecord:
        """The member as of ``now``; the document itself is not changed. ``with_spend``: list
        the spend buckets of the window too (reads of the member, not the pricing path)."""
        spend: list[Spend] = []
        if with_spend:
            since = snapshot.spend_since(now, spend_months)
            spend = [s for s in self.spend if s[1] > since]
        c = self.consent
        return snapshot.member_record(
            self.member_id,
            tier=self.tier,
            segments=self.segments,
            birthday_month=self.birthday_month,
            birthday_day=self.birthday_day,
            enrolled_on=self.enrolled_on or None,
            consent=Consent(bool(c & 1), bool(c & 2), bool(c & 4)),
            lots=[dataclasses.replace(x) for x in self.lots],
            debt=self.debt,
            wallet=self.coupons(),
            lifetime_spend_minor=self.lifetime,
            rolling_spend_minor=snapshot.rolling_sum(self.spend, now, spend_months),
            spend=spend,
            now=now,
            attributes=load_attributes(self.attributes),
        )

    def usage_of(self, offer_id: str, period_key: str) -> int:
        return self.usage.get(f"{offer_id}\t{period_key}", 0)

    def count_use(self, offer_id: str, period_key: str, delta: int) -> None:
        key = f"{offer_id}\t{period_key}"
        if key in self.usage or delta > 0:
            self.usage[key] = self.usage.get(key, 0) + delta

    def mine(self) -> dict[tuple[str, str], int]:
        """(offer, period key) -> uses, for snapshot.remaining_limits."""
        out = {}
        for k, v in self.usage.items():
            offer, _, period = k.rpartition("\t")
            out[(offer, period)] = v
        return out
