"""The Redis store's documents: a member and a transaction, as compact JSON.

A document is stored as ``"<version>|<json>"`` (see :mod:`server.store.redis.keys`); the Lua
scripts compare and bump the version, only Python reads the JSON. Field names are short because
a member document is most of the store's memory (docs/design.md §8 M1: ≤ 200 bytes per member);
empty fields are left out.

Member document fields: ``t`` tier, ``s`` segments, ``b`` [birthday month, day], ``e`` enrol
date, ``c`` consent bits (1 marketing, 2 automated decisions, 4 third party), ``d`` points
debt, ``ls`` lifetime spend, ``n`` next lot id, ``l`` lots [id, points, earned_us,
available_us, expires_us|null], ``sp`` spend records [transaction, at_us, amount] inside the
rolling window, ``w`` wallet [coupon, offer, uses left, from_us, until_us, issue, uses issued],
``u`` member-limit uses {"offer\\tperiod": uses}, ``cr`` per-member codes redeemed {code: tx}.

Transaction document fields: ``f`` request fingerprint, ``m`` member, ``s`` status (``c``
committed, ``x`` cancelled), ``o`` the CommitOutcome (deflated, see :func:`pack`), ``rq``
units returned per line, ``pk`` the member-limit period counted per offer, ``b`` burns
[points, expires_us, restored], ``el`` the earned lot, ``co`` the CancelOutcome.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from engine.errors import AlreadyExists
from server.store import codec, snapshot
from server.store import points as P
from server.store.base import Consent, MemberProfile, MemberRecord, WalletCoupon
from server.store.snapshot import at_us, from_us, to_us

T = TypeVar("T")

# Wallet coupons are kept this long after they stop being valid, so re-running an issue
# within that time still finds them and issues nothing twice.
WALLET_KEEP = timedelta(days=400)


def split(raw: bytes | str | None) -> tuple[int, Any]:
    """``(version, decoded JSON)`` of a stored document; ``(0, None)`` when absent."""
    if raw is None:
        return 0, None
    text = raw.decode() if isinstance(raw, bytes) else raw
    version, _, body = text.partition("|")
    return int(version), json.loads(body)


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def pack(data: Any) -> str:
    """JSON, deflated and base64-encoded: a transaction's stored outcome is read only on a
    retry, a cancel or a return, and shrinks about 4x (a 20-line commit from ~13.7 KB)."""
    return base64.b64encode(zlib.compress(dumps(data).encode(), 6)).decode("ascii")


def unpack(text: str) -> Any:
    return json.loads(zlib.decompress(base64.b64decode(text)))


def stored(cls: type[T], raw: bytes | str, fingerprint: str, conflict: str) -> T:
    """The outcome kept under an id (its document's ``o``, packed), if the request is the
    same one (``f``); otherwise AlreadyExists with the ``conflict`` message."""
    _, doc = split(raw)
    if doc["f"] != fingerprint:
        raise AlreadyExists(conflict)
    outcome: T = codec.from_plain(cls, unpack(doc["o"]))
    return outcome


def _us(at: datetime | None) -> int | None:
    return None if at is None else to_us(at)


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
    # JSON rows, kept as lists so they round-trip unchanged (see the module docstring)
    spend: list[list[Any]] = field(default_factory=list)  # [transaction, at_us, amount]
    wallet: list[list[Any]] = field(default_factory=list)  # [coupon, offer, left, from_us, ...]
    usage: dict[str, int] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, member_id: str, raw: bytes | str | None) -> MemberDoc | None:
        version, d = split(raw)
        if d is None:
            return None
        bm, bd = d.get("b", (0, 0))
        return cls(
            member_id,
            version,
            d.get("t", ""),
            d.get("s", []),
            bm,
            bd,
            d.get("e", ""),
            d.get("c", 0),
            d.get("d", 0),
            d.get("ls", 0),
            d.get("n", 1),
            [P.Lot(x[0], x[1], at_us(x[2]), at_us(x[3]), from_us(x[4])) for x in d.get("l", ())],
            d.get("sp", []),
            d.get("w", []),
            d.get("u", {}),
            d.get("cr", {}),
        )

    def set_profile(self, profile: MemberProfile) -> None:
        c = profile.consent
        self.tier = profile.tier
        self.segments = sorted(profile.segments)
        self.birthday_month, self.birthday_day = profile.birthday_month, profile.birthday_day
        self.enrolled_on = profile.enrolled_on.isoformat() if profile.enrolled_on else ""
        self.consent = int(c.marketing) | 2 * int(c.automated_decisions) | 4 * int(c.third_party)

    def dump(
        self, now: datetime, spend_months: int, keep_periods: frozenset[str] = frozenset()
    ) -> str:
        """The JSON to store as of ``now``: new lots get ids, drained lots, spend records
        older than the rolling window, long-expired coupons and member-limit counters of
        past periods (all but ``keep_periods``) are dropped."""
        for lot in self.lots:
            if lot.lot_id is None:
                lot.lot_id = self.next_lot
                self.next_lot += 1
        since = to_us(P.add_months(now, -spend_months))
        self.spend = [s for s in self.spend if s[1] > since]
        keep_until = to_us(now - WALLET_KEEP)
        self.wallet = [w for w in self.wallet if w[4] > keep_until]
        if keep_periods:
            self.usage = {
                k: v
                for k, v in self.usage.items()
                if v > 0 and k.rpartition("\t")[2] in keep_periods
            }
        d: dict[str, Any] = {"t": self.tier}
        optional = {
            "s": self.segments,
            "e": self.enrolled_on,
            "c": self.consent,
            "d": self.debt,
            "ls": self.lifetime,
            "sp": self.spend,
            "w": self.wallet,
            "u": self.usage,
            "cr": self.codes,
            "b": [self.birthday_month, self.birthday_day]
            if self.birthday_month or self.birthday_day
            else None,
            "n": self.next_lot if self.next_lot > 1 else None,
            "l": [
                [x.lot_id, x.points, to_us(x.earned_at), to_us(x.available_at), _us(x.expires_at)]
                for x in self.lots
                if x.points > 0
            ],
        }
        d.update({k: v for k, v in optional.items() if v})
        return dumps(d)

    def coupons(self) -> list[WalletCoupon]:
        return [WalletCoupon(w[0], w[1], w[2], at_us(w[3]), at_us(w[4])) for w in self.wallet]

    def record(self, now: datetime, spend_months: int) -> MemberRecord:
        """The member as of ``now``; the document itself is not changed."""
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
            rolling_spend_minor=snapshot.rolling_sum(
                ((s[1], s[2]) for s in self.spend), now, spend_months
            ),
            now=now,
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
