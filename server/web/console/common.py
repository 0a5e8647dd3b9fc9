"""What every console page shares: the session (sign-in and CSRF token), the guard around each
page, rendering, and calls to the gRPC services with the session's API key.

**Pages.** Every console route's endpoint is wrapped by :meth:`Console.guard` (``routes()`` in
``__init__`` wraps the routes of every page module), so a handler is a plain
``async def page(request) -> Response`` that uses:

- ``await call(request, "loyalty.v1.CampaignService/ListRuleSets", request_message)``: the RPC
  with the signed-in key (roles, checks and errors are the gRPC server's; a failure the page
  does not catch becomes an error page, UNAUTHENTICATED a new sign-in);
- ``render(request, "page.html", **context)``: a template extending ``layout.html``;
- ``current_key(request)``, ``csrf_token(request)``, ``await require_csrf(request)`` (the guard
  already checks every POST/PUT/PATCH/DELETE before the handler runs), ``is_htmx(request)``.

**Session.** One cookie, ``loyalty_console``: ``v1.<csrf>.<key fingerprint>.<issued>.<mac>``,
HMAC-SHA-256 signed, ``HttpOnly``, ``SameSite=Strict``, ``Secure`` under TLS, valid 12 hours.
It never holds the API key: the fingerprint (an HMAC of the key) names one of the server's
configured keys, which the server looks up. The signing secret is derived from the server's key
table, so every worker process (and a restart with the same keys) accepts the same cookies, and
changing the keys signs everyone out. Without keys (loopback only: ``Settings.check`` refuses
keyless non-loopback listeners) nobody signs in and the cookie only carries the CSRF token,
which a cross-site attacker can neither read nor set.

**CSRF.** A session-bound token: every unsafe request must send the session's token as the
``csrf_token`` form field or the ``X-CSRF-Token`` header (``layout.html`` puts it on ``<body>``
as an ``hx-headers`` default, so every htmx request carries it), else 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio.to_thread
import grpc
import jinja2
from google.protobuf import message
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from server.settings import Settings
from server.web.console import money as money_
from server.web.rpc import Rpc, RpcFailure

SESSION_COOKIE = "loyalty_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE_S = 12 * 3600
CONSOLE_ROLES = ("marketing", "admin")
NAV = (
    ("/programme", "Programme"),
    ("/offers", "Offers"),
    ("/simulation", "Simulation"),
    ("/budgets", "Budgets"),
    ("/members", "Members"),
    ("/settlement", "Settlement"),
)
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
# a form's text fields (a whole rule file as YAML) may be this large; the form is parsed once,
# here, and handlers get the same parsed form from request.form()
MAX_FORM_PART_BYTES = 8 * 1024 * 1024
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS = {
    # scripts only from our own files (no inline script, no eval: htmx runs with allowEval off)
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

Endpoint = Callable[[Request], Awaitable[Response] | Response]


class CsrfRefused(Exception):
    """An unsafe request without the session's CSRF token."""


@dataclass
class Session:
    """The signed cookie's content, with the key its fingerprint names (None: not signed in)."""

    csrf: str
    fingerprint: str = ""
    issued: int = 0
    key: str | None = None
    role: str | None = None
    changed: bool = False  # the response sets the cookie again


