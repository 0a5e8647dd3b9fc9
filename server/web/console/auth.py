"""Signing in with an API key (when the server has keys) and signing out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.web.console.common import console_of, render, safe_next


async def login(request: Request) -> Response:
    console = console_of(request)
    if not console.login_required:
        return RedirectResponse("/programme", status_code=303)
    if request.method == "GET":
        return render(
            request,
            "login.html",
            next=safe_next(request.query_params.get("next")),
            note=request.query_params.get("note", "")[:200],
            error="",
        )
    form = await request.form()
    key, target = str(form.get("api_key", "")).strip(), safe_next(str(form.get("next", "")))
    role, why = console.login_for(key) if key else (None, "Enter the API key.")
    if role is None:
        return render(request, "login.html", status_code=401, next=target, note="", error=why)
    # a fresh session (and CSRF token) on every sign-in: no fixation of a planted cookie
    request.state.session = console.new_session(key, role)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    console = console_of(request)
    request.state.session = console.new_session()
    return RedirectResponse("/login" if console.login_required else "/programme", status_code=303)


def routes() -> list[tuple[Route, bool]]:
    """The routes, each with whether it is public (reachable before signing in)."""
    return [
        (Route("/login", login, methods=["GET", "POST"], name="console-login"), True),
        (Route("/logout", logout, methods=["POST"], name="console-logout"), True),
    ]
