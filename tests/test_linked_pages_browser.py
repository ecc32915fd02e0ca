"""Every page a link in an email opens, in headless Chromium at a phone's width (360 px)
and a desktop's (1280 px): the preference centre (German and English), the unsubscribe
page and its confirmation, and the page of a bad link. None scrolls sideways, no heading
overflows or breaks inside a word, and each is styled by its stylesheet, loaded under the
page's own Content-Security-Policy."""

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
