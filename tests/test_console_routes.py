"""The console's Programme and Offer routes over plain HTTP (httpx against the real servers),
its session and CSRF rules, and the pure parts: the offer form, the YAML helpers, money."""

from __future__ import annotations

import re
import sys
import types
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from engine.pricing.rules import load_rules
from loyalty.v1 import rules_pb2
from server.cli.demo_features import demo_rules
from server.settings import Settings
from server.web.app import WebServer, bind
from server.web.console import Console, routes
from server.web.console import money as M
from server.web.console import offer_form as F
from server.web.console.yamltext import annotate, diff_rows, locate, to_yaml
from tests.browser import DEMO_LOCAL, KEYS, ServedConsole, serve_console

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    with serve_console(tmp_path_factory.mktemp("routes"), members=5) as s:
        yield s


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory):
    with serve_console(tmp_path_factory.mktemp("keyed"), api_keys=KEYS, members=5) as s:
        yield s


def client(s: ServedConsole) -> httpx.Client:
    return httpx.Client(base_url=s.url, timeout=20)


def token(c: httpx.Client, path: str = "/programme") -> str:
    page = c.get(path)
    assert page.status_code == 200, page.text
    found = TOKEN.search(page.text)
    assert found is not None
    return found.group(1)


def current(c: httpx.Client) -> int:
    found = re.search(r'class="highlight" data-version="(\d+)"', c.get("/programme").text)
    assert found is not None
    return int(found.group(1))


# -- pages, session, CSRF -------------------------------------------------------------------------


def test_pages_answer_with_security_headers_and_a_strict_cookie(served):
    with client(served) as c:
        assert c.get("/").headers["location"] == "/programme"
        page = c.get("/programme")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        for path in ("/programme/versions/1", "/programme/diff", "/offers", "/offers/new"):
            assert c.get(path).status_code == 200, path
        assert c.get("/offers/cola-3for2/edit").status_code == 200
        assert c.get("/offers/nope/edit").status_code == 404
        assert c.get("/programme/versions/99").status_code == 404
        assert c.get("/static/htmx.min.js").status_code == 200


def test_every_post_needs_the_sessions_csrf_token(served):
    with client(served) as c:
        form = {"rules_yaml": "currency: CNY\n"}
        assert c.post("/programme/validate", data=form).status_code == 403  # no cookie at all
        good = token(c)
        assert c.post("/programme/validate", data=form).status_code == 403  # cookie, no token
        assert (
            c.post("/programme/validate", data={**form, "csrf_token": "x" + good}).status_code
            == 403
        )
        assert c.post("/programme/validate", data={**form, "csrf_token": good}).status_code == 200
        # htmx sends it as a header
        reply = c.post("/programme/validate", data=form, headers={"X-CSRF-Token": good})
        assert reply.status_code == 200 and "No problems" in reply.text
    with client(served) as other:  # another browser's token does not fit this session
        token(other)
        assert (
            other.post("/programme/validate", data={**form, "csrf_token": good}).status_code == 403
        )


def test_a_forged_or_expired_cookie_is_a_new_session():
    console = Console(None, Settings(api_keys=dict(KEYS)), clock=lambda: 1_000_000)  # type: ignore[arg-type]
    session = console.new_session("k-mkt", "marketing")
    value = console.encode(session)
    back = console.decode(value)
    assert back is not None and back.key == "k-mkt" and back.role == "marketing"
    assert "k-mkt" not in value
    assert console.decode(value[:-2] + "AA") is None
    assert console.decode(value.replace(session.csrf, "x" * len(session.csrf))) is None
    later = Console(None, Settings(api_keys=dict(KEYS)), clock=lambda: 1_000_000 + 13 * 3600)  # type: ignore[arg-type]
    assert later.decode(value) is None
    # another key table (keys changed): every cookie is void
    other = Console(None, Settings(api_keys={"k-new": "marketing"}), clock=lambda: 1_000_000)  # type: ignore[arg-type]
    assert other.decode(value) is None
    # a checkout key is never signed in, even with a good signature
    checkout = console.encode(console.new_session("k-check", "checkout"))
    found = console.decode(checkout)
    assert found is not None and found.key is None


