"""Checks shared by the browser tests of the pages a link in an email opens (the preference
centre, unsubscribe, their error pages): what a person sees, measured in the page."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.browser import serve_on
from tests.conftest import RunningServer, free_port, make_settings

WAIT_MS = 8000
MAX_TABS = 40  # more focus stops than any of these pages has: a loop that cannot run away

# Every problem the layout shows: a page wider than the window (a horizontal scroll bar),
# and each heading that overflows its box or has a word split over two lines (a word's
# range then has client rects on more than one line). Headings hidden from sight (a table
# head clipped to a pixel for screen readers on narrow screens) are not looked at.
_LAYOUT = """() => {
  const unseen = el => {
    for (let e = el; e; e = e.parentElement) {
      const style = getComputedStyle(e);
      if (style.display === "none" || style.clipPath !== "none") return true;
    }
    return false;
  };
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    found.push(`page: scrollWidth ${root.scrollWidth} > clientWidth ${root.clientWidth}`);
  }
  for (const el of document.querySelectorAll("h1, h2, caption, thead th, .brand")) {
    if (unseen(el)) continue;
    if (el.scrollWidth > el.clientWidth) {
      found.push(`${el.tagName} "${el.textContent}": ${el.scrollWidth} > ${el.clientWidth} wide`);
    }
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (lines.size > 1) found.push(`${el.tagName}: "${match[0]}" over ${lines.size} lines`);
      }
    }
  }
  return found;
}"""


async def layout_problems(page: Any) -> list[str]:
    """What is wrong with the layout as rendered now (empty when nothing is)."""
    return list(await page.evaluate(_LAYOUT))


async def styles(page: Any) -> dict[str, str]:
    """Computed styles that differ from a browser's defaults once the stylesheet applies."""
    return dict(await page.evaluate("""() => ({
      fontFamily: getComputedStyle(document.body).fontFamily,
      mainMaxWidth: getComputedStyle(document.querySelector("main")).maxWidth,
      cardBackground: getComputedStyle(document.querySelector(".card")).backgroundColor,
    })"""))


def assert_styled(seen: dict[str, str]) -> None:
    """The page's stylesheet applied (unstyled, Chromium shows Times New Roman across the
    whole window on a transparent background)."""
    assert "Times New Roman" not in seen["fontFamily"], seen
    assert "system-ui" in seen["fontFamily"], seen
    assert seen["mainMaxWidth"] == "736px", seen  # main.narrow: 46rem
    assert seen["cardBackground"] == "rgb(255, 255, 255)", seen


def csp_errors(console: list[str]) -> list[str]:
    """The console lines in which the Content-Security-Policy refused something."""
    return [line for line in console
            if "Content Security Policy" in line or "Refused to" in line]


async def tab_to(page: Any, selector: str) -> list[str]:
    """Press Tab until the element matching `selector` has the focus; answers the focus
    stops passed on the way (tag, type and id of each)."""
    passed: list[str] = []
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return passed
        passed.append(await page.evaluate(
            "() => { const e = document.activeElement;"
            " return `${e.tagName.toLowerCase()}[type=${e.type ?? ''}]#${e.id}`; }"))
    raise AssertionError(f"Tab never reached {selector}; passed {passed}")


@asynccontextmanager
async def linked_server(sqlite_template: Path, folder: Path) -> AsyncIterator[RunningServer]:
    """A server on SQLite whose PUBLIC_URL is itself, so that the links it makes and the
    303 after a POST lead back to it."""
    path = folder / "tidings.db"
    shutil.copy(sqlite_template, path)
    port = free_port()
    settings = make_settings(f"sqlite+aiosqlite:///{path}",
                             public_url=f"http://127.0.0.1:{port}")
    running = await serve_on(settings, port)
    try:
        yield running
    finally:
        await running.stop()


async def open_page(browser: Any, url: str, width: int = 900, locale: str = "en-US",
                    status: int = 200) -> tuple[Any, Any, list[str]]:
    """A new context (its own window width and browser language) on `url`, which must
    answer `status`: the context, the page, and the console's lines (`type: text`) as they
    come."""
    context = await browser.new_context(viewport={"width": width, "height": 700},
                                        locale=locale)
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    response = await page.goto(url)
    assert response is not None and response.status == status, (url, response)
    return context, page, console
