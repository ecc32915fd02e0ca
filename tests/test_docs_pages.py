"""/docs (Swagger UI) and /redoc work without internet: every script, style and icon the
pages name is served by the server itself, and in headless Chromium with every other
origin blocked the pages render the API."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.conftest import RunningServer, make_settings, start_server

# src="..." / href="..." / url: '...' in the pages FastAPI renders.
REFERENCE = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


@pytest.fixture
async def docs_server(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[RunningServer]:
    path = tmp_path / "tidings.db"
    shutil.copy(sqlite_template, path)
    running = await start_server(make_settings(f"sqlite+aiosqlite:///{path}"))
    try:
        yield running
    finally:
        await running.stop()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_name_only_files_of_the_server_itself(
    docs_server: RunningServer, page: str
) -> None:
    async with docs_server.http() as http:
        html = await http.get(page)
        assert html.status_code == 200
        assert html.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in html.headers["content-security-policy"]
        assert "http://" not in html.text and "https://" not in html.text
        assert not re.search(r"""['"]//""", html.text)  # nor a protocol-relative one
        references = REFERENCE.findall(html.text)
        assert "/openapi.json" in references
        assets = [ref for ref in references if ref != "/openapi.json"]
        assert assets and all(ref.startswith("/docs/assets/") for ref in assets)
        for ref in assets:
            answer = await http.get(ref)
            assert answer.status_code == 200, ref
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert len(answer.content) > 1000
            again = await http.get(ref, headers={"If-None-Match": answer.headers["etag"]})
            assert again.status_code == 304


async def test_an_unknown_docs_asset_is_a_404(docs_server: RunningServer) -> None:
    async with docs_server.http() as http:
        for missing in ("/docs/assets/nope.js", "/docs/assets/..%2F..%2Fapp.py",
                        "/docs/assets/swagger-ui-bundle.js.map"):
            answer = await http.get(missing)
            assert answer.status_code == 404, missing
            assert answer.json()["error"]["code"] == "not_found"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


@pytest.mark.browser
async def test_the_docs_pages_render_with_every_other_origin_blocked(
    docs_server: RunningServer, browser: Any
) -> None:
    context = await browser.new_context()
    elsewhere: list[str] = []

    async def only_the_server(route: Any) -> None:
        if route.request.url.startswith(docs_server.url + "/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_the_server)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    await page.goto(f"{docs_server.url}/docs")
    operation = page.locator(".opblock-summary-path", has_text="/api/notifications").first
    await operation.wait_for(timeout=15000)
    await page.goto(f"{docs_server.url}/redoc")
    await page.get_by_text("Tidings", exact=False).first.wait_for(timeout=15000)
    await page.locator("[data-section-id]").first.wait_for(timeout=15000)
    await context.close()
    assert elsewhere == []
    # The one refusal expected: ReDoc's footer logo, stopped by the page's CSP before any
    # request leaves (the viewer hides the image when it does not load).
    assert [error for error in errors if "cdn.redoc.ly" not in error] == []
