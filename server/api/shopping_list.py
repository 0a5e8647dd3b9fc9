"""The shopping list's scannable id (docs/design.md §6, MemberService.ListOffers).

Every member has one list id (:mod:`server.store.lists`: ``SL-`` and 26 random base-32
characters), stable from the member's first ``ListOffers`` on. ``ListOffers`` returns it, and on
request its QR code (:func:`render`, drawn with ``segno``: alphanumeric mode, error correction
M or better, 4 px modules, 4-module quiet zone). At the lane the scanned id goes into
``EvaluateRequest.shopping_list_id`` in place of the member card: :func:`check_list_id` checks
its form with the request's other fields, and :func:`checkout_member` resolves it to the
member, so the basket is priced and recorded exactly as for that ``member_id``.
"""

from __future__ import annotations

import io
from datetime import datetime

import segno

from engine.errors import InvalidInput
from loyalty.v1 import checkout_pb2, members_pb2
from server.store import lists
from server.store.base import Store

QR_ERROR = "m"  # error correction level (segno raises it when the symbol has room)
QR_SCALE = 4  # pixels per module
QR_BORDER = 4  # quiet zone, modules (the QR standard's)

_Barcode = members_pb2.ListOffersRequest.Barcode
MEDIA_TYPES: dict[int, str] = {
    _Barcode.BARCODE_QR_SVG: "image/svg+xml",
    _Barcode.BARCODE_QR_PNG: "image/png",
}
_KINDS: dict[int, str] = {_Barcode.BARCODE_QR_SVG: "svg", _Barcode.BARCODE_QR_PNG: "png"}


def check_barcode(bad: InvalidInput, barcode: int) -> None:
    """``ListOffersRequest.barcode`` is a known value."""
    if barcode != _Barcode.BARCODE_UNSPECIFIED and barcode not in _KINDS:
        bad.add("barcode", f"unknown barcode {barcode} (0 = none, 1 = QR SVG, 2 = QR PNG)")


def render(list_id: str, barcode: int) -> tuple[bytes, str]:
    """The QR code of ``list_id`` as ``barcode`` asks and its media type; ``(b"", "")`` for
    ``BARCODE_UNSPECIFIED``. The same id always gives the same bytes."""
    kind = _KINDS.get(barcode)
    if kind is None:
        return b"", ""
    out = io.BytesIO()
    qr = segno.make_qr(list_id, error=QR_ERROR)
    qr.save(out, kind=kind, scale=QR_SCALE, border=QR_BORDER)
    return out.getvalue(), MEDIA_TYPES[barcode]


def member_list(
    store: Store, member_id: str, now: datetime, barcode: int
) -> tuple[str, bytes, str]:
    """The member's list id and its QR code as ``barcode`` asks."""
    list_id = store.shopping_list_id(member_id, now)
    return (list_id, *render(list_id, barcode))


def check_list_id(bad: InvalidInput, req: checkout_pb2.EvaluateRequest, prefix: str = "") -> None:
    """The form of ``shopping_list_id`` (with the request's other checks): at most
    :data:`server.store.lists.MAX_CHARS` characters, a list id's form, not with a member id."""
    list_id = req.shopping_list_id
    if not list_id:
        return
    path = f"{prefix}shopping_list_id"
    if req.member_id:
        bad.add(path, "give member_id or shopping_list_id, not both")
    elif len(list_id) > lists.MAX_CHARS:
        bad.add(path, f"at most {lists.MAX_CHARS} characters (got {len(list_id)})")
    elif not lists.well_formed(list_id):
        bad.add(path, f"{list_id!r} is not a shopping-list id ({lists.PREFIX} + 26 of 0-9 A-Z)")


def checkout_member(
    store: Store, req: checkout_pb2.EvaluateRequest, prefix: str = ""
) -> str | None:
    """The member a checked basket is for: ``member_id``, the member of ``shopping_list_id``,
    or None for a guest. A list id that is no list is InvalidInput on the field."""
    list_id = req.shopping_list_id
    if not list_id:
        return req.member_id or None
    member = store.list_member(list_id)
    if member is None:
        raise InvalidInput.at(f"{prefix}shopping_list_id", f"unknown shopping list {list_id!r}")
    return member