def session_secret(api_keys: dict[str, str]) -> bytes:
    """The cookie signing secret: derived from the key table, the same in every worker."""
    table = "".join(f"{k}\0{r}\n" for k, r in sorted(api_keys.items()))
    return hmac.new(b"loyalty-console-session-v1", table.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Console:
    """The console's state for one HTTP app: the RPC client, the settings, the templates."""

    def __init__(self, rpc: Rpc, settings: Settings, *, clock: Callable[[], float] = time.time):
        self.rpc, self.settings, self.clock = rpc, settings, clock
        self.secret = session_secret(settings.api_keys)
        self._keys = {self.fingerprint(k): (k, r) for k, r in settings.api_keys.items()}
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True
        )
        env.filters["money"] = money_.money
        env.filters["percent"] = money_.percent
        env.filters["timestamp"] = timestamp
        self.templates = Jinja2Templates(env=env)

    @property
    def login_required(self) -> bool:
        return bool(self.settings.api_keys)

    def fingerprint(self, key: str) -> str:
        return hmac.new(self.secret, b"key:" + key.encode(), hashlib.sha256).hexdigest()[:32]

    # -- the cookie ---------------------------------------------------------------------------

    def new_session(self, key: str | None = None, role: str | None = None) -> Session:
        return Session(
            csrf=secrets.token_urlsafe(32),
            fingerprint=self.fingerprint(key) if key else "",
            issued=int(self.clock()),
            key=key,
            role=role,
            changed=True,
        )

    def encode(self, s: Session) -> str:
        body = f"v1.{s.csrf}.{s.fingerprint or '-'}.{s.issued}"
        return f"{body}.{_b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())}"

    def decode(self, value: str) -> Session | None:
        """The session of a cookie value; None when forged, malformed or expired."""
        parts = value.split(".")
        if len(parts) != 5 or parts[0] != "v1" or not parts[3].isdigit():
            return None
        body = ".".join(parts[:4])
        mac = _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(mac, parts[4]):
            return None
        issued = int(parts[3])
        if not -60 <= self.clock() - issued <= SESSION_MAX_AGE_S:
            return None
        session = Session(csrf=parts[1], issued=issued)
        found = self._keys.get(parts[2]) if parts[2] != "-" else None
        if found is not None and found[1] in CONSOLE_ROLES:
            session.fingerprint = parts[2]
            session.key, session.role = found
        return session

    def load(self, request: Request) -> Session:
        value = request.cookies.get(SESSION_COOKIE)
        session = self.decode(value) if value else None
        return session if session is not None else self.new_session()

    def secure(self, request: Request) -> bool:
        return self.settings.tls_cert is not None or request.url.scheme == "https"

    def login_for(self, key: str) -> tuple[str | None, str]:
        """``(role, "")`` for a key that may use the console, else ``(None, why)``."""
        role = None
        for known, known_role in self.settings.api_keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                role = known_role
        if role is None:
            return None, "This API key is not known to the server."
        if role not in CONSOLE_ROLES:
            return None, f"This key's role ({role}) cannot use the console: use a marketing key."
        return role, ""

    # -- the guard ------------------------------------------------------------------------------

    def guard(
        self, endpoint: Endpoint, *, public: bool = False
    ) -> Callable[..., Awaitable[Response]]:
        """``endpoint`` behind the session: CSRF check on unsafe methods, sign-in (unless
        ``public``), RpcFailure as an error page, security headers, the cookie."""

        async def guarded(request: Request) -> Response:
            request.state.console = self
            request.state.session = self.load(request)
            try:
                if request.method in UNSAFE_METHODS:
                    await require_csrf(request)
                if self.login_required and not public and current_key(request) is None:
                    response = self.to_login(request)
                elif inspect.iscoroutinefunction(endpoint):
                    response = await endpoint(request)
                else:
                    response = await anyio.to_thread.run_sync(endpoint, request)  # type: ignore[arg-type]
            except CsrfRefused:
                response = render(
                    request,
                    "error.html",
                    status_code=403,
                    title="Form refused",
                    message="This form was not sent by this console page (its security token is "
                    "missing or stale). Reload the page and try again.",
                )
            except RpcFailure as exc:
                response = self.failure(request, exc)
            return self.finish(request, response)

        guarded.__name__ = getattr(endpoint, "__name__", "page")
        return guarded

    def to_login(self, request: Request, note: str = "") -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if is_htmx(request):  # htmx follows this header with a full page load
            page = urlsplit(request.headers.get("HX-Current-URL", ""))
            target = page.path + (f"?{page.query}" if page.query else "") or "/programme"
        location = "/login?" + _query({"next": target, "note": note})
        if is_htmx(request):
            return Response(status_code=200, headers={"HX-Redirect": location})
        return RedirectResponse(location, status_code=303)

    def failure(self, request: Request, exc: RpcFailure) -> Response:
        """A page for an RPC failure that its handler did not handle."""
        if exc.code == grpc.StatusCode.UNAUTHENTICATED and self.login_required:
            request.state.session = self.new_session()
            return self.to_login(request, "Your key is no longer accepted: sign in again.")
        return render(
            request,
            "error.html",
            status_code=_STATUS.get(exc.code, 502),
            title=_titles(exc.code),
            message=exc.message,
            violations=exc.violations,
        )

    def finish(self, request: Request, response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        session: Session = request.state.session
        if session.changed:
            response.set_cookie(
                SESSION_COOKIE,
                self.encode(session),
                path="/",
                httponly=True,
                samesite="strict",
                secure=self.secure(request),
            )
        return response


def timestamp(ts: Any) -> str:
    """A ``google.protobuf.Timestamp`` as ``2026-11-21 10:30 UTC`` (``—`` when unset)."""
    if not ts.seconds and not ts.nanos:
        return "—"
    return str(ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC"))


def _titles(code: grpc.StatusCode) -> str:
    return {
        grpc.StatusCode.PERMISSION_DENIED: "Not allowed for your key's role",
        grpc.StatusCode.NOT_FOUND: "Not found",
        grpc.StatusCode.INVALID_ARGUMENT: "Refused by the server",
        grpc.StatusCode.UNAVAILABLE: "The server is not available",
    }.get(code, "The server could not do this")


def _query(params: dict[str, str]) -> str:
    return urlencode({k: v for k, v in params.items() if v})


# -- helpers for pages ----------------------------------------------------------------------------


def console_of(request: Request) -> Console:
    console: Console = request.state.console
    return console


def session_of(request: Request) -> Session:
    session: Session = request.state.session
    return session


def current_key(request: Request) -> str | None:
    """The API key of the signed-in session (None without keys, or when not signed in)."""
    return session_of(request).key


def csrf_token(request: Request) -> str:
    return session_of(request).csrf


async def require_csrf(request: Request) -> None:
    """Raise :class:`CsrfRefused` unless the request carries the session's CSRF token (the
    ``X-CSRF-Token`` header or the ``csrf_token`` form field)."""
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form(max_part_size=MAX_FORM_PART_BYTES)
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    session = session_of(request)
    # a session made for this very request (no valid cookie came) never matches
    if not sent or session.changed or not hmac.compare_digest(sent, session.csrf):
        raise CsrfRefused


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` (under ``templates/``) with the layout's context added."""
    console, session = console_of(request), session_of(request)
    path = request.url.path
    current = next((href for href, _ in NAV if path == href or path.startswith(href + "/")), "")
    token = session.csrf
    base = {
        "csrf_token": token,
        "csrf_field": lambda: Markup('<input type="hidden" name="{}" value="{}">').format(
            CSRF_FIELD, token
        ),
        "session_role": session.role,
        "login_required": console.login_required,
        "nav_items": NAV,
        "nav_current": current,
    }
    response: HTMLResponse = console.templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code, headers=headers
    )
    return response


async def call(request: Request, path: str, msg: message.Message) -> Any:
    """RPC ``path`` with the session's key (awaited without holding a thread); raises
    RpcFailure."""
    return await console_of(request).rpc.acall(path, msg, current_key(request))


async def run_blocking(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a worker thread (engine work, anything that blocks)."""
    return await anyio.to_thread.run_sync(fn, *args)


def safe_next(target: str | None, default: str = "/programme") -> str:
    """A local path to go to after signing in (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target
