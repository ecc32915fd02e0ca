"""Headless Chromium for the web page tests: Debian's `chromium` driven by Playwright's
Python API (never a downloaded browser). Without /usr/bin/chromium the tests skip, except
under CI=true where a missing browser is a failure."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn

from tests.conftest import RunningServer
from tidings.app import create_app
from tidings.config.settings import Settings
from tidings.container import build_services
from tidings.server import bind_sockets, uvicorn_config
from tidings.services.tokens import TokenService

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]


def require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing (required under CI=true: apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A launched headless browser, closed on exit."""
    require_chromium()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("playwright is not installed (dev extra)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def serve_on(settings: Settings, port: int) -> RunningServer:
    """A real server on a chosen loopback port (a restart keeps its clients' URL)."""
    services = build_services(settings)
    config = uvicorn_config(settings)
    config.app = create_app(settings, services)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=bind_sockets("127.0.0.1", port)))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return RunningServer(f"http://127.0.0.1:{port}", settings, services,
                         TokenService(settings), server, task)
