"""CampaignService's coupon code batches: a request's checks and the messages of what the
store keeps (``server.store.codes``); the servicer methods are in ``server.api.campaigns``."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from engine.errors import InvalidInput
from loyalty.v1 import campaigns_pb2, rules_pb2
from server.api.convert import MAX_ISSUE_MEMBERS, check_list, when
from server.store.codes import (
    DEFAULT_ALPHABET,
    MIN_LENGTH,
    BatchRecord,
    CodeBatch,
    CodeInfo,
    needed_length,
)
from server.store.snapshot import to_us

MAX_CODES = 1_000_000  # CreateCouponCodes count and uses_per_code
# CouponCodeStatus number -> the store's status name (UNSPECIFIED = no filter, left out)
CODE_STATUSES = {
    v.number: v.name.removeprefix("COUPON_CODE_STATUS_")
    for v in campaigns_pb2.CouponCodeStatus.DESCRIPTOR.values
    if v.number
}
MAX_PREFIX, MAX_PATTERN = 16, 64
MIN_GIVEN_LENGTH, MAX_LENGTH = 6, 32
DEFAULT_PAGE, MAX_PAGE = 1_000, 10_000
BATCH_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
CODE_TEXT = re.compile(r"[A-Z0-9\-]*")
PATTERN = re.compile(r"[#A-Z0-9\-]*")
ALPHABET = re.compile(r"[A-HJKMNP-Z2-9]+")  # no 0, O, 1, I, L


def _us(us: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMicroseconds(us)
    return ts


def batch_message(r: BatchRecord) -> campaigns_pb2.CouponCodeBatch:
    b = r.batch
    return campaigns_pb2.CouponCodeBatch(
        batch_id=b.batch_id,
        offer_id=b.offer_id,
        count=b.count,
        prefix=b.prefix,
        pattern=b.pattern,
        length=b.length,
        alphabet=b.alphabet,
        uses_per_code=b.uses_per_code,
        valid_from=_us(b.valid_from_us),
        valid_until=_us(b.valid_until_us),
        per_member=b.per_member,
        created_at=_us(r.created_us),
        collisions=r.collisions,
        bound_codes=len(b.member_ids),
    )


def code_message(c: CodeInfo, now: datetime) -> campaigns_pb2.CouponCode:
    status = c.status(to_us(now))
    return campaigns_pb2.CouponCode(
        code=c.code,
        batch_id=c.batch_id,
        offer_id=c.offer_id,
        status=f"COUPON_CODE_STATUS_{status}",
        uses_per_code=c.uses_per_code,
        uses_left=c.uses_left,
        valid_from=_us(c.valid_from_us),
        valid_until=_us(c.valid_until_us),
        per_member=c.per_member,
        last_redeemed_at=_us(c.last_us) if c.last_tx else None,
        last_transaction_id=c.last_tx,
        member_id=c.member_id,
    )


def page_token(batch_id: str, status: str, cursor: str) -> str:
    raw = json.dumps([batch_id, status, cursor], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: str) -> tuple[str, str, str] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        b, s, c = json.loads(raw)
        if isinstance(b, str) and isinstance(s, str) and isinstance(c, str):
            return b, s, c
    except (ValueError, TypeError):
        pass
    return None


def code_batch(
    request: campaigns_pb2.CreateCouponCodesRequest, offers: Iterable[rules_pb2.Offer]
) -> CodeBatch:
    """The batch a CreateCouponCodes request asks for, every bad field named; ``offers`` =
    the current rule set's."""
    bad = InvalidInput()
    if not BATCH_ID.fullmatch(request.batch_id):
        bad.add("batch_id", "is required: 1..128 of letters, digits and -_.:")
    offer = next((o for o in offers if o.id == request.offer_id), None)
    if not request.offer_id:
        bad.add("offer_id", "is required")
    elif offer is None:
        bad.add("offer_id", f"no offer {request.offer_id[:128]!r} in the current rule set")
    elif offer.activation != rules_pb2.Offer.COUPON:
        bad.add("offer_id", f"offer {offer.id!r} is not a COUPON-activation offer")
    members = tuple(request.member_ids)
    count = request.count
    if members:
        check_list(bad, "member_ids", members, MAX_ISSUE_MEMBERS)
        if len(set(members)) != len(members):
            bad.add("member_ids", "lists a member more than once")
        if count not in (0, len(members)):
            bad.add("count", f"must be 0 or {len(members):,} (one code per member in member_ids)")
        count = len(members)
    elif not 1 <= count <= MAX_CODES:
        bad.add("count", f"must be 1..{MAX_CODES:,} (got {count:,})")
    if not CODE_TEXT.fullmatch(request.prefix) or len(request.prefix) > MAX_PREFIX:
        bad.add("prefix", f"at most {MAX_PREFIX} characters of A-Z, 0-9 and -")
    alphabet = request.alphabet or DEFAULT_ALPHABET
    if request.alphabet and (
        not ALPHABET.fullmatch(request.alphabet)
        or len(set(request.alphabet)) != len(request.alphabet)
        or not 10 <= len(request.alphabet) <= 36
    ):
        bad.add(
            "alphabet",
            "10..36 distinct characters of A-Z and 2-9, without 0, O, 1, I and L",
        )
        alphabet = DEFAULT_ALPHABET
    need = needed_length(count, len(alphabet))
    length = request.length
    if request.pattern:
        slots = request.pattern.count("#")
        if not PATTERN.fullmatch(request.pattern) or len(request.pattern) > MAX_PATTERN:
            bad.add("pattern", f"at most {MAX_PATTERN} characters of #, A-Z, 0-9 and -")
        elif slots < need:
            bad.add(
                "pattern",
                f"{slots} random characters (#) are too few for {count:,} codes:"
                f" at least {need} are needed",
            )
        if length:
            bad.add("length", "must be 0 with a pattern")
        length = slots
    elif length == 0:
        length = max(need, MIN_LENGTH)
    elif not MIN_GIVEN_LENGTH <= length <= MAX_LENGTH:
        bad.add("length", f"must be 0 or {MIN_GIVEN_LENGTH}..{MAX_LENGTH} (got {length})")
    elif length < need:
        bad.add("length", f"too short for {count:,} codes: at least {need}")
    uses = request.uses_per_code or 1
    if not 1 <= uses <= MAX_CODES:
        bad.add("uses_per_code", f"must be 0..{MAX_CODES:,} (got {request.uses_per_code})")
    start = when(bad, request, "valid_from")
    until = when(bad, request, "valid_until")
    for name in ("valid_from", "valid_until"):
        if not request.HasField(name):
            bad.add(name, "is required")
    if start is not None and until is not None and until <= start:
        bad.add("valid_until", "must be after valid_from")
    if bad.violations or start is None or until is None:
        raise bad
    return CodeBatch(
        request.batch_id,
        request.offer_id,
        count,
        request.prefix,
        request.pattern,
        length,
        alphabet,
        uses,
        request.per_member,
        to_us(start),
        to_us(until),
        members,
    )


def listing(request: campaigns_pb2.ListCouponCodesRequest) -> tuple[str, str, str, int]:
    """What a ListCouponCodes request lists: (batch id, status name, cursor, page size), every
    bad field named."""
    bad = InvalidInput()
    if request.batch_id and not BATCH_ID.fullmatch(request.batch_id):
        bad.add("batch_id", "1..128 of letters, digits and -_.:")
    status = ""
    if request.status:
        status = CODE_STATUSES.get(request.status, "")
        if not status:
            bad.add("status", f"not a CouponCodeStatus (got {request.status})")
    if not 0 <= request.page_size <= MAX_PAGE:
        bad.add("page_size", f"must be 0..{MAX_PAGE:,} (got {request.page_size})")
    cursor = ""
    if request.page_token:
        token = _read_token(request.page_token)
        if token is None or token[:2] != (request.batch_id, status):
            bad.add("page_token", "is not a next_page_token of this listing")
        else:
            cursor = token[2]
    if bad.violations:
        raise bad
    return request.batch_id, status, cursor, request.page_size or DEFAULT_PAGE


__all__ = ["batch_message", "code_batch", "code_message", "listing", "page_token"]
