"""Members: look up a member (``MemberService/GetMember``: tier, points and their lots, wallet
coupons, spend) and their shopping list (``MemberService/ListOffers``).

The server's roles give those two calls to marketing, checkout and admin keys; a key whose role
may not call them is told so on the page instead of an error page.
"""

from __future__ import annotations

import base64
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from loyalty.v1 import members_pb2
from server.web.console.common import call, render
from server.web.console.insight_common import current_rules
from server.web.rpc import RpcFailure

SERVICE = "loyalty.v1.MemberService"
NOT_ALLOWED = (
    "Your key's role may not read members: the server gives GetMember and ListOffers to "
    "marketing, checkout and admin keys."
)


async def members(request: Request) -> Response:
    member_id = request.query_params.get("member_id", "").strip()
    context: dict[str, Any] = {"member_id": member_id, "errors": {}, "message": ""}
    status = 200
    if member_id:
        rules = await current_rules(request)
        context["currency"] = rules.currency
        try:
            member: members_pb2.Member = await call(
                request, f"{SERVICE}/GetMember", members_pb2.GetMemberRequest(member_id=member_id)
            )
            listing: members_pb2.ListOffersResponse = await call(
                request,
                f"{SERVICE}/ListOffers",
                members_pb2.ListOffersRequest(
                    member_id=member_id, barcode=members_pb2.ListOffersRequest.BARCODE_QR_SVG
                ),
            )
        except RpcFailure as exc:
            status = {
                grpc.StatusCode.NOT_FOUND: 404,
                grpc.StatusCode.INVALID_ARGUMENT: 400,
                grpc.StatusCode.PERMISSION_DENIED: 403,
            }.get(exc.code, 0)
            if not status:
                raise
            if exc.code == grpc.StatusCode.NOT_FOUND:
                context["errors"] = {"member_id": f"No member {member_id!r}."}
            elif exc.code == grpc.StatusCode.INVALID_ARGUMENT:
                context["errors"] = {"member_id": "; ".join(d for _, d in exc.violations)}
            else:
                context["message"] = NOT_ALLOWED
        else:
            qr = base64.b64encode(listing.barcode).decode()
            context.update(
                member=member,
                offers=list(listing.offers),
                list_id=listing.list_id,
                list_qr=f"data:{listing.barcode_media_type};base64,{qr}",
            )
    return render(request, "insight_members.html", status_code=status, **context)


def routes() -> list[BaseRoute]:
    return [Route("/members", members, methods=["GET"], name="members")]


__all__ = ["routes"]
