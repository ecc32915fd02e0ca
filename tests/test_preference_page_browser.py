"""The preference centre in headless Chromium, as a person meets it from an email: opened
from its signed link and used with the keyboard alone (Tab to the email switch, Space, Tab
to the button, Enter), the choice stored; the page in German with no English left, its
quiet hours and labels; a required type shown on and locked, which no form turns off.
Every page loads its stylesheet under its own Content-Security-Policy (the layout at a
phone's width and a desktop's: tests/test_linked_pages_browser.py)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

import tidings
from tests.browser import chromium
from tests.browser.pages import assert_styled, linked_server, open_page, styles, tab_to
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

GERMAN_PO = Path(tidings.__file__).parent / "locale" / "de" / "LC_MESSAGES" / "tidings.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


@pytest.fixture
async def web(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with linked_server(sqlite_template, tmp_path) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


async def setup_types(web: RunningServer) -> None:
    """Two catalogue types with English and German names, sign-ins required."""
    async with web.http("ops", "admin") as ops:
        for path, body in (
            ("billing/invoice", {"name": {"en": "Invoices", "de": "Rechnungen"}}),
            ("security/login", {"name": {"en": "Sign-ins", "de": "Anmeldungen"},
                                "required": True}),
        ):
            answer = await ops.put(f"/api/admin/types/{path}", json=body)
            assert answer.status_code == 200, answer.text


async def link_for(web: RunningServer, user: str, **contact: Any) -> str:
    """The user's preference link, after a notification of each type and the contact."""
    async with web.http("accounts", "service") as http:
        if contact:
            answer = await http.put(f"/api/users/{user}/contact", json=contact)
            assert answer.status_code == 200, answer.text
        for channel, type_ in (("billing", "invoice"), ("security", "login")):
            created = await http.post("/api/notifications", json={
                "user_id": user, "channel": channel, "type": type_, "title": "T",
                "message": "M"})
            assert created.status_code == 201, created.text
        return str((await http.get(f"/api/users/{user}/preference-link")).json()["url"])


async def stored(web: RunningServer, user: str) -> dict[tuple[str, str], dict[str, bool]]:
    async with web.http(user) as http:
        items = (await http.get("/api/notifications/preferences")).json()["items"]
    return {(row.pop("channel"), row.pop("notification_type")): row for row in items}


def english_fragments() -> list[str]:
    """The English texts the German catalogue translates (each part between placeholders
    that is a word or more), to be absent from a German page."""
    with GERMAN_PO.open("rb") as source:
        catalogue = read_po(source, locale="de")
    found = set()
    for message in catalogue:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        texts = message.string if isinstance(message.string, tuple) else (message.string,)
        if not message.id or ids == texts:
            continue  # the same word in both languages (Push, SMS, Chat)
        for text in ids:
            for part in PLACEHOLDER.split(text):
                part = part.strip(" ?.,;:()")
                if len(part) >= 3:
                    found.add(part)
    return sorted(found)


