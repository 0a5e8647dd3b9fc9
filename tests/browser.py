"""Shared fixtures of the console's tests, in a real browser and over plain HTTP.

- ``serve_console(tmp_path, api_keys=...)``: a real gRPC server on port 0
  (``server.api.app.create_server``, its clock fixed at ``DEMO_NOW``) with demo data (the
  Watsons-style programme, the demo catalogue, ``members`` members with wallet coupons and
  welcome points: ``server.cli.demo.load_demo``), and the HTTP app
  (``server.web.app.create_web_app``) served by uvicorn on a free loopback port.
- fixtures: ``console_server`` (no keys: no sign-in) and ``keyed_console_server`` (keys
  ``KEYS``: sign-in required), each one per test module; ``browser`` (Debian's chromium driven
  by Playwright, one per session; the test is skipped, saying why, when there is none);
  ``page`` (a fresh browser context on ``console_server``).
- ``shoot(page, name)``: a full-page screenshot to ``tests/artifacts/<name>.png`` (not
  committed).

Use them from a test module with ``from tests.browser import browser, console_server, page``.
Nothing downloads a browser: ``LOYALTY_CHROMIUM`` names another executable than
``/usr/bin/chromium``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from loyalty.v1 import checkout_pb2, checkout_pb2_grpc
from server.api.app import App, create_server
from server.cli.demo import load_demo
from server.settings import Settings
from server.web.app import WebServer, bind, create_web_app
from server.web.rpc import Rpc

KEYS = {"k-check": "checkout", "k-mkt": "marketing", "k-admin": "admin"}
# the demo's "now": Saturday 2026-11-21, 10:00 in Shanghai (the programme's time zone)
DEMO_NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
DEMO_LOCAL = "2026-11-21T10:00"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("LOYALTY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class ServedConsole:
    """The running servers: ``url`` of the HTTP side (no trailing slash), the gRPC
    ``target``, the gRPC server's ``app`` (registry, store), a ``channel`` to it."""

    url: str
    target: str
    app: App
    channel: grpc.Channel
    keys: dict[str, str]

    def evaluate(
        self, lines: list[tuple[str, int, int]], member_id: str = "", key: str = ""
    ) -> Any:
        """A gRPC Evaluate of lines ``(sku, quantity, unit_price_minor)`` (explained)."""
        stub = checkout_pb2_grpc.CheckoutServiceStub(self.channel)
        request = checkout_pb2.EvaluateRequest(
            member_id=member_id,
            explain=True,
            lines=[
                checkout_pb2.Line(line_id=str(k), sku=s, quantity=q, unit_price_minor=p)
                for k, (s, q, p) in enumerate(lines, 1)
            ],
        )
        metadata = (("x-api-key", key),) if key else None
        return stub.Evaluate(request, metadata=metadata, timeout=10)


@contextlib.contextmanager
def serve_console(
    tmp_path: Path,
    *,
    api_keys: dict[str, str] | None = None,
    members: int = 40,
    clock: Callable[[], datetime] = lambda: DEMO_NOW,
) -> Iterator[ServedConsole]:
    """The gRPC server with demo data and the HTTP app in front of it, both on loopback."""
    settings = Settings(
        port=0, data_dir=tmp_path / "data", api_keys=dict(api_keys or {}), metrics_port=0
    )
    server, port, app = create_server(settings, clock=clock)
    server.start()
    target = f"127.0.0.1:{port}"
    rpc = Rpc(target)
    channel = grpc.insecure_channel(target)
    web: WebServer | None = None
    try:
        load_demo(app.registry, app.store, members=members, now=DEMO_NOW)
        web = WebServer(create_web_app(rpc, settings), bind("127.0.0.1", 0), settings, rpc)
        web.start()
        yield ServedConsole(f"http://127.0.0.1:{web.port}", target, app, channel, settings.api_keys)
    finally:
        if web is not None:
            web.stop(0)
        else:
            rpc.close()
        channel.close()
        server.stop(None).wait()
        app.close()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedConsole]:
    """The console without keys (loopback): no sign-in."""
    with serve_console(tmp_path_factory.mktemp("console")) as served:
        yield served


@pytest.fixture(scope="module")
def keyed_console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedConsole]:
    """The console of a server with API keys (``KEYS``): sign-in required."""
    with serve_console(tmp_path_factory.mktemp("keyed"), api_keys=KEYS) as served:
        yield served


_LAUNCHED: dict[str, Any] = {}  # one Playwright and one chromium for the whole session


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright; skips when there is none. Every
    module that binds this fixture shares the one browser (Playwright's sync API allows one
    instance per thread)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"no browser for the console tests: {CHROMIUM} is missing "
            "(`make chromium` installs Debian's chromium; LOYALTY_CHROMIUM names another)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if "browser" not in _LAUNCHED:
        playwright = sync_api.sync_playwright().start()
        _LAUNCHED["playwright"] = playwright
        _LAUNCHED["browser"] = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"]
        )
    yield _LAUNCHED["browser"]
    if "browser" in _LAUNCHED:  # the first of the bindings to finish closes it
        _LAUNCHED.pop("browser").close()
        _LAUNCHED.pop("playwright").stop()


def new_page(browser: Any, served: ServedConsole) -> Any:
    context = browser.new_context(base_url=served.url, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def page(browser: Any, console_server: ServedConsole) -> Iterator[Any]:
    """A fresh browser context (no cookies) on ``console_server``."""
    found = new_page(browser, console_server)
    try:
        yield found
    finally:
        found.context.close()


def shoot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``tests/artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
