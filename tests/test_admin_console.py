"""What the operator console (/admin) shows, in headless Chromium against a real server:
charts with a labelled y axis (their unit) and time ticks, drawn before any data; the
connections view listing who is connected; one format for every time shown; no word
broken inside at 1280 and 800 pixels; the templates area's labels above their fields."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, serve_on
from tests.conftest import EVENT_TIMEOUT, Client, RunningServer, free_port, make_settings
from tests.test_web_pages import Page, create, expect, wait_for_status

pytestmark = pytest.mark.browser

WAIT_MS = 8000
UNITS = {"connections": "connections", "creates": "notifications/s",
         "deliveries": "deliveries/s", "queue": "deliveries waiting"}
ONE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
# Anything in the page's text that looks like a date or a clock time.
DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?"
                       r"(?: UTC|Z|[+-]\d{2}:?\d{2})?"
                       r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{1,2}:\d{2}:\d{2}\s?[AP]M\b")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def console(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server whose emails go to a closed port: one try, then a dead letter with an
    error and a history to show. Team feeds may name loopback (never posted to here)."""
    path = tmp_path / "tidings.db"
    shutil.copy(sqlite_template, path)
    settings = make_settings(
        f"sqlite+aiosqlite:///{path}", smtp_host="127.0.0.1", smtp_port=free_port(),
        smtp_starttls=False, email_from="tidings@example.test", retry_delays_ms=[50],
        max_retry_attempts=1, allow_private_targets=True)
    running = await serve_on(settings, free_port())
    try:
        yield running
    finally:
        await running.stop()


async def open_console(browser: Any, server: RunningServer, *, every: int = 1,
                       width: int = 1280) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = Page(await context.new_page())
    page.page.set_default_timeout(WAIT_MS)
    await page.page.goto(f"{server.url}/admin?every={every}#token={server.token('ops', 'admin')}")
    await expect(page.page.locator("#console")).to_be_visible()
    return page


async def test_every_chart_has_its_unit_on_the_y_axis_and_time_ticks_even_without_data(
    console: RunningServer, browser: Any,
) -> None:
    # One sample a minute: the rate charts have no second sample, so no data, yet.
    page = await open_console(browser, console, every=60)
    await expect(page.page.locator("#metrics-status")).to_contain_text("Last sample")
    for chart, unit in UNITS.items():
        plot = page.page.locator(f"[data-chart={chart}] svg")
        await expect(plot.locator("text.y-title")).to_have_text(unit)
        await expect(plot.locator("text.x-title")).to_have_text("time (UTC)")
        await expect(page.page.locator(f"[data-chart={chart}] .unit")).to_have_text(unit)
        ticks = await plot.locator(".x-axis text.tick").all_text_contents()
        assert len(ticks) >= 2 and all(re.fullmatch(r"\d\d:\d\d(:\d\d)?", t) for t in ticks), ticks
        values = await plot.locator(".y-axis text.tick").all_text_contents()
        assert len(values) >= 2 and values[0] == "0", values
    creates = page.page.locator("[data-chart=creates] svg")
    await expect(creates.locator("text.empty")).to_have_text("waiting for data")
    assert await creates.locator("polyline").count() == 0
    assert "no data yet" in (await creates.get_attribute("aria-label") or "")
    # The connections chart has its one point: a gauge needs no second sample.
    await expect(page.page.locator("[data-chart=connections] svg polyline")).to_have_count(1)
    assert page.errors == [] and page.refused == []


