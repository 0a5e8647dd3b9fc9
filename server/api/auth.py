"""API keys with roles, checked by an interceptor before any servicer runs.

checkout  -> CheckoutService, MemberService.GetMember, MemberService.ListOffers
marketing -> CampaignService, MemberService.IssueCoupons
admin     -> everything
Health checks and reflection are open to all. Keys travel as ``x-api-key`` metadata.
"""

from __future__ import annotations

from typing import NoReturn

import grpc

from server.api.interceptors import Continuation, Handler

PACKAGE = "/loyalty.v1."
OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")

ALLOWED: dict[str, tuple[str, ...]] = {
    "checkout": ("CheckoutService/", "MemberService/GetMember", "MemberService/ListOffers"),
    "marketing": ("CampaignService/", "MemberService/IssueCoupons"),
    "admin": ("",),
}


def allowed(role: str, method: str) -> bool:
    """Whether ``role`` may call the full gRPC ``method`` name (/package.Service/Method)."""
    if method.startswith(OPEN):
        return True
    if not method.startswith(PACKAGE):
        return False
    name = method[len(PACKAGE) :]
    return any(name.startswith(prefix) for prefix in ALLOWED.get(role, ()))


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