def test_with_keys_the_console_needs_a_marketing_or_admin_key(keyed):
    with client(keyed) as c:
        reply = c.get("/offers?x=1")
        assert reply.status_code == 303
        assert reply.headers["location"] == "/login?next=%2Foffers%3Fx%3D1"
        htmx = c.get(
            "/offers", headers={"HX-Request": "true", "HX-Current-URL": f"{keyed.url}/offers"}
        )
        assert htmx.headers["hx-redirect"] == "/login?next=%2Foffers"
        t = token(c, "/login")
        for key, why in (("nope", "not known"), ("k-check", "role (checkout)")):
            bad = c.post("/login", data={"api_key": key, "csrf_token": t, "next": "/offers"})
            assert bad.status_code == 401 and why in bad.text
        ok = c.post("/login", data={"api_key": "k-mkt", "csrf_token": t, "next": "//evil.example"})
        assert ok.status_code == 303 and ok.headers["location"] == "/programme"
        assert "k-mkt" not in ok.headers["set-cookie"]
        page = c.get("/programme")
        assert page.status_code == 200 and "Signed in (marketing)" in page.text
        # the token changed at sign-in: the old one is refused
        assert c.post("/logout", data={"csrf_token": t}).status_code == 403
        out = c.post("/logout", data={"csrf_token": token(c)})
        assert out.headers["location"] == "/login"
        assert c.get("/programme").status_code == 303


def test_an_admin_key_works_too_and_rpc_refusals_become_pages(keyed):
    with client(keyed) as c:
        t = token(c, "/login")
        c.post("/login", data={"api_key": "k-admin", "csrf_token": t})
        assert c.get("/offers").status_code == 200


# -- Programme -------------------------------------------------------------------------------------


def test_validate_publish_diff_and_roll_back_over_http(served):
    with client(served) as c:
        t = token(c)
        start = current(c)
        text = to_yaml(demo_rules())  # the demo's programme, as served
        bad = text.replace("percent_bps: 2000", "percent_bps: 20000", 1)
        reply = c.post("/programme/publish", data={"rules_yaml": bad, "note": "n", "csrf_token": t})
        assert reply.status_code == 422
        assert "offers[0].percent_off.percent_bps" in reply.text and current(c) == start
        broken = c.post("/programme/validate", data={"rules_yaml": "offers: [", "csrf_token": t})
        assert broken.status_code == 422 and "not valid YAML" in broken.text
        unknown = c.post(
            "/programme/validate",
            data={"rules_yaml": "offers:\n  - id: a\n    percnt_off: {}\n", "csrf_token": t},
        )
        assert 'href="#line-2"' in unknown.text  # placed at the offer
        changed = text.replace("spend 200 save 30", "spend 200 save 35")
        reply = c.post(
            "/programme/publish", data={"rules_yaml": changed, "note": "ladder", "csrf_token": t}
        )
        assert reply.status_code == 303
        published = int(reply.headers["location"].removeprefix("/programme?published="))
        assert current(c) == published
        diff = c.get(f"/programme/diff?old={start}&new={published}").text
        assert "2 lines removed" not in diff and "save 35" in diff
        back = c.post("/programme/activate", data={"version": str(start), "csrf_token": t})
        assert back.headers["location"] == f"/programme?activated={start}"
        assert current(c) == start


# -- Offer editor ----------------------------------------------------------------------------------


def editor_form(**overrides: str) -> dict[str, str]:
    form = {
        "original_id": "",
        "base_version": "0",
        "kind": "percent_off",
        "id": "http-test-10",
        "name": "10% off oral care",
        "percent_off.percent_bps": "10",
        "scope.categories": "oral-care",
        "stacking.priority": "5",
        "basket.lines[0].sku": "TOOTHPASTE-120",
        "basket.lines[0].quantity": "1",
        "basket.lines[0].price": "18.90",
        "basket.lines[0].category": "oral-care",
        "basket.at": DEMO_LOCAL,
        "member.tier": "member",
        "member.points": "0",
        "member.redeem": "0",
        "note": "from the http test",
    }
    return form | overrides


def test_the_preview_prices_the_sample_basket(served):
    with client(served) as c:
        t = token(c, "/offers/new")
        reply = c.post(
            "/offers/preview", data=editor_form(), headers={"X-CSRF-Token": t, "HX-Request": "true"}
        )
        assert reply.status_code == 200
        assert reply.text.lstrip().startswith('<section id="preview"')
        assert "applies: saves CNY 1.89" in reply.text
        guest = c.post(
            "/offers/preview",
            data=editor_form(**{"member.tier": "__guest__", "conditions.member_required": "on"}),
            headers={"X-CSRF-Token": t},
        )
        assert "does not apply: for members only" in guest.text
        bad = c.post(
            "/offers/preview",
            data=editor_form(**{"percent_off.percent_bps": "abc", "basket.lines[0].quantity": "0"}),
            headers={"X-CSRF-Token": t},
        )
        assert "must be a number" in bad.text and "from 1 to 10,000" in bad.text


