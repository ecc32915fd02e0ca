"""The one-click unsubscribe link of an email, opened in headless Chromium: the page shows
what it would stop, in the contact's language (English and German), and changes nothing;
Tab reaches its button and Enter posts it; the confirmation says it is done, and the
opt-out is stored (email off for that channel and type only). Doing it again, from the
page or as a mail client's one-click POST, answers the same and changes nothing more. Both
pages are styled by their stylesheet, loaded under the page's Content-Security-Policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.browser.pages import assert_styled, linked_server, open_page, styles, tab_to
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

WORDS = {
    "en": ("Unsubscribe", "Stop emails about billing / invoice? In-app and push "
           "notifications stay as they are.",
           "Unsubscribed", "You will no longer get emails about billing / invoice."),
    "de": ("Abmelden", "Keine E-Mails mehr zu billing / invoice? Benachrichtigungen in der "
           "App und per Push bleiben, wie sie sind.",
           "Abgemeldet", "Sie erhalten keine E-Mails mehr zu billing / invoice."),
}
OPTED_OUT = {("billing", "invoice"): {
    "email_enabled": False, "push_enabled": True, "in_app_enabled": True,
    "sms_enabled": True, "chat_enabled": True}}


@pytest.fixture
async def web(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with linked_server(sqlite_template, tmp_path) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


async def stored(web: RunningServer) -> dict[tuple[str, str], dict[str, bool]]:
    async with web.http("alice") as http:
        items = (await http.get("/api/notifications/preferences")).json()["items"]
    return {(row.pop("channel"), row.pop("notification_type")): row for row in items}


async def press_the_button(page: Any) -> None:
    """Tab to the page's one button and press Enter: the POST, and the page it answers."""
    await tab_to(page, "button[type=submit]")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")


@pytest.mark.parametrize("language", ["en", "de"])
async def test_unsubscribing_with_the_keyboard_in_the_contacts_language(
    web: RunningServer, browser: Any, language: str
) -> None:
    from playwright.async_api import expect

    title, question, done_title, done = WORDS[language]
    async with web.http("accounts", "service") as http:
        answer = await http.put("/api/users/alice/contact", json={"locale": language})
        assert answer.status_code == 200, answer.text
    url = web.services.unsubscribe.link("alice", "billing", "invoice")
    # The browser is English: the page follows the contact's locale, not the browser.
    context, page, console = await open_page(browser, url, locale="en-US")

    assert await page.evaluate("document.documentElement.lang") == language
    assert await page.title() == title
    await expect(page.locator("h1")).to_have_text(title)
    await expect(page.locator(".card p")).to_have_text(question)
    await expect(page.get_by_role("button")).to_have_text(title)
    assert_styled(await styles(page))
    assert await stored(web) == {}  # showing the page changes nothing

    await press_the_button(page)
    assert page.url == url
    assert await page.evaluate("document.documentElement.lang") == language
    await expect(page.locator("h1")).to_have_text(done_title)
    await expect(page.locator(".card p")).to_have_text(done)
    await expect(page.get_by_role("button")).to_have_count(0)
    assert_styled(await styles(page))
    assert await stored(web) == OPTED_OUT

    # Again: back to the page and its button, then as a mail client's one-click POST.
    await page.go_back()
    await expect(page.locator("h1")).to_have_text(title)
    await press_the_button(page)
    await expect(page.locator("h1")).to_have_text(done_title)
    async with web.http() as mail_client:
        again = await mail_client.post(url, content=b"List-Unsubscribe=One-Click", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    assert again.status_code == 200 and done_title in again.text
    assert await stored(web) == OPTED_OUT
    assert console == []  # no CSP refusal, no failed load, nothing
    await context.close()
