"""API keys with roles, checked by an interceptor before any servicer runs.

checkout      -> CheckoutService Evaluate, Commit, Cancel, Return; MemberService.GetMember,
                 MemberService.ListOffers
offline-sync  -> what checkout may, and CheckoutService.SyncOffline (baskets priced at the
                 lane's own time: a lane that was offline, or the back office that syncs it)
marketing     -> CampaignService, MemberService.IssueCoupons, ReleaseReservation,
                 RequalifyTiers, GetMember, ListOffers
admin         -> everything
Health checks and reflection are open to all. Keys travel as ``x-api-key`` metadata.
"""

from __future__ import annotations

from typing import NoReturn

import grpc

from server.api.interceptors import Continuation, Handler

PACKAGE = "/loyalty.v1."
OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")

CHECKOUT = (
    "CheckoutService/Evaluate",
    "CheckoutService/Commit",
    "CheckoutService/Cancel",
    "CheckoutService/Return",
    "MemberService/GetMember",
    "MemberService/ListOffers",
)
# a name ending in "/" allows the whole service, "" everything, else exactly that method
ALLOWED: dict[str, tuple[str, ...]] = {
    "checkout": CHECKOUT,
    "offline-sync": (*CHECKOUT, "CheckoutService/SyncOffline"),
    # the console's Members page reads members and their shopping lists
    "marketing": (
        "CampaignService/",
        "MemberService/IssueCoupons",
        "MemberService/ReleaseReservation",
        "MemberService/RequalifyTiers",
        "MemberService/GetMember",
        "MemberService/ListOffers",
    ),
    "admin": ("",),
}


def allowed(role: str, method: str) -> bool:
    """Whether ``role`` may call the full gRPC ``method`` name (/package.Service/Method)."""
    if method.startswith(OPEN):
        return True
    if not method.startswith(PACKAGE):
        return False
    name = method[len(PACKAGE) :]
    return any(
        name == grant or (grant.endswith("/") or not grant) and name.startswith(grant)
        for grant in ALLOWED.get(role, ())
    )


def _deny(code: grpc.StatusCode, message: str) -> Handler:
    def handler(request: bytes, context: grpc.ServicerContext) -> NoReturn:
        context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(handler)


class ApiKeyInterceptor(grpc.ServerInterceptor):
    """Answers UNAUTHENTICATED without a known key, PERMISSION_DENIED outside the role."""

    def __init__(self, keys: dict[str, str]):
        self._keys = dict(keys)

    def intercept_service(
        self,
        continuation: Continuation,
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = details.method
        if method.startswith(OPEN):
            return continuation(details)
        key = dict(details.invocation_metadata or ()).get("x-api-key")
        role = self._keys.get(key) if isinstance(key, str) else None
        if role is None:
            return _deny(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown x-api-key")
        if not allowed(role, method):
            return _deny(grpc.StatusCode.PERMISSION_DENIED, f"role {role!r} may not call {method}")
        return continuation(details)