def test_save_publishes_and_refuses_a_stale_editor(served):
    with client(served) as c:
        t = token(c, "/offers/new")
        start = current(c)
        stale = c.post(
            "/offers/editor",
            data=editor_form(op="save", base_version=str(start - 1), csrf_token=t),
        )
        assert stale.status_code == 409 and f"Version {start} was published since" in stale.text
        assert f'name="base_version" value="{start}"' in stale.text
        dup = c.post(
            "/offers/editor",
            data=editor_form(op="save", id="cola-3for2", base_version=str(start), csrf_token=t),
        )
        assert dup.status_code == 422 and "duplicate id" in dup.text
        assert 'id="f-id" name="id" value="cola-3for2" aria-invalid="true"' in dup.text
        saved = c.post(
            "/offers/editor", data=editor_form(op="save", base_version=str(start), csrf_token=t)
        )
        assert saved.status_code == 303
        found = re.fullmatch(
            r"/offers\?saved=http-test-10&version=(\d+)", saved.headers["location"]
        )
        assert found is not None and current(c) == int(found.group(1)) > start
        got = served.evaluate([("TOOTHPASTE-120", 1, 1890)])
        assert {o.offer_id: o.discount_minor for o in got.offers}["http-test-10"] == 189
        # edit it: same id, now 20%; the note goes with the version
        edit = c.get("/offers/http-test-10/edit").text
        assert 'name="percent_off.percent_bps" value="10"' in edit
        form = editor_form(op="save", original_id="http-test-10", base_version=found.group(1))
        form |= {"percent_off.percent_bps": "20", "csrf_token": t}
        assert c.post("/offers/editor", data=form).status_code == 303
        got = served.evaluate([("TOOTHPASTE-120", 1, 1890)])
        assert {o.offer_id: o.discount_minor for o in got.offers}["http-test-10"] == 378
        c.post("/programme/activate", data={"version": str(start), "csrf_token": t})


def test_kind_and_add_row_buttons_redraw_the_form(served):
    with client(served) as c:
        t = token(c, "/offers/new")
        form = editor_form(op="kind", kind="spend_tiers", csrf_token=t)
        page = c.post("/offers/editor", data=form).text
        assert 'name="spend_tiers.steps[1].threshold_minor"' in page
        assert 'name="spend_tiers.steps[2].threshold_minor"' not in page
        form |= {"op": "add:spend_tiers.steps", "spend_tiers.steps[1].threshold_minor": ""}
        page = c.post("/offers/editor", data=form).text
        assert 'name="spend_tiers.steps[2].threshold_minor"' in page


def test_the_insight_module_is_mounted_behind_the_guard(monkeypatch):
    calls = []

    async def hello(request):
        return PlainTextResponse("hello")

    def insight_routes(rpc, settings):
        calls.append(settings)
        return [Route("/budgets", hello, methods=["GET", "POST"])]

    fake = types.ModuleType("server.web.console.insight")
    fake.routes = insight_routes  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "server.web.console.insight", fake)
    settings = Settings(api_keys=dict(KEYS))
    found = {getattr(r, "path", None): r for r in routes(None, settings)}  # type: ignore[arg-type]
    assert calls == [settings] and "/budgets" in found
    app = Starlette(routes=list(found.values()))
    web = WebServer(app, bind("127.0.0.1", 0), settings).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{web.port}") as c:
            assert c.get("/budgets").headers["location"] == "/login?next=%2Fbudgets"
            assert c.post("/budgets").status_code == 403
    finally:
        web.stop(0)


# -- the pure parts --------------------------------------------------------------------------------


def test_every_example_offer_survives_the_form():
    rules = load_rules(EXAMPLES / "watsons.yaml")
    for offer in rules.offers:
        values = F.values_from_offer(offer, rules.currency, rules.timezone)
        parsed = F.offer_from_values(values, rules.currency, rules.timezone)
        assert parsed.errors == {}, offer.id
        assert parsed.offer == offer, offer.id


