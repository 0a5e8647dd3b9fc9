"""The marketing console: server-rendered pages (Jinja2 + htmx, every asset in the package).

``routes(rpc, settings)`` gives the HTTP app its routes: ``/`` (to the Programme page),
``/login`` and ``/logout``, the Programme pages (``programme.py``), the offer editor
(``offers.py``), the pages of ``insight.py`` (Simulation, Budgets, Members, Settlement) when
that module is there, and ``/static``. Every page route is wrapped by the console's guard
(``common.Console.guard``: session, sign-in, CSRF, error pages, security headers); every
page's data comes from the gRPC services through ``rpc`` with the signed-in key.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from server.settings import Settings
from server.web.console import auth, offers, programme
from server.web.console.common import STATIC, Console
from server.web.rpc import Rpc


async def home(request: Request) -> Response:
    return RedirectResponse("/programme", status_code=303)


def _pages(module: str) -> Callable[[Rpc, Settings], list[BaseRoute]] | None:
    """``module.routes`` of a console module that may not be there yet."""
    try:
        found: Any = importlib.import_module(f"server.web.console.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"server.web.console.{module}":
            raise
        return None
    pages: Callable[[Rpc, Settings], list[BaseRoute]] = found.routes
    return pages


def protect(console: Console, route: BaseRoute, public: bool = False) -> BaseRoute:
    """A page route behind the console's guard; other routes (mounts) as they are."""
    if not isinstance(route, Route):
        return route
    return Route(
        route.path,
        console.guard(route.endpoint, public=public),
        methods=sorted(route.methods - {"HEAD"}) if route.methods else None,
        name=route.name,
        include_in_schema=route.include_in_schema,
    )


def routes(rpc: Rpc, settings: Settings) -> list[BaseRoute]:
    """The console's routes for an HTTP app whose gRPC calls go through ``rpc``."""
    console = Console(rpc, settings)
    pages: list[BaseRoute] = [*programme.routes(), *offers.routes()]
    insight = _pages("insight")
    if insight is not None:
        pages += insight(rpc, settings)
    return [
        Route("/", home, methods=["GET"], name="console-home"),
        *(protect(console, route, public) for route, public in auth.routes()),
        *(protect(console, route) for route in pages),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]


__all__ = ["Console", "protect", "routes"]
