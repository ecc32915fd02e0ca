"""Every page a link in an email opens, in headless Chromium at a phone's width (360 px)
and a desktop's (1280 px): the preference centre (German and English), the unsubscribe
page and its confirmation, and the page of a bad link. None scrolls sideways, no heading
overflows or breaks inside a word, and each is styled by its stylesheet, loaded under the
page's own Content-Security-Policy. A bad link (tampered, cut short, signed under a secret
since rotated, another kind of link's token, a path grown or cut) answers a 400 page in
the browser's language, styled, with no trace of the server's insides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.browser.pages import (
    assert_styled,
    csp_errors,
    layout_problems,
    linked_server,
    open_page,
    styles,
)
from tests.conftest import RunningServer
from tidings.services.preference_centre import link_key, mint_link_token
from tidings.services.unsubscribe import mint_token, signing_key

pytestmark = pytest.mark.browser

# A type id as long as a name may be, with no place to break it.
LONG_TYPE = "quarterlyconsolidatedstatementofaccountsandreceivables"


@pytest.fixture
async def web(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with linked_server(sqlite_template, tmp_path) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


async def pages_of(web: RunningServer) -> dict[str, str]:
    """The URL of each page: German carla and English bob, each with a named type, a
    required one, and one whose id is a single long word."""
    async with web.http("ops", "admin") as ops:
        for path, body in (
            ("billing/invoice", {"name": {"en": "Invoices", "de": "Rechnungen"}}),
            ("security/login", {"name": {"en": "Sign-ins",
                                         "de": "Sicherheitsbenachrichtigungen"},
                                "required": True}),
        ):
            assert (await ops.put(f"/api/admin/types/{path}", json=body)).status_code == 200
    urls = {}
    async with web.http("accounts", "service") as http:
        for user, locale in (("carla", "de"), ("bob", "en")):
            answer = await http.put(f"/api/users/{user}/contact", json={
                "locale": locale, "quiet_hours": {"start": "22:00", "end": "07:00"}})
            assert answer.status_code == 200, answer.text
            for channel, type_ in (("billing", "invoice"), ("security", "login"),
                                   ("reports", LONG_TYPE)):
                created = await http.post("/api/notifications", json={
                    "user_id": user, "channel": channel, "type": type_, "title": "T",
                    "message": "M"})
                assert created.status_code == 201, created.text
            urls[f"preferences {locale}"] = (
                await http.get(f"/api/users/{user}/preference-link")).json()["url"]
            urls[f"unsubscribe {locale}"] = web.services.unsubscribe.link(
                user, "reports", LONG_TYPE)
    urls["bad link"] = urls["preferences en"][:-4]  # cut short
    return urls


@pytest.mark.parametrize("width", [360, 1280])
async def test_every_page_fits_the_window_and_is_styled(
    web: RunningServer, browser: Any, width: int
) -> None:
    for name, url in (await pages_of(web)).items():
        context, page, console = await open_page(
            browser, url, width=width, status=400 if name == "bad link" else 200)
        assert await layout_problems(page) == [], (name, width)
        assert_styled(await styles(page))
        if name.startswith("unsubscribe"):  # and the confirmation after the button
            async with page.expect_navigation():
                await page.locator("button[type=submit]").click()
            assert await layout_problems(page) == [], (name, "confirmation", width)
            assert_styled(await styles(page))
        assert csp_errors(console) == [], (name, console)
        await context.close()


def tampered(token: str) -> str:
    """The token with the first letter of its tag changed (still base64url)."""
    payload, tag = token.split(".")
    return f"{payload}.{'B' if tag[0] == 'A' else 'A'}{tag[1:]}"


def bad_links(web: RunningServer) -> list[str]:
    base = web.settings.public_url
    # Links never expire; what ends every link already sent is a new secret.
    rotated = web.settings.model_copy(update={"signing_secret": "a secret since rotated"})
    preference = mint_link_token(link_key(web.settings), "alice")
    unsubscribe = web.services.unsubscribe.token("alice", "billing", "invoice")
    return [
        f"{base}/preferences/{tampered(preference)}",
        f"{base}/preferences/{preference[:-3]}",
        f"{base}/preferences/{mint_link_token(link_key(rotated), 'alice')}",
        f"{base}/preferences/{unsubscribe}",
        f"{base}/preferences/",
        f"{base}/preferences/{preference}/more",
        f"{base}/unsubscribe/{tampered(unsubscribe)}",
        f"{base}/unsubscribe/{unsubscribe[:-3]}",
        f"{base}/unsubscribe/{mint_token(signing_key(rotated), 'alice', 'billing', 'x')}",
        f"{base}/unsubscribe/{preference}",
        f"{base}/unsubscribe/",
        f"{base}/unsubscribe/{unsubscribe}/more/",
    ]


@pytest.mark.parametrize(("locale", "lang", "title", "says"), [
    ("de-DE", "de", "Ungültiger Link", "ist ungültig. Vielleicht wurde er verändert"),
    ("en-US", "en", "Invalid link", "is not valid. It may have been altered"),
])
async def test_a_bad_link_answers_a_styled_400_page_in_the_browsers_language(
    web: RunningServer, browser: Any, locale: str, lang: str, title: str, says: str
) -> None:
    from playwright.async_api import expect

    links = bad_links(web)
    context, page, console = await open_page(browser, links[0], locale=locale, status=400)
    for url in links:
        response = await page.goto(url)
        assert response is not None and response.status == 400, url
        assert await page.evaluate("document.documentElement.lang") == lang, url
        await expect(page.locator("h1")).to_have_text(title)
        await expect(page.get_by_role("alert")).to_contain_text(says)
        assert_styled(await styles(page))
        assert csp_errors(console) == [], (url, console)
        html = await page.content()
        assert "Traceback" not in html and "File " not in html and "Error" not in html
        # The POST of a form or of a mail client's one-click request: the same page.
        async with web.http() as http:
            posted = await http.post(url, data={"List-Unsubscribe": "One-Click"},
                                     headers={"Accept-Language": locale})
        assert posted.status_code == 400, url
        assert posted.headers["content-type"].startswith("text/html")
        assert f'<html lang="{lang}">' in posted.text and says in posted.text
    await context.close()
    # Nothing any of them did was stored.
    async with web.http("alice") as alice:
        assert (await alice.get("/api/notifications/preferences")).json()["items"] == []
