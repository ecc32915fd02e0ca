"""The preference centre in headless Chromium: opened from its signed link, used with the
keyboard alone (Tab to the email switch, Space, Tab to the button, Enter), and the choice
stored; the page loads its stylesheet under its own Content-Security-Policy."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, serve_on
from tests.conftest import RunningServer, free_port, make_settings

pytestmark = pytest.mark.browser

WAIT_MS = 8000
MAX_TABS = 40  # more focus stops than the page has: a loop that cannot run away


@pytest.fixture
async def web(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[RunningServer]:
    path = tmp_path / "tidings.db"
    shutil.copy(sqlite_template, path)
    port = free_port()
    # PUBLIC_URL is this server, so that the link and the 303 after a POST lead back here.
    settings = make_settings(f"sqlite+aiosqlite:///{path}",
                             public_url=f"http://127.0.0.1:{port}")
    running = await serve_on(settings, port)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


async def tab_to(page: Any, selector: str) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


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

    context = await browser.new_context(viewport={"width": 900, "height": 700})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(url)
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
    async with web.http("alice") as alice:
        items = (await alice.get("/api/notifications/preferences")).json()["items"]
    assert items == [{"channel": "billing", "notification_type": "invoice",
                      "email_enabled": False, "push_enabled": True, "in_app_enabled": True,
                      "sms_enabled": True, "chat_enabled": True}]
    # The stylesheet applied (CSP allows 'self'): the card has its white background.
    background = await page.locator(".card").evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(255, 255, 255)"
    assert errors == []
    await page.screenshot(path=str(Path(os.environ.get("TIDINGS_SHOTS", tmp_path))
                                   / "preferences.png"), full_page=True)
    await context.close()
