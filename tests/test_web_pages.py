"""The web inbox (/inbox, <tidings-inbox>) and the operator console (/admin) in headless
Chromium against a real server: sign-in, live notifications, tabs kept in step, the
replay of missed notifications after a restart, keyboard use, preferences, and a dead
letter replayed from the console. The docs' screenshots come from scripts of their own
(scripts/screenshot_inbox.py, scripts/screenshot_admin.py), over realistic data."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.browser import chromium, serve_on
from tests.conftest import RunningServer, free_port, make_settings
from tidings.config.settings import Settings
from tidings.realtime.lean import server as lean_server

pytestmark = pytest.mark.browser

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "img"
WAIT_MS = 8000


@pytest.fixture
def db_settings(sqlite_template: Path, tmp_path: Path) -> Settings:
    path = tmp_path / "tidings.db"
    shutil.copy(sqlite_template, path)
    return make_settings(f"sqlite+aiosqlite:///{path}")


@pytest.fixture
async def web(db_settings: Settings) -> AsyncIterator[RunningServer]:
    running = await serve_on(db_settings, free_port())
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


class Page:
    """A browser tab that records console errors (a CSP refusal shows up there) and the
    HTTP answers of 400 or more, by path."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.refused: list[tuple[int, str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"{e} {e.stack}"))
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        # A fetch answered 4xx is logged too; those are checked through `refused`.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.refused.append((response.status, httpx.URL(response.url).path))


async def open_page(browser: Any, url: str) -> Page:
    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    page = Page(await context.new_page())
    page.page.set_default_timeout(WAIT_MS)
    await page.page.goto(url)
    return page


async def open_inbox(browser: Any, server: RunningServer, user: str = "alice") -> Page:
    page = await open_page(browser, f"{server.url}/inbox#token={server.token(user)}")
    await expect(page.page.locator("tidings-inbox .conn")).to_have_text("Live")
    return page


async def create(server: RunningServer, user: str = "alice", **fields: Any) -> dict[str, Any]:
    body = {"user_id": user, "type": "invoice", "title": "Invoice ready",
            "message": "Your invoice is ready", **fields}
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def expect(locator: Any) -> Any:
    from playwright.async_api import expect as playwright_expect
    return playwright_expect(locator)


def item(page: Page, note_id: str) -> Any:
    return page.page.locator(f"tidings-inbox li.item[data-id='{note_id}']")


