"""The console's Programme and Offer pages in a real browser (Debian's chromium, Playwright):
create an offer in the form, see the preview price a basket, publish it, see a gRPC Evaluate
apply it, roll back, validate a bad YAML and see the problem at its line, sign in when the
server has keys, and a POST without the CSRF token refused. Screenshots of each page go to
tests/artifacts/."""

from __future__ import annotations

import re

from tests import browser as shared
from tests.browser import DEMO_LOCAL, ServedConsole, new_page, shoot

# the shared fixtures (tests/browser.py), by assignment: a server per module, one browser
browser, page = shared.browser, shared.page
console_server, keyed_console_server = shared.console_server, shared.keyed_console_server


def applied(served: ServedConsole, sku: str, qty: int, price: int) -> dict[str, int]:
    """Offer id -> discount of a gRPC Evaluate of one line."""
    reply = served.evaluate([(sku, qty, price)])
    return {o.offer_id: o.discount_minor for o in reply.offers}


def current_version(page) -> int:
    page.goto("/programme")
    row = page.locator("#versions tr.highlight")
    return int(row.get_attribute("data-version"))


def test_create_preview_publish_evaluate_and_roll_back(page, console_server):
    start = current_version(page)
    assert "console-rice-5" not in applied(console_server, "RICE-5KG", 1, 4500)

    page.goto("/offers/new")
    shoot(page, "offer-editor-new")
    page.select_option("#f-kind", "amount_off")  # htmx swaps in the kind's fields
    page.locator("#f-amount_off-amount_minor").wait_for()
    page.fill("#f-id", "console-rice-5")
    page.fill("#f-name", "5 yuan off rice")
    page.fill("#f-amount_off-amount_minor", "5.00")
    page.uncheck("#f-scope-all")
    page.fill("#f-scope-skus", "RICE-5KG")
    page.fill("#f-basket-lines-0-sku", "RICE-5KG")
    page.fill("#f-basket-lines-0-price", "45.00")
    page.fill("#f-basket-at", DEMO_LOCAL)
    page.fill("#f-note", "rice promotion from the browser test")
    page.get_by_role("button", name="Preview").click()

    status = page.locator("#draft-status")
    status.filter(has_text="applies: saves CNY 5.00").wait_for()
    lines = page.locator("#preview-lines")
    assert "console-rice-5 −CNY 5.00" in " ".join(lines.inner_text().split())
    # the spend ladder explains itself: 40.00 + 50.00 of 100.00
    assert "spend threshold not reached" in page.locator("#preview-not-applied").inner_text()
    assert page.locator("#preview-payable").inner_text() == "CNY 90.00"
    shoot(page, "offer-editor-preview")

    page.get_by_role("button", name="Publish as a new version").click()
    page.wait_for_url(re.compile(r"/offers\?saved=console-rice-5"))
    assert f"version {start + 1} is published" in page.locator(".notice").inner_text()
    shoot(page, "offers")
    assert applied(console_server, "RICE-5KG", 1, 4500)["console-rice-5"] == 500

    page.goto(f"/programme/diff?old={start}&new={start + 1}")
    added = page.locator("#diff tr.add").all_inner_texts()
    assert any("- id: console-rice-5" in row for row in added), added
    assert not page.locator("#diff tr.del").count()
    shoot(page, "programme-diff")

    page.goto("/programme")
    assert "rice promotion from the browser test" in page.locator("#versions").inner_text()
    shoot(page, "programme")
    page.get_by_role("button", name=f"Make version {start} current (roll back)").click()
    page.get_by_text(f"Version {start} is current again").wait_for()
    assert current_version(page) == start
    assert "console-rice-5" not in applied(console_server, "RICE-5KG", 1, 4500)


def test_a_bad_yaml_shows_its_problem_at_its_line(page):
    page.goto("/programme")
    text = page.locator("#rules-yaml").input_value()
    assert "percent_bps: 2000" in text
    bad = text.replace("percent_bps: 2000", "percent_bps: 20000", 1)
    line = bad.splitlines().index("    percent_bps: 20000") + 1
    page.fill("#rules-yaml", bad)
    page.get_by_role("button", name="Validate").click()
    problems = page.locator("#problems")
    problems.wait_for()
    assert f"Line {line}" in problems.inner_text()
    assert "offers[0].percent_off.percent_bps" in problems.inner_text()
    at = page.locator(f'#problem-lines td.msg[data-line="{line}"]')
    assert "must be at most 10000 (got 20000)" in at.inner_text()
    assert page.locator("#rules-yaml").get_attribute("aria-invalid") == "true"
    shoot(page, "programme-validate")


def test_the_offer_editor_shows_a_problem_next_to_its_field(page, console_server):
    version = current_version(page)
    page.goto("/offers/cola-3for2/edit")
    page.locator("#draft-status").wait_for()
    page.fill("#f-buy_x_get_y-buy", "0")
    page.get_by_role("button", name="Publish as a new version").click()
    field = page.locator("#f-buy_x_get_y-buy")
    field.wait_for()
    assert field.get_attribute("aria-invalid") == "true"
    error = page.locator("#f-buy_x_get_y-buy-error")
    assert "must be greater than 0 (got 0)" in error.inner_text()
    assert field.get_attribute("aria-describedby") == "f-buy_x_get_y-buy-error"
    shoot(page, "offer-editor-error")
    assert current_version(page) == version  # nothing published


def test_sign_in_is_required_when_the_server_has_keys(browser, keyed_console_server):
    page = new_page(browser, keyed_console_server)
    try:
        page.goto("/offers")
        page.wait_for_url(re.compile(r"/login\?next=%2Foffers"))
        page.fill("#api-key", "k-check")
        page.get_by_role("button", name="Sign in").click()
        assert (
            "role (checkout) cannot use the console" in page.locator("#api-key-error").inner_text()
        )
        shoot(page, "login")
        page.fill("#api-key", "k-mkt")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/offers$"))
        assert "Signed in (marketing)" in page.locator(".logout").inner_text()
        cookie = next(c for c in page.context.cookies() if c["name"] == "loyalty_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "k-mkt" not in cookie["value"]
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/login"))
    finally:
        page.context.close()


def test_a_post_without_the_csrf_token_is_refused(page, console_server):
    page.goto("/programme")
    # the session cookie is there, the token is not: refused, and nothing changes
    reply = page.request.post(
        "/programme/activate", form={"version": "1"}, max_redirects=0, fail_on_status_code=False
    )
    assert reply.status == 403
    assert "Form refused" in reply.text()