async def connected(server: RunningServer, user: str) -> Client:
    client = Client()
    await client.sio.connect(server.url, auth={"token": server.token(user)},
                             transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
    await client.next("connectionStatus")
    return client


async def test_the_connections_view_lists_who_is_connected(
    console: RunningServer, browser: Any,
) -> None:
    clients = [await connected(console, "alice"), await connected(console, "alice"),
               await connected(console, "bob")]
    try:
        page = await open_console(browser, console)
        node = page.page.locator("#connections .node")
        await expect(node).to_have_count(1)
        await expect(node.locator("caption")).to_contain_text("3 sockets, 2 users")
        alice = node.locator("tr[data-user='alice']")
        await expect(alice.locator("td.num")).to_have_text("2")
        await expect(node.locator("tr[data-user='bob'] td.num")).to_have_text("1")
        status = page.page.locator("#connections-status")
        await expect(status).to_contain_text("3 sockets on 1 node")
        await clients.pop().close()  # bob leaves: gone at the next sample
        await expect(node.locator("tr[data-user='bob']")).to_have_count(0)
        await expect(node.locator("caption")).to_contain_text("2 sockets, 1 user")
        assert page.errors == [] and page.refused == []
    finally:
        for client in clients:
            await client.close()


async def seed(server: RunningServer) -> int:
    """A dead email letter (with its error and history), a template, a type and a team
    feed: every part of the console that shows a time has one. The dead letter's id."""
    async with server.http("accounts", "service") as http:
        await http.put("/api/users/alice/contact", json={"email": "alice@example.test"})
    await create(server, media=["email", "in_app"])
    dead = await wait_for_status(server, "dead")
    async with server.http("ops", "admin") as http:
        for call in (
            http.post("/api/admin/templates", json={
                "key": "invoice-ready", "default_locale": "en",
                "variants": {"en": {"title": "Invoice {{ number }}", "message": "Ready"}}}),
            http.put("/api/admin/types/billing/invoice", json={
                "name": {"en": "Invoices", "de": "Rechnungen"}, "default_media": ["email"]}),
            http.put("/api/admin/channels/ops-alerts/feed", json={
                "kind": "slack", "webhook_url": "http://127.0.0.1:9/services/T0/B0/secret"}),
        ):
            answer = await call
            assert answer.status_code in (200, 201), answer.text
    return dead


async def show_everything(page: Page, dead: int) -> None:
    await page.page.select_option("#filters select[name=status]", "")
    await page.page.locator("#filters button[type=submit]").click()
    await page.page.locator(f"#deliveries tr[data-id='{dead}'] button.open").click()
    await expect(page.page.locator("#detail table.history tbody tr")).to_have_count(2)
    await expect(page.page.locator("#templates tr[data-template='invoice-ready']")).to_have_count(1)
    await expect(page.page.locator("#feeds tr[data-channel='ops-alerts']")).to_have_count(1)
    await expect(page.page.locator("#types tr[data-type='billing/invoice']")).to_have_count(1)
    await expect(page.page.locator("#connections-status")).to_contain_text("as of")


async def test_every_time_shown_has_one_format_with_its_iso_instant_in_the_title(
    console: RunningServer, browser: Any,
) -> None:
    dead = await seed(console)
    page = await open_console(browser, console)
    await show_everything(page, dead)
    times = await page.page.locator("#console time").evaluate_all(
        "els => els.map(el => [el.textContent, el.dateTime, el.title])")
    assert len(times) >= 8, times  # list, detail (3), history, template, feed, ...
    for text, iso, title in times:
        assert ONE_FORMAT.fullmatch(text), text
        assert title == iso and iso.startswith(text[:10]) and iso.endswith("Z"), (text, iso)
    # Nowhere else in the page does a time appear in another form (the chart ticks are
    # clock times in the SVG, not dates, and are checked by the chart test).
    text = await page.page.locator("#console").evaluate(
        "el => { const c = el.cloneNode(true); c.querySelectorAll('svg').forEach(s => s.remove());"
        " return c.innerText; }")
    found = DATE_LIKE.findall(text)
    assert found and all(ONE_FORMAT.fullmatch(item) for item in found), found
    assert page.errors == []


# Every word of every text in the console's table cells (ids and tokens aside, which may
# break anywhere) lies on one line: [cell text, broken word] for those that do not.
BROKEN_WORDS = """root => {
  const broken = [];
  const range = document.createRange();
  for (const cell of root.querySelectorAll("td, th, caption")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest(".token")) continue;
      for (const match of node.data.matchAll(/\\S+/g)) {
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push([cell.textContent, match[0]]);
      }
    }
  }
  return broken;
}"""


@pytest.mark.parametrize("width", [1280, 800])
async def test_no_word_is_broken_inside_a_table_cell(
    console: RunningServer, browser: Any, width: int,
) -> None:
    dead = await seed(console)
    client = await connected(console, "a-user-id-that-is-rather-long-for-a-narrow-column")
    try:
        page = await open_console(browser, console, width=width)
        await show_everything(page, dead)
        await expect(page.page.locator("#connections tr[data-user]")).to_have_count(1)
        assert await page.page.locator("#console").evaluate(BROKEN_WORDS) == []
        # The page itself never scrolls sideways (a wide table scrolls in its own box), and
        # the deliveries fit without scrolling even at 800 pixels.
        assert await page.page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        assert await page.page.locator("table.deliveries").evaluate(
            "el => el.parentElement.scrollWidth <= el.parentElement.clientWidth")
    finally:
        await client.close()


async def box(page: Page, selector: str) -> dict[str, float]:
    found = await page.page.locator(selector).bounding_box()
    assert found is not None, selector
    return dict(found)


@pytest.mark.parametrize("width", [1280, 800])
async def test_the_templates_area_lines_up(
    console: RunningServer, browser: Any, width: int,
) -> None:
    page = await open_console(browser, console, width=width)
    await expect(page.page.locator("#templates-status")).to_have_text("No templates yet.")
    area = "#templates-h ~ .columns"
    headings = [await box(page, f"{area} > div:nth-child({n}) > h3") for n in (1, 2)]
    if width == 1280:  # two columns side by side, their headings on one line
        assert headings[0]["y"] == headings[1]["y"] and headings[0]["x"] < headings[1]["x"]
    for name in ("key", "locale", "variables"):
        field = await box(page, f"#preview [name={name}]")
        label = await page.page.locator(f"#preview [name={name}]").evaluate(
            "el => { const r = el.closest('label').getBoundingClientRect();"
            " return {x: r.x, y: r.y}; }")
        assert label["x"] == field["x"] and label["y"] < field["y"], name  # label above
    key, locale = await box(page, "#preview [name=key]"), await box(page, "#preview [name=locale]")
    variables = await box(page, "#preview [name=variables]")
    assert key["y"] == locale["y"] and key["height"] == locale["height"]
    assert key["x"] == variables["x"]
    assert abs((locale["x"] + locale["width"]) - (variables["x"] + variables["width"])) < 1
    assert page.errors == []
