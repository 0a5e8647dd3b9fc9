"""Protobuf <-> engine types, with every bad input named by its field.

Servicers call these and nothing else to translate; ``InvalidInput`` carries all field
violations of a request at once, and ``server.api.errors`` turns it into INVALID_ARGUMENT with a
``google.rpc.BadRequest`` detail.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import polars as pl
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from engine.analytics.history import HistoryError, conform
from engine.errors import InvalidInput
from engine.pricing.catalogue import Catalogue
from engine.pricing.constants import (
    EARLIEST_S,
    LATEST_S,
    MAX_BASKET_GROSS_MINOR,
    MAX_COUPON_CODES,
    MAX_ID_CHARS,
    MAX_LINES,
    MAX_QUANTITY,
    MAX_TEXT_CHARS,
    MAX_UNIT_PRICE_MINOR,
    Tender,
)
from engine.pricing.types import Basket, Line, PricingResult
from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2
from server.api.restricted import mark_restricted
from server.api.shopping_list import check_list_id
from server.store.base import CodeStatus, MemberRecord, PricingState


def _check_id(bad: InvalidInput, path: str, value: str, required: bool = True) -> None:
    if required and not value:
        bad.add(path, "is required")
    elif len(value) > MAX_ID_CHARS:
        bad.add(path, f"longer than {MAX_ID_CHARS} characters")


MAX_TEXT_LEN = MAX_TEXT_CHARS  # free text: reasons, notes
MAX_SEGMENTS = 256
MAX_ISSUE_MEMBERS = 100_000
MAX_ASSUME_COUPONS = MAX_COUPON_CODES  # Simulate: codes assumed presented with every basket
# Parquet holds many rows in few bytes (50 million equal rows in 93 KB): the rows a file says
# it has are counted before it is read, so a small request cannot fill the server's memory.
MAX_CATALOGUE_ROWS = 1_000_000
MAX_HISTORY_ROWS = 5_000_000


def check_ids(
    bad: InvalidInput, message: Message, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    """Id fields of ``message``: the ``required`` ones present, all at most 128 characters."""
    for name in required:
        _check_id(bad, name, getattr(message, name))
    for name in optional:
        _check_id(bad, name, getattr(message, name), required=False)


def check_list(bad: InvalidInput, path: str, values: Sequence[str], limit: int) -> None:
    """A repeated id field: at most ``limit`` entries, each present and at most 128 characters."""
    if len(values) > limit:
        bad.add(path, f"at most {limit:,} entries (got {len(values):,})")
        return
    for k, value in enumerate(values):
        _check_id(bad, f"{path}[{k}]", value)


def check_text(bad: InvalidInput, path: str, value: str, required: bool = True) -> None:
    """Free text: present (when ``required``) and at most 1,024 characters."""
    if required and not value:
        bad.add(path, "is required")
    elif len(value) > MAX_TEXT_LEN:
        bad.add(path, f"longer than {MAX_TEXT_LEN:,} characters")


def require_id(path: str, value: str) -> None:
    """A required id field: present and not too long; raises InvalidInput naming it."""
    bad = InvalidInput()
    _check_id(bad, path, value)
    if bad.violations:
        raise bad


EARLIEST = datetime.fromtimestamp(EARLIEST_S, UTC)
LATEST = datetime.fromtimestamp(LATEST_S, UTC)
MAX_ADJUST_POINTS = 1_000_000_000


def when(bad: InvalidInput, message: Message, field: str, path: str = "") -> datetime | None:
    """The timestamp ``message.field`` as a datetime; None when it is unset, or with a
    violation on ``path`` (default: the field's name) when it is not one the service takes
    (nanos outside 0..999,999,999, or outside 0001-01-02 .. 9999-12-30 UTC)."""
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    path = path or field
    if not 0 <= ts.nanos <= 999_999_999:
        bad.add(path, f"nanos must be 0..999999999 (got {ts.nanos})")
        return None
    try:
        at = ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        at = None
    if at is None or not EARLIEST <= at <= LATEST:
        bad.add(path, f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
        return None
    return at


def timestamp(dt: datetime | None) -> Timestamp | None:
    """A datetime as a protobuf Timestamp (None stays unset)."""
    if dt is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def basket_from_request(
    req: checkout_pb2.EvaluateRequest, prefix: str = "", now: datetime | None = None
) -> Basket:
    """Validate an EvaluateRequest and build the engine's Basket.

    ``occurred_at`` unset means ``now``. Raises InvalidInput naming every bad field.
    """
    bad = InvalidInput()
    if len(req.lines) == 0:
        bad.add(f"{prefix}lines", "at least one line is required")
    if len(req.lines) > MAX_LINES:
        bad.add(f"{prefix}lines", f"at most {MAX_LINES} lines (got {len(req.lines)})")
        raise bad
    if len(req.coupon_codes) > MAX_COUPON_CODES:
        bad.add(
            f"{prefix}coupon_codes",
            f"at most {MAX_COUPON_CODES} codes (got {len(req.coupon_codes)})",
        )
    if req.redeem_points < -1:
        bad.add(f"{prefix}redeem_points", f"must be -1, 0 or positive (got {req.redeem_points})")
    _check_id(bad, f"{prefix}member_id", req.member_id, required=False)
    check_list_id(bad, req, prefix)
    _check_id(bad, f"{prefix}store_id", req.store_id, required=False)
    _check_id(bad, f"{prefix}channel", req.channel, required=False)
    for k, code in enumerate(req.coupon_codes):
        _check_id(bad, f"{prefix}coupon_codes[{k}]", code, required=False)
    seen: dict[str, int] = {}
    lines = []
    for k, ln in enumerate(req.lines):
        path = f"{prefix}lines[{k}]"
        _check_id(bad, f"{path}.line_id", ln.line_id)
        _check_id(bad, f"{path}.sku", ln.sku)
        for name in ("category", "brand", "vendor"):
            _check_id(bad, f"{path}.{name}", getattr(ln, name), required=False)
        if ln.line_id in seen:
            bad.add(
                f"{path}.line_id",
                f"duplicate line id {ln.line_id!r} (also lines[{seen[ln.line_id]}])",
            )
        seen.setdefault(ln.line_id, k)
        if not 1 <= ln.quantity <= MAX_QUANTITY:
            bad.add(f"{path}.quantity", f"must be 1..{MAX_QUANTITY} (got {ln.quantity})")
        if not 0 <= ln.unit_price_minor <= MAX_UNIT_PRICE_MINOR:
            bad.add(
                f"{path}.unit_price_minor",
                f"must be 0..{MAX_UNIT_PRICE_MINOR} (got {ln.unit_price_minor})",
            )
        lines.append(
            Line(
                ln.line_id,
                ln.sku,
                ln.quantity,
                ln.unit_price_minor,
                ln.category,
                ln.brand,
                ln.vendor,
                ln.delivery,
            )
        )
    gross = sum(ln.quantity * ln.unit_price_minor for ln in lines)
    if not bad.violations and gross > MAX_BASKET_GROSS_MINOR:
        bad.add(f"{prefix}lines", f"basket total {gross} exceeds {MAX_BASKET_GROSS_MINOR}")
    at = when(bad, req, "occurred_at", f"{prefix}occurred_at") or now or datetime.now(UTC)
    if bad.violations:
        raise bad
    return Basket(tuple(lines), at, req.store_id, req.channel)


def response_from_result(
    result: PricingResult, version: int, names: dict[str, str], pending: bool
) -> checkout_pb2.EvaluateResponse:
    """The engine's PricingResult as an EvaluateResponse (coupon results added by the caller)."""
    resp = checkout_pb2.EvaluateResponse(
        ruleset_version=version,
        gross_minor=result.gross_minor,
        discount_minor=result.discount_minor,
        net_minor=result.net_minor,
        points_redeemed=result.points_redeemed,
        points_tender_minor=result.points_tender_minor,
        payable_minor=result.payable_minor,
        points_earned=result.points_earned,
        points_pending=pending and result.points_earned > 0,
        points_tender_status=Tender(result.tender).name,
    )
    for line in result.lines:
        resp.lines.add(
            line_id=line.line_id,
            gross_minor=line.gross_minor,
            net_minor=line.net_minor,
            points_tender_minor=line.points_tender_minor,
            points_earned=line.points_earned,
            discounts=[
                checkout_pb2.LineDiscount(
                    offer_id=d.offer_id,
                    amount_minor=d.amount_minor,
                    funder_id=d.funder_id,
                    funded_minor=d.funded_minor,
                )
                for d in line.discounts
            ],
        )
    for comp in result.points:
        resp.points.add(
            offer_id=comp.offer_id, kind=comp.kind, points=comp.points, line_points=comp.line_points
        )
    for o in result.offers:
        resp.offers.add(
            offer_id=o.offer_id,
            name=names.get(o.offer_id, ""),
            discount_minor=o.discount_minor,
            funder_id=o.funder_id,
            funded_minor=o.funded_minor,
            points=o.points,
            applications=o.applications,
        )
    for e in result.explanations:
        resp.explanations.add(
            offer_id=e.offer_id,
            reason=e.reason.name,
            detail=e.detail,
            related_offer_id=e.related_offer_id,
            message=e.message,
            next_start=timestamp(e.next_start),
        )
    for g in result.gifts:
        resp.gifts.add(
            offer_id=g.offer_id,
            sku=g.sku,
            quantity=g.quantity,
            in_basket=g.in_basket,
            price_minor=g.price_minor,
        )
    return mark_restricted(resp, result.restricted)  # member-only items


_CATALOGUE_TEXT = ("sku", "category", "brand", "vendor")


def _parquet_rows(path: str, data: bytes, limit: int) -> None:
    """Refuse Parquet bytes that say they hold more than ``limit`` rows (read from the file's
    metadata only)."""
    try:
        rows = pl.scan_parquet(io.BytesIO(data)).select(pl.len()).collect().item()
    except pl.exceptions.PolarsError as exc:
        raise InvalidInput.at(path, f"not a readable Parquet file: {exc}") from None
    if rows > limit:
        raise InvalidInput.at(path, f"at most {limit:,} rows (got {rows:,})")


def _check_catalogue(path: str, catalogue: Catalogue) -> Catalogue:
    """At most MAX_CATALOGUE_ROWS rows; every sku, category, brand and vendor at most 128
    characters (a basket's strings are, so a longer one could never match; and they are
    copied into every ledger entry of a line they describe)."""
    if len(catalogue) > MAX_CATALOGUE_ROWS:
        raise InvalidInput.at(path, f"at most {MAX_CATALOGUE_ROWS:,} rows (got {len(catalogue):,})")
    bad = InvalidInput()
    for name in _CATALOGUE_TEXT:
        for k, value in enumerate(getattr(catalogue, name)):
            if len(value) > MAX_ID_CHARS:
                where = f"{path}.items[{k}].{name}" if path == "rows" else path
                row = "" if path == "rows" else f"row {k + 1}: "
                bad.add(where, f"{row}{name} longer than {MAX_ID_CHARS} characters")
                break
    if bad.violations:
        raise bad
    return catalogue


def catalogue_from_request(req: campaigns_pb2.ImportCatalogueRequest) -> Catalogue:
    """The catalogue of an import request, from rows, CSV or Parquet bytes."""
    source = req.WhichOneof("source")
    if source == "rows":
        if len(req.rows.items) > MAX_CATALOGUE_ROWS:
            raise InvalidInput.at(
                "rows.items", f"at most {MAX_CATALOGUE_ROWS:,} rows (got {len(req.rows.items):,})"
            )
        return _check_catalogue(
            "rows",
            Catalogue.from_rows(
                [
                    {
                        "sku": i.sku,
                        "category": i.category,
                        "brand": i.brand,
                        "vendor": i.vendor,
                        "no_discount": i.no_discount,
                        "no_earn": i.no_earn,
                        "unit_cost_minor": (
                            i.unit_cost_minor if i.HasField("unit_cost_minor") else None
                        ),
                    }
                    for i in req.rows.items
                ]
            ),
        )
    try:
        if source == "csv":
            frame = pl.read_csv(io.BytesIO(req.csv), infer_schema=False)
            return _check_catalogue(source, Catalogue.from_frame(frame))
        if source == "parquet":
            _parquet_rows(source, req.parquet, MAX_CATALOGUE_ROWS)
            frame = pl.read_parquet(io.BytesIO(req.parquet))
            return _check_catalogue(source, Catalogue.from_frame(frame))
    except pl.exceptions.PolarsError as exc:
        raise InvalidInput.at(source, f"not a readable catalogue: {exc}") from None
    return Catalogue.empty()


def history_from_request(data: bytes) -> pl.DataFrame:
    """``history_parquet`` as a history frame in the engine's schema; read whole here so a
    malformed file is answered as bad input naming the field. At most MAX_HISTORY_ROWS rows."""
    _parquet_rows("history_parquet", data, MAX_HISTORY_ROWS)
    try:
        return conform(pl.read_parquet(io.BytesIO(data))).collect()
    except (pl.exceptions.PolarsError, HistoryError) as exc:
        raise InvalidInput.at("history_parquet", f"not a Parquet history: {exc}") from None


def summary(record: MemberRecord | None) -> members_pb2.MemberSummary | None:
    if record is None:
        return None
    return members_pb2.MemberSummary(
        member_id=record.member_id,
        tier=record.tier,
        available_points=record.points_available,
        pending_points=record.points_pending,
    )


# a cashier's words for a code that cannot be used, where its status name does not say it
_CODE_REASONS = {
    CodeStatus.WRONG_MEMBER: "this code belongs to another member",
    CodeStatus.MEMBER_REQUIRED: "this code needs the member's card",
}


def coupon_results(
    codes: Iterable[str], state: PricingState, applied: Collection[str], why: Mapping[str, str]
) -> list[checkout_pb2.CouponResult]:
    """One CouponResult per presented code, in the order presented: ``applied`` = the offer
    ids that applied, ``why`` = offer id -> why it did not (when explained).

    An applied coupon offer consumes one coupon, as a commit does (server.store.plan): the
    member's wallet coupon of that offer if there is one valid now, else the first valid code
    presented for it. Every other valid code of that offer is ``NOT_NEEDED`` and stays unused.
    """
    out = []
    wallet = state.member.wallet if state.member is not None else {}
    taken = {offer for offer in applied if wallet.get(offer, 0) > 0}  # offers whose coupon is used
    for code in codes:
        status = state.code_status.get(code, CodeStatus.INVALID)
        offer = state.code_offers.get(code, "")
        if status == CodeStatus.VALID and offer in taken:
            out.append(
                checkout_pb2.CouponResult(
                    code=code,
                    status=checkout_pb2.CouponResult.NOT_NEEDED,
                    reason="another coupon of this offer was used; this code stays unused",
                )
            )
        elif status != CodeStatus.VALID:
            out.append(
                checkout_pb2.CouponResult(
                    code=code,
                    status=checkout_pb2.CouponResult.Status.Value(status.name),  # type: ignore[arg-type]
                    reason=_CODE_REASONS.get(
                        status, f"coupon {status.name.lower().replace('_', ' ')}"
                    ),
                )
            )
        elif offer in applied:
            taken.add(offer)
            out.append(
                checkout_pb2.CouponResult(code=code, status=checkout_pb2.CouponResult.APPLIED)
            )
        else:
            out.append(
                checkout_pb2.CouponResult(
                    code=code,
                    status=checkout_pb2.CouponResult.NOT_APPLICABLE,
                    reason=why.get(offer, "its offer does not apply to this basket"),
                )
            )
    return out
