"""Unit caps and reservations on Redis (rules: :mod:`server.store.units`; the hash layout and
the Lua in :mod:`server.store.redis.unit_scripts`).

A quote reads units hashes through the member cache when the store has one (Redis tracks the
``units:`` prefix, and this process drops them after its own writes); a commit reads them
fresh, and its script re-checks the caps against them anyway.

On a Redis Cluster each offer's units hash is its own slot (``ctr:{u:<offer>}``) and a commit
reserves its units there before it applies in the member's home slot, as it does an offer's
uses (:func:`server.store.redis.homes.holds`, :data:`server.store.redis.unit_scripts.HOLD`);
units held that way (``p+:sold``, ``p+:s:<store>``) read as sold here. A cancel gives them
back once per cancel (:func:`server.store.redis.homes.give_back`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from loyalty.v1.ledger_pb2 import OfferUse
from server.store import units as U
from server.store.policy import Policy
from server.store.records import IssueOutcome
from server.store.redis import members as redis_members
from server.store.redis.io import RedisIO, ScriptArg
from server.store.unit_usage import Reservation, UnitUsage


def parse_units(raw: dict[bytes, bytes]) -> UnitUsage:
    """A units hash (``HGETALL``) as counters and reservations."""
    sold, by_store, reservations = 0, dict[str, int](), []
    for f, v in raw.items():
        name, value = f.decode(), v.decode()
        if name in ("sold", "p+:sold"):  # units held by commits under way count as sold
            sold += int(value)
        elif name.startswith(("s:", "p+:s:")):
            store = name.split("s:", 1)[1]
            by_store[store] = by_store.get(store, 0) + int(value)
        elif name.startswith("r:"):
            member, units, until = value.rsplit("|", 2)
            reservations.append(Reservation(name[2:], member, int(units), int(until)))
    reservations.sort(key=lambda r: r.reservation_id)
    return UnitUsage(sold, by_store, tuple(reservations))


def read_units(io: RedisIO, policy: Policy, ids: Iterable[str]) -> dict[str, UnitUsage]:
    """The unit counters of the offers of ``ids`` that have unit caps (one round trip)."""
    wanted = capped_ids(policy, ids)
    if not wanted:
        return {}
    pipe = io.client.pipeline(transaction=not io.keys.cluster)  # each its own slot there
    for o in wanted:
        pipe.hgetall(io.keys.units(o))
    return {o: parse_units(raw) for o, raw in zip(wanted, pipe.execute(), strict=True)}


def capped_ids(policy: Policy, ids: Iterable[str]) -> list[str]:
    """The offers of ``ids`` that have unit caps (``Policy.units_capped``, found at compile)."""
    if not policy.units_capped:
        return []
    wanted = set(ids)
    return [o for o in policy.units_capped if o in wanted]


def script_ops(io: RedisIO, ops: Sequence[U.UnitOp]) -> tuple[list[str], list[ScriptArg]]:
    """The keys and the ARGV block of unit ops for the commit and cancel scripts."""
    args: list[ScriptArg] = [len(ops)]
    for op in ops:
        args += op_args(op)
    return [io.keys.units(op.offer_id) for op in ops], args


def op_args(op: U.UnitOp) -> list[str | int]:
    """One unit op's values as the scripts take them (``check_units``'s layout)."""
    store = "" if op.store_id is None else "s:" + op.store_id
    return [op.units, op.total_cap, store, op.store_cap, op.holder, op.now_us]


def give_back(
    io: RedisIO, uses: Sequence[OfferUse], store_id: str
) -> tuple[list[str], list[ScriptArg]]:
    return script_ops(io, U.give_back(uses, store_id))


def issue(
    io: RedisIO,
    issue_id: str,
    offer_id: str,
    member_ids: Sequence[str],
    uses: int,
    window: tuple[int, int],
    now: datetime,
    personalised: bool,
    reserve: tuple[int, int | None, int],
) -> IssueOutcome:
    """``Store.issue_coupons`` with reservations: reserve first (one script, atomic over the
    offer's units; a retry keeps what it reserved), then issue the coupons of the members who
    got units, then drop the reservations of members a personalised issue skipped."""
    members = list(dict.fromkeys(member_ids))
    units, until_us, cap = reserve
    refused: list[str] = []
    key = io.keys.units(offer_id)
    if units and until_us is not None:
        fields = [f"r:{issue_id}:{m}" for m in members]
        reply = io.run(
            "reserve_units", [key], [cap, U.to_us(now), units, until_us, *fields, *members]
        )
        refused = [str(m) for m in reply[1:]]
    out = redis_members.issue_coupons(
        io,
        issue_id,
        offer_id,
        [m for m in members if m not in refused],
        uses,
        *window,
        now,
        personalised,
    )
    if units and out.skipped:
        drop_reservations(io, offer_id, [f"{issue_id}:{m}" for m in out.skipped])
    return IssueOutcome(issue_id, offer_id, out.coupon_ids, out.skipped, tuple(refused))


def drop_reservations(io: RedisIO, offer_id: str, coupon_ids: Sequence[str]) -> None:
    """Forget the reservations of these coupons of the offer (none left = nothing happens)."""
    if coupon_ids:
        io.run(
            "unreserve_units", [io.keys.units(offer_id)], ["drop", *(f"r:{c}" for c in coupon_ids)]
        )


def release(io: RedisIO, member_id: str, offer_id: str, now: datetime) -> int:
    reply = io.run(
        "unreserve_units", [io.keys.units(offer_id)], ["release", member_id, U.to_us(now)]
    )
    return int(reply[1])


def held(
    io: RedisIO, coupons: Sequence[tuple[str, str]], now: datetime
) -> dict[str, tuple[int, int]]:
    """Coupon id -> (units still held, until_us) for ``coupons`` = (coupon id, offer id)."""
    if not coupons:
        return {}
    pipe = io.client.pipeline(transaction=False)
    for coupon_id, offer_id in coupons:
        pipe.hget(io.keys.units(offer_id), f"r:{coupon_id}")
    now_us, out = U.to_us(now), {}
    for (coupon_id, _), raw in zip(coupons, pipe.execute(), strict=True):
        if raw is not None:
            _, n, until = raw.decode().rsplit("|", 2)
            if int(n) > 0 and int(until) > now_us:
                out[coupon_id] = (int(n), int(until))
    return out