async def test_pages_and_static_files_have_their_types_caching_and_csp(
    web: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=web.url) as http:
        for path in ("/inbox", "/admin"):
            page = await http.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            csp = page.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp
            assert "unsafe-inline" not in csp and "http" not in csp
            assert page.headers["x-frame-options"] == "DENY"
            assert page.headers["cache-control"] == "no-cache"
            again = await http.get(path, headers={"If-None-Match": page.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
        script = await http.get("/static/tidings-inbox.js")
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["x-content-type-options"] == "nosniff"
        assert script.headers["access-control-allow-origin"] == "*"
        assert "customElements.define" in script.text
        # The embeddable part (element, times and socket client) stays small; Settings is
        # loaded only when opened.
        parts = [await http.get(f"/static/{name}")
                 for name in ("tidings-socket.js", "tidings-time.js")]
        assert len(script.content) + sum(len(part.content) for part in parts) < 34_000
        css = await http.get("/static/tidings.css")
        assert css.headers["content-type"] == "text/css; charset=utf-8"
        for missing in ("/static/nope.js", "/static/inbox.html", "/static/..%2Fapp.py"):
            answer = await http.get(missing)
            assert answer.status_code == 404, missing
            assert answer.json()["error"]["code"] == "not_found"
        openapi = (await http.get("/openapi.json")).json()
        assert "/inbox" not in openapi["paths"]


async def test_sign_in_by_pasting_a_token_and_a_refused_one(
    web: RunningServer, browser: Any
) -> None:
    page = await open_page(browser, f"{web.url}/inbox")
    await page.page.fill("#token", "not-a-token")
    await page.page.click("#sign-in button[type=submit]")
    await expect(page.page.locator("#sign-in-error")).to_contain_text("Sign-in failed")
    await page.page.fill("#token", web.token("alice"))
    await page.page.click("#sign-in button[type=submit]")
    await expect(page.page.locator("tidings-inbox .conn")).to_have_text("Live")
    await expect(page.page.locator("#who")).to_have_text("Signed in as alice")
    # Kept for this tab: a reload signs in again without the form.
    await page.page.reload()
    await expect(page.page.locator("tidings-inbox .conn")).to_have_text("Live")
    assert await page.page.locator("#sign-in").is_hidden()


async def test_live_notification_read_in_one_tab_follows_in_the_other(
    web: RunningServer, browser: Any
) -> None:
    older = await create(web, title="Welcome", message="Glad you are here", channel="news")
    first = await open_inbox(browser, web)
    second = await open_inbox(browser, web)
    await expect(item(first, older["id"])).to_be_visible()
    hostile = "<img src=x onerror=alert(1)> & <b>bold</b>"
    note = await create(web, title="Payment received", message=hostile, channel="billing")
    for page in (first, second):
        await expect(item(page, note["id"])).to_be_visible()
        await expect(page.page).to_have_title("(2) Tidings inbox")
    # Text, never HTML: the message shows literally and no element came out of it.
    assert await item(first, note["id"]).locator(".msg").text_content() == hostile
    assert await item(first, note["id"]).locator("img, b").count() == 0
    live = first.page.locator("tidings-inbox [aria-live=polite]")
    await expect(live).to_have_text("New notification: Payment received")
    # Newest first, and the ack made it delivered.
    ids = await first.page.locator("tidings-inbox li.item").evaluate_all(
        "items => items.map(li => li.dataset.id)")
    assert ids == [note["id"], older["id"]]
    await expect(item(first, note["id"])).to_have_attribute("data-status", "delivered")
    await expect(item(first, older["id"])).to_have_attribute("data-status", "delivered")

    await item(first, note["id"]).locator("button.read").click()
    for page in (first, second):
        await expect(item(page, note["id"])).to_have_attribute("data-status", "read")
        await expect(page.page).to_have_title("(1) Tidings inbox")

    await second.page.locator("tidings-inbox button.mark-all").click()
    await expect(item(first, older["id"])).to_have_attribute("data-status", "read")
    await expect(first.page).to_have_title("Tidings inbox")

    await item(first, older["id"]).locator("button.delete").click()
    for page in (first, second):  # the other tab hears `inboxChanged` and drops it too
        await expect(item(page, older["id"])).to_have_count(0)
        await expect(page.page.locator("tidings-inbox li.item")).to_have_count(1)
    async with web.http("alice") as http:
        assert (await http.get(f"/api/notifications/{older['id']}")).status_code == 404
    assert first.errors == second.errors == [] and first.refused == second.refused == []


async def unseen_count(server: RunningServer, user: str = "alice") -> int:
    async with server.http(user) as http:
        answer = await http.get("/api/notifications", params={"limit": 1})
    return int(answer.json()["unseen_count"])


async def test_the_bell_counts_new_ones_and_opening_it_clears_them_in_every_tab(
    web: RunningServer, browser: Any
) -> None:
    first = await open_inbox(browser, web)
    second = await open_inbox(browser, web)
    for page in (first, second):  # the page opens its list; the bell closes it
        await page.page.locator("tidings-inbox button.bell").click()
        await expect(page.page.locator("tidings-inbox .panel")).to_be_hidden()
    notes = [await create(web, title=f"Invoice #{n} is ready") for n in (1043, 1044)]
    for page in (first, second):
        badge = page.page.locator("tidings-inbox .bell .badge")
        await expect(badge).to_have_text("2")
        await expect(page.page.locator("tidings-inbox button.bell")).to_have_attribute(
            "aria-label", "Notifications, 2 new")
        await expect(page.page.locator("tidings-inbox .toast")).to_contain_text("Invoice #1044")
    assert await unseen_count(web) == 2
    await first.page.locator("tidings-inbox button.bell").click()
    await expect(item(first, notes[1]["id"])).to_be_visible()
    for page in (first, second):  # the other tab hears `inboxChanged` seen
        await expect(page.page.locator("tidings-inbox .bell .badge")).to_be_hidden()
    assert await unseen_count(web) == 0
    # Seen is not read: both are still unread, with their dot.
    await expect(item(first, notes[0]["id"])).to_have_class("item unread")
    await expect(first.page).to_have_title("(2) Tidings inbox")
    assert first.errors == second.errors == [] and first.refused == second.refused == []


async def test_links_actions_and_archive_to_archived_and_back_in_every_tab(
    web: RunningServer, browser: Any
) -> None:
    note = await create(web, title="Invoice #1043 is ready", url="https://shop.example/o/7",
                        actions=[{"label": "Pay now", "url": "https://shop.example/pay/7"},
                                 {"label": "Track <it>", "url": "https://track.example/7"}])
    first = await open_inbox(browser, web)
    second = await open_inbox(browser, web)
    shown = item(first, note["id"])
    assert await shown.locator("a.title").evaluate("a => [a.textContent, a.href, a.rel]") == [
        "Invoice #1043 is ready", "https://shop.example/o/7", "noopener noreferrer"]
    actions = shown.locator(".actions a.action")
    assert await actions.evaluate_all("as => as.map(a => [a.textContent, a.href, a.rel])") == [
        ["Pay now", "https://shop.example/pay/7", "noopener noreferrer"],
        ["Track <it>", "https://track.example/7", "noopener noreferrer"]]
    await expect(first.page.get_by_role("link", name="Pay now")).to_be_visible()
    # Opening it (here the action, in a new tab) marks it read.
    async with first.page.context.expect_page() as opened:
        await actions.first.click()
    await (await opened.value).close()
    await expect(shown).to_have_attribute("data-status", "read")

    await shown.locator("button.archive").click()
    for page in (first, second):  # the other tab hears `inboxChanged` archived
        await expect(item(page, note["id"])).to_have_count(0)
    await first.page.locator("tidings-inbox button.view-archived").click()
    await expect(first.page.locator("tidings-inbox button.view-archived")).to_have_attribute(
        "aria-pressed", "true")
    await expect(item(first, note["id"])).to_be_visible()
    await expect(first.page.locator("tidings-inbox button.mark-all")).to_be_hidden()
    await item(first, note["id"]).locator("button.unarchive").click()
    await expect(item(first, note["id"])).to_have_count(0)
    await expect(first.page.locator("tidings-inbox .empty")).to_have_text("Nothing archived.")
    # Back in the other tab's inbox without a reload, with its archive button again.
    await expect(item(second, note["id"]).locator("button.archive")).to_be_visible()
    async with web.http("alice") as http:
        archived = (await http.get("/api/notifications", params={"archived": "true"})).json()
    assert archived["items"] == []
    assert first.errors == second.errors == [] and first.refused == second.refused == []


async def test_times_read_as_people_say_them_and_no_internal_words_show(
    web: RunningServer, browser: Any
) -> None:
    note = await create(web, title="New sign-in from Firefox on Linux", channel="default")
    context = await browser.new_context(viewport={"width": 1100, "height": 800}, timezone_id="UTC",
                                        locale="en-US")
    # The page's clock is Playwright's, started at this instant: its timers run when told.
    page = Page(await context.new_page())
    page.page.set_default_timeout(WAIT_MS)
    await page.page.clock.install()
    await page.page.goto(f"{web.url}/inbox#token={web.token('alice')}")
    time = item(page, note["id"]).locator("time")
    await expect(time).to_have_text("just now")
    full = await page.page.evaluate(
        "iso => new Date(iso).toLocaleString('en', {dateStyle: 'full', timeStyle: 'long'})",
        note["created_at"])
    await expect(time).to_have_attribute("title", full)
    await expect(time).to_have_attribute("datetime", note["created_at"])
    await page.page.clock.run_for("03:05")  # the minute's refresh rewrites it
    await expect(time).to_have_text("3 minutes ago")
    await page.page.clock.run_for("02:00:00")
    # Past midnight (the context's zone is UTC) it is yesterday's, not two hours old.
    created = datetime.fromisoformat(note["created_at"].replace("Z", "+00:00"))
    later = created + timedelta(hours=2, minutes=5)
    same_day = later.date() == created.date()
    await expect(time).to_have_text("2 hours ago" if same_day else "yesterday")
    # Nothing of the API's vocabulary in front of the user: no channel, status or type.
    text = await page.page.locator("tidings-inbox .panel").evaluate("p => p.innerText")
    for word in ("default", "delivered", "pending", "invoice ·", " · "):
        assert word not in text, word
    # The words follow the language (a German page says "vor 3 Minuten", "gestern").
    said = await page.page.evaluate("""async () => {
      const { relativeTime } = await import("/static/tidings-time.js");
      const now = new Date(2026, 4, 14, 10, 0);
      const day = (y, m, d, hour = 8, minute = 0) => new Date(y, m, d, hour, minute);
      return [[now, "de"], [day(2026, 4, 14, 9, 57), "de"], [day(2026, 4, 13), "de"],
              [day(2026, 4, 13), "en"], [day(2026, 2, 2), "en"], [day(2025, 2, 2), "en"]]
        .map(([when, lang]) => relativeTime(when, now, lang)); }""")
    assert said == ["jetzt", "vor 3 Minuten", "gestern", "yesterday", "Mar 2", "Mar 2, 2025"]
    assert page.errors == [] and page.refused == []


async def test_after_a_restart_the_missed_notifications_arrive_once(
    db_settings: Settings, browser: Any
) -> None:
    port = free_port()
    server = await serve_on(db_settings, port)
    try:
        before = await create(server, title="Before")
        page = await open_inbox(browser, server)
        await expect(item(page, before["id"])).to_be_visible()
        await server.stop()
        await expect(page.page.locator("tidings-inbox .conn")).to_have_text("Reconnecting…")
        # While the page cannot connect, another node on the same database stores two.
        other = await serve_on(db_settings, free_port())
        try:
            missed = [await create(other, title=f"Missed {n}") for n in (1, 2)]
        finally:
            await other.stop()
        server = await serve_on(db_settings, port)
        await expect(page.page.locator("tidings-inbox .conn")).to_have_text("Live", timeout=20000)
        for note in missed:
            await expect(item(page, note["id"])).to_be_visible()
        # Events come in order on the socket: once this live one shows, any duplicate of
        # the replay would have shown before it.
        after = await create(server, title="After")
        await expect(item(page, after["id"])).to_be_visible()
        ids = await page.page.locator("tidings-inbox li.item").evaluate_all(
            "items => items.map(li => li.dataset.id)")
        assert ids == [after["id"], missed[1]["id"], missed[0]["id"], before["id"]]
        await expect(page.page).to_have_title("(4) Tidings inbox")
    finally:
        await server.stop()


async def test_keyboard_moves_through_the_list_and_acts_on_items(
    web: RunningServer, browser: Any
) -> None:
    notes = [await create(web, title=f"Note {n}") for n in range(3)]
    page = await open_inbox(browser, web)
    newest, middle, oldest = (item(page, n["id"]) for n in reversed(notes))
    await expect(oldest).to_be_visible()
    # Tab reaches the list's single tab stop: the newest item.
    await page.page.locator("tidings-inbox button.view-archived").focus()
    await page.page.keyboard.press("Tab")
    await expect(newest).to_be_focused()
    await page.page.keyboard.press("ArrowDown")
    await expect(middle).to_be_focused()
    await page.page.keyboard.press("End")
    await expect(oldest).to_be_focused()
    await page.page.keyboard.press("Home")
    await expect(newest).to_be_focused()
    await page.page.keyboard.press("ArrowDown")
    await page.page.keyboard.press("Enter")
    await expect(middle).to_have_attribute("data-status", "read")
    await page.page.keyboard.press("Delete")
    await expect(middle).to_have_count(0)
    await expect(oldest).to_be_focused()
    # The focus ring is visible (an outline, not removed).
    outline = await oldest.evaluate("li => getComputedStyle(li).outlineStyle")
    assert outline == "solid"
    async with web.http("alice") as http:
        assert (await http.get(f"/api/notifications/{notes[1]['id']}")).status_code == 404
    assert page.errors == []


async def test_infinite_scroll_loads_older_pages(web: RunningServer, browser: Any) -> None:
    async with web.http("billing", "service") as http:
        for n in range(45):
            response = await http.post("/api/notifications", json={
                "user_id": "alice", "type": "bulk", "title": f"Bulk {n}", "message": "m"})
            assert response.status_code == 201
    page = await open_inbox(browser, web)
    items = page.page.locator("tidings-inbox li.item")
    more = page.page.locator("tidings-inbox button.more")
    # Pages of 20; the "Load more" sentinel below them loads the next when scrolled to.
    for shown in (20, 40):
        await expect(items).to_have_count(shown)
        await more.scroll_into_view_if_needed()
    await expect(items).to_have_count(45)
    await expect(page.page.locator("tidings-inbox button.more")).to_be_hidden()
    await expect(page.page).to_have_title("(45) Tidings inbox")


async def test_preferences_and_quiet_hours_are_saved(web: RunningServer, browser: Any) -> None:
    page = await open_inbox(browser, web)
    await page.page.locator("tidings-inbox .bar button[aria-expanded]").click()
    email = page.page.get_by_label("Email for channel *, type *")
    await expect(email).to_be_checked()
    await email.uncheck()
    await expect(page.page.locator("tidings-inbox .notice")).to_have_text("Preference saved.")
    await page.page.get_by_label("Quiet hours start").fill("22:00")
    await page.page.get_by_label("Quiet hours end").fill("07:00")
    await page.page.locator("tidings-inbox .settings form.add button[type=submit]").last.click()
    await expect(page.page.locator("tidings-inbox .notice")).to_have_text("Quiet hours saved.")
    async with web.http("alice") as http:
        prefs = (await http.get("/api/notifications/preferences")).json()["items"]
        contact = (await http.get("/api/users/me/contact")).json()
    assert prefs == [{"channel": "*", "notification_type": "*", "email_enabled": False,
                      "push_enabled": True, "in_app_enabled": True, "sms_enabled": True,
                      "chat_enabled": True}]
    assert contact["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    # Web Push is not configured here: no push button, nothing else under the list (a
    # literal "null" was), and the key is not a refused request. (The contact is: 404
    # until the user has one.)
    devices = page.page.locator("tidings-inbox .settings h3:text('Devices') + div")
    await expect(devices).to_have_text("No devices.")
    await expect(page.page.locator("tidings-inbox button.push")).to_have_count(0)
    assert page.errors == [] and page.refused == [(404, "/api/users/me/contact")]


async def wait_for_status(server: RunningServer, status: str) -> int:
    """The id of alice's email delivery once it has that status (polled: the worker
    settles it in its own task)."""
    async with server.http("ops", "admin") as http:
        for _ in range(400):
            body = (await http.get("/api/admin/deliveries?medium=email&user_id=alice")).json()
            if body["items"] and body["items"][0]["status"] == status:
                return int(body["items"][0]["id"])
            await asyncio.sleep(0.02)
    raise AssertionError(f"the email delivery never became {status}: {body}")


async def test_the_console_charts_metrics_and_replays_a_dead_letter(
    sqlite_template: Path, tmp_path: Path, browser: Any
) -> None:
    path = tmp_path / "tidings.db"
    shutil.copy(sqlite_template, path)
    settings = make_settings(
        f"sqlite+aiosqlite:///{path}", smtp_host="127.0.0.1", smtp_port=free_port(),
        smtp_starttls=False, email_from="tidings@example.test",
        retry_delays_ms=[50], max_retry_attempts=1, metrics_token="scrape-token",
    )
    server = await serve_on(settings, free_port())
    try:
        async with server.http("accounts", "service") as http:
            await http.put("/api/users/alice/contact", json={"email": "alice@example.test"})
        await create(server, media=["email"])
        delivery_id = await wait_for_status(server, "dead")

        refused = await open_page(browser, f"{server.url}/admin#token={server.token('alice')}")
        await expect(refused.page.locator("#sign-in-error")).to_contain_text("Sign-in failed")

        admin_token = server.token("ops", "admin")
        blind = await open_page(browser, f"{server.url}/admin#token={admin_token}")
        await expect(blind.page.locator("#metrics-status")).to_have_text(
            "Metrics unavailable: /metrics needs METRICS_TOKEN (sign in again with it)")

        page = await open_page(
            browser, f"{server.url}/admin?every=1#token={admin_token}&metrics=scrape-token")
        row = page.page.locator(f"#deliveries tr[data-id='{delivery_id}']")
        await expect(row).to_have_attribute("data-status", "dead")
        await row.locator("button.open").click()
        await expect(page.page.locator("#detail table.history tbody tr")).to_have_count(2)
        await expect(page.page.locator("#replay-one")).to_be_enabled()
        # Two samples make a rate; the charts then have lines. One inbox open is one
        # connection; its notifications show as creates and in-app deliveries.
        inbox = await open_inbox(browser, server)
        await expect(page.page.locator("[data-chart=connections] .now")).to_have_text("1")
        for n in range(6):
            await create(server, title=f"Load {n}", media=["in_app"])
        await expect(inbox.page.locator("tidings-inbox li.item")).to_have_count(7)
        await expect(page.page.locator("[data-chart=creates] polyline")).to_have_count(1)
        await expect(page.page.locator("[data-chart=deliveries] .legend")).to_contain_text("in_app")
        await expect(page.page.locator("[data-chart=queue] .legend")).to_contain_text("email")
        parsed = await page.page.evaluate(
            "async text => (await import('/static/tidings-admin.js')).parseMetrics(text)",
            '# HELP x_total x\nx_total{a="b\\"c",m="e"} 3\ny 1.5e2\n')
        assert parsed == [{"name": "x_total", "labels": {"a": 'b"c', "m": "e"}, "value": 3},
                          {"name": "y", "labels": {}, "value": 150}]

        await page.page.locator("#replay-one").click()
        await expect(page.page.locator("#detail-status")).to_have_text(
            f"Replayed: delivery #{delivery_id} is pending again.")
        await wait_for_status(server, "dead")

        await page.page.select_option("#bulk select[name=medium]", "email")
        await page.page.locator("#bulk button[type=submit]").click()
        await expect(page.page.locator("#bulk-status")).to_have_text(
            "Dry run: 1 dead letter(s) would be replayed.")
        async with server.http("ops", "admin") as http:
            still = (await http.get(f"/api/admin/deliveries/{delivery_id}")).json()
        assert still["status"] == "dead"
        await page.page.locator("#bulk-go").click()
        await expect(page.page.locator("#bulk-status")).to_have_text("Replayed 1 dead letter(s).")
        async with server.http("ops", "admin") as http:
            after = (await http.get(f"/api/admin/deliveries/{delivery_id}")).json()
        assert after["status"] != "dead" or len(after["history"]) > 2
        assert page.errors == []
    finally:
        await server.stop()



def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# The browser's push service is out of reach here (headless, no network): the page's own
# service worker registration is real, and only PushManager.subscribe answers locally with
# a subscription of the shape browsers give (recording the key the page passed to it).
PUSH_SERVICE = """
PushManager.prototype.subscribe = async function (options) {
  window.usedKey = Array.from(new Uint8Array(options.applicationServerKey));
  const subscription = %s;
  return { toJSON: () => subscription };
};
"""


async def test_web_push_registers_the_service_worker_and_the_device(
    sqlite_template: Path, tmp_path: Path, browser: Any
) -> None:
    vapid = ec.generate_private_key(ec.SECP256R1())
    public = vapid.public_key().public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint)
    browser_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    path = tmp_path / "tidings.db"
    shutil.copy(sqlite_template, path)
    settings = make_settings(
        f"sqlite+aiosqlite:///{path}", allow_private_targets=True,
        vapid_private_key=b64(vapid.private_numbers().private_value.to_bytes(32, "big")),
        vapid_subject="mailto:ops@example.com")
    subscription = {"endpoint": "https://push.example.com/wpush/v2/abc123",
                    "keys": {"p256dh": b64(browser_key), "auth": b64(bytes(range(16)))}}
    server = await serve_on(settings, free_port())
    try:
        context = await browser.new_context()
        await context.grant_permissions(["notifications"], origin=server.url)
        await context.add_init_script(PUSH_SERVICE % json.dumps(subscription))
        page = Page(await context.new_page())
        page.page.set_default_timeout(WAIT_MS)
        await page.page.goto(f"{server.url}/inbox#token={server.token('alice')}")
        await page.page.locator("tidings-inbox .bar button[aria-expanded]").click()
        await page.page.locator("tidings-inbox button.push").click()
        await expect(page.page.locator("tidings-inbox .notice")).to_have_text(
            "Push enabled in this browser.")
        await expect(page.page.locator("tidings-inbox .devices")).to_contain_text(
            "Web Push (a browser), added")
        assert await page.page.evaluate("window.usedKey") == list(public)
        worker = await page.page.evaluate(
            "async () => (await navigator.serviceWorker.getRegistration('/static/'))"
            ".active.scriptURL")
        assert worker == f"{server.url}/static/tidings-sw.js"
        async with server.http("alice") as http:
            devices = (await http.get("/api/devices")).json()["items"]
        assert [d["platform"] for d in devices] == ["webpush"]
        await page.page.locator("tidings-inbox .devices button.remove").click()
        await expect(page.page.locator("tidings-inbox .settings")).to_contain_text("No devices.")
        async with server.http("alice") as http:
            assert (await http.get("/api/devices")).json()["items"] == []
        assert page.errors == []
    finally:
        await server.stop()


@asynccontextmanager
async def product_page(html: str) -> AsyncIterator[str]:
    """A product's own page on another origin (localhost rather than 127.0.0.1, another
    port), served by a minimal loopback HTTP server."""
    body = html.encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://localhost:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_the_element_works_embedded_in_a_page_of_another_origin(
    sqlite_template: Path, tmp_path: Path, browser: Any
) -> None:
    path = tmp_path / "tidings.db"
    shutil.copy(sqlite_template, path)
    port = free_port()
    html = ("<!doctype html><title>Shop</title><h1>Shop</h1>"
            f'<script type="module" src="http://127.0.0.1:{port}/static/tidings-inbox.js">'
            "</script><tidings-inbox></tidings-inbox>")
    async with product_page(html) as origin:
        settings = make_settings(f"sqlite+aiosqlite:///{path}", cors_origins=[origin])
        server = await serve_on(settings, port)
        try:
            page = await open_page(browser, f"{origin}/")
            inbox = page.page.locator("tidings-inbox")
            before = await create(server, title="Before the page")
            await inbox.evaluate("(el, [server, token]) => { el.setAttribute('server', server);"
                                 " el.setAttribute('token', token); }",
                                 [server.url, server.token("alice")])
            await expect(page.page.locator("tidings-inbox .conn")).to_have_text("Live")
            note = await create(server, title="From the shop")
            # A bell, closed: the new one counts on it and shows as a toast.
            badge = page.page.locator("tidings-inbox .bell .badge")
            await expect(badge).to_have_text("2")  # the list's unseen_count, then one live
            await expect(page.page.locator("tidings-inbox .toast")).to_contain_text("From the shop")
            bell = page.page.locator("tidings-inbox button.bell")
            await bell.click()
            await expect(badge).to_be_hidden()
            await expect(bell).to_have_attribute("aria-expanded", "true")
            # Escape closes the dropped-down panel and gives the focus back to the bell.
            await page.page.keyboard.press("Escape")
            await expect(page.page.locator("tidings-inbox .panel")).to_be_hidden()
            await expect(bell).to_be_focused()
            await page.page.keyboard.press("Enter")
            await expect(item(page, note["id"])).to_be_visible()
            await expect(item(page, before["id"])).to_be_visible()
            assert await unseen_count(server) == 0
            await item(page, note["id"]).locator("button.read").click()
            await expect(item(page, note["id"])).to_have_attribute("data-status", "read")
            # Its styles came from the Tidings server into the shadow root.
            colour = await page.page.locator("tidings-inbox .badge").evaluate(
                "el => getComputedStyle(el).backgroundColor")
            assert colour == "rgb(179, 38, 30)"
            assert page.errors == [] and page.refused == []
        finally:
            await server.stop()


CONTRAST = """selectors => selectors.map(selector => {
  const el = document.querySelector('tidings-inbox').shadowRoot.querySelector(selector)
    || document.querySelector(selector);
  const rgb = c => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  let node = el, back = null;
  while (node && !back) {
    if (node.nodeType === 1) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length < 4 || c[3] > 0) back = c;
    }
    node = node.parentNode || node.host;
  }
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(back || [255, 255, 255])];
  return [selector, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
})"""


async def test_text_keeps_a_contrast_of_at_least_4_5(web: RunningServer, browser: Any) -> None:
    await create(web, title="Unread one")
    page = await open_inbox(browser, web)
    await expect(page.page.locator("tidings-inbox li.item")).to_have_count(1)
    selectors = [".badge", ".conn", ".title", ".msg", "time", "button.read", ".bar h2",
                 ".views button",
                 "#who", "#sign-out", ".top h1"]
    ratios = dict(await page.page.evaluate(CONTRAST, selectors))
    assert all(ratio >= 4.5 for ratio in ratios.values()), ratios


# Counts the PONGs the page sends (observing WebSocket.send, not replacing it).
COUNT_PONGS = """
window.pongs = 0;
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (data === "3") window.pongs += 1;
  return send.call(this, data);
};
"""


async def test_the_page_answers_pings_and_keeps_its_connection(
    monkeypatch: pytest.MonkeyPatch, db_settings: Settings, browser: Any
) -> None:
    if db_settings.realtime_transport != "lean":
        pytest.skip("the heartbeat's timing is set on the lean transport")
    monkeypatch.setattr(lean_server, "PING_INTERVAL", 0.2)
    monkeypatch.setattr(lean_server, "PING_TIMEOUT", 0.3)
    server = await serve_on(db_settings, free_port())
    try:
        context = await browser.new_context()
        await context.add_init_script(COUNT_PONGS)
        page = Page(await context.new_page())
        page.page.set_default_timeout(WAIT_MS)
        await page.page.goto(f"{server.url}/inbox#token={server.token('alice')}")
        await expect(page.page.locator("tidings-inbox .conn")).to_have_text("Live")
        # Five intervals: longer than interval + timeout, so an unanswered ping would have
        # closed the connection.
        await page.page.wait_for_function("() => window.pongs >= 5")
        assert server.metric("tidings_socket_disconnects_total") == 0
        note = await create(server, title="Still here")
        await expect(item(page, note["id"])).to_be_visible()
        await expect(page.page.locator("tidings-inbox .conn")).to_have_text("Live")
    finally:
        await server.stop()


async def test_the_console_lists_templates_and_previews_them_live(
    web: RunningServer, browser: Any
) -> None:
    admin = web.token("ops", "admin")
    async with web.http("ops", "admin") as http:
        created = await http.post("/api/admin/templates", json={
            "key": "invoice-ready", "default_locale": "en",
            "variants": {
                "en": {"title": "Invoice {{ number }} is ready", "message": "Hi {{ name }}"},
                "de": {"title": "Rechnung {{ number }} ist da", "message": "Hallo {{ name }}"},
            }})
    assert created.status_code == 201, created.text
    page = await open_page(browser, f"{web.url}/admin#token={admin}")
    await page.page.locator("#templates button[data-key='invoice-ready']").click()
    # Without variables the preview names the one that is missing.
    await expect(page.page.locator("#preview-status")).to_contain_text("variables.")
    await page.page.locator("#preview textarea[name='variables']").fill(
        '{"number": 42, "name": "<Alice>"}')
    await expect(page.page.locator("#preview-parts dd[data-part='title']")).to_have_text(
        "Invoice 42 is ready")
    await page.page.locator("#preview input[name='locale']").fill("de_AT")
    await expect(page.page.locator("#preview-parts dd[data-part='title']")).to_have_text(
        "Rechnung 42 ist da")
    # Shown as text: the variable's markup is not turned into elements.
    await expect(page.page.locator("#preview-parts dd[data-part='message']")).to_have_text(
        "Hallo <Alice>")
    assert page.errors == []


async def test_the_console_lists_types_and_saves_and_deletes_one(
    web: RunningServer, browser: Any
) -> None:
    admin = web.token("ops", "admin")
    async with web.http("ops", "admin") as http:
        put = await http.put("/api/admin/types/billing/invoice", json={
            "name": {"en": "Invoices"}, "required": True, "default_media": ["email"]})
    assert put.status_code == 200, put.text
    page = await open_page(browser, f"{web.url}/admin#token={admin}")
    row = page.page.locator("#types tr[data-type='billing/invoice']")
    await expect(row).to_contain_text("required")
    await row.locator("button").click()
    body = page.page.locator("#type-form textarea[name='body']")
    assert json.loads(await body.input_value())["default_media"] == ["email"]
    # A bad body is refused by the server, naming the field; a good one is saved.
    await body.fill('{"name": {}}')
    await page.page.locator("#type-form button[type='submit']").click()
    await expect(page.page.locator("#type-status")).to_contain_text("(name)")
    await body.fill('{"name": {"de": "Rechnungen"}, "default_media": ["in_app"]}')
    await page.page.locator("#type-form button[type='submit']").click()
    await expect(page.page.locator("#type-status")).to_have_text("Saved billing/invoice.")
    await expect(row).to_contain_text("de: Rechnungen")
    async with web.http("ops", "admin") as http:
        stored = (await http.get("/api/admin/types/billing/invoice")).json()
    assert (stored["required"], stored["default_media"]) == (False, ["in_app"])
    await page.page.locator("#type-delete").click()
    await expect(page.page.locator("#type-status")).to_have_text("Deleted.")
    await expect(row).to_have_count(0)
    assert page.errors == []
    assert page.refused == [(422, "/api/admin/types/billing/invoice")]  # the bad save only


# Whether each word of an element's text sits on one line (none broken inside).
WORDS_WHOLE = """el => {
  const range = document.createRange();
  const text = el.firstChild;
  let start = 0;
  for (const word of el.textContent.split(" ")) {
    range.setStart(text, start);
    range.setEnd(text, start + word.length);
    if (range.getClientRects().length > 1) return false;
    start += word.length + 1;
  }
  return true;
}"""


async def test_the_console_sets_lists_and_deletes_a_team_feed(
    web: RunningServer, browser: Any
) -> None:
    page = await open_page(browser, f"{web.url}/admin#token={web.token('ops', 'admin')}")
    await expect(page.page.locator("#feeds-status")).to_have_text("No team feeds yet.")
    form = page.page.locator("#feed-form")
    # Labelled controls, in keyboard order; a private address is refused by the server,
    # which names the field.
    await form.get_by_label("Channel").fill("billing")
    await page.page.keyboard.press("Tab")
    await expect(form.get_by_label("Kind")).to_be_focused()
    await form.get_by_label("Kind").select_option("discord")
    await page.page.keyboard.press("Tab")
    url = form.get_by_label("Incoming webhook URL")
    await expect(url).to_be_focused()
    await page.page.keyboard.type("http://127.0.0.1/hook")
    await page.page.keyboard.press("Enter")
    await expect(page.page.locator("#feed-status")).to_contain_text("(webhook_url)")
    # A literal public address: checked without a DNS lookup, never contacted.
    await url.fill("https://93.184.215.14/api/webhooks/1/secret-part")
    await url.press("Enter")
    await expect(page.page.locator("#feed-status")).to_have_text(
        "Saved: billing posts to Discord.")
    row = page.page.locator("#feeds tr[data-channel='billing']")
    await expect(row.locator("td.url")).to_have_text("https://93.184.215.14/\u2026")
    await expect(row).to_contain_text("Discord")
    assert "secret" not in await row.inner_text()
    for cell in await row.locator("td").all():
        if await cell.evaluate("el => el.firstChild && el.firstChild.nodeType === 3"):
            assert await cell.evaluate(WORDS_WHOLE), await cell.inner_text()
    async with web.http("ops", "admin") as http:
        stored = (await http.get("/api/admin/channels/billing/feed")).json()
    assert (stored["kind"], stored["webhook_url"]) == ("discord", "https://93.184.215.14/\u2026")
    delete = row.get_by_role("button", name="Delete the feed of billing")
    await delete.focus()
    await page.page.keyboard.press("Enter")
    await expect(page.page.locator("#feed-status")).to_have_text("Deleted the feed of billing.")
    await expect(row).to_have_count(0)
    await expect(page.page.locator("#feeds-h")).to_be_focused()
    async with web.http("ops", "admin") as http:
        assert (await http.get("/api/admin/channels/billing/feed")).status_code == 404
    assert page.errors == []
    assert page.refused == [(422, "/api/admin/channels/billing/feed")]  # the bad save only
