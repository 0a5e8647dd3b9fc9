"""Member-side operations of the Redis store: profiles, bulk enrolment and reads, segment
tags, wallet coupons, points adjustments.

Each function takes the shared :class:`RedisIO`. Every change to member documents goes
through :func:`edit_members`: read the documents, apply an edit in Python, write them back with
the ``put_members`` script, which replaces them only if none moved since the read (else read
and edit again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Literal

from engine.errors import AlreadyExists, Conflict, NotFound
from server.store import effects
from server.store.base import AdjustOutcome, IssueOutcome, MemberProfile, MemberRecord
from server.store.redis.docs import MemberDoc, pack, stored
from server.store.redis.io import RedisIO, ScriptArg
from server.store.stored import decode_adjust, encode_adjust, ledger_entry

BATCH = 500  # members per put_members script: each batch atomic


def edit_members(
    io: RedisIO,
    member_ids: Sequence[str],
    edit: Callable[[MemberDoc], bool],
    now: datetime,
    *,
    missing: Literal["create", "skip", "raise"] = "raise",
) -> list[MemberDoc]:
    """Apply ``edit`` (True = it changed the document) to each member, ``BATCH`` at a time
    (one at a time on a cluster), each batch one atomic write retried on conflict; returns
    the documents written, once the replicas ``io.wait_replicas`` asks for hold them. A
    member without a document is created empty, skipped or NotFound, as ``missing`` says."""
    written: list[MemberDoc] = []
    size = 1 if io.keys.cluster else BATCH  # on a cluster each member is its own write
    for start in range(0, len(member_ids), size):
        chunk = member_ids[start : start + size]
        for _ in io.attempts():
            docs: list[MemberDoc] = []
            args: list[ScriptArg] = []
            for m, doc in zip(chunk, io.member_docs(chunk), strict=True):
                if doc is None:
                    if missing == "raise":
                        raise NotFound(f"member {m!r} not found")
                    if missing == "skip":
                        continue
                    doc = MemberDoc(m)
                if edit(doc):
                    docs.append(doc)
                    args += [doc.version, doc.dump(now, io.spend_months)]
            if (
                not docs
                or io.run("put_members", [io.keys.member(d.member_id) for d in docs], args)[0]
                == "OK"
            ):
                for doc in docs:
                    doc.version += 1
                written += docs
                break
        else:
            raise Conflict(f"members {chunk[0]!r}... kept changing; try again")
    io.acknowledged(*{io.keys.home(d.member_id) for d in written})  # on the replicas too
    return written


def upsert_member(
    io: RedisIO, profile: MemberProfile, now: datetime
) -> tuple[MemberRecord, list[tuple[str, str]]]:
    """The member as written, and the (coupon, offer) of the personalised coupons its consent
    revoked (the caller gives their reserved units back)."""
    revoked: list[tuple[str, str]] = []

    def edit(doc: MemberDoc) -> bool:
        doc.set_profile(profile)
        revoked[:] = doc.revoke_personalised(now)  # in the same atomic write as the consent
        return True

    (doc,) = edit_members(io, [profile.member_id], edit, now, missing="create")
    return doc.record(now, io.spend_months), revoked


def import_members(
    io: RedisIO, profiles: Iterable[MemberProfile], now: datetime, batch: int
) -> int:
    """Create the members that do not exist yet, pipelined; returns how many were new, once
    the replicas ``io.wait_replicas`` asks for hold them."""
    created = pending = 0
    pipe = io.client.pipeline(transaction=False)
    for profile in profiles:
        doc = MemberDoc(profile.member_id)
        doc.set_profile(profile)
        pipe.set(io.keys.member(profile.member_id), b"1|" + doc.dump(now, io.spend_months), nx=True)
        pending += 1
        if pending == batch:
            created += sum(1 for ok in pipe.execute() if ok)
            pending = 0
    if pending:
        created += sum(1 for ok in pipe.execute() if ok)
    io.acknowledged_everywhere()  # on the replicas too
    return created


def get_members(io: RedisIO, member_ids: Sequence[str], now: datetime) -> dict[str, MemberRecord]:
    ids = list(dict.fromkeys(member_ids))
    out: dict[str, MemberRecord] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for m, doc in zip(chunk, io.member_docs(chunk), strict=True):
            if doc is not None:
                out[m] = doc.record(now, io.spend_months, with_spend=True)
    return out


def update_segments(
    io: RedisIO, changes: Mapping[str, tuple[Iterable[str], Iterable[str]]], now: datetime
) -> int:
    wanted = {m: (set(add), set(remove)) for m, (add, remove) in changes.items()}

    def edit(doc: MemberDoc) -> bool:
        add, remove = wanted[doc.member_id]
        new = sorted((set(doc.segments) - remove) | add)
        changed = new != sorted(doc.segments)
        doc.segments = new
        return changed

    return len(edit_members(io, list(wanted), edit, now, missing="skip"))


def issue_coupons(
    io: RedisIO,
    issue_id: str,
    offer_id: str,
    member_ids: Sequence[str],
    uses: int,
    from_us: int,
    until_us: int,
    now: datetime,
    personalised: bool = False,
) -> IssueOutcome:
    """One wallet coupon ``<issue>:<member>`` each; idempotent per (issue, member). A
    personalised issue skips members without the consent it needs (decided on the document
    the atomic write replaces); a coupon issued before is kept as it is, revoked or not."""
    members = list(dict.fromkeys(member_ids))
    skipped: set[str] = set()

    def edit(doc: MemberDoc) -> bool:
        coupon_id = f"{issue_id}:{doc.member_id}"
        have = next((w for w in doc.wallet if w[0] == coupon_id), None)
        skipped.discard(doc.member_id)  # a retried batch decides again
        if have is None:
            if personalised and not doc.may_personalise():
                skipped.add(doc.member_id)
                return False
            row = [coupon_id, offer_id, uses, from_us, until_us, issue_id, uses]
            doc.wallet.append(row + [1, "", None] if personalised else row)
            return True
        was_personalised = len(have) > 7 and bool(have[7])
        if [have[1], have[3], have[4], have[6], was_personalised] != [
            offer_id,
            from_us,
            until_us,
            uses,
            personalised,
        ]:
            raise AlreadyExists(f"issue {issue_id!r} gave member {doc.member_id!r} another coupon")
        return False

    edit_members(io, members, edit, now)
    return IssueOutcome(
        issue_id,
        offer_id,
        tuple(f"{issue_id}:{m}" for m in members if m not in skipped),
        tuple(m for m in members if m in skipped),
    )


def adjust_points(
    io: RedisIO,
    adjustment_id: str,
    member_id: str,
    points: int,
    reason: str,
    now: datetime,
    expires_at: datetime | None,
    allow_negative: bool,
) -> AdjustOutcome:
    fingerprint = effects.adjust_fingerprint(
        member_id, points, reason, allow_negative, expires_at, now
    )
    k = io.keys
    home = k.home(member_id)
    for _ in io.attempts():
        pipe = io.client.pipeline(transaction=True)
        pipe.get(k.adj(adjustment_id, home))
        pipe.get(k.member(member_id))
        stored_raw, member_raw = pipe.execute()
        if stored_raw is not None:
            return stored(
                decode_adjust,
                stored_raw,
                fingerprint,
                f"adjustment {adjustment_id!r} was made with another request",
            )
        doc = MemberDoc.load(member_id, member_raw)
        if doc is None:
            raise NotFound(f"member {member_id!r} not found")
        doc.debt, added, available = effects.adjust(
            doc.lots, doc.debt, member_id, points, now, expires_at, allow_negative
        )
        outcome = AdjustOutcome(adjustment_id, member_id, points, reason, now, added, available)
        entry = ledger_entry("adjust", adjustment_id, "", member_id, now, (), 0, points, 0, reason)
        reply = io.run(
            "adjust",
            [k.member(member_id), k.adj(adjustment_id, home), *k.ledger_of(home)],
            [
                doc.version,
                doc.dump(now, io.spend_months),
                pack({"f": fingerprint, "o": encode_adjust(outcome)}),
                io.ttl_ms,
                *io.ledger_args(entry),
            ],
        )
        if reply[0] == "OK":
            return outcome
    raise Conflict(f"member {member_id!r} kept changing; try again")