async def test_email_switched_off_with_the_keyboard_is_stored(
    web: RunningServer, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    async with web.http("billing", "service") as http:
        created = await http.post("/api/notifications", json={
            "user_id": "alice", "channel": "billing", "type": "invoice", "title": "Invoice",
            "message": "Ready"})
        assert created.status_code == 201
        url = (await http.get("/api/users/alice/preference-link")).json()["url"]

    context, page, console = await open_page(browser, url)
    await expect(page.locator("h1")).to_have_text("Your notification preferences")
    email = page.get_by_label("Email for invoice")
    await expect(email).to_be_checked()

    await tab_to(page, "#email-0")
    await page.keyboard.press("Space")
    await expect(email).not_to_be_checked()
    await tab_to(page, "button[type=submit]")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")

    assert page.url == url  # 303 back to the page
    await expect(page.get_by_label("Email for invoice")).not_to_be_checked()
    await expect(page.get_by_label("In-app for invoice")).to_be_checked()
    assert await stored(web, "alice") == {("billing", "invoice"): {
        "email_enabled": False, "push_enabled": True, "in_app_enabled": True,
        "sms_enabled": True, "chat_enabled": True}}
    # The stylesheet applied (CSP allows 'self'): the card has its white background.
    assert_styled(await styles(page))
    assert console == []
    await page.screenshot(path=str(Path(os.environ.get("TIDINGS_SHOTS", tmp_path))
                                   / "preferences.png"), full_page=True)
    await context.close()


async def test_the_german_page_shows_german_only(web: RunningServer, browser: Any) -> None:
    from playwright.async_api import expect

    await setup_types(web)
    async with web.http("carla") as carla:  # two lines of the user's own: the defaults
        for channel, type_ in (("*", "*"), ("orders", "*")):
            answer = await carla.put("/api/notifications/preferences", json={
                "channel": channel, "notification_type": type_, "sms_enabled": False})
            assert answer.status_code == 200, answer.text
    url = await link_for(web, "carla", locale="de",
                         quiet_hours={"start": "22:00", "end": "07:00"})
    context, page, console = await open_page(browser, url, locale="de-DE")

    assert await page.evaluate("document.documentElement.lang") == "de"
    title = "Ihre Einstellungen für Benachrichtigungen"
    assert await page.title() == title
    await expect(page.locator("h1")).to_have_text(title)
    table = page.locator("table.prefs")
    await expect(table.locator("caption")).to_have_text(
        "Wie jede Art von Benachrichtigung Sie erreicht")
    await expect(table.locator("thead th")).to_have_text(
        ["Art der Benachrichtigung", "In der App", "E-Mail", "Push", "SMS", "Chat"])
    await expect(table.locator("tbody th")).to_contain_text(
        ["Alles andere", "Rechnungen", "Alle Arten in orders", "Anmeldungen"])
    # Each switch is named in German for the line's German name; what is stored shows.
    await expect(page.get_by_label("E-Mail für Rechnungen")).to_be_checked()
    await expect(page.get_by_label("SMS für Alle Arten in orders")).not_to_be_checked()
    await expect(page.get_by_label("In der App für Alles andere")).to_be_checked()
    await expect(page.get_by_text("Erforderlich: wird immer gesendet")).to_be_visible()
    await expect(page.get_by_role("group", name="Ruhezeit")).to_be_visible()
    await expect(page.get_by_label("Von")).to_have_value("22:00")
    await expect(page.get_by_label("Bis")).to_have_value("07:00")
    await expect(page.get_by_role("button")).to_have_text("Speichern")

    shown = await page.evaluate("document.title + '\\n' + document.body.innerText")
    leftovers = [text for text in [*english_fragments(), "Invoices", "Sign-ins"]
                 if re.search(rf"(?<!\w){re.escape(text)}(?!\w)", shown)]
    assert leftovers == [], shown
    assert_styled(await styles(page))
    assert console == []
    await context.close()


async def test_a_required_type_is_locked_and_no_form_turns_it_off(
    web: RunningServer, browser: Any
) -> None:
    from playwright.async_api import expect

    await setup_types(web)
    # An opt-out stored through the API before: stored, but it does not apply to a
    # required type, so the page shows the type's switches on (and locked).
    async with web.http("alice") as alice:
        answer = await alice.put("/api/notifications/preferences", json={
            "channel": "security", "notification_type": "login", "email_enabled": False})
        assert answer.status_code == 200, answer.text
    url = await link_for(web, "alice")
    before = await stored(web, "alice")
    context, page, console = await open_page(browser, url)

    row = page.locator("tbody tr", has_text="Sign-ins")
    await expect(row.get_by_text("Required: always sent")).to_be_visible()
    for medium in ("In-app", "Email", "Push", "SMS", "Chat"):
        switch = page.get_by_label(f"{medium} for Sign-ins")
        await expect(switch).to_be_disabled()
        await expect(switch).to_be_checked()
    # The keyboard passes over the locked switches (the invoice line is line 0).
    passed = await tab_to(page, "button[type=submit]")
    assert [stop for stop in passed if stop.endswith("-1")] == []
    assert "input[type=checkbox]#email-0" in passed

    # A hand-edited form: the locked switches unlocked and switched off, the required
    # line named in the form as the other lines are, and the invoice's email off too.
    await page.evaluate("""() => {
      for (const box of document.querySelectorAll("input[disabled]")) {
        box.disabled = false; box.checked = false;
      }
      const topic = document.createElement("input");
      topic.type = "hidden"; topic.name = "topic"; topic.value = "security/login";
      document.querySelector("form").append(topic);
    }""")
    await page.get_by_label("Email for Invoices").uncheck()
    async with page.expect_navigation():
        await page.get_by_role("button", name="Save").click()

    assert page.url == url
    for medium in ("In-app", "Email", "Push", "SMS", "Chat"):
        await expect(page.get_by_label(f"{medium} for Sign-ins")).to_be_checked()
    await expect(page.get_by_label("Email for Invoices")).not_to_be_checked()
    after = await stored(web, "alice")
    assert after[("security", "login")] == before[("security", "login")]
    assert after[("billing", "invoice")]["email_enabled"] is False
    assert console == []
    await context.close()