def test_form_values_read_as_the_message_wants():
    values = {
        "kind": "spend_tiers",
        "id": "x",
        "scope.all": "on",
        "conditions.weekdays": ["6", "7"],
        "conditions.starts_at": "2026-12-01T09:00",
        "funding.funded_share_bps": "12.5",
        "spend_tiers.steps[0].threshold_minor": "",
        "spend_tiers.steps[1].threshold_minor": "100",
        "spend_tiers.steps[1].amount_minor": "10.5",
        "spend_tiers.steps[2].threshold_minor": "1e3",
    }
    parsed = F.offer_from_values(values, "CNY", "Asia/Shanghai")
    o = parsed.offer
    assert list(o.conditions.weekdays) == [6, 7]
    assert o.conditions.starts_at.ToDatetime(UTC) == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert o.funding.funded_share_bps == 1250
    assert o.spend_tiers.steps[0].threshold_minor == 10000
    assert o.spend_tiers.steps[0].amount_minor == 1050
    assert parsed.errors == {"spend_tiers.steps[2].threshold_minor": "must be a number, e.g. 12.50"}
    # a problem of the message's steps[0] is shown at the form's row 1
    names = {"spend_tiers.steps[1].amount_minor", "spend_tiers.steps"}
    assert (
        F.place("spend_tiers.steps[0].amount_minor", parsed, names)
        == "spend_tiers.steps[1].amount_minor"
    )
    assert F.place("spend_tiers.steps[0].percent_bps", parsed, names) == "spend_tiers.steps"
    assert F.place("conditions.tiers[0]", parsed, {"conditions.tiers"}) == "conditions.tiers"
    draft, index = F.merge(rules_pb2.RuleSet(offers=[rules_pb2.Offer(id="x")]), o, "x")
    assert index == 0 and len(draft.offers) == 1


def test_yaml_helpers():
    rules = load_rules(EXAMPLES / "watsons.yaml")
    text = to_yaml(rules)
    assert "point_value_minor: 10\n" in text  # numbers, not quoted strings
    from engine.pricing.rules import parse_rules

    assert parse_rules(text) == rules
    lines = text.splitlines()
    at = locate(text, "offers[1].buy_x_get_y.percent_bps")
    assert at is not None and lines[at - 1].strip() == "percent_bps: 10000"
    assert lines[locate(text, "offers[1].reward") - 1].strip() == "- id: cola-3for2"  # type: ignore[operator]
    listing = annotate(text, [("offers[1].buy_x_get_y.percent_bps", "bad"), ("nowhere[9]", "x")])
    assert listing.placed == [(at, "offers[1].buy_x_get_y.percent_bps: bad")]
    assert listing.unplaced == [("nowhere[9]", "x")]
    rows = diff_rows("a\nb\nc\n", "a\nB\nc\n")
    assert [(r.kind, r.text) for r in rows] == [
        ("hunk", "@@ -1,3 +1,3 @@"),
        ("same", "a"),
        ("del", "b"),
        ("add", "B"),
        ("same", "c"),
    ]
    assert diff_rows("a\n", "a\n") == []


def test_money_and_percentages():
    assert M.parse_money("29.9", "CNY") == 2990
    assert M.parse_money("1,000", "JPY") == 1000
    assert M.parse_money("1.234", "KWD") == 1234
    with pytest.raises(ValueError):
        M.parse_money("1.234", "CNY")
    with pytest.raises(ValueError):
        M.parse_money("abc", "CNY")
    assert M.money(123456, "CNY") == "CNY 1,234.56"
    assert M.money(-5, "JPY") == "−JPY 5"
    assert (
        M.parse_percent("12.5") == 1250 and M.percent(1250) == "12.5%" and M.percent(2000) == "20%"
    )


@pytest.mark.parametrize("kind", F.KIND_NAMES)
def test_every_reward_kind_has_its_form(served, kind):
    with client(served) as c:
        page = c.get(f"/offers/new?kind={kind}")
        assert page.status_code == 200
        names = {n.split("[")[0] for n in F.REWARD_FIELDS[kind]}
        for name in names:
            assert f'name="{kind}.{name}' in page.text, name
        t = TOKEN.search(page.text)
        assert t is not None
        form = editor_form(op="preview", kind=kind, csrf_token=t.group(1))
        reply = c.post("/offers/editor", data=form)
        assert reply.status_code == 200 and 'id="preview"' in reply.text
